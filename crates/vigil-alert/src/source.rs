//! Where rules read their values: the [`Source`] trait and the in-memory
//! [`MemorySource`] used by tests and examples.
//!
//! The engine asks a source for raw series (a gauge's value, a counter's
//! running total, a histogram statistic over a window) and does the rest
//! itself: counter rates, ratios, aggregation, baselines. So a source is a
//! thin read of a metrics registry; the `vigil` facade implements it over
//! its registry.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;
use crate::labels::{Labels, Matcher, matches_all};

/// How the engine reads series. Implementations filter by name and
/// matchers (see [`Matcher::matches`]) and return one entry per matching
/// series, in any order, with finite values where they have them (a `NaN`
/// is treated as a missing series).
///
/// Called once per rule (twice for a ratio) per evaluation, on the
/// evaluation thread: reads may take locks but should not block for long.
pub trait Source {
    /// Gauges named `name` whose labels match all `matchers`: (labels, current value).
    fn gauges(&self, name: &str, matchers: &[Matcher]) -> Vec<(Labels, f64)>;

    /// Counters named `name` whose labels match all `matchers`: (labels,
    /// running total). The engine derives rates from successive totals and
    /// treats a decrease as a counter reset, like Prometheus.
    fn counters(&self, name: &str, matchers: &[Matcher]) -> Vec<(Labels, f64)>;

    /// [`counters`](Source::counters), each with how long ago the series
    /// was created at 0 when the source knows it (`None` otherwise, the
    /// default). The first time the engine sees a series whose age is
    /// within a rule's window, it takes (now - age, 0) as the series'
    /// first sample, so the increase a young series made before it was
    /// first read counts in its rate (over its age, not over the time
    /// since that read). Without an age, a series' first total is its
    /// starting point, as in Prometheus.
    fn counters_with_age(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Vec<(Labels, f64, Option<Duration>)> {
        self.counters(name, matchers)
            .into_iter()
            .map(|(labels, total)| (labels, total, None))
            .collect()
    }

    /// A statistic of each matching histogram series over the trailing
    /// `window`: (labels, value). Series without samples in the window
    /// should be left out (or reported as `NaN`).
    fn histograms(
        &self,
        name: &str,
        matchers: &[Matcher],
        window: Duration,
        stat: HistogramStat,
    ) -> Vec<(Labels, f64)>;
}

/// Which statistic of a histogram a rule reads.
///
/// Written as `p95`, `p99.9` (a quantile, in percent), `mean` (alias
/// `avg`), `max` or `count` in config and by [`Display`](fmt::Display).
///
/// ```
/// use vigil_alert::HistogramStat;
///
/// assert_eq!("p99.9".parse::<HistogramStat>()?, HistogramStat::Quantile(0.999));
/// assert_eq!(HistogramStat::Quantile(0.5).to_string(), "p50");
/// assert_eq!("mean".parse::<HistogramStat>()?, HistogramStat::Mean);
/// # Ok::<(), vigil_alert::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HistogramStat {
    /// The `q`-quantile, `0.0 ..= 1.0` (0.95 = p95).
    Quantile(f64),
    /// The arithmetic mean of the samples.
    Mean,
    /// The largest sample.
    Max,
    /// The number of samples.
    Count,
}

impl fmt::Display for HistogramStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Rounded to 6 decimals of a percent so 0.999 prints as p99.9,
            // not p99.89999999999999.
            HistogramStat::Quantile(q) => write!(f, "p{}", (q * 100.0 * 1e6).round() / 1e6),
            HistogramStat::Mean => f.write_str("mean"),
            HistogramStat::Max => f.write_str("max"),
            HistogramStat::Count => f.write_str("count"),
        }
    }
}

