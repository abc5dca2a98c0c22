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
//!
//! A record writes three or four words (bucket, bound counter, count,
//! sum), so a reader could see some of them and not the others. Each
//! record is therefore bracketed by two counters, a sequence lock that
//! never blocks the writer: `started` is bumped before the counts (then a
//! release fence), `finished` after them (a release store). A reader loads
//! `finished` (acquire), reads, fences (acquire) and loads `started`: equal
//! means no record was part-way through or completed while it read, so
//! what it read is the state after exactly `finished` records; otherwise
//! it reads again. The owner of a shard bumps both with plain stores (no
//! locked instruction, ~1 ns); the shared shard's writers with `fetch_add`.
//! A reader that keeps meeting records (a writer that never pauses for the
//! length of a read) stops retrying after [`ATTEMPTS`] and falls back to
//! [`Shard::read`]'s bracketed estimate, so a read never waits for a writer
//! to pause for the length of a walk. The two ends of that bracket are
//! count-and-sum pairs read between two records ([`Shard::totals`]), which
//! a reader retries until its three loads fall between two records: it
//! waits out a record in flight (for as long as a writer preempted
//! part-way through one stays preempted), and needs a gap between records,
//! not a writer that stops. A pair read across a record is never used:
//! `count` is bumped before `sum`, so it could count a value whose sum it
//! lacks.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::sync::{AtomicU64, OnceBox, backoff, fence};

