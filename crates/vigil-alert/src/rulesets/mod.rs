//! Ready-made rule sets on vigil's own metric names: common service
//! targets ([`ServiceTargets`]) and multi-window burn-rate alerts for a
//! success-rate SLO ([`SloBurnRate`]).
//!
//! Include them in code (`Engine::builder().rules(ServiceTargets::new().rules()?)`)
//! or from a config file (`rulesets: {service_targets: {}, slos: [...]}`,
//! see `docs/alert-rules.md`). Both export to Prometheus like any rule.
//!
//! | rule | reads | recorded by | fires |
//! |---|---|---|---|
//! | `HighLatency` | p95 of `function_calls_duration_seconds` over 5m, per function | vigil (`#[timed]`) | high > 200 ms |
//! | `HighErrorRate` | `function_calls_total{result="error"}` / `function_calls_total` over 5m, per function | vigil (`#[timed]`) | medium > 1 %, critical > 5 % |
//! | `HighCpuUsage` | `system_cpu_usage_ratio` | vigil (`MonitorBuilder::system_metrics`) | medium > 80 %, critical > 90 % |
//! | `HighMemoryUsage` | `system_memory_usage_ratio` | vigil (`MonitorBuilder::system_metrics`) | medium > 85 %, critical > 95 % |
//! | `LowCacheHitRatio` | `cache_requests_total{result="hit"}` / `cache_requests_total` over 5m, per cache | vigil (named caches) | medium < 70 %, high < 50 % |
//!
//! All wait `for: 5m`. The rules are written as a rule file in
//! `src/rulesets/service_targets.yml`, with these defaults.
//!
//! # Where the metrics come from
//! Each rule set names the metrics its rules read, split by who records
//! them:
//!
//! | rule set | from vigil | the host must provide |
//! |---|---|---|
//! | [`ServiceTargets`] | `function_calls_duration_seconds`, `function_calls_total` (`#[timed]`), `cache_requests_total` (caches with a `name`), `system_cpu_usage_ratio`, `system_memory_usage_ratio` (system metrics): [`ServiceTargets::VIGIL_METRICS`] | none ([`ServiceTargets::HOST_METRICS`]) |
//! | [`SloBurnRate`] | `function_calls_total` (`#[timed]`): [`SloBurnRate::VIGIL_METRICS`] | none ([`SloBurnRate::HOST_METRICS`]), unless [`errors`](SloBurnRate::errors) / [`total`](SloBurnRate::total) select other metrics |
//!
//! The two system gauges are recorded when the monitor collects system
//! metrics (`vigil::Monitor::builder().system_metrics(interval)`, vigil's
//! `system-metrics` feature); without them, record the gauges yourself
//! (e.g. `metrics::gauge!("system_cpu_usage_ratio").set(0.42)`) or leave
//! `HighCpuUsage` and `HighMemoryUsage` out with [`ServiceTargets::only`].
//! A rule whose metric is never recorded reads no series and never fires. [`EMITTED_BY_VIGIL`] lists every
//! metric vigil records by itself.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

use crate::prometheus::duration;
#[cfg(feature = "prometheus")]
use crate::prometheus::{PrometheusExport, PrometheusExporter, number};
use crate::{
    Aggregation, Comparison, Error, Expr, Labels, Limit, Matcher, Result, Rule, Selector, Severity,
};

/// Call durations recorded by `#[timed]` (a histogram, in seconds).
pub const FUNCTION_DURATION: &str = "function_calls_duration_seconds";
/// Calls counted by `#[timed]`, labelled `result="ok"|"error"`.
pub const FUNCTION_CALLS: &str = "function_calls_total";
/// Host CPU use, 0..1: a gauge vigil's system metrics record.
pub const CPU_USAGE: &str = "system_cpu_usage_ratio";
/// Host memory use, 0..1: a gauge vigil's system metrics record.
pub const MEMORY_USAGE: &str = "system_memory_usage_ratio";
/// Cache lookups, labelled `cache` and `result="hit"|"miss"`.
pub const CACHE_REQUESTS: &str = "cache_requests_total";

