//! Sliding windows: the ring of completed interval histograms and
//! rotation. All of it is cold-path state behind the histogram's `Mutex`;
//! the hot path never touches it. The cumulative total is the shards
//! themselves.

use std::collections::VecDeque;
use std::time::Duration;

use crate::buckets::{Sparse, combine, difference};
use crate::layout::Layout;
use crate::slots::Slots;
use crate::{Config, Snapshot};

/// Which stretch of time a read covers.
///
/// ```
/// use std::time::Duration;
/// use vigil_histogram::{Config, Window};
///
/// let (clock, mock) = quanta::Clock::mock();
/// let histogram = Config::new().interval(Duration::from_secs(10)).clock(clock).build()?;
/// histogram.record(1_000);
/// mock.increment(Duration::from_secs(10));
/// histogram.upkeep(); // the first interval completes (reads do this too)
/// histogram.record(2_000);
///
/// // The current (partial) interval only:
/// assert_eq!(histogram.snapshot(Window::Last(Duration::from_secs(10))).count(), 1);
/// // ... plus the most recent completed interval:
/// assert_eq!(histogram.snapshot(Window::Last(Duration::from_secs(20))).count(), 2);
/// // Everything since the histogram was built:
/// assert_eq!(histogram.snapshot(Window::Cumulative).count(), 2);
/// # Ok::<(), vigil_histogram::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Everything recorded since the histogram was built.
    Cumulative,
    /// The current, partial interval plus the most recent
    /// `ceil(d / interval) - 1` completed intervals (at most the ring
    /// length). The snapshot's [`window`](Snapshot::window) says how much
    /// time that actually is.
    Last(Duration),
}

