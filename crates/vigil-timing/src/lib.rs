//! Call timing for the [`metrics`] facade: RAII [`Timer`] guards, timed
//! futures and closures, recorded per static [`CallSite`] with outcomes
//! (ok, error, panic, cancelled), caller tracking and slow-call warnings.
//!
//! ```
//! use vigil_timing::{callsite, time, Outcome, TimedExt, Timer};
//!
//! // A guard: records when dropped (a panic is recorded as a panic).
//! fn handle() -> u32 {
//!     let _timer = Timer::start(callsite!("handle"));
//!     40 + 2
//! }
//!
//! // A closure, with `Result` variants telling ok from error.
//! let parsed = vigil_timing::time!("parse", || "42".parse::<u32>());
//! assert_eq!(parsed, Ok(42));
//!
//! // A future: dropped before completion it is recorded as cancelled.
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! let n = async { handle() }.timed(callsite!("request")).await;
//! assert_eq!(n, 42);
//! # });
//! assert_eq!(time(callsite!("sum"), || 2 + 2), 4);
//! ```
//!
//! Every call records, through whatever `metrics` recorder is installed:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `function_calls_total` | counter | `function`, `module`, `service_name`, `caller_function`, `caller_module`, `result` (`ok`/`error`) [, `objective_name`, `objective_percentile`] |
//! | `function_calls_duration_seconds` | histogram (seconds) | `function`, `module`, `service_name` [, `objective_name`, `objective_percentile`, `objective_latency_threshold`] |
//! | `function_calls_concurrent` | gauge (sites with concurrency tracking) | `function`, `module`, `service_name` |
//! | `function_panics_total` | counter | `function`, `module`, `service_name` |
//! | `function_cancellations_total` | counter | `function`, `module`, `service_name` |
//!
//! A site's static labels are added to all of them; a site's
//! [`objective`](objectives) adds its labels as autometrics does.
//! `service_name` is [`service_name()`], resolved once per process from the
//! environment variables autometrics reads. Cancelled calls are
//! counted only in `function_cancellations_total`; panics are counted as
//! `result="error"` and in `function_panics_total`.
//!
//! Sites named at run time (one per AI model, per query name) come from a
//! [`TimerTable`]: one site per key, made on first use, found again without
//! a lock, at most the table's capacity of them.
//!
//! The `metrics` handles are resolved once per call site and cached with the
//! identity of the recorder they came from, so a recorder installed after
//! the first call still receives every later call.

#![forbid(unsafe_code)]

mod build_info;
mod caller;
mod callsite;
mod future;
pub mod objectives;
mod outcome;
mod table;
mod timer;

pub use build_info::{
    AUTOMETRICS_SPEC_VERSION, BUILD_INFO, BuildInfo, SERVICE_NAME, build_info, service_name,
};
pub use caller::current_call_site;
pub use callsite::{
    CALLS_CONCURRENT, CALLS_DURATION, CALLS_TOTAL, CANCELLATIONS_TOTAL, CallSite, PANICS_TOTAL,
    forget_cached_handles, with_local_recorder,
};
pub use future::{Timed, TimedExt};
pub use outcome::Outcome;
pub use table::{TimerKey, TimerTable};
pub use timer::{Timer, time, time_with};

/// A `&'static CallSite` named `$name` in the calling module.
///
/// ```
/// use vigil_timing::{callsite, Timer};
///
/// let site = callsite!("rebuild_index");
/// assert_eq!(site.name(), "rebuild_index");
/// assert_eq!(site.module(), module_path!());
/// drop(Timer::start(site));
/// ```
#[macro_export]
macro_rules! callsite {
    ($name:expr) => {{
        static SITE: $crate::CallSite = $crate::CallSite::new($name, ::core::module_path!());
        &SITE
    }};
}

/// Times a closure as a call named `$name`; a `Result` value is recorded as
/// `ok` or `error` by its variant, any other value as `ok`, a panic as a
/// panic.
///
/// ```
/// let parsed: Result<u8, _> = vigil_timing::time!("parse", || "300".parse::<u8>());
/// assert!(parsed.is_err()); // recorded with result="error"
/// let n = vigil_timing::time!("square", || 12 * 12);
/// assert_eq!(n, 144);
/// ```
#[macro_export]
macro_rules! time {
    ($name:expr, $f:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{AnyOutcome as _, ResultOutcome as _};
        $crate::time_with($crate::callsite!($name), $f, |value| {
            (&$crate::__private::Probe(value)).vigil_outcome()
        })
    }};
}

/// Support for the code `#[timed]` and the macros here generate. Not a
/// public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    use crate::Outcome;

    pub use core::time::Duration;

    /// Calls `f` once. Passing the body as an `FnOnce` lets it move out of
    /// captured references (`&mut self` fields) as the original body could.
    #[inline(always)]
    pub fn call_once<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Wraps a return value for outcome probing by autoref specialization:
    /// `(&Probe(&value)).vigil_outcome()` picks [`ResultOutcome`] for a
    /// `Result` and [`AnyOutcome`] for anything else.
    pub struct Probe<'a, T>(pub &'a T);

    /// Chosen for `Result` values: `ok` or `error` by variant.
    pub trait ResultOutcome {
        /// The outcome.
        fn vigil_outcome(&self) -> Outcome;
    }

    impl<T, E> ResultOutcome for Probe<'_, Result<T, E>> {
        #[inline(always)]
        fn vigil_outcome(&self) -> Outcome {
            Outcome::of_result(self.0)
        }
    }

    /// Chosen for any other value: `ok`.
    pub trait AnyOutcome {
        /// The outcome.
        fn vigil_outcome(&self) -> Outcome;
    }

    impl<T> AnyOutcome for &Probe<'_, T> {
        #[inline(always)]
        fn vigil_outcome(&self) -> Outcome {
            Outcome::Ok
        }
    }
}