/// The metrics vigil records by itself that rules read (all in
/// `docs/metrics.md`): `#[timed]`'s function metrics and `build_info`, the
/// cache metrics of named caches, the alert metrics, the registry's own,
/// the two system gauges the rule sets read (recorded with system
/// metrics on; the service layer's other system, process, HTTP and span
/// metrics are listed in `docs/metrics.md`), and the health score and
/// status gauges the service layer keeps current. A ready-made
/// rule reads only these and the host metrics its rule set documents
/// ([`ServiceTargets::HOST_METRICS`], [`SloBurnRate::HOST_METRICS`]).
pub const EMITTED_BY_VIGIL: &[&str] = &[
    FUNCTION_CALLS,
    FUNCTION_DURATION,
    "function_calls_concurrent",
    "function_panics_total",
    "function_cancellations_total",
    "build_info",
    CACHE_REQUESTS,
    "cache_evictions_total",
    "cache_entries",
    "cache_weighted_size",
    crate::engine::ALERTS_FIRING,
    crate::notify::NOTIFICATIONS_TOTAL,
    crate::notify::NOTIFICATION_FAILURES_TOTAL,
    "vigil_series_dropped_total",
    CPU_USAGE,
    MEMORY_USAGE,
    "vigil_health_score",
    "vigil_health_status",
];

/// One of the [`ServiceTargets`] rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `HighLatency`: p95 call duration.
    Latency,
    /// `HighErrorRate`: share of calls that fail.
    ErrorRate,
    /// `HighCpuUsage`, on `system_cpu_usage_ratio`.
    Cpu,
    /// `HighMemoryUsage`, on `system_memory_usage_ratio`.
    Memory,
    /// `LowCacheHitRatio`.
    CacheHitRatio,
}

impl Target {
    /// Every target, in the order [`ServiceTargets::rules`] returns them.
    pub const ALL: [Target; 5] = [
        Target::Latency,
        Target::ErrorRate,
        Target::Cpu,
        Target::Memory,
        Target::CacheHitRatio,
    ];
}

/// Common service targets as vigil rules; every limit can be changed.
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::rulesets::{ServiceTargets, Target};
///
/// let rules = ServiceTargets::new()
///     .latency_p95(Duration::from_millis(300))
///     .error_rate(0.02, 0.10)
///     .only([Target::Latency, Target::ErrorRate])
///     .rules()?;
/// assert_eq!(rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["HighLatency", "HighErrorRate"]);
/// # Ok::<(), vigil_alert::Error>(())
/// ```
///
/// A config file's `rulesets.service_targets:` is read into this type:
/// `window`, `for`, `latency_p95` and `only`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[must_use]
pub struct ServiceTargets {
    /// The settings given; each one unset keeps the rule file's.
    #[serde(deserialize_with = "crate::time::duration::positive::option")]
    window: Option<Duration>,
    #[serde(rename = "for", with = "crate::time::duration::option")]
    for_duration: Option<Duration>,
    /// Per target, its thresholds' limits in the rule file's order (a
    /// config file sets the latency's, as `latency_p95`).
    #[serde(rename = "latency_p95", deserialize_with = "latency_p95")]
    limits: HashMap<Target, Vec<f64>>,
    /// Unset: every target.
    only: Option<Vec<Target>>,
}

/// Serde for a config file's `latency_p95:`, the one limit it sets.
fn latency_p95<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<Target, Vec<f64>>, D::Error> {
    let limit = crate::time::duration::positive::option(d)?;
    Ok((limit.into_iter())
        .map(|l| (Target::Latency, vec![l.as_secs_f64()]))
        .collect())
}

