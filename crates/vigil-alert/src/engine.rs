//! The [`Engine`]: evaluates rules against a [`Source`], runs each alert
//! instance's state machine, escalates, records history, and hands grouped
//! [`Notification`]s to whoever delivers them.
//!
//! The engine never reads a clock: [`Engine::evaluate`] and
//! [`Engine::due_notifications`] take `now`, so a host drives it from a timer
//! and tests drive it with synthetic `SystemTime`s. Nothing here does I/O.
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
//!
//! # Metrics
//! Each evaluation sets the gauge `alerts_firing{alert, severity}` (through
//! the `metrics` facade) to the number of alerting (`Firing` or
//! `Recovering`) instances of each rule name at each severity, whenever that
//! number changes (so series that have fired stay, at 0). `severity` is the
//! label value the rule gives the level (`warning` for a threshold written
//! `warning`; see [`SeverityLabels`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::baseline::Samples;
use crate::group::{AlertRef, FiringAlert, Groups, fingerprint};
use crate::history::{DEFAULT_HISTORY_CAPACITY, History, Transition};
use crate::labels::Labels;
use crate::rule::{Aggregation, Expr, Limit, NoDataPolicy, Rule};
use crate::severity::SeverityLabels;
use crate::silence::{Silence, SilenceId, SilenceState};
use crate::source::Source;
use crate::state::{Input, Machine, State, Timing};
use crate::{Alert, Error, InhibitRule, Notification, Result, Routing, Severity, elapsed};

/// Name of the gauge of alerting instances per rule name and severity
/// label (see the [module docs](self)).
pub const ALERTS_FIRING: &str = "alerts_firing";

/// How long expired silences stay listed (Alertmanager keeps 5 days).
pub const DEFAULT_SILENCE_RETENTION: Duration = Duration::from_secs(5 * 24 * 60 * 60);

/// Builds an [`Engine`]; see [`Engine::builder`].
#[derive(Clone, Debug)]
#[must_use = "call .build() to get the engine"]
pub struct EngineBuilder {
    rules: Vec<Rule>,
    routing: Routing,
    inhibit_rules: Vec<InhibitRule>,
    history_capacity: usize,
    silence_retention: Duration,
    severity_labels: SeverityLabels,
    evaluation_interval: Option<Duration>,
}

impl EngineBuilder {
    /// Adds a rule (checked by [`build`](Self::build)). Rules may share a
    /// name, like Prometheus rules that differ only in severity.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Sets the routing tree (default: [`Routing::default`]).
    pub fn routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Adds an Alertmanager-style inhibit rule.
    pub fn inhibit_rule(mut self, rule: InhibitRule) -> Self {
        self.inhibit_rules.push(rule);
        self
    }

    /// How many transitions the history keeps (default 1024).
    pub fn history_capacity(mut self, capacity: usize) -> Self {
        self.history_capacity = capacity;
        self
    }

    /// How long expired silences stay listed before they are dropped
    /// (default 5 days, at most [`MAX_DURATION`](crate::MAX_DURATION)).
    pub fn silence_retention(mut self, retention: Duration) -> Self {
        self.silence_retention = retention;
        self
    }

    /// How often the engine will be evaluated (unset by default: the
    /// engine never reads a clock). When set, [`build`](Self::build)
    /// refuses rules whose windows cannot work at that pace, naming the
    /// rule and field:
    /// - a `rate` or `ratio` window (of the expression or of `also`)
    ///   shorter than the interval never holds two samples, so it has no
    ///   rate;
    /// - a baseline window shorter than `min_samples` intervals never
    ///   holds `min_samples` earlier values, so the threshold never holds.
    ///
    /// The interval must be longer than zero and at most
    /// [`MAX_DURATION`](crate::MAX_DURATION).
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_alert::{Comparison, Engine, Rule, Severity};
    ///
    /// let rule = Rule::builder("Errors")
    ///     .rate("errors_total", Duration::from_secs(10))
    ///     .threshold(Severity::High, Comparison::Greater, 1.0)
    ///     .build()?;
    /// let err = Engine::builder()
    ///     .rule(rule)
    ///     .evaluation_interval(Duration::from_secs(15))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid rule `Errors`: `expr` window 10s is shorter than the evaluation interval 15s, \
    ///      so it never holds the two samples a rate needs"
    /// );
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn evaluation_interval(mut self, interval: Duration) -> Self {
        self.evaluation_interval = Some(interval);
        self
    }

