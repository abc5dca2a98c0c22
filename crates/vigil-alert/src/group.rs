//! Routing, grouping, inhibition and the [`Notification`]s they produce,
//! following Alertmanager.
//!
//! Every alert is routed by its labels (including `alertname` and
//! `severity`): the first [`Route`] whose matchers all hold, else the
//! [`Routing`] default. Within a route, alerts with the same values of the
//! route's `group_by` labels form one group, which is notified as one
//! [`Notification`] carrying all its firing and newly resolved alerts:
//!
//! - a new group waits `group_wait` before its first notification (so alerts
//!   that start together arrive together);
//! - after that the group is checked every `group_interval`, and notified
//!   when an alert started firing (or escalated) or resolved since the last
//!   notification;
//! - otherwise a group with firing alerts is re-notified once
//!   `repeat_interval` has passed since the last notification.
//!
//! Alerts muted by an active [`Silence`] or inhibited are
//! left out of notifications. Inhibition: a firing alert mutes the alerts of
//! lower severity with the same `alertname` and otherwise the same labels
//! (so when an instance goes from `medium` to `critical`, receivers see the
//! critical alert and no "resolved" for the medium one), and each
//! [`InhibitRule`] mutes alerts matching its `target_matchers` while an alert
//! matching its `source_matchers` with the same `equal` labels fires.
//!
//! A resolved alert is only notified to receivers that were told it fired.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::labels::{DisplayLabels, Labels, Matcher, is_valid_label_name};
use crate::rule::{Rule, expand_template};
use crate::silence::Silence;
use crate::{Error, Result, Severity};

/// Alertmanager's default `group_wait`.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// Alertmanager's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 60 * 60);

/// The routing tree: a default receiver with its grouping settings, and
/// routes tried in order (first match wins). Shaped like Alertmanager's
/// `route:` block, one level deep:
///
/// ```yaml
/// receiver: team-email
/// group_by: [alertname, service]
/// group_wait: 30s
/// group_interval: 5m
/// repeat_interval: 4h
/// routes:
///   - matchers: ['severity="critical"']
///     receiver: pager
///     repeat_interval: 1h
/// ```
///
/// `group_by: ['...']` groups by all labels (one group per alert); an empty
/// `group_by` puts all alerts of the route in one group.
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::{Matcher, Route, Routing};
///
/// let routing = Routing::new("team-email")
///     .group_by(["alertname", "service"])
///     .route(Route::new("pager").matcher(Matcher::equal("severity", "critical")));
/// assert_eq!(routing.group_wait, Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// The receiver of alerts no route matches.
    pub receiver: String,
    /// Labels whose values split alerts into groups.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// How long a new group waits before its first notification.
    #[serde(default = "group_wait", with = "crate::serde_duration")]
    pub group_wait: Duration,
    /// How often a notified group is checked for changes.
    #[serde(default = "group_interval", with = "crate::serde_duration")]
    pub group_interval: Duration,
    /// How long before an unchanged group with firing alerts is re-notified.
    #[serde(default = "repeat_interval", with = "crate::serde_duration")]
    pub repeat_interval: Duration,
    /// Routes tried in order before the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
}

fn group_wait() -> Duration {
    DEFAULT_GROUP_WAIT
}
fn group_interval() -> Duration {
    DEFAULT_GROUP_INTERVAL
}
fn repeat_interval() -> Duration {
    DEFAULT_REPEAT_INTERVAL
}

impl Default for Routing {
    /// Everything to a receiver named `default`, grouped by `alertname`.
    fn default() -> Self {
        Routing::new("default").group_by(["alertname"])
    }
}

impl Routing {
    /// Everything to `receiver` in one group, with Alertmanager's default
    /// timers (30s / 5m / 4h).
    pub fn new(receiver: impl Into<String>) -> Self {
        Routing {
            receiver: receiver.into(),
            group_by: Vec::new(),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            routes: Vec::new(),
        }
    }

    /// Sets the default `group_by` (inherited by routes without their own).
    #[must_use]
    pub fn group_by<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.group_by = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the default `group_wait`.
    #[must_use]
    pub fn group_wait(mut self, d: Duration) -> Self {
        self.group_wait = d;
        self
    }

    /// Sets the default `group_interval`.
    #[must_use]
    pub fn group_interval(mut self, d: Duration) -> Self {
        self.group_interval = d;
        self
    }

    /// Sets the default `repeat_interval`.
    #[must_use]
    pub fn repeat_interval(mut self, d: Duration) -> Self {
        self.repeat_interval = d;
        self
    }

