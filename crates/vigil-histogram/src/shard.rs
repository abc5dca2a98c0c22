//! One shard: bucket counts in lazily allocated pages, plus the shard's
//! count and raw sum. The counts array has hdrhistogram's layout (see
//! `layout.rs`), cut into groups of [`GROUP_SPAN`] indexes, each group into
//! pages of [`PAGE`] counters; a group or page exists only once a value
//! landed in it, so a shard's memory follows the buckets it uses, not the
//! configured range.
//!
//! Counts only grow: nothing ever drains a shard. Readers sum the live
//! counts and compute interval deltas against what they saw last (see
//! `window.rs`), so a writer and a reader never write the same word.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::sync::{AtomicU64, OnceBox};

/// Counters per page: 128 bytes, two cache lines.
#[cfg(not(loom))]
pub(crate) const PAGE: usize = 16;
/// Pages per group.
#[cfg(not(loom))]
const GROUP: usize = 64;
// The same structure, small enough for the model checker to explore.
#[cfg(loom)]
pub(crate) const PAGE: usize = 2;
#[cfg(loom)]
const GROUP: usize = 2;
/// Indexes one group covers.
pub(crate) const GROUP_SPAN: usize = PAGE * GROUP;

/// Sixteen adjacent bucket counters, aligned so that pages of different
/// shards never share a cache line.
#[repr(align(64))]
struct Page([AtomicU64; PAGE]);

impl Page {
    fn new() -> Box<Page> {
        Box::new(Page(std::array::from_fn(|_| AtomicU64::new(0))))
    }
}

/// The page pointers of one group of [`GROUP_SPAN`] indexes, and a mask of
/// the pages allocated so far, so a reader touches one word instead of
/// every pointer.
struct Group {
    pages: [OnceBox<Page>; GROUP],
    /// Bit `p` is set once page `p` is published (set after the pointer,
    /// with release, so a reader that sees the bit sees the page).
    allocated: AtomicU64,
}

impl Group {
    fn new() -> Box<Group> {
        Box::new(Group {
            pages: std::array::from_fn(|_| OnceBox::new()),
            allocated: AtomicU64::new(0),
        })
    }

    /// Page `p`, allocated (and marked) on first use.
    #[inline]
    fn page(&self, p: usize) -> &Page {
        match self.pages[p].get() {
            Some(page) => page,
            None => self.allocate(p),
        }
    }

    #[cold]
    #[inline(never)]
    fn allocate(&self, p: usize) -> &Page {
        let page = self.pages[p].get_or_init(Page::new);
        self.allocated.fetch_or(1 << p, Release);
        page
    }

    /// The allocated pages, with their numbers, in order.
    fn allocated(&self) -> impl Iterator<Item = (usize, &Page)> {
        let mut mask = self.allocated.load(Acquire);
        std::iter::from_fn(move || {
            while mask != 0 {
                let p = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                if let Some(page) = self.pages[p].get() {
                    return Some((p, page));
                }
            }
            None
        })
    }
}

/// How a thread may write a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// The calling thread owns the shard: no other thread writes it, so a
    /// relaxed load and store replace the locked read-modify-write.
    Owned,
    /// Any thread may write: `fetch_add`.
    Shared,
}

/// One shard's counts, count and raw sum.
#[repr(align(128))]
pub(crate) struct Shard {
    count: AtomicU64,
    /// Raw sum, wrapping; readers take differences of it.
    sum: AtomicU64,
    groups: Box<[OnceBox<Group>]>,
    /// Per exact bound (`Config::exact_bounds`), values at or below it and
    /// above the one before; the last counts values above every bound.
    /// Empty without exact bounds.
    bounds: Box<[AtomicU64]>,
}

/// The bound slot of a value recorded without exact bounds.
pub(crate) const NO_BOUND: usize = usize::MAX;

#[inline]
fn bump(counter: &AtomicU64, n: u64, access: Access) {
    match access {
        // Only the owner writes this word, so nothing can land between the
        // load and the store; readers see either value, both valid.
        Access::Owned => counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed),
        Access::Shared => {
            counter.fetch_add(n, Relaxed);
        }
    }
}

impl Shard {
    /// An empty shard for a counts array of `len` indexes: 128 bytes plus
    /// 8 bytes per group pointer, no page yet.
    #[cfg(test)]
    pub(crate) fn new(len: usize) -> Box<Shard> {
        Shard::with_bounds(len, 0)
    }

