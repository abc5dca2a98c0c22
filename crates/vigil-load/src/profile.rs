//! The shape of a load over time: stages that ramp a level (virtual
//! users or requests per second) linearly, [`StepLoad`] for stress tests,
//! and the arrival schedule of an open loop.

use std::time::Duration;

use serde::Serialize;

/// One stage of a load: over `duration`, the level (users, or requests
/// per second in an open loop) moves linearly from where the previous
/// stage ended (0 before the first) to `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Segment {
    pub(crate) duration: Duration,
    pub(crate) from: f64,
    pub(crate) to: f64,
}

impl Segment {
    pub(crate) fn at(&self, offset: Duration) -> f64 {
        if self.duration.is_zero() {
            return self.to;
        }
        let share = (offset.as_secs_f64() / self.duration.as_secs_f64()).clamp(0.0, 1.0);
        self.from + (self.to - self.from) * share
    }
}

/// Segments one after the other.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    pub(crate) segments: Vec<Segment>,
}

impl Plan {
    /// Segments from `(duration, level)` stages, the first ramping from 0.
    pub(crate) fn ramps(stages: impl IntoIterator<Item = (Duration, f64)>) -> Self {
        let mut from = 0.0;
        let segments = stages
            .into_iter()
            .map(|(duration, to)| {
                let segment = Segment { duration, from, to };
                from = to;
                segment
            })
            .collect();
        Self { segments }
    }

    /// The plan's length, saturating at `Duration::MAX` (see
    /// [`checked_total`](Plan::checked_total)).
    pub(crate) fn total(&self) -> Duration {
        self.checked_total().unwrap_or(Duration::MAX)
    }

    /// The plan's length, `None` if it overflows a `Duration`.
    pub(crate) fn checked_total(&self) -> Option<Duration> {
        self.segments
            .iter()
            .try_fold(Duration::ZERO, |total, s| total.checked_add(s.duration))
    }

    /// The segment `offset` falls in and the level there; past the end,
    /// the last segment and its final level.
    pub(crate) fn at(&self, offset: Duration) -> (usize, f64) {
        let mut start = Duration::ZERO;
        for (index, segment) in self.segments.iter().enumerate() {
            let end = start.saturating_add(segment.duration);
            if offset < end {
                return (index, segment.at(offset - start));
            }
            start = end;
        }
        let last = self.segments.len().saturating_sub(1);
        (last, self.segments.last().map_or(0.0, |s| s.to))
    }

    /// When segment `index` starts.
    pub(crate) fn start_of(&self, index: usize) -> Duration {
        self.segments[..index.min(self.segments.len())]
            .iter()
            .fold(Duration::ZERO, |start, s| start.saturating_add(s.duration))
    }
}

/// A stress test's load: users step up by `users_per_step` every
/// `step_duration` (starting at `users_per_step`) up to `max_users`,
/// holding each step, until the error-rate limit is crossed. The report
/// names the last step that stayed within the limit (the breaking point).
///
/// ```
/// use std::time::Duration;
/// use vigil_load::StepLoad;
///
/// // The seed's stress test: +10 users per step up to 100.
/// let steps = StepLoad::new(10, Duration::from_secs(30), 100);
/// assert_eq!(steps.levels(), vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
/// assert_eq!(StepLoad::new(40, Duration::from_secs(30), 100).levels(), vec![40, 80, 100]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StepLoad {
    /// Users added at each step (and the first step's users).
    pub users_per_step: u32,
    /// How long each step holds its users.
    #[serde(serialize_with = "crate::format::serialize_seconds")]
    pub step_duration: Duration,
    /// The last step's users.
    pub max_users: u32,
}

impl StepLoad {
    /// Steps of `users_per_step` users, each held for `step_duration`, up
    /// to `max_users`.
    pub fn new(users_per_step: u32, step_duration: Duration, max_users: u32) -> Self {
        Self {
            users_per_step,
            step_duration,
            max_users,
        }
    }

    /// The users of each step, in order (empty when `users_per_step` or
    /// `max_users` is 0).
    pub fn levels(&self) -> Vec<u32> {
        if self.users_per_step == 0 || self.max_users == 0 {
            return Vec::new();
        }
        let mut levels: Vec<u32> = (1..)
            .map(|step: u32| step.saturating_mul(self.users_per_step))
            .take_while(|&users| users < self.max_users)
            .collect();
        levels.push(self.max_users);
        levels
    }

    pub(crate) fn plan(&self) -> Plan {
        Plan {
            segments: self
                .levels()
                .into_iter()
                .map(|users| Segment {
                    duration: self.step_duration,
                    from: f64::from(users),
                    to: f64::from(users),
                })
                .collect(),
        }
    }
}

/// The intended start times of an open loop's requests: the k-th request
/// starts when the integral of the rate reaches k (the first at 0).
pub(crate) struct Arrivals<'a> {
    plan: &'a Plan,
    segment: usize,
    segment_start: Duration,
    /// Requests due before the current segment started.
    before: f64,
    next: u64,
}

impl<'a> Arrivals<'a> {
    pub(crate) fn new(plan: &'a Plan) -> Self {
        Self {
            plan,
            segment: 0,
            segment_start: Duration::ZERO,
            before: 0.0,
            next: 0,
        }
    }
}

