//! The registry as the alert engine's [`Source`]: every rule reads the
//! same series the exposition and the JSON summary show.
//!
//! Built once per evaluation tick: one pass over the registry indexes the
//! series by metric name, so each rule then looks at the series of its own
//! metric only, never at the whole registry.
//!
//! Counters count from 0 at their registration here as in the summary:
//! each counter is reported with its age (see
//! [`Activity::registered_age`](crate::activity::Activity::registered_age)),
//! so the engine takes the first rate of a young series from its
//! registration at 0, and an error-ratio rule fires on a burst of errors
//! in a series' first second, at the ratio the series really has.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics::Key;
use metrics::atomics::AtomicU64;
use metrics_util::MetricKind;
use vigil_alert::{HistogramStat, Labels, Matcher, Source};
use vigil_histogram::Window;

use crate::registry::Shared;
use crate::storage::{GaugeCell, HistogramSeries, Reader};

/// The series of one metric name: (labels, handle).
type Series<T> = Vec<(Labels, T)>;

/// A counter and how long ago it was registered at 0.
type CounterSeries = (Arc<AtomicU64>, Duration);

/// A read-only view of the registry at one tick.
pub(crate) struct RegistrySource {
    counters: HashMap<String, Series<CounterSeries>>,
    gauges: HashMap<String, Series<Arc<GaugeCell>>>,
    histograms: HashMap<String, Series<Arc<HistogramSeries>>>,
    /// One snapshot buffer reused by every histogram read of the tick.
    reader: RefCell<Reader>,
}

fn labels_of(key: &Key) -> Labels {
    key.labels()
        .map(|label| (label.key().to_owned(), label.value().to_owned()))
        .collect()
}

impl RegistrySource {
    /// Indexes the visible series (hidden idle ones are left out, as they
    /// are from the exposition).
    pub(crate) fn new(shared: &Shared) -> Self {
        let activity = shared
            .activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = shared.settings.clock.now();
        let mut counters: HashMap<String, Series<_>> = HashMap::new();
        shared.registry.visit_counters(|key, counter| {
            if !activity.is_hidden(MetricKind::Counter, counter) {
                let age = activity.registered_age(MetricKind::Counter, counter, now);
                counters
                    .entry(key.name().to_owned())
                    .or_default()
                    .push((labels_of(key), (Arc::clone(counter), age)));
            }
        });
        let mut gauges: HashMap<String, Series<_>> = HashMap::new();
        shared.registry.visit_gauges(|key, gauge| {
            if !activity.is_hidden(MetricKind::Gauge, gauge) {
                gauges
                    .entry(key.name().to_owned())
                    .or_default()
                    .push((labels_of(key), Arc::clone(gauge)));
            }
        });
        let mut histograms: HashMap<String, Series<_>> = HashMap::new();
        shared.registry.visit_histograms(|key, series| {
            if !activity.is_hidden(MetricKind::Histogram, series) {
                histograms
                    .entry(key.name().to_owned())
                    .or_default()
                    .push((labels_of(key), Arc::clone(series)));
            }
        });
        Self {
            counters,
            gauges,
            histograms,
            reader: RefCell::new(Reader::default()),
        }
    }
}

fn select<'a, T>(
    index: &'a HashMap<String, Series<T>>,
    name: &str,
    matchers: &'a [Matcher],
) -> impl Iterator<Item = &'a (Labels, T)> {
    index
        .get(name)
        .into_iter()
        .flatten()
        .filter(move |(labels, _)| matchers.iter().all(|m| m.matches(labels)))
}

impl Source for RegistrySource {
    fn gauges(&self, name: &str, matchers: &[Matcher]) -> Vec<(Labels, f64)> {
        select(&self.gauges, name, matchers)
            .map(|(labels, gauge)| (labels.clone(), crate::storage::gauge_value(gauge)))
            .collect()
    }

    fn counters(&self, name: &str, matchers: &[Matcher]) -> Vec<(Labels, f64)> {
        select(&self.counters, name, matchers)
            .map(|(labels, (counter, _))| (labels.clone(), counter.load(Ordering::Relaxed) as f64))
            .collect()
    }

    fn counters_with_age(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Vec<(Labels, f64, Option<Duration>)> {
        select(&self.counters, name, matchers)
            .map(|(labels, (counter, age))| {
                let total = counter.load(Ordering::Relaxed) as f64;
                (labels.clone(), total, Some(*age))
            })
            .collect()
    }

    fn histograms(
        &self,
        name: &str,
        matchers: &[Matcher],
        window: Duration,
        stat: HistogramStat,
    ) -> Vec<(Labels, f64)> {
        let mut reader = self.reader.borrow_mut();
        select(&self.histograms, name, matchers)
            .filter_map(|(labels, series)| {
                let snapshot = reader.read(series, Window::Last(window));
                if snapshot.count() == 0 && stat != HistogramStat::Count {
                    return None; // no data in the window: absent, not zero
                }
                let value = match stat {
                    HistogramStat::Quantile(q) => snapshot.quantile(q),
                    HistogramStat::Mean => snapshot.mean(),
                    HistogramStat::Max => snapshot.max(),
                    HistogramStat::Count => snapshot.count() as f64,
                };
                Some((labels.clone(), value))
            })
            .collect()
    }
}
