//! The exporter: vigil rules to the serde form of a Prometheus rule file.

use std::time::Duration;

use serde::Serialize;

use super::{duration, number};
use crate::{
    Aggregation, BaselineMethod, Expr, HistogramStat, Labels, Limit, Matcher, NoDataPolicy, Rule,
    Selector, Threshold,
};

/// The `#[timed]` duration histogram, always exposed with classic buckets.
const FUNCTION_DURATION: &str = "function_calls_duration_seconds";

/// A Prometheus rule file and what did not translate exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrometheusExport {
    /// The rule file (`groups:` with one group), ready for
    /// `promtool check rules` and Prometheus' `rule_files`.
    pub yaml: String,
    /// One line per vigil feature that has no exact Prometheus equivalent,
    /// naming the rule; the same text is in a comment next to the rule.
    pub warnings: Vec<String>,
}

/// How vigil histograms appear in the Prometheus exposition the exported
/// rules will read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistogramExport {
    /// As summaries (vigil's default rendering): quantiles as
    /// `name{quantile="0.95"}` over the exporter's sliding window, plus
    /// cumulative `_sum` and `_count`.
    #[default]
    Summary,
    /// As classic histograms (`MonitorBuilder::buckets`): `name_bucket{le}`,
    /// aggregatable across a fleet with `histogram_quantile`.
    Buckets,
}

/// Writes Prometheus rule files; see the [module docs](super).
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::prometheus::{HistogramExport, PrometheusExporter};
/// use vigil_alert::{Comparison, Rule, Severity};
///
/// let rule = Rule::builder("HighLatency")
///     .histogram_quantile("function_calls_duration_seconds", 0.95, Duration::from_secs(300))
///     .threshold(Severity::High, Comparison::Greater, 0.2)
///     .build()?;
/// let export = PrometheusExporter::new()
///     .group("api")
///     .histograms(HistogramExport::Buckets)
///     .export(&[rule]);
/// assert!(export.yaml.contains(
///     "histogram_quantile(0.95, rate(function_calls_duration_seconds_bucket[5m])) > 0.2"
/// ));
/// assert!(export.warnings.is_empty());
/// # Ok::<(), vigil_alert::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct PrometheusExporter {
    /// Unset: `vigil`.
    group: Option<String>,
    interval: Option<Duration>,
    histograms: HistogramExport,
}

impl PrometheusExporter {
    /// One group named `vigil`, Prometheus' global evaluation interval,
    /// histograms read as summaries.
    pub fn new() -> Self {
        Self::default()
    }

    crate::notify::setters! {
        /// Names the rule group.
        group(name: impl Into<String>) => group = Some(name.into());

        /// Sets the group's evaluation `interval` (default: Prometheus' global
        /// `evaluation_interval`). Use the interval vigil evaluates at to keep
        /// `for` timing the same.
        interval(interval: Duration) => interval = Some(interval);

        /// How histograms are exposed (default [`HistogramExport::Summary`]).
        histograms(histograms: HistogramExport) => histograms = histograms;
    }

    /// Writes the rule file for `rules`.
    pub fn export(&self, rules: &[Rule]) -> PrometheusExport {
        self.export_noted(rules, |_| None)
    }

    /// [`export`](Self::export), with `note(i)` (if any) as the first
    /// comment of the `i`th rule's alerts.
    pub(crate) fn export_noted(
        &self,
        rules: &[Rule],
        note: impl Fn(usize) -> Option<String>,
    ) -> PrometheusExport {
        let (mut alerts, mut warnings) = (Vec::new(), Vec::new());
        for (i, rule) in rules.iter().enumerate() {
            translate(rule, self.histograms, note(i), &mut alerts, &mut warnings);
        }
        let name = self.group.as_deref().unwrap_or("vigil");
        let (interval, rules_out) = (self.interval.map(duration), &alerts);
        let file = [(
            "groups",
            [Group {
                name,
                interval,
                rules: rules_out,
            }],
        )];
        let yaml = serde_yaml_ng::to_string(&std::collections::BTreeMap::from(file));
        let yaml = yaml.expect("a rule file always serializes");
        let read_as = match self.histograms {
            HistogramExport::Summary => "summaries (name{quantile=\"..\"}, name_sum, name_count)",
            HistogramExport::Buckets => {
                "classic histograms (name_bucket{le=\"..\"}, name_sum, name_count)"
            }
        };
        let (vigil, exported) = (rules.len(), alerts.len());
        let mut out = format!(
            "{HEADER}# {vigil} vigil rule(s), {exported} Prometheus alerting rule(s). Histograms are read as {read_as}.\n"
        );
        // Each alert is an item of the group's `rules:` list, starting with
        // its first field; deeper lines are indented further.
        let mut alerts = alerts.iter();
        for line in yaml.lines() {
            if line.starts_with("  - alert: ")
                && let Some(alert) = alerts.next()
            {
                let lines = alert.comments.iter().flat_map(|c| c.lines());
                out.extend(lines.map(|line| format!("  # {line}\n")));
            }
            out = out + line + "\n";
        }
        PrometheusExport {
            yaml: out,
            warnings,
        }
    }
}

