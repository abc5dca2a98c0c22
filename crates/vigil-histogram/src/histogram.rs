//! [`Histogram`]: the concurrent recorder (hot path) and its reads (cold
//! path).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::bounds::Splits;
use crate::layout::Layout;
use crate::reject::Rejections;
use crate::shard::NO_BOUND;
use crate::slots::{Slots, slot_count};
use crate::window::Windows;
use crate::{Config, Rejection, Snapshot, Summary, Window};

/// A concurrent HDR histogram with a sliding window and a cumulative total.
///
/// Recording ([`record`](Histogram::record), [`record_duration`](Histogram::record_duration),
/// [`record_f64`](Histogram::record_f64)) takes no lock, makes no syscall,
/// reads no clock and executes no locked instruction: it finds the bucket
/// and adds with relaxed loads and stores to a shard the calling thread
/// owns. It allocates only when a value lands in a page of buckets the
/// thread's shard has not used yet. Reads ([`snapshot`](Histogram::snapshot),
/// [`summary`](Histogram::summary)) and [`upkeep`](Histogram::upkeep) take a
/// mutex, rotate the window ring when an interval ended, and sum the shards'
/// allocated pages.
///
/// `Send + Sync`: share it with `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use vigil_histogram::{Histogram, Window};
///
/// let histogram = Arc::new(Histogram::new());
/// std::thread::scope(|s| {
///     for t in 0..4 {
///         let histogram = &histogram;
///         s.spawn(move || {
///             for i in 0..1_000 {
///                 histogram.record_duration(Duration::from_micros(100 + t * 1_000 + i));
///             }
///         });
///     }
/// });
/// let summary = histogram.summary(Window::Last(Duration::from_secs(60)));
/// assert_eq!(summary.count, 4_000);
/// assert!(summary.max < 0.0042);
/// ```
pub struct Histogram {
    // Read by the hot path; never written after construction.
    layout: Layout,
    highest: u64,
    scale: f64,
    expected_interval: Option<u64>,
    /// [`Config::exact_bounds`]: values just above a bound move one bucket up.
    splits: Option<Arc<Splits>>,
    slots: Arc<Slots>,
    /// Written on the cold paths only.
    rejections: Rejections,
    // Cold path only.
    windows: Mutex<Windows>,
    config: Config,
}

impl Histogram {
    /// A histogram with the default [`Config`]: 1 ns ..= 1 h at 3
    /// significant figures, `record_f64` in seconds, 15 minutes of 10 s
    /// intervals.
    pub fn new() -> Self {
        Config::new()
            .build()
            .expect("the default config is valid (checked by config::tests::defaults_build)")
    }

    pub(crate) fn from_parts(config: Config, layout: Layout) -> Histogram {
        let now = config.clock.now();
        let slots = config.slots.unwrap_or_else(slot_count);
        let splits = config.exact.as_ref().and_then(|exact| {
            let key = (
                config.lowest,
                config.highest,
                config.sigfig,
                config.scale.to_bits(),
            );
            exact.splits(&layout, key)
        });
        let counters = splits.as_ref().map_or(0, |s| s.counters());
        Histogram {
            splits,
            layout,
            highest: config.highest,
            scale: config.scale,
            expected_interval: config.expected_interval,
            slots: Arc::new(Slots::with_bounds(layout.len(), slots, counters)),
            rejections: Rejections::default(),
            windows: Mutex::new(Windows::new(now, config.intervals)),
            config,
        }
    }

    /// Record one raw value (nanoseconds for the default config).
    ///
    /// Hot path, budget a few ns: bucket index from a leading-zero count,
    /// the calling thread's shard from a thread-local id, then a relaxed
    /// load and store on the bucket, the count and the sum (no locked
    /// instruction).
    /// Values above the configured highest are clamped
    /// to it and counted in [`out_of_range`](Histogram::out_of_range)
    /// ([`Rejection::Clamped`]). With
    /// [`Config::expected_interval`] set, the samples a stalled caller missed
    /// are recorded too.
    #[inline]
    pub fn record(&self, raw: u64) {
        // `n = 1` is a constant once inlined: the zero check and the
        // multiplications fold away.
        self.record_n(raw, 1);
    }

