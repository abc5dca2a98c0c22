//! Model-based concurrency check of loads against writes, in both flavours.
//!
//! A "source of truth" holds one version per key. Threads (or tasks) run
//! random operations on a few keys: reads (`get`) and loads (the
//! `*_with_options` loaders, which read the source's current version),
//! and writes, each made the way a service would: bump the source, then
//! tell the cache (`insert_with` the new version, `invalidate`,
//! `invalidate_tag` of the key's group, `invalidate_all`). Writes to one
//! key are serialized (each holds the locks of the keys it changes), loads
//! and reads are not. Every operation's start and end are stamped from one
//! atomic counter.
//!
//! The history is then checked against the sequential model: no read or
//! load returns a version older than a write to its key that completed
//! before it started (a miss is always allowed: a cache may drop entries).
//! Once everything has returned, the cache holds, for each key, nothing or
//! the source's version (a stale load never stays stored), and the counts
//! balance. Some runs set a tiny `load_timeout` on the real clock, so that
//! waiters keep taking over loads.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use proptest::prelude::*;
use support::reconciled;
use vigil_cache::{CacheStats, EntryOptions};

const KEYS: u32 = 4;
const GROUPS: [&str; 2] = ["even", "odd"];

fn group(key: u32) -> &'static str {
    GROUPS[(key % 2) as usize]
}

fn keys_of(group_index: usize) -> impl Iterator<Item = u32> {
    (0..KEYS).filter(move |key| (key % 2) as usize == group_index)
}

fn options(key: u32) -> EntryOptions {
    EntryOptions::default().tag(group(key))
}

#[derive(Clone, Copy, Debug)]
enum Load {
    Infallible,
    Fallible,
    Optional,
}

#[derive(Clone, Debug)]
enum Op {
    Get(u32),
    /// A load, its loader yielding this many times after reading the source.
    Load(u32, Load, u8),
    Insert(u32),
    Invalidate(u32),
    InvalidateTag(usize),
    InvalidateAll,
}

fn op() -> impl Strategy<Value = Op> {
    let load = prop_oneof![
        Just(Load::Infallible),
        Just(Load::Fallible),
        Just(Load::Optional)
    ];
    prop_oneof![
        4 => (0..KEYS).prop_map(Op::Get),
        6 => (0..KEYS, load, 0..6u8).prop_map(|(key, load, yields)| Op::Load(key, load, yields)),
        2 => (0..KEYS).prop_map(Op::Insert),
        2 => (0..KEYS).prop_map(Op::Invalidate),
        2 => (0..GROUPS.len()).prop_map(Op::InvalidateTag),
        1 => Just(Op::InvalidateAll),
    ]
}

/// What happened: a read of `key` that returned `value`, or a write that
/// set `key`'s source to `version`; between two instants of the counter.
#[derive(Clone, Copy, Debug)]
enum Event {
    Read {
        key: u32,
        value: Option<u64>,
        start: u64,
        end: u64,
    },
    Write {
        key: u32,
        version: u64,
        end: u64,
    },
}

/// The source of truth, the per-key write locks, the counter and the
/// history.
struct World {
    source: Vec<AtomicU64>,
    locks: Vec<Mutex<()>>,
    /// The same, for tasks (held across `.await`).
    async_locks: Vec<tokio::sync::Mutex<()>>,
    clock: AtomicU64,
    history: Mutex<Vec<Event>>,
}

