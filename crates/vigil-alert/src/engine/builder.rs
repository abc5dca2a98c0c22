//! [`EngineBuilder`]: rules, settings and (with the `routing` feature)
//! local routing, checked into an [`Engine`].

use std::time::Duration;

use super::Engine;
use super::step::RuleState;
use crate::history::DEFAULT_HISTORY_CAPACITY;
use crate::{Error, History, Result, Rule, Severity, SeverityLabels};
#[cfg(feature = "routing")]
use crate::{InhibitRule, Routing};

/// Builds an [`Engine`]; see [`Engine::builder`].
#[derive(Clone, Debug, Default)]
#[must_use = "call .build() to get the engine"]
pub struct EngineBuilder {
    rules: Vec<Rule>,
    history_capacity: Option<usize>,
    severity_labels: SeverityLabels,
    evaluation_interval: Option<Duration>,
    /// Routing, inhibit rules and silence retention, checked by `build`.
    #[cfg(feature = "routing")]
    local: crate::routing::Local,
}

impl EngineBuilder {
    crate::notify::setters! {
        /// Adds a rule (checked by [`build`](Self::build)). Rules may share a
        /// name, like Prometheus rules that differ only in severity.
        rule(rule: Rule) => push rules(rule);

        /// Adds rules.
        rules(rules: impl IntoIterator<Item = Rule>) => extend rules(rules);

        /// How many transitions the history keeps (default 1024).
        history_capacity(capacity: usize) => history_capacity = Some(capacity);

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
        evaluation_interval(interval: Duration) => evaluation_interval = Some(interval);

        /// Sets every default level name at once; see
        /// [`severity_label`](Self::severity_label).
        severity_labels(labels: SeverityLabels) => severity_labels = labels;

        /// Sets the routing tree (default: [`Routing::default`]; feature
        /// `routing`).
        #[cfg(feature = "routing")]
        routing(routing: Routing) => local.routing = routing;

        /// Adds an Alertmanager-style inhibit rule (feature `routing`).
        #[cfg(feature = "routing")]
        inhibit_rule(rule: InhibitRule) => push local.inhibit_rules(rule);

        /// How long expired silences stay listed before they are dropped
        /// (default 5 days, at most [`MAX_DURATION`](crate::MAX_DURATION);
        /// feature `routing`).
        #[cfg(feature = "routing")]
        silence_retention(retention: Duration) => local.silence_retention = Some(retention);
    }

    /// Writes `severity` as `label` in the `severity` label of the alerts of
    /// every rule that does not name that level itself (a rule's own name,
    /// from [`RuleBuilder::severity_label`](crate::RuleBuilder::severity_label)
    /// or the spelling of its config thresholds, wins). E.g.
    /// `.severity_label(Severity::Low, "info").severity_label(Severity::Medium, "warning")`
    /// gives the ready-made rule sets (`rulesets`, feature `rulesets`) Alertmanager's
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

    /// Checks the rules (and routes) and builds the engine.
    pub fn build(mut self) -> Result<Engine> {
        if let Some(reason) = self.severity_labels.problem() {
            return Err(Error::InvalidSeverityLabels { reason });
        }
        for rule in &mut self.rules {
            rule.severity_labels = rule.severity_labels.or(&self.severity_labels);
            rule.validate()?;
        }
        #[cfg(feature = "routing")]
        self.local.check()?;
        let engine = Engine {
            #[cfg(feature = "routing")]
            local: self.local,
            states: self.rules.iter().map(RuleState::new).collect(),
            rules: self.rules,
            firing: Default::default(),
            recount: false,
            history: History::new(self.history_capacity.unwrap_or(DEFAULT_HISTORY_CAPACITY)),
            tick: 0,
        };
        if let Some(interval) = self.evaluation_interval {
            engine.check_evaluation_interval(interval)?;
        }
        Ok(engine)
    }
}
