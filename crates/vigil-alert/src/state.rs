//! The per-instance state machine: [`State`] and its transitions.
//!
//! ```text
//!             breach                 breach held for `for`
//! Inactive ───────────▶ Pending ─────────────────────────▶ Firing ◀──┐
//!    ▲                    │ ok                   recovered │    ▲     │ breach, or
//!    └────────────────────┘                   (hysteresis) ▼    │     │ not recovered
//!                                                      Recovering ───┘
//!                                     ok for `keep_firing_for` │
//!                                                              ▼
//!                                                          Resolved ──▶ Pending (breach)
//! ```
//!
//! With `for` = 0 a breach fires at once; with `keep_firing_for` = 0 a
//! recovered instance resolves at once. `Firing` and `Recovering` are
//! *alerting* (notified as firing). An alerting instance stays alerting while
//! its value has not crossed the rule's recovery threshold, even if no
//! threshold holds; its severity is then kept. Changes of severity are
//! transitions too.
//!
//! A missing value follows the rule's [`NoDataPolicy`]: `KeepState` changes
//! nothing; `Ok` treats it as healthy and rests in `NoData` instead of
//! `Inactive`/`Resolved`; `Alerting` treats it as a breach at the rule's
//! highest severity (or the instance's current one), waiting out `for` in
//! `NoData` rather than `Pending`.
//!
//! The machine is pure: time comes in as an argument, so every path is
//! tested with synthetic `SystemTime`s.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::rule::NoDataPolicy;
use crate::time::elapsed;
use crate::{Rule, Severity};

/// Where an alert instance is in its life cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// No threshold holds (or the instance is new).
    #[default]
    Inactive,
    /// A threshold holds, but not yet for the rule's `for` duration.
    Pending,
    /// Alerting: a threshold has held for `for` (or the value has not yet
    /// crossed the recovery threshold).
    Firing,
    /// Alerting still: the value recovered, and the instance keeps firing
    /// for `keep_firing_for` before it resolves.
    Recovering,
    /// The instance fired and has recovered.
    Resolved,
    /// The instance's series is absent (see [`NoDataPolicy`]).
    NoData,
}

impl State {
    /// Whether the instance counts as firing (`Firing` or `Recovering`).
    pub const fn is_alerting(self) -> bool {
        matches!(self, State::Firing | State::Recovering)
    }

    /// The name used in config and serde: `inactive`, `pending`, `firing`,
    /// `recovering`, `resolved`, `no_data`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending => "pending",
            State::Firing => "firing",
            State::Recovering => "recovering",
            State::Resolved => "resolved",
            State::NoData => "no_data",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one evaluation says about one instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Input {
    /// A value arrived. `breach`: the highest severity whose threshold
    /// holds; `recovered`: whether the recovery condition holds (`true`
    /// when the rule has none).
    Value {
        value: f64,
        breach: Option<Severity>,
        recovered: bool,
    },
    /// The series is absent.
    Absent,
}

/// One instance's state. `severity` is the threshold severity (escalation is
/// applied on top by the engine).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Machine {
    pub state: State,
    pub severity: Option<Severity>,
    /// When the current wait began: the breach in `Pending` (or in
    /// `NoData` waiting to fire under `NoDataPolicy::Alerting`), the
    /// recovery in `Recovering`.
    pub since: Option<SystemTime>,
    /// When the instance started firing (the alert's `starts_at`).
    pub active_since: Option<SystemTime>,
    /// Whether the current firing episode has escalated.
    pub escalated: bool,
    /// The last value read (`None` while absent).
    pub value: Option<f64>,
}

impl Machine {
    /// Whether the instance rests (and, but for aggregated and
    /// `no_data: alerting` rules, is dropped): nothing fires or waits.
    pub(crate) fn is_resting(&self) -> bool {
        match self.state {
            State::Inactive | State::Resolved => true,
            State::NoData => self.since.is_none(),
            State::Pending | State::Firing | State::Recovering => false,
        }
    }

