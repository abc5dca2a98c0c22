//! Which shard a recording thread writes: shards are owned by threads, and
//! a histogram has only as many as threads that recorded into it are alive
//! at once (at most one per CPU slot; past that, threads share the
//! [`Overflow`] shard, written with `fetch_add`).
//!
//! A thread claims a free slot with one compare-exchange on its first
//! record into a histogram, then finds it again on every record with one
//! relaxed load and compare (the two inline slots) or a short scan of a
//! slot table (the others). Owning a
//! shard is what lets the hot path use a plain load and store instead of a
//! locked `fetch_add`: no other thread writes it.
//!
//! When a thread exits, a thread-local destructor releases every slot it
//! holds. The shard and its counts stay where they are, so no value is
//! lost, and the next thread that records into the histogram takes the
//! free slot over instead of allocating a new shard: memory grows with the
//! threads recording at the same time, never with the threads a process
//! has ever had.

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, OnceLock, Weak};

use crate::buckets::combine;
use crate::overflow::Overflow;
use crate::shard::{Access, NO_BOUND, Shard};
use crate::sync::{AtomicU64, OnceBox};

/// Most slots a histogram ever has, whatever the CPU count.
pub(crate) const MAX_SLOTS: usize = 64;

/// Owner word of a free slot. Thread ids start at 1.
const FREE: u64 = 0;

/// Slots per histogram by default: `available_parallelism()` clamped to
/// `1..=64` (see [`Config::shards`](crate::Config::shards)).
pub(crate) fn slot_count() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_SLOTS)
    })
}

/// One slot: the thread that owns it (or [`FREE`]) and its shard, kept
/// across owners.
struct Slot {
    owner: AtomicU64,
    shard: OnceBox<Shard>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            owner: AtomicU64::new(FREE),
            shard: OnceBox::new(),
        }
    }

    /// The shard, if `id` owns this slot. The relaxed load is enough: the
    /// word holds `id` only if this very thread stored it (ids are never
    /// reused), and a thread always sees its own latest store.
    #[inline]
    fn owned_by(&self, id: u64) -> Option<&Shard> {
        if self.owner.load(Relaxed) == id {
            self.shard.get()
        } else {
            None
        }
    }

    /// Take this slot for `id` if it is free. Acquire pairs with the
    /// previous owner's release, so its counts are visible before `id`
    /// adds to them.
    fn claim(&self, id: u64, (len, bounds): (usize, usize)) -> Option<&Shard> {
        // Look before the compare-exchange: a failed one still takes the
        // line exclusive, away from the owner that reads it every record.
        if self.owner.load(Relaxed) != FREE {
            return None;
        }
        self.owner
            .compare_exchange(FREE, id, Acquire, Relaxed)
            .ok()?;
        Some(self.shard.get_or_init(|| Shard::with_bounds(len, bounds)))
    }
}

/// Slots kept inline in [`Slots`]: the threads that find their shard
/// without a pointer chase.
const INLINE: usize = 2;

/// The slots past the inline ones, allocated when a third thread records
/// while two hold slots.
struct Table {
    slots: Box<[Slot]>,
    /// One past the highest slot ever claimed.
    /// Written on claims only, and read by the claiming thread itself, so
    /// the model checker needs no say in it.
    used: std::sync::atomic::AtomicUsize,
}

/// The shards of one histogram and who owns them.
pub(crate) struct Slots {
    inline: [Slot; INLINE],
    more: OnceBox<Table>,
    /// For threads beyond the slot count, and for threads that can no
    /// longer register a claim (recording from a thread-local destructor).
    overflow: OnceBox<Overflow>,
    /// Length of the counts array.
    len: usize,
    /// Bound counters per shard (`Config::exact_bounds`), 0 without.
    bounds: usize,
    /// Slots in `more`, plus the inline ones.
    capacity: usize,
}

/// This thread's id (from 1), assigned on its first record anywhere.
#[inline]
fn thread_id() -> u64 {
    thread_local! {
        static ID: Cell<u64> = const { Cell::new(FREE) };
    }
    ID.with(|id| {
        let current = id.get();
        if current != FREE {
            return current;
        }
        let assigned = next_thread_id();
        id.set(assigned);
        assigned
    })
}

#[cold]
fn next_thread_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, Relaxed)
}

