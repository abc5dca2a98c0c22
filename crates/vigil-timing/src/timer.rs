//! The [`Timer`] guard and the measurement it shares with timed futures.

use std::marker::PhantomData;
use std::time::Duration;

use metrics::Gauge;
use quanta::Instant;

use crate::caller::{self, Scope};
use crate::{CallSite, Outcome};

/// One call in progress: the `Send` core shared by [`Timer`] and
/// [`Timed`](crate::Timed).
pub(crate) struct Measurement {
    site: &'static CallSite,
    caller: Option<&'static CallSite>,
    start: Instant,
    /// The gauge raised at start (a no-op one for sites without concurrency
    /// tracking), lowered at finish whatever the outcome; held so it is
    /// lowered on the recorder it was raised on.
    in_flight: Gauge,
    /// Whether the thread was already unwinding when the call started: a
    /// call made from a `Drop` during unwinding that returns normally is
    /// no panic.
    unwinding_at_start: bool,
}

impl Measurement {
    /// Starts a call of `site` made by `caller`.
    #[inline]
    pub(crate) fn start(site: &'static CallSite, caller: Option<&'static CallSite>) -> Measurement {
        let in_flight = if site.tracks_concurrency() {
            raise(site)
        } else {
            Gauge::noop()
        };
        Measurement {
            site,
            caller,
            start: Instant::now(),
            in_flight,
            unwinding_at_start: std::thread::panicking(),
        }
    }

    /// Whether a panic started since this call began is unwinding now.
    #[inline]
    pub(crate) fn panicked(&self) -> bool {
        !self.unwinding_at_start && std::thread::panicking()
    }

    #[inline]
    pub(crate) fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// Records the call; the caller makes sure it happens once. Hot path:
    /// one clock read, then through handles cached on the site, one
    /// histogram record and one counter increment.
    #[inline]
    pub(crate) fn record(&self, outcome: Outcome) {
        let elapsed = self.elapsed();
        self.in_flight.decrement(1.0);
        let cached = self
            .site
            .cached_handles()
            .and_then(|handles| Some((handles, handles.cached_calls(self.caller)?)));
        match cached {
            Some((handles, calls)) => {
                handles.record(outcome, elapsed, |result| calls[result].increment(1));
            }
            None => self.record_uncached(outcome, elapsed),
        }
        if let Some(threshold) = self.site.slow_threshold()
            && elapsed > threshold
            && outcome != Outcome::Cancelled
        {
            report_slow(self.site, elapsed, threshold, outcome);
        }
    }

    /// [`record`](Self::record) when the handles or counters it needs are
    /// not resolved yet for the current recorder.
    #[cold]
    #[inline(never)]
    fn record_uncached(&self, outcome: Outcome, elapsed: Duration) {
        let (site, caller) = (self.site, self.caller);
        site.with_handles(|handles, recorder| {
            handles.record(outcome, elapsed, |result| {
                handles.count_call(site, recorder, caller, result);
            });
        });
    }
}

/// Raises `site`'s in-flight gauge; returns it to be lowered at finish.
#[inline(never)]
fn raise(site: &'static CallSite) -> Gauge {
    site.with_handles(|handles, _| {
        handles.concurrent.increment(1.0);
        handles.concurrent.clone()
    })
}

#[cold]
#[inline(never)]
fn report_slow(site: &CallSite, elapsed: Duration, threshold: Duration, outcome: Outcome) {
    tracing::warn!(
        function = site.name(),
        module = site.module(),
        elapsed = ?elapsed,
        threshold = ?threshold,
        outcome = outcome.as_str(),
        "slow call"
    );
}

