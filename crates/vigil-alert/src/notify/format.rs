//! What the human-facing notifiers (Slack, email, templated webhooks) say
//! about an alert: its status and severity words, its value and threshold,
//! the labels worth showing, its summary and time, one implementation for
//! all of them; and how URLs, which may hold secrets, are shown.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

use crate::{Alert, AlertStatus, Comparison, Limit, Notification, Rule, Severity};

/// The settings the Slack and email notifiers' builders share (see
/// `notifier_setters!`): a link per alert, the rules whose thresholds are
/// shown, the notifier's name and the root certificates it trusts. Its
/// `Debug` output shows the link [masked](masked_text) and how many
/// certificates there are.
#[derive(Clone, Default)]
pub(crate) struct Shared {
    pub(crate) link: Option<String>,
    pub(crate) thresholds: Thresholds,
    pub(crate) name: Option<String>,
    pub(crate) root_certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("link", &self.link.as_deref().map(|l| masked_text(l, true)))
            .field("name", &self.name)
            .field("root_certificates", &self.root_certificates.len())
            .finish_non_exhaustive()
    }
}

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
            Some(op) => write!(f, "{op} {}", number_text(self.value)),
            None => f.write_str(&number_text(self.value)),
        }
    }
}

/// The fixed thresholds of some rules, by rule name and severity: an
/// [`Alert`] carries its value but not the limit it crossed. Rule names
/// need not be unique: a (name, severity) whose rules disagree maps to
/// `None`, shown as unknown rather than as one of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Thresholds(HashMap<(String, Severity), Option<ShownThreshold>>);

impl Thresholds {
    /// Adds the fixed thresholds of `rules` (dynamic ones have no single
    /// value to show).
    pub(crate) fn add(&mut self, rules: impl IntoIterator<Item = impl Borrow<Rule>>) {
        for rule in rules {
            let rule = rule.borrow();
            for threshold in &rule.thresholds {
                let Limit::Fixed(value) = threshold.value else {
                    continue;
                };
                let shown = Some(ShownThreshold {
                    op: Some(threshold.op),
                    value,
                });
                let entry =
                    (self.0.entry((rule.name.clone(), threshold.severity))).or_insert(shown);
                if *entry != shown {
                    *entry = None;
                }
            }
        }
    }

    /// The threshold `alert` crossed: its rule's (if its rules agree),
    /// else a numeric `threshold` annotation, else none.
    pub(crate) fn of(&self, alert: &Alert) -> Option<ShownThreshold> {
        let key = (alert.rule.clone(), alert.severity);
        self.0.get(&key).copied().flatten().or_else(|| {
            let value = alert.annotations.get("threshold")?.trim().parse().ok()?;
            Some(ShownThreshold { op: None, value })
        })
    }

    /// [`of`](Self::of) as text, `n/a` when unknown.
    pub(crate) fn text(&self, alert: &Alert) -> String {
        self.of(alert)
            .map_or_else(|| "n/a".to_owned(), |t| t.to_string())
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
    (alert.labels.get("severity")).map_or(alert.severity.as_str(), String::as_str)
}

/// The value as written in text: [`number_text`], or `n/a` when the
/// series was absent.
pub(crate) fn value_text(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), number_text)
}

/// A number as people read it: four significant digits, trailing zeros
/// dropped (`0.9925`, `0.3`, `93.5`, `1235`), integer digits never
/// rounded away (`123457`), scientific notation below 0.0001 and from
/// 10^15 (`1.235e-5`); `NaN`, `+Inf`, `-Inf` as Prometheus writes them.
pub(crate) fn number_text(value: f64) -> String {
    const DIGITS: i32 = 4;
    let magnitude = value.abs();
    let text = match value {
        _ if value.is_nan() => return "NaN".to_owned(),
        f64::INFINITY => return "+Inf".to_owned(),
        f64::NEG_INFINITY => return "-Inf".to_owned(),
        0.0 => return "0".to_owned(),
        _ if !(1e-4..1e15).contains(&magnitude) => format!("{:.*e}", (DIGITS - 1) as usize, value),
        // Decimals for four digits: the exponent is 0 for 1..10, -1 for 0.1..1.
        _ => format!(
            "{value:.*}",
            (DIGITS - 1 - magnitude.log10().floor() as i32).max(0) as usize
        ),
    };
    let (digits, exponent) = text.split_once('e').unwrap_or((&text, ""));
    let digits = match digits.contains('.') {
        true => digits.trim_end_matches('0').trim_end_matches('.'),
        false => digits,
    };
    match exponent {
        "" => digits.to_owned(),
        _ => format!("{digits}e{exponent}"),
    }
}

