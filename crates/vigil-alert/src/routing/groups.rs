//! The alert groups of local routing: each alert routed by its labels into
//! a group per route and `group_by` values, and each group's timers and
//! notifications (see the [routing module](super) docs).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

use super::inhibit::{Inhibitable, Inhibition};
use super::{InhibitRule, RouteSettings, Silences};
use crate::alert::sort_alerts;
use crate::labels::DisplayLabels;
use crate::{Alert, AlertStatus, Labels, Notification, Rule, Severity};

fn combine(parts: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// An alert's identity: rule, instance labels (via their fingerprint) and
/// severity.
fn alert_id(rule: usize, base: u64, severity: Severity) -> u64 {
    combine((rule, base, severity))
}

/// Where an instance's alert of one severity sits, kept by the instance so
/// that updates need no routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AlertRef {
    severity: Severity,
    group: u64,
    escalation: bool,
}

/// What the engine knows about an alerting instance.
pub(crate) struct FiringAlert<'a> {
    pub rule: usize,
    /// Instance labels (incl. `alertname`, excl. `severity`).
    pub labels: &'a Labels,
    /// `fingerprint(labels)`.
    pub base: u64,
    pub severity: Severity,
    /// The `severity` label value the rule gives `severity`.
    pub severity_label: &'a str,
    pub value: Option<f64>,
    pub starts_at: SystemTime,
    pub escalated: bool,
    pub escalation_receiver: Option<&'a str>,
}

#[derive(Clone, Debug)]
struct Entry {
    rule: usize,
    labels: Labels,
    base: u64,
    severity: Severity,
    severity_label: String,
    firing: bool,
    value: Option<f64>,
    starts_at: SystemTime,
    ends_at: Option<SystemTime>,
    escalated: bool,
}

impl Inhibitable for Entry {
    fn key(&self) -> (u64, Severity) {
        (self.base, self.severity)
    }

    fn label(&self, name: &str) -> Option<&str> {
        match name {
            "severity" => Some(&self.severity_label),
            _ => self.labels.get(name).map(String::as_str),
        }
    }
}

impl Entry {
    /// The alert as notified.
    fn alert(&self, rules: &[Rule]) -> Alert {
        let mut labels = self.labels.clone();
        labels.insert("severity".into(), self.severity_label.clone());
        let rule = &rules[self.rule];
        let mut alert = Alert::new(rule, labels, self.severity, self.value, self.starts_at);
        alert.escalated = self.escalated;
        if !self.firing {
            alert.status = AlertStatus::Resolved;
            alert.ends_at = self.ends_at;
        }
        alert
    }
}

#[derive(Debug)]
struct Group {
    receiver: String,
    key: String,
    labels: Labels,
    group_interval: Duration,
    repeat_interval: Duration,
    entries: HashMap<u64, Entry>,
    next_flush: SystemTime,
    last_sent: Option<SystemTime>,
    /// (alert id, escalated) of the firing alerts last notified.
    notified: HashSet<(u64, bool)>,
}

/// The alert store: groups of alerts per route and `group_by` values, with
/// their timers. Owned by the engine.
#[derive(Debug)]
pub(crate) struct Groups {
    routes: Vec<RouteSettings>,
    pub(crate) inhibit_rules: Vec<InhibitRule>,
    groups: HashMap<u64, Group>,
}

impl Groups {
    pub(crate) fn new(routes: Vec<RouteSettings>, inhibit_rules: Vec<InhibitRule>) -> Self {
        Groups {
            routes,
            inhibit_rules,
            groups: HashMap::new(),
        }
    }