    /// Appends a route (tried after the ones before it).
    #[must_use]
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Checks receivers, label names and timers (`group_interval` and
    /// `repeat_interval` longer than zero, every timer at most
    /// [`MAX_DURATION`](crate::MAX_DURATION)).
    pub fn validate(&self) -> Result<()> {
        let check = |receiver: &str, group_by: &[String], timers: [(&'static str, Duration); 3]| {
            let bad = |field, reason: String| Error::InvalidRoute {
                receiver: receiver.to_owned(),
                field,
                reason,
            };
            if receiver.is_empty() {
                return Err(bad("receiver", "must not be empty".into()));
            }
            if let Some(name) = group_by
                .iter()
                .find(|n| n.as_str() != "..." && !is_valid_label_name(n))
            {
                return Err(bad(
                    "group_by",
                    format!("{name:?} is not a valid label name"),
                ));
            }
            for (field, d) in timers {
                if d.is_zero() && field != "group_wait" {
                    return Err(bad(field, "must be longer than zero".into()));
                }
                if let Some(problem) = crate::too_long(d) {
                    return Err(bad(field, problem));
                }
            }
            Ok(())
        };
        check(
            &self.receiver,
            &self.group_by,
            [
                ("group_wait", self.group_wait),
                ("group_interval", self.group_interval),
                ("repeat_interval", self.repeat_interval),
            ],
        )?;
        for r in &self.routes {
            check(
                &r.receiver,
                r.group_by.as_deref().unwrap_or(&[]),
                [
                    ("group_wait", r.group_wait.unwrap_or(self.group_wait)),
                    (
                        "group_interval",
                        r.group_interval.unwrap_or(self.group_interval),
                    ),
                    (
                        "repeat_interval",
                        r.repeat_interval.unwrap_or(self.repeat_interval),
                    ),
                ],
            )?;
        }
        Ok(())
    }
}

/// One route: alerts matching all `matchers` go to `receiver`, grouped and
/// timed by its settings (those left out are inherited from [`Routing`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Conditions on the alert's labels (incl. `alertname`, `severity`).
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Where matching alerts go.
    pub receiver: String,
    /// Overrides [`Routing::group_by`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// Overrides [`Routing::group_wait`].
    #[serde(
        default,
        with = "crate::serde_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_wait: Option<Duration>,
    /// Overrides [`Routing::group_interval`].
    #[serde(
        default,
        with = "crate::serde_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub group_interval: Option<Duration>,
    /// Overrides [`Routing::repeat_interval`].
    #[serde(
        default,
        with = "crate::serde_duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub repeat_interval: Option<Duration>,
}

impl Route {
    /// A route to `receiver` matching every alert; add matchers next.
    pub fn new(receiver: impl Into<String>) -> Self {
        Route {
            matchers: Vec::new(),
            receiver: receiver.into(),
            group_by: None,
            group_wait: None,
            group_interval: None,
            repeat_interval: None,
        }
    }

    /// Adds a label matcher.
    #[must_use]
    pub fn matcher(mut self, matcher: Matcher) -> Self {
        self.matchers.push(matcher);
        self
    }

    /// Sets this route's `group_by`.
    #[must_use]
    pub fn group_by<I, S>(mut self, labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.group_by = Some(labels.into_iter().map(Into::into).collect());
        self
    }

    /// Sets this route's `group_wait`.
    #[must_use]
    pub fn group_wait(mut self, d: Duration) -> Self {
        self.group_wait = Some(d);
        self
    }

    /// Sets this route's `group_interval`.
    #[must_use]
    pub fn group_interval(mut self, d: Duration) -> Self {
        self.group_interval = Some(d);
        self
    }

