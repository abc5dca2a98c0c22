//! Tags and the tag index: per-tag version numbers for O(1) logical
//! invalidation, and per-tag membership sets for O(entries with that tag)
//! bookkeeping.
//!
//! Every tag in use owns a slot in a table that only grows (chunks are
//! allocated once and never move, so a slot is reached without a lock).
//! Each entry stores, inline, one [`Stamp`] per tag: the slot index and the
//! slot's version at insert. `invalidate_tag` bumps the version, so every
//! older entry with the tag fails the one-atomic-load check on its next read
//! (the scheme of Symfony's `TagAwareAdapter`); reads never evaluate
//! predicates and touch no reference count. The slot's membership set
//! (entry id -> [`Member`]: key and what decides liveness without moka)
//! lets the invalidation count the live entries it hides and queue exactly
//! those entries for physical removal, instead of scanning the cache.
//!
//! An entry leaves the membership sets when moka drops it (the eviction
//! listener calls [`TagIndex::forget`]) or when an invalidation takes it, so
//! a member that is still in a set was neither replaced, removed nor
//! evicted.
//!
//! A slot whose membership is empty is returned to a free list and reused
//! by the next new tag. Versions only grow, across reuse too, so an entry
//! stamped for the slot's previous tag (necessarily invalidated, or it would
//! still be a member) never matches again.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::padded::CachePadded;

/// A label attached to cache entries so that a whole group can be dropped at
/// once with `invalidate_tag` (for example `"user:42"` or `"market"`).
///
/// Cloning is cheap (a reference count bump).
///
/// ```
/// use vigil_cache::Tag;
///
/// let tag = Tag::from("user:42");
/// assert_eq!(tag.as_str(), "user:42");
/// assert_eq!(tag.to_string(), "user:42");
/// assert_eq!(tag, Tag::from(String::from("user:42")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Arc<str>);

impl Tag {
    /// The tag's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tag").field(&&*self.0).finish()
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Tag {
    fn from(tag: &str) -> Self {
        Self(Arc::from(tag))
    }
}

impl From<String> for Tag {
    fn from(tag: String) -> Self {
        Self(Arc::from(tag))
    }
}

impl From<&String> for Tag {
    fn from(tag: &String) -> Self {
        Self(Arc::from(tag.as_str()))
    }
}

impl From<Arc<str>> for Tag {
    fn from(tag: Arc<str>) -> Self {
        Self(tag)
    }
}

impl From<&Tag> for Tag {
    fn from(tag: &Tag) -> Self {
        tag.clone()
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Tag {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Tag::from)
    }
}

/// One tag of one entry: the tag's slot and its version when the entry was
/// inserted. `Copy`: reading an entry's stamps writes nothing shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    slot: u32,
    version: u64,
}

/// An entry's stamps, inline for up to two tags (no allocation, nothing
/// to dereference on a read).
#[derive(Clone, Debug, Default)]
pub(crate) enum Stamps {
    #[default]
    None,
    One(Stamp),
    Two([Stamp; 2]),
    Many(Arc<[Stamp]>),
}

impl Stamps {
    pub(crate) fn as_slice(&self) -> &[Stamp] {
        match self {
            Self::None => &[],
            Self::One(stamp) => std::slice::from_ref(stamp),
            Self::Two(stamps) => stamps,
            Self::Many(stamps) => stamps,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Self::None)
    }

    fn from_vec(stamps: Vec<Stamp>) -> Self {
        match *stamps.as_slice() {
            [] => Self::None,
            [one] => Self::One(one),
            [a, b] => Self::Two([a, b]),
            _ => Self::Many(stamps.into()),
        }
    }
}

/// What a tag invalidation needs to know about an entry without asking moka:
/// whether it was alive just before (not dropped by `invalidate_all`, not
/// expired on the cache's clock, not already invalidated by another tag)
/// and which key to remove physically later.
pub(crate) struct Member<K> {
    pub(crate) key: K,
    /// The cache's `invalidate_all` epoch at insert.
    pub(crate) epoch: u64,
    /// Logical expiry by the cache's clock, as in the stored entry.
    pub(crate) expires_at: Option<quanta::Instant>,
    /// Only for entries with several tags, shared by their memberships: set
    /// (by a `swap`) by the first invalidation that takes the entry, so one
    /// that is taken again through another tag is neither counted nor
    /// queued twice. An entry with one tag is a member of one set only, and
    /// taking it from that set is enough.
    pub(crate) taken: Option<Arc<AtomicBool>>,
}

