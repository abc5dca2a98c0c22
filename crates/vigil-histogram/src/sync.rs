//! The atomics the lock-free parts are built on (`std`'s, or loom's under
//! `cfg(loom)` so the model checker explores their interleavings), a
//! reader's [`backoff`], and [`OnceBox`], the lazily allocated pointer
//! behind every page and shard.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU64, fence};

/// Waits a little before a reader's `attempt`-th retry (from 1): a spin
/// hint for the first few, then a yield, so a reader that keeps meeting a
/// write in progress lets the writer's thread run. Under loom, a yield:
/// the model checker then schedules the other threads.
#[inline]
pub(crate) fn backoff(attempt: u32) {
    #[cfg(loom)]
    {
        let _ = attempt;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        if attempt < 8 {
            for _ in 0..(1u32 << attempt) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
}

/// A heap value set at most once, by whichever thread gets there first
/// (the same idea as `once_cell::race::OnceBox`): readers pay one acquire
/// load; racing initializers each build a value, one compare-exchange wins
/// and the losers drop theirs. No lock, so a thread that stalls while
/// initializing never blocks another.
///
/// The value is freed only when the `OnceBox` itself is dropped.
pub(crate) struct OnceBox<T> {
    ptr: AtomicPtr<T>,
    /// `Send`/`Sync` as a `Box<T>` that any sharing thread may create or
    /// drop: `Send` needs `T: Send`, `Sync` needs `T: Send + Sync`.
    _owns: PhantomData<(Box<T>, std::sync::Mutex<Box<T>>)>,
}

impl<T> OnceBox<T> {
    pub(crate) fn new() -> Self {
        OnceBox {
            ptr: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// The value, if set.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        let ptr = self.ptr.load(Acquire);
        // SAFETY: a non-null pointer was stored by the winning
        // compare-exchange in `init`, from `Box::into_raw`, and is freed only
        // by `Drop`, which takes `&mut self`; so it points to a live `T` for
        // as long as `&self` lives. The acquire load pairs with the winner's
        // release (AcqRel) store, so the `T`'s initialization is visible.
        unsafe { ptr.as_ref() }
    }

    /// The value, set with `make` first if it is not set yet.
    #[inline]
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> Box<T>) -> &T {
        match self.get() {
            Some(value) => value,
            None => self.init(make),
        }
    }

    #[cold]
    #[inline(never)]
    fn init(&self, make: impl FnOnce() -> Box<T>) -> &T {
        let new = Box::into_raw(make());
        match self
            .ptr
            .compare_exchange(ptr::null_mut(), new, AcqRel, Acquire)
        {
            // SAFETY: `new` came from `Box::into_raw` just above and is now
            // owned by `self` (freed only in `Drop`, which needs `&mut self`).
            Ok(_) => unsafe { &*new },
            Err(existing) => {
                // SAFETY: the exchange failed, so `new` was never published:
                // this thread still owns it and frees it exactly once.
                drop(unsafe { Box::from_raw(new) });
                // SAFETY: `existing` is the non-null pointer another thread
                // published (see `get`); the acquire on failure makes its
                // initialization visible.
                unsafe { &*existing }
            }
        }
    }
}

impl<T> Drop for OnceBox<T> {
    fn drop(&mut self) {
        let ptr = self.ptr.load(Acquire);
        if !ptr.is_null() {
            // SAFETY: `&mut self` means no other reference to the value is
            // alive; the pointer came from `Box::into_raw` and is freed only
            // here.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

impl<T> Default for OnceBox<T> {
    fn default() -> Self {
        OnceBox::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_initializer_wins_and_later_ones_are_not_called() {
        let cell = OnceBox::new();
        assert!(cell.get().is_none());
        assert_eq!(*cell.get_or_init(|| Box::new(1)), 1);
        assert_eq!(*cell.get_or_init(|| unreachable!("already set")), 1);
        assert_eq!(cell.get(), Some(&1));
    }

    #[test]
    fn racing_initializers_agree_on_one_value() {
        let cell = OnceBox::new();
        let seen: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let cell = &cell;
                    s.spawn(move || *cell.get_or_init(|| Box::new(t)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(seen.iter().all(|&v| v == seen[0]), "{seen:?}");
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::SeqCst;

    /// Two threads race to allocate the same page: one allocation is
    /// published and both threads count into it.
    #[test]
    fn racing_allocation_publishes_once() {
        loom::model(|| {
            let cell = Arc::new(OnceBox::<AtomicUsize>::new());
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let cell = Arc::clone(&cell);
                    loom::thread::spawn(move || {
                        let value = cell.get_or_init(|| Box::new(AtomicUsize::new(0)));
                        value.fetch_add(1, SeqCst);
                        value as *const AtomicUsize as usize
                    })
                })
                .collect();
            let addresses: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(addresses[0], addresses[1]);
            assert_eq!(cell.get().unwrap().load(SeqCst), 2);
        });
    }
}
