//! The engine's local routing: each active alert routed by its labels into
//! a group per route and `group_by` values, each group's timers and
//! notifications, inhibition and the silences (see the [routing
//! module](super) docs).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use super::{DEFAULT_SILENCE_RETENTION, InhibitRule, Route};
use crate::alert::{Active, AlertId, sort_alerts};
use crate::labels::{DisplayLabels, matches_all};
use crate::{
    Alert, AlertStatus, Engine, Error, Labels, Notification, Result, Routing, Rule, Severity,
    Silence, SilenceId,
};

impl Active {
    /// The value of one of its labels (`severity` included).
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.alert.labels.get(name).map(String::as_str)
    }

    fn is_firing(&self) -> bool {
        self.alert.status == AlertStatus::Firing
    }
}

/// One group: its receiver, labels and `[group_interval,
/// repeat_interval]`, its alerts (each with whether the last notification
/// carried it firing: `Some(escalated)`), and its timers.
#[derive(Clone, Debug)]
struct Group {
    receiver: String,
    labels: Labels,
    intervals: [Duration; 2],
    entries: HashMap<AlertId, (Active, Option<bool>)>,
    next_flush: SystemTime,
    last_sent: Option<SystemTime>,
}

/// Local routing: the routing tree, the inhibit rules, the alert groups
/// (by group key) and the silences. Owned by the engine; its settings are
/// the builder's.
#[derive(Clone, Debug, Default)]
pub(crate) struct Local {
    pub(crate) routing: Routing,
    pub(crate) inhibit_rules: Vec<InhibitRule>,
    groups: HashMap<String, Group>,
    /// The keys of the groups holding each firing alert.
    held: HashMap<AlertId, Vec<String>>,
    /// By id; expired ones are kept for `silence_retention`.
    pub(crate) silences: BTreeMap<SilenceId, Silence>,
    /// The id given to the latest silence.
    pub(super) last_silence: u64,
    /// How long expired silences stay listed ([`DEFAULT_SILENCE_RETENTION`]
    /// if unset).
    pub(crate) silence_retention: Option<Duration>,
}

impl Local {
    /// Checks the routing tree and the silence retention.
    pub(crate) fn check(&self) -> Result<()> {
        self.routing.validate()?;
        let retention = self.silence_retention.unwrap_or(DEFAULT_SILENCE_RETENTION);
        let (setting, problem) = ("silence_retention", crate::time::too_long(retention));
        problem.map_or(Ok(()), |reason| {
            Err(Error::InvalidSetting { setting, reason })
        })
    }

    /// Drops silences that expired longer than the retention ago.
    pub(crate) fn prune_silences(&mut self, now: SystemTime) {
        let retention = self.silence_retention.unwrap_or(DEFAULT_SILENCE_RETENTION);
        (self.silences).retain(|_, s| s.ends_at.checked_add(retention).is_none_or(|t| t >= now));
    }

    /// Whether an active silence mutes `alert`.
    fn silenced(&self, now: SystemTime, alert: &Active) -> bool {
        let mutes = |s: &Silence| s.mutes(now, |n| alert.label(n));
        self.silences.values().any(mutes)
    }

    /// The active alerts with their `silenced` and `inhibited` flags set.
    pub(crate) fn flag(&self, now: SystemTime, active: &[Active]) -> Vec<Alert> {
        let inhibitors = Inhibitors::new(&self.inhibit_rules, active);
        let flag = |a: &Active| Alert {
            silenced: self.silenced(now, a),
            inhibited: inhibitors.inhibit(a),
            ..a.alert.clone()
        };
        active.iter().map(flag).collect()
    }

