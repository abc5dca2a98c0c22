//! Prometheus rule export: vigil [`Rule`]s as a Prometheus rule file, so a
//! fleet can move evaluation into Prometheus and send alerts to
//! Alertmanager.
//!
//! Each rule becomes one Prometheus alerting rule per threshold (the
//! `severity` label tells them apart, with the value the rule gives the
//! level: `warning` for a threshold written `warning`, see
//! [`Rule::severity_label`]), with the same `for`,
//! `keep_firing_for`, labels and annotations. The value a rule reads maps
//! to PromQL:
//!
//! | vigil | PromQL |
//! |---|---|
//! | gauge | `name{matchers}` |
//! | counter rate | `rate(name{matchers}[window])` |
//! | ratio, `aggregate: sum` | `sum by (..) (rate(num[w])) / sum by (..) (rate(den[w]))` |
//! | ratio, per series | `sum without (ignoring) (rate(num[w])) / sum without (ignoring) (rate(den[w]))` |
//! | histogram quantile, summary | `max without (quantile) (name{matchers, quantile="0.95"})` |
//! | histogram quantile, buckets | `histogram_quantile(0.95, rate(name_bucket{matchers}[w]))` |
//! | histogram mean | `rate(name_sum[w]) / rate(name_count[w])` |
//! | histogram count | `increase(name_count[w])` |
//! | histogram max | summary `quantile="1"` or `histogram_quantile(1, ..)`: approximate, warned |
//! | `aggregate: max` + `by` | `max by (..) (...)` |
//! | [`also`](crate::Rule::also) condition | `(value > x) and on (by) (also > y)`: `on (by)` for aggregated rules (`on ()` without `by`), all labels per series |
//!
//! Where vigil means something Prometheus cannot say (a recovery threshold,
//! a dynamic baseline, escalation, `no_data: alerting | keep_state`, a
//! histogram max), the export keeps the rule, says what differs in a YAML
//! comment next to it, and returns the same text in
//! [`PrometheusExport::warnings`]: it never changes a rule's meaning
//! silently. The output is accepted by `promtool check rules`.
//!
//! ```
//! use std::time::Duration;
//! use vigil_alert::prometheus::to_prometheus_rules;
//! use vigil_alert::{Comparison, Rule, Severity};
//!
//! let rule = Rule::builder("HighErrorRate")
//!     .error_ratio("function_calls_total", "result", "error", Duration::from_secs(300))
//!     .aggregate(vigil_alert::Aggregation::Sum)
//!     .by(["function"])
//!     .threshold(Severity::Medium, Comparison::Greater, 0.01)
//!     .threshold(Severity::Critical, Comparison::Greater, 0.05)
//!     .for_duration(Duration::from_secs(300))
//!     .build()?;
//! let export = to_prometheus_rules(&[rule]);
//! assert!(export.yaml.contains(
//!     r#"expr: 'sum by (function) (rate(function_calls_total{result="error"}[5m])) / sum by (function) (rate(function_calls_total[5m])) > 0.05'"#
//! ));
//! assert!(export.yaml.contains("severity: 'critical'"));
//! # Ok::<(), vigil_alert::Error>(())
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use crate::baseline::BaselineMethod;
use crate::labels::Labels;
use crate::rule::{Aggregation, Expr, Limit, NoDataPolicy, Selector};
use crate::{HistogramStat, Matcher, Rule};

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

/// Writes Prometheus rule files; see the [module docs](self).
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
#[derive(Clone, Debug)]
#[must_use]
pub struct PrometheusExporter {
    group: String,
    interval: Option<Duration>,
    histograms: HistogramExport,
}

impl Default for PrometheusExporter {
    fn default() -> Self {
        Self::new()
    }
}

impl PrometheusExporter {
    /// One group named `vigil`, Prometheus' global evaluation interval,
    /// histograms read as summaries.
    pub fn new() -> Self {
        PrometheusExporter {
            group: "vigil".to_owned(),
            interval: None,
            histograms: HistogramExport::Summary,
        }
    }

