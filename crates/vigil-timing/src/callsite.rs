//! Static call sites and the `metrics` handles cached on them.
//!
//! A [`CallSite`] is a `static` describing one instrumented function or
//! block: its name, module, static labels, slow threshold and whether it
//! tracks in-flight calls. The first call through a site resolves its
//! `metrics` handles (hashing the keys once) and caches them together with
//! the identity of the recorder they came from. Later calls check that
//! identity with a few plain loads and compares and use the cached handles;
//! a recorder installed later (or a thread-local one in a test) is noticed
//! and the handles are resolved again, so no call is ever recorded into a
//! stale recorder.
//!
//! Each site keeps the handles of the first [`SLOTS`] recorders it sees in
//! write-once slots: reading one is a plain load (no locked instruction, no
//! reference count), and none is ever replaced or freed while the site may
//! be read. A process usually sees one or two recorders (the no-op one
//! before `install`, then the global one), so the slots hold them for good.
//! Recorders beyond that (a stream of short-lived local recorders in tests,
//! or cache epochs bumped by [`forget_cached_handles`]) share one
//! replaceable `arc_swap` slot, which costs a few locked instructions per
//! call but is always correct.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, Unit};

use crate::Outcome;
use crate::build_info::{SERVICE_NAME, service_name};
use crate::objectives::{
    OBJECTIVE_LATENCY_THRESHOLD, OBJECTIVE_NAME, OBJECTIVE_PERCENTILE, Objective,
};

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

