//! The alert groups of local routing: each active alert routed by its
//! labels into a group per route and `group_by` values, and each group's
//! timers and notifications (see the [routing module](super) docs).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

use super::inhibit::Inhibition;
use super::{InhibitRule, RouteSettings, Silences};
use crate::alert::{Active, sort_alerts};
use crate::labels::DisplayLabels;
use crate::{Alert, AlertStatus, Labels, Notification, Rule};

fn combine(parts: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl Active {
    /// Its identity: rule, instance and severity.
    fn id(&self) -> u64 {
        combine((self.rule, self.base, self.alert.severity))
    }

    /// The value of one of its labels (`severity` included).
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.alert.labels.get(name).map(String::as_str)
    }

    /// Whether it is still firing.
    fn is_firing(&self) -> bool {
        self.alert.status == AlertStatus::Firing
    }
}

/// One group: the alerts of one route (or escalation receiver) with the
/// same `group_by` values, and its timers.
#[derive(Debug)]
struct Group {
    receiver: String,
    key: String,
    labels: Labels,
    group_interval: Duration,
    repeat_interval: Duration,
    /// By alert id (rule, instance and severity).
    entries: HashMap<u64, Active>,
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

    /// Takes the engine's active alerts at `now`: each one fires in the
    /// group its labels route it to (and, once escalated, in its rule's
    /// escalation receiver's group too); alerts held and no longer active
    /// resolve at `now`.
    pub(crate) fn update(&mut self, now: SystemTime, rules: &[Rule], active: Vec<Active>) {
        let mut seen = HashSet::new();
        for alert in active {
            let id = alert.id();
            let escalation = rules[alert.rule].escalate.as_ref();
            let escalated_to = escalation
                .and_then(|e| e.receiver.as_deref())
                .filter(|_| alert.alert.escalated);
            for to in [Some(None), escalated_to.map(Some)].into_iter().flatten() {
                let group = self.group(now, &alert.alert, to);
                seen.insert((group, id));
                let entries = &mut self.groups.get_mut(&group).expect("just made").entries;
                entries.insert(id, alert.clone());
            }
        }
        for (group, g) in &mut self.groups {
            for (id, entry) in &mut g.entries {
                if entry.is_firing() && !seen.contains(&(*group, *id)) {
                    entry.alert.status = AlertStatus::Resolved;
                    entry.alert.ends_at = Some(now);
                }
            }
        }
    }

    /// The id of the group `alert` goes to (the escalation receiver's
    /// group with `escalated_to`), made if new.
    fn group(&mut self, now: SystemTime, alert: &Alert, escalated_to: Option<&str>) -> u64 {
        let lookup = |name: &str| alert.labels.get(name).map(String::as_str);
        let route_index = self
            .routes
            .iter()
            .position(|r| r.matchers.iter().all(|m| m.matches_with(lookup)))
            .unwrap_or(self.routes.len() - 1);
        let route = &self.routes[route_index];
        let group_labels: Labels = if route.group_by.iter().any(|l| l == "...") {
            alert.labels.clone()
        } else {
            let value = |name: &String| Some((name.clone(), lookup(name)?.to_owned()));
            route.group_by.iter().filter_map(value).collect()
        };
        let group_id = combine((route_index, escalated_to, &group_labels));
        self.groups.entry(group_id).or_insert_with(|| {
            let route_key = match escalated_to {
                Some(r) => format!("{}/{{escalated_to={r:?}}}", route.key),
                None => route.key.clone(),
            };
            Group {
                receiver: escalated_to.unwrap_or(&route.receiver).to_owned(),
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
        let muted: HashSet<u64> = {
            let entries = || self.groups.values().flat_map(|g| g.entries.iter());
            let firing = entries().map(|(_, e)| e).filter(|e| e.is_firing());
            let inhibition = Inhibition::new(&self.inhibit_rules, firing);
            let muted = |e: &Active| silences.mute(now, |n| e.label(n)) || inhibition.mutes(e);
            entries()
                .filter(|(_, e)| muted(e))
                .map(|(id, _)| *id)
                .collect()
        };
        let mut out = Vec::new();
        self.groups.retain(|_, group| {
            if group.next_flush <= now {
                out.extend(group.flush(now, rules, &muted));
            }
            !group.entries.is_empty()
        });
        out.sort_by(|a, b| (&a.receiver, &a.group_key).cmp(&(&b.receiver, &b.group_key)));
        out
    }
}

impl Group {
    /// The group's notification at `now`, if it has something to say (see
    /// the [routing module](super) docs); drops its resolved alerts and
    /// restarts its timer.
    fn flush(
        &mut self,
        now: SystemTime,
        rules: &[Rule],
        muted: &HashSet<u64>,
    ) -> Option<Notification> {
        let notified = |id: &u64| {
            self.notified.contains(&(*id, true)) || self.notified.contains(&(*id, false))
        };
        let mut firing = Vec::new();
        let mut resolved = Vec::new();
        for (id, entry) in &self.entries {
            if muted.contains(id) {
                continue;
            }
            if entry.is_firing() {
                firing.push(*id);
            } else if notified(id) {
                resolved.push(*id);
            }
        }
        let escalated = |id: &u64| (*id, self.entries[id].alert.escalated);
        let changed = firing
            .iter()
            .any(|id| !self.notified.contains(&escalated(id)));
        let repeat = !firing.is_empty()
            && self
                .last_sent
                .is_some_and(|t| now >= t + self.repeat_interval);
        let send = changed || !resolved.is_empty() || repeat;
        let out = send.then(|| {
            let mut alerts: Vec<Alert> = firing
                .iter()
                .chain(&resolved)
                .map(|id| self.entries[id].report(rules))
                .collect();
            sort_alerts(&mut alerts);
            notification(self, alerts)
        });
        if send {
            self.notified = firing.iter().map(escalated).collect();
            self.last_sent = Some(now);
        }
        let notified = &mut self.notified;
        self.entries.retain(|id, e| {
            if !e.is_firing() {
                notified.remove(&(*id, true));
                notified.remove(&(*id, false));
            }
            e.is_firing()
        });
        self.next_flush = now + self.group_interval;
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