    /// Names the rule group.
    pub fn group(mut self, name: impl Into<String>) -> Self {
        self.group = name.into();
        self
    }

    /// Sets the group's evaluation `interval` (default: Prometheus' global
    /// `evaluation_interval`). Use the interval vigil evaluates at to keep
    /// `for` timing the same.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// How histograms are exposed (default [`HistogramExport::Summary`]).
    pub fn histograms(mut self, histograms: HistogramExport) -> Self {
        self.histograms = histograms;
        self
    }

    /// Writes the rule file for `rules`.
    pub fn export(&self, rules: &[Rule]) -> PrometheusExport {
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for rule in rules {
            translate(rule, self.histograms, &mut out, &mut warnings);
        }
        PrometheusExport {
            yaml: render(
                &self.group,
                self.interval,
                self.histograms,
                rules.len(),
                &out,
            ),
            warnings,
        }
    }
}

/// Writes `rules` as a Prometheus rule file with the default
/// [`PrometheusExporter`] (one group `vigil`, histograms as summaries).
pub fn to_prometheus_rules(rules: &[Rule]) -> PrometheusExport {
    PrometheusExporter::new().export(rules)
}

/// One Prometheus alerting rule, before rendering.
#[derive(Clone, Debug)]
pub(crate) struct AlertingRule {
    pub(crate) alert: String,
    pub(crate) expr: String,
    pub(crate) for_duration: Duration,
    pub(crate) keep_firing_for: Duration,
    pub(crate) labels: Labels,
    pub(crate) annotations: Labels,
    /// Comment lines written above the rule.
    pub(crate) comments: Vec<String>,
}