    /// Writes `severity` as `label` in the `severity` label of the alerts of
    /// every rule that does not name that level itself (a rule's own name,
    /// from [`RuleBuilder::severity_label`](crate::rule::RuleBuilder::severity_label)
    /// or the spelling of its config thresholds, wins). E.g.
    /// `.severity_label(Severity::Low, "info").severity_label(Severity::Medium, "warning")`
    /// gives the ready-made [rule sets](crate::rulesets) Alertmanager's
    /// customary names. [`Engine::rules`] shows the names in effect;
    /// [`build`](Self::build) reports a name that is empty, read as another
    /// level or shared by two levels.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use vigil_alert::{Comparison, Engine, MemorySource, Rule, Severity};
    ///
    /// let rule = Rule::builder("QueueBacklog")
    ///     .gauge("queue_depth")
    ///     .threshold(Severity::Medium, Comparison::Greater, 100.0)
    ///     .build()?;
    /// let mut engine = Engine::builder()
    ///     .rule(rule)
    ///     .severity_label(Severity::Medium, "warning")
    ///     .build()?;
    /// let mut source = MemorySource::new();
    /// source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
    /// let now = UNIX_EPOCH + Duration::from_secs(60);
    /// engine.evaluate(now, &source);
    /// let alert = &engine.alerts(now)[0];
    /// assert_eq!(alert.severity, Severity::Medium);
    /// assert_eq!(alert.labels["severity"], "warning");
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn severity_label(mut self, severity: Severity, label: impl Into<String>) -> Self {
        self.severity_labels.set(severity, label);
        self
    }

    /// Sets every default level name at once; see
    /// [`severity_label`](Self::severity_label).
    pub fn severity_labels(mut self, labels: SeverityLabels) -> Self {
        self.severity_labels = labels;
        self
    }

    /// Checks the rules and routes and builds the engine.
    pub fn build(mut self) -> Result<Engine> {
        if let Some(reason) = self.severity_labels.problem() {
            return Err(Error::InvalidSeverityLabels { reason });
        }
        if !self.severity_labels.is_empty() {
            for rule in &mut self.rules {
                rule.severity_labels = rule.severity_labels.or(&self.severity_labels);
            }
        }
        if let Some(problem) = crate::too_long(self.silence_retention) {
            return Err(Error::InvalidSetting {
                setting: "silence_retention",
                reason: problem,
            });
        }
        for rule in &self.rules {
            rule.validate()?;
        }
        self.routing.validate()?;
        let mut firing: Vec<FiringSeries> = Vec::new();
        let mut states = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            let slots = Severity::ALL.map(|severity| {
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
            });
            states.push(RuleState::new(rule, slots));
        }
        let engine = Engine {
            groups: Groups::new(&self.routing, self.inhibit_rules),
            rules: self.rules,
            states,
            firing,
            silences: Vec::new(),
            silence_ids: Vec::new(),
            next_silence_id: 1,
            silence_retention: self.silence_retention,
            history: History::new(self.history_capacity),
            tick: 0,
            scratch: Scratch::default(),
        };
        if let Some(interval) = self.evaluation_interval {
            engine.check_evaluation_interval(interval)?;
        }
        Ok(engine)
    }
}

/// The alert engine: rules, their instances' states, silences, groups and
/// history.
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
    /// The `alerts_firing` series (one per rule name and severity label).
    firing: Vec<FiringSeries>,
    groups: Groups,
    silences: Vec<Silence>,
    silence_ids: Vec<SilenceId>,
    next_silence_id: u64,
    silence_retention: Duration,
    history: History,
    tick: u64,
    scratch: Scratch,
}

/// One `alerts_firing{alert, severity}` series: the alerting instances of
/// the rules named `alert` at the levels they label `severity`, now and as
/// last exported.
#[derive(Clone, Debug)]
struct FiringSeries {
    alert: String,
    severity: String,
    now: u32,
    exported: Option<u32>,
}

/// Buffers reused across evaluations.
#[derive(Debug, Default)]
struct Scratch {
    readings: Vec<(Labels, Reading)>,
    values: Vec<f64>,
    /// The `also` expression's readings, then its values by key.
    also_readings: Vec<(Labels, Reading)>,
    also: HashMap<Labels, f64>,
}

/// One series' (or group's) reading in one evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reading {
    Value(f64),
    /// Present, but a rate needs one more sample: changes nothing.
    Warming,
}

