//! What both flavours share: [`Inner`], a moka cache of either flavour with
//! the cache's [`Shared`] state, and the steps of the `TaggedCache` methods
//! that do not depend on whether moka's calls are `async` (counting reads,
//! the decisions of the single-flight loader, statistics, iteration).

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::CacheStats;
use crate::EntryOptions;
use crate::entry::Stored;
use crate::export::Source;
use crate::flight::{Flight, Lead, Outcome, Role, Waited};
use crate::shared::Shared;
use crate::stats::Hot;

/// The calls on a moka cache that are the same in both flavours.
pub(crate) trait Moka<K, V>: Send + Sync + 'static {
    /// moka's iterator over its entries.
    type Iter<'a>: Iterator<Item = (Arc<K>, Stored<V>)>
    where
        Self: 'a;

    fn weighted_size(&self) -> u64;
    fn invalidate_all(&self);
    fn iter(&self) -> Self::Iter<'_>;
}

/// Implements [`Moka`] for one flavour's cache type by forwarding to its
/// inherent methods of the same names.
macro_rules! forward_moka {
    ($cache:ident) => {
        impl<K, V> Moka<K, V> for moka::$cache::Cache<K, Stored<V>>
        where
            K: Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            type Iter<'a> = moka::$cache::Iter<'a, K, Stored<V>>;

            fn weighted_size(&self) -> u64 {
                Self::weighted_size(self)
            }

            fn invalidate_all(&self) {
                Self::invalidate_all(self)
            }

            fn iter(&self) -> Self::Iter<'_> {
                Self::iter(self)
            }
        }
    };
}

#[cfg(feature = "sync")]
forward_moka!(sync);
#[cfg(feature = "future")]
forward_moka!(future);

