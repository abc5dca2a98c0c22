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
//! use vigil_alert::{AlertStatus, Comparison, Engine, MemorySource, Rule, Severity, State};
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
//! let builder = Engine::builder().rule(error_rate);
//! // Local routing (feature `routing`), for hosts without an Alertmanager.
//! #[cfg(feature = "routing")]
//! let builder = builder.routing(
//!     vigil_alert::Routing::new("oncall").group_by(["alertname"]).group_wait(Duration::from_secs(30)),
//! );
//! let mut engine = builder.build()?;
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
//! // The active alerts (what an Alertmanager is sent).
//! let alerts = engine.alerts(t(180));
//! let alert = &alerts[0];
//! assert_eq!((alert.status, alert.severity), (AlertStatus::Firing, Severity::Critical));
//! assert_eq!(alert.labels["alertname"], "HighErrorRate");
//! assert_eq!(alert.annotations["summary"], "checkout fails 30% of calls");
//!
//! // With local routing: one notification per group, once `group_wait`
//! // has passed.
//! #[cfg(feature = "routing")]
//! {
//!     let notifications = engine.due_notifications(t(180));
//!     assert_eq!(notifications.len(), 1);
//!     assert_eq!(notifications[0].receiver, "oncall");
//!     assert_eq!(notifications[0].alerts[0].labels["alertname"], "HighErrorRate");
//! }
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
//! | [`engine`] | [`Engine`]: evaluation, instances, active alerts ([`Alert`]), `alerts_firing` |
//! | `routing` | local routing (feature `routing`): `Routing`, `Route`, `InhibitRule`, `Silence`, group timers, [`Notification`]s |
//! | [`escalation`] | [`Escalation`] |
//! | [`history`] | [`Transition`], [`History`] |
//! | `alertmanager` | (feature `delivery`) `Sender`, `Resender`: active alerts to Alertmanager as Prometheus sends them |
//! | [`notify`] | delivery of [`Notification`]s: [`Notifier`](notify::Notifier)s (tracing, channel, webhook / Alertmanager, templated webhook, Slack, email over SMTP with feature `email`, closures) behind a non-blocking [`Dispatcher`](notify::Dispatcher) |
//! | `config` | (feature `config`) `AlertConfig`: rules, routing, inhibitions and silences from YAML or TOML (format: `docs/alert-rules.md`; a `rules:` entry is a [`Rule`]'s serde form), errors with file, rule, field, line and column |
//! | `prometheus` | (feature `prometheus`) `to_prometheus_rules`: an equivalent Prometheus rule file, with warnings where meaning would change |
//! | `rulesets` | (feature `rulesets`) ready-made rules: common service targets and multi-window burn-rate SLOs |
//!
//! # Metrics
//! `alerts_firing{alert, severity}` (gauge): alerting instances per rule name
//! and severity, set on evaluation through the [`metrics`] facade.
//!
//! # Times and serde
//! Times are `SystemTime`s (notifications carry wall-clock times) and
//! serialize as RFC 3339 UTC strings (`"2024-01-01T00:00:00Z"`); durations
//! serialize as humantime strings (`"5m"`, `"1h 30m"`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alert;
#[cfg(feature = "delivery")]
pub mod alertmanager;
pub mod baseline;
#[cfg(feature = "config")]
pub mod config;
pub mod engine;
mod error;
pub mod escalation;
mod expr;
pub mod history;
pub mod labels;
pub mod notify;
#[cfg(any(feature = "prometheus", feature = "rulesets"))]
#[cfg_attr(not(feature = "prometheus"), doc(hidden))]
pub mod prometheus;
#[cfg(feature = "routing")]
pub mod routing;
pub mod rule;
#[cfg(feature = "rulesets")]
pub mod rulesets;
pub mod severity;
pub mod source;
pub mod state;
mod time;

pub use alert::{Alert, AlertStatus, Notification};
pub use baseline::{Baseline, BaselineMethod};
#[cfg(feature = "config")]
pub use config::{AlertConfig, ConfigError};
pub use engine::{Engine, EngineBuilder, InstanceStatus};
pub use error::{Error, Result};
pub use escalation::Escalation;
pub use history::{History, HistoryQuery, Transition};
pub use labels::{DisplayLabels, Labels, MatchOp, Matcher, labels};
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusExport, to_prometheus_rules};
#[cfg(feature = "routing")]
pub use routing::{InhibitRule, Route, Routing, Silence, SilenceId, SilenceState};
pub use rule::{
    Aggregation, AlsoCondition, Comparison, Expr, Limit, NoDataPolicy, Recovery, Rule, RuleBuilder,
    Selector, Threshold,
};
pub use severity::{Severity, SeverityLabels};
pub use source::{HistogramStat, MemorySource, Source};
pub use state::State;
pub use time::MAX_DURATION;

/// The README's example is a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