impl FromStr for HistogramStat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::Parse {
            what: "histogram statistic",
            value: s.to_owned(),
            expected: "p<percent> (p50, p99.9), mean, avg, max or count",
        };
        let percent = |p: &str| p.parse().ok().filter(|p| (0.0..=100.0).contains(p));
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "mean" | "avg" => HistogramStat::Mean,
            "max" => HistogramStat::Max,
            "count" => HistogramStat::Count,
            // Integer division gives the nearest f64 to the decimal, so
            // "p99.9" is exactly the literal 0.999.
            other => {
                let percent: f64 = other.strip_prefix('p').and_then(percent).ok_or_else(bad)?;
                HistogramStat::Quantile((percent * 1e7).round() / 1e9)
            }
        })
    }
}

crate::labels::serde_as_text!(
    HistogramStat,
    "a histogram statistic: p<percent> (p50, p99.9), mean, avg, max or count"
);

/// An in-memory [`Source`]: set gauges, counter totals and histogram
/// statistics per (name, labels), then evaluate rules against it.
///
/// Histogram statistics are returned as set, whatever the window asked for.
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::{labels, HistogramStat, Labels, Matcher, MemorySource, Source};
///
/// let mut source = MemorySource::new();
/// source.set_gauge("queue_depth", [("queue", "emails")], 12.0);
/// source.add_counter("requests_total", Labels::new(), 5.0);
/// source.set_histogram("latency_seconds", [("route", "/")], HistogramStat::Quantile(0.99), 0.25);
///
/// let depth = source.gauges("queue_depth", &[Matcher::equal("queue", "emails")]);
/// assert_eq!(depth, vec![(labels([("queue", "emails")]), 12.0)]);
/// let p99 = source.histograms("latency_seconds", &[], Duration::from_secs(60), HistogramStat::Quantile(0.99));
/// assert_eq!(p99[0].1, 0.25);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    /// Per (kind, name), each series' value; the kind is `gauge`,
    /// `counter` or a histogram statistic as written (`p99`, `mean`).
    series: BTreeMap<(String, String), BTreeMap<Labels, f64>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a gauge series' current value.
    pub fn set_gauge<I, K, V>(&mut self, name: &str, labels: I, value: f64)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        *self.slot("gauge", name, crate::labels(labels)) = value;
    }

    /// Sets a counter series' running total (set it lower than before to
    /// simulate a process restart: a counter reset).
    pub fn set_counter<I, K, V>(&mut self, name: &str, labels: I, total: f64)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        *self.slot("counter", name, crate::labels(labels)) = total;
    }

    /// Adds `delta` to a counter series' total (creating it at 0).
    pub fn add_counter<I, K, V>(&mut self, name: &str, labels: I, delta: f64)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        *self.slot("counter", name, crate::labels(labels)) += delta;
    }

    /// Sets one statistic of a histogram series.
    pub fn set_histogram<I, K, V>(&mut self, name: &str, labels: I, stat: HistogramStat, value: f64)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        *self.slot(&stat.to_string(), name, crate::labels(labels)) = value;
    }

    /// Removes a series of any kind (gauge, counter or histogram) named
    /// `name` with exactly these labels; the engine then sees it as absent.
    pub fn remove<I, K, V>(&mut self, name: &str, labels: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let labels = crate::labels(labels);
        for (_, series) in self.series.iter_mut().filter(|((_, n), _)| n == name) {
            series.remove(&labels);
        }
    }

    /// Removes every series.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// The value of the series, created at 0.
    fn slot(&mut self, kind: &str, name: &str, labels: Labels) -> &mut f64 {
        let series = self.series.entry((kind.to_owned(), name.to_owned()));
        series.or_default().entry(labels).or_default()
    }

    /// The series of one kind named `name` whose labels match.
    fn select(&self, kind: &str, name: &str, matchers: &[Matcher]) -> Vec<(Labels, f64)> {
        let series = self.series.get(&(kind.to_owned(), name.to_owned()));
        let matching = series.into_iter().flatten();
        let matching = matching.filter(|(labels, _)| matches_all(matchers, labels));
        matching.map(|(labels, v)| (labels.clone(), *v)).collect()
    }
}

