//! The file format: one serde struct per concept, shaped for people who
//! write YAML or TOML, converted to the core types with validation.
//!
//! Values are checked while they are read (names, durations, matchers,
//! severities, numbers), inside serde visitors, so that the parser can
//! attach a line and column to the error. Only checks that need several
//! fields at once run after reading, in [`FileDoc::into_parts`]; those
//! errors name the item and field but have no position.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::{ConfigError, Item};
use crate::labels::is_valid_label_name;
use crate::rule::{Aggregation, Expr, Limit, NoDataPolicy, Selector, Threshold};
use crate::rulesets::{ServiceTargets, SloBurnRate, Target};
use crate::severity::SeverityLabels;
use crate::{
    Baseline, Comparison, Escalation, HistogramStat, InhibitRule, Matcher, Route, Routing, Rule,
    Severity, Silence,
};

/// Implements `Deserialize` for a newtype read from a string by `parse`,
/// inside the visitor so errors get the string's position.
macro_rules! from_text {
    ($name:ident, $expecting:expr, $parse:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct TextVisitor;
                impl<'de> Visitor<'de> for TextVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        let parse: fn(&str) -> Result<$name, String> = $parse;
                        parse(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(TextVisitor)
            }
        }
    };
}

/// A duration in humantime syntax (`30s`, `5m`, `1h 30m`), at most
/// [`MAX_DURATION`](crate::MAX_DURATION).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dur(pub(crate) Duration);

/// A duration longer than zero.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PositiveDur(pub(crate) Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::time::duration::deserialize(d).map(Dur)
    }
}

impl<'de> Deserialize<'de> for PositiveDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::time::duration::positive::deserialize(d).map(PositiveDur)
    }
}

/// A Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), also used for
/// alert names so that rules export to Prometheus.
#[derive(Clone, Debug)]
pub(crate) struct MetricName(pub(crate) String);

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

from_text!(
    MetricName,
    "a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
    |v| if is_metric_name(v) {
        Ok(MetricName(v.to_owned()))
    } else {
        Err(format!(
            "{v:?} is not a valid name: use letters, digits, `_` and `:`, not starting with a digit"
        ))
    }
);

/// A label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LabelName(pub(crate) String);

fn label_name(v: &str) -> Result<LabelName, String> {
    if is_valid_label_name(v) {
        Ok(LabelName(v.to_owned()))
    } else {
        Err(format!(
            "{v:?} is not a valid label name: use letters, digits and `_`, not starting with a digit"
        ))
    }
}

from_text!(
    LabelName,
    "a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
    label_name
);

/// A label a rule may set: not `alertname` or `severity`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RuleLabelName(pub(crate) String);

from_text!(
    RuleLabelName,
    "a label name ([a-zA-Z_][a-zA-Z0-9_]*)",
    |v| match v {
        "alertname" | "severity" => Err(format!(
            "`{v}` is set by the engine (from the rule's name and thresholds) and cannot be a rule label"
        )),
        _ => label_name(v).map(|l| RuleLabelName(l.0)),
    }
);

/// A `group_by` entry: a label name, or `...` for all labels.
#[derive(Clone, Debug)]
pub(crate) struct GroupLabel(pub(crate) String);

from_text!(GroupLabel, "a label name or \"...\"", |v| if v == "..." {
    Ok(GroupLabel(v.to_owned()))
} else {
    label_name(v).map(|l| GroupLabel(l.0))
});

/// A non-empty string (receiver names, SLO names).
#[derive(Clone, Debug)]
pub(crate) struct Name(pub(crate) String);

from_text!(Name, "a non-empty name", |v| if v.trim().is_empty() {
    Err("must not be empty".to_owned())
} else {
    Ok(Name(v.to_owned()))
});

/// A label matcher: `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"`.
#[derive(Clone, Debug)]
pub(crate) struct MatcherText(pub(crate) Matcher);

from_text!(
    MatcherText,
    "a label matcher such as 'result=\"error\"'",
    |v| v.parse().map(MatcherText).map_err(|e| e.to_string())
);

/// `>`, `>=`, `<`, `<=`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Op(pub(crate) Comparison);

from_text!(Op, "a comparison: \">\", \">=\", \"<\" or \"<=\"", |v| v
    .parse()
    .map(Op)
    .map_err(|e| e.to_string()));

/// `p95`, `p99.9`, `mean`, `max`, `count`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stat(pub(crate) HistogramStat);

