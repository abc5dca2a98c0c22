//! Caller tracking: which instrumented function is running on this thread.
//!
//! A thread-local stack of active [`CallSite`]s is pushed while a
//! synchronous [`Timer`](crate::Timer) is alive and around every poll of a
//! [`Timed`](crate::Timed) future, so a call started inside another
//! instrumented call (also across `.await` points) knows its caller without
//! any lock or global state.
//!
//! Guards usually end in reverse order of starting, but need not: a timer
//! moved out of its scope, or two timers dropped in the order they were
//! made, must not leave a finished call as the current caller. So each
//! scope owns one slot of a fixed-size stack and clears it when dropped;
//! the current caller is the topmost slot still in use, and cleared slots
//! are popped from the top.

use std::cell::Cell;

use crate::CallSite;

/// Nesting deeper than this reports the deepest tracked site as the caller.
const DEPTH: usize = 32;

thread_local! {
    static STACK: [Cell<Option<&'static CallSite>>; DEPTH] = const { [const { Cell::new(None) }; DEPTH] };
    /// Slots in use: `STACK[..TOP]`, the last one always occupied.
    static TOP: Cell<usize> = const { Cell::new(0) };
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
    let top = TOP.with(Cell::get);
    if top == 0 {
        return None;
    }
    STACK.with(|stack| stack[top - 1].get())
}

/// Makes `site` the current call site until the returned scope is dropped.
#[inline]
pub(crate) fn enter(site: &'static CallSite) -> Scope {
    let top = TOP.with(Cell::get);
    if top == DEPTH {
        return Scope { slot: None };
    }
    STACK.with(|stack| stack[top].set(Some(site)));
    TOP.with(|t| t.set(top + 1));
    Scope { slot: Some(top) }
}

/// Frees its stack slot when dropped, also during unwinding.
pub(crate) struct Scope {
    slot: Option<usize>,
}

impl Drop for Scope {
    #[inline]
    fn drop(&mut self) {
        let Some(slot) = self.slot else {
            return;
        };
        STACK.with(|stack| {
            stack[slot].set(None);
            TOP.with(|top| {
                let mut t = top.get();
                while t > 0 && stack[t - 1].get().is_none() {
                    t -= 1;
                }
                top.set(t);
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static A: CallSite = CallSite::new("a", "m");
    static B: CallSite = CallSite::new("b", "m");
    static C: CallSite = CallSite::new("c", "m");

    fn current() -> Option<&'static str> {
        current_call_site().map(CallSite::name)
    }

    #[test]
    fn scopes_dropped_in_start_order_leave_no_stale_caller() {
        let a = enter(&A);
        let b = enter(&B);
        drop(a);
        assert_eq!(current(), Some("b"));
        drop(b);
        assert_eq!(current(), None);
    }

    #[test]
    fn a_scope_dropped_from_the_middle_keeps_the_inner_caller() {
        let a = enter(&A);
        let b = enter(&B);
        let c = enter(&C);
        drop(b);
        assert_eq!(current(), Some("c"));
        drop(c);
        assert_eq!(current(), Some("a"));
        drop(a);
        assert_eq!(current(), None);
    }

    #[test]
    fn nesting_beyond_the_depth_reports_the_deepest_tracked_site() {
        let outer: Vec<Scope> = (0..DEPTH).map(|_| enter(&A)).collect();
        let inner = enter(&B);
        assert_eq!(current(), Some("a"));
        drop(inner);
        drop(outer);
        assert_eq!(current(), None);
    }
}
