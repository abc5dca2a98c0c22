//! The [`Engine`]: evaluates rules against a [`Source`], runs each alert
//! instance's state machine, records history and reports the active
//! [`Alert`]s; with the `routing` feature it also escalates, and hands
//! grouped [notifications](crate::Notification) to whoever delivers them.
//!
//! The engine never reads a clock: [`Engine::evaluate`] (and
//! `Engine::due_notifications`) take `now`, so a host drives it from a
//! timer and tests drive it with synthetic `SystemTime`s. Nothing here
//! does I/O.
//!
//! # Cost per evaluation
//! Per rule: one [`Source`] call (two for a ratio), plus those of its
//! [`also`](crate::Rule::also) expression, then per returned series a few
//! comparisons (and, for a series whose threshold holds, one hash lookup of
//! its `also` value). A series that is healthy and has no alert
//! instance costs no allocation and, while the rule has no instances, no
//! hash lookup; instances (keyed by their label set, per rule) exist only
//! from the first breach until they rest again (aggregated rules keep their
//! one instance, `no_data: alerting` rules keep every series they saw).
//! Counter rates keep a ring of (time, total) per series for the rule's
//! window; dynamic thresholds a ring of values per instance for the
//! baseline window. Regex matchers are compiled when rules are built.
//! Each rule counts its alerting instances per severity as they change,
//! and `alerts_firing` is set from those counts only after an evaluation
//! that changed one. With local routing each alerting instance keeps its
//! alert: only one whose severity, escalation, start or value changed is
//! rebuilt (annotations expanded again) and handed to its groups, routed
//! again only when new or newly escalated; an unchanged one costs no
//! allocation. Muting (silences, inhibition, indexed once per pass) is
//! decided when a group's timer expires.
//!
//! # Metrics
//! Each evaluation sets the gauge `alerts_firing{alert, severity}` (through
//! the `metrics` facade) to the number of alerting (`Firing` or
//! `Recovering`) instances of each rule name at each severity, whenever that
//! number changes (so series that have fired stay, at 0). `severity` is the
//! label value the rule gives the level (`warning` for a threshold written
//! `warning`; see [`SeverityLabels`](crate::SeverityLabels)).

mod builder;
mod step;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::alert::{Active, sort_alerts};
use crate::{Alert, Error, History, Labels, Result, Rule, Severity, Source, State, Transition};

pub use builder::EngineBuilder;
use step::{Instance, RuleState, effective_severity, firing, instance_labels};

/// Name of the gauge of alerting instances per rule name and severity
/// label (see the [module docs](self)).
pub const ALERTS_FIRING: &str = "alerts_firing";

/// The alert engine: rules, their instances' states and history (and with
/// the `routing` feature, the alert groups and silences).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use vigil_alert::{Comparison, Engine, MemorySource, Rule, Severity, State};
///
/// let rule = Rule::builder("QueueBacklog")
///     .gauge("queue_depth")
///     .threshold(Severity::High, Comparison::Greater, 100.0)
///     .for_duration(Duration::from_secs(60))
///     .build()?;
/// let mut engine = Engine::new([rule])?;
/// let mut source = MemorySource::new();
/// let t = |s| UNIX_EPOCH + Duration::from_secs(s);
///
/// source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
/// assert_eq!(engine.evaluate(t(0), &source)[0].to, State::Pending);
/// assert!(engine.evaluate(t(30), &source).is_empty());
/// assert_eq!(engine.evaluate(t(60), &source)[0].to, State::Firing);
/// # Ok::<(), vigil_alert::Error>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    rules: Vec<Rule>,
    states: Vec<RuleState>,
    /// The `alerts_firing` series (rule name, severity label) as last set.
    firing: HashMap<(String, String), u32>,
    /// Whether a rule's count of alerting instances changed since
    /// `firing` was last set.
    recount: bool,
    #[cfg(feature = "routing")]
    pub(crate) local: crate::routing::Local,
    history: History,
    tick: u64,
}

/// A snapshot of one alert instance, for status pages and APIs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceStatus {
    /// The rule's name.
    pub rule: String,
    /// The instance's labels (incl. `alertname`, excl. `severity`).
    pub labels: Labels,
    /// Its state.
    pub state: State,
    /// When it started firing, while alerting.
    #[serde(with = "crate::time::rfc3339_option")]
    pub active_since: Option<SystemTime>,
    /// Its severity (escalation included), if it has one.
    pub severity: Option<Severity>,
    /// The last value read.
    pub value: Option<f64>,
    /// Whether it escalated.
    pub escalated: bool,
}

impl Engine {
    /// Starts building an engine.
    ///
    /// ```
    /// use vigil_alert::{Comparison, Engine, Rule, Severity};
    ///
    /// let engine = Engine::builder()
    ///     .rule(
    ///         Rule::builder("DiskFull")
    ///             .gauge("system_disk_usage_ratio")
    ///             .threshold(Severity::Medium, Comparison::Greater, 0.8)
    ///             .threshold(Severity::Critical, Comparison::Greater, 0.95)
    ///             .recover_below(0.75)
    ///             .build()?,
    ///     )
    ///     .history_capacity(10_000)
    ///     .build()?;
    /// assert_eq!(engine.rules().len(), 1);
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// An engine with these rules (and the default routing: everything to
    /// receiver `default`, grouped by `alertname`).
    pub fn new(rules: impl IntoIterator<Item = Rule>) -> Result<Engine> {
        Engine::builder().rules(rules).build()
    }