/// Writes `rules` as a Prometheus rule file with the default
/// [`PrometheusExporter`] (one group `vigil`, histograms as summaries).
pub fn to_prometheus_rules(rules: &[Rule]) -> PrometheusExport {
    PrometheusExporter::new().export(rules)
}

/// The one group of a Prometheus rule file (`groups: [..]`).
#[derive(Serialize)]
struct Group<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    rules: &'a [AlertingRule],
}

/// One Prometheus alerting rule, as serialized.
#[derive(Clone, Debug, Serialize)]
struct AlertingRule {
    alert: String,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<String>,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    labels: Labels,
    #[serde(skip_serializing_if = "Labels::is_empty")]
    annotations: Labels,
    /// Comment lines written above the rule.
    #[serde(skip)]
    comments: Vec<String>,
}

/// Appends the Prometheus alerting rules for `rule` (one per threshold) to
/// `out`, the first commented with `note` (if any), and what does not
/// translate exactly to `warnings`.
fn translate(
    rule: &Rule,
    histograms: HistogramExport,
    note: Option<String>,
    out: &mut Vec<AlertingRule>,
    warnings: &mut Vec<String>,
) {
    let mut thresholds: Vec<_> = rule.thresholds.iter().collect();
    thresholds.sort_by_key(|t| t.severity);
    let zero_fill = thresholds.iter().any(|t| match &t.value {
        Limit::Fixed(v) => t.op.holds(0.0, *v),
        Limit::Baseline(_) => !t.op.is_upper(),
    });
    let value = |expr, zero_fill| value_expr(rule, expr, zero_fill, histograms);
    let (promql, mut notes, mut rule_warnings) = value(&rule.expr, zero_fill);
    // `(value OP limit) and on (..) (also)`: the second condition, paired
    // by the labels vigil pairs it by.
    let also = rule.also.as_ref().map(|a| {
        let (also, also_notes, also_warnings) = value(&a.expr, a.op.holds(0.0, a.value));
        // Each value has one note at most: the same one twice are adjacent.
        notes.extend(also_notes);
        notes.dedup();
        rule_warnings.extend(also_warnings.into_iter().map(|w| format!("`also`: {w}")));
        let on = match rule.aggregate {
            Aggregation::PerSeries => String::new(),
            _ => format!(" on ({})", rule.by.join(", ")),
        };
        format!("and{on} ({also} {} {})", a.op, number(a.value))
    });
    // Rule-wide differences, said once per rule.
    rule_warnings.extend(differences(rule, &thresholds, &value(&rule.expr, false).0));
    let name = &rule.name;
    warnings.extend(rule_warnings.iter().map(|w| format!("rule {name:?}: {w}")));
    let nonzero = |d: Duration| (!d.is_zero()).then(|| duration(d));
    let mut comments: Vec<String> = note.into_iter().chain(notes).collect();
    comments.extend(rule_warnings.iter().map(|w| format!("WARNING: {w}")));
    for t in thresholds {
        let severity = rule.severity_label(t.severity);
        let limit = match &t.value {
            Limit::Fixed(v) => number(*v),
            Limit::Baseline(b) => {
                let (window, min_samples) = (duration(b.window), b.min_samples);
                let series = format!("({promql})[{window}:]");
                let text = format!(
                    "{severity} threshold is a dynamic baseline: approximated with a subquery over {window} at the evaluation interval, which includes the current value and does not wait for min_samples ({min_samples})"
                );
                warnings.push(format!("rule {name:?}: {text}"));
                comments.push(format!("WARNING: {text}"));
                match b.method {
                    BaselineMethod::Stddev(k) => {
                        let sign = if t.op.is_upper() { '+' } else { '-' };
                        let k = number(k);
                        format!("(avg_over_time({series}) {sign} {k} * stddev_over_time({series}))")
                    }
                    BaselineMethod::Quantile(q) => {
                        format!("quantile_over_time({}, {series})", number(q))
                    }
                }
            }
        };
        let mut labels = rule.labels.clone();
        labels.insert("severity".to_owned(), severity.to_owned());
        let condition = format!("{promql} {} {limit}", t.op);
        let expr = also
            .as_ref()
            .map_or(condition.clone(), |a| format!("({condition}) {a}"));
        out.push(AlertingRule {
            alert: rule.name.clone(),
            expr,
            for_duration: nonzero(rule.for_duration),
            keep_firing_for: nonzero(rule.keep_firing_for),
            labels,
            annotations: rule.annotations.clone(),
            comments: std::mem::take(&mut comments),
        });
    }
}