impl Iterator for Arrivals<'_> {
    /// The segment and the offset from the start of the load.
    type Item = (usize, Duration);

    fn next(&mut self) -> Option<Self::Item> {
        let k = self.next as f64;
        loop {
            let segment = self.plan.segments.get(self.segment)?;
            let secs = segment.duration.as_secs_f64();
            let due = (segment.from + segment.to) / 2.0 * secs;
            if self.before + due > k {
                // Solve a t^2 + b t = x for t in [0, secs], with the rate
                // b + 2 a t; the form 2x / (b + sqrt(b^2 + 4 a x)) is
                // stable for rising and falling rates alike.
                let x = k - self.before;
                let a = (segment.to - segment.from) / (2.0 * secs);
                let b = segment.from;
                let root = (b * b + 4.0 * a * x).max(0.0).sqrt();
                let t = if x <= 0.0 { 0.0 } else { 2.0 * x / (b + root) };
                let t = if t.is_finite() {
                    t.clamp(0.0, secs)
                } else {
                    0.0
                };
                self.next += 1;
                return Some((
                    self.segment,
                    self.segment_start
                        .saturating_add(crate::format::from_seconds(t)),
                ));
            }
            self.before += due;
            self.segment_start = self.segment_start.saturating_add(segment.duration);
            self.segment += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn ramps_start_from_zero_and_follow_each_stage() {
        let plan = Plan::ramps([(secs(60.0), 50.0), (secs(120.0), 100.0), (secs(60.0), 0.0)]);
        assert_eq!(plan.total(), secs(240.0));
        assert_eq!(plan.at(secs(30.0)), (0, 25.0));
        assert_eq!(plan.at(secs(120.0)), (1, 75.0));
        assert_eq!(plan.at(secs(210.0)), (2, 50.0));
        assert_eq!(plan.at(secs(500.0)), (2, 0.0));
        assert_eq!(plan.start_of(2), secs(180.0));
    }

    #[test]
    fn constant_rate_arrivals_are_evenly_spaced() {
        let plan = Plan::ramps([(secs(0.0), 10.0), (secs(1.0), 10.0)]);
        let times: Vec<Duration> = Arrivals::new(&plan).map(|(_, t)| t).collect();
        assert_eq!(times.len(), 10);
        for (k, t) in times.iter().enumerate() {
            assert!(
                (t.as_secs_f64() - k as f64 / 10.0).abs() < 1e-9,
                "{k}: {t:?}"
            );
        }
    }

    #[test]
    fn ramped_rate_arrivals_follow_the_integral() {
        // 0 -> 100 rps over 10 s: 500 requests, the k-th at sqrt(k / 5) s.
        let plan = Plan::ramps([(secs(10.0), 100.0)]);
        let times: Vec<Duration> = Arrivals::new(&plan).map(|(_, t)| t).collect();
        assert_eq!(times.len(), 500);
        assert!((times[125].as_secs_f64() - 5.0).abs() < 1e-9);
        // Falling: 100 -> 0 over 10 s, also 500, the first half in 2.93 s.
        let plan = Plan::ramps([(secs(0.0), 100.0), (secs(10.0), 0.0)]);
        let times: Vec<(usize, Duration)> = Arrivals::new(&plan).collect();
        assert_eq!(times.len(), 500);
        assert_eq!(times[0], (1, Duration::ZERO));
        let half = times[250].1.as_secs_f64();
        assert!((half - (10.0 - 50f64.sqrt())).abs() < 1e-6, "{half}");
    }

    proptest::proptest! {
        /// Against the reference of integrating the rate: arrivals come in
        /// order, inside their segment, as many in each segment as the
        /// rate's integral over it (within one, for the boundaries).
        #[test]
        fn arrivals_match_the_integral_of_the_rate(
            stages in proptest::collection::vec((0u64..20_000, 0u32..500), 1..6),
        ) {
            let plan = Plan::ramps(
                stages.iter().map(|&(ms, rate)| (Duration::from_millis(ms), f64::from(rate))),
            );
            let mut counts = vec![0u64; plan.segments.len()];
            let mut previous = Duration::ZERO;
            for (segment, at) in Arrivals::new(&plan) {
                proptest::prop_assert!(at >= previous, "{at:?} after {previous:?}");
                let start = plan.start_of(segment);
                let end = start + plan.segments[segment].duration;
                proptest::prop_assert!(start <= at && at <= end, "{at:?} outside segment {segment}");
                counts[segment] += 1;
                previous = at;
            }
            let mut due_before = 0.0;
            let mut seen_before = 0u64;
            for (segment, count) in plan.segments.iter().zip(&counts) {
                let due = due_before + (segment.from + segment.to) / 2.0 * segment.duration.as_secs_f64();
                let seen = seen_before + count;
                // Arrivals 0, 1, 2, ... up to the integral: ceil(due) of them.
                proptest::prop_assert!((seen as f64 - due.ceil()).abs() <= 1.0, "{seen} arrivals, {due} due");
                (due_before, seen_before) = (due, seen);
            }
        }
    }

    #[test]
    fn steps_hold_each_level() {
        let plan = StepLoad::new(10, secs(5.0), 25).plan();
        let levels: Vec<f64> = plan.segments.iter().map(|s| s.from).collect();
        assert_eq!(levels, [10.0, 20.0, 25.0]);
        assert_eq!(plan.at(secs(7.0)), (1, 20.0));
        assert!(StepLoad::new(0, secs(1.0), 10).levels().is_empty());
    }
}
