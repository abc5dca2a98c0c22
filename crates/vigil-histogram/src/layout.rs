//! The bucket layout of an HdrHistogram: which counts index a value lands in
//! and which value an index stands for.
//!
//! The formulas are hdrhistogram 7.5's (`new_with_bounds`, `index_for`,
//! `value_for`, `buckets_to_cover`), copied so that the concurrent shards
//! count into arrays laid out exactly like `hdrhistogram::Histogram::counts`:
//! a snapshot is then `record_n(value_for(i), count)` per nonzero index, with
//! no re-bucketing error. `tests::layout_matches_hdrhistogram` checks this.

/// Index arithmetic for one (lowest, highest, significant figures) triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The bounds and precision this layout was made for.
    pub(crate) lowest: u64,
    pub(crate) highest: u64,
    pub(crate) sigfig: u8,
    /// Largest power of two not above `lowest`: values are counted in units
    /// of `2^unit_magnitude`.
    unit_magnitude: u8,
    /// `log2(sub_bucket_count / 2)`.
    sub_bucket_half_count_magnitude: u8,
    /// Bits of the largest value that still fits in bucket 0.
    sub_bucket_mask: u64,
    /// Leading zeros of the largest value in bucket 0.
    leading_zero_count_base: u8,
    /// Length of the counts array.
    len: usize,
}

impl Layout {
    /// The layout hdrhistogram uses for these bounds, or `None` when
    /// `hdrhistogram::Histogram::new_with_bounds` would refuse them.
    pub(crate) fn new(lowest: u64, highest: u64, sigfig: u8) -> Option<Layout> {
        if !(1..=u64::MAX / 2).contains(&lowest) || highest < 2 * lowest || sigfig > 5 {
            return None;
        }
        let largest = 2 * 10_u32.pow(u32::from(sigfig));
        let unit_magnitude = (lowest as f64).log2().floor() as u8;
        let sub_bucket_count_magnitude = f64::from(largest).log2().ceil() as u8;
        if unit_magnitude + sub_bucket_count_magnitude > 63 {
            return None;
        }
        let sub_bucket_half_count_magnitude = sub_bucket_count_magnitude - 1;
        let sub_bucket_count = 1_u64 << sub_bucket_count_magnitude;
        let sub_bucket_mask = (sub_bucket_count - 1) << unit_magnitude;

        // buckets_to_cover(highest)
        let mut smallest_untrackable = sub_bucket_count << unit_magnitude;
        let mut buckets: usize = 1;
        while smallest_untrackable <= highest {
            if smallest_untrackable > u64::MAX / 2 {
                buckets += 1;
                break;
            }
            smallest_untrackable <<= 1;
            buckets += 1;
        }
        let len = (buckets + 1) << sub_bucket_half_count_magnitude;

        Some(Layout {
            lowest,
            highest,
            sigfig,
            unit_magnitude,
            sub_bucket_half_count_magnitude,
            sub_bucket_mask,
            leading_zero_count_base: 64 - unit_magnitude - sub_bucket_count_magnitude,
            len,
        })
    }

    /// Length of the counts array.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// `log2` of the indexes per half-bucket group: `index >> this` is the
    /// group an index belongs to, and groups are in value order.
    pub(crate) fn group_shift(&self) -> u32 {
        u32::from(self.sub_bucket_half_count_magnitude)
    }

    /// Counts index of `value`. Hot path: a handful of integer instructions,
    /// no branch. Callers clamp `value` to the configured highest first, which
    /// keeps the result below [`Layout::len`].
    #[inline]
    pub(crate) fn index_for(&self, value: u64) -> usize {
        let bucket = u32::from(self.leading_zero_count_base)
            - (value | self.sub_bucket_mask).leading_zeros();
        let sub_bucket = value >> (bucket + u32::from(self.unit_magnitude));
        // hdrhistogram computes ((bucket + 1) << half_mag) + sub_bucket - half_count,
        // which is the same number without the signed intermediate.
        ((bucket as usize) << self.sub_bucket_half_count_magnitude) + sub_bucket as usize
    }

    /// The lowest value counted at `index`.
    pub(crate) fn value_for(&self, index: usize) -> u64 {
        let half_count = 1_u64 << self.sub_bucket_half_count_magnitude;
        let mut bucket = (index >> self.sub_bucket_half_count_magnitude) as i64 - 1;
        let mut sub_bucket = (index as u64 & (half_count - 1)) + half_count;
        if bucket < 0 {
            sub_bucket -= half_count;
            bucket = 0;
        }
        sub_bucket << (bucket as u32 + u32::from(self.unit_magnitude))
    }
}

