//! [`LoadReport`]: what a load test measured, overall and per stage or
//! step, why it stopped, and where a stress test broke.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use vigil_histogram::Summary;

use crate::format::{self, Table, serialize_seconds};

/// How the load was offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Virtual users each send a request, wait for its response (and the
    /// think time), and repeat: the target's slowness slows the load.
    ClosedLoop,
    /// Requests start on a schedule at the target rate whether or not
    /// earlier ones completed; latency counts from the scheduled start.
    OpenLoop,
}

/// Why a load test ended.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StoppedBy {
    /// The planned load (its duration, stages or steps) ran to the end.
    Completed,
    /// The `duration` limit cut the stages short.
    Duration,
    /// `max_requests` requests were sent.
    MaxRequests,
    /// The error ratio crossed the limit: over the sliding window, or over
    /// a whole step of a stress test.
    ErrorRate {
        /// The ratio observed, 0.0 ..= 1.0.
        ratio: f64,
        /// The limit it crossed.
        limit: f64,
    },
}

impl fmt::Display for StoppedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoppedBy::Completed => f.write_str("completed"),
            StoppedBy::Duration => f.write_str("duration limit"),
            StoppedBy::MaxRequests => f.write_str("max requests"),
            StoppedBy::ErrorRate { ratio, limit } => write!(
                f,
                "error rate {} above the limit of {}",
                format::percent(*ratio),
                format::percent(*limit)
            ),
        }
    }
}

/// One stage (a ramp), step (a stress level) or the constant phase of a
/// load test, as far as the test got into it. Requests belong to the stage
/// they started in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageReport {
    /// Users (closed loop) or requests per second (open loop) at the
    /// stage's start.
    pub from: f64,
    /// ... and at its end.
    pub to: f64,
    /// Time the test spent in the stage.
    #[serde(serialize_with = "serialize_seconds")]
    pub duration: Duration,
    /// Requests recorded (as in [`LoadReport::requests`]).
    pub requests: u64,
    /// Requests that counted as errors.
    pub errors: u64,
    /// `errors / requests` (0.0 without requests).
    pub error_ratio: f64,
    /// The stage's requests (by their start, the scheduled one in an open
    /// loop) per second of it.
    pub rate: f64,
    /// Latency in seconds.
    pub latency: Summary,
}

/// Where a stress test ([`StepLoad`](crate::StepLoad)) broke.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BreakingPoint {
    /// Users of the step that crossed the error-rate limit.
    pub failed_users: u32,
    /// That step's error ratio.
    pub error_ratio: f64,
    /// Users of the last step within the limit (none if the first step
    /// failed): the capacity found.
    pub last_good_users: Option<u32>,
}

/// What a [`LoadTest`](crate::LoadTest) measured.
///
/// Latencies are in seconds (a vigil-histogram [`Summary`]: p50, p90,
/// p95, p99, p99.9, max, mean, stddev), from the request's start in a
/// closed loop and from its *scheduled* start in an open loop. Every
/// request the load owed is in the counts and the latency: one abandoned
/// after the grace period ([`unfinished`](LoadReport::unfinished)) or
/// never sent ([`dropped`](LoadReport::dropped)) is an error, its latency
/// the time it waited. `Display` writes a terminal table; `Serialize`
/// gives JSON with durations in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// The load test's name.
    pub name: String,
    /// Closed or open loop.
    pub mode: Mode,
    /// Requests recorded: completed, plus unfinished and dropped (errors
    /// included).
    pub requests: u64,
    /// Requests that counted as errors (timeouts, unfinished and dropped
    /// included).
    pub errors: u64,
    /// `errors / requests` (0.0 without requests).
    pub error_ratio: f64,
    /// Requests that exceeded the per-request timeout (also errors).
    pub timeouts: u64,
    /// Open loop: requests due during the load that were never sent,
    /// because `max_in_flight` requests were still waiting when the load
    /// ended. Errors, their latency from the scheduled start to the end of
    /// the load.
    pub dropped: u64,
    /// Open loop: requests that had to wait for a slot under
    /// `max_in_flight` (sent late; the wait is in their latency).
    pub queued: u64,
    /// Requests still in flight when the grace period after the load ended
    /// ran out: abandoned, and counted as errors with their latency up to
    /// then.
    pub unfinished: u64,
    /// Throughput: requests completed within the load (not in the grace
    /// period after it) per second of `duration`.
    pub rate: f64,
    /// Requests sent per second of `duration`: in an open loop, the rate
    /// offered (the target rate unless requests were dropped or the test
    /// stopped).
    pub sent_rate: f64,
    /// From the start of the load to its end (the end of the plan or the
    /// stop condition; with `max_requests`, when the next request would
    /// have been due in an open loop, at the last completion in a closed
    /// one), without the grace period.
    #[serde(serialize_with = "serialize_seconds")]
    pub duration: Duration,
    /// Latency of every request, in seconds, from its scheduled start in
    /// an open loop (corrected for coordinated omission).
    pub latency: Summary,
    /// Latency of every request sent, from the moment it was actually
    /// sent (uncorrected; in a closed loop the same as `latency`). Far
    /// below `latency`, it shows requests queueing in the load generator
    /// rather than in the target.
    pub sent_latency: Summary,
    /// Open loop: how late each request was sent after its scheduled start
    /// (the scheduler's own delay, plus any wait for a slot under
    /// `max_in_flight`); all zero in a closed loop.
    pub lateness: Summary,
    /// Requests per HTTP status, for targets that return one.
    pub statuses: BTreeMap<u16, u64>,
    /// Closed loop: the most virtual users at once (0 in an open loop).
    pub peak_users: u32,
    /// The most requests in flight at once.
    pub peak_in_flight: u64,
    /// Per stage, step or constant phase, in order, as far as the test got.
    pub stages: Vec<StageReport>,
    /// Why the test ended.
    pub stopped_by: StoppedBy,
    /// Stress tests that crossed the error-rate limit: where.
    pub breaking_point: Option<BreakingPoint>,
}

