//! State stepping: each evaluation's readings of a rule fed to its
//! instances' state machines, with the `alerts_firing` counts, escalation
//! and (with the `routing` feature) the alert groups kept up to date.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::{ALERTS_FIRING, Engine};
use crate::alert::fingerprint;
use crate::baseline::Samples;
use crate::expr::{Counters, ExprReader, Reading};
#[cfg(feature = "routing")]
use crate::routing::Local;
use crate::state::{Input, Machine, Timing};
use crate::{Aggregation, Labels, Limit, NoDataPolicy, Rule, Severity, Source, State, Transition};

/// One `alerts_firing{alert, severity}` series: the alerting instances of
/// the rules named `alert` at the levels they label `severity`, now and as
/// last exported.
#[derive(Clone, Debug)]
pub(super) struct FiringSeries {
    alert: String,
    severity: String,
    now: u32,
    exported: Option<u32>,
}

impl FiringSeries {
    /// The series of `rules`, and each rule's series per severity level.
    pub(super) fn for_rules(rules: &[Rule]) -> (Vec<FiringSeries>, Vec<[usize; 4]>) {
        let mut firing: Vec<FiringSeries> = Vec::new();
        let slots = rules
            .iter()
            .map(|rule| {
                Severity::ALL.map(|severity| {
                    let label = rule.severity_label(severity);
                    let known = firing
                        .iter()
                        .position(|f| f.alert == rule.name && f.severity == label);
                    known.unwrap_or_else(|| {
                        firing.push(FiringSeries {
                            alert: rule.name.clone(),
                            severity: label.to_owned(),
                            now: 0,
                            exported: None,
                        });
                        firing.len() - 1
                    })
                })
            })
            .collect();
        (firing, slots)
    }

    /// Sets the gauges whose count changed since they were last set.
    pub(super) fn export(series: &mut [FiringSeries]) {
        for series in series {
            let n = series.now;
            if series.exported == Some(n) || (series.exported.is_none() && n == 0) {
                continue;
            }
            metrics::gauge!(
                ALERTS_FIRING,
                "alert" => series.alert.clone(),
                "severity" => series.severity.clone()
            )
            .set(f64::from(n));
            series.exported = Some(n);
        }
    }
}

/// Buffers reused across evaluations.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    readings: Vec<(Labels, Reading)>,
    values: Vec<f64>,
    /// The `also` expression's readings, then its values by key.
    also_readings: Vec<(Labels, Reading)>,
    also: HashMap<Labels, f64>,
}

/// What the engine keeps per rule.
#[derive(Debug)]
pub(super) struct RuleState {
    timing: Timing,
    /// Per severity level, the rule's `alerts_firing` series.
    firing_slots: [usize; 4],
    /// Whether resting instances are kept (aggregated without `by`, or
    /// `no_data: alerting`): otherwise they are dropped.
    keep_resting: bool,
    pub(super) instances: HashMap<Labels, Instance>,
    /// Counter samples of the rule's expression.
    counters: Counters,
    /// Counter samples of its `also` expression.
    also_counters: Counters,
    baselines: HashMap<Labels, Samples>,
    /// Longest dynamic-threshold window (zero without one).
    baseline_window: Duration,
}

/// One alert instance: a series (or `by` group) of one rule.
#[derive(Debug)]
pub(super) struct Instance {
    pub(super) machine: Machine,
    /// Alert labels without `severity`.
    pub(super) labels: Labels,
    /// `fingerprint(labels)`.
    pub(super) base: u64,
    seen_tick: u64,
}

impl RuleState {
    pub(super) fn new(rule: &Rule, firing_slots: [usize; 4]) -> Self {
        let single = rule.aggregate != Aggregation::PerSeries && rule.by.is_empty();
        let baseline_window = rule
            .thresholds
            .iter()
            .filter_map(|t| match &t.value {
                Limit::Baseline(b) => Some(b.window),
                Limit::Fixed(_) => None,
            })
            .max()
            .unwrap_or(Duration::ZERO);
        let mut state = RuleState {
            timing: Timing {
                for_duration: rule.for_duration,
                keep_firing_for: rule.keep_firing_for,
                no_data: rule.no_data,
                max_severity: rule.max_severity(),
            },
            firing_slots,
            keep_resting: single || rule.no_data == NoDataPolicy::Alerting,
            instances: HashMap::new(),
            counters: Counters::default(),
            also_counters: Counters::default(),
            baselines: HashMap::new(),
            baseline_window,
        };
        if single {
            // The one instance of an aggregated rule exists from the start,
            // so that "no series at all" is noticed as missing data.
            state
                .instances
                .insert(Labels::new(), Instance::new(rule, Labels::new()));
        }
        state
    }
}

