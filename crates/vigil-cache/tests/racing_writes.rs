//! A racing write never loses to a stale load, in both flavours: while a
//! loader of key 1 is held on a channel, an `invalidate_tag` of its tag, an
//! `insert(1, NEW)`, an `invalidate(&1)` or an `invalidate_all()` is made;
//! once the loader returns, the cache holds the newer value or nothing,
//! never the loaded one, and the counts still balance. Also: one loader per
//! key across every loading method, and `load_timeout`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use support::reconciled;
use vigil_cache::EntryOptions;

const STALE: u32 = 1;
const NEW: u32 = 2;
const TAG: &str = "t";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Write {
    InvalidateTag,
    Insert,
    Invalidate,
    InvalidateAll,
}

const WRITES: [Write; 4] = [
    Write::InvalidateTag,
    Write::Insert,
    Write::Invalidate,
    Write::InvalidateAll,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    GetWith,
    GetWithOptions,
    TryGetWith,
    TryGetWithOptions,
    OptionallyGetWith,
    OptionallyGetWithOptions,
}

const METHODS: [Method; 6] = [
    Method::GetWith,
    Method::GetWithOptions,
    Method::TryGetWith,
    Method::TryGetWithOptions,
    Method::OptionallyGetWith,
    Method::OptionallyGetWithOptions,
];

impl Method {
    /// Whether the loader chooses the entry's options (and so its tag).
    fn tagged(self) -> bool {
        matches!(
            self,
            Self::GetWithOptions | Self::TryGetWithOptions | Self::OptionallyGetWithOptions
        )
    }
}

fn tagged() -> EntryOptions {
    EntryOptions::default().tag(TAG)
}

/// The (method, write) pairs probed: a tag invalidation only concerns
/// loaders that tag their entry.
fn probes() -> impl Iterator<Item = (Method, Write)> {
    METHODS.into_iter().flat_map(|method| {
        WRITES
            .into_iter()
            .filter(move |write| method.tagged() || *write != Write::InvalidateTag)
            .map(move |write| (method, write))
    })
}

/// What `get(&1)` may return after the write and the stale load.
fn expected(write: Write) -> Option<u32> {
    (write == Write::Insert).then_some(NEW)
}

mod sync {
    use super::*;
    use vigil_cache::sync::TaggedCache;

    fn load(
        cache: &TaggedCache<u32, u32>,
        method: Method,
        init: impl FnOnce() -> u32,
    ) -> Option<u32> {
        match method {
            Method::GetWith => Some(cache.get_with(1, init)),
            Method::GetWithOptions => Some(cache.get_with_options(1, || (init(), tagged()))),
            Method::TryGetWith => cache.try_get_with(1, || Ok::<_, String>(init())).ok(),
            Method::TryGetWithOptions => cache
                .try_get_with_options(1, || Ok::<_, String>((init(), tagged())))
                .ok(),
            Method::OptionallyGetWith => cache.optionally_get_with(1, || Some(init())),
            Method::OptionallyGetWithOptions => {
                cache.optionally_get_with_options(1, || Some((init(), tagged())))
            }
        }
    }

    fn write(cache: &TaggedCache<u32, u32>, write: Write) {
        match write {
            Write::InvalidateTag => {
                cache.invalidate_tag(TAG);
            }
            Write::Insert => cache.insert(1, NEW),
            Write::Invalidate => cache.invalidate(&1),
            Write::InvalidateAll => {
                cache.invalidate_all();
            }
        }
    }

