//! What the cache stores in moka for each entry: the user's value plus what
//! is needed to decide, on each read, whether the entry is still alive.

use std::time::{Duration, Instant};

use moka::Expiry;

use crate::tag::Stamps;

/// The longest time to live handed to moka (whose builder rejects more than
/// 1000 years); longer ones are clamped. The logical expiry is unaffected.
const MAX_PHYSICAL_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One entry as moka holds it. moka clones it on every read, so everything
/// the liveness check needs is inline and plain data: a read touches no
/// other allocation and writes no reference count (unless the entry has
/// more than two tags).
pub(crate) struct Stored<V> {
    pub(crate) value: V,
    /// Unique per insert: tells this entry from a later one under the same
    /// key, so that removals aimed at it never hit its successor.
    pub(crate) id: u64,
    /// The cache's `invalidate_all` epoch at insert.
    pub(crate) epoch: u64,
    /// Logical expiry by the cache's `quanta::Clock`; `None` = never.
    pub(crate) expires_at: Option<quanta::Instant>,
    pub(crate) stamps: Stamps,
}

impl<V: Clone> Clone for Stored<V> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            id: self.id,
            epoch: self.epoch,
            expires_at: self.expires_at,
            stamps: self.stamps.clone(),
        }
    }
}

/// Whether a stored entry may be returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    Fresh,
    Expired,
    /// Dropped by `invalidate_all` or `invalidate_tag(s)`.
    Invalidated,
}

/// Physical expiry in moka, on real time: each entry lives for what is left
/// of its time to live by the cache's clock when moka stores it (an update
/// restarts it with the new entry's).
pub(crate) struct EntryExpiry {
    pub(crate) clock: quanta::Clock,
}

impl EntryExpiry {
    fn remaining<V>(&self, stored: &Stored<V>) -> Option<Duration> {
        stored.expires_at.map(|at| {
            at.saturating_duration_since(self.clock.now())
                .min(MAX_PHYSICAL_TTL)
        })
    }
}

impl<K, V> Expiry<K, Stored<V>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Stored<V>,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.remaining(value)
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &Stored<V>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(value)
    }
}