/// The PromQL for a rule's value (before comparing with a threshold), plus
/// comment lines and warnings about it.
pub(crate) struct ValueExpr {
    pub(crate) promql: String,
    pub(crate) notes: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

/// Appends the Prometheus alerting rules for `rule` (one per threshold) to
/// `out`, and what does not translate exactly to `warnings`.
pub(crate) fn translate(
    rule: &Rule,
    histograms: HistogramExport,
    out: &mut Vec<AlertingRule>,
    warnings: &mut Vec<String>,
) {
    let mut value = value_expr(rule, histograms);
    // `(value OP limit) and on (..) (also)`: the second condition, paired
    // by the labels vigil pairs it by.
    let also = rule.also.as_ref().map(|a| {
        let v = value_expr_of(&a.expr, rule.aggregate, &rule.by, histograms);
        let promql = if a.op.holds(0.0, a.value) {
            value_expr_zero_filled(&a.expr, rule.aggregate, &rule.by).unwrap_or(v.promql)
        } else {
            v.promql
        };
        for note in v.notes {
            if !value.notes.contains(&note) {
                value.notes.push(note);
            }
        }
        value
            .warnings
            .extend(v.warnings.into_iter().map(|w| format!("`also`: {w}")));
        let on = match (rule.aggregate, rule.by.is_empty()) {
            (Aggregation::PerSeries, _) => String::new(),
            (_, true) => " on ()".to_owned(),
            (_, false) => format!(" on ({})", rule.by.join(", ")),
        };
        format!("and{on} ({promql} {} {})", a.op, number(a.value))
    });
    // Rule-wide differences, said once per rule.
    let mut rule_warnings = value.warnings;
    if let Some(r) = &rule.recover {
        rule_warnings.push(format!(
            "recovery threshold `{} {}` (hysteresis) has no Prometheus equivalent: the exported alerts resolve as soon as their threshold stops holding",
            r.op,
            number(r.value)
        ));
    }
    if let Some(e) = &rule.escalate {
        let mut text = format!(
            "escalation after {} has no Prometheus equivalent: nothing raises the severity",
            duration(e.after)
        );
        if let Some(receiver) = &e.receiver {
            let _ = write!(text, " or notifies `{receiver}`");
        }
        text.push_str(" (escalate in Alertmanager routing instead)");
        rule_warnings.push(text);
    }
    match rule.no_data {
        NoDataPolicy::Ok => {}
        NoDataPolicy::Alerting => rule_warnings.push(format!(
            "`no_data: alerting` is not exported: Prometheus alerts only on series that exist; add a rule on `absent({})` to alert on missing data",
            first_selector(rule)
        )),
        NoDataPolicy::KeepState => rule_warnings.push(
            "`no_data: keep_state` has no Prometheus equivalent: a missing series stops the alert (after keep_firing_for)"
                .to_owned(),
        ),
    }
    let mut thresholds: Vec<_> = rule.thresholds.iter().collect();
    thresholds.sort_by_key(|t| t.severity);
    if thresholds.len() > 1 && !rule.for_duration.is_zero() {
        rule_warnings.push(format!(
            "vigil moves one alert between severities ({}) and counts `for` from the first breach of any of them; Prometheus runs one alert per severity, each waiting its own `for`, and all that hold fire (inhibit the lower ones in Alertmanager)",
            thresholds
                .iter()
                .map(|t| rule.severity_label(t.severity))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let zero_fill = thresholds.iter().any(|t| match &t.value {
        Limit::Fixed(v) => t.op.holds(0.0, *v),
        Limit::Baseline(_) => !t.op.is_upper(),
    });
    let promql = if zero_fill {
        value_expr_zero_filled(&rule.expr, rule.aggregate, &rule.by).unwrap_or(value.promql)
    } else {
        value.promql
    };
    for w in &rule_warnings {
        warnings.push(format!("rule {:?}: {w}", rule.name));
    }
    let mut first = true;
    for t in thresholds {
        let mut comments = Vec::new();
        if first {
            comments.extend(value.notes.iter().cloned());
            comments.extend(rule_warnings.iter().map(|w| format!("WARNING: {w}")));
        }
        let limit = match &t.value {
            Limit::Fixed(v) => number(*v),
            Limit::Baseline(b) => {
                let window = duration(b.window);
                let series = format!("({promql})[{window}:]");
                let limit = match b.method {
                    BaselineMethod::Stddev(k) => {
                        let sign = if t.op.is_upper() { '+' } else { '-' };
                        format!(
                            "(avg_over_time({series}) {sign} {} * stddev_over_time({series}))",
                            number(k)
                        )
                    }
                    BaselineMethod::Quantile(q) => {
                        format!("quantile_over_time({}, {series})", number(q))
                    }
                };
                let text = format!(
                    "{} threshold is a dynamic baseline: approximated with a subquery over {window} at the evaluation interval, which includes the current value and does not wait for min_samples ({})",
                    rule.severity_label(t.severity),
                    b.min_samples
                );
                warnings.push(format!("rule {:?}: {text}", rule.name));
                comments.push(format!("WARNING: {text}"));
                limit
            }
        };
        let mut labels = rule.labels.clone();
        labels.insert(
            "severity".to_owned(),
            rule.severity_label(t.severity).to_owned(),
        );
        let condition = format!("{promql} {} {limit}", t.op);
        out.push(AlertingRule {
            alert: rule.name.clone(),
            expr: match &also {
                Some(also) => format!("({condition}) {also}"),
                None => condition,
            },
            for_duration: rule.for_duration,
            keep_firing_for: rule.keep_firing_for,
            labels,
            annotations: rule.annotations.clone(),
            comments,
        });
        first = false;
    }
}

/// The first selector of a rule, for `absent(...)` hints.
fn first_selector(rule: &Rule) -> String {
    match &rule.expr {
        Expr::Gauge { metric, matchers }
        | Expr::Rate {
            metric, matchers, ..
        }
        | Expr::Histogram {
            metric, matchers, ..
        } => selector(metric, matchers, None),
        Expr::Ratio { denominator, .. } => {
            selector(&denominator.metric, &denominator.matchers, None)
        }
    }
}

/// `metric{a="b",c=~"d"}`.
pub(crate) fn selector(metric: &str, matchers: &[Matcher], extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    if let Some((name, value)) = extra {
        parts.push(Matcher::equal(name, value).to_string());
    }
    if parts.is_empty() {
        metric.to_owned()
    } else {
        format!("{metric}{{{}}}", parts.join(","))
    }
}

fn selector_of(s: &Selector) -> String {
    selector(&s.metric, &s.matchers, None)
}

/// A PromQL number literal.
pub(crate) fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

/// A Prometheus duration (`1h30m`, `90s`, `250ms`), rounded to
/// milliseconds (and to at least 1ms).
pub(crate) fn duration(d: Duration) -> String {
    let mut ms = d.as_millis().max(u128::from(!d.is_zero()));
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            let _ = write!(out, "{}{unit}", ms / size);
            ms %= size;
        }
    }
    out
}

fn wrap_aggregation(inner: String, op: Aggregation, by: &[String]) -> String {
    let name = match op {
        Aggregation::PerSeries => return inner,
        Aggregation::Sum => "sum",
        Aggregation::Max => "max",
        Aggregation::Min => "min",
        Aggregation::Avg => "avg",
    };
    if by.is_empty() {
        format!("{name}({inner})")
    } else {
        format!("{name} by ({}) ({inner})", by.join(", "))
    }
}

/// PromQL for the value of `rule` (per series, or aggregated as the rule
/// says).
pub(crate) fn value_expr(rule: &Rule, histograms: HistogramExport) -> ValueExpr {
    value_expr_of(&rule.expr, rule.aggregate, &rule.by, histograms)
}

/// PromQL for the value of `expr`, per series or aggregated.
fn value_expr_of(
    expr: &Expr,
    aggregate: Aggregation,
    by: &[String],
    histograms: HistogramExport,
) -> ValueExpr {
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    let per_series = match expr {
        Expr::Gauge { metric, matchers } => selector(metric, matchers, None),
        Expr::Rate {
            metric,
            matchers,
            window,
        } => {
            let w = duration(*window);
            notes.push(format!(
                "rate: while a series is younger than {w}, vigil divides its increase by the time its samples span and Prometheus by {w}, so vigil reads higher; with a full window they agree"
            ));
            format!("rate({}[{w}])", selector(metric, matchers, None))
        }
        Expr::Ratio {
            numerator,
            denominator,
            ignoring,
            window,
        } => {
            let w = duration(*window);
            let num = format!("rate({}[{w}])", selector_of(numerator));
            let den = format!("rate({}[{w}])", selector_of(denominator));
            if aggregate == Aggregation::Sum {
                // vigil divides the summed numerator by the summed
                // denominator per `by` group.
                let promql = format!(
                    "{} / {}",
                    wrap_aggregation(num, Aggregation::Sum, by),
                    wrap_aggregation(den, Aggregation::Sum, by)
                );
                return ValueExpr {
                    promql,
                    notes,
                    warnings,
                };
            }
            ratio_per_key(&num, &den, ignoring)
        }
        Expr::Histogram {
            metric,
            matchers,
            stat,
            window,
        } => {
            let w = duration(*window);
            // vigil renders the function duration histogram with classic
            // buckets whatever the other histograms do (autometrics'
            // dashboards and SLO rules read `_bucket`).
            let histograms = if metric == FUNCTION_DURATION {
                HistogramExport::Buckets
            } else {
                histograms
            };
            match (stat, histograms) {
                (HistogramStat::Quantile(q), HistogramExport::Summary) => {
                    notes.push(format!(
                        "{metric}: read as a vigil summary: the quantile=\"{q}\" series covers the exporter's sliding window (MonitorBuilder::window), not {w}; {q} must be one of the exporter's quantiles"
                    ));
                    // The alert must not carry the `quantile` label vigil's
                    // alert does not have.
                    format!(
                        "max without (quantile) ({})",
                        selector(metric, matchers, Some(("quantile", &q.to_string())))
                    )
                }
                (HistogramStat::Quantile(q), HistogramExport::Buckets) => {
                    notes.push(format!(
                        "{metric}: read from classic buckets ({metric}_bucket{{le}}): histogram_quantile interpolates within the bucket that holds the quantile"
                    ));
                    format!(
                        "histogram_quantile({}, rate({}[{w}]))",
                        number(*q),
                        selector(&format!("{metric}_bucket"), matchers, None)
                    )
                }
                (HistogramStat::Mean, _) => format!(
                    "rate({}[{w}]) / rate({}[{w}])",
                    selector(&format!("{metric}_sum"), matchers, None),
                    selector(&format!("{metric}_count"), matchers, None)
                ),
                (HistogramStat::Count, _) => format!(
                    "increase({}[{w}])",
                    selector(&format!("{metric}_count"), matchers, None)
                ),
                (HistogramStat::Max, HistogramExport::Summary) => {
                    warnings.push(format!(
                        "histogram max over {w} has no exact Prometheus equivalent: exported as the summary's quantile=\"1\", the maximum over the exporter's sliding window"
                    ));
                    format!(
                        "max without (quantile) ({})",
                        selector(metric, matchers, Some(("quantile", "1")))
                    )
                }
                (HistogramStat::Max, HistogramExport::Buckets) => {
                    warnings.push(format!(
                        "histogram max over {w} has no exact Prometheus equivalent: exported as histogram_quantile(1, ..), the upper bound of the highest non-empty bucket"
                    ));
                    format!(
                        "histogram_quantile(1, rate({}[{w}]))",
                        selector(&format!("{metric}_bucket"), matchers, None)
                    )
                }
            }
        }
    };
    ValueExpr {
        promql: wrap_aggregation(per_series, aggregate, by),
        notes,
        warnings,
    }
}

/// `num / den` paired by labels minus `ignoring`, each side summed per key
/// as vigil does.
fn ratio_per_key(num: &str, den: &str, ignoring: &[String]) -> String {
    if ignoring.is_empty() {
        format!("{num} / {den}")
    } else {
        let without = ignoring.join(", ");
        format!("sum without ({without}) ({num}) / sum without ({without}) ({den})")
    }
}

/// For a ratio whose threshold holds at 0 (e.g. `hit ratio < 0.7`): vigil
/// reads 0 for a key with a denominator but no numerator series, where
/// plain PromQL would have no result; `(num or den * 0) / den` keeps that.
fn value_expr_zero_filled(expr: &Expr, aggregate: Aggregation, by: &[String]) -> Option<String> {
    let Expr::Ratio {
        numerator,
        denominator,
        ignoring,
        window,
    } = expr
    else {
        return None;
    };
    let w = duration(*window);
    let num = format!("rate({}[{w}])", selector_of(numerator));
    let den = format!("rate({}[{w}])", selector_of(denominator));
    let (num, den) = if aggregate == Aggregation::Sum {
        (
            wrap_aggregation(num, Aggregation::Sum, by),
            wrap_aggregation(den, Aggregation::Sum, by),
        )
    } else if ignoring.is_empty() {
        (num, den)
    } else {
        let without = ignoring.join(", ");
        (
            format!("sum without ({without}) ({num})"),
            format!("sum without ({without}) ({den})"),
        )
    };
    let ratio = format!("({num} or {den} * 0) / {den}");
    Some(if aggregate == Aggregation::Sum {
        ratio
    } else {
        wrap_aggregation(ratio, aggregate, by)
    })
}

/// A YAML scalar: single-quoted unless it holds control characters (then
/// double-quoted with JSON escapes, which YAML reads the same way).
pub(crate) fn yaml_string(s: &str) -> String {
    if s.chars().any(char::is_control) {
        serde_json::to_string(s).expect("serializing a string to JSON cannot fail")
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// A label or annotation name as a YAML key (they are `[a-zA-Z_][a-zA-Z0-9_]*`,
/// but quote anything else rather than trust that).
fn yaml_key(s: &str) -> String {
    if crate::labels::is_valid_label_name(s) {
        s.to_owned()
    } else {
        yaml_string(s)
    }
}

fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{indent}# {line}");
    }
}

const HEADER: &str = "\
Generated by vigil-alert from vigil alert rules.
One Prometheus alerting rule per vigil threshold; the `severity` label (the name each
rule gives the level: low, medium, high, critical, or as configured, e.g. warning)
tells them apart. vigil mutes the lower severities of an alert while a higher one
fires; in Alertmanager, inhibit with e.g.
  source_matchers: ['severity=\"critical\"'], target_matchers: ['severity!=\"critical\"'],
  equal: [alertname, <the alert's other labels>]";

pub(crate) fn render(
    group: &str,
    interval: Option<Duration>,
    histograms: HistogramExport,
    rule_count: usize,
    rules: &[AlertingRule],
) -> String {
    let mut out = String::new();
    comment(&mut out, "", HEADER);
    let _ = writeln!(
        out,
        "# {rule_count} vigil rule(s), {} Prometheus alerting rule(s). Histograms are read as {}.",
        rules.len(),
        match histograms {
            HistogramExport::Summary => "summaries (name{quantile=\"..\"}, name_sum, name_count)",
            HistogramExport::Buckets =>
                "classic histograms (name_bucket{le=\"..\"}, name_sum, name_count)",
        }
    );
    out.push_str("groups:\n");
    let _ = writeln!(out, "  - name: {}", yaml_string(group));
    if let Some(i) = interval {
        let _ = writeln!(out, "    interval: {}", duration(i));
    }
    if rules.is_empty() {
        out.push_str("    rules: []\n");
        return out;
    }
    out.push_str("    rules:\n");
    for r in rules {
        for c in &r.comments {
            comment(&mut out, "      ", c);
        }
        let _ = writeln!(out, "      - alert: {}", yaml_string(&r.alert));
        let _ = writeln!(out, "        expr: {}", yaml_string(&r.expr));
        if !r.for_duration.is_zero() {
            let _ = writeln!(out, "        for: {}", duration(r.for_duration));
        }
        if !r.keep_firing_for.is_zero() {
            let _ = writeln!(
                out,
                "        keep_firing_for: {}",
                duration(r.keep_firing_for)
            );
        }
        if !r.labels.is_empty() {
            out.push_str("        labels:\n");
            for (k, v) in &r.labels {
                let _ = writeln!(out, "          {}: {}", yaml_key(k), yaml_string(v));
            }
        }
        if !r.annotations.is_empty() {
            out.push_str("        annotations:\n");
            for (k, v) in &r.annotations {
                let _ = writeln!(out, "          {}: {}", yaml_key(k), yaml_string(v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_prometheus_units() {
        let d = Duration::from_secs;
        assert_eq!(duration(d(300)), "5m");
        assert_eq!(duration(d(90)), "1m30s");
        assert_eq!(duration(d(86_400 * 3)), "3d");
        assert_eq!(duration(d(5400)), "1h30m");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_nanos(10)), "1ms");
        assert_eq!(duration(Duration::ZERO), "0s");
    }

    #[test]
    fn numbers_are_promql_literals() {
        assert_eq!(number(0.2), "0.2");
        assert_eq!(number(100.0), "100");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(-1e-7), "-0.0000001");
    }

    #[test]
    fn yaml_strings_are_quoted_safely() {
        assert_eq!(yaml_string("it's"), "'it''s'");
        assert_eq!(yaml_string("a\nb"), "\"a\\nb\"");
        assert_eq!(yaml_string(r#"x{a="b"}"#), r#"'x{a="b"}'"#);
    }
}
