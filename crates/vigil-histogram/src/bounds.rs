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
        let build = || Arc::new(Splits::new(&raw_bounds(&self.bounds, scale), layout));
        let (cached_key, splits) = self.splits.get_or_init(|| (key, build()));
        let splits = if *cached_key == key {
            Arc::clone(splits)
        } else {
            // A config changed after the first build (another range or
            // precision): compute this one's own table.
            build()
        };
        (!splits.is_empty()).then_some(splits)
    }
}

/// An open-addressed table from the bucket index a bound falls in to the
/// bound: a value in that bucket and above the bound moves one bucket up.
#[derive(Debug)]
pub(crate) struct Splits {
    mask: usize,
    /// `(index + 1, bound)`; index 0 in the first field means empty.
    entries: Box<[(usize, u64)]>,
}

impl Splits {
    fn new(raw: &[u64], layout: &Layout) -> Self {
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
                    mask,
                    entries: entries.into_boxed_slice(),
                };
            }
            size *= 2;
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.iter().all(|(i, _)| *i == 0)
    }

    /// The bucket `raw` counts in: `index`, or the next one when `raw` is
    /// above a bound that falls in bucket `index`.
    #[inline]
    pub(crate) fn adjust(&self, index: usize, raw: u64) -> usize {
        let (tagged, bound) = self.entries[index & self.mask];
        index + usize::from(tagged == index + 1 && raw > bound)
    }
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

    proptest::proptest! {
        #[test]
        fn counts_at_exact_bounds_equal_the_model(
            values in proptest::collection::vec(0u64..20_000_000_000, 1..300),
            bounds in proptest::collection::vec(0.000_001f64..30.0, 1..16),
        ) {
            let histogram = crate::Config::new().exact_bounds(&bounds).build().unwrap();
            for v in &values {
                histogram.record(*v);
            }
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
    fn bounds_on_bucket_edges_or_out_of_range_need_no_table() {
        let layout = Layout::new(1, 1_000, 3).unwrap();
        // Below 2048 every raw value has its own bucket at 3 figures.
        let exact = ExactBounds::new(&[10.0, 500.0, 5_000.0, f64::NAN]);
        assert!(
            exact
                .splits(&layout, (1, 1_000, 3, 1f64.to_bits()))
                .is_none()
        );
    }
}