impl ServiceTargets {
    /// The metrics these rules read that vigil records:
    /// `function_calls_duration_seconds` and `function_calls_total`
    /// (`#[timed]`), `cache_requests_total` (caches with a `name`), and
    /// the gauges from 0 to 1 `system_cpu_usage_ratio` (`HighCpuUsage`) and
    /// `system_memory_usage_ratio` (`HighMemoryUsage`), recorded when the
    /// monitor collects system metrics (`MonitorBuilder::system_metrics`;
    /// without them those two rules never fire: leave them out with
    /// [`only`](Self::only) or record the gauges yourself).
    pub const VIGIL_METRICS: &'static [&'static str] = &[
        FUNCTION_DURATION,
        FUNCTION_CALLS,
        CACHE_REQUESTS,
        CPU_USAGE,
        MEMORY_USAGE,
    ];

    /// The metrics these rules read that the **host** must record: none.
    pub const HOST_METRICS: &'static [&'static str] = &[];

    /// The rule file's defaults, as in the [module docs](self): 5m windows, `for: 5m`,
    /// p95 > 200 ms, errors > 1 % / 5 %, CPU > 80 % / 90 %, memory > 85 % /
    /// 95 %, cache hits < 70 % / 50 %.
    pub fn new() -> Self {
        Self::default()
    }

    crate::notify::setters! {
        /// The window of the latency, error-rate and cache rules.
        window(window: Duration) => window = Some(window);

        /// How long a threshold must hold before firing (all rules).
        for_duration(duration: Duration) => for_duration = Some(duration);

        /// `HighLatency` fires (high) when a function's p95 exceeds this.
        latency_p95(limit: Duration) => extend limits([(Target::Latency, vec![limit.as_secs_f64()])]);

        /// `HighErrorRate` limits (fractions of calls): medium, critical.
        error_rate(medium: f64, critical: f64) => extend limits([(Target::ErrorRate, vec![medium, critical])]);

        /// `HighCpuUsage` limits (0..1): medium, critical.
        cpu(medium: f64, critical: f64) => extend limits([(Target::Cpu, vec![medium, critical])]);

        /// `HighMemoryUsage` limits (0..1): medium, critical.
        memory(medium: f64, critical: f64) => extend limits([(Target::Memory, vec![medium, critical])]);

        /// `LowCacheHitRatio` limits (0..1, alerting below): medium, high.
        cache_hit_ratio(medium: f64, high: f64) => extend limits([(Target::CacheHitRatio, vec![medium, high])]);

        /// Keeps only these targets.
        only(targets: impl IntoIterator<Item = Target>) => only = Some(targets.into_iter().collect());
    }

    /// The rule for one target, from [the rule file](self) with this
    /// set's window, limits and `for`.
    pub fn rule(&self, target: Target) -> Result<Rule> {
        static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
            serde_yaml_ng::from_str(include_str!("service_targets.yml"))
                .expect("the ready-made rules are valid")
        });
        let mut rule = RULES[target as usize].clone();
        let limits = self.limits.get(&target).into_iter().flatten();
        for (threshold, limit) in rule.thresholds.iter_mut().zip(limits) {
            threshold.value = Limit::Fixed(*limit);
        }
        if let (Expr::Histogram { window, .. } | Expr::Ratio { window, .. }, Some(set)) =
            (&mut rule.expr, self.window)
        {
            *window = set;
        }
        rule.for_duration = self.for_duration.unwrap_or(rule.for_duration);
        let window = rule.expr.window().map(duration).unwrap_or_default();
        let p95 = rule.thresholds[0].value.fixed().unwrap_or_default();
        for text in rule.annotations.values_mut() {
            *text = (text.replace("$window", &window)).replace("$p95", &p95.to_string());
        }
        rule.validate()?;
        Ok(rule)
    }

    /// The rules of the selected targets, in [`Target::ALL`] order.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let only = |t: &Target| self.only.as_ref().is_none_or(|only| only.contains(t));
        let selected = Target::ALL.into_iter().filter(only);
        selected.map(|t| self.rule(t)).collect()
    }
}

/// One burn-rate alert of an SLO: the error ratio over `long` and over
/// `short` both above `factor` times the error budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurnWindow {
    /// The window the burn rate is measured over.
    pub long: Duration,
    /// The window that must agree, so the alert stops soon after the
    /// errors do (1/12 of `long` in the SRE workbook).
    pub short: Duration,
    /// How many times faster than allowed the budget burns.
    pub factor: f64,
    /// `Critical` to page, `Medium` for a ticket.
    pub severity: Severity,
}