    /// A loader that says it started, then returns `value` once released.
    fn gated(value: u32) -> (impl FnOnce() -> u32, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        let init = move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            value
        };
        (init, started, release)
    }

    fn assert_counts(cache: &TaggedCache<u32, u32>) {
        cache.run_pending_tasks();
        let stats = cache.stats();
        assert_eq!(reconciled(&stats), stats.entry_count, "{stats:?}");
        assert_eq!(stats.entry_count, cache.iter().count() as u64);
    }

    fn probe(method: Method, write_made: Write, before: Option<u32>) {
        let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
        if let Some(value) = before {
            // A dead or live earlier entry under the key changes nothing.
            cache.insert_with(1, value, tagged());
            cache.invalidate_tag(TAG);
        }
        let (init, started, release) = gated(STALE);
        std::thread::scope(|s| {
            let loading = s.spawn(|| load(&cache, method, init));
            started.recv().unwrap();
            write(&cache, write_made);
            // A call that begins after the write never gets the stale value.
            assert_eq!(
                cache.get(&1),
                expected(write_made),
                "{method:?} / {write_made:?}"
            );
            release.send(()).unwrap();
            assert_eq!(
                loading.join().unwrap(),
                Some(STALE),
                "the caller whose loader ran gets its own value"
            );
        });
        let want = expected(write_made);
        assert_eq!(cache.get(&1), want, "{method:?} / {write_made:?}");
        assert_eq!(cache.entry_count(), u64::from(want.is_some()));
        assert_counts(&cache);
        // The next loader stores its value.
        cache.invalidate(&1);
        assert_eq!(load(&cache, method, || 3), Some(3));
        assert_eq!(cache.get(&1), Some(3));
        assert_counts(&cache);
    }

    #[test]
    fn a_racing_write_wins_over_a_stale_load() {
        for (method, write) in probes() {
            probe(method, write, None);
            probe(method, write, Some(9));
        }
    }

    #[test]
    fn a_call_that_joins_a_stale_load_after_an_invalidation_loads_again() {
        for write_made in [Write::InvalidateTag, Write::InvalidateAll] {
            let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
            let (init, started, release) = gated(STALE);
            let fresh_loads = AtomicUsize::new(0);
            std::thread::scope(|s| {
                let loading = s.spawn(|| cache.get_with_options(1, || (init(), tagged())));
                started.recv().unwrap();
                write(&cache, write_made);
                // Joins the load in flight (or finds it done): either way
                // it must not return the value loaded before the write.
                let joining = s.spawn(|| {
                    cache.get_with(1, || {
                        fresh_loads.fetch_add(1, Ordering::SeqCst);
                        NEW
                    })
                });
                release.send(()).unwrap();
                assert_eq!(loading.join().unwrap(), STALE);
                assert_eq!(joining.join().unwrap(), NEW, "{write_made:?}");
            });
            assert_eq!(fresh_loads.load(Ordering::SeqCst), 1);
            assert_eq!(cache.get(&1), Some(NEW));
            assert_counts(&cache);
        }
    }

    #[test]
    fn one_loader_per_key_across_every_loading_method() {
        for first in METHODS {
            for second in METHODS {
                let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
                let (init, started, release) = gated(7);
                std::thread::scope(|s| {
                    let leading = s.spawn(|| load(&cache, first, init));
                    started.recv().unwrap();
                    let waiting = s.spawn(|| {
                        load(&cache, second, || {
                            unreachable!("{second:?} ran a second loader")
                        })
                    });
                    release.send(()).unwrap();
                    assert_eq!(leading.join().unwrap(), Some(7));
                    assert_eq!(
                        waiting.join().unwrap(),
                        Some(7),
                        "{first:?} then {second:?}"
                    );
                });
                let stats = cache.stats();
                assert_eq!((stats.misses, stats.hits, stats.inserts), (1, 1, 1));
            }
        }
    }

    #[test]
    fn a_shared_error_reaches_waiters_with_the_same_error_type_only() {
        let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let cache = &cache;
            let failing = s.spawn(move || {
                cache.try_get_with(1, || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Err::<u32, String>("down".into())
                })
            });
            started.recv().unwrap();
            // An infallible caller cannot take a `String` error: it loads.
            let infallible = s.spawn(|| cache.get_with(1, || 5));
            release.send(()).unwrap();
            assert_eq!(*failing.join().unwrap().unwrap_err(), "down");
            assert_eq!(infallible.join().unwrap(), 5);
        });
        assert_eq!(cache.get(&1), Some(5));
    }

    #[test]
    fn a_waiter_takes_the_loaders_value_while_its_limit_has_not_passed() {
        let cache: TaggedCache<u32, u32> = TaggedCache::builder()
            .load_timeout(Duration::from_secs(5))
            .clock(quanta::Clock::mock().0)
            .build();
        // A limit that never passes (the mock clock stands still) behaves
        // as no limit: the waiter takes the loader's value.
        let (init, started, release) = gated(7);
        std::thread::scope(|s| {
            let leading = s.spawn(|| cache.get_with(1, init));
            started.recv().unwrap();
            let waiting = s.spawn(|| cache.try_get_with(1, || Err::<u32, ()>(())));
            release.send(()).unwrap();
            assert_eq!(leading.join().unwrap(), 7);
            assert_eq!(waiting.join().unwrap(), Ok(7));
        });
    }

    #[test]
    fn after_the_load_timeout_a_waiter_takes_over_a_hung_load() {
        for method in METHODS {
            let (clock, mock) = quanta::Clock::mock();
            let cache: TaggedCache<u32, u32> = TaggedCache::builder()
                .load_timeout(Duration::from_secs(5))
                .clock(clock)
                .build();
            let (init, started, release) = gated(STALE);
            std::thread::scope(|s| {
                let hung = s.spawn(|| cache.get_with_options(1, || (init(), tagged())));
                started.recv().unwrap();
                let waiting = s.spawn(|| load(&cache, method, || NEW));
                // The waiter's limit runs from when it starts waiting: move
                // the clock on until it gives up (the loop only paces it).
                while !waiting.is_finished() {
                    mock.increment(Duration::from_secs(5));
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert_eq!(waiting.join().unwrap(), Some(NEW), "{method:?}");
                assert_eq!(cache.get(&1), Some(NEW));
                // The hung loader, superseded, returns to its caller only.
                release.send(()).unwrap();
                assert_eq!(hung.join().unwrap(), STALE);
            });
            assert_eq!(cache.get(&1), Some(NEW), "{method:?}");
            assert_counts(&cache);
        }
    }

    #[test]
    fn a_panicking_loader_lets_its_waiters_load() {
        let cache: TaggedCache<u32, u32> = TaggedCache::new(100);
        let (started_tx, started) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let cache = &cache;
            let panicking = s.spawn(move || {
                cache.get_with(1, || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    panic!("loader failed");
                })
            });
            started.recv().unwrap();
            let waiting = s.spawn(|| cache.get_with(1, || 4));
            release.send(()).unwrap();
            assert!(panicking.join().is_err());
            assert_eq!(waiting.join().unwrap(), 4);
        });
        assert_eq!(cache.get(&1), Some(4));
    }
}

