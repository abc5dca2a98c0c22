//! Exact counts of live entries, for the entries the tag index does not
//! count itself, and the expiry records that keep every count exact when a
//! time to live runs out.
//!
//! Entries without tags count in [`Untagged`]: a few padded cells, each
//! with the `invalidate_all` epoch it counts for. An entry joins the cell
//! of its id and takes the cell's epoch as its own, so `invalidate_all`
//! (bump the cache's epoch, then reset each cell to it) counts every entry
//! either in the old epoch, which it ends, or in the new one.
//!
//! An entry with a time to live also gets an expiry record, ordered by the
//! instant it dies on the cache's clock. Whoever removes the record first
//! uncounts the entry: moka's removal notification, or [`Expiries::due`],
//! which every count-reading call runs first, so an entry past its time to
//! live is never counted, whether or not moka has noticed. Each shard
//! keeps the instant of its first record in an atomic, so a reader with
//! nothing due takes no lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::padded::CachePadded;
use crate::tag::Stamp;

/// Cells of untagged entries, and shards of expiry records.
const SHARDS: usize = 16;

/// Locks `mutex`; every critical section here leaves plain counts or maps
/// consistent, so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[inline]
fn shard(id: u64) -> usize {
    (id % SHARDS as u64) as usize
}

/// One cell of untagged entries.
struct Cell {
    /// The `invalidate_all` epoch this cell counts for.
    epoch: u64,
    /// Live untagged entries of that epoch whose id falls in this cell.
    live: u64,
}

/// Live untagged entries.
pub(crate) struct Untagged {
    cells: Box<[CachePadded<Mutex<Cell>>]>,
}

impl Untagged {
    pub(crate) fn new() -> Self {
        Self {
            cells: (0..SHARDS)
                .map(|_| CachePadded(Mutex::new(Cell { epoch: 0, live: 0 })))
                .collect(),
        }
    }

    /// Registers entry `id` (counted if `live`) and returns the epoch it
    /// belongs to.
    pub(crate) fn join(&self, id: u64, live: bool) -> u64 {
        let mut cell = lock(&self.cells[shard(id)]);
        cell.live += u64::from(live);
        cell.epoch
    }

    /// Entry `id` of `epoch` stopped being live: uncounted, unless its
    /// epoch already ended (which counted it). True if it was uncounted.
    pub(crate) fn leave(&self, id: u64, epoch: u64) -> bool {
        let mut cell = lock(&self.cells[shard(id)]);
        if cell.epoch == epoch && cell.live > 0 {
            cell.live -= 1;
            return true;
        }
        false
    }

    /// `invalidate_all`, after bumping the cache's epoch to `epoch`: moves
    /// every cell still behind it to `epoch` and returns how many entries
    /// were live in the epochs it ended. A cell that an overlapping, later
    /// `invalidate_all` already moved on is left alone: its entries are of
    /// the current epoch, so live.
    pub(crate) fn end_epoch(&self, epoch: u64) -> u64 {
        self.cells
            .iter()
            .map(|cell| {
                let mut cell = lock(cell);
                if cell.epoch >= epoch {
                    return 0;
                }
                cell.epoch = epoch;
                std::mem::take(&mut cell.live)
            })
            .sum()
    }

    pub(crate) fn live(&self) -> u64 {
        self.cells.iter().map(|cell| lock(cell).live).sum()
    }
}

/// Where an entry is counted, as its expiry record remembers it.
pub(crate) enum Counted {
    /// In the untagged cell of its id, for this epoch.
    Untagged { epoch: u64 },
    /// In the generation of its only tag that this stamp names.
    Single(Stamp),
    /// In the cache's count of entries with several tags, until its shared
    /// flag is set.
    Multi(Arc<AtomicBool>),
}

/// Expiry records of one shard of ids.
struct Shard {
    /// Nanoseconds from `Expiries::base` to the first record's instant;
    /// `u64::MAX` when empty. Written under `due`'s lock.
    next: AtomicU64,
    due: Mutex<BTreeMap<(quanta::Instant, u64), Counted>>,
}

/// The expiry records of the live entries with a time to live.
pub(crate) struct Expiries {
    base: quanta::Instant,
    shards: Box<[CachePadded<Shard>]>,
}

impl Expiries {
    pub(crate) fn new(base: quanta::Instant) -> Self {
        Self {
            base,
            shards: (0..SHARDS)
                .map(|_| {
                    CachePadded(Shard {
                        next: AtomicU64::new(u64::MAX),
                        due: Mutex::new(BTreeMap::new()),
                    })
                })
                .collect(),
        }
    }

