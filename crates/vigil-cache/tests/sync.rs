//! Behaviour of `sync::TaggedCache`: TTL by an injected clock, tags,
//! loaders, listener, statistics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use vigil_cache::sync::TaggedCache;
use vigil_cache::{CacheStats, EntryOptions, EvictionPolicy, RemovalCause, WarmReport};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn tags<const N: usize>(tags: [&str; N]) -> EntryOptions {
    EntryOptions::default().tags(tags)
}

fn mocked<K, V>() -> (TaggedCache<K, V>, Arc<quanta::Mock>)
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let (clock, mock) = quanta::Clock::mock();
    (TaggedCache::builder().clock(clock).build(), mock)
}

#[test]
fn get_returns_inserted_values_and_counts_hits_and_misses() {
    let cache: TaggedCache<String, u32> = TaggedCache::new(100);
    cache.insert("a".to_string(), 1);
    assert_eq!(cache.get("a"), Some(1));
    assert_eq!(cache.get("b"), None);
    assert!(cache.contains_key("a"));
    assert!(!cache.contains_key("b"));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
}

#[test]
fn entry_ttl_expires_by_the_injected_clock() {
    let (cache, mock) = mocked::<u32, u32>();
    cache.insert_with(1, 1, EntryOptions::default().ttl(secs(60)));
    cache.insert(2, 2);
    mock.increment(secs(59));
    assert_eq!(cache.get(&1), Some(1));
    mock.increment(secs(1));
    assert_eq!(cache.get(&1), None, "expired at exactly its ttl");
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.get(&2), Some(2), "no ttl, no expiry");
    // Still held (moka expires it on real time, 60 s from now, or a
    // loader for the key replaces it) but no longer live, nor counted.
    assert_eq!(cache.entry_count(), 1);
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 1);
    assert_eq!(cache.get_with(1, || 10), 10);
    cache.run_pending_tasks();
    let stats = cache.stats();
    assert_eq!(stats.evictions.expired, 1);
    assert_eq!(stats.entry_count, 2);
}

#[test]
fn default_ttl_applies_unless_the_entry_sets_its_own() {
    let (clock, mock) = quanta::Clock::mock();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder()
        .default_ttl(secs(10))
        .clock(clock)
        .build();
    cache.insert(1, 1);
    cache.insert_with(2, 2, EntryOptions::default().ttl(secs(100)));
    cache.insert_with(3, 3, tags(["t"]));
    mock.increment(secs(10));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), Some(2));
    assert_eq!(cache.get(&3), None, "tags keep the default ttl");
}

#[test]
fn tag_invalidation_hides_entries_inserted_before_it() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    cache.insert_with(1, 1, tags(["user:42"]));
    cache.insert_with(2, 2, tags(["user:42", "premium"]));
    cache.insert_with(3, 3, tags(["premium"]));
    cache.insert(4, 4);
    assert_eq!(cache.invalidate_tag("user:42"), 2);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), None);
    assert_eq!(cache.get(&3), Some(3));
    assert_eq!(cache.get(&4), Some(4));
    assert_eq!(
        cache.invalidate_tag("user:42"),
        0,
        "nothing left to invalidate"
    );
    assert_eq!(cache.invalidate_tag("never-used"), 0);
}

#[test]
fn entries_inserted_after_a_tag_invalidation_are_unaffected() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    cache.insert_with(1, 1, tags(["t"]));
    assert_eq!(cache.invalidate_tag("t"), 1);
    cache.insert_with(1, 10, tags(["t"]));
    cache.insert_with(2, 20, tags(["t"]));
    assert_eq!(cache.get(&1), Some(10));
    assert_eq!(cache.get(&2), Some(20));
    assert_eq!(cache.invalidate_tag("t"), 2);
}

#[test]
fn tag_invalidation_removes_entries_physically() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(1_000);
    for key in 0..100 {
        let tag = if key % 2 == 0 { "even" } else { "odd" };
        cache.insert_with(key, key, tags([tag]));
    }
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 100);
    assert_eq!(cache.invalidate_tag("even"), 50);
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 50);
    assert!(cache.iter().all(|(key, _)| *key % 2 == 1));
}

#[test]
fn tag_invalidation_never_removes_a_newer_entry_under_the_same_key() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    cache.insert_with(1, 1, tags(["old"]));
    cache.insert_with(1, 2, tags(["new"]));
    assert_eq!(cache.invalidate_tag("old"), 0);
    assert_eq!(cache.get(&1), Some(2));
}

