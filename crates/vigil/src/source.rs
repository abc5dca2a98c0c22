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
use vigil_alert::{HistogramStat as Stat, Labels, Matcher, Source};
use vigil_histogram::Window;

use crate::registry::Shared;
use crate::storage::{GaugeCell, HistogramSeries, Reader};

/// The series of one metric name: (labels, handle).
type Series<T> = Vec<(Labels, T)>;

/// Values by series, as the engine reads them.
type Read = Vec<(Labels, f64)>;

/// Counter totals with their series' ages, as the engine reads them.
type Aged = Vec<(Labels, f64, Option<Duration>)>;

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

/// Adds a series under its metric name.
fn index<T>(index: &mut HashMap<String, Series<T>>, key: &Key, series: T) {
    let series = (crate::summary::labels_of(key), series);
    index.entry(key.name().to_owned()).or_default().push(series);
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
        let mut counters = HashMap::new();
        shared.registry.visit_counters(|key, counter| {
            if !activity.is_hidden(MetricKind::Counter, counter) {
                let age = activity.registered_age(MetricKind::Counter, counter, now);
                index(&mut counters, key, (Arc::clone(counter), age));
            }
        });
        let mut gauges = HashMap::new();
        shared.registry.visit_gauges(|key, gauge| {
            if !activity.is_hidden(MetricKind::Gauge, gauge) {
                index(&mut gauges, key, Arc::clone(gauge));
            }
        });
        let mut histograms = HashMap::new();
        shared.registry.visit_histograms(|key, series| {
            if !activity.is_hidden(MetricKind::Histogram, series) {
                index(&mut histograms, key, Arc::clone(series));
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

    fn counters_with_age(&self, name: &str, matchers: &[Matcher]) -> Aged {
        select(&self.counters, name, matchers)
            .map(|(labels, (counter, age))| {
                let total = counter.load(Ordering::Relaxed) as f64;
                (labels.clone(), total, Some(*age))
            })
            .collect()
    }

    fn histograms(&self, name: &str, on: &[Matcher], window: Duration, stat: Stat) -> Read {
        let mut reader = self.reader.borrow_mut();
        select(&self.histograms, name, on)
            .filter_map(|(labels, series)| {
                let snapshot = reader.read(series, Window::Last(window));
                if snapshot.count() == 0 && stat != Stat::Count {
                    return None; // no data in the window: absent, not zero
                }
                let value = match stat {
                    Stat::Quantile(q) => snapshot.quantile(q),
                    Stat::Mean => snapshot.mean(),
                    Stat::Max => snapshot.max(),
                    Stat::Count => snapshot.count() as f64,
                };
                Some((labels.clone(), value))
            })
            .collect()
    }
}