impl<K> Member<K> {
    /// Marks the entry as taken by an invalidation; false if an earlier one
    /// (through another of its tags) already had.
    #[inline]
    pub(crate) fn take(&self) -> bool {
        self.taken
            .as_ref()
            .is_none_or(|taken| !taken.swap(true, Ordering::AcqRel))
    }
}

/// One tag's members, by entry id.
pub(crate) type Members<K> = HashMap<u64, Member<K>>;

/// The liveness data of one new entry, copied into each of its memberships.
#[derive(Clone, Copy)]
pub(crate) struct Life {
    pub(crate) epoch: u64,
    pub(crate) expires_at: Option<quanta::Instant>,
}

/// Slots per chunk: chunk `c` holds `FIRST_CHUNK << c` slots.
const FIRST_CHUNK: usize = 32;
/// Enough chunks for 2^31 tags in use at once.
const CHUNKS: usize = 26;

/// One chunk of slots. Versions are kept apart from the membership locks:
/// inserts write the locks all the time, reads only load versions, which
/// change once per invalidation.
struct Chunk<K> {
    versions: Box<[AtomicU64]>,
    members: Box<[Mutex<Members<K>>]>,
}

/// Where slot `slot` lives: (chunk, offset in the chunk).
#[inline]
fn locate(slot: u32) -> (usize, usize) {
    let n = slot as usize / FIRST_CHUNK + 1;
    let chunk = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (chunk, slot as usize - FIRST_CHUNK * ((1 << chunk) - 1))
}

/// Tag name <-> slot, for the tags currently in use. Cold path only.
struct Registry {
    slots: HashMap<Tag, u32>,
    /// Slot -> its tag, to unregister a freed slot.
    names: Vec<Option<Tag>>,
    free: Vec<u32>,
    /// Size at which the next amortized sweep runs.
    sweep_at: usize,
}

const MIN_SWEEP_AT: usize = 64;

/// The tag index of one cache.
pub(crate) struct TagIndex<K> {
    chunks: [OnceLock<Chunk<K>>; CHUNKS],
    registry: CachePadded<RwLock<Registry>>,
}

/// What one `invalidate_tags` call took out of the index.
pub(crate) struct Invalidation<K> {
    /// Each invalidated slot with its version just before the bump.
    bumped: Vec<(u32, u64)>,
    /// The members taken from those tags, deduplicated by entry id.
    pub(crate) members: Members<K>,
}

impl<K> TagIndex<K> {
    pub(crate) fn new() -> Self {
        Self {
            chunks: std::array::from_fn(|_| OnceLock::new()),
            registry: CachePadded(RwLock::new(Registry {
                slots: HashMap::new(),
                names: Vec::new(),
                free: Vec::new(),
                sweep_at: MIN_SWEEP_AT,
            })),
        }
    }

    fn chunk(&self, chunk: usize) -> &Chunk<K> {
        self.chunks[chunk].get_or_init(|| {
            let len = FIRST_CHUNK << chunk;
            Chunk {
                versions: (0..len).map(|_| AtomicU64::new(0)).collect(),
                members: (0..len).map(|_| Mutex::new(HashMap::new())).collect(),
            }
        })
    }

    fn members(&self, slot: u32) -> MutexGuard<'_, Members<K>> {
        let (chunk, offset) = locate(slot);
        // The critical sections only move plain data; a poisoned lock holds
        // a consistent map.
        self.chunk(chunk).members[offset]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn version_cell(&self, slot: u32) -> &AtomicU64 {
        let (chunk, offset) = locate(slot);
        let chunk = self.chunks[chunk]
            .get()
            .expect("a slot is allocated before any entry is stamped with it");
        &chunk.versions[offset]
    }

    /// Hot path: whether `stamp` is still valid. An atomic load to reach the
    /// chunk and one for the version; no lock, no hashing, no write.
    #[inline]
    pub(crate) fn is_current(&self, stamp: &Stamp) -> bool {
        self.version_cell(stamp.slot).load(Ordering::Acquire) == stamp.version
    }

    /// Removes entry `id` from the membership of each of its tags (the entry
    /// has left the cache).
    pub(crate) fn forget(&self, stamps: &Stamps, id: u64) {
        for stamp in stamps.as_slice() {
            self.members(stamp.slot).remove(&id);
        }
    }

