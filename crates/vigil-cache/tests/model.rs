//! Property test: random sequences of operations against a reference model
//! (a `BTreeMap` with expiry times and tag sets). The cache never shows a
//! value the model says is gone (TTL, tags, invalidation); without a
//! capacity bound it agrees with the model exactly, including the counts
//! `invalidate_tag(s)` return and the statistics; with one, eviction may
//! only remove entries, never resurrect or alter them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use support::reconciled;
use vigil_cache::sync::TaggedCache;
use vigil_cache::{CacheBuilder, CacheStats, EntryOptions};

/// Time unit of the model: one minute of mock time (moka's own expiry runs
/// on real time, so TTLs of minutes never fire physically during a test).
const UNIT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
struct Write {
    key: u8,
    value: u32,
    ttl: Option<u64>,
    tags: Vec<u8>,
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Write),
    Get(u8),
    GetWith(Write),
    Invalidate(u8),
    InvalidateTag(u8),
    InvalidateTags(Vec<u8>),
    InvalidateAll,
    Advance(u64),
    RunPendingTasks,
}

fn write() -> impl Strategy<Value = Write> {
    (
        0..8u8,
        any::<u32>(),
        proptest::option::of(1..20u64),
        proptest::collection::vec(0..4u8, 0..3),
    )
        .prop_map(|(key, value, ttl, tags)| Write {
            key,
            value,
            ttl,
            tags,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => write().prop_map(Op::Insert),
        8 => (0..8u8).prop_map(Op::Get),
        3 => write().prop_map(Op::GetWith),
        2 => (0..8u8).prop_map(Op::Invalidate),
        2 => (0..4u8).prop_map(Op::InvalidateTag),
        1 => proptest::collection::vec(0..4u8, 0..3).prop_map(Op::InvalidateTags),
        1 => Just(Op::InvalidateAll),
        3 => (0..10u64).prop_map(Op::Advance),
        2 => Just(Op::RunPendingTasks),
    ]
}

fn tag_name(tag: u8) -> String {
    format!("tag:{tag}")
}

fn options(write: &Write) -> EntryOptions {
    let mut options = EntryOptions::default().tags(write.tags.iter().map(|t| tag_name(*t)));
    if let Some(ttl) = write.ttl {
        options = options.ttl(UNIT * ttl as u32);
    }
    options
}

struct ModelEntry {
    value: u32,
    expires_at: Option<u64>,
    tags: BTreeSet<u8>,
}

#[derive(Default)]
struct Model {
    now: u64,
    default_ttl: Option<u64>,
    entries: BTreeMap<u8, ModelEntry>,
    hits: u64,
    misses: u64,
    inserts: u64,
    invalidations: u64,
    tag_invalidations: u64,
}

impl Model {
    fn live(&self, key: u8) -> Option<u32> {
        self.entries
            .get(&key)
            .filter(|e| e.expires_at.is_none_or(|at| self.now < at))
            .map(|e| e.value)
    }

    /// The keys whose entries are live now.
    fn live_keys(&self) -> impl Iterator<Item = u8> + '_ {
        self.entries
            .keys()
            .copied()
            .filter(|&key| self.live(key).is_some())
    }

    fn insert(&mut self, write: &Write) {
        let ttl = write.ttl.or(self.default_ttl);
        self.entries.insert(
            write.key,
            ModelEntry {
                value: write.value,
                expires_at: ttl.map(|ttl| self.now + ttl),
                tags: write.tags.iter().copied().collect(),
            },
        );
        self.inserts += 1;
    }

    /// Removes the entries carrying any of `tags`, returning how many were
    /// live.
    fn invalidate_tags(&mut self, tags: &[u8]) -> u64 {
        let doomed: Vec<u8> = self
            .entries
            .iter()
            .filter(|(_, e)| tags.iter().any(|t| e.tags.contains(t)))
            .map(|(k, _)| *k)
            .collect();
        let live = doomed.iter().filter(|k| self.live(**k).is_some()).count() as u64;
        for key in doomed {
            self.entries.remove(&key);
        }
        self.tag_invalidations += live;
        live
    }
}

