//! What the human-facing notifiers (Slack, email, templated webhooks) say
//! about an alert: its status and severity words, its value and threshold,
//! the labels worth showing, its summary and time, one implementation for
//! all of them.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use crate::{Alert, AlertStatus, Comparison, Limit, Notification, Rule, Severity};

/// Labels every alert carries and every message already shows.
const SHOWN_ELSEWHERE: [&str; 2] = ["alertname", "severity"];

/// An alert's threshold as notifications show it: `> 0.2`, or the bare
/// value when the comparison is not known (a `threshold` annotation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ShownThreshold {
    pub(crate) op: Option<Comparison>,
    pub(crate) value: f64,
}

impl fmt::Display for ShownThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Some(op) => write!(f, "{op} {}", self.value),
            None => write!(f, "{}", self.value),
        }
    }
}

/// The fixed thresholds of some rules, by rule name and severity: an
/// [`Alert`] carries its value but not the limit it crossed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Thresholds(HashMap<(String, Severity), ShownThreshold>);

impl Thresholds {
    /// Adds the fixed thresholds of `rules` (dynamic ones have no single
    /// value to show).
    pub(crate) fn add(&mut self, rules: impl IntoIterator<Item = impl Borrow<Rule>>) {
        for rule in rules {
            let rule = rule.borrow();
            for threshold in &rule.thresholds {
                if let Limit::Fixed(value) = threshold.value {
                    let shown = ShownThreshold {
                        op: Some(threshold.op),
                        value,
                    };
                    self.0
                        .insert((rule.name.clone(), threshold.severity), shown);
                }
            }
        }
    }

    /// The threshold `alert` crossed: its rule's, else a numeric
    /// `threshold` annotation, else none.
    pub(crate) fn of(&self, alert: &Alert) -> Option<ShownThreshold> {
        let key = (alert.rule.clone(), alert.severity);
        self.0.get(&key).copied().or_else(|| {
            let value = alert.annotations.get("threshold")?.trim().parse().ok()?;
            Some(ShownThreshold { op: None, value })
        })
    }
}

/// `firing` or `resolved`.
pub(crate) fn status_word(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

/// The severity as the rule spells it (its `severity` label, e.g.
/// `warning`), else the level's name.
pub(crate) fn severity_word(alert: &Alert) -> &str {
    alert
        .labels
        .get("severity")
        .map_or(alert.severity.as_str(), String::as_str)
}

/// The value as written in text: shortest exact decimal, or `n/a` when
/// the series was absent.
pub(crate) fn value_text(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| v.to_string())
}

/// The `summary` annotation, else `description`.
pub(crate) fn summary(alert: &Alert) -> Option<&str> {
    ["summary", "description"]
        .iter()
        .find_map(|key| alert.annotations.get(*key).filter(|v| !v.is_empty()))
        .map(String::as_str)
}

/// The labels that identify the instance (all but `alertname` and
/// `severity`), in name order.
pub(crate) fn instance_labels(alert: &Alert) -> impl Iterator<Item = (&str, &str)> {
    let shown = |(name, _): &(&String, &String)| !SHOWN_ELSEWHERE.contains(&name.as_str());
    let pairs = alert.labels.iter().filter(shown);
    pairs.map(|(name, value)| (name.as_str(), value.as_str()))
}

/// When the alert's status began: its end if resolved, else its start.
pub(crate) fn status_time(alert: &Alert) -> SystemTime {
    match alert.status {
        AlertStatus::Resolved => alert.ends_at.unwrap_or(alert.starts_at),
        AlertStatus::Firing => alert.starts_at,
    }
}

/// `[FIRING:2] HighErrorRate, HighLatency for oncall`: the status, how
/// many alerts, their rule names (each once) and the receiver.
pub(crate) fn headline(notification: &Notification) -> String {
    let mut rules: Vec<&str> = Vec::new();
    for alert in &notification.alerts {
        if !rules.contains(&alert.rule.as_str()) {
            rules.push(&alert.rule);
        }
    }
    let status = status_word(notification.status).to_ascii_uppercase();
    let count = notification.alerts.len();
    format!(
        "[{status}:{count}] {} for {}",
        rules.join(", "),
        notification.receiver
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::labels;

    fn alert(rule: &str, severity: Severity) -> Alert {
        Alert {
            rule: rule.into(),
            labels: labels([
                ("alertname", rule),
                ("severity", "warning"),
                ("route", "/a"),
            ]),
            annotations: labels([("threshold", "7")]),
            status: AlertStatus::Firing,
            severity,
            value: Some(9.5),
            starts_at: UNIX_EPOCH,
            ends_at: None,
            silenced: false,
            inhibited: false,
            escalated: false,
        }
    }

    #[test]
    fn thresholds_come_from_the_rule_then_the_annotation() {
        let rule = Rule::builder("Slow")
            .gauge("latency")
            .threshold(Severity::Medium, Comparison::Greater, 0.5)
            .build()
            .unwrap();
        let mut thresholds = Thresholds::default();
        thresholds.add([&rule]);
        let shown = thresholds.of(&alert("Slow", Severity::Medium)).unwrap();
        assert_eq!(shown.to_string(), "> 0.5");
        let other = thresholds.of(&alert("Other", Severity::Medium)).unwrap();
        assert_eq!(other.to_string(), "7");
        let mut bare = alert("Other", Severity::Medium);
        bare.annotations.clear();
        assert_eq!(thresholds.of(&bare), None);
    }

    #[test]
    fn words_and_labels() {
        let mut a = alert("Slow", Severity::Medium);
        assert_eq!(severity_word(&a), "warning");
        assert_eq!(instance_labels(&a).collect::<Vec<_>>(), [("route", "/a")]);
        assert_eq!(value_text(a.value), "9.5");
        assert_eq!(value_text(None), "n/a");
        a.status = AlertStatus::Resolved;
        a.ends_at = Some(UNIX_EPOCH + Duration::from_secs(5));
        assert_eq!(status_time(&a), UNIX_EPOCH + Duration::from_secs(5));
        let n = Notification {
            receiver: "oncall".into(),
            group_key: String::new(),
            group_labels: crate::Labels::new(),
            status: AlertStatus::Firing,
            alerts: vec![alert("A", Severity::Low), alert("A", Severity::High), a],
            common_labels: crate::Labels::new(),
            common_annotations: crate::Labels::new(),
        };
        assert_eq!(headline(&n), "[FIRING:3] A, Slow for oncall");
    }
}
