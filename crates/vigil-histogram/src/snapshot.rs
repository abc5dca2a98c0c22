//! [`Snapshot`]: a point-in-time, owned copy of a window, with statistics in
//! units, and merge (HdrHistogram V2 interchange is in `interchange`).

use std::sync::OnceLock;
use std::time::Duration;

use crate::buckets::{Sparse, combine};
use crate::layout::Layout;
use crate::{Error, Summary};

/// What a `le` bound covers: no bucket, every bucket, or the buckets up to
/// an index.
enum Last {
    None,
    All,
    Index(u32),
}

/// One nonzero bucket of a [`Snapshot`], in raw units; see
/// [`Snapshot::buckets`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The lowest raw value counted in this bucket.
    pub low: u64,
    /// The highest raw value counted in this bucket (inclusive).
    pub high: u64,
    /// How many values the bucket holds.
    pub count: u64,
}

/// An owned copy of a window of a [`Histogram`](crate::Histogram): the
/// nonzero buckets of an HdrHistogram of raw values (sparse, so a copy
/// costs what the window holds, not the configured range), the exact raw
/// sum, the scale that turns raw values into units, and the span of time
/// covered. [`histogram`](Snapshot::histogram) builds the equivalent
/// `hdrhistogram::Histogram<u64>` on first use, for interchange.
///
/// Every statistic is in units (`raw / scale`: seconds for the defaults).
///
/// ```
/// use vigil_histogram::{Histogram, Window};
///
/// let histogram = Histogram::new();
/// for ms in 1..=100 {
///     histogram.record_f64(ms as f64 / 1000.0); // seconds
/// }
/// let snapshot = histogram.snapshot(Window::Cumulative);
/// assert_eq!(snapshot.count(), 100);
/// assert!((snapshot.quantile(0.99) - 0.099).abs() < 0.099 * 0.001);
/// assert!((snapshot.sum() - 5.05).abs() < 1e-9); // exact, not from buckets
/// assert_eq!(snapshot.count_le(0.050), 50); // a Prometheus `le="0.05"` bucket
/// # Ok::<(), vigil_histogram::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Nonzero buckets, `(counts index, count)`, in index order.
    counts: Sparse,
    total: u64,
    layout: Layout,
    sum: u128,
    scale: f64,
    window: Duration,
    dense: OnceLock<hdrhistogram::Histogram<u64>>,
}

impl Snapshot {
    /// An empty snapshot of `layout`, to fill with
    /// [`Histogram::snapshot_into`](crate::Histogram::snapshot_into).
    pub(crate) fn empty(layout: Layout, scale: f64) -> Snapshot {
        Snapshot {
            counts: Vec::new(),
            total: 0,
            layout,
            sum: 0,
            scale,
            window: Duration::ZERO,
            dense: OnceLock::new(),
        }
    }

    /// Refill from parts, keeping the bucket buffer's allocation.
    pub(crate) fn fill(
        &mut self,
        layout: Layout,
        scale: f64,
        window: Duration,
        sum: u128,
        fill: impl FnOnce(&mut Sparse),
    ) {
        self.counts.clear();
        fill(&mut self.counts);
        self.total = self
            .counts
            .iter()
            .fold(0u64, |total, &(_, count)| total.saturating_add(count));
        self.layout = layout;
        self.scale = scale;
        self.window = window;
        self.sum = sum;
        self.dense = OnceLock::new();
    }

    /// A snapshot of an `hdrhistogram::Histogram` (kept as the dense form).
    pub(crate) fn from_hdr(
        histogram: hdrhistogram::Histogram<u64>,
        sum: u128,
        scale: f64,
        window: Duration,
    ) -> Result<Snapshot, Error> {
        let highest = histogram.high().max(histogram.max());
        let layout =
            Layout::new(histogram.low(), highest, histogram.sigfig()).ok_or_else(|| {
                Error::Layout {
                    reason: format!(
                        "bounds {}..={} at {} significant figures",
                        histogram.low(),
                        highest,
                        histogram.sigfig()
                    ),
                }
            })?;
        let mut counts: Sparse = histogram
            .iter_recorded()
            .map(|v| {
                (
                    layout.index_for(v.value_iterated_to().min(highest)) as u32,
                    v.count_at_value(),
                )
            })
            .collect();
        combine(&mut counts);
        Ok(Snapshot {
            total: histogram.len(),
            counts,
            layout,
            sum,
            scale,
            window,
            dense: OnceLock::from(histogram),
        })
    }

