//! The registry behind every view: one `metrics::Recorder` whose series
//! live in a `metrics_util::registry::Registry` with vigil storage, plus the
//! bookkeeping around it (descriptions, the per-name series limit, and the
//! optional recorder it forwards to).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use indexmap::IndexMap;
use metrics::atomics::AtomicU64;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Label, Metadata,
    SharedString, Unit,
};
use metrics_exporter_prometheus::Matcher;
use metrics_util::MetricKind;
use metrics_util::registry::Registry;
use vigil_timing::CALLS_DURATION;
use vigil_timing::objectives::LATENCY_BUCKETS;

use crate::activity::Activity;
use crate::render::Rejected;
use crate::sanitize::{self, Reason, SERIES_REJECTED_TOTAL};
use crate::storage::Storage;

/// The name of the counter of label sets folded into an overflow series.
pub const SERIES_DROPPED_TOTAL: &str = "vigil_series_dropped_total";

/// The label that marks the overflow series of a metric name.
pub const OVERFLOW_LABEL: &str = "vigil_overflow";

/// How the registry reads out, fixed when the [`Monitor`](crate::Monitor)
/// is built.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) global_labels: IndexMap<String, String>,
    pub(crate) quantiles: Vec<f64>,
    pub(crate) buckets: Vec<(Matcher, Vec<f64>)>,
    pub(crate) window: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_series_per_metric: usize,
    pub(crate) clock: quanta::Clock,
}

impl Settings {
    /// The `le` bounds for a histogram rendered as classic buckets, or
    /// `None` when it renders as a summary: those of the first
    /// [`buckets`](crate::MonitorBuilder::buckets) matcher that matches.
    /// `function_calls_duration_seconds` always renders with buckets, and
    /// its bounds always include every autometrics latency threshold
    /// ([`LATENCY_BUCKETS`]), so autometrics' latency queries and SLO rules
    /// find the bucket of each objective's threshold.
    pub(crate) fn buckets_for(&self, name: &str) -> Option<Cow<'_, [f64]>> {
        bucket_bounds(&self.buckets, name)
    }
}

/// [`Settings::buckets_for`] over a list of `buckets` matchers (also read by
/// the storage, which keeps counts at these bounds exact).
pub(crate) fn bucket_bounds<'a>(
    buckets: &'a [(Matcher, Vec<f64>)],
    name: &str,
) -> Option<Cow<'a, [f64]>> {
    let configured = buckets
        .iter()
        .find(|(matcher, _)| matcher.matches(name))
        .map(|(_, bounds)| bounds.as_slice());
    if name != CALLS_DURATION {
        return configured.map(Cow::Borrowed);
    }
    Some(match configured {
        None => Cow::Borrowed(&LATENCY_BUCKETS[..]),
        Some(bounds) if LATENCY_BUCKETS.iter().all(|b| bounds.contains(b)) => Cow::Borrowed(bounds),
        Some(bounds) => {
            let mut merged: Vec<f64> = bounds.iter().chain(&LATENCY_BUCKETS).copied().collect();
            merged.sort_by(f64::total_cmp);
            merged.dedup();
            Cow::Owned(merged)
        }
    })
}

/// A recorded series and one change made to it on its way out.
type RejectedSeries = (MetricKind, Key, Reason);

/// State shared by the recorder, the [`Monitor`](crate::Monitor) handles,
/// the upkeep thread and the HTTP listener.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Registry<Key, Storage>,
    /// HELP texts from `metrics::describe_*!`, by exposed name. Units are
    /// not kept: vigil's names carry their unit already (`_seconds`), and
    /// the layered recorder still receives them.
    pub(crate) descriptions: RwLock<HashMap<String, SharedString>>,
    /// Series per (kind, name) admitted so far; the overflow series is not
    /// counted.
    admitted: Mutex<HashMap<(MetricKind, String), usize>>,
    warned: Mutex<HashSet<(MetricKind, String)>>,
    /// Series changes already counted in [`SERIES_REJECTED_TOTAL`] (a
    /// series is read at every render; each change counts once), and the
    /// names already logged.
    rejected: Mutex<(HashSet<RejectedSeries>, HashSet<String>)>,
    dropped: Arc<AtomicU64>,
    pub(crate) activity: Mutex<Activity>,
    pub(crate) settings: Settings,
}