    /// Sets this route's `repeat_interval`.
    #[must_use]
    pub fn repeat_interval(mut self, d: Duration) -> Self {
        self.repeat_interval = Some(d);
        self
    }
}

/// Alertmanager's inhibit rule: while an alert matching `source_matchers`
/// fires, alerts matching `target_matchers` that have the same values for
/// the `equal` labels are muted (an alert never inhibits itself).
///
/// ```yaml
/// source_matchers: ['alertname="ServiceDown"']
/// target_matchers: ['alertname=~"HighLatency|HighErrorRate"']
/// equal: [service]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// What the inhibiting (firing) alert looks like.
    #[serde(default)]
    pub source_matchers: Vec<Matcher>,
    /// What the muted alerts look like.
    #[serde(default)]
    pub target_matchers: Vec<Matcher>,
    /// Labels that must have equal values in source and target (a label
    /// missing from both counts as equal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

/// Whether an alert is firing or resolved (`"firing"` / `"resolved"`, as in
/// Alertmanager's webhook).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// [`SeverityLabels`](crate::severity::SeverityLabels)).
    pub severity: Severity,
    /// The latest value while firing (`None` when the series was absent);
    /// a resolved alert keeps its last firing value, as in Prometheus.
    pub value: Option<f64>,
    /// When the instance started firing.
    #[serde(with = "crate::serde_time")]
    pub starts_at: SystemTime,
    /// When it resolved (`None` while firing).
    #[serde(with = "crate::serde_time::option")]
    pub ends_at: Option<SystemTime>,
    /// Whether an active silence mutes it (never true in a notification).
    pub silenced: bool,
    /// Whether an inhibition mutes it (never true in a notification).
    #[serde(default)]
    pub inhibited: bool,
    /// Whether it escalated (fired unresolved for longer than the rule's
    /// `escalate.after`).
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
    labels
        .iter()
        .flat_map(|(name, value)| {
            let name = name.bytes().chain([SEPARATOR]);
            name.chain(value.bytes().chain([SEPARATOR]))
        })
        .fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

impl Groups {
    /// The receivers of the routing tree: every route's, then the default.
    pub(crate) fn receivers(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|route| route.receiver.as_str())
    }
}

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

impl Entry {
    fn label<'a>(&'a self, name: &str) -> Option<&'a str> {
        match name {
            "severity" => Some(&self.severity_label),
            _ => self.labels.get(name).map(String::as_str),
        }
    }

    fn full_labels(&self) -> Labels {
        let mut labels = self.labels.clone();
        labels.insert("severity".into(), self.severity_label.clone());
        labels
    }
}

/// A route with inheritance resolved.
#[derive(Clone, Debug)]
struct RouteSettings {
    matchers: Vec<Matcher>,
    receiver: String,
    group_by: Vec<String>,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    /// Alertmanager-style route path, the prefix of group keys.
    key: String,
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
    inhibit_rules: Vec<InhibitRule>,
    groups: HashMap<u64, Group>,
}

impl Groups {
    pub(crate) fn new(routing: &Routing, inhibit_rules: Vec<InhibitRule>) -> Self {
        let mut routes: Vec<RouteSettings> = routing
            .routes
            .iter()
            .map(|r| {
                let path: Vec<String> = r.matchers.iter().map(ToString::to_string).collect();
                RouteSettings {
                    matchers: r.matchers.clone(),
                    receiver: r.receiver.clone(),
                    group_by: r
                        .group_by
                        .clone()
                        .unwrap_or_else(|| routing.group_by.clone()),
                    group_wait: r.group_wait.unwrap_or(routing.group_wait),
                    group_interval: r.group_interval.unwrap_or(routing.group_interval),
                    repeat_interval: r.repeat_interval.unwrap_or(routing.repeat_interval),
                    key: format!("{{}}/{{{}}}", path.join(",")),
                }
            })
            .collect();
        routes.push(RouteSettings {
            matchers: Vec::new(),
            receiver: routing.receiver.clone(),
            group_by: routing.group_by.clone(),
            group_wait: routing.group_wait,
            group_interval: routing.group_interval,
            repeat_interval: routing.repeat_interval,
            key: "{}".into(),
        });
        Groups {
            routes,
            inhibit_rules,
            groups: HashMap::new(),
        }
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

    /// Which alerts are muted right now: built once per flush.
    fn mute_index(&self) -> MuteIndex<'_> {
        let mut top: HashMap<u64, Severity> = HashMap::new();
        let mut sources: Vec<&Entry> = Vec::new();
        for entry in self.groups.values().flat_map(|g| g.entries.values()) {
            if !entry.firing {
                continue;
            }
            let slot = top.entry(entry.base).or_insert(entry.severity);
            *slot = (*slot).max(entry.severity);
            if !self.inhibit_rules.is_empty() {
                sources.push(entry);
            }
        }
        MuteIndex { top, sources }
    }

    fn inhibited(&self, index: &MuteIndex<'_>, entry: &Entry) -> bool {
        if index
            .top
            .get(&entry.base)
            .is_some_and(|&s| s > entry.severity)
        {
            return true;
        }
        self.inhibit_rules.iter().any(|rule| {
            rule.target_matchers
                .iter()
                .all(|m| m.matches_with(|n| entry.label(n)))
                && index.sources.iter().any(|source| {
                    !(source.base == entry.base && source.severity == entry.severity)
                        && rule
                            .source_matchers
                            .iter()
                            .all(|m| m.matches_with(|n| source.label(n)))
                        && rule
                            .equal
                            .iter()
                            .all(|l| source.label(l).unwrap_or("") == entry.label(l).unwrap_or(""))
                })
        })
    }

