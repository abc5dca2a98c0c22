//! State stepping: each evaluation's readings of a rule fed to its
//! instances' state machines, with escalation (with the `routing`
//! feature) and the `alerts_firing` gauges.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::{ALERTS_FIRING, Engine};
#[cfg(feature = "routing")]
use crate::alert::Change;
use crate::alert::{Active, fingerprint};
use crate::baseline::MAX_SAMPLES;
use crate::expr::{Counters, ExprReader, Samples, prune};
#[cfg(feature = "routing")]
use crate::routing::Local;
use crate::state::{Input, Machine};
use crate::{
    Aggregation, Alert, AlertStatus, Labels, Limit, NoDataPolicy, Rule, Severity, Source, State,
    Transition,
};

/// What the engine keeps per rule.
#[derive(Debug, Default)]
pub(super) struct RuleState {
    pub(super) instances: HashMap<Labels, Instance>,
    /// Counter samples of the rule's expression.
    counters: Counters,
    /// Counter samples of its `also` expression.
    also_counters: Counters,
    baselines: HashMap<Labels, Samples>,
    /// How many instances alert at each severity (escalation included).
    pub(super) alerting: BTreeMap<Severity, u32>,
}

/// One alert instance: a series (or `by` group) of one rule, keyed by
/// the series' (or group's) labels.
#[derive(Debug, Default)]
pub(super) struct Instance {
    pub(super) machine: Machine,
    seen_tick: u64,
    /// Its alert as local routing holds it (escalation included) while it
    /// alerts, rebuilt only when its severity, escalation or start changes.
    #[cfg(feature = "routing")]
    alert: Option<Active>,
}

/// Whether the rule has a single instance (aggregated without `by`).
fn single(rule: &Rule) -> bool {
    rule.aggregate != Aggregation::PerSeries && rule.by.is_empty()
}

impl RuleState {
    pub(super) fn new(rule: &Rule) -> Self {
        let mut state = RuleState::default();
        if single(rule) {
            // The one instance of an aggregated rule exists from the start,
            // so that "no series at all" is noticed as missing data.
            state.instances.insert(Labels::new(), Instance::default());
        }
        state
    }
}

/// The labels of the instance `key` of `rule`: the series (or `by`)
/// labels, the rule's labels and `alertname`; no `severity`.
pub(super) fn instance_labels(rule: &Rule, key: &Labels) -> Labels {
    let mut labels = key.clone();
    labels.extend(rule.labels.clone());
    labels.insert("alertname".into(), rule.name.clone());
    labels
}

/// The firing alert of instance `key` of rule `index` at `severity`, its
/// annotations expanded with the instance's value.
pub(super) fn firing(
    index: usize,
    rule: &Rule,
    key: &Labels,
    m: &Machine,
    severity: Severity,
    escalated: bool,
    now: SystemTime,
) -> Active {
    let mut labels = instance_labels(rule, key);
    let base = fingerprint(&labels);
    labels.insert("severity".into(), rule.severity_label(severity).to_owned());
    let mut alert = Alert {
        rule: rule.name.clone(),
        labels,
        annotations: Labels::new(),
        status: AlertStatus::Firing,
        severity,
        value: None,
        starts_at: m.active_since.unwrap_or(now),
        ends_at: None,
        silenced: false,
        inhibited: false,
        escalated,
    };
    alert.set_value(rule, m.value);
    Active {
        rule: index,
        base,
        alert,
    }
}

/// The severity an instance shows: the threshold severity, raised one step
/// once escalated (if the rule's escalation raises; instances escalate
/// only with the `routing` feature).
pub(super) fn effective_severity(rule: &Rule, m: &Machine) -> Option<Severity> {
    let raise = m.escalated && rule.escalate.as_ref().is_some_and(|e| e.raise_severity);
    m.severity.map(|s| if raise { s.raised() } else { s })
}

/// The severity of an alerting instance; `None` when it is not alerting.
pub(super) fn alerting_severity(rule: &Rule, m: &Machine) -> Option<Severity> {
    effective_severity(rule, m).filter(|_| m.state.is_alerting())
}

