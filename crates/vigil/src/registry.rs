//! The registry behind every view ([`Shared`]): its series live in a
//! `metrics_util::registry::Registry` with vigil storage, plus the
//! bookkeeping around them (descriptions, registration-time sanitizing,
//! the per-name series limit and the global series budget, activity
//! tracking and idle expiry on the upkeep tick).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use indexmap::IndexMap;
use metrics::atomics::AtomicU64;
use metrics::{Counter, Gauge, Histogram, Key, Label, SharedString};
use metrics_exporter_prometheus::Matcher;
use metrics_util::MetricKind;
use metrics_util::registry::Registry;
use vigil_histogram::Window;
use vigil_timing::CALLS_DURATION;
use vigil_timing::objectives::LATENCY_BUCKETS;

use crate::activity::{Activity, Observed, Tick};
use crate::render::Rejected;
use crate::sanitize::{self, Reason, Registered, SERIES_REJECTED_TOTAL};
use crate::storage::{GaugeCell, HistogramSeries, Storage};

/// The name of the counter of registrations not stored as their own
/// series: label sets folded into an overflow series, and new metric names
/// beyond the series budget.
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
    pub(crate) max_series: usize,
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

/// How many metric names the log names, one warning each, when their
/// series are refused or renamed; past them, one more warning says that
/// further names are counted in [`SERIES_REJECTED_TOTAL`] without a log
/// line, so a flood of distinct bad names cannot flood the log.
const LOGGED_NAMES: usize = 1_000;

/// The index of a metric kind in the per-kind tables.
fn slot(kind: MetricKind) -> usize {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
    }
}

/// The series admitted so far, by name and in all: what the per-name limit
/// and the global budget are checked against.
#[derive(Debug, Default)]
struct Admission {
    /// Series per exposed name, one table per kind; the overflow series is
    /// not counted. A name leaves its table when its last series expires,
    /// so only stored names take room here.
    names: [HashMap<String, usize>; 3],
    /// The sum of every count in `names`.
    total: usize,
    /// Names whose per-name limit was logged (names with series only).
    full: [HashSet<String>; 3],
    /// Whether reaching the budget was logged.
    budget_logged: bool,
}

/// Recorded keys outside the exposition's grammar that were registered,
/// and the key each is stored under (`None`: refused), so a repeated
/// registration finds its series without sanitizing again and its changes
/// are counted once. Holds at most
/// [`max_series`](crate::MonitorBuilder::max_series) keys in all.
#[derive(Debug, Default)]
struct Renamed {
    keys: [HashMap<Key, Option<Key>>; 3],
    len: usize,
}

/// The metric names already logged as refused or renamed (at most
/// [`LOGGED_NAMES`]), and whether the warning that no more are logged was
/// given.
#[derive(Debug, Default)]
struct Logged {
    names: HashSet<String>,
    capped: bool,
}

/// The handle of a series of one kind (`$kind`: `Counter`, `Gauge` or
/// `Histogram`, the `metrics` handle type and the [`MetricKind`]), through
/// [`Shared::register`] with the registry's getters for that kind.
macro_rules! handle {
    ($shared:expr, $key:expr, $kind:ident, $get:ident, $create:ident) => {
        $shared
            .register(
                MetricKind::$kind,
                $key,
                |key| $shared.registry.$get(key),
                |key| $shared.registry.$create(key, Arc::clone),
            )
            .map_or_else($kind::noop, $kind::from_arc)
    };
}

/// How a registration finds the series of one kind and creates them.
struct Series<'a, V> {
    /// The registered series of a key, if any.
    existing: &'a dyn Fn(&Key) -> Option<V>,
    /// Registers a new series.
    create: &'a dyn Fn(&Key) -> V,
}

/// What [`Shared::admit`] did with a key that was not registered.
enum Admitted<V> {
    /// Another thread registered it first.
    Found(V),
    /// Stored as a new series.
    New(V),
    /// Folded into its name's overflow series.
    Overflow(V),
    /// Not stored: a new name beyond the budget.
    Dropped,
}

