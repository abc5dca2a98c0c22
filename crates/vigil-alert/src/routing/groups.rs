//! The engine's local routing: each active alert routed by its labels into
//! a group per route and `group_by` values, each group's timers and
//! notifications, inhibition and the silences (see the [routing
//! module](super) docs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use super::{InhibitRule, RouteSettings};
use crate::alert::{Active, sort_alerts};
use crate::labels::DisplayLabels;
use crate::{
    Alert, AlertStatus, Labels, Matcher, Notification, Result, Routing, Rule, Severity, Silence,
    SilenceId,
};

/// An alert's identity: rule, instance and severity.
type AlertId = (usize, u64, Severity);

/// A group's identity: route (by index), escalation receiver and group labels.
type GroupId = (usize, Option<String>, Labels);

impl Active {
    fn id(&self) -> AlertId {
        (self.rule, self.base, self.alert.severity)
    }

    /// The value of one of its labels (`severity` included).
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.alert.labels.get(name).map(String::as_str)
    }

    fn is_firing(&self) -> bool {
        self.alert.status == AlertStatus::Firing
    }
}

/// One group: its alerts, each with whether the last notification carried
/// it firing (`Some(escalated)`), and its timers.
#[derive(Debug)]
struct Group {
    entries: HashMap<AlertId, (Active, Option<bool>)>,
    next_flush: SystemTime,
    last_sent: Option<SystemTime>,
}

/// Local routing: the routes with inheritance resolved, the inhibit rules,
/// the alert groups and the silences. Owned by the engine.
#[derive(Debug)]
pub(crate) struct Local {
    routes: Vec<RouteSettings>,
    inhibit_rules: Vec<InhibitRule>,
    groups: HashMap<GroupId, Group>,
    /// By id; expired ones are kept for `silence_retention`.
    pub(crate) silences: BTreeMap<SilenceId, Silence>,
    /// The id given to the latest silence.
    pub(super) last_silence: SilenceId,
    pub(super) silence_retention: Duration,
}

impl Local {
    /// Checks `routing` and sets up empty groups and silences.
    pub(crate) fn new(
        routing: &Routing,
        inhibit_rules: Vec<InhibitRule>,
        silence_retention: Duration,
    ) -> Result<Local> {
        routing.validate()?;
        if let Some(reason) = crate::time::too_long(silence_retention) {
            let setting = "silence_retention";
            return Err(crate::Error::InvalidSetting { setting, reason });
        }
        Ok(Local {
            routes: RouteSettings::resolve(routing),
            inhibit_rules,
            groups: HashMap::new(),
            silences: BTreeMap::new(),
            last_silence: SilenceId(0),
            silence_retention,
        })
    }

    /// The receivers of the routing tree: every route's, then the default.
    pub(crate) fn receivers(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|route| route.receiver.as_str())
    }

    /// Whether a silence or inhibition by the `firing` alerts mutes `alert`.
    fn mutes(&self, now: SystemTime, firing: &[&Active], alert: &Active) -> bool {
        self.silenced(now, |n| alert.label(n)) || inhibited(&self.inhibit_rules, firing, alert)
    }

    /// Sets the `silenced` and `inhibited` flags of the active alerts.
    pub(crate) fn flag(&self, now: SystemTime, mut active: Vec<Active>) -> Vec<Active> {
        let firing: Vec<&Active> = active.iter().collect();
        let flags: Vec<(bool, bool)> = (firing.iter())
            .map(|a| {
                (
                    self.silenced(now, |n| a.label(n)),
                    inhibited(&self.inhibit_rules, &firing, a),
                )
            })
            .collect();
        for (a, (silenced, inhibited)) in active.iter_mut().zip(flags) {
            (a.alert.silenced, a.alert.inhibited) = (silenced, inhibited);
        }
        active
    }

    /// Takes the engine's active alerts at `now`: each one fires in the
    /// group its labels route it to (and, once escalated, in its rule's
    /// escalation receiver's group too); alerts held and no longer active
    /// resolve at `now`.
    pub(crate) fn update(&mut self, now: SystemTime, rules: &[Rule], active: Vec<Active>) {
        for (held, _) in self
            .groups
            .values_mut()
            .flat_map(|g| g.entries.values_mut())
        {
            if held.is_firing() {
                (held.alert.status, held.alert.ends_at) = (AlertStatus::Resolved, Some(now));
            }
        }
        for alert in active {
            let escalation = rules[alert.rule].escalate.as_ref();
            let escalated_to = escalation.and_then(|e| e.receiver.clone());
            let escalated_to = escalated_to.filter(|_| alert.alert.escalated);
            for to in [None].into_iter().chain(escalated_to.map(Some)) {
                let entries = &mut self.group(now, &alert.alert, to).entries;
                entries
                    .entry(alert.id())
                    .or_insert_with(|| (alert.clone(), None))
                    .0 = alert.clone();
            }
        }
    }

    /// The group `alert` goes to (the escalation receiver's group with
    /// `escalated_to`), made if new.
    fn group(
        &mut self,
        now: SystemTime,
        alert: &Alert,
        escalated_to: Option<String>,
    ) -> &mut Group {
        let lookup = |name: &str| alert.labels.get(name).map(String::as_str);
        let mut routes = self.routes.iter();
        let index = routes.position(|r| r.matchers.iter().all(|m| m.matches_with(lookup)));
        let index = index.expect("the default route matches every alert");
        let route = &self.routes[index];
        let labels: Labels = if route.group_by.iter().any(|l| l == "...") {
            alert.labels.clone()
        } else {
            let value = |name: &String| Some((name.clone(), lookup(name)?.to_owned()));
            route.group_by.iter().filter_map(value).collect()
        };
        let next_flush = now + route.group_wait;
        let group = || Group {
            entries: HashMap::new(),
            next_flush,
            last_sent: None,
        };
        self.groups
            .entry((index, escalated_to, labels))
            .or_insert_with(group)
    }

    /// The earliest time a group is due, if any group exists.
    pub(crate) fn next_due(&self) -> Option<SystemTime> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// The notifications due at `now`; updates the groups' timers, and
    /// drops resolved alerts and empty groups.
    pub(crate) fn flush(&mut self, now: SystemTime) -> Vec<Notification> {
        if !self.groups.values().any(|g| g.next_flush <= now) {
            return Vec::new();
        }
        let held = || {
            self.groups
                .values()
                .flat_map(|g| g.entries.values().map(|e| &e.0))
        };
        let firing: Vec<&Active> = held().filter(|a| a.is_firing()).collect();
        let muted: HashSet<AlertId> = held()
            .filter(|a| self.mutes(now, &firing, a))
            .map(Active::id)
            .collect();
        let (routes, mut out) = (&self.routes, Vec::new());
        self.groups.retain(|(index, to, labels), group| {
            let route = &routes[*index];
            if group.next_flush <= now {
                let alerts = group.flush(now, route.repeat_interval, &muted);
                out.extend(alerts.map(|alerts| notification(route, to.as_deref(), labels, alerts)));
                group.next_flush = now + route.group_interval;
            }
            !group.entries.is_empty()
        });
        out.sort_by(|a, b| (&a.receiver, &a.group_key).cmp(&(&b.receiver, &b.group_key)));
        out
    }
}