/// A burn window from its windows in minutes.
const fn burn(long: u64, short: u64, factor: f64, severity: Severity) -> BurnWindow {
    BurnWindow {
        long: Duration::from_secs(long * 60),
        short: Duration::from_secs(short * 60),
        factor,
        severity,
    }
}

/// The Google SRE workbook's multi-window, multi-burn-rate alerts for a
/// 30-day SLO: 2 % of the budget in 1 h (14.4x, page), 5 % in 6 h (6x,
/// page), 10 % in 1 d (3x, ticket), 10 % in 3 d (1x, ticket).
pub const SRE_WORKBOOK_WINDOWS: [BurnWindow; 4] = [
    burn(60, 5, 14.4, Severity::Critical),
    burn(6 * 60, 30, 6.0, Severity::Critical),
    burn(24 * 60, 2 * 60, 3.0, Severity::Medium),
    burn(72 * 60, 6 * 60, 1.0, Severity::Medium),
];

/// Burn-rate alerts for a success-rate objective, by default on
/// `#[timed]`'s `function_calls_total{result="error"}` /
/// `function_calls_total`.
///
/// Each [`BurnWindow`] becomes one [`Rule`] on the error ratio over the
/// long window with an [`also`](Rule::also) condition on the short one
/// (the workbook's "multiwindow, multi-burn-rate" alert): it fires once
/// the long window has burnt enough budget and resolves soon (about one
/// short window) after the errors stop.
/// [`prometheus_rules`](Self::prometheus_rules) exports the same rules
/// (`(long > x) and on (by) (short > x)`) for Prometheus, which fires and
/// resolves them at the same evaluations.
///
/// ```
/// use vigil_alert::{Matcher, rulesets::SloBurnRate};
///
/// let slo = SloBurnRate::new("checkout", 0.999)
///     .matcher(Matcher::equal("function", "checkout"));
/// let rules = slo.rules()?;
/// assert_eq!(rules.len(), 4);
/// assert_eq!(rules[0].labels["long_window"], "1h");
/// assert_eq!(rules[0].also.as_ref().unwrap().value, 0.0144); // 14.4 * 0.1 %
/// # #[cfg(feature = "prometheus")] {
/// let export = slo.prometheus_rules()?;
/// assert!(export.yaml.contains("[1h])) > 0.0144) and on () (sum(rate("));
/// assert!(export.yaml.contains("[5m])) > 0.0144)"));
/// # }
/// # Ok::<(), vigil_alert::Error>(())
/// ```
///
/// A config file's `rulesets.slos:` entries are read into this type:
/// `name`, `objective` (a number between 0 and 1 or a percentage string
/// such as `"99.9%"`), `matchers`, `by`, `errors` and `total`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use]
pub struct SloBurnRate {
    #[serde(deserialize_with = "slo_name")]
    pub(crate) name: String,
    #[serde(deserialize_with = "objective")]
    objective: f64,
    /// Added to both `errors` and `total`.
    #[serde(default)]
    matchers: Vec<Matcher>,
    #[serde(default, deserialize_with = "crate::labels::label_names")]
    by: Vec<String>,
    #[serde(default = "function_errors")]
    errors: Selector,
    #[serde(default = "function_calls")]
    total: Selector,
    #[serde(skip, default = "budget_burn")]
    alert: String,
    #[serde(skip, default = "sre_workbook_windows")]
    windows: Vec<BurnWindow>,
    #[serde(skip)]
    annotations: Labels,
}

/// `function_calls_total{result="error"}`, the default failed events.
fn function_errors() -> Selector {
    function_calls().matcher(Matcher::equal("result", "error"))
}

/// `function_calls_total`, the default events.
fn function_calls() -> Selector {
    Selector::new(FUNCTION_CALLS)
}

/// The default alert name.
fn budget_burn() -> String {
    "ErrorBudgetBurn".to_owned()
}

/// [`SRE_WORKBOOK_WINDOWS`], the default burn windows.
fn sre_workbook_windows() -> Vec<BurnWindow> {
    SRE_WORKBOOK_WINDOWS.to_vec()
}

/// Serde for an SLO's name: not empty, checked where it is written.
fn slo_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    crate::labels::from_text(d, "a non-empty name", |v| match v.trim() {
        "" => Err("must not be empty".to_owned()),
        _ => Ok(v.to_owned()),
    })
}