/// The slots this thread owns, released when the thread exits.
struct Claims {
    held: Vec<(Weak<Slots>, usize)>,
    /// Prune dead histograms from `held` when it reaches this length.
    prune_at: usize,
}

impl Drop for Claims {
    fn drop(&mut self) {
        for (slots, index) in self.held.drain(..) {
            if let Some(slots) = slots.upgrade() {
                slots.release(index);
            }
        }
    }
}

thread_local! {
    static CLAIMS: RefCell<Claims> = const {
        RefCell::new(Claims { held: Vec::new(), prune_at: 16 })
    };
}

/// Remember that this thread holds slot `index` of `slots`; false when the
/// thread is exiting and can no longer remember anything.
fn register(slots: &Arc<Slots>, index: usize) -> bool {
    CLAIMS
        .try_with(|claims| {
            let Ok(mut claims) = claims.try_borrow_mut() else {
                return false;
            };
            if claims.held.len() >= claims.prune_at {
                claims.held.retain(|(slots, _)| slots.strong_count() > 0);
                claims.prune_at = (claims.held.len() * 2).max(16);
            }
            claims.held.push((Arc::downgrade(slots), index));
            true
        })
        .unwrap_or(false)
}

impl Slots {
    /// Slots for a counts array of `len` indexes, at most `capacity` of them
    /// (clamped to `1..=64`).
    #[cfg(test)]
    pub(crate) fn new(len: usize, capacity: usize) -> Slots {
        Slots::with_bounds(len, capacity, 0)
    }

    /// [`new`](Slots::new), each shard with `bounds` bound counters.
    pub(crate) fn with_bounds(len: usize, capacity: usize, bounds: usize) -> Slots {
        Slots {
            inline: [Slot::new(), Slot::new()],
            more: OnceBox::new(),
            overflow: OnceBox::new(),
            len,
            bounds,
            capacity: capacity.clamp(1, MAX_SLOTS),
        }
    }

    /// What a new shard is made of: indexes and bound counters.
    fn shape(&self) -> (usize, usize) {
        (self.len, self.bounds)
    }

    /// Count `n` values at `index` whose raw values add up to `sum`, into
    /// the calling thread's shard. Hot path: one thread-local read and one
    /// relaxed compare find the shard for the first thread (two for the
    /// second); the rest is
    /// [`Shard::add`].
    #[inline]
    pub(crate) fn add(self: &Arc<Self>, index: usize, n: u64, sum: u64) {
        self.add_bounded(index, NO_BOUND, n, sum);
    }

    /// [`add`](Slots::add), also counting `n` in bound counter `bound`
    /// ([`Shard::add_bounded`]).
    #[inline]
    pub(crate) fn add_bounded(self: &Arc<Self>, index: usize, bound: usize, n: u64, sum: u64) {
        let id = thread_id();
        let shard = match self.inline[0].owned_by(id) {
            Some(shard) => shard,
            None => match self.inline[1].owned_by(id) {
                Some(shard) => shard,
                None => match self.owned_in_table(id) {
                    Some(shard) => shard,
                    None => return self.claim_and_add(id, index, bound, n, sum),
                },
            },
        };
        shard.add_bounded(index, bound, n, sum, Access::Owned);
    }

    /// The shard `id` owns past the inline slots, if any. Slots are claimed
    /// lowest first, so the scan stops at the highest slot ever claimed: as
    /// many compares as threads that recorded at the same time, on adjacent
    /// 16-byte slots.
    #[inline]
    fn owned_in_table(&self, id: u64) -> Option<&Shard> {
        let table = self.more.get()?;
        let used = table.used.load(Relaxed).min(table.slots.len());
        table.slots[..used]
            .iter()
            .find_map(|slot| slot.owned_by(id))
    }

    /// A thread that owns no shard here yet: claim one, then add.
    #[cold]
    #[inline(never)]
    fn claim_and_add(self: &Arc<Self>, id: u64, index: usize, bound: usize, n: u64, sum: u64) {
        match self.claim(id) {
            Some(shard) => shard.add_bounded(index, bound, n, sum, Access::Owned),
            None => self.overflow().add(index, bound, n, sum),
        }
    }

    /// The cold path: take the lowest free slot and register it for
    /// release at thread exit; `None` when there is none (the overflow
    /// shard then).
    #[cold]
    fn claim(self: &Arc<Self>, id: u64) -> Option<&Shard> {
        if let Some((index, shard)) = self.claim_free(id) {
            if register(self, index) {
                return Some(shard);
            }
            // Nobody would release it: give it back and share instead.
            self.release(index);
        }
        None
    }

