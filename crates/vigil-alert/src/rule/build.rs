//! Building rules in code ([`RuleBuilder`]) and the checks every rule
//! passes ([`Rule::validate`], [`Rule::check_interval`]), however it was
//! made.

use std::time::Duration;

use super::{
    Aggregation, AlsoCondition, Comparison, Expr, Limit, NoDataPolicy, Recovery, Rule, Selector,
    Threshold, invalid_label, is_valid_metric_name, rule_label_problem,
};
use crate::baseline::BaselineMethod;
use crate::escalation::Escalation;
use crate::labels::Matcher;
use crate::source::HistogramStat;
use crate::time::{not_positive, too_long};
use crate::{Error, Result, Severity};

impl Rule {
    /// Checks everything the engine relies on; the builder and the engine
    /// call it, so a rule loaded with serde is checked when added.
    ///
    /// Besides names, expressions and labels it refuses what cannot mean
    /// what was written:
    /// - thresholds that point different ways (one `>`, another `<`);
    /// - a more severe level whose limit is not further from normal than a
    ///   less severe one's (`critical: > 0.5` with `warning: > 0.9`, or equal
    ///   limits; for `<` rules the mirror), which would hide the lesser
    ///   level; the same for two baselines of one kind over the same window
    ///   (more `stddevs`, a further `quantile`);
    /// - a recovery threshold that points the same way as the thresholds,
    ///   or is not strictly on the healthy side of every fixed threshold
    ///   (`recover: < 95` with `warning: > 90`);
    /// - a threshold, `also` or recovery condition that can never hold
    ///   (`< 0` on a rate, a ratio of rates or a histogram count, which are
    ///   never negative);
    /// - a baseline with negative `stddevs` or a `min_samples` above
    ///   [`MAX_SAMPLES`](crate::baseline::MAX_SAMPLES);
    /// - any duration (`for`, `keep_firing_for`, windows, baseline windows,
    ///   `escalate.after`) longer than [`MAX_DURATION`](crate::MAX_DURATION).
    ///
    /// ```
    /// use vigil_alert::{Comparison, Rule, Severity};
    ///
    /// let err = Rule::builder("DiskFull")
    ///     .gauge("disk_usage_ratio")
    ///     .threshold(Severity::Medium, Comparison::Greater, 0.9)
    ///     .threshold(Severity::Critical, Comparison::Greater, 0.5)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid rule `DiskFull`: `thresholds` critical `> 0.5` is not above medium `> 0.9`: \
    ///      a more severe level needs a limit further from normal, or the less severe one could never be reported"
    /// );
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.fail(self.problem())
    }

    /// `Ok`, or the rule's error for a problem (the field and why).
    fn fail(&self, problem: Option<(&'static str, String)>) -> Result<()> {
        problem.map_or(Ok(()), |(field, reason)| {
            let rule = self.name.clone();
            Err(Error::InvalidRule {
                rule,
                field,
                reason,
            })
        })
    }

    /// The first problem [`validate`](Self::validate) reports.
    fn problem(&self) -> Option<(&'static str, String)> {
        let nan = |v: f64| v.is_nan().then(|| "limit is NaN".to_owned());
        let n = &self.name;
        let name = (!is_valid_metric_name(n))
            .then(|| format!("{n:?} is not a valid alert name ([a-zA-Z_:][a-zA-Z0-9_:]*)"));
        let also = |a: &AlsoCondition| a.expr.problem().map(|p| p.1).or_else(|| nan(a.value));
        let per_series = !self.by.is_empty() && self.aggregate == Aggregation::PerSeries;
        let by = per_series.then(|| {
            "needs an aggregation (sum, max, min or avg); per_series already keeps every label"
                .into()
        });
        let none = self.thresholds.is_empty();
        let thresholds = none.then(|| "needs at least one threshold".to_owned());
        let threshold = |(i, t): (usize, &Threshold)| {
            let level = t.severity;
            match &t.value {
                _ if self.thresholds[..i].iter().any(|u| u.severity == level) => {
                    Some(format!("severity {level} appears twice"))
                }
                Limit::Fixed(v) => nan(*v).map(|_| format!("{level} limit is NaN")),
                Limit::Baseline(b) => b.problem().map(|p| format!("{level}: {p}")),
            }
        };
        let escalate = |e: &Escalation| {
            let empty = e.receiver.as_deref().is_some_and(str::is_empty);
            (not_positive(e.after).map(|p| format!("`after` {p}")))
                .or_else(|| empty.then(|| "`receiver` must not be empty".into()))
        };
        let mut levels = self.thresholds.iter().enumerate();
        let labels = self.labels.keys().find_map(|n| rule_label_problem(n));
        let annotations = invalid_label(self.annotations.keys(), "annotation");
        let checks = [
            ("also", self.also.as_ref().and_then(also)),
            ("by", by.or_else(|| invalid_label(&self.by, "label"))),
            (
                "thresholds",
                thresholds.or_else(|| levels.find_map(threshold)),
            ),
            ("recover", self.recover.and_then(|r| nan(r.value))),
        ];
        let late = [
            ("for", too_long(self.for_duration)),
            ("keep_firing_for", too_long(self.keep_firing_for)),
            ("labels", labels),
            ("annotations", annotations),
            ("severity_labels", self.severity_labels.problem()),
            ("escalate", self.escalate.as_ref().and_then(escalate)),
        ];
        (first([("name", name)]).or_else(|| self.expr.problem()))
            .or_else(|| first(checks))
            .or_else(|| self.threshold_conflict())
            .or_else(|| first(late))
    }

    /// Checks that the rule's windows can work when the engine is
    /// evaluated every `interval` (see
    /// [`EngineBuilder::evaluation_interval`](crate::EngineBuilder::evaluation_interval)):
    /// a `rate` or `ratio` window (also in [`also`](Rule::also)) of at
    /// least one interval, and baseline windows of at least `min_samples`
    /// intervals.
    pub fn check_interval(&self, interval: Duration) -> Result<()> {
        let show = humantime::format_duration;
        let every = show(interval);
        let exprs = std::iter::once(("expr", &self.expr))
            .chain(self.also.as_ref().map(|a| ("also", &a.expr)));
        let mut rates = exprs.filter(|(_, e)| matches!(e, Expr::Rate { .. } | Expr::Ratio { .. }));
        let short = rates.find_map(|(field, e)| {
            let window = show(e.window().filter(|w| *w < interval)?);
            Some((field, format!(
                "window {window} is shorter than the evaluation interval {every}, so it never holds the two samples a rate needs"
            )))
        });
        let baseline = |t: &Threshold| {
            let Limit::Baseline(b) = &t.value else {
                return None;
            };
            let (label, window) = (self.severity_label(t.severity), show(b.window));
            let min = b.min_samples;
            let held = b.window.as_nanos() / interval.as_nanos().max(1);
            (held < min as u128).then(|| ("thresholds", format!(
                "{label}: baseline window {window} holds at most {held} earlier values at the evaluation interval {every}, fewer than min_samples {min}, so the threshold never holds"
            )))
        };
        self.fail(short.or_else(|| self.thresholds.iter().find_map(baseline)))
    }

    /// Thresholds (and the recovery threshold) that contradict each other:
    /// the field and why. See [`Rule::validate`].
    fn threshold_conflict(&self) -> Option<(&'static str, String)> {
        let label = |t: &Threshold| self.severity_label(t.severity);
        let named = |t: &Threshold| format!("{} `{}`", label(t), shown(t));
        let never = |why| format!("{why}, so an alerting instance would never resolve");
        let threshold = |t: &Threshold| {
            let why = self.expr.unreachable(t.op, t.value.fixed()?)?;
            Some(format!("{} {why}", label(t)))
        };
        let also = |a: &AlsoCondition| a.expr.unreachable(a.op, a.value);
        let recover = |r: Recovery| self.expr.unreachable(r.op, r.value).map(never);
        let unreachable = first([
            ("thresholds", self.thresholds.iter().find_map(threshold)),
            ("also", self.also.as_ref().and_then(also)),
            ("recover", self.recover.and_then(recover)),
        ]);
        if unreachable.is_some() {
            return unreachable;
        }
        let mut by_level: Vec<&Threshold> = self.thresholds.iter().collect();
        by_level.sort_by_key(|t| t.severity);
        let lowest = by_level.first()?;
        let upper = lowest.op.is_upper();
        // Further from normal: above for `>` rules, below for `<` ones.
        let further = |h: f64, l: f64| if upper { h > l } else { h < l };
        // Where a rule fires, where it is healthy, how it recovers.
        let (side, healthy, example) = match upper {
            true => ("above", "below", Comparison::Less),
            false => ("below", "above", Comparison::Greater),
        };
        if let Some(other) = by_level.iter().find(|t| t.op.is_upper() != upper) {
            let is = |t: &Threshold| format!("{} is `{}`", label(t), shown(t));
            let (lowest, other) = (is(lowest), is(other));
            return Some((
                "thresholds",
                format!(
                    "{lowest} but {other}: the thresholds of a rule must all alert on high values (> or >=) or all on low values (< or <=); write one rule per direction"
                ),
            ));
        }
        // How far from normal a limit reaches: comparable between limits
        // of one kind (fixed, stddevs, quantile) over one window.
        let reach = |t: &Threshold| match &t.value {
            Limit::Fixed(v) => (0, Duration::ZERO, *v),
            Limit::Baseline(b) => match b.method {
                BaselineMethod::Stddev(k) => (1, b.window, if upper { k } else { -k }),
                BaselineMethod::Quantile(q) => (2, b.window, q),
            },
        };
        let out_of_order = |(low, high): &(&Threshold, &Threshold)| {
            let ((lk, lw, l), (hk, hw, h)) = (reach(low), reach(high));
            (lk, lw) == (hk, hw) && !further(h, l)
        };
        let mut pairs = (by_level.iter().enumerate())
            .flat_map(|(i, high)| by_level[..i].iter().map(move |low| (*low, *high)));
        if let Some((low, high)) = pairs.find(out_of_order) {
            let (high, low) = (named(high), named(low));
            return Some((
                "thresholds",
                format!(
                    "{high} is not {side} {low}: a more severe level needs a limit further from normal, or the less severe one could never be reported"
                ),
            ));
        }
        let Recovery { op, value } = self.recover?;
        if op.is_upper() == upper {
            let lowest = lowest.op;
            return Some((
                "recover",
                format!(
                    "`{op} {value}` points the same way as the thresholds (`{lowest}`): a rule that fires {side} its thresholds recovers {healthy} a limit, e.g. `{example} {value}`"
                ),
            ));
        }
        // The threshold closest to normal (among the fixed ones) is the one
        // an instance recovers from; the recovery limit must be nearer still.
        let fixed = (self.thresholds.iter()).filter_map(|t| Some((t, t.value.fixed()?)));
        let (t, limit) = fixed.reduce(|a, b| if further(a.1, b.1) { b } else { a })?;
        (!further(limit, value)).then(|| ("recover", format!(
            "`{op} {value}` is not {healthy} the threshold it recovers from, {}: the recovery limit must be on the healthy side of every threshold, or it changes nothing",
            named(t)
        )))
    }
}