    fn units(&self, raw: f64) -> f64 {
        raw / self.scale
    }

    /// The equivalent `hdrhistogram::Histogram`, in raw units (built from
    /// the buckets on first use, then kept).
    pub fn histogram(&self) -> &hdrhistogram::Histogram<u64> {
        self.dense.get_or_init(|| {
            let mut histogram = self.layout.empty_histogram();
            for &(index, count) in &self.counts {
                histogram.saturating_record_n(self.layout.value_for(index as usize), count);
            }
            histogram
        })
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Sum of the values, in units: the exact sum of the raw values recorded,
    /// not derived from buckets. (A snapshot read with
    /// [`Snapshot::from_base64`] has no recorded sum; its sum is estimated
    /// from the buckets.)
    pub fn sum(&self) -> f64 {
        self.units(self.sum as f64)
    }

    /// Smallest value, at bucket resolution (the bucket's lowest value); 0.0
    /// when empty.
    pub fn min(&self) -> f64 {
        self.counts.first().map_or(0.0, |&(index, _)| {
            self.units(self.layout.value_for(index as usize) as f64)
        })
    }

    /// Largest value, at bucket resolution (the bucket's highest value, like
    /// `quantile(1.0)`); 0.0 when empty.
    pub fn max(&self) -> f64 {
        self.counts.last().map_or(0.0, |&(index, _)| {
            self.units(self.layout.highest_for(index as usize) as f64)
        })
    }

    /// Exact mean, `sum / count`; 0.0 when empty.
    pub fn mean(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            count => self.sum() / count as f64,
        }
    }

    /// Standard deviation from the buckets (hdrhistogram's `stdev`: each
    /// value taken at its bucket's middle); 0.0 when empty.
    pub fn stddev(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let total = self.total as f64;
        // The same folds, in the same order, as hdrhistogram's `mean` and
        // `stdev`, so the results are identical.
        let mean = self.counts.iter().fold(0.0_f64, |acc, &(index, count)| {
            acc + self.layout.median_for(index as usize) as f64 * count as f64 / total
        });
        let deviations = self.counts.iter().fold(0.0_f64, |acc, &(index, count)| {
            let dev = self.layout.median_for(index as usize) as f64 - mean;
            acc + (dev * dev) * count as f64
        });
        self.units((deviations / total).sqrt())
    }

    /// The rank hdrhistogram's `value_at_quantile` looks for.
    fn rank(&self, q: f64) -> u64 {
        let q = if q > 1.0 { 1.0 } else { q };
        // Beyond 2^53 values `total as f64` may round up past the total,
        // a rank no bucket reaches.
        ((q * self.total as f64).ceil() as u64).clamp(1, self.total.max(1))
    }

