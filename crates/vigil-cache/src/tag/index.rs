//! The tag index: slots, versions and generations (see the module
//! documentation of `tag`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};

use super::Tag;
use super::stamp::{ById, Member, Stamp, Stamps};
use crate::live::Counted;
use crate::padded::CachePadded;

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

    /// The tags in use (including unused ones not yet swept).
    #[cfg(feature = "redis")]
    pub(crate) fn names(&self) -> Vec<String> {
        self.read()
            .slots
            .keys()
            .map(|tag| tag.as_str().to_owned())
            .collect()
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
#[path = "index_tests.rs"]
mod tests;
