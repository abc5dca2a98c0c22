//! The Redis level against a real Redis (Debian's `redis-server`, started
//! on a free loopback port with its own directory): two caches in one test
//! stand in for two replicas.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use vigil_cache::{EntryOptions, RedisOptions, future, sync};

mod redis_server;
use redis_server::{Proxy, RedisServer};

/// Polls `condition` every 5 ms until it holds, failing after `limit`.
fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

async fn eventually_async<F: Future<Output = bool>>(
    limit: Duration,
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn options(url: String) -> RedisOptions {
    RedisOptions::new(url)
        .prefix("test:rows")
        .command_timeout(Duration::from_millis(500))
        .retry_interval(Duration::from_millis(100))
}

fn replica(url: String) -> future::TaggedCache<u32, String> {
    future::TaggedCache::builder()
        .name("rows")
        .redis(options(url))
        .build()
}

/// Two replicas of the `rows` cache, once both are connected.
fn connected_replicas(
    a: String,
    b: String,
) -> (
    future::TaggedCache<u32, String>,
    future::TaggedCache<u32, String>,
) {
    let (a, b) = (replica(a), replica(b));
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    (a, b)
}

const CONNECT: Duration = Duration::from_secs(10);
const PROPAGATION: Duration = Duration::from_secs(5);

/// Blocking caches with these Redis options, once all are connected.
fn connected_sync<V, const N: usize>(options: [RedisOptions; N]) -> [sync::TaggedCache<u32, V>; N]
where
    V: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let caches = options.map(|options| sync::TaggedCache::builder().redis(options).build());
    eventually(CONNECT, "the caches connect", || {
        caches.iter().all(|cache| cache.redis_connected())
    });
    caches
}

/// Cuts `proxy` and waits until the replica behind it (`who`) notices.
fn cut_off(proxy: &mut Proxy, who: &str, connected: impl Fn() -> bool) {
    proxy.cut();
    eventually(CONNECT, &format!("{who} notices it is cut off"), || {
        !connected()
    });
}