    /// Record the raw value `raw` `n` times, as one add (out-of-range
    /// values count `n` times in [`out_of_range`](Histogram::out_of_range)).
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record_n(1_000, 5);
    /// assert_eq!(histogram.snapshot(Window::Cumulative).count(), 5);
    /// ```
    #[inline]
    pub fn record_n(&self, raw: u64, n: u64) {
        if n == 0 {
            return;
        }
        let raw = if raw > self.highest {
            self.clamp_high(n)
        } else {
            raw
        };
        match &self.splits {
            None => self
                .slots
                .add(self.layout.index_for(raw), n, raw.wrapping_mul(n)),
            Some(splits) => {
                let (index, bound) = splits.place(self.layout.index_for(raw), raw);
                self.slots.add_bounded(index, bound, n, raw.wrapping_mul(n));
            }
        }
        if let Some(expected) = self.expected_interval
            && raw > expected
        {
            self.record_omitted(raw, expected, n);
        }
    }

    /// Record a duration as nanoseconds (whatever the scale), saturating at
    /// `u64::MAX` before clamping to the range.
    #[inline]
    pub fn record_duration(&self, d: Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Record a value in units: `round(value * scale)` raw units (seconds
    /// to nanoseconds for the default config). NaN, negative and infinite
    /// values are not recorded; they are counted by reason
    /// ([`rejected_for`](Histogram::rejected_for)) and in total
    /// ([`rejected`](Histogram::rejected)). Never panics.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record_f64(0.002); // 2 ms
    /// histogram.record_f64(f64::NAN);
    /// histogram.record_f64(-1.0);
    /// assert_eq!(histogram.rejected(), 2);
    /// let max = histogram.snapshot(Window::Cumulative).quantile(1.0);
    /// assert!((max - 0.002).abs() < 0.002 * 0.001); // 3 significant figures
    /// ```
    #[inline]
    pub fn record_f64(&self, value: f64) {
        self.record_f64_n(value, 1);
    }

    /// [`record_f64`](Histogram::record_f64) `n` times, as one add (what
    /// `metrics`' `record_many` asks for).
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record_f64_n(0.5, 3);
    /// histogram.record_f64_n(f64::NAN, 3);
    /// assert_eq!(histogram.snapshot(Window::Cumulative).count(), 3);
    /// assert_eq!(histogram.rejected(), 3);
    /// ```
    #[inline]
    pub fn record_f64_n(&self, value: f64, n: u64) {
        // Excludes NaN, negatives and +inf; -0.0 is in.
        if !(0.0..f64::INFINITY).contains(&value) {
            self.rejections.refuse(value, n);
            return;
        }
        // `as` saturates: products beyond u64 become u64::MAX, then clamp.
        // `+ 0.5` then truncation rounds half up (values are non-negative);
        // `f64::round` is a libm call on baseline x86-64.
        self.record_n((value * self.scale + 0.5) as u64, n);
    }

    #[cold]
    fn clamp_high(&self, n: u64) -> u64 {
        self.rejections.count(Rejection::Clamped, n);
        self.highest
    }

    /// Coordinated-omission correction: record `value - k * expected` for
    /// k = 1, 2, ... while it is at least `expected`, like hdrhistogram's
    /// `record_correct`, but a bucket at a time: all the k that land in one
    /// bucket are added with one `fetch_add`, so the cost is bounded by the
    /// number of buckets, not by `value / expected`.
    #[inline(never)]
    fn record_omitted(&self, value: u64, expected: u64, times: u64) {
        let step = u128::from(expected);
        let mut next = u128::from(value - expected);
        while next >= step {
            let mut index = self.layout.index_for(next as u64);
            let mut low = u128::from(self.layout.value_for(index)).max(step);
            if let Some(bound) = self
                .splits
                .as_ref()
                .and_then(|splits| splits.bound_below(index, next as u64))
            {
                // The values above an exact bound count one bucket up; the
                // ones at or below it stay, on the next round.
                index += 1;
                low = low.max(u128::from(bound) + 1);
            }
            let n = (next - low) / step + 1;
            // next + (next - step) + ... (n terms)
            let sum = n * next - step * n * (n - 1) / 2;
            // All n values lie on one side of every exact bound (but the
            // higher of two bounds in one HDR bucket), so they share a
            // bound counter.
            let bound = self
                .splits
                .as_ref()
                .map_or(NO_BOUND, |splits| splits.slot(index, next as u64));
            self.slots.add_bounded(
                index,
                bound,
                (n as u64).saturating_mul(times),
                (sum as u64).wrapping_mul(times),
            );
            next -= n * step;
        }
    }

    fn windows(&self) -> MutexGuard<'_, Windows> {
        // A panic while holding the lock leaves consistent data behind (every
        // step is a whole push or add), so poisoning is ignored.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of `window`, after rotating the ring if an interval ended.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record_duration(Duration::from_millis(3));
    /// let snapshot = histogram.snapshot(Window::Last(Duration::from_secs(60)));
    /// assert_eq!(snapshot.count(), 1);
    /// assert!((snapshot.quantile(0.5) - 0.003).abs() < 0.003 * 0.001);
    /// ```
    pub fn snapshot(&self, window: Window) -> Snapshot {
        let mut snapshot = Snapshot::empty(self.layout, self.scale);
        self.snapshot_into(window, &mut snapshot);
        snapshot
    }

    /// [`snapshot`](Histogram::snapshot) into an existing snapshot, reusing
    /// its buffer: a scrape that reads many histograms allocates once.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let (a, b) = (Histogram::new(), Histogram::new());
    /// a.record(1_000);
    /// b.record_n(2_000, 2);
    /// let mut snapshot = a.snapshot(Window::Cumulative);
    /// b.snapshot_into(Window::Cumulative, &mut snapshot);
    /// assert_eq!(snapshot.count(), 2);
    /// ```
    pub fn snapshot_into(&self, window: Window, out: &mut Snapshot) {
        self.snapshots_into(&[window], std::slice::from_mut(out));
    }

    /// Several windows at one moment, reading the live shards once:
    /// `outs[i]` becomes the snapshot of `windows[i]` (extra entries of
    /// either are left alone). What a summary with a recent window and a
    /// total needs, at the cost of one read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record(1_000);
    /// let mut outs = [histogram.snapshot(Window::Cumulative), histogram.snapshot(Window::Cumulative)];
    /// histogram.record(2_000);
    /// histogram.snapshots_into(&[Window::Last(Duration::from_secs(60)), Window::Cumulative], &mut outs);
    /// assert_eq!((outs[0].count(), outs[1].count()), (2, 2));
    /// ```
    pub fn snapshots_into(&self, windows: &[Window], outs: &mut [Snapshot]) {
        let now = self.config.clock.now();
        let mut ring = self.windows();
        ring.rotate(now, &self.slots, &self.config);
        ring.snapshots_into(windows, now, &self.slots, &self.layout, &self.config, outs);
    }

    /// The [`Summary`] of `window`; `snapshot(window).summary()`.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// for ms in 1..=1_000 {
    ///     histogram.record_f64(ms as f64 / 1e3);
    /// }
    /// let summary = histogram.summary(Window::Cumulative);
    /// assert_eq!(summary.count, 1_000);
    /// assert!((summary.p99 - 0.990).abs() < 0.990 * 0.001);
    /// ```
    pub fn summary(&self, window: Window) -> Summary {
        self.snapshot(window).summary()
    }

    /// Rotate the window ring if an interval boundary passed. Reads do this
    /// too. Rotation is lazy: values recorded after a boundary but before the
    /// next rotation count in the interval that just ended, so call this
    /// periodically (about once per interval, e.g. from a scrape or a timer)
    /// to keep data in the interval it was recorded in when nobody reads.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_histogram::{Config, Window};
    ///
    /// let (clock, mock) = quanta::Clock::mock();
    /// let histogram = Config::new().clock(clock).build()?;
    /// histogram.record(5);
    /// mock.increment(Duration::from_secs(10));
    /// histogram.upkeep(); // the 5 moves into the completed interval
    /// mock.increment(Duration::from_secs(10));
    /// histogram.upkeep(); // an empty interval completes
    /// assert_eq!(histogram.snapshot(Window::Last(Duration::from_secs(20))).count(), 0);
    /// assert_eq!(histogram.snapshot(Window::Last(Duration::from_secs(30))).count(), 1);
    /// # Ok::<(), vigil_histogram::Error>(())
    /// ```
    pub fn upkeep(&self) {
        let now = self.config.clock.now();
        self.windows().rotate(now, &self.slots, &self.config);
    }

    /// Values recorded since creation (rejected ones excluded), without
    /// building a snapshot or taking the histogram's lock: the shards'
    /// counts, summed.
    ///
    /// ```
    /// let histogram = vigil_histogram::Histogram::new();
    /// histogram.record(7);
    /// histogram.record_f64(f64::NAN);
    /// assert_eq!(histogram.count(), 1);
    /// ```
    pub fn count(&self) -> u64 {
        self.slots.totals().0
    }

    /// The count and the exact sum (in units) of every value recorded since
    /// creation, without reading any bucket: what a Prometheus summary's
    /// `_count` and `_sum` need. Costs one add per shard.
    ///
    /// ```
    /// let histogram = vigil_histogram::Histogram::new();
    /// histogram.record_f64(0.25);
    /// histogram.record_f64(0.5);
    /// assert_eq!(histogram.totals(), (2, 0.75));
    /// ```
    ///
    /// Count and sum are of the same values, even while other threads
    /// record: each thread's shard is read between two of its records.
    pub fn totals(&self) -> (u64, f64) {
        let windows = self.windows();
        let (count, sum) = self.slots.totals();
        (count, windows.cumulative_sum(sum) as f64 / self.scale)
    }

    /// The bounds of [`Config::exact_bounds`] in units, ascending and
    /// distinct (those at or above the range's highest value included);
    /// empty without them.
    pub fn exact_bounds(&self) -> &[f64] {
        self.splits.as_ref().map_or(&[], |splits| splits.units())
    }

    /// Cumulative counts at the [`exact_bounds`](Histogram::exact_bounds),
    /// since the histogram was built: `out[i]` is the number of values
    /// recorded at or below bound `i` (`out` is cleared and refilled); and
    /// the total count and sum in units, as [`totals`](Histogram::totals),
    /// of the same values as the bound counts, even while other threads
    /// record (so `out[i] <= count`, and `sum` is that of `count` values).
    /// Each thread's shard keeps one counter per bound, so this reads a few
    /// words per shard instead of walking the buckets: what a Prometheus
    /// classic histogram needs on every scrape. Empty `out` without exact
    /// bounds.
    ///
    /// ```
    /// use vigil_histogram::Config;
    ///
    /// let histogram = Config::new().exact_bounds(&[0.1, 0.25]).build()?;
    /// for seconds in [0.05, 0.1, 0.25, 0.250_05, 3.0] {
    ///     histogram.record_f64(seconds);
    /// }
    /// let mut counts = Vec::new();
    /// let (count, sum) = histogram.bound_counts(&mut counts);
    /// assert_eq!(histogram.exact_bounds(), [0.1, 0.25]);
    /// assert_eq!(counts, [2, 3]);
    /// assert_eq!(count, 5);
    /// assert!((sum - 3.650_05).abs() < 1e-9);
    /// # Ok::<(), vigil_histogram::Error>(())
    /// ```
    pub fn bound_counts(&self, out: &mut Vec<u64>) -> (u64, f64) {
        let windows = self.windows();
        let (count, sum) = self.slots.bound_totals(out);
        // The last counter holds the values above every bound.
        out.pop();
        let mut running = 0u64;
        for count in out.iter_mut() {
            running = running.wrapping_add(*count);
            *count = running;
        }
        (count, windows.cumulative_sum(sum) as f64 / self.scale)
    }

    /// Values above the configured highest that were clamped to it.
    ///
    /// ```
    /// use vigil_histogram::{Config, Window};
    ///
    /// let histogram = Config::new().range(1, 1_000).build()?;
    /// histogram.record(5_000);
    /// assert_eq!(histogram.out_of_range(), 1);
    /// assert_eq!(histogram.snapshot(Window::Cumulative).histogram().max(), 1_000);
    /// # Ok::<(), vigil_histogram::Error>(())
    /// ```
    pub fn out_of_range(&self) -> u64 {
        self.rejections.get(Rejection::Clamped)
    }

    /// Values given to [`record_f64`](Histogram::record_f64) that were NaN,
    /// negative or infinite, and so not recorded: the sum of
    /// [`rejected_for`](Histogram::rejected_for) over the reasons that
    /// drop a value.
    pub fn rejected(&self) -> u64 {
        Rejection::ALL
            .into_iter()
            .filter(|reason| !reason.is_recorded())
            .map(|reason| self.rejections.get(reason))
            .fold(0u64, u64::wrapping_add)
    }

    /// Values that were not recorded as given, for one reason, since the
    /// histogram was built: dropped (NaN, infinite, negative) or clamped to
    /// the highest value ([`Rejection::Clamped`], the same number as
    /// [`out_of_range`](Histogram::out_of_range)). Counting happens off the
    /// recording fast path: a value in range costs nothing more.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Rejection};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record_f64_n(f64::NAN, 3);
    /// histogram.record_f64(-0.5);
    /// histogram.record_f64(1e12); // seconds: above the default 1 h
    /// assert_eq!(histogram.rejected_for(Rejection::Nan), 3);
    /// assert_eq!(histogram.rejected_for(Rejection::Negative), 1);
    /// assert_eq!(histogram.rejected_for(Rejection::Clamped), 1);
    /// assert_eq!(histogram.rejected(), 4);
    /// ```
    pub fn rejected_for(&self, reason: Rejection) -> u64 {
        self.rejections.get(reason)
    }

    /// The config this histogram was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bytes this histogram holds right now: its own struct, its slots and
    /// shards (pages of buckets that were used), the sparse ring and the
    /// rotation baseline. It follows the buckets in use and the threads that
    /// recorded at the same time, never the configured range times the CPU
    /// count; see the crate docs.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of::<Slots>()
            + self.slots.bytes()
            + self.windows().bytes()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("config", &self.config)
            .field("out_of_range", &self.out_of_range())
            .field("rejected", &self.rejected())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mocked(config: Config) -> (Histogram, std::sync::Arc<quanta::Mock>) {
        let (clock, mock) = quanta::Clock::mock();
        (config.clock(clock).build().unwrap(), mock)
    }

    #[test]
    fn histogram_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Histogram>();
    }

    #[test]
    fn omitted_samples_match_hdrhistogram_record_correct() {
        for (expected, values) in [
            (
                1_000_u64,
                vec![999, 1_000, 1_001, 2_000, 2_001, 10_000, 1_234_567],
            ),
            (1, vec![0, 1, 2, 3, 5_000]),
            (7, vec![100_000, 3, 8, 15]),
            (1_000_000, vec![1_000_000_000, 1_500_000, 999_999]),
        ] {
            let histogram = Config::new().expected_interval(expected).build().unwrap();
            let mut reference =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
            let mut sum = 0u128;
            for &v in &values {
                histogram.record(v);
                reference.record_correct(v, expected).unwrap();
                sum += u128::from(v);
                let mut m = v.saturating_sub(expected);
                while v > expected && m >= expected {
                    sum += u128::from(m);
                    m -= expected;
                }
            }
            let snapshot = histogram.snapshot(Window::Cumulative);
            assert_eq!(snapshot.count(), reference.len(), "expected {expected}");
            for (ours, theirs) in snapshot.histogram().iter_all().zip(reference.iter_all()) {
                assert_eq!(ours.count_at_value(), theirs.count_at_value());
            }
            assert_eq!(snapshot.sum(), sum as f64 / 1e9);
        }
    }

    #[test]
    fn record_f64_rounds_to_raw_units() {
        let histogram = Histogram::new();
        histogram.record_f64(1.5e-9);
        histogram.record_f64(-0.0);
        let snapshot = histogram.snapshot(Window::Cumulative);
        assert_eq!(snapshot.histogram().count_at(2), 1);
        assert_eq!(snapshot.histogram().count_at(0), 1);
        assert_eq!(histogram.rejected(), 0);
    }

    #[test]
    fn huge_finite_values_are_clamped_not_rejected() {
        let histogram = Histogram::new();
        histogram.record_f64(f64::MAX);
        histogram.record(u64::MAX);
        histogram.record_duration(Duration::MAX);
        assert_eq!((histogram.out_of_range(), histogram.rejected()), (3, 0));
        let snapshot = histogram.snapshot(Window::Cumulative);
        assert_eq!(snapshot.count(), 3);
        assert_eq!(snapshot.histogram().count_at(3_600_000_000_000), 3);
        assert_eq!(snapshot.sum(), 3.0 * 3_600.0);
    }

    #[test]
    fn rotation_after_many_idle_intervals_keeps_data_in_the_newest() {
        let (histogram, mock) = mocked(Config::new().interval(Duration::from_secs(1)).intervals(4));
        histogram.record(10);
        mock.increment(Duration::from_millis(3_500));
        let last = |secs| histogram.snapshot(Window::Last(Duration::from_secs(secs)));
        assert_eq!(last(1).count(), 0);
        assert_eq!(last(2).count(), 1);
        assert_eq!(last(2).window(), Duration::from_millis(1_500));
        assert_eq!(
            last(100).window(),
            Duration::from_millis(3_500),
            "ring holds 3 intervals"
        );
        // Half-way into the current interval: the grid stays aligned.
        mock.increment(Duration::from_millis(500));
        assert_eq!(last(1).window(), Duration::ZERO);
        assert_eq!(last(100).window(), Duration::from_secs(4));
        mock.increment(Duration::from_secs(1_000_000));
        assert_eq!(last(100).count(), 0);
        assert_eq!(histogram.snapshot(Window::Cumulative).count(), 1);
    }

    #[test]
    fn cumulative_window_is_time_since_creation() {
        let (histogram, mock) = mocked(Config::new());
        mock.increment(Duration::from_secs(95));
        let snapshot = histogram.snapshot(Window::Cumulative);
        assert_eq!(snapshot.window(), Duration::from_secs(95));
        assert_eq!(snapshot.summary().window_seconds, 95.0);
    }

    #[test]
    fn memory_is_fixed_by_config_not_by_rate() {
        let (histogram, mock) = mocked(Config::new().intervals(3));
        let mut sizes = Vec::new();
        for _ in 0..6 {
            for i in 0..20_000u64 {
                histogram.record(1_000 + (i * 7_919) % 1_000_000);
            }
            mock.increment(Duration::from_secs(10));
            histogram.upkeep();
            sizes.push(histogram.memory_bytes());
        }
        // Once the ring is full, recording more does not grow memory.
        assert_eq!(sizes[3], sizes[5], "{sizes:?}");
    }
}