/// The operations of the test, over either flavour.
trait Flavour {
    type Cache;
    fn build(builder: CacheBuilder<u8, u32, Self::Cache>) -> Self;
    fn builder() -> CacheBuilder<u8, u32, Self::Cache>;
    fn insert_with(&self, key: u8, value: u32, options: EntryOptions);
    fn get(&self, key: u8) -> Option<u32>;
    fn get_with_options(&self, key: u8, init: impl FnOnce() -> (u32, EntryOptions)) -> u32;
    fn invalidate(&self, key: u8);
    fn invalidate_tags(&self, tags: &[String]) -> u64;
    fn invalidate_all(&self);
    fn run_pending_tasks(&self);
    fn live(&self) -> Vec<(u8, u32)>;
    fn entry_count(&self) -> u64;
    fn stats(&self) -> CacheStats;
}

impl Flavour for TaggedCache<u8, u32> {
    type Cache = Self;
    fn build(builder: CacheBuilder<u8, u32, Self>) -> Self {
        builder.build()
    }
    fn builder() -> CacheBuilder<u8, u32, Self> {
        TaggedCache::builder()
    }
    fn insert_with(&self, key: u8, value: u32, options: EntryOptions) {
        TaggedCache::insert_with(self, key, value, options);
    }
    fn get(&self, key: u8) -> Option<u32> {
        TaggedCache::get(self, &key)
    }
    fn get_with_options(&self, key: u8, init: impl FnOnce() -> (u32, EntryOptions)) -> u32 {
        TaggedCache::get_with_options(self, key, init)
    }
    fn invalidate(&self, key: u8) {
        TaggedCache::invalidate(self, &key);
    }
    fn invalidate_tags(&self, tags: &[String]) -> u64 {
        if let [tag] = tags {
            TaggedCache::invalidate_tag(self, tag)
        } else {
            TaggedCache::invalidate_tags(self, tags)
        }
    }
    fn invalidate_all(&self) {
        TaggedCache::invalidate_all(self);
    }
    fn run_pending_tasks(&self) {
        TaggedCache::run_pending_tasks(self);
    }
    fn live(&self) -> Vec<(u8, u32)> {
        self.iter().map(|(k, v)| (*k, v)).collect()
    }
    fn entry_count(&self) -> u64 {
        TaggedCache::entry_count(self)
    }
    fn stats(&self) -> CacheStats {
        TaggedCache::stats(self)
    }
}

/// The async flavour, driven by a current-thread runtime.
struct Async {
    cache: vigil_cache::future::TaggedCache<u8, u32>,
    runtime: tokio::runtime::Runtime,
}

