//! [`CacheBuilder`], shared by both flavours: `C` is the cache type it
//! builds (`sync::TaggedCache` or `future::TaggedCache`), as in moka.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::{EvictionPolicy, RemovalCause};

pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync + 'static>;
pub(crate) type Listener<K, V> = Arc<dyn Fn(Arc<K>, V, RemovalCause) + Send + Sync + 'static>;

/// Configures and builds a `TaggedCache`; start from
/// `sync::TaggedCache::builder()` or `future::TaggedCache::builder()`.
///
/// ```
/// # #[cfg(feature = "sync")] {
/// use std::time::Duration;
/// use vigil_cache::{EvictionPolicy, sync::TaggedCache};
///
/// let cache: TaggedCache<String, Vec<u8>> = TaggedCache::builder()
///     .name("responses")
///     .weigher(|key: &String, value: &Vec<u8>| (key.len() + value.len()) as u32)
///     .max_capacity(64 * 1024 * 1024) // bytes, with a weigher
///     .default_ttl(Duration::from_secs(300))
///     .eviction_policy(EvictionPolicy::Lru)
///     .build();
/// assert_eq!(cache.name(), Some("responses"));
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct CacheBuilder<K, V, C> {
    pub(crate) name: Option<String>,
    pub(crate) max_capacity: Option<u64>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) default_ttl: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) eviction_policy: EvictionPolicy,
    pub(crate) eviction_listener: Option<Listener<K, V>>,
    pub(crate) clock: quanta::Clock,
    pub(crate) load_timeout: Option<Duration>,
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::tier::TierSpec<K, V>>,
    flavour: PhantomData<fn() -> C>,
}

impl<K, V, C> CacheBuilder<K, V, C> {
    pub(crate) fn new() -> Self {
        Self {
            name: None,
            max_capacity: None,
            weigher: None,
            default_ttl: None,
            time_to_idle: None,
            eviction_policy: EvictionPolicy::default(),
            eviction_listener: None,
            clock: quanta::Clock::new(),
            load_timeout: None,
            #[cfg(feature = "redis")]
            redis: None,
            flavour: PhantomData,
        }
    }

    /// Names the cache. Named caches are exported to the `metrics` facade
    /// (label `cache` = the name) by [`publish_metrics`](crate::publish_metrics).
    pub fn name(self, name: impl Into<String>) -> Self {
        self.set(|s| s.name = Some(name.into()))
    }

    /// Bounds the cache: at most `max` entries, or a total weight of `max`
    /// with a [`weigher`](Self::weigher). Unbounded by default.
    pub fn max_capacity(self, max: u64) -> Self {
        self.set(|s| s.max_capacity = Some(max))
    }

    /// Weighs each entry (for example its size in bytes) for
    /// [`max_capacity`](Self::max_capacity).
    pub fn weigher(self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.set(|s| s.weigher = Some(Arc::new(weigher)))
    }

    /// Time to live of entries inserted without their own
    /// [`EntryOptions::ttl`](crate::EntryOptions::ttl).
    ///
    /// Expiry is decided by the builder's [`clock`](Self::clock): a read of
    /// an expired entry misses. moka also removes expired entries
    /// physically, in real time.
    pub fn default_ttl(self, ttl: Duration) -> Self {
        self.set(|s| s.default_ttl = Some(ttl))
    }

    /// Removes entries not read or written for `tti`. Delegated to moka, so
    /// it runs on real time and ignores the builder's [`clock`](Self::clock).
    pub fn time_to_idle(self, tti: Duration) -> Self {
        self.set(|s| s.time_to_idle = Some(tti))
    }

    /// Chooses moka's eviction policy (default [`EvictionPolicy::TinyLfu`]).
    pub fn eviction_policy(self, policy: EvictionPolicy) -> Self {
        self.set(|s| s.eviction_policy = policy)
    }