/// Tries of a read before it settles for the bracketed estimate.
#[cfg(not(loom))]
const ATTEMPTS: u32 = 16;
#[cfg(loom)]
const ATTEMPTS: u32 = 1;

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
    /// Records begun (see the module docs); bumped before the counts.
    started: AtomicU64,
    /// Records finished; bumped after the counts, with release.
    finished: AtomicU64,
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
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
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
    /// the first value that lands in it, the only allocation), then, for an
    /// owner, relaxed load + store pairs on the bucket, count and sum
    /// between the two sequence counters (a compiler-only fence on x86);
    /// `fetch_add`s for the shared shard. An index past the array is
    /// ignored (callers clamp first).
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
        // The page exists (and is marked allocated) before the record
        // begins: a reader never waits on an allocation.
        let group = group.get_or_init(Group::new);
        let page = group.page((index / PAGE) % GROUP);
        let ticket = self.begin(access);
        bump(&page.0[index % PAGE], n, access);
        if let Some(counter) = self.bounds.get(bound) {
            bump(counter, n, access);
        }
        bump(&self.count, n, access);
        bump(&self.sum, sum, access);
        self.end(ticket, access);
    }

    /// Marks a record begun; returns what [`end`](Shard::end) stores.
    #[inline]
    fn begin(&self, access: Access) -> u64 {
        let ticket = match access {
            // The owner is the only writer and left `finished` equal to
            // `started` after its last record (a new owner's claim
            // acquires the previous owner's release).
            Access::Owned => {
                let ticket = self.started.load(Relaxed).wrapping_add(1);
                self.started.store(ticket, Relaxed);
                ticket
            }
            Access::Shared => {
                self.started.fetch_add(1, Relaxed);
                0
            }
        };
        // Keeps the mark before the counts: a reader that sees any count
        // of this record, then fences with acquire, sees the mark too.
        fence(Release);
        ticket
    }

    /// Marks a record finished: every count it wrote is visible to a
    /// reader that acquires this store.
    #[inline]
    fn end(&self, ticket: u64, access: Access) {
        match access {
            Access::Owned => self.finished.store(ticket, Release),
            Access::Shared => {
                self.finished.fetch_add(1, Release);
            }
        }
    }

    /// One try at reading the shard between two records: the count, the
    /// raw sum and whatever `visit` appends to `out` (returning how many
    /// values it saw), all of the same records; `None` (and `out` as it
    /// was) when a record was part-way through or completed meanwhile.
    pub(crate) fn try_read<T>(
        &self,
        out: &mut Vec<T>,
        visit: &mut impl FnMut(&Shard, &mut Vec<T>) -> u64,
    ) -> Option<(u64, u64)> {
        let mark = out.len();
        let finished = self.finished.load(Acquire);
        let totals = (self.count.load(Relaxed), self.sum.load(Relaxed));
        visit(self, out);
        // Pairs with the release fence of any record whose counts were
        // seen above: its `started` bump is seen below.
        fence(Acquire);
        if self.started.load(Relaxed) == finished {
            Some(totals)
        } else {
            out.truncate(mark);
            None
        }
    }

    /// The count and raw sum of the same records, without visiting
    /// anything else; one try.
    pub(crate) fn try_totals(&self) -> Option<(u64, u64)> {
        self.try_read(&mut Vec::<()>::new(), &mut |_, _| 0)
    }

    /// The count and raw sum (wrapping) of the same records. Retries
    /// (spinning, then yielding) until it reads between two records: three
    /// words on one cache line, so a try fails only when it overlaps a
    /// record, and a writer preempted part-way through one is waited for.
    /// Never a pair read across a record: the count is bumped before the
    /// sum, so such a pair can count a value whose sum it lacks, and
    /// [`read`](Shard::read)'s bracket relies on both ends being states
    /// after whole records.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let mut attempt = 0u32;
        loop {
            if let Some(totals) = self.try_totals() {
                return totals;
            }
            attempt = attempt.saturating_add(1);
            backoff(attempt);
        }
    }

    /// `visit`'s reading of the shard (appended to `out`, returning how
    /// many values it saw), with the count and raw sum of the same
    /// records. Tries [`ATTEMPTS`] times to read between two records; a
    /// shard whose writer never paused that long is read once more
    /// between two reads of the totals ([`totals`](Shard::totals), each
    /// the state after whole records) instead: the count is then what
    /// `visit` saw (so buckets and count still agree), and the sum is the
    /// sum at the first read plus, for each value seen since, the mean of
    /// the values recorded between the two reads, which is exact when they
    /// were equal and always lies between the two sums read.
    pub(crate) fn read<T>(
        &self,
        out: &mut Vec<T>,
        mut visit: impl FnMut(&Shard, &mut Vec<T>) -> u64,
    ) -> (u64, u64) {
        for attempt in 1..=ATTEMPTS {
            if let Some(totals) = self.try_read(out, &mut visit) {
                return totals;
            }
            backoff(attempt);
        }
        let before = self.totals();
        let seen = visit(self, out);
        let after = self.totals();
        (seen, interpolate(seen, before, after))
    }

    /// Pushes this shard's bound counters onto `out`, in slot order;
    /// returns their sum (every value lands in one slot).
    pub(crate) fn append_bound_counts(&self, out: &mut Vec<u64>) -> u64 {
        let mut seen = 0u64;
        for counter in &*self.bounds {
            let n = counter.load(Relaxed);
            seen = seen.wrapping_add(n);
            out.push(n);
        }
        seen
    }

    /// Records finished so far (acquire: their counts are visible).
    pub(crate) fn finished(&self) -> u64 {
        self.finished.load(Acquire)
    }

    /// Moves every count of `from` into this shard (with `fetch_add`:
    /// others may be adding to it) and zeroes `from`, which nobody may be
    /// writing or reading. `from`'s finished records count as finished here
    /// (after the counts, with release). For the halves of the overflow
    /// shard.
    pub(crate) fn absorb(&self, from: &Shard) {
        for (g, group) in from.groups.iter().enumerate() {
            let Some(group) = group.get() else {
                continue;
            };
            for (p, page) in group.allocated() {
                for (i, counter) in page.0.iter().enumerate() {
                    let n = counter.load(Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let index = g * GROUP_SPAN + p * PAGE + i;
                    if let Some(to) = self.groups.get(g) {
                        let to = to.get_or_init(Group::new).page((index / PAGE) % GROUP);
                        to.0[index % PAGE].fetch_add(n, Relaxed);
                    }
                    counter.store(0, Relaxed);
                }
            }
        }
        for (to, counter) in self.bounds.iter().zip(&*from.bounds) {
            to.fetch_add(counter.load(Relaxed), Relaxed);
            counter.store(0, Relaxed);
        }
        for (to, counter) in [(&self.count, &from.count), (&self.sum, &from.sum)] {
            to.fetch_add(counter.load(Relaxed), Relaxed);
            counter.store(0, Relaxed);
        }
        let done = from.finished.load(Relaxed);
        from.started.store(0, Relaxed);
        from.finished.store(0, Relaxed);
        self.started.fetch_add(done, Relaxed);
        fence(Release);
        self.finished.fetch_add(done, Release);
    }

    /// Values counted so far (no sequence check: a count alone needs none).
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Raw sum so far, wrapping at 2^64.
    #[cfg(test)]
    pub(crate) fn sum(&self) -> u64 {
        self.sum.load(Relaxed)
    }

    /// Append `(index, count)` for every nonzero bucket, in index order,
    /// visiting only allocated groups and pages; returns the counts' sum.
    pub(crate) fn append_counts(&self, out: &mut Vec<(u32, u64)>) -> u64 {
        let mut seen = 0u64;
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
                        seen = seen.wrapping_add(n);
                    }
                }
            }
        }
        seen
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

