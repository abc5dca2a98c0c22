//! [`LoadTest`]: the settings of a load test (target, load shape, stop
//! conditions), their validation, and the run that turns them into a
//! [`LoadReport`].

use std::sync::Arc;
use std::time::Duration;

use crate::Error;
use crate::profile::{Plan, Segment, StepLoad};
use crate::report::{BreakingPoint, LoadReport, Mode, StageReport, StoppedBy};
use crate::response::Target;
use crate::run::Run;
use crate::stats::{Limits, Stats};
use crate::{closed, open};
use vigil_histogram::Summary;

#[derive(Clone, Debug)]
enum Load {
    Users(u32),
    Stages(Vec<(Duration, u32)>),
    Rate(f64),
    RateStages(Vec<(Duration, f64)>),
    Step(StepLoad),
}

/// A load test: a [`Target`] (a closure returning a future, or a URL with
/// `HttpTarget`), the shape of the load, and when to stop.
///
/// The load is one of:
/// - **closed loop**, virtual users that each send a request, wait for
///   the response, pause for the [`think_time`](LoadTest::think_time) and
///   repeat: [`users`](LoadTest::users) for a
///   [`duration`](LoadTest::duration) (optionally reached over a
///   [`ramp_up`](LoadTest::ramp_up)), or [`stages`](LoadTest::stages)
///   ramping linearly between user counts;
/// - **open loop**, requests started on a schedule whether or not earlier
///   ones completed, latency counted from the scheduled start
///   (coordinated-omission correct): [`rate`](LoadTest::rate) requests
///   per second, or [`rate_stages`](LoadTest::rate_stages);
/// - **stress**, [`step`](LoadTest::step) / [`step_load`](LoadTest::step_load):
///   users stepped up until the error-rate limit (5 % unless set) is
///   crossed; the report names the breaking point.
///
/// Stop conditions: [`duration`](LoadTest::duration), the
/// [`error_rate_limit`](LoadTest::error_rate_limit) over a sliding
/// [`error_window`](LoadTest::error_window), and
/// [`max_requests`](LoadTest::max_requests).
///
/// A request that panics (in the closure or its future) counts as an
/// error; the virtual user goes on with its next request.
///
/// Time is tokio's: the virtual users are tasks on the current runtime,
/// and a test with `#[tokio::test(start_paused = true)]` runs minutes of
/// load in milliseconds, deterministically.
///
/// ```
/// use std::time::Duration;
/// use vigil_load::{LoadTest, StoppedBy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), vigil_load::Error> {
/// // The enterprise agents' load test: 1 min -> 50 users, 2 min -> 100, 1 min -> 0.
/// let report = LoadTest::new(|| async {
///     tokio::time::sleep(Duration::from_millis(40)).await; // the service
///     Ok::<_, std::io::Error>(())
/// })
/// .name("agents")
/// .stages([
///     (Duration::from_secs(60), 50),
///     (Duration::from_secs(120), 100),
///     (Duration::from_secs(60), 0),
/// ])
/// .think_time(Duration::from_millis(960))
/// .run()
/// .await?;
/// assert_eq!(report.stopped_by, StoppedBy::Completed);
/// assert_eq!(report.peak_users, 100);
/// assert_eq!(report.stages.len(), 3);
/// assert!(report.latency(0.95) < Duration::from_millis(500));
/// println!("{report}");
/// # Ok(())
/// # }
/// ```
#[must_use = "a LoadTest does nothing until `run` is awaited"]
#[derive(Debug)]
pub struct LoadTest {
    name: String,
    target: Shared,
    load: Vec<(&'static str, Load)>,
    ramp_up: Option<Duration>,
    duration: Option<Duration>,
    think_time: Duration,
    max_requests: Option<u64>,
    error_rate_limit: Option<f64>,
    error_window: Duration,
    error_window_min_requests: u64,
    timeout: Option<Duration>,
    max_in_flight: u64,
    grace: Duration,
}

/// The target, shared with the run. A target is any closure: `Debug`
/// shows only that it is there.
#[derive(Clone)]
struct Shared(Arc<dyn Target>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Target")
    }
}

impl LoadTest {
    /// A load test of `target`, named `load test` until
    /// [`name`](LoadTest::name) says otherwise.
    pub fn new(target: impl Target) -> Self {
        Self {
            name: "load test".to_owned(),
            target: Shared(Arc::new(target)),
            load: Vec::new(),
            ramp_up: None,
            duration: None,
            think_time: Duration::ZERO,
            max_requests: None,
            error_rate_limit: None,
            error_window: Duration::from_secs(10),
            error_window_min_requests: 20,
            timeout: None,
            max_in_flight: 10_000,
            grace: Duration::from_secs(30),
        }
    }

