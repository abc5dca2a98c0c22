//! The cache's Redis level, against a `redis-server` the bench starts on a
//! free loopback port (Debian package `redis-server`):
//!
//! - `cache_redis/local_hit_*`: a local `get` hit of a cache with a Redis
//!   level against the same cache without one (budget: within 1.1x; the
//!   hit path does not know about Redis), right after the loads; then the
//!   same two while another replica invalidates keys this one does not
//!   hold, one after the other as fast as Redis answers (the `*_fleet_writes`
//!   rows: the cache with a Redis level applies every announcement);
//! - `cache_redis/redis_hit_*`: a loading call answered by Redis (local
//!   level of capacity 0, so every call reads Redis) against a raw `GET`
//!   of a value of the same size, with the same client (`redis` crate,
//!   multiplexed connection, same runtime);
//! - `cache_redis/propagation`: from `invalidate_tag` on one replica until
//!   another replica's local `get` misses; the median and p99 of
//!   `VIGIL_BENCH_SAMPLES` (default 1 000) propagations are printed too.
//!
//! ```text
//! cargo bench -p vigil-benches --bench cache_redis
//! python3 scripts/bench-report cache_redis local_hit_without_redis_level
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil::cache::{EntryOptions, RedisOptions, future, sync};

#[path = "../crates/vigil-cache/tests/redis_server/mod.rs"]
mod redis_server;
use redis_server::RedisServer;

/// Keys cached in the local-hit rows.
const KEYS: u64 = 100_000;
/// Bytes of the value read from Redis.
const VALUE_BYTES: usize = 100;

/// Random keys (xorshift) below `limit`.
struct Keys(u64);

impl Keys {
    #[inline]
    fn next(&mut self, limit: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % limit
    }
}

fn options(server: &RedisServer, prefix: &str) -> RedisOptions {
    RedisOptions::new(server.url())
        .prefix(prefix)
        .command_timeout(Duration::from_millis(500))
}

/// Waits (at most 10 s) until `connected` holds.
fn wait(what: &str, connected: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !connected() {
        assert!(Instant::now() < deadline, "{what} did not connect to Redis");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn local_hit(c: &mut Criterion, server: &RedisServer) {
    let plain: sync::TaggedCache<u64, u64> =
        sync::TaggedCache::builder().max_capacity(2 * KEYS).build();
    let tiered: sync::TaggedCache<u64, u64> = sync::TaggedCache::builder()
        .max_capacity(2 * KEYS)
        .redis(options(server, "bench:local"))
        .build();
    wait("the cache", || tiered.redis_connected());
    for key in 0..KEYS {
        plain.insert(key, key);
        // Loaded, as a service would: written to Redis too.
        tiered.get_with(key, || key);
    }

    let mut group = c.benchmark_group("cache_redis");
    let mut keys = Keys(0x2545_F491_4F6C_DD1D);
    group.bench_function("local_hit_without_redis_level", |b| {
        b.iter(|| black_box(plain.get(&keys.next(KEYS))))
    });
    group.bench_function("local_hit_with_redis_level", |b| {
        b.iter(|| black_box(tiered.get(&keys.next(KEYS))))
    });

    // Another replica writes keys this one does not hold, back to back.
    let writer: sync::TaggedCache<u64, u64> = sync::TaggedCache::builder()
        .redis(options(server, "bench:local"))
        .build();
    wait("the writing replica", || writer.redis_connected());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let written = std::thread::scope(|scope| {
        let writing = scope.spawn(|| {
            let mut written = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                writer.invalidate(&(KEYS + written % KEYS));
                written += 1;
            }
            written
        });
        let started = Instant::now();
        group.bench_function("local_hit_without_redis_level_fleet_writes", |b| {
            b.iter(|| black_box(plain.get(&keys.next(KEYS))))
        });
        group.bench_function("local_hit_with_redis_level_fleet_writes", |b| {
            b.iter(|| black_box(tiered.get(&keys.next(KEYS))))
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writing.join().expect("the writer");
        written as f64 / started.elapsed().as_secs_f64()
    });
    println!("cache_redis/local_hit_*_fleet_writes: the other replica wrote {written:.0} keys/s");
    group.finish();
}

fn redis_hit(c: &mut Criterion, server: &RedisServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    // Capacity 0: the local level keeps nothing, so every call reads Redis.
    let cache: future::TaggedCache<u64, Vec<u8>> = future::TaggedCache::builder()
        .max_capacity(0)
        .redis(options(server, "bench:hit"))
        .build();
    wait("the cache", || cache.redis_connected());
    let value = vec![7u8; VALUE_BYTES];
    runtime.block_on(cache.insert(1, value.clone()));
    let client = redis::Client::open(server.url()).expect("a client");
    let mut conn = runtime
        .block_on(client.get_multiplexed_async_connection())
        .expect("a connection");
    // The same bytes as the cache stores (header and postcard add 10).
    let raw = vec![7u8; VALUE_BYTES + 10];
    runtime
        .block_on(
            redis::cmd("SET")
                .arg("bench:raw")
                .arg(&raw)
                .query_async::<()>(&mut conn),
        )
        .expect("SET");

    let mut group = c.benchmark_group("cache_redis");
    group.bench_function("redis_hit_tagged_cache", |b| {
        b.iter(|| {
            let found = runtime.block_on(cache.get_with(1, async { unreachable!("a Redis hit") }));
            black_box(found)
        })
    });
    group.bench_function("redis_hit_raw_get", |b| {
        b.iter(|| {
            let found = runtime.block_on(
                redis::cmd("GET")
                    .arg("bench:raw")
                    .query_async::<Vec<u8>>(&mut conn),
            );
            black_box(found.expect("GET"))
        })
    });
    group.finish();
}

/// One propagation: B holds a tagged entry, A invalidates the tag; the
/// time until B's local `get` misses.
fn propagate(a: &sync::TaggedCache<u64, u64>, b: &sync::TaggedCache<u64, u64>) -> Duration {
    let tagged = || (1, EntryOptions::default().tag("t"));
    b.get_with_options(1, tagged);
    assert_eq!(b.get(&1), Some(1));
    let started = Instant::now();
    a.invalidate_tag("t");
    while b.get(&1).is_some() {
        std::hint::spin_loop();
        assert!(started.elapsed() < Duration::from_secs(5), "no propagation");
    }
    started.elapsed()
}

fn propagation(c: &mut Criterion, server: &RedisServer) {
    let replica = || -> sync::TaggedCache<u64, u64> {
        sync::TaggedCache::builder()
            .redis(options(server, "bench:propagation"))
            .build()
    };
    let (a, b) = (replica(), replica());
    wait("the replicas", || {
        a.redis_connected() && b.redis_connected()
    });

    let samples: usize = std::env::var("VIGIL_BENCH_SAMPLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let mut times: Vec<Duration> = (0..samples).map(|_| propagate(&a, &b)).collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "cache_redis/propagation over {samples} invalidations: median {:?}, p99 {:?}",
        at(0.5),
        at(0.99)
    );

    let mut group = c.benchmark_group("cache_redis");
    group.bench_function("propagation", |bench| {
        bench.iter_custom(|iterations| (0..iterations).map(|_| propagate(&a, &b)).sum())
    });
    group.finish();
}

fn redis_level(c: &mut Criterion) {
    let server = RedisServer::start();
    local_hit(c, &server);
    redis_hit(c, &server);
    propagation(c, &server);
}

criterion_group!(benches, redis_level);
criterion_main!(benches);
