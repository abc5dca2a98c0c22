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

/// What one evaluation says about one instance: the value read and the
/// highest severity whose threshold holds; `None` when the series is
/// absent.
pub(crate) type Input = Option<(f64, Option<Severity>)>;

/// One instance's state. `severity` is the threshold severity (escalation is
/// applied on top by the engine).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Machine {
    pub(crate) state: State,
    pub(crate) severity: Option<Severity>,
    /// When the current wait began: the breach in `Pending` (or in
    /// `NoData` waiting to fire under `NoDataPolicy::Alerting`), the
    /// recovery in `Recovering`.
    pub(crate) since: Option<SystemTime>,
    /// When the instance started firing (the alert's `starts_at`).
    pub(crate) active_since: Option<SystemTime>,
    /// Whether the current firing episode has escalated.
    pub(crate) escalated: bool,
    /// The last value read (`None` while absent).
    pub(crate) value: Option<f64>,
}

impl Machine {
    /// Whether the instance rests (and, but for aggregated and
    /// `no_data: alerting` rules, is dropped): nothing fires or waits.
    pub(crate) fn is_resting(&self) -> bool {
        let settled = matches!(self.state, State::Inactive | State::Resolved);
        settled || (self.state == State::NoData && self.since.is_none())
    }

    /// Advances the machine by one evaluation.
    pub(crate) fn step(&mut self, input: Input, now: SystemTime, rule: &Rule) {
        let breach = match input {
            None => {
                self.value = None;
                let waits = self.state.is_alerting() || self.state == State::Pending;
                let held = self.severity.filter(|_| waits);
                match rule.no_data {
                    NoDataPolicy::KeepState => return,
                    NoDataPolicy::Ok => None,
                    NoDataPolicy::Alerting => Some(held.unwrap_or(rule.max_severity())),
                }
            }
            Some((value, breach)) => {
                self.value = Some(value);
                // Hysteresis: alerting until the recovery condition (if
                // the rule has one) holds.
                let recovered = rule.recover.is_none_or(|r| r.op.holds(value, r.value));
                if breach.is_none() && self.state.is_alerting() && !recovered {
                    (self.state, self.since) = (State::Firing, None);
                    return;
                }
                breach
            }
        };
        let absent = input.is_none();
        match breach {
            Some(severity) => self.breach(now, rule, severity, absent),
            None => self.ok(now, rule, absent),
        }
    }

    fn breach(&mut self, now: SystemTime, rule: &Rule, severity: Severity, absent: bool) {
        self.severity = Some(severity);
        // Set only while waiting (`NoData` waits only under `Alerting`).
        let since = *self.since.get_or_insert(now);
        self.state = match self.state {
            state if state.is_alerting() => State::Firing,
            _ if elapsed(now, since) >= rule.for_duration => {
                (self.active_since, self.escalated) = (Some(now), false);
                State::Firing
            }
            // A fresh breach by absence waits in NoData; data that vanished
            // while pending keeps the `Pending` label.
            State::Inactive | State::Resolved | State::NoData if absent => State::NoData,
            _ => State::Pending,
        };
        if self.state == State::Firing {
            self.since = None;
        }
    }

