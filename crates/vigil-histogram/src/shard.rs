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

use std::sync::atomic::Ordering::Relaxed;

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

/// The page pointers of one group of [`GROUP_SPAN`] indexes.
struct Group([OnceBox<Page>; GROUP]);

impl Group {
    fn new() -> Box<Group> {
        Box::new(Group(std::array::from_fn(|_| OnceBox::new())))
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
}

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
    pub(crate) fn new(len: usize) -> Box<Shard> {
        Box::new(Shard {
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            groups: (0..len.div_ceil(GROUP_SPAN))
                .map(|_| OnceBox::new())
                .collect(),
        })
    }

    /// Count `n` values at `index` whose raw values add up to `sum`.
    ///
    /// Hot path: two dependent pointer loads to find the page (allocated on
    /// the first value that lands in it, the only allocation), then three
    /// relaxed load + store pairs for an owner, `fetch_add`s otherwise.
    /// An index past the array is ignored (callers clamp first).
    #[inline]
    pub(crate) fn add(&self, index: usize, n: u64, sum: u64, access: Access) {
        let Some(group) = self.groups.get(index / GROUP_SPAN) else {
            return;
        };
        let group = group.get_or_init(Group::new);
        let page = group.0[(index / PAGE) % GROUP].get_or_init(Page::new);
        bump(&page.0[index % PAGE], n, access);
        bump(&self.count, n, access);
        bump(&self.sum, sum, access);
    }

    /// Values counted so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Raw sum so far, wrapping at 2^64.
    pub(crate) fn sum(&self) -> u64 {
        self.sum.load(Relaxed)
    }

    /// Whether group `g` has been allocated.
    pub(crate) fn has_group(&self, g: usize) -> bool {
        self.groups
            .get(g)
            .is_some_and(|group| group.get().is_some())
    }

    /// Add the counts of page `p` of group `g` into `into`, if that page
    /// exists.
    pub(crate) fn add_page(&self, g: usize, p: usize, into: &mut [u64; PAGE]) {
        let Some(page) = self
            .groups
            .get(g)
            .and_then(OnceBox::get)
            .and_then(|group| group.0[p].get())
        else {
            return;
        };
        for (total, counter) in into.iter_mut().zip(&page.0) {
            *total = total.wrapping_add(counter.load(Relaxed));
        }
    }

    /// Bytes of a shard for `len` indexes with every page allocated.
    pub(crate) fn full_bytes(len: usize) -> usize {
        let groups = len.div_ceil(GROUP_SPAN);
        std::mem::size_of::<Shard>()
            + groups * (std::mem::size_of::<OnceBox<Group>>() + std::mem::size_of::<Group>())
            + len.div_ceil(PAGE) * std::mem::size_of::<Page>()
    }

    /// Number of groups (allocated or not).
    pub(crate) fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Heap bytes this shard holds: itself, its group table, and every
    /// group and page allocated so far.
    pub(crate) fn bytes(&self) -> usize {
        let mut bytes = std::mem::size_of::<Shard>()
            + self.groups.len() * std::mem::size_of::<OnceBox<Group>>();
        for group in self.groups.iter().filter_map(OnceBox::get) {
            bytes += std::mem::size_of::<Group>();
            bytes += group.0.iter().filter(|page| page.get().is_some()).count()
                * std::mem::size_of::<Page>();
        }
        bytes
    }
}

/// Pages per group, for readers that walk a group page by page.
pub(crate) const PAGES_PER_GROUP: usize = GROUP;

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

        let mut page = [0; PAGE];
        shard.add_page(0, 0, &mut page);
        assert_eq!(&page[5..7], &[1, 2]);
        shard.add_page(0, 1, &mut page); // not allocated: unchanged
        assert_eq!(page.iter().sum::<u64>(), 3);
        assert!(shard.has_group(32) && !shard.has_group(1));
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
        assert_eq!(std::mem::align_of::<Shard>(), 128);
    }
}
