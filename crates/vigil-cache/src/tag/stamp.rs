//! What an entry keeps of its tags ([`Stamps`]), and what a generation
//! keeps of an entry with several tags ([`Member`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One tag of one entry: the tag's slot and its version when the entry was
/// inserted. `Copy`: reading an entry's stamps writes nothing shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(super) slot: u32,
    pub(super) version: u64,
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

    pub(super) fn from_vec(stamps: Vec<Stamp>) -> Self {
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