/// The raw sum of the first `seen` records, given the count and sum read
/// before (`before`) and after (`after`) them: the sum before, plus the
/// mean of the values recorded in between for each one seen since.
fn interpolate(seen: u64, before: (u64, u64), after: (u64, u64)) -> u64 {
    let span = after.0.wrapping_sub(before.0);
    let into = seen.saturating_sub(before.0).min(span);
    if into == 0 {
        return before.1;
    }
    let gained = u128::from(after.1.wrapping_sub(before.1));
    // into <= span, so the quotient fits in u64.
    before
        .1
        .wrapping_add((gained * u128::from(into) / u128::from(span)) as u64)
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
    fn interpolated_sums_stay_between_the_sums_read() {
        // Nothing seen since the first read, everything, half of it.
        assert_eq!(interpolate(10, (10, 100), (14, 140)), 100);
        assert_eq!(interpolate(14, (10, 100), (14, 140)), 140);
        assert_eq!(interpolate(12, (10, 100), (14, 140)), 120);
        // Out of the bracket (cannot happen after two settled reads): clamped.
        assert_eq!(interpolate(9, (10, 100), (14, 140)), 100);
        assert_eq!(interpolate(20, (10, 100), (14, 140)), 140);
        // Sums that wrapped past 2^64 in between.
        assert_eq!(interpolate(1, (0, u64::MAX - 1), (2, 2)), 0);
    }

    /// Readers racing writers that never pause (the worst case: each
    /// record follows the last at once) never see a record part-way: the
    /// count is the buckets' and the bound counters' sum, and the sum that
    /// of as many values, whichever way the read succeeds.
    #[test]
    fn reads_never_see_a_record_part_way() {
        for (access, writers) in [(Access::Owned, 1), (Access::Shared, 2)] {
            let shard = Shard::with_bounds(4 * GROUP_SPAN, 3);
            let done = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                for w in 0..writers {
                    let (shard, done) = (&shard, &done);
                    s.spawn(move || {
                        let mut i = 0u64;
                        while !done.load(Relaxed) {
                            // Two buckets, one value (7) for the sum check.
                            let index = if (i + w).is_multiple_of(3) {
                                7
                            } else {
                                GROUP_SPAN + 1
                            };
                            shard.add_bounded(index, (i % 3) as usize, 1, 7, access);
                            i += 1;
                        }
                    });
                }
                let mut counts = Vec::new();
                let mut bounds = Vec::new();
                for _ in 0..5_000 {
                    counts.clear();
                    let (count, sum) = shard.read(&mut counts, Shard::append_counts);
                    assert_eq!(counts.iter().map(|&(_, n)| n).sum::<u64>(), count);
                    assert_eq!(sum, 7 * count, "{access:?}");
                    bounds.clear();
                    let (count, sum) = shard.read(&mut bounds, Shard::append_bound_counts);
                    assert_eq!(bounds.iter().sum::<u64>(), count);
                    assert_eq!(sum, 7 * count, "{access:?}");
                    let (count, sum) = shard.totals();
                    assert_eq!(sum, 7 * count, "{access:?}");
                }
                done.store(true, Relaxed);
            });
            let (count, sum) = shard.totals();
            assert_eq!((shard.started.load(Relaxed), sum), (count, 7 * count));
        }
    }

    #[test]
    fn page_is_two_cache_lines() {
        assert_eq!(std::mem::size_of::<Page>(), 128);
        // The group size the crate docs state.
        assert_eq!(std::mem::size_of::<Group>(), 520);
        assert_eq!(std::mem::align_of::<Shard>(), 128);
    }
}

