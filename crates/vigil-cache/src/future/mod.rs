//! The async flavour: [`TaggedCache`] on `moka::future::Cache`.
//!
//! The same methods as `sync::TaggedCache`, `async` where moka's are (plus
//! `contains_key`, which must read the entry to check that it is alive).
//! Loaders are futures.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use moka::ops::compute::{CompResult, Op};

use crate::entry::{Landing, Stored};
use crate::flight::{Lead, Outcome, Role};
use crate::shared::{NoValue, REMOVALS_PER_WRITE, Registration, Shared};
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
    pub async fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Hot path (budget: at most 1.2x a raw moka hit): see `sync`'s.
        self.inner.counted_read(self.inner.cache.get(key).await)
    }

    /// Whether a live entry is under `key`. Not counted in the statistics;
    /// like a read, it counts as an access for moka's policy and time to
    /// idle. (`async`, unlike moka's, because telling a live entry from an
    /// expired or invalidated one needs the entry, which moka's future
    /// cache only hands out asynchronously.)
    pub async fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.alive(self.inner.cache.get(key).await).is_some()
    }

    /// Inserts with the cache's default TTL and no tags.
    pub async fn insert(&self, key: K, value: V) {
        self.insert_with(key, value, EntryOptions::default()).await;
    }

    /// Inserts with per-entry options (TTL, tags), replacing any entry under
    /// `key`. Also removes a bounded batch of the entries that tag
    /// invalidations have hidden, if any are waiting.
    ///
    /// A load of `key` still running is superseded (its value will not be
    /// stored); one storing its value is waited for, so this insert lands
    /// after it. With no load in flight this costs one atomic load.
    ///
    /// With a Redis level, the value is also written there, and the other
    /// replicas drop their copy of the key. The Redis write is sent when
    /// the call is first polled: if the call is cancelled afterwards, it
    /// still reaches Redis and the other replicas (or is queued for
    /// replay), and if it is cancelled before it is done, this replica
    /// drops its copy of the key instead (on the Redis level's runtime,
    /// after a load of the key storing its value), and again once the
    /// write is in Redis.
    pub async fn insert_with(&self, key: K, value: V, options: EntryOptions) {
        // With a Redis level, the write is in Redis before the value is
        // stored here: an invalidation applied meanwhile (another
        // replica's tag or `invalidate_all`) may have reached Redis after
        // it, so the value is checked against those, as a load's is.
        #[cfg(feature = "redis")]
        let since = self.inner.l2.as_ref().map(|_| {
            let pending = self.inner.shared.flights.pending();
            (pending, self.inner.shared.since())
        });
        #[cfg(feature = "redis")]
        let l2 = self.inner.l2.as_ref().map(|l2| {
            let writing = l2.writing(&key);
            let rest = LocalRest {
                inner: Some(Arc::clone(&self.inner)),
                digest: crate::tier::digest(&key),
                sent: Some(l2.write_inserted(&key, &value, &options, writing)),
                // A load of the key on this replica after the cancelled
                // call's local half may have stored another value than
                // the one the write leaves in Redis.
                always: true,
            };
            (rest, key.clone())
        });
        #[cfg(all(test, feature = "redis"))]
        if let Some(l2) = &self.inner.l2 {
            l2.inserting_hook();
        }
        self.before_write(&key).await;
        #[cfg(feature = "redis")]
        let stored = match since {
            Some((_pending, since)) => self.inner.shared.make_loaded(&key, value, &options, since),
            None => Some(self.inner.shared.make_stored(&key, value, &options)),
        };
        #[cfg(not(feature = "redis"))]
        let stored = Some(self.inner.shared.make_stored(&key, value, &options));
        match stored {
            Some(stored) => self.store(key, stored).await,
            // Not kept: the older copy goes all the same.
            None => self.invalidate_local(&key).await,
        }
        self.remove_pending(REMOVALS_PER_WRITE).await;
        #[cfg(feature = "redis")]
        if let Some((mut rest, key)) = l2 {
            if rest.sent().await.stale {
                // Another write of the key may have reached Redis after
                // this one: the next read takes what Redis holds.
                self.invalidate_local(&key).await;
            }
            rest.disarm();
        }
    }

    /// Stores a registered entry in moka and counts its insert. If this
    /// future is dropped before moka has stored the entry, it is
    /// unregistered.
    async fn store(&self, key: K, stored: Stored<V>) {
        let shared = &*self.inner.shared;
        // moka drops every entry of a cache of capacity 0 without a
        // removal notice: nothing to index.
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.inner.l2
            && self.inner.shared.capacity != Some(0)
        {
            l2.stored(&key, stored.id);
        }
        let landing = Landing::new(self.identity(), stored.id);
        let pending = Unstored::new(shared, &landing, Registration::of(&stored));
        landing.watch(self.inner.cache.insert(key, stored)).await;
        pending.done();
        shared.bump(Hot::Insert);
    }

    /// Orders a write to `key` after the loads of `key` in flight: one
    /// still loading will not store its value; one storing it is waited
    /// for, so the write lands after it.
    async fn before_write<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let flights = &self.inner.shared.flights;
        while let Some(flight) = flights.before_write(key) {
            flight.wait_async(flights.waiter_id(), None).await;
        }
    }

    /// This cache's identity for `Landing` watches.
    fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner.shared) as *const () as usize
    }

    /// The value under `key`, or the one `init` resolves to, inserted with
    /// the default options. Concurrent calls for the same key (from any
    /// task, through any of the loading methods) await one `init`; the
    /// others wait for its value (at most [`CacheBuilder::load_timeout`](crate::CacheBuilder::load_timeout)
    /// per loader, if set). The caller whose `init` ran counts a miss, the
    /// others a hit. If this future is dropped while `init` runs, the
    /// callers waiting for it run their own loaders in turn.
    ///
    /// If the key is written (`insert*`, `invalidate`) or invalidated
    /// (`invalidate_all`, or a tag the loader chose) after `init` began,
    /// the value `init` resolves to is returned to this caller but not
    /// stored: see the crate documentation, "Loading".
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> V {
        self.get_with_options(key, async { (init.await, EntryOptions::default()) })
            .await
    }

    /// [`get_with`](Self::get_with), with per-entry options chosen by the
    /// loader.
    pub async fn get_with_options(
        &self,
        key: K,
        init: impl Future<Output = (V, EntryOptions)>,
    ) -> V {
        match self
            .try_get_with_options(key, async { Ok::<_, Infallible>(init.await) })
            .await
        {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// [`get_with`](Self::get_with) for a fallible loader. An error is
    /// returned, never cached, and shared with the callers waiting on the
    /// same load whose loaders have the same error type `E` (the others run
    /// their own loaders).
    pub async fn try_get_with<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        self.try_get_with_options(key, async {
            init.await.map(|value| (value, EntryOptions::default()))
        })
        .await
    }

    /// [`try_get_with`](Self::try_get_with), with per-entry options chosen
    /// by the loader.
    pub async fn try_get_with_options<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<(V, EntryOptions), E>>,
    ) -> Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        // The single-flight loader behind every `*get_with*` method (see
        // the crate documentation, "Loading").
        let inner = &*self.inner;
        if let Some(stored) = self.fresh(&key).await {
            return Ok(inner.hit(stored));
        }
        let mut init = Some(init);
        let waiter = inner.shared.flights.waiter_id();
        loop {
            let flight = match inner.join(&key) {
                Role::Lead(flight) => flight,
                Role::Wait(flight) => {
                    let deadline = inner.shared.wait_deadline();
                    let waited = flight.wait_async(waiter, deadline).await;
                    if let Some(done) = inner.waited(&key, &flight, waited) {
                        return done;
                    }
                    // Start over: a write may have stored the value.
                    match self.fresh(&key).await {
                        Some(stored) => return Ok(inner.hit(stored)),
                        None => continue,
                    }
                }
            };
            // If this future is dropped from here on, the flight ends and
            // its waiters load again.
            let lead = Lead::new(&inner.shared.flights, &key, flight);
            // Stored between the first look and taking the lead?
            if let Some(stored) = self.fresh(&key).await {
                return Ok(inner.found_while_leading(lead, stored));
            }
            let init = init.take().expect("a call leads at most one load");
            let loaded = inner.load(&key, init).await;
            let (value, kept) = inner.settle(&key, lead, loaded)?;
            if let Some(keep) = kept {
                let outcome = Outcome::Stored(keep.stored.clone());
                #[cfg(all(test, feature = "redis"))]
                if let Some(l2) = &inner.l2 {
                    l2.storing_hook();
                }
                self.store(key.clone(), keep.stored).await;
                keep.lead.finish(outcome);
                self.remove_pending(REMOVALS_PER_WRITE).await;
                #[cfg(feature = "redis")]
                if let Some(ticket) = keep.ticket {
                    inner.write_back(&key, &value, ticket).await;
                }
            }
            return Ok(value);
        }
    }

    /// [`get_with`](Self::get_with) for a loader that may find nothing;
    /// `None` is never cached.
    pub async fn optionally_get_with(
        &self,
        key: K,
        init: impl Future<Output = Option<V>>,
    ) -> Option<V> {
        self.optionally_get_with_options(key, async {
            init.await.map(|value| (value, EntryOptions::default()))
        })
        .await
    }

    /// [`optionally_get_with`](Self::optionally_get_with), with per-entry
    /// options chosen by the loader.
    pub async fn optionally_get_with_options(
        &self,
        key: K,
        init: impl Future<Output = Option<(V, EntryOptions)>>,
    ) -> Option<V> {
        self.try_get_with_options(key, async { init.await.ok_or(NoValue) })
            .await
            .ok()
    }

    /// Removes the entry under `key`, if any. Like an insert, supersedes a
    /// load of `key` still running (its value will not be stored).
    ///
    /// With a Redis level, on every replica, and in Redis (where, for the
    /// tombstone's time to live, loads of the key that began before are
    /// not written).
    pub async fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.inner.l2 {
            // Sent to Redis at once, then applied locally before too: if
            // this call is cancelled while it waits for Redis (whose
            // invalidation goes on), this replica keeps no copy of the key
            // either, and its loads skip Redis until the command is done.
            // If it is cancelled before its local half is done (waiting for
            // a load of the key that is storing its value, or inside moka's
            // removal), that half is finished on the tier's runtime: the
            // link task skips this replica's own announcement.
            let sent = l2.invalidate_key(key);
            let mut rest = LocalRest {
                inner: Some(Arc::clone(&self.inner)),
                digest: crate::tier::digest(key),
                sent: Some(sent),
                always: false,
            };
            self.invalidate_local(key).await;
            rest.sent().await;
            self.invalidate_local(key).await;
            rest.disarm();
            return;
        }
        self.invalidate_local(key).await;
    }

    /// [`invalidate`](Self::invalidate) on this replica's local level only.
    async fn invalidate_local<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.before_write(key).await;
        // The eviction listener counts it, if it was live.
        self.inner.cache.remove(key).await;
    }

    /// The value under `key` from the local level, else from the Redis
    /// level (stored locally on a hit); `get` without a Redis level. Never
    /// runs a loader; a miss is not cached.
    pub async fn fetch(&self, key: &K) -> Option<V> {
        self.optionally_get_with(key.clone(), async { None }).await
    }

    /// Invalidates every entry tagged `tag` and returns how many live
    /// entries that was (entries already expired, invalidated, replaced or
    /// removed do not count).
    ///
    /// After it returns, no read (on any task or thread) returns an entry
    /// carrying `tag` that was inserted before the call; entries inserted
    /// after are unaffected. Costs O(1), plus O(its entries that carry
    /// other tags too), whatever the number of entries with the tag, all
    /// done on the first poll with no call into moka: the tag's version is
    /// bumped (reads then reject older entries with one atomic load) and the
    /// tag's generation is taken whole, with its exact live count (kept on
    /// insert, replacement, removal, eviction and expiry); its entries stop
    /// counting in [`entry_count`](Self::entry_count) at once and are queued
    /// for physical removal as one batch. Later writes remove them in
    /// bounded batches
    /// (calling the eviction listener with
    /// [`RemovalCause::Explicit`](crate::RemovalCause::Explicit)), and
    /// [`run_pending_tasks`](Self::run_pending_tasks) removes what is left.
    /// (Without a Redis level it never waits.)
    pub async fn invalidate_tag(&self, tag: &str) -> u64 {
        self.invalidate_tags(&[tag]).await
    }

    /// Invalidates every entry carrying any of `tags` (see
    /// [`invalidate_tag`](Self::invalidate_tag)); an entry with several of
    /// them counts once.
    ///
    /// With a Redis level, on every replica: the tags' versions in Redis are
    /// bumped first (this waits for Redis, at most the command timeout; if
    /// it cannot be reached, the invalidation is sent once it can).
    pub async fn invalidate_tags<T: AsRef<str>>(&self, tags: &[T]) -> u64 {
        let tags: Vec<&str> = tags.iter().map(AsRef::as_ref).collect();
        self.inner.clear_tags(&tags).await
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
    /// invalidation is sent once it can). Without one it never waits.
    pub async fn invalidate_all(&self) -> u64 {
        self.inner.clear_all().await
    }

    /// Inserts every `(key, value)` with the default options.
    pub async fn warm<I: IntoIterator<Item = (K, V)>>(&self, entries: I) -> WarmReport {
        let mut report = WarmReport::default();
        for (key, value) in entries {
            self.insert(key, value).await;
            report.loaded += 1;
        }
        report
    }

    /// Loads each key with `loader` (one at a time) and inserts the values
    /// (default options); keys whose loader fails are counted and skipped.
    ///
    /// ```
    /// use vigil_cache::future::TaggedCache;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    /// let report = cache
    ///     .warm_with(0..4, |&k| async move { if k == 2 { Err("gone") } else { Ok(k * 10) } })
    ///     .await;
    /// assert_eq!((report.loaded, report.failed), (3, 1));
    /// assert_eq!(cache.get(&3).await, Some(30));
    /// # });
    /// ```
    pub async fn warm_with<E, Fut>(
        &self,
        keys: impl IntoIterator<Item = K>,
        mut loader: impl FnMut(&K) -> Fut,
    ) -> WarmReport
    where
        Fut: Future<Output = Result<V, E>>,
    {
        let mut report = WarmReport::default();
        for key in keys {
            match loader(&key).await {
                Ok(value) => {
                    self.insert(key, value).await;
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
    pub async fn run_pending_tasks(&self) {
        self.remove_pending(usize::MAX).await;
        self.inner.cache.run_pending_tasks().await;
        self.inner.shared.tags.sweep();
    }

    /// Performs up to `max` of the removals queued by tag invalidations. If
    /// the future is dropped part-way, the removals not yet done go back to
    /// the queue.
    async fn remove_pending(&self, max: usize) {
        let shared = &self.inner.shared;
        let mut batch = Requeue {
            shared,
            removals: shared.take_removals(max),
        };
        while let Some((key, id)) = batch.removals.last() {
            self.remove_if_same(key, *id).await;
            batch.removals.pop();
        }
    }

    /// Removes the entry under `key` only if it is entry `id`, returning it.
    async fn remove_if_same(&self, key: &K, id: u64) -> Option<Stored<V>> {
        let result = self
            .inner
            .cache
            .entry_by_ref(key)
            .and_compute_with(|entry| {
                std::future::ready(match entry {
                    Some(entry) if entry.value().id == id => Op::Remove,
                    _ => Op::Nop,
                })
            })
            .await;
        match result {
            CompResult::Removed(entry) => Some(entry.into_value()),
            _ => None,
        }
    }

    /// The live entry under `key`, uncounted.
    async fn fresh(&self, key: &K) -> Option<Stored<V>> {
        self.inner.alive(self.inner.cache.get(key).await)
    }
}

tagged_cache_common! {
    /// A concurrent async cache with per-entry TTL and tags, bulk invalidation
    /// by tag, and hit/miss statistics, on `moka::future::Cache`.
    ///
    /// Cloning is cheap and every clone shares the same cache.
    ///
    /// ```
    /// use vigil_cache::{EntryOptions, future::TaggedCache};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache: TaggedCache<u64, String> = TaggedCache::builder().name("rows").max_capacity(1_000).build();
    ///
    /// let row = cache
    ///     .get_with_options(42, async { ("Ada".to_string(), EntryOptions::default().tag("user:42")) })
    ///     .await;
    /// assert_eq!(row, "Ada");
    /// assert_eq!(cache.get(&42).await.as_deref(), Some("Ada"));
    ///
    /// assert_eq!(cache.invalidate_tag("user:42").await, 1);
    /// assert_eq!(cache.get(&42).await, None);
    /// # });
    /// ```
    future
}

/// An entry registered for moka and not yet known to be stored. Dropped
/// armed (its future was cancelled), it is unregistered if moka never
/// stored it; if moka did, only its insert is left to count.
struct Unstored<'a, K, V> {
    shared: &'a Shared<K, V>,
    landing: &'a Landing,
    entry: Mutex<Option<Registration>>,
}

impl<'a, K, V> Unstored<'a, K, V> {
    fn new(shared: &'a Shared<K, V>, landing: &'a Landing, entry: Registration) -> Self {
        Self {
            shared,
            landing,
            entry: Mutex::new(Some(entry)),
        }
    }

    /// moka's call returned: nothing to undo.
    fn done(&self) {
        self.entry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

impl<K, V> Drop for Unstored<'_, K, V> {
    fn drop(&mut self) {
        let entry = self
            .entry
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(entry) = entry {
            if self.landing.landed() {
                self.shared.bump(Hot::Insert);
            } else {
                self.shared.unregister(&entry);
            }
        }
    }
}

/// Removals taken from the queue by a drain; the ones not done when it is
/// dropped (the drain's future was cancelled) are queued again.
struct Requeue<'a, K, V> {
    shared: &'a Shared<K, V>,
    removals: Vec<(K, u64)>,
}

impl<K, V> Drop for Requeue<'_, K, V> {
    fn drop(&mut self) {
        if !self.removals.is_empty() {
            self.shared
                .requeue_removals(std::mem::take(&mut self.removals));
        }
    }
}

/// The local half of a Redis-level `invalidate(key)` or `insert*` until
/// it is done: if dropped armed (the call was cancelled after its Redis
/// command was sent), every local key with `digest` (held, or being
/// loaded) is dropped on the tier's runtime, and again once the command
/// is done if another write of the key may have reached Redis after it
/// (see `tier::Writing`), or always for an insert.
#[cfg(feature = "redis")]
struct LocalRest<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    inner: Option<Arc<AsyncInner<K, V>>>,
    digest: String,
    /// The Redis command, until the call has waited for it.
    sent: Option<futures_util::future::BoxFuture<'static, crate::tier::Written>>,
    /// Cancelled, the local copy goes again once the command is in Redis,
    /// whatever else it answers.
    always: bool,
}

/// The shared state of this flavour's caches.
#[cfg(feature = "redis")]
type AsyncInner<K, V> = crate::handle::Inner<K, V, moka::future::Cache<K, Stored<V>>>;

#[cfg(feature = "redis")]
impl<K, V> LocalRest<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn disarm(mut self) {
        self.inner = None;
    }

    /// Waits for the Redis command; what it came to (nothing if already
    /// waited for). Cancelled, the command is left to `drop`.
    async fn sent(&mut self) -> crate::tier::Written {
        let Some(sent) = &mut self.sent else {
            return crate::tier::Written::default();
        };
        let written = sent.await;
        self.sent = None;
        written
    }
}

#[cfg(feature = "redis")]
impl<K, V> Drop for LocalRest<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        use crate::tier::LocalKey;
        let Some(inner) = self.inner.take() else {
            return;
        };
        let Some(l2) = &inner.l2 else {
            return;
        };
        let index = l2.keys();
        let keys = index.keys(&self.digest);
        let (digest, sent, always) = (
            std::mem::take(&mut self.digest),
            self.sent.take(),
            self.always,
        );
        crate::tier::spawn(async move {
            for key in keys {
                Arc::clone(&inner).drop_key(key).await;
            }
            let written = match sent {
                Some(sent) => sent.await,
                None => crate::tier::Written::default(),
            };
            if written.stale || (always && written.reached) {
                for key in index.keys(&digest) {
                    Arc::clone(&inner).drop_key(key).await;
                }
            }
        });
    }
}

#[cfg(feature = "redis")]
impl<K, V> crate::tier::LocalKey<K>
    for crate::handle::Inner<K, V, moka::future::Cache<K, Stored<V>>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop_key(self: Arc<Self>, key: K) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let cache = TaggedCache { inner: self };
            cache.invalidate_local(&key).await;
        })
    }
}