from_text!(
    Stat,
    "a histogram statistic: p50, p95, p99.9, mean, max or count",
    |v| v.parse().map(Stat).map_err(|e| e.to_string())
);

/// A finite number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Number(pub(crate) f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                finite(v).map(Number)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        d.deserialize_any(NumberVisitor)
    }
}

fn finite<E: de::Error>(v: f64) -> Result<f64, E> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(E::custom(format_args!("expected a finite number, got {v}")))
    }
}

/// A point in time: an RFC 3339 string (`2024-05-01T22:00:00Z`,
/// `2024-05-02T00:00:00+02:00`), or a
/// TOML date-time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Time(pub(crate) SystemTime);

/// The key the `toml` crate uses to hand a native date-time to serde.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

fn parse_time(v: &str) -> Result<SystemTime, String> {
    crate::time::parse_rfc3339(v)
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl<'de> Visitor<'de> for TimeVisitor {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time such as \"2024-05-01T22:00:00Z\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Time, E> {
                parse_time(v).map(Time).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Time, A::Error> {
                match map.next_entry::<String, String>()? {
                    Some((key, value)) if key == TOML_DATETIME_KEY => {
                        parse_time(&value).map(Time).map_err(de::Error::custom)
                    }
                    _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
                }
            }
        }
        d.deserialize_any(TimeVisitor)
    }
}

/// A success-rate objective: a number between 0 and 1 (`0.999`) or a
/// percentage string (`"99.9%"`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Objective(pub(crate) f64);

impl<'de> Deserialize<'de> for Objective {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectiveVisitor;
        fn check<E: de::Error>(v: f64) -> Result<Objective, E> {
            if v > 0.0 && v < 1.0 {
                Ok(Objective(v))
            } else {
                Err(E::custom(format_args!(
                    "objective must be between 0 and 1 (e.g. 0.999 or \"99.9%\"), got {v}"
                )))
            }
        }
        impl Visitor<'_> for ObjectiveVisitor {
            type Value = Objective;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an objective such as 0.999 or \"99.9%\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Objective, E> {
                check(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Objective, E> {
                check(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Objective, E> {
                check(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Objective, E> {
                let percent = v
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))?;
                check(percent / 100.0)
            }
        }
        d.deserialize_any(ObjectiveVisitor)
    }
}

/// `aggregate:` values.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AggregateFile {
    #[default]
    PerSeries,
    Sum,
    Max,
    Min,
    Avg,
}

impl From<AggregateFile> for Aggregation {
    fn from(a: AggregateFile) -> Self {
        match a {
            AggregateFile::PerSeries => Aggregation::PerSeries,
            AggregateFile::Sum => Aggregation::Sum,
            AggregateFile::Max => Aggregation::Max,
            AggregateFile::Min => Aggregation::Min,
            AggregateFile::Avg => Aggregation::Avg,
        }
    }
}

/// `no_data:` values.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NoDataFile {
    #[default]
    Ok,
    Alerting,
    #[serde(alias = "keep_last")]
    KeepState,
}

impl From<NoDataFile> for NoDataPolicy {
    fn from(n: NoDataFile) -> Self {
        match n {
            NoDataFile::Ok => NoDataPolicy::Ok,
            NoDataFile::Alerting => NoDataPolicy::Alerting,
            NoDataFile::KeepState => NoDataPolicy::KeepState,
        }
    }
}

/// `{metric, matchers}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SelectorFile {
    metric: MetricName,
    #[serde(default)]
    matchers: Vec<MatcherText>,
}

impl SelectorFile {
    fn into_selector(self) -> Selector {
        Selector {
            metric: self.metric.0,
            matchers: matchers(self.matchers),
        }
    }
}

fn matchers(list: Vec<MatcherText>) -> Vec<Matcher> {
    list.into_iter().map(|m| m.0).collect()
}