impl Instance {
    fn new(rule: &Rule, key: Labels) -> Self {
        let mut labels = key;
        labels.extend(rule.labels.clone());
        labels.insert("alertname".into(), rule.name.clone());
        Instance {
            machine: Machine::default(),
            base: fingerprint(&labels),
            labels,
            seen_tick: 0,
        }
    }
}

/// The severity an instance shows: the threshold severity, raised one step
/// once escalated (if the rule's escalation raises).
pub(super) fn effective_severity(rule: &Rule, m: &Machine) -> Option<Severity> {
    #[cfg(feature = "routing")]
    let raise = m.escalated && rule.escalate.as_ref().is_some_and(|e| e.raise_severity);
    #[cfg(not(feature = "routing"))]
    let (raise, _) = (false, rule);
    m.severity.map(|s| if raise { s.raised() } else { s })
}

impl Engine {
    /// Fills `scratch.readings` with the rule's readings at `now`, and
    /// `scratch.also` with its `also` expression's values.
    fn read(&mut self, index: usize, now: SystemTime, source: &dyn Source) {
        let rule = &self.rules[index];
        let state = &mut self.states[index];
        let scratch = &mut self.scratch;
        let reader = ExprReader {
            aggregate: rule.aggregate,
            by: &rule.by,
            now,
            source,
        };
        reader.read(&rule.expr, &mut state.counters, &mut scratch.readings);
        scratch.also.clear();
        if let Some(also) = &rule.also {
            let readings = &mut scratch.also_readings;
            reader.read(&also.expr, &mut state.also_counters, readings);
            scratch
                .also
                .extend(readings.drain(..).filter_map(|(labels, r)| match r {
                    Reading::Value(v) => Some((labels, v)),
                    Reading::Warming => None,
                }));
        }
    }

    /// Reads rule `index` at `now` and steps its instances, appending
    /// their transitions.
    pub(super) fn step_rule(
        &mut self,
        index: usize,
        now: SystemTime,
        source: &dyn Source,
        transitions: &mut Vec<Transition>,
    ) {
        self.read(index, now, source);
        let Engine {
            rules,
            states,
            firing,
            #[cfg(feature = "routing")]
            local,
            tick,
            scratch,
            ..
        } = self;
        let tick = *tick;
        let rule = &rules[index];
        let state = &mut states[index];
        let mut ctx = StepContext {
            rule,
            now,
            timing: state.timing,
            #[cfg(feature = "routing")]
            local: &*local,
            firing,
            firing_slots: state.firing_slots,
            transitions,
        };
        let mut readings = std::mem::take(&mut scratch.readings);
        let mut rested = false;
        for (labels, reading) in readings.drain(..) {
            let value = match reading {
                Reading::Value(v) => v,
                Reading::Warming => {
                    if let Some(inst) = state.instances.get_mut(&labels) {
                        inst.seen_tick = tick;
                    }
                    continue;
                }
            };
            let dynamic = !state.baseline_window.is_zero();
            let history = dynamic.then(|| state.baselines.get(&labels)).flatten();
            let breach = breach(rule, history, now, value, &mut scratch.values)
                .filter(|_| also_holds(rule, &scratch.also, &labels));
            if breach.is_none() && !state.keep_resting && !dynamic && state.instances.is_empty() {
                // The common case: a healthy series and no instance to update.
                // No hashing, no allocation.
                continue;
            }
            if dynamic {
                let samples = match state.baselines.get_mut(&labels) {
                    Some(samples) => samples,
                    None => state.baselines.entry(labels.clone()).or_default(),
                };
                samples.push(now, value, state.baseline_window);
            }
            let recovered = rule.recover.is_none_or(|r| r.op.holds(value, r.value));
            let input = Input::Value {
                value,
                breach,
                recovered,
            };
            let inst = match state.instances.get_mut(&labels) {
                Some(inst) => inst,
                None if breach.is_none() && !state.keep_resting => continue, // healthy: no instance
                None => state
                    .instances
                    .entry(labels)
                    .or_insert_with_key(|key| Instance::new(rule, key.clone())),
            };
            inst.seen_tick = tick;
            rested |= ctx.step(inst, input);
        }
        scratch.readings = readings;
        for inst in state.instances.values_mut() {
            if inst.seen_tick != tick {
                rested |= ctx.step(inst, Input::Absent);
            }
        }
        if rested && !state.keep_resting {
            state.instances.retain(|_, i| !is_resting(&i.machine));
        }
        if let Some(from) = now.checked_sub(state.baseline_window) {
            // Series without a value in the last window lose their baseline.
            let kept = |s: &Samples| s.last_time().is_none_or(|last| last >= from);
            state.baselines.retain(|_, s| kept(s));
        }
    }
}

