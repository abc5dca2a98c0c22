//! Service-level objectives for instrumented functions, written as in
//! autometrics, so that its SLO recording and alerting rules
//! (`autometrics.rules.yml`) and its SLO dashboard select vigil's series.
//!
//! An [`Objective`] groups functions under a name with a success-rate
//! target, a latency target, or both. A call site given an objective
//! (`#[timed(objective = API_SLO)]`, or [`CallSite::objective`]) adds the
//! objective's labels to its series, with the values the autometrics
//! specification gives:
//!
//! | metric | labels, when the objective has a success rate | labels, when it has a latency target |
//! |---|---|---|
//! | `function_calls_total` | `objective_name`, `objective_percentile` (e.g. `"99.9"`) | |
//! | `function_calls_duration_seconds` | | `objective_name`, `objective_percentile`, `objective_latency_threshold` (e.g. `"0.25"`) |
//!
//! The rules compare `objective_latency_threshold` with the `le` label of
//! the duration histogram's buckets, so every [`ObjectiveLatency`] is a
//! bucket bound of that histogram ([`LATENCY_BUCKETS`]).
//!
//! ```
//! use vigil_timing::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
//! use vigil_timing::CallSite;
//!
//! const API_SLO: Objective = Objective::new("api")
//!     .success_rate(ObjectivePercentile::P99_9)
//!     .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);
//!
//! static HANDLER: CallSite = CallSite::new("api_handler", module_path!()).objective(&API_SLO);
//!
//! assert_eq!(HANDLER.service_objective().map(Objective::name), Some("api"));
//! assert_eq!(ObjectivePercentile::P99_9.as_str(), "99.9");
//! assert_eq!(ObjectiveLatency::Ms250.as_str(), "0.25");
//! ```
//!
//! [`CallSite::objective`]: crate::CallSite::objective

/// The label naming the objective a series counts towards.
pub const OBJECTIVE_NAME: &str = "objective_name";
/// The label holding the objective's target percentage (`"99.9"`).
pub const OBJECTIVE_PERCENTILE: &str = "objective_percentile";
/// The label holding a latency objective's threshold in seconds (`"0.25"`),
/// equal to the `le` label of one of the duration histogram's buckets.
pub const OBJECTIVE_LATENCY_THRESHOLD: &str = "objective_latency_threshold";

/// A service-level objective for a function or a group of functions: a
/// name, and a success-rate target, a latency target, or both.
///
/// ```
/// use vigil_timing::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
///
/// const API_SLO: Objective = Objective::new("api")
///     .success_rate(ObjectivePercentile::P99_9)
///     .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);
///
/// assert_eq!(API_SLO.name(), "api");
/// assert_eq!(API_SLO.success_rate_objective(), Some(ObjectivePercentile::P99_9));
/// assert_eq!(
///     API_SLO.latency_objective(),
///     Some((ObjectiveLatency::Ms250, ObjectivePercentile::P99))
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Objective {
    name: &'static str,
    success_rate: Option<ObjectivePercentile>,
    latency: Option<(ObjectiveLatency, ObjectivePercentile)>,
}

impl Objective {
    /// An objective named `name` (e.g. `"api"` for all the HTTP handlers of
    /// an API), with no target yet.
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Objective {
            name,
            success_rate: None,
            latency: None,
        }
    }

    /// At least `percentile` of the calls must succeed (`result="ok"`).
    /// Adds `objective_name` and `objective_percentile` to
    /// `function_calls_total`.
    #[must_use]
    pub const fn success_rate(mut self, percentile: ObjectivePercentile) -> Self {
        self.success_rate = Some(percentile);
        self
    }

    /// At least `percentile` of the calls must complete within `threshold`.
    /// Adds `objective_name`, `objective_percentile` and
    /// `objective_latency_threshold` to `function_calls_duration_seconds`.
    #[must_use]
    pub const fn latency(
        mut self,
        threshold: ObjectiveLatency,
        percentile: ObjectivePercentile,
    ) -> Self {
        self.latency = Some((threshold, percentile));
        self
    }

    /// The `objective_name` label.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The success-rate target, if any.
    #[must_use]
    pub const fn success_rate_objective(&self) -> Option<ObjectivePercentile> {
        self.success_rate
    }

    /// The latency threshold and target, if any.
    #[must_use]
    pub const fn latency_objective(&self) -> Option<(ObjectiveLatency, ObjectivePercentile)> {
        self.latency
    }
}

/// The share of calls that must meet an objective. Autometrics' rule file
/// has recording and alerting rules for exactly these four.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectivePercentile {
    /// 90%
    P90,
    /// 95%
    P95,
    /// 99%
    P99,
    /// 99.9%
    P99_9,
}

impl ObjectivePercentile {
    /// The `objective_percentile` label value: `"90"`, `"95"`, `"99"` or
    /// `"99.9"`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            ObjectivePercentile::P90 => "90",
            ObjectivePercentile::P95 => "95",
            ObjectivePercentile::P99 => "99",
            ObjectivePercentile::P99_9 => "99.9",
        }
    }

    /// The target as a ratio (`0.999` for [`P99_9`](Self::P99_9)).
    #[must_use]
    pub const fn ratio(&self) -> f64 {
        match self {
            ObjectivePercentile::P90 => 0.9,
            ObjectivePercentile::P95 => 0.95,
            ObjectivePercentile::P99 => 0.99,
            ObjectivePercentile::P99_9 => 0.999,
        }
    }
}