/// `expr:`, a map with one key naming the kind: `{gauge: {...}}`,
/// `{rate: {...}}`, `{ratio: {...}}` or `{histogram: {...}}`.
#[derive(Clone, Debug)]
pub(crate) enum ExprFile {
    Gauge {
        metric: MetricName,
        matchers: Vec<MatcherText>,
    },
    Rate {
        metric: MetricName,
        matchers: Vec<MatcherText>,
        window: PositiveDur,
    },
    Ratio {
        numerator: SelectorFile,
        denominator: SelectorFile,
        ignoring: Vec<LabelName>,
        window: PositiveDur,
    },
    Histogram {
        metric: MetricName,
        matchers: Vec<MatcherText>,
        stat: Stat,
        window: PositiveDur,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GaugeFields {
    metric: MetricName,
    #[serde(default)]
    matchers: Vec<MatcherText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateFields {
    metric: MetricName,
    #[serde(default)]
    matchers: Vec<MatcherText>,
    window: PositiveDur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatioFields {
    numerator: SelectorFile,
    denominator: SelectorFile,
    #[serde(default)]
    ignoring: Vec<LabelName>,
    window: PositiveDur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistogramFields {
    metric: MetricName,
    #[serde(default)]
    matchers: Vec<MatcherText>,
    stat: Stat,
    window: PositiveDur,
}

/// The key of an `expr:` map.
#[derive(Clone, Copy, Debug)]
enum ExprKind {
    Gauge,
    Rate,
    Ratio,
    Histogram,
}

from_text!(
    ExprKind,
    "an expression kind: gauge, rate, ratio or histogram",
    |v| match v {
        "gauge" => Ok(ExprKind::Gauge),
        "rate" => Ok(ExprKind::Rate),
        "ratio" => Ok(ExprKind::Ratio),
        "histogram" => Ok(ExprKind::Histogram),
        _ => Err(format!(
            "unknown expression kind `{v}`, expected one of `gauge`, `rate`, `ratio`, `histogram`"
        )),
    }
);

impl<'de> Deserialize<'de> for ExprFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ExprVisitor;
        impl<'de> Visitor<'de> for ExprVisitor {
            type Value = ExprFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map with one of gauge, rate, ratio or histogram, e.g. {gauge: {metric: queue_depth}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExprFile, A::Error> {
                let Some(kind) = map.next_key::<ExprKind>()? else {
                    return Err(de::Error::custom(
                        "needs one of gauge, rate, ratio or histogram, e.g. {gauge: {metric: queue_depth}}",
                    ));
                };
                let expr = match kind {
                    ExprKind::Gauge => {
                        let f: GaugeFields = map.next_value()?;
                        ExprFile::Gauge {
                            metric: f.metric,
                            matchers: f.matchers,
                        }
                    }
                    ExprKind::Rate => {
                        let f: RateFields = map.next_value()?;
                        ExprFile::Rate {
                            metric: f.metric,
                            matchers: f.matchers,
                            window: f.window,
                        }
                    }
                    ExprKind::Ratio => {
                        let f: RatioFields = map.next_value()?;
                        ExprFile::Ratio {
                            numerator: f.numerator,
                            denominator: f.denominator,
                            ignoring: f.ignoring,
                            window: f.window,
                        }
                    }
                    ExprKind::Histogram => {
                        let f: HistogramFields = map.next_value()?;
                        ExprFile::Histogram {
                            metric: f.metric,
                            matchers: f.matchers,
                            stat: f.stat,
                            window: f.window,
                        }
                    }
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format_args!(
                        "an expression has exactly one kind, found `{extra}` besides `{}`",
                        match kind {
                            ExprKind::Gauge => "gauge",
                            ExprKind::Rate => "rate",
                            ExprKind::Ratio => "ratio",
                            ExprKind::Histogram => "histogram",
                        }
                    )));
                }
                Ok(expr)
            }
        }
        d.deserialize_map(ExprVisitor)
    }
}

impl ExprFile {
    fn into_expr(self) -> Expr {
        match self {
            ExprFile::Gauge {
                metric,
                matchers: m,
            } => Expr::Gauge {
                metric: metric.0,
                matchers: matchers(m),
            },
            ExprFile::Rate {
                metric,
                matchers: m,
                window,
            } => Expr::Rate {
                metric: metric.0,
                matchers: matchers(m),
                window: window.0,
            },
            ExprFile::Ratio {
                numerator,
                denominator,
                ignoring,
                window,
            } => Expr::Ratio {
                numerator: numerator.into_selector(),
                denominator: denominator.into_selector(),
                ignoring: ignoring.into_iter().map(|l| l.0).collect(),
                window: window.0,
            },
            ExprFile::Histogram {
                metric,
                matchers: m,
                stat,
                window,
            } => Expr::Histogram {
                metric: metric.0,
                matchers: matchers(m),
                stat: stat.0,
                window: window.0,
            },
        }
    }
}

/// A threshold's limit: a number, or a baseline map.
#[derive(Clone, Debug)]
pub(crate) struct LimitFile(pub(crate) Limit);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFields {
    #[serde(default)]
    stddevs: Option<Number>,
    #[serde(default)]
    quantile: Option<Number>,
    window: PositiveDur,
    #[serde(default)]
    min_samples: Option<u64>,
}

impl<'de> Deserialize<'de> for LimitFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl<'de> Visitor<'de> for LimitVisitor {
            type Value = LimitFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or a baseline such as {stddevs: 3, window: 1h}")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LimitFile, E> {
                finite(v).map(|v| LimitFile(Limit::Fixed(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LimitFile, E> {
                Ok(LimitFile(Limit::Fixed(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LimitFile, E> {
                Ok(LimitFile(Limit::Fixed(v as f64)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LimitFile, A::Error> {
                let fields =
                    BaselineFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let window = fields.window.0;
                let mut baseline = match (fields.stddevs, fields.quantile) {
                    (Some(k), None) => Baseline::stddevs(k.0, window),
                    (None, Some(q)) if (0.0..=1.0).contains(&q.0) => {
                        Baseline::quantile(q.0, window)
                    }
                    (None, Some(q)) => {
                        return Err(de::Error::custom(format_args!(
                            "baseline quantile must be within 0..=1, got {}",
                            q.0
                        )));
                    }
                    _ => {
                        return Err(de::Error::custom(
                            "a baseline needs exactly one of `stddevs` or `quantile`",
                        ));
                    }
                };
                if let Some(n) = fields.min_samples {
                    if n == 0 {
                        return Err(de::Error::custom("baseline min_samples must be at least 1"));
                    }
                    baseline = baseline.min_samples(usize::try_from(n).unwrap_or(usize::MAX));
                }
                Ok(LimitFile(Limit::Baseline(baseline)))
            }
        }
        d.deserialize_any(LimitVisitor)
    }
}

/// `{op, value}`, or the shorthand `"> 0.9"`.
#[derive(Clone, Debug)]
pub(crate) struct ConditionFile<L> {
    pub(crate) op: Comparison,
    pub(crate) value: L,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdFields {
    op: Op,
    value: LimitFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverFields {
    op: Op,
    value: Number,
}

/// Parses `"> 0.9"`: an operator, then a number.
fn parse_condition(text: &str) -> Result<(Comparison, f64), String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !matches!(c, '<' | '>' | '='))
        .unwrap_or(t.len());
    let (op, number) = t.split_at(split);
    let op: Comparison = op.parse().map_err(|_| {
        format!("expected a condition such as \"> 0.9\" (operator >, >=, < or <=, then a number), got {text:?}")
    })?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("expected a number after `{op}` in {text:?}"))?;
    if !value.is_finite() {
        return Err(format!("expected a finite number in {text:?}"));
    }
    Ok((op, value))
}

impl<'de> Deserialize<'de> for ConditionFile<LimitFile> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ThresholdVisitor;
        impl<'de> Visitor<'de> for ThresholdVisitor {
            type Value = ConditionFile<LimitFile>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a threshold such as \"> 0.9\" or {op: \">\", value: 0.9}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let (op, value) = parse_condition(v).map_err(E::custom)?;
                Ok(ConditionFile {
                    op,
                    value: LimitFile(Limit::Fixed(value)),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let f = ThresholdFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ConditionFile {
                    op: f.op.0,
                    value: f.value,
                })
            }
        }
        d.deserialize_any(ThresholdVisitor)
    }
}

impl<'de> Deserialize<'de> for ConditionFile<f64> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RecoverVisitor;
        impl<'de> Visitor<'de> for RecoverVisitor {
            type Value = ConditionFile<f64>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition such as \"< 0.7\" or {op: \"<\", value: 0.7}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let (op, value) = parse_condition(v).map_err(E::custom)?;
                Ok(ConditionFile { op, value })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let f = RecoverFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ConditionFile {
                    op: f.op.0,
                    value: f.value.0,
                })
            }
        }
        d.deserialize_any(RecoverVisitor)
    }
}

/// A condition written as text: `"> 0.0144"`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConditionText(pub(crate) Comparison, pub(crate) f64);

from_text!(ConditionText, "a condition such as \"> 0.9\"", |v| {
    parse_condition(v).map(|(op, value)| ConditionText(op, value))
});

/// `also:`, a second condition on another expression:
/// `{expr: {...}, op: ">", value: 0.0144}` or
/// `{expr: {...}, condition: "> 0.0144"}`.
#[derive(Clone, Debug)]
pub(crate) struct AlsoFile {
    pub(crate) expr: ExprFile,
    pub(crate) op: Comparison,
    pub(crate) value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlsoFields {
    expr: ExprFile,
    #[serde(default)]
    op: Option<Op>,
    #[serde(default)]
    value: Option<Number>,
    #[serde(default)]
    condition: Option<ConditionText>,
}

impl<'de> Deserialize<'de> for AlsoFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AlsoVisitor;
        impl<'de> Visitor<'de> for AlsoVisitor {
            type Value = AlsoFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a condition on another expression, e.g. {expr: {gauge: {metric: up}}, op: \"<\", value: 1}",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AlsoFile, A::Error> {
                let f = AlsoFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let (op, value) = match (f.op, f.value, f.condition) {
                    (Some(op), Some(value), None) => (op.0, value.0),
                    (None, None, Some(c)) => (c.0, c.1),
                    (_, _, Some(_)) => {
                        return Err(de::Error::custom(
                            "give either `condition` (e.g. \"> 0.0144\") or `op` and `value`, not both",
                        ));
                    }
                    (Some(_), None, None) => return Err(de::Error::missing_field("value")),
                    (None, Some(_), None) => return Err(de::Error::missing_field("op")),
                    (None, None, None) => {
                        return Err(de::Error::custom(
                            "needs `op` and `value` (e.g. op: \">\", value: 0.0144) or `condition` (e.g. \"> 0.0144\")",
                        ));
                    }
                };
                Ok(AlsoFile {
                    expr: f.expr,
                    op,
                    value,
                })
            }
        }
        d.deserialize_map(AlsoVisitor)
    }
}

/// `thresholds:`, a map from severity to condition. Severities are checked
/// as keys are read, so a duplicate (`warning` and `medium`) is reported at
/// its position. Each key keeps its spelling (trimmed), which becomes the
/// level's `severity` label.
#[derive(Clone, Debug)]
pub(crate) struct ThresholdsFile(pub(crate) Vec<(Spelled, ConditionFile<LimitFile>)>);

/// A severity key and the text it was written as (trimmed).
#[derive(Clone, Debug)]
pub(crate) struct Spelled {
    severity: Severity,
    written: String,
}

struct SeverityKey<'a> {
    seen: &'a [Severity],
    /// What a repeated level has two of (`thresholds`, `names`).
    what: &'static str,
}

impl<'de> DeserializeSeed<'de> for SeverityKey<'_> {
    type Value = Spelled;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Spelled, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for SeverityKey<'_> {
    type Value = Spelled;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a severity: low, medium (or warning), high or critical")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Spelled, E> {
        let severity: Severity = v.parse().map_err(|_| {
            E::custom(format_args!(
                "unknown severity `{v}`, expected one of `low`, `medium` (or `warning`), `high`, `critical`"
            ))
        })?;
        if self.seen.contains(&severity) {
            let alias = if v.trim().eq_ignore_ascii_case(severity.as_str()) {
                String::new()
            } else {
                format!(" (`{v}` is another name for `{severity}`)")
            };
            return Err(E::custom(format_args!(
                "severity `{severity}` has two {}{alias}",
                self.what
            )));
        }
        Ok(Spelled {
            severity,
            written: v.trim().to_owned(),
        })
    }
}

