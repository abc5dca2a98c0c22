//! Exact bucket bounds: [`Config::exact_bounds`](crate::Config::exact_bounds).
//!
//! An HDR bucket covers a range of raw values; a Prometheus `le` bound
//! usually falls inside one (250 ms lies in the 3-figure bucket
//! 249.954..=250.085 ms), so counting "values <= bound" from whole buckets
//! would count the values just above the bound too. With exact bounds, a
//! value above a bound that would share the bound's bucket is counted in
//! the next bucket instead: one bucket width up, inside the histogram's
//! precision for quantiles, while every count at or below a bound is
//! exact. Sums stay exact (they add the raw value).
//!
//! Hot-path cost: one load from a small table (at most a few hundred
//! bytes, shared by every histogram of the config) and one compare, only
//! for configs that have exact bounds.

use std::sync::{Arc, OnceLock};

use crate::layout::Layout;

/// The bounds a config keeps exact, and the split table computed for the
/// layout they were first built with (shared by every histogram built from
/// clones of that config).
#[derive(Debug)]
pub(crate) struct ExactBounds {
    /// The bounds in units.
    bounds: Box<[f64]>,
    splits: OnceLock<(LayoutKey, Arc<Splits>)>,
}

/// What the split table depends on: lowest, highest, figures, scale bits.
pub(crate) type LayoutKey = (u64, u64, u8, u64);

/// `bounds` in units as sorted, distinct raw values.
fn raw_bounds(bounds: &[f64], scale: f64) -> Vec<u64> {
    let mut raw: Vec<u64> = bounds
        .iter()
        .filter(|b| b.is_finite() && **b >= 0.0)
        .map(|b| {
            // Snap float noise (`0.245 * 1e9` is 244999999.99999997) to
            // the integer meant, as `Snapshot::count_le` does.
            let r = b * scale;
            let nearest = r.round();
            let r = if (r - nearest).abs() <= r * 1e-12 {
                nearest
            } else {
                r.floor()
            };
            r as u64
        })
        .collect();
    raw.sort_unstable();
    raw.dedup();
    raw
}

impl ExactBounds {
    pub(crate) fn new(bounds: &[f64]) -> Self {
        ExactBounds {
            bounds: bounds.into(),
            splits: OnceLock::new(),
        }
    }

    /// The bounds in units, as given.
    pub(crate) fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The split table for `layout`, computed once per config.
    pub(crate) fn splits(&self, layout: &Layout, key: LayoutKey) -> Option<Arc<Splits>> {
        let scale = f64::from_bits(key.3);
        let build = || Arc::new(Splits::new(&raw_bounds(&self.bounds, scale), scale, layout));
        let (cached_key, splits) = self.splits.get_or_init(|| (key, build()));
        let splits = if *cached_key == key {
            Arc::clone(splits)
        } else {
            // A config changed after the first build (another range or
            // precision): compute this one's own table.
            build()
        };
        (!splits.raw.is_empty()).then_some(splits)
    }
}

/// The exact bounds of a histogram: their raw values (sorted, distinct),
/// for the bound counters, and an open-addressed table from the bucket
/// index a bound falls in to the bound: a value in that bucket and above
/// the bound moves one bucket up.
#[derive(Debug)]
pub(crate) struct Splits {
    /// The bounds in raw units, ascending.
    raw: Box<[u64]>,
    /// The same bounds in units (`raw / scale`).
    units: Box<[f64]>,
    /// Per group of indexes (`index >> shift`): the bound slot of its
    /// first index and the cut indexes inside it, so a record finds its
    /// bound slot with one load and three compares, no search.
    cuts: Box<[GroupCuts]>,
    shift: u32,
    mask: usize,
    /// `(index + 1, bound)`; index 0 in the first field means empty.
    entries: Box<[(usize, u64)]>,
}

impl Splits {
    fn new(raw: &[u64], scale: f64, layout: &Layout) -> Self {
        // Bounds whose bucket holds no value above them need no split;
        // two bounds in one bucket keep the lower exact.
        let mut wanted: Vec<(usize, u64)> = Vec::new();
        for &bound in raw {
            if bound >= layout.highest {
                continue;
            }
            let index = layout.index_for(bound);
            if index + 1 >= layout.len() {
                continue;
            }
            let top = layout.value_for(index) + layout.range_for(index) - 1;
            if top > bound && !wanted.iter().any(|(i, _)| *i == index) {
                wanted.push((index, bound));
            }
        }
        let mut size = (wanted.len() * 2).next_power_of_two().max(1);
        loop {
            let mask = size - 1;
            let mut entries = vec![(0usize, 0u64); size];
            let placed = wanted.iter().all(|&(index, bound)| {
                let slot = &mut entries[index & mask];
                if slot.0 != 0 {
                    return false;
                }
                *slot = (index + 1, bound);
                true
            });
            if placed {
                return Splits {
                    raw: raw.into(),
                    units: raw.iter().map(|r| *r as f64 / scale).collect(),
                    cuts: group_cuts(raw, layout),
                    shift: layout.group_shift(),
                    mask,
                    entries: entries.into_boxed_slice(),
                };
            }
            size *= 2;
        }
    }