#[test]
fn invalidate_tags_counts_an_entry_with_several_of_them_once() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    cache.insert_with(1, 1, tags(["a", "b"]));
    cache.insert_with(2, 2, tags(["b"]));
    cache.insert_with(3, 3, tags(["c"]));
    assert_eq!(cache.invalidate_tags(&["a", "b", "missing"]), 2);
    assert_eq!(cache.get(&3), Some(3));
    assert_eq!(cache.stats().tag_invalidations, 2);
}

#[test]
fn tag_invalidation_counts_only_live_entries() {
    let (cache, mock) = mocked::<u32, u32>();
    cache.insert_with(1, 1, tags(["t"]).ttl(secs(10)));
    cache.insert_with(2, 2, tags(["t"]));
    mock.increment(secs(10));
    assert_eq!(
        cache.invalidate_tag("t"),
        1,
        "the expired one does not count"
    );
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 0, "both removed");
}

#[test]
fn invalidate_removes_an_entry_and_counts_it_once() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    cache.insert(1, 1);
    cache.invalidate(&1);
    cache.invalidate(&1);
    cache.invalidate(&2);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.stats().invalidations, 1);
}

#[test]
fn invalidate_all_hides_every_earlier_entry_only() {
    let (cache, mock) = mocked::<u32, u32>();
    cache.insert(1, 1);
    cache.insert_with(2, 2, tags(["t"]));
    cache.insert_with(3, 3, EntryOptions::default().ttl(secs(5)));
    mock.increment(secs(5));
    cache.invalidate_all();
    assert_eq!(
        cache.stats().invalidations,
        2,
        "the expired entry does not count"
    );
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), None);
    cache.insert(1, 10);
    assert_eq!(cache.get(&1), Some(10));
    cache.run_pending_tasks();
    assert_eq!(cache.entry_count(), 1);
}

#[test]
fn get_with_runs_the_loader_once_for_concurrent_misses() {
    const THREADS: usize = 8;
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                let value = cache.get_with(7, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    std::thread::yield_now();
                    70
                });
                assert_eq!(value, 70);
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!(stats.misses, 1);
    assert_eq!(stats.hits, THREADS as u64 - 1);
    assert_eq!(stats.inserts, 1);
}

#[test]
fn try_get_with_runs_the_loader_once_for_concurrent_misses() {
    const THREADS: usize = 8;
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                let value = cache.try_get_with(7, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(70)
                });
                assert_eq!(value.unwrap(), 70);
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[test]
fn loaders_never_return_an_expired_entry() {
    let (cache, mock) = mocked::<u32, u32>();
    let loaded = cache.get_with_options(1, || (1, EntryOptions::default().ttl(secs(10))));
    assert_eq!(loaded, 1);
    assert_eq!(cache.get_with(1, || unreachable!("cached")), 1);
    mock.increment(secs(10));
    // Physically still in moka (its own expiry runs on real time), but dead.
    assert_eq!(cache.get_with(1, || 2), 2);
    assert_eq!(cache.try_get_with(1, || Err::<u32, ()>(())).unwrap(), 2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (2, 2, 2));
}

#[test]
fn try_get_with_never_caches_errors() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    let err = cache.try_get_with(1, || Err::<u32, _>("down")).unwrap_err();
    assert_eq!(*err, "down");
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.try_get_with(1, || Ok::<_, &str>(5)), Ok(5));
    let tagged = cache.try_get_with_options(2, || Ok::<_, &str>((6, tags(["t"]))));
    assert_eq!(tagged, Ok(6));
    assert_eq!(cache.invalidate_tag("t"), 1);
}

#[test]
fn optionally_get_with_never_caches_none() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    assert_eq!(cache.optionally_get_with(1, || None), None);
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.optionally_get_with(1, || Some(3)), Some(3));
    assert_eq!(cache.optionally_get_with(1, || unreachable!()), Some(3));
    assert_eq!(
        cache.optionally_get_with_options(2, || Some((4, tags(["t"])))),
        Some(4)
    );
    assert_eq!(cache.invalidate_tag("t"), 1);
}

#[test]
fn loader_options_set_ttl_and_tags() {
    let (cache, mock) = mocked::<u32, u32>();
    cache.get_with_options(1, || (1, tags(["t"]).ttl(secs(5))));
    cache.get_with_options(2, || (2, tags(["t"])));
    mock.increment(secs(5));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.invalidate_tag("t"), 1);
    assert_eq!(cache.get(&2), None);
}

