//! Alert rules: what value to read, when it is bad, and how bad.
//!
//! A [`Rule`] is the counterpart of a Prometheus alerting rule: a name (the
//! `alertname`), an [`Expr`] (a gauge, a counter rate, a ratio of rates, a
//! histogram statistic), thresholds per [`Severity`], `for`,
//! `keep_firing_for`, labels and annotations, plus what Prometheus leaves
//! to Alertmanager or to the expression: a second condition on another
//! expression that the thresholds need too ([`AlsoCondition`], e.g. the
//! short window of a burn-rate alert), an optional recovery threshold
//! (hysteresis), a policy for missing data, dynamic thresholds and
//! escalation. Build one in code with [`Rule::builder`] or load it with
//! serde: its serde form is an entry of a rule file's `rules:`
//! (`docs/alert-rules.md`), and every part denies unknown fields:
//!
//! ```yaml
//! name: HighErrorRate
//! expr:
//!   ratio:
//!     numerator: { metric: function_calls_total, matchers: ['result="error"'] }
//!     denominator: { metric: function_calls_total }
//!     ignoring: [result]
//!     window: 5m
//! aggregate: sum
//! by: [function]
//! thresholds:
//!   warning: "> 0.01"
//!   critical: { op: ">", value: 0.05 }
//! also:                      # and the 1m ratio is above 0.5 % too
//!   expr:
//!     ratio:
//!       numerator: { metric: function_calls_total, matchers: ['result="error"'] }
//!       denominator: { metric: function_calls_total }
//!       ignoring: [result]
//!       window: 1m
//!   condition: "> 0.005"
//! recover: "< 0.005"
//! for: 5m
//! keep_firing_for: 2m
//! no_data: ok
//! labels: { team: payments }
//! annotations: { summary: "{{ $labels.function }} fails {{ $value }} of calls" }
//! escalate: { after: 30m, receiver: pager }
//! ```
//!
//! Values are checked where they are read (names, durations, conditions,
//! severities), so that a parser can give their position; the checks that
//! need several fields are [`Rule::validate`]'s.

mod build;
mod template;
mod types;

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use build::RuleBuilder;
pub(crate) use template::expand_template;
pub use types::{
    Aggregation, AlsoCondition, Comparison, Expr, Limit, NoDataPolicy, Recovery, Selector,
    Threshold,
};
use types::{Condition, metric_name};
pub(crate) use types::{invalid_label, is_valid_metric_name};

use crate::Severity;
use crate::escalation::Escalation;
use crate::labels::{Labels, checked_map, label_name_problem};
use crate::severity::{SeverityLabels, severity_map};

/// An alerting rule. See the [module docs](self) for the config shape and
/// [`Rule::builder`] to build one in code.
///
/// Alerts from a rule carry the labels of their series (or `by` group), the
/// rule's [`labels`](Rule::labels) on top, `alertname` = [`name`](Rule::name)
/// and `severity`. Annotations may use Prometheus' `{{ $value }}` and
/// `{{ $labels.name }}`, and pipe the value through `humanize` or
/// `humanizePercentage` (`{{ $value | humanizePercentage }}`).
///
/// The `severity` label carries the name the rule gives the level
/// ([`severity_labels`](Rule::severity_labels)): a threshold read from
/// config as `thresholds: {warning: ...}` fires with `severity="warning"`,
/// one built with `Severity::Medium` with `severity="medium"` unless
/// [`RuleBuilder::severity_label`] names it. Serialized, a named level is
/// written as its threshold's key (`warning`), and in a
/// `severity_labels: {high: page}` map when no threshold can carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleForm", into = "RuleForm")]
pub struct Rule {
    /// The alert's name (`alertname` label); a Prometheus metric name
    /// (`[a-zA-Z_:][a-zA-Z0-9_:]*`) so the rule exports to Prometheus.
    pub name: String,
    /// The value the rule reads.
    pub expr: Expr,
    /// Per series, or aggregated.
    pub aggregate: Aggregation,
    /// Labels to aggregate by (only with an aggregation).
    pub by: Vec<String>,
    /// One threshold per severity; the highest that holds is the instance's
    /// severity.
    pub thresholds: Vec<Threshold>,
    /// A second condition every threshold needs, on another expression
    /// (e.g. the short window of a burn-rate alert).
    pub also: Option<AlsoCondition>,
    /// Hysteresis: once alerting, stay alerting until this holds.
    pub recover: Option<Recovery>,
    /// How long a threshold must keep holding before the instance fires
    /// (Prometheus' `for`; zero fires on the first evaluation).
    pub for_duration: Duration,
    /// How long a firing instance keeps firing after it recovered
    /// (Prometheus' `keep_firing_for`); it is `Recovering` meanwhile.
    pub keep_firing_for: Duration,
    /// What a missing series means.
    pub no_data: NoDataPolicy,
    /// Extra labels on every alert (override series labels of the same name).
    pub labels: Labels,
    /// Annotations (`summary`, `description`, `runbook_url`, ...).
    pub annotations: Labels,
    /// Escalation of alerts left firing too long.
    pub escalate: Option<Escalation>,
    /// The `severity` label value of each level (by default the level's
    /// name; see [`SeverityLabels`]).
    pub severity_labels: SeverityLabels,
}

