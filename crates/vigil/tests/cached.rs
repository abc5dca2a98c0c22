//! `#[cached]` end to end through the facade: hits and misses, keys, TTL,
//! `Err` and `None`, tags, the uncached twin, single loading under
//! concurrency, methods, `async fn`, composition with `#[timed]`, and a
//! write made while the body runs winning over its result.
//!
//! Every test has functions of its own: their caches are `static`s shared
//! by the whole test binary, and tests run in parallel.

#![cfg(feature = "cache")]

#[path = "../../vigil-timing/tests/support/mod.rs"]
mod support;

use std::num::ParseIntError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, LazyLock, Mutex};
use std::thread;
use std::time::Duration;

use support::Capture;
use vigil::cached;
use vigil::timed;
use vigil::timing::CALLS_TOTAL;

const MODULE: &str = module_path!();

/// How many times a body ran.
struct Runs(AtomicUsize);

impl Runs {
    const fn new() -> Runs {
        Runs(AtomicUsize::new(0))
    }

    /// Counts a run; returns its index (0 for the first).
    fn bump(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst)
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

// ---- hits and misses ----

static SQUARE_RUNS: Runs = Runs::new();

/// Squares, slowly.
#[cached]
fn square(x: u64) -> u64 {
    SQUARE_RUNS.bump();
    x * x
}

#[test]
fn a_second_call_with_the_same_arguments_is_served_from_the_cache() {
    assert_eq!(square(3), 9);
    assert_eq!(square(3), 9);
    assert_eq!(SQUARE_RUNS.get(), 1);
    let stats = square_cache().stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
    assert_eq!(stats.capacity, Some(10_000));
    assert_eq!(stats.name, Some(format!("{MODULE}::square")));
    assert_eq!(square_cache().get(&3), Some(9));
}

static ADD_RUNS: Runs = Runs::new();

#[cached(max_capacity = 100, name = "sums")]
fn add(a: u32, b: u32) -> u32 {
    ADD_RUNS.bump();
    a + b
}

#[test]
fn different_arguments_miss() {
    assert_eq!(add(1, 2), 3);
    assert_eq!(add(2, 1), 3);
    assert_eq!(add(1, 3), 4);
    assert_eq!(add(1, 2), 3);
    assert_eq!(ADD_RUNS.get(), 3);
    assert!(add_cache().contains_key(&(2, 1)));
    let stats = add_cache().stats();
    assert_eq!(stats.name.as_deref(), Some("sums"));
    assert_eq!(stats.capacity, Some(100));
}

static GREET_RUNS: Runs = Runs::new();

#[cached]
fn greet(name: &str, punctuation: &[u8]) -> String {
    GREET_RUNS.bump();
    format!("hello {name}{}", String::from_utf8_lossy(punctuation))
}

#[test]
fn reference_arguments_are_keyed_by_owned_copies() {
    let name = String::from("ada");
    assert_eq!(greet(&name, b"!"), "hello ada!");
    drop(name);
    assert_eq!(greet("ada", b"!"), "hello ada!");
    assert_eq!(greet("ada", b"?"), "hello ada?");
    assert_eq!(GREET_RUNS.get(), 2);
    let key: (String, Vec<u8>) = ("ada".into(), b"!".to_vec());
    assert!(greet_cache().contains_key(&key));
}

/// Stands for a connection pool: not part of any key.
struct Db {
    region: &'static str,
}

static LOOKUP_RUNS: Runs = Runs::new();

#[cached(key = id)]
fn lookup(db: &Db, id: u64) -> String {
    LOOKUP_RUNS.bump();
    format!("{id}@{}", db.region)
}

static SCOPED_RUNS: Runs = Runs::new();

#[cached(key: (&'static str, u64) = (db.region, id))]
fn scoped_lookup(db: &Db, id: u64) -> String {
    SCOPED_RUNS.bump();
    format!("{id}@{}", db.region)
}

#[test]
fn a_key_leaves_out_the_arguments_it_does_not_name() {
    let (eu, us) = (Db { region: "eu" }, Db { region: "us" });
    assert_eq!(lookup(&eu, 1), "1@eu");
    assert_eq!(lookup(&us, 1), "1@eu");
    assert_eq!(lookup(&us, 2), "2@us");
    assert_eq!(LOOKUP_RUNS.get(), 2);
    assert_eq!(lookup_cache().get(&1).as_deref(), Some("1@eu"));

    assert_eq!(scoped_lookup(&eu, 1), "1@eu");
    assert_eq!(scoped_lookup(&us, 1), "1@us");
    assert_eq!(scoped_lookup(&us, 1), "1@us");
    assert_eq!(SCOPED_RUNS.get(), 2);
}

static FIB_RUNS: Runs = Runs::new();

#[cached]
fn fib(n: u64) -> u64 {
    FIB_RUNS.bump();
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[test]
fn recursive_calls_go_through_the_cache() {
    assert_eq!(fib(90), 2_880_067_194_370_816_120);
    assert_eq!(FIB_RUNS.get(), 91);
}

// ---- time to live ----

static CLOCK: LazyLock<(quanta::Clock, Arc<quanta::Mock>)> = LazyLock::new(quanta::Clock::mock);
static TTL_RUNS: Runs = Runs::new();

#[cached(ttl = "5m", clock = CLOCK.0.clone())]
fn session(_user: u32) -> usize {
    TTL_RUNS.bump()
}

#[test]
fn entries_expire_after_the_ttl() {
    assert_eq!(session(1), 0);
    CLOCK.1.increment(Duration::from_secs(299));
    assert_eq!(session(1), 0);
    CLOCK.1.increment(Duration::from_secs(2));
    assert_eq!(session(1), 1);
    assert_eq!(session(1), 1);
    assert_eq!(TTL_RUNS.get(), 2);
}

// ---- Err and None ----

/// An error that cannot be cloned: a cache that does not keep errors
/// must not need to.
#[derive(Debug, PartialEq)]
struct Unavailable(usize);

static FALLIBLE_RUNS: Runs = Runs::new();

#[cached]
fn fallible(input: &str) -> Result<u32, Unavailable> {
    let run = FALLIBLE_RUNS.bump();
    input.parse().map_err(|_| Unavailable(run))
}

#[test]
fn errors_are_not_cached_by_default() {
    assert_eq!(fallible("x"), Err(Unavailable(0)));
    assert_eq!(fallible("x"), Err(Unavailable(1)));
    assert_eq!(fallible("7"), Ok(7));
    assert_eq!(fallible("7"), Ok(7));
    assert_eq!(FALLIBLE_RUNS.get(), 3);
    assert!(!fallible_cache().contains_key("x"));
}

static CACHED_ERR_RUNS: Runs = Runs::new();

#[cached(cache_err = true)]
fn parse_once(input: &str) -> Result<u32, ParseIntError> {
    CACHED_ERR_RUNS.bump();
    input.parse()
}

#[test]
fn errors_are_cached_with_cache_err() {
    assert!(parse_once("x").is_err());
    assert!(parse_once("x").is_err());
    assert_eq!(parse_once("8"), Ok(8));
    assert_eq!(CACHED_ERR_RUNS.get(), 2);
    assert!(parse_once_cache().get("x").unwrap().is_err());
}

static FIND_RUNS: Runs = Runs::new();

#[cached]
fn find(id: u32) -> Option<String> {
    FIND_RUNS.bump();
    id.is_multiple_of(2).then(|| format!("even {id}"))
}

static FIND_ALL_RUNS: Runs = Runs::new();

#[cached(cache_none = true)]
fn find_remembering_misses(id: u32) -> Option<String> {
    FIND_ALL_RUNS.bump();
    id.is_multiple_of(2).then(|| format!("even {id}"))
}

#[test]
fn none_is_cached_only_with_cache_none() {
    assert_eq!(find(1), None);
    assert_eq!(find(1), None);
    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(find(2).as_deref(), Some("even 2"));
    assert_eq!(FIND_RUNS.get(), 3);

    assert_eq!(find_remembering_misses(1), None);
    assert_eq!(find_remembering_misses(1), None);
    assert_eq!(FIND_ALL_RUNS.get(), 1);
    assert_eq!(find_remembering_misses_cache().get(&1), Some(None));
}

// ---- tags ----

static USER_RUNS: Runs = Runs::new();

#[cached(tags = ["users", format!("user:{id}"), format!("region:{region}")])]
fn user(id: u64, region: &str) -> String {
    USER_RUNS.bump();
    format!("user {id} in {region}")
}

fn team_tags(team: &str) -> Vec<String> {
    vec![format!("team:{team}")]
}

static TEAM_RUNS: Runs = Runs::new();

#[cached(tags = team_tags(team))]
fn team_size(team: &str) -> usize {
    TEAM_RUNS.bump();
    team.len()
}

#[test]
fn invalidating_a_tag_drops_the_entries_carrying_it() {
    user(1, "eu");
    user(2, "eu");
    user(3, "us");
    assert_eq!(USER_RUNS.get(), 3);

    // Computed from the arguments.
    assert_eq!(user_cache().invalidate_tag("user:2"), 1);
    user(1, "eu");
    user(2, "eu");
    assert_eq!(USER_RUNS.get(), 4);
    assert_eq!(user_cache().invalidate_tag("region:eu"), 2);
    user(3, "us");
    assert_eq!(USER_RUNS.get(), 4);

    // Static.
    assert_eq!(user_cache().invalidate_tag("users"), 1);
    user(3, "us");
    assert_eq!(USER_RUNS.get(), 5);

    // Any iterator of tags.
    team_size("core");
    assert_eq!(team_size_cache().invalidate_tag("team:core"), 1);
    team_size("core");
    assert_eq!(TEAM_RUNS.get(), 2);
}

// ---- the uncached twin ----

static REPORT_RUNS: Runs = Runs::new();

#[cached]
fn report(day: u32) -> Result<String, Unavailable> {
    REPORT_RUNS.bump();
    Ok(format!("report {day}"))
}

#[test]
fn the_uncached_function_always_runs_the_body_and_leaves_the_cache_alone() {
    assert_eq!(report_uncached(1), Ok("report 1".into()));
    assert_eq!(report_uncached(1), Ok("report 1".into()));
    assert_eq!(REPORT_RUNS.get(), 2);
    assert!(!report_cache().contains_key(&1));
    assert_eq!(report(1), Ok("report 1".into()));
    assert_eq!(report_uncached(1), Ok("report 1".into()));
    assert_eq!(REPORT_RUNS.get(), 4);
}

// ---- concurrency ----

/// A gate the loaders wait at until the test opens it.
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    const fn new() -> Gate {
        Gate {
            open: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

static SLOW_RUNS: Runs = Runs::new();
static SLOW_GATE: Gate = Gate::new();

#[cached]
fn slow(key: u32) -> u32 {
    SLOW_RUNS.bump();
    SLOW_GATE.wait();
    key * 10
}

#[test]
fn concurrent_calls_for_one_key_run_the_body_once() {
    const CALLERS: usize = 8;
    let start = Arc::new(Barrier::new(CALLERS + 1));
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                slow(4)
            })
        })
        .collect();
    start.wait();
    // Let the callers reach the cache and queue behind the first loader;
    // the assertions hold however many got there in time.
    while SLOW_RUNS.get() == 0 {
        thread::yield_now();
    }
    thread::sleep(Duration::from_millis(20));
    SLOW_GATE.open();
    for caller in callers {
        assert_eq!(caller.join().unwrap(), 40);
    }
    assert_eq!(SLOW_RUNS.get(), 1);
    let stats = slow_cache().stats();
    assert_eq!(stats.hits + stats.misses, CALLERS as u64);
}