/// The `TaggedCache` of the flavour `$flavour` (`sync` or `future`, as in
/// `moka::$flavour::Cache`), documented by the attributes given, with what
/// the two flavours have in common: `Clone`, `Debug`,
/// `CacheBuilder::build`, and the methods that are neither `async` nor
/// different between the flavours. Expands in the flavour's module, which
/// adds the other methods.
macro_rules! tagged_cache_common {
    ($(#[$doc:meta])* $flavour:ident) => {
        $(#[$doc])*
        pub struct TaggedCache<K, V> {
            inner: ::std::sync::Arc<
                $crate::handle::Inner<K, V, moka::$flavour::Cache<K, $crate::entry::Stored<V>>>,
            >,
        }

        impl<K, V> Clone for TaggedCache<K, V> {
            fn clone(&self) -> Self {
                Self {
                    inner: ::std::sync::Arc::clone(&self.inner),
                }
            }
        }

        impl<K, V> ::std::fmt::Debug for TaggedCache<K, V> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.inner.fmt(f)
            }
        }

        impl<K, V> $crate::CacheBuilder<K, V, TaggedCache<K, V>>
        where
            K: ::std::hash::Hash + Eq + Clone + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            /// Builds the cache.
            pub fn build(#[allow(unused_mut)] mut self) -> TaggedCache<K, V> {
                use ::std::sync::{Arc, Weak};
                use $crate::entry::{EntryExpiry, Stored};
                use $crate::export::Source;
                use $crate::handle::Inner;

                let shared = Arc::new($crate::shared::Shared::new(&self));
                let listener = Arc::clone(&shared);
                #[cfg(feature = "redis")]
                let l2 = self.redis.take().and_then(|spec| {
                    $crate::tier::Tier::new(spec, self.name.as_deref(), shared.clock.clone(), self.default_ttl)
                });
                #[cfg(feature = "redis")]
                let l2_keys = l2.as_ref().map($crate::tier::Tier::keys);
                let mut moka = moka::$flavour::Cache::builder()
                    .eviction_policy(self.eviction_policy.to_moka())
                    .expire_after(EntryExpiry {
                        clock: shared.clock.clone(),
                        cache: Arc::as_ptr(&shared) as *const () as usize,
                    })
                    .eviction_listener(move |key, stored, cause| {
                        // The key index follows the local entries; a
                        // replaced entry's successor is already recorded.
                        #[cfg(feature = "redis")]
                        if let Some(keys) = &l2_keys
                            && cause != $crate::RemovalCause::Replaced
                        {
                            keys.removed(&$crate::tier::digest(&*key), stored.id);
                        }
                        listener.on_removal(key, stored, cause)
                    });
                if let Some(name) = &self.name {
                    moka = moka.name(name);
                }
                if let Some(max) = self.max_capacity {
                    moka = moka.max_capacity(max);
                }
                if let Some(weigher) = self.weigher {
                    moka = moka.weigher(move |key, stored: &Stored<V>| weigher(key, &stored.value));
                }
                if let Some(tti) = self.time_to_idle {
                    moka = moka.time_to_idle(tti);
                }
                let inner = Arc::new(Inner {
                    cache: moka.build(),
                    shared,
                    #[cfg(feature = "redis")]
                    l2,
                });
                #[cfg(feature = "redis")]
                if let Some(l2) = &inner.l2 {
                    let local: Weak<dyn $crate::tier::Local<K>> = Arc::downgrade(&inner) as _;
                    l2.start(local);
                }
                if inner.shared.name.is_some() {
                    let source: Weak<dyn Source> = Arc::downgrade(&inner) as Weak<dyn Source>;
                    $crate::export::register(source);
                }
                TaggedCache { inner }
            }
        }

        impl<K, V> TaggedCache<K, V>
        where
            K: ::std::hash::Hash + Eq + Clone + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            /// Starts a [`CacheBuilder`]($crate::CacheBuilder).
            pub fn builder() -> $crate::CacheBuilder<K, V, TaggedCache<K, V>> {
                $crate::CacheBuilder::new()
            }

            /// An unnamed cache holding at most `max_capacity` entries, without TTL.
            pub fn new(max_capacity: u64) -> Self {
                Self::builder().max_capacity(max_capacity).build()
            }

            /// The live entries (expired and invalidated ones are skipped). Weakly
            /// consistent: entries inserted or removed during the iteration may or
            /// may not be seen.
            pub fn iter(&self) -> impl Iterator<Item = (::std::sync::Arc<K>, V)> + '_ {
                self.inner.iter()
            }

            /// The live entries, exactly: an entry counts from its insert until it
            /// is replaced, removed, evicted (when moka's maintenance applies the
            /// eviction), expired on the cache's clock, or invalidated (by key, tag
            /// or `invalidate_all`). Entries hidden by an invalidation stop counting
            /// at once, before their physical removal. O(1), plus taking the
            /// expiry records that have come due.
            pub fn entry_count(&self) -> u64 {
                self.inner.shared.entry_count()
            }

            /// Total weight held, per moka: eventually consistent (it lags behind
            /// recent writes until moka's maintenance runs) and includes dead
            /// entries not yet removed physically, unlike
            /// [`entry_count`](Self::entry_count).
            pub fn weighted_size(&self) -> u64 {
                self.inner.cache.weighted_size()
            }

            /// A snapshot of the statistics.
            pub fn stats(&self) -> $crate::CacheStats {
                $crate::export::Source::stats(&*self.inner)
            }

            /// Whether the cache has a Redis level that is connected and
            /// resynchronised: loading calls read and write it (false
            /// without a Redis level, while connecting, and while Redis
            /// is unreachable).
            #[cfg(feature = "redis")]
            pub fn redis_connected(&self) -> bool {
                self.inner.l2.as_ref().is_some_and(|l2| l2.is_connected())
            }

            /// The test hooks of the Redis level (it must have one).
            #[cfg(all(test, feature = "redis"))]
            #[allow(dead_code, reason = "not every flavour's tests use it")]
            pub(crate) fn l2_hooks(&self) -> &$crate::tier::Hooks {
                &self.inner.l2.as_ref().expect("a Redis level").hooks
            }

            /// Whether no invalidation or insert of this cache is on its
            /// way to Redis or queued (it must have a Redis level).
            #[cfg(all(test, feature = "redis"))]
            #[allow(dead_code, reason = "not every flavour's tests use it")]
            pub(crate) fn l2_settled(&self) -> bool {
                self.l2().settled(true)
            }

            /// The Redis level (it must have one), for tests.
            #[cfg(all(test, feature = "redis"))]
            #[allow(dead_code, reason = "not every flavour's tests use it")]
            pub(crate) fn l2(&self) -> &$crate::tier::Tier<K, V> {
                self.inner.l2.as_ref().expect("a Redis level")
            }

            /// How many resynchronisations of the Redis level read every
            /// tag in use (it must have a Redis level).
            #[cfg(all(test, feature = "redis"))]
            #[allow(dead_code, reason = "not every flavour's tests use it")]
            pub(crate) fn l2_full_resyncs(&self) -> u64 {
                self.inner.l2.as_ref().expect("a Redis level").full_resyncs()
            }

            /// The name given to the builder.
            pub fn name(&self) -> Option<&str> {
                self.inner.shared.name.as_deref()
            }

            /// Publishes this cache's statistics to the current `metrics` recorder
            /// (see [`publish_metrics`](crate::publish_metrics)); nothing for an
            /// unnamed cache.
            pub fn publish_metrics(&self) {
                $crate::export::publish(&self.stats());
            }
        }

        cache_admin!();
    };
}

