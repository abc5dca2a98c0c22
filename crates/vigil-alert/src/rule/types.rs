//! The parts of a rule: [`Expr`], [`Threshold`], [`Limit`], [`Comparison`],
//! [`Recovery`], [`AlsoCondition`], [`Aggregation`], [`NoDataPolicy`],
//! [`Selector`], and their serde form (the rule file format).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::baseline::Baseline;
use crate::labels::{Matcher, from_text, is_valid_label_name, serde_as_text};
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
        [">", ">=", "<", "<="][self as usize]
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
        use Comparison::{Greater, GreaterOrEqual, Less, LessOrEqual};
        let all = [Greater, GreaterOrEqual, Less, LessOrEqual];
        let parsed = all.into_iter().find(|c| c.as_str() == s.trim());
        parsed.ok_or_else(|| Error::Parse {
            what: "comparison",
            value: s.to_owned(),
            expected: "one of >, >=, <, <=",
        })
    }
}

serde_as_text!(Comparison, "a comparison: \">\", \">=\", \"<\" or \"<=\"");

/// The other side of a threshold's comparison: a fixed number or a
/// [`Baseline`] computed from the rule's own history.
///
/// Serialized as a bare number (`0.2`) or as the baseline's map
/// (`{stddevs: 3, window: 1h}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Limit {
    /// A fixed value.
    Fixed(f64),
    /// A dynamic value from the trailing window of the rule's value.
    Baseline(Baseline),
}

impl Limit {
    /// The value of a fixed limit.
    pub(crate) fn fixed(&self) -> Option<f64> {
        match self {
            Limit::Fixed(v) => Some(*v),
            Limit::Baseline(_) => None,
        }
    }
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

/// Reads a finite number (an integer too) as a `T`, and a map as one if
/// `T` has a map form (a [`Limit`]'s baseline), refusing anything else
/// where it is written.
struct NumberVisitor<T>(fn(f64) -> T, Option<fn(Baseline) -> T>);

impl<'de, T> Visitor<'de> for NumberVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.1 {
            Some(_) => "a number, or a baseline such as {stddevs: 3, window: 1h}",
            None => "a number",
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if !v.is_finite() {
            return Err(E::custom(format_args!("expected a finite number, got {v}")));
        }
        Ok(self.0(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(self.0(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(self.0(v as f64))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let Some(baseline) = self.1 else {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        };
        Baseline::deserialize(de::value::MapAccessDeserializer::new(map)).map(baseline)
    }
}

/// A finite number.
struct Finite(f64);

impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor(Finite, None))
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor(Limit::Fixed, Some(Limit::Baseline)))
    }
}

/// A condition as rule files write it: `"> 0.9"` (an operator, then a
/// number) or `{op: ">", value: 0.9}`.
pub(crate) struct Condition<L>(pub(crate) Comparison, pub(crate) L);

/// Parses `"> 0.9"`.
fn parse_condition(text: &str) -> std::result::Result<(Comparison, f64), String> {
    let t = text.trim();
    let split = t.find(|c| !"<>=".contains(c)).unwrap_or(t.len());
    let (op, number) = t.split_at(split);
    let op: Comparison = op.parse().map_err(|_| {
        format!("expected a condition such as \"> 0.9\" (operator >, >=, < or <=, then a number), got {text:?}")
    })?;
    match number.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok((op, value)),
        _ => Err(format!("expected a finite number after `{op}` in {text:?}")),
    }
}

impl<'de, L: Deserialize<'de>> Deserialize<'de> for Condition<L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields<L> {
            op: Comparison,
            value: L,
        }
        struct ConditionVisitor<L>(PhantomData<L>);
        impl<'de, L: Deserialize<'de>> Visitor<'de> for ConditionVisitor<L> {
            type Value = Condition<L>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition such as \"> 0.9\" or {op: \">\", value: 0.9}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let (op, value) = parse_condition(v).map_err(E::custom)?;
                Ok(Condition(op, L::deserialize(value.into_deserializer())?))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let f = Fields::<L>::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Condition(f.op, f.value))
            }
        }
        d.deserialize_any(ConditionVisitor(PhantomData))
    }
}

