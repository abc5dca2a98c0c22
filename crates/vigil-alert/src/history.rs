//! What happened: [`Transition`]s and the bounded [`History`] that keeps them.
//!
//! Every change of an instance's state or severity (including escalation)
//! is a [`Transition`]. [`Engine::evaluate`](crate::Engine::evaluate) returns
//! the transitions of that evaluation and appends them to the engine's
//! history, a ring that keeps the most recent `capacity` of them and can be
//! queried by rule, by labels and by time, and serialized (e.g. for an API
//! or to survive a restart).

use std::collections::VecDeque;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::labels::{Labels, Matcher};
use crate::{Severity, State};

/// One change of one alert instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// The rule's name (`alertname`).
    pub rule: String,
    /// The instance's labels: series (or `by`) labels, rule labels and
    /// `alertname`; the severity is in [`severity`](Self::severity).
    pub labels: Labels,
    /// The state before.
    pub from: State,
    /// The state after (equal to `from` for a change of severity).
    pub to: State,
    /// The severity before, if the instance had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_severity: Option<Severity>,
    /// The severity after (escalation included), if the instance has one;
    /// when an alert ends (`Firing`/`Recovering` to `Resolved` or `NoData`),
    /// the severity it had while firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The `severity` label value of [`severity`](Self::severity) as the
    /// rule names it (`"warning"` for a threshold written `warning`; see
    /// [`SeverityLabels`](crate::severity::SeverityLabels)): what
    /// [`HistoryQuery`] matchers on `severity` see. When absent (a history
    /// saved without it), the level's own name is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_label: Option<String>,
    /// The value read in this evaluation (`None` when absent).
    pub value: Option<f64>,
    /// When it happened (the `now` given to the evaluation).
    #[serde(with = "crate::time::rfc3339")]
    pub at: SystemTime,
    /// Whether a local silence (the `routing` feature) matched the
    /// instance's alert at that time (it still changes state, but is not
    /// notified).
    #[serde(default)]
    pub silenced: bool,
    /// Whether the instance is escalated after this transition.
    #[serde(default)]
    pub escalated: bool,
}

impl Transition {
    /// Whether the transition is a change of severity within one state.
    pub fn is_severity_change(&self) -> bool {
        self.from == self.to && self.from_severity != self.severity
    }

    /// The `severity` label value: [`severity_label`](Self::severity_label),
    /// else the name of [`severity`](Self::severity), if there is one.
    pub fn severity_label(&self) -> Option<&str> {
        let own = self.severity.map(Severity::as_str);
        self.severity_label.as_deref().or(own)
    }
}

/// Filters for [`History::query`]; all given conditions must hold.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use vigil_alert::{HistoryQuery, Matcher};
///
/// let q = HistoryQuery::new()
///     .rule("HighLatency")
///     .matcher(Matcher::equal("route", "/api"))
///     .since(UNIX_EPOCH + Duration::from_secs(60));
/// # let _ = q;
/// ```
#[must_use]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this rule's transitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Only transitions whose labels (plus `severity`) match all of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<Matcher>,
    /// Only transitions at or after this time.
    #[serde(default, with = "crate::time::rfc3339_option")]
    pub since: Option<SystemTime>,
}

impl HistoryQuery {
    /// A query that matches everything.
    pub fn new() -> Self {
        Self::default()
    }

    crate::notify::setters! {
        /// Keeps only `rule`'s transitions.
        rule(rule: impl Into<String>) => rule = Some(rule.into());

        /// Keeps only transitions whose labels (plus `severity`) match.
        matcher(matcher: Matcher) => push matchers(matcher);

        /// Keeps only transitions at or after `time`.
        since(time: SystemTime) => since = Some(time);
    }

    /// Whether `t` passes the filters.
    pub fn matches(&self, t: &Transition) -> bool {
        let label = |name: &str| match name {
            "severity" => t.severity_label(),
            _ => t.labels.get(name).map(String::as_str),
        };
        self.rule.as_ref().is_none_or(|r| *r == t.rule)
            && self.since.is_none_or(|s| t.at >= s)
            && self.matchers.iter().all(|m| m.matches_with(label))
    }
}

/// Default [`History`] capacity.
pub const DEFAULT_HISTORY_CAPACITY: usize = 1024;

/// A bounded ring of [`Transition`]s, oldest first.
///
/// Serialized as `{capacity, transitions: [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    capacity: usize,
    transitions: VecDeque<Transition>,
}

impl Default for History {
    fn default() -> Self {
        History::new(DEFAULT_HISTORY_CAPACITY)
    }
}

