//! Local routing for hosts without an Alertmanager (the `routing`
//! feature): grouping, group timers, inhibition, [silences](Silence) and
//! [escalation](crate::Escalation), following Alertmanager. None of it applies to
//! the engine's active alerts ([`Engine::alerts`](crate::Engine::alerts)),
//! which the Alertmanager sender (`alertmanager::Sender`) reads: there
//! Alertmanager routes, groups, silences and inhibits.
//!
//! Every alert is routed by its labels (including `alertname` and
//! `severity`): the first [`Route`] whose matchers all hold, else the
//! [`Routing`] default. Within a route, alerts with the same values of the
//! route's `group_by` labels form one group, which is notified as one
//! [`Notification`](crate::Notification) carrying all its firing and newly resolved alerts:
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

mod groups;
mod silence;

use std::time::Duration;

use crate::time::duration::option as dur;
use serde::{Deserialize, Serialize};

use crate::labels::{is_valid_label_name, label_names};
use crate::{Error, Matcher};

pub(crate) use groups::Local;
pub use silence::{DEFAULT_SILENCE_RETENTION, Silence, SilenceId, SilenceState};

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
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// The receiver of alerts no route matches.
    #[serde(alias = "notifier")]
    pub receiver: String,
    /// Labels whose values split alerts into groups.
    #[serde(default, deserialize_with = "crate::labels::group_by")]
    pub group_by: Vec<String>,
    /// How long a new group waits before its first notification.
    #[serde(default = "group_wait", with = "crate::time::duration")]
    pub group_wait: Duration,
    /// How often a notified group is checked for changes.
    #[serde(default = "group_interval", with = "crate::time::duration::positive")]
    pub group_interval: Duration,
    /// How long before an unchanged group with firing alerts is re-notified.
    #[serde(default = "repeat_interval", with = "crate::time::duration::positive")]
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

    crate::notify::setters! {
        /// Sets the default `group_by` (inherited by routes without their own).
        group_by(labels: impl IntoIterator<Item = impl Into<String>>) =>
            group_by = labels.into_iter().map(Into::into).collect();

        /// Sets the default `group_wait`.
        group_wait(d: Duration) => group_wait = d;

        /// Sets the default `group_interval`.
        group_interval(d: Duration) => group_interval = d;

        /// Sets the default `repeat_interval`.
        repeat_interval(d: Duration) => repeat_interval = d;

        /// Appends a route (tried after the ones before it).
        route(route: Route) => push routes(route);
    }

    /// Checks receivers, label names and timers (`group_interval` and
    /// `repeat_interval` longer than zero, every timer at most
    /// [`MAX_DURATION`](crate::MAX_DURATION)).
    pub fn validate(&self) -> crate::Result<()> {
        let default = Route::new(self.receiver.clone());
        let mut routes = std::iter::once(&default).chain(&self.routes);
        routes.try_for_each(|route| self.check(route))
    }

    /// `route`'s `group_by`, inherited if it has none.
    pub(crate) fn grouping<'a>(&'a self, route: &'a Route) -> &'a [String] {
        route.group_by.as_deref().unwrap_or(&self.group_by)
    }

    /// `route`'s `group_wait`, `group_interval` and `repeat_interval`, each
    /// inherited if it has none.
    pub(crate) fn timers(&self, route: &Route) -> [Duration; 3] {
        [
            route.group_wait.unwrap_or(self.group_wait),
            route.group_interval.unwrap_or(self.group_interval),
            route.repeat_interval.unwrap_or(self.repeat_interval),
        ]
    }

    fn check(&self, route: &Route) -> crate::Result<()> {
        let receiver = route.receiver.clone();
        let label = |n: &&String| n.as_str() != "..." && !is_valid_label_name(n);
        let label = self.grouping(route).iter().find(label);
        let label = label.map(|n| format!("{n:?} is not a valid label name"));
        let empty = receiver.is_empty().then(|| "must not be empty".to_owned());
        let [wait, interval, repeat] = self.timers(route);
        let not_positive = crate::time::not_positive;
        let problems = [
            ("receiver", empty),
            ("group_by", label),
            ("group_wait", crate::time::too_long(wait)),
            ("group_interval", not_positive(interval)),
            ("repeat_interval", not_positive(repeat)),
        ];
        match problems.into_iter().find_map(|(f, p)| Some((f, p?))) {
            Some((field, reason)) => Err(Error::InvalidRoute {
                receiver,
                field,
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// One route: alerts matching all `matchers` go to `receiver`, grouped and
/// timed by its settings (those left out are inherited from [`Routing`]).
#[must_use]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Conditions on the alert's labels (incl. `alertname`, `severity`).
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Where matching alerts go.
    #[serde(alias = "notifier")]
    pub receiver: String,
    /// Overrides [`Routing::group_by`].
    #[serde(default, deserialize_with = "crate::labels::group_by_option")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    /// Overrides [`Routing::group_wait`].
    #[serde(default, with = "dur", skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    /// Overrides [`Routing::group_interval`].
    #[serde(default, with = "dur", skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<Duration>,
    /// Overrides [`Routing::repeat_interval`].
    #[serde(default, with = "dur", skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Duration>,
}

impl Route {
    /// A route to `receiver` matching every alert; add matchers next.
    pub fn new(receiver: impl Into<String>) -> Self {
        let receiver = receiver.into();
        Route {
            receiver,
            ..Route::default()
        }
    }

    crate::notify::setters! {
        /// Adds a label matcher.
        matcher(matcher: Matcher) => push matchers(matcher);

        /// Sets this route's `group_by`.
        group_by(labels: impl IntoIterator<Item = impl Into<String>>) =>
            group_by = Some(labels.into_iter().map(Into::into).collect());

        /// Sets this route's `group_wait`.
        group_wait(d: Duration) => group_wait = Some(d);

        /// Sets this route's `group_interval`.
        group_interval(d: Duration) => group_interval = Some(d);

        /// Sets this route's `repeat_interval`.
        repeat_interval(d: Duration) => repeat_interval = Some(d);
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
    /// What the inhibiting (firing) alert looks like (required in a file:
    /// a rule without it would let any alert mute its targets).
    pub source_matchers: Vec<Matcher>,
    /// What the muted alerts look like (required in a file).
    pub target_matchers: Vec<Matcher>,
    /// Labels that must have equal values in source and target (a label
    /// missing from both counts as equal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(deserialize_with = "label_names")]
    pub equal: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_serde_uses_alertmanager_names_and_defaults() {
        let json = r#"{"receiver": "team-email", "group_by": ["alertname", "service"],
            "routes": [{"matchers": ["severity=\"critical\""], "receiver": "pager", "repeat_interval": "1h"}]}"#;
        let routing: Routing = serde_json::from_str(json).unwrap();
        routing.validate().unwrap();
        assert_eq!(routing.group_wait, DEFAULT_GROUP_WAIT);
        assert_eq!(
            routing.routes[0].repeat_interval,
            Some(Duration::from_secs(3600))
        );
        assert!(serde_json::from_str::<Routing>(r#"{"receiver": "x", "continue": true}"#).is_err());
        let again: Routing =
            serde_json::from_str(&serde_json::to_string(&routing).unwrap()).unwrap();
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
    fn inhibit_rules_need_both_matcher_lists_and_valid_equal_names() {
        let parse =
            |json: &str| serde_json::from_str::<InhibitRule>(json).map_err(|e| e.to_string());
        let missing = parse(r#"{"equal": ["service"]}"#).unwrap_err();
        assert!(
            missing.contains("missing field `source_matchers`"),
            "{missing}"
        );
        let missing = parse(r#"{"source_matchers": [], "equal": ["service"]}"#).unwrap_err();
        assert!(
            missing.contains("missing field `target_matchers`"),
            "{missing}"
        );
        let json = r#"{"source_matchers": [], "target_matchers": [], "equal": ["bad-label"]}"#;
        let bad = parse(json).unwrap_err();
        assert!(
            bad.contains(r#""bad-label" is not a valid label name"#),
            "{bad}"
        );
    }

    #[test]
    fn inhibit_rule_parses() {
        let json = r#"{"source_matchers": ["alertname=\"Down\""], "target_matchers": ["severity!=\"critical\""], "equal": ["service"]}"#;
        let rule: InhibitRule = serde_json::from_str(json).unwrap();
        assert_eq!(rule.equal, ["service"]);
    }
}