/// One cache: moka's (`C`) and the tag, count and load state kept beside
/// it. Each flavour's `TaggedCache` is an `Arc` of this.
pub(crate) struct Inner<K, V, C> {
    pub(crate) cache: C,
    pub(crate) shared: Arc<Shared<K, V>>,
    /// The second level, if the cache has one.
    #[cfg(feature = "redis")]
    pub(crate) l2: Option<crate::tier::Tier<K, V>>,
}

impl<K, V, C> Source for Inner<K, V, C>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Moka<K, V>,
{
    fn stats(&self) -> CacheStats {
        #[allow(unused_mut)]
        let mut stats = self.shared.stats(self.cache.weighted_size());
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            l2.fill(&mut stats);
        }
        stats
    }
}

impl<K, V, C> fmt::Debug for Inner<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaggedCache")
            .field("name", &self.shared.name)
            .field("capacity", &self.shared.capacity)
            .field("entry_count", &self.shared.entry_count())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl<K, V, C> crate::tier::Local<K> for Inner<K, V, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Moka<K, V>,
    Self: crate::tier::LocalKey<K>,
{
    fn drop_tags(&self, tags: &[&str]) {
        self.shared.invalidate_tags(tags.iter().copied());
    }

    fn drop_all(&self) {
        self.invalidate_all();
    }

    fn tags_in_use(&self) -> Vec<String> {
        self.shared.tags.names()
    }
}

/// Runs its closure when dropped: at the end of the scope, or when the
/// future holding it is cancelled.
pub(crate) struct Finally<F: FnOnce()>(pub(crate) Option<F>);

impl<F: FnOnce()> Drop for Finally<F> {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            run();
        }
    }
}

/// With a Redis level, a lead's registration with it (see
/// `tier::Ticket`); nothing without one.
#[cfg(feature = "redis")]
type TicketOf<K> = Option<crate::tier::Ticket<K>>;
#[cfg(not(feature = "redis"))]
type TicketOf<K> = std::marker::PhantomData<K>;

/// What a lead's load brought back: the loader's result (or, with a Redis
/// level, the entry found there), and its ticket, held until the value is
/// stored.
pub(crate) struct Loaded<K, V, E> {
    result: Result<(V, EntryOptions), E>,
    ticket: TicketOf<K>,
}

impl<K, V, E> Loaded<K, V, E> {
    fn local(result: Result<(V, EntryOptions), E>) -> Self {
        Self {
            result,
            ticket: TicketOf::default(),
        }
    }
}

/// A loaded value the cache keeps: the entry to store, the lead to finish
/// once it is stored, and the load's ticket, to drop after the store (with
/// a Redis level, it tells what to write back there).
pub(crate) struct Keep<'a, K: Hash + Eq + Clone, V: Clone> {
    pub(crate) stored: Stored<V>,
    pub(crate) lead: Lead<'a, K, Stored<V>>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) ticket: TicketOf<K>,
}

/// What a blocking insert writes to the Redis level (see
/// `Inner::l2_insert`).
#[cfg(all(feature = "redis", feature = "sync"))]
pub(crate) type L2Insert<'a, K, V> = (
    &'a crate::tier::Tier<K, V>,
    K,
    V,
    EntryOptions,
    crate::tier::Writing<K>,
);

/// A loaded value, with what to store if the cache is to keep it.
type Settled<'a, K, V> = (V, Option<Keep<'a, K, V>>);

