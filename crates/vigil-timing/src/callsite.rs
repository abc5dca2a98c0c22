//! Static call sites and the `metrics` handles cached on them.
//!
//! A [`CallSite`] is a `static` describing one instrumented function or
//! block: its name, module, static labels, slow threshold and whether it
//! tracks in-flight calls. The first call through a site resolves its
//! `metrics` handles (hashing the keys once) and caches them together with
//! the identity of the recorder they came from. Later calls check that
//! identity with one load and compare and use the cached handles; a recorder
//! installed later (or a thread-local one in a test) is noticed and the
//! handles are resolved again, so no call is ever recorded into a stale
//! recorder.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};

/// Counter of completed calls, by caller and result.
pub const CALLS_TOTAL: &str = "function_calls_total";
/// Histogram of call durations in seconds.
pub const CALLS_DURATION: &str = "function_calls_duration_seconds";
/// Gauge of calls in flight (sites with concurrency tracking only).
pub const CALLS_CONCURRENT: &str = "function_calls_concurrent";
/// Counter of calls that panicked.
pub const PANICS_TOTAL: &str = "function_panics_total";
/// Counter of futures dropped before they completed.
pub const CANCELLATIONS_TOTAL: &str = "function_cancellations_total";

/// How many distinct callers a site caches handles for; calls from further
/// callers still record correctly, resolving their counter per call.
const CALLER_SLOTS: usize = 16;

/// One instrumented function or block, declared as a `static`.
///
/// Name, module and labels are fixed at compile time; the `metrics` handles
/// are resolved on first use and cached here. `#[timed]` declares one per
/// function; by hand, use [`callsite!`](crate::callsite!) or a `static`:
///
/// ```
/// use std::time::Duration;
/// use vigil_timing::{CallSite, Timer};
///
/// static LOAD: CallSite = CallSite::new("load_config", module_path!())
///     .labels(&[("component", "config")])
///     .slow(Duration::from_millis(250))
///     .track_concurrency();
///
/// let timer = Timer::start(&LOAD);
/// // ... work ...
/// timer.ok();
/// assert_eq!(LOAD.name(), "load_config");
/// ```
pub struct CallSite {
    name: &'static str,
    module: &'static str,
    labels: &'static [(&'static str, &'static str)],
    slow: Option<Duration>,
    concurrency: bool,
    handles: ArcSwapOption<Handles>,
}

impl CallSite {
    /// A site named `name` in `module` (pass `module_path!()`).
    #[must_use]
    pub const fn new(name: &'static str, module: &'static str) -> CallSite {
        CallSite {
            name,
            module,
            labels: &[],
            slow: None,
            concurrency: false,
            handles: ArcSwapOption::const_empty(),
        }
    }

    /// Static labels added to every metric this site records.
    #[must_use]
    pub const fn labels(mut self, labels: &'static [(&'static str, &'static str)]) -> CallSite {
        self.labels = labels;
        self
    }

    /// Emit a `tracing` `WARN` event for calls that take longer than
    /// `threshold`.
    #[must_use]
    pub const fn slow(mut self, threshold: Duration) -> CallSite {
        self.slow = Some(threshold);
        self
    }

    /// Track calls in flight in the `function_calls_concurrent` gauge.
    #[must_use]
    pub const fn track_concurrency(mut self) -> CallSite {
        self.concurrency = true;
        self
    }

