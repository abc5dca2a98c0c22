//! The engine's local routing: each active alert routed by its labels into
//! a group per route and `group_by` values, each group's timers and
//! notifications, inhibition and the silences (see the [routing
//! module](super) docs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use super::{InhibitRule, Route};
use crate::alert::{Active, AlertId, Change, sort_alerts};
use crate::labels::{DisplayLabels, matches_all};
use crate::{
    Alert, AlertStatus, Labels, Notification, Result, Routing, Rule, Severity, Silence, SilenceId,
};

/// A group's identity: route (by index), escalation receiver and group labels.
type GroupId = (usize, Option<String>, Labels);

impl Active {
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

/// Local routing: the routing tree, the inhibit rules,
/// the alert groups and the silences. Owned by the engine.
#[derive(Debug)]
pub(crate) struct Local {
    routing: Routing,
    /// The default receiver as a route matching every alert, tried last.
    default: Route,
    inhibit_rules: Vec<InhibitRule>,
    groups: HashMap<GroupId, Group>,
    /// The groups holding each firing alert.
    held: HashMap<AlertId, Vec<GroupId>>,
    /// By id; expired ones are kept for `silence_retention`.
    pub(crate) silences: BTreeMap<SilenceId, Silence>,
    /// The id given to the latest silence.
    pub(super) last_silence: SilenceId,
    pub(super) silence_retention: Duration,
}

impl Local {
    /// Checks `routing` and sets up empty groups and silences.
    pub(crate) fn new(
        routing: Option<Routing>,
        inhibit_rules: Vec<InhibitRule>,
        silence_retention: Option<Duration>,
    ) -> Result<Local> {
        let routing = routing.unwrap_or_default();
        let silence_retention = silence_retention.unwrap_or(super::DEFAULT_SILENCE_RETENTION);
        routing.validate()?;
        if let Some(reason) = crate::time::too_long(silence_retention) {
            let setting = "silence_retention";
            return Err(crate::Error::InvalidSetting { setting, reason });
        }
        Ok(Local {
            default: Route::new(routing.receiver.clone()),
            routing,
            inhibit_rules,
            groups: HashMap::new(),
            held: HashMap::new(),
            silences: BTreeMap::new(),
            last_silence: SilenceId(0),
            silence_retention,
        })
    }

    /// The routes, then the default.
    pub(crate) fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routing.routes.iter().chain([&self.default])
    }

    /// Sets the `silenced` and `inhibited` flags of the active alerts.
    pub(crate) fn flag(&self, now: SystemTime, mut active: Vec<Active>) -> Vec<Active> {
        let inhibited: Vec<bool> = {
            let inhibitors = Inhibitors::new(&self.inhibit_rules, &active);
            active.iter().map(|a| inhibitors.inhibit(a)).collect()
        };
        for (a, inhibited) in active.iter_mut().zip(inhibited) {
            a.alert.silenced = self.silenced(now, |n| a.label(n));
            a.alert.inhibited = inhibited;
        }
        active
    }