    /// [`new`](Shard::new), with `bounds` bound counters.
    pub(crate) fn with_bounds(len: usize, bounds: usize) -> Box<Shard> {
        Box::new(Shard {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            groups: (0..len.div_ceil(GROUP_SPAN))
                .map(|_| OnceBox::new())
                .collect(),
            bounds: (0..bounds).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Count `n` values at `index` whose raw values add up to `sum`.
    ///
    /// Hot path: two dependent pointer loads to find the page (allocated on
    /// the first value that lands in it, the only allocation), then three
    /// relaxed load + store pairs for an owner, `fetch_add`s otherwise.
    /// An index past the array is ignored (callers clamp first).
    #[cfg(test)]
    #[inline]
    pub(crate) fn add(&self, index: usize, n: u64, sum: u64, access: Access) {
        self.add_bounded(index, NO_BOUND, n, sum, access);
    }

    /// [`add`](Shard::add), also counting `n` in bound counter `bound`
    /// ([`NO_BOUND`] or past the counters: none).
    #[inline]
    pub(crate) fn add_bounded(&self, index: usize, bound: usize, n: u64, sum: u64, access: Access) {
        let Some(group) = self.groups.get(index / GROUP_SPAN) else {
            return;
        };
        let group = group.get_or_init(Group::new);
        let page = group.page((index / PAGE) % GROUP);
        bump(&page.0[index % PAGE], n, access);
        if let Some(counter) = self.bounds.get(bound) {
            bump(counter, n, access);
        }
        bump(&self.count, n, access);
        bump(&self.sum, sum, access);
    }

    /// Adds this shard's bound counters to `out`, slot by slot.
    pub(crate) fn add_bound_counts(&self, out: &mut [u64]) {
        for (total, counter) in out.iter_mut().zip(&*self.bounds) {
            *total = total.wrapping_add(counter.load(Relaxed));
        }
    }

    /// Values counted so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Raw sum so far, wrapping at 2^64.
    pub(crate) fn sum(&self) -> u64 {
        self.sum.load(Relaxed)
    }

    /// Append `(index, count)` for every nonzero bucket, in index order,
    /// visiting only allocated groups and pages.
    pub(crate) fn append_counts(&self, out: &mut Vec<(u32, u64)>) {
        for (g, group) in self.groups.iter().enumerate() {
            let Some(group) = group.get() else {
                continue;
            };
            for (p, page) in group.allocated() {
                let base = g * GROUP_SPAN + p * PAGE;
                for (i, counter) in page.0.iter().enumerate() {
                    let n = counter.load(Relaxed);
                    if n != 0 {
                        // Indexes fit in u32: a counts array has at most
                        // 65 * 2^17 entries.
                        out.push(((base + i) as u32, n));
                    }
                }
            }
        }
    }

    /// Bytes of a shard for `len` indexes with every page allocated.
    pub(crate) fn full_bytes(len: usize) -> usize {
        let groups = len.div_ceil(GROUP_SPAN);
        std::mem::size_of::<Shard>()
            + groups * (std::mem::size_of::<OnceBox<Group>>() + std::mem::size_of::<Group>())
            + len.div_ceil(PAGE) * std::mem::size_of::<Page>()
    }

    /// Heap bytes this shard holds: itself, its group table, and every
    /// group and page allocated so far.
    pub(crate) fn bytes(&self) -> usize {
        let mut bytes = std::mem::size_of::<Shard>()
            + self.groups.len() * std::mem::size_of::<OnceBox<Group>>()
            + self.bounds.len() * std::mem::size_of::<AtomicU64>();
        for group in self.groups.iter().filter_map(OnceBox::get) {
            bytes += std::mem::size_of::<Group>();
            bytes += group.allocated().count() * std::mem::size_of::<Page>();
        }
        bytes
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn pages_are_allocated_only_where_values_land() {
        let shard = Shard::new(33_792);
        let empty = shard.bytes();
        assert_eq!(empty, 128 + 33 * 8);
        shard.add(5, 1, 5, Access::Owned);
        shard.add(6, 2, 12, Access::Owned); // same page
        assert_eq!(
            shard.bytes(),
            empty + std::mem::size_of::<Group>() + std::mem::size_of::<Page>()
        );
        shard.add(33_791, 1, 7, Access::Shared);
        assert_eq!(
            shard.bytes(),
            empty + 2 * (std::mem::size_of::<Group>() + std::mem::size_of::<Page>())
        );
        assert_eq!((shard.count(), shard.sum()), (4, 24));

        let mut counts = Vec::new();
        shard.append_counts(&mut counts);
        assert_eq!(counts, vec![(5, 1), (6, 2), (33_791, 1)]);
    }

    #[test]
    fn an_index_past_the_array_is_ignored() {
        let shard = Shard::new(100);
        shard.add(5_000, 1, 1, Access::Owned);
        assert_eq!(shard.count(), 0);
    }

    #[test]
    fn page_is_two_cache_lines() {
        assert_eq!(std::mem::size_of::<Page>(), 128);
        // The group size the crate docs state.
        assert_eq!(std::mem::size_of::<Group>(), 520);
        assert_eq!(std::mem::align_of::<Shard>(), 128);
    }
}