impl Layout {
    /// Width of the range of raw values counted at `index`
    /// (hdrhistogram's `equivalent_range`).
    pub(crate) fn range_for(&self, index: usize) -> u64 {
        let bucket = ((index >> self.sub_bucket_half_count_magnitude) as u32).saturating_sub(1);
        1_u64
            .checked_shl(bucket + u32::from(self.unit_magnitude))
            .unwrap_or(u64::MAX)
    }

    /// The highest raw value counted at `index` (hdrhistogram's
    /// `highest_equivalent`).
    pub(crate) fn highest_for(&self, index: usize) -> u64 {
        let low = self.value_for(index);
        if low == u64::MAX {
            return u64::MAX;
        }
        low.saturating_add(self.range_for(index)) - 1
    }

    /// The middle of the range counted at `index`, rounded up
    /// (hdrhistogram's `median_equivalent`).
    pub(crate) fn median_for(&self, index: usize) -> u64 {
        self.value_for(index)
            .saturating_add(self.range_for(index) >> 1)
    }

    /// An empty `hdrhistogram::Histogram` with this layout.
    pub(crate) fn empty_histogram(&self) -> hdrhistogram::Histogram<u64> {
        hdrhistogram::Histogram::new_with_bounds(self.lowest, self.highest, self.sigfig)
            .expect("Layout::new accepted these bounds with hdrhistogram's own rules")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_matches(lowest: u64, highest: u64, sigfig: u8, values: impl Iterator<Item = u64>) {
        let layout = Layout::new(lowest, highest, sigfig).unwrap();
        let mut reference =
            hdrhistogram::Histogram::<u64>::new_with_bounds(lowest, highest, sigfig).unwrap();
        assert_eq!(layout.len(), reference.distinct_values(), "counts length");
        for value in values.filter(|v| *v <= highest) {
            let index = layout.index_for(value);
            assert!(index < layout.len(), "{value} -> {index}");
            // Index equality shows as identical lowest equivalents: value_for
            // of our index must be hdrhistogram's bucket for the value.
            assert_eq!(
                layout.value_for(index),
                reference.lowest_equivalent(value),
                "value {value} (lowest {lowest}, highest {highest}, sigfig {sigfig})"
            );
            reference.record(value).unwrap();
        }
        // And every index maps back onto itself.
        for index in 0..layout.len() {
            let value = layout.value_for(index);
            if value <= highest {
                assert_eq!(layout.index_for(value), index);
            }
        }
    }

    fn spread(highest: u64) -> impl Iterator<Item = u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        std::iter::from_fn(move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // log-uniform over the whole range
            let bits = x % 64;
            let v = if bits == 0 { 0 } else { x >> (64 - bits) };
            Some(v.min(highest))
        })
        .take(20_000)
        .chain(0..5_000)
        .chain([highest, highest - 1, highest / 2])
    }

    #[test]
    fn layout_matches_hdrhistogram() {
        for (lowest, highest, sigfig) in [
            (1, 3_600_000_000_000, 3),
            (1, 2, 0),
            (1, u64::MAX, 3),
            (1, u64::MAX, 5),
            (1_000, 60_000_000_000, 2),
            (1_000, 3_600_000_000_000, 4),
            (7, 1 << 40, 1),
            (1 << 20, u64::MAX, 5),
        ] {
            assert_matches(lowest, highest, sigfig, spread(highest));
        }
    }

    #[test]
    fn refuses_what_hdrhistogram_refuses() {
        for (lowest, highest, sigfig) in
            [(0, 10, 3), (10, 19, 3), (1, 100, 6), (1 << 50, u64::MAX, 5)]
        {
            assert!(Layout::new(lowest, highest, sigfig).is_none());
            assert!(
                hdrhistogram::Histogram::<u64>::new_with_bounds(lowest, highest, sigfig).is_err()
            );
        }
    }

    #[test]
    fn equivalents_match_hdrhistogram() {
        let layout = Layout::new(1, 3_600_000_000_000, 3).unwrap();
        let reference = layout.empty_histogram();
        for value in spread(3_600_000_000_000) {
            let index = layout.index_for(value);
            assert_eq!(
                layout.highest_for(index),
                reference.highest_equivalent(value)
            );
            assert_eq!(layout.median_for(index), reference.median_equivalent(value));
            assert_eq!(layout.range_for(index), reference.equivalent_range(value));
        }
    }

    #[test]
    fn default_layout_has_33792_counts() {
        assert_eq!(Layout::new(1, 3_600_000_000_000, 3).unwrap().len(), 33_792);
    }
}
