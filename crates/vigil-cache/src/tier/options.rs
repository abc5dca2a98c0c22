//! [`RedisOptions`]: where the second level lives and how it behaves when
//! Redis is slow or gone.

use std::time::Duration;

/// The longest duration handed to Redis (an entry's time to live, the
/// tombstone's): about 100 years. Longer ones are clamped to it, since
/// Redis refuses an expiry past its own range (and a script failing
/// halfway would leave an entry without a time to live).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The shortest timeout or interval (1 ms): zero would fail every command
/// or spin.
const MIN_DURATION: Duration = Duration::from_millis(1);

/// `duration` within [`MIN_DURATION`, `MAX_DURATION`].
fn clamped(duration: Duration) -> Duration {
    duration.clamp(MIN_DURATION, MAX_DURATION)
}

/// The second level's settings, given to
/// [`CacheBuilder::redis`](crate::CacheBuilder::redis). A URL alone (`&str`
/// or `String`) converts into the defaults.
///
/// ```
/// use std::time::Duration;
/// use vigil_cache::RedisOptions;
///
/// let options = RedisOptions::new("redis://127.0.0.1:6379/")
///     .prefix("shop:prices")
///     .command_timeout(Duration::from_millis(20))
///     .retry_interval(Duration::from_millis(500))
///     .schema("price-v2");
/// assert_eq!(options.url(), "redis://127.0.0.1:6379/");
/// let defaults = RedisOptions::from("redis://cache:6379/");
/// assert_eq!(defaults.command_timeout_value(), Duration::from_millis(50));
/// // Durations Redis or the timers could not take are clamped.
/// let clamped = defaults.retry_interval(Duration::ZERO).tombstone_ttl(Duration::MAX);
/// assert_eq!(clamped.retry_interval_value(), Duration::from_millis(1));
/// assert!(clamped.tombstone_ttl_value() < Duration::from_secs(200 * 365 * 24 * 3600));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "options do nothing until given to `CacheBuilder::redis`"]
pub struct RedisOptions {
    pub(crate) url: String,
    pub(crate) prefix: Option<String>,
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) tombstone_ttl: Duration,
    pub(crate) schema: String,
}

impl RedisOptions {
    /// The defaults for the Redis at `url` (`redis://[user:password@]host:port/[db]`;
    /// `rediss://` needs a TLS feature of the `redis` crate).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: None,
            command_timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_millis(500),
            retry_interval: Duration::from_secs(1),
            tombstone_ttl: Duration::from_secs(60),
            schema: String::new(),
        }
    }

    /// The prefix of every Redis key and of the invalidation channel of
    /// this cache (default `vigil:{cache name}`). An unnamed cache needs
    /// one: without a name or a prefix the Redis level is disabled (an
    /// error is logged; the cache works from its local level). Caches that
    /// share a prefix share their entries: give each cache its own, and the
    /// replicas of one cache the same.
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.set(|s| s.prefix = Some(prefix.into()))
    }

    /// How long one Redis command may take before it counts as a failure
    /// (kind `timeout`) and the read or write falls back to the local level
    /// and the loader (default 50 ms). Clamped to at least 1 ms.
    pub fn command_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.command_timeout = clamped(timeout))
    }

    /// How long connecting (and the resynchronisation that follows) may take
    /// (default 500 ms). Clamped to at least 1 ms.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.connect_timeout = clamped(timeout))
    }

    /// The circuit breaker's interval (default 1 s): after a failure, Redis
    /// is left alone for this long, then one call probes it; a lost
    /// connection is retried once per interval. Clamped to at least 1 ms.
    pub fn retry_interval(self, interval: Duration) -> Self {
        self.set(|s| s.retry_interval = clamped(interval))
    }

    /// How long an `invalidate(key)` keeps refusing older loads of the key
    /// (default 60 s): a load that began before the invalidation and ends
    /// later than this may still write its value to Redis. Clamped to
    /// between 1 ms and about 100 years.
    pub fn tombstone_ttl(self, ttl: Duration) -> Self {
        self.set(|s| s.tombstone_ttl = clamped(ttl))
    }

    /// A name for the layout of the value type, mixed into the fingerprint
    /// that every stored value carries with the type's name: change it when
    /// a deploy changes the value type in a way that would still decode
    /// (fields of the same types reordered or renamed), so that replicas of
    /// the old and the new version treat each other's values as misses.
    pub fn schema(self, schema: impl Into<String>) -> Self {
        self.set(|s| s.schema = schema.into())
    }

    /// The Redis URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The command timeout (see [`command_timeout`](Self::command_timeout)).
    pub fn command_timeout_value(&self) -> Duration {
        self.command_timeout
    }

    /// The circuit breaker's interval (see
    /// [`retry_interval`](Self::retry_interval)).
    pub fn retry_interval_value(&self) -> Duration {
        self.retry_interval
    }

    /// The tombstone's time to live (see
    /// [`tombstone_ttl`](Self::tombstone_ttl)).
    pub fn tombstone_ttl_value(&self) -> Duration {
        self.tombstone_ttl
    }

    /// Applies one setting.
    fn set(mut self, setting: impl FnOnce(&mut Self)) -> Self {
        setting(&mut self);
        self
    }
}

impl From<&str> for RedisOptions {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for RedisOptions {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl From<&String> for RedisOptions {
    fn from(url: &String) -> Self {
        Self::new(url.as_str())
    }
}
