//! Race windows of the Redis level, held open with the crate-private
//! [`Hooks`](super::Hooks), against a real Redis (Debian's `redis-server`,
//! started by the harness of `tests/redis.rs`). Two caches in one test
//! stand in for two replicas.

#[path = "../../tests/redis_server/mod.rs"]
mod redis_server;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::{Proxy, RedisServer};

use super::remote::lock;
use crate::{EntryOptions, RedisOptions, future, sync};

const CONNECT: Duration = Duration::from_secs(10);
const PROPAGATION: Duration = Duration::from_secs(5);

/// Polls `condition` every 5 ms until it holds, failing after `limit`.
fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`eventually`] for a condition that awaits.
async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + PROPAGATION;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "not within {PROPAGATION:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn options(url: String, prefix: &str) -> RedisOptions {
    RedisOptions::new(url)
        .prefix(prefix)
        .command_timeout(Duration::from_millis(500))
        .retry_interval(Duration::from_millis(100))
}

/// Two blocking replicas sharing `prefix`, once both are connected.
fn replicas(
    server: &RedisServer,
    prefix: &str,
) -> (
    sync::TaggedCache<u32, String>,
    sync::TaggedCache<u32, String>,
) {
    let replica = || {
        sync::TaggedCache::builder()
            .redis(options(server.url(), prefix))
            .build()
    };
    let (a, b) = (replica(), replica());
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    (a, b)
}

/// Has B run `during` after its next load, before it stores the value.
fn after_bs_next_load(b: &sync::TaggedCache<u32, String>, during: impl FnOnce() + Send + 'static) {
    *lock(&b.l2_hooks().loaded) = Some(Box::new(during));
}

#[test]
fn a_key_announcement_between_a_load_and_its_store_is_not_missed() {
    let server = RedisServer::start();
    let (a, b) = replicas(&server, "test:late-announcement");
    b.get_with(2, || "marker".into());
    // B's loader has returned; before B stores its value, A writes key 1,
    // then key 2, which B holds: once B dropped key 2, it has applied the
    // announcement of key 1 (messages arrive in order).
    let (a2, b2) = (a.clone(), b.clone());
    after_bs_next_load(&b, move || {
        a2.invalidate(&1);
        a2.invalidate(&2);
        eventually(PROPAGATION, "B drops key 2", || b2.get(&2).is_none());
    });
    assert_eq!(
        b.get_with(1, || "old".into()),
        "old",
        "returned to its caller"
    );
    assert_eq!(
        b.get(&1),
        None,
        "but not kept: A's write came after it began"
    );
    assert_eq!(a.fetch(&1), None, "nor written to Redis");
}