    /// The receivers of the routing tree: every route's, then the default.
    pub(crate) fn receivers(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|route| route.receiver.as_str())
    }

    /// Marks every alert the instance has (other than at `current`'s
    /// severity) resolved, and `current` firing in the groups it belongs
    /// to, creating entries and groups as needed. With `current = None`
    /// everything resolves and `refs` is cleared.
    pub(crate) fn sync(
        &mut self,
        now: SystemTime,
        rule: usize,
        base: u64,
        current: Option<&FiringAlert<'_>>,
        refs: &mut Vec<AlertRef>,
    ) {
        for r in refs.iter() {
            if current.is_some_and(|c| c.severity == r.severity) {
                continue;
            }
            let id = alert_id(rule, base, r.severity);
            if let Some(entry) = self
                .groups
                .get_mut(&r.group)
                .and_then(|g| g.entries.get_mut(&id))
                && entry.firing
            {
                entry.firing = false;
                entry.ends_at = Some(now);
            }
        }
        let Some(alert) = current else {
            refs.clear();
            return;
        };
        let id = alert_id(rule, base, alert.severity);
        let escalate = alert.escalated && alert.escalation_receiver.is_some();
        for escalation in [false, true] {
            if escalation && !escalate {
                continue;
            }
            let existing = refs
                .iter()
                .find(|r| r.severity == alert.severity && r.escalation == escalation)
                .map(|r| r.group);
            let updated = existing.is_some_and(|group| {
                self.groups
                    .get_mut(&group)
                    .and_then(|g| g.entries.get_mut(&id))
                    .map(|entry| {
                        entry.firing = true;
                        entry.ends_at = None;
                        entry.value = alert.value;
                        entry.starts_at = alert.starts_at;
                        entry.escalated = alert.escalated;
                    })
                    .is_some()
            });
            if updated {
                continue;
            }
            // Slow path: route the alert, then create its group and entry.
            let group = self.insert(now, id, alert, escalation);
            match refs
                .iter_mut()
                .find(|r| r.severity == alert.severity && r.escalation == escalation)
            {
                Some(r) => r.group = group,
                None => refs.push(AlertRef {
                    severity: alert.severity,
                    group,
                    escalation,
                }),
            }
        }
    }

    fn insert(
        &mut self,
        now: SystemTime,
        id: u64,
        alert: &FiringAlert<'_>,
        escalation: bool,
    ) -> u64 {
        let lookup = |name: &str| match name {
            "severity" => Some(alert.severity_label),
            _ => alert.labels.get(name).map(String::as_str),
        };
        let route_index = self
            .routes
            .iter()
            .position(|r| r.matchers.iter().all(|m| m.matches_with(lookup)))
            .unwrap_or(self.routes.len() - 1);
        let route = &self.routes[route_index];
        let mut group_labels = Labels::new();
        if route.group_by.iter().any(|l| l == "...") {
            group_labels = alert.labels.clone();
            group_labels.insert("severity".into(), alert.severity_label.to_owned());
        } else {
            for name in &route.group_by {
                if let Some(v) = lookup(name) {
                    group_labels.insert(name.clone(), v.to_owned());
                }
            }
        }
        let receiver = match (escalation, alert.escalation_receiver) {
            (true, Some(r)) => r,
            _ => route.receiver.as_str(),
        };
        let escalated_to = escalation.then_some(receiver);
        let group_id = combine((route_index, escalated_to, &group_labels));
        let group = self.groups.entry(group_id).or_insert_with(|| {
            let route_key = match escalated_to {
                Some(r) => format!("{}/{{escalated_to={r:?}}}", route.key),
                None => route.key.clone(),
            };
            Group {
                receiver: receiver.to_owned(),
                key: format!("{route_key}:{}", DisplayLabels(&group_labels)),
                labels: group_labels,
                group_interval: route.group_interval,
                repeat_interval: route.repeat_interval,
                entries: HashMap::new(),
                next_flush: now + route.group_wait,
                last_sent: None,
                notified: HashSet::new(),
            }
        });
        group.entries.insert(
            id,
            Entry {
                rule: alert.rule,
                labels: alert.labels.clone(),
                base: alert.base,
                severity: alert.severity,
                severity_label: alert.severity_label.to_owned(),
                firing: true,
                value: alert.value,
                starts_at: alert.starts_at,
                ends_at: None,
                escalated: alert.escalated,
            },
        );
        group_id
    }

    /// The earliest time a group is due, if any group exists.
    pub(crate) fn next_due(&self) -> Option<SystemTime> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// The notifications due at `now`; updates the groups' timers and
    /// notified sets, and drops resolved alerts and empty groups.
    pub(crate) fn flush(
        &mut self,
        now: SystemTime,
        rules: &[Rule],
        silences: &Silences,
    ) -> Vec<Notification> {
        if !self.groups.values().any(|g| g.next_flush <= now) {
            return Vec::new();
        }
        // Decide with a read-only view, then apply.
        let mut plans = Vec::new();
        {
            let firing = self.groups.values().flat_map(|g| g.entries.values());
            let inhibition = Inhibition::new(&self.inhibit_rules, firing.filter(|e| e.firing));
            for (&group_id, group) in &self.groups {
                if group.next_flush > now {
                    continue;
                }
                let mut firing = Vec::new();
                let mut resolved = Vec::new();
                for (&id, entry) in &group.entries {
                    let muted = silences.mute(now, |n| entry.label(n)) || inhibition.mutes(entry);
                    if muted {
                        continue;
                    }
                    if entry.firing {
                        firing.push(id);
                    } else if group.notified.contains(&(id, true))
                        || group.notified.contains(&(id, false))
                    {
                        resolved.push(id);
                    }
                }
                let changed = firing
                    .iter()
                    .any(|id| !group.notified.contains(&(*id, group.entries[id].escalated)));
                let repeat = !firing.is_empty()
                    && group
                        .last_sent
                        .is_some_and(|t| now >= t + group.repeat_interval);
                let send = changed || !resolved.is_empty() || repeat;
                plans.push((group_id, send, firing, resolved));
            }
        }
        let mut out = Vec::new();
        for (group_id, send, firing, resolved) in plans {
            let group = self
                .groups
                .get_mut(&group_id)
                .expect("planned groups exist: nothing was removed between planning and applying");
            if send {
                let mut alerts: Vec<Alert> = firing
                    .iter()
                    .chain(&resolved)
                    .map(|id| group.entries[id].alert(rules))
                    .collect();
                sort_alerts(&mut alerts);
                group.notified = firing
                    .iter()
                    .map(|id| (*id, group.entries[id].escalated))
                    .collect();
                group.last_sent = Some(now);
                out.push(notification(group, alerts));
            }
            let notified = &mut group.notified;
            group.entries.retain(|id, e| {
                if !e.firing {
                    notified.remove(&(*id, true));
                    notified.remove(&(*id, false));
                }
                e.firing
            });
            group.next_flush = now + group.group_interval;
            if group.entries.is_empty() {
                self.groups.remove(&group_id);
            }
        }
        out.sort_by(|a, b| (&a.receiver, &a.group_key).cmp(&(&b.receiver, &b.group_key)));
        out
    }
}

fn notification(group: &Group, alerts: Vec<Alert>) -> Notification {
    let common = |pick: fn(&Alert) -> &Labels| -> Labels {
        let mut iter = alerts.iter();
        let Some(first) = iter.next() else {
            return Labels::new();
        };
        let mut common = pick(first).clone();
        for alert in iter {
            common.retain(|k, v| pick(alert).get(k) == Some(v));
        }
        common
    };
    let status = if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
        AlertStatus::Firing
    } else {
        AlertStatus::Resolved
    };
    Notification {
        receiver: group.receiver.clone(),
        group_key: group.key.clone(),
        group_labels: group.labels.clone(),
        status,
        common_labels: common(|a| &a.labels),
        common_annotations: common(|a| &a.annotations),
        alerts,
    }
}
