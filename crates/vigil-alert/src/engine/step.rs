//! State stepping: each evaluation's readings of a rule fed to its
//! instances' state machines, with escalation (with the `routing`
//! feature) and the `alerts_firing` gauges.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use super::{ALERTS_FIRING, Engine};
use crate::alert::{Active, fingerprint};
use crate::baseline::MAX_SAMPLES;
use crate::expr::{Counters, ExprReader, Samples, prune};
use crate::state::Machine;
use crate::{
    Aggregation, Alert, AlertStatus, AlsoCondition, Labels, Limit, NoDataPolicy, Rule, Severity,
    Source, Transition,
};

/// What the engine keeps per rule.
#[derive(Debug, Default)]
pub(super) struct RuleState {
    /// The alert instances, keyed by the series' (or `by` group's) labels,
    /// each with the last tick that read its series and, with local
    /// routing, its alert as routed (escalation included) while it alerts.
    pub(super) instances: HashMap<Labels, (Machine, u64, Option<Active>)>,
    /// Counter samples of the rule's expression.
    counters: Counters,
    /// Counter samples of its `also` expression.
    also_counters: Counters,
    baselines: HashMap<Labels, Samples>,
    /// How many instances alert at each severity (escalation included).
    alerting: BTreeMap<Severity, u32>,
}

/// An alert instance: its rule's index, the rule, its key and its state
/// machine.
pub(super) type Instance<'a> = (usize, &'a Rule, &'a Labels, &'a Machine);

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
            state.instances.insert(Labels::new(), Default::default());
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

/// The firing alert of instance `key` of rule `index` if it alerts: at its
/// threshold severity, or (`escalated`, for local routing) at its
/// severity with escalation; its annotations expanded with its value.
pub(super) fn firing(instance: Instance, escalated: bool, now: SystemTime) -> Option<Active> {
    let (index, rule, key, m) = instance;
    let raised = effective_severity(rule, m).filter(|_| escalated);
    let severity = raised.or(m.severity).filter(|_| m.state.is_alerting())?;
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
        escalated: escalated && m.escalated,
    };
    alert.set_value(rule, m.value);
    let id = (index, base, severity);
    Some(Active { id, alert })
}