impl LoadReport {
    /// The latency at quantile `q` (0.5, 0.95, 0.99, ...) among those the
    /// summary holds (p50, p75, p90, p95, p99, p99.9; 1.0 is the max, 0.0
    /// the min); other values take the next one up.
    ///
    /// ```
    /// # let report = vigil_load::LoadReport::example();
    /// assert_eq!(report.latency(0.95), std::time::Duration::from_millis(95));
    /// ```
    pub fn latency(&self, q: f64) -> Duration {
        format::from_seconds(quantile(&self.latency, q))
    }

    /// A report with made-up numbers, for examples.
    #[doc(hidden)]
    pub fn example() -> Self {
        let latency = Summary {
            count: 1_000,
            sum: 50.0,
            min: 0.001,
            max: 0.2,
            mean: 0.05,
            stddev: 0.03,
            p50: 0.045,
            p75: 0.06,
            p90: 0.09,
            p95: 0.095,
            p99: 0.15,
            p999: 0.19,
            window_seconds: 10.0,
        };
        Self {
            name: "example".into(),
            mode: Mode::ClosedLoop,
            requests: 1_000,
            errors: 10,
            error_ratio: 0.01,
            timeouts: 0,
            dropped: 0,
            queued: 0,
            unfinished: 0,
            rate: 100.0,
            sent_rate: 100.0,
            duration: Duration::from_secs(10),
            statuses: BTreeMap::from([(200, 990), (500, 10)]),
            peak_users: 5,
            peak_in_flight: 5,
            stages: vec![StageReport {
                from: 5.0,
                to: 5.0,
                duration: Duration::from_secs(10),
                requests: 1_000,
                errors: 10,
                error_ratio: 0.01,
                rate: 100.0,
                latency: latency.clone(),
            }],
            sent_latency: latency.clone(),
            lateness: Summary::default(),
            latency,
            stopped_by: StoppedBy::Completed,
            breaking_point: None,
        }
    }
}

