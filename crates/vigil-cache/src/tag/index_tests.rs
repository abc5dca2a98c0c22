//! Unit tests of tags, stamps and the tag index.

use std::sync::Arc;

use super::*;
use crate::live::Counted;

/// The (id, key) pairs of an invalidation's single-tag entries, sorted.
fn singles(inv: &Invalidation<u32>) -> Vec<(u64, u32)> {
    let mut taken: Vec<(u64, u32)> = inv
        .singles
        .iter()
        .flat_map(|m| m.iter().map(|(id, key)| (*id, *key)))
        .collect();
    taken.sort();
    taken
}

/// The (id, key) pairs of an invalidation's multi-tag entries, sorted
/// (an entry in several ended generations appears once per generation).
fn multi(inv: &Invalidation<u32>) -> Vec<(u64, u32)> {
    let mut taken: Vec<(u64, u32)> = inv
        .multi
        .iter()
        .flat_map(|m| m.iter().map(|(id, member)| (*id, member.key)))
        .collect();
    taken.sort();
    taken
}

#[test]
fn tag_conversions_agree() {
    let owned = String::from("a");
    let tags = [
        Tag::from("a"),
        Tag::from(owned.clone()),
        Tag::from(&owned),
        Tag::from(Arc::<str>::from("a")),
    ];
    assert!(tags.iter().all(|t| t == &tags[0]));
    assert_eq!(format!("{:?}", tags[0]), "Tag(\"a\")");
    let json = serde_json::to_string(&tags[0]).unwrap();
    assert_eq!(json, "\"a\"");
    assert_eq!(serde_json::from_str::<Tag>(&json).unwrap(), tags[0]);
}

#[test]
fn slots_map_onto_doubling_chunks() {
    assert_eq!(locate(0), (0, 0));
    assert_eq!(locate(31), (0, 31));
    assert_eq!(locate(32), (1, 0));
    assert_eq!(locate(95), (1, 63));
    assert_eq!(locate(96), (2, 0));
    let last = FIRST_CHUNK * ((1 << CHUNKS) - 1) - 1;
    assert_eq!(
        locate(last as u32),
        (CHUNKS - 1, (FIRST_CHUNK << (CHUNKS - 1)) - 1)
    );
}

#[test]
fn duplicate_tags_make_a_single_tag_entry() {
    let index = TagIndex::<u32>::new();
    let joined = index.stamp(&[Tag::from("a"), Tag::from("a")], 7, &1, true, None);
    assert!(
        matches!(joined.counted, Counted::Single(_)),
        "one distinct tag"
    );
    let Stamps::One(a) = joined.stamps else {
        panic!("one distinct tag: {:?}", joined.stamps);
    };
    assert!(index.is_current(&a));
    assert_eq!(index.live("a"), 1);
    let inv = index.invalidate(["a"], || false).unwrap();
    assert_eq!((inv.live, singles(&inv)), (1, vec![(7, 1)]));
    assert!(!index.is_current(&a));
    index.sweep();
    assert_eq!(index.len(), 0, "`a` has no entries left and is freed");
}

#[test]
fn an_entry_with_several_tags_shares_one_flag() {
    let index = TagIndex::<u32>::new();
    let joined = index.stamp(
        &[Tag::from("a"), Tag::from("a"), Tag::from("b")],
        7,
        &1,
        true,
        None,
    );
    let [a, b] = *joined.stamps.as_slice() else {
        panic!("two distinct tags: {:?}", joined.stamps);
    };
    let Counted::Multi(taken) = joined.counted else {
        panic!("several distinct tags");
    };
    assert!(!taken.load(Ordering::Acquire));
    assert_eq!(
        (index.live("a"), index.live("b")),
        (0, 0),
        "not counted per tag"
    );
    let inv = index.invalidate(["a"], || false).unwrap();
    assert_eq!((inv.live, multi(&inv)), (0, vec![(7, 1)]));
    assert!(inv.multi[0][&7].take(), "the first to take it");
    assert!(!index.is_current(&a) && index.is_current(&b));
    index.sweep();
    assert_eq!(index.len(), 1, "`b` still holds the entry");
    let flag = index.remove_multi(&joined.stamps, 7).expect("`b` held it");
    assert!(Arc::ptr_eq(&flag, &taken) && flag.load(Ordering::Acquire));
    index.sweep();
    assert_eq!(index.len(), 0);
}

#[test]
fn removals_and_expiries_of_an_ended_generation_leave_the_new_one_alone() {
    let index = TagIndex::<u32>::new();
    let old = index.stamp(&[Tag::from("t")], 1, &1, true, None).stamps;
    let expiring = index.stamp(&[Tag::from("t")], 2, &2, true, None).stamps;
    let inv = index.invalidate(["t"], || false).unwrap();
    assert_eq!(inv.live, 2);
    index.sweep();
    let new = index.stamp(&[Tag::from("t")], 3, &3, true, None).stamps;
    let (Stamps::One(old), Stamps::One(expiring), Stamps::One(new)) = (old, expiring, new) else {
        panic!("one tag each");
    };
    assert!(!index.remove_single(&old, 1, true), "old generation");
    assert!(!index.expire_single(&expiring), "old generation");
    assert_eq!(index.live("t"), 1);
    assert!(index.expire_single(&new));
    assert_eq!(index.live("t"), 0);
    assert!(
        !index.remove_single(&new, 3, false),
        "already uncounted by its expiry"
    );
    index.sweep();
    assert_eq!(index.len(), 0, "the removal left the generation empty");
}

