//! What the engine reports: [`Alert`]s, their [`AlertStatus`], the
//! [`Notification`]s notifiers receive, and alert fingerprints.
//!
//! These types are the same with or without local routing: the engine's
//! active alerts ([`Engine::alerts`](crate::Engine::alerts)) are `Alert`s,
//! and so are the alerts of a notification, whether a local route or the
//! Alertmanager sender built it.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::rule::expand_template;
use crate::{Labels, Rule, Severity};

/// Whether an alert is firing or resolved (`"firing"` / `"resolved"`, as in
/// Alertmanager's webhook); firing orders first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The instance is alerting.
    Firing,
    /// The instance stopped alerting (at `ends_at`).
    Resolved,
}

/// One alert as notified: an alert instance at one severity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// Series (or `by`) labels, rule labels, `alertname` and `severity`.
    pub labels: Labels,
    /// The rule's annotations with `{{ $value }}` / `{{ $labels.x }}` expanded.
    pub annotations: Labels,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// The severity level, which orders and inhibits alerts; `labels`
    /// carries it as `severity` with the name the rule gives it
    /// (`"warning"` for a threshold written `warning`; see
    /// [`SeverityLabels`](crate::SeverityLabels)).
    pub severity: Severity,
    /// The latest value while firing (`None` when the series was absent);
    /// a resolved alert keeps its last firing value, as in Prometheus.
    pub value: Option<f64>,
    /// When the instance started firing.
    #[serde(with = "crate::time::rfc3339")]
    pub starts_at: SystemTime,
    /// When it resolved (`None` while firing).
    #[serde(with = "crate::time::rfc3339_option")]
    pub ends_at: Option<SystemTime>,
    /// Whether a local silence mutes it (only with the `routing` feature;
    /// never true in a notification).
    pub silenced: bool,
    /// Whether a local inhibition mutes it (only with the `routing`
    /// feature; never true in a notification).
    #[serde(default)]
    pub inhibited: bool,
    /// Whether it escalated (fired unresolved for longer than the rule's
    /// `escalate.after`; only in local notifications, with the `routing`
    /// feature: the engine's active alerts are never escalated).
    pub escalated: bool,
}

impl Alert {
    /// The identifier of the alert's label set (`alertname` and
    /// `severity` included) as Alertmanager computes and shows it: 16
    /// lowercase hex digits of the FNV-1a hash Prometheus defines for label
    /// sets (`model.LabelSet.Fingerprint`), the same in every build. Equal
    /// to the `fingerprint` Alertmanager's `GET /api/v2/alerts` lists for
    /// this alert; usable by receivers that deduplicate (e.g. as a
    /// PagerDuty `dedup_key`).
    ///
    /// ```
    /// # use std::time::UNIX_EPOCH;
    /// # use vigil_alert::{labels, Alert, AlertStatus, Labels, Severity};
    /// let alert = Alert {
    ///     rule: "Down".into(),
    ///     labels: labels([("alertname", "Down"), ("severity", "critical")]),
    ///     annotations: Labels::new(),
    ///     status: AlertStatus::Firing,
    ///     severity: Severity::Critical,
    ///     value: None,
    ///     starts_at: UNIX_EPOCH,
    ///     ends_at: None,
    ///     silenced: false,
    ///     inhibited: false,
    ///     escalated: false,
    /// };
    /// // What Alertmanager lists for `{alertname="Down", severity="critical"}`.
    /// assert_eq!(alert.fingerprint(), "4f000a279caba656");
    /// ```
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", fingerprint(&self.labels))
    }

    /// Sets the alert's value and expands `rule`'s annotations with it.
    pub(crate) fn set_value(&mut self, rule: &Rule, value: Option<f64>) {
        let expand =
            |(k, v): (&String, &String)| (k.clone(), expand_template(v, value, &self.labels));
        let annotations = rule.annotations.iter().map(expand).collect();
        (self.value, self.annotations) = (value, annotations);
    }
}

/// What one receiver should be told about one group: the payload of a
/// notifier, shaped after Alertmanager's webhook body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    /// The receiver's name, from the route.
    pub receiver: String,
    /// Identifies the group across notifications:
    /// `{route}:{group labels}`, e.g. `{}/{severity="critical"}:{alertname="X"}`.
    pub group_key: String,
    /// The values of the route's `group_by` labels.
    pub group_labels: Labels,
    /// `Firing` if any alert fires, else `Resolved`.
    pub status: AlertStatus,
    /// Firing alerts first, then resolved ones, each sorted by labels.
    pub alerts: Vec<Alert>,
    /// Labels all alerts share.
    pub common_labels: Labels,
    /// Annotations all alerts share.
    pub common_annotations: Labels,
}

/// The fingerprint of a label set as Prometheus and Alertmanager compute it
/// (`model.LabelSet.Fingerprint` in `prometheus/common`): 64-bit FNV-1a
/// over the label names in byte order, each name and each value followed
/// by the byte `0xff` (which no UTF-8 text contains). Fixed by that
/// algorithm, so it is the same in every build and in Alertmanager.
pub(crate) fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const SEPARATOR: u8 = 0xff;
    // `Labels` is a `BTreeMap<String, _>`: it iterates in the byte order of
    // the names, which is Go's `sort.Strings` order.
    let bytes = labels.iter().flat_map(|(name, value)| {
        let name = name.bytes().chain([SEPARATOR]);
        name.chain(value.bytes().chain([SEPARATOR]))
    });
    bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// An active alert as the engine holds it, with its identity (read by
/// local routing only).
#[derive(Clone, Debug)]
pub(crate) struct Active {
    #[cfg_attr(not(feature = "routing"), allow(dead_code))]
    pub id: AlertId,
    pub alert: Alert,
}

/// An alert's identity: its rule (by index), the fingerprint of its labels
/// without `severity` (its instance), and its severity.
pub(crate) type AlertId = (usize, u64, Severity);

/// Firing alerts first, then resolved ones, each sorted by labels.
pub(crate) fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| (a.status, &a.labels).cmp(&(b.status, &b.labels)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_for_equal_label_sets() {
        let a = crate::labels([("a", "1"), ("b", "2")]);
        let b = crate::labels([("b", "2"), ("a", "1")]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&crate::labels([("a", "1")])));
    }
}
