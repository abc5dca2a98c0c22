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
//! escalation. Build one in code with [`Rule::builder`] or load it with serde
//! (every config type here denies unknown fields):
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
//!   - { severity: warning, op: ">", value: 0.01 }
//!   - { severity: critical, op: ">", value: 0.05 }
//! also:                      # and the 1m ratio is above 0.5 % too
//!   expr:
//!     ratio:
//!       numerator: { metric: function_calls_total, matchers: ['result="error"'] }
//!       denominator: { metric: function_calls_total }
//!       ignoring: [result]
//!       window: 1m
//!   op: ">"
//!   value: 0.005
//! recover: { op: "<", value: 0.005 }
//! for: 5m
//! keep_firing_for: 2m
//! no_data: ok
//! labels: { team: payments }
//! annotations: { summary: "{{ $labels.function }} fails {{ $value }} of calls" }
//! escalate: { after: 30m, receiver: pager }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::baseline::{Baseline, BaselineMethod};
use crate::escalation::Escalation;
use crate::labels::{Labels, Matcher, is_valid_label_name};
use crate::severity::SeverityLabels;
use crate::source::HistogramStat;
use crate::{Error, Result, Severity};

/// How a value is compared with a threshold: `>`, `>=`, `<`, `<=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
}

impl Comparison {
    /// Whether `value OP limit` holds (never for `NaN`).
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Greater => value > limit,
            Comparison::GreaterOrEqual => value >= limit,
            Comparison::Less => value < limit,
            Comparison::LessOrEqual => value <= limit,
        }
    }

    /// The operator as written: `>`, `>=`, `<`, `<=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
        }
    }

    /// Whether the comparison alerts on high values (`>` or `>=`).
    pub const fn is_upper(self) -> bool {
        matches!(self, Comparison::Greater | Comparison::GreaterOrEqual)
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Comparison {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            ">" => Comparison::Greater,
            ">=" => Comparison::GreaterOrEqual,
            "<" => Comparison::Less,
            "<=" => Comparison::LessOrEqual,
            _ => {
                return Err(Error::Parse {
                    what: "comparison",
                    value: s.to_owned(),
                    expected: "one of >, >=, <, <=",
                });
            }
        })
    }
}

impl Serialize for Comparison {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Comparison {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// The other side of a threshold's comparison: a fixed number or a
/// [`Baseline`] computed from the rule's own history.
///
/// Serialized as a bare number (`0.2`) or as the baseline's map
/// (`{stddevs: 3, window: 1h}`).
#[derive(Clone, Debug, PartialEq)]
pub enum Limit {
    /// A fixed value.
    Fixed(f64),
    /// A dynamic value from the trailing window of the rule's value.
    Baseline(Baseline),
}

impl From<f64> for Limit {
    fn from(value: f64) -> Self {
        Limit::Fixed(value)
    }
}

impl From<Baseline> for Limit {
    fn from(baseline: Baseline) -> Self {
        Limit::Baseline(baseline)
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Fixed(v) => serializer.serialize_f64(*v),
            Limit::Baseline(b) => b.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl<'de> Visitor<'de> for LimitVisitor {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a baseline map ({stddevs|quantile, window, min_samples})")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Limit, E> {
                Ok(Limit::Fixed(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Limit, E> {
                Ok(Limit::Fixed(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Limit, E> {
                Ok(Limit::Fixed(v as f64))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Limit, A::Error> {
                Baseline::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Limit::Baseline)
            }
        }
        deserializer.deserialize_any(LimitVisitor)
    }
}

/// One severity's condition: `value OP limit` makes an instance at least
/// this severe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The severity the instance gets when this threshold holds (and no
    /// higher one does).
    pub severity: Severity,
    /// How the value is compared with the limit.
    pub op: Comparison,
    /// The limit, fixed or dynamic.
    pub value: Limit,
}

/// The hysteresis condition: once alerting, an instance stays alerting until
/// `value OP limit` holds (e.g. fire above 80, resolve only below 70).
///
/// Without one, an instance recovers as soon as no threshold holds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// How the value is compared with the limit.
    pub op: Comparison,
    /// The recovery limit.
    pub value: f64,
}

/// A second condition a rule's thresholds need: a threshold holds only
/// while its own condition holds **and** `expr OP value` holds for the same
/// series (or `by` group).
///
/// `expr` is read like the rule's own expression (same `aggregate` and
/// `by`, and the builder's [`matcher`](RuleBuilder::matcher)s apply to it
/// too) and paired with it by the instance's labels: the series of a
/// per-series rule, the key (labels minus `ignoring`) of a per-series
/// ratio, the `by` labels of an aggregated rule. A missing or still
/// warming-up value (no such series, a zero denominator, a rate with one
/// sample) means the condition does not hold.
///
/// This is what multi-window burn-rate alerts need (the Google SRE
/// workbook's "error ratio over 1h above 14.4x the budget **and** over 5m
/// above 14.4x the budget"): the long window decides when to fire, the
/// short one lets the alert resolve soon after the errors stop. It exports
/// to Prometheus as `(<rule value> OP limit) and on (by) (<expr> OP value)`.
///
/// The rule's `{{ $value }}`, recovery threshold (`recover`) and dynamic
/// baselines look at the rule's own expression only.
///
/// Config: `also: {expr: {ratio: {...}}, op: ">", value: 0.0144}`, or
/// `also: {expr: {...}, condition: "> 0.0144"}` in rule files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlsoCondition {
    /// The second value to read.
    pub expr: Expr,
    /// How it is compared with `value`.
    pub op: Comparison,
    /// The fixed limit.
    pub value: f64,
}

impl AlsoCondition {
    /// `expr OP value`.
    pub fn new(expr: Expr, op: Comparison, value: f64) -> Self {
        AlsoCondition { expr, op, value }
    }

    /// Whether the condition holds for `value` (never for a missing one).
    pub fn holds(&self, value: Option<f64>) -> bool {
        value.is_some_and(|v| self.op.holds(v, self.value))
    }
}

/// What an instance does when its series is absent (no matching series, a
/// `NaN`, or a zero denominator).
///
/// Config: `no_data: ok | alerting | keep_state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// Missing data is healthy (Prometheus' behaviour): a pending instance
    /// stops pending, a firing one recovers (after `keep_firing_for`), and
    /// the instance rests in [`State::NoData`](crate::State::NoData).
    #[default]
    Ok,
    /// Missing data is alarming (Prometheus' `absent()`): the instance
    /// enters [`State::NoData`](crate::State::NoData), which fires after
    /// `for` at the rule's highest threshold severity; a firing instance
    /// keeps firing. Per-series rules remember every series they have seen
    /// so that a vanished one can be noticed.
    Alerting,
    /// Missing data changes nothing: state, severity and timers stay as
    /// they were until a value returns.
    #[serde(alias = "keep_last")]
    KeepState,
}

/// How a rule turns the matching series into alert instances.
///
/// Config: `aggregate: per_series | sum | max | min | avg`, with optional
/// `by: [label, ...]` to aggregate per group of those labels (like PromQL's
/// `sum by (label)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// One alert instance per series (label set), like Prometheus.
    #[default]
    PerSeries,
    /// One instance per `by` group (one in all without `by`): the sum.
    Sum,
    /// ... the largest value.
    Max,
    /// ... the smallest value.
    Min,
    /// ... the mean value.
    Avg,
}

/// A metric name plus label matchers: PromQL's `metric{label="value"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The metric (series) name.
    pub metric: String,
    /// Conditions on the series' labels, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// All series of `metric`.
    pub fn new(metric: impl Into<String>) -> Self {
        Selector {
            metric: metric.into(),
            matchers: Vec::new(),
        }
    }