/// A threshold as written in messages: `> 0.9`, `> {stddevs: 3, window: 1h}`.
fn shown(t: &Threshold) -> String {
    let (kind, k, window) = match &t.value {
        Limit::Fixed(v) => return format!("{} {v}", t.op),
        Limit::Baseline(b) => match b.method {
            BaselineMethod::Stddev(k) => ("stddevs", k, b.window),
            BaselineMethod::Quantile(q) => ("quantile", q, b.window),
        },
    };
    let window = humantime::format_duration(window);
    format!("{} {{{kind}: {k}, window: {window}}}", t.op)
}

/// The first of `checks` (a field and its problem, if any) that found a
/// problem.
fn first(
    checks: impl IntoIterator<Item = (&'static str, Option<String>)>,
) -> Option<(&'static str, String)> {
    checks
        .into_iter()
        .find_map(|(field, problem)| Some((field, problem?)))
}

/// Builds a [`Rule`]; see [`Rule::builder`]. Problems are reported by
/// [`build`](RuleBuilder::build).
#[derive(Clone, Debug)]
#[must_use = "call .build() to get the rule"]
pub struct RuleBuilder {
    /// The rule so far (its `expr` is set by `build`).
    rule: Rule,
    expr: Option<Expr>,
    /// Matchers added to every selector.
    matchers: Vec<Matcher>,
}

impl RuleBuilder {
    pub(super) fn new(rule: Rule) -> Self {
        RuleBuilder {
            rule,
            expr: None,
            matchers: Vec::new(),
        }
    }

    crate::notify::setters! {
        /// Reads any [`Expr`].
        expr(expr: Expr) => expr = Some(expr);

        /// Adds a label matcher to every selector of the expression (both sides
        /// of a ratio, and the [`also`](Self::also) expression), whenever the
        /// expression is set.
        matcher(matcher: Matcher) => push matchers(matcher);

        /// Aggregates the matching series into one instance (per
        /// [`by`](Self::by) group).
        aggregate(aggregation: Aggregation) => rule.aggregate = aggregation;

        /// Aggregates per group of these labels (PromQL's `by`).
        by(labels: impl IntoIterator<Item = impl Into<String>>) => extend rule.by(labels.into_iter().map(Into::into));

        /// `value OP limit` makes an instance at least `severity`.
        threshold(severity: Severity, op: Comparison, limit: impl Into<Limit>) =>
            push rule.thresholds(Threshold { severity, op, value: limit.into() });

        /// Adds a prepared [`Threshold`].
        threshold_with(threshold: Threshold) => push rule.thresholds(threshold);

        /// A second condition every threshold needs: `expr OP limit` must hold
        /// for the same series (or `by` group) too; see [`AlsoCondition`].
        /// Replaces an earlier one. The builder's [`matcher`](Self::matcher)s
        /// apply to `expr` as well.
        ///
        /// ```
        /// use std::time::Duration;
        /// use vigil_alert::rule::Expr;
        /// use vigil_alert::{Aggregation, Comparison, Matcher, Rule, Selector, Severity};
        ///
        /// let ratio = |window| Expr::Ratio {
        ///     numerator: Selector::new("calls_total").matcher(Matcher::equal("result", "error")),
        ///     denominator: Selector::new("calls_total"),
        ///     ignoring: vec![],
        ///     window,
        /// };
        /// // Error ratio over 1h above 1.44 % and over 5m above 1.44 %.
        /// let rule = Rule::builder("ErrorBudgetBurn")
        ///     .expr(ratio(Duration::from_secs(3600)))
        ///     .aggregate(Aggregation::Sum)
        ///     .threshold(Severity::Critical, Comparison::Greater, 0.0144)
        ///     .also(ratio(Duration::from_secs(300)), Comparison::Greater, 0.0144)
        ///     .build()?;
        /// assert_eq!(rule.also.unwrap().expr.window(), Some(Duration::from_secs(300)));
        /// # Ok::<(), vigil_alert::Error>(())
        /// ```
        also(expr: Expr, op: Comparison, limit: f64) => rule.also = Some(AlsoCondition::new(expr, op, limit));

        /// Sets a prepared [`AlsoCondition`].
        also_with(condition: AlsoCondition) => rule.also = Some(condition);

        /// Hysteresis: once alerting, recover only when `value OP limit`.
        recover_when(op: Comparison, limit: f64) => rule.recover = Some(Recovery { op, value: limit });

        /// Hysteresis for `>` thresholds: recover only below `limit`.
        recover_below(limit: f64) => rule.recover = Some(Recovery { op: Comparison::Less, value: limit });

        /// Hysteresis for `<` thresholds: recover only above `limit`.
        recover_above(limit: f64) => rule.recover = Some(Recovery { op: Comparison::Greater, value: limit });

        /// Prometheus' `for`: how long a threshold must hold before firing.
        for_duration(duration: Duration) => rule.for_duration = duration;

        /// Prometheus' `keep_firing_for`.
        keep_firing_for(duration: Duration) => rule.keep_firing_for = duration;

        /// What a missing series means (default [`NoDataPolicy::Ok`]).
        no_data(policy: NoDataPolicy) => rule.no_data = policy;

        /// Adds a label to every alert of the rule.
        label(name: impl Into<String>, value: impl Into<String>) => extend rule.labels([(name.into(), value.into())]);

        /// Adds an annotation (may use `{{ $value }}`, `{{ $value | humanize }}`,
        /// `{{ $value | humanizePercentage }}`, `{{ $labels.name }}`).
        annotation(name: impl Into<String>, value: impl Into<String>) => extend rule.annotations([(name.into(), value.into())]);

        /// Sets the whole [`Escalation`].
        escalation(escalation: Escalation) => rule.escalate = Some(escalation);
    }

    crate::notify::setters! {
        /// Reads a gauge's current value.
        gauge(metric: impl Into<String>) => expr = Some(Expr::Gauge { metric: metric.into(), matchers: vec![] });

        /// Reads a counter's per-second rate over `window`.
        rate(metric: impl Into<String>, window: Duration) =>
            expr = Some(Expr::Rate { metric: metric.into(), matchers: vec![], window });

        /// Reads `rate(numerator) / rate(denominator)` over `window`, pairing
        /// series by all their labels (see [`ignoring`](Self::ignoring)).
        ratio(numerator: Selector, denominator: Selector, window: Duration) =>
            expr = Some(Expr::Ratio { numerator, denominator, ignoring: vec![], window });

        /// Reads a histogram statistic over `window`.
        histogram(metric: impl Into<String>, stat: HistogramStat, window: Duration) =>
            expr = Some(Expr::Histogram { metric: metric.into(), matchers: vec![], stat, window });
    }

    /// Reads the error rate of a counter with a `label`: the rate of
    /// `metric{label="error_value"}` over the rate of all `metric`, pairing
    /// series by their labels other than `label`. E.g.
    /// `.error_ratio("function_calls_total", "result", "error", 5 min)`.
    pub fn error_ratio(
        self,
        metric: impl Into<String>,
        label: impl Into<String>,
        error_value: impl Into<String>,
        window: Duration,
    ) -> Self {
        let (metric, label) = (metric.into(), label.into());
        let errors = Matcher::equal(label.clone(), error_value);
        let numerator = Selector::new(metric.clone()).matcher(errors);
        self.ratio(numerator, Selector::new(metric), window)
            .ignoring([label])
    }

    /// Labels dropped before pairing ratio series (PromQL's `ignoring`).
    /// Only meaningful after [`ratio`](Self::ratio).
    pub fn ignoring(mut self, labels: impl IntoIterator<Item = impl Into<String>>) -> Self {
        if let Some(Expr::Ratio { ignoring, .. }) = &mut self.expr {
            ignoring.extend(labels.into_iter().map(Into::into));
        }
        self
    }

    /// Reads a histogram's `q`-quantile over `window` (0.95 = p95).
    pub fn histogram_quantile(self, metric: impl Into<String>, q: f64, window: Duration) -> Self {
        self.histogram(metric, HistogramStat::Quantile(q), window)
    }

    /// Reads a histogram's mean over `window`.
    pub fn histogram_mean(self, metric: impl Into<String>, window: Duration) -> Self {
        self.histogram(metric, HistogramStat::Mean, window)
    }

    /// Reads a histogram's maximum over `window`.
    pub fn histogram_max(self, metric: impl Into<String>, window: Duration) -> Self {
        self.histogram(metric, HistogramStat::Max, window)
    }

    /// One alert instance per series (the default).
    pub fn per_series(self) -> Self {
        self.aggregate(Aggregation::PerSeries)
    }

    /// Escalates (raises the severity one step and notifies again) once an
    /// instance has fired unresolved for `after`.
    pub fn escalate_after(mut self, after: Duration) -> Self {
        self.escalation_mut().after = after;
        self
    }

    /// Also sends escalated alerts to `receiver`. Call after
    /// [`escalate_after`](Self::escalate_after).
    pub fn escalate_to(mut self, receiver: impl Into<String>) -> Self {
        self.escalation_mut().receiver = Some(receiver.into());
        self
    }

    /// The escalation so far; without one, one whose zero `after`
    /// `validate` reports unless set.
    fn escalation_mut(&mut self) -> &mut Escalation {
        let zero = || Escalation::after(Duration::ZERO);
        self.rule.escalate.get_or_insert_with(zero)
    }

    /// Writes `severity` as `label` in the `severity` label of this rule's
    /// alerts (and in `alerts_firing`, the history, matching and Prometheus
    /// export), e.g. `Severity::Medium` as `warning` for Alertmanager routes
    /// on `severity="warning"`. Without it a level is written with its own
    /// name (`medium`). The level still orders alerts. `build` reports a
    /// name that is empty, read as another level, or shared by two levels
    /// (see [`SeverityLabels`](crate::SeverityLabels)).
    ///
    /// ```
    /// use vigil_alert::{Comparison, Rule, Severity};
    ///
    /// let rule = Rule::builder("QueueBacklog")
    ///     .gauge("queue_depth")
    ///     .threshold(Severity::Medium, Comparison::Greater, 100.0)
    ///     .threshold(Severity::Critical, Comparison::Greater, 1000.0)
    ///     .severity_label(Severity::Medium, "warning")
    ///     .build()?;
    /// assert_eq!(rule.severity_label(Severity::Medium), "warning");
    /// assert!(Rule::builder("X")
    ///     .gauge("x")
    ///     .threshold(Severity::Low, Comparison::Greater, 1.0)
    ///     .severity_label(Severity::Low, "critical")
    ///     .build()
    ///     .is_err());
    /// # Ok::<(), vigil_alert::Error>(())
    /// ```
    pub fn severity_label(mut self, severity: Severity, label: impl Into<String>) -> Self {
        self.rule.severity_labels.set(severity, label);
        self
    }

    /// Checks and returns the rule.
    pub fn build(self) -> Result<Rule> {
        let mut rule = self.rule;
        let no_expr = "no value to read: call gauge, rate, ratio or histogram";
        match self.expr {
            Some(expr) => rule.expr = expr,
            None => rule.fail(Some(("expr", no_expr.into())))?,
        }
        let also_matchers = rule.also.iter_mut().flat_map(|a| a.expr.matchers_mut());
        for matchers in rule.expr.matchers_mut().chain(also_matchers) {
            matchers.extend(self.matchers.iter().cloned());
        }
        rule.validate()?;
        Ok(rule)
    }
}
