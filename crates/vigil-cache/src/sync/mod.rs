//! The blocking flavour: [`TaggedCache`] on `moka::sync::Cache`.
//!
//! `future::TaggedCache` has the same methods, `async` where moka's are.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::hash::Hash;
use std::sync::Arc;

use moka::ops::compute::{CompResult, Op};

use crate::entry::Stored;
use crate::flight::{Lead, Outcome, Role};
use crate::shared::{NoValue, REMOVALS_PER_WRITE};
use crate::stats::Hot;
use crate::{EntryOptions, WarmReport};

impl<K, V> TaggedCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value under `key`, if present and alive (not expired, not
    /// invalidated). Counts a hit or a miss.
    ///
    /// A dead entry found here is left in place: moka removes expired
    /// entries on its own (in real time), entries hidden by tag
    /// invalidations are removed by later writes and `run_pending_tasks`,
    /// and a loader (`get_with`, ...) for the key replaces it.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Hot path (budget: at most 1.2x a raw moka hit): moka's get, the
        // liveness check on the inline stamps (atomic loads, a clock read
        // only with a TTL) and one sharded counter bump. No lock, no
        // allocation beyond moka's clone, no shared write.
        self.inner.counted_read(self.inner.cache.get(key))
    }

    /// Whether a live entry is under `key`. Not counted in the statistics;
    /// like a read, it counts as an access for moka's policy and time to
    /// idle.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.alive(self.inner.cache.get(key)).is_some()
    }

    /// Inserts with the cache's default TTL and no tags.
    pub fn insert(&self, key: K, value: V) {
        self.insert_with(key, value, EntryOptions::default());
    }

    /// Inserts with per-entry options (TTL, tags), replacing any entry under
    /// `key`. Also removes a bounded batch of the entries that tag
    /// invalidations have hidden, if any are waiting.
    ///
    /// A load of `key` still running is superseded (its value will not be
    /// stored); one storing its value is waited for, so this insert lands
    /// after it. With no load in flight this costs one atomic load.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_cache::{EntryOptions, sync::TaggedCache};
    ///
    /// let (clock, mock) = quanta::Clock::mock();
    /// let cache: TaggedCache<u32, &str> = TaggedCache::builder().clock(clock).build();
    /// cache.insert_with(1, "one", EntryOptions::default().ttl(Duration::from_secs(10)));
    /// mock.increment(Duration::from_secs(9));
    /// assert_eq!(cache.get(&1), Some("one"));
    /// mock.increment(Duration::from_secs(1));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    ///
    /// With a Redis level, the value is also written there (this waits for
    /// Redis, at most the command timeout), and the other replicas drop
    /// their copy of the key.
    pub fn insert_with(&self, key: K, value: V, options: EntryOptions) {
        #[cfg(feature = "redis")]
        let l2 = self.inner.l2_insert(&key, &value, &options);
        self.before_write(&key);
        let stored = self.inner.shared.make_stored(&key, value, &options);
        self.store(key, stored);
        self.remove_pending(REMOVALS_PER_WRITE);
        #[cfg(feature = "redis")]
        if let Some((l2, key, value, options, writing)) = l2
            && crate::tier::block_on(l2.write_inserted(&key, &value, &options, writing)).stale
        {
            // Another write of the key may have reached Redis after this
            // one: the next read takes what Redis holds.
            self.invalidate_local(&key);
        }
    }

    /// Stores a registered entry in moka and counts its insert.
    fn store(&self, key: K, stored: Stored<V>) {
        // moka drops every entry of a cache of capacity 0 without a
        // removal notice: nothing to index.
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.inner.l2
            && self.inner.shared.capacity != Some(0)
        {
            l2.stored(&key, stored.id);
        }
        self.inner.cache.insert(key, stored);
        self.inner.shared.bump(Hot::Insert);
    }

    /// The value under `key`, or the one `init` returns, inserted with the
    /// default options. Concurrent calls for the same key, through any of
    /// the loading methods, run one `init`; the others wait for its value
    /// (at most [`CacheBuilder::load_timeout`](crate::CacheBuilder::load_timeout) per loader, if set). The
    /// caller whose `init` ran counts a miss, the others a hit.
    ///
    /// If the key is written (`insert*`, `invalidate`) or invalidated
    /// (`invalidate_all`, or a tag the loader chose) after `init` began,
    /// the value `init` returns is returned to this caller but not stored:
    /// see the crate documentation, "Loading".
    ///
    /// ```
    /// use vigil_cache::sync::TaggedCache;
    ///
    /// let cache: TaggedCache<u32, String> = TaggedCache::new(100);
    /// assert_eq!(cache.get_with(1, || "loaded".to_string()), "loaded");
    /// assert_eq!(cache.get_with(1, || unreachable!()), "loaded");
    /// ```
    pub fn get_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        self.get_with_options(key, || (init(), EntryOptions::default()))
    }

    /// [`get_with`](Self::get_with), with per-entry options chosen by the
    /// loader.
    pub fn get_with_options(&self, key: K, init: impl FnOnce() -> (V, EntryOptions)) -> V {
        match self.try_get_with_options(key, || Ok::<_, Infallible>(init())) {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// [`get_with`](Self::get_with) for a fallible loader. An error is
    /// returned, never cached, and shared with the callers waiting on the
    /// same load whose loaders have the same error type `E` (the others run
    /// their own loaders).
    pub fn try_get_with<E>(&self, key: K, init: impl FnOnce() -> Result<V, E>) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        self.try_get_with_options(key, || init().map(|value| (value, EntryOptions::default())))
    }

    /// [`try_get_with`](Self::try_get_with), with per-entry options chosen
    /// by the loader.
    pub fn try_get_with_options<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<(V, EntryOptions), E>,
    ) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        // The single-flight loader behind every `*get_with*` method (see
        // the crate documentation, "Loading").
        let inner = &*self.inner;
        if let Some(stored) = self.fresh(&key) {
            return Ok(inner.hit(stored));
        }
        let mut init = Some(init);
        loop {
            let flight = match inner.join(&key) {
                Role::Lead(flight) => flight,
                Role::Wait(flight) => {
                    let waited = flight.wait(inner.shared.wait_deadline());
                    if let Some(done) = inner.waited(&key, &flight, waited) {
                        return done;
                    }
                    // Start over: a write may have stored the value.
                    match self.fresh(&key) {
                        Some(stored) => return Ok(inner.hit(stored)),
                        None => continue,
                    }
                }
            };
            let lead = Lead::new(&inner.shared.flights, &key, flight);
            // Stored between the first look and taking the lead?
            if let Some(stored) = self.fresh(&key) {
                return Ok(inner.found_while_leading(lead, stored));
            }
            let init = init.take().expect("a call leads at most one load");
            let loaded = inner.load_blocking(&key, init);
            let (value, kept) = inner.settle(&key, lead, loaded)?;
            if let Some(keep) = kept {
                let outcome = Outcome::Stored(keep.stored.clone());
                self.store(key.clone(), keep.stored);
                keep.lead.finish(outcome);
                self.remove_pending(REMOVALS_PER_WRITE);
                #[cfg(feature = "redis")]
                if let Some(ticket) = keep.ticket {
                    crate::tier::block_on(inner.write_back(&key, &value, ticket));
                }
            }
            return Ok(value);
        }
    }

    /// [`get_with`](Self::get_with) for a loader that may find nothing;
    /// `None` is never cached.
    pub fn optionally_get_with(&self, key: K, init: impl FnOnce() -> Option<V>) -> Option<V> {
        self.optionally_get_with_options(key, || {
            init().map(|value| (value, EntryOptions::default()))
        })
    }

    /// [`optionally_get_with`](Self::optionally_get_with), with per-entry
    /// options chosen by the loader.
    pub fn optionally_get_with_options(
        &self,
        key: K,
        init: impl FnOnce() -> Option<(V, EntryOptions)>,
    ) -> Option<V> {
        self.try_get_with_options(key, || init().ok_or(NoValue))
            .ok()
    }

    /// Removes the entry under `key`, if any. Like an insert, supersedes a
    /// load of `key` still running (its value will not be stored).
    ///
    /// With a Redis level, on every replica, and in Redis (where, for the
    /// tombstone's time to live, loads of the key that began before are
    /// not written); this waits for Redis, at most the command timeout.
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.inner.l2 {
            // Dropped locally afterwards whatever overlapped it.
            crate::tier::block_on(l2.invalidate_key(key));
        }
        self.invalidate_local(key);
    }

    /// [`invalidate`](Self::invalidate) on this replica's local level only.
    fn invalidate_local<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.before_write(key);
        // The eviction listener counts it, if it was live.
        self.inner.cache.remove(key);
    }

    /// The value under `key` from the local level, else from the Redis
    /// level (stored locally on a hit); `get` without a Redis level. Never
    /// runs a loader; a miss is not cached.
    pub fn fetch(&self, key: &K) -> Option<V> {
        self.optionally_get_with(key.clone(), || None)
    }

    /// Orders a write to `key` after the loads of `key` in flight: one
    /// still loading will not store its value; one storing it is waited
    /// for, so the write lands after it.
    fn before_write<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        while let Some(flight) = self.inner.shared.flights.before_write(key) {
            flight.wait(None);
        }
    }

    /// Invalidates every entry tagged `tag` and returns how many live
    /// entries that was (entries already expired, invalidated, replaced or
    /// removed do not count).
    ///
    /// After it returns, no read (on any thread) returns an entry carrying
    /// `tag` that was inserted before the call; entries inserted after are
    /// unaffected. Costs O(1), plus O(its entries that carry other tags
    /// too), whatever the number of entries with the tag, and makes no call
    /// into moka: the tag's version is bumped (reads then reject older
    /// entries with one atomic load) and the tag's generation is taken
    /// whole, with its exact live count (kept on insert, replacement,
    /// removal, eviction and expiry); its entries stop counting in
    /// [`entry_count`](Self::entry_count) at once and are queued for
    /// physical removal as one batch. Later writes remove
    /// them in bounded batches (calling the eviction listener with
    /// [`RemovalCause::Explicit`](crate::RemovalCause::Explicit)), and
    /// [`run_pending_tasks`](Self::run_pending_tasks) removes what is left.
    ///
    /// ```
    /// use vigil_cache::{EntryOptions, sync::TaggedCache};
    ///
    /// let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    /// cache.insert_with(1, 1, EntryOptions::default().tag("market"));
    /// cache.insert_with(2, 2, EntryOptions::default().tags(["market", "eu"]));
    /// cache.insert_with(3, 3, EntryOptions::default().tag("eu"));
    /// assert_eq!(cache.invalidate_tag("market"), 2);
    /// cache.insert_with(1, 10, EntryOptions::default().tag("market"));
    /// assert_eq!(cache.get(&1), Some(10)); // inserted after: unaffected
    /// assert_eq!(cache.get(&2), None);
    /// assert_eq!(cache.get(&3), Some(3));
    /// ```
    pub fn invalidate_tag(&self, tag: &str) -> u64 {
        self.invalidate_tags(&[tag])
    }

    /// Invalidates every entry carrying any of `tags` (see
    /// [`invalidate_tag`](Self::invalidate_tag)); an entry with several of
    /// them counts once.
    ///
    /// With a Redis level, on every replica: the tags' versions in Redis are
    /// bumped first (this waits for Redis, at most the command timeout; if
    /// it cannot be reached, the invalidation is sent once it can).
    pub fn invalidate_tags<T: AsRef<str>>(&self, tags: &[T]) -> u64 {
        let tags: Vec<&str> = tags.iter().map(AsRef::as_ref).collect();
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.inner.l2 {
            crate::tier::block_on(l2.invalidate_tags(&tags));
        }
        self.inner.shared.invalidate_tags(tags)
    }

    /// Invalidates every entry at once: no later read returns an entry
    /// inserted before the call, and they stop counting in
    /// [`entry_count`](Self::entry_count) at once. moka removes them
    /// physically during its maintenance. O(tags in use), plus the entries
    /// that carry several tags.
    ///
    /// Returns how many live entries that hid, exactly: each entry
    /// registered before the call counts here once, unless something
    /// else (its replacement, removal, eviction, expiry or a tag
    /// invalidation) ended it first and counted it; an entry inserted
    /// concurrently either counts here and is hidden, or is stored
    /// after the call and stays.
    ///
    /// With a Redis level (`CacheBuilder::redis`),
    /// every replica's entries too: this waits for Redis (at most
    /// the command timeout; if it cannot be reached, the
    /// invalidation is sent once it can).
    pub fn invalidate_all(&self) -> u64 {
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.inner.l2 {
            crate::tier::block_on(l2.invalidate_all());
        }
        self.inner.invalidate_all()
    }

    /// Inserts every `(key, value)` with the default options.
    ///
    /// ```
    /// use vigil_cache::sync::TaggedCache;
    ///
    /// let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    /// let report = cache.warm((0..10).map(|k| (k, k * k)));
    /// assert_eq!((report.loaded, report.failed), (10, 0));
    ///
    /// let report = cache.warm_with(10..13, |&k| if k == 11 { Err("gone") } else { Ok(k * k) });
    /// assert_eq!((report.loaded, report.failed), (2, 1));
    /// ```
    pub fn warm<I: IntoIterator<Item = (K, V)>>(&self, entries: I) -> WarmReport {
        let mut report = WarmReport::default();
        for (key, value) in entries {
            self.insert(key, value);
            report.loaded += 1;
        }
        report
    }

    /// Loads each key with `loader` and inserts the values (default
    /// options); keys whose loader fails are counted and skipped.
    pub fn warm_with<E>(
        &self,
        keys: impl IntoIterator<Item = K>,
        mut loader: impl FnMut(&K) -> Result<V, E>,
    ) -> WarmReport {
        let mut report = WarmReport::default();
        for key in keys {
            match loader(&key) {
                Ok(value) => {
                    self.insert(key, value);
                    report.loaded += 1;
                }
                Err(_) => report.failed += 1,
            }
        }
        report
    }

    /// Removes every entry still queued by tag invalidations, runs moka's
    /// pending maintenance (removing expired and invalidated entries,
    /// applying evictions, calling the eviction listener) and drops tags no
    /// entry carries any more.
    pub fn run_pending_tasks(&self) {
        self.remove_pending(usize::MAX);
        self.inner.cache.run_pending_tasks();
        self.inner.shared.tags.sweep();
    }

    /// Performs up to `max` of the removals queued by tag invalidations.
    fn remove_pending(&self, max: usize) {
        for (key, id) in self.inner.shared.take_removals(max) {
            self.remove_if_same(&key, id);
        }
    }

    /// Removes the entry under `key` only if it is entry `id`, returning it.
    fn remove_if_same(&self, key: &K, id: u64) -> Option<Stored<V>> {
        let result = self
            .inner
            .cache
            .entry_by_ref(key)
            .and_compute_with(|entry| match entry {
                Some(entry) if entry.value().id == id => Op::Remove,
                _ => Op::Nop,
            });
        match result {
            CompResult::Removed(entry) => Some(entry.into_value()),
            _ => None,
        }
    }

    /// The live entry under `key`, uncounted.
    fn fresh(&self, key: &K) -> Option<Stored<V>> {
        self.inner.alive(self.inner.cache.get(key))
    }
}