/// `text` on one line: control characters (newlines, tabs, escapes)
/// written as Rust escapes (`\n`, `\u{1b}`), so that a label value or a
/// rule name cannot start a line of its own in a message.
pub(crate) fn one_line(text: &str) -> Cow<'_, str> {
    if !text.contains(char::is_control) {
        return text.into();
    }
    let escaped = text.chars().map(|c| match c.is_control() {
        true => c.escape_default().to_string(),
        false => c.to_string(),
    });
    escaped.collect::<String>().into()
}

/// The `summary` annotation, else `description`.
pub(crate) fn summary(alert: &Alert) -> Option<&str> {
    ["summary", "description"]
        .iter()
        .find_map(|key| alert.annotations.get(*key).filter(|v| !v.is_empty()))
        .map(String::as_str)
}

/// The labels that identify the instance (all but `alertname` and
/// `severity`, which every message already shows), in name order.
pub(crate) fn instance_labels(alert: &Alert) -> impl Iterator<Item = (&str, &str)> {
    let pairs = alert.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    pairs.filter(|(name, _)| !["alertname", "severity"].contains(name))
}

/// When the alert's status began: its end if resolved, else its start.
pub(crate) fn status_time(alert: &Alert) -> SystemTime {
    match alert.status {
        AlertStatus::Resolved => alert.ends_at.unwrap_or(alert.starts_at),
        AlertStatus::Firing => alert.starts_at,
    }
}

/// How many of the notification's alerts fire and how many resolved.
pub(crate) fn counts(notification: &Notification) -> (usize, usize) {
    let alerts = &notification.alerts;
    let firing = alerts.iter().filter(|a| a.status == AlertStatus::Firing);
    let firing = firing.count();
    (firing, alerts.len() - firing)
}

/// `firing:1, resolved:2`, `firing:3` or `resolved:2`: the alerts by
/// status, a status without alerts left out (`firing:0` for an empty
/// notification).
pub(crate) fn counts_text(notification: &Notification) -> String {
    match counts(notification) {
        (firing, 0) => format!("firing:{firing}"),
        (0, resolved) => format!("resolved:{resolved}"),
        (firing, resolved) => format!("firing:{firing}, resolved:{resolved}"),
    }
}

/// `[FIRING:1, RESOLVED:2] HighErrorRate, HighLatency for oncall`: how
/// many alerts fire and how many resolved ([`counts_text`]), their rule
/// names (each once) and the receiver, on one line.
pub(crate) fn headline(notification: &Notification) -> String {
    let mut rules: Vec<&str> = Vec::new();
    for alert in &notification.alerts {
        if !rules.contains(&alert.rule.as_str()) {
            rules.push(&alert.rule);
        }
    }
    let counts = counts_text(notification).to_ascii_uppercase();
    let (rules, receiver) = (rules.join(", "), &notification.receiver);
    one_line(&format!("[{counts}] {rules} for {receiver}")).into_owned()
}