/// The severity an instance shows: the threshold severity, raised one step
/// once escalated (if the rule's escalation raises; instances escalate
/// only with the `routing` feature).
pub(super) fn effective_severity(rule: &Rule, m: &Machine) -> Option<Severity> {
    let raise = m.escalated && rule.escalate.as_ref().is_some_and(|e| e.raise_severity);
    m.severity.map(|s| if raise { s.raised() } else { s })
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
        let also = (rule.also.iter()).flat_map(|a| reader.read(&a.expr, &mut state.also_counters));
        let also: HashMap<Labels, f64> = also.filter_map(|(l, v)| Some((l, v?))).collect();
        let keep_resting = single(rule) || rule.no_data == NoDataPolicy::Alerting;
        // The longest dynamic-threshold window, if the rule has one.
        let window = rule.thresholds.iter().filter_map(|t| match &t.value {
            Limit::Baseline(b) => Some(b.window),
            Limit::Fixed(_) => None,
        });
        let window = window.max();
        #[cfg(feature = "routing")]
        let local = &mut self.local;
        let (counts, recount) = (&mut state.alerting, &mut self.recount);
        // Steps the machine of instance `key`, updating the counts of
        // alerting instances and the routed alert, and recording the
        // transition if anything changed.
        let mut advance = |key: &Labels, (m, seen, _held): &mut (Machine, u64, _), input| {
            *seen = tick;
            let (from, from_severity) = (m.state, effective_severity(rule, m));
            let was_escalated = m.escalated;
            m.step(input, now, rule);
            #[cfg(feature = "routing")]
            if let Some(e) = &rule.escalate {
                let elapsed = |t| crate::time::elapsed(now, t) >= e.after;
                m.escalated |= m.state.is_alerting() && m.active_since.is_some_and(elapsed);
            }
            let severity = effective_severity(rule, m);
            let before = from_severity.filter(|_| from.is_alerting());
            let after = severity.filter(|_| m.state.is_alerting());
            if before != after {
                before
                    .into_iter()
                    .for_each(|s| *counts.entry(s).or_default() -= 1);
                after
                    .into_iter()
                    .for_each(|s| *counts.entry(s).or_default() += 1);
                *recount = true;
            }
            #[cfg(feature = "routing")]
            refresh((index, rule, key, m), _held, now, local);
            if (from, from_severity, was_escalated) == (m.state, severity, m.escalated) {
                return;
            }
            let labels = instance_labels(rule, key);
            // Whether a local silence mutes the instance's alert.
            #[cfg(feature = "routing")]
            let silenced = severity.or(from_severity).is_some_and(|s| {
                let label = rule.severity_label(s);
                let lookup = |name: &str| match name {
                    "severity" => Some(label),
                    _ => labels.get(name).map(String::as_str),
                };
                local.silences.values().any(|s| s.mutes(now, lookup))
            });
            #[cfg(not(feature = "routing"))]
            let silenced = false;
            // An alert that ends is reported at the severity it fired with.
            let ends = from.is_alerting() && !m.state.is_alerting();
            let severity = from_severity.filter(|_| ends).or(severity);
            transitions.push(Transition {
                rule: rule.name.clone(),
                labels,
                from,
                to: m.state,
                from_severity,
                severity,
                severity_label: severity.map(|s| rule.severity_label(s).to_owned()),
                value: m.value,
                at: now,
                silenced,
                escalated: m.escalated,
            });
        };
        for (labels, reading) in readings {
            let Some(value) = reading else {
                if let Some((_, seen, _)) = state.instances.get_mut(&labels) {
                    *seen = tick;
                }
                continue;
            };
            let holds = |a: &AlsoCondition| a.holds(also.get(&labels).copied());
            let breach = breach(rule, state.baselines.get(&labels), now, value);
            let breach = breach.filter(|_| rule.also.as_ref().is_none_or(holds));
            // Labels are cloned only for a new baseline or instance.
            if let Some(window) = window {
                let samples = match state.baselines.get_mut(&labels) {
                    Some(samples) => samples,
                    None => state.baselines.entry(labels.clone()).or_default(),
                };
                samples.push(now, value, window, MAX_SAMPLES);
            }
            let inst = match state.instances.get_mut(&labels) {
                Some(inst) => inst,
                None if breach.is_some() || keep_resting => {
                    state.instances.entry(labels.clone()).or_default()
                }
                // A healthy series without an instance costs no allocation.
                None => continue,
            };
            advance(&labels, inst, Some((value, breach)));
        }
        let absent = state.instances.iter_mut().filter(|(_, i)| i.1 != tick);
        absent.for_each(|(key, inst)| advance(key, inst, None));
        if !keep_resting {
            state.instances.retain(|_, (m, ..)| !m.is_resting());
        }
        // Series without a value in the last window lose their baseline.
        prune(&mut state.baselines, now, window.unwrap_or_default());
    }

    /// Sets each `alerts_firing` gauge whose count changed since it was
    /// last set (from the per-rule counts, only after an evaluation that
    /// changed one): series that have fired stay, at 0.
    pub(super) fn export_firing(&mut self) {
        if !std::mem::take(&mut self.recount) {
            return;
        }
        let mut counts: HashMap<(String, String), u32> =
            self.firing.keys().map(|k| (k.clone(), 0)).collect();
        for (rule, state) in self.rules.iter().zip(&self.states) {
            for (s, n) in &state.alerting {
                let key = (rule.name.clone(), rule.severity_label(*s).to_owned());
                *counts.entry(key).or_default() += n;
            }
        }
        counts.retain(|key, n| self.firing.get(key) != Some(n));
        for ((alert, severity), n) in counts {
            self.firing.insert((alert.clone(), severity.clone()), n);
            metrics::gauge!(ALERTS_FIRING, "alert" => alert, "severity" => severity)
                .set(f64::from(n));
        }
    }
}

/// Brings the routed alert `held` of an instance up to date after a step,
/// handing what changed to local routing: nothing (and no allocation) for
/// an alert whose severity, escalation, start and value stayed.
#[cfg(feature = "routing")]
fn refresh(
    instance: Instance,
    held: &mut Option<Active>,
    now: SystemTime,
    local: &mut crate::routing::Local,
) {
    let (_, rule, _, m) = instance;
    let severity = effective_severity(rule, m).filter(|_| m.state.is_alerting());
    let same = |a: &&mut Active| {
        let starts_at = m.active_since.unwrap_or(now);
        (Some(a.alert.severity), a.alert.escalated, a.alert.starts_at)
            == (severity, m.escalated, starts_at)
    };
    match held.as_mut().filter(same) {
        Some(a) if a.alert.value.map(f64::to_bits) == m.value.map(f64::to_bits) => {}
        Some(a) => {
            a.alert.set_value(rule, m.value);
            local.update(now, rule, a.id, Some(a.clone()));
        }
        None => {
            let new = firing(instance, true, now);
            let new_id = new.as_ref().map(|a| a.id);
            if let Some(old) = held.take().map(|a| a.id).filter(|old| new_id != Some(*old)) {
                local.update(now, rule, old, None);
            }
            if let Some(a) = &new {
                local.update(now, rule, a.id, Some(a.clone()));
            }
            *held = new;
        }
    }
}

/// The highest severity whose threshold holds for `value` (before the
/// rule's `also` condition).
fn breach(rule: &Rule, history: Option<&Samples>, now: SystemTime, value: f64) -> Option<Severity> {
    let empty = Samples::default();
    let history = history.unwrap_or(&empty);
    let limit = |t: &crate::Threshold| match &t.value {
        Limit::Fixed(limit) => Some(*limit),
        Limit::Baseline(b) => b.limit(history, now, t.op.is_upper()),
    };
    let holds = |t: &&crate::Threshold| limit(t).is_some_and(|limit| t.op.holds(value, limit));
    let holding = rule.thresholds.iter().filter(holds);
    holding.map(|t| t.severity).max()
}