tagged_cache_common! {
    /// A concurrent cache with per-entry TTL and tags, bulk invalidation by tag,
    /// and hit/miss statistics, on `moka::sync::Cache`.
    ///
    /// Cloning is cheap and every clone shares the same cache.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_cache::{EntryOptions, sync::TaggedCache};
    ///
    /// let cache: TaggedCache<String, String> = TaggedCache::builder()
    ///     .name("profiles")
    ///     .max_capacity(10_000)
    ///     .default_ttl(Duration::from_secs(300))
    ///     .build();
    ///
    /// let tagged = || EntryOptions::default().tags(["user:42", "premium"]);
    /// cache.insert_with("profile:42".into(), "Ada".into(), tagged());
    /// cache.insert_with("settings:42".into(), "dark".into(), tagged().ttl(Duration::from_secs(60)));
    /// cache.insert("motd".into(), "hello".into());
    ///
    /// assert_eq!(cache.get("profile:42").as_deref(), Some("Ada"));
    /// assert_eq!(cache.invalidate_tag("user:42"), 2);
    /// assert_eq!(cache.get("profile:42"), None);
    /// assert_eq!(cache.get("motd").as_deref(), Some("hello"));
    ///
    /// let stats = cache.stats();
    /// assert_eq!((stats.hits, stats.misses, stats.tag_invalidations), (2, 1, 2));
    /// ```
    sync
}