impl Group {
    /// The alerts of the group's notification at `now`, if it has something
    /// to say (see the [routing module](super) docs); drops its resolved
    /// alerts.
    fn flush(
        &mut self,
        now: SystemTime,
        repeat: Duration,
        muted: &HashSet<AlertId>,
    ) -> Option<Vec<Alert>> {
        let shown = self.entries.iter().filter(|(id, _)| !muted.contains(id));
        let (firing, resolved): (Vec<_>, Vec<_>) = shown.partition(|(_, (a, _))| a.is_firing());
        let resolved: Vec<_> = resolved
            .into_iter()
            .filter(|(_, (_, told))| told.is_some())
            .collect();
        let changed = firing
            .iter()
            .any(|(_, (a, told))| *told != Some(a.alert.escalated));
        let repeat = !firing.is_empty() && self.last_sent.is_some_and(|t| now >= t + repeat);
        let send = changed || !resolved.is_empty() || repeat;
        let mut alerts: Vec<Alert> = firing
            .iter()
            .chain(&resolved)
            .map(|(_, (a, _))| a.alert.clone())
            .collect();
        let sent: HashSet<AlertId> = firing.iter().map(|(id, _)| **id).collect();
        if send {
            for (id, (a, told)) in &mut self.entries {
                *told = sent.contains(id).then_some(a.alert.escalated);
            }
            self.last_sent = Some(now);
        }
        self.entries.retain(|_, (a, _)| a.is_firing());
        sort_alerts(&mut alerts);
        send.then_some(alerts)
    }
}

/// Whether the `firing` alerts inhibit `target`: one of the same instance
/// at a higher severity does, and so does another matching an inhibit
/// rule's `source_matchers` with the same `equal` labels when `target`
/// matches its `target_matchers`.
fn inhibited(rules: &[InhibitRule], firing: &[&Active], target: &Active) -> bool {
    let all =
        |matchers: &[Matcher], a: &Active| matchers.iter().all(|m| m.matches_with(|n| a.label(n)));
    let equal = |s: &Active, l: &String| s.label(l).unwrap_or("") == target.label(l).unwrap_or("");
    firing.iter().any(|s| {
        let by_rule = |r: &InhibitRule| {
            all(&r.target_matchers, target)
                && all(&r.source_matchers, s)
                && r.equal.iter().all(|l| equal(s, l))
        };
        (s.base == target.base && s.alert.severity > target.alert.severity)
            || (s.id() != target.id() && rules.iter().any(by_rule))
    })
}

fn notification(
    route: &RouteSettings,
    escalated_to: Option<&str>,
    labels: &Labels,
    alerts: Vec<Alert>,
) -> Notification {
    let common = |pick: fn(&Alert) -> &Labels| -> Labels {
        let mut common = alerts.first().map(pick).cloned().unwrap_or_default();
        for alert in alerts.iter().skip(1) {
            common.retain(|k, v| pick(alert).get(k) == Some(v));
        }
        common
    };
    let status = match alerts.iter().any(|a| a.status == AlertStatus::Firing) {
        true => AlertStatus::Firing,
        false => AlertStatus::Resolved,
    };
    let route_key = match escalated_to {
        Some(r) => format!("{}/{{escalated_to={r:?}}}", route.key),
        None => route.key.clone(),
    };
    Notification {
        receiver: escalated_to.unwrap_or(&route.receiver).to_owned(),
        group_key: format!("{route_key}:{}", DisplayLabels(labels)),
        group_labels: labels.clone(),
        status,
        common_labels: common(|a| &a.labels),
        common_annotations: common(|a| &a.annotations),
        alerts,
    }
}
