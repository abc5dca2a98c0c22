//! vigil's `metrics::Recorder`: registrations go to the registry
//! ([`Shared`]) and, with [`layer`](crate::MonitorBuilder::layer), unchanged
//! to the host's own recorder as well.

use std::sync::Arc;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
    SharedString, Unit,
};

use crate::registry::Shared;

/// vigil's `metrics::Recorder`: every counter, gauge and histogram recorded
/// through the `metrics` facade lands in one registry that the Prometheus
/// exposition, the JSON summary and the alert engine all read.
///
/// Get one from [`Monitor::recorder`](crate::Monitor::recorder); a
/// [`Monitor::builder`](crate::Monitor::builder)`.install()` makes it the
/// global recorder. When built with
/// [`layer`](crate::MonitorBuilder::layer), it forwards every call unchanged
/// to the host's own recorder as well.
///
/// ```
/// let monitor = vigil::Monitor::builder().build()?;
/// let recorder = monitor.recorder();
/// vigil::with_local_recorder(&recorder, || {
///     vigil::metrics::counter!("jobs_total").increment(3);
/// });
/// assert!(monitor.render().contains("jobs_total 3"));
/// # Ok::<(), vigil::Error>(())
/// ```
#[derive(Clone)]
pub struct Recorder {
    pub(crate) shared: Arc<Shared>,
    pub(crate) next: Option<Arc<dyn metrics::Recorder + Send + Sync>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("layered", &self.next.is_some())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Brings values kept outside the registry up to date before a read:
    /// every named `vigil-cache` cache publishes its statistics (its hits
    /// are counted in per-thread shards, not through `metrics`).
    pub(crate) fn refresh(&self) {
        #[cfg(feature = "cache")]
        metrics::with_local_recorder(self, vigil_cache::publish_metrics);
    }

    /// [`refresh`](Self::refresh), then one upkeep tick.
    pub(crate) fn tick(&self) {
        self.refresh();
        self.shared.tick();
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared.describe(key.as_str(), description.clone());
        if let Some(next) = &self.next {
            next.describe_counter(key, unit, description);
        }
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared.describe(key.as_str(), description.clone());
        if let Some(next) = &self.next {
            next.describe_gauge(key, unit, description);
        }
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.shared.describe(key.as_str(), description.clone());
        if let Some(next) = &self.next {
            next.describe_histogram(key, unit, description);
        }
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let own = self.shared.counter(key);
        match &self.next {
            None => own,
            Some(next) => {
                Counter::from_arc(Arc::new(Pair(own, next.register_counter(key, metadata))))
            }
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let own = self.shared.gauge(key);
        match &self.next {
            None => own,
            Some(next) => Gauge::from_arc(Arc::new(Pair(own, next.register_gauge(key, metadata)))),
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let own = self.shared.histogram(key);
        match &self.next {
            None => own,
            Some(next) => {
                Histogram::from_arc(Arc::new(Pair(own, next.register_histogram(key, metadata))))
            }
        }
    }
}

/// One handle from vigil and one from the layered recorder, updated together.
struct Pair<T>(T, T);

impl CounterFn for Pair<Counter> {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.absolute(value);
    }
}

impl GaugeFn for Pair<Gauge> {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.1.decrement(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.set(value);
    }
}

impl HistogramFn for Pair<Histogram> {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.record(value);
    }
}