    /// Adds a label matcher.
    #[must_use]
    pub fn matcher(mut self, matcher: Matcher) -> Self {
        self.matchers.push(matcher);
        self
    }
}

/// The value a rule reads on each evaluation (per series before
/// aggregation). Mirrors the PromQL a Prometheus rule would use.
///
/// Config is externally tagged:
/// `expr: {gauge: {metric: queue_depth}}`,
/// `expr: {rate: {metric: http_requests_total, window: 5m}}`,
/// `expr: {ratio: {numerator: {...}, denominator: {...}, ignoring: [result], window: 5m}}`,
/// `expr: {histogram: {metric: http_request_duration_seconds, stat: p95, window: 5m}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ExprRepr", into = "ExprRepr")]
pub enum Expr {
    /// A gauge's current value: `metric{...}`.
    Gauge {
        /// The gauge's name.
        metric: String,
        /// Label matchers.
        matchers: Vec<Matcher>,
    },
    /// A counter's per-second rate over a window: `rate(metric{...}[window])`.
    ///
    /// The engine samples the running total on every evaluation; the rate is
    /// the increase across the samples inside the window (a decrease counts
    /// as a reset, as in Prometheus) divided by the time they span. A series
    /// needs two samples before it has a rate (no extrapolation).
    Rate {
        /// The counter's name.
        metric: String,
        /// Label matchers.
        matchers: Vec<Matcher>,
        /// How far back the rate looks.
        window: Duration,
    },
    /// The ratio of two counters' rates, e.g. an error rate:
    /// `rate(calls{result="error"}[5m]) / ignoring(result) rate(calls[5m])`.
    ///
    /// Series are paired by their labels minus `ignoring`; rates that share
    /// a key are summed on each side first (so it is really
    /// `sum without(ignoring) (num) / sum without(ignoring) (den)`). A key
    /// with a denominator but no numerator series has ratio 0 (no errors
    /// recorded yet); a zero denominator is no data. With
    /// [`Aggregation::Sum`] the rule divides the summed numerator by the
    /// summed denominator per `by` group (the overall error rate); `max`,
    /// `min` and `avg` aggregate the per-key ratios.
    Ratio {
        /// The part (e.g. failed calls).
        numerator: Selector,
        /// The whole (e.g. all calls).
        denominator: Selector,
        /// Labels to drop before pairing numerator and denominator series.
        ignoring: Vec<String>,
        /// How far back both rates look.
        window: Duration,
    },
    /// A statistic of a histogram over a trailing window, read from the
    /// [`Source`](crate::Source): e.g. the p95 of
    /// `http_request_duration_seconds` over 5 minutes. Aggregating across
    /// series takes the max / min / avg / sum of the per-series statistics
    /// (not the statistic of the merged data).
    Histogram {
        /// The histogram's name.
        metric: String,
        /// Label matchers.
        matchers: Vec<Matcher>,
        /// Which statistic (`p95`, `mean`, `max`, `count`).
        stat: HistogramStat,
        /// The trailing window.
        window: Duration,
    },
}

/// The serde shape of [`Expr`]: a map with exactly one of the keys, so that
/// YAML, TOML and JSON all read `expr: {rate: {...}}` (serde_yaml's default
/// for enums would be a `!rate` tag).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gauge: Option<SelectorRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate: Option<RateRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ratio: Option<RatioRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    histogram: Option<HistogramRepr>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorRepr {
    metric: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<Matcher>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateRepr {
    metric: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<Matcher>,
    #[serde(with = "humantime_serde")]
    window: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RatioRepr {
    numerator: Selector,
    denominator: Selector,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ignoring: Vec<String>,
    #[serde(with = "humantime_serde")]
    window: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistogramRepr {
    metric: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<Matcher>,
    stat: HistogramStat,
    #[serde(with = "humantime_serde")]
    window: Duration,
}

impl TryFrom<ExprRepr> for Expr {
    type Error = &'static str;

    fn try_from(repr: ExprRepr) -> Result<Self, Self::Error> {
        match repr {
            ExprRepr {
                gauge: Some(g),
                rate: None,
                ratio: None,
                histogram: None,
            } => Ok(Expr::Gauge {
                metric: g.metric,
                matchers: g.matchers,
            }),
            ExprRepr {
                gauge: None,
                rate: Some(r),
                ratio: None,
                histogram: None,
            } => Ok(Expr::Rate {
                metric: r.metric,
                matchers: r.matchers,
                window: r.window,
            }),
            ExprRepr {
                gauge: None,
                rate: None,
                ratio: Some(r),
                histogram: None,
            } => Ok(Expr::Ratio {
                numerator: r.numerator,
                denominator: r.denominator,
                ignoring: r.ignoring,
                window: r.window,
            }),
            ExprRepr {
                gauge: None,
                rate: None,
                ratio: None,
                histogram: Some(h),
            } => Ok(Expr::Histogram {
                metric: h.metric,
                matchers: h.matchers,
                stat: h.stat,
                window: h.window,
            }),
            _ => Err("`expr` needs exactly one of `gauge`, `rate`, `ratio`, `histogram`"),
        }
    }
}

impl From<Expr> for ExprRepr {
    fn from(expr: Expr) -> Self {
        let mut repr = ExprRepr {
            gauge: None,
            rate: None,
            ratio: None,
            histogram: None,
        };
        match expr {
            Expr::Gauge { metric, matchers } => {
                repr.gauge = Some(SelectorRepr { metric, matchers });
            }
            Expr::Rate {
                metric,
                matchers,
                window,
            } => {
                repr.rate = Some(RateRepr {
                    metric,
                    matchers,
                    window,
                });
            }
            Expr::Ratio {
                numerator,
                denominator,
                ignoring,
                window,
            } => {
                repr.ratio = Some(RatioRepr {
                    numerator,
                    denominator,
                    ignoring,
                    window,
                });
            }
            Expr::Histogram {
                metric,
                matchers,
                stat,
                window,
            } => {
                repr.histogram = Some(HistogramRepr {
                    metric,
                    matchers,
                    stat,
                    window,
                });
            }
        }
        repr
    }
}

impl Expr {
    /// The label matchers of every selector in the expression, mutably.
    fn matchers_mut(&mut self) -> impl Iterator<Item = &mut Vec<Matcher>> {
        let (first, second) = match self {
            Expr::Gauge { matchers, .. }
            | Expr::Rate { matchers, .. }
            | Expr::Histogram { matchers, .. } => (matchers, None),
            Expr::Ratio {
                numerator,
                denominator,
                ..
            } => (&mut numerator.matchers, Some(&mut denominator.matchers)),
        };
        std::iter::once(first).chain(second)
    }

    /// The metric names the expression reads.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        let (first, second) = match self {
            Expr::Gauge { metric, .. }
            | Expr::Rate { metric, .. }
            | Expr::Histogram { metric, .. } => (metric.as_str(), None),
            Expr::Ratio {
                numerator,
                denominator,
                ..
            } => (numerator.metric.as_str(), Some(denominator.metric.as_str())),
        };
        std::iter::once(first).chain(second)
    }

    /// What is wrong with the expression, if anything: the field
    /// (`expr`, or `ignoring` for a ratio's label names) and why.
    fn problem(&self) -> Option<(&'static str, String)> {
        if let Some(metric) = self.metrics().find(|m| !is_valid_metric_name(m)) {
            return Some(("expr", format!("{metric:?} is not a valid metric name")));
        }
        if self.window().is_some_and(|w| w.is_zero()) {
            return Some(("expr", "window must be longer than zero".into()));
        }
        if let Some(problem) = self.window().and_then(crate::time::too_long) {
            return Some(("expr", format!("window {problem}")));
        }
        match self {
            Expr::Histogram {
                stat: HistogramStat::Quantile(q),
                ..
            } if !(0.0..=1.0).contains(q) => {
                Some(("expr", format!("quantile must be within 0..=1, got {q}")))
            }
            Expr::Ratio { ignoring, .. } => ignoring
                .iter()
                .find(|n| !is_valid_label_name(n))
                .map(|name| ("ignoring", format!("{name:?} is not a valid label name"))),
            _ => None,
        }
    }

    /// What the expression reads if its value is never negative (a rate,
    /// a ratio of rates, a histogram count), for messages.
    fn never_negative(&self) -> Option<&'static str> {
        match self {
            Expr::Rate { .. } => Some("a rate"),
            Expr::Ratio { .. } => Some("a ratio of rates"),
            Expr::Histogram {
                stat: HistogramStat::Count,
                ..
            } => Some("a histogram count"),
            _ => None,
        }
    }

