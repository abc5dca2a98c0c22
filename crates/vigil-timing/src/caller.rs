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

/// The active sites of one thread.
struct Stack {
    /// Slots in use: `sites[..top]`, the last one always occupied.
    top: Cell<usize>,
    sites: [Cell<Option<&'static CallSite>>; DEPTH],
}

impl Stack {
    /// The topmost site: the current caller.
    #[inline]
    fn current(&self) -> Option<&'static CallSite> {
        let top = self.top.get();
        if top == 0 {
            return None;
        }
        self.sites.get(top - 1).and_then(Cell::get)
    }
}

thread_local! {
    static STACK: Stack = const {
        Stack {
            top: Cell::new(0),
            sites: [const { Cell::new(None) }; DEPTH],
        }
    };
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
#[inline]
pub fn current_call_site() -> Option<&'static CallSite> {
    STACK.with(Stack::current)
}

/// Makes `site` the current call site until the returned scope is dropped;
/// also returns the site that was current until now (the caller).
#[inline]
pub(crate) fn enter(site: &'static CallSite) -> (Scope, Option<&'static CallSite>) {
    STACK.with(|stack| {
        let caller = stack.current();
        let top = stack.top.get();
        let Some(slot) = stack.sites.get(top) else {
            return (Scope { slot: None }, caller);
        };
        slot.set(Some(site));
        stack.top.set(top + 1);
        (Scope { slot: Some(top) }, caller)
    })
}

/// Frees its stack slot when dropped, also during unwinding.
pub(crate) struct Scope {
    slot: Option<usize>,
}

impl Scope {
    /// Frees the slot now; dropping the scope then does nothing.
    #[inline]
    pub(crate) fn exit(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        STACK.with(|stack| {
            if let Some(site) = stack.sites.get(slot) {
                site.set(None);
            }
            let mut top = stack.top.get();
            while let Some(below) = top.checked_sub(1)
                && stack.sites.get(below).is_some_and(|s| s.get().is_none())
            {
                top = below;
            }
            stack.top.set(top);
        });
    }
}

impl Drop for Scope {
    #[inline]
    fn drop(&mut self) {
        self.exit();
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

    /// Drops `scope` and checks that the current call site is then `now`.
    fn leave(scope: Scope, now: Option<&str>) {
        drop(scope);
        assert_eq!(current(), now);
    }

    #[test]
    fn scopes_dropped_in_start_order_leave_no_stale_caller() {
        let (a, _) = enter(&A);
        let (b, caller) = enter(&B);
        assert_eq!(caller.map(CallSite::name), Some("a"));
        leave(a, Some("b"));
        leave(b, None);
    }

    #[test]
    fn a_scope_dropped_from_the_middle_keeps_the_inner_caller() {
        let (a, _) = enter(&A);
        let (b, _) = enter(&B);
        let (c, _) = enter(&C);
        leave(b, Some("c"));
        leave(c, Some("a"));
        leave(a, None);
    }

    #[test]
    fn nesting_beyond_the_depth_reports_the_deepest_tracked_site() {
        let outer: Vec<Scope> = (0..DEPTH).map(|_| enter(&A).0).collect();
        let (inner, caller) = enter(&B);
        assert_eq!(caller.map(CallSite::name), Some("a"));
        assert_eq!(current(), Some("a"));
        drop(inner);
        drop(outer);
        assert_eq!(current(), None);
    }
}
