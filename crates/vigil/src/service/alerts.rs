//! The alert engine's firing alerts and history in the performance API's
//! shapes.

use std::time::SystemTime;

use vigil_alert::{Alert, AlertStatus, Engine, Limit, Rule, Severity, Transition};
use vigil_service::health::SeverityCounts;

use super::{ActiveAlert, AlertEvent};

/// The firing alerts at `now`, most severe first.
pub(super) fn active(engine: &Engine, now: SystemTime) -> Vec<ActiveAlert> {
    let mut alerts: Vec<&Alert> = Vec::new();
    let firing = engine.alerts(now);
    alerts.extend(firing.iter().filter(|a| a.status == AlertStatus::Firing));
    alerts.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(&b.rule)));
    alerts
        .into_iter()
        .map(|alert| {
            let rule = engine.rules().iter().find(|r| r.name == alert.rule);
            ActiveAlert {
                name: alert.rule.clone(),
                metric_name: rule
                    .and_then(|r| r.expr.metrics().next())
                    .unwrap_or_default()
                    .to_owned(),
                labels: alert.labels.clone(),
                threshold: rule.and_then(|r| threshold(r, alert.severity)),
                current_value: alert.value,
                severity: alert.severity.as_str().to_owned(),
                message: message(alert),
                timestamp: alert.starts_at,
            }
        })
        .collect()
}

/// The firing alerts at `now` by severity.
pub(super) fn firing(engine: &Engine, now: SystemTime) -> SeverityCounts {
    let mut counts = SeverityCounts::default();
    for alert in engine.alerts(now) {
        if alert.status != AlertStatus::Firing {
            continue;
        }
        *match alert.severity {
            Severity::Low => &mut counts.low,
            Severity::Medium => &mut counts.medium,
            Severity::High => &mut counts.high,
            Severity::Critical => &mut counts.critical,
        } += 1;
    }
    counts
}

/// The fixed limit of `rule`'s threshold for `severity`.
fn threshold(rule: &Rule, severity: Severity) -> Option<f64> {
    rule.thresholds
        .iter()
        .find(|t| t.severity == severity)
        .and_then(|t| match t.value {
            Limit::Fixed(value) => Some(value),
            Limit::Baseline(_) => None,
        })
}

/// The `summary` or `description` annotation, or the rule's name.
fn message(alert: &Alert) -> String {
    ["summary", "description"]
        .iter()
        .find_map(|key| alert.annotations.get(*key).filter(|v| !v.is_empty()))
        .cloned()
        .unwrap_or_else(|| alert.rule.clone())
}

/// Every recorded transition, oldest first.
pub(super) fn history(engine: &Engine) -> Vec<AlertEvent> {
    engine.history().iter().map(event).collect()
}

fn event(t: &Transition) -> AlertEvent {
    AlertEvent {
        name: t.rule.clone(),
        labels: t.labels.clone(),
        from: t.from.to_string(),
        to: t.to.to_string(),
        severity: t.severity.map(|s| s.as_str().to_owned()),
        value: t.value,
        timestamp: t.at,
    }
}