#[test]
fn a_slow_load_is_kept_however_many_other_keys_are_written_meanwhile() {
    let server = RedisServer::start();
    let (a, b) = replicas(&server, "test:busy-fleet");
    b.get_with(2, || "marker".into());
    let (a2, b2) = (a.clone(), b.clone());
    after_bs_next_load(&b, move || {
        a2.warm((100..4300).map(|key| (key, "other".to_string())));
        a2.invalidate(&2);
        eventually(PROPAGATION, "B applies every announcement", || {
            b2.get(&2).is_none()
        });
    });
    assert_eq!(b.get_with(1, || "one".into()), "one");
    assert_eq!(
        b.get(&1).as_deref(),
        Some("one"),
        "writes of other keys do not overtake it"
    );
    assert_eq!(a.get_with(1, || unreachable!()), "one", "written to Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_on_the_replica_whose_cancelled_invalidation_is_on_its_way_does_not_read_redis() {
    let server = RedisServer::start();
    let replica = || -> future::TaggedCache<u32, String> {
        future::TaggedCache::builder()
            .redis(
                options(server.url(), "test:own-invalidation")
                    .command_timeout(Duration::from_secs(5)),
            )
            .build()
    };
    let (a, b) = (replica(), replica());
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    let tagged = |value: &str| (value.to_string(), EntryOptions::default().tag("t"));
    for (key, call) in [
        (1, "invalidate_tag"),
        (2, "invalidate"),
        (3, "invalidate_all"),
    ] {
        b.get_with_options(key, async { tagged("old") }).await;
        // A's invalidation commands wait before they are sent.
        let hold = Arc::new(tokio::sync::Semaphore::new(0));
        *lock(&a.l2_hooks().hold) = Some(Arc::clone(&hold));
        let invalidation: Pin<Box<dyn Future<Output = ()> + Send + '_>> = match call {
            "invalidate_tag" => Box::pin(async {
                a.invalidate_tag("t").await;
            }),
            "invalidate" => Box::pin(a.invalidate(&key)),
            _ => Box::pin(async {
                a.invalidate_all().await;
            }),
        };
        // Polled once, then dropped (as a caller's timeout would): applied
        // locally, its command still on its way to Redis.
        let _ = tokio::time::timeout(Duration::ZERO, invalidation).await;
        *lock(&a.l2_hooks().hold) = None;
        assert_eq!(
            a.get_with_options(key, async { tagged("new") }).await,
            "new",
            "{call}: A does not read the old entry Redis still holds"
        );
        hold.add_permits(1);
        eventually(PROPAGATION, "B applies A's invalidation", || {
            futures_util::FutureExt::now_or_never(b.get(&key)).is_some_and(|found| found.is_none())
        });
        assert_eq!(
            a.get(&key).await.as_deref(),
            Some("new"),
            "{call}: A keeps its own load"
        );
    }
}