impl World {
    fn new() -> Self {
        Self {
            source: (0..KEYS).map(|_| AtomicU64::new(0)).collect(),
            locks: (0..KEYS).map(|_| Mutex::new(())).collect(),
            async_locks: (0..KEYS).map(|_| tokio::sync::Mutex::new(())).collect(),
            clock: AtomicU64::new(0),
            history: Mutex::new(Vec::new()),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn read_source(&self, key: u32) -> u64 {
        self.source[key as usize].load(Ordering::SeqCst)
    }

    /// Locks `keys` (ascending) and bumps their source versions.
    fn begin_write(&self, keys: &[u32]) -> (Vec<MutexGuard<'_, ()>>, Vec<(u32, u64)>) {
        let guards = keys
            .iter()
            .map(|&key| self.locks[key as usize].lock().unwrap())
            .collect();
        let versions = keys
            .iter()
            .map(|&key| {
                (
                    key,
                    self.source[key as usize].fetch_add(1, Ordering::SeqCst) + 1,
                )
            })
            .collect();
        (guards, versions)
    }

    fn end_write(&self, versions: Vec<(u32, u64)>) {
        let end = self.tick();
        let mut history = self.history.lock().unwrap();
        for (key, version) in versions {
            history.push(Event::Write { key, version, end });
        }
    }

    fn record_read(&self, key: u32, value: Option<u64>, start: u64) {
        let end = self.tick();
        self.history.lock().unwrap().push(Event::Read {
            key,
            value,
            start,
            end,
        });
    }

    fn keys_written(op: &Op) -> Vec<u32> {
        match *op {
            Op::Insert(key) | Op::Invalidate(key) => vec![key],
            Op::InvalidateTag(group) => keys_of(group).collect(),
            Op::InvalidateAll => (0..KEYS).collect(),
            Op::Get(_) | Op::Load(..) => Vec::new(),
        }
    }

    /// Checks the history: no read older than a write completed before
    /// it started.
    fn check(&self) -> Result<(), TestCaseError> {
        let history = self.history.lock().unwrap();
        for event in history.iter() {
            let Event::Read {
                key,
                value: Some(value),
                start,
                end,
            } = *event
            else {
                continue;
            };
            let newest_before = history
                .iter()
                .filter_map(|event| match *event {
                    Event::Write {
                        key: written,
                        version,
                        end,
                    } if written == key && end < start => Some(version),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            prop_assert!(
                value >= newest_before,
                "key {key}: read [{start}, {end}] returned version {value}, \
                 but version {newest_before} was written before it began"
            );
        }
        Ok(())
    }

    /// Once all is done: nothing, or the source's version, under each key.
    fn check_final(&self, key: u32, cached: Option<u64>) -> Result<(), TestCaseError> {
        let source = self.read_source(key);
        prop_assert!(
            cached.is_none_or(|cached| cached == source),
            "key {key}: the cache holds version {cached:?}, the source {source}"
        );
        Ok(())
    }
}

fn check_counts(stats: &CacheStats, live: u64) -> Result<(), TestCaseError> {
    prop_assert_eq!(reconciled(stats), stats.entry_count, "{:?}", stats);
    prop_assert_eq!(stats.entry_count, live);
    Ok(())
}

fn threads() -> impl Strategy<Value = Vec<Vec<Op>>> {
    proptest::collection::vec(proptest::collection::vec(op(), 1..40), 2..4)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    }
}

mod sync {
    use super::*;
    use vigil_cache::sync::TaggedCache;

    fn run(world: &World, cache: &TaggedCache<u32, u64>, op: &Op) {
        let start = world.tick();
        match *op {
            Op::Get(key) => world.record_read(key, cache.get(&key), start),
            Op::Load(key, load, yields) => {
                let init = || {
                    let version = world.read_source(key);
                    for _ in 0..yields {
                        std::thread::yield_now();
                    }
                    (version, options(key))
                };
                let value = match load {
                    Load::Infallible => Some(cache.get_with_options(key, init)),
                    Load::Fallible => cache.try_get_with_options(key, || Ok::<_, ()>(init())).ok(),
                    Load::Optional => cache.optionally_get_with_options(key, || Some(init())),
                };
                world.record_read(key, value, start);
            }
            _ => {
                let (guards, versions) = world.begin_write(&World::keys_written(op));
                match *op {
                    Op::Insert(key) => {
                        let version = versions[0].1;
                        cache.insert_with(key, version, options(key));
                    }
                    Op::Invalidate(key) => cache.invalidate(&key),
                    Op::InvalidateTag(group) => {
                        cache.invalidate_tag(GROUPS[group]);
                    }
                    Op::InvalidateAll => {
                        cache.invalidate_all();
                    }
                    Op::Get(_) | Op::Load(..) => unreachable!(),
                }
                drop(guards);
                world.end_write(versions);
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn no_read_is_older_than_a_completed_write(threads in threads(), timeout in any::<bool>()) {
            let mut builder = TaggedCache::builder();
            if timeout {
                builder = builder.load_timeout(Duration::from_micros(20));
            }
            let cache: TaggedCache<u32, u64> = builder.build();
            let world = World::new();
            std::thread::scope(|s| {
                for ops in &threads {
                    let (world, cache) = (&world, &cache);
                    s.spawn(move || ops.iter().for_each(|op| run(world, cache, op)));
                }
            });
            world.check()?;
            let mut live = 0;
            for key in 0..KEYS {
                let cached = cache.get(&key);
                live += u64::from(cached.is_some());
                world.check_final(key, cached)?;
            }
            cache.run_pending_tasks();
            check_counts(&cache.stats(), live)?;
        }
    }
}

mod future {
    use super::*;
    use vigil_cache::future::TaggedCache;

    async fn run(world: &World, cache: &TaggedCache<u32, u64>, op: &Op) {
        let start = world.tick();
        match *op {
            Op::Get(key) => world.record_read(key, cache.get(&key).await, start),
            Op::Load(key, load, yields) => {
                let init = async {
                    let version = world.read_source(key);
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                    (version, options(key))
                };
                let value = match load {
                    Load::Infallible => Some(cache.get_with_options(key, init).await),
                    Load::Fallible => cache
                        .try_get_with_options(key, async { Ok::<_, ()>(init.await) })
                        .await
                        .ok(),
                    Load::Optional => {
                        cache
                            .optionally_get_with_options(key, async { Some(init.await) })
                            .await
                    }
                };
                world.record_read(key, value, start);
            }
            _ => {
                let keys = World::keys_written(op);
                let mut guards = Vec::new();
                for &key in &keys {
                    guards.push(world.async_locks[key as usize].lock().await);
                }
                let versions: Vec<(u32, u64)> = keys
                    .iter()
                    .map(|&key| {
                        (
                            key,
                            world.source[key as usize].fetch_add(1, Ordering::SeqCst) + 1,
                        )
                    })
                    .collect();
                match *op {
                    Op::Insert(key) => {
                        let version = versions[0].1;
                        cache.insert_with(key, version, options(key)).await;
                    }
                    Op::Invalidate(key) => cache.invalidate(&key).await,
                    Op::InvalidateTag(group) => {
                        cache.invalidate_tag(GROUPS[group]).await;
                    }
                    Op::InvalidateAll => {
                        cache.invalidate_all().await;
                    }
                    Op::Get(_) | Op::Load(..) => unreachable!(),
                }
                drop(guards);
                world.end_write(versions);
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn no_read_is_older_than_a_completed_write(threads in threads(), timeout in any::<bool>()) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_time()
                .build()
                .unwrap();
            let mut builder = TaggedCache::builder();
            if timeout {
                builder = builder.load_timeout(Duration::from_micros(20));
            }
            let cache: Arc<TaggedCache<u32, u64>> = Arc::new(builder.build());
            let world = Arc::new(World::new());
            runtime.block_on(async {
                let tasks: Vec<_> = threads
                    .into_iter()
                    .map(|ops| {
                        let (world, cache) = (Arc::clone(&world), Arc::clone(&cache));
                        tokio::spawn(async move {
                            for op in &ops {
                                run(&world, &cache, op).await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
            world.check()?;
            let mut live = 0;
            for key in 0..KEYS {
                let cached = runtime.block_on(cache.get(&key));
                live += u64::from(cached.is_some());
                world.check_final(key, cached)?;
            }
            runtime.block_on(cache.run_pending_tasks());
            check_counts(&cache.stats(), live)?;
        }
    }
}
