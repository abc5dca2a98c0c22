//! Caller tracking: which instrumented function is running on this thread.
//!
//! A thread-local pointer to the innermost active [`CallSite`] is set while a
//! synchronous [`Timer`](crate::Timer) is alive and around every poll of a
//! [`Timed`](crate::Timed) future, so a call started inside another
//! instrumented call (also across `.await` points) knows its caller without
//! any lock or global state.

use std::cell::Cell;

use crate::CallSite;

thread_local! {
    static CURRENT: Cell<Option<&'static CallSite>> = const { Cell::new(None) };
}

/// The innermost instrumented call site active on this thread, if any.
///
/// ```
/// use vigil_timing::{CallSite, Timer, current_call_site};
///
/// static OUTER: CallSite = CallSite::new("outer", module_path!());
/// assert!(current_call_site().is_none());
/// let timer = Timer::start(&OUTER);
/// assert_eq!(current_call_site().map(|s| s.name()), Some("outer"));
/// drop(timer);
/// assert!(current_call_site().is_none());
/// ```
#[must_use]
pub fn current_call_site() -> Option<&'static CallSite> {
    CURRENT.with(Cell::get)
}

/// Marks `site` as the current call site until the returned scope is dropped.
pub(crate) fn enter(site: &'static CallSite) -> Scope {
    Scope {
        previous: CURRENT.with(|c| c.replace(Some(site))),
    }
}

/// Restores the previous call site when dropped, also during unwinding.
pub(crate) struct Scope {
    previous: Option<&'static CallSite>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}