    /// The value at quantile `q` (0.0 ..= 1.0), in units, as hdrhistogram's
    /// `value_at_quantile`: the highest value of the bucket holding rank
    /// `max(1, ceil(q * count))` (the lowest for `q == 0`), within the
    /// configured significant figures of the exact quantile. 0.0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut out = [0.0];
        self.quantiles(&[q], &mut out);
        out[0]
    }

    /// Several quantiles in one walk over the buckets: `out[i]` is
    /// [`quantile(qs[i])`](Snapshot::quantile). `qs` need not be sorted;
    /// extra entries of `out` are left alone.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// (1..=1_000).for_each(|us| histogram.record(us * 1_000));
    /// let snapshot = histogram.snapshot(Window::Cumulative);
    /// let mut out = [0.0; 3];
    /// snapshot.quantiles(&[0.99, 0.5, 0.9], &mut out);
    /// assert_eq!(out, [snapshot.quantile(0.99), snapshot.quantile(0.5), snapshot.quantile(0.9)]);
    /// ```
    pub fn quantiles(&self, qs: &[f64], out: &mut [f64]) {
        let n = qs.len().min(out.len());
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            self.quantiles_upto_64(&qs[start..end], &mut out[start..end]);
        }
    }

    /// [`quantiles`](Snapshot::quantiles) for at most 64 (the length of
    /// the `resolved` mask), `qs.len() == out.len()`.
    fn quantiles_upto_64(&self, qs: &[f64], out: &mut [f64]) {
        if self.total == 0 {
            out.fill(0.0);
            return;
        }
        // Resolve quantiles as the running count reaches their ranks;
        // `next` is the smallest rank still open, so a bucket that resolves
        // nothing costs one comparison.
        let mut resolved = 0u64;
        let all = if qs.len() == 64 {
            u64::MAX
        } else {
            (1u64 << qs.len()) - 1
        };
        let mut running = 0u64;
        let mut next = qs.iter().map(|&q| self.rank(q)).min().unwrap_or(u64::MAX);
        for &(index, count) in &self.counts {
            running = running.saturating_add(count);
            if running < next {
                continue;
            }
            next = u64::MAX;
            for (i, &q) in qs.iter().enumerate() {
                if resolved & (1 << i) != 0 {
                    continue;
                }
                let rank = self.rank(q);
                if rank <= running {
                    let raw = if q == 0.0 {
                        self.layout.value_for(index as usize)
                    } else {
                        self.layout.highest_for(index as usize)
                    };
                    out[i] = self.units(raw as f64);
                    resolved |= 1 << i;
                } else {
                    next = next.min(rank);
                }
            }
            if resolved == all {
                return;
            }
        }
    }

    /// Number of values at or below `bound` (in units), for Prometheus `le`
    /// buckets: counts every bucket whose lowest value is at most `bound`, so
    /// it is monotone in `bound`, exact where buckets are one raw unit wide
    /// and otherwise off by at most one bucket width (the configured
    /// precision). `count_le(f64::INFINITY) == count()`; NaN and negative
    /// bounds give 0.
    pub fn count_le(&self, bound: f64) -> u64 {
        match self.last_index_le(bound) {
            Last::None => 0,
            Last::All => self.total,
            Last::Index(last) => self
                .counts
                .iter()
                .take_while(|&&(index, _)| index <= last)
                .fold(0u64, |total, &(_, count)| total.saturating_add(count)),
        }
    }

    /// Which buckets `count_le(bound)` counts.
    fn last_index_le(&self, bound: f64) -> Last {
        let raw = bound * self.scale;
        if raw.is_nan() || raw < 0.0 || self.total == 0 {
            return Last::None;
        }
        if raw >= self.layout.highest as f64 {
            return Last::All;
        }
        // `245.0 / 1e9 * 1e9` is 244.99999999999997: snap float noise to the
        // integer the caller meant before flooring.
        let nearest = raw.round();
        let raw = if (raw - nearest).abs() <= raw * 1e-12 {
            nearest
        } else {
            raw.floor()
        };
        Last::Index(self.layout.index_for((raw as u64).min(self.layout.highest)) as u32)
    }

    /// [`count_le`](Snapshot::count_le) for every bound in one walk over
    /// the buckets: `out[i] = count_le(bounds[i])`. Bounds in ascending
    /// order (as Prometheus `le` bounds are) cost one pass in all; others
    /// are answered one by one.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// (1..=100).for_each(|ms| histogram.record_f64(ms as f64 / 1e3));
    /// let snapshot = histogram.snapshot(Window::Cumulative);
    /// let mut out = [0; 3];
    /// snapshot.counts_le(&[0.01, 0.05, f64::INFINITY], &mut out);
    /// assert_eq!(out, [10, 50, 100]);
    /// ```
    pub fn counts_le(&self, bounds: &[f64], out: &mut [u64]) {
        let n = bounds.len().min(out.len());
        if !bounds[..n].windows(2).all(|pair| pair[0] <= pair[1]) {
            for (bound, count) in bounds[..n].iter().zip(&mut out[..n]) {
                *count = self.count_le(*bound);
            }
            return;
        }
        let mut buckets = self.counts.iter().peekable();
        let mut running = 0u64;
        for (bound, count) in bounds[..n].iter().zip(&mut out[..n]) {
            match self.last_index_le(*bound) {
                Last::None => *count = 0,
                Last::All => *count = self.total,
                Last::Index(last) => {
                    while let Some(&&(index, c)) = buckets.peek() {
                        if index > last {
                            break;
                        }
                        running = running.saturating_add(c);
                        buckets.next();
                    }
                    *count = running;
                }
            }
        }
    }

    /// The nonzero buckets in value order: for each, the range of raw values
    /// it counts (`low ..= high`, hdrhistogram's lowest and highest
    /// equivalent values) and how many values it holds. Divide by
    /// [`scale`](Snapshot::scale) for units. This is what exporters walk to
    /// re-bucket (e.g. into Prometheus native histograms) without a dense
    /// copy.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record(5);
    /// histogram.record(5);
    /// histogram.record(100_000);
    /// let snapshot = histogram.snapshot(Window::Cumulative);
    /// let buckets: Vec<_> = snapshot.buckets().collect();
    /// assert_eq!(buckets.len(), 2);
    /// assert_eq!((buckets[0].low, buckets[0].high, buckets[0].count), (5, 5, 2));
    /// assert!(buckets[1].low <= 100_000 && 100_000 <= buckets[1].high);
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        self.counts.iter().map(|&(index, count)| Bucket {
            low: self.layout.value_for(index as usize),
            high: self.layout.highest_for(index as usize),
            count,
        })
    }

    /// The span of time this snapshot covers: time since creation for
    /// [`Window::Cumulative`](crate::Window::Cumulative); the elapsed part
    /// of the current interval plus the completed intervals included for
    /// [`Window::Last`](crate::Window::Last). Zero for decoded snapshots.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Raw units per unit.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// All statistics at once (one walk for the quantiles); see
    /// [`Summary`].
    pub fn summary(&self) -> Summary {
        let window_seconds = self.window.as_secs_f64();
        if self.total == 0 {
            return Summary {
                window_seconds,
                ..Summary::default()
            };
        }
        let mut q = [0.0; 6];
        self.quantiles(&[0.5, 0.75, 0.9, 0.95, 0.99, 0.999], &mut q);
        Summary {
            count: self.count(),
            sum: self.sum(),
            min: self.min(),
            max: self.max(),
            mean: self.mean(),
            stddev: self.stddev(),
            p50: q[0],
            p75: q[1],
            p90: q[2],
            p95: q[3],
            p99: q[4],
            p999: q[5],
            window_seconds,
        }
    }

    /// Add `other` into this snapshot: counts bucket by bucket, sums added,
    /// window the longer of the two (merging is meant for the same period
    /// seen by several recorders or processes).
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let (a, b) = (Histogram::new(), Histogram::new());
    /// a.record(1_000);
    /// b.record(3_000);
    /// let mut merged = a.snapshot(Window::Cumulative);
    /// merged.merge(&b.snapshot(Window::Cumulative))?;
    /// assert_eq!(merged.count(), 2);
    /// assert_eq!(merged.mean(), 2e-6);
    /// # Ok::<(), vigil_histogram::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Merge`] when the scales differ or `other` holds values above
    /// this snapshot's range; `self` is then unchanged.
    pub fn merge(&mut self, other: &Snapshot) -> Result<(), Error> {
        if self.scale != other.scale {
            return Err(Error::Merge {
                reason: format!(
                    "scales differ ({} vs {} raw units per unit); use with_scale to align them",
                    self.scale, other.scale
                ),
            });
        }
        if let Some(&(last, _)) = other.counts.last() {
            let max = other.layout.highest_for(last as usize);
            if max > self.layout.highest {
                return Err(Error::Merge {
                    reason: format!(
                        "the other snapshot's max is {max} but this one tracks up to {}",
                        self.layout.highest
                    ),
                });
            }
        }
        // Re-bucket through each bucket's lowest value, as hdrhistogram's
        // `add` does: exact when the layouts are the same.
        self.counts
            .extend(other.counts.iter().map(|&(index, count)| {
                let value = other.layout.value_for(index as usize);
                (self.layout.index_for(value) as u32, count)
            }));
        combine(&mut self.counts);
        self.total = self.total.saturating_add(other.total);
        self.sum = self.sum.saturating_add(other.sum);
        self.window = self.window.max(other.window);
        self.dense = OnceLock::new();
        Ok(())
    }

    /// The same data read with another scale (raw units per unit). A scale
    /// that is not finite and positive is ignored.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record(1_500_000); // 1.5 ms in ns
    /// let millis = histogram.snapshot(Window::Cumulative).with_scale(1e6);
    /// assert_eq!(millis.mean(), 1.5);
    /// ```
    pub fn with_scale(mut self, raw_per_unit: f64) -> Self {
        if raw_per_unit.is_finite() && raw_per_unit > 0.0 {
            self.scale = raw_per_unit;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(values: &[u64]) -> Snapshot {
        let mut histogram =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for &v in values {
            histogram.record(v).unwrap();
        }
        let sum = values.iter().map(|&v| u128::from(v)).sum();
        Snapshot::from_hdr(histogram, sum, 1e9, Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn empty_snapshot_reads_zero_everywhere() {
        let empty = snapshot(&[]);
        assert_eq!(
            empty.summary(),
            Summary {
                window_seconds: 10.0,
                ..Summary::default()
            }
        );
        assert_eq!(empty.quantile(0.5), 0.0);
        assert_eq!(empty.max(), 0.0);
        assert_eq!(empty.count_le(f64::INFINITY), 0);
    }

    #[test]
    fn count_le_is_monotone_and_total_at_infinity() {
        let s = snapshot(&[0, 5, 245, 2_000, 5_000_000, 5_001_000, 1_000_000_000]);
        assert_eq!(s.count_le(-1.0), 0);
        assert_eq!(s.count_le(f64::NAN), 0);
        assert_eq!(s.count_le(0.0), 1);
        assert_eq!(s.count_le(4e-9), 1);
        assert_eq!(s.count_le(5e-9), 2);
        assert_eq!(s.count_le(244.0 / 1e9), 2);
        assert!(std::hint::black_box(245.0) / 1e9 * 1e9 < 245.0);
        assert_eq!(
            s.count_le(245.0 / 1e9),
            3,
            "float noise below 245 still counts 245"
        );
        assert_eq!(s.count_le(1e-6), 3);
        assert_eq!(
            s.count_le(0.005),
            6,
            "5_001_000 shares 5_000_000's 4096-wide bucket"
        );
        assert_eq!(s.count_le(1.0), 7);
        assert_eq!(s.count_le(f64::INFINITY), s.count());
        let mut last = 0;
        for i in 0..2_000 {
            let c = s.count_le(f64::from(i) * 1e-3);
            assert!(c >= last);
            last = c;
        }
    }

    proptest::proptest! {
        #[test]
        fn one_walk_reads_agree_with_hdrhistogram(
            values in proptest::collection::vec(0u64..10_000_000_000, 1..300),
            qs in proptest::collection::vec(0.0f64..=1.0, 1..80),
            mut bounds in proptest::collection::vec(0.0f64..12.0, 0..20),
        ) {
            let s = snapshot(&values);
            let reference = s.histogram().clone();
            let mut out = vec![0.0; qs.len()];
            s.quantiles(&qs, &mut out);
            for (q, ours) in qs.iter().zip(&out) {
                let theirs = reference.value_at_quantile(*q) as f64 / 1e9;
                proptest::prop_assert_eq!(*ours, theirs, "q {}", q);
            }
            let mut counts = vec![0; bounds.len()];
            s.counts_le(&bounds, &mut counts); // any order
            for (bound, count) in bounds.iter().zip(&counts) {
                proptest::prop_assert_eq!(*count, s.count_le(*bound));
            }
            bounds.sort_by(f64::total_cmp);
            s.counts_le(&bounds, &mut counts); // one walk
            for (bound, count) in bounds.iter().zip(&counts) {
                proptest::prop_assert_eq!(*count, s.count_le(*bound));
            }
            let summary = s.summary();
            proptest::prop_assert_eq!(summary.stddev, reference.stdev() / 1e9);
            proptest::prop_assert_eq!(summary.min, reference.min() as f64 / 1e9);
            proptest::prop_assert_eq!(summary.max, reference.max() as f64 / 1e9);
        }
    }

    #[test]
    fn merge_refuses_different_scales_and_leaves_self_unchanged() {
        let mut a = snapshot(&[1_000]);
        let b = snapshot(&[2_000]).with_scale(1e6);
        assert!(matches!(a.merge(&b), Err(Error::Merge { .. })));
        assert_eq!(a.count(), 1);
    }

    #[test]
    fn merge_refuses_values_beyond_range() {
        let mut small = Snapshot::from_hdr(
            hdrhistogram::Histogram::new_with_bounds(1, 1_000, 3).unwrap(),
            0,
            1e9,
            Duration::ZERO,
        )
        .unwrap();
        let big = snapshot(&[1_000_000_000]);
        let error = small.merge(&big).unwrap_err().to_string();
        assert!(error.starts_with("cannot merge snapshots:"), "{error}");
        assert_eq!(small.count(), 0);
    }

    #[test]
    fn invalid_scale_is_ignored() {
        assert_eq!(snapshot(&[1]).with_scale(f64::NAN).scale(), 1e9);
        assert_eq!(snapshot(&[1]).with_scale(-2.0).scale(), 1e9);
    }
}