    /// The `function` label.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The `module` label.
    #[must_use]
    pub const fn module(&self) -> &'static str {
        self.module
    }

    /// The static labels.
    #[must_use]
    pub const fn static_labels(&self) -> &'static [(&'static str, &'static str)] {
        self.labels
    }

    /// The slow-call threshold, if any.
    #[must_use]
    pub const fn slow_threshold(&self) -> Option<Duration> {
        self.slow
    }

    /// Whether in-flight calls are tracked.
    #[must_use]
    pub const fn tracks_concurrency(&self) -> bool {
        self.concurrency
    }

    /// Runs `f` with this site's handles for the current recorder,
    /// resolving them first if the recorder changed since the last call.
    ///
    /// Hot path: one thread-local read and one atomic load inside
    /// `metrics::with_recorder`, one `arc_swap` load and a compare.
    #[inline]
    pub(crate) fn with_handles<R>(
        &'static self,
        f: impl FnOnce(&Handles, &dyn Recorder) -> R,
    ) -> R {
        metrics::with_recorder(|recorder| {
            let id = recorder_id(recorder);
            let cached = self.handles.load();
            if let Some(handles) = cached.as_deref()
                && handles.recorder == id
            {
                return f(handles, recorder);
            }
            drop(cached);
            self.resolve(recorder, id, f)
        })
    }

    #[cold]
    #[inline(never)]
    fn resolve<R>(
        &'static self,
        recorder: &dyn Recorder,
        id: (usize, usize),
        f: impl FnOnce(&Handles, &dyn Recorder) -> R,
    ) -> R {
        let handles = Arc::new(Handles::resolve(self, recorder, id));
        self.handles.store(Some(Arc::clone(&handles)));
        f(&handles, recorder)
    }

    fn key(&self, name: &'static str, extra: &[(&'static str, &'static str)]) -> Key {
        let mut labels = Vec::with_capacity(2 + extra.len() + self.labels.len());
        labels.push(Label::from_static_parts("function", self.name));
        labels.push(Label::from_static_parts("module", self.module));
        for &(k, v) in extra.iter().chain(self.labels) {
            labels.push(Label::from_static_parts(k, v));
        }
        Key::from_parts(name, labels)
    }

    fn metadata(&self) -> Metadata<'static> {
        Metadata::new(self.module, Level::INFO, Some(self.module))
    }

    fn calls_counter(
        &self,
        recorder: &dyn Recorder,
        caller: Option<&'static CallSite>,
        result: &'static str,
    ) -> Counter {
        let (caller_function, caller_module) = caller.map_or(("", ""), |c| (c.name, c.module));
        let key = self.key(
            CALLS_TOTAL,
            &[
                ("caller_function", caller_function),
                ("caller_module", caller_module),
                ("result", result),
            ],
        );
        recorder.register_counter(&key, &self.metadata())
    }

    fn call_counters(
        &self,
        recorder: &dyn Recorder,
        caller: Option<&'static CallSite>,
    ) -> [Counter; 2] {
        [
            self.calls_counter(recorder, caller, "ok"),
            self.calls_counter(recorder, caller, "error"),
        ]
    }
}

impl std::fmt::Debug for CallSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSite")
            .field("name", &self.name)
            .field("module", &self.module)
            .field("labels", &self.labels)
            .field("slow", &self.slow)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Bumped whenever cached handles may belong to a recorder that is gone
/// (see [`with_local_recorder`] and [`forget_cached_handles`]).
static EPOCH: AtomicUsize = AtomicUsize::new(0);

/// The identity of a recorder: its address and the cache epoch.
/// `metrics::with_recorder` hands out the thread-local recorder if one is
/// set, else the global one. An address alone is not enough: a recorder
/// dropped and another created at the same address (a loop of local
/// recorders in tests) would inherit the dead one's handles.
#[inline]
fn recorder_id(recorder: &dyn Recorder) -> (usize, usize) {
    (
        std::ptr::from_ref(recorder).cast::<()>() as usize,
        EPOCH.load(Ordering::Relaxed),
    )
}

/// Makes every call site resolve its `metrics` handles again on its next
/// call. Needed only when a recorder that call sites have seen is dropped
/// and another may take its address; [`with_local_recorder`] does it for
/// you.
pub fn forget_cached_handles() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// [`metrics::with_local_recorder`], made safe for cached handles: call
/// sites used inside `f` resolve their handles on `recorder`, and none of
/// them is reused after `f` returns for a different recorder that happens
/// to live at the same address. Use it instead of the `metrics` function
/// whenever timed code runs under short-lived local recorders (tests).
///
/// ```
/// use metrics_util::debugging::DebuggingRecorder;
/// use vigil_timing::{callsite, time, with_local_recorder};
///
/// for round in 1..=3 {
///     let recorder = DebuggingRecorder::new(); // often the same address each round
///     let snapshotter = recorder.snapshotter();
///     with_local_recorder(&recorder, || time(callsite!("step"), || round));
///     assert!(!snapshotter.snapshot().into_vec().is_empty(), "round {round} recorded");
/// }
/// ```
pub fn with_local_recorder<T>(recorder: &dyn Recorder, f: impl FnOnce() -> T) -> T {
    forget_cached_handles();
    let value = metrics::with_local_recorder(recorder, f);
    forget_cached_handles();
    value
}