    /// Take a free slot for `id`, the lowest one: its index (0 and 1 are
    /// inline) and shard. Lowest first keeps shards to the most threads
    /// that ever held slots at the same time: a free slot below that mark
    /// always exists when one is needed, and it already has a shard.
    pub(crate) fn claim_free(&self, id: u64) -> Option<(usize, &Shard)> {
        for (i, slot) in self.inline[..self.capacity.min(INLINE)].iter().enumerate() {
            if let Some(shard) = slot.claim(id, self.shape()) {
                return Some((i, shard));
            }
        }
        if self.capacity <= INLINE {
            return None;
        }
        let table = self.more.get_or_init(|| {
            Box::new(Table {
                slots: (INLINE..self.capacity).map(|_| Slot::new()).collect(),
                used: std::sync::atomic::AtomicUsize::new(0),
            })
        });
        let (i, shard) = table
            .slots
            .iter()
            .enumerate()
            .find_map(|(i, slot)| Some((i, slot.claim(id, self.shape())?)))?;
        table.used.fetch_max(i + 1, Relaxed);
        Some((i + INLINE, shard))
    }

    /// Free slot `index` (0 and 1 are inline). Release pairs with the next
    /// claimer's acquire.
    pub(crate) fn release(&self, index: usize) {
        let slot = match index {
            i if i < INLINE => &self.inline[i],
            i => match self
                .more
                .get()
                .and_then(|table| table.slots.get(i - INLINE))
            {
                Some(slot) => slot,
                None => return,
            },
        };
        slot.owner.store(FREE, Release);
    }

    /// The shard of threads that own none, written with `fetch_add`.
    pub(crate) fn overflow(&self) -> &Overflow {
        self.overflow
            .get_or_init(|| Box::new(Overflow::new(self.len, self.bounds)))
    }

    /// Every slot's shard allocated so far (owned or free; not the
    /// overflow shard).
    pub(crate) fn shards(&self) -> impl Iterator<Item = &Shard> + Clone {
        let more = self.more.get().map(|table| &table.slots[..]).unwrap_or(&[]);
        self.inline
            .iter()
            .chain(more)
            .filter_map(|slot| slot.shard.get())
    }

    /// Calls `read` with every shard, as a state it can read whole: each
    /// slot's shard (live: [`Shard::read`] and [`Shard::totals`] read it
    /// between two records) and the overflow shard's settled half.
    fn read_each(&self, mut read: impl FnMut(&Shard)) {
        for shard in self.shards() {
            read(shard);
        }
        if let Some(overflow) = self.overflow.get() {
            overflow.read(read);
        }
    }

    /// The counts summed over every shard, nonzero buckets only, in index
    /// order, into `out` (cleared first); returns the summed count and raw
    /// sum. Reads only (relaxed loads), so writers keep writing; each shard
    /// is walked through its allocated groups and pages only, and several
    /// shards' lists are merged by index. Each shard is read between two
    /// of its records ([`Shard::read`]), so the count is the buckets' sum
    /// and the sum is that of the same values.
    pub(crate) fn collect(&self, out: &mut Vec<(u32, u64)>) -> (u64, u64) {
        out.clear();
        let (mut count, mut sum, mut shards) = (0u64, 0u64, 0usize);
        self.read_each(|shard| {
            let (n, s) = shard.read(out, Shard::append_counts);
            count = count.wrapping_add(n);
            sum = sum.wrapping_add(s);
            shards += 1;
        });
        if shards > 1 {
            combine(out);
        }
        (count, sum)
    }