/// Counts loaders in flight; each waits until `want` are.
struct Rendezvous {
    inside: Mutex<usize>,
    changed: Condvar,
}

impl Rendezvous {
    const fn new() -> Rendezvous {
        Rendezvous {
            inside: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    /// Panics if `want` loaders are not in flight together within 10s:
    /// one key blocked another.
    fn meet(&self, want: usize) {
        let mut inside = self.inside.lock().unwrap();
        *inside += 1;
        self.changed.notify_all();
        let (inside, timeout) = self
            .changed
            .wait_timeout_while(inside, Duration::from_secs(10), |n| *n < want)
            .unwrap();
        assert!(!timeout.timed_out(), "only {} loaders in flight", *inside);
    }
}

static PARALLEL: Rendezvous = Rendezvous::new();

#[cached]
fn parallel(key: u32) -> u32 {
    PARALLEL.meet(3);
    key
}

#[test]
fn different_keys_load_in_parallel() {
    let callers: Vec<_> = (0..3).map(|k| thread::spawn(move || parallel(k))).collect();
    let keys: Vec<u32> = callers.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(keys, [0, 1, 2]);
}

static FLAKY_RUNS: Runs = Runs::new();
static FLAKY_GATE: Gate = Gate::new();

#[cached]
fn flaky(key: u32) -> Result<u32, Unavailable> {
    let run = FLAKY_RUNS.bump();
    if run == 0 {
        FLAKY_GATE.wait();
    }
    Err(Unavailable(run + key as usize))
}

#[test]
fn a_caller_waiting_on_a_failed_load_runs_the_body_for_its_own_error() {
    let first = thread::spawn(|| flaky(0));
    while FLAKY_RUNS.get() == 0 {
        thread::yield_now();
    }
    let second = thread::spawn(|| flaky(0));
    thread::sleep(Duration::from_millis(20));
    FLAKY_GATE.open();
    // Each caller gets the error of the body it ran, whether the second
    // waited on the first's load or came after it.
    assert_eq!(first.join().unwrap(), Err(Unavailable(0)));
    assert_eq!(second.join().unwrap(), Err(Unavailable(1)));
    assert_eq!(FLAKY_RUNS.get(), 2);
}

static SOMETIMES_RUNS: Runs = Runs::new();
static SOMETIMES_GATE: Gate = Gate::new();

#[cached]
fn sometimes(key: u32) -> Option<usize> {
    let run = SOMETIMES_RUNS.bump();
    if run == 0 {
        SOMETIMES_GATE.wait();
        return None;
    }
    Some(run + key as usize)
}

#[test]
fn a_caller_waiting_on_a_load_that_found_nothing_runs_the_body_itself() {
    let first = thread::spawn(|| sometimes(0));
    while SOMETIMES_RUNS.get() == 0 {
        thread::yield_now();
    }
    let second = thread::spawn(|| sometimes(0));
    thread::sleep(Duration::from_millis(20));
    SOMETIMES_GATE.open();
    assert_eq!(first.join().unwrap(), None);
    assert_eq!(second.join().unwrap(), Some(1));
    assert_eq!(SOMETIMES_RUNS.get(), 2);
}

// ---- methods ----

struct Repo {
    id: u64,
}

static REPO_GET_RUNS: Runs = Runs::new();
static REPO_SCOPED_RUNS: Runs = Runs::new();
static REPO_TAKE_RUNS: Runs = Runs::new();
static REPO_MUT_RUNS: Runs = Runs::new();
static REPO_OPEN_RUNS: Runs = Runs::new();
static REPO_LOAD_RUNS: Runs = Runs::new();

impl Repo {
    /// Shared by every `Repo`: `self` is not in the key.
    #[cached]
    fn get(&self, n: u32) -> String {
        REPO_GET_RUNS.bump();
        format!("{}:{n}", self.id)
    }

    #[cached(key: (u64, u32) = (self.id, n), tags = [format!("repo:{}", self.id)])]
    fn scoped(&self, n: u32) -> Option<String> {
        REPO_SCOPED_RUNS.bump();
        Some(format!("{}:{n}", self.id))
    }

    #[cached(tags = [format!("repo:{}", self.id)])]
    fn into_label(self, n: u32) -> Result<String, Unavailable> {
        REPO_TAKE_RUNS.bump();
        Ok(format!("{}:{n}", self.id))
    }

    #[cached]
    fn bump(&mut self, by: u64) -> u64 {
        REPO_MUT_RUNS.bump();
        self.id += by;
        self.id
    }

    #[cached]
    fn shared(self: Arc<Self>, n: u64) -> u64 {
        self.id + n
    }

    #[cached(tags = [format!("repo:{}", self.id)])]
    async fn load(&self, n: u32) -> Result<String, Unavailable> {
        REPO_LOAD_RUNS.bump();
        tokio::task::yield_now().await;
        Ok(format!("{}:{n}", self.id))
    }

    /// No receiver; `Self` in the body makes it associated.
    #[cached]
    fn open(id: u64) -> Option<u64> {
        REPO_OPEN_RUNS.bump();
        Some(Self { id }.id)
    }
}

#[test]
fn a_method_cache_is_shared_by_every_instance_unless_the_key_says_otherwise() {
    let (one, two) = (Repo { id: 1 }, Repo { id: 2 });
    assert_eq!(one.get(5), "1:5");
    assert_eq!(two.get(5), "1:5");
    assert_eq!(REPO_GET_RUNS.get(), 1);
    assert_eq!(
        Repo::get_cache().stats().name,
        Some(format!("{MODULE}::Repo::get"))
    );

    assert_eq!(one.scoped(5).as_deref(), Some("1:5"));
    assert_eq!(two.scoped(5).as_deref(), Some("2:5"));
    assert_eq!(two.scoped(5).as_deref(), Some("2:5"));
    assert_eq!(REPO_SCOPED_RUNS.get(), 2);
    assert_eq!(Repo::scoped_cache().invalidate_tag("repo:2"), 1);
    assert_eq!(two.scoped(5).as_deref(), Some("2:5"));
    assert_eq!(REPO_SCOPED_RUNS.get(), 3);
}

#[test]
fn methods_taking_self_by_value_or_mut_and_associated_functions_are_cached() {
    assert_eq!(Repo { id: 3 }.into_label(1), Ok("3:1".into()));
    assert_eq!(Repo { id: 4 }.into_label(1), Ok("3:1".into()));
    assert_eq!(REPO_TAKE_RUNS.get(), 1);
    assert_eq!(Repo::into_label_cache().invalidate_tag("repo:3"), 1);
    assert_eq!(Repo { id: 4 }.into_label(1), Ok("4:1".into()));
    assert_eq!(Repo { id: 5 }.into_label_uncached(1), Ok("5:1".into()));

    let mut repo = Repo { id: 10 };
    assert_eq!(repo.bump(1), 11);
    assert_eq!(repo.bump(1), 11); // a hit skips the body
    assert_eq!((repo.id, REPO_MUT_RUNS.get()), (11, 1));

    assert_eq!(Repo::open(7), Some(7));
    assert_eq!(Repo::open(7), Some(7));
    assert_eq!(REPO_OPEN_RUNS.get(), 1);
    assert!(Repo::open_cache().contains_key(&7));

    assert_eq!(Arc::new(Repo { id: 1 }).shared(1), 2);
    assert_eq!(Arc::new(Repo { id: 5 }).shared(1), 2);
}

#[test]
fn async_methods_are_cached() {
    rt().block_on(async {
        let repo = Repo { id: 8 };
        assert_eq!(repo.load(1).await, Ok("8:1".into()));
        assert_eq!(repo.load(1).await, Ok("8:1".into()));
        assert_eq!(REPO_LOAD_RUNS.get(), 1);
        assert_eq!(Repo::load_cache().invalidate_tag("repo:8").await, 1);
        assert_eq!(repo.load(1).await, Ok("8:1".into()));
        assert_eq!(REPO_LOAD_RUNS.get(), 2);
    });
}

// ---- async ----

static FETCH_RUNS: Runs = Runs::new();

#[cached(tags = [format!("user:{id}")], ttl = "1h")]
async fn fetch(id: u64) -> String {
    FETCH_RUNS.bump();
    tokio::task::yield_now().await;
    format!("user {id}")
}

static FETCH_OPT_RUNS: Runs = Runs::new();

#[cached]
async fn fetch_optional(id: u64) -> Option<u64> {
    FETCH_OPT_RUNS.bump();
    tokio::task::yield_now().await;
    (id > 0).then_some(id)
}

static FETCH_RES_RUNS: Runs = Runs::new();

#[cached]
async fn fetch_fallible(id: u64) -> Result<u64, Unavailable> {
    let run = FETCH_RES_RUNS.bump();
    tokio::task::yield_now().await;
    if id == 0 {
        Err(Unavailable(run))
    } else {
        Ok(id)
    }
}

#[test]
fn async_functions_are_cached_with_the_future_flavour() {
    rt().block_on(async {
        assert_eq!(fetch(1).await, "user 1");
        assert_eq!(fetch(1).await, "user 1");
        assert_eq!(fetch(2).await, "user 2");
        assert_eq!(FETCH_RUNS.get(), 2);
        assert_eq!(fetch_cache().invalidate_tag("user:1").await, 1);
        assert_eq!(fetch(1).await, "user 1");
        assert_eq!(FETCH_RUNS.get(), 3);
        assert_eq!(fetch_uncached(1).await, "user 1");
        assert_eq!(FETCH_RUNS.get(), 4);

        assert_eq!(fetch_optional(0).await, None);
        assert_eq!(fetch_optional(0).await, None);
        assert_eq!(fetch_optional(1).await, Some(1));
        assert_eq!(fetch_optional(1).await, Some(1));
        assert_eq!(FETCH_OPT_RUNS.get(), 3);

        assert_eq!(fetch_fallible(0).await, Err(Unavailable(0)));
        assert_eq!(fetch_fallible(0).await, Err(Unavailable(1)));
        assert_eq!(fetch_fallible(1).await, Ok(1));
        assert_eq!(fetch_fallible(1).await, Ok(1));
        assert_eq!(FETCH_RES_RUNS.get(), 3);
    });
}

static ASYNC_SLOW_RUNS: Runs = Runs::new();
static ASYNC_GATE: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(0));

#[cached]
async fn async_slow(key: u32) -> u32 {
    ASYNC_SLOW_RUNS.bump();
    let _permit = ASYNC_GATE.acquire().await.unwrap();
    key + 1
}

static ASYNC_PARALLEL: LazyLock<tokio::sync::Barrier> =
    LazyLock::new(|| tokio::sync::Barrier::new(2));

#[cached]
async fn async_parallel(key: u32) -> u32 {
    ASYNC_PARALLEL.wait().await;
    key
}

#[test]
fn concurrent_tasks_for_one_key_await_one_load_and_other_keys_do_not_wait() {
    rt().block_on(async {
        let tasks: Vec<_> = (0..8).map(|_| tokio::spawn(async_slow(1))).collect();
        // On this one-thread runtime every task has now run up to the
        // cache: one loads (and waits at the gate), the others await it.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(ASYNC_SLOW_RUNS.get(), 1);
        ASYNC_GATE.add_permits(1);
        for task in tasks {
            assert_eq!(task.await.unwrap(), 2);
        }
        assert_eq!(ASYNC_SLOW_RUNS.get(), 1);

        // Each loader waits for the other: they only finish if both run.
        let both = async { tokio::join!(async_parallel(1), async_parallel(2)) };
        let both = tokio::time::timeout(Duration::from_secs(10), both).await;
        assert_eq!(both.expect("one key waited on another"), (1, 2));
    });
}

// ---- with #[timed] ----

static TIMED_FIRST_RUNS: Runs = Runs::new();
static CACHED_FIRST_RUNS: Runs = Runs::new();

#[timed]
#[cached]
fn timed_above(x: u32) -> Result<u32, Unavailable> {
    TIMED_FIRST_RUNS.bump();
    Ok(x)
}

#[cached]
#[timed(labels(layer = "db"))]
fn timed_below(x: u32) -> Result<u32, Unavailable> {
    CACHED_FIRST_RUNS.bump();
    Ok(x)
}

#[timed]
#[cached(ttl = "1m")]
async fn timed_async(x: u32) -> u32 {
    x
}

struct Catalog;

static CATALOG_RUNS: Runs = Runs::new();

#[timed]
impl Catalog {
    #[cached]
    fn price(&self, item: u32) -> u32 {
        CATALOG_RUNS.bump();
        item * 100
    }