    /// Takes a change of alert `id` of `rule` at `now`: its firing
    /// `alert` (escalation included) fires in the group its labels route
    /// it to (and, once escalated, in `rule`'s escalation receiver's group
    /// too), routed again only when it is new or its escalation adds a
    /// group; it resolves at `now` in the groups it left (all of them
    /// without `alert`). The engine hands over only what changed.
    pub(crate) fn update(
        &mut self,
        now: SystemTime,
        rule: &Rule,
        id: AlertId,
        alert: Option<Active>,
    ) {
        let old = self.held.remove(&id).unwrap_or_default();
        let to = rule.escalate.as_ref().and_then(|e| e.receiver.as_deref());
        let to = to.filter(|_| alert.as_ref().is_some_and(|a| a.alert.escalated));
        let keys: Vec<String> = match &alert {
            Some(_) if old.len() == 1 + usize::from(to.is_some()) => old.clone(),
            Some(a) => [None]
                .into_iter()
                .chain(to.map(Some))
                .map(|to| self.group(now, &a.alert, to))
                .collect(),
            None => Vec::new(),
        };
        for key in old.iter().filter(|k| !keys.contains(k)) {
            let group = self.groups.get_mut(key);
            if let Some((held, _)) = group.and_then(|g| g.entries.get_mut(&id)) {
                (held.alert.status, held.alert.ends_at) = (AlertStatus::Resolved, Some(now));
            }
        }
        let Some(alert) = alert else { return };
        for key in &keys {
            // A group keeps its firing alerts.
            let group = self.groups.get_mut(key).expect("its group");
            group
                .entries
                .entry(id)
                .or_insert_with(|| (alert.clone(), None))
                .0 = alert.clone();
        }
        self.held.insert(id, keys);
    }