/// One severity's condition: `value OP limit` makes an instance at least
/// this severe.
///
/// Rule files write thresholds as a map from severity to condition:
/// `thresholds: {warning: "> 0.9", critical: {op: ">", value: 0.95}}`;
/// a threshold serializes as its condition (`{op: ">", value: 0.95}`),
/// the severity being its key there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Threshold {
    /// The severity the instance gets when this threshold holds (and no
    /// higher one does).
    #[serde(skip)]
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
///
/// Config: `recover: "< 0.7"` or `recover: {op: "<", value: 0.7}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
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
/// `by`, and the builder's [`matcher`](crate::RuleBuilder::matcher)s apply to it
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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

impl<'de> Deserialize<'de> for Recovery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Condition(op, Finite(value)) = Condition::deserialize(d)?;
        Ok(Recovery { op, value })
    }
}

impl<'de> Deserialize<'de> for AlsoCondition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            expr: Expr,
            op: Option<Comparison>,
            value: Option<Finite>,
            condition: Option<Condition<Finite>>,
        }
        /// Reads the fields inside the map's own visit, so that a missing
        /// one is reported at the `also:` map, not at the rule around it.
        struct AlsoVisitor;
        impl<'de> Visitor<'de> for AlsoVisitor {
            type Value = AlsoCondition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map with `expr` and `condition` (or `op` and `value`)")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AlsoCondition, A::Error> {
                let f = Fields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let problem = match (f.op, f.value, f.condition) {
                    (Some(op), Some(Finite(value)), None)
                    | (None, None, Some(Condition(op, Finite(value)))) => {
                        return Ok(AlsoCondition::new(f.expr, op, value));
                    }
                    (_, _, Some(_)) => {
                        "give either `condition` (e.g. \"> 0.0144\") or `op` and `value`, not both"
                    }
                    (Some(_), None, None) => "missing field `value`",
                    (None, Some(_), None) => "missing field `op`",
                    (None, None, None) => {
                        "needs `op` and `value` (e.g. op: \">\", value: 0.0144) or `condition` (e.g. \"> 0.0144\")"
                    }
                };
                Err(de::Error::custom(problem))
            }
        }
        d.deserialize_map(AlsoVisitor)
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
    #[serde(deserialize_with = "metric_name")]
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
///
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expr {
    /// A gauge's current value: `metric{...}`.
    Gauge {
        /// The gauge's name.
        #[serde(deserialize_with = "metric_name")]
        metric: String,
        /// Label matchers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
        #[serde(deserialize_with = "metric_name")]
        metric: String,
        /// Label matchers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        matchers: Vec<Matcher>,
        /// How far back the rate looks.
        #[serde(with = "crate::time::duration::positive")]
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
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ignoring: Vec<String>,
        /// How far back both rates look.
        #[serde(with = "crate::time::duration::positive")]
        window: Duration,
    },
    /// A statistic of a histogram over a trailing window, read from the
    /// [`Source`](crate::Source): e.g. the p95 of
    /// `http_request_duration_seconds` over 5 minutes. Aggregating across
    /// series takes the max / min / avg / sum of the per-series statistics
    /// (not the statistic of the merged data).
    Histogram {
        /// The histogram's name.
        #[serde(deserialize_with = "metric_name")]
        metric: String,
        /// Label matchers.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        matchers: Vec<Matcher>,
        /// Which statistic (`p95`, `mean`, `max`, `count`).
        stat: HistogramStat,
        /// The trailing window.
        #[serde(with = "crate::time::duration::positive")]
        window: Duration,
    },
}

