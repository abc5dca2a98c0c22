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

/// `describe_*`: the registry keeps the HELP text, the layered recorder
/// gets the call unchanged.
macro_rules! describe {
    ($($method:ident),*) => {$(
        fn $method(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
            self.shared.describe(key.as_str(), description.clone());
            if let Some(next) = &self.next {
                next.$method(key, unit, description);
            }
        }
    )*};
}

/// `register_*`: the registry's handle, paired with the layered
/// recorder's when there is one.
macro_rules! register {
    ($($method:ident => $kind:ident, $own:ident;)*) => {$(
        fn $method(&self, key: &Key, metadata: &Metadata<'_>) -> $kind {
            let own = self.shared.$own(key);
            match &self.next {
                None => own,
                Some(next) => $kind::from_arc(Arc::new(Pair(own, next.$method(key, metadata)))),
            }
        }
    )*};
}

impl metrics::Recorder for Recorder {
    describe!(describe_counter, describe_gauge, describe_histogram);

    register! {
        register_counter => Counter, counter;
        register_gauge => Gauge, gauge;
        register_histogram => Histogram, histogram;
    }
}

/// One handle from vigil and one from the layered recorder, updated together.
///
/// `metrics_util::layers::Fanout` does the same for any number of
/// recorders, but it holds them as `Box<dyn Recorder + Sync>`, which is not
/// `Send`: a `Fanout` cannot be shared between threads behind an `Arc`,
/// and vigil's `Recorder` is cloned into the upkeep thread, the listener and
/// the alert loop. Vigil's own registry also must stay reachable for
/// rendering, which a boxed `Fanout` member would hide.
struct Pair<T>(T, T);

/// Forwards each method to both handles.
macro_rules! pair {
    ($($trait:ident for $handle:ident: $($method:ident($value:ty)),*;)*) => {$(
        impl $trait for Pair<$handle> {
            $(fn $method(&self, value: $value) {
                self.0.$method(value);
                self.1.$method(value);
            })*
        }
    )*};
}

pair! {
    CounterFn for Counter: increment(u64), absolute(u64);
    GaugeFn for Gauge: increment(f64), decrement(f64), set(f64);
    HistogramFn for Histogram: record(f64);
}