#[derive(Debug)]
struct RuleState {
    timing: Timing,
    /// Per severity level, the rule's `alerts_firing` series.
    firing_slots: [usize; 4],
    /// Whether resting instances are kept (aggregated without `by`, or
    /// `no_data: alerting`): otherwise they are dropped.
    keep_resting: bool,
    instances: HashMap<Labels, Instance>,
    /// Counter samples of the rule's expression.
    counters: Counters,
    /// Counter samples of its `also` expression.
    also_counters: Counters,
    baselines: HashMap<Labels, Samples>,
    /// Longest dynamic-threshold window (zero without one).
    baseline_window: Duration,
    last_baseline_sweep: Option<SystemTime>,
}

#[derive(Debug)]
struct Instance {
    machine: Machine,
    /// Alert labels without `severity`.
    labels: Labels,
    base: u64,
    seen_tick: u64,
    refs: Vec<AlertRef>,
}

/// Counter samples of one expression: [rate or numerator, denominator].
#[derive(Debug, Default)]
struct Counters {
    series: [HashMap<Labels, CounterSeries>; 2],
    last_sweep: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct CounterSeries {
    samples: VecDeque<(SystemTime, f64)>,
}

impl CounterSeries {
    /// Records a total and returns the rate over `window`.
    fn update(&mut self, now: SystemTime, total: f64, window: Duration) -> Reading {
        match self.samples.back() {
            Some((t, _)) if *t > now => self.samples.clear(), // clock went back
            Some((t, _)) if *t == now => {
                self.samples.pop_back();
            }
            _ => {}
        }
        self.samples.push_back((now, total));
        if let Some(from) = now.checked_sub(window) {
            while self.samples.front().is_some_and(|(t, _)| *t < from) {
                self.samples.pop_front();
            }
        }
        let (Some(&(first, _)), Some(&(last, _))) = (self.samples.front(), self.samples.back())
        else {
            return Reading::Warming;
        };
        let span = elapsed(last, first).as_secs_f64();
        if span <= 0.0 {
            return Reading::Warming;
        }
        let mut increase = 0.0;
        let mut prev = None;
        for &(_, v) in &self.samples {
            if let Some(p) = prev {
                // A drop means the counter restarted from zero (Prometheus).
                increase += if v >= p { v - p } else { v };
            }
            prev = Some(v);
        }
        Reading::Value(increase / span)
    }
}

impl RuleState {
    fn new(rule: &Rule, firing_slots: [usize; 4]) -> Self {
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
            last_baseline_sweep: None,
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
        for (k, v) in &rule.labels {
            labels.insert(k.clone(), v.clone());
        }
        labels.insert("alertname".into(), rule.name.clone());
        Instance {
            machine: Machine::default(),
            base: fingerprint(&labels),
            labels,
            seen_tick: 0,
            refs: Vec::new(),
        }
    }
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
    /// Its severity (escalation included), if it has one.
    pub severity: Option<Severity>,
    /// The last value read.
    pub value: Option<f64>,
    /// When it started firing, while alerting.
    #[serde(with = "crate::serde_time::option")]
    pub active_since: Option<SystemTime>,
    /// Whether it escalated.
    pub escalated: bool,
}

/// The severity an instance shows: the threshold severity, raised one step
/// once escalated (if the rule's escalation raises).
fn effective_severity(rule: &Rule, m: &Machine) -> Option<Severity> {
    let raise = m.escalated && rule.escalate.as_ref().is_some_and(|e| e.raise_severity);
    m.severity.map(|s| if raise { s.raised() } else { s })
}

impl Engine {
    /// Starts building an engine.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_alert::{Comparison, Engine, Matcher, Route, Routing, Rule, Severity};
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
    ///     .routing(
    ///         Routing::new("email")
    ///             .group_by(["alertname"])
    ///             .route(Route::new("pager").matcher(Matcher::equal("severity", "critical"))),
    ///     )
    ///     .history_capacity(10_000)
    ///     .build()?;
    /// assert_eq!(engine.rules().len(), 1);
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            rules: Vec::new(),
            routing: Routing::default(),
            inhibit_rules: Vec::new(),
            history_capacity: DEFAULT_HISTORY_CAPACITY,
            silence_retention: DEFAULT_SILENCE_RETENTION,
            severity_labels: SeverityLabels::new(),
            evaluation_interval: None,
        }
    }

    /// An engine with these rules and the default routing (everything to
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
        if interval.is_zero() {
            return Err(Error::InvalidSetting {
                setting: "evaluation_interval",
                reason: "must be longer than zero".into(),
            });
        }
        if let Some(reason) = crate::too_long(interval) {
            return Err(Error::InvalidSetting {
                setting: "evaluation_interval",
                reason,
            });
        }
        self.rules
            .iter()
            .try_for_each(|rule| rule.check_interval(interval))
    }

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
        let escalations = self
            .rules
            .iter()
            .filter_map(|rule| rule.escalate.as_ref()?.receiver.as_deref());
        let mut out: Vec<&str> = Vec::new();
        for receiver in self.groups.receivers().chain(escalations) {
            if !out.contains(&receiver) {
                out.push(receiver);
            }
        }
        out
    }

    /// The transition history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Evaluates every rule at `now` against `source`: reads values, steps
    /// each instance's state machine, escalates, updates the alert groups
    /// and `alerts_firing`, and returns (and records in the history) the
    /// transitions, in rule order.
    pub fn evaluate(&mut self, now: SystemTime, source: &dyn Source) -> Vec<Transition> {
        self.tick += 1;
        self.prune_silences(now);
        let mut transitions = Vec::new();
        for index in 0..self.rules.len() {
            self.read(index, now, source);
            self.apply(index, now, &mut transitions);
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

    /// The notifications due at `now` (one per group whose timer expired and
    /// that has something to say; see the [group module](crate::group)
    /// docs), sorted by receiver and group key. Marks them as handed over:
    /// the caller delivers them (with retries); calling again at the same
    /// `now` returns nothing new. Pure: no clock, no I/O.
    pub fn due_notifications(&mut self, now: SystemTime) -> Vec<Notification> {
        self.groups.flush(now, &self.rules, &self.silences)
    }

    /// When the next group timer expires, if any group exists: a host can
    /// sleep until then (or until its next evaluation).
    pub fn next_notification_at(&self) -> Option<SystemTime> {
        self.groups.next_due()
    }

    /// Every alert currently held for notification (firing, or resolved
    /// but not yet notified), with `silenced` / `inhibited` flags at `now`:
    /// the view of Alertmanager's `GET /api/v2/alerts`.
    pub fn alerts(&self, now: SystemTime) -> Vec<Alert> {
        self.groups.alerts(now, &self.rules, &self.silences)
    }

    /// A snapshot of every alert instance the engine holds (those that are
    /// not resting; plus the single instance of aggregated rules and the
    /// series of `no_data: alerting` rules), sorted by rule and labels.
    pub fn instances(&self) -> Vec<InstanceStatus> {
        let mut out: Vec<InstanceStatus> = self
            .rules
            .iter()
            .zip(&self.states)
            .flat_map(|(rule, state)| {
                state.instances.values().map(move |i| InstanceStatus {
                    rule: rule.name.clone(),
                    labels: i.labels.clone(),
                    state: i.machine.state,
                    severity: effective_severity(rule, &i.machine),
                    value: i.machine.value,
                    active_since: i.machine.active_since,
                    escalated: i.machine.escalated,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.rule, &a.labels).cmp(&(&b.rule, &b.labels)));
        out
    }

    /// The state of the instance of the first rule named `rule` whose series
    /// (or `by` group) has exactly `labels`; `Inactive` if there is none.
    pub fn state(&self, rule: &str, labels: &Labels) -> State {
        self.rules
            .iter()
            .zip(&self.states)
            .filter(|(r, _)| r.name == rule)
            .find_map(|(_, s)| s.instances.get(labels))
            .map_or(State::Inactive, |i| i.machine.state)
    }

    /// Adds a silence and returns its id.
    ///
    /// Fails if it has no matchers (it would mute everything), ends
    /// before it starts, or lasts longer than
    /// [`MAX_DURATION`](crate::MAX_DURATION).
    pub fn add_silence(&mut self, silence: Silence) -> Result<SilenceId> {
        if silence.matchers.is_empty() {
            return Err(Error::InvalidSilence {
                reason: "a silence needs at least one matcher".into(),
            });
        }
        if silence.ends_at <= silence.starts_at {
            return Err(Error::InvalidSilence {
                reason: "ends_at must be after starts_at".into(),
            });
        }
        if let Some(problem) = silence.too_long() {
            return Err(Error::InvalidSilence { reason: problem });
        }
        let id = SilenceId(self.next_silence_id);
        self.next_silence_id += 1;
        self.silences.push(silence);
        self.silence_ids.push(id);
        Ok(id)
    }

    /// Ends a silence at `now` (a pending one never starts). Expiring an
    /// expired silence changes nothing.
    pub fn expire_silence(&mut self, id: SilenceId, now: SystemTime) -> Result<()> {
        let i = self
            .silence_ids
            .iter()
            .position(|s| *s == id)
            .ok_or(Error::UnknownSilence { id })?;
        let silence = &mut self.silences[i];
        match silence.state(now) {
            SilenceState::Expired => {}
            SilenceState::Active => silence.ends_at = now,
            SilenceState::Pending => {
                silence.starts_at = now;
                silence.ends_at = now;
            }
        }
        Ok(())
    }

    /// A silence by id.
    pub fn silence(&self, id: SilenceId) -> Option<&Silence> {
        let i = self.silence_ids.iter().position(|s| *s == id)?;
        Some(&self.silences[i])
    }

    /// All silences (pending, active, and expired within the retention), by id.
    pub fn silences(&self) -> impl Iterator<Item = (SilenceId, &Silence)> {
        self.silence_ids.iter().copied().zip(&self.silences)
    }

    fn prune_silences(&mut self, now: SystemTime) {
        let retention = self.silence_retention;
        let mut i = 0;
        while i < self.silences.len() {
            if self.silences[i]
                .ends_at
                .checked_add(retention)
                .is_some_and(|kept_until| kept_until < now)
            {
                self.silences.remove(i);
                self.silence_ids.remove(i);
            } else {
                i += 1;
            }
        }
    }

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

    /// Steps the rule's instances with `scratch.readings`.
    fn apply(&mut self, index: usize, now: SystemTime, transitions: &mut Vec<Transition>) {
        let Engine {
            rules,
            states,
            firing,
            groups,
            silences,
            tick,
            scratch,
            ..
        } = self;
        let tick = *tick;
        let rule = &rules[index];
        let state = &mut states[index];
        let mut ctx = StepContext {
            rule,
            index,
            now,
            timing: state.timing,
            groups,
            silences,
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
            let history = if dynamic {
                state.baselines.get(&labels)
            } else {
                None
            };
            let breach = breach(rule, history, now, value, &mut scratch.values)
                .filter(|_| also_holds(rule, &scratch.also, &labels));
            if breach.is_none() && !state.keep_resting && !dynamic && state.instances.is_empty() {
                // The common case: a healthy series and no instance to update.
                // No hashing, no allocation.
                continue;
            }
            if dynamic {
                match state.baselines.get_mut(&labels) {
                    Some(samples) => samples.push(now, value, state.baseline_window),
                    None => {
                        let mut samples = Samples::default();
                        samples.push(now, value, state.baseline_window);
                        state.baselines.insert(labels.clone(), samples);
                    }
                }
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
        if !state.baseline_window.is_zero() {
            let window = state.baseline_window;
            let due = state
                .last_baseline_sweep
                .is_none_or(|t| elapsed(now, t) >= window);
            if due {
                let from = now.checked_sub(window);
                state.baselines.retain(|_, s| {
                    s.last_time()
                        .zip(from)
                        .is_none_or(|(last, from)| last >= from)
                });
                state.last_baseline_sweep = Some(now);
            }
        }
    }

    fn export_firing(&mut self) {
        for series in &mut self.firing {
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
    index: usize,
    now: SystemTime,
    timing: Timing,
    groups: &'a mut Groups,
    silences: &'a [Silence],
    firing: &'a mut [FiringSeries],
    firing_slots: [usize; 4],
    transitions: &'a mut Vec<Transition>,
}

impl StepContext<'_> {
    /// Steps one instance; records a transition and updates its alerts if
    /// anything changed. Returns whether the instance is now resting.
    fn step(&mut self, inst: &mut Instance, input: Input) -> bool {
        let rule = self.rule;
        let now = self.now;
        let before_state = inst.machine.state;
        let before_severity = effective_severity(rule, &inst.machine);
        let before_escalated = inst.machine.escalated;
        inst.machine.step(input, now, &self.timing);
        let m = &mut inst.machine;
        if let Some(e) = &rule.escalate
            && m.state.is_alerting()
            && !m.escalated
            && m.active_since.is_some_and(|t| elapsed(now, t) >= e.after)
        {
            m.escalated = true;
        }
        let severity = effective_severity(rule, m);
        let alerting = m.state.is_alerting();
        let was_alerting = before_state.is_alerting();
        let changed = before_state != m.state
            || before_severity != severity
            || before_escalated != m.escalated;
        if was_alerting && let Some(s) = before_severity {
            let count = &mut self.firing[self.firing_slots[s.index()]].now;
            *count = count.saturating_sub(1);
        }
        if alerting && let Some(s) = severity {
            self.firing[self.firing_slots[s.index()]].now += 1;
        }
        if alerting || was_alerting {
            let current = match (alerting, severity) {
                (true, Some(severity)) => Some(FiringAlert {
                    rule: self.index,
                    labels: &inst.labels,
                    base: inst.base,
                    severity,
                    severity_label: rule.severity_label(severity),
                    value: m.value,
                    starts_at: m.active_since.unwrap_or(now),
                    escalated: m.escalated,
                    escalation_receiver: rule.escalate.as_ref().and_then(|e| e.receiver.as_deref()),
                }),
                _ => None,
            };
            self.groups
                .sync(now, self.index, inst.base, current.as_ref(), &mut inst.refs);
        }
        if changed {
            let shown = severity.or(before_severity);
            let silenced = shown.is_some_and(|sev| {
                self.silences.iter().any(|s| {
                    s.mutes(now, |name| match name {
                        "severity" => Some(rule.severity_label(sev)),
                        _ => inst.labels.get(name).map(String::as_str),
                    })
                })
            });
            // An alert that ends is reported at the severity it fired with.
            let severity = if was_alerting && !alerting {
                before_severity.or(severity)
            } else {
                severity
            };
            self.transitions.push(Transition {
                rule: rule.name.clone(),
                labels: inst.labels.clone(),
                from: before_state,
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

/// Reads one expression of a rule (its own or its `also`).
struct ExprReader<'a> {
    aggregate: Aggregation,
    by: &'a [String],
    now: SystemTime,
    source: &'a dyn Source,
}

impl ExprReader<'_> {
    /// Replaces `out` with the readings of `expr`, per series or
    /// aggregated, sampling counters into `counters`.
    fn read(&self, expr: &Expr, counters: &mut Counters, out: &mut Vec<(Labels, Reading)>) {
        let ExprReader {
            aggregate: op,
            by,
            now,
            source,
        } = *self;
        out.clear();
        let finite =
            |(labels, v): (Labels, f64)| (!v.is_nan()).then_some((labels, Reading::Value(v)));
        match expr {
            Expr::Gauge { metric, matchers } => {
                out.extend(
                    source
                        .gauges(metric, matchers)
                        .into_iter()
                        .filter_map(finite),
                );
            }
            Expr::Histogram {
                metric,
                matchers,
                stat,
                window,
            } => {
                out.extend(
                    source
                        .histograms(metric, matchers, *window, *stat)
                        .into_iter()
                        .filter_map(finite),
                );
            }
            Expr::Rate {
                metric,
                matchers,
                window,
            } => {
                let series = &mut counters.series[0];
                for (labels, total, age) in source.counters_with_age(metric, matchers) {
                    if total.is_nan() {
                        continue;
                    }
                    let reading = counter_rate(series, &labels, now, (total, age), *window);
                    out.push((labels, reading));
                }
                sweep_counters(series, &mut counters.last_sweep, now, *window, false);
            }
            Expr::Ratio {
                numerator,
                denominator,
                ignoring,
                window,
            } => {
                let [num_series, den_series] = &mut counters.series;
                let rates = |series: &mut HashMap<Labels, CounterSeries>, sel: &crate::Selector| {
                    source
                        .counters_with_age(&sel.metric, &sel.matchers)
                        .into_iter()
                        .filter(|(_, total, _)| !total.is_nan())
                        .map(|(labels, total, age)| {
                            let reading = counter_rate(series, &labels, now, (total, age), *window);
                            (labels, reading)
                        })
                        .collect::<Vec<_>>()
                };
                let num = rates(num_series, numerator);
                let den = rates(den_series, denominator);
                sweep_counters(num_series, &mut counters.last_sweep, now, *window, true);
                sweep_counters(den_series, &mut counters.last_sweep, now, *window, false);
                if op == Aggregation::Sum {
                    ratio_of_sums(num, den, by, out);
                    return;
                }
                ratio_per_key(num, den, ignoring, out);
            }
        }
        if op != Aggregation::PerSeries {
            aggregate(out, op, by);
        }
    }
}

/// The rate of one counter series, from its total (and age, see
/// [`Source::counters_with_age`]) at `now`.
fn counter_rate(
    series: &mut HashMap<Labels, CounterSeries>,
    labels: &Labels,
    now: SystemTime,
    (total, age): (f64, Option<Duration>),
    window: Duration,
) -> Reading {
    match series.get_mut(labels) {
        Some(s) => s.update(now, total, window),
        None => {
            let mut s = CounterSeries::default();
            // A series created at 0 within the window: that is its first
            // sample, so what it counted before this read is in the rate.
            if let Some(born) = age
                .filter(|age| *age <= window)
                .and_then(|age| now.checked_sub(age))
            {
                s.samples.push_back((born, 0.0));
            }
            let reading = s.update(now, total, window);
            series.insert(labels.clone(), s);
            reading
        }
    }
}

/// Drops counter series without a sample in the last window, once per
/// window (`keep_clock`: leave the sweep time for the next call).
fn sweep_counters(
    series: &mut HashMap<Labels, CounterSeries>,
    last_sweep: &mut Option<SystemTime>,
    now: SystemTime,
    window: Duration,
    keep_clock: bool,
) {
    if last_sweep.is_some_and(|t| elapsed(now, t) < window) {
        return;
    }
    if let Some(from) = now.checked_sub(window) {
        series.retain(|_, s| s.samples.back().is_some_and(|(t, _)| *t >= from));
    }
    if !keep_clock {
        *last_sweep = Some(now);
    }
}

fn without(labels: &Labels, ignoring: &[String]) -> Labels {
    let mut key = labels.clone();
    for name in ignoring {
        key.remove(name);
    }
    key
}

#[derive(Clone, Copy, Default)]
struct RatePair {
    num: f64,
    den: f64,
    warming: bool,
    has_den: bool,
}

fn ratio_readings(pairs: HashMap<Labels, RatePair>, out: &mut Vec<(Labels, Reading)>) {
    for (key, p) in pairs {
        if !p.has_den {
            continue; // no denominator series: no data for this key
        }
        if p.warming {
            out.push((key, Reading::Warming));
        } else if p.den > 0.0 {
            out.push((key, Reading::Value(p.num / p.den)));
        }
        // A zero denominator (no traffic) is 0/0: no data.
    }
}

/// Per key (labels minus `ignoring`): sum(num) / sum(den).
fn ratio_per_key(
    num: Vec<(Labels, Reading)>,
    den: Vec<(Labels, Reading)>,
    ignoring: &[String],
    out: &mut Vec<(Labels, Reading)>,
) {
    let mut pairs: HashMap<Labels, RatePair> = HashMap::new();
    let key = |labels: Labels| {
        if ignoring.is_empty() {
            labels
        } else {
            without(&labels, ignoring)
        }
    };
    for (labels, reading) in den {
        let p = pairs.entry(key(labels)).or_default();
        p.has_den = true;
        match reading {
            Reading::Value(v) => p.den += v,
            Reading::Warming => p.warming = true,
        }
    }
    for (labels, reading) in num {
        if let Some(p) = pairs.get_mut(&key(labels)) {
            match reading {
                Reading::Value(v) => p.num += v,
                Reading::Warming => p.warming = true,
            }
        }
    }
    ratio_readings(pairs, out);
}

/// Per `by` group: sum(num) / sum(den).
fn ratio_of_sums(
    num: Vec<(Labels, Reading)>,
    den: Vec<(Labels, Reading)>,
    by: &[String],
    out: &mut Vec<(Labels, Reading)>,
) {
    let mut pairs: HashMap<Labels, RatePair> = HashMap::new();
    let key = |labels: &Labels| project(labels, by);
    for (labels, reading) in &den {
        let p = pairs.entry(key(labels)).or_default();
        p.has_den = true;
        match reading {
            Reading::Value(v) => p.den += v,
            Reading::Warming => p.warming = true,
        }
    }
    for (labels, reading) in &num {
        if let Some(p) = pairs.get_mut(&key(labels)) {
            match reading {
                Reading::Value(v) => p.num += v,
                // A new error series has no rate yet; the others still count.
                Reading::Warming => {}
            }
        }
    }
    ratio_readings(pairs, out);
}

/// The `by` labels of a series (empty for no `by`).
fn project(labels: &Labels, by: &[String]) -> Labels {
    by.iter()
        .filter_map(|name| labels.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

#[derive(Clone, Copy)]
struct Acc {
    n: usize,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            n: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Acc {
    fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn reading(&self, op: Aggregation) -> Reading {
        if self.n == 0 {
            return Reading::Warming;
        }
        Reading::Value(match op {
            Aggregation::Sum | Aggregation::PerSeries => self.sum,
            Aggregation::Max => self.max,
            Aggregation::Min => self.min,
            Aggregation::Avg => self.sum / self.n as f64,
        })
    }
}

/// Replaces per-series readings with one reading per `by` group. A group
/// whose series are all warming up is warming up.
fn aggregate(readings: &mut Vec<(Labels, Reading)>, op: Aggregation, by: &[String]) {
    if readings.is_empty() {
        return;
    }
    if by.is_empty() {
        let mut acc = Acc::default();
        for (_, r) in readings.iter() {
            if let Reading::Value(v) = r {
                acc.add(*v);
            }
        }
        readings.clear();
        readings.push((Labels::new(), acc.reading(op)));
        return;
    }
    let mut groups: HashMap<Labels, Acc> = HashMap::new();
    for (labels, r) in readings.iter() {
        let acc = groups.entry(project(labels, by)).or_default();
        if let Reading::Value(v) = r {
            acc.add(*v);
        }
    }
    readings.clear();
    readings.extend(groups.into_iter().map(|(k, acc)| (k, acc.reading(op))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn engine_and_sources_can_move_to_an_evaluation_task() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Engine>();
        send_sync::<crate::MemorySource>();
        send_sync::<crate::Notification>();
    }

    #[test]
    fn counter_rate_needs_two_samples_and_handles_resets() {
        let mut s = CounterSeries::default();
        let w = Duration::from_secs(300);
        assert_eq!(s.update(at(0), 100.0, w), Reading::Warming);
        assert_eq!(s.update(at(60), 160.0, w), Reading::Value(1.0));
        // Restart: the total drops to 30, so 30 new events since the reset.
        assert_eq!(s.update(at(120), 30.0, w), Reading::Value(90.0 / 120.0));
        // Re-evaluating at the same instant replaces the sample.
        assert_eq!(s.update(at(120), 90.0, w), Reading::Value(150.0 / 120.0));
    }

    #[test]
    fn a_counter_with_an_age_counts_from_zero_at_its_birth() {
        let w = Duration::from_secs(300);
        let labels = Labels::new();
        let mut series = HashMap::new();
        // Born 10 s before its first read, at 0: 100 in 10 s.
        let young = (100.0, Some(Duration::from_secs(10)));
        assert_eq!(
            counter_rate(&mut series, &labels, at(60), young, w),
            Reading::Value(10.0)
        );
        assert_eq!(
            counter_rate(&mut series, &labels, at(70), (200.0, None), w),
            Reading::Value(10.0)
        );
        // Older than the window, or of unknown age: its first total is
        // where it starts.
        for first in [(100.0, Some(Duration::from_secs(301))), (100.0, None)] {
            let mut series = HashMap::new();
            assert_eq!(
                counter_rate(&mut series, &labels, at(400), first, w),
                Reading::Warming
            );
        }
    }

    #[test]
    fn counter_rate_only_looks_at_the_window() {
        let mut s = CounterSeries::default();
        let w = Duration::from_secs(60);
        s.update(at(0), 0.0, w);
        s.update(at(60), 600.0, w); // 10/s
        assert_eq!(s.update(at(120), 660.0, w), Reading::Value(1.0));
    }

    #[test]
    fn aggregation_ops() {
        let mk = || {
            vec![
                (crate::labels([("a", "1"), ("g", "x")]), Reading::Value(1.0)),
                (crate::labels([("a", "2"), ("g", "x")]), Reading::Value(3.0)),
                (crate::labels([("a", "3"), ("g", "y")]), Reading::Warming),
            ]
        };
        for (op, want) in [
            (Aggregation::Sum, 4.0),
            (Aggregation::Max, 3.0),
            (Aggregation::Min, 1.0),
            (Aggregation::Avg, 2.0),
        ] {
            let mut r = mk();
            aggregate(&mut r, op, &[]);
            assert_eq!(r, vec![(Labels::new(), Reading::Value(want))], "{op:?}");
        }
        let mut r = mk();
        aggregate(&mut r, Aggregation::Sum, &["g".to_owned()]);
        r.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            r,
            vec![
                (crate::labels([("g", "x")]), Reading::Value(4.0)),
                (crate::labels([("g", "y")]), Reading::Warming),
            ]
        );
    }
}
