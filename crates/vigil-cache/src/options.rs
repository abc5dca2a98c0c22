//! What a caller can choose per entry ([`EntryOptions`]) and per cache
//! ([`EvictionPolicy`]).

use std::time::Duration;

use crate::Tag;

/// Per-entry options for `insert_with` and the `*_with_options` loaders:
/// a time to live and any number of tags.
///
/// ```
/// use std::time::Duration;
/// use vigil_cache::EntryOptions;
///
/// let options = EntryOptions::default()
///     .ttl(Duration::from_secs(60))
///     .tags(["user:42", "premium"])
///     .tag("market");
/// assert_eq!(options.ttl_value(), Some(Duration::from_secs(60)));
/// assert_eq!(options.tag_values().len(), 3);
/// ```
#[derive(Clone, Debug, Default)]
pub struct EntryOptions {
    ttl: Option<Duration>,
    tags: Vec<Tag>,
}

impl EntryOptions {
    /// The entry expires `ttl` after it is inserted, overriding the cache's
    /// `default_ttl`.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Adds one tag.
    #[must_use]
    pub fn tag(mut self, tag: impl Into<Tag>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Adds several tags (appends to the ones already set).
    #[must_use]
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Tag>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The time to live set with [`ttl`](Self::ttl), if any.
    pub fn ttl_value(&self) -> Option<Duration> {
        self.ttl
    }

    /// The tags set so far, in insertion order.
    pub fn tag_values(&self) -> &[Tag] {
        &self.tags
    }
}

/// Which entry to evict when the cache is full (moka's policies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    /// TinyLFU: admission by estimated frequency, eviction by recency.
    /// Best for most workloads.
    #[default]
    TinyLfu,
    /// Least recently used. Best for recency-biased workloads (e.g. job
    /// queues, event streams).
    Lru,
}

impl EvictionPolicy {
    pub(crate) fn to_moka(self) -> moka::policy::EvictionPolicy {
        match self {
            Self::TinyLfu => moka::policy::EvictionPolicy::tiny_lfu(),
            Self::Lru => moka::policy::EvictionPolicy::lru(),
        }
    }
}
