//! A tagged TTL / LRU / TinyLFU cache on [`moka`]: drop whole groups of
//! entries at once by tag, hit/miss statistics, warming, and export to the
//! `metrics` facade.
//!
//! ```
//! # #[cfg(feature = "sync")] {
//! use std::time::Duration;
//! use vigil_cache::{EntryOptions, sync::TaggedCache};
//!
//! let (clock, mock) = quanta::Clock::mock(); // tests advance time, never sleep
//! let cache: TaggedCache<String, String> = TaggedCache::builder()
//!     .name("users")
//!     .max_capacity(10_000)
//!     .default_ttl(Duration::from_secs(300))
//!     .clock(clock)
//!     .build();
//!
//! let user42 = || EntryOptions::default().tags(["user:42", "premium"]);
//! cache.insert_with("profile:42".into(), "Ada".into(), user42());
//! cache.insert_with("cart:42".into(), "3 items".into(), user42().ttl(Duration::from_secs(30)));
//! cache.insert("motd".into(), "hello".into());
//!
//! // Drop everything about user 42 in O(1), and count it exactly.
//! assert_eq!(cache.invalidate_tag("user:42"), 2);
//! assert_eq!(cache.get("profile:42"), None);
//!
//! // TTLs follow the builder's clock.
//! mock.increment(Duration::from_secs(301));
//! assert_eq!(cache.get("motd"), None);
//!
//! let stats = cache.stats();
//! assert_eq!((stats.hits, stats.misses), (0, 2));
//! assert_eq!(stats.tag_invalidations, 2);
//! # }
//! ```
//!
//! # Flavours
//! [`sync::TaggedCache`] wraps `moka::sync::Cache`; [`future::TaggedCache`]
//! wraps `moka::future::Cache` with the same methods, `async` where moka's
//! are, and futures as loaders. Both are built by a [`CacheBuilder`].
//!
//! # How tags work
//! Every tag in use has a version number. An entry remembers, inline, the
//! version of each of its tags at insert; a read compares them with one
//! atomic load per tag (no hashing, no lock, no predicate, no shared
//! write). Each tag also keeps its current generation: the exact number of
//! live entries whose only tag it is (kept up to date on insert,
//! replacement, removal, eviction and expiry) and their keys.
//! `invalidate_tag` bumps the version, which hides every older entry with
//! the tag at once, and takes the generation whole: the count it returns
//! and the keys it queues for physical removal take no work per entry, so
//! it is O(1) whatever the number of entries with the tag (entries that
//! carry other tags as well are walked, so that each counts once). Removal
//! is lazy: later writes remove queued entries in bounded batches and
//! `run_pending_tasks` removes them all (only if moka still holds that very
//! entry, so a newer entry under the same key is never removed; the
//! eviction listener sees them with [`RemovalCause::Explicit`]). They stop
//! counting in `entry_count` at once. moka's own `invalidate_entries_if`,
//! by contrast, makes every later read evaluate the predicate until a
//! maintenance scan has run.
//!
//! # Live entries
//! `entry_count`, [`CacheStats::entry_count`] and the `cache_entries` gauge
//! are exact: an entry counts from its insert (or load) until the first of
//! its replacement, its removal (`invalidate`), its eviction by moka (when
//! moka's maintenance applies it), the end of its time to live on the
//! cache's clock (an entry expiring at `t` no longer counts at `t`, whether
//! or not moka has removed it), or an invalidation by tag or
//! `invalidate_all`. Each end is counted once, in the statistics too: once
//! no call is running, `inserts` minus evictions, `invalidations` and
//! `tag_invalidations` equals `entry_count`.
//!
//! # Loading
//! The loaders (`get_with`, `try_get_with`, `optionally_get_with`, their
//! `_options` variants, and so `#[cached]` functions) share one loader per
//! key, whichever method each caller uses: a caller that misses while a
//! load of the key is in flight waits for it instead of running its own.
//! The caller whose loader ran counts a miss; a waiter counts a hit when it
//! gets the stored value. A loader's error goes to the waiters whose
//! loaders have the same error type (`try_get_with` with the same `E`, or
//! `optionally_get_with` for `None`); the others, and all the waiters of a
//! loader that panicked or whose future was dropped, run their loaders in
//! turn (again one at a time).
//!
//! A load's value never overwrites a write or an invalidation made after
//! the load began:
//! - an `insert*` or `invalidate` of the key made while the loader runs
//!   supersedes the load: its value is not stored, later callers start a
//!   new load, and callers waiting for it load again (or find the inserted
//!   value). A write made while a finished load is being stored waits for
//!   it (a short, bounded step) and lands after it;
//! - an `invalidate_tag(s)` of one of the tags the loader chose, or an
//!   `invalidate_all`, made after the load began: its value is not stored
//!   (checked as the entry joins its tags, under each tag's lock; an
//!   invalidation made later hides and counts it like any other entry).
//!
//! In each case the caller whose loader ran still gets its loaded value
//! (its call began before the write); the cache does not keep it, and a
//! later `get` returns the newer value or a miss. A caller that joins a
//! load gets the stored value only if it is still alive when the load ends,
//! and otherwise loads again, so no call returns a value older than a write
//! or invalidation that completed before it began. A value stored without
//! being counted, or counted and then withdrawn, leaves the exact counts
//! exact.
//!
//! Without a wait limit a waiter waits as long as the loader runs.
//! [`CacheBuilder::load_timeout`] bounds that wait: a waiter whose limit
//! passes runs its own loader, which supersedes the slow one (whose value
//! is then returned to its own caller only); the slow load's other waiters
//! move to the new one.
//!
//! # Time
//! Time to live is decided by the builder's `quanta::Clock`
//! ([`CacheBuilder::clock`]): a read of an expired entry is a miss. moka
//! removes expired entries physically on real time (through its `Expiry`,
//! with the entry's time to live), so memory is reclaimed without reads; a
//! loader (`get_with`, ...) replaces a dead entry at once. `time_to_idle` is
//! delegated to moka and runs on real time. With a mock clock that runs
//! behind real time, moka may therefore drop an entry (a read misses, `iter`
//! skips it) that the cache's clock still counts in `entry_count` until
//! moka's timer wheel reports the removal (about a second later); with the
//! default clock the two agree to within microseconds.
//!
//! # Statistics and metrics
//! [`TaggedCache::stats`](sync::TaggedCache::stats) returns a serde
//! [`CacheStats`]. Reads count into per-CPU sharded counters and never
//! touch the `metrics` facade; [`publish_metrics`] copies the totals of
//! every live named cache into the current recorder, as
//! `cache_requests_total{cache,result}`, `cache_evictions_total{cache,cause}`,
//! `cache_entries{cache}` and `cache_weighted_size{cache}` (see
//! [`metric_names`]).
//!
//! # A second level in Redis
//! With the `redis` feature, `CacheBuilder::redis` adds a level in Redis
//! shared by every replica: a loading call that misses locally reads Redis
//! before its loader, loads and inserts write both levels, and
//! invalidations (by key, tag or all) reach every replica through Redis,
//! checked on every Redis read. A local hit never touches Redis. Redis
//! being down, slow or restarted never fails a call. The consistency
//! model, the fault behaviour and the settings are in `docs/cache.md`.
//!
//! # Features
//! - `sync` (default): [`sync::TaggedCache`], on moka's `sync` cache.
//! - `future` (default): [`future::TaggedCache`], on moka's `future` cache
//!   (which adds `async-lock`, `event-listener` and `futures-util`).
//! - `redis`: the second level (`CacheBuilder::redis`, `RedisOptions`),
//!   on the `redis` crate (tokio, multiplexed connection, pub/sub) and
//!   `postcard`.
//!
//! With neither, the crate is empty.
#![cfg(any(feature = "sync", feature = "future"))]
#![forbid(unsafe_code)]

#[macro_use]
mod admin;
mod builder;
mod entry;
mod export;
mod flight;
#[macro_use]
mod handle;
mod live;
mod options;
mod padded;
mod shared;
mod stats;
mod tag;
#[cfg(feature = "redis")]
mod tier;

#[cfg(feature = "future")]
pub mod future;
#[cfg(feature = "sync")]
pub mod sync;

pub use admin::{CacheAdmin, Cleared};
pub use builder::CacheBuilder;
pub use export::publish_metrics;
pub use moka::notification::RemovalCause;
pub use options::{EntryOptions, EvictionPolicy};
pub use stats::{CacheStats, Evictions, L2Errors, WarmReport};
pub use tag::Tag;
#[cfg(feature = "redis")]
pub use tier::RedisOptions;

/// The names under which [`publish_metrics`] exports cache statistics.
pub mod metric_names {
    pub use crate::export::{
        ENTRIES, EVICTIONS_TOTAL, L2_ERRORS_TOTAL, REQUESTS_TOTAL, WEIGHTED_SIZE,
    };
}

/// The README's example, run as a doctest.
#[cfg(all(doctest, feature = "sync"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
