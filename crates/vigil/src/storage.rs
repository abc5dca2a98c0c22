//! What one series of the registry is made of: counters and gauges are
//! single atomics (as in `metrics-util`'s `AtomicStorage`), histograms are
//! `vigil-histogram` histograms (per-thread shards, windowed + cumulative).

use std::sync::Arc;

use metrics::atomics::AtomicU64;
use metrics::{HistogramFn, Key};
use metrics_exporter_prometheus::Matcher;
use vigil_histogram::{Config, Histogram};

/// A histogram series: the recording side of a `vigil-histogram`.
#[derive(Debug)]
pub(crate) struct HistogramSeries(pub(crate) Histogram);

impl HistogramFn for HistogramSeries {
    // Hot path: one `record_f64` (index computation + two relaxed adds on
    // this thread's shard); no lock, no allocation, no clock read.
    #[inline]
    fn record(&self, value: f64) {
        self.0.record_f64(value);
    }

    fn record_many(&self, value: f64, count: usize) {
        for _ in 0..count {
            self.0.record_f64(value);
        }
    }
}

/// Creates the storage of new series; histograms take the configuration of
/// the first matcher that matches their name, or the default.
#[derive(Debug)]
pub(crate) struct Storage {
    pub(crate) default: Config,
    pub(crate) by_name: Vec<(Matcher, Config)>,
}

impl Storage {
    pub(crate) fn config_for(&self, name: &str) -> &Config {
        self.by_name
            .iter()
            .find(|(matcher, _)| matcher.matches(name))
            .map_or(&self.default, |(_, config)| config)
    }
}

impl metrics_util::registry::Storage<Key> for Storage {
    type Counter = Arc<AtomicU64>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<HistogramSeries>;

    fn counter(&self, _: &Key) -> Self::Counter {
        Arc::new(AtomicU64::new(0))
    }

    fn gauge(&self, _: &Key) -> Self::Gauge {
        Arc::new(AtomicU64::new(0.0f64.to_bits()))
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        // Every configuration was validated by the builder, so `build` only
        // fails if that validation and this call disagree; fall back to the
        // defaults rather than lose the series.
        let histogram = self
            .config_for(key.name())
            .clone()
            .build()
            .unwrap_or_else(|_| Histogram::new());
        Arc::new(HistogramSeries(histogram))
    }
}