impl Flavour for Async {
    type Cache = vigil_cache::future::TaggedCache<u8, u32>;
    fn build(builder: CacheBuilder<u8, u32, Self::Cache>) -> Self {
        Async {
            cache: builder.build(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        }
    }
    fn builder() -> CacheBuilder<u8, u32, Self::Cache> {
        vigil_cache::future::TaggedCache::builder()
    }
    fn insert_with(&self, key: u8, value: u32, options: EntryOptions) {
        self.runtime
            .block_on(self.cache.insert_with(key, value, options));
    }
    fn get(&self, key: u8) -> Option<u32> {
        self.runtime.block_on(self.cache.get(&key))
    }
    fn get_with_options(&self, key: u8, init: impl FnOnce() -> (u32, EntryOptions)) -> u32 {
        self.runtime
            .block_on(self.cache.get_with_options(key, async { init() }))
    }
    fn invalidate(&self, key: u8) {
        self.runtime.block_on(self.cache.invalidate(&key));
    }
    fn invalidate_tags(&self, tags: &[String]) -> u64 {
        if let [tag] = tags {
            self.runtime.block_on(self.cache.invalidate_tag(tag))
        } else {
            self.runtime.block_on(self.cache.invalidate_tags(tags))
        }
    }
    fn invalidate_all(&self) {
        self.runtime.block_on(self.cache.invalidate_all());
    }
    fn run_pending_tasks(&self) {
        self.runtime.block_on(self.cache.run_pending_tasks());
    }
    fn live(&self) -> Vec<(u8, u32)> {
        self.cache.iter().map(|(k, v)| (*k, v)).collect()
    }
    fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
    fn stats(&self) -> CacheStats {
        self.cache.stats()
    }
}

/// Runs `ops` on a cache and the model. `capacity` = None demands exact
/// agreement; Some(n) allows evictions.
fn check<F: Flavour>(
    ops: Vec<Op>,
    capacity: Option<u64>,
    default_ttl: Option<u64>,
) -> Result<(), TestCaseError> {
    let (clock, mock) = quanta::Clock::mock();
    let mut builder = F::builder().clock(clock);
    if let Some(capacity) = capacity {
        builder = builder.max_capacity(capacity);
    }
    if let Some(ttl) = default_ttl {
        builder = builder.default_ttl(UNIT * ttl as u32);
    }
    let cache = F::build(builder);
    let exact = capacity.is_none();
    let mut model = Model {
        default_ttl,
        ..Model::default()
    };

    for op in ops {
        match op {
            Op::Insert(write) => {
                cache.insert_with(write.key, write.value, options(&write));
                model.insert(&write);
            }
            Op::Get(key) => {
                let got = cache.get(key);
                let expected = model.live(key);
                if exact {
                    prop_assert_eq!(got, expected, "get({})", key);
                } else if got.is_some() {
                    prop_assert_eq!(got, expected, "get({}) resurrected or altered", key);
                }
                match got {
                    Some(_) => model.hits += 1,
                    None => model.misses += 1,
                }
            }
            Op::GetWith(write) => {
                let ran = std::cell::Cell::new(false);
                let got = cache.get_with_options(write.key, || {
                    ran.set(true);
                    (write.value, options(&write))
                });
                let expected = model.live(write.key);
                if ran.get() {
                    if exact {
                        prop_assert_eq!(expected, None, "loader ran over a live entry");
                    }
                    prop_assert_eq!(got, write.value);
                    model.insert(&write);
                    model.misses += 1;
                } else {
                    prop_assert_eq!(
                        Some(got),
                        expected,
                        "get_with({}) returned a dead value",
                        write.key
                    );
                    model.hits += 1;
                }
            }
            Op::Invalidate(key) => {
                let before = cache.stats().invalidations;
                cache.invalidate(key);
                let counted = cache.stats().invalidations - before;
                let live = u64::from(model.live(key).is_some());
                if exact {
                    prop_assert_eq!(counted, live, "invalidate({}) counted", key);
                } else {
                    prop_assert!(counted <= live);
                }
                model.invalidations += counted;
                model.entries.remove(&key);
            }
            Op::InvalidateTag(tag) => {
                let got = cache.invalidate_tags(&[tag_name(tag)]);
                let expected = model.invalidate_tags(&[tag]);
                if exact {
                    prop_assert_eq!(got, expected, "invalidate_tag({})", tag);
                } else {
                    prop_assert!(
                        got <= expected,
                        "invalidate_tag({}) = {} > {}",
                        tag,
                        got,
                        expected
                    );
                    model.tag_invalidations -= expected - got;
                }
            }
            Op::InvalidateTags(tags) => {
                let names: Vec<String> = tags.iter().map(|t| tag_name(*t)).collect();
                let got = cache.invalidate_tags(&names);
                let expected = model.invalidate_tags(&tags);
                if exact {
                    prop_assert_eq!(got, expected, "invalidate_tags({:?})", tags);
                } else {
                    prop_assert!(got <= expected);
                    model.tag_invalidations -= expected - got;
                }
            }
            Op::InvalidateAll => {
                let live_before: Vec<u8> = model.live_keys().collect();
                let before = cache.stats().invalidations;
                cache.invalidate_all();
                let counted = cache.stats().invalidations - before;
                if exact {
                    prop_assert_eq!(counted, live_before.len() as u64);
                } else {
                    prop_assert!(counted <= live_before.len() as u64);
                }
                model.invalidations += counted;
                model.entries.clear();
            }
            Op::Advance(units) => {
                mock.increment(UNIT * units as u32);
                model.now += units;
            }
            Op::RunPendingTasks => cache.run_pending_tasks(),
        }
        // The count of live entries is exact after every operation: what
        // the cache shows, and without evictions what the model holds.
        let count = cache.entry_count();
        prop_assert_eq!(count, cache.live().len() as u64, "entry_count vs iter");
        if exact {
            let live = model.live_keys().count();
            prop_assert_eq!(count, live as u64, "entry_count vs the model");
        }
    }

    // Whatever the cache still shows, the model has, with the same value.
    let shown = cache.live();
    for &(key, value) in &shown {
        prop_assert_eq!(Some(value), model.live(key), "iter shows key {}", key);
    }
    if exact {
        prop_assert_eq!(shown.len(), model.live_keys().count());
    }
    let stats = cache.stats();
    prop_assert_eq!((stats.hits, stats.misses), (model.hits, model.misses));
    prop_assert_eq!(stats.inserts, model.inserts);
    prop_assert_eq!(stats.invalidations, model.invalidations);
    prop_assert_eq!(stats.tag_invalidations, model.tag_invalidations);
    prop_assert_eq!(reconciled(&stats), stats.entry_count, "{:?}", stats);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn unbounded_cache_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        check::<TaggedCache<u8, u32>>(ops, None, None)?;
    }