mod future {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::{mpsc as tmpsc, oneshot};
    use vigil_cache::future::TaggedCache;

    async fn load(
        cache: &TaggedCache<u32, u32>,
        method: Method,
        init: impl std::future::Future<Output = u32>,
    ) -> Option<u32> {
        match method {
            Method::GetWith => Some(cache.get_with(1, init).await),
            Method::GetWithOptions => Some(
                cache
                    .get_with_options(1, async { (init.await, tagged()) })
                    .await,
            ),
            Method::TryGetWith => cache
                .try_get_with(1, async { Ok::<_, String>(init.await) })
                .await
                .ok(),
            Method::TryGetWithOptions => cache
                .try_get_with_options(1, async { Ok::<_, String>((init.await, tagged())) })
                .await
                .ok(),
            Method::OptionallyGetWith => {
                cache
                    .optionally_get_with(1, async { Some(init.await) })
                    .await
            }
            Method::OptionallyGetWithOptions => {
                cache
                    .optionally_get_with_options(1, async { Some((init.await, tagged())) })
                    .await
            }
        }
    }

    async fn write(cache: &TaggedCache<u32, u32>, write: Write) {
        match write {
            Write::InvalidateTag => {
                cache.invalidate_tag(TAG).await;
            }
            Write::Insert => cache.insert(1, NEW).await,
            Write::Invalidate => cache.invalidate(&1).await,
            Write::InvalidateAll => {
                cache.invalidate_all().await;
            }
        }
    }

    /// A loader that says it started, then returns `value` once released.
    fn gated(
        value: u32,
    ) -> (
        impl std::future::Future<Output = u32> + Send + 'static,
        tmpsc::UnboundedReceiver<()>,
        oneshot::Sender<()>,
    ) {
        let (started_tx, started) = tmpsc::unbounded_channel();
        let (release, release_rx) = oneshot::channel::<()>();
        let init = async move {
            started_tx.send(()).unwrap();
            release_rx.await.unwrap();
            value
        };
        (init, started, release)
    }