fn is_resting(m: &Machine) -> bool {
    match m.state {
        State::Inactive | State::Resolved => true,
        State::NoData => m.pending_since.is_none(),
        State::Pending | State::Firing | State::Recovering => false,
    }
}

/// Everything one instance step needs besides the instance.
struct StepContext<'a> {
    rule: &'a Rule,
    now: SystemTime,
    timing: Timing,
    #[cfg(feature = "routing")]
    local: &'a Local,
    firing: &'a mut [FiringSeries],
    firing_slots: [usize; 4],
    transitions: &'a mut Vec<Transition>,
}

impl StepContext<'_> {
    /// Steps one instance; records a transition and updates its alerts if
    /// anything changed. Returns whether the instance is now resting.
    fn step(&mut self, inst: &mut Instance, input: Input) -> bool {
        let (rule, now) = (self.rule, self.now);
        let before = inst.machine.clone();
        let before_severity = effective_severity(rule, &before);
        let m = &mut inst.machine;
        m.step(input, now, &self.timing);
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
        let (alerting, was_alerting) = (m.state.is_alerting(), before.state.is_alerting());
        if was_alerting && let Some(s) = before_severity {
            let count = &mut self.firing[self.firing_slots[s.index()]].now;
            *count = count.saturating_sub(1);
        }
        if alerting && let Some(s) = severity {
            self.firing[self.firing_slots[s.index()]].now += 1;
        }
        let m = &inst.machine;
        let changed = before.state != m.state
            || before_severity != severity
            || before.escalated != m.escalated;
        if changed {
            let silenced = self.silenced(&inst.labels, severity.or(before_severity));
            // An alert that ends is reported at the severity it fired with.
            let severity = if was_alerting && !alerting {
                before_severity.or(severity)
            } else {
                severity
            };
            self.transitions.push(Transition {
                rule: rule.name.clone(),
                labels: inst.labels.clone(),
                from: before.state,
                to: m.state,
                from_severity: before_severity,
                severity,
                severity_label: severity.map(|s| rule.severity_label(s).to_owned()),
                value: m.value,
                at: now,
                silenced,
                escalated: m.escalated,
            });
        }
        is_resting(m)
    }

    /// Whether a local silence mutes the instance's alert at `severity`.
    fn silenced(&self, labels: &Labels, severity: Option<Severity>) -> bool {
        #[cfg(feature = "routing")]
        if let Some(severity) = severity {
            let label = self.rule.severity_label(severity);
            return self.local.silences.mute(self.now, |name| match name {
                "severity" => Some(label),
                _ => labels.get(name).map(String::as_str),
            });
        }
        let _ = (labels, severity);
        false
    }
}

/// Whether the rule's `also` condition holds for the series `labels` (yes
/// without one; no when its value is missing).
fn also_holds(rule: &Rule, also: &HashMap<Labels, f64>, labels: &Labels) -> bool {
    rule.also
        .as_ref()
        .is_none_or(|a| a.holds(also.get(labels).copied()))
}

/// The highest severity whose threshold holds for `value` (before the
/// rule's `also` condition).
fn breach(
    rule: &Rule,
    history: Option<&Samples>,
    now: SystemTime,
    value: f64,
    scratch: &mut Vec<f64>,
) -> Option<Severity> {
    let empty = Samples::default();
    let history = history.unwrap_or(&empty);
    rule.thresholds
        .iter()
        .filter(|t| {
            let limit = match &t.value {
                Limit::Fixed(limit) => Some(*limit),
                Limit::Baseline(b) => b.limit(history, now, t.op, scratch),
            };
            limit.is_some_and(|limit| t.op.holds(value, limit))
        })
        .map(|t| t.severity)
        .max()
}