    /// Why `value OP limit` can never hold for this expression, if it
    /// cannot (`< 0` on a value that is never negative).
    fn unreachable(&self, op: Comparison, limit: f64) -> Option<String> {
        let what = self.never_negative()?;
        let never = match op {
            Comparison::Less => limit <= 0.0,
            Comparison::LessOrEqual => limit < 0.0,
            Comparison::Greater | Comparison::GreaterOrEqual => false,
        };
        never.then(|| format!("`{op} {limit}` can never hold: {what} is never negative"))
    }

    /// The window of a rate, ratio or histogram expression.
    pub fn window(&self) -> Option<Duration> {
        match self {
            Expr::Gauge { .. } => None,
            Expr::Rate { window, .. }
            | Expr::Ratio { window, .. }
            | Expr::Histogram { window, .. } => Some(*window),
        }
    }
}

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
/// config as `severity: warning` fires with `severity="warning"`, one built
/// with `Severity::Medium` with `severity="medium"` unless
/// [`RuleBuilder::severity_label`] names it. Serialized, a named level is
/// written as its thresholds' `severity` (`warning`), and in a
/// `severity_labels: {high: page}` map when no threshold can carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleRepr", into = "RuleRepr")]
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

/// The serde shape of [`Rule`]: thresholds keep the severity name they were
/// written with, which becomes the level's `severity` label.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRepr {
    name: String,
    expr: Expr,
    #[serde(default, skip_serializing_if = "is_default")]
    aggregate: Aggregation,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    by: Vec<String>,
    thresholds: Vec<ThresholdRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    also: Option<AlsoCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recover: Option<Recovery>,
    #[serde(
        rename = "for",
        default,
        with = "humantime_serde",
        skip_serializing_if = "Duration::is_zero"
    )]
    for_duration: Duration,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Duration::is_zero"
    )]
    keep_firing_for: Duration,
    #[serde(default, skip_serializing_if = "is_default")]
    no_data: NoDataPolicy,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    labels: Labels,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    annotations: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    escalate: Option<Escalation>,
    #[serde(default, skip_serializing_if = "SeverityLabels::is_empty")]
    severity_labels: SeverityLabels,
}

/// A [`Threshold`] as written, with its severity's spelling.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdRepr {
    severity: SpelledSeverity,
    op: Comparison,
    value: Limit,
}

/// A severity and the text it was written as (trimmed, case kept).
struct SpelledSeverity {
    level: Severity,
    written: String,
}

impl Serialize for SpelledSeverity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for SpelledSeverity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let level = text.parse().map_err(de::Error::custom)?;
        Ok(SpelledSeverity {
            level,
            written: text.trim().to_owned(),
        })
    }
}

impl TryFrom<RuleRepr> for Rule {
    type Error = String;

    fn try_from(r: RuleRepr) -> Result<Self, String> {
        let mut severity_labels = r.severity_labels;
        let mut thresholds = Vec::with_capacity(r.thresholds.len());
        for t in r.thresholds {
            let SpelledSeverity { level, written } = t.severity;
            if written != level.as_str() {
                match severity_labels.named(level) {
                    Some(named) if named != written => {
                        return Err(format!(
                            "rule {:?}: severity `{level}` is written `{written}` in `thresholds` but named `{named}` in `severity_labels`",
                            r.name
                        ));
                    }
                    _ => severity_labels.set(level, written),
                }
            }
            thresholds.push(Threshold {
                severity: level,
                op: t.op,
                value: t.value,
            });
        }
        Ok(Rule {
            name: r.name,
            expr: r.expr,
            aggregate: r.aggregate,
            by: r.by,
            thresholds,
            also: r.also,
            recover: r.recover,
            for_duration: r.for_duration,
            keep_firing_for: r.keep_firing_for,
            no_data: r.no_data,
            labels: r.labels,
            annotations: r.annotations,
            escalate: r.escalate,
            severity_labels,
        })
    }
}

