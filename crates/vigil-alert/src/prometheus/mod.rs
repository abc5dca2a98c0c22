//! Prometheus rule export: vigil [`Rule`](crate::Rule)s as a Prometheus rule file, so a
//! fleet can move evaluation into Prometheus and send alerts to
//! Alertmanager.
//!
//! Each rule becomes one Prometheus alerting rule per threshold (the
//! `severity` label tells them apart, with the value the rule gives the
//! level: `warning` for a threshold written `warning`, see
//! [`Rule::severity_label`](crate::Rule::severity_label)), with the same `for`,
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
//! silently. The file is the serde form of small structs after Prometheus'
//! rule-file format, accepted by `promtool check rules`.
//!
//! ```
//! # #[cfg(feature = "prometheus")] {
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
//!     r#"expr: sum by (function) (rate(function_calls_total{result="error"}[5m])) / sum by (function) (rate(function_calls_total[5m])) > 0.05"#
//! ));
//! assert!(export.yaml.contains("severity: critical"));
//! # }
//! # Ok::<(), vigil_alert::Error>(())
//! ```

#[cfg(feature = "prometheus")]
mod export;

use std::time::Duration;

use jiff::fmt::friendly::{Spacing, SpanPrinter};
use jiff::{Span, SpanRound, Unit};

#[cfg(feature = "prometheus")]
pub use export::{HistogramExport, PrometheusExport, PrometheusExporter, to_prometheus_rules};

/// A PromQL number literal.
#[cfg(feature = "prometheus")]
pub(crate) fn number(v: f64) -> String {
    match v {
        f64::INFINITY => "+Inf".to_owned(),
        f64::NEG_INFINITY => "-Inf".to_owned(),
        // Rust writes NaN as `NaN`, as PromQL does.
        v => v.to_string(),
    }
}

/// A Prometheus duration (`1h30m`, `3d`, `250ms`), rounded to
/// milliseconds (and to at least 1ms).
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis().max(u128::from(!d.is_zero()));
    let days = SpanRound::new().largest(Unit::Day).days_are_24_hours();
    let span = i64::try_from(ms)
        .ok()
        .and_then(|ms| Span::new().try_milliseconds(ms).ok());
    match span.and_then(|span| span.round(days).ok()) {
        Some(span) => SpanPrinter::new()
            .spacing(Spacing::None)
            .span_to_string(&span),
        // Beyond what jiff spans (about 20 000 years).
        None => format!("{ms}ms"),
    }
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
        assert_eq!(duration(d(86_400 + 3661)), "1d1h1m1s");
        assert_eq!(duration(Duration::MAX), "18446744073709551615999ms");
    }

    #[test]
    #[cfg(feature = "prometheus")]
    fn numbers_are_promql_literals() {
        assert_eq!(number(0.2), "0.2");
        assert_eq!(number(100.0), "100");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(-1e-7), "-0.0000001");
    }
}