impl<'de> Deserialize<'de> for ThresholdsFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ThresholdsVisitor;
        impl<'de> Visitor<'de> for ThresholdsVisitor {
            type Value = ThresholdsFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from severity to threshold, e.g. {critical: \"> 0.9\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ThresholdsFile, A::Error> {
                let mut seen = Vec::new();
                let mut out = Vec::new();
                loop {
                    let key = SeverityKey {
                        seen: &seen,
                        what: "thresholds",
                    };
                    let Some(spelled) = map.next_key_seed(key)? else {
                        break;
                    };
                    let condition: ConditionFile<LimitFile> = map.next_value()?;
                    seen.push(spelled.severity);
                    out.push((spelled, condition));
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "needs at least one threshold, e.g. {critical: \"> 0.9\"}",
                    ));
                }
                Ok(ThresholdsFile(out))
            }
        }
        d.deserialize_map(ThresholdsVisitor)
    }
}

/// `severity_labels:`, a map from severity to the `severity` label value
/// the file's rules write it with, e.g. `{low: info, medium: warning}`.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeverityLabelsFile(pub(crate) SeverityLabels);

impl<'de> Deserialize<'de> for SeverityLabelsFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = SeverityLabelsFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from severity to label value, e.g. {medium: warning}")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SeverityLabelsFile, A::Error> {
                let mut seen = Vec::new();
                let mut names = SeverityLabels::new();
                loop {
                    let key = SeverityKey {
                        seen: &seen,
                        what: "names",
                    };
                    let Some(spelled) = map.next_key_seed(key)? else {
                        break;
                    };
                    let name: String = map.next_value()?;
                    seen.push(spelled.severity);
                    names.set(spelled.severity, name);
                }
                if let Some(problem) = names.problem() {
                    return Err(de::Error::custom(problem));
                }
                Ok(SeverityLabelsFile(names))
            }
        }
        d.deserialize_map(NamesVisitor)
    }
}