    /// Advances the machine by one evaluation.
    pub(crate) fn step(&mut self, input: Input, now: SystemTime, rule: &Rule) {
        match input {
            Input::Absent => {
                self.value = None;
                match rule.no_data {
                    NoDataPolicy::KeepState => {}
                    NoDataPolicy::Ok => self.ok(now, rule, true),
                    NoDataPolicy::Alerting => {
                        let severity = match self.state {
                            State::Pending | State::Firing | State::Recovering => self.severity,
                            _ => None,
                        };
                        self.breach(now, rule, severity.unwrap_or(rule.max_severity()), true);
                    }
                }
            }
            Input::Value {
                value,
                breach,
                recovered,
            } => {
                self.value = Some(value);
                match breach {
                    Some(severity) => self.breach(now, rule, severity, false),
                    // Hysteresis: alerting until the recovery condition holds.
                    None if self.state.is_alerting() && !recovered => {
                        self.state = State::Firing;
                        self.since = None;
                    }
                    None => self.ok(now, rule, false),
                }
            }
        }
    }

    fn breach(&mut self, now: SystemTime, rule: &Rule, severity: Severity, absent: bool) {
        self.severity = Some(severity);
        if self.state.is_alerting() {
            self.state = State::Firing;
            self.since = None;
            return;
        }
        // Set only while waiting (`NoData` waits only under `Alerting`).
        let since = *self.since.get_or_insert(now);
        if elapsed(now, since) >= rule.for_duration {
            self.state = State::Firing;
            self.since = None;
            self.active_since = Some(now);
            self.escalated = false;
        } else if absent && self.state != State::Pending {
            // A fresh breach by absence waits in NoData; data that vanished
            // while pending keeps the `Pending` label.
            self.state = State::NoData;
        } else {
            self.state = State::Pending;
        }
    }