impl Source for MemorySource {
    fn gauges(&self, name: &str, matchers: &[Matcher]) -> Vec<(Labels, f64)> {
        self.select("gauge", name, matchers)
    }

    fn counters(&self, name: &str, matchers: &[Matcher]) -> Vec<(Labels, f64)> {
        self.select("counter", name, matchers)
    }

    fn histograms(
        &self,
        name: &str,
        matchers: &[Matcher],
        _window: Duration,
        stat: HistogramStat,
    ) -> Vec<(Labels, f64)> {
        self.select(&stat.to_string(), name, matchers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_stat_text_round_trips() {
        for (text, stat) in [
            ("p50", HistogramStat::Quantile(0.5)),
            ("p95", HistogramStat::Quantile(0.95)),
            ("p99", HistogramStat::Quantile(0.99)),
            ("p99.9", HistogramStat::Quantile(0.999)),
            ("p99.99", HistogramStat::Quantile(0.9999)),
            ("p0", HistogramStat::Quantile(0.0)),
            ("p100", HistogramStat::Quantile(1.0)),
            ("mean", HistogramStat::Mean),
            ("max", HistogramStat::Max),
            ("count", HistogramStat::Count),
        ] {
            assert_eq!(text.parse::<HistogramStat>().unwrap(), stat, "{text}");
            assert_eq!(stat.to_string(), text);
        }
        assert_eq!("AVG".parse::<HistogramStat>().unwrap(), HistogramStat::Mean);
        for bad in ["p", "p101", "q95", "median", "p-1"] {
            assert!(bad.parse::<HistogramStat>().is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_source_filters_by_name_and_matchers() {
        let mut s = MemorySource::new();
        s.set_gauge("cpu", [("host", "a")], 0.5);
        s.set_gauge("cpu", [("host", "b")], 0.7);
        s.set_gauge("mem", [("host", "a")], 0.1);
        s.set_counter("cpu", [("host", "b")], 3.0);
        assert_eq!(s.gauges("cpu", &[]).len(), 2);
        let b = s.gauges("cpu", &[Matcher::equal("host", "b")]);
        assert_eq!(b, vec![(crate::labels([("host", "b")]), 0.7)]);
        assert!(s.gauges("disk", &[]).is_empty());
        s.remove("cpu", [("host", "b")]);
        assert_eq!(s.gauges("cpu", &[]).len(), 1);
        // Every kind of the series goes.
        assert!(s.counters("cpu", &[]).is_empty());
    }

    #[test]
    fn memory_source_counts_up_and_resets() {
        let mut s = MemorySource::new();
        s.add_counter("calls_total", [("result", "ok")], 3.0);
        s.add_counter("calls_total", [("result", "ok")], 2.0);
        assert_eq!(s.counters("calls_total", &[])[0].1, 5.0);
        s.set_counter("calls_total", [("result", "ok")], 1.0);
        assert_eq!(s.counters("calls_total", &[])[0].1, 1.0);
    }

    #[test]
    fn memory_source_returns_only_the_stat_asked_for() {
        let mut s = MemorySource::new();
        let w = Duration::from_secs(60);
        s.set_histogram("lat", Labels::new(), HistogramStat::Quantile(0.99), 2.0);
        s.set_histogram("lat", Labels::new(), HistogramStat::Mean, 1.0);
        assert_eq!(
            s.histograms("lat", &[], w, HistogramStat::Quantile(0.99))[0].1,
            2.0
        );
        assert_eq!(s.histograms("lat", &[], w, HistogramStat::Mean)[0].1, 1.0);
        assert!(s.histograms("lat", &[], w, HistogramStat::Max).is_empty());
        assert!(
            s.histograms("lat", &[], w, HistogramStat::Quantile(0.5))
                .is_empty()
        );
    }
}
