//! Tags and the tag index: per-tag version numbers for O(1) logical
//! invalidation, and per-tag generations with an exact count of their live
//! entries, so that an invalidation counts what it hides in O(1) too.
//!
//! Every tag in use owns a slot in a table that only grows (chunks are
//! allocated once and never move, so a slot is reached without a lock).
//! Each entry stores, inline, one [`Stamp`] per tag: the slot index and the
//! slot's version at insert. `invalidate_tag` bumps the version, so every
//! older entry with the tag fails the one-atomic-load check on its next read
//! (the scheme of Symfony's `TagAwareAdapter`); reads never evaluate
//! predicates and touch no reference count.
//!
//! A slot's [`Generation`] holds what belongs to its current version: the
//! number of live entries whose only tag it is (kept exact on insert,
//! removal, eviction and expiry, under the slot's lock, which the version
//! bump also holds), the keys of those entries (for physical removal), and
//! the entries that carry other tags as well. An invalidation swaps the
//! generation out whole under that lock: the count it returns and the keys
//! it queues for removal take no work per entry. A removal or expiry
//! reported for an entry of an older generation finds the version changed
//! and leaves the current generation alone.
//!
//! An entry with several distinct tags dies with the first of them that is
//! invalidated, so the others must stop counting it: it shares one `taken`
//! flag between its memberships, and whoever sets it first (an invalidation
//! walking its generation's entries with several tags, a removal, an
//! expiry, `invalidate_all`) is the one that counts its end. Invalidating a
//! tag therefore costs O(1) plus O(entries of that tag that carry other tags
//! too).
//!
//! A slot whose generation is empty is returned to a free list by the next
//! sweep (amortized over new tags, and run by `run_pending_tasks`) and
//! reused by a later new tag. Versions only grow, across reuse too, so an
//! entry stamped for the slot's previous tag (necessarily invalidated, or
//! it would still be a member) never matches again.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::live::Counted;
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

/// An entry's stamps, one per distinct tag, inline for up to two tags (no
/// allocation, nothing to dereference on a read).
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

    fn from_vec(stamps: Vec<Stamp>) -> Self {
        match *stamps.as_slice() {
            [] => Self::None,
            [one] => Self::One(one),
            [a, b] => Self::Two([a, b]),
            _ => Self::Many(stamps.into()),
        }
    }
}

/// An entry with several distinct tags, as a member of each of their
/// generations.
pub(crate) struct Member<K> {
    pub(crate) key: K,
    /// Shared by the entry's memberships (and its expiry record): set by a
    /// `swap` by the first of the events that end the entry's life, which
    /// alone counts that end.
    pub(crate) taken: Arc<AtomicBool>,
}

impl<K> Member<K> {
    /// Ends the entry's life; false if something else already had.
    #[inline]
    pub(crate) fn take(&self) -> bool {
        !self.taken.swap(true, Ordering::AcqRel)
    }
}

/// Both halves of `x` times an odd constant, folded: every bit of the
/// result depends on every bit of `x`, so ids in a stride (every tenth
/// insert carrying a tag) still spread over all buckets.
#[inline]
fn fold_multiply(x: u64) -> u64 {
    let product = u128::from(x) * 0x9E37_79B9_7F4A_7C15;
    (product as u64) ^ ((product >> 64) as u64)
}

/// Hashes entry ids, which are distinct counters chosen by the cache (not
/// by a caller), with one multiplication: no keys to draw for a new map, no
/// SipHash per insert.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = fold_multiply(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = fold_multiply(id);
    }
}

/// A map keyed by entry id.
pub(crate) type ById<T> = HashMap<u64, T, std::hash::BuildHasherDefault<IdHasher>>;

/// What belongs to the current version of one tag.
struct Generation<K> {
    /// Live entries whose only tag this is: counted on insert, uncounted
    /// when moka reports their removal or their time to live runs out, and
    /// taken whole by an invalidation. Never more than `singles.len()`.
    live: u64,
    /// Every entry of this version whose only tag this is (live or not):
    /// entry id -> key, for physical removal after an invalidation. An
    /// entry leaves when moka reports its removal.
    singles: ById<K>,
    /// Every entry of this version that carries other tags too.
    multi: ById<Member<K>>,
    /// The invalidation sequence number (see `TagIndex::sequence`) of the
    /// last invalidation of this slot's tag, or, for a slot newly given to
    /// a tag, the latest of any freed slot: a load that began before it
    /// must not store an entry with this tag. Carried over from one
    /// generation to the next.
    invalidated_at: u64,
}