    fn ok(&mut self, now: SystemTime, rule: &Rule, absent: bool) {
        let rest = |settled: State| if absent { State::NoData } else { settled };
        match self.state {
            State::Firing if !rule.keep_firing_for.is_zero() => {
                self.state = State::Recovering;
                self.since = Some(now);
            }
            State::Recovering if elapsed(now, self.since.unwrap_or(now)) < rule.keep_firing_for => {
            }
            // (A resolved instance has no wait, start or escalation left.)
            State::Firing | State::Recovering | State::Resolved => {
                self.state = rest(State::Resolved);
                if absent {
                    self.severity = None;
                }
                self.active_since = None;
                self.since = None;
                self.escalated = false;
            }
            State::Pending | State::Inactive | State::NoData => {
                self.state = rest(State::Inactive);
                self.severity = None;
                self.since = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::{Firing, Inactive, NoData, Pending, Recovering, Resolved};
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn timing(for_s: u64, keep_s: u64, no_data: NoDataPolicy) -> Rule {
        Rule::builder("R")
            .gauge("g")
            .threshold(Severity::Critical, crate::Comparison::Greater, 1.0)
            .for_duration(Duration::from_secs(for_s))
            .keep_firing_for(Duration::from_secs(keep_s))
            .no_data(no_data)
            .build()
            .unwrap()
    }

    fn breach(s: Severity) -> Input {
        Input::Value {
            value: 1.0,
            breach: Some(s),
            recovered: false,
        }
    }

    const OK: Input = Input::Value {
        value: 0.0,
        breach: None,
        recovered: true,
    };
    const HOLD: Input = Input::Value {
        value: 0.5,
        breach: None,
        recovered: false,
    };

    /// Feeds (time, input) pairs and returns the state after each.
    fn run(t: &Rule, steps: &[(u64, Input)]) -> Vec<State> {
        let mut m = Machine::default();
        steps
            .iter()
            .map(|&(s, input)| {
                m.step(input, at(s), t);
                m.state
            })
            .collect()
    }

    #[test]
    fn pending_then_firing_after_for() {
        let t = timing(60, 0, NoDataPolicy::Ok);
        let b = breach(Severity::High);
        assert_eq!(
            run(&t, &[(0, b), (30, b), (60, b), (90, OK)]),
            [Pending, Pending, Firing, Resolved]
        );
    }

    #[test]
    fn zero_for_fires_at_once() {
        let t = timing(0, 0, NoDataPolicy::Ok);
        assert_eq!(run(&t, &[(0, breach(Severity::Low))]), [Firing]);
    }

    #[test]
    fn pending_returns_to_inactive_when_ok() {
        let t = timing(60, 0, NoDataPolicy::Ok);
        let b = breach(Severity::High);
        assert_eq!(
            run(&t, &[(0, b), (30, OK), (40, b), (90, b), (100, b)]),
            [Pending, Inactive, Pending, Pending, Firing]
        );
    }

    #[test]
    fn keep_firing_for_recovers_then_resolves() {
        let t = timing(0, 60, NoDataPolicy::Ok);
        let b = breach(Severity::High);
        assert_eq!(
            run(&t, &[(0, b), (10, OK), (40, OK), (70, OK)]),
            [Firing, Recovering, Recovering, Resolved]
        );
        // A breach while recovering fires again and restarts the wait.
        assert_eq!(
            run(
                &t,
                &[(0, b), (10, OK), (40, b), (50, OK), (100, OK), (110, OK)]
            ),
            [Firing, Recovering, Firing, Recovering, Recovering, Resolved]
        );
    }

    #[test]
    fn hysteresis_holds_firing_until_recovered() {
        let t = timing(0, 0, NoDataPolicy::Ok);
        let b = breach(Severity::High);
        assert_eq!(
            run(&t, &[(0, b), (10, HOLD), (20, HOLD), (30, OK)]),
            [Firing, Firing, Firing, Resolved]
        );
        // Hold does not keep a pending instance pending.
        let t = timing(60, 0, NoDataPolicy::Ok);
        assert_eq!(run(&t, &[(0, b), (10, HOLD)]), [Pending, Inactive]);
    }

    #[test]
    fn resolved_can_fire_again() {
        let t = timing(0, 0, NoDataPolicy::Ok);
        let b = breach(Severity::High);
        assert_eq!(
            run(&t, &[(0, b), (10, OK), (20, OK), (30, b)]),
            [Firing, Resolved, Resolved, Firing]
        );
    }

    #[test]
    fn no_data_ok_resolves_and_rests_in_no_data() {
        let t = timing(0, 0, NoDataPolicy::Ok);
        let b = breach(Severity::High);
        assert_eq!(
            run(
                &t,
                &[(0, b), (10, Input::Absent), (20, Input::Absent), (30, OK)]
            ),
            [Firing, NoData, NoData, Inactive]
        );
    }

    #[test]
    fn no_data_alerting_fires_after_for() {
        let t = timing(60, 0, NoDataPolicy::Alerting);
        let a = Input::Absent;
        let mut m = Machine::default();
        m.step(a, at(0), &t);
        assert_eq!((m.state, m.severity), (NoData, Some(Severity::Critical)));
        m.step(a, at(30), &t);
        assert_eq!(m.state, NoData);
        m.step(a, at(60), &t);
        assert_eq!((m.state, m.severity), (Firing, Some(Severity::Critical)));
        m.step(OK, at(70), &t);
        assert_eq!(m.state, Resolved);
    }

    #[test]
    fn no_data_alerting_keeps_a_firing_instance_firing_at_its_severity() {
        let t = timing(0, 0, NoDataPolicy::Alerting);
        let mut m = Machine::default();
        m.step(breach(Severity::Low), at(0), &t);
        m.step(Input::Absent, at(10), &t);
        assert_eq!((m.state, m.severity), (Firing, Some(Severity::Low)));
        assert_eq!(m.value, None);
    }

    #[test]
    fn no_data_keep_state_changes_nothing() {
        let t = timing(60, 0, NoDataPolicy::KeepState);
        let b = breach(Severity::High);
        let a = Input::Absent;
        assert_eq!(
            run(&t, &[(0, b), (30, a), (300, a), (310, b)]),
            [Pending, Pending, Pending, Firing]
        );
        assert_eq!(
            run(&t, &[(0, b), (60, b), (70, a), (500, a)]),
            [Pending, Firing, Firing, Firing]
        );
    }

    #[test]
    fn severity_follows_the_breach_while_firing() {
        let t = timing(0, 0, NoDataPolicy::Ok);
        let mut m = Machine::default();
        m.step(breach(Severity::Medium), at(0), &t);
        m.step(breach(Severity::Critical), at(10), &t);
        assert_eq!(m.severity, Some(Severity::Critical));
        m.step(breach(Severity::Medium), at(20), &t);
        assert_eq!(m.severity, Some(Severity::Medium));
        m.step(HOLD, at(30), &t);
        assert_eq!((m.state, m.severity), (Firing, Some(Severity::Medium)));
        assert_eq!(m.active_since, Some(at(0)));
    }
}