#[test]
fn eviction_listener_sees_user_values_and_causes() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (clock, mock) = quanta::Clock::mock();
    let cache: TaggedCache<u32, String> = TaggedCache::builder()
        .clock(clock)
        .eviction_listener({
            let seen = Arc::clone(&seen);
            move |key: Arc<u32>, value: String, cause| {
                seen.lock().unwrap().push((*key, value, cause))
            }
        })
        .build();
    cache.insert(1, "one".into());
    cache.insert(1, "uno".into());
    cache.invalidate(&1);
    cache.insert_with(2, "two".into(), tags(["t"]));
    cache.invalidate_tag("t");
    cache.insert_with(3, "three".into(), EntryOptions::default().ttl(secs(3600)));
    mock.increment(secs(3600));
    assert_eq!(cache.get(&3), None);
    // The loader replaces the dead entry; moka reports it as expired.
    assert_eq!(cache.get_with(3, || "tres".into()), "tres");
    cache.run_pending_tasks();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(key, value, _)| (*key, value.clone()));
    assert_eq!(
        seen,
        vec![
            (1, "one".to_string(), RemovalCause::Replaced),
            (1, "uno".to_string(), RemovalCause::Explicit),
            (2, "two".to_string(), RemovalCause::Explicit),
            (3, "three".to_string(), RemovalCause::Expired),
        ]
    );
    let stats = cache.stats();
    assert_eq!(stats.evictions.replaced, 1);
    assert_eq!(stats.evictions.expired, 1);
    assert_eq!(stats.evictions.size, 0);
    assert_eq!((stats.invalidations, stats.tag_invalidations), (1, 1));
}

#[test]
fn a_panicking_listener_does_not_stop_the_bookkeeping() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache: TaggedCache<u32, u32> = TaggedCache::builder()
        .eviction_listener({
            let calls = Arc::clone(&calls);
            move |_, _, _| {
                calls.fetch_add(1, Ordering::SeqCst);
                panic!("listener bug");
            }
        })
        .build();
    cache.insert(1, 1);
    cache.invalidate(&1);
    cache.insert(2, 2);
    cache.invalidate(&2);
    cache.run_pending_tasks();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn capacity_evictions_are_counted_by_size() {
    let cache: TaggedCache<u32, u32> = TaggedCache::builder()
        .max_capacity(10)
        .eviction_policy(EvictionPolicy::Lru)
        .build();
    for key in 0..30 {
        cache.insert(key, key);
        cache.run_pending_tasks();
    }
    let stats = cache.stats();
    assert_eq!(stats.entry_count, 10);
    assert_eq!(stats.evictions.size, 20);
    assert_eq!(stats.capacity, Some(10));
    assert_eq!(stats.utilization, 1.0);
    // LRU keeps the most recent ones.
    assert!(cache.iter().all(|(key, _)| *key >= 20));
}

#[test]
fn a_weigher_bounds_the_total_weight() {
    let cache: TaggedCache<u32, Vec<u8>> = TaggedCache::builder()
        .weigher(|_, value: &Vec<u8>| value.len() as u32)
        .max_capacity(100)
        .eviction_policy(EvictionPolicy::Lru)
        .build();
    for key in 0..10 {
        cache.insert(key, vec![0; 30]);
        cache.run_pending_tasks();
    }
    assert!(cache.weighted_size() <= 100);
    assert_eq!(cache.weighted_size(), 90);
    assert_eq!(cache.stats().utilization, 0.9);
}

#[test]
fn iter_yields_only_live_entries() {
    let (cache, mock) = mocked::<u32, u32>();
    cache.insert(1, 1);
    cache.insert_with(2, 2, EntryOptions::default().ttl(secs(1)));
    cache.insert_with(3, 3, tags(["t"]));
    cache.insert_with(4, 4, tags(["u"]));
    mock.increment(secs(1));
    // Tag invalidated logically; physical removal has run too, but the
    // version check alone must hide it.
    cache.invalidate_tag("u");
    let mut live: Vec<(u32, u32)> = cache.iter().map(|(k, v)| (*k, v)).collect();
    live.sort();
    assert_eq!(live, vec![(1, 1), (3, 3)]);
}

#[test]
fn warm_reports_loaded_and_failed_entries() {
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    assert_eq!(
        cache.warm((0..5).map(|k| (k, k))),
        WarmReport {
            loaded: 5,
            failed: 0
        }
    );
    let report = cache.warm_with(5..10, |&k| if k % 2 == 0 { Ok(k) } else { Err(k) });
    assert_eq!((report.loaded, report.failed), (2, 3));
    assert_eq!(cache.get(&6), Some(6));
    assert_eq!(cache.get(&7), None);
    assert_eq!(cache.stats().inserts, 7);
}

