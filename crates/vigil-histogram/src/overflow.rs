//! [`Overflow`]: the shard of the threads that own none (more threads
//! recording at once than the histogram has slots, or a thread-local
//! destructor recording). Several threads write it at once with
//! `fetch_add`, so it is never between two records for sure while they
//! keep recording; it is read the way prometheus client_golang reads its
//! histograms instead: two halves, one *hot* that writers add to, one
//! *cold* that holds nothing.
//!
//! A writer takes the hot half's number and counts itself begun with one
//! `fetch_add` on [`Overflow::hot`] (bit 63: the hot half; the rest: records
//! begun in all), then adds to that half, its `finished` counter last. A
//! reader flips bit 63 (one `fetch_add`): new records go to the other half;
//! it waits until the old half has finished every record begun before the
//! flip (only records already in flight), reads that half (complete and
//! still: the state after exactly those records), then moves its counts
//! into the new hot half and zeroes it, so the next flip finds everything
//! in one half again. Writers never wait; a reader waits at most for the
//! records in flight at its flip. Memory: a second set of pages, for this
//! one shard.

use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::sync::{Mutex, PoisonError};

use crate::shard::{Access, Shard};
use crate::sync::{AtomicU64, backoff};

/// Bit 63 of [`Overflow::hot`]: which half writers add to.
const HOT: u64 = 1 << 63;

/// Two half shards written with `fetch_add`; see the module docs.
pub(crate) struct Overflow {
    /// Bit 63: the hot half; bits 0-62: records begun since creation.
    hot: AtomicU64,
    halves: [Box<Shard>; 2],
    /// Readers one at a time (each flip must see the other half empty).
    reading: Mutex<()>,
    /// Length of the counts array: a record past it is ignored before it
    /// counts as begun.
    len: usize,
}

impl Overflow {
    /// Two empty halves for `len` indexes and `bounds` bound counters.
    pub(crate) fn new(len: usize, bounds: usize) -> Overflow {
        Overflow {
            hot: AtomicU64::new(0),
            halves: [
                Shard::with_bounds(len, bounds),
                Shard::with_bounds(len, bounds),
            ],
            reading: Mutex::new(()),
            len,
        }
    }

    /// Count `n` values at `index` (bound counter `bound`) whose raw values
    /// add up to `sum`, in the hot half: one more `fetch_add` than an add
    /// to a shared shard.
    #[inline]
    pub(crate) fn add(&self, index: usize, bound: usize, n: u64, sum: u64) {
        if index >= self.len {
            return;
        }
        // Acquire: a half a reader emptied is seen empty before adding.
        let hot = self.hot.fetch_add(1, Acquire) >> 63;
        self.halves[hot as usize].add_bounded(index, bound, n, sum, Access::Shared);
    }

    /// `read` of the state after every record begun before this call and
    /// no other; then the half read is merged into the hot one. Waits for
    /// the records in flight, never for later ones.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&Shard) -> R) -> R {
        let _one = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let before = self.hot.fetch_add(HOT, AcqRel);
        let begun = before & !HOT;
        let old = (before >> 63) as usize;
        let (cold, hot) = (&self.halves[old], &self.halves[1 - old]);
        let mut attempt = 0;
        // Every record begun before the flip went to `cold`, which also
        // holds (as finished) everything the previous read moved into it.
        while cold.finished() != begun {
            attempt += 1;
            backoff(attempt);
        }
        let value = read(cold);
        hot.absorb(cold);
        value
    }

    /// Heap bytes of both halves.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<Overflow>() + self.halves.iter().map(|h| h.bytes()).sum::<usize>()
    }

    /// The half writers add to now.
    #[cfg(loom)]
    pub(crate) fn hot_half(&self) -> &Shard {
        &self.halves[(self.hot.load(Acquire) >> 63) as usize]
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shard::NO_BOUND;

    #[test]
    fn reads_see_every_record_and_halves_trade_places() {
        let overflow = Overflow::new(100, 0);
        let read = |overflow: &Overflow| {
            overflow.read(|half| {
                let mut counts = Vec::new();
                let totals = half.read(&mut counts, Shard::append_counts);
                (totals, counts)
            })
        };
        overflow.add(5, NO_BOUND, 2, 10);
        overflow.add(500, NO_BOUND, 1, 500); // past the array: ignored
        assert_eq!(read(&overflow), ((2, 10), vec![(5, 2)]));
        overflow.add(7, NO_BOUND, 1, 7);
        assert_eq!(read(&overflow), ((3, 17), vec![(5, 2), (7, 1)]));
        assert_eq!(read(&overflow), ((3, 17), vec![(5, 2), (7, 1)]));
    }

    #[test]
    fn concurrent_writers_are_read_whole() {
        let overflow = Overflow::new(64, 0);
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..3 {
                let (overflow, stop) = (&overflow, &stop);
                s.spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        overflow.add(t * 10, NO_BOUND, 1, 3);
                    }
                });
            }
            for _ in 0..2_000 {
                let ((count, sum), buckets) = overflow.read(|half| {
                    let mut counts = Vec::new();
                    (half.read(&mut counts, Shard::append_counts), counts)
                });
                assert_eq!(sum, 3 * count);
                assert_eq!(buckets.iter().map(|&(_, n)| n).sum::<u64>(), count);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
}