#[test]
fn freed_slots_are_reused_without_reviving_old_stamps() {
    let index = TagIndex::<u32>::new();
    let old = index.stamp(&[Tag::from("old")], 1, &1, true, None).stamps;
    assert!(index.invalidate(["old"], || false).is_some());
    index.sweep();
    assert_eq!(index.len(), 0);
    let new = index.stamp(&[Tag::from("new")], 2, &2, true, None).stamps;
    let (Stamps::One(old), Stamps::One(new)) = (old, new) else {
        panic!("one tag each");
    };
    assert_eq!(old.slot, new.slot, "the slot is reused");
    assert!(index.is_current(&new));
    assert!(!index.is_current(&old), "versions never go back");
    assert!(!index.remove_single(&old, 1, true));
    assert_eq!(index.live("new"), 1);
}

#[test]
fn invalidating_an_unknown_tag_takes_nothing() {
    let index = TagIndex::<u32>::new();
    assert!(index.invalidate(["nope"], || false).is_none());
}

#[test]
fn invalidating_several_tags_takes_each_generation_once() {
    let index = TagIndex::<u32>::new();
    index.stamp(&[Tag::from("a"), Tag::from("b")], 1, &10, true, None);
    index.stamp(&[Tag::from("b")], 2, &20, true, None);
    index.stamp(&[Tag::from("b")], 3, &30, false, None);
    let inv = index.invalidate(["a", "b", "a"], || false).unwrap();
    assert_eq!(inv.bumped.len(), 2);
    assert_eq!(inv.live, 1, "entry 3 was not live");
    assert_eq!(singles(&inv), vec![(2, 20), (3, 30)]);
    assert_eq!(multi(&inv), vec![(1, 10), (1, 10)], "once per generation");
    index.sweep();
    assert_eq!(index.len(), 0);
}

#[test]
fn invalidate_every_ends_all_generations() {
    let index = TagIndex::<u32>::new();
    for (id, tag) in [(1, "a"), (2, "b"), (3, "b")] {
        index.stamp(&[Tag::from(tag)], id, &(id as u32), true, None);
    }
    let inv = index.invalidate_every();
    assert_eq!((inv.bumped.len(), inv.live), (2, 3));
    index.sweep();
    assert_eq!(index.len(), 0);
}

#[test]
fn an_entry_of_a_load_begun_before_an_invalidation_of_its_tag_is_stale() {
    let index = TagIndex::<u32>::new();
    let stale = |tag: &str, id: u64, since: u64| {
        index
            .stamp(&[Tag::from(tag)], id, &0, true, Some(since))
            .stale
    };
    // A tag in use.
    let before = index.sequence();
    index.stamp(&[Tag::from("a")], 1, &1, true, None);
    assert!(index.invalidate(["a"], || false).is_some());
    assert!(stale("a", 2, before));
    assert!(!stale("a", 3, index.sequence()), "a load begun after it");
    assert!(!stale("b", 4, before), "another tag");

    // A tag no entry carries, invalidated while a load is in flight.
    let before = index.sequence();
    assert!(index.invalidate(["c"], || true).is_some());
    assert!(stale("c", 5, before));

    // A tag invalidated, its slot freed, then given a slot again.
    index.stamp(&[Tag::from("d")], 6, &6, true, None);
    let before = index.sequence();
    index.invalidate(["d"], || false);
    index.sweep();
    assert!(stale("d", 7, before));
    assert!(!stale("d", 8, index.sequence()));
}

#[test]
fn many_tags_spill_to_the_heap_and_still_check() {
    let index = TagIndex::<u32>::new();
    let tags: Vec<Tag> = (0..100).map(|i| Tag::from(format!("t{i}"))).collect();
    let stamps = index.stamp(&tags, 1, &1, true, None).stamps;
    assert!(matches!(stamps, Stamps::Many(_)));
    assert_eq!(stamps.as_slice().len(), 100);
    assert!(stamps.as_slice().iter().all(|s| index.is_current(s)));
    assert!(index.invalidate(["t99"], || false).is_some());
    index.sweep();
    assert!(!stamps.as_slice().iter().all(|s| index.is_current(s)));
}

/// An expiry record taken by `Expiries::due` but applied only after the
/// entry's removal and a sweep must not land in a reused slot.
#[test]
fn review_in_flight_expiry_after_slot_reuse() {
    let index = TagIndex::<u32>::new();
    let Stamps::One(old) = index.stamp(&[Tag::from("old")], 1, &1, true, None).stamps else {
        panic!()
    };
    // `due` takes entry 1's record (so its removal has owns = false)...
    // ...moka removes entry 1 (replacement, eviction):
    assert!(!index.remove_single(&old, 1, false));
    index.sweep();
    let Stamps::One(new) = index.stamp(&[Tag::from("new")], 2, &2, true, None).stamps else {
        panic!()
    };
    assert_eq!(
        index.live("new"),
        1,
        "only entry 2 carries `new` (same slot: {})",
        old.slot == new.slot
    );
    // ...and only now does `due` apply entry 1's record.
    assert!(index.expire_single(&old));
    assert_eq!(index.live("new"), 1);
    index.sweep();
    assert_eq!(index.len(), 1, "`old` is freed now");
}