/// `escalate:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateFile {
    after: PositiveDur,
    #[serde(default = "yes")]
    raise_severity: bool,
    #[serde(default, alias = "notifier")]
    receiver: Option<Name>,
}

fn yes() -> bool {
    true
}

/// One entry of `rules:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    name: MetricName,
    expr: ExprFile,
    #[serde(default)]
    aggregate: AggregateFile,
    #[serde(default)]
    by: Vec<LabelName>,
    thresholds: ThresholdsFile,
    #[serde(default)]
    also: Option<AlsoFile>,
    #[serde(default)]
    recover: Option<ConditionFile<f64>>,
    #[serde(rename = "for", default)]
    for_duration: Option<Dur>,
    #[serde(default)]
    keep_firing_for: Option<Dur>,
    #[serde(default)]
    no_data: NoDataFile,
    #[serde(default)]
    labels: BTreeMap<RuleLabelName, String>,
    #[serde(default)]
    annotations: BTreeMap<LabelName, String>,
    #[serde(default)]
    escalate: Option<EscalateFile>,
}

impl RuleFile {
    fn into_rule(self, index: usize) -> Result<Rule, (Item, &'static str, String)> {
        let name = self.name.0;
        let item = || Item::Rule {
            index,
            name: Some(name.clone()),
        };
        let aggregate = Aggregation::from(self.aggregate);
        if !self.by.is_empty() && aggregate == Aggregation::PerSeries {
            return Err((
                item(),
                "by",
                "needs `aggregate: sum`, `max`, `min` or `avg`: per-series rules already keep every label"
                    .into(),
            ));
        }
        let mut b = Rule::builder(name.clone())
            .expr(self.expr.into_expr())
            .aggregate(aggregate)
            .by(self.by.into_iter().map(|l| l.0))
            .no_data(self.no_data.into());
        // Lowest severity first, whatever order the map had (TOML tables
        // come sorted by key).
        let mut thresholds = self.thresholds.0;
        thresholds.sort_by_key(|(spelled, _)| spelled.severity);
        for (Spelled { severity, written }, c) in thresholds {
            // The spelling is the label: `warning` fires as severity="warning".
            b = b
                .threshold_with(Threshold {
                    severity,
                    op: c.op,
                    value: c.value.0,
                })
                .severity_label(severity, written);
        }
        if let Some(a) = self.also {
            b = b.also(a.expr.into_expr(), a.op, a.value);
        }
        if let Some(r) = self.recover {
            b = b.recover_when(r.op, r.value);
        }
        if let Some(d) = self.for_duration {
            b = b.for_duration(d.0);
        }
        if let Some(d) = self.keep_firing_for {
            b = b.keep_firing_for(d.0);
        }
        for (k, v) in self.labels {
            b = b.label(k.0, v);
        }
        for (k, v) in self.annotations {
            b = b.annotation(k.0, v);
        }
        if let Some(e) = self.escalate {
            b = b.escalation(Escalation {
                after: e.after.0,
                raise_severity: e.raise_severity,
                receiver: e.receiver.map(|r| r.0),
            });
        }
        b.build().map_err(|e| match e {
            crate::Error::InvalidRule { field, reason, .. } => (item(), field, reason),
            other => (item(), "", other.to_string()),
        })
    }
}

