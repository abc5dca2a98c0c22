//! Sparse bucket lists: `(counts index, count)` pairs, nonzero counts only,
//! in index order. Every cold path (windows, snapshots, statistics) works
//! on these, so its cost follows the buckets in use, never the configured
//! range.

/// A sparse bucket list.
pub(crate) type Sparse = Vec<(u32, u64)>;

/// `out = live - base`, bucket by bucket, zeros dropped. Both inputs are
/// sorted; `base` never exceeds `live` at any index (counts only grow and
/// `base` was read earlier), but a smaller value is treated as zero rather
/// than trusted.
pub(crate) fn difference(live: &[(u32, u64)], base: &[(u32, u64)], out: &mut Sparse) {
    out.clear();
    let mut base = base.iter().peekable();
    for &(index, count) in live {
        while base.next_if(|(b, _)| *b < index).is_some() {}
        let before = base.next_if(|(b, _)| *b == index).map_or(0, |&(_, c)| c);
        let delta = count.saturating_sub(before);
        if delta != 0 {
            out.push((index, delta));
        }
    }
}

/// Sort `pairs` by index and add up the counts of equal indexes, in place.
/// The inputs are usually a few sorted runs appended one after another
/// (one per shard or interval): the stable sort finds the runs and merges
/// them, `O(n log runs)`.
pub(crate) fn combine(pairs: &mut Sparse) {
    pairs.sort_by_key(|&(index, _)| index);
    let mut write = 0usize;
    for read in 0..pairs.len() {
        let (index, count) = pairs[read];
        if write > 0 && pairs[write - 1].0 == index {
            pairs[write - 1].1 = pairs[write - 1].1.saturating_add(count);
        } else {
            pairs[write] = (index, count);
            write += 1;
        }
    }
    pairs.truncate(write);
    pairs.retain(|&(_, count)| count != 0);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn difference_drops_unchanged_buckets() {
        let mut out = Vec::new();
        difference(
            &[(1, 5), (3, 2), (9, 4)],
            &[(1, 5), (2, 7), (9, 1)],
            &mut out,
        );
        assert_eq!(out, vec![(3, 2), (9, 3)]);
    }

    proptest! {
        #[test]
        fn combine_matches_a_map(pairs in proptest::collection::vec((0u32..50, 0u64..1_000), 0..200)) {
            let mut model = BTreeMap::new();
            for &(i, c) in &pairs {
                *model.entry(i).or_insert(0u64) += c;
            }
            model.retain(|_, c| *c != 0);
            let mut ours = pairs.clone();
            combine(&mut ours);
            prop_assert_eq!(ours, model.into_iter().collect::<Vec<_>>());
        }

        #[test]
        fn difference_matches_a_map(
            base in proptest::collection::btree_map(0u32..60, 1u64..100, 0..40),
            more in proptest::collection::btree_map(0u32..60, 0u64..100, 0..40),
        ) {
            let mut live = base.clone();
            for (i, c) in &more {
                *live.entry(*i).or_insert(0) += c;
            }
            live.retain(|_, c| *c != 0);
            let live: Vec<_> = live.into_iter().collect();
            let base: Vec<_> = base.into_iter().collect();
            let mut out = Vec::new();
            difference(&live, &base, &mut out);
            let expected: Vec<_> = more.into_iter().filter(|(_, c)| *c != 0).collect();
            prop_assert_eq!(out, expected);
        }
    }
}