#[cfg(feature = "redis")]
impl<K, V> crate::tier::LocalKey<K> for crate::handle::Inner<K, V, moka::sync::Cache<K, Stored<V>>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop_key(
        self: Arc<Self>,
        key: K,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        // On a blocking thread of the tier's runtime: the removal may wait
        // for a load of the key that is storing its value, and moka calls
        // the user's eviction listener on the removing thread; neither
        // holds up a worker, which every cache's Redis commands need.
        Box::pin(async move {
            let removal = move || TaggedCache { inner: self }.invalidate_local(&key);
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = tokio::task::spawn_blocking(removal).await;
            } else {
                removal();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Stamps;

    #[test]
    fn replaced_and_invalidated_entries_leave_the_tag_index() {
        let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
        cache.insert_with(1, 1, EntryOptions::default().tags(["a", "b"]));
        cache.insert_with(1, 2, EntryOptions::default().tag("c"));
        cache.run_pending_tasks();
        assert_eq!(
            cache.inner.shared.tags.len(),
            1,
            "only `c` is still carried"
        );
        assert_eq!(cache.invalidate_tag("a"), 0);
        assert_eq!(cache.invalidate_tag("c"), 1);
        assert_eq!(cache.inner.shared.tags.len(), 1, "freed by the next sweep");
        cache.run_pending_tasks();
        assert_eq!(cache.inner.shared.tags.len(), 0);
    }

    /// A cache holding, under key 1, an entry registered with `options`,
    /// then `invalidate`d, then stored in moka: the race of a store with an
    /// invalidation. The entry must be dead.
    fn stored_after(
        options: EntryOptions,
        invalidate: impl FnOnce(&TaggedCache<u32, u32>),
    ) -> TaggedCache<u32, u32> {
        let cache = TaggedCache::new(100);
        let stored = cache.inner.shared.make_stored(&1, 1, &options);
        invalidate(&cache);
        cache.inner.cache.insert(1, stored);
        assert_eq!(cache.get(&1), None);
        cache
    }

    #[test]
    fn an_entry_stamped_before_a_tag_invalidation_but_stored_after_it_is_dead() {
        // The race between an insert and `invalidate_tag`: the insert has
        // joined the tag, the invalidation has taken the tag's members (and
        // found nothing in moka yet), then moka stores the entry. The version
        // bump alone must hide it.
        let cache = stored_after(EntryOptions::default().tag("t"), |cache| {
            // Not in moka yet, but registered and not dead: counted, as if
            // the insert had completed first.
            assert_eq!(cache.invalidate_tag("t"), 1);
        });
        assert!(!cache.contains_key(&1));
        assert!(cache.iter().next().is_none());
        assert_eq!(cache.get_with(1, || 2), 2, "a loader replaces it");
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), 1);
        assert_eq!(cache.stats().evictions, crate::Evictions::default());
    }

    #[test]
    fn an_entry_stored_across_invalidate_all_is_dead() {
        let cache = stored_after(EntryOptions::default(), |cache| {
            cache.invalidate_all();
        });
        assert_eq!(cache.get_with(1, || 2), 2, "a loader replaces it");
    }

    #[test]
    fn entries_with_up_to_two_tags_hold_no_heap_reference() {
        let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
        let stamps = |tags: &[&str]| {
            let options = EntryOptions::default().tags(tags.iter().copied());
            cache.inner.shared.make_stored(&1, 1, &options).stamps
        };
        assert!(matches!(stamps(&[]), Stamps::None));
        assert!(matches!(stamps(&["a"]), Stamps::One(_)));
        assert!(matches!(stamps(&["a", "b"]), Stamps::Two(_)));
        assert!(matches!(stamps(&["a", "b", "c"]), Stamps::Many(_)));
    }
}