#[test]
fn a_reconnection_reads_only_the_tags_changed_while_away_unless_redis_trimmed_them() {
    let server = RedisServer::start();
    let mut proxy = Proxy::start(server.port);
    let cache = |url: String| -> sync::TaggedCache<u32, String> {
        sync::TaggedCache::builder()
            .redis(options(url, "test:changed"))
            .build()
    };
    let (a, b) = (cache(server.url()), cache(proxy.url()));
    eventually(CONNECT, "both caches connect", || {
        a.redis_connected() && b.redis_connected()
    });
    for key in 0..50u32 {
        b.get_with_options(key, || {
            let options = EntryOptions::default().tag(format!("t{key}"));
            (key.to_string(), options)
        });
    }
    let full = b.l2_full_resyncs();
    let away = |proxy: &mut Proxy, tag: &str| {
        proxy.cut();
        eventually(CONNECT, "B notices it is cut off", || !b.redis_connected());
        a.invalidate_tag(tag);
    };
    let back = |proxy: &mut Proxy| {
        proxy.resume();
        eventually(CONNECT, "B reconnects", || b.redis_connected());
    };

    away(&mut proxy, "t7");
    back(&mut proxy);
    assert_eq!(b.get(&7), None, "the tag invalidated while B was away");
    assert_eq!(b.get(&8).as_deref(), Some("8"), "the other tags are kept");
    assert_eq!(b.l2_full_resyncs(), full, "only the tags changed were read");

    // Redis trimmed its set of changed tags past what B applied.
    away(&mut proxy, "t9");
    assert_eq!(server.command("SET test:changed:trimmed 1000000000"), "+OK");
    back(&mut proxy);
    assert_eq!(b.get(&9), None, "found by reading every tag in use");
    assert_eq!(b.get(&8).as_deref(), Some("8"));
    assert_eq!(b.l2_full_resyncs(), full + 1);

    // A replica of an older version (no `P:nseq`, no `P:changed`)
    // invalidates a tag while B is away.
    assert_eq!(server.command("DEL test:changed:trimmed"), ":1");
    proxy.cut();
    eventually(CONNECT, "B notices it is cut off", || !b.redis_connected());
    let seq = server.command("INCR test:changed:seq");
    let seq = seq.trim_start_matches(':');
    let set = format!("SET test:changed:tagv:t11 {seq}");
    assert_eq!(server.command(&set), "+OK");
    back(&mut proxy);
    assert_eq!(b.get(&11), None, "found by reading every tag in use");
    assert_eq!(b.get(&8).as_deref(), Some("8"));
    assert_eq!(b.l2_full_resyncs(), full + 2);

    // And only once: the next reconnection reads the tags changed.
    away(&mut proxy, "t12");
    back(&mut proxy);
    assert_eq!(b.get(&12), None);
    assert_eq!(b.l2_full_resyncs(), full + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_invalidation_waiting_for_a_storing_load_still_drops_the_key_locally() {
    let server = RedisServer::start();
    let a: future::TaggedCache<u32, String> = future::TaggedCache::builder()
        .redis(options(server.url(), "test:cancelled-local"))
        .build();
    eventually(CONNECT, "the cache connects", || a.redis_connected());
    // A's next kept load waits, its commit begun, until released.
    let (storing, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (signal, wait) = (storing.0, release.1);
    *lock(&a.l2_hooks().storing) = Some(Box::new(move || {
        let _ = signal.send(());
        let _ = wait.recv();
    }));
    let loader = a.clone();
    let load = tokio::spawn(async move { loader.get_with(1, async { "old".to_string() }).await });
    storing.1.recv_timeout(CONNECT).expect("the load commits");
    // The invalidation waits for the storing load; its caller gives up.
    let cancelled = tokio::time::timeout(Duration::from_millis(300), a.invalidate(&1)).await;
    assert!(cancelled.is_err(), "the invalidation waits for the store");
    release.0.send(()).expect("the load waits");
    assert_eq!(load.await.expect("the load ends"), "old");
    until("the stored old value is dropped", async || {
        a.get(&1).await.is_none()
    })
    .await;
    assert_eq!(a.fetch(&1).await, None, "nor is it in Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_on_its_way_skips_only_the_redis_entries_it_covers() {
    let server = RedisServer::start();
    let replica = || -> future::TaggedCache<u32, String> {
        future::TaggedCache::builder()
            .redis(options(server.url(), "test:covered").command_timeout(Duration::from_secs(5)))
            .build()
    };
    let (a, b) = (replica(), replica());
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    for (key, tag) in [(1, "t"), (2, "u"), (3, "v"), (4, "v")] {
        let options = EntryOptions::default().tag(tag);
        b.insert_with(key, format!("b{key}"), options).await;
    }
    // A's invalidation commands wait before they are sent; their callers
    // give up (polled once): on their way, applied locally only.
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    *lock(&a.l2_hooks().hold) = Some(Arc::clone(&hold));
    let _ = tokio::time::timeout(Duration::ZERO, a.invalidate_tag("t")).await;
    let _ = tokio::time::timeout(Duration::ZERO, a.invalidate(&3)).await;
    *lock(&a.l2_hooks().hold) = None;
    assert_eq!(a.fetch(&1).await, None, "tag t is being invalidated");
    assert_eq!(a.fetch(&3).await, None, "key 3 is being invalidated");
    assert_eq!(
        a.fetch(&2).await.as_deref(),
        Some("b2"),
        "another tag's entry is read from Redis"
    );
    assert_eq!(
        a.fetch(&4).await.as_deref(),
        Some("b4"),
        "another key is read from Redis"
    );
    hold.add_permits(2);
    until("B applies A's invalidations", async || {
        b.get(&1).await.is_none() && b.get(&3).await.is_none()
    })
    .await;
    assert_eq!(a.fetch(&1).await, None);
    assert_eq!(a.fetch(&3).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_insert_still_reaches_redis_and_the_other_replicas() {
    let server = RedisServer::start();
    let replica = || -> future::TaggedCache<u32, String> {
        future::TaggedCache::builder()
            .redis(options(server.url(), "test:cancelled-insert"))
            .build()
    };
    let (a, b) = (replica(), replica());
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    b.insert(1, "b-old".to_string()).await;
    assert_eq!(b.get(&1).await.as_deref(), Some("b-old"));
    // A's next kept load waits, its commit begun, until released.
    let (storing, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (signal, wait) = (storing.0, release.1);
    *lock(&a.l2_hooks().storing) = Some(Box::new(move || {
        let _ = signal.send(());
        let _ = wait.recv();
    }));
    let loader = a.clone();
    let load = tokio::spawn(async move { loader.get_with(2, async { "two".to_string() }).await });
    storing.1.recv_timeout(CONNECT).expect("the load commits");
    // The insert waits for the storing load of key 2; its caller gives up.
    let cancelled =
        tokio::time::timeout(Duration::from_millis(300), a.insert(2, "new".into())).await;
    assert!(cancelled.is_err(), "the insert waits for the store");
    // One of key 1 too, cancelled at its first poll.
    let _ = tokio::time::timeout(Duration::ZERO, a.insert(1, "a-new".into())).await;
    release.0.send(()).expect("the load waits");
    assert_eq!(load.await.expect("the load ends"), "two");
    until("B drops its copy of key 1", async || {
        b.get(&1).await.is_none()
    })
    .await;
    assert_eq!(b.fetch(&1).await.as_deref(), Some("a-new"), "in Redis");
    assert_eq!(b.fetch(&2).await.as_deref(), Some("new"), "in Redis");
    until("A does not keep the load's value", async || {
        a.get(&2).await.as_deref() != Some("two")
    })
    .await;
    assert_eq!(a.fetch(&2).await.as_deref(), Some("new"));
}

#[test]
fn an_invalidation_whose_command_panics_is_queued_and_replayed() {
    let server = RedisServer::start();
    let (a, b) = replicas(&server, "test:panicking-command");
    b.get_with_options(1, || ("old".into(), EntryOptions::default().tag("t")));
    let panic = &a.l2_hooks().panic;
    panic.store(true, std::sync::atomic::Ordering::Relaxed);
    a.invalidate_tag("t");
    panic.store(false, std::sync::atomic::Ordering::Relaxed);
    eventually(PROPAGATION, "B applies the replayed invalidation", || {
        b.get(&1).is_none()
    });
}

/// Two async replicas sharing `prefix`, once both are connected; commands
/// may wait long in a test's hold.
fn async_replicas(
    server: &RedisServer,
    prefix: &str,
) -> (
    future::TaggedCache<u32, String>,
    future::TaggedCache<u32, String>,
) {
    let replica = || {
        future::TaggedCache::builder()
            .redis(options(server.url(), prefix).command_timeout(Duration::from_secs(5)))
            .build()
    };
    let (a, b) = (replica(), replica());
    eventually(CONNECT, "both replicas connect", || {
        a.redis_connected() && b.redis_connected()
    });
    (a, b)
}

/// Holds `cache`'s commands that write Redis until permits are added.
fn hold(cache: &future::TaggedCache<u32, String>) -> Arc<tokio::sync::Semaphore> {
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    *lock(&cache.l2_hooks().hold) = Some(Arc::clone(&hold));
    hold
}

/// Runs `future` once, then drops it (as a caller's timeout would).
async fn cancel_at_first_poll(future: impl Future) {
    let _ = tokio::time::timeout(Duration::ZERO, future).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answered_before_an_own_tag_invalidation_reached_redis_is_not_kept() {
    let server = RedisServer::start();
    let (a, b) = async_replicas(&server, "test:overtaken-read");
    let tagged = |value: &str| (value.to_string(), EntryOptions::default().tag("t"));
    b.get_with_options(1, async { tagged("old") }).await;
    // A's tag invalidation is applied locally; its command waits.
    let held = hold(&a);
    cancel_at_first_poll(a.invalidate_tag("t")).await;
    *lock(&a.l2_hooks().hold) = None;
    // A's load reads Redis before the invalidation gets there; its answer
    // is looked at once the invalidation is done.
    let (answered, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (signal, wait) = (answered.0, release.1);
    *lock(&a.l2_hooks().answered) = Some(Box::new(move || {
        let _ = signal.send(());
        let _ = wait.recv();
    }));
    let loader = a.clone();
    let load =
        tokio::spawn(async move { loader.get_with_options(1, async { tagged("new") }).await });
    answered
        .1
        .recv_timeout(CONNECT)
        .expect("Redis answers the read");
    held.add_permits(1);
    eventually(PROPAGATION, "A's invalidation reaches Redis", || {
        a.l2_settled()
    });
    release.0.send(()).expect("the read waits");
    assert_eq!(
        load.await.expect("the load ends"),
        "new",
        "the entry the invalidation removed is not taken"
    );
    assert_eq!(a.get(&1).await.as_deref(), Some("new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_does_not_read_a_key_whose_cancelled_insert_is_on_its_way() {
    let server = RedisServer::start();
    let (a, b) = async_replicas(&server, "test:insert-on-its-way");
    b.insert(1, "old".to_string()).await;
    let held = hold(&a);
    cancel_at_first_poll(a.insert(1, "inserted".into())).await;
    *lock(&a.l2_hooks().hold) = None;
    until("the cancelled insert leaves no local copy", async || {
        a.get(&1).await.is_none()
    })
    .await;
    assert_eq!(
        a.get_with(1, async { "loaded".to_string() }).await,
        "loaded",
        "Redis still holds the value the insert replaces"
    );
    held.add_permits(1);
    eventually(PROPAGATION, "A's insert reaches Redis", || a.l2_settled());
    assert_eq!(b.fetch(&1).await.as_deref(), Some("inserted"));
    until(
        "A drops the loaded value once the insert is in Redis",
        async || a.get(&1).await.is_none(),
    )
    .await;
    assert_eq!(
        a.fetch(&1).await.as_deref(),
        Some("inserted"),
        "as in Redis"
    );
}

/// Inserts key 1 into A (value "a", `options`); between A's Redis write
/// and its local store, once the write is in Redis, B runs `write`, then
/// writes key 2, which A holds: once A dropped key 2, it has applied what
/// `write` published (messages arrive in order).
async fn insert_while_b_writes(
    a: &future::TaggedCache<u32, String>,
    b: &future::TaggedCache<u32, String>,
    options: EntryOptions,
    write: impl AsyncFnOnce(&future::TaggedCache<u32, String>) + Send + 'static,
) {
    a.insert(2, "marker".to_string()).await;
    let (a2, b2) = (a.clone(), b.clone());
    *lock(&a.l2_hooks().inserting) = Some(Box::new(move || {
        eventually(PROPAGATION, "A's write reaches Redis", || a2.l2_settled());
        super::block_on(async {
            write(&b2).await;
            b2.insert(2, "b".into()).await;
        });
        eventually(PROPAGATION, "A applies B's writes", || {
            super::block_on(a2.get(&2)).is_none()
        });
    }));
    let writer = a.clone();
    tokio::spawn(async move { writer.insert_with(1, "a".into(), options).await })
        .await
        .expect("the insert ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_whose_value_another_replica_overwrote_before_its_local_store_drops_it() {
    let server = RedisServer::start();
    let (a, b) = async_replicas(&server, "test:overwritten-insert");
    insert_while_b_writes(&a, &b, EntryOptions::default(), async |b| {
        b.insert(1, "b".into()).await;
    })
    .await;
    assert_eq!(b.fetch(&1).await.as_deref(), Some("b"), "B's write is last");
    assert_eq!(a.get(&1).await, None, "A does not keep its older value");
    assert_eq!(a.fetch(&1).await.as_deref(), Some("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_insert_that_reaches_redis_after_a_later_one_leaves_no_older_copy() {
    let server = RedisServer::start();
    let (a, b) = async_replicas(&server, "test:overtaking-insert");
    let held = hold(&a);
    cancel_at_first_poll(a.insert(1, "first".into())).await;
    *lock(&a.l2_hooks().hold) = None;
    until("the cancelled insert leaves no local copy", async || {
        a.get(&1).await.is_none()
    })
    .await;
    a.insert(1, "second".into()).await;
    // The first write reaches Redis last.
    held.add_permits(1);
    eventually(PROPAGATION, "A's first write reaches Redis", || {
        a.l2_settled()
    });
    assert_eq!(b.fetch(&1).await.as_deref(), Some("first"));
    until("A drops the value its later insert stored", async || {
        a.get(&1).await.is_none()
    })
    .await;
    assert_eq!(a.fetch(&1).await.as_deref(), Some("first"), "as in Redis");
}

#[test]
fn an_insert_that_reaches_redis_before_an_earlier_queued_invalidation_of_its_key_is_not_kept() {
    let server = RedisServer::start();
    // Queued invalidations are replayed once per 10 s: not during the test.
    let a: sync::TaggedCache<u32, String> = sync::TaggedCache::builder()
        .redis(options(server.url(), "test:queued-first").retry_interval(Duration::from_secs(10)))
        .build();
    eventually(CONNECT, "the cache connects", || a.redis_connected());
    let panic = &a.l2_hooks().panic;
    panic.store(true, std::sync::atomic::Ordering::Relaxed);
    a.invalidate(&1);
    panic.store(false, std::sync::atomic::Ordering::Relaxed);
    a.insert(1, "inserted".into());
    assert_eq!(
        a.get(&1),
        None,
        "the queued invalidation will remove it from Redis: not kept locally either"
    );
    a.insert(2, "other".into());
    assert_eq!(a.get(&2).as_deref(), Some("other"), "another key is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_whose_key_a_replayed_invalidation_removed_from_redis_after_it_is_not_kept() {
    let server = RedisServer::start();
    let a: future::TaggedCache<u32, String> = future::TaggedCache::builder()
        .redis(options(server.url(), "test:replayed-after"))
        .build();
    eventually(CONNECT, "the cache connects", || a.redis_connected());
    // An invalidation of key 1 fails and is queued; its replay waits
    // until an insert of key 1 has reached Redis; then, before the insert
    // stores its value locally, the replay is done.
    let replays = Arc::new(tokio::sync::Semaphore::new(0));
    a.l2().hold_replays(Some(Arc::clone(&replays)));
    let panic = &a.l2_hooks().panic;
    panic.store(true, std::sync::atomic::Ordering::Relaxed);
    a.invalidate(&1).await;
    panic.store(false, std::sync::atomic::Ordering::Relaxed);
    let a2 = a.clone();
    *lock(&a.l2_hooks().inserting) = Some(Box::new(move || {
        eventually(PROPAGATION, "the insert reaches Redis", || {
            a2.l2().settled(false)
        });
        replays.add_permits(1);
        eventually(PROPAGATION, "the replay reaches Redis", || a2.l2_settled());
    }));
    let writer = a.clone();
    tokio::spawn(async move { writer.insert(1, "inserted".into()).await })
        .await
        .expect("the insert ends");
    assert_eq!(a.get(&1).await, None, "not kept locally");
    assert_eq!(a.fetch(&1).await, None, "the replay removed it from Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_replay_is_under_way_loads_do_not_read_redis() {
    let server = RedisServer::start();
    let (a, b) = async_replicas(&server, "test:replaying");
    b.insert(2, "b2".to_string()).await;
    let replays = Arc::new(tokio::sync::Semaphore::new(0));
    a.l2().hold_replays(Some(Arc::clone(&replays)));
    let panic = &a.l2_hooks().panic;
    panic.store(true, std::sync::atomic::Ordering::Relaxed);
    a.invalidate(&1).await;
    panic.store(false, std::sync::atomic::Ordering::Relaxed);
    eventually(PROPAGATION, "a replay takes the queue", || {
        a.l2().replaying()
    });
    assert_eq!(
        a.get_with(2, async { "loaded".to_string() }).await,
        "loaded",
        "a replay may cover any entry: Redis is not read"
    );
    replays.add_permits(1);
    eventually(PROPAGATION, "the replay is done", || a.l2_settled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_whose_tag_another_replica_invalidated_before_its_local_store_is_not_kept() {
    let server = RedisServer::start();
    let (a, b) = async_replicas(&server, "test:tag-before-store");
    let options = EntryOptions::default().tag("t");
    insert_while_b_writes(&a, &b, options, async |b| {
        b.invalidate_tag("t").await;
    })
    .await;
    assert_eq!(a.get(&1).await, None, "A does not keep what Redis dropped");
    assert_eq!(b.fetch(&1).await, None, "stale in Redis");
}