    /// The bounds in units, ascending.
    pub(crate) fn units(&self) -> &[f64] {
        &self.units
    }

    /// Bound counters: one per bound and one for values above them all.
    pub(crate) fn counters(&self) -> usize {
        self.raw.len() + 1
    }

    /// The bound counter of `raw` (at the layout's `index`): the first
    /// bound at or above it (the last counter when it is above every
    /// bound).
    #[inline]
    pub(crate) fn slot(&self, index: usize, raw: u64) -> usize {
        self.slot_at(index, raw)
    }

    /// Where a value counts: its bucket index (one up when it shares a
    /// bound's bucket and is above the bound) and its bound counter, for
    /// the layout's `index` of `raw`. Hot path: one load of the group's
    /// cuts (one cache line) and branch-free compares, for groups with at
    /// most three bounds; the table and a search otherwise.
    #[inline]
    pub(crate) fn place(&self, index: usize, raw: u64) -> (usize, usize) {
        let index = self.adjust(index, raw);
        (index, self.slot_at(index, raw))
    }

    /// The bound counter of a value counted at (adjusted) `index`: for
    /// groups with at most three bounds, one load of the group's cuts and
    /// three branch-free compares; a search of the bounds otherwise.
    #[inline]
    fn slot_at(&self, index: usize, raw: u64) -> usize {
        match self.cuts.get(index >> self.shift) {
            Some(group) if !group.crowded => {
                // A value above the bound of cut `c` counts at an index
                // above `c` (one up, if it shared the bound's bucket).
                let i = index as u64;
                group.base as usize
                    + usize::from(group.cuts[0] < i)
                    + usize::from(group.cuts[1] < i)
                    + usize::from(group.cuts[2] < i)
            }
            _ => self.raw.partition_point(|bound| *bound < raw),
        }
    }

    /// The bucket `raw` counts in: `index`, or the next one when `raw` is
    /// above a bound that falls in bucket `index`.
    #[inline]
    pub(crate) fn adjust(&self, index: usize, raw: u64) -> usize {
        let (tagged, bound) = self.entries[index & self.mask];
        index + usize::from(tagged == index + 1 && raw > bound)
    }

    /// The bound that splits bucket `index`, when `raw` (in that bucket)
    /// is above it.
    pub(crate) fn bound_below(&self, index: usize, raw: u64) -> Option<u64> {
        let (tagged, bound) = self.entries[index & self.mask];
        (tagged == index + 1 && raw > bound).then_some(bound)
    }
}

/// The cuts of one group of indexes (see [`Splits::place`]).
#[derive(Clone, Copy, Debug)]
struct GroupCuts {
    /// Bounds whose cut lies below the group.
    base: u32,
    /// More than three cuts in the group: search the bounds instead.
    crowded: bool,
    /// Cut indexes in the group, ascending; `u64::MAX` where there are
    /// fewer than three.
    cuts: [u64; 3],
}