    fn count(&self) -> u32 {
        1
    }
}

#[test]
fn timed_and_cached_compose_in_either_order_timing_the_runs_of_the_body() {
    let capture = Capture::new();
    capture.run(|| {
        for _ in 0..3 {
            assert_eq!(timed_above(1), Ok(1));
            assert_eq!(timed_below(1), Ok(1));
        }
        assert_eq!(timed_below_uncached(1), Ok(1));
        assert_eq!(Catalog.price(2) + Catalog.price(2), 400);
        assert_eq!(Catalog.count(), 1);
        rt().block_on(async {
            assert_eq!(timed_async(1).await, 1);
            assert_eq!(timed_async(1).await, 1);
        });
    });
    assert_eq!((TIMED_FIRST_RUNS.get(), CACHED_FIRST_RUNS.get()), (1, 2));
    let m = capture.metrics();
    let calls = |f: &str| m.counter(CALLS_TOTAL, &[("function", f), ("module", MODULE)]);
    assert_eq!(calls("timed_above"), 1);
    assert_eq!(calls("timed_below"), 2);
    assert_eq!(calls("timed_async"), 1);
    assert_eq!(calls("Catalog::price"), 1);
    assert_eq!(CATALOG_RUNS.get(), 1);
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("function", "timed_below"), ("layer", "db")]),
        2
    );
    assert_eq!(timed_above_cache().stats().hits, 2);
}