#[test]
fn stats_are_exact_single_threaded() {
    let (clock, mock) = quanta::Clock::mock();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder()
        .name("exact")
        .max_capacity(1_000)
        .clock(clock)
        .build();
    let mut gets = 0;
    for key in 0..100 {
        cache.insert_with(key, key, tags([if key < 10 { "ten" } else { "rest" }]));
    }
    for key in 0..200 {
        cache.get(&key);
        gets += 1;
    }
    assert_eq!(cache.invalidate_tag("ten"), 10);
    for key in 0..20 {
        cache.get(&key);
        gets += 1;
    }
    cache.insert_with(500, 500, EntryOptions::default().ttl(secs(3600)));
    mock.increment(secs(3600));
    cache.get(&500);
    gets += 1;
    cache.get_with(500, || 0); // replaces the expired entry: a miss
    gets += 1;
    cache.insert(50, 0);
    cache.invalidate(&51);
    cache.run_pending_tasks();
    let stats = cache.stats();
    assert_eq!(
        stats,
        CacheStats {
            name: Some("exact".into()),
            hits: 100 + 10,
            misses: 100 + 10 + 2,
            hit_ratio: 110.0 / 222.0,
            inserts: 103,
            invalidations: 1,
            tag_invalidations: 10,
            evictions: vigil_cache::Evictions {
                size: 0,
                expired: 1,
                replaced: 1,
            },
            entry_count: 90,
            weighted_size: 90,
            capacity: Some(1_000),
            utilization: 0.09,
            ..CacheStats::default()
        }
    );
    assert_eq!(stats.hits + stats.misses, gets);
}

#[test]
fn stats_stay_consistent_under_concurrency() {
    const THREADS: u64 = 4;
    const GETS: u64 = 10_000;
    let cache: TaggedCache<u64, u64> = TaggedCache::new(1_000);
    for key in 0..50 {
        cache.insert_with(key, key, tags(["t"]));
    }
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..GETS {
                    cache.get(&(i % 100));
                    if thread == 0 && i % 1_000 == 0 {
                        cache.invalidate_tag("t");
                        cache.insert_with(i % 50, i, tags(["t"]));
                    }
                }
            });
        }
    });
    let stats = cache.stats();
    assert_eq!(stats.hits + stats.misses, THREADS * GETS);
    assert!(
        stats.misses >= THREADS * GETS / 2,
        "keys 50..100 always miss"
    );
}

#[test]
fn stats_serialize_to_json() {
    let cache: TaggedCache<u32, u32> = TaggedCache::builder().name("json").build();
    cache.insert(1, 1);
    cache.get(&1);
    let json = serde_json::to_value(cache.stats()).unwrap();
    assert_eq!(json["name"], "json");
    assert_eq!(json["hits"], 1);
    assert_eq!(json["hit_ratio"], 1.0);
    assert_eq!(json["evictions"]["size"], 0);
    assert_eq!(json["capacity"], serde_json::Value::Null);
    let back: CacheStats = serde_json::from_value(json).unwrap();
    assert_eq!(back, cache.stats());
}

#[test]
fn clones_share_one_cache() {
    let cache: TaggedCache<u32, u32> = TaggedCache::builder().time_to_idle(secs(3600)).build();
    let other = cache.clone();
    other.insert(1, 1);
    assert_eq!(cache.get(&1), Some(1));
    assert_eq!(cache.stats().hits, 1);
    assert!(format!("{cache:?}").contains("TaggedCache"));
}

#[test]
fn tag_invalidation_removes_lazily_and_counts_each_entry_once() {
    let removed = Arc::new(AtomicUsize::new(0));
    let cache: TaggedCache<u32, u32> = TaggedCache::builder()
        .eviction_listener({
            let removed = Arc::clone(&removed);
            move |_, _, cause| {
                assert_eq!(cause, RemovalCause::Explicit);
                removed.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build();
    for key in 0..1_000 {
        cache.insert_with(key, key, tags(["a", "b"]));
    }
    assert_eq!(cache.invalidate_tag("a"), 1_000);
    assert_eq!(
        cache.invalidate_tag("b"),
        0,
        "already invalidated through `a`"
    );
    assert_eq!(cache.get(&7), None);
    // One write removes a bounded batch, not everything.
    cache.insert(5_000, 0);
    let after_one_write = removed.load(Ordering::SeqCst);
    assert!(
        after_one_write > 0 && after_one_write < 1_000,
        "{after_one_write}"
    );
    cache.run_pending_tasks();
    assert_eq!(removed.load(Ordering::SeqCst), 1_000);
    assert_eq!(cache.entry_count(), 1);
    assert_eq!(cache.stats().tag_invalidations, 1_000);
}