    /// Calls `listener` with every entry that leaves the cache and why.
    ///
    /// The cause is moka's, except that an entry that had already expired
    /// by the cache's clock is reported as [`RemovalCause::Expired`], and
    /// one invalidated by tag or `invalidate_all` as
    /// [`RemovalCause::Explicit`]. A panic in the listener is caught and
    /// ignored (moka would otherwise stop calling it, and with it the tag
    /// bookkeeping).
    pub fn eviction_listener(
        self,
        listener: impl Fn(Arc<K>, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.set(|s| s.eviction_listener = Some(Arc::new(listener)))
    }

    /// Limits how long a loading call (`get_with`, `try_get_with`,
    /// `optionally_get_with` and their `_options` variants, and so
    /// `#[cached]` functions) waits for another caller's loader of the same
    /// key. Without it a caller waits as long as that loader runs.
    ///
    /// Once `timeout` has passed on the cache's [`clock`](Self::clock)
    /// while the loader it waits for is still running, a caller (whatever
    /// the method: no error is made up for `try_` methods) gives up on that
    /// loader and runs its own: its loader becomes the key's, the slow one
    /// is superseded (its value, when it comes, is returned to its own
    /// caller but not stored), and the other callers that waited for it
    /// move to the new loader, each with a new wait limit. So a caller
    /// waits at most `timeout` for each loader it waits for, and one loader
    /// at a time is the key's. A loader that is storing its value (a short,
    /// bounded step) is always waited for.
    ///
    /// The clock is read again at least every 10 ms of real time while a
    /// caller waits, so a mock clock advanced by a test is noticed within
    /// that. The async cache's timed waits are woken by one timer thread
    /// (`vigil-cache-timer`), started by the first of them in the process.
    ///
    /// ```
    /// # #[cfg(feature = "sync")] {
    /// use std::time::Duration;
    /// use vigil_cache::sync::TaggedCache;
    ///
    /// let cache: TaggedCache<u32, String> = TaggedCache::builder()
    ///     .load_timeout(Duration::from_secs(2))
    ///     .build();
    /// assert_eq!(cache.get_with(1, || "loaded".to_string()), "loaded");
    /// # }
    /// ```
    pub fn load_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.load_timeout = Some(timeout))
    }

    /// The time source for TTLs (default `quanta::Clock::new()`); tests pass
    /// `quanta::Clock::mock()` and advance it instead of sleeping.
    pub fn clock(self, clock: quanta::Clock) -> Self {
        self.set(|s| s.clock = clock)
    }

    /// Applies one setting.
    fn set(mut self, setting: impl FnOnce(&mut Self)) -> Self {
        setting(&mut self);
        self
    }
}

#[cfg(feature = "redis")]
impl<K, V, C> CacheBuilder<K, V, C>
where
    K: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    V: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    /// Adds a second level in Redis, shared by every replica that builds
    /// the cache with the same prefix (feature `redis`). Takes a URL or
    /// [`RedisOptions`](crate::RedisOptions).
    ///
    /// A loading call (`get_with`, `try_get_with`, ... and `#[cached]`
    /// functions) that misses the local level reads Redis before it runs
    /// its loader, and a loaded value is written to both levels with its
    /// time to live and tags; `insert*` writes both levels.
    /// `invalidate(key)`, `invalidate_tag(s)` and `invalidate_all` apply to
    /// every replica. `get` and `contains_key` read the local level only
    /// (their key is borrowed; [`fetch`](crate::future::TaggedCache::fetch)
    /// reads both). Values are encoded with postcard behind a versioned
    /// header; a value that does not decode is a miss.
    ///
    /// The cache needs a [`name`](Self::name) or a
    /// [`RedisOptions::prefix`](crate::RedisOptions::prefix), which names
    /// its keys in Redis: without either, `build` logs an error and the
    /// cache has no Redis level (two unrelated unnamed caches would
    /// otherwise share their entries).
    ///
    /// `build` stays infallible: the cache connects in the background, and
    /// works from its local level and its loaders while Redis is
    /// unreachable (then as when Redis goes down later: see `docs/cache.md`).
    ///
    /// ```no_run
    /// # #[cfg(feature = "sync")] {
    /// use std::time::Duration;
    /// use vigil_cache::{EntryOptions, RedisOptions, sync::TaggedCache};
    ///
    /// let prices: TaggedCache<String, u64> = TaggedCache::builder()
    ///     .name("prices")
    ///     .max_capacity(10_000)
    ///     .default_ttl(Duration::from_secs(60))
    ///     .redis(RedisOptions::new("redis://127.0.0.1:6379/").command_timeout(Duration::from_millis(20)))
    ///     .build();
    /// let price = prices.get_with_options("sku-1".to_string(), || {
    ///     (1_999, EntryOptions::default().tag("catalog"))
    /// });
    /// assert_eq!(price, 1_999);
    /// prices.invalidate_tag("catalog"); // on every replica
    /// # }
    /// ```
    pub fn redis(mut self, options: impl Into<crate::RedisOptions>) -> Self {
        let options = options.into();
        let codec = Arc::new(crate::tier::Postcard::<K, V>::new(&options.schema));
        self.redis = Some(crate::tier::TierSpec { options, codec });
        self
    }
}

impl<K, V, C> fmt::Debug for CacheBuilder<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("name", &self.name)
            .field("max_capacity", &self.max_capacity)
            .field("weigher", &self.weigher.is_some())
            .field("default_ttl", &self.default_ttl)
            .field("time_to_idle", &self.time_to_idle)
            .field("eviction_policy", &self.eviction_policy)
            .field("eviction_listener", &self.eviction_listener.is_some())
            .field("load_timeout", &self.load_timeout)
            .finish_non_exhaustive()
    }
}