    fn alert(entry: &Entry, rules: &[Rule], silenced: bool, inhibited: bool) -> Alert {
        let rule = &rules[entry.rule];
        let labels = entry.full_labels();
        let annotations = rule
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), expand_template(v, entry.value, &labels)))
            .collect();
        Alert {
            rule: rule.name.clone(),
            labels,
            annotations,
            status: if entry.firing {
                AlertStatus::Firing
            } else {
                AlertStatus::Resolved
            },
            severity: entry.severity,
            value: entry.value,
            starts_at: entry.starts_at,
            ends_at: entry.ends_at,
            silenced,
            inhibited,
            escalated: entry.escalated,
        }
    }

    /// Every alert in the store (each once), with its mute flags.
    pub(crate) fn alerts(
        &self,
        now: SystemTime,
        rules: &[Rule],
        silences: &[Silence],
    ) -> Vec<Alert> {
        let index = self.mute_index();
        let mut seen = HashSet::new();
        let mut out: Vec<Alert> = self
            .groups
            .values()
            .flat_map(|g| g.entries.iter())
            .filter(|(id, _)| seen.insert(**id))
            .map(|(_, e)| {
                let silenced = silences.iter().any(|s| s.mutes(now, |n| e.label(n)));
                Self::alert(e, rules, silenced, self.inhibited(&index, e))
            })
            .collect();
        sort_alerts(&mut out);
        out
    }

    /// The notifications due at `now`; updates the groups' timers and
    /// notified sets, and drops resolved alerts and empty groups.
    pub(crate) fn flush(
        &mut self,
        now: SystemTime,
        rules: &[Rule],
        silences: &[Silence],
    ) -> Vec<Notification> {
        if !self.groups.values().any(|g| g.next_flush <= now) {
            return Vec::new();
        }
        // Decide with a read-only view, then apply.
        let mut plans = Vec::new();
        {
            let index = self.mute_index();
            for (&group_id, group) in &self.groups {
                if group.next_flush > now {
                    continue;
                }
                let mut firing = Vec::new();
                let mut resolved = Vec::new();
                for (&id, entry) in &group.entries {
                    let muted = silences.iter().any(|s| s.mutes(now, |n| entry.label(n)))
                        || self.inhibited(&index, entry);
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
                    .map(|id| Self::alert(&group.entries[id], rules, false, false))
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

struct MuteIndex<'a> {
    /// Highest firing severity per instance label set.
    top: HashMap<u64, Severity>,
    /// Firing alerts, for inhibit rules.
    sources: Vec<&'a Entry>,
}

fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| {
        (a.status == AlertStatus::Resolved, &a.labels)
            .cmp(&(b.status == AlertStatus::Resolved, &b.labels))
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_yaml_uses_alertmanager_names_and_defaults() {
        let yaml = r#"
receiver: team-email
group_by: [alertname, service]
routes:
  - matchers: ['severity="critical"']
    receiver: pager
    repeat_interval: 1h
"#;
        let routing: Routing = serde_yaml_ng::from_str(yaml).unwrap();
        routing.validate().unwrap();
        assert_eq!(routing.group_wait, DEFAULT_GROUP_WAIT);
        assert_eq!(
            routing.routes[0].repeat_interval,
            Some(Duration::from_secs(3600))
        );
        assert!(serde_yaml_ng::from_str::<Routing>("receiver: x\ncontinue: true\n").is_err());
        let again: Routing =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&routing).unwrap()).unwrap();
        assert_eq!(again, routing);
    }

    #[test]
    fn validation_names_the_route() {
        let err = Routing::new("a")
            .route(Route::new("").matcher(Matcher::equal("x", "y")))
            .validate()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidRoute {
                    field: "receiver",
                    ..
                }
            ),
            "{err}"
        );
        let err = Routing::new("a")
            .group_interval(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidRoute {
                field: "group_interval",
                ..
            }
        ));
        assert!(Routing::new("a").group_by(["..."]).validate().is_ok());
        assert!(
            Routing::new("a")
                .group_by(["not valid"])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn inhibit_rule_yaml_parses() {
        let yaml = "source_matchers: ['alertname=\"Down\"']\ntarget_matchers: ['severity!=\"critical\"']\nequal: [service]\n";
        let rule: InhibitRule = serde_yaml_ng::from_str(yaml).unwrap();
        assert_eq!(rule.equal, ["service"]);
    }

    #[test]
    fn fingerprints_are_stable_for_equal_label_sets() {
        let a = crate::labels([("a", "1"), ("b", "2")]);
        let b = crate::labels([("b", "2"), ("a", "1")]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&crate::labels([("a", "1")])));
    }
}