impl From<Rule> for RuleRepr {
    fn from(rule: Rule) -> Self {
        // A name that reads back as its level is written on the thresholds;
        // the others (or those of levels without a threshold) in the map.
        let mut rest = rule.severity_labels.clone();
        let thresholds = rule
            .thresholds
            .into_iter()
            .map(|t| {
                let written = match rule.severity_labels.named(t.severity) {
                    Some(name) if name.parse::<Severity>().ok() == Some(t.severity) => {
                        rest.set(t.severity, t.severity.as_str());
                        name.to_owned()
                    }
                    _ => t.severity.as_str().to_owned(),
                };
                ThresholdRepr {
                    severity: SpelledSeverity {
                        level: t.severity,
                        written,
                    },
                    op: t.op,
                    value: t.value,
                }
            })
            .collect();
        RuleRepr {
            name: rule.name,
            expr: rule.expr,
            aggregate: rule.aggregate,
            by: rule.by,
            thresholds,
            also: rule.also,
            recover: rule.recover,
            for_duration: rule.for_duration,
            keep_firing_for: rule.keep_firing_for,
            no_data: rule.no_data,
            labels: rule.labels,
            annotations: rule.annotations,
            escalate: rule.escalate,
            severity_labels: rest,
        }
    }
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Whether `name` is a valid Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
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
        RuleBuilder {
            name: name.into(),
            expr: None,
            aggregate: Aggregation::PerSeries,
            by: Vec::new(),
            matchers: Vec::new(),
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
        }
    }

    /// The `severity` label value alerts of this rule carry at `severity`:
    /// the name the rule gives the level, else its own name.
    ///
    /// ```
    /// use vigil_alert::config::AlertConfig;
    /// use vigil_alert::Severity;
    ///
    /// let config = AlertConfig::from_yaml_str(
    ///     "rules:\n  - name: Slow\n    expr: { gauge: { metric: queue_depth } }\n    thresholds: { warning: '> 10', critical: '> 100' }\n",
    ///     "rules.yml",
    /// )?;
    /// let rule = &config.rules()[0];
    /// assert_eq!(rule.thresholds[0].severity, Severity::Medium);
    /// assert_eq!(rule.severity_label(Severity::Medium), "warning");
    /// assert_eq!(rule.severity_label(Severity::Critical), "critical");
    /// # Ok::<(), vigil_alert::ConfigError>(())
    /// ```
    pub fn severity_label(&self, severity: Severity) -> &str {
        self.severity_labels.label(severity)
    }

    /// The highest severity among the thresholds (`Low` if there are none).
    pub fn max_severity(&self) -> Severity {
        self.thresholds
            .iter()
            .map(|t| t.severity)
            .max()
            .unwrap_or(Severity::Low)
    }

    /// Whether any threshold is dynamic.
    pub fn has_baseline(&self) -> bool {
        self.thresholds
            .iter()
            .any(|t| matches!(t.value, Limit::Baseline(_)))
    }

    /// Checks everything the engine relies on; the builder and the engine
    /// call it, so a rule loaded with serde is checked when added.
    ///
    /// Besides names, expressions and labels it refuses what cannot mean
    /// what was written:
    /// - thresholds that point different ways (one `>`, another `<`);
    /// - a more severe level whose limit is not further from normal than a
    ///   less severe one's (`critical: > 0.5` with `warning: > 0.9`, or equal
    ///   limits; for `<` rules the mirror), which would hide the lesser
    ///   level; the same for two baselines of one kind over the same window
    ///   (more `stddevs`, a further `quantile`);
    /// - a recovery threshold that points the same way as the thresholds,
    ///   or is not strictly on the healthy side of every fixed threshold
    ///   (`recover: < 95` with `warning: > 90`);
    /// - a threshold, `also` or recovery condition that can never hold
    ///   (`< 0` on a rate, a ratio of rates or a histogram count, which are
    ///   never negative);
    /// - a baseline with negative `stddevs` or a `min_samples` above
    ///   [`MAX_SAMPLES`](crate::baseline::MAX_SAMPLES);
    /// - any duration (`for`, `keep_firing_for`, windows, baseline windows,
    ///   `escalate.after`) longer than [`MAX_DURATION`](crate::MAX_DURATION).
    ///
    /// ```
    /// use vigil_alert::{Comparison, Rule, Severity};
    ///
    /// let err = Rule::builder("DiskFull")
    ///     .gauge("disk_usage_ratio")
    ///     .threshold(Severity::Medium, Comparison::Greater, 0.9)
    ///     .threshold(Severity::Critical, Comparison::Greater, 0.5)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid rule `DiskFull`: `thresholds` critical `> 0.5` is not above medium `> 0.9`: \
    ///      a more severe level needs a limit further from normal, or the less severe one could never be reported"
    /// );
    /// ```
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Error::InvalidRule {
            rule: self.name.clone(),
            field,
            reason,
        };
        if !is_valid_metric_name(&self.name) {
            return Err(bad(
                "name",
                format!(
                    "{:?} is not a valid alert name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                    self.name
                ),
            ));
        }
        if let Some((field, reason)) = self.expr.problem() {
            return Err(bad(field, reason));
        }
        if let Some(also) = &self.also {
            if let Some((_, reason)) = also.expr.problem() {
                return Err(bad("also", reason));
            }
            if also.value.is_nan() {
                return Err(bad("also", "limit is NaN".into()));
            }
        }
        if !self.by.is_empty() && self.aggregate == Aggregation::PerSeries {
            return Err(bad(
                "by",
                "needs an aggregation (sum, max, min or avg); per_series already keeps every label"
                    .into(),
            ));
        }
        if let Some(name) = self.by.iter().find(|n| !is_valid_label_name(n)) {
            return Err(bad("by", format!("{name:?} is not a valid label name")));
        }
        if self.thresholds.is_empty() {
            return Err(bad("thresholds", "needs at least one threshold".into()));
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            if self.thresholds[..i]
                .iter()
                .any(|u| u.severity == t.severity)
            {
                return Err(bad(
                    "thresholds",
                    format!("severity {} appears twice", t.severity),
                ));
            }
            match &t.value {
                Limit::Fixed(v) if v.is_nan() => {
                    return Err(bad("thresholds", format!("{} limit is NaN", t.severity)));
                }
                Limit::Baseline(b) => {
                    if let Some(problem) = b.problem() {
                        return Err(bad("thresholds", format!("{}: {problem}", t.severity)));
                    }
                }
                Limit::Fixed(_) => {}
            }
        }
        if self.recover.is_some_and(|r| r.value.is_nan()) {
            return Err(bad("recover", "limit is NaN".into()));
        }
        if let Some((field, reason)) = self.threshold_conflict() {
            return Err(bad(field, reason));
        }
        for (field, d) in [
            ("for", self.for_duration),
            ("keep_firing_for", self.keep_firing_for),
        ] {
            if let Some(problem) = crate::time::too_long(d) {
                return Err(bad(field, problem));
            }
        }
        for name in self.labels.keys() {
            if !is_valid_label_name(name) {
                return Err(bad("labels", format!("{name:?} is not a valid label name")));
            }
            if name == "alertname" || name == "severity" {
                return Err(bad(
                    "labels",
                    format!("`{name}` is set by the engine and cannot be a rule label"),
                ));
            }
        }
        if let Some(name) = self.annotations.keys().find(|n| !is_valid_label_name(n)) {
            return Err(bad(
                "annotations",
                format!("{name:?} is not a valid annotation name"),
            ));
        }
        if let Some(problem) = self.severity_labels.problem() {
            return Err(bad("severity_labels", problem));
        }
        if let Some(e) = &self.escalate {
            if e.after.is_zero() {
                return Err(bad("escalate", "`after` must be longer than zero".into()));
            }
            if let Some(problem) = crate::time::too_long(e.after) {
                return Err(bad("escalate", format!("`after` {problem}")));
            }
            if e.receiver.as_deref().is_some_and(str::is_empty) {
                return Err(bad("escalate", "`receiver` must not be empty".into()));
            }
        }
        Ok(())
    }
}