    #[test]
    fn default_ttl_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        check::<TaggedCache<u8, u32>>(ops, None, Some(15))?;
    }

    #[test]
    fn bounded_cache_never_resurrects_entries(
        ops in proptest::collection::vec(op(), 1..160),
        capacity in 1..6u64,
    ) {
        check::<TaggedCache<u8, u32>>(ops, Some(capacity), None)?;
    }

    #[test]
    fn async_flavour_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        check::<Async>(ops, None, Some(15))?;
    }

    #[test]
    fn bounded_async_flavour_never_resurrects_entries(
        ops in proptest::collection::vec(op(), 1..160),
        capacity in 1..6u64,
    ) {
        check::<Async>(ops, Some(capacity), None)?;
    }
}

/// Many threads mixing reads, writes and tag invalidations: after an
/// invalidation returns, no read started later sees an entry stamped
/// before it.
#[test]
fn no_read_after_invalidate_tag_sees_an_older_entry() {
    use std::sync::RwLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    let cache: TaggedCache<u32, u64> = TaggedCache::new(10_000);
    // Values are the generation current when they were written. Writers
    // hold `generation` shared while writing, so once the invalidator has
    // moved past generation g (exclusively), every entry of generation <= g
    // is stamped, and the invalidation that follows must hide them all.
    let generation = RwLock::new(1u64);
    let invalidated_through = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for i in 0..20_000u32 {
                    let g = generation.read().unwrap();
                    cache.insert_with(i % 64, *g, EntryOptions::default().tag("shared"));
                }
            });
        }
        s.spawn(|| {
            for _ in 0..200 {
                let g = {
                    let mut g = generation.write().unwrap();
                    *g += 1;
                    *g - 1
                };
                cache.invalidate_tag("shared");
                invalidated_through.store(g, Ordering::SeqCst);
                std::thread::yield_now();
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                for i in 0..50_000u32 {
                    let floor = invalidated_through.load(Ordering::SeqCst);
                    if let Some(g) = cache.get(&(i % 64)) {
                        assert!(
                            g > floor,
                            "read generation {g} after {floor} was invalidated"
                        );
                    }
                }
            });
        }
    });
}
