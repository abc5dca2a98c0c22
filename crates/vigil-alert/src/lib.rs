//! Threshold alert rules with a tested state machine, Alertmanager-style
//! grouping, silences, inhibition, escalation and a bounded history.
//!
//! A [`Rule`] reads one value per series (a gauge, a counter rate, a ratio
//! of two counters' rates, a histogram statistic; optionally a second one
//! that must hold too) from a [`Source`],
//! compares it with thresholds per [`Severity`], and moves each alert
//! instance through `Inactive -> Pending -> Firing -> Recovering ->
//! Resolved` (see [`State`]). The [`Engine`] is a pure function of rules,
//! values and the time it is given, so everything is testable without
//! sleeping:
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use vigil_alert::{
//!     AlertStatus, Comparison, Engine, MemorySource, Routing, Rule, Severity, State,
//! };
//!
//! let error_rate = Rule::builder("HighErrorRate")
//!     // rate(calls{result="error"}[5m]) / ignoring(result) rate(calls[5m]), per function
//!     .error_ratio("function_calls_total", "result", "error", Duration::from_secs(300))
//!     .threshold(Severity::Medium, Comparison::Greater, 0.05) // config: `medium` (written `warning`, alerts say severity="warning")
//!     .threshold(Severity::Critical, Comparison::Greater, 0.20)
//!     .recover_below(0.02) // hysteresis
//!     .for_duration(Duration::from_secs(60))
//!     .annotation("summary", "{{ $labels.function }} fails {{ $value | humanizePercentage }} of calls")
//!     .build()?;
//! let mut engine = Engine::builder()
//!     .rule(error_rate)
//!     .routing(Routing::new("oncall").group_by(["alertname"]).group_wait(Duration::from_secs(30)))
//!     .build()?;
//!
//! // Tests and examples use the in-memory source and synthetic times.
//! let mut source = MemorySource::new();
//! let t = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
//! let ok = [("function", "checkout"), ("result", "ok")];
//! let err = [("function", "checkout"), ("result", "error")];
//! source.set_counter("function_calls_total", ok, 0.0);
//! source.set_counter("function_calls_total", err, 0.0);
//! assert!(engine.evaluate(t(0), &source).is_empty()); // first sample: no rate yet
//!
//! for (secs, oks, errors) in [(60, 700.0, 300.0), (120, 1400.0, 600.0), (180, 2100.0, 900.0)] {
//!     source.set_counter("function_calls_total", ok, oks);
//!     source.set_counter("function_calls_total", err, errors);
//!     for transition in engine.evaluate(t(secs), &source) {
//!         println!("{} {} -> {}", transition.rule, transition.from, transition.to);
//!     }
//! }
//! let function = vigil_alert::labels([("function", "checkout")]);
//! assert_eq!(engine.state("HighErrorRate", &function), State::Firing);
//!
//! // One notification per group, once `group_wait` has passed.
//! let notifications = engine.due_notifications(t(180));
//! assert_eq!(notifications.len(), 1);
//! let alert = &notifications[0].alerts[0];
//! assert_eq!(notifications[0].receiver, "oncall");
//! assert_eq!((alert.status, alert.severity), (AlertStatus::Firing, Severity::Critical));
//! assert_eq!(alert.labels["alertname"], "HighErrorRate");
//! assert_eq!(alert.annotations["summary"], "checkout fails 30% of calls");
//! assert_eq!(engine.history().by_rule("HighErrorRate").count(), 2); // Pending, Firing
//! # Ok::<(), vigil_alert::Error>(())
//! ```
//!
//! # Modules
//! | module | owns |
//! |---|---|
//! | [`rule`] | [`Rule`], [`Expr`], [`Threshold`], [`Comparison`], [`Recovery`], [`NoDataPolicy`], [`Aggregation`], [`AlsoCondition`] (a second condition, e.g. the short window of a burn-rate alert) |
//! | [`severity`] | [`Severity`], [`SeverityLabels`] (the `severity` label value of each level) |
//! | [`labels`](mod@labels) | [`Labels`], [`Matcher`] (`=`, `!=`, `=~`, `!~`) |
//! | [`source`] | [`Source`], [`HistogramStat`], [`MemorySource`] |
//! | [`state`] | [`State`] and the per-instance state machine |
//! | [`baseline`] | [`Baseline`]: dynamic thresholds |
//! | [`engine`] | [`Engine`]: evaluation, instances, `alerts_firing` |
//! | [`group`] | [`Routing`], [`Route`], [`InhibitRule`], [`Notification`], [`Alert`] |
//! | [`silence`] | [`Silence`] |
//! | [`escalation`] | [`Escalation`] |
//! | [`history`] | [`Transition`], [`History`] |
//! | [`alertmanager`] | [`Sender`](alertmanager::Sender), [`Resender`](alertmanager::Resender): active alerts to Alertmanager as Prometheus sends them |
//! | [`notify`] | delivery of [`Notification`]s: [`Notifier`](notify::Notifier)s (tracing, channel, webhook / Alertmanager, closures) behind a non-blocking [`Dispatcher`](notify::Dispatcher) |
//! | [`config`] | [`AlertConfig`]: rules, routing, inhibitions and silences from YAML or TOML (format: `docs/alert-rules.md`), errors with file, rule, field, line and column |
//! | [`prometheus`] | [`to_prometheus_rules`]: an equivalent Prometheus rule file, with warnings where meaning would change |
//! | [`rulesets`] | ready-made rules: common service targets and multi-window burn-rate SLOs |
//!
//! # Metrics
//! `alerts_firing{alert, severity}` (gauge): alerting instances per rule name
//! and severity, set on evaluation through the [`metrics`] facade.
//!
//! # Times and serde
//! Times are `SystemTime`s (notifications carry wall-clock times) and
//! serialize as RFC 3339 UTC strings (`"2024-01-01T00:00:00Z"`); durations
//! serialize as humantime strings (`"5m"`, `"1h 30m"`) and also deserialize
//! from a number of seconds.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod alertmanager;
pub mod baseline;
pub mod config;
pub mod engine;
mod error;
pub mod escalation;
pub mod group;
pub mod history;
pub mod labels;
pub mod notify;
pub mod prometheus;
pub mod rule;
pub mod rulesets;
pub mod severity;
pub mod silence;
pub mod source;
pub mod state;

use std::time::{Duration, SystemTime};

pub use baseline::{Baseline, BaselineMethod};
pub use config::{AlertConfig, ConfigError};
pub use engine::{Engine, EngineBuilder, InstanceStatus};
pub use error::{Error, Result};
pub use escalation::Escalation;
pub use group::{Alert, AlertStatus, InhibitRule, Notification, Route, Routing};
pub use history::{History, HistoryQuery, Transition};
pub use labels::{DisplayLabels, Labels, MatchOp, Matcher, labels};
pub use prometheus::{PrometheusExport, to_prometheus_rules};
pub use rule::{
    Aggregation, AlsoCondition, Comparison, Expr, Limit, NoDataPolicy, Recovery, Rule, RuleBuilder,
    Selector, Threshold,
};
pub use severity::{Severity, SeverityLabels};
pub use silence::{Silence, SilenceId, SilenceState};
pub use source::{HistogramStat, MemorySource, Source};
pub use state::State;

/// The README's example is a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The longest duration a rule, route, silence or engine setting may hold:
/// one year (365.25 days, what `1y` means in a config file). Anything
/// longer (`for: 500000000years`) is refused as a mistake rather than
/// kept as an alert that can never fire or a timer that never ends.
pub const MAX_DURATION: Duration = Duration::from_secs(31_557_600);

/// Why `d` is too long to be a duration in a config, if it is.
pub(crate) fn too_long(d: Duration) -> Option<String> {
    (d > MAX_DURATION).then(|| {
        format!(
            "{} is longer than one year, the longest duration allowed",
            humantime::format_duration(d)
        )
    })
}

/// `now - since`, or zero if the clock went backwards.
pub(crate) fn elapsed(now: SystemTime, since: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or(Duration::ZERO)
}

/// Serde for `Duration` as a humantime string (`"5m"`), also accepting a
/// number of seconds.
pub(crate) mod serde_duration {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"30s\", \"5m\", \"1h 30m\", or a number of seconds")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            humantime::parse_duration(v.trim())
                .map_err(|e| E::custom(format_args!("invalid duration {v:?}: {e}")))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format_args!("negative duration {v}")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v)
                .map_err(|e| E::custom(format_args!("invalid duration {v}: {e}")))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    /// For `Option<Duration>`.
    pub(crate) mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        #[derive(Deserialize)]
        #[serde(transparent)]
        struct Wrapper(#[serde(with = "super")] Duration);

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<Wrapper>::deserialize(d)?.map(|w| w.0))
        }
    }
}

/// Serde for `SystemTime` as an RFC 3339 UTC string.
pub(crate) mod serde_time {
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    /// Years 10000 and later cannot be written in RFC 3339.
    const MAX_SECS: u64 = 253_402_300_800;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) if d.as_secs() < MAX_SECS => s.collect_str(&humantime::format_rfc3339(*t)),
            _ => Err(serde::ser::Error::custom(
                "time outside 1970..=9999 cannot be written as RFC 3339",
            )),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(|e| {
            serde::de::Error::custom(format_args!("invalid RFC 3339 time {text:?}: {e}"))
        })
    }

    /// For `Option<SystemTime>`.
    pub(crate) mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<SystemTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        #[derive(Deserialize)]
        #[serde(transparent)]
        struct Wrapper(#[serde(with = "super")] SystemTime);

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            Ok(Option::<Wrapper>::deserialize(d)?.map(|w| w.0))
        }
    }
}