impl Engine {
    /// Reads rule `index` at `now` and steps its instances, appending
    /// their transitions.
    pub(super) fn step_rule(
        &mut self,
        index: usize,
        now: SystemTime,
        source: &dyn Source,
        transitions: &mut Vec<Transition>,
    ) {
        let (rule, state, tick) = (&self.rules[index], &mut self.states[index], self.tick);
        let reader = ExprReader { rule, now, source };
        let readings = reader.read(&rule.expr, &mut state.counters);
        let also = rule
            .also
            .iter()
            .flat_map(|a| reader.read(&a.expr, &mut state.also_counters));
        let also: HashMap<Labels, f64> =
            also.filter_map(|(labels, v)| Some((labels, v?))).collect();
        let keep_resting = single(rule) || rule.no_data == NoDataPolicy::Alerting;
        let baseline_window = rule.thresholds.iter().filter_map(|t| match &t.value {
            Limit::Baseline(b) => Some(b.window),
            Limit::Fixed(_) => None,
        });
        // Longest dynamic-threshold window (zero without one).
        let baseline_window = baseline_window.max().unwrap_or(Duration::ZERO);
        let dynamic = !baseline_window.is_zero();
        let also_holds = |key: &Labels| {
            rule.also
                .as_ref()
                .is_none_or(|a| a.holds(also.get(key).copied()))
        };
        let (counts, recount) = (&mut state.alerting, &mut self.recount);
        let mut advance = |key: &Labels, inst: &mut Instance, input| {
            inst.seen_tick = tick;
            let before = alerting_severity(rule, &inst.machine);
            #[cfg(feature = "routing")]
            let stepped = step(rule, now, key, &mut inst.machine, input, &self.local);
            #[cfg(not(feature = "routing"))]
            let stepped = step(rule, now, key, &mut inst.machine, input);
            let after = alerting_severity(rule, &inst.machine);
            if before != after {
                if let Some(s) = before {
                    *counts.entry(s).or_default() -= 1;
                }
                if let Some(s) = after {
                    *counts.entry(s).or_default() += 1;
                }
                *recount = true;
            }
            #[cfg(feature = "routing")]
            refresh(rule, index, key, inst, now, &mut self.changes);
            transitions.extend(stepped);
            is_resting(&inst.machine)
        };
        let mut rested = false;
        for (labels, reading) in readings {
            let Some(value) = reading else {
                if let Some(inst) = state.instances.get_mut(&labels) {
                    inst.seen_tick = tick;
                }
                continue;
            };
            let history = state.baselines.get(&labels).filter(|_| dynamic);
            let breach = breach(rule, history, now, value).filter(|_| also_holds(&labels));
            if breach.is_none() && !keep_resting && !dynamic && state.instances.is_empty() {
                // The common case: a healthy series and no instance to update.
                // No hashing, no allocation.
                continue;
            }
            if dynamic {
                let samples = match state.baselines.get_mut(&labels) {
                    Some(samples) => samples,
                    None => state.baselines.entry(labels.clone()).or_default(),
                };
                samples.push(now, value, baseline_window, MAX_SAMPLES);
            }
            let recovered = rule.recover.is_none_or(|r| r.op.holds(value, r.value));
            let input = Input::Value {
                value,
                breach,
                recovered,
            };
            if let Some(inst) = state.instances.get_mut(&labels) {
                rested |= advance(&labels, inst, input);
            } else if breach.is_some() || keep_resting {
                let inst = state.instances.entry(labels.clone()).or_default();
                rested |= advance(&labels, inst, input);
            } // else healthy: no instance
        }
        for (key, inst) in state
            .instances
            .iter_mut()
            .filter(|(_, i)| i.seen_tick != tick)
        {
            rested |= advance(key, inst, Input::Absent);
        }
        if rested && !keep_resting {
            state.instances.retain(|_, i| !is_resting(&i.machine));
        }
        // Series without a value in the last window lose their baseline.
        prune(&mut state.baselines, now, baseline_window);
    }

    /// Sets each `alerts_firing` gauge whose count changed since it was
    /// last set (from the per-rule counts, only after an evaluation that
    /// changed one).
    pub(super) fn export_firing(&mut self) {
        if !std::mem::take(&mut self.recount) {
            return;
        }
        // Series that have fired stay, at 0.
        let mut counts: HashMap<(String, String), u32> =
            self.firing.keys().map(|k| (k.clone(), 0)).collect();
        for (rule, state) in self.rules.iter().zip(&self.states) {
            for (severity, n) in &state.alerting {
                let key = (rule.name.clone(), rule.severity_label(*severity).to_owned());
                *counts.entry(key).or_default() += n;
            }
        }
        for (key, n) in counts {
            if self.firing.get(&key) != Some(&n) {
                let (alert, severity) = key.clone();
                metrics::gauge!(ALERTS_FIRING, "alert" => alert, "severity" => severity)
                    .set(f64::from(n));
                self.firing.insert(key, n);
            }
        }
    }
}