    /// The key of the group `alert` goes to (the escalation receiver's
    /// group with `escalated_to`); the group is made if new.
    fn group(&mut self, now: SystemTime, alert: &Alert, escalated_to: Option<&str>) -> String {
        let (routing, default) = (&self.routing, Route::default());
        let matches = |r: &&Route| matches_all(&r.matchers, &alert.labels);
        let found = routing.routes.iter().find(matches);
        // The default receiver inherits every setting.
        let route = found.unwrap_or(&default);
        let group_by = routing.grouping(route);
        let all = group_by.iter().any(|l| l == "...");
        let mut labels = alert.labels.clone();
        labels.retain(|name, _| all || group_by.contains(name));
        // Alertmanager's route path: `{}`, then each level's matchers.
        let path = found.map(|r| r.matchers.iter().map(ToString::to_string));
        let path = path.map(|p| format!("/{{{}}}", p.collect::<Vec<_>>().join(",")));
        let to = escalated_to.map(|r| format!("/{{escalated_to={r:?}}}"));
        let (path, to) = (path.unwrap_or_default(), to.unwrap_or_default());
        let key = format!("{{}}{path}{to}:{}", DisplayLabels(&labels));
        let [wait, interval, repeat] = routing.timers(route);
        let receiver = found.map_or(&routing.receiver, |r| &r.receiver);
        let group = || Group {
            receiver: escalated_to.unwrap_or(receiver).to_owned(),
            labels,
            intervals: [interval, repeat],
            entries: HashMap::new(),
            next_flush: now + wait,
            last_sent: None,
        };
        self.groups.entry(key.clone()).or_insert_with(group);
        key
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
        let routing = &self.local.routing;
        let routes = routing.routes.iter().map(|route| route.receiver.as_str());
        let routes = routes.chain([routing.receiver.as_str()]);
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
        let firing = held.iter().copied().filter(|a| a.is_firing());
        let inhibitors = Inhibitors::new(&local.inhibit_rules, firing);
        // Muted by a silence, or inhibited by the firing alerts.
        let muted = |a: &&&Active| local.silenced(now, a) || inhibitors.inhibit(a);
        let muted: HashSet<AlertId> = held.iter().filter(muted).map(|a| a.id).collect();
        let mut out = Vec::new();
        local.groups.retain(|key, group| {
            if group.next_flush <= now {
                let alerts = group.flush(now, &muted);
                out.extend(alerts.map(|alerts| group.notification(key, alerts)));
                group.next_flush = now + group.intervals[0];
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
    fn flush(&mut self, now: SystemTime, muted: &HashSet<AlertId>) -> Option<Vec<Alert>> {
        // Firing alerts, and resolved ones whose firing was notified.
        let shown = |(id, (a, told)): &(&AlertId, &(Active, Option<bool>))| {
            !muted.contains(*id) && (a.is_firing() || told.is_some())
        };
        let shown = self.entries.iter().filter(shown);
        let changed = (shown.clone())
            .any(|(_, (a, told))| !a.is_firing() || *told != Some(a.alert.escalated));
        let mut alerts: Vec<Alert> = shown.map(|(_, (a, _))| a.alert.clone()).collect();
        let firing = alerts.iter().any(|a| a.status == AlertStatus::Firing);
        let send =
            changed || (firing && self.last_sent.is_some_and(|t| now >= t + self.intervals[1]));
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

    /// The group's notification (its key is `key`) carrying `alerts`.
    fn notification(&self, key: &str, alerts: Vec<Alert>) -> Notification {
        let common = |pick: fn(&Alert) -> &Labels| -> Labels {
            let first = alerts.first().map(pick).cloned().unwrap_or_default();
            let shared = |(k, v): &(_, _)| alerts.iter().all(|a| pick(a).get(k) == Some(v));
            first.into_iter().filter(shared).collect()
        };
        Notification {
            receiver: self.receiver.clone(),
            group_key: key.to_owned(),
            group_labels: self.labels.clone(),
            // Firing alerts come first.
            status: alerts.first().map_or(AlertStatus::Resolved, |a| a.status),
            common_labels: common(|a| &a.labels),
            common_annotations: common(|a| &a.annotations),
            alerts,
        }
    }
}

/// What the firing alerts inhibit, indexed once per pass so that checking
/// an alert costs a lookup per inhibit rule, not a scan of the firing
/// alerts: one of the same instance at a higher severity inhibits it, and
/// so does another matching an inhibit rule's `source_matchers` with the
/// same `equal` labels (a missing one is empty) when it matches that
/// rule's `target_matchers`.
struct Inhibitors<'a> {
    rules: &'a [InhibitRule],
    /// The highest firing severity of each instance.
    top: HashMap<u64, Severity>,
    /// Per inhibit rule, its sources by their `equal` label values: up to
    /// two distinct (instance, severity), enough to find one that is not
    /// the target itself.
    sources: Vec<Sources<'a>>,
}

/// An inhibit rule's sources (instance, severity) by their `equal` values.
type Sources<'a> = HashMap<Vec<&'a str>, Vec<(u64, Severity)>>;

impl<'a> Inhibitors<'a> {
    fn new(rules: &'a [InhibitRule], firing: impl IntoIterator<Item = &'a Active>) -> Self {
        let (mut top, mut sources) = (HashMap::new(), vec![HashMap::new(); rules.len()]);
        for s in firing {
            let (_, base, severity) = s.id;
            let level = top.entry(base).or_insert(severity);
            *level = (*level).max(severity);
            for (rule, by_equal) in rules.iter().zip(&mut sources) {
                if matches_all(&rule.source_matchers, &s.alert.labels) {
                    let ids: &mut Vec<_> = by_equal.entry(equal_values(rule, s)).or_default();
                    if ids.len() < 2 && !ids.contains(&(base, severity)) {
                        ids.push((base, severity));
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
        let (_, base, severity) = target.id;
        // An alert never inhibits itself.
        let other = |ids: &Vec<(u64, Severity)>| ids.iter().any(|s| *s != (base, severity));
        let by_rule = |(rule, by_equal): (&InhibitRule, &Sources)| {
            matches_all(&rule.target_matchers, &target.alert.labels)
                && by_equal.get(&equal_values(rule, target)).is_some_and(other)
        };
        self.top.get(&base).is_some_and(|s| *s > severity)
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::{Comparison, Engine, MemorySource, Rule, Severity};

    /// An instance whose alert did not change costs local routing nothing:
    /// its group entry stays the same allocation; a new value replaces it.
    #[test]
    fn an_unchanged_firing_alert_leaves_its_group_entry_untouched() {
        let rule = Rule::builder("HighCpu").gauge("cpu");
        let rule = rule.threshold(Severity::High, Comparison::Greater, 0.9);
        let mut engine = Engine::new([rule.build().unwrap()]).unwrap();
        let mut source = MemorySource::new();
        source.set_gauge("cpu", [("host", "a")], 0.95);
        let mut at = |secs, source: &MemorySource| {
            engine.evaluate(UNIX_EPOCH + Duration::from_secs(secs), source);
            let group = engine.local.groups.values().next().unwrap();
            let (alert, _) = group.entries.values().next().unwrap();
            (alert.alert.rule.as_ptr(), engine.local.held.clone())
        };
        let first = at(0, &source);
        assert_eq!(at(15, &source), first);
        assert_eq!(at(30, &source), first);
        source.set_gauge("cpu", [("host", "a")], 0.96);
        let changed = at(45, &source);
        assert_ne!(changed.0, first.0);
        assert_eq!(changed.1, first.1);
    }
}
