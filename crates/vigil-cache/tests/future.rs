//! Behaviour of `future::TaggedCache`: the same contract as the sync
//! flavour, with async loaders shared across tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use vigil_cache::future::TaggedCache;
use vigil_cache::{EntryOptions, RemovalCause};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn get_insert_and_stats() {
    let cache: TaggedCache<String, u32> = TaggedCache::builder().name("future-basic").build();
    cache.insert("a".into(), 1).await;
    assert_eq!(cache.get("a").await, Some(1));
    assert_eq!(cache.get("b").await, None);
    assert!(cache.contains_key("a").await);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (1, 1, 1));
    assert_eq!(cache.name(), Some("future-basic"));
}

#[tokio::test]
async fn ttl_and_tags_hide_dead_entries() {
    let (clock, mock) = quanta::Clock::mock();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder().clock(clock).build();
    cache
        .insert_with(1, 1, EntryOptions::default().ttl(secs(10)))
        .await;
    cache
        .insert_with(2, 2, EntryOptions::default().tags(["user:1", "x"]))
        .await;
    cache
        .insert_with(3, 3, EntryOptions::default().tag("x"))
        .await;
    mock.increment(secs(10));
    assert_eq!(cache.get(&1).await, None);
    assert!(!cache.contains_key(&1).await);
    assert_eq!(cache.invalidate_tag("user:1").await, 1);
    assert_eq!(cache.get(&2).await, None);
    assert_eq!(cache.get(&3).await, Some(3));
    cache
        .insert_with(2, 20, EntryOptions::default().tag("user:1"))
        .await;
    assert_eq!(cache.get(&2).await, Some(20));
    assert_eq!(cache.invalidate_tags(&["user:1", "x"]).await, 2);
    // The expired entry stays until moka's own (real-time) expiry or a
    // loader replaces it.
    assert_eq!(cache.get_with(1, async { 10 }).await, 10);
    cache.run_pending_tasks().await;
    assert_eq!(cache.entry_count(), 1);
    let stats = cache.stats();
    assert_eq!(stats.tag_invalidations, 3);
    assert_eq!(stats.evictions.expired, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_with_runs_the_loader_once_for_concurrent_misses() {
    const TASKS: usize = 16;
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, loads, barrier) = (cache.clone(), Arc::clone(&loads), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .get_with(7, async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        for _ in 0..10 {
                            tokio::task::yield_now().await;
                        }
                        70
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 70);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits), (1, TASKS as u64 - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn try_get_with_runs_the_loader_once_and_never_caches_errors() {
    const TASKS: usize = 16;
    let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, loads, barrier) = (cache.clone(), Arc::clone(&loads), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .try_get_with(7, async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<_, String>(70)
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 70);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    let err = cache.try_get_with(8, async { Err::<u32, _>("down") }).await;
    assert_eq!(*err.unwrap_err(), "down");
    assert_eq!(cache.get(&8).await, None);
}

#[tokio::test]
async fn loaders_never_return_a_dead_entry() {
    let (clock, mock) = quanta::Clock::mock();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder().clock(clock).build();
    let options = || EntryOptions::default().ttl(secs(5)).tag("t");
    assert_eq!(cache.get_with_options(1, async { (1, options()) }).await, 1);
    assert_eq!(cache.get_with(1, async { unreachable!() }).await, 1);
    mock.increment(secs(5));
    assert_eq!(cache.get_with(1, async { 2 }).await, 2);
    assert_eq!(
        cache
            .try_get_with_options(3, async { Ok::<_, ()>((3, options())) })
            .await,
        Ok(3)
    );
    assert_eq!(cache.optionally_get_with(4, async { None }).await, None);
    assert_eq!(
        cache
            .optionally_get_with_options(4, async { Some((4, options())) })
            .await,
        Some(4)
    );
    assert_eq!(cache.invalidate_tag("t").await, 2);
    assert_eq!(
        cache.optionally_get_with(4, async { Some(40) }).await,
        Some(40)
    );
}

#[tokio::test]
async fn listener_warming_and_invalidate_all() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cache: TaggedCache<u32, u32> = TaggedCache::builder()
        .eviction_listener({
            let seen = Arc::clone(&seen);
            move |key: Arc<u32>, value, cause| seen.lock().unwrap().push((*key, value, cause))
        })
        .build();
    let report = cache.warm((0..3).map(|k| (k, k))).await;
    assert_eq!(report.loaded, 3);
    let report = cache
        .warm_with(
            3..6,
            |&k| async move { if k == 4 { Err(()) } else { Ok(k) } },
        )
        .await;
    assert_eq!((report.loaded, report.failed), (2, 1));
    cache.invalidate(&0).await;
    cache.invalidate_all().await;
    assert_eq!(cache.get(&1).await, None);
    assert_eq!(cache.iter().count(), 0);
    cache.insert(9, 9).await;
    assert_eq!(cache.get(&9).await, Some(9));
    cache.run_pending_tasks().await;
    assert_eq!(cache.entry_count(), 1);
    let stats = cache.stats();
    assert_eq!(stats.invalidations, 5);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(key, _, _)| *key);
    assert_eq!(seen.len(), 5);
    assert!(
        seen.iter()
            .all(|(_, _, cause)| *cause == RemovalCause::Explicit)
    );
}

#[test]
fn futures_are_send_so_tasks_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let cache: TaggedCache<String, u32> = TaggedCache::new(10);
    assert_send(&cache.get("a"));
    assert_send(&cache.contains_key("a"));
    assert_send(&cache.insert("a".into(), 1));
    assert_send(&cache.insert_with("a".into(), 1, EntryOptions::default()));
    assert_send(&cache.invalidate("a"));
    assert_send(&cache.invalidate_tag("t"));
    assert_send(&cache.invalidate_tags(&["t"]));
    assert_send(&cache.get_with("a".into(), async { 1 }));
    assert_send(&cache.try_get_with("a".into(), async { Ok::<_, ()>(1) }));
    assert_send(&cache.optionally_get_with("a".into(), async { Some(1) }));
    assert_send(&cache.warm([("a".to_string(), 1)]));
    assert_send(&cache.warm_with(["a".to_string()], |_| async { Ok::<_, ()>(1) }));
    assert_send(&cache.run_pending_tasks());
}