/// State shared by the recorder, the [`Monitor`](crate::Monitor) handles,
/// the upkeep thread and the HTTP listener.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Registry<Key, Storage>,
    /// HELP texts from `metrics::describe_*!`, by exposed name. Units are
    /// not kept: vigil's names carry their unit already (`_seconds`), and
    /// the layered recorder still receives them.
    pub(crate) descriptions: RwLock<HashMap<String, SharedString>>,
    admission: Mutex<Admission>,
    renamed: RwLock<Renamed>,
    /// Series changes made when the registry is read that were already
    /// counted in [`SERIES_REJECTED_TOTAL`] (a series is read at every
    /// render; each change counts once). Registration stores every key as
    /// exposed, so this stays empty unless a key reaches the registry
    /// another way.
    rejected: Mutex<HashSet<RejectedSeries>>,
    logged: Mutex<Logged>,
    dropped: Arc<AtomicU64>,
    pub(crate) activity: Mutex<Activity>,
    /// The values histograms that expired (idle, held by nobody) did not
    /// record as given, by exposed name: they stay in
    /// [`VALUES_REJECTED_TOTAL`](crate::render::VALUES_REJECTED_TOTAL), so
    /// that counter never goes down. Locked under [`Shared::activity`].
    pub(crate) expired_rejections: Mutex<crate::render::RejectedValues>,
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
            admission: Mutex::new(Admission::default()),
            renamed: RwLock::new(Renamed::default()),
            rejected: Mutex::new(HashSet::new()),
            logged: Mutex::new(Logged::default()),
            dropped,
            activity: Mutex::new(Activity::new(settings.clock.now())),
            expired_rejections: Mutex::new(crate::render::RejectedValues::new()),
            settings,
        };
        shared.describe(
            SERIES_DROPPED_TOTAL,
            "Registrations of new series not stored as their own: folded into their metric's overflow series (series limit per metric or series budget reached), or not stored at all (a new metric name beyond the series budget)".into(),
        );
        shared.describe(
            SERIES_REJECTED_TOTAL,
            "Recorded series, or labels of them, refused or renamed to keep the exposition valid, by reason".into(),
        );
        shared
    }

    /// Counts one change in [`SERIES_REJECTED_TOTAL`] and logs it if it is
    /// the first of its metric name (while fewer than [`LOGGED_NAMES`]
    /// names were logged).
    fn count_rejected(&self, name: &str, reason: Reason) {
        let series = Key::from_parts(
            SERIES_REJECTED_TOTAL,
            vec![Label::new("reason", reason.as_str())],
        );
        self.registry
            .get_or_create_counter(&series, |counter| counter.fetch_add(1, Ordering::Relaxed));
        let mut logged = self.logged.lock().unwrap_or_else(PoisonError::into_inner);
        if logged.names.contains(name) {
            return;
        }
        if logged.names.len() < LOGGED_NAMES {
            logged.names.insert(name.to_owned());
            drop(logged);
            tracing::warn!(
                metric = name,
                reason = reason.as_str(),
                "series refused or renamed to keep the exposition valid; counted in {SERIES_REJECTED_TOTAL}"
            );
        } else if !logged.capped {
            logged.capped = true;
            drop(logged);
            tracing::warn!(
                logged = LOGGED_NAMES,
                "series of more metric names refused or renamed; further ones are counted in {SERIES_REJECTED_TOTAL} without a log line"
            );
        }
    }

    /// Counts each change made when the registry is read that is not
    /// counted yet in [`SERIES_REJECTED_TOTAL`].
    pub(crate) fn reject(&self, rejected: Rejected) {
        if rejected.is_empty() {
            return;
        }
        let mut counted = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
        for (kind, key, reason) in rejected {
            if counted.contains(&(kind, key.clone(), reason)) {
                continue;
            }
            self.count_rejected(key.name(), reason);
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

    /// Registrations not stored as their own series so far.
    pub(crate) fn series_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The label key the exposition adds itself to series of this kind and
    /// recorded name: `le` for a histogram rendered with buckets,
    /// `quantile` for one rendered as a summary.
    fn reserved_key(&self, kind: MetricKind, name: &str) -> Option<&'static str> {
        if kind != MetricKind::Histogram {
            return None;
        }
        let name = if sanitize::valid_metric_name(name) {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(sanitize::metric_name(name)?)
        };
        Some(if self.settings.buckets_for(&name).is_some() {
            "le"
        } else {
            "quantile"
        })
    }

    /// The series `key` records into: the registered one (the hot path:
    /// one lookup, as before any check), or, the first time, the one
    /// [`register_new`](Self::register_new) decides; `None` for a key that
    /// is not stored.
    #[inline]
    fn register<V>(
        &self,
        kind: MetricKind,
        key: &Key,
        existing: impl Fn(&Key) -> Option<V>,
        create: impl Fn(&Key) -> V,
    ) -> Option<V> {
        if let Some(found) = existing(key) {
            return Some(found);
        }
        let series = Series {
            existing: &existing,
            create: &create,
        };
        self.register_new(kind, key, &series)
    }

    /// A key that is not registered under its recorded form (the cold
    /// path): brought to the exposition's grammar ([`sanitize::register`]),
    /// it joins the series it now names if there is one (a collision,
    /// counted), or is admitted under the limits. Changes are counted in
    /// [`SERIES_REJECTED_TOTAL`] once per recorded key while the registry
    /// can remember renamed keys ([`Renamed`]); past that, at each
    /// registration.
    #[inline(never)]
    fn register_new<V>(&self, kind: MetricKind, key: &Key, series: &Series<'_, V>) -> Option<V> {
        let known = self
            .renamed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys[slot(kind)]
        .get(key)
        .cloned();
        let mut reasons = Vec::new();
        let (target, remembered) = match known {
            Some(None) => return None,
            Some(Some(target)) => (target, true),
            None => {
                match sanitize::register(key, self.reserved_key(kind, key.name()), &mut reasons) {
                    Registered::AsRecorded => {
                        return match self.admit(kind, key, series) {
                            Admitted::Found(series)
                            | Admitted::New(series)
                            | Admitted::Overflow(series) => Some(series),
                            Admitted::Dropped => None,
                        };
                    }
                    Registered::Refused => {
                        self.remember(kind, key, None, &reasons);
                        return None;
                    }
                    Registered::Renamed(target) => (target, false),
                }
            }
        };
        if let Some(found) = (series.existing)(&target) {
            if !remembered {
                reasons.push(Reason::Collision);
                self.remember(kind, key, Some(target), &reasons);
            }
            return Some(found);
        }
        match self.admit(kind, &target, series) {
            Admitted::Found(series) => {
                if !remembered {
                    reasons.push(Reason::Collision);
                    self.remember(kind, key, Some(target), &reasons);
                }
                Some(series)
            }
            Admitted::New(series) => {
                if !remembered {
                    self.remember(kind, key, Some(target), &reasons);
                }
                Some(series)
            }
            Admitted::Overflow(series) => Some(series),
            Admitted::Dropped => None,
        }
    }

    /// Notes that `key` is stored as `target` (`None`: refused) and counts
    /// `reasons`, unless another thread noted it first; when the registry
    /// already remembers [`max_series`](crate::MonitorBuilder::max_series)
    /// renamed keys, counts them without noting.
    fn remember(&self, kind: MetricKind, key: &Key, target: Option<Key>, reasons: &[Reason]) {
        let mut renamed = self.renamed.write().unwrap_or_else(PoisonError::into_inner);
        let first = if renamed.len < self.settings.max_series {
            match renamed.keys[slot(kind)].entry(key.clone()) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(vacant) => {
                    vacant.insert(target);
                    renamed.len += 1;
                    true
                }
            }
        } else {
            true
        };
        drop(renamed);
        if first {
            for &reason in reasons {
                self.count_rejected(key.name(), reason);
            }
        }
    }

    /// Decides where a new series of `key` (already as exposed) is stored:
    /// its own series while its name is under
    /// [`max_series_per_metric`](crate::MonitorBuilder::max_series_per_metric)
    /// and the registry under
    /// [`max_series`](crate::MonitorBuilder::max_series); otherwise its
    /// name's overflow series, or nowhere for a name with no series yet
    /// once the budget is reached. Nothing is kept for a key that is not
    /// stored.
    fn admit<V>(&self, kind: MetricKind, key: &Key, series: &Series<'_, V>) -> Admitted<V> {
        let mut admission = self
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Re-check under the lock: another thread may have admitted it.
        if let Some(found) = (series.existing)(key) {
            return Admitted::Found(found);
        }
        let Admission {
            names,
            total,
            full,
            budget_logged,
        } = &mut *admission;
        let limit = self.settings.max_series_per_metric;
        let budget = self.settings.max_series;
        let within_budget = *total < budget;
        let names = &mut names[slot(kind)];
        match names.get_mut(key.name()) {
            Some(count) if *count < limit && within_budget => {
                *count += 1;
                *total += 1;
                return Admitted::New((series.create)(key));
            }
            Some(_) => {}
            None if within_budget => {
                names.insert(key.name().to_owned(), 1);
                *total += 1;
                return Admitted::New((series.create)(key));
            }
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !std::mem::replace(budget_logged, true) {
                    drop(admission);
                    self.warn_budget();
                }
                return Admitted::Dropped;
            }
        }
        // The name has series: fold into its overflow series.
        if within_budget {
            if full[slot(kind)].insert(key.name().to_owned()) {
                tracing::warn!(
                    metric = key.name(),
                    limit,
                    overflow_label = OVERFLOW_LABEL,
                    "metric reached its series limit; new label sets fold into its overflow series"
                );
            }
        } else if !std::mem::replace(budget_logged, true) {
            self.warn_budget();
        }
        drop(admission);
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let overflow = Key::from_parts(
            key.name().to_owned(),
            vec![Label::new(OVERFLOW_LABEL, "true")],
        );
        Admitted::Overflow((series.create)(&overflow))
    }

    fn warn_budget(&self) {
        tracing::warn!(
            max_series = self.settings.max_series,
            overflow_label = OVERFLOW_LABEL,
            "the registry reached its series budget; new label sets fold into their metric's overflow series and new metric names are not stored; counted in {SERIES_DROPPED_TOTAL}"
        );
    }

    /// Forgets series that expired so their names, and the registry, have
    /// room again; a name whose last series expired is forgotten.
    pub(crate) fn release(&self, kind: MetricKind, names: impl IntoIterator<Item = String>) {
        let mut admission = self
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Admission {
            names: admitted,
            total,
            full,
            ..
        } = &mut *admission;
        let admitted = &mut admitted[slot(kind)];
        for name in names {
            let Some(count) = admitted.get_mut(&name) else {
                continue;
            };
            *count = count.saturating_sub(1);
            *total = total.saturating_sub(1);
            if *count == 0 {
                admitted.remove(&name);
                full[slot(kind)].remove(&name);
            }
        }
    }

    /// The handle `key` records a counter into (one that records nothing
    /// for a key that is not stored).
    pub(crate) fn counter(&self, key: &Key) -> Counter {
        handle!(self, key, Counter, get_counter, get_or_create_counter)
    }

    /// The handle `key` records a gauge into.
    pub(crate) fn gauge(&self, key: &Key) -> Gauge {
        handle!(self, key, Gauge, get_gauge, get_or_create_gauge)
    }

    /// The handle `key` records a histogram into.
    pub(crate) fn histogram(&self, key: &Key) -> Histogram {
        handle!(self, key, Histogram, get_histogram, get_or_create_histogram)
    }

    /// One upkeep tick: rotates histogram windows, samples counters and
    /// gauges for rates and window statistics, and expires idle series.
    pub(crate) fn tick(&self) {
        let mut activity = self
            .activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Read under the lock, so ticks see increasing times.
        let now = self.settings.clock.now();
        let tick = Tick {
            now,
            previous: activity.last_tick.replace(now),
            window: self.settings.window,
            idle_timeout: self.settings.idle_timeout,
        };

        // `retain_*` holds each registry shard's write lock while it decides,
        // so no registration can clone a handle between the "held by nobody
        // else" check and the deletion: a deleted series is one nobody can
        // record into any more, and no recorded value is lost.
        let mut expired = Vec::new();
        self.registry
            .retain_counters(|key, counter: &Arc<AtomicU64>| {
                let value = counter.load(Ordering::Relaxed);
                let held = Arc::strong_count(counter) > 1;
                activity.keep(
                    &tick,
                    MetricKind::Counter,
                    key,
                    counter,
                    Observed::Count(value),
                    value as f64,
                    held,
                    &mut expired,
                )
            });
        self.release(MetricKind::Counter, expired.drain(..));

        self.registry.retain_gauges(|key, gauge: &Arc<GaugeCell>| {
            let held = Arc::strong_count(gauge) > 1;
            activity.keep(
                &tick,
                MetricKind::Gauge,
                key,
                gauge,
                Observed::Writes(gauge.get_generation()),
                crate::storage::gauge_value(gauge),
                held,
                &mut expired,
            )
        });
        self.release(MetricKind::Gauge, expired.drain(..));

        // An expired histogram's rejected values stay counted.
        let mut expired_rejections = self
            .expired_rejections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.registry
            .retain_histograms(|key, series: &Arc<HistogramSeries>| {
                series.0.upkeep();
                let count = series.0.count();
                let held = Arc::strong_count(series) > 1;
                let keep = activity.keep(
                    &tick,
                    MetricKind::Histogram,
                    key,
                    series,
                    Observed::Count(count),
                    count as f64,
                    held,
                    &mut expired,
                );
                if !keep {
                    crate::render::add_rejected_values_within(
                        &mut expired_rejections,
                        key,
                        series,
                        self.settings.max_series,
                    );
                }
                keep
            });
        drop(expired_rejections);
        self.release(MetricKind::Histogram, expired.drain(..));
    }

    /// The window every windowed read-out covers.
    pub(crate) fn window(&self) -> Window {
        Window::Last(self.settings.window)
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
            max_series: 10,
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