    /// The rules, in the order they were added.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Checks that every rule's windows work when the engine is evaluated
    /// every `interval` (what
    /// [`EngineBuilder::evaluation_interval`] checks at build), for a host
    /// that learns its interval after the engine was built.
    pub fn check_evaluation_interval(&self, interval: Duration) -> Result<()> {
        if let Some(reason) = crate::time::not_positive(interval) {
            let setting = "evaluation_interval";
            return Err(Error::InvalidSetting { setting, reason });
        }
        let mut rules = self.rules.iter();
        rules.try_for_each(|rule| rule.check_interval(interval))
    }

    /// The transition history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Evaluates every rule at `now` against `source`: reads values, steps
    /// each instance's state machine (and escalates and updates the alert
    /// groups with `routing`), sets `alerts_firing`, and returns (and
    /// records in the history) the transitions, in rule order.
    pub fn evaluate(&mut self, now: SystemTime, source: &dyn Source) -> Vec<Transition> {
        self.tick += 1;
        #[cfg(feature = "routing")]
        self.local.prune_silences(now);
        let mut transitions = Vec::new();
        for index in 0..self.rules.len() {
            self.step_rule(index, now, source, &mut transitions);
        }
        self.export_firing();
        for t in &transitions {
            tracing::debug!(
                rule = %t.rule,
                from = %t.from,
                to = %t.to,
                severity = t.severity_label.as_deref().unwrap_or_default(),
                value = ?t.value,
                silenced = t.silenced,
                "alert transition"
            );
            self.history.push(t.clone());
        }
        transitions
    }

    /// The active alerts: one per alerting (`Firing` or `Recovering`)
    /// instance, at its threshold severity, sorted by labels. Escalation
    /// is part of local routing: it raises the severity (and sets
    /// [`escalated`](Alert::escalated)) only in local notifications.
    ///
    /// This is what the Alertmanager sender reads (`alertmanager::Sender`):
    /// local routing, silences and inhibition never filter it, so an
    /// Alertmanager sees every alert and applies its own. With the
    /// `routing` feature, each alert's [`silenced`](Alert::silenced) and
    /// [`inhibited`](Alert::inhibited) flags say whether a local silence
    /// or inhibition mutes it at `now` (the view of Alertmanager's
    /// `GET /api/v2/alerts`); the locally routed view is
    /// `due_notifications`, which leaves muted alerts out.
    pub fn alerts(&self, now: SystemTime) -> Vec<Alert> {
        // Never escalated: escalation belongs to local notifications.
        let active = self.active(now, false);
        #[cfg(feature = "routing")]
        let mut out = self.local.flag(now, &active);
        #[cfg(not(feature = "routing"))]
        let mut out: Vec<Alert> = active.into_iter().map(|a| a.alert).collect();
        sort_alerts(&mut out);
        out
    }

    /// The alert of every alerting instance (see [`firing`]).
    fn active(&self, now: SystemTime, escalated: bool) -> Vec<Active> {
        let active = self.each().filter_map(|i| firing(i, escalated, now));
        active.collect()
    }

    /// Every alert instance: its rule's index, the rule, its key and its
    /// state machine.
    fn each(&self) -> impl Iterator<Item = Instance<'_>> {
        let rules = self.rules.iter().zip(&self.states).enumerate();
        rules.flat_map(|(index, (rule, state))| {
            let instances = state.instances.iter();
            instances.map(move |(key, (m, ..))| (index, rule, key, m))
        })
    }

    /// A snapshot of every alert instance the engine holds (those that are
    /// not resting; plus the single instance of aggregated rules and the
    /// series of `no_data: alerting` rules), sorted by rule and labels.
    pub fn instances(&self) -> Vec<InstanceStatus> {
        let status = |(_, rule, key, m): Instance| InstanceStatus {
            rule: rule.name.clone(),
            labels: instance_labels(rule, key),
            state: m.state,
            severity: effective_severity(rule, m),
            value: m.value,
            active_since: m.active_since,
            escalated: m.escalated,
        };
        let mut out: Vec<InstanceStatus> = self.each().map(status).collect();
        out.sort_by(|a, b| (&a.rule, &a.labels).cmp(&(&b.rule, &b.labels)));
        out
    }

    /// The state of the instance of the first rule named `rule` whose series
    /// (or `by` group) has exactly `labels`; `Inactive` if there is none.
    /// One hash lookup per rule of that name.
    pub fn state(&self, rule: &str, labels: &Labels) -> State {
        let rules = self.rules.iter().zip(&self.states);
        let mut named = rules.filter(|(r, _)| r.name == rule);
        let found = named.find_map(|(_, state)| state.instances.get(labels));
        found.map_or(State::Inactive, |(m, ..)| m.state)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn engine_and_sources_can_move_to_an_evaluation_task() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Engine>();
        send_sync::<crate::MemorySource>();
        send_sync::<crate::Notification>();
    }
}