    fn nanos(&self, at: quanta::Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX - 1)
    }

    /// Records that entry `id`, counted as `counted`, dies at `at`.
    pub(crate) fn add(&self, at: quanta::Instant, id: u64, counted: Counted) {
        let shard = &self.shards[shard(id)];
        let mut due = lock(&shard.due);
        due.insert((at, id), counted);
        let nanos = self.nanos(at);
        if nanos < shard.next.load(Ordering::Relaxed) {
            shard.next.store(nanos, Ordering::Release);
        }
    }

    /// Removes the record of entry `id` dying at `at`; true if it was there
    /// (so the caller uncounts the entry), false if `due` took it first or
    /// the entry was never counted.
    pub(crate) fn remove(&self, at: quanta::Instant, id: u64) -> bool {
        let shard = &self.shards[shard(id)];
        let mut due = lock(&shard.due);
        if due.remove(&(at, id)).is_none() {
            return false;
        }
        let next = due
            .first_key_value()
            .map_or(u64::MAX, |((at, _), _)| self.nanos(*at));
        shard.next.store(next, Ordering::Release);
        true
    }

    /// Takes every record due at `now` (instant at or before it) and hands
    /// each to `expire`, outside the shard's lock. One atomic load per
    /// shard when nothing is due.
    pub(crate) fn due(&self, now: quanta::Instant, mut expire: impl FnMut(u64, Counted)) {
        let nanos = self.nanos(now);
        for shard in self.shards.iter() {
            if shard.next.load(Ordering::Acquire) > nanos {
                continue;
            }
            let taken = {
                let mut due = lock(&shard.due);
                let later = due.split_off(&(now, u64::MAX));
                let taken = std::mem::replace(&mut *due, later);
                let next = due
                    .first_key_value()
                    .map_or(u64::MAX, |((at, _), _)| self.nanos(*at));
                shard.next.store(next, Ordering::Release);
                taken
            };
            for ((_, id), counted) in taken {
                expire(id, counted);
            }
        }
    }

    /// Records held (live entries with a time to live, give or take those
    /// being removed).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(&shard.due).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn untagged_cells_count_per_epoch() {
        let untagged = Untagged::new();
        assert_eq!(untagged.join(1, true), 0);
        assert_eq!(untagged.join(2, true), 0);
        assert_eq!(untagged.join(3, false), 0);
        assert_eq!(untagged.live(), 2);
        assert!(untagged.leave(1, 0));
        assert_eq!(untagged.live(), 1);
        assert_eq!(untagged.end_epoch(1), 1);
        assert_eq!(untagged.join(4, true), 1);
        assert!(!untagged.leave(2, 0));
        assert_eq!(
            untagged.live(),
            1,
            "an entry of the old epoch leaves no trace"
        );
    }

    #[test]
    fn records_are_taken_once_in_order_of_expiry() {
        let (clock, mock) = quanta::Clock::mock();
        let expiries = Expiries::new(clock.now());
        let at = |secs| clock.now() + Duration::from_secs(secs);
        for (id, secs) in [(1, 5), (2, 10), (3, 5), (17, 7)] {
            expiries.add(at(secs), id, Counted::Untagged { epoch: 0 });
        }
        let due = |expiries: &Expiries| {
            let mut ids = Vec::new();
            expiries.due(clock.now(), |id, _| ids.push(id));
            ids
        };
        assert!(due(&expiries).is_empty());
        mock.increment(Duration::from_secs(5));
        assert_eq!(due(&expiries), vec![1, 3]);
        assert!(!expiries.remove(at(0), 1), "already taken");
        assert!(expiries.remove(at(2), 17), "removed before it is due");
        mock.increment(Duration::from_secs(5));
        assert_eq!(due(&expiries), vec![2]);
        assert_eq!(expiries.len(), 0);
        assert!(
            expiries
                .shards
                .iter()
                .all(|s| s.next.load(Ordering::Acquire) == u64::MAX),
            "empty shards have no next instant"
        );
    }
}

#[cfg(test)]
mod review_tests {
    use super::*;

    /// The steps of two overlapping `Shared::invalidate_all` calls (IA1 and
    /// IA2) with an untagged insert between their passes over the cells.
    #[test]
    fn review_overlapping_invalidate_all_takes_a_fresh_entry() {
        let untagged = Untagged::new();
        let epoch = AtomicU64::new(0);
        let ia1 = epoch.fetch_add(1, Ordering::AcqRel) + 1; // IA1 bumps: 1
        let ia2 = epoch.fetch_add(1, Ordering::AcqRel) + 1; // IA2 bumps: 2
        assert_eq!(untagged.end_epoch(ia2), 0); // IA2 passes the cells
        // An insert joins: it takes the cell's epoch as its own.
        let joined = untagged.join(7, true);
        assert_eq!(joined, epoch.load(Ordering::Acquire), "the entry is fresh");
        // IA1 passes the cells now and takes the fresh entry's count.
        let taken = untagged.end_epoch(ia1);
        assert_eq!(
            untagged.live(),
            1,
            "fresh entry must still count (taken = {taken})"
        );
    }
}