/// What `rule` (whose value reads `promql`) means that its exported alerts
/// do not.
fn differences(rule: &Rule, thresholds: &[&Threshold], promql: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = &rule.recover {
        let (op, value) = (r.op, number(r.value));
        out.push(format!(
            "recovery threshold `{op} {value}` (hysteresis) has no Prometheus equivalent: the exported alerts resolve as soon as their threshold stops holding"
        ));
    }
    if let Some(e) = &rule.escalate {
        let notifies = e.receiver.as_ref().map(|r| format!(" or notifies `{r}`"));
        let (after, notifies) = (duration(e.after), notifies.unwrap_or_default());
        out.push(format!(
            "escalation after {after} has no Prometheus equivalent: nothing raises the severity{notifies} (escalate in Alertmanager routing instead)"
        ));
    }
    match rule.no_data {
        NoDataPolicy::Ok => {}
        NoDataPolicy::Alerting => out.push(format!(
            "`no_data: alerting` is not exported: Prometheus alerts only on series that exist; add a rule on `absent({promql})` to alert on missing data"
        )),
        NoDataPolicy::KeepState => out.push(
            "`no_data: keep_state` has no Prometheus equivalent: a missing series stops the alert (after keep_firing_for)"
                .to_owned(),
        ),
    }
    if thresholds.len() > 1 && !rule.for_duration.is_zero() {
        let levels = thresholds.iter().map(|t| rule.severity_label(t.severity));
        let levels = levels.collect::<Vec<_>>().join(", ");
        out.push(format!(
            "vigil moves one alert between severities ({levels}) and counts `for` from the first breach of any of them; Prometheus runs one alert per severity, each waiting its own `for`, and all that hold fire (inhibit the lower ones in Alertmanager)"
        ));
    }
    out
}

/// `metric{a="b",c=~"d"}`.
fn selector<'a>(metric: &str, matchers: impl IntoIterator<Item = &'a Matcher>) -> String {
    let parts: Vec<String> = matchers.into_iter().map(ToString::to_string).collect();
    if parts.is_empty() {
        metric.to_owned()
    } else {
        format!("{metric}{{{}}}", parts.join(","))
    }
}

/// `inner` aggregated with `op` per `by` group.
fn wrap_aggregation(inner: String, op: Aggregation, by: &[String]) -> String {
    let name = match op {
        Aggregation::PerSeries => return inner,
        Aggregation::Sum => "sum",
        Aggregation::Max => "max",
        Aggregation::Min => "min",
        Aggregation::Avg => "avg",
    };
    match by {
        [] => format!("{name}({inner})"),
        _ => format!("{name} by ({}) ({inner})", by.join(", ")),
    }
}