impl<K> Generation<K> {
    fn new() -> Self {
        Self::following(0)
    }

    fn following(invalidated_at: u64) -> Self {
        Self {
            live: 0,
            singles: ById::default(),
            multi: ById::default(),
            invalidated_at,
        }
    }

    /// No member and nothing counted: an expiry record taken by
    /// `Expiries::due` but not yet applied still counts here after its
    /// entry left `singles`, and must not be applied to a reused slot.
    fn is_empty(&self) -> bool {
        self.live == 0 && self.singles.is_empty() && self.multi.is_empty()
    }
}

/// Slots per chunk: chunk `c` holds `FIRST_CHUNK << c` slots.
const FIRST_CHUNK: usize = 32;
/// Enough chunks for 2^31 tags in use at once.
const CHUNKS: usize = 26;

/// One chunk of slots. Versions are kept apart from the generations:
/// inserts lock the generations all the time, reads only load versions,
/// which change once per invalidation.
struct Chunk<K> {
    versions: Box<[AtomicU64]>,
    generations: Box<[Mutex<Generation<K>>]>,
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
    /// The latest `invalidated_at` of any slot freed so far: a tag given a
    /// slot may have been invalidated, and its slot freed, while a load
    /// was running, so its new slot starts from this.
    freed_invalidated_at: u64,
}

const MIN_SWEEP_AT: usize = 64;

/// The tag index of one cache.
pub(crate) struct TagIndex<K> {
    chunks: [OnceLock<Chunk<K>>; CHUNKS],
    registry: CachePadded<RwLock<Registry>>,
    /// Counts calls of `invalidate`: each takes the next number and
    /// records it in the slots it ends, before bumping their versions.
    sequence: CachePadded<AtomicU64>,
}