/// A flight of a load of a cache whose values are `V`.
type FlightOf<V> = Arc<Flight<Stored<V>>>;

impl<K, V, C> Inner<K, V, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Moka<K, V>,
{
    /// The counted result of a read that found `found` in moka: its value
    /// if it is alive (a hit), else `None` (a miss).
    #[inline]
    pub(crate) fn counted_read(&self, found: Option<Stored<V>>) -> Option<V> {
        match found {
            Some(stored) if self.shared.is_fresh(&stored) => {
                self.shared.bump(Hot::Hit);
                Some(stored.value)
            }
            _ => {
                self.shared.bump(Hot::Miss);
                None
            }
        }
    }

    /// Whether `found` is a live entry (uncounted).
    pub(crate) fn alive(&self, found: Option<Stored<V>>) -> Option<Stored<V>> {
        found.filter(|stored| self.shared.is_fresh(stored))
    }

    /// A live entry found by a loading call, counted as a hit.
    pub(crate) fn hit(&self, stored: Stored<V>) -> V {
        self.shared.bump(Hot::Hit);
        stored.value
    }

    /// Joins the load of `key` in flight, or leads a new one.
    pub(crate) fn join(&self, key: &K) -> Role<Stored<V>> {
        self.shared.flights.join(key, || self.shared.since())
    }

    /// What a caller that waited for another's load of `key` does next:
    /// `Some` to return (the stored value if it is still alive, counted as
    /// a hit; the loader's error if it has the caller's error type `E`),
    /// `None` to look again and start over (after taking the load over, if
    /// the wait timed out).
    pub(crate) fn waited<E>(
        &self,
        key: &K,
        flight: &FlightOf<V>,
        waited: Waited<Stored<V>>,
    ) -> Option<Result<V, Arc<E>>>
    where
        E: Send + Sync + 'static,
    {
        match waited {
            // Checked again: an invalidation may have hidden the entry
            // before this call joined the load.
            Waited::Done(Outcome::Stored(stored)) if self.shared.is_fresh(&stored) => {
                return Some(Ok(self.hit(stored)));
            }
            Waited::Done(Outcome::Stored(_) | Outcome::Retry) => {}
            Waited::Done(Outcome::Failed(error)) => {
                if let Ok(error) = error.downcast::<E>() {
                    self.shared.bump(Hot::Miss);
                    return Some(Err(error));
                }
            }
            Waited::TimedOut => self.shared.flights.take_over(key, flight),
        }
        None
    }

    /// The lead found `stored` (written since its first look): it ends the
    /// load with it, as a hit.
    pub(crate) fn found_while_leading(&self, lead: Lead<'_, K, Stored<V>>, stored: Stored<V>) -> V {
        let value = stored.value.clone();
        lead.finish(Outcome::Stored(stored));
        self.shared.bump(Hot::Hit);
        value
    }

