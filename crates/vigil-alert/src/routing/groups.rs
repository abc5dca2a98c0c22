//! The engine's local routing: each active alert routed by its labels into
//! a group per route and `group_by` values, each group's timers and
//! notifications, inhibition and the silences (see the [routing
//! module](super) docs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use super::{InhibitRule, Route};
use crate::alert::{Active, AlertId, sort_alerts};
use crate::labels::{DisplayLabels, matches_all};
use crate::{
    Alert, AlertStatus, Engine, Labels, Notification, Result, Routing, Rule, Silence, SilenceId,
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
    /// By id; expired ones are kept for `silence_retention`.
    pub(super) silences: BTreeMap<SilenceId, Silence>,
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
            silences: BTreeMap::new(),
            last_silence: SilenceId(0),
            silence_retention,
        })
    }

    /// The routes, then the default.
    fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routing.routes.iter().chain([&self.default])
    }

    /// The active alerts with their `silenced` and `inhibited` flags set.
    pub(crate) fn flag(&self, now: SystemTime, active: &[Active]) -> Vec<Alert> {
        let flag = |a: &Active| Alert {
            silenced: self.silenced(now, |n| a.label(n)),
            inhibited: self.inhibited(active, a),
            ..a.alert.clone()
        };
        active.iter().map(flag).collect()
    }

    /// Whether one of the `firing` alerts inhibits `target`: one of the
    /// same instance at a higher severity, or another matching an inhibit
    /// rule's `source_matchers` with the same `equal` labels (a missing one
    /// is empty) when `target` matches that rule's `target_matchers`. A
    /// plain scan: local routing serves hosts with few alerts.
    fn inhibited<'a>(&self, firing: impl IntoIterator<Item = &'a Active>, target: &Active) -> bool {
        let id = (target.base, target.alert.severity);
        firing.into_iter().any(|s| {
            let equal = |l: &String| s.label(l).unwrap_or("") == target.label(l).unwrap_or("");
            let by_rule = |r: &InhibitRule| {
                matches_all(&r.source_matchers, &s.alert.labels)
                    && matches_all(&r.target_matchers, &target.alert.labels)
                    && r.equal.iter().all(equal)
            };
            (s.base == id.0 && s.alert.severity > id.1)
                || ((s.base, s.alert.severity) != id && self.inhibit_rules.iter().any(by_rule))
        })
    }

    /// Takes the engine's active alerts at `now` (escalation included):
    /// each fires in the group its labels route it to (and, once
    /// escalated, in its rule's escalation receiver's group too); an alert
    /// a group holds firing that is no longer active resolves there at
    /// `now`.
    pub(crate) fn update(&mut self, now: SystemTime, rules: &[Rule], active: Vec<Active>) {
        let held = self
            .groups
            .values_mut()
            .flat_map(|g| g.entries.values_mut());
        for (held, _) in held.filter(|(held, _)| held.is_firing()) {
            (held.alert.status, held.alert.ends_at) = (AlertStatus::Resolved, Some(now));
        }
        for alert in active {
            let escalation = rules[alert.rule].escalate.as_ref();
            let escalated_to = escalation.and_then(|e| e.receiver.clone());
            let escalated_to = escalated_to.filter(|_| alert.alert.escalated);
            for to in [None].into_iter().chain(escalated_to.map(Some)) {
                let entry = self.group(now, &alert.alert, to).entries.entry(alert.id());
                entry.or_insert_with(|| (alert.clone(), None)).0 = alert.clone();
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
        let matches = |(_, r): &(usize, &Route)| matches_all(&r.matchers, &alert.labels);
        let found = self.routes().enumerate().find(matches);
        let (index, route) = found.expect("the default matches");
        let group_by = self.routing.grouping(route);
        let all = group_by.iter().any(|l| l == "...");
        let mut labels = alert.labels.clone();
        labels.retain(|name, _| all || group_by.contains(name));
        let next_flush = now + self.routing.timers(route)[0];
        let group = Group {
            entries: HashMap::new(),
            next_flush,
            last_sent: None,
        };
        self.groups
            .entry((index, escalated_to, labels))
            .or_insert(group)
    }
}

/// Local routing: only with the `routing` feature.
impl Engine {
    /// Every receiver a notification can be addressed to: the routes'
    /// receivers, the default receiver, and the rules' escalation
    /// receivers; each once, in that order. A host checks them against the
    /// notifiers it registered.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_alert::{Comparison, Engine, Matcher, Route, Routing, Rule, Severity};
    ///
    /// let rule = Rule::builder("DiskFull")
    ///     .gauge("disk_usage_ratio")
    ///     .threshold(Severity::High, Comparison::Greater, 0.9)
    ///     .escalate_after(Duration::from_secs(3600))
    ///     .escalate_to("boss")
    ///     .build()?;
    /// let engine = Engine::builder()
    ///     .rule(rule)
    ///     .routing(Routing::new("email").route(Route::new("pager").matcher(Matcher::equal("severity", "critical"))))
    ///     .build()?;
    /// assert_eq!(engine.receivers(), ["pager", "email", "boss"]);
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn receivers(&self) -> Vec<&str> {
        let routes = self.local.routes().map(|route| route.receiver.as_str());
        let rules = self.rules().iter();
        let escalations = rules.filter_map(|rule| rule.escalate.as_ref()?.receiver.as_deref());
        let mut out: Vec<&str> = routes.chain(escalations).collect();
        let mut seen = HashSet::new();
        out.retain(|receiver| seen.insert(*receiver));
        out
    }

    /// The notifications due at `now` (one per group whose timer expired and
    /// that has something to say; see the [routing module](crate::routing)
    /// docs), sorted by receiver and group key. Marks them as handed over:
    /// the caller delivers them (with retries); calling again at the same
    /// `now` returns nothing new. Pure: no clock, no I/O.
    pub fn due_notifications(&mut self, now: SystemTime) -> Vec<Notification> {
        let local = &mut self.local;
        if !local.groups.values().any(|g| g.next_flush <= now) {
            return Vec::new();
        }
        let held = local.groups.values().flat_map(|g| g.entries.values());
        let held: Vec<&Active> = held.map(|(alert, _)| alert).collect();
        let firing = || held.iter().copied().filter(|a| a.is_firing());
        // Muted by a silence, or inhibited by the firing alerts.
        let muted =
            |a: &&&Active| local.silenced(now, |n| a.label(n)) || local.inhibited(firing(), a);
        let muted: HashSet<AlertId> = held.iter().filter(muted).map(|a| a.id()).collect();
        let (routing, default, mut out) = (&local.routing, &local.default, Vec::new());
        local.groups.retain(|(index, to, labels), group| {
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

    /// When the next group timer expires, if any group exists: a host can
    /// sleep until then (or until its next evaluation).
    pub fn next_notification_at(&self) -> Option<SystemTime> {
        self.local.groups.values().map(|g| g.next_flush).min()
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
