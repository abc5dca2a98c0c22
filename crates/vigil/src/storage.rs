//! What one series of the registry is made of: counters and gauges are
//! single atomics (as in `metrics-util`'s `AtomicStorage`), histograms are
//! `vigil-histogram` histograms (per-thread shards, windowed + cumulative).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use metrics::atomics::AtomicU64;
use std::sync::atomic::Ordering;

use metrics::{GaugeFn, HistogramFn, Key};
use metrics_exporter_prometheus::Matcher;
use vigil_histogram::{Config, Histogram, Snapshot, Window};

use crate::recorder::bucket_bounds;

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

/// A gauge: its value (f64 bits) and how many writes it has seen, so a
/// gauge set to the same value over and over counts as active (idle expiry
/// compares the write count, not the value).
#[derive(Debug)]
pub(crate) struct GaugeCell {
    bits: AtomicU64,
    writes: AtomicU64,
}

impl GaugeCell {
    fn new() -> Self {
        Self {
            bits: AtomicU64::new(0.0f64.to_bits()),
            writes: AtomicU64::new(0),
        }
    }

    /// The current value.
    pub(crate) fn value(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// Writes so far.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    fn update(&self, f: impl Fn(f64) -> f64) {
        let _ = self
            .bits
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |bits| {
                Some(f(f64::from_bits(bits)).to_bits())
            });
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.update(|current| current + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|current| current - value);
    }

    fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Ordering::Release);
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
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
}

impl Storage {
    pub(crate) fn new(default: Config, by_name: Vec<(Matcher, Config)>) -> Self {
        Self {
            default,
            by_name,
            buckets: Vec::new(),
            bucketed: Mutex::new(HashMap::new()),
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

    fn gauge(&self, _: &Key) -> Self::Gauge {
        Arc::new(GaugeCell::new())
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