    /// What the lead does with its load's result: counts the miss; an
    /// error ends the load (going to the waiters whose loaders share its
    /// type) and is returned. A value is returned with what to store and
    /// the lead to finish once it is stored, or without (the load ended
    /// with `Retry`) if a write or an invalidation since the load began
    /// means the cache must not keep it.
    pub(crate) fn settle<'a, E>(
        &self,
        key: &K,
        lead: Lead<'a, K, Stored<V>>,
        loaded: Loaded<K, V, E>,
    ) -> Result<Settled<'a, K, V>, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        #[cfg(all(test, feature = "redis"))]
        if let Some(l2) = &self.l2 {
            l2.loaded_hook();
        }
        self.shared.bump(Hot::Miss);
        let Loaded { result, ticket } = loaded;
        let (value, options) = match result {
            Ok(loaded) => loaded,
            Err(error) => {
                let error = Arc::new(error);
                lead.finish(Outcome::Failed(error.clone()));
                return Err(error);
            }
        };
        let flight = lead.flight();
        let register = || {
            self.shared
                .make_loaded(key, value.clone(), &options, flight.since())
        };
        let stored = if flight.begin_commit() {
            // With a Redis level, not kept across a resynchronisation.
            #[cfg(feature = "redis")]
            let stored = match &ticket {
                Some(ticket) => ticket.commit(register),
                None => register(),
            };
            #[cfg(not(feature = "redis"))]
            let stored = register();
            stored
        } else {
            None
        };
        match stored {
            Some(stored) => Ok((
                value,
                Some(Keep {
                    stored,
                    lead,
                    ticket,
                }),
            )),
            // Superseded by a write, older than an invalidation, or (with
            // a Redis level) in flight across a resynchronisation:
            // returned to this caller only.
            None => {
                lead.finish(Outcome::Retry);
                Ok((value, None))
            }
        }
    }

    /// With a Redis level: the level, copies of what an insert writes
    /// there once the entry is stored locally, and the write's
    /// registration (see `tier::Writing`), made now, before the store.
    #[cfg(all(feature = "redis", feature = "sync"))]
    pub(crate) fn l2_insert(
        &self,
        key: &K,
        value: &V,
        options: &EntryOptions,
    ) -> Option<L2Insert<'_, K, V>> {
        self.l2.as_ref().map(|l2| {
            let writing = l2.writing(key);
            (l2, key.clone(), value.clone(), options.clone(), writing)
        })
    }

    /// The lead's load of `key`: with a Redis level, a value found there
    /// is taken instead of running `init`, and the load is registered with
    /// the level (so that another replica's write of the key supersedes
    /// it) until its ticket is dropped; else `init`.
    #[cfg(any(feature = "future", feature = "redis"))]
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    pub(crate) async fn load<E>(
        &self,
        key: &K,
        init: impl std::future::Future<Output = Result<(V, EntryOptions), E>>,
    ) -> Loaded<K, V, E> {
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            let (result, ticket) = l2.load(key, init).await;
            return Loaded {
                result,
                ticket: Some(ticket),
            };
        }
        Loaded::local(init.await)
    }

    /// [`load`](Self::load) for the blocking flavour: waits for Redis only
    /// with a Redis level.
    #[cfg(feature = "sync")]
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    pub(crate) fn load_blocking<E>(
        &self,
        key: &K,
        init: impl FnOnce() -> Result<(V, EntryOptions), E>,
    ) -> Loaded<K, V, E> {
        #[cfg(feature = "redis")]
        if self.l2.is_some() {
            return crate::tier::block_on(self.load(key, async { init() }));
        }
        Loaded::local(init())
    }

    /// Writes a value the lead stored back to Redis, if its ticket says to
    /// (a miss there), once it is stored locally.
    #[cfg(feature = "redis")]
    pub(crate) async fn write_back(&self, key: &K, value: &V, ticket: crate::tier::Ticket<K>) {
        if let (Some(l2), Some((options, seq))) = (&self.l2, ticket.write_back()) {
            l2.write_loaded(key, value, &options, seq).await;
        }
    }

    /// `invalidate_tags` of either flavour: in Redis first (so that no
    /// local load can find an entry there that the local invalidation has
    /// already passed), then locally, also if the call is cancelled while
    /// it waits for Redis.
    pub(crate) async fn clear_tags(&self, tags: &[&str]) -> u64 {
        let hidden = AtomicU64::new(0);
        let local = Finally(Some(|| {
            hidden.store(
                self.shared.invalidate_tags(tags.iter().copied()),
                Ordering::Relaxed,
            );
        }));
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            l2.invalidate_tags(tags).await;
        }
        drop(local);
        hidden.load(Ordering::Relaxed)
    }

    /// `invalidate_all` of either flavour, in Redis first, then locally
    /// (also if the call is cancelled while it waits for Redis).
    pub(crate) async fn clear_all(&self) -> u64 {
        let hidden = AtomicU64::new(0);
        let local = Finally(Some(|| {
            hidden.store(self.invalidate_all(), Ordering::Relaxed);
        }));
        #[cfg(feature = "redis")]
        if let Some(l2) = &self.l2 {
            l2.invalidate_all().await;
        }
        drop(local);
        hidden.load(Ordering::Relaxed)
    }

    /// The logical and the physical halves of `invalidate_all`.
    pub(crate) fn invalidate_all(&self) -> u64 {
        let live = self.shared.invalidate_all();
        self.cache.invalidate_all();
        live
    }

    /// The live entries (see `TaggedCache::iter`).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Arc<K>, V)> + '_ {
        self.cache
            .iter()
            .filter(|(_, stored)| self.shared.is_fresh(stored))
            .map(|(key, stored)| (key, stored.value))
    }
}