/// One entry of `routing.routes:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteFile {
    #[serde(default)]
    matchers: Vec<MatcherText>,
    #[serde(alias = "notifier")]
    receiver: Name,
    #[serde(default)]
    group_by: Option<Vec<GroupLabel>>,
    #[serde(default)]
    group_wait: Option<Dur>,
    #[serde(default)]
    group_interval: Option<PositiveDur>,
    #[serde(default)]
    repeat_interval: Option<PositiveDur>,
}

/// `routing:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutingFile {
    #[serde(alias = "notifier")]
    receiver: Name,
    #[serde(default)]
    group_by: Option<Vec<GroupLabel>>,
    #[serde(default)]
    group_wait: Option<Dur>,
    #[serde(default)]
    group_interval: Option<PositiveDur>,
    #[serde(default)]
    repeat_interval: Option<PositiveDur>,
    #[serde(default)]
    routes: Vec<RouteFile>,
}

impl RoutingFile {
    fn into_routing(self) -> Routing {
        let mut routing = Routing::new(self.receiver.0);
        if let Some(g) = self.group_by {
            routing = routing.group_by(g.into_iter().map(|l| l.0));
        }
        if let Some(d) = self.group_wait {
            routing = routing.group_wait(d.0);
        }
        if let Some(d) = self.group_interval {
            routing = routing.group_interval(d.0);
        }
        if let Some(d) = self.repeat_interval {
            routing = routing.repeat_interval(d.0);
        }
        for r in self.routes {
            let mut route = Route::new(r.receiver.0);
            for m in r.matchers {
                route = route.matcher(m.0);
            }
            if let Some(g) = r.group_by {
                route = route.group_by(g.into_iter().map(|l| l.0));
            }
            if let Some(d) = r.group_wait {
                route = route.group_wait(d.0);
            }
            if let Some(d) = r.group_interval {
                route = route.group_interval(d.0);
            }
            if let Some(d) = r.repeat_interval {
                route = route.repeat_interval(d.0);
            }
            routing = routing.route(route);
        }
        routing
    }
}