/// The serde form of [`Rule`]: thresholds keyed by severity, each key's
/// spelling being the level's `severity` label.
#[derive(Serialize, Deserialize)]
#[serde(expecting = "a rule: a map with name, expr and thresholds")]
#[serde(deny_unknown_fields)]
struct RuleForm {
    #[serde(deserialize_with = "metric_name")]
    name: String,
    expr: Expr,
    #[serde(default, skip_serializing_if = "is_default")]
    aggregate: Aggregation,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    by: Vec<String>,
    #[serde(deserialize_with = "thresholds", serialize_with = "written")]
    thresholds: Vec<(String, Threshold)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    also: Option<AlsoCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recover: Option<Recovery>,
    #[serde(rename = "for", default, with = "crate::time::duration")]
    #[serde(skip_serializing_if = "Duration::is_zero")]
    for_duration: Duration,
    #[serde(default, with = "crate::time::duration")]
    #[serde(skip_serializing_if = "Duration::is_zero")]
    keep_firing_for: Duration,
    #[serde(default, skip_serializing_if = "is_default")]
    no_data: NoDataPolicy,
    #[serde(default, deserialize_with = "rule_labels")]
    #[serde(skip_serializing_if = "Labels::is_empty")]
    labels: Labels,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    annotations: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    escalate: Option<Escalation>,
    #[serde(default, skip_serializing_if = "SeverityLabels::is_empty")]
    severity_labels: SeverityLabels,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Reads `thresholds:`, keys as written.
fn thresholds<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, Threshold)>, D::Error> {
    let what = ("threshold, e.g. {critical: \"> 0.9\"}", "thresholds");
    let read = severity_map::<_, Condition<Limit>>(d, what)?.into_iter();
    let threshold = |(severity, written, Condition(op, value))| {
        (
            written,
            Threshold {
                severity,
                op,
                value,
            },
        )
    };
    Ok(read.map(threshold).collect())
}