    /// Takes what changed in the engine's active alerts at `now`: a firing
    /// alert fires in the group its labels route it to (and, once
    /// escalated, in its rule's escalation receiver's group too); a
    /// resolved one resolves at `now` in the groups holding it. Costs
    /// nothing for alerts that did not change.
    pub(crate) fn update(&mut self, now: SystemTime, rules: &[Rule], changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Resolve(id) => {
                    for key in self.held.remove(&id).unwrap_or_default() {
                        self.resolve(now, &key, id);
                    }
                }
                Change::Fire(alert) => self.fire(now, rules, alert),
            }
        }
    }

    /// Resolves alert `id` at `now` in group `key`.
    fn resolve(&mut self, now: SystemTime, key: &GroupId, id: AlertId) {
        let group = self.groups.get_mut(key);
        if let Some((held, _)) = group.and_then(|g| g.entries.get_mut(&id))
            && held.is_firing()
        {
            (held.alert.status, held.alert.ends_at) = (AlertStatus::Resolved, Some(now));
        }
    }

    /// Puts the firing `alert` in its groups (routed again only when it is
    /// new or its escalation adds a group), resolving it in groups it left.
    fn fire(&mut self, now: SystemTime, rules: &[Rule], alert: Active) {
        let id = alert.id();
        let escalation = rules[alert.rule].escalate.as_ref();
        let escalated_to = escalation.and_then(|e| e.receiver.clone());
        let escalated_to = escalated_to.filter(|_| alert.alert.escalated);
        let keys = match self.held.remove(&id) {
            Some(keys) if keys.len() == 1 + usize::from(escalated_to.is_some()) => keys,
            old => {
                let targets = [None].into_iter().chain(escalated_to.map(Some));
                let keys = targets.map(|to| self.group(now, &alert.alert, to));
                let keys: Vec<GroupId> = keys.collect();
                for key in old.into_iter().flatten().filter(|k| !keys.contains(k)) {
                    self.resolve(now, &key, id);
                }
                keys
            }
        };
        for key in &keys {
            // A firing alert keeps its groups.
            let group = self.groups.get_mut(key).expect("its group");
            let entry = group.entries.entry(id);
            entry.or_insert_with(|| (alert.clone(), None)).0 = alert.clone();
        }
        self.held.insert(id, keys);
    }

    /// The key of the group `alert` goes to (the escalation receiver's
    /// group with `escalated_to`); the group is made if new.
    fn group(&mut self, now: SystemTime, alert: &Alert, escalated_to: Option<String>) -> GroupId {
        let matches = |r: &Route| matches_all(&r.matchers, &alert.labels);
        let index = self
            .routes()
            .position(matches)
            .expect("the default matches");
        let route = self.routing.routes.get(index).unwrap_or(&self.default);
        let group_by = self.routing.grouping(route);
        let all = group_by.iter().any(|l| l == "...");
        let mut labels = alert.labels.clone();
        labels.retain(|name, _| all || group_by.contains(name));
        let next_flush = now + self.routing.timers(route)[0];
        let key = (index, escalated_to, labels);
        let group = Group {
            entries: HashMap::new(),
            next_flush,
            last_sent: None,
        };
        self.groups.entry(key.clone()).or_insert(group);
        key
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
        let held = self.groups.values().flat_map(|g| g.entries.values());
        let held: Vec<&Active> = held.map(|(alert, _)| alert).collect();
        let firing = held.iter().copied().filter(|a| a.is_firing());
        let inhibitors = Inhibitors::new(&self.inhibit_rules, firing);
        // Muted by a silence, or inhibited by the firing alerts.
        let muted = |a: &&&Active| self.silenced(now, |n| a.label(n)) || inhibitors.inhibit(a);
        let muted: HashSet<AlertId> = held.iter().filter(muted).map(|a| a.id()).collect();
        let (routing, default, mut out) = (&self.routing, &self.default, Vec::new());
        self.groups.retain(|(index, to, labels), group| {
            let route = routing.routes.get(*index).unwrap_or(default);
            let [_, interval, repeat] = routing.timers(route);
            if group.next_flush <= now {
                let alerts = group.flush(now, repeat, &muted);
                let is_default = *index == routing.routes.len();
                let notify =
                    |alerts| notification(route, is_default, to.as_deref(), labels, alerts);
                out.extend(alerts.map(notify));
                group.next_flush = now + interval;
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
        // Firing alerts, and resolved ones whose firing was notified.
        let shown = |(id, (a, told)): &(&AlertId, &(Active, Option<bool>))| {
            !muted.contains(*id) && (a.is_firing() || told.is_some())
        };
        let shown = self.entries.iter().filter(shown);
        let changed = (shown.clone())
            .any(|(_, (a, told))| !a.is_firing() || *told != Some(a.alert.escalated));
        let mut alerts: Vec<Alert> = shown.map(|(_, (a, _))| a.alert.clone()).collect();
        let firing = alerts.iter().any(|a| a.status == AlertStatus::Firing);
        let send = changed || (firing && self.last_sent.is_some_and(|t| now >= t + repeat));
        if send {
            for (id, (a, told)) in &mut self.entries {
                *told = (a.is_firing() && !muted.contains(id)).then_some(a.alert.escalated);
            }
            self.last_sent = Some(now);
        }
        self.entries.retain(|_, (a, _)| a.is_firing());
        sort_alerts(&mut alerts);
        send.then_some(alerts)
    }
}

/// What the firing alerts inhibit, indexed once per pass so that checking
/// an alert costs a lookup per inhibit rule instead of a scan of every
/// firing alert: one of the same instance at a higher severity inhibits
/// it, and so does another matching an inhibit rule's `source_matchers`
/// with the same `equal` labels when it matches that rule's
/// `target_matchers`.
struct Inhibitors<'a> {
    rules: &'a [InhibitRule],
    /// The highest firing severity of each instance.
    top: HashMap<u64, Severity>,
    /// For each rule, its sources by their `equal` label values: up to two
    /// distinct (instance, severity) pairs, enough to find one that is not
    /// the target itself.
    sources: Vec<Sources<'a>>,
}

/// An inhibit rule's sources by their `equal` label values.
type Sources<'a> = HashMap<Vec<&'a str>, Vec<(u64, Severity)>>;

impl<'a> Inhibitors<'a> {
    fn new(rules: &'a [InhibitRule], firing: impl IntoIterator<Item = &'a Active>) -> Self {
        let mut top = HashMap::<u64, Severity>::new();
        let mut sources = vec![Sources::new(); rules.len()];
        for s in firing {
            let level = top.entry(s.base).or_insert(s.alert.severity);
            *level = (*level).max(s.alert.severity);
            for (rule, by_key) in rules.iter().zip(&mut sources) {
                if matches_all(&rule.source_matchers, &s.alert.labels) {
                    let ids = by_key.entry(equal_values(rule, s)).or_default();
                    let id = (s.base, s.alert.severity);
                    if ids.len() < 2 && !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        Inhibitors {
            rules,
            top,
            sources,
        }
    }

    fn inhibit(&self, target: &Active) -> bool {
        let id = (target.base, target.alert.severity);
        // An alert never inhibits itself.
        let other = |ids: &Vec<(u64, Severity)>| ids.iter().any(|s| *s != id);
        let by_rule = |(rule, by_key): (&InhibitRule, &Sources)| {
            matches_all(&rule.target_matchers, &target.alert.labels)
                && by_key.get(&equal_values(rule, target)).is_some_and(other)
        };
        self.top
            .get(&target.base)
            .is_some_and(|s| *s > target.alert.severity)
            || self.rules.iter().zip(&self.sources).any(by_rule)
    }
}

/// The values of an inhibit rule's `equal` labels (a missing one is empty).
fn equal_values<'a>(rule: &InhibitRule, a: &'a Active) -> Vec<&'a str> {
    rule.equal
        .iter()
        .map(|l| a.label(l).unwrap_or(""))
        .collect()
}

fn notification(
    route: &Route,
    default: bool,
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
    // Firing alerts come first.
    let status = alerts.first().map_or(AlertStatus::Resolved, |a| a.status);
    // Alertmanager's route path: `{}`, then each level's matchers.
    let mut route_key = String::from("{}");
    if !default {
        let path: Vec<String> = route.matchers.iter().map(ToString::to_string).collect();
        route_key += &format!("/{{{}}}", path.join(","));
    }
    if let Some(r) = escalated_to {
        route_key += &format!("/{{escalated_to={r:?}}}");
    }
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