/// One entry of `inhibit_rules:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InhibitFile {
    source_matchers: Vec<MatcherText>,
    target_matchers: Vec<MatcherText>,
    #[serde(default)]
    equal: Vec<LabelName>,
}

/// One entry of `silences:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SilenceFile {
    matchers: Vec<MatcherText>,
    starts_at: Time,
    ends_at: Time,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// `rulesets.service_targets:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceTargetsFile {
    #[serde(default)]
    window: Option<PositiveDur>,
    #[serde(rename = "for", default)]
    for_duration: Option<Dur>,
    #[serde(default)]
    latency_p95: Option<PositiveDur>,
    #[serde(default)]
    only: Option<Vec<TargetFile>>,
}

/// Names of the service targets, for `only:`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TargetFile {
    Latency,
    ErrorRate,
    Cpu,
    Memory,
    CacheHitRatio,
}

impl From<TargetFile> for Target {
    fn from(t: TargetFile) -> Self {
        match t {
            TargetFile::Latency => Target::Latency,
            TargetFile::ErrorRate => Target::ErrorRate,
            TargetFile::Cpu => Target::Cpu,
            TargetFile::Memory => Target::Memory,
            TargetFile::CacheHitRatio => Target::CacheHitRatio,
        }
    }
}

/// One entry of `rulesets.slos:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SloFile {
    name: Name,
    objective: Objective,
    #[serde(default)]
    matchers: Vec<MatcherText>,
    #[serde(default)]
    by: Vec<LabelName>,
    #[serde(default)]
    errors: Option<SelectorFile>,
    #[serde(default)]
    total: Option<SelectorFile>,
}

/// `rulesets:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesetsFile {
    #[serde(default)]
    service_targets: Option<ServiceTargetsFile>,
    #[serde(default)]
    slos: Vec<SloFile>,
}

/// A whole config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDoc {
    #[serde(default)]
    evaluation_interval: Option<PositiveDur>,
    #[serde(default)]
    severity_labels: SeverityLabelsFile,
    #[serde(default)]
    rulesets: RulesetsFile,
    #[serde(default)]
    rules: Vec<RuleFile>,
    #[serde(default)]
    routing: Option<RoutingFile>,
    #[serde(default)]
    inhibit_rules: Vec<InhibitFile>,
    #[serde(default)]
    silences: Vec<SilenceFile>,
}

/// What a file holds, in core types.
pub(crate) struct Parts {
    pub(crate) evaluation_interval: Option<Duration>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) routing: Option<Routing>,
    pub(crate) inhibit_rules: Vec<InhibitRule>,
    pub(crate) silences: Vec<Silence>,
}