    /// The count and raw sum of every shard, each shard's pair read
    /// between two of its records.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let (mut count, mut sum) = (0u64, 0u64);
        self.read_each(|shard| {
            let (n, s) = shard.totals();
            count = count.wrapping_add(n);
            sum = sum.wrapping_add(s);
        });
        (count, sum)
    }

    /// Every shard's bound counters summed, slot by slot, into `out`
    /// (cleared to the counter count first), and the count and raw sum of
    /// the same values: each shard is read between two of its records
    /// ([`Shard::read`]), so the slots add up to the count. Without bound
    /// counters, `out` is empty and the totals are [`totals`](Slots::totals).
    pub(crate) fn bound_totals(&self, out: &mut Vec<u64>) -> (u64, u64) {
        out.clear();
        if self.bounds == 0 {
            return self.totals();
        }
        out.resize(self.bounds, 0);
        let mut one = Vec::with_capacity(self.bounds);
        let (mut count, mut sum) = (0u64, 0u64);
        self.read_each(|shard| {
            one.clear();
            let (n, s) = shard.read(&mut one, Shard::append_bound_counts);
            for (total, slot) in out.iter_mut().zip(&one) {
                *total = total.wrapping_add(*slot);
            }
            count = count.wrapping_add(n);
            sum = sum.wrapping_add(s);
        });
        (count, sum)
    }

    /// Heap bytes of the slot table and every shard.
    pub(crate) fn bytes(&self) -> usize {
        let table = self
            .more
            .get()
            .map_or(0, |t| t.slots.len() * std::mem::size_of::<Slot>());
        table
            + self.shards().map(Shard::bytes).sum::<usize>()
            + self.overflow.get().map_or(0, Overflow::bytes)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn one_thread_keeps_one_shard_whatever_the_slot_count() {
        for capacity in [1, 2, 64] {
            let slots = Arc::new(Slots::new(33_792, capacity));
            for i in 0..1_000 {
                slots.add(i % 100, 1, 1);
            }
            assert_eq!(slots.shards().count(), 1);
            assert!(slots.more.get().is_none(), "capacity {capacity}");
        }
    }

    /// Runs `work` on `threads` threads at once, each given a barrier that
    /// all of them reach.
    fn on_threads(threads: usize, work: impl Fn(&std::sync::Barrier) + Sync) {
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| work(&barrier));
            }
        });
    }

    #[test]
    fn concurrent_threads_get_their_own_shards() {
        let slots = Arc::new(Slots::new(1_024, 4));
        on_threads(3, |barrier| {
            slots.add(1, 1, 1);
            barrier.wait(); // all three alive at once
            slots.add(1, 1, 1);
        });
        assert_eq!(slots.shards().count(), 3);
        assert_eq!(slots.shards().map(Shard::count).sum::<u64>(), 6);
    }

    #[test]
    fn threads_beyond_the_capacity_share_a_shard() {
        let slots = Arc::new(Slots::new(1_024, 2));
        on_threads(4, |barrier| {
            slots.add(3, 1, 3);
            barrier.wait();
            for _ in 0..999 {
                slots.add(3, 1, 3);
            }
        });
        assert_eq!(slots.shards().count(), 2, "two owned");
        assert!(slots.overflow.get().is_some(), "and the overflow shard");
        assert_eq!(slots.totals(), (4_000, 12_000));
    }

    #[test]
    fn an_exited_threads_slot_is_taken_over() {
        let slots = Arc::new(Slots::new(1_024, 8));
        for _ in 0..100 {
            let slots = Arc::clone(&slots);
            // `join` (unlike the end of a `thread::scope`) waits for the
            // thread's thread-local destructors, which release its slot.
            std::thread::spawn(move || slots.add(7, 1, 7))
                .join()
                .unwrap();
        }
        // Threads ran one after another: each found the slot its
        // predecessor released.
        assert_eq!(slots.shards().count(), 1);
        assert_eq!(slots.shards().map(Shard::count).sum::<u64>(), 100);
    }

    #[test]
    fn a_dropped_histogram_is_not_kept_alive_by_claims() {
        let slots = Arc::new(Slots::new(1_024, 2));
        slots.add(1, 1, 1);
        let weak = Arc::downgrade(&slots);
        drop(slots);
        assert!(weak.upgrade().is_none());
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use crate::shard::GROUP_SPAN;

    /// Two threads claim at once: they get different slots, and a claim
    /// after a release sees the previous owner's counts.
    #[test]
    fn claims_are_exclusive_and_release_hands_counts_over() {
        loom::model(|| {
            let slots = loom::sync::Arc::new(Slots::new(64, 2));
            let threads: Vec<_> = [1_u64, 2]
                .into_iter()
                .map(|id| {
                    let slots = loom::sync::Arc::clone(&slots);
                    loom::thread::spawn(move || {
                        let (index, shard) = slots.claim_free(id).expect("two slots");
                        shard.add(1, 1, 10, Access::Owned);
                        index
                    })
                })
                .collect();
            let indexes: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert_ne!(indexes[0], indexes[1]);
            assert!(slots.claim_free(9).is_none(), "both taken");
            indexes.iter().for_each(|&index| slots.release(index));
            // A third thread takes whichever slot it finds and keeps counting.
            let slots2 = loom::sync::Arc::clone(&slots);
            loom::thread::spawn(move || {
                let (_, shard) = slots2.claim_free(3).expect("both free");
                shard.add(1, 1, 10, Access::Owned);
            })
            .join()
            .unwrap();
            assert_eq!(slots.shards().map(Shard::count).sum::<u64>(), 3);
        });
    }

    /// A writer racing a reader that rotates (reads, then takes the
    /// difference to its previous read): every value lands in exactly one
    /// interval, none is lost or counted twice, whatever the interleaving.
    #[test]
    fn a_rotating_reader_never_loses_or_double_counts() {
        loom::model(|| {
            let slots = loom::sync::Arc::new(Slots::new(4 * GROUP_SPAN, 2));
            let writer = {
                let slots = loom::sync::Arc::clone(&slots);
                loom::thread::spawn(move || {
                    let (_, shard) = slots.claim_free(1).expect("a free slot");
                    shard.add(3, 1, 3, Access::Owned);
                    shard.add(GROUP_SPAN + 1, 1, 7, Access::Owned); // a second group
                    shard.add(3, 1, 3, Access::Owned);
                })
            };
            let mut intervals = Vec::new();
            let mut baseline = Vec::new();
            let mut live = Vec::new();
            for _ in 0..2 {
                slots.collect(&mut live);
                let mut delta = Vec::new();
                crate::buckets::difference(&live, &baseline, &mut delta);
                intervals.push(delta);
                std::mem::swap(&mut baseline, &mut live);
            }
            writer.join().unwrap();
            slots.collect(&mut live);
            let mut last = Vec::new();
            crate::buckets::difference(&live, &baseline, &mut last);
            intervals.push(last);
            let mut total: Vec<(u32, u64)> = intervals.concat();
            crate::buckets::combine(&mut total);
            assert_eq!(total, vec![(3, 2), ((GROUP_SPAN + 1) as u32, 1)]);
        });
    }

    /// Threads beyond the capacity share the overflow shard with
    /// `fetch_add`, and its first page is allocated once even when they
    /// race.
    #[test]
    fn overflow_page_allocation_races_allocate_once() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let slots = loom::sync::Arc::new(Slots::new(4, 1));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let slots = loom::sync::Arc::clone(&slots);
                    loom::thread::spawn(move || slots.overflow().add(3, NO_BOUND, 1, 9))
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            // One group and one page: the loser's allocation was dropped.
            let reference = Shard::new(4);
            reference.add(3, 1, 9, Access::Owned);
            assert_eq!(slots.overflow().hot_half().bytes(), reference.bytes());
            let mut live = Vec::new();
            assert_eq!(slots.collect(&mut live), (2, 18));
            assert_eq!(live, vec![(3, 2)]);
        });
    }

    /// Two threads record into the overflow shard while a reader reads it:
    /// the reader sees each record whole or not at all, and a read after
    /// both sees both.
    #[test]
    fn overflow_reads_see_whole_records() {
        // Three preemptions cover every order of the two records against
        // the flip, the wait and the merge, in minutes.
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let slots = loom::sync::Arc::new(Slots::new(2 * GROUP_SPAN, 1));
            let threads: Vec<_> = [(1, 3), (GROUP_SPAN + 1, 5)]
                .into_iter()
                .map(|(index, raw)| {
                    let slots = loom::sync::Arc::clone(&slots);
                    loom::thread::spawn(move || slots.overflow().add(index, NO_BOUND, 1, raw))
                })
                .collect();
            let mut live = Vec::new();
            let (count, sum) = slots.collect(&mut live);
            let allowed = [
                (0, 0, vec![]),
                (1, 3, vec![(1, 1)]),
                (1, 5, vec![((GROUP_SPAN + 1) as u32, 1)]),
                (2, 8, vec![(1, 1), ((GROUP_SPAN + 1) as u32, 1)]),
            ];
            assert!(
                allowed.contains(&(count, sum, live.clone())),
                "{count} {sum} {live:?}"
            );
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(slots.collect(&mut live), (2, 8));
        });
    }
}