/// An RAII guard timing one call of a [`CallSite`]; it records when dropped.
///
/// Dropped normally it records [`Outcome::Ok`]; dropped while its thread
/// unwinds from a panic that started after it did, it records
/// [`Outcome::Panic`]; [`finish`] (or
/// [`ok`] / [`error`]) records an explicit outcome. It records exactly once.
/// While alive it is the current caller for instrumented calls made on this
/// thread, which is why it is not `Send`; to time a future use
/// [`TimedExt::timed`](crate::TimedExt::timed) (a `Timer` held across an
/// `.await` stays the current caller for whatever else runs on the thread
/// meanwhile). A timer passed to `std::mem::forget` never records and stays
/// the current caller of its thread.
///
/// Time is read from `quanta::Instant::now()`, so `quanta::with_clock` with
/// a `quanta::Clock::mock()` controls it in tests.
///
/// ```
/// use vigil_timing::{callsite, Timer};
///
/// fn parse(input: &str) -> Result<u64, std::num::ParseIntError> {
///     let timer = Timer::start(callsite!("parse"));
///     let parsed = input.parse();
///     match &parsed {
///         Ok(_) => timer.ok(),
///         Err(_) => timer.error(),
///     }
///     parsed
/// }
/// assert_eq!(parse("42"), Ok(42));
/// ```
///
/// [`finish`]: Timer::finish
/// [`ok`]: Timer::ok
/// [`error`]: Timer::error
#[must_use = "a Timer records when dropped; `let _ = Timer::start(..)` records an empty call at once"]
pub struct Timer {
    measurement: Measurement,
    /// Whether the call is recorded already, so that dropping records
    /// nothing more.
    recorded: bool,
    scope: Scope,
    /// The caller scope is thread-local.
    _not_send: PhantomData<*const ()>,
}

impl Timer {
    /// Starts timing a call of `site`.
    #[inline]
    pub fn start(site: &'static CallSite) -> Timer {
        let (scope, caller) = caller::enter(site);
        Timer {
            measurement: Measurement::start(site, caller),
            recorded: false,
            scope,
            _not_send: PhantomData,
        }
    }

    /// Records the call with `outcome` now.
    #[inline]
    pub fn finish(mut self, outcome: Outcome) {
        // Set first: a recorder that panics must not make the drop record
        // the call a second time.
        self.recorded = true;
        self.measurement.record(outcome);
        // What dropping would do, without the drop glue, which the compiler
        // keeps out of line (a call and a second look at `recorded` per
        // call otherwise). Leaks nothing: the gauge is dropped here and the
        // scope left. Not in a method taking `self`: moving the timer there
        // costs more than the glue.
        drop(std::mem::replace(
            &mut self.measurement.in_flight,
            Gauge::noop(),
        ));
        self.scope.exit();
        std::mem::forget(self);
    }

    /// Records the call as successful now.
    #[inline]
    pub fn ok(self) {
        self.finish(Outcome::Ok);
    }

    /// Records the call as failed now.
    #[inline]
    pub fn error(self) {
        self.finish(Outcome::Error);
    }

    /// Time since the timer started.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.measurement.elapsed()
    }

    /// Records the call when the timer is dropped without an outcome.
    #[inline(never)]
    fn record_on_drop(&mut self) {
        self.recorded = true;
        let outcome = if self.measurement.panicked() {
            Outcome::Panic
        } else {
            Outcome::Ok
        };
        self.measurement.record(outcome);
    }
}

impl Drop for Timer {
    #[inline]
    fn drop(&mut self) {
        if !self.recorded {
            self.record_on_drop();
        }
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("site", &Some(self.measurement.site.name()))
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

/// Runs `f` as one call of `site`: `Ok` when it returns, `Panic` when it
/// panics (the panic propagates unchanged).
///
/// To classify the return value use [`time_with`], or the [`time!`](crate::time!)
/// macro, which tells `Result` variants apart by itself.
///
/// ```
/// use vigil_timing::{callsite, time};
///
/// let sum = time(callsite!("sum"), || (1..=10).sum::<u32>());
/// assert_eq!(sum, 55);
/// ```
#[inline]
pub fn time<T>(site: &'static CallSite, f: impl FnOnce() -> T) -> T {
    time_with(site, f, Outcome::always_ok)
}

/// Runs `f` as one call of `site`, deciding the outcome from its value with
/// `classify`.
///
/// ```
/// use vigil_timing::{callsite, time_with, Outcome};
///
/// let parsed = time_with(callsite!("parse"), || "x".parse::<u8>(), Outcome::of_result);
/// assert!(parsed.is_err());
/// ```
#[inline]
pub fn time_with<T>(
    site: &'static CallSite,
    f: impl FnOnce() -> T,
    classify: impl FnOnce(&T) -> Outcome,
) -> T {
    let timer = Timer::start(site);
    let value = f();
    timer.finish(classify(&value));
    value
}