    fn ok(&mut self, now: SystemTime, rule: &Rule, absent: bool) {
        let rest = |settled: State| if absent { State::NoData } else { settled };
        let since = self.since.unwrap_or(now);
        match self.state {
            State::Firing if !rule.keep_firing_for.is_zero() => {
                (self.state, self.since) = (State::Recovering, Some(now));
            }
            State::Recovering if elapsed(now, since) < rule.keep_firing_for => {}
            // (A resolved instance has no wait, start or escalation left.)
            State::Firing | State::Recovering | State::Resolved => {
                self.state = rest(State::Resolved);
                self.severity = self.severity.filter(|_| !absent);
                (self.active_since, self.since, self.escalated) = (None, None, false);
            }
            State::Pending | State::Inactive | State::NoData => {
                (self.state, self.severity, self.since) = (rest(State::Inactive), None, None);
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
            .recover_below(0.2)
            .for_duration(Duration::from_secs(for_s))
            .keep_firing_for(Duration::from_secs(keep_s))
            .no_data(no_data)
            .build()
            .unwrap()
    }

    fn breach(s: Severity) -> Input {
        Some((1.0, Some(s)))
    }

    /// Healthy and recovered (below the rule's recovery threshold).
    const OK: Input = Some((0.0, None));
    /// Healthy, but not recovered.
    const HOLD: Input = Some((0.5, None));

    /// Feeds (time, input) `steps` to a new machine whose rule has `for`
    /// = `for_s`, `keep_firing_for` = `keep_s` and `no_data`, and checks
    /// the state after each step.
    fn check(
        for_s: u64,
        keep_s: u64,
        no_data: NoDataPolicy,
        steps: &[(u64, Input)],
        states: &[State],
    ) {
        let rule = timing(for_s, keep_s, no_data);
        let mut m = Machine::default();
        let mut step = |&(s, input): &(u64, Input)| {
            m.step(input, at(s), &rule);
            m.state
        };
        assert_eq!(
            steps.iter().map(&mut step).collect::<Vec<_>>(),
            states,
            "{steps:?}"
        );
    }

    #[test]
    fn paths_through_the_machine() {
        let (b, a, ok) = (breach(Severity::High), None, NoDataPolicy::Ok);
        // Pending, then firing after `for`; `for` = 0 fires at once.
        check(
            60,
            0,
            ok,
            &[(0, b), (30, b), (60, b), (90, OK)],
            &[Pending, Pending, Firing, Resolved],
        );
        check(0, 0, ok, &[(0, breach(Severity::Low))], &[Firing]);
        // Pending returns to inactive when ok.
        let steps = [(0, b), (30, OK), (40, b), (90, b), (100, b)];
        check(
            60,
            0,
            ok,
            &steps,
            &[Pending, Inactive, Pending, Pending, Firing],
        );
        // keep_firing_for recovers, then resolves; a breach while
        // recovering fires again and restarts the wait.
        let steps = [(0, b), (10, OK), (40, OK), (70, OK)];
        check(
            0,
            60,
            ok,
            &steps,
            &[Firing, Recovering, Recovering, Resolved],
        );
        let steps = [(0, b), (10, OK), (40, b), (50, OK), (100, OK), (110, OK)];
        let states = [Firing, Recovering, Firing, Recovering, Recovering, Resolved];
        check(0, 60, ok, &steps, &states);
        // Hysteresis holds firing until recovered, but does not keep a
        // pending instance pending.
        let steps = [(0, b), (10, HOLD), (20, HOLD), (30, OK)];
        check(0, 0, ok, &steps, &[Firing, Firing, Firing, Resolved]);
        check(60, 0, ok, &[(0, b), (10, HOLD)], &[Pending, Inactive]);
        // Resolved can fire again.
        let steps = [(0, b), (10, OK), (20, OK), (30, b)];
        check(0, 0, ok, &steps, &[Firing, Resolved, Resolved, Firing]);
        // No data (`ok`) resolves and rests in NoData.
        let steps = [(0, b), (10, a), (20, a), (30, OK)];
        check(0, 0, ok, &steps, &[Firing, NoData, NoData, Inactive]);
        // No data (`keep_state`) changes nothing, pending or firing.
        let keep = NoDataPolicy::KeepState;
        let steps = [(0, b), (30, a), (300, a), (310, b)];
        check(60, 0, keep, &steps, &[Pending, Pending, Pending, Firing]);
        let steps = [(0, b), (60, b), (70, a), (500, a)];
        check(60, 0, keep, &steps, &[Pending, Firing, Firing, Firing]);
    }

    /// Steps `m` at `secs`; its state and severity after.
    fn step(m: &mut Machine, rule: &Rule, secs: u64, input: Input) -> (State, Option<Severity>) {
        m.step(input, at(secs), rule);
        (m.state, m.severity)
    }

    #[test]
    fn no_data_alerting_fires_after_for() {
        let (t, a) = (timing(60, 0, NoDataPolicy::Alerting), None);
        let m = &mut Machine::default();
        assert_eq!(step(m, &t, 0, a), (NoData, Some(Severity::Critical)));
        assert_eq!(step(m, &t, 30, a).0, NoData);
        assert_eq!(step(m, &t, 60, a), (Firing, Some(Severity::Critical)));
        assert_eq!(step(m, &t, 70, OK).0, Resolved);
    }

    #[test]
    fn no_data_alerting_keeps_a_firing_instance_firing_at_its_severity() {
        let t = timing(0, 0, NoDataPolicy::Alerting);
        let m = &mut Machine::default();
        step(m, &t, 0, breach(Severity::Low));
        assert_eq!(step(m, &t, 10, None), (Firing, Some(Severity::Low)));
        assert_eq!(m.value, None);
    }

    #[test]
    fn severity_follows_the_breach_while_firing() {
        let (m, t) = (&mut Machine::default(), timing(0, 0, NoDataPolicy::Ok));
        let (medium, critical) = (Some(Severity::Medium), Some(Severity::Critical));
        step(m, &t, 0, breach(Severity::Medium));
        assert_eq!(step(m, &t, 10, breach(Severity::Critical)).1, critical);
        assert_eq!(step(m, &t, 20, breach(Severity::Medium)).1, medium);
        assert_eq!(step(m, &t, 30, HOLD), (Firing, medium));
        assert_eq!(m.active_since, Some(at(0)));
    }
}
