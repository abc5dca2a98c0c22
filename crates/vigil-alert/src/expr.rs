//! Expression evaluation: the small part of PromQL that rules use.
//!
//! Reads one [`Expr`] from a [`Source`] at a given time and turns raw
//! series into readings: counter totals into rates over the rule's window
//! (a decrease is a counter reset, as in Prometheus), two counters' rates
//! into a ratio (`rate(a[w]) / ignoring(..) rate(b[w])`, or
//! `sum by (..)(rate(a[w])) / sum by (..)(rate(b[w]))` for a summed ratio),
//! and series into one reading per `by` group (`sum`, `max`, `min`, `avg`).
//! Counter samples are kept per series for the window and dropped once a
//! series has had no sample for a whole window.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::time::elapsed;
use crate::{Aggregation, Expr, Labels, Rule, Source};

/// One series' (or group's) reading in one evaluation: its value, or
/// `None` when it is present but a rate needs one more sample (which
/// changes nothing).
pub(crate) type Reading = Option<f64>;

/// Counter samples per series.
pub(crate) type Series = HashMap<Labels, Samples>;

/// Counter samples of one expression: [rate or numerator, denominator].
pub(crate) type Counters = [Series; 2];

/// The (time, value) samples of one series within a trailing window,
/// oldest first: a counter's totals for its rate, or a rule's values for
/// a dynamic threshold ([`Baseline`](crate::Baseline)).
#[derive(Clone, Debug, Default)]
pub(crate) struct Samples(pub(crate) VecDeque<(SystemTime, f64)>);

impl Samples {
    /// Records `value` at `now` (replacing one recorded at the same
    /// instant, and the whole history if the clock went back), then keeps
    /// the samples within `window`, at most `max` of them.
    pub(crate) fn push(&mut self, now: SystemTime, value: f64, window: Duration, max: usize) {
        match self.0.back() {
            Some((t, _)) if *t > now => self.0.clear(),
            Some((t, _)) if *t == now => drop(self.0.pop_back()),
            _ => {}
        }
        self.0.push_back((now, value));
        let from = now.checked_sub(window);
        let old = |(t, _): &(SystemTime, f64)| from.is_some_and(|from| *t < from);
        while self.0.len() > max || self.0.front().is_some_and(old) {
            self.0.pop_front();
        }
    }

    /// Records a counter's total and returns its rate over `window`.
    fn rate(&mut self, now: SystemTime, total: f64, window: Duration) -> Reading {
        self.push(now, total, window, usize::MAX);
        let span = elapsed(now, self.0[0].0).as_secs_f64();
        if span <= 0.0 {
            return None;
        }
        let totals = || self.0.iter().map(|(_, v)| *v);
        // A drop means the counter restarted from zero (Prometheus).
        let step = |(p, v): (f64, f64)| if v >= p { v - p } else { v };
        let increase: f64 = totals().zip(totals().skip(1)).map(step).sum();
        Some(increase / span)
    }
}

/// Drops the series without a sample in the `window` up to `now`.
pub(crate) fn prune(series: &mut HashMap<Labels, Samples>, now: SystemTime, window: Duration) {
    if let Some(from) = now.checked_sub(window) {
        series.retain(|_, s| s.0.back().is_some_and(|(t, _)| *t >= from));
    }
}

/// Reads one expression of a rule (its own or its `also`).
pub(crate) struct ExprReader<'a> {
    /// The rule, whose `aggregate` and `by` apply.
    pub rule: &'a Rule,
    /// The evaluation's time.
    pub now: SystemTime,
    /// Where series are read.
    pub source: &'a dyn Source,
}