/// A URL as given (parsed or not), as errors and `Debug` output show it:
/// user info and query values masked (`a=1&b` as `a=***&b`), the fragment
/// dropped, and with `last_segment` the last path segment masked too (a
/// Slack or Teams webhook's secret).
pub(crate) fn masked_text(text: &str, last_segment: bool) -> String {
    let text = text.split('#').next().unwrap_or_default();
    let (before, query) = text
        .split_once('?')
        .map_or((text, None), |(b, q)| (b, Some(q)));
    let start = before.find("://").map_or(0, |i| i + 3);
    let end = before[start..]
        .find('/')
        .map_or(before.len(), |i| start + i);
    let (scheme, authority, path) = (&before[..start], &before[start..end], &before[end..]);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let path = match path.trim_end_matches('/').rsplit_once('/') {
        Some((head, last)) if last_segment && !last.is_empty() => format!("{head}/***"),
        _ => path.to_owned(),
    };
    let masked = |pair: &str| match pair.split_once('=') {
        Some((name, value)) if !value.is_empty() => format!("{name}=***"),
        _ => pair.to_owned(),
    };
    let query = query.map(|q| q.split('&').map(masked).collect::<Vec<_>>().join("&"));
    let query = query.map_or_else(String::new, |query| format!("?{query}"));
    format!("{scheme}{authority}{path}{query}")
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
        assert_eq!(headline(&n), "[FIRING:2, RESOLVED:1] A, Slow for oncall");
    }

    #[test]
    fn the_headline_counts_firing_and_resolved_apart() {
        let mut n = Notification {
            receiver: "oncall".into(),
            group_key: String::new(),
            group_labels: crate::Labels::new(),
            status: AlertStatus::Firing,
            alerts: vec![alert("A", Severity::Low); 3],
            common_labels: crate::Labels::new(),
            common_annotations: crate::Labels::new(),
        };
        assert_eq!(headline(&n), "[FIRING:3] A for oncall");
        n.alerts[1].status = AlertStatus::Resolved;
        n.alerts[2].status = AlertStatus::Resolved;
        assert_eq!(headline(&n), "[FIRING:1, RESOLVED:2] A for oncall");
        n.alerts[0].status = AlertStatus::Resolved;
        n.status = AlertStatus::Resolved;
        assert_eq!(headline(&n), "[RESOLVED:3] A for oncall");
    }

    #[test]
    fn numbers_are_shown_with_four_significant_digits() {
        let cases = [
            (0.9925186920166016, "0.9925"),
            (0.1 + 0.2, "0.3"),
            (93.5, "93.5"),
            (1234.56, "1235"),
            (123456.7, "123457"),
            (-0.5, "-0.5"),
            (2.0, "2"),
            (0.000_123_456, "0.0001235"),
            (0.000_012_345_6, "1.235e-5"),
            (1e20, "1e20"),
            (0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (value, text) in cases {
            assert_eq!(number_text(value), text, "{value}");
        }
        let shown = ShownThreshold {
            op: Some(Comparison::Greater),
            value: 0.1 + 0.2,
        };
        assert_eq!(shown.to_string(), "> 0.3");
    }

    #[test]
    fn rules_sharing_a_name_with_different_thresholds_show_none() {
        let rule = |value: f64| {
            Rule::builder("Slow")
                .gauge("latency")
                .threshold(Severity::Medium, Comparison::Greater, value)
                .build()
                .unwrap()
        };
        let mut thresholds = Thresholds::default();
        thresholds.add([rule(0.5), rule(0.5)]);
        let mut a = alert("Slow", Severity::Medium);
        a.annotations.clear();
        assert_eq!(thresholds.of(&a).unwrap().to_string(), "> 0.5");
        thresholds.add([rule(2.0)]);
        assert_eq!(thresholds.of(&a), None);
        // An alert's own annotation still says which it crossed.
        a.annotations.insert("threshold".into(), "2".into());
        assert_eq!(thresholds.of(&a).unwrap().to_string(), "2");
    }

    #[test]
    fn single_line_fields_escape_control_characters() {
        assert_eq!(one_line("plain / text"), "plain / text");
        assert_eq!(
            one_line("a\nValue: 0\r\t\u{1b}"),
            "a\\nValue: 0\\r\\t\\u{1b}"
        );
    }
}
