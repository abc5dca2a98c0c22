//! Exact counts at the edges: writes whose future is dropped before moka
//! stores the entry, a cache of capacity 0, entries dead on arrival.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use support::reconciled;
use vigil_cache::{EntryOptions, RemovalCause};

/// Polls a future once and drops it if it is pending.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => Some(value),
        Poll::Pending => None,
    }
}

#[test]
fn writes_dropped_before_moka_stores_them_are_not_counted() {
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let release_rx = Mutex::new(release_rx);
    let cache: vigil_cache::future::TaggedCache<u32, u32> =
        vigil_cache::future::TaggedCache::builder()
            .max_capacity(100)
            .eviction_listener(move |key: Arc<u32>, _value, cause| {
                if *key == 1 && cause == RemovalCause::Explicit {
                    // Holds moka's lock on key 1 until released.
                    entered_tx.lock().unwrap().send(()).unwrap();
                    release_rx.lock().unwrap().recv().unwrap();
                }
            })
            .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(cache.insert(1, 1));
    let remover = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(cache.invalidate(&1));
        })
    };
    entered_rx.recv().unwrap();
    // Key 1 is locked inside moka's notification: each write waits on it
    // and is dropped there, after vigil registered the entry.
    assert!(poll_once(cache.insert_with(1, 2, EntryOptions::default().tag("t"))).is_none());
    assert!(poll_once(cache.get_with(1, async { 3 })).is_none());
    assert!(poll_once(cache.insert(1, 4)).is_none());
    release_tx.send(()).unwrap();
    remover.join().unwrap();
    runtime.block_on(cache.run_pending_tasks());

    assert_eq!(cache.iter().count(), 0);
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(runtime.block_on(cache.invalidate_tag("t")), 0);
    let stats = cache.stats();
    assert_eq!(reconciled(&stats), stats.entry_count, "{stats:?}");
}

#[test]
fn a_cache_of_capacity_zero_counts_nothing_live() {
    let cache: vigil_cache::sync::TaggedCache<u32, u32> = vigil_cache::sync::TaggedCache::builder()
        .max_capacity(0)
        .build();
    cache.insert(1, 1);
    cache.insert_with(2, 2, EntryOptions::default().tag("t"));
    cache.get_with(3, || 3);
    cache.run_pending_tasks();
    assert_eq!((cache.entry_count(), cache.iter().count()), (0, 0));
    assert_eq!(cache.invalidate_tag("t"), 0);
    let stats = cache.stats();
    assert_eq!(reconciled(&stats), 0, "{stats:?}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache: vigil_cache::future::TaggedCache<u32, u32> =
        vigil_cache::future::TaggedCache::builder()
            .max_capacity(0)
            .build();
    runtime.block_on(async {
        cache.insert(1, 1).await;
        cache.get_with(3, async { 3 }).await;
        cache.run_pending_tasks().await;
    });
    assert_eq!((cache.entry_count(), cache.iter().count()), (0, 0));
}

#[test]
fn entries_dead_on_arrival_end_as_they_start() {
    let (clock, _mock) = quanta::Clock::mock();
    let cache: vigil_cache::sync::TaggedCache<u32, u32> = vigil_cache::sync::TaggedCache::builder()
        .max_capacity(10)
        .clock(clock)
        .build();
    let dead = EntryOptions::default().ttl(Duration::ZERO);
    cache.insert_with(1, 1, dead.clone());
    cache.insert_with(2, 2, dead.clone().tag("t"));
    cache.insert_with(3, 3, dead.tags(["t", "u"]));
    cache.run_pending_tasks();
    cache.insert(1, 10); // replaces the dead entry 1
    cache.run_pending_tasks();
    assert_eq!((cache.entry_count(), cache.iter().count()), (1, 1));
    assert_eq!(cache.invalidate_tag("t"), 0);
    let stats = cache.stats();
    assert_eq!(reconciled(&stats), stats.entry_count, "{stats:?}");
}