// ---- a write made while the body runs wins over its result ----

/// Holds the body of `racing_row` until released, once armed.
static RACE_STARTED: Mutex<Option<std::sync::mpsc::Sender<()>>> = Mutex::new(None);
static RACE_RELEASE: Mutex<Option<std::sync::mpsc::Receiver<()>>> = Mutex::new(None);
static RACE_RUNS: Runs = Runs::new();

#[cached(tags = [format!("row:{id}")])]
fn racing_row(id: u32) -> String {
    let run = RACE_RUNS.bump();
    let started = RACE_STARTED.lock().unwrap().take();
    if let Some(started) = started {
        started.send(()).unwrap();
        let release = RACE_RELEASE.lock().unwrap().take().unwrap();
        release.recv().unwrap();
    }
    format!("row {id}, run {run}")
}

/// Calls `racing_row(id)` with its body held until `write` has been made;
/// returns what that call returned.
fn race_row_against(id: u32, write: impl FnOnce()) -> String {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    *RACE_STARTED.lock().unwrap() = Some(started_tx);
    *RACE_RELEASE.lock().unwrap() = Some(release_rx);
    let loading = thread::spawn(move || racing_row(id));
    started.recv().unwrap();
    write();
    release.send(()).unwrap();
    loading.join().unwrap()
}

#[test]
fn a_write_made_while_the_body_runs_wins_over_its_result() {
    // An insert: the cache keeps the inserted value.
    let stale = race_row_against(1, || racing_row_cache().insert(1, "new".to_string()));
    assert_eq!(
        stale, "row 1, run 0",
        "the call whose body ran gets its result"
    );
    assert_eq!(racing_row_cache().get(&1).as_deref(), Some("new"));
    assert_eq!(racing_row(1), "new");

    // A tag invalidation (and an invalidation by key): the next call runs
    // the body again.
    let stale = race_row_against(2, || {
        racing_row_cache().invalidate_tag("row:2");
    });
    assert_eq!(stale, "row 2, run 1");
    assert_eq!(racing_row_cache().get(&2), None);
    let stale = race_row_against(3, || racing_row_cache().invalidate(&3));
    assert_eq!(stale, "row 3, run 2");
    assert_eq!(racing_row_cache().get(&3), None);
    assert_eq!(racing_row(2), "row 2, run 3");
    assert_eq!(racing_row(2), "row 2, run 3");
    assert_eq!(RACE_RUNS.get(), 4);
}
