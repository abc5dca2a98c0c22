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
//! the key it holds locally with a [`KeyIndex`] of its live local entries.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

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

/// One shard of a [`KeyIndex`]: digest -> (key, entry id).
type Shard<K> = Mutex<HashMap<String, (K, u64)>>;

/// The live local entries of a cache with a Redis level, by key digest:
/// (key, entry id). Written when an entry is stored and when moka reports
/// its removal (only if it is still that entry), never on a read.
pub(crate) struct KeyIndex<K> {
    shards: Box<[Shard<K>]>,
}

impl<K: Clone> KeyIndex<K> {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, digest: &str) -> &Shard<K> {
        &self.shards[shard_of(digest)]
    }

    /// Entry `id` under `key` (digest `digest`) was stored.
    pub(crate) fn stored(&self, digest: String, key: &K, id: u64) {
        lock(self.shard(&digest)).insert(digest, (key.clone(), id));
    }

    /// Entry `id` left moka (unless it was replaced, which `stored` of the
    /// new entry records).
    pub(crate) fn removed(&self, digest: &str, id: u64) {
        let mut shard = lock(self.shard(digest));
        if shard.get(digest).is_some_and(|(_, held)| *held == id) {
            shard.remove(digest);
        }
    }

    /// The local key with `digest`, if an entry holds it.
    pub(crate) fn key(&self, digest: &str) -> Option<K> {
        lock(self.shard(digest))
            .get(digest)
            .map(|(key, _)| key.clone())
    }
}

/// How many remote key invalidations [`Heard`] remembers one by one.
const HEARD: usize = 4096;

/// The key invalidations (and inserts) other replicas announced, by digest,
/// numbered in the order they arrived: a load that began before one of its
/// key must not store its value, even if the key was not in the local
/// level yet when the announcement came (so nothing was there to drop).
#[derive(Default)]
pub(crate) struct Heard {
    count: u64,
    by_digest: HashMap<String, u64>,
    order: VecDeque<(String, u64)>,
    /// The number of the last announcement forgotten: a load that began
    /// before it cannot be told apart, and counts as overtaken.
    forgotten: u64,
}

impl Heard {
    /// Where a load begins.
    pub(crate) fn mark(&self) -> u64 {
        self.count
    }

    pub(crate) fn heard(&mut self, digest: &str) {
        self.count += 1;
        self.by_digest.insert(digest.to_owned(), self.count);
        self.order.push_back((digest.to_owned(), self.count));
        while self.order.len() > HEARD {
            let Some((old, number)) = self.order.pop_front() else {
                break;
            };
            if self.by_digest.get(&old) == Some(&number) {
                self.by_digest.remove(&old);
            }
            self.forgotten = number;
        }
    }

    /// Whether the key with `digest` was announced after `mark`.
    pub(crate) fn since(&self, digest: &str, mark: u64) -> bool {
        self.forgotten > mark || self.by_digest.get(digest).is_some_and(|&n| n > mark)
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
    fn announcements_overtake_only_the_loads_that_began_before_them() {
        let mut heard = Heard::default();
        let before = heard.mark();
        heard.heard("a");
        let after = heard.mark();
        assert!(heard.since("a", before));
        assert!(!heard.since("a", after));
        assert!(!heard.since("b", before));
        for i in 0..HEARD {
            heard.heard(&i.to_string());
        }
        assert!(heard.since("b", before), "forgotten: counted as overtaken");
        assert!(!heard.since("b", heard.mark()));
    }

    #[test]
    fn the_index_forgets_only_the_entry_it_holds() {
        let index = KeyIndex::new();
        let d = digest("k");
        index.stored(d.clone(), &"k".to_string(), 1);
        index.stored(d.clone(), &"k".to_string(), 2); // replaced
        index.removed(&d, 1);
        assert_eq!(index.key(&d).as_deref(), Some("k"));
        index.removed(&d, 2);
        assert_eq!(index.key(&d), None);
    }
}