/// Handles resolved for one site against one recorder.
pub(crate) struct Handles {
    recorder: (usize, usize),
    pub(crate) duration: Histogram,
    pub(crate) panics: Counter,
    pub(crate) cancellations: Counter,
    pub(crate) concurrent: Gauge,
    /// `function_calls_total` for calls with no instrumented caller,
    /// indexed by [`Outcome::result_index`](crate::Outcome); resolved on
    /// first use so that a function only ever called from others has no
    /// empty root series.
    uncalled: OnceLock<[Counter; 2]>,
    /// Per-caller counters keyed by the caller site's address: pointer
    /// equality, no string hashing on the hot path.
    callers: [CallerSlot; CALLER_SLOTS],
}

#[derive(Default)]
struct CallerSlot {
    caller: AtomicUsize,
    counters: OnceLock<[Counter; 2]>,
}

impl Handles {
    fn resolve(site: &CallSite, recorder: &dyn Recorder, id: (usize, usize)) -> Handles {
        describe(recorder);
        let metadata = site.metadata();
        let concurrent = if site.concurrency {
            recorder.register_gauge(&site.key(CALLS_CONCURRENT, &[]), &metadata)
        } else {
            Gauge::noop()
        };
        Handles {
            recorder: id,
            duration: recorder.register_histogram(&site.key(CALLS_DURATION, &[]), &metadata),
            panics: recorder.register_counter(&site.key(PANICS_TOTAL, &[]), &metadata),
            cancellations: recorder
                .register_counter(&site.key(CANCELLATIONS_TOTAL, &[]), &metadata),
            concurrent,
            uncalled: OnceLock::new(),
            callers: Default::default(),
        }
    }

    /// Adds one to `function_calls_total` for this caller and result.
    #[inline]
    pub(crate) fn count_call(
        &self,
        site: &CallSite,
        recorder: &dyn Recorder,
        caller: Option<&'static CallSite>,
        result: usize,
    ) {
        let Some(caller) = caller else {
            self.uncalled
                .get_or_init(|| site.call_counters(recorder, None))[result]
                .increment(1);
            return;
        };
        let key = std::ptr::from_ref(caller) as usize;
        for slot in &self.callers {
            let mut owner = slot.caller.load(Ordering::Acquire);
            if owner == 0 {
                match slot
                    .caller
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        slot.counters
                            .get_or_init(|| site.call_counters(recorder, Some(caller)))[result]
                            .increment(1);
                        return;
                    }
                    Err(current) => owner = current,
                }
            }
            if owner == key {
                match slot.counters.get() {
                    Some(counters) => counters[result].increment(1),
                    // The slot's owner is still resolving it.
                    None => Self::count_uncached(site, recorder, caller, result),
                }
                return;
            }
        }
        Self::count_uncached(site, recorder, caller, result);
    }

    #[cold]
    fn count_uncached(
        site: &CallSite,
        recorder: &dyn Recorder,
        caller: &'static CallSite,
        result: usize,
    ) {
        let label = if result == 0 { "ok" } else { "error" };
        site.calls_counter(recorder, Some(caller), label)
            .increment(1);
    }
}

/// HELP texts, given to the recorder once per site and recorder.
fn describe(recorder: &dyn Recorder) {
    recorder.describe_counter(
        KeyName::from_const_str(CALLS_TOTAL),
        Some(Unit::Count),
        "Completed calls of instrumented functions, by caller and result (panics count as errors)."
            .into(),
    );
    recorder.describe_histogram(
        KeyName::from_const_str(CALLS_DURATION),
        Some(Unit::Seconds),
        "Duration of completed or panicked calls of instrumented functions, in seconds.".into(),
    );
    recorder.describe_gauge(
        KeyName::from_const_str(CALLS_CONCURRENT),
        Some(Unit::Count),
        "Calls of instrumented functions currently in flight.".into(),
    );
    recorder.describe_counter(
        KeyName::from_const_str(PANICS_TOTAL),
        Some(Unit::Count),
        "Calls of instrumented functions that panicked.".into(),
    );
    recorder.describe_counter(
        KeyName::from_const_str(CANCELLATIONS_TOTAL),
        Some(Unit::Count),
        "Instrumented futures dropped before they completed.".into(),
    );
}