#[cfg(loom)]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// What a reader may see of `records` (`(index, raw)`, one value
    /// each) when it saw the records in `seen`: buckets, count and sum.
    fn state(records: &[(usize, u64)], seen: &[usize]) -> (Vec<(u32, u64)>, u64, u64) {
        let mut counts: Vec<(u32, u64)> = seen.iter().map(|&r| (records[r].0 as u32, 1)).collect();
        crate::buckets::combine(&mut counts);
        let sum = seen.iter().map(|&r| records[r].1).sum();
        (counts, seen.len() as u64, sum)
    }

    /// A shard of `buckets` buckets and its owner, a thread that records
    /// `records` (`(index, raw)`, one value each) into it in order.
    fn owner_recording(
        buckets: usize,
        records: [(usize, u64); 2],
    ) -> (Arc<Shard>, loom::thread::JoinHandle<()>) {
        let shard = Arc::new(*Shard::new(buckets));
        let writer = {
            let shard = Arc::clone(&shard);
            loom::thread::spawn(move || {
                for (index, raw) in records {
                    shard.add(index, 1, raw, Access::Owned);
                }
            })
        };
        (shard, writer)
    }

    /// The owner records two values while a reader tries once: a read that
    /// succeeds sees none, the first, or both records, whole.
    #[test]
    fn an_owned_shard_reads_between_records() {
        let records = [(1, 3), (GROUP_SPAN + 1, 5)];
        loom::model(move || {
            let (shard, writer) = owner_recording(2 * GROUP_SPAN, records);
            let mut counts = Vec::new();
            if let Some((count, sum)) = shard.try_read(&mut counts, &mut Shard::append_counts) {
                let allowed = [&[][..], &[0], &[0, 1]].map(|seen| state(&records, seen));
                assert!(
                    allowed.contains(&(counts.clone(), count, sum)),
                    "{counts:?} {count} {sum}"
                );
            } else {
                assert!(counts.is_empty(), "a failed try leaves nothing behind");
            }
            writer.join().unwrap();
            assert_eq!(shard.try_totals(), Some((2, 8)));
        });
    }

    /// The bracketed read: between two settled reads of the totals, a
    /// walk sees at least the records of the first and at most those of
    /// the second, so its interpolated sum lies between the two sums.
    #[test]
    fn a_bracketed_walk_lies_between_its_totals() {
        loom::model(|| {
            let (shard, writer) = owner_recording(GROUP_SPAN, [(1, 3), (2, 5)]);
            // The ends as the fallback reads them: `totals`, which must
            // settle whatever the writer is doing (a pair read across a
            // record has no place in a bracket).
            let before = shard.totals();
            let mut counts = Vec::new();
            let seen = shard.append_counts(&mut counts);
            let after = shard.totals();
            let whole = [(0, 0), (1, 3), (2, 8)];
            assert!(whole.contains(&before) && whole.contains(&after));
            assert!(
                before.0 <= seen && seen <= after.0,
                "{before:?} {seen} {after:?}"
            );
            let sum = interpolate(seen, before, after);
            assert!(before.1 <= sum && sum <= after.1);
            if seen == after.0 {
                assert_eq!(sum, after.1);
            }
            writer.join().unwrap();
        });
    }

    /// A reader racing the owner, through the fallback (one try under
    /// loom) and `totals`: whatever the interleaving (the writer stopped
    /// between its count and its sum included), the count is the
    /// buckets' sum and the sum that of as many values (all equal).
    #[test]
    fn a_read_never_counts_a_value_without_its_sum() {
        loom::model(|| {
            let (shard, writer) = owner_recording(GROUP_SPAN, [(1, 3), (2, 3)]);
            let mut counts = Vec::new();
            let (count, sum) = shard.read(&mut counts, Shard::append_counts);
            assert_eq!(counts.iter().map(|&(_, n)| n).sum::<u64>(), count);
            assert_eq!(sum, 3 * count, "{counts:?}");
            let (count, sum) = shard.totals();
            assert_eq!(sum, 3 * count);
            writer.join().unwrap();
        });
    }
}