impl FileDoc {
    /// Converts to core types and runs the checks that need several fields.
    pub(crate) fn into_parts(self, file: &str) -> Result<Parts, ConfigError> {
        let fail = |item: Item, field: &str, message: String| {
            let field = (!field.is_empty()).then(|| field.to_owned());
            ConfigError::invalid(file, Some(item), field, message, None)
        };
        let interval = self.evaluation_interval.map(|d| d.0);
        let at_interval = |rule: &Rule| match interval {
            Some(i) => rule.check_interval(i),
            None => Ok(()),
        };
        let core = |item: Item, e: crate::Error| match e {
            crate::Error::InvalidRule { field, reason, .. } => fail(item, field, reason),
            other => fail(item, "", other.to_string()),
        };
        let mut rules = Vec::new();
        if let Some(st) = self.rulesets.service_targets {
            let mut targets = ServiceTargets::new();
            if let Some(w) = st.window {
                targets = targets.window(w.0);
            }
            if let Some(d) = st.for_duration {
                targets = targets.for_duration(d.0);
            }
            if let Some(d) = st.latency_p95 {
                targets = targets.latency_p95(d.0);
            }
            if let Some(only) = st.only {
                targets = targets.only(only.into_iter().map(Target::from));
            }
            let built = targets
                .rules()
                .map_err(|e| fail(Item::ServiceTargets, "", e.to_string()))?;
            for rule in &built {
                at_interval(rule).map_err(|e| fail(Item::ServiceTargets, "", e.to_string()))?;
            }
            rules.extend(built);
        }
        for (index, slo) in self.rulesets.slos.into_iter().enumerate() {
            let item = Item::Slo {
                index,
                name: Some(slo.name.0.clone()),
            };
            let mut s = SloBurnRate::new(slo.name.0, slo.objective.0);
            if let Some(e) = slo.errors {
                s = s.errors(e.into_selector());
            }
            if let Some(t) = slo.total {
                s = s.total(t.into_selector());
            }
            for m in slo.matchers {
                s = s.matcher(m.0);
            }
            s = s.by(slo.by.into_iter().map(|l| l.0));
            let built = s
                .rules()
                .map_err(|e| fail(item.clone(), "", e.to_string()))?;
            for rule in &built {
                at_interval(rule).map_err(|e| fail(item.clone(), "", e.to_string()))?;
            }
            rules.extend(built);
        }
        for (index, r) in self.rules.into_iter().enumerate() {
            let rule = r
                .into_rule(index)
                .map_err(|(item, field, message)| fail(item, field, message))?;
            at_interval(&rule).map_err(|e| {
                let item = Item::Rule {
                    index,
                    name: Some(rule.name.clone()),
                };
                core(item, e)
            })?;
            rules.push(rule);
        }
        // The file's names for the levels its rules (ready-made ones too)
        // leave unnamed. No clash is possible: a threshold's spelling is
        // read as its own level, and the file's names were checked not to
        // be read as another level.
        let names = self.severity_labels.0;
        for rule in &mut rules {
            rule.severity_labels = rule.severity_labels.or(&names);
        }
        let routing = self.routing.map(RoutingFile::into_routing);
        if let Some(r) = &routing {
            r.validate().map_err(|e| {
                let (field, message) = match e {
                    crate::Error::InvalidRoute { field, reason, .. } => (field, reason),
                    other => ("", other.to_string()),
                };
                fail(Item::Routing, field, message)
            })?;
        }
        let inhibit_rules = self
            .inhibit_rules
            .into_iter()
            .map(|i| InhibitRule {
                source_matchers: matchers(i.source_matchers),
                target_matchers: matchers(i.target_matchers),
                equal: i.equal.into_iter().map(|l| l.0).collect(),
            })
            .collect();
        let mut silences = Vec::new();
        for (index, s) in self.silences.into_iter().enumerate() {
            let item = || Item::Silence { index };
            if s.matchers.is_empty() {
                return Err(fail(
                    item(),
                    "matchers",
                    "needs at least one matcher (a silence without one would mute everything)"
                        .into(),
                ));
            }
            if s.ends_at.0 <= s.starts_at.0 {
                return Err(fail(
                    item(),
                    "ends_at",
                    format!(
                        "must be after starts_at ({})",
                        crate::time::format_rfc3339(s.starts_at.0)
                    ),
                ));
            }
            let mut silence = Silence::new(s.starts_at.0, s.ends_at.0)
                .created_by(s.created_by)
                .comment(s.comment);
            if let Some(problem) = silence.too_long() {
                return Err(fail(item(), "ends_at", problem));
            }
            for m in s.matchers {
                silence = silence.matcher(m.0);
            }
            silences.push(silence);
        }
        Ok(Parts {
            evaluation_interval: interval,
            rules,
            routing,
            inhibit_rules,
            silences,
        })
    }
}