impl ExprReader<'_> {
    /// The readings of `expr`, per series or aggregated, sampling counters
    /// into `counters`.
    pub(crate) fn read(&self, expr: &Expr, counters: &mut Counters) -> Vec<(Labels, Reading)> {
        let finite = |series: Vec<(Labels, f64)>| -> Vec<_> {
            let series = series.into_iter().filter(|(_, v)| !v.is_nan());
            series.map(|(labels, v)| (labels, Some(v))).collect()
        };
        let source = self.source;
        let readings = match expr {
            Expr::Gauge { metric, matchers } => finite(source.gauges(metric, matchers)),
            Expr::Histogram {
                metric,
                matchers,
                stat,
                window,
            } => finite(source.histograms(metric, matchers, *window, *stat)),
            Expr::Rate {
                metric,
                matchers,
                window,
            } => self.rates(&mut counters[0], metric, matchers, *window),
            Expr::Ratio {
                numerator: num,
                denominator: den,
                ignoring,
                window,
            } => {
                let [num_series, den_series] = counters;
                let num = self.rates(num_series, &num.metric, &num.matchers, *window);
                let den = self.rates(den_series, &den.metric, &den.matchers, *window);
                if self.rule.aggregate == Aggregation::Sum {
                    // A new error series has no rate yet; the others still count.
                    return ratio(&num, &den, |l| only(l, |n| self.rule.by.contains(n)), false);
                }
                ratio(&num, &den, |l| only(l, |n| !ignoring.contains(n)), true)
            }
        };
        match self.rule.aggregate {
            Aggregation::PerSeries => readings,
            op => aggregate(readings, op, &self.rule.by),
        }
    }

    /// The rates of the counters `metric{matchers}`; drops the samples
    /// of series without one in the last window.
    fn rates(
        &self,
        series: &mut Series,
        metric: &str,
        matchers: &[crate::Matcher],
        window: Duration,
    ) -> Vec<(Labels, Reading)> {
        let counters = self.source.counters_with_age(metric, matchers).into_iter();
        let rates = counters
            .filter(|(_, total, _)| !total.is_nan())
            .map(|(labels, total, age)| {
                let reading = counter_rate(series, &labels, self.now, (total, age), window);
                (labels, reading)
            })
            .collect();
        prune(series, self.now, window);
        rates
    }
}

/// The rate of one counter series, from its total (and age, see
/// [`Source::counters_with_age`]) at `now`.
fn counter_rate(
    series: &mut Series,
    labels: &Labels,
    now: SystemTime,
    (total, age): (f64, Option<Duration>),
    window: Duration,
) -> Reading {
    let s = match series.get_mut(labels) {
        Some(s) => s,
        None => {
            // A series created at 0 within the window: that is its first
            // sample, so what it counted before this read is in the rate.
            let born = age
                .filter(|age| *age <= window)
                .and_then(|age| now.checked_sub(age));
            let samples = born.map(|born| (born, 0.0)).into_iter().collect();
            series.entry(labels.clone()).or_insert(Samples(samples))
        }
    };
    s.rate(now, total, window)
}

/// The labels of a series whose names `keep` accepts.
fn only(labels: &Labels, keep: impl Fn(&String) -> bool) -> Labels {
    let mut key = labels.clone();
    key.retain(|name, _| keep(name));
    key
}

/// Per key: sum(num) / sum(den). A key without a denominator series has
/// no data; nor has a zero denominator (0/0, no traffic). A warming
/// denominator makes its key warm up; a warming numerator too if
/// `num_warming`, else it is left out of the sum.
fn ratio(
    num: &[(Labels, Reading)],
    den: &[(Labels, Reading)],
    key: impl Fn(&Labels) -> Labels,
    num_warming: bool,
) -> Vec<(Labels, Reading)> {
    // Per key: summed numerator, summed denominator, warming up.
    let mut pairs: HashMap<Labels, (f64, f64, bool)> = HashMap::new();
    for (labels, reading) in den {
        let p = pairs.entry(key(labels)).or_default();
        p.1 += reading.unwrap_or(0.0);
        p.2 |= reading.is_none();
    }
    for (labels, reading) in num {
        if let Some(p) = pairs.get_mut(&key(labels)) {
            p.0 += reading.unwrap_or(0.0);
            p.2 |= reading.is_none() && num_warming;
        }
    }
    let reading = |(key, (num, den, warming)): (Labels, (f64, f64, bool))| match warming {
        true => Some((key, None)),
        false => (den > 0.0).then(|| (key, Some(num / den))),
    };
    pairs.into_iter().filter_map(reading).collect()
}