thread_local! {
    /// The live buckets of the histogram being read, reused across reads
    /// (a scrape reads every series on one thread).
    static SCRATCH: std::cell::RefCell<Sparse> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One completed interval, sparse: `(counts index, count)` for each nonzero
/// bucket, in index order, and the exact raw sum.
#[derive(Default)]
struct Interval {
    counts: Sparse,
    sum: u64,
}

/// The ring, what the shards held at the last rotation, and the clock
/// bookkeeping. Shards are never drained: an interval is the difference
/// between two reads of the ever-growing shard counts, so readers never
/// write a word a recording thread writes.
pub(crate) struct Windows {
    /// Completed intervals, oldest first, at most `capacity`.
    ring: VecDeque<Interval>,
    capacity: usize,
    /// The summed shard counts and raw sum (wrapping) at the last rotation.
    baseline: Sparse,
    baseline_sum: u64,
    /// Raw sum of every completed interval since creation, unwrapped.
    completed_sum: u128,
    /// Start of the current (live) interval, on the interval grid.
    current_start: quanta::Instant,
    created: quanta::Instant,
}

impl Windows {
    pub(crate) fn new(now: quanta::Instant, capacity: usize) -> Windows {
        Windows {
            ring: VecDeque::new(),
            capacity,
            baseline: Vec::new(),
            baseline_sum: 0,
            completed_sum: 0,
            current_start: now,
            created: now,
        }
    }

    /// Complete the current interval if `now` is past its end: what the
    /// shards gained since the last rotation becomes a new ring entry. When
    /// `k > 1` intervals passed, `k - 1` empty intervals go in first and the
    /// data into the most recent one (without per-value timestamps the
    /// data's exact interval is unknown; the newest keeps it in short
    /// windows). Cost: one walk of the shards' allocated pages.
    pub(crate) fn rotate(&mut self, now: quanta::Instant, slots: &Slots, config: &Config) {
        let elapsed = now.saturating_duration_since(self.current_start);
        let interval = config.interval;
        if elapsed < interval {
            return;
        }
        let interval_nanos = interval.as_nanos();
        let passed = elapsed.as_nanos() / interval_nanos;

        let mut live = Vec::with_capacity(self.baseline.len() + 8);
        let (_, live_sum) = slots.collect(&mut live);
        let sum = live_sum.wrapping_sub(self.baseline_sum);
        self.completed_sum += u128::from(sum);
        // Reuse the buffer of the interval about to fall off the ring.
        let mut counts = if self.ring.len() >= self.capacity {
            self.ring.pop_front().map(|i| i.counts).unwrap_or_default()
        } else {
            Vec::new()
        };
        difference(&live, &self.baseline, &mut counts);
        if counts.capacity() > 2 * counts.len() {
            counts.shrink_to_fit();
        }
        self.baseline = live;
        self.baseline_sum = live_sum;

        let empties = usize::try_from(passed - 1)
            .unwrap_or(usize::MAX)
            .min(self.capacity);
        for _ in 0..empties {
            self.push(Interval::default());
        }
        self.push(Interval { counts, sum });

        let into_current = u64::try_from(elapsed.as_nanos() % interval_nanos).unwrap_or(u64::MAX);
        self.current_start = now
            .checked_sub(Duration::from_nanos(into_current))
            .unwrap_or(now);
    }

    fn push(&mut self, interval: Interval) {
        if self.ring.len() >= self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(interval);
    }

    /// Read each of `windows` into the matching `outs` without changing
    /// what any window holds (call [`Windows::rotate`] first). The live
    /// shards are read once, not drained, for all of them. Cost: one walk
    /// of the shards' pages plus the ring entries in each window; the
    /// snapshots' buffers are reused.
    pub(crate) fn snapshots_into(
        &self,
        windows: &[Window],
        now: quanta::Instant,
        slots: &Slots,
        layout: &Layout,
        config: &Config,
        outs: &mut [Snapshot],
    ) {
        let mut read = |live: &mut Sparse| {
            let (_, live_sum) = slots.collect(live);
            for (window, out) in windows.iter().zip(outs.iter_mut()) {
                self.fill(*window, now, live, live_sum, layout, config, out);
            }
        };
        // A read from a thread-local destructor, or re-entered, gets a
        // buffer of its own.
        let done = SCRATCH
            .try_with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut live) => {
                    read(&mut live);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false);
        if !done {
            read(&mut Vec::new());
        }
    }

    /// [`snapshots_into`](Windows::snapshots_into) for one window, given
    /// the live shards'
    /// buckets and raw sum.
    #[allow(clippy::too_many_arguments)] // the parts of one read, passed through
    fn fill(
        &self,
        window: Window,
        now: quanta::Instant,
        live: &[(u32, u64)],
        live_sum: u64,
        layout: &Layout,
        config: &Config,
        out: &mut Snapshot,
    ) {
        let since_rotation = live_sum.wrapping_sub(self.baseline_sum);
        match window {
            Window::Cumulative => {
                let sum = self.cumulative_sum(live_sum);
                let covered = now.saturating_duration_since(self.created);
                out.fill(*layout, config.scale, covered, sum, |counts| {
                    counts.extend_from_slice(live);
                });
            }
            Window::Last(length) => {
                let wanted = length.as_nanos().div_ceil(config.interval.as_nanos());
                let completed = usize::try_from(wanted.saturating_sub(1))
                    .unwrap_or(usize::MAX)
                    .min(self.ring.len());
                let covered = now
                    .saturating_duration_since(self.current_start)
                    .saturating_add(
                        config
                            .interval
                            .saturating_mul(u32::try_from(completed).unwrap_or(u32::MAX)),
                    );
                let intervals = || self.ring.iter().rev().take(completed);
                let sum = intervals().map(|i| u128::from(i.sum)).sum::<u128>()
                    + u128::from(since_rotation);
                out.fill(*layout, config.scale, covered, sum, |counts| {
                    difference(live, &self.baseline, counts);
                    if intervals().any(|i| !i.counts.is_empty()) {
                        for interval in intervals() {
                            counts.extend_from_slice(&interval.counts);
                        }
                        combine(counts);
                    }
                });
            }
        }
    }

    /// The raw sum since creation, given the shards' summed (wrapping)
    /// raw sum now.
    pub(crate) fn cumulative_sum(&self, live_sum: u64) -> u128 {
        self.completed_sum + u128::from(live_sum.wrapping_sub(self.baseline_sum))
    }

    /// Heap bytes of the ring and the baseline.
    pub(crate) fn bytes(&self) -> usize {
        let pair = std::mem::size_of::<(u32, u64)>();
        self.ring.capacity() * std::mem::size_of::<Interval>()
            + self
                .ring
                .iter()
                .map(|i| i.counts.capacity() * pair)
                .sum::<usize>()
            + self.baseline.capacity() * pair
    }
}