impl Rule {
    /// Checks that the rule's windows can work when the engine is
    /// evaluated every `interval` (see
    /// [`EngineBuilder::evaluation_interval`](crate::EngineBuilder::evaluation_interval)):
    /// a `rate` or `ratio` window (also in [`also`](Rule::also)) of at
    /// least one interval, and baseline windows of at least `min_samples`
    /// intervals.
    pub fn check_interval(&self, interval: Duration) -> Result<()> {
        let bad = |field: &'static str, reason: String| Error::InvalidRule {
            rule: self.name.clone(),
            field,
            reason,
        };
        let show = humantime::format_duration;
        let exprs = std::iter::once(("expr", &self.expr))
            .chain(self.also.as_ref().map(|a| ("also", &a.expr)));
        for (field, expr) in exprs {
            let counted = matches!(expr, Expr::Rate { .. } | Expr::Ratio { .. });
            match expr.window() {
                Some(window) if counted && window < interval => {
                    return Err(bad(
                        field,
                        format!(
                            "window {} is shorter than the evaluation interval {}, so it never holds the two samples a rate needs",
                            show(window),
                            show(interval)
                        ),
                    ));
                }
                _ => {}
            }
        }
        for t in &self.thresholds {
            let Limit::Baseline(b) = &t.value else {
                continue;
            };
            let held = b.window.as_nanos() / interval.as_nanos().max(1);
            if held < b.min_samples as u128 {
                return Err(bad(
                    "thresholds",
                    format!(
                        "{}: baseline window {} holds at most {held} earlier values at the evaluation interval {}, fewer than min_samples {}, so the threshold never holds",
                        self.severity_label(t.severity),
                        show(b.window),
                        show(interval),
                        b.min_samples
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Thresholds (and the recovery threshold) that contradict each other:
    /// the field and why. See [`Rule::validate`].
    fn threshold_conflict(&self) -> Option<(&'static str, String)> {
        let name = |t: &Threshold| self.severity_label(t.severity).to_owned();
        for t in &self.thresholds {
            if let Limit::Fixed(v) = t.value
                && let Some(why) = self.expr.unreachable(t.op, v)
            {
                return Some(("thresholds", format!("{} {why}", name(t))));
            }
        }
        if let Some(why) = self
            .also
            .as_ref()
            .and_then(|a| a.expr.unreachable(a.op, a.value))
        {
            return Some(("also", why));
        }
        if let Some(why) = self
            .recover
            .and_then(|r| self.expr.unreachable(r.op, r.value))
        {
            return Some((
                "recover",
                format!("{why}, so an alerting instance would never resolve"),
            ));
        }
        let mut by_level: Vec<&Threshold> = self.thresholds.iter().collect();
        by_level.sort_by_key(|t| t.severity);
        let first = by_level.first()?;
        let upper = first.op.is_upper();
        if let Some(other) = by_level.iter().find(|t| t.op.is_upper() != upper) {
            return Some((
                "thresholds",
                format!(
                    "{} is `{}` but {} is `{}`: the thresholds of a rule must all alert on high values (> or >=) or all on low values (< or <=); write one rule per direction",
                    name(first),
                    Shown(first),
                    name(other),
                    Shown(other)
                ),
            ));
        }
        let side = if upper { "above" } else { "below" };
        for (i, high) in by_level.iter().enumerate() {
            for low in &by_level[..i] {
                let out_of_order = match (&low.value, &high.value) {
                    (Limit::Fixed(l), Limit::Fixed(h)) => {
                        if upper {
                            h <= l
                        } else {
                            h >= l
                        }
                    }
                    (Limit::Baseline(l), Limit::Baseline(h)) if l.window == h.window => {
                        match (l.method, h.method) {
                            (BaselineMethod::Stddev(l), BaselineMethod::Stddev(h)) => h <= l,
                            (BaselineMethod::Quantile(l), BaselineMethod::Quantile(h)) => {
                                if upper {
                                    h <= l
                                } else {
                                    h >= l
                                }
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                };
                if out_of_order {
                    return Some((
                        "thresholds",
                        format!(
                            "{} `{}` is not {side} {} `{}`: a more severe level needs a limit further from normal, or the less severe one could never be reported",
                            name(high),
                            Shown(high),
                            name(low),
                            Shown(low)
                        ),
                    ));
                }
            }
        }
        let recover = self.recover?;
        if recover.op.is_upper() == upper {
            let (toward, example) = if upper {
                ("below", Comparison::Less)
            } else {
                ("above", Comparison::Greater)
            };
            return Some((
                "recover",
                format!(
                    "`{} {}` points the same way as the thresholds (`{}`): a rule that fires {side} its thresholds recovers {toward} a limit, e.g. `{example} {}`",
                    recover.op, recover.value, first.op, recover.value
                ),
            ));
        }
        // The threshold closest to normal (among the fixed ones) is the one
        // an instance recovers from.
        let nearest = self
            .thresholds
            .iter()
            .filter_map(|t| match t.value {
                Limit::Fixed(v) => Some((t, v)),
                Limit::Baseline(_) => None,
            })
            .reduce(|a, b| {
                let b_nearer = if upper { b.1 < a.1 } else { b.1 > a.1 };
                if b_nearer { b } else { a }
            });
        if let Some((t, limit)) = nearest {
            let wrong_side = if upper {
                recover.value >= limit
            } else {
                recover.value <= limit
            };
            if wrong_side {
                let healthy = if upper { "below" } else { "above" };
                return Some((
                    "recover",
                    format!(
                        "`{} {}` is not {healthy} the threshold it recovers from, {} `{}`: the recovery limit must be on the healthy side of every threshold, or it changes nothing",
                        recover.op,
                        recover.value,
                        name(t),
                        Shown(t)
                    ),
                ));
            }
        }
        None
    }
}

/// A threshold as written in messages: `> 0.9`, `> {stddevs: 3, window: 1h}`.
struct Shown<'a>(&'a Threshold);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        match &t.value {
            Limit::Fixed(v) => write!(f, "{} {v}", t.op),
            Limit::Baseline(b) => {
                let window = humantime::format_duration(b.window);
                match b.method {
                    BaselineMethod::Stddev(k) => {
                        write!(f, "{} {{stddevs: {k}, window: {window}}}", t.op)
                    }
                    BaselineMethod::Quantile(q) => {
                        write!(f, "{} {{quantile: {q}, window: {window}}}", t.op)
                    }
                }
            }
        }
    }
}

/// Builds a [`Rule`]; see [`Rule::builder`]. Problems are reported by
/// [`build`](RuleBuilder::build).
#[derive(Clone, Debug)]
#[must_use = "call .build() to get the rule"]
pub struct RuleBuilder {
    name: String,
    expr: Option<Expr>,
    aggregate: Aggregation,
    by: Vec<String>,
    matchers: Vec<Matcher>,
    thresholds: Vec<Threshold>,
    also: Option<AlsoCondition>,
    recover: Option<Recovery>,
    for_duration: Duration,
    keep_firing_for: Duration,
    no_data: NoDataPolicy,
    labels: Labels,
    annotations: Labels,
    escalate: Option<Escalation>,
    severity_labels: SeverityLabels,
}

impl RuleBuilder {
    /// Reads any [`Expr`].
    pub fn expr(mut self, expr: Expr) -> Self {
        self.expr = Some(expr);
        self
    }

    /// Reads a gauge's current value.
    pub fn gauge(self, metric: impl Into<String>) -> Self {
        self.expr(Expr::Gauge {
            metric: metric.into(),
            matchers: Vec::new(),
        })
    }

    /// Reads a counter's per-second rate over `window`.
    pub fn rate(self, metric: impl Into<String>, window: Duration) -> Self {
        self.expr(Expr::Rate {
            metric: metric.into(),
            matchers: Vec::new(),
            window,
        })
    }

    /// Reads `rate(numerator) / rate(denominator)` over `window`, pairing
    /// series by all their labels (see [`ignoring`](Self::ignoring)).
    pub fn ratio(self, numerator: Selector, denominator: Selector, window: Duration) -> Self {
        self.expr(Expr::Ratio {
            numerator,
            denominator,
            ignoring: Vec::new(),
            window,
        })
    }

    /// Reads the error rate of a counter with a `label`: the rate of
    /// `metric{label="error_value"}` over the rate of all `metric`, pairing
    /// series by their labels other than `label`. E.g.
    /// `.error_ratio("function_calls_total", "result", "error", 5 min)`.
    pub fn error_ratio(
        self,
        metric: impl Into<String>,
        label: impl Into<String>,
        error_value: impl Into<String>,
        window: Duration,
    ) -> Self {
        let metric = metric.into();
        let label = label.into();
        let numerator =
            Selector::new(metric.clone()).matcher(Matcher::equal(label.clone(), error_value));
        self.ratio(numerator, Selector::new(metric), window)
            .ignoring([label])
    }

    /// Labels dropped before pairing ratio series (PromQL's `ignoring`).
    /// Only meaningful after [`ratio`](Self::ratio).
    pub fn ignoring<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if let Some(Expr::Ratio { ignoring, .. }) = &mut self.expr {
            ignoring.extend(labels.into_iter().map(Into::into));
        }
        self
    }

    /// Reads a histogram statistic over `window`.
    pub fn histogram(
        self,
        metric: impl Into<String>,
        stat: HistogramStat,
        window: Duration,
    ) -> Self {
        self.expr(Expr::Histogram {
            metric: metric.into(),
            matchers: Vec::new(),
            stat,
            window,
        })
    }

    /// Reads a histogram's `q`-quantile over `window` (0.95 = p95).
    pub fn histogram_quantile(self, metric: impl Into<String>, q: f64, window: Duration) -> Self {
        self.histogram(metric, HistogramStat::Quantile(q), window)
    }

    /// Reads a histogram's mean over `window`.
    pub fn histogram_mean(self, metric: impl Into<String>, window: Duration) -> Self {
        self.histogram(metric, HistogramStat::Mean, window)
    }

    /// Reads a histogram's maximum over `window`.
    pub fn histogram_max(self, metric: impl Into<String>, window: Duration) -> Self {
        self.histogram(metric, HistogramStat::Max, window)
    }

    /// Adds a label matcher to every selector of the expression (both sides
    /// of a ratio, and the [`also`](Self::also) expression), whenever the
    /// expression is set.
    pub fn matcher(mut self, matcher: Matcher) -> Self {
        self.matchers.push(matcher);
        self
    }

    /// One alert instance per series (the default).
    pub fn per_series(mut self) -> Self {
        self.aggregate = Aggregation::PerSeries;
        self
    }

    /// Aggregates the matching series into one instance (per
    /// [`by`](Self::by) group).
    pub fn aggregate(mut self, aggregation: Aggregation) -> Self {
        self.aggregate = aggregation;
        self
    }

    /// Aggregates per group of these labels (PromQL's `by`).
    pub fn by<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.by.extend(labels.into_iter().map(Into::into));
        self
    }

    /// `value OP limit` makes an instance at least `severity`.
    pub fn threshold(self, severity: Severity, op: Comparison, limit: impl Into<Limit>) -> Self {
        self.threshold_with(Threshold {
            severity,
            op,
            value: limit.into(),
        })
    }

    /// Adds a prepared [`Threshold`].
    pub fn threshold_with(mut self, threshold: Threshold) -> Self {
        self.thresholds.push(threshold);
        self
    }

    /// A second condition every threshold needs: `expr OP limit` must hold
    /// for the same series (or `by` group) too; see [`AlsoCondition`].
    /// Replaces an earlier one. The builder's [`matcher`](Self::matcher)s
    /// apply to `expr` as well.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_alert::rule::Expr;
    /// use vigil_alert::{Aggregation, Comparison, Matcher, Rule, Selector, Severity};
    ///
    /// let ratio = |window| Expr::Ratio {
    ///     numerator: Selector::new("calls_total").matcher(Matcher::equal("result", "error")),
    ///     denominator: Selector::new("calls_total"),
    ///     ignoring: vec![],
    ///     window,
    /// };
    /// // Error ratio over 1h above 1.44 % and over 5m above 1.44 %.
    /// let rule = Rule::builder("ErrorBudgetBurn")
    ///     .expr(ratio(Duration::from_secs(3600)))
    ///     .aggregate(Aggregation::Sum)
    ///     .threshold(Severity::Critical, Comparison::Greater, 0.0144)
    ///     .also(ratio(Duration::from_secs(300)), Comparison::Greater, 0.0144)
    ///     .build()?;
    /// assert_eq!(rule.also.unwrap().expr.window(), Some(Duration::from_secs(300)));
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn also(self, expr: Expr, op: Comparison, limit: f64) -> Self {
        self.also_with(AlsoCondition::new(expr, op, limit))
    }

    /// Sets a prepared [`AlsoCondition`].
    pub fn also_with(mut self, condition: AlsoCondition) -> Self {
        self.also = Some(condition);
        self
    }

    /// Hysteresis: once alerting, recover only when `value OP limit`.
    pub fn recover_when(mut self, op: Comparison, limit: f64) -> Self {
        self.recover = Some(Recovery { op, value: limit });
        self
    }

    /// Hysteresis for `>` thresholds: recover only below `limit`.
    pub fn recover_below(self, limit: f64) -> Self {
        self.recover_when(Comparison::Less, limit)
    }

    /// Hysteresis for `<` thresholds: recover only above `limit`.
    pub fn recover_above(self, limit: f64) -> Self {
        self.recover_when(Comparison::Greater, limit)
    }

    /// Prometheus' `for`: how long a threshold must hold before firing.
    pub fn for_duration(mut self, duration: Duration) -> Self {
        self.for_duration = duration;
        self
    }

    /// Prometheus' `keep_firing_for`.
    pub fn keep_firing_for(mut self, duration: Duration) -> Self {
        self.keep_firing_for = duration;
        self
    }

    /// What a missing series means (default [`NoDataPolicy::Ok`]).
    pub fn no_data(mut self, policy: NoDataPolicy) -> Self {
        self.no_data = policy;
        self
    }

    /// Adds a label to every alert of the rule.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// Adds an annotation (may use `{{ $value }}`, `{{ $value | humanize }}`,
    /// `{{ $value | humanizePercentage }}`, `{{ $labels.name }}`).
    pub fn annotation(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(name.into(), value.into());
        self
    }

    /// Escalates (raises the severity one step and notifies again) once an
    /// instance has fired unresolved for `after`.
    pub fn escalate_after(mut self, after: Duration) -> Self {
        match &mut self.escalate {
            Some(e) => e.after = after,
            None => self.escalate = Some(Escalation::after(after)),
        }
        self
    }

    /// Also sends escalated alerts to `receiver`. Call after
    /// [`escalate_after`](Self::escalate_after).
    pub fn escalate_to(mut self, receiver: impl Into<String>) -> Self {
        let receiver = Some(receiver.into());
        match &mut self.escalate {
            Some(e) => e.receiver = receiver,
            None => {
                self.escalate = Some(Escalation {
                    after: Duration::ZERO, // reported by validate()
                    raise_severity: true,
                    receiver,
                });
            }
        }
        self
    }

    /// Sets the whole [`Escalation`].
    pub fn escalation(mut self, escalation: Escalation) -> Self {
        self.escalate = Some(escalation);
        self
    }

    /// Writes `severity` as `label` in the `severity` label of this rule's
    /// alerts (and in `alerts_firing`, the history, matching and Prometheus
    /// export), e.g. `Severity::Medium` as `warning` for Alertmanager routes
    /// on `severity="warning"`. Without it a level is written with its own
    /// name (`medium`). The level still orders alerts. `build` reports a
    /// name that is empty, read as another level, or shared by two levels
    /// (see [`SeverityLabels`]).
    ///
    /// ```
    /// use vigil_alert::{Comparison, Rule, Severity};
    ///
    /// let rule = Rule::builder("QueueBacklog")
    ///     .gauge("queue_depth")
    ///     .threshold(Severity::Medium, Comparison::Greater, 100.0)
    ///     .threshold(Severity::Critical, Comparison::Greater, 1000.0)
    ///     .severity_label(Severity::Medium, "warning")
    ///     .build()?;
    /// assert_eq!(rule.severity_label(Severity::Medium), "warning");
    /// assert!(Rule::builder("X")
    ///     .gauge("x")
    ///     .threshold(Severity::Low, Comparison::Greater, 1.0)
    ///     .severity_label(Severity::Low, "critical")
    ///     .build()
    ///     .is_err());
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn severity_label(mut self, severity: Severity, label: impl Into<String>) -> Self {
        self.severity_labels.set(severity, label);
        self
    }

    /// Checks and returns the rule.
    pub fn build(self) -> Result<Rule> {
        let Some(mut expr) = self.expr else {
            return Err(Error::InvalidRule {
                rule: self.name,
                field: "expr",
                reason: "no value to read: call gauge, rate, ratio or histogram".into(),
            });
        };
        let mut also = self.also;
        let also_matchers = also.iter_mut().flat_map(|a| a.expr.matchers_mut());
        for matchers in expr.matchers_mut().chain(also_matchers) {
            matchers.extend(self.matchers.iter().cloned());
        }
        let rule = Rule {
            name: self.name,
            expr,
            aggregate: self.aggregate,
            by: self.by,
            thresholds: self.thresholds,
            also,
            recover: self.recover,
            for_duration: self.for_duration,
            keep_firing_for: self.keep_firing_for,
            no_data: self.no_data,
            labels: self.labels,
            annotations: self.annotations,
            escalate: self.escalate,
            severity_labels: self.severity_labels,
        };
        rule.validate()?;
        Ok(rule)
    }
}

/// Expands Prometheus-style `{{ $value }}` and `{{ $labels.name }}` in an
/// annotation, optionally piped through `humanize` or `humanizePercentage`;
/// anything else between braces is left as written.
pub(crate) fn expand_template(template: &str, value: Option<f64>, labels: &Labels) -> String {
    if !template.contains("{{") {
        return template.to_owned();
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        let raw = &rest[start..start + len + 2];
        match expand_action(raw[2..raw.len() - 2].trim(), value, labels) {
            Some(text) => out.push_str(&text),
            None => out.push_str(raw),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

fn expand_action(action: &str, value: Option<f64>, labels: &Labels) -> Option<String> {
    let mut parts = action.split('|').map(str::trim);
    let subject = parts.next()?;
    let pipe = parts.next();
    if parts.next().is_some() {
        return None;
    }
    if subject == "$value" {
        let v = value.unwrap_or(f64::NAN);
        return match pipe {
            None => Some(v.to_string()),
            Some("humanize") => Some(humanize(v)),
            Some("humanizePercentage") => Some(format!("{}%", format_significant(v * 100.0, 4))),
            Some(_) => None,
        };
    }
    let name = subject.strip_prefix("$labels.")?;
    pipe.is_none()
        .then(|| labels.get(name).cloned().unwrap_or_default())
}

/// Prometheus' `humanize`: 4 significant digits with an SI prefix.
fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_significant(v, 4);
    }
    const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
    const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
    let mut scaled = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in BIG {
            if scaled.abs() < 1000.0 {
                break;
            }
            scaled /= 1000.0;
            prefix = p;
        }
    } else {
        for p in SMALL {
            if scaled.abs() >= 1.0 {
                break;
            }
            scaled *= 1000.0;
            prefix = p;
        }
    }
    format!("{}{prefix}", format_significant(scaled, 4))
}

/// `v` rounded to `digits` significant digits, without trailing zeros.
fn format_significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;

    fn minimal() -> RuleBuilder {
        Rule::builder("Up")
            .gauge("up")
            .threshold(Severity::High, Comparison::Less, 1.0)
    }

    #[test]
    fn comparisons_hold_as_written() {
        assert!(Comparison::Greater.holds(2.0, 1.0));
        assert!(!Comparison::Greater.holds(1.0, 1.0));
        assert!(Comparison::GreaterOrEqual.holds(1.0, 1.0));
        assert!(Comparison::Less.holds(0.0, 1.0));
        assert!(Comparison::LessOrEqual.holds(1.0, 1.0));
        assert!(!Comparison::LessOrEqual.holds(f64::NAN, 1.0));
        for c in [">", ">=", "<", "<="] {
            assert_eq!(c.parse::<Comparison>().unwrap().to_string(), c);
        }
        assert!("==".parse::<Comparison>().is_err());
    }

    #[test]
    fn builder_puts_matchers_on_every_selector() {
        let rule = Rule::builder("Errors")
            .error_ratio("calls_total", "result", "error", Duration::from_secs(60))
            .matcher(Matcher::equal("service", "api"))
            .aggregate(Aggregation::Sum)
            .threshold(Severity::High, Comparison::Greater, 0.1)
            .build()
            .unwrap();
        let Expr::Ratio {
            numerator,
            denominator,
            ignoring,
            ..
        } = &rule.expr
        else {
            panic!("expected a ratio");
        };
        assert_eq!(numerator.matchers.len(), 2);
        assert_eq!(denominator.matchers, vec![Matcher::equal("service", "api")]);
        assert_eq!(ignoring, &["result"]);
    }

    #[test]
    fn builder_matchers_reach_the_also_expression() {
        let rule = Rule::builder("Errors")
            .matcher(Matcher::equal("service", "api"))
            .rate("errors_total", Duration::from_secs(3600))
            .threshold(Severity::High, Comparison::Greater, 1.0)
            .also(
                Expr::Rate {
                    metric: "errors_total".into(),
                    matchers: vec![],
                    window: Duration::from_secs(300),
                },
                Comparison::Greater,
                1.0,
            )
            .build()
            .unwrap();
        let Some(AlsoCondition {
            expr: Expr::Rate { matchers, .. },
            ..
        }) = &rule.also
        else {
            panic!("expected a rate");
        };
        assert_eq!(matchers, &[Matcher::equal("service", "api")]);
        assert!(rule.also.as_ref().unwrap().holds(Some(2.0)));
        assert!(!rule.also.as_ref().unwrap().holds(Some(1.0)));
        assert!(!rule.also.as_ref().unwrap().holds(None));
    }

    #[test]
    fn validation_reports_the_field() {
        let field = |r: Result<Rule>| match r {
            Err(Error::InvalidRule { field, .. }) => field,
            other => panic!("expected InvalidRule, got {other:?}"),
        };
        assert_eq!(field(Rule::builder("X").build()), "expr");
        assert_eq!(field(Rule::builder("X").gauge("up").build()), "thresholds");
        assert_eq!(field(minimal().label("severity", "x").build()), "labels");
        assert_eq!(field(minimal().by(["job"]).build()), "by");
        assert_eq!(
            field(
                minimal()
                    .threshold(Severity::High, Comparison::Less, 2.0)
                    .build()
            ),
            "thresholds"
        );
        assert_eq!(field(Rule::builder("bad name").gauge("up").build()), "name");
        assert_eq!(
            field(
                Rule::builder("R")
                    .rate("x", Duration::ZERO)
                    .threshold(Severity::Low, Comparison::Greater, 1.0)
                    .build()
            ),
            "expr"
        );
        assert_eq!(field(minimal().escalate_to("pager").build()), "escalate");
        let zero_window = Expr::Rate {
            metric: "x".into(),
            matchers: vec![],
            window: Duration::ZERO,
        };
        assert_eq!(
            field(minimal().also(zero_window, Comparison::Less, 1.0).build()),
            "also"
        );
        let bad_metric = Expr::Gauge {
            metric: "not a metric".into(),
            matchers: vec![],
        };
        assert_eq!(
            field(minimal().also(bad_metric, Comparison::Less, 1.0).build()),
            "also"
        );
        let gauge = Expr::Gauge {
            metric: "workers".into(),
            matchers: vec![],
        };
        assert_eq!(
            field(minimal().also(gauge, Comparison::Less, f64::NAN).build()),
            "also"
        );
        assert!(
            minimal()
                .escalate_after(Duration::from_secs(1))
                .escalate_to("p")
                .build()
                .is_ok()
        );
    }

    #[test]
    fn yaml_config_round_trips() {
        let yaml = r#"
name: HighErrorRate
expr:
  ratio:
    numerator: { metric: function_calls_total, matchers: ['result="error"'] }
    denominator: { metric: function_calls_total }
    ignoring: [result]
    window: 5m
aggregate: sum
by: [function]
thresholds:
  - { severity: warning, op: ">", value: 0.01 }
  - { severity: critical, op: ">", value: { stddevs: 3, window: 1h, min_samples: 30 } }
also:
  expr: { rate: { metric: function_calls_total, matchers: ['result="error"'], window: 1m } }
  op: ">"
  value: 0.5
recover: { op: "<", value: 0.005 }
for: 5m
keep_firing_for: 2m
no_data: alerting
labels: { team: payments }
annotations: { summary: "{{ $labels.function }} fails {{ $value }} of calls" }
escalate: { after: 30m, receiver: pager }
"#;
        let rule: Rule = serde_yaml_ng::from_str(yaml).unwrap();
        rule.validate().unwrap();
        assert_eq!(rule.for_duration, Duration::from_secs(300));
        assert_eq!(rule.thresholds[0].severity, Severity::Medium);
        assert!(rule.has_baseline());
        assert_eq!(rule.no_data, NoDataPolicy::Alerting);
        let also = rule.also.as_ref().unwrap();
        assert_eq!((also.op, also.value), (Comparison::Greater, 0.5));
        assert_eq!(also.expr.window(), Some(Duration::from_secs(60)));
        let again: Rule =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&rule).unwrap()).unwrap();
        assert_eq!(again, rule);
        let json: Rule = serde_json::from_str(&serde_json::to_string(&rule).unwrap()).unwrap();
        assert_eq!(json, rule);
    }