/// One reading per `by` group (one group without `by`) of per-series
/// readings. A group whose series are all warming up is warming up.
fn aggregate(
    readings: Vec<(Labels, Reading)>,
    op: Aggregation,
    by: &[String],
) -> Vec<(Labels, Reading)> {
    let mut groups: HashMap<Labels, Vec<f64>> = HashMap::new();
    for (labels, r) in readings {
        let values = groups.entry(only(&labels, |n| by.contains(n))).or_default();
        values.extend(r);
    }
    let reading = |values: Vec<f64>| match op {
        _ if values.is_empty() => None,
        Aggregation::Sum | Aggregation::PerSeries => Some(values.iter().sum()),
        Aggregation::Max => Some(values.into_iter().fold(f64::NEG_INFINITY, f64::max)),
        Aggregation::Min => Some(values.into_iter().fold(f64::INFINITY, f64::min)),
        Aggregation::Avg => Some(values.iter().sum::<f64>() / values.len() as f64),
    };
    groups
        .into_iter()
        .map(|(key, values)| (key, reading(values)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn counter_rate_needs_two_samples_and_handles_resets() {
        let mut s = Samples::default();
        let w = Duration::from_secs(300);
        assert_eq!(s.rate(at(0), 100.0, w), None);
        assert_eq!(s.rate(at(60), 160.0, w), Some(1.0));
        // Restart: the total drops to 30, so 30 new events since the reset.
        assert_eq!(s.rate(at(120), 30.0, w), Some(90.0 / 120.0));
        // Re-evaluating at the same instant replaces the sample.
        assert_eq!(s.rate(at(120), 90.0, w), Some(150.0 / 120.0));
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
            Some(10.0)
        );
        assert_eq!(
            counter_rate(&mut series, &labels, at(70), (200.0, None), w),
            Some(10.0)
        );
        // Older than the window, or of unknown age: its first total is
        // where it starts.
        for first in [(100.0, Some(Duration::from_secs(301))), (100.0, None)] {
            let mut series = HashMap::new();
            assert_eq!(counter_rate(&mut series, &labels, at(400), first, w), None);
        }
    }

    #[test]
    fn counter_rate_only_looks_at_the_window() {
        let mut s = Samples::default();
        let w = Duration::from_secs(60);
        s.rate(at(0), 0.0, w);
        s.rate(at(60), 600.0, w); // 10/s
        assert_eq!(s.rate(at(120), 660.0, w), Some(1.0));
    }

    #[test]
    fn aggregation_ops() {
        let mk = || {
            vec![
                (crate::labels([("a", "1"), ("g", "x")]), Some(1.0)),
                (crate::labels([("a", "2"), ("g", "x")]), Some(3.0)),
                (crate::labels([("a", "3"), ("g", "y")]), None),
            ]
        };
        for (op, want) in [
            (Aggregation::Sum, 4.0),
            (Aggregation::Max, 3.0),
            (Aggregation::Min, 1.0),
            (Aggregation::Avg, 2.0),
        ] {
            let r = aggregate(mk(), op, &[]);
            assert_eq!(r, vec![(Labels::new(), Some(want))], "{op:?}");
        }
        let mut r = aggregate(mk(), Aggregation::Sum, &["g".to_owned()]);
        r.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            r,
            vec![
                (crate::labels([("g", "x")]), Some(4.0)),
                (crate::labels([("g", "y")]), None),
            ]
        );
    }
}
