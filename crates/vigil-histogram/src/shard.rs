//! Concurrent counts: one slot per CPU, each a lazily allocated shard of
//! atomic bucket counts plus an atomic sum.
//!
//! A thread picks its slot once (a process-wide round-robin ordinal kept in a
//! thread local), so threads normally write to different cache lines and
//! never contend. This is the only state the hot path touches.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::layout::Layout;

/// Most slots a histogram ever has, whatever the CPU count.
pub(crate) const MAX_SLOTS: usize = 64;

/// Slots per histogram, fixed for the process: `available_parallelism()`
/// clamped to `1..=64`. Fixing it process-wide lets each thread cache its slot
/// index (no division on the hot path).
pub(crate) fn slot_count() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_SLOTS)
    })
}

/// This thread's slot, assigned round-robin on first use.
#[inline]
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|slot| {
        let index = slot.get();
        if index != usize::MAX {
            return index;
        }
        let index = NEXT.fetch_add(1, Relaxed) % slot_count();
        slot.set(index);
        index
    })
}

/// One shard: counts laid out like `hdrhistogram::Histogram`'s, and the
/// exact sum of the raw values counted.
pub(crate) struct Shard {
    pub(crate) counts: Box<[AtomicU64]>,
    pub(crate) sum: AtomicU64,
}

impl Shard {
    fn new(len: usize) -> Shard {
        Shard {
            counts: (0..len).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Count `n` values at `index` whose raw values add up to `sum`.
    /// Hot path: two relaxed `fetch_add`s on lines this thread owns.
    #[inline]
    pub(crate) fn add(&self, index: usize, n: u64, sum: u64) {
        if let Some(count) = self.counts.get(index) {
            count.fetch_add(n, Relaxed);
            self.sum.fetch_add(sum, Relaxed);
        }
    }
}

/// Padded to two cache lines so neighbouring slots' `OnceLock` state and sums
/// never share a line (adjacent-line prefetch included).
#[repr(align(128))]
struct Slot(OnceLock<Shard>);

/// The fixed set of slots of one histogram.
pub(crate) struct Shards {
    slots: Box<[Slot]>,
    len: usize,
}

impl Shards {
    pub(crate) fn new(layout: &Layout) -> Shards {
        Shards {
            slots: (0..slot_count()).map(|_| Slot(OnceLock::new())).collect(),
            len: layout.len(),
        }
    }

    /// The calling thread's shard, allocated on its first record.
    #[inline]
    pub(crate) fn local(&self) -> &Shard {
        // thread_slot() < slot_count() == slots.len(); `get` keeps a broken
        // invariant from ever panicking on the hot path.
        let slot = self.slots.get(thread_slot()).unwrap_or(&self.slots[0]);
        slot.0.get_or_init(|| Shard::new(self.len))
    }

    /// Shards that have been written to at least once.
    pub(crate) fn live(&self) -> impl Iterator<Item = &Shard> {
        self.slots.iter().filter_map(|slot| slot.0.get())
    }

    /// Bytes held by allocated shards.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.live().count() * (self.len + 1) * std::mem::size_of::<u64>()
    }

    /// Bytes of the slot table itself.
    pub(crate) fn table_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }

    /// Visit `(index, count)` for every nonzero bucket summed over all live
    /// shards, in index order, and return the summed `sum`. With `drain`, each
    /// nonzero bucket is taken with `swap(0)`: a concurrent `fetch_add` lands
    /// either before the swap (and is returned here) or after it (and stays
    /// for the next drain), so no value is lost or counted twice.
    pub(crate) fn collect(&self, drain: bool, mut visit: impl FnMut(usize, u64)) -> u64 {
        let live: Vec<&Shard> = self.live().collect();
        if live.is_empty() {
            return 0;
        }
        for index in 0..self.len {
            let mut total = 0u64;
            for shard in &live {
                let count = &shard.counts[index];
                if count.load(Relaxed) != 0 {
                    total += if drain {
                        count.swap(0, Relaxed)
                    } else {
                        count.load(Relaxed)
                    };
                }
            }
            if total != 0 {
                visit(index, total);
            }
        }
        live.iter()
            .map(|shard| {
                if drain {
                    shard.sum.swap(0, Relaxed)
                } else {
                    shard.sum.load(Relaxed)
                }
            })
            .fold(0u64, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_count_is_between_1_and_64() {
        assert!((1..=MAX_SLOTS).contains(&slot_count()));
    }

    #[test]
    fn a_thread_keeps_its_slot() {
        assert_eq!(thread_slot(), thread_slot());
        assert!(thread_slot() < slot_count());
    }

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert!(std::mem::size_of::<Slot>() >= 128);
        assert_eq!(std::mem::align_of::<Slot>(), 128);
    }

    #[test]
    fn shards_allocate_lazily_and_drain_to_zero() {
        let layout = Layout::new(1, 1_000_000, 2).unwrap();
        let shards = Shards::new(&layout);
        assert_eq!(shards.live().count(), 0);
        assert_eq!(shards.allocated_bytes(), 0);
        let shard = shards.local();
        shard.add(layout.index_for(5), 2, 10);
        shard.add(layout.index_for(900), 1, 900);
        assert_eq!(shards.live().count(), 1);

        let mut seen = Vec::new();
        assert_eq!(shards.collect(false, |i, c| seen.push((i, c))), 910);
        assert_eq!(
            seen,
            vec![(layout.index_for(5), 2), (layout.index_for(900), 1)]
        );

        let mut drained = Vec::new();
        assert_eq!(shards.collect(true, |i, c| drained.push((i, c))), 910);
        assert_eq!(drained, seen);
        let mut after = Vec::new();
        assert_eq!(shards.collect(true, |i, c| after.push((i, c))), 0);
        assert!(after.is_empty());
    }
}