/// The cut of each bound (the index of the bucket holding it, which holds
/// no value above it once split) grouped by `index >> group_shift`.
fn group_cuts(raw: &[u64], layout: &Layout) -> Box<[GroupCuts]> {
    let shift = layout.group_shift();
    let groups = layout.len().div_ceil(1 << shift);
    // Bounds at or above the highest value have no cut: nothing exceeds
    // them.
    let cuts: Vec<u64> = raw
        .iter()
        .filter(|bound| **bound < layout.highest)
        .map(|bound| layout.index_for(*bound) as u64)
        .collect();
    (0..groups)
        .map(|g| {
            let first = (g as u64) << shift;
            let next = first + (1 << shift);
            let inside: Vec<u64> = cuts
                .iter()
                .copied()
                .filter(|cut| (first..next).contains(cut))
                .collect();
            let mut group = GroupCuts {
                base: cuts.iter().filter(|cut| **cut < first).count() as u32,
                crowded: inside.len() > 3,
                cuts: [u64::MAX; 3],
            };
            for (slot, cut) in group.cuts.iter_mut().zip(&inside) {
                *slot = *cut;
            }
            group
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_above_a_bound_leave_its_bucket_and_values_at_or_below_stay() {
        let layout = Layout::new(1, 3_600_000_000_000, 3).unwrap();
        let exact = ExactBounds::new(&[0.25, 0.005, 1.0, 0.25]);
        let key = (1, 3_600_000_000_000, 3, 1e9f64.to_bits());
        let splits = exact.splits(&layout, key).unwrap();
        for bound in [5_000_000u64, 250_000_000, 1_000_000_000] {
            let index = layout.index_for(bound);
            let top = layout.value_for(index) + layout.range_for(index) - 1;
            let low = layout.value_for(index);
            for raw in [low, bound - 1, bound] {
                assert_eq!(splits.adjust(layout.index_for(raw), raw), index);
            }
            if top > bound {
                for raw in [bound + 1, top] {
                    assert_eq!(splits.adjust(layout.index_for(raw), raw), index + 1);
                }
            }
            // The next bucket's own values are untouched.
            assert_eq!(splits.adjust(index + 1, top + 1), index + 1);
        }
    }

    /// Up to 300 values (nanoseconds, up to 20 s) and up to 15 exact
    /// bounds (seconds, up to 30 s).
    fn values_and_bounds() -> impl proptest::strategy::Strategy<Value = (Vec<u64>, Vec<f64>)> {
        (
            proptest::collection::vec(0u64..20_000_000_000, 1..300),
            proptest::collection::vec(0.000_001f64..30.0, 1..16),
        )
    }

    /// A histogram with exact `bounds` (in seconds) holding `values` (in
    /// nanoseconds).
    fn recorded(bounds: &[f64], values: &[u64]) -> crate::Histogram {
        let histogram = crate::Config::new().exact_bounds(bounds).build().unwrap();
        for v in values {
            histogram.record(*v);
        }
        histogram
    }

    proptest::proptest! {
        #[test]
        fn counts_at_exact_bounds_equal_the_model(
            (values, bounds) in values_and_bounds(),
        ) {
            let histogram = recorded(&bounds, &values);
            let snapshot = histogram.snapshot(crate::Window::Cumulative);
            let raw = raw_bounds(&bounds, 1e9);
            let layout = Layout::new(1, 3_600_000_000_000, 3).unwrap();
            for (i, bound) in raw.iter().enumerate() {
                // Only the lowest bound of an HDR bucket can be exact.
                if i > 0 && layout.index_for(raw[i - 1]) == layout.index_for(*bound) {
                    continue;
                }
                let want = values.iter().filter(|v| **v <= *bound).count() as u64;
                proptest::prop_assert_eq!(snapshot.count_le(*bound as f64 / 1e9), want);
            }
            proptest::prop_assert_eq!(snapshot.count(), values.len() as u64);
            let sum: u64 = values.iter().sum();
            proptest::prop_assert!((snapshot.sum() - sum as f64 / 1e9).abs() <= 1e-9 * sum as f64);
        }
    }

    #[test]
    fn corrected_values_straddling_a_bound_count_on_their_side() {
        // Expected every 1 ms; a 250.05 ms value also records 249.05 ms,
        // 248.05 ms, ... down to 1.05 ms: only 250.05 ms is above 0.25 s.
        let histogram = crate::Config::new()
            .exact_bounds(&[0.25])
            .expected_interval(1_000_000)
            .build()
            .unwrap();
        histogram.record(250_050_000);
        // And one whose corrected values start inside the split bucket:
        // 250.08 ms, then 249.08 ms.
        histogram.record(250_080_000);
        let snapshot = histogram.snapshot(crate::Window::Cumulative);
        assert_eq!(snapshot.count(), 500);
        assert_eq!(snapshot.count_le(0.25), 498);
        let mut counts = Vec::new();
        let (count, _) = histogram.bound_counts(&mut counts);
        assert_eq!((count, counts), (500, vec![498]));
    }

    proptest::proptest! {
        #[test]
        fn bound_counters_equal_the_model(
            (values, bounds) in values_and_bounds(),
        ) {
            let histogram = recorded(&bounds, &values);
            let mut counts = Vec::new();
            let (count, _) = histogram.bound_counts(&mut counts);
            let raw = raw_bounds(&bounds, 1e9);
            proptest::prop_assert_eq!(count, values.len() as u64);
            proptest::prop_assert_eq!(histogram.exact_bounds().len(), raw.len());
            let layout = Layout::new(1, 3_600_000_000_000, 3).unwrap();
            for (i, (bound, got)) in raw.iter().zip(&counts).enumerate() {
                // Only the lowest bound of an HDR bucket can be exact.
                if i > 0 && layout.index_for(raw[i - 1]) == layout.index_for(*bound) {
                    continue;
                }
                let want = values.iter().filter(|v| **v <= *bound).count() as u64;
                proptest::prop_assert_eq!(*got, want);
            }
        }
    }

    #[test]
    fn bounds_on_bucket_edges_or_out_of_range_need_no_split() {
        let layout = Layout::new(1, 1_000, 3).unwrap();
        let key = (1, 1_000, 3, 1f64.to_bits());
        // Below 2048 every raw value has its own bucket at 3 figures.
        let exact = ExactBounds::new(&[10.0, 500.0, 5_000.0, f64::NAN]);
        let splits = exact.splits(&layout, key).unwrap();
        assert!(splits.entries.iter().all(|(tagged, _)| *tagged == 0));
        assert_eq!(splits.units(), [10.0, 500.0, 5_000.0]);
        assert_eq!(splits.counters(), 4);
        assert_eq!(
            [0, 10, 11, 500, 501, 999].map(|raw| splits.slot(layout.index_for(raw), raw)),
            [0, 0, 1, 1, 2, 2]
        );
        assert!(ExactBounds::new(&[f64::NAN]).splits(&layout, key).is_none());
    }
}