    setters! {
        /// The name in the report and in errors.
        name(name: impl Into<String>) => name = name.into();
    }

    fn load(mut self, setting: &'static str, load: Load) -> Self {
        self.load.retain(|(s, _)| *s != setting);
        self.load.push((setting, load));
        self
    }

    /// Closed loop: `users` virtual users for the
    /// [`duration`](LoadTest::duration) (all at once, or over the
    /// [`ramp_up`](LoadTest::ramp_up)).
    pub fn users(self, users: u32) -> Self {
        self.load("users", Load::Users(users))
    }

    /// Closed loop: stages of `(duration, users)`, the user count moving
    /// linearly from the previous stage's (0 before the first) to each
    /// stage's over its duration.
    pub fn stages(self, stages: impl IntoIterator<Item = (Duration, u32)>) -> Self {
        self.load("stages", Load::Stages(stages.into_iter().collect()))
    }

    /// Open loop: `per_second` requests per second for the
    /// [`duration`](LoadTest::duration) (reached over the
    /// [`ramp_up`](LoadTest::ramp_up), if set).
    pub fn rate(self, per_second: f64) -> Self {
        self.load("rate", Load::Rate(per_second))
    }

    /// Open loop: stages of `(duration, requests per second)`, the rate
    /// moving linearly from the previous stage's (0 before the first).
    pub fn rate_stages(self, stages: impl IntoIterator<Item = (Duration, f64)>) -> Self {
        self.load(
            "rate_stages",
            Load::RateStages(stages.into_iter().collect()),
        )
    }

    /// Stress test: `users_per_step` more users every `step_duration` up
    /// to `max_users`, until the error-rate limit is crossed; see
    /// [`StepLoad`].
    pub fn step(self, users_per_step: u32, step_duration: Duration, max_users: u32) -> Self {
        self.step_load(StepLoad::new(users_per_step, step_duration, max_users))
    }

    /// Stress test with the given [`StepLoad`].
    pub fn step_load(self, steps: StepLoad) -> Self {
        self.load("step", Load::Step(steps))
    }

    setters! {
        /// How long `users` or `rate` load runs; with stages or steps, a limit
        /// that may cut them short.
        duration(duration: Duration) => duration = Some(duration);

        /// With `users` or `rate`: reach it linearly from 0 over `ramp_up`
        /// (part of the duration).
        ramp_up(ramp_up: Duration) => ramp_up = Some(ramp_up);

        /// Closed loop: each virtual user's pause between a response and its
        /// next request (none by default).
        think_time(think_time: Duration) => think_time = think_time;

        /// Stop after sending `max_requests` requests (those in flight still
        /// complete and count). The load then ends when the next request would
        /// have been due (open loop) or when the last one completes (closed
        /// loop), so the report's rates cover the time the requests took.
        max_requests(max_requests: u64) => max_requests = Some(max_requests);

        /// Stop when more than `ratio` (0.05 = 5 %) of the requests completed
        /// within the [`error_window`](LoadTest::error_window) were errors.
        /// Off by default, except for stress tests (5 %), where each whole
        /// step is also held to it once its last request has completed (or
        /// timed out, or been abandoned after the grace period). A request
        /// that never completes counts only when it times out, so set a
        /// [`timeout`](LoadTest::timeout) for the limit to see a hung target.
        error_rate_limit(ratio: f64) => error_rate_limit = Some(ratio);
    }

    /// The sliding window the error rate is measured over (10 s by
    /// default), and the fewest requests in it to judge by (20 by
    /// default, so that one early error is not a 100 % error rate).
    pub fn error_window(mut self, window: Duration, min_requests: u64) -> Self {
        self.error_window = window;
        self.error_window_min_requests = min_requests;
        self
    }

    setters! {
        /// Count a request that takes longer than `timeout` as an error (and a
        /// timeout), its latency the timeout. None by default.
        timeout(timeout: Duration) => timeout = Some(timeout);

        /// Open loop: at most this many requests in flight (10 000 by
        /// default). A request due while the cap is reached waits for a slot
        /// (counted as queued; its latency still runs from its scheduled
        /// start); one still waiting when the load ends is never sent and
        /// counts as dropped, an error.
        max_in_flight(max_in_flight: u64) => max_in_flight = max_in_flight;

        /// How long to wait, once the load ends, for requests still in flight
        /// (30 s by default); those still running then are abandoned and
        /// counted as unfinished errors, with their latency up to then.
        grace(grace: Duration) => grace = grace;
    }

    fn invalid(&self, setting: &'static str, value: impl ToString, reason: &'static str) -> Error {
        Error::Invalid {
            test: self.name.clone(),
            setting,
            value: value.to_string(),
            reason,
        }
    }

