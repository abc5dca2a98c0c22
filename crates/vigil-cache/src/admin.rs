//! [`CacheAdmin`]: what a monitoring layer needs from a cache, whatever its
//! flavour, key and value types: its figures and a way to clear it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::CacheStats;

/// A future returned by [`CacheAdmin`]'s clearing methods: the exact
/// number of entries removed.
pub type Cleared<'a> = Pin<Box<dyn Future<Output = u64> + Send + 'a>>;

/// A cache seen without its key and value types: statistics, size, capacity
/// and clearing, object-safe so that caches of different types (and of
/// either flavour) can be kept together as `Arc<dyn CacheAdmin>`.
///
/// Implemented by [`sync::TaggedCache`](crate::sync::TaggedCache) and
/// [`future::TaggedCache`](crate::future::TaggedCache).
///
/// ```
/// # #[cfg(all(feature = "sync", feature = "future"))] {
/// use std::sync::Arc;
/// use vigil_cache::{CacheAdmin, EntryOptions};
///
/// let users: vigil_cache::sync::TaggedCache<u32, String> = vigil_cache::sync::TaggedCache::new(100);
/// let pages: vigil_cache::future::TaggedCache<String, Vec<u8>> = vigil_cache::future::TaggedCache::new(100);
/// users.insert_with(1, "Ada".into(), EntryOptions::default().tag("eu"));
///
/// let caches: Vec<Arc<dyn CacheAdmin>> = vec![users.clone_admin(), pages.clone_admin()];
/// let entries: u64 = caches.iter().map(|c| c.entry_count()).sum();
/// assert_eq!(entries, 1);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert_eq!(caches[0].clear_tags(&["eu".to_string()]).await, 1);
/// # });
/// # }
/// ```
pub trait CacheAdmin: Send + Sync + fmt::Debug + 'static {
    /// The name given to the builder.
    fn name(&self) -> Option<&str>;

    /// A snapshot of the statistics (as `TaggedCache::stats`).
    fn stats(&self) -> CacheStats;

    /// The live entries, exactly (as `TaggedCache::entry_count`).
    fn entry_count(&self) -> u64;

    /// The total weight held, per moka (as `TaggedCache::weighted_size`):
    /// the sum of the weigher's values, or the number of entries without a
    /// weigher.
    fn weighted_size(&self) -> u64;

    /// The `max_capacity` the cache was built with (entries, or weight with
    /// a weigher); `None` when unbounded.
    fn max_capacity(&self) -> Option<u64>;

    /// Whether the cache was built with a weigher, so that
    /// [`weighted_size`](Self::weighted_size) and
    /// [`max_capacity`](Self::max_capacity) are weights (such as bytes)
    /// rather than entry counts.
    fn weighed(&self) -> bool;

    /// Invalidates every entry carrying any of `tags` and resolves to how
    /// many live entries that hid, each counted once (as
    /// `TaggedCache::invalidate_tags`).
    fn clear_tags<'a>(&'a self, tags: &'a [String]) -> Cleared<'a>;

    /// Invalidates every entry and resolves to how many were live (as
    /// `TaggedCache::invalidate_all`).
    fn clear_all(&self) -> Cleared<'_>;

    /// Another handle to the same cache, type-erased.
    fn clone_admin(&self) -> Arc<dyn CacheAdmin>;
}

/// Implements [`CacheAdmin`] for one flavour's `TaggedCache`, whose
/// invalidations are logical and never wait (physical removal follows on
/// later writes), so that both flavours share the code.
macro_rules! cache_admin {
    () => {
        impl<K, V> $crate::CacheAdmin for TaggedCache<K, V>
        where
            K: ::std::hash::Hash + Eq + Clone + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            fn name(&self) -> Option<&str> {
                self.inner.shared.name.as_deref()
            }

            fn stats(&self) -> $crate::CacheStats {
                TaggedCache::stats(self)
            }

            fn entry_count(&self) -> u64 {
                TaggedCache::entry_count(self)
            }

            fn weighted_size(&self) -> u64 {
                TaggedCache::weighted_size(self)
            }

            fn max_capacity(&self) -> Option<u64> {
                self.inner.shared.capacity
            }

            fn weighed(&self) -> bool {
                self.inner.shared.weighed
            }

            fn clear_tags<'a>(&'a self, tags: &'a [String]) -> $crate::admin::Cleared<'a> {
                Box::pin(async move {
                    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                    self.inner.clear_tags(&tags).await
                })
            }

            fn clear_all(&self) -> $crate::admin::Cleared<'_> {
                Box::pin(async move { self.inner.clear_all().await })
            }

            fn clone_admin(&self) -> ::std::sync::Arc<dyn $crate::CacheAdmin> {
                ::std::sync::Arc::new(self.clone())
            }
        }
    };
}