pub(crate) fn quantile(summary: &Summary, q: f64) -> f64 {
    match q {
        q if q <= 0.0 => summary.min,
        q if q <= 0.5 => summary.p50,
        q if q <= 0.75 => summary.p75,
        q if q <= 0.9 => summary.p90,
        q if q <= 0.95 => summary.p95,
        q if q <= 0.99 => summary.p99,
        q if q <= 0.999 => summary.p999,
        _ => summary.max,
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::ClosedLoop => "closed loop",
            Mode::OpenLoop => "open loop",
        };
        writeln!(
            f,
            "load test `{}` ({mode}): {} requests in {}, stopped: {}",
            self.name,
            self.requests,
            format::duration(self.duration),
            self.stopped_by
        )?;
        let mut totals = format!("  rate {:.1} req/s", self.rate);
        if self.mode == Mode::OpenLoop {
            totals.push_str(&format!(" (sent {:.1} req/s)", self.sent_rate));
        }
        totals.push_str(&format!(
            "  errors {} ({})  timeouts {}",
            self.errors,
            format::percent(self.error_ratio),
            self.timeouts
        ));
        if self.mode == Mode::OpenLoop {
            totals.push_str(&format!(
                "  queued {}  dropped {}",
                self.queued, self.dropped
            ));
        } else {
            totals.push_str(&format!("  peak users {}", self.peak_users));
        }
        totals.push_str(&format!("  peak in flight {}", self.peak_in_flight));
        if self.unfinished > 0 {
            totals.push_str(&format!("  unfinished {}", self.unfinished));
        }
        writeln!(f, "{totals}")?;
        let l = &self.latency;
        let [mean, stddev, p50, p90, p95, p99, p999, max] =
            [l.mean, l.stddev, l.p50, l.p90, l.p95, l.p99, l.p999, l.max].map(format::seconds);
        writeln!(
            f,
            "  latency  mean {mean}  stddev {stddev}  p50 {p50}  p90 {p90}  p95 {p95}  p99 {p99}  p99.9 {p999}  max {max}",
        )?;
        if self.mode == Mode::OpenLoop {
            let (s, late) = (&self.sent_latency, &self.lateness);
            let [p50, p99, max, late_p50, late_p99, late_max] =
                [s.p50, s.p99, s.max, late.p50, late.p99, late.max].map(format::seconds);
            writeln!(
                f,
                "  from send  p50 {p50}  p99 {p99}  max {max}  sent late  p50 {late_p50}  p99 {late_p99}  max {late_max}",
            )?;
        }
        if !self.statuses.is_empty() {
            let statuses: Vec<String> = self
                .statuses
                .iter()
                .map(|(status, count)| format!("{status}: {count}"))
                .collect();
            writeln!(f, "  statuses  {}", statuses.join("  "))?;
        }
        let level = match self.mode {
            Mode::ClosedLoop => "users",
            Mode::OpenLoop => "req/s target",
        };
        let mut table = Table::new(
            "  ",
            &[
                "stage", level, "duration", "requests", "errors", "error %", "rate/s", "p50",
                "p95", "p99", "max",
            ],
        );
        for (index, stage) in self.stages.iter().enumerate() {
            let level = if stage.from == stage.to {
                format::number(stage.to)
            } else {
                format!(
                    "{} -> {}",
                    format::number(stage.from),
                    format::number(stage.to)
                )
            };
            table.row(vec![
                (index + 1).to_string(),
                level,
                format::duration(stage.duration),
                stage.requests.to_string(),
                stage.errors.to_string(),
                format::percent(stage.error_ratio),
                format!("{:.1}", stage.rate),
                format::seconds(stage.latency.p50),
                format::seconds(stage.latency.p95),
                format::seconds(stage.latency.p99),
                format::seconds(stage.latency.max),
            ]);
        }
        write!(f, "{table}")?;
        if let Some(point) = &self.breaking_point {
            write!(
                f,
                "  breaking point: {} users ({} errors); ",
                point.failed_users,
                format::percent(point.error_ratio)
            )?;
            match point.last_good_users {
                Some(users) => writeln!(f, "last good step: {users} users")?,
                None => writeln!(f, "no step stayed within the limit")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_totals_latency_statuses_and_stages() {
        let text = LoadReport::example().to_string();
        assert!(
            text.starts_with(
                "load test `example` (closed loop): 1000 requests in 10.00 s, stopped: completed\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("rate 100.0 req/s  errors 10 (1.00 %)"),
            "{text}"
        );
        assert!(text.contains("p95 95.00 ms"), "{text}");
        assert!(text.contains("statuses  200: 990  500: 10"), "{text}");
        assert!(text.contains("  stage  users  duration"), "{text}");
    }

    #[test]
    fn json_has_durations_in_seconds_and_a_tagged_stop_reason() {
        let mut report = LoadReport::example();
        report.stopped_by = StoppedBy::ErrorRate {
            ratio: 0.1,
            limit: 0.05,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["duration"], 10.0);
        assert_eq!(json["mode"], "closed_loop");
        assert_eq!(json["stopped_by"]["reason"], "error_rate");
        assert_eq!(json["latency"]["p95"], 0.095);
        assert_eq!(json["statuses"]["500"], 10);
    }
}