impl Shared {
    pub(crate) fn new(mut storage: Storage, settings: Settings) -> Self {
        storage.buckets.clone_from(&settings.buckets);
        let registry = Registry::new(storage);
        let dropped = registry
            .get_or_create_counter(&Key::from_static_name(SERIES_DROPPED_TOTAL), Arc::clone);
        let shared = Self {
            registry,
            descriptions: RwLock::new(HashMap::new()),
            admitted: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashSet::new()),
            rejected: Mutex::new((HashSet::new(), HashSet::new())),
            dropped,
            activity: Mutex::new(Activity::new(settings.clock.now())),
            settings,
        };
        shared.describe(
            SERIES_DROPPED_TOTAL,
            "Registrations of new label sets folded into a metric's overflow series because it reached its series limit".into(),
        );
        shared.describe(
            SERIES_REJECTED_TOTAL,
            "Recorded series, or labels of them, refused or renamed to keep the exposition valid, by reason".into(),
        );
        shared
    }

    /// Counts each change not counted yet in [`SERIES_REJECTED_TOTAL`]
    /// and logs the first change of each name.
    pub(crate) fn reject(&self, rejected: Rejected) {
        if rejected.is_empty() {
            return;
        }
        let mut guard = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
        let (counted, logged) = &mut *guard;
        for (kind, key, reason) in rejected {
            if counted.contains(&(kind, key.clone(), reason)) {
                continue;
            }
            let series = Key::from_parts(
                SERIES_REJECTED_TOTAL,
                vec![Label::new("reason", reason.as_str())],
            );
            self.registry
                .get_or_create_counter(&series, |counter| counter.fetch_add(1, Ordering::Relaxed));
            if logged.insert(key.name().to_owned()) {
                tracing::warn!(
                    metric = key.name(),
                    reason = reason.as_str(),
                    "series refused or renamed to keep the exposition valid; counted in {SERIES_REJECTED_TOTAL}"
                );
            }
            counted.insert((kind, key, reason));
        }
    }

    pub(crate) fn describe(&self, name: &str, text: SharedString) {
        // Keyed by the exposed name, which is what rendering looks up.
        self.descriptions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sanitize::metric_name(name).unwrap_or_default(), text);
    }

    /// Series registered beyond the per-name limit so far.
    pub(crate) fn series_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Decides the key a new series is stored under: its own while the name
    /// has room, the name's overflow series once it is full. Runs only when a
    /// key is not registered yet (registration, the cold path).
    fn admit<V>(
        &self,
        kind: MetricKind,
        key: &Key,
        existing: impl Fn(&Key) -> Option<V>,
        create: impl FnOnce(&Key) -> V,
    ) -> V {
        if let Some(found) = existing(key) {
            return found;
        }
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        // Re-check under the lock: another thread may have admitted it.
        if let Some(found) = existing(key) {
            return found;
        }
        let slot = (kind, key.name().to_owned());
        let count = admitted.entry(slot.clone()).or_insert(0);
        if *count < self.settings.max_series_per_metric {
            *count += 1;
            return create(key);
        }
        drop(admitted);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if self
            .warned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(slot)
        {
            tracing::warn!(
                metric = key.name(),
                limit = self.settings.max_series_per_metric,
                overflow_label = OVERFLOW_LABEL,
                "metric reached its series limit; new label sets fold into its overflow series"
            );
        }
        let overflow = Key::from_parts(
            key.name().to_owned(),
            vec![Label::new(OVERFLOW_LABEL, "true")],
        );
        create(&overflow)
    }

    /// Forgets series that expired so their names have room again.
    pub(crate) fn release(&self, kind: MetricKind, names: impl IntoIterator<Item = String>) {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        for name in names {
            if let Some(count) = admitted.get_mut(&(kind, name)) {
                *count = count.saturating_sub(1);
            }
        }
    }

    fn counter(&self, key: &Key) -> Counter {
        let handle = self.admit(
            MetricKind::Counter,
            key,
            |key| self.registry.get_counter(key),
            |key| self.registry.get_or_create_counter(key, Arc::clone),
        );
        Counter::from_arc(handle)
    }

    fn gauge(&self, key: &Key) -> Gauge {
        let handle = self.admit(
            MetricKind::Gauge,
            key,
            |key| self.registry.get_gauge(key),
            |key| self.registry.get_or_create_gauge(key, Arc::clone),
        );
        Gauge::from_arc(handle)
    }

    fn histogram(&self, key: &Key) -> Histogram {
        let handle = self.admit(
            MetricKind::Histogram,
            key,
            |key| self.registry.get_histogram(key),
            |key| self.registry.get_or_create_histogram(key, Arc::clone),
        );
        Histogram::from_arc(handle)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(buckets: Vec<(Matcher, Vec<f64>)>) -> Settings {
        Settings {
            global_labels: IndexMap::new(),
            quantiles: Vec::new(),
            buckets,
            window: Duration::from_secs(60),
            idle_timeout: None,
            max_series_per_metric: 1,
            clock: quanta::Clock::new(),
        }
    }

    #[test]
    fn function_durations_have_the_autometrics_bounds_by_default() {
        let plain = settings(Vec::new());
        assert_eq!(
            plain.buckets_for(CALLS_DURATION).as_deref(),
            Some(&LATENCY_BUCKETS[..])
        );
        assert_eq!(plain.buckets_for("db_query_seconds"), None);
    }

    #[test]
    fn configured_bounds_keep_every_autometrics_threshold() {
        let configured = settings(vec![(
            Matcher::Suffix("_seconds".into()),
            vec![0.001, 0.25, 20.0],
        )]);
        let bounds = configured.buckets_for(CALLS_DURATION).unwrap();
        assert_eq!(bounds.len(), LATENCY_BUCKETS.len() + 2);
        assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
        assert_eq!((bounds[0], bounds[bounds.len() - 1]), (0.001, 20.0));
        assert!(LATENCY_BUCKETS.iter().all(|b| bounds.contains(b)));
        // Other names keep exactly what was configured.
        assert_eq!(
            configured.buckets_for("db_query_seconds").as_deref(),
            Some(&[0.001, 0.25, 20.0][..])
        );
        // A superset is used as given, without a copy.
        let superset: Vec<f64> = LATENCY_BUCKETS.iter().copied().chain([30.0]).collect();
        let wide = settings(vec![(
            Matcher::Full(CALLS_DURATION.into()),
            superset.clone(),
        )]);
        assert!(matches!(
            wide.buckets_for(CALLS_DURATION),
            Some(Cow::Borrowed(bounds)) if bounds == superset.as_slice()
        ));
    }
}