/// Writes `thresholds:` keyed as written.
fn written<S: Serializer>(thresholds: &[(String, Threshold)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(thresholds.iter().map(|(written, t)| (written, t)))
}

/// A rule's `labels:`, refusing names the engine sets or that are not
/// label names, under the name.
fn rule_labels<'de, D: Deserializer<'de>>(d: D) -> Result<Labels, D::Error> {
    let expecting = "a map from label name to value".to_owned();
    let read = checked_map(d, expecting, |name, _: &[((), String, String)]| {
        rule_label_problem(name).map_or(Ok(()), Err)
    })?;
    let labels = read.into_iter().map(|((), name, value)| (name, value));
    Ok(labels.collect())
}

/// Why `name` cannot be a label a rule sets, if it cannot.
fn rule_label_problem(name: &str) -> Option<String> {
    match name {
        "alertname" | "severity" => Some(format!(
            "`{name}` is set by the engine (from the rule's name and thresholds) and cannot be a rule label"
        )),
        _ => label_name_problem(name),
    }
}

/// `$to { .. }` with the fields a rule and its serde form share moved from
/// `$from`, and the others given.
macro_rules! same_fields {
    ($to:ident, $from:ident, $($other:tt)*) => {
        $to {
            name: $from.name, expr: $from.expr, aggregate: $from.aggregate, by: $from.by,
            also: $from.also, recover: $from.recover, for_duration: $from.for_duration,
            keep_firing_for: $from.keep_firing_for, no_data: $from.no_data, labels: $from.labels,
            annotations: $from.annotations, escalate: $from.escalate, $($other)*
        }
    };
}

impl TryFrom<RuleForm> for Rule {
    type Error = String;

    fn try_from(r: RuleForm) -> Result<Self, String> {
        let mut severity_labels = r.severity_labels;
        let mut thresholds = r.thresholds;
        // Lowest severity first, whatever order the map had (TOML tables
        // come sorted by key).
        thresholds.sort_by_key(|(_, t)| t.severity);
        for (written, t) in thresholds.iter().filter(|(w, t)| w != t.severity.as_str()) {
            let level = t.severity;
            match severity_labels.named(level) {
                Some(named) if named != written => {
                    return Err(format!(
                        "severity `{level}` is written `{written}` in `thresholds` but named `{named}` in `severity_labels`"
                    ));
                }
                _ => severity_labels.set(level, written.as_str()),
            }
        }
        let thresholds = thresholds.into_iter().map(|(_, t)| t).collect();
        Ok(same_fields!(Rule, r, thresholds, severity_labels))
    }
}

impl From<Rule> for RuleForm {
    fn from(rule: Rule) -> Self {
        // A name that reads back as its level is written as the threshold's
        // key; the others (or those of levels without a threshold) in the map.
        let mut rest = rule.severity_labels.clone();
        let thresholds = rule.thresholds.into_iter().map(|t| {
            let written = match rule.severity_labels.named(t.severity) {
                Some(name) if name.parse::<Severity>().ok() == Some(t.severity) => {
                    rest.set(t.severity, t.severity.as_str());
                    name.to_owned()
                }
                _ => t.severity.as_str().to_owned(),
            };
            (written, t)
        });
        let thresholds = thresholds.collect();
        same_fields!(RuleForm, rule, thresholds, severity_labels: rest)
    }
}

impl Rule {
    /// Starts building a rule named `name` (the `alertname`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_alert::{Comparison, Matcher, Rule, Severity};
    ///
    /// let rule = Rule::builder("HighLatency")
    ///     .histogram_quantile("http_request_duration_seconds", 0.95, Duration::from_secs(300))
    ///     .matcher(Matcher::regex("route", "/api/.*")?)
    ///     .per_series()
    ///     .threshold(Severity::High, Comparison::Greater, 0.2)
    ///     .threshold(Severity::Critical, Comparison::Greater, 1.0)
    ///     .recover_below(0.15)
    ///     .for_duration(Duration::from_secs(120))
    ///     .keep_firing_for(Duration::from_secs(60))
    ///     .label("team", "web")
    ///     .annotation("summary", "p95 latency of {{ $labels.route }} is {{ $value }}s")
    ///     .escalate_after(Duration::from_secs(1800))
    ///     .build()?;
    /// assert_eq!(rule.max_severity(), Severity::Critical);
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> RuleBuilder {
        RuleBuilder::new(Rule {
            name: name.into(),
            expr: Expr::Gauge {
                metric: String::new(),
                matchers: Vec::new(),
            },
            aggregate: Aggregation::PerSeries,
            by: Vec::new(),
            thresholds: Vec::new(),
            also: None,
            recover: None,
            for_duration: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            no_data: NoDataPolicy::default(),
            labels: Labels::new(),
            annotations: Labels::new(),
            escalate: None,
            severity_labels: SeverityLabels::new(),
        })
    }

    /// The `severity` label value alerts of this rule carry at `severity`:
    /// the name the rule gives the level, else its own name.
    ///
    /// ```
    /// use vigil_alert::{Rule, Severity};
    ///
    /// let rule: Rule = serde_json::from_str(
    ///     r#"{"name": "Slow", "expr": {"gauge": {"metric": "queue_depth"}},
    ///         "thresholds": {"warning": "> 10", "critical": "> 100"}}"#,
    /// )?;
    /// assert_eq!(rule.thresholds[0].severity, Severity::Medium);
    /// assert_eq!(rule.severity_label(Severity::Medium), "warning");
    /// assert_eq!(rule.severity_label(Severity::Critical), "critical");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn severity_label(&self, severity: Severity) -> &str {
        self.severity_labels.label(severity)
    }

    /// The highest severity among the thresholds (`Low` if there are none).
    pub fn max_severity(&self) -> Severity {
        let levels = self.thresholds.iter().map(|t| t.severity);
        levels.max().unwrap_or(Severity::Low)
    }

    /// Whether any threshold is dynamic.
    pub fn has_baseline(&self) -> bool {
        let baseline = |t: &Threshold| matches!(t.value, Limit::Baseline(_));
        self.thresholds.iter().any(baseline)
    }
}