    /// Bumps the version of each existing tag among `tags` and takes their
    /// members. `None` when none of the tags exists (no entry carries them).
    pub(crate) fn invalidate<'t>(
        &self,
        tags: impl IntoIterator<Item = &'t str>,
    ) -> Option<Invalidation<K>> {
        // Under the read lock, so that no slot is freed and reused between
        // finding it and bumping it.
        let registry = self.read();
        let mut bumped: Vec<(u32, u64)> = Vec::new();
        let mut taken: Members<K> = HashMap::new();
        for tag in tags {
            let Some(&slot) = registry.slots.get(tag) else {
                continue;
            };
            if bumped.iter().any(|(s, _)| *s == slot) {
                continue;
            }
            let (before, members) = {
                let mut members = self.members(slot);
                let before = self.version_cell(slot).fetch_add(1, Ordering::AcqRel);
                (before, std::mem::take(&mut *members))
            };
            if taken.is_empty() {
                taken = members;
            } else {
                taken.extend(members);
            }
            bumped.push((slot, before));
        }
        drop(registry);
        (!bumped.is_empty()).then_some(Invalidation {
            bumped,
            members: taken,
        })
    }

    /// Ends an invalidation: frees the slots of its tags that no entry
    /// carries any more (O(number of tags invalidated)).
    pub(crate) fn release(&self, invalidation: Invalidation<K>) {
        let mut registry = self.write();
        for (slot, _) in invalidation.bumped {
            self.free_if_unused(&mut registry, slot);
        }
    }

    /// Frees every slot no entry carries (O(number of tags)).
    pub(crate) fn sweep(&self) {
        self.sweep_locked(&mut self.write());
    }

    fn sweep_locked(&self, registry: &mut Registry) {
        let slots: Vec<u32> = registry.slots.values().copied().collect();
        for slot in slots {
            self.free_if_unused(registry, slot);
        }
    }

    /// With the registry write-locked, no insert is between finding a slot
    /// and joining its members, so empty members mean no live entry is
    /// stamped with the slot's current version.
    fn free_if_unused(&self, registry: &mut Registry, slot: u32) {
        if !self.members(slot).is_empty() {
            return;
        }
        if let Some(tag) = registry.names.get_mut(slot as usize).and_then(Option::take) {
            registry.slots.remove(&tag);
            registry.free.push(slot);
        }
    }

    /// Number of tags in use (including unused ones not yet swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.read().slots.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: Clone> TagIndex<K> {
    /// Registers entry `id` (under `key`, with `life`) with each of `tags`
    /// and returns its stamps. Duplicate tags are stamped once.
    pub(crate) fn stamp(&self, tags: &[Tag], id: u64, key: &K, life: Life) -> Stamps {
        let distinct = |i: usize| !tags[..i].contains(&tags[i]);
        // Several distinct tags: the memberships share one `taken` flag.
        let taken = (1..tags.len())
            .any(distinct)
            .then(|| Arc::new(AtomicBool::new(false)));
        let mut stamps: Vec<Stamp> = Vec::with_capacity(tags.len());
        for (i, tag) in tags.iter().enumerate() {
            if !distinct(i) {
                continue;
            }
            let member = Member {
                key: key.clone(),
                epoch: life.epoch,
                expires_at: life.expires_at,
                taken: taken.clone(),
            };
            // The lock (read for a known tag, write for a new one) is held
            // while joining the members: a slot is only freed under the
            // write lock with no members.
            let registry = self.read();
            let known = registry.slots.get(tag.as_str()).copied();
            let stamp = match known {
                Some(slot) => self.join(slot, id, member),
                None => {
                    drop(registry);
                    let mut registry = self.write();
                    let slot = self.slot_for(&mut registry, tag);
                    self.join(slot, id, member)
                }
            };
            stamps.push(stamp);
        }
        Stamps::from_vec(stamps)
    }

    fn join(&self, slot: u32, id: u64, member: Member<K>) -> Stamp {
        let mut members = self.members(slot);
        members.insert(id, member);
        // Read under the members lock, which `invalidate` holds while
        // bumping: every member it takes carries an older version.
        let version = self.version_cell(slot).load(Ordering::Acquire);
        Stamp { slot, version }
    }

    /// The slot of `tag`, allocating one if the tag is new.
    fn slot_for(&self, registry: &mut Registry, tag: &Tag) -> u32 {
        if let Some(&slot) = registry.slots.get(tag.as_str()) {
            return slot;
        }
        if registry.slots.len() >= registry.sweep_at {
            // Amortized O(1) per new tag: a sweep runs each time the number
            // of tags in use has doubled since the last one.
            self.sweep_locked(registry);
            registry.sweep_at = (registry.slots.len() * 2).max(MIN_SWEEP_AT);
        }
        let slot = registry.free.pop().unwrap_or_else(|| {
            u32::try_from(registry.names.len()).expect("fewer than 2^31 tags in use at once")
        });
        let (chunk, _) = locate(slot);
        assert!(chunk < CHUNKS, "fewer than 2^31 tags in use at once");
        self.chunk(chunk);
        if slot as usize == registry.names.len() {
            registry.names.push(None);
        }
        registry.names[slot as usize] = Some(tag.clone());
        registry.slots.insert(tag.clone(), slot);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: Life = Life {
        epoch: 0,
        expires_at: None,
    };

    /// The (id, key) pairs of an invalidation, sorted.
    fn taken(inv: &Invalidation<u32>) -> Vec<(u64, u32)> {
        let mut taken: Vec<(u64, u32)> = inv.members.iter().map(|(id, m)| (*id, m.key)).collect();
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
    fn stamping_registers_members_once_per_tag() {
        let index = TagIndex::<u32>::new();
        let tags = [Tag::from("a"), Tag::from("a"), Tag::from("b")];
        let stamps = index.stamp(&tags, 7, &1, LIFE);
        let [a, b] = *stamps.as_slice() else {
            panic!("two distinct tags: {stamps:?}");
        };
        assert!(index.is_current(&a) && index.is_current(&b));
        let inv = index.invalidate(["a"]).unwrap();
        assert_eq!(taken(&inv), vec![(7, 1)]);
        assert!(!index.is_current(&a));
        assert!(index.is_current(&b));
        index.release(inv);
        assert_eq!(index.len(), 1, "`a` has no members left and is freed");
        index.forget(&stamps, 7);
        index.sweep();
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn freed_slots_are_reused_without_reviving_old_stamps() {
        let index = TagIndex::<u32>::new();
        let old = index.stamp(&[Tag::from("old")], 1, &1, LIFE);
        let inv = index.invalidate(["old"]).unwrap();
        index.release(inv);
        assert_eq!(index.len(), 0);
        let new = index.stamp(&[Tag::from("new")], 2, &2, LIFE);
        let (Stamps::One(old), Stamps::One(new)) = (old, new) else {
            panic!("one tag each");
        };
        assert_eq!(old.slot, new.slot, "the slot is reused");
        assert!(index.is_current(&new));
        assert!(!index.is_current(&old), "versions never go back");
    }

    #[test]
    fn invalidating_an_unknown_tag_takes_nothing() {
        let index = TagIndex::<u32>::new();
        assert!(index.invalidate(["nope"]).is_none());
    }

    #[test]
    fn invalidating_several_tags_deduplicates_members() {
        let index = TagIndex::<u32>::new();
        let s1 = index.stamp(&[Tag::from("a"), Tag::from("b")], 1, &10, LIFE);
        let s2 = index.stamp(&[Tag::from("b")], 2, &20, LIFE);
        let inv = index.invalidate(["a", "b", "a"]).unwrap();
        assert_eq!(taken(&inv), vec![(1, 10), (2, 20)]);
        assert!(!s1.as_slice().iter().any(|s| index.is_current(s)));
        assert!(!s2.as_slice().iter().any(|s| index.is_current(s)));
        index.release(inv);
    }

    #[test]
    fn an_entry_with_several_tags_is_taken_once() {
        let index = TagIndex::<u32>::new();
        index.stamp(&[Tag::from("a"), Tag::from("b")], 1, &10, LIFE);
        index.stamp(&[Tag::from("a"), Tag::from("a")], 2, &20, LIFE);
        let first = index.invalidate(["a"]).unwrap();
        assert!(first.members[&1].taken.is_some(), "two distinct tags");
        assert!(first.members[&2].taken.is_none(), "one distinct tag");
        assert!(first.members.values().all(Member::take));
        let second = index.invalidate(["b"]).unwrap();
        assert_eq!(taken(&second), vec![(1, 10)], "still a member of `b`");
        assert!(!second.members[&1].take(), "already taken through `a`");
        index.release(first);
        index.release(second);
    }

    #[test]
    fn many_tags_spill_to_the_heap_and_still_check() {
        let index = TagIndex::<u32>::new();
        let tags: Vec<Tag> = (0..100).map(|i| Tag::from(format!("t{i}"))).collect();
        let stamps = index.stamp(&tags, 1, &1, LIFE);
        assert!(matches!(stamps, Stamps::Many(_)));
        assert_eq!(stamps.as_slice().len(), 100);
        assert!(stamps.as_slice().iter().all(|s| index.is_current(s)));
        index.release(index.invalidate(["t99"]).unwrap());
        assert!(!stamps.as_slice().iter().all(|s| index.is_current(s)));
    }
}