    /// The mode and plan the settings describe, after checking them.
    fn plan(&self) -> Result<(Mode, Plan, Option<StepLoad>), Error> {
        let (setting, load) = match self.load.as_slice() {
            [] => {
                return Err(Error::NoLoad {
                    test: self.name.clone(),
                });
            }
            [one] => one,
            [(first, _), (second, _), ..] => {
                return Err(Error::ConflictingLoad {
                    test: self.name.clone(),
                    first,
                    second,
                });
            }
        };
        if self.ramp_up.is_some() && !matches!(load, Load::Users(_) | Load::Rate(_)) {
            return Err(Error::ConflictingLoad {
                test: self.name.clone(),
                first: setting,
                second: "ramp_up",
            });
        }
        let constant = |level: f64| -> Result<Plan, Error> {
            let duration = self.duration.ok_or_else(|| Error::MissingDuration {
                test: self.name.clone(),
                load: setting,
            })?;
            let ramp = self.ramp_up.unwrap_or_default();
            if ramp > duration {
                return Err(self.invalid(
                    "ramp_up",
                    format!("{ramp:?}"),
                    "longer than the duration it is part of",
                ));
            }
            let mut segments = Vec::new();
            if !ramp.is_zero() {
                segments.push(Segment {
                    duration: ramp,
                    from: 0.0,
                    to: level,
                });
            }
            if duration > ramp {
                segments.push(Segment {
                    duration: duration - ramp,
                    from: level,
                    to: level,
                });
            }
            Ok(Plan { segments })
        };
        let (mode, plan, steps) = match load {
            Load::Users(0) => return Err(self.invalid("users", 0, "must be at least 1")),
            Load::Users(users) => (Mode::ClosedLoop, constant(f64::from(*users))?, None),
            Load::Rate(rate) if !(rate.is_finite() && *rate > 0.0) => {
                return Err(self.invalid("rate", rate, "must be a positive number"));
            }
            Load::Rate(rate) => (Mode::OpenLoop, constant(*rate)?, None),
            Load::Stages(stages) => (
                Mode::ClosedLoop,
                Plan::ramps(stages.iter().map(|&(d, users)| (d, f64::from(users)))),
                None,
            ),
            Load::RateStages(stages) => {
                if let Some((_, rate)) = stages.iter().find(|(_, r)| !(r.is_finite() && *r >= 0.0))
                {
                    return Err(self.invalid("rate_stages", rate, "rates must be 0 or more"));
                }
                (Mode::OpenLoop, Plan::ramps(stages.iter().copied()), None)
            }
            Load::Step(steps) => {
                if steps.levels().is_empty() {
                    return Err(self.invalid(
                        "step",
                        format!("{steps:?}"),
                        "users_per_step and max_users must be at least 1",
                    ));
                }
                (Mode::ClosedLoop, steps.plan(), Some(*steps))
            }
        };
        let Some(total) = plan.checked_total() else {
            return Err(self.invalid(
                setting,
                format!("{load:?}"),
                "the stages add up to more than a Duration holds",
            ));
        };
        if total.is_zero() {
            return Err(self.invalid(setting, "0 s", "the load must last longer than 0 s"));
        }
        Ok((mode, plan, steps))
    }