    async fn assert_counts(cache: &TaggedCache<u32, u32>) {
        cache.run_pending_tasks().await;
        let stats = cache.stats();
        assert_eq!(reconciled(&stats), stats.entry_count, "{stats:?}");
        assert_eq!(stats.entry_count, cache.iter().count() as u64);
    }

    async fn probe(method: Method, write_made: Write, before: Option<u32>) {
        let cache: Arc<TaggedCache<u32, u32>> = Arc::new(TaggedCache::new(100));
        if let Some(value) = before {
            cache.insert_with(1, value, tagged()).await;
            cache.invalidate_tag(TAG).await;
        }
        let (init, mut started, release) = gated(STALE);
        let loading = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { load(&cache, method, init).await })
        };
        started.recv().await.unwrap();
        write(&cache, write_made).await;
        assert_eq!(
            cache.get(&1).await,
            expected(write_made),
            "{method:?} / {write_made:?}"
        );
        release.send(()).unwrap();
        assert_eq!(loading.await.unwrap(), Some(STALE));
        let want = expected(write_made);
        assert_eq!(cache.get(&1).await, want, "{method:?} / {write_made:?}");
        assert_eq!(cache.entry_count(), u64::from(want.is_some()));
        assert_counts(&cache).await;
        cache.invalidate(&1).await;
        assert_eq!(load(&cache, method, async { 3 }).await, Some(3));
        assert_eq!(cache.get(&1).await, Some(3));
        assert_counts(&cache).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_racing_write_wins_over_a_stale_load() {
        for (method, write) in probes() {
            probe(method, write, None).await;
            probe(method, write, Some(9)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_loader_per_key_across_every_loading_method() {
        for first in METHODS {
            for second in METHODS {
                let cache: Arc<TaggedCache<u32, u32>> = Arc::new(TaggedCache::new(100));
                let (init, mut started, release) = gated(7);
                let leading = {
                    let cache = Arc::clone(&cache);
                    tokio::spawn(async move { load(&cache, first, init).await })
                };
                started.recv().await.unwrap();
                let waiting = {
                    let cache = Arc::clone(&cache);
                    tokio::spawn(async move {
                        load(&cache, second, async move {
                            unreachable!("{second:?} ran a second loader")
                        })
                        .await
                    })
                };
                release.send(()).unwrap();
                assert_eq!(leading.await.unwrap(), Some(7));
                assert_eq!(waiting.await.unwrap(), Some(7), "{first:?} then {second:?}");
                let stats = cache.stats();
                assert_eq!((stats.misses, stats.hits, stats.inserts), (1, 1, 1));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_the_load_timeout_a_waiter_takes_over_a_hung_load() {
        for method in METHODS {
            let (clock, mock) = quanta::Clock::mock();
            let cache: Arc<TaggedCache<u32, u32>> = Arc::new(
                TaggedCache::builder()
                    .load_timeout(Duration::from_secs(5))
                    .clock(clock)
                    .build(),
            );
            let (init, mut started, release) = gated(STALE);
            let hung = {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move {
                    cache
                        .get_with_options(1, async { (init.await, tagged()) })
                        .await
                })
            };
            started.recv().await.unwrap();
            let waiting = {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { load(&cache, method, async { NEW }).await })
            };
            while !waiting.is_finished() {
                mock.increment(Duration::from_secs(5));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(waiting.await.unwrap(), Some(NEW), "{method:?}");
            release.send(()).unwrap();
            assert_eq!(hung.await.unwrap(), STALE);
            assert_eq!(cache.get(&1).await, Some(NEW), "{method:?}");
            assert_counts(&cache).await;
        }
    }

    #[tokio::test]
    async fn a_dropped_loader_lets_its_waiters_load() {
        let cache: Arc<TaggedCache<u32, u32>> = Arc::new(TaggedCache::new(100));
        let (init, mut started, _release) = gated(STALE);
        let dropped = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.get_with(1, init).await })
        };
        started.recv().await.unwrap();
        let waiting = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.get_with(1, async { 4 }).await })
        };
        tokio::task::yield_now().await;
        dropped.abort();
        assert!(dropped.await.unwrap_err().is_cancelled());
        assert_eq!(waiting.await.unwrap(), 4);
        assert_eq!(cache.get(&1).await, Some(4));
        assert_counts(&cache).await;
    }
}