/// PromQL for the value of `expr` in `rule` (before comparing with a
/// threshold), per series or aggregated as the rule says, plus comment
/// lines and warnings about it.
///
/// A ratio's rates are summed as vigil pairs them: per `by` group when the
/// rule sums (the sums are then divided, with no further aggregation), else
/// per series without the `ignoring` labels. With `zero_fill` (a threshold
/// that holds at 0, e.g. `hit ratio < 0.7`) a missing numerator reads 0,
/// as in vigil, where plain PromQL would have no result:
/// `(num or den * 0) / den`.
fn value_expr(
    rule: &Rule,
    expr: &Expr,
    zero_fill: bool,
    histograms: HistogramExport,
) -> (String, Vec<String>, Vec<String>) {
    let (aggregate, by) = (rule.aggregate, rule.by.as_slice());
    let (mut notes, mut warnings) = (Vec::new(), Vec::new());
    let w = expr.window().map(duration).unwrap_or_default();
    let per_series = match expr {
        Expr::Gauge { metric, matchers } => selector(metric, matchers),
        Expr::Rate {
            metric, matchers, ..
        } => {
            notes.push(format!(
                "rate: while a series is younger than {w}, vigil divides its increase by the time its samples span and Prometheus by {w}, so vigil reads higher; with a full window they agree"
            ));
            format!("rate({}[{w}])", selector(metric, matchers))
        }
        Expr::Ratio {
            numerator,
            denominator,
            ignoring,
            ..
        } => {
            let side = |s: &Selector| {
                let rate = format!("rate({}[{w}])", selector(&s.metric, &s.matchers));
                match aggregate {
                    Aggregation::Sum => wrap_aggregation(rate, aggregate, by),
                    _ if ignoring.is_empty() => rate,
                    _ => format!("sum without ({}) ({rate})", ignoring.join(", ")),
                }
            };
            let (num, den) = (side(numerator), side(denominator));
            let ratio = if zero_fill {
                format!("({num} or {den} * 0) / {den}")
            } else {
                format!("{num} / {den}")
            };
            if aggregate == Aggregation::Sum {
                return (ratio, notes, warnings);
            }
            ratio
        }
        Expr::Histogram {
            metric,
            matchers,
            stat,
            ..
        } => {
            let series = |suffix: &str| selector(&format!("{metric}{suffix}"), matchers);
            // vigil renders the function duration histogram with classic
            // buckets whatever the other histograms do (autometrics'
            // dashboards and SLO rules read `_bucket`).
            let buckets = metric == FUNCTION_DURATION || histograms == HistogramExport::Buckets;
            let quantile = match *stat {
                HistogramStat::Mean | HistogramStat::Count => None,
                HistogramStat::Quantile(q) => {
                    notes.push(if buckets {
                        format!("{metric}: read from classic buckets ({metric}_bucket{{le}}): histogram_quantile interpolates within the bucket that holds the quantile")
                    } else {
                        format!("{metric}: read as a vigil summary: the quantile=\"{q}\" series covers the exporter's sliding window (MonitorBuilder::window), not {w}; {q} must be one of the exporter's quantiles")
                    });
                    Some(q)
                }
                HistogramStat::Max => {
                    warnings.push(format!(
                        "histogram max over {w} has no exact Prometheus equivalent: exported as {}",
                        if buckets {
                            "histogram_quantile(1, ..), the upper bound of the highest non-empty bucket"
                        } else {
                            "the summary's quantile=\"1\", the maximum over the exporter's sliding window"
                        }
                    ));
                    Some(1.0)
                }
            };
            match (quantile.map(number), stat) {
                (Some(q), _) if buckets => {
                    format!("histogram_quantile({q}, rate({}[{w}]))", series("_bucket"))
                }
                // The alert must not carry the `quantile` label vigil's
                // alert does not have.
                (Some(q), _) => {
                    let q = Matcher::equal("quantile", &q);
                    let series = selector(metric, matchers.iter().chain([&q]));
                    format!("max without (quantile) ({series})")
                }
                (None, HistogramStat::Mean) => {
                    let (sum, count) = (series("_sum"), series("_count"));
                    format!("rate({sum}[{w}]) / rate({count}[{w}])")
                }
                (None, _) => format!("increase({}[{w}])", series("_count")),
            }
        }
    };
    (wrap_aggregation(per_series, aggregate, by), notes, warnings)
}

/// The comment at the top of every exported file, up to the counts.
const HEADER: &str = include_str!("header.txt");
