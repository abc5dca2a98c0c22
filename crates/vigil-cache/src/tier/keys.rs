//! Naming entries in Redis by key digest, and finding a local key from a
//! digest.
//!
//! `invalidate(&Q)` only has a borrowed form of the key, which serde cannot
//! be asked about; but `K: Borrow<Q>` promises that `Q` hashes as `K` does.
//! So an entry's Redis key is `{prefix}:v:{digest}`, where the digest is a
//! 128-bit FNV-1a over what the key's `Hash` implementation writes (the
//! same for `K` and every `Q`, on every replica of one build and
//! platform). The entry also holds the postcard encoding of the key, which
//! a read compares with its own: two keys with the same digest never serve
//! each other's values (a collision costs a miss or an extra invalidation).
//!
//! Key invalidations travel as digests; each replica maps a digest back to
//! the key it holds locally, or is loading, with a [`KeyIndex`].

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::remote::lock;

/// FNV-1a, 128 bits.
struct Fnv128(u128);

impl Hasher for Fnv128 {
    fn finish(&self) -> u64 {
        self.0 as u64
    }

    fn write(&mut self, bytes: &[u8]) {
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        for &byte in bytes {
            self.0 ^= u128::from(byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }
}

/// The digest of a key, as 32 hex digits.
pub(crate) fn digest<Q: Hash + ?Sized>(key: &Q) -> String {
    let mut hasher = Fnv128(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d);
    key.hash(&mut hasher);
    format!("{:032x}", hasher.0)
}

const SHARDS: usize = 16;

/// The shard of a digest: the value of its last hex digit (FNV's low bits
/// vary the most between short keys; an ASCII code would use only 10 of
/// the 16 shards).
fn shard_of(digest: &str) -> usize {
    let last = digest.chars().next_back().and_then(|c| c.to_digit(16));
    last.map_or(0, |n| n as usize % SHARDS)
}

/// One shard of a [`KeyIndex`].
struct Shard<K> {
    /// digest -> (key, entry id) of the live local entries.
    held: HashMap<String, (K, u64)>,
    /// digest -> the loads of keys with that digest in flight: (load id,
    /// key).
    loading: HashMap<String, Vec<(u64, K)>>,
    /// digest -> this replica's writes of keys with that digest in
    /// progress (see [`Writing`]).
    writing: HashMap<String, Writes>,
}

/// This replica's writes (inserts, key invalidations) of keys with one
/// digest in progress.
#[derive(Default)]
struct Writes {
    /// How many.
    active: usize,
    /// How many began since the first of them.
    begun: u64,
    /// The highest sequence number of the key announcements (of any
    /// replica, this one included) that arrived meanwhile.
    announced: u64,
}

/// The local keys of a cache with a Redis level, by key digest: those of
/// its live local entries (key, entry id), written when an entry is stored
/// and when moka reports its removal (only if it is still that entry),
/// and those being loaded, from the start of the load until its value is
/// stored or given up. Never written on a read hit.
///
/// A key announcement from another replica finds the key here whether it
/// is held or still loading: a lead registers its key before it reads
/// Redis and leaves only after its entry is in `held`, so no announcement
/// can fall between the two.
pub(crate) struct KeyIndex<K> {
    shards: Box<[Mutex<Shard<K>>]>,
    next_load: AtomicU64,
}

impl<K> KeyIndex<K> {
    fn shard(&self, digest: &str) -> &Mutex<Shard<K>> {
        &self.shards[shard_of(digest)]
    }

    /// Load `id` of a key with `digest` ended.
    pub(crate) fn unload(&self, digest: &str, id: u64) {
        let mut shard = lock(self.shard(digest));
        if let Some(loads) = shard.loading.get_mut(digest) {
            loads.retain(|(load, _)| *load != id);
            if loads.is_empty() {
                shard.loading.remove(digest);
            }
        }
    }
}

impl<K: Clone + PartialEq> KeyIndex<K> {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        held: HashMap::new(),
                        loading: HashMap::new(),
                        writing: HashMap::new(),
                    })
                })
                .collect(),
            next_load: AtomicU64::new(0),
        }
    }

    /// Entry `id` under `key` (digest `digest`) was stored.
    pub(crate) fn stored(&self, digest: String, key: &K, id: u64) {
        lock(self.shard(&digest))
            .held
            .insert(digest, (key.clone(), id));
    }

    /// Entry `id` left moka (unless it was replaced, which `stored` of the
    /// new entry records).
    pub(crate) fn removed(&self, digest: &str, id: u64) {
        let mut shard = lock(self.shard(digest));
        if shard.held.get(digest).is_some_and(|(_, held)| *held == id) {
            shard.held.remove(digest);
        }
    }

    /// A load of `key` (digest `digest`) begins; returns its id for
    /// [`unload`](Self::unload).
    pub(crate) fn load(&self, digest: &str, key: &K) -> u64 {
        let id = self.next_load.fetch_add(1, Ordering::Relaxed);
        lock(self.shard(digest))
            .loading
            .entry(digest.to_owned())
            .or_default()
            .push((id, key.clone()));
        id
    }

    /// A write of a key with `digest` reached Redis as `seq` (announced
    /// by any replica): recorded for this replica's writes of such keys
    /// in progress, if any.
    pub(crate) fn announced(&self, digest: &str, seq: u64) {
        if let Some(writes) = lock(self.shard(digest)).writing.get_mut(digest) {
            writes.announced = writes.announced.max(seq);
        }
    }

    /// The local keys with `digest`: held by an entry, or being loaded.
    pub(crate) fn keys(&self, digest: &str) -> Vec<K> {
        let shard = lock(self.shard(digest));
        let held = shard.held.get(digest).map(|(key, _)| key);
        let loading = shard.loading.get(digest).into_iter().flatten();
        let mut keys: Vec<K> = Vec::new();
        for key in held.into_iter().chain(loading.map(|(_, key)| key)) {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys
    }
}