    #[test]
    fn serde_keeps_the_severity_spelling_as_the_label() {
        let yaml = "name: X\nexpr: {gauge: {metric: up}}\nthresholds:\n  - {severity: warning, op: '>', value: 1}\n  - {severity: critical, op: '>', value: 2}\nseverity_labels: {high: page}\n";
        let rule: Rule = serde_yaml_ng::from_str(yaml).unwrap();
        rule.validate().unwrap();
        assert_eq!(rule.thresholds[0].severity, Severity::Medium);
        assert_eq!(rule.severity_label(Severity::Medium), "warning");
        assert_eq!(rule.severity_label(Severity::High), "page");
        assert_eq!(rule.severity_label(Severity::Critical), "critical");
        let text = serde_yaml_ng::to_string(&rule).unwrap();
        assert!(text.contains("severity: warning"), "{text}");
        assert!(text.contains("severity_labels:\n  high: page"), "{text}");
        assert!(!text.contains("medium"), "{text}");
        assert_eq!(serde_yaml_ng::from_str::<Rule>(&text).unwrap(), rule);

        let clash = "name: X\nexpr: {gauge: {metric: up}}\nthresholds: [{severity: warning, op: '>', value: 1}]\nseverity_labels: {medium: P3}\n";
        let err = serde_yaml_ng::from_str::<Rule>(clash)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("severity `medium` is written `warning` in `thresholds` but named `P3`"),
            "{err}"
        );
    }

    #[test]
    fn builder_names_levels_and_rejects_unusable_names() {
        let rule = minimal()
            .severity_label(Severity::High, "page")
            .build()
            .unwrap();
        assert_eq!(rule.severity_label(Severity::High), "page");
        let text = serde_json::to_string(&rule).unwrap();
        assert!(
            text.contains(r#""severity_labels":{"high":"page"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Rule>(&text).unwrap(), rule);
        let reason = |b: RuleBuilder| match b.build() {
            Err(Error::InvalidRule { field, reason, .. }) => format!("{field}: {reason}"),
            other => panic!("expected InvalidRule, got {other:?}"),
        };
        assert_eq!(
            reason(
                minimal()
                    .severity_label(Severity::Low, "page")
                    .severity_label(Severity::High, "page")
            ),
            "severity_labels: `low` and `high` are both labelled `page`"
        );
        assert_eq!(
            reason(minimal().severity_label(Severity::Low, "high")),
            "severity_labels: `high` cannot name `low`: it is read as `high`"
        );
        assert_eq!(
            reason(minimal().severity_label(Severity::High, "info")),
            "severity_labels: `info` cannot name `high`: it is read as `low`"
        );
    }

    #[test]
    fn toml_config_parses() {
        let toml_text = r#"
name = "QueueBacklog"
thresholds = [{ severity = "high", op = ">=", value = 100 }]
for = "1m"
[expr.gauge]
metric = "queue_depth"
matchers = ['queue=~"email|sms"']
"#;
        let rule: Rule = toml::from_str(toml_text).unwrap();
        rule.validate().unwrap();
        assert_eq!(rule.thresholds[0].value, Limit::Fixed(100.0));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let base = "name: X\nexpr: {gauge: {metric: up}}\nthresholds: [{severity: low, op: '<', value: 1}]\n";
        assert!(serde_yaml_ng::from_str::<Rule>(base).is_ok());
        for extra in ["severity: high\n", "expr2: 1\n"] {
            let text = format!("{base}{extra}");
            assert!(serde_yaml_ng::from_str::<Rule>(&text).is_err(), "{extra}");
        }
        let bad_expr = "name: X\nexpr: {gauge: {metric: up, window: 5m}}\nthresholds: []\n";
        assert!(serde_yaml_ng::from_str::<Rule>(bad_expr).is_err());
        let bad_also =
            format!("{base}also: {{expr: {{gauge: {{metric: up}}}}, op: '<', value: 1, x: 2}}\n");
        assert!(serde_yaml_ng::from_str::<Rule>(&bad_also).is_err());
        let bad_threshold = "name: X\nexpr: {gauge: {metric: up}}\nthresholds: [{severity: low, op: '<', value: 1, x: 2}]\n";
        assert!(serde_yaml_ng::from_str::<Rule>(bad_threshold).is_err());
    }

    #[test]
    fn templates_expand_value_and_labels() {
        let l = labels([("route", "/api")]);
        assert_eq!(
            expand_template(
                "{{ $labels.route }} at {{$value}} ({{ humanize }})",
                Some(0.5),
                &l
            ),
            "/api at 0.5 ({{ humanize }})"
        );
        assert_eq!(expand_template("no {{ end", None, &l), "no {{ end");
        assert_eq!(
            expand_template("{{ $labels.x }}|{{ $value }}", None, &l),
            "|NaN"
        );
    }
}