impl Serialize for Expr {
    /// `{kind: {fields}}`, the form every format reads back: the derived
    /// form, written as a map (YAML would write it as a `!kind` tag).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let value = Expr::serialize(self, serde_json::value::Serializer);
        value.map_err(serde::ser::Error::custom)?.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Expr {
    /// A map with one key, the kind, in every format (YAML would otherwise
    /// want a `!rate` tag).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ExprVisitor;
        impl<'de> Visitor<'de> for ExprVisitor {
            type Value = Expr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map with one of gauge, rate, ratio or histogram, e.g. {gauge: {metric: queue_depth}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expr, A::Error> {
                let kinds = Kinds(&mut map);
                let expr = Expr::deserialize(de::value::MapAccessDeserializer::new(kinds))?;
                match map.next_key::<String>()? {
                    Some(extra) => Err(de::Error::custom(format_args!(
                        "an expression has exactly one kind, found `{extra}` besides `{}`",
                        expr.kind()
                    ))),
                    None => Ok(expr),
                }
            }
        }
        d.deserialize_map(ExprVisitor)
    }
}

/// An expression's map, read for its kind: an empty one is refused by
/// naming the kinds.
struct Kinds<'a, A>(&'a mut A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Kinds<'_, A> {
    type Error = A::Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        k: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let kind = self.0.next_key_seed(k)?;
        kind.map(Some).ok_or_else(|| {
            de::Error::custom(
                "needs one of gauge, rate, ratio or histogram, e.g. {gauge: {metric: queue_depth}}",
            )
        })
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, v: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(v)
    }
}

impl Expr {
    /// The expression's kind, as its key in files: `gauge`, `rate`,
    /// `ratio` or `histogram`.
    fn kind(&self) -> &'static str {
        match self {
            Expr::Gauge { .. } => "gauge",
            Expr::Rate { .. } => "rate",
            Expr::Ratio { .. } => "ratio",
            Expr::Histogram { .. } => "histogram",
        }
    }

    /// The label matchers of every selector in the expression, mutably.
    pub(crate) fn matchers_mut(&mut self) -> impl Iterator<Item = &mut Vec<Matcher>> {
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
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        if let Some(metric) = self.metrics().find(|m| !is_valid_metric_name(m)) {
            return Some(("expr", format!("{metric:?} is not a valid metric name")));
        }
        if let Some(problem) = self.window().and_then(crate::time::not_positive) {
            return Some(("expr", format!("window {problem}")));
        }
        match self {
            Expr::Histogram {
                stat: HistogramStat::Quantile(q),
                ..
            } if !(0.0..=1.0).contains(q) => {
                Some(("expr", format!("quantile must be within 0..=1, got {q}")))
            }
            Expr::Ratio { ignoring, .. } => {
                invalid_label(ignoring, "label").map(|p| ("ignoring", p))
            }
            _ => None,
        }
    }

    /// Why `value OP limit` can never hold for this expression, if it
    /// cannot (`< 0` on a rate, a ratio of rates or a histogram count,
    /// which are never negative).
    pub(crate) fn unreachable(&self, op: Comparison, limit: f64) -> Option<String> {
        let what = match self {
            Expr::Rate { .. } => "a rate",
            Expr::Ratio { .. } => "a ratio of rates",
            Expr::Histogram {
                stat: HistogramStat::Count,
                ..
            } => "a histogram count",
            _ => return None,
        };
        let never = !op.is_upper() && (limit < 0.0 || (op == Comparison::Less && limit == 0.0));
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

/// Why one of `names` is not a valid label name, if one is not: it is
/// named a `what` (`label`, `annotation`) in the message.
pub(crate) fn invalid_label<'a>(
    names: impl IntoIterator<Item = &'a String>,
    what: &str,
) -> Option<String> {
    let name = names.into_iter().find(|n| !is_valid_label_name(n))?;
    Some(format!("{name:?} is not a valid {what} name"))
}

/// Whether `name` is a valid Prometheus metric name
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`): a label name that may also hold `:`.
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    is_valid_label_name(&name.replace(':', "_"))
}

/// Reads a metric (or alert) name, refused where it is written if invalid.
pub(crate) fn metric_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    from_text(d, "a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)", |v| {
        if is_valid_metric_name(v) {
            Ok(v.to_owned())
        } else {
            Err(format!(
                "{v:?} is not a valid name: use letters, digits, `_` and `:`, not starting with a digit"
            ))
        }
    })
}