/// Brings the locally routed alert of instance `key` (rule `index`) up to
/// date after a step, recording what changed for local routing: nothing
/// for an alert whose severity, escalation, start and value stayed.
#[cfg(feature = "routing")]
fn refresh(
    rule: &Rule,
    index: usize,
    key: &Labels,
    inst: &mut Instance,
    now: SystemTime,
    changes: &mut Vec<Change>,
) {
    let m = &inst.machine;
    let severity = alerting_severity(rule, m);
    let starts_at = m.active_since.unwrap_or(now);
    match (&mut inst.alert, severity) {
        (Some(held), Some(s))
            if (
                held.alert.severity,
                held.alert.escalated,
                held.alert.starts_at,
            ) == (s, m.escalated, starts_at) =>
        {
            if held.alert.value.map(f64::to_bits) != m.value.map(f64::to_bits) {
                held.alert.set_value(rule, m.value);
                changes.push(Change::Fire(held.clone()));
            }
        }
        (held, severity) => {
            let new = severity.map(|s| firing(index, rule, key, m, s, m.escalated, now));
            let new_id = new.as_ref().map(Active::id);
            if let Some(old) = held.take().map(|a| a.id())
                && new_id != Some(old)
            {
                changes.push(Change::Resolve(old));
            }
            changes.extend(new.clone().map(Change::Fire));
            *held = new;
        }
    }
}

fn is_resting(m: &Machine) -> bool {
    match m.state {
        State::Inactive | State::Resolved => true,
        State::NoData => m.since.is_none(),
        State::Pending | State::Firing | State::Recovering => false,
    }
}

/// Steps the machine of instance `key`; the transition, if anything
/// changed.
fn step(
    rule: &Rule,
    now: SystemTime,
    key: &Labels,
    m: &mut Machine,
    input: Input,
    #[cfg(feature = "routing")] local: &Local,
) -> Option<Transition> {
    let before = m.clone();
    let before_severity = effective_severity(rule, &before);
    m.step(input, now, rule);
    #[cfg(feature = "routing")]
    if let Some(e) = &rule.escalate
        && m.state.is_alerting()
        && !m.escalated
        && m.active_since
            .is_some_and(|t| crate::time::elapsed(now, t) >= e.after)
    {
        m.escalated = true;
    }
    let severity = effective_severity(rule, m);
    if (before.state, before_severity, before.escalated) == (m.state, severity, m.escalated) {
        return None;
    }
    let labels = instance_labels(rule, key);
    // Whether a local silence mutes the instance's alert.
    #[cfg(feature = "routing")]
    let silenced = severity.or(before_severity).is_some_and(|s| {
        let label = rule.severity_label(s);
        local.silenced(now, |name| match name {
            "severity" => Some(label),
            _ => labels.get(name).map(String::as_str),
        })
    });
    #[cfg(not(feature = "routing"))]
    let silenced = false;
    // An alert that ends is reported at the severity it fired with.
    let severity = match before.state.is_alerting() && !m.state.is_alerting() {
        true => before_severity.or(severity),
        false => severity,
    };
    Some(Transition {
        rule: rule.name.clone(),
        labels,
        from: before.state,
        to: m.state,
        from_severity: before_severity,
        severity,
        severity_label: severity.map(|s| rule.severity_label(s).to_owned()),
        value: m.value,
        at: now,
        silenced,
        escalated: m.escalated,
    })
}

/// The highest severity whose threshold holds for `value` (before the
/// rule's `also` condition).
fn breach(rule: &Rule, history: Option<&Samples>, now: SystemTime, value: f64) -> Option<Severity> {
    let empty = Samples::default();
    let history = history.unwrap_or(&empty);
    let limit = |t: &&crate::Threshold| match &t.value {
        Limit::Fixed(limit) => Some(*limit),
        Limit::Baseline(b) => b.limit(history, now, t.op.is_upper()),
    };
    let holds = |t: &&crate::Threshold| limit(t).is_some_and(|limit| t.op.holds(value, limit));
    rule.thresholds
        .iter()
        .filter(holds)
        .map(|t| t.severity)
        .max()
}