/// What one invalidation took out of the index: the generations it ended.
pub(crate) struct Invalidation<K> {
    /// The slots whose versions were bumped. They stay registered, with
    /// empty generations, until a sweep frees them.
    pub(crate) bumped: Vec<u32>,
    /// The live entries with a single tag among the ended generations.
    pub(crate) live: u64,
    /// The ended generations' single-tag entries, id -> key.
    pub(crate) singles: Vec<ById<K>>,
    /// The ended generations' entries with several tags (an entry with
    /// several of the invalidated tags is in several maps).
    pub(crate) multi: Vec<ById<Member<K>>>,
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
                freed_invalidated_at: 0,
            })),
            sequence: CachePadded(AtomicU64::new(0)),
        }
    }

    /// The number of the last tag invalidation begun. A load that takes it
    /// when it begins must not store an entry with a tag whose slot records
    /// a later one (see [`Joined::stale`]).
    pub(crate) fn sequence(&self) -> u64 {
        self.sequence.load(Ordering::SeqCst)
    }

    fn chunk(&self, chunk: usize) -> &Chunk<K> {
        self.chunks[chunk].get_or_init(|| {
            let len = FIRST_CHUNK << chunk;
            Chunk {
                versions: (0..len).map(|_| AtomicU64::new(0)).collect(),
                generations: (0..len).map(|_| Mutex::new(Generation::new())).collect(),
            }
        })
    }

    /// The slot's generation, locked. The version is only bumped with this
    /// lock held, so under it `is_current` is stable.
    fn generation(&self, slot: u32) -> MutexGuard<'_, Generation<K>> {
        let (chunk, offset) = locate(slot);
        // The critical sections only move plain data; a poisoned lock holds
        // a consistent generation.
        self.chunk(chunk).generations[offset]
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

    /// moka removed entry `id`, whose only tag is `stamp`'s: it leaves its
    /// generation if that is still current. With `owns` (no expiry has
    /// uncounted it yet) it also stops counting there; true if it did
    /// (false if the generation had already ended, taking the count).
    pub(crate) fn remove_single(&self, stamp: &Stamp, id: u64, owns: bool) -> bool {
        let mut generation = self.generation(stamp.slot);
        if !self.is_current(stamp) {
            return false;
        }
        generation.singles.remove(&id);
        if owns && generation.live > 0 {
            generation.live -= 1;
            return true;
        }
        false
    }

    /// The time to live of an entry whose only tag is `stamp`'s ran out: it
    /// stops counting if its generation is still current (it stays a
    /// member until moka removes it). True if it did.
    pub(crate) fn expire_single(&self, stamp: &Stamp) -> bool {
        let mut generation = self.generation(stamp.slot);
        if self.is_current(stamp) && generation.live > 0 {
            generation.live -= 1;
            return true;
        }
        false
    }

    /// moka removed entry `id`, which has several tags: it leaves the
    /// generations of `stamps` that are still current. Returns its shared
    /// `taken` flag if any still held it (if none did, each of them ended
    /// and the first to end took the entry).
    pub(crate) fn remove_multi(&self, stamps: &Stamps, id: u64) -> Option<Arc<AtomicBool>> {
        let mut taken = None;
        for stamp in stamps.as_slice() {
            let mut generation = self.generation(stamp.slot);
            if self.is_current(stamp)
                && let Some(member) = generation.multi.remove(&id)
            {
                taken = Some(member.taken);
            }
        }
        taken
    }

    /// Ends the current generation of each existing tag among `tags`
    /// (bumps the version and takes the generation, under its lock): O(1)
    /// per tag. `None` when none of the tags exists (no entry carries them).
    ///
    /// `loading` tells whether a load is in flight: then a tag no entry
    /// carries gets a slot all the same, recording the invalidation, so
    /// that such a load cannot store an entry with it. (A load that begins
    /// after `loading` has answered no takes a later sequence number.)
    pub(crate) fn invalidate<'t>(
        &self,
        tags: impl IntoIterator<Item = &'t str>,
        loading: impl FnOnce() -> bool,
    ) -> Option<Invalidation<K>> {
        // Under the read lock, so that no slot is freed and reused between
        // finding it and bumping it.
        let registry = self.read();
        // Taken before any version is bumped: a load that began after this
        // sees the bumps through the versions it stamps.
        let sequence = self.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        let mut invalidation = Invalidation::empty();
        let mut unknown = Vec::new();
        for tag in tags {
            let Some(&slot) = registry.slots.get(tag) else {
                unknown.push(tag);
                continue;
            };
            if !invalidation.bumped.contains(&slot) {
                self.end_generation(slot, sequence, &mut invalidation);
            }
        }
        drop(registry);
        if !unknown.is_empty() && loading() {
            let mut registry = self.write();
            for tag in unknown {
                // The tag may have been given a slot (and entries) since the
                // read lock was dropped: its generation ends like any other.
                let slot = self.slot_for(&mut registry, &Tag::from(tag));
                if !invalidation.bumped.contains(&slot) {
                    self.end_generation(slot, sequence, &mut invalidation);
                }
            }
        }
        (!invalidation.bumped.is_empty()).then_some(invalidation)
    }

    /// Ends the current generation of every tag in use (`invalidate_all`):
    /// O(tags in use).
    pub(crate) fn invalidate_every(&self) -> Invalidation<K> {
        let registry = self.read();
        let mut invalidation = Invalidation::empty();
        for &slot in registry.slots.values() {
            // `invalidate_all` guards loads with its epoch: the slot keeps
            // its sequence number.
            self.end_generation(slot, 0, &mut invalidation);
        }
        invalidation
    }

    /// Ends `slot`'s generation; the next one records `invalidated_at` (or
    /// keeps the ended one's, if later).
    fn end_generation(&self, slot: u32, invalidated_at: u64, invalidation: &mut Invalidation<K>) {
        let ended = {
            let mut generation = self.generation(slot);
            let invalidated_at = invalidated_at.max(generation.invalidated_at);
            self.version_cell(slot).fetch_add(1, Ordering::AcqRel);
            std::mem::replace(&mut *generation, Generation::following(invalidated_at))
        };
        invalidation.bumped.push(slot);
        invalidation.live += ended.live;
        if !ended.singles.is_empty() {
            invalidation.singles.push(ended.singles);
        }
        if !ended.multi.is_empty() {
            invalidation.multi.push(ended.multi);
        }
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
        {
            let mut generation = self.generation(slot);
            generation.invalidated_at =
                generation.invalidated_at.max(registry.freed_invalidated_at);
        }
        if slot as usize == registry.names.len() {
            registry.names.push(None);
        }
        registry.names[slot as usize] = Some(tag.clone());
        registry.slots.insert(tag.clone(), slot);
        slot
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
    /// and joining its generation, so an empty generation means no entry
    /// is stamped with the slot's current version.
    fn free_if_unused(&self, registry: &mut Registry, slot: u32) {
        let invalidated_at = {
            let generation = self.generation(slot);
            if !generation.is_empty() {
                return;
            }
            generation.invalidated_at
        };
        if let Some(tag) = registry.names.get_mut(slot as usize).and_then(Option::take) {
            registry.freed_invalidated_at = registry.freed_invalidated_at.max(invalidated_at);
            registry.slots.remove(&tag);
            registry.free.push(slot);
        }
    }

    /// Number of tags in use (including unused ones not yet swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.read().slots.len()
    }

    /// The live count of `tag`'s current generation (single-tag entries).
    #[cfg(test)]
    pub(crate) fn live(&self, tag: &str) -> u64 {
        let slot = self.read().slots.get(tag).copied();
        slot.map_or(0, |slot| self.generation(slot).live)
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

impl<K> Invalidation<K> {
    fn empty() -> Self {
        Self {
            bumped: Vec::new(),
            live: 0,
            singles: Vec::new(),
            multi: Vec::new(),
        }
    }
}

/// How a new entry joined the tag index.
pub(crate) struct Joined {
    pub(crate) stamps: Stamps,
    /// Where it counts: its only tag's generation, or (several distinct
    /// tags) the `taken` flag its memberships share.
    pub(crate) counted: Counted,
    /// One of its tags was invalidated after the sequence number the
    /// caller gave (`since`): the entry is the result of a load that began
    /// before that invalidation, and must not be stored.
    pub(crate) stale: bool,
}

impl<K: Clone> TagIndex<K> {
    /// Registers entry `id` (under `key`) with each of `tags` (at least
    /// one), counting it as live in its tag's generation if it has one
    /// distinct tag and `live`. An entry with several distinct tags gets a
    /// `taken` flag, already set unless `live`. Duplicate tags are stamped
    /// once.
    ///
    /// With `since` (the [`sequence`](Self::sequence) when a load began),
    /// each join also reads, under the generation's lock, whether the tag
    /// was invalidated after it: [`Joined::stale`].
    pub(crate) fn stamp(
        &self,
        tags: &[Tag],
        id: u64,
        key: &K,
        live: bool,
        since: Option<u64>,
    ) -> Joined {
        let mut stale = false;
        let distinct = |i: usize| !tags[..i].contains(&tags[i]);
        let taken = (1..tags.len())
            .any(distinct)
            .then(|| Arc::new(AtomicBool::new(!live)));
        let mut stamps: Vec<Stamp> = Vec::with_capacity(tags.len());
        for (i, tag) in tags.iter().enumerate() {
            if !distinct(i) {
                continue;
            }
            let mut join = |slot: u32| {
                let mut generation = self.generation(slot);
                match &taken {
                    Some(taken) => {
                        let member = Member {
                            key: key.clone(),
                            taken: Arc::clone(taken),
                        };
                        generation.multi.insert(id, member);
                    }
                    None => {
                        generation.singles.insert(id, key.clone());
                        generation.live += u64::from(live);
                    }
                }
                // Read under the generation's lock, which an invalidation
                // holds while bumping: the entry is in the generation of
                // the version it carries.
                let version = self.version_cell(slot).load(Ordering::Acquire);
                if since.is_some_and(|since| generation.invalidated_at > since) {
                    stale = true;
                }
                Stamp { slot, version }
            };
            // The registry lock (read for a known tag, write for a new one)
            // is held while joining: a slot is only freed under the write
            // lock with an empty generation.
            let registry = self.read();
            let known = registry.slots.get(tag.as_str()).copied();
            let stamp = match known {
                Some(slot) => join(slot),
                None => {
                    drop(registry);
                    let mut registry = self.write();
                    let slot = self.slot_for(&mut registry, tag);
                    join(slot)
                }
            };
            stamps.push(stamp);
        }
        let counted = match taken {
            Some(taken) => Counted::Multi(taken),
            None => Counted::Single(*stamps.first().expect("an entry joins at least one tag")),
        };
        Joined {
            stamps: Stamps::from_vec(stamps),
            counted,
            stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (Stamps::One(old), Stamps::One(expiring), Stamps::One(new)) = (old, expiring, new)
        else {
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
}

#[cfg(test)]
mod review_tests {
    use super::*;

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
}