/// A loader that counts its calls.
fn counted(loads: &AtomicUsize, value: &str, tag: &str) -> (String, EntryOptions) {
    loads.fetch_add(1, Ordering::SeqCst);
    (value.to_string(), EntryOptions::default().tag(tag))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_values_and_see_each_others_invalidations() {
    let server = RedisServer::start();
    let (a, b) = connected_replicas(server.url(), server.url());
    let loads = AtomicUsize::new(0);

    // A loads and writes both levels; B finds it in Redis.
    let row = a
        .get_with_options(1, async { counted(&loads, "one", "t") })
        .await;
    assert_eq!(row, "one");
    let row = b
        .get_with_options(1, async { counted(&loads, "other", "t") })
        .await;
    assert_eq!(row, "one", "B reads A's value from Redis");
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for the fleet");
    assert_eq!(
        b.get(&1).await.as_deref(),
        Some("one"),
        "stored in B's local level"
    );
    let stats = b.stats();
    assert!(stats.l2_enabled);
    assert_eq!((stats.l2_hits, stats.l2_misses, stats.l2_errors), (1, 0, 0));
    assert_eq!((a.stats().l2_hits, a.stats().l2_misses), (0, 1));

    // A tag invalidated on A disappears from B's local level, and from Redis.
    assert_eq!(a.invalidate_tag("t").await, 1);
    eventually_async(PROPAGATION, "B drops the tagged entry", || async {
        b.get(&1).await.is_none()
    })
    .await;
    let row = b
        .get_with_options(1, async { counted(&loads, "two", "t") })
        .await;
    assert_eq!(row, "two", "Redis's entry is older than the tag: a miss");
    assert_eq!(loads.load(Ordering::SeqCst), 2);

    // An insert on B replaces A's local copy.
    assert_eq!(a.get_with(1, async { unreachable!() }).await, "two");
    b.insert(1, "three".into()).await;
    eventually_async(PROPAGATION, "A drops its copy after B's insert", || async {
        a.get(&1).await.is_none()
    })
    .await;
    assert_eq!(a.get_with(1, async { unreachable!() }).await, "three");

    // invalidate(key) on A: gone from B, and from Redis.
    a.invalidate(&1).await;
    eventually_async(PROPAGATION, "B drops the key", || async {
        b.get(&1).await.is_none()
    })
    .await;
    assert_eq!(b.fetch(&1).await, None, "not in Redis either");

    // invalidate_all on B: gone from A.
    a.insert(2, "two".into()).await;
    assert_eq!(b.fetch(&2).await.as_deref(), Some("two"));
    b.invalidate_all().await;
    eventually_async(PROPAGATION, "A drops everything", || async {
        a.get(&2).await.is_none()
    })
    .await;
    assert_eq!(a.fetch(&2).await, None);
    assert_eq!(a.stats().l2_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_overtaken_by_another_replicas_key_invalidation_is_not_kept() {
    let server = RedisServer::start();
    let (a, b) = connected_replicas(server.url(), server.url());
    assert_eq!(
        b.get_with(2, async { "marker".to_string() }).await,
        "marker"
    );
    // B starts loading key 1 (Redis misses), and its loader waits.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let loading = tokio::spawn({
        let b = b.clone();
        async move {
            b.get_with(1, async move {
                released.await.expect("released");
                "old".to_string()
            })
            .await
        }
    });
    eventually(CONNECT, "B has read Redis for key 1", || {
        b.stats().l2_misses == 2
    });
    // A writes key 1 while B loads it, then key 2, which B holds: once B
    // dropped key 2, it has heard of key 1 (messages arrive in order).
    a.invalidate(&1).await;
    a.invalidate(&2).await;
    eventually_async(PROPAGATION, "B drops key 2", || async {
        b.get(&2).await.is_none()
    })
    .await;
    release.send(()).expect("the loader waits");
    assert_eq!(
        loading.await.expect("no panic"),
        "old",
        "returned to its caller"
    );
    assert_eq!(
        b.get(&1).await,
        None,
        "but not kept: A's write came after it began"
    );
    assert_eq!(a.fetch(&1).await, None, "nor written to Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_bump_while_a_replica_is_disconnected_is_honoured_after_it_reconnects() {
    let server = RedisServer::start();
    let mut proxy = Proxy::start(server.port);
    let (a, b) = connected_replicas(server.url(), proxy.url());
    let loads = AtomicUsize::new(0);
    b.get_with_options(1, async { counted(&loads, "one", "t") })
        .await;
    b.get_with_options(2, async { counted(&loads, "kept", "u") })
        .await;
    assert_eq!(b.get(&1).await.as_deref(), Some("one"));

    cut_off(&mut proxy, "B", || b.redis_connected());
    // Published while B cannot hear it.
    assert_eq!(a.invalidate_tag("t").await, 0);
    assert_eq!(
        b.get(&1).await.as_deref(),
        Some("one"),
        "cut off, B serves its local level (documented)"
    );

    proxy.resume();
    eventually(CONNECT, "B reconnects", || b.redis_connected());
    // Connected means resynchronised: no polling for the bump.
    assert_eq!(
        b.get(&1).await,
        None,
        "the bump made while B was away is honoured"
    );
    assert_eq!(
        b.get(&2).await.as_deref(),
        Some("kept"),
        "other tags are untouched"
    );
    let errors = b.stats().l2_error_kinds;
    assert!(errors.io >= 1, "the lost connection is counted: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_in_flight_across_a_reconnection_does_not_keep_a_value_invalidated_meanwhile() {
    let server = RedisServer::start();
    let mut proxy = Proxy::start(server.port);
    let (a, b) = connected_replicas(server.url(), proxy.url());
    // B starts loading key 1 (Redis misses), and its loader waits; B holds
    // no entry tagged `t`.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let loading = tokio::spawn({
        let b = b.clone();
        async move {
            b.get_with_options(1, async move {
                released.await.expect("released");
                ("old".to_string(), EntryOptions::default().tag("t"))
            })
            .await
        }
    });
    eventually(CONNECT, "B has read Redis for key 1", || {
        b.stats().l2_misses == 1
    });
    cut_off(&mut proxy, "B", || b.redis_connected());
    // Published while B cannot hear it.
    a.invalidate_tag("t").await;
    proxy.resume();
    eventually(CONNECT, "B reconnects", || b.redis_connected());
    release.send(()).expect("the loader waits");
    assert_eq!(
        loading.await.expect("no panic"),
        "old",
        "returned to its caller"
    );
    assert_eq!(
        b.get(&1).await,
        None,
        "but not kept: it spans the resynchronisation, which could not see its tag"
    );
    assert_eq!(
        b.get_with(1, async { "new".to_string() }).await,
        "new",
        "nor written to Redis"
    );
}

#[test]
fn redis_killed_then_restarted_never_fails_a_get_counts_errors_and_recovers() {
    let mut server = RedisServer::start();
    let replica = || -> sync::TaggedCache<u32, String> {
        sync::TaggedCache::builder()
            .name("killed")
            .redis(
                RedisOptions::new(server.url())
                    .prefix("test:killed")
                    .command_timeout(Duration::from_millis(200))
                    .retry_interval(Duration::from_millis(200)),
            )
            .build()
    };
    let (a, b) = (replica(), replica());
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    let tagged = || ("one".to_string(), EntryOptions::default().tag("t"));
    assert_eq!(a.get_with_options(1, tagged), "one");
    assert_eq!(b.get_with(1, || unreachable!()), "one");

    server.kill();
    // Every get answers, from the local level or the loader; the dead
    // Redis costs a few counted failures, not a timeout per call.
    assert_eq!(a.invalidate_tag("t"), 1, "queued for Redis, done locally");
    assert_eq!(a.get(&1), None);
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(1) {
        for key in 100..150 {
            assert_eq!(a.get_with(key, || format!("v{key}")), format!("v{key}"));
            served += 1;
        }
        a.invalidate_all();
    }
    assert!(
        served > 500,
        "gets stay fast while Redis is down ({served} in 1 s)"
    );
    let errors = a.stats().l2_error_kinds;
    assert!(errors.total() >= 1, "errors are counted: {errors:?}");
    assert!(
        errors.total() < 40,
        "about one failure per retry interval, not one per call: {errors:?}"
    );

    server.restart();
    eventually(CONNECT, "A reconnects", || a.redis_connected());
    eventually(CONNECT, "B reconnects", || b.redis_connected());
    // A's invalidations made while Redis was down were replayed: B drops
    // its copy of key 1, and both levels work again.
    eventually(
        PROPAGATION,
        "B honours A's invalidation made while Redis was down",
        || b.get(&1).is_none(),
    );
    assert_eq!(a.get_with(7, || "seven".into()), "seven");
    assert_eq!(
        b.get_with(7, || unreachable!()),
        "seven",
        "read from Redis again"
    );
    assert!(b.stats().l2_hits >= 2);
}

#[test]
fn a_redis_that_stops_answering_costs_one_timeout_per_interval_and_is_probed_back() {
    let server = RedisServer::start();
    let cache: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .name("slow")
        .redis(
            RedisOptions::new(server.url())
                .prefix("test:slow")
                .command_timeout(Duration::from_millis(50))
                .retry_interval(Duration::from_millis(300)),
        )
        .build();
    eventually(CONNECT, "the cache connects", || cache.redis_connected());
    assert_eq!(cache.get_with(1, || "one".into()), "one");

    server.signal("-STOP");
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(1) {
        for key in 100..110 {
            assert_eq!(cache.get_with(key, || format!("v{key}")), format!("v{key}"));
            served += 1;
        }
        cache.invalidate_all();
    }
    let errors = cache.stats().l2_error_kinds;
    assert!(
        served > 100,
        "gets do not wait for Redis each time ({served} in 1 s)"
    );
    assert!(
        (1..=8).contains(&errors.timeout),
        "one timeout, then one probe per 300 ms: {errors:?}"
    );

    server.signal("-CONT");
    eventually(PROPAGATION, "a probe finds Redis answering again", || {
        let before = cache.stats().l2_misses;
        cache.invalidate(&999);
        cache.get_with(999, || "again".into());
        cache.stats().l2_misses > before
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_another_version_is_a_counted_miss() {
    let server = RedisServer::start();
    let old: future::TaggedCache<u32, String> = future::TaggedCache::builder()
        .redis(options(server.url()).prefix("test:deploy"))
        .build();
    let new: future::TaggedCache<u32, (u64, bool)> = future::TaggedCache::builder()
        .redis(options(server.url()).prefix("test:deploy"))
        .build();
    eventually(CONNECT, "both versions connect", || {
        old.redis_connected() && new.redis_connected()
    });
    old.insert(1, "text".into()).await;
    assert_eq!(new.get_with(1, async { (5, true) }).await, (5, true));
    let stats = new.stats();
    assert_eq!((stats.l2_misses, stats.l2_error_kinds.decode), (1, 1));
}

#[test]
fn l2_figures_are_exported_with_a_level_label() {
    let server = RedisServer::start();
    let cache: sync::TaggedCache<u32, u32> = sync::TaggedCache::builder()
        .name("exported")
        .redis(RedisOptions::new(server.url()).prefix("test:exported"))
        .build();
    eventually(CONNECT, "the cache connects", || cache.redis_connected());
    cache.get_with(1, || 1);
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    let series: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| format!("{:?} {value:?}", key.key()))
        .collect();
    let has = |needle: &[&str]| series.iter().any(|s| needle.iter().all(|n| s.contains(n)));
    assert!(
        has(&["cache_requests_total", "level", "l2", "miss", "Counter(1)"]),
        "{series:#?}"
    );
    assert!(
        has(&["cache_l2_errors_total", "timeout", "Counter(0)"]),
        "{series:#?}"
    );
}

/// The Redis of `cached_row`'s cache, set by the test before the first call.
static ROW_REDIS: OnceLock<String> = OnceLock::new();
static ROW_LOADS: AtomicUsize = AtomicUsize::new(0);

#[vigil_macros::cached(crate = vigil_cache, name = "cached_row", redis = ROW_REDIS.get().expect("set by the test").as_str())]
async fn cached_row(id: u32) -> String {
    ROW_LOADS.fetch_add(1, Ordering::SeqCst);
    format!("row {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_function_shares_its_values_through_redis() {
    let server = RedisServer::start();
    ROW_REDIS.set(server.url()).expect("set once");
    let cache = cached_row_cache();
    eventually(CONNECT, "the function's cache connects", || {
        cache.redis_connected()
    });
    assert_eq!(cached_row(1).await, "row 1");
    // Another replica of the function: a cache with the same name and Redis.
    let replica: future::TaggedCache<u32, String> = future::TaggedCache::builder()
        .name("cached_row")
        .redis(server.url())
        .build();
    eventually(CONNECT, "the replica connects", || {
        replica.redis_connected()
    });
    assert_eq!(replica.get_with(1, async { unreachable!() }).await, "row 1");
    assert_eq!(ROW_LOADS.load(Ordering::SeqCst), 1);
    replica.invalidate(&1).await;
    eventually_async(
        PROPAGATION,
        "the function's cache drops the key",
        || async { cache.get(&1).await.is_none() },
    )
    .await;
    assert_eq!(cached_row(1).await, "row 1");
    assert_eq!(ROW_LOADS.load(Ordering::SeqCst), 2, "loaded again");
}

#[test]
fn an_eviction_listener_may_use_a_cache_with_a_redis_level() {
    let server = RedisServer::start();
    let build = |prefix: &str| -> sync::TaggedCache<u32, String> {
        sync::TaggedCache::builder()
            .redis(options(server.url()).prefix(prefix))
            .build()
    };
    let audit = build("test:audit");
    // A's listener, called on the thread that applies B's invalidations,
    // writes to another cache with a Redis level (and so waits for Redis).
    let a: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .redis(options(server.url()).prefix("test:listener"))
        .eviction_listener({
            let audit = audit.clone();
            move |key, _, _| audit.insert(*key, "removed".into())
        })
        .build();
    let b = build("test:listener");
    eventually(CONNECT, "the caches connect", || {
        audit.redis_connected() && a.redis_connected() && b.redis_connected()
    });
    a.get_with(1, || "one".into());
    a.get_with(2, || "two".into());
    b.invalidate(&1);
    eventually(PROPAGATION, "A's listener ran", || audit.get(&1).is_some());
    // The thread that ran the listener is free again.
    b.invalidate(&2);
    eventually(PROPAGATION, "A drops key 2 too", || a.get(&2).is_none());
    let reader = build("test:audit");
    eventually(CONNECT, "the reader connects", || reader.redis_connected());
    assert_eq!(
        reader.fetch(&1).as_deref(),
        Some("removed"),
        "written to Redis"
    );
}

#[test]
fn unnamed_caches_without_a_prefix_get_no_redis_level_and_share_nothing() {
    let server = RedisServer::start();
    let unnamed = || -> sync::TaggedCache<u32, String> {
        sync::TaggedCache::builder().redis(server.url()).build()
    };
    let (a, b) = (unnamed(), unnamed());
    a.insert(1, "a's".into());
    assert_eq!(b.get_with(1, || "b's".into()), "b's");
    assert!(!a.stats().l2_enabled, "the Redis level is disabled");
    assert!(!b.redis_connected());
    // A name is enough.
    let named: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .name("named")
        .redis(server.url())
        .build();
    assert!(named.stats().l2_enabled);
    eventually(CONNECT, "the named cache connects", || {
        named.redis_connected()
    });
}

#[test]
fn durations_redis_cannot_take_are_clamped_not_failed() {
    let server = RedisServer::start();
    let replica = || -> sync::TaggedCache<u32, String> {
        sync::TaggedCache::builder()
            .name("durations")
            .redis(
                options(server.url())
                    .prefix("test:durations")
                    .tombstone_ttl(Duration::MAX)
                    .retry_interval(Duration::ZERO),
            )
            .build()
    };
    let (a, b) = (replica(), replica());
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    a.insert_with(1, "one".into(), EntryOptions::default().ttl(Duration::MAX));
    assert_eq!(b.get_with(1, || unreachable!()), "one", "written to Redis");
    a.invalidate(&1);
    eventually(PROPAGATION, "B drops the invalidated key", || {
        b.get(&1).is_none()
    });
    assert_eq!(b.fetch(&1), None, "a tombstone in Redis");
    // A's link task still applies B's invalidations.
    assert_eq!(a.get_with(2, || "two".into()), "two");
    b.invalidate(&2);
    eventually(PROPAGATION, "A drops B's invalidated key", || {
        a.get(&2).is_none()
    });
    assert_eq!(a.stats().l2_errors + b.stats().l2_errors, 0);
}

/// A value whose encoding fails for 0.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
struct Picky(u32);

impl serde::Serialize for Picky {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 0 {
            Err(serde::ser::Error::custom("0 is not written"))
        } else {
            serializer.serialize_u32(self.0)
        }
    }
}

#[test]
fn an_insert_whose_value_does_not_encode_still_replaces_the_key_everywhere() {
    let server = RedisServer::start();
    let picky = || options(server.url()).prefix("test:picky");
    let [a, b] = connected_sync::<Picky, 2>([picky(), picky()]);
    a.insert(1, Picky(1));
    assert_eq!(b.get_with(1, || unreachable!()), Picky(1));
    a.insert(1, Picky(0));
    assert_eq!(a.get(&1), Some(Picky(0)));
    eventually(PROPAGATION, "B drops its old copy", || b.get(&1).is_none());
    assert_eq!(b.fetch(&1), None, "nor is the old value left in Redis");
}

#[test]
fn a_copy_read_from_redis_keeps_the_local_default_ttl() {
    let server = RedisServer::start();
    let a: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .redis(options(server.url()).prefix("test:ttl"))
        .build();
    let (clock, mock) = quanta::Clock::mock();
    let b: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .clock(clock)
        .default_ttl(Duration::from_secs(10))
        .redis(options(server.url()).prefix("test:ttl"))
        .build();
    eventually(CONNECT, "both caches connect", || {
        a.redis_connected() && b.redis_connected()
    });
    let hour = EntryOptions::default().ttl(Duration::from_secs(3600));
    // A load (an insert's announcement could reach B after its read).
    a.get_with_options(1, || ("one".into(), hour));
    assert_eq!(b.get_with(1, || unreachable!()), "one");
    mock.increment(Duration::from_secs(9));
    assert_eq!(b.get(&1).as_deref(), Some("one"));
    mock.increment(Duration::from_secs(2));
    assert_eq!(b.get(&1), None, "expired after B's own 10 s");
}

#[test]
fn the_async_invalidate_all_does_not_block_its_executor() {
    let server = RedisServer::start();
    let cache: future::TaggedCache<u32, String> = future::TaggedCache::builder()
        .redis(
            RedisOptions::new(server.url())
                .prefix("test:nonblocking")
                .command_timeout(Duration::from_secs(2)),
        )
        .build();
    eventually(CONNECT, "the cache connects", || cache.redis_connected());
    server.signal("-STOP");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let waited = runtime.block_on(async {
        tokio::time::timeout(Duration::from_millis(100), cache.invalidate_all()).await
    });
    assert!(waited.is_err(), "still waiting for the stopped Redis");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the executor's timer fired while it waited: {:?}",
        started.elapsed()
    );
    server.signal("-CONT");
}

#[test]
fn an_invalidation_queued_while_the_circuit_is_open_is_honoured_by_this_replicas_reads() {
    let server = RedisServer::start();
    let (clock, mock) = quanta::Clock::mock();
    let a: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .clock(clock)
        .redis(
            RedisOptions::new(server.url())
                .prefix("test:queued")
                .command_timeout(Duration::from_millis(100))
                // No replay tick during the test.
                .retry_interval(Duration::from_secs(100)),
        )
        .build();
    let b: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .redis(options(server.url()).prefix("test:queued"))
        .build();
    eventually(CONNECT, "both caches connect", || {
        a.redis_connected() && b.redis_connected()
    });
    b.get_with_options(1, || ("old".into(), EntryOptions::default().tag("t")));
    server.signal("-STOP");
    assert_eq!(
        a.get_with(99, || "x".into()),
        "x",
        "a timeout opens A's circuit"
    );
    server.signal("-CONT");
    a.invalidate_tag("t"); // queued: the circuit is open
    mock.increment(Duration::from_secs(101)); // the circuit lets a probe through
    assert_eq!(
        a.get_with(1, || "fresh".into()),
        "fresh",
        "A does not read what its own queued invalidation hides"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_invalidation_still_applies_on_the_calling_replica() {
    let server = RedisServer::start();
    let (a, b) = connected_replicas(server.url(), server.url());
    let tagged = || ("v".to_string(), EntryOptions::default().tag("t"));
    /// Polls `call` once, then drops it (as a caller's timeout would).
    async fn cancelled(call: impl Future) {
        let _ = tokio::time::timeout(Duration::ZERO, call).await;
    }
    for key in [1, 2, 3] {
        a.get_with_options(key, async { tagged() }).await;
        b.get_with_options(key, async { tagged() }).await;
    }
    cancelled(a.invalidate_tag("t")).await;
    eventually_async(PROPAGATION, "B drops the tag", || async {
        b.get(&1).await.is_none()
    })
    .await;
    assert_eq!(a.get(&1).await, None, "A dropped it too");

    a.insert(4, "four".into()).await;
    b.get_with(4, async { unreachable!() }).await;
    cancelled(a.invalidate(&4)).await;
    eventually_async(PROPAGATION, "B drops the key", || async {
        b.get(&4).await.is_none()
    })
    .await;
    assert_eq!(a.get(&4).await, None, "A dropped it too");

    a.insert(5, "five".into()).await;
    b.get_with(5, async { unreachable!() }).await;
    cancelled(a.invalidate_all()).await;
    eventually_async(PROPAGATION, "B drops everything", || async {
        b.get(&5).await.is_none()
    })
    .await;
    assert_eq!(a.get(&5).await, None, "A dropped everything too");
}

/// A's `invalidate_tag` is cancelled by its caller, then its command
/// times out and is lost with its connection (Redis holds it until the
/// connections of the `killed` types are closed); B must still drop the
/// tag.
async fn a_lost_cancelled_invalidation_reaches_the_other_replica(killed: &[&str]) {
    let server = RedisServer::start();
    let quick = |url: String| -> future::TaggedCache<u32, String> {
        future::TaggedCache::builder()
            .redis(
                options(url)
                    .prefix("test:cancelled")
                    .command_timeout(Duration::from_millis(50)),
            )
            .build()
    };
    let (a, b) = (quick(server.url()), quick(server.url()));
    eventually_async(CONNECT, "both caches connect", || async {
        a.redis_connected() && b.redis_connected()
    })
    .await;
    let tagged = || async { ("old".to_string(), EntryOptions::default().tag("t")) };
    a.get_with_options(1, tagged()).await;
    b.get_with_options(1, tagged()).await;
    // Redis holds A's command without running it...
    assert_eq!(server.command("CLIENT PAUSE 10000 WRITE"), "+OK");
    // ...A's caller gives up at once...
    let _ = tokio::time::timeout(Duration::ZERO, a.invalidate_tag("t")).await;
    // ...the command times out...
    eventually_async(PROPAGATION, "A's command times out", || async {
        a.stats().l2_error_kinds.timeout > 0
    })
    .await;
    // ...and never runs: its connection is closed while it waits.
    for kind in killed {
        server.command(&format!("CLIENT KILL TYPE {kind}"));
    }
    assert_eq!(server.command("CLIENT UNPAUSE"), "+OK");
    eventually_async(PROPAGATION, "B drops the tag A queued", || async {
        b.get(&1).await.is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_invalidation_whose_command_then_fails_is_queued_and_replayed() {
    a_lost_cancelled_invalidation_reaches_the_other_replica(&["normal", "pubsub"]).await;
}

/// Only the command connection is lost (the subscription lives on): the
/// replay of the queue fails, which must end the connection, since reads
/// skip Redis while invalidations are queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_on_a_broken_command_connection_makes_the_link_reconnect() {
    a_lost_cancelled_invalidation_reaches_the_other_replica(&["normal"]).await;
}

#[test]
fn an_invalidation_redis_refuses_for_a_while_is_kept_and_replayed() {
    let server = RedisServer::start();
    let mut proxy = Proxy::start(server.port);
    let refused = |url: String| options(url).prefix("test:refused");
    let [a, b] = connected_sync::<String, 2>([refused(proxy.url()), refused(server.url())]);
    b.get_with_options(1, || ("old".into(), EntryOptions::default().tag("t")));
    cut_off(&mut proxy, "A", || a.redis_connected());
    a.invalidate_tag("t"); // queued
    // Redis turns read-only (a replica of a master that is not there):
    // the replay is refused with READONLY.
    assert_eq!(server.command("REPLICAOF 127.0.0.1 1"), "+OK");
    let before = a.stats().l2_error_kinds.server;
    proxy.resume();
    eventually(CONNECT, "A's replay is refused", || {
        a.stats().l2_error_kinds.server > before
    });
    assert!(!a.redis_connected(), "not resynchronised while refused");
    assert_eq!(server.command("REPLICAOF NO ONE"), "+OK");
    eventually(CONNECT, "A reconnects", || a.redis_connected());
    eventually(PROPAGATION, "B drops the tag A queued", || {
        b.get(&1).is_none()
    });
}

#[test]
fn inserts_queued_during_an_outage_are_all_honoured_after_a_long_replay() {
    const KEYS: u32 = 3000;
    let server = RedisServer::start();
    let mut proxy = Proxy::start(server.port);
    let outage = |url: String| {
        (options(url).prefix("test:outage")).connect_timeout(Duration::from_millis(100))
    };
    let [a, b] = connected_sync::<String, 2>([outage(proxy.url()), outage(server.url())]);
    b.warm((0..KEYS).map(|key| (key, "old".to_string())));
    cut_off(&mut proxy, "A", || a.redis_connected());
    a.warm((0..KEYS).map(|key| (key, "new".to_string())));
    proxy.resume();
    eventually(CONNECT, "A reconnects", || a.redis_connected());
    eventually(PROPAGATION, "B drops every old value", || {
        (0..KEYS).all(|key| b.get(&key).is_none())
    });
    let [reader] = connected_sync::<String, 1>([outage(server.url())]);
    let old = (0..KEYS)
        .filter(|key| reader.fetch(key).as_deref() == Some("old"))
        .count();
    assert_eq!(old, 0, "no old value left in Redis");
}

#[test]
fn a_replica_away_while_redis_lost_its_data_drops_its_local_entries() {
    let mut server = RedisServer::start();
    let mut proxy = Proxy::start(server.port);
    let lost = |url: String| options(url).prefix("test:lost");
    let [a, b] = connected_sync::<String, 2>([lost(proxy.url()), lost(server.url())]);
    a.get_with_options(1, || ("old".into(), EntryOptions::default().tag("t")));
    cut_off(&mut proxy, "A", || a.redis_connected());
    // An invalidation A cannot hear, then Redis loses it with its data.
    b.invalidate_tag("t");
    server.kill();
    server.restart();
    proxy.resume();
    eventually(CONNECT, "A reconnects", || a.redis_connected());
    assert_eq!(a.get(&1), None, "A no longer trusts what it held");
}

#[test]
fn timeouts_in_a_row_make_the_link_reconnect_and_resynchronise() {
    let server = RedisServer::start();
    let cache: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .redis(
            RedisOptions::new(server.url())
                .prefix("test:timeouts")
                .command_timeout(Duration::from_millis(50))
                .connect_timeout(Duration::from_millis(100))
                .retry_interval(Duration::from_millis(100)),
        )
        .build();
    eventually(CONNECT, "the cache connects", || cache.redis_connected());
    server.signal("-STOP");
    let mut key = 0;
    eventually(PROPAGATION, "the unanswered link is dropped", || {
        key += 1;
        cache.get_with(key, || "v".into());
        !cache.redis_connected()
    });
    server.signal("-CONT");
    eventually(CONNECT, "the cache reconnects", || cache.redis_connected());
}

#[test]
fn a_slow_eviction_listener_does_not_hold_up_other_caches_redis_commands() {
    let server = RedisServer::start();
    let (entered, listener_entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = Mutex::new(released);
    let a: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .redis(options(server.url()).prefix("test:slow-listener"))
        .eviction_listener(move |_, _, _| {
            let _ = entered.send(());
            let _ = released.lock().unwrap().recv_timeout(CONNECT);
        })
        .build();
    let cached = |prefix: &str| -> sync::TaggedCache<u32, String> {
        sync::TaggedCache::builder()
            .redis(options(server.url()).prefix(prefix))
            .build()
    };
    let (b, other) = (cached("test:slow-listener"), cached("test:other"));
    eventually(CONNECT, "the caches connect", || {
        a.redis_connected() && b.redis_connected() && other.redis_connected()
    });
    a.get_with(1, || "one".into());
    b.invalidate(&1);
    listener_entered
        .recv_timeout(PROPAGATION)
        .expect("A's listener runs for B's invalidation");
    // A's listener is still blocked: another cache's commands go on.
    let started = Instant::now();
    assert_eq!(other.get_with(7, || "seven".into()), "seven");
    other.invalidate(&7);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let stats = other.stats();
    assert_eq!((stats.l2_misses, stats.l2_errors), (1, 0), "Redis answered");
    release.send(()).expect("the listener waits");
}