/// Serde for a success-rate objective: a number between 0 and 1 (`0.999`)
/// or a percentage string (`"99.9%"`), checked inside the value's own
/// visit so that an error points at the value.
fn objective<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct Objective;
    impl Visitor<'_> for Objective {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number between 0 and 1 (e.g. 0.999) or a percentage (\"99.9%\")")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            let valid = (v > 0.0 && v < 1.0).then_some(v);
            valid.ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
        }
        fn visit_str<E: de::Error>(self, t: &str) -> Result<f64, E> {
            match t.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
                Some(Ok(p)) => self.visit_f64(p / 100.0),
                _ => Err(E::invalid_value(Unexpected::Str(t), &self)),
            }
        }
    }
    d.deserialize_any(Objective)
}

impl SloBurnRate {
    /// The metrics these rules read by default that vigil records:
    /// `function_calls_total` (`#[timed]`). [`errors`](Self::errors) and
    /// [`total`](Self::total) may select other metrics instead.
    pub const VIGIL_METRICS: &'static [&'static str] = &[FUNCTION_CALLS];

    /// The metrics these rules read by default that the host must record:
    /// none.
    pub const HOST_METRICS: &'static [&'static str] = &[];

    /// An SLO named `name` (the `slo` label) with a success-rate
    /// `objective` (e.g. `0.999`), over all calls of all functions, with
    /// the [`SRE_WORKBOOK_WINDOWS`].
    pub fn new(name: impl Into<String>, objective: f64) -> Self {
        SloBurnRate {
            name: name.into(),
            objective,
            matchers: Vec::new(),
            by: Vec::new(),
            errors: function_errors(),
            total: function_calls(),
            alert: budget_burn(),
            windows: sre_workbook_windows(),
            annotations: Labels::new(),
        }
    }

    crate::notify::setters! {
        /// The alert name (default `ErrorBudgetBurn`).
        alert_name(name: impl Into<String>) => alert = name.into();

        /// The failed events (default `function_calls_total{result="error"}`).
        errors(selector: Selector) => errors = selector;

        /// All events (default `function_calls_total`).
        total(selector: Selector) => total = selector;

        /// One alert per group of these labels (default: one for everything).
        by(labels: impl IntoIterator<Item = impl Into<String>>) => extend by(labels.into_iter().map(Into::into));

        /// Replaces the burn windows.
        windows(windows: impl IntoIterator<Item = BurnWindow>) => windows = windows.into_iter().collect();

        /// Adds an annotation to every alert, replacing the default `summary`
        /// if it is named so.
        annotation(name: impl Into<String>, value: impl Into<String>) =>
            extend annotations([(name.into(), value.into())]);

        /// Restricts both the failed and the total events (e.g. to one
        /// function), whatever [`errors`](Self::errors) and
        /// [`total`](Self::total) select.
        matcher(matcher: Matcher) => push matchers(matcher);
    }

    /// The error budget: `1 - objective`.
    pub fn budget(&self) -> f64 {
        1.0 - self.objective
    }

    /// The rule of one burn window.
    fn rule(&self, w: &BurnWindow) -> Result<Rule> {
        // Each selector with the SLO's matchers added; the error ratio over
        // `window` between the two, summed per `by` group.
        let matchers = self.matchers.iter().cloned();
        let restricted = |s: &Selector| matchers.clone().fold(s.clone(), Selector::matcher);
        let ratio = |window| Expr::Ratio {
            numerator: restricted(&self.errors),
            denominator: restricted(&self.total),
            ignoring: Vec::new(),
            window,
        };
        let percent = round_significant(self.objective * 100.0);
        // The error-ratio limit: `factor * budget`, rounded.
        let limit = round_significant(w.factor * self.budget());
        let (name, factor, long) = (&self.name, w.factor, duration(w.long));
        let summary = format!(
            "SLO {name} ({percent}% success) burns its error budget {factor}x too fast: error ratio {{{{ $value }}}} over {long}"
        );
        let rule = Rule::builder(self.alert.clone())
            .expr(ratio(w.long))
            .aggregate(Aggregation::Sum)
            .by(self.by.iter().cloned())
            .threshold(w.severity, Comparison::Greater, limit)
            .also(ratio(w.short), Comparison::Greater, limit)
            .label("slo", self.name.clone())
            .label("long_window", duration(w.long))
            .label("short_window", duration(w.short))
            .annotation("summary", summary);
        let annotations = self.annotations.iter();
        annotations
            .fold(rule, |r, (name, value)| r.annotation(name, value))
            .build()
    }

    /// vigil rules, one per burn window: the error ratio over the long
    /// window above `factor * budget`, with an [`also`](Rule::also)
    /// condition on the short window (see the type docs). Fails with
    /// [`Error::InvalidRule`] for an objective outside 0..1 (field
    /// `objective`), and without windows or for a window whose factor is
    /// not above 0 or whose short window is not shorter than its long one
    /// (field `windows`).
    pub fn rules(&self) -> Result<Vec<Rule>> {
        let (objective, slo) = (self.objective, &self.name);
        let bad_window = |w: &BurnWindow| {
            let (short, long, factor) = (duration(w.short), duration(w.long), w.factor);
            if !(factor > 0.0 && factor.is_finite()) {
                return Some(format!("factor must be above 0, got {factor}"));
            }
            (w.short.is_zero() || w.short >= w.long).then(|| format!(
                "the short window ({short}) must be longer than zero and shorter than the long one ({long})"
            ))
        };
        let (field, reason) = if !(objective > 0.0 && objective < 1.0) {
            let reason =
                format!("must be between 0 and 1 (e.g. 0.999), got {objective} for SLO {slo:?}");
            ("objective", reason)
        } else if let Some(reason) = self.windows.iter().find_map(bad_window) {
            ("windows", reason)
        } else if self.windows.is_empty() {
            ("windows", "needs at least one burn window".to_owned())
        } else {
            return self.windows.iter().map(|w| self.rule(w)).collect();
        };
        let rule = self.alert.clone();
        Err(Error::InvalidRule {
            rule,
            field,
            reason,
        })
    }

    /// A Prometheus rule file (one group, `slo-NAME`) with the same
    /// multi-window alerts as [`rules`](Self::rules): `ratio over long >
    /// limit and on (by) ratio over short > limit`, each with a comment
    /// naming its windows. Needs the `prometheus` feature.
    #[cfg(feature = "prometheus")]
    pub fn prometheus_rules(&self) -> Result<PrometheusExport> {
        let (rules, budget) = (self.rules()?, round_significant(self.budget()));
        let exporter = PrometheusExporter::new().group(format!("slo-{}", self.name));
        Ok(exporter.export_noted(&rules, |i| {
            let w = &self.windows[i];
            let (long, short, budget) = (duration(w.long), duration(w.short), number(budget));
            let (name, factor) = (&self.name, w.factor);
            Some(format!(
                "SLO {name}: error ratio over {long} and over {short} both above {factor}x the error budget ({budget})"
            ))
        }))
    }
}

/// `v` rounded to 12 significant decimal digits, so `14.4 * 0.001` reads
/// `0.0144`.
fn round_significant(v: f64) -> f64 {
    format!("{v:.11e}").parse().unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_limits_are_rounded() {
        let slo = SloBurnRate::new("x", 0.999);
        let rules = slo.rules().unwrap();
        let limits: Vec<_> = rules
            .iter()
            .map(|r| r.thresholds[0].value.fixed())
            .collect();
        assert_eq!(limits, [0.0144, 0.006, 0.003, 0.001].map(Some));
    }

    #[test]
    fn bad_objectives_and_windows_are_errors() {
        assert!(SloBurnRate::new("x", 1.0).rules().is_err());
        assert!(SloBurnRate::new("x", 0.0).rules().is_err());
        let w = BurnWindow {
            long: Duration::from_secs(60),
            short: Duration::from_secs(60),
            factor: 2.0,
            severity: Severity::High,
        };
        assert!(SloBurnRate::new("x", 0.99).windows([w]).rules().is_err());
    }
}
