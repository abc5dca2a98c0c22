//! What one series of the registry is made of: counters and gauges are
//! single atomics (as in `metrics-util`'s `AtomicStorage`), histograms are
//! `vigil-histogram` histograms (per-thread shards, windowed + cumulative).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::atomics::AtomicU64;
use std::sync::atomic::Ordering;

use metrics::{HistogramFn, Key};
use metrics_exporter_prometheus::Matcher;
use metrics_util::registry::{Generational, GenerationalAtomicStorage};
use vigil_histogram::{Config, Histogram, Snapshot, Window};

use crate::registry::bucket_bounds;

/// A histogram series: the recording side of a `vigil-histogram`.
#[derive(Debug)]
pub(crate) struct HistogramSeries(pub(crate) Histogram);

impl HistogramFn for HistogramSeries {
    // Hot path: one `record_f64` (index computation + relaxed load/store
    // on this thread's own shard); no lock, no locked instruction, no clock
    // read, no allocation once the bucket's page exists.
    #[inline]
    fn record(&self, value: f64) {
        self.0.record_f64(value);
    }

    fn record_many(&self, value: f64, count: usize) {
        self.0
            .record_f64_n(value, u64::try_from(count).unwrap_or(u64::MAX));
    }
}

/// Snapshot buffers reused by every histogram read of a scrape, summary
/// or alert tick: each read refills them, so reading many series
/// allocates about once.
#[derive(Debug, Default)]
pub(crate) struct Reader(Vec<Snapshot>);

impl Reader {
    /// `series` over `window`, in the reused buffer.
    pub(crate) fn read(&mut self, series: &HistogramSeries, window: Window) -> &Snapshot {
        &self.read_all(series, &[window])[0]
    }

    /// `series` over each of `windows`, reading its live shards once.
    pub(crate) fn read_all(&mut self, series: &HistogramSeries, windows: &[Window]) -> &[Snapshot] {
        while self.0.len() < windows.len() {
            // The first read only: a buffer of the right shape to refill.
            self.0.push(series.0.snapshot(Window::Cumulative));
        }
        let outs = &mut self.0[..windows.len()];
        series.0.snapshots_into(windows, outs);
        outs
    }
}

/// A gauge: its value (f64 bits, written through `metrics`' own
/// `GaugeFn` for `AtomicU64`) inside `metrics-util`'s
/// [`Generational`], which counts its writes, so a gauge set to the same
/// value over and over counts as active (idle expiry compares the write
/// count, not the value).
pub(crate) type GaugeCell = Generational<Arc<AtomicU64>>;

/// The current value of a gauge.
pub(crate) fn gauge_value(gauge: &GaugeCell) -> f64 {
    f64::from_bits(gauge.get_inner().load(Ordering::Relaxed))
}

/// Creates the storage of new series; histograms take the configuration of
/// the first matcher that matches their name, or the default.
#[derive(Debug)]
pub(crate) struct Storage {
    pub(crate) default: Config,
    pub(crate) by_name: Vec<(Matcher, Config)>,
    /// The `buckets` matchers of the settings: histograms rendered as
    /// classic buckets keep their counts at those bounds exact
    /// ([`Config::exact_bounds`]).
    pub(crate) buckets: Vec<(Matcher, Vec<f64>)>,
    /// The config of each bucketed metric name, built once so its series
    /// share one table of exact bounds.
    bucketed: Mutex<HashMap<String, Config>>,
    /// Makes gauges: atomics with a write count.
    gauges: GenerationalAtomicStorage,
}

impl Storage {
    pub(crate) fn new(default: Config, by_name: Vec<(Matcher, Config)>) -> Self {
        Self {
            default,
            by_name,
            buckets: Vec::new(),
            bucketed: Mutex::new(HashMap::new()),
            gauges: GenerationalAtomicStorage::atomic(),
        }
    }

    /// The config a new series of `name` is built with: its matcher's (or
    /// the default), with exact bounds where it renders as buckets.
    fn series_config(&self, name: &str) -> Config {
        let Some(bounds) = bucket_bounds(&self.buckets, name) else {
            return self.config_for(name).clone();
        };
        self.bucketed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_insert_with(|| self.config_for(name).clone().exact_bounds(&bounds))
            .clone()
    }

    pub(crate) fn config_for(&self, name: &str) -> &Config {
        self.by_name
            .iter()
            .find(|(matcher, _)| matcher.matches(name))
            .map_or(&self.default, |(_, config)| config)
    }
}

impl metrics_util::registry::Storage<Key> for Storage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<GaugeCell>;
    type Histogram = Arc<HistogramSeries>;

    fn counter(&self, _: &Key) -> Self::Counter {
        Arc::new(AtomicU64::new(0))
    }

    fn gauge(&self, key: &Key) -> Self::Gauge {
        Arc::new(self.gauges.gauge(key))
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        // Every configuration was validated by the builder, so `build` only
        // fails if that validation and this call disagree; fall back to the
        // defaults rather than lose the series.
        let histogram = self
            .series_config(key.name())
            .build()
            .unwrap_or_else(|_| Histogram::new());
        Arc::new(HistogramSeries(histogram))
    }
}