/// How many recorder identities a site keeps handles for in write-once
/// slots; further ones share a replaceable slot.
const SLOTS: usize = 4;

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
    objective: Option<&'static Objective>,
    /// Handles for the first recorders seen, filled in order, never
    /// replaced.
    slots: [OnceLock<Box<Handles>>; SLOTS],
    /// Handles for the latest recorder that found every slot taken.
    overflow: ArcSwapOption<Handles>,
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
            objective: None,
            slots: [const { OnceLock::new() }; SLOTS],
            overflow: ArcSwapOption::const_empty(),
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

    /// Counts this site's calls towards `objective`: its success-rate
    /// target adds `objective_name` and `objective_percentile` to
    /// `function_calls_total`, its latency target adds those and
    /// `objective_latency_threshold` to `function_calls_duration_seconds`
    /// (see [`objectives`](crate::objectives)).
    ///
    /// ```
    /// use vigil_timing::CallSite;
    /// use vigil_timing::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
    ///
    /// const API_SLO: Objective = Objective::new("api")
    ///     .success_rate(ObjectivePercentile::P99_9)
    ///     .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);
    /// static HANDLER: CallSite = CallSite::new("handler", module_path!()).objective(&API_SLO);
    /// assert_eq!(HANDLER.service_objective(), Some(&API_SLO));
    /// ```
    #[must_use]
    pub const fn objective(mut self, objective: &'static Objective) -> CallSite {
        self.objective = Some(objective);
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

    /// The objective this site's calls count towards, if any.
    #[must_use]
    pub const fn service_objective(&self) -> Option<&'static Objective> {
        self.objective
    }

    /// This site's handles for the current recorder if a slot holds them:
    /// the hot path. `metrics::with_recorder` (one thread-local read, one
    /// atomic load), then the first slot's state, its handles' recorder
    /// identity and the cache epoch: plain loads and compares, no locked
    /// instruction, no reference count.
    #[inline]
    pub(crate) fn cached_handles(&'static self) -> Option<&'static Handles> {
        metrics::with_recorder(|recorder| self.slot_for(recorder_id(recorder)))
    }

    /// Runs `f` with this site's handles for the current recorder,
    /// resolving them first if no slot holds them yet.
    #[inline]
    pub(crate) fn with_handles<R>(
        &'static self,
        f: impl FnOnce(&Handles, &dyn Recorder) -> R,
    ) -> R {
        metrics::with_recorder(|recorder| {
            let id = recorder_id(recorder);
            match self.slot_for(id) {
                Some(handles) => f(handles, recorder),
                None => self.with_uncached(recorder, id, f),
            }
        })
    }

    /// The handles for `id` if a slot holds them.
    #[inline]
    fn slot_for(&'static self, id: RecorderId) -> Option<&'static Handles> {
        match self.slots[0].get() {
            Some(handles) if handles.recorder == id => Some(handles),
            _ => self.later_slot_for(id),
        }
    }

    /// The handles for `id` in a slot after the first, if any.
    #[inline(never)]
    fn later_slot_for(&'static self, id: RecorderId) -> Option<&'static Handles> {
        for slot in &self.slots[1..] {
            match slot.get() {
                Some(handles) if handles.recorder == id => return Some(handles),
                Some(_) => {}
                // Slots fill in order: nothing after an empty one.
                None => return None,
            }
        }
        None
    }

    /// The handles for `id` from the overflow slot, or resolved now and
    /// kept in a free slot (the overflow one once all are taken).
    #[cold]
    #[inline(never)]
    fn with_uncached<R>(
        &'static self,
        recorder: &dyn Recorder,
        id: RecorderId,
        f: impl FnOnce(&Handles, &dyn Recorder) -> R,
    ) -> R {
        let cached = self.overflow.load();
        if let Some(handles) = cached.as_deref()
            && handles.recorder == id
        {
            return f(handles, recorder);
        }
        drop(cached);
        // Resolved before claiming a slot: a recorder that reaches this
        // site again while registering must not find a slot half set.
        let mut spare = Some(Box::new(Handles::resolve(self, recorder, id)));
        for slot in &self.slots {
            if let Some(handles) = spare.take()
                && let Err(handles) = slot.set(handles)
            {
                spare = Some(handles);
            }
            // Ours, or the same recorder's from a thread that won the race.
            if let Some(found) = slot.get()
                && found.recorder == id
            {
                return f(found, recorder);
            }
        }
        // Every slot holds another recorder's handles (had ours gone into
        // one, it would have been found above).
        let handles: Arc<Handles> = match spare {
            Some(handles) => Arc::from(handles),
            None => Arc::new(Handles::resolve(self, recorder, id)),
        };
        self.overflow.store(Some(Arc::clone(&handles)));
        f(&handles, recorder)
    }

    /// The key of this site's series of metric `name`: `function`,
    /// `module`, `service_name`, then `extra`, the objective's labels for
    /// that metric, and the static labels.
    fn key(&self, name: &'static str, extra: &[(&'static str, &'static str)]) -> Key {
        let objective = self.objective_labels(name);
        let mut labels = Vec::with_capacity(3 + extra.len() + objective.len() + self.labels.len());
        labels.push(Label::from_static_parts("function", self.name));
        labels.push(Label::from_static_parts("module", self.module));
        labels.push(Label::from_static_parts(SERVICE_NAME, service_name()));
        for &(k, v) in extra.iter().chain(&objective).chain(self.labels) {
            labels.push(Label::from_static_parts(k, v));
        }
        Key::from_parts(name, labels)
    }

    /// The objective labels of metric `name`, as autometrics adds them: a
    /// success rate on the call counter, a latency target on the duration
    /// histogram, nothing elsewhere.
    fn objective_labels(&self, name: &'static str) -> Vec<(&'static str, &'static str)> {
        let Some(objective) = self.objective else {
            return Vec::new();
        };
        match name {
            CALLS_TOTAL => objective
                .success_rate_objective()
                .map_or_else(Vec::new, |percentile| {
                    vec![
                        (OBJECTIVE_NAME, objective.name()),
                        (OBJECTIVE_PERCENTILE, percentile.as_str()),
                    ]
                }),
            CALLS_DURATION => {
                objective
                    .latency_objective()
                    .map_or_else(Vec::new, |(threshold, percentile)| {
                        vec![
                            (OBJECTIVE_NAME, objective.name()),
                            (OBJECTIVE_PERCENTILE, percentile.as_str()),
                            (OBJECTIVE_LATENCY_THRESHOLD, threshold.as_str()),
                        ]
                    })
            }
            _ => Vec::new(),
        }
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
            .field("objective", &self.objective)
            .finish_non_exhaustive()
    }
}

/// Bumped whenever cached handles may belong to a recorder that is gone
/// (see [`with_local_recorder`] and [`forget_cached_handles`]).
static EPOCH: AtomicUsize = AtomicUsize::new(0);

/// A recorder's address and the cache epoch it was seen in.
type RecorderId = (usize, usize);

/// The identity of a recorder: its address and the cache epoch.
/// `metrics::with_recorder` hands out the thread-local recorder if one is
/// set, else the global one. An address alone is not enough: a recorder
/// dropped and another created at the same address (a loop of local
/// recorders in tests) would inherit the dead one's handles.
#[inline]
fn recorder_id(recorder: &dyn Recorder) -> RecorderId {
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
    recorder: RecorderId,
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
    fn resolve(site: &CallSite, recorder: &dyn Recorder, id: RecorderId) -> Handles {
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

    /// Records one finished call: `count` adds it to `function_calls_total`
    /// given the index of its result.
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome, elapsed: Duration, count: impl FnOnce(usize)) {
        if outcome == Outcome::Cancelled {
            self.cancellations.increment(1);
            return;
        }
        // Counted before the histogram record: a locked add (vigil's
        // registry counters) then waits for none of the record's stores;
        // the other order measured 5 ns slower per call.
        count(outcome.result_index());
        self.duration.record(seconds(elapsed));
        if outcome == Outcome::Panic {
            self.panics.increment(1);
        }
    }

    /// The `function_calls_total` counters (by result index) of calls made
    /// by `caller`, if they are resolved already.
    #[inline]
    pub(crate) fn cached_calls(&self, caller: Option<&'static CallSite>) -> Option<&[Counter; 2]> {
        match caller {
            None => self.uncalled.get(),
            Some(caller) => self.caller_calls(caller),
        }
    }

    /// [`cached_calls`](Self::cached_calls) for a call made by `caller`.
    #[inline(never)]
    fn caller_calls(&self, caller: &'static CallSite) -> Option<&[Counter; 2]> {
        let key = std::ptr::from_ref(caller) as usize;
        for slot in &self.callers {
            match slot.caller.load(Ordering::Acquire) {
                owner if owner == key => return slot.counters.get(),
                // Slots are claimed in order: nothing after a free one.
                0 => return None,
                _ => {}
            }
        }
        None
    }

    /// Adds one to `function_calls_total` for this caller and result,
    /// resolving its counters first if needed.
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

/// `elapsed.as_secs_f64()`, bit for bit, without its division for calls
/// under a second. The division's latency (about 4 ns here) sits right
/// before the histogram record, whose every step depends on the value; two
/// multiplications and an add take a third of that.
///
/// `nanos * NANO_HI` is exact (`nanos < 2^30` and `NANO_HI` has 23
/// significant bits), so the sum is rounded once; that it always rounds to
/// the correctly rounded `nanos / 1e9`, which is what `as_secs_f64` returns
/// for whole seconds of 0, was checked for every `nanos` below 10^9 (a
/// two-second run of `assert_seconds_match` over the whole range in
/// release; the test `seconds_match_as_secs_f64` keeps 400,000 of them,
/// the ends of the range included). IEEE-754 binary64 arithmetic, no fused
/// multiply-add: Rust never contracts.
#[inline]
fn seconds(elapsed: Duration) -> f64 {
    if elapsed.as_secs() != 0 {
        return elapsed.as_secs_f64();
    }
    let nanos = f64::from(elapsed.subsec_nanos());
    nanos * NANO_HI + nanos * NANO_LO
}

/// 10^-9 truncated to 23 significant bits.
const NANO_HI: f64 = f64::from_bits(0x3e11_2e0b_c000_0000);
/// 10^-9 - `NANO_HI`, rounded to the nearest `f64`.
const NANO_LO: f64 = f64::from_bits(0x3ca4_136b_4a59_7317);

/// HELP texts, given to the recorder once per site and recorder.
fn describe(recorder: &dyn Recorder) {
    let counter = |name: &'static str, help: &'static str| {
        recorder.describe_counter(
            KeyName::from_const_str(name),
            Some(Unit::Count),
            help.into(),
        );
    };
    counter(
        CALLS_TOTAL,
        "Completed calls of instrumented functions, by caller and result (panics count as errors).",
    );
    counter(
        PANICS_TOTAL,
        "Calls of instrumented functions that panicked.",
    );
    counter(
        CANCELLATIONS_TOTAL,
        "Instrumented futures dropped before they completed.",
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
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    use super::*;
    use crate::Timer;

    fn calls(snapshotter: &Snapshotter) -> u64 {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == CALLS_TOTAL)
            .map(|(.., value)| match value {
                DebugValue::Counter(count) => count,
                other => panic!("{CALLS_TOTAL} is not a counter: {other:?}"),
            })
            .sum()
    }

    fn assert_seconds_match(nanos: u32) {
        let elapsed = Duration::new(0, nanos);
        assert_eq!(
            seconds(elapsed).to_bits(),
            elapsed.as_secs_f64().to_bits(),
            "{nanos} ns"
        );
    }

    #[test]
    fn seconds_match_as_secs_f64() {
        // The split constants: 23 significant bits, and the small rest.
        const { assert!(NANO_HI.to_bits() & ((1 << 30) - 1) == 0) };
        const { assert!(NANO_LO > 0.0 && NANO_LO < NANO_HI * 1e-6) };
        (0..100_000).for_each(assert_seconds_match);
        (999_900_000..1_000_000_000).for_each(assert_seconds_match);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            assert_seconds_match(u32::try_from(x % 1_000_000_000).unwrap_or(0));
        }
        for elapsed in [
            Duration::new(1, 0),
            Duration::new(3, 150_000_000),
            Duration::MAX,
        ] {
            assert_eq!(seconds(elapsed).to_bits(), elapsed.as_secs_f64().to_bits());
        }
    }

    #[test]
    fn recorders_beyond_the_slots_each_receive_their_calls() {
        static SITE: CallSite = CallSite::new("many_recorders", module_path!());
        // Leaked: no two may share an address.
        let recorders: Vec<&'static DebuggingRecorder> = (0..SLOTS + 3)
            .map(|_| &*Box::leak(Box::new(DebuggingRecorder::new())))
            .collect();
        let snapshotters: Vec<Snapshotter> = recorders.iter().map(|r| r.snapshotter()).collect();
        for _ in 0..3 {
            for &recorder in &recorders {
                metrics::with_local_recorder(recorder, || Timer::start(&SITE).ok());
            }
        }
        for (i, snapshotter) in snapshotters.iter().enumerate() {
            assert_eq!(calls(snapshotter), 3, "recorder {i}");
        }
        assert!(SITE.slots.iter().all(|slot| slot.get().is_some()));
    }
}