    /// The load runs `length` from now: its end, and the times the think
    /// time and the error window reach beyond it, must be on the clock.
    fn check_horizon(&self, load: &'static str, length: Duration) -> Result<(), Error> {
        const BEYOND: &str = "too long: the load's end plus this is beyond the clock's range";
        let now = tokio::time::Instant::now();
        let Some(end) = now.checked_add(length) else {
            let setting = if self.duration == Some(length) {
                "duration"
            } else {
                load
            };
            return Err(self.invalid(
                setting,
                format!("{length:?}"),
                "too long: the load's end is beyond the clock's range",
            ));
        };
        if end.checked_add(self.think_time).is_none() {
            return Err(self.invalid("think_time", format!("{:?}", self.think_time), BEYOND));
        }
        // A slice of the window is a tenth of it more.
        if end
            .checked_add(self.error_window.saturating_mul(2))
            .is_none()
        {
            return Err(self.invalid("error_window", format!("{:?}", self.error_window), BEYOND));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<(), Error> {
        if let Some(ratio) = self.error_rate_limit
            && !(0.0..1.0).contains(&ratio)
        {
            return Err(self.invalid("error_rate_limit", ratio, "must be in 0.0 ..< 1.0"));
        }
        if self.error_window.is_zero() {
            return Err(self.invalid("error_window", "0 s", "must be longer than 0 s"));
        }
        if self.max_in_flight == 0 {
            return Err(self.invalid("max_in_flight", 0, "must be at least 1"));
        }
        if self.max_requests == Some(0) {
            return Err(self.invalid("max_requests", 0, "must be at least 1"));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(self.invalid("timeout", "0 s", "must be longer than 0 s"));
        }
        Ok(())
    }

    /// Run the load test on the current tokio runtime and report.
    ///
    /// Errors when the settings do not describe one load (none, two, a
    /// `users` or `rate` without `duration`, values out of range,
    /// durations so long the load would end beyond the clock's range) or
    /// when called outside a tokio runtime. Requests that fail are not errors
    /// of `run`: they are counted in the report.
    pub async fn run(self) -> Result<LoadReport, Error> {
        let (mode, plan, steps) = self.plan()?;
        self.check_limits()?;
        let length = self.duration.map_or(plan.total(), |d| d.min(plan.total()));
        let load_setting = self
            .load
            .first()
            .map_or("duration", |(setting, _)| *setting);
        self.check_horizon(load_setting, length)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime { test: self.name });
        }
        let error_limit = self
            .error_rate_limit
            .or(steps.is_some().then_some(DEFAULT_STEP_ERROR_LIMIT));
        let stats = Arc::new(Stats::new(&Limits {
            stages: plan.segments.len(),
            max_requests: self.max_requests,
            error_limit,
            error_window: self.error_window,
            error_window_min_requests: self.error_window_min_requests,
            timeout: self.timeout,
            judge_steps: steps.is_some(),
        }));
        let Some(mut run) = Run::new(&plan, length, self.target.0.clone(), stats.clone()) else {
            // Checked by `check_horizon` a moment ago.
            return Err(self.invalid(
                load_setting,
                format!("{length:?}"),
                "too long: the load's end is beyond the clock's range",
            ));
        };
        let (ran_out, peak_users) = match mode {
            Mode::ClosedLoop => closed::run(&mut run, self.think_time).await,
            Mode::OpenLoop => (open::run(&mut run, self.max_in_flight).await, 0),
        };
        let ending = run.finish(ran_out, self.grace).await;

        let [
            requests,
            errors,
            timeouts,
            dropped,
            queued,
            unfinished,
            peak_in_flight,
        ] = stats.totals();
        let [mut latency, sent_latency, lateness] = stats.summaries();
        let load_time = ending.load_time;
        let stages: Vec<StageReport> = plan
            .segments
            .iter()
            .enumerate()
            .filter_map(|(index, segment)| {
                let begins = plan.start_of(index);
                let stage = &stats.stages[index];
                let (requests, errors) = stage.counts();
                if begins >= load_time && requests == 0 {
                    return None;
                }
                let duration = (begins + segment.duration)
                    .min(load_time)
                    .saturating_sub(begins);
                Some(StageReport {
                    from: segment.from,
                    to: segment.to,
                    duration,
                    requests,
                    errors,
                    error_ratio: crate::bench::ratio(errors, requests),
                    rate: per_second(requests, duration),
                    latency: Summary {
                        window_seconds: duration.as_secs_f64(),
                        ..stage.latency()
                    },
                })
            })
            .collect();
        let breaking_point = match (steps, ending.failed_stage) {
            (Some(steps), Some(failed)) => {
                let levels = steps.levels();
                levels.get(failed).map(|&failed_users| BreakingPoint {
                    failed_users,
                    error_ratio: stages.get(failed).map_or(0.0, |s| s.error_ratio),
                    last_good_users: failed.checked_sub(1).and_then(|i| levels.get(i).copied()),
                })
            }
            _ => None,
        };
        latency.window_seconds = load_time.as_secs_f64();
        Ok(LoadReport {
            name: self.name,
            mode,
            requests,
            errors,
            error_ratio: crate::bench::ratio(errors, requests),
            timeouts,
            dropped,
            queued,
            unfinished,
            rate: per_second(ending.completed_in_load, load_time),
            sent_rate: per_second(requests - dropped, load_time),
            duration: load_time,
            latency,
            sent_latency,
            lateness,
            statuses: stats.statuses(),
            peak_users,
            peak_in_flight,
            stages,
            stopped_by: ending.stopped_by,
            breaking_point: breaking_point
                .filter(|_| matches!(ending.stopped_by, StoppedBy::ErrorRate { .. })),
        })
    }
}

/// The error-rate limit of a stress test that sets none (the seed's 5 %).
pub const DEFAULT_STEP_ERROR_LIMIT: f64 = 0.05;

fn per_second(count: u64, time: Duration) -> f64 {
    if time.is_zero() {
        0.0
    } else {
        count as f64 / time.as_secs_f64()
    }
}