/// The latency threshold of an objective. Each is one of the duration
/// histogram's bucket bounds ([`LATENCY_BUCKETS`]): the rules count the
/// calls at or under the threshold from the bucket whose `le` equals it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectiveLatency {
    /// 5 milliseconds
    Ms5,
    /// 10 milliseconds
    Ms10,
    /// 25 milliseconds
    Ms25,
    /// 50 milliseconds
    Ms50,
    /// 75 milliseconds
    Ms75,
    /// 100 milliseconds
    Ms100,
    /// 250 milliseconds
    Ms250,
    /// 500 milliseconds
    Ms500,
    /// 750 milliseconds
    Ms750,
    /// 1 second
    Ms1000,
    /// 2.5 seconds
    Ms2500,
    /// 5 seconds
    Ms5000,
    /// 7.5 seconds
    Ms7500,
    /// 10 seconds
    Ms10000,
}

impl ObjectiveLatency {
    /// Every threshold, shortest first.
    pub const ALL: [ObjectiveLatency; 14] = [
        ObjectiveLatency::Ms5,
        ObjectiveLatency::Ms10,
        ObjectiveLatency::Ms25,
        ObjectiveLatency::Ms50,
        ObjectiveLatency::Ms75,
        ObjectiveLatency::Ms100,
        ObjectiveLatency::Ms250,
        ObjectiveLatency::Ms500,
        ObjectiveLatency::Ms750,
        ObjectiveLatency::Ms1000,
        ObjectiveLatency::Ms2500,
        ObjectiveLatency::Ms5000,
        ObjectiveLatency::Ms7500,
        ObjectiveLatency::Ms10000,
    ];

    /// The `objective_latency_threshold` label value, in seconds, written as
    /// the `le` label of the matching bucket is: `"0.005"` ... `"0.25"` ...
    /// `"1"`, `"2.5"`, `"5"`, `"7.5"`, `"10"`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            ObjectiveLatency::Ms5 => "0.005",
            ObjectiveLatency::Ms10 => "0.01",
            ObjectiveLatency::Ms25 => "0.025",
            ObjectiveLatency::Ms50 => "0.05",
            ObjectiveLatency::Ms75 => "0.075",
            ObjectiveLatency::Ms100 => "0.1",
            ObjectiveLatency::Ms250 => "0.25",
            ObjectiveLatency::Ms500 => "0.5",
            ObjectiveLatency::Ms750 => "0.75",
            ObjectiveLatency::Ms1000 => "1",
            ObjectiveLatency::Ms2500 => "2.5",
            ObjectiveLatency::Ms5000 => "5",
            ObjectiveLatency::Ms7500 => "7.5",
            ObjectiveLatency::Ms10000 => "10",
        }
    }

    /// The threshold in seconds.
    #[must_use]
    pub const fn seconds(&self) -> f64 {
        match self {
            ObjectiveLatency::Ms5 => 0.005,
            ObjectiveLatency::Ms10 => 0.01,
            ObjectiveLatency::Ms25 => 0.025,
            ObjectiveLatency::Ms50 => 0.05,
            ObjectiveLatency::Ms75 => 0.075,
            ObjectiveLatency::Ms100 => 0.1,
            ObjectiveLatency::Ms250 => 0.25,
            ObjectiveLatency::Ms500 => 0.5,
            ObjectiveLatency::Ms750 => 0.75,
            ObjectiveLatency::Ms1000 => 1.0,
            ObjectiveLatency::Ms2500 => 2.5,
            ObjectiveLatency::Ms5000 => 5.0,
            ObjectiveLatency::Ms7500 => 7.5,
            ObjectiveLatency::Ms10000 => 10.0,
        }
    }
}

/// The bucket bounds of `function_calls_duration_seconds`: the seconds of
/// every [`ObjectiveLatency`], shortest first (autometrics' default
/// histogram buckets).
pub const LATENCY_BUCKETS: [f64; 14] = {
    let mut bounds = [0.0; 14];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = ObjectiveLatency::ALL[i].seconds();
        i += 1;
    }
    bounds
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_print_as_their_label_values() {
        // `le` labels are written with `f64`'s `Display`; the rules compare
        // them with the threshold label as strings.
        for latency in ObjectiveLatency::ALL {
            assert_eq!(
                latency.seconds().to_string(),
                latency.as_str(),
                "{latency:?}"
            );
            assert_eq!(latency.as_str().parse::<f64>(), Ok(latency.seconds()));
        }
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            LATENCY_BUCKETS,
            [
                0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
            ]
        );
    }

    #[test]
    fn percentiles_print_as_the_rule_file_selects_them() {
        let labels: Vec<&str> = [
            ObjectivePercentile::P90,
            ObjectivePercentile::P95,
            ObjectivePercentile::P99,
            ObjectivePercentile::P99_9,
        ]
        .iter()
        .map(ObjectivePercentile::as_str)
        .collect();
        assert_eq!(labels, ["90", "95", "99", "99.9"]);
        assert!((ObjectivePercentile::P99_9.ratio() - 0.999).abs() < f64::EPSILON);
    }

    #[test]
    fn builder_keeps_each_target() {
        const ONLY_LATENCY: Objective =
            Objective::new("batch").latency(ObjectiveLatency::Ms1000, ObjectivePercentile::P95);
        assert_eq!(ONLY_LATENCY.success_rate_objective(), None);
        assert_eq!(
            ONLY_LATENCY.latency_objective(),
            Some((ObjectiveLatency::Ms1000, ObjectivePercentile::P95))
        );
        const ONLY_SUCCESS: Objective =
            Objective::new("batch").success_rate(ObjectivePercentile::P90);
        assert_eq!(ONLY_SUCCESS.latency_objective(), None);
        assert_eq!(
            ONLY_SUCCESS.success_rate_objective(),
            Some(ObjectivePercentile::P90)
        );
    }
}