impl History {
    /// An empty history keeping at most `capacity` transitions (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        History {
            capacity,
            transitions: VecDeque::with_capacity(capacity.min(4096)),
        }
    }

    /// How many transitions it keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many transitions it holds.
    pub fn len(&self) -> usize {
        self.transitions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.transitions.is_empty()
    }

    /// Appends a transition, dropping the oldest when full.
    pub fn push(&mut self, transition: Transition) {
        if self.transitions.len() >= self.capacity {
            self.transitions.pop_front();
        }
        self.transitions.push_back(transition);
    }

    /// All transitions, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Transition> + ExactSizeIterator {
        self.transitions.iter()
    }

    /// Transitions passing `query`, oldest first.
    pub fn query<'a>(&'a self, query: &'a HistoryQuery) -> impl Iterator<Item = &'a Transition> {
        self.transitions.iter().filter(|t| query.matches(t))
    }

    /// One rule's transitions, oldest first.
    pub fn by_rule<'a>(&'a self, rule: &'a str) -> impl Iterator<Item = &'a Transition> {
        self.transitions.iter().filter(move |t| t.rule == rule)
    }

    /// Transitions at or after `time`, oldest first.
    pub fn since(&self, time: SystemTime) -> impl Iterator<Item = &Transition> {
        // Times are non-decreasing when the engine is driven forward, but a
        // clock step back must not hide entries: filter, don't binary-search.
        self.transitions.iter().filter(move |t| t.at >= time)
    }

    /// Transitions whose labels include all of `labels` (same values).
    pub fn with_labels<'a>(&'a self, labels: &'a Labels) -> impl Iterator<Item = &'a Transition> {
        let has = move |t: &&Transition| labels.iter().all(|(k, v)| t.labels.get(k) == Some(v));
        self.transitions.iter().filter(has)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use std::time::{Duration, UNIX_EPOCH};

    fn transition(rule: &str, host: &str, secs: u64) -> Transition {
        Transition {
            rule: rule.into(),
            labels: labels([("alertname", rule), ("host", host)]),
            from: State::Inactive,
            to: State::Firing,
            from_severity: None,
            severity: Some(Severity::High),
            severity_label: None,
            value: Some(1.5),
            at: UNIX_EPOCH + Duration::from_secs(secs),
            silenced: false,
            escalated: false,
        }
    }

    #[test]
    fn ring_drops_the_oldest_beyond_capacity() {
        let mut h = History::new(3);
        for i in 0..5 {
            h.push(transition("R", "a", i));
        }
        assert_eq!(h.len(), 3);
        let times: Vec<_> = h.iter().map(|t| t.at).collect();
        assert_eq!(times[0], UNIX_EPOCH + Duration::from_secs(2));
    }

    #[test]
    fn queries_filter_by_rule_labels_and_time() {
        let mut h = History::new(10);
        h.push(transition("A", "x", 1));
        h.push(transition("B", "x", 2));
        h.push(transition("A", "y", 3));
        assert_eq!(h.by_rule("A").count(), 2);
        assert_eq!(h.since(UNIX_EPOCH + Duration::from_secs(2)).count(), 2);
        assert_eq!(h.with_labels(&labels([("host", "x")])).count(), 2);
        let q = HistoryQuery::new()
            .rule("A")
            .matcher(Matcher::equal("host", "y"))
            .matcher(Matcher::equal("severity", "high"))
            .since(UNIX_EPOCH);
        let hits: Vec<_> = h.query(&q).collect();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].labels["host"], "y");
        let q = HistoryQuery::new().matcher(Matcher::equal("severity", "low"));
        assert_eq!(h.query(&q).count(), 0);
    }

    #[test]
    fn severity_matchers_see_the_named_label() {
        let mut h = History::new(4);
        let mut named = transition("A", "x", 1);
        named.severity = Some(Severity::Medium);
        named.severity_label = Some("warning".into());
        h.push(named);
        h.push(transition("B", "x", 2));
        let rules = |value: &str| {
            let q = HistoryQuery::new().matcher(Matcher::equal("severity", value));
            h.query(&q).map(|t| t.rule.clone()).collect::<Vec<_>>()
        };
        assert_eq!(rules("warning"), ["A"]);
        assert!(rules("medium").is_empty());
        assert_eq!(rules("high"), ["B"], "no label: the level's own name");
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains(r#""severity_label":"warning""#), "{json}");
        assert_eq!(serde_json::from_str::<History>(&json).unwrap(), h);
    }

    #[test]
    fn serde_round_trips_with_rfc3339_times() {
        let mut h = History::new(4);
        h.push(transition("A", "x", 90));
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains(r#""at":"1970-01-01T00:01:30Z""#), "{json}");
        let back: History = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
    }
}
