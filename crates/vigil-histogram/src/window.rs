//! Sliding windows: the ring of completed interval histograms, the
//! cumulative total, and rotation. All of it is cold-path state behind the
//! histogram's `Mutex`; the hot path never touches it.

use std::collections::VecDeque;
use std::time::Duration;

use crate::layout::Layout;
use crate::shard::Shards;
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

/// One completed interval, sparse: `(counts index, count)` for each nonzero
/// bucket, in index order, and the exact raw sum.
#[derive(Default)]
struct Interval {
    counts: Vec<(u32, u64)>,
    sum: u64,
}

/// Ring, cumulative and the clock bookkeeping.
pub(crate) struct Windows {
    /// Completed intervals, oldest first, at most `capacity`.
    ring: VecDeque<Interval>,
    capacity: usize,
    /// Dense total of every completed interval; allocated on the first
    /// rotation that carries data.
    cumulative: Option<hdrhistogram::Histogram<u64>>,
    cumulative_sum: u128,
    /// Start of the current (live) interval, on the interval grid.
    current_start: quanta::Instant,
    created: quanta::Instant,
}

pub(crate) fn empty_histogram(config: &Config) -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(config.lowest, config.highest, config.sigfig)
        .expect("Config::build validated these bounds with the same rules as hdrhistogram")
}

impl Windows {
    pub(crate) fn new(now: quanta::Instant, capacity: usize) -> Windows {
        Windows {
            ring: VecDeque::new(),
            capacity,
            cumulative: None,
            cumulative_sum: 0,
            current_start: now,
            created: now,
        }
    }

    /// Complete the current interval if `now` is past its end: drain the
    /// shards into a new ring entry and the cumulative. When `k > 1`
    /// intervals passed, `k - 1` empty intervals go in first and the drained
    /// data into the most recent one (without per-value timestamps the
    /// data's exact interval is unknown; the newest keeps it in short windows).
    pub(crate) fn rotate(
        &mut self,
        now: quanta::Instant,
        shards: &Shards,
        layout: &Layout,
        config: &Config,
    ) {
        let elapsed = now.saturating_duration_since(self.current_start);
        let interval = config.interval;
        if elapsed < interval {
            return;
        }
        let interval_nanos = interval.as_nanos();
        let passed = elapsed.as_nanos() / interval_nanos;

        let mut counts = Vec::new();
        // Indexes fit in u32: a counts array has at most 65 * 2^17 entries.
        let sum = shards.collect(true, |index, count| counts.push((index as u32, count)));
        counts.shrink_to_fit();
        if !counts.is_empty() {
            let cumulative = self
                .cumulative
                .get_or_insert_with(|| empty_histogram(config));
            for &(index, count) in &counts {
                cumulative.saturating_record_n(layout.value_for(index as usize), count);
            }
        }
        self.cumulative_sum += u128::from(sum);

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

    /// Values in completed intervals since creation.
    pub(crate) fn cumulative_count(&self) -> u64 {
        self.cumulative.as_ref().map_or(0, |c| c.len())
    }

    fn push(&mut self, interval: Interval) {
        if self.ring.len() >= self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(interval);
    }

    /// Read `window` without changing any state (call [`Windows::rotate`]
    /// first). Live shards are read, not drained.
    pub(crate) fn snapshot(
        &self,
        window: Window,
        now: quanta::Instant,
        shards: &Shards,
        layout: &Layout,
        config: &Config,
    ) -> Snapshot {
        let (mut histogram, mut sum, covered) = match window {
            Window::Cumulative => (
                self.cumulative
                    .clone()
                    .unwrap_or_else(|| empty_histogram(config)),
                self.cumulative_sum,
                now.saturating_duration_since(self.created),
            ),
            Window::Last(length) => {
                let mut histogram = empty_histogram(config);
                let wanted = length.as_nanos().div_ceil(config.interval.as_nanos());
                let completed = usize::try_from(wanted.saturating_sub(1))
                    .unwrap_or(usize::MAX)
                    .min(self.ring.len());
                let mut sum = 0u128;
                for interval in self.ring.iter().rev().take(completed) {
                    for &(index, count) in &interval.counts {
                        histogram.saturating_record_n(layout.value_for(index as usize), count);
                    }
                    sum += u128::from(interval.sum);
                }
                let covered = now
                    .saturating_duration_since(self.current_start)
                    .saturating_add(
                        config
                            .interval
                            .saturating_mul(u32::try_from(completed).unwrap_or(u32::MAX)),
                    );
                (histogram, sum, covered)
            }
        };
        sum += u128::from(shards.collect(false, |index, count| {
            histogram.saturating_record_n(layout.value_for(index), count);
        }));
        Snapshot::from_parts(histogram, sum, config.scale, covered)
    }

    /// Heap bytes of the ring and the cumulative.
    pub(crate) fn bytes(&self) -> (usize, usize) {
        let ring = self.ring.capacity() * std::mem::size_of::<Interval>()
            + self
                .ring
                .iter()
                .map(|i| i.counts.capacity() * std::mem::size_of::<(u32, u64)>())
                .sum::<usize>();
        let cumulative = self
            .cumulative
            .as_ref()
            .map_or(0, |h| h.distinct_values() * std::mem::size_of::<u64>());
        (ring, cumulative)
    }
}