/// A write of a key by this replica (an insert, or an invalidation), from
/// before its local store until its Redis command is done. The local
/// level and Redis apply writes of one key in their own orders: two
/// writes of this replica in progress together may be stored locally in
/// one order and reach Redis in the other, and another replica's write
/// that reaches Redis after this one may be announced before this one's
/// local store, which then outlives it (this replica's own announcements
/// are not applied). [`end`](Self::end) tells the insert when that may
/// have happened, so that it drops its local copy: the next read takes
/// the value Redis holds.
pub(crate) struct Writing<K> {
    keys: Arc<KeyIndex<K>>,
    digest: String,
    /// `Writes::begun` after this one began.
    begun: u64,
    /// Another write of the key was in progress when this one began.
    crowded: bool,
    /// How many resynchronisations had begun when this one began (see
    /// `Remote::resyncs`): one since may have missed an announcement.
    pub(crate) resyncs: u64,
}

impl<K> Writing<K> {
    pub(crate) fn begin(keys: &Arc<KeyIndex<K>>, digest: String, resyncs: u64) -> Self {
        let (begun, crowded) = {
            let mut shard = lock(keys.shard(&digest));
            let writes = shard.writing.entry(digest.clone()).or_default();
            writes.active += 1;
            writes.begun += 1;
            (writes.begun, writes.active > 1)
        };
        Self {
            keys: Arc::clone(keys),
            digest,
            begun,
            crowded,
            resyncs,
        }
    }

    /// The write is done; `seq` is the number Redis gave it (`None`: not
    /// known, it did not reach Redis or did not answer). Whether another
    /// write of the key may have reached Redis after it: another write of
    /// this replica overlapped it, or a key announcement numbered above
    /// `seq` (any, without a number) arrived meanwhile.
    pub(crate) fn end(self, seq: Option<u64>) -> bool {
        let shard = lock(self.keys.shard(&self.digest));
        let Some(writes) = shard.writing.get(&self.digest) else {
            return true;
        };
        let later = match seq {
            Some(seq) => writes.announced > seq,
            None => writes.announced > 0,
        };
        self.crowded || writes.begun != self.begun || later
    }
}

impl<K> Drop for Writing<K> {
    fn drop(&mut self) {
        let mut shard = lock(self.keys.shard(&self.digest));
        if let Some(writes) = shard.writing.get_mut(&self.digest) {
            writes.active -= 1;
            if writes.active == 0 {
                shard.writing.remove(&self.digest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_spread_over_every_shard() {
        let mut counts = [0usize; SHARDS];
        for key in 0..1600u32 {
            counts[shard_of(&digest(&key))] += 1;
        }
        assert!(counts.iter().all(|&n| n > 50), "{counts:?}");
    }

    #[test]
    fn a_key_and_its_borrowed_form_have_one_digest() {
        assert_eq!(digest(&"user:42".to_string()), digest("user:42"));
        assert_eq!(digest(&vec![1u8, 2]), digest(&[1u8, 2][..]));
        assert_ne!(digest("user:42"), digest("user:43"));
        assert_eq!(digest(&7u64).len(), 32);
    }

    #[test]
    fn loading_keys_are_found_until_their_load_ends() {
        let index = KeyIndex::new();
        let d = digest("k");
        let first = index.load(&d, &"k".to_string());
        let second = index.load(&d, &"k".to_string());
        assert_eq!(index.keys(&d), vec!["k".to_string()], "once");
        index.unload(&d, first);
        assert_eq!(index.keys(&d), vec!["k".to_string()]);
        index.unload(&d, second);
        assert!(index.keys(&d).is_empty());
        assert!(lock(index.shard(&d)).loading.is_empty(), "nothing left");
    }

    #[test]
    fn a_write_learns_of_overlapping_writes_and_of_later_announcements() {
        let index = Arc::new(KeyIndex::<String>::new());
        let d = digest("k");
        let alone = Writing::begin(&index, d.clone(), 0);
        index.announced(&d, 4);
        index.announced(&digest("other"), 9);
        assert!(!alone.end(Some(5)), "only an earlier write was announced");
        let alone = Writing::begin(&index, d.clone(), 0);
        index.announced(&d, 6);
        assert!(alone.end(Some(5)), "a later write was announced");
        let alone = Writing::begin(&index, d.clone(), 0);
        assert!(!alone.end(None));
        let unanswered = Writing::begin(&index, d.clone(), 0);
        index.announced(&d, 1);
        assert!(unanswered.end(None), "a write of unknown number");
        let first = Writing::begin(&index, d.clone(), 0);
        let second = Writing::begin(&index, d.clone(), 0);
        assert!(second.end(Some(8)), "began while another was in progress");
        assert!(first.end(Some(7)), "another began meanwhile");
        assert!(lock(index.shard(&d)).writing.is_empty(), "nothing left");
        index.announced(&d, 10);
        assert!(lock(index.shard(&d)).writing.is_empty(), "not recorded");
    }

    #[test]
    fn the_index_forgets_only_the_entry_it_holds() {
        let index = KeyIndex::new();
        let d = digest("k");
        index.stored(d.clone(), &"k".to_string(), 1);
        index.stored(d.clone(), &"k".to_string(), 2); // replaced
        index.removed(&d, 1);
        assert_eq!(index.keys(&d), vec!["k".to_string()]);
        index.removed(&d, 2);
        assert!(index.keys(&d).is_empty());
    }
}
