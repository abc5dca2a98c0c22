//! `#[timed]` end to end: every supported item form, outcomes, callers,
//! cancellation, panics, labels, slow calls and late recorders.

#[path = "../../vigil-timing/tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use support::Capture;
use vigil::timed;
use vigil::timing::{
    CALLS_CONCURRENT, CALLS_DURATION, CALLS_TOTAL, CANCELLATIONS_TOTAL, PANICS_TOTAL,
};

const MODULE: &str = module_path!();

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// A future pending on its first poll, ready on the second.
fn yield_once() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

// ---- free functions, results and panics ----

#[timed]
fn parse(input: &str) -> Result<u32, std::num::ParseIntError> {
    input.parse()
}

#[timed]
fn read_alias(fail: bool) -> std::io::Result<()> {
    if fail {
        return Err(std::io::Error::other("nope"));
    }
    Ok(())
}

#[timed]
fn plain() -> u32 {
    7
}

fn is_positive(n: &i64) -> bool {
    *n > 0
}

#[timed(ok_if = is_positive)]
fn signed(n: i64) -> i64 {
    n
}

#[timed(error_if = Option::is_none)]
fn lookup(hit: bool) -> Option<u8> {
    hit.then_some(1)
}

#[timed(concurrency)]
fn explode(msg: &'static str) -> u8 {
    std::panic::panic_any(msg)
}

#[test]
fn results_are_ok_or_error_by_variant() {
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(parse("42"), Ok(42));
        assert!(parse("x").is_err());
        assert!(parse("y").is_err());
        assert!(read_alias(true).is_err());
        assert!(read_alias(false).is_ok());
        assert_eq!(plain(), 7);
    });
    let m = capture.metrics();
    let calls = |f: &str, r: &str| {
        m.counter(
            CALLS_TOTAL,
            &[("function", f), ("module", MODULE), ("result", r)],
        )
    };
    assert_eq!((calls("parse", "ok"), calls("parse", "error")), (1, 2));
    assert_eq!(
        (calls("read_alias", "ok"), calls("read_alias", "error")),
        (1, 1)
    );
    assert_eq!((calls("plain", "ok"), calls("plain", "error")), (1, 0));
    assert_eq!(
        m.histogram(CALLS_DURATION, &[("function", "parse")]).len(),
        3
    );
}

#[test]
fn ok_if_and_error_if_decide_the_outcome() {
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(signed(5), 5);
        assert_eq!(signed(-5), -5);
        assert_eq!(lookup(true), Some(1));
        assert_eq!(lookup(false), None);
        assert_eq!(lookup(false), None);
    });
    let m = capture.metrics();
    let calls = |f: &str, r: &str| m.counter(CALLS_TOTAL, &[("function", f), ("result", r)]);
    assert_eq!((calls("signed", "ok"), calls("signed", "error")), (1, 1));
    assert_eq!((calls("lookup", "ok"), calls("lookup", "error")), (1, 2));
}

#[test]
fn panics_are_errors_counted_once_and_propagate_unchanged() {
    let capture = Capture::new();
    let caught = capture.run(|| catch_unwind(|| explode("kaboom")));
    assert_eq!(caught.unwrap_err().downcast_ref::<&str>(), Some(&"kaboom"));
    let m = capture.metrics();
    let f = ("function", "explode");
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "error")]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "ok")]), 0);
    assert_eq!(m.counter(PANICS_TOTAL, &[f, ("module", MODULE)]), 1);
    assert_eq!(m.histogram(CALLS_DURATION, &[f]).len(), 1);
    assert_eq!(m.gauge(CALLS_CONCURRENT, &[f]), Some(0.0));
}

// ---- durations under a mock clock ----

#[timed]
fn takes(mock: &quanta::Mock, d: Duration) {
    mock.increment(d);
}

#[timed]
async fn takes_async(mock: Arc<quanta::Mock>, d: Duration) {
    yield_once().await;
    mock.increment(d);
}

#[test]
fn durations_are_seconds_from_the_clock() {
    let capture = Capture::new();
    let (clock, mock) = quanta::Clock::mock();
    capture.run(|| {
        quanta::with_clock(&clock, || {
            takes(&mock, Duration::from_millis(1500));
            takes(&mock, Duration::from_micros(250));
            rt().block_on(takes_async(Arc::clone(&mock), Duration::from_millis(20)));
        })
    });
    let m = capture.metrics();
    assert_eq!(
        m.histogram(CALLS_DURATION, &[("function", "takes")]),
        vec![1.5, 0.000_25]
    );
    assert_eq!(
        m.histogram(CALLS_DURATION, &[("function", "takes_async")]),
        vec![0.02]
    );
}

// ---- callers, sync and async ----

#[timed]
fn leaf() -> Result<(), ()> {
    Ok(())
}

#[timed]
fn branch() {
    leaf().unwrap();
}

#[timed]
async fn async_leaf() -> Result<(), String> {
    yield_once().await;
    leaf().unwrap(); // a sync call inside an async one
    Err("no".into())
}

#[timed]
async fn async_branch() {
    yield_once().await;
    let _ = async_leaf().await;
    yield_once().await;
    let _ = async_leaf().await;
}

#[timed]
async fn other_branch() {
    let _ = async_leaf().await;
}

#[test]
fn callers_are_reported_through_nested_sync_and_async_calls() {
    let capture = Capture::new();
    capture.run(|| {
        branch();
        leaf().unwrap();
        rt().block_on(async {
            tokio::join!(async_branch(), other_branch());
            let _ = async_leaf().await;
        });
    });
    let m = capture.metrics();
    let by = |f: &str, cf: &str| {
        let cm = if cf.is_empty() { "" } else { MODULE };
        m.counter(
            CALLS_TOTAL,
            &[
                ("function", f),
                ("caller_function", cf),
                ("caller_module", cm),
            ],
        )
    };
    assert_eq!(by("leaf", "branch"), 1);
    assert_eq!(by("leaf", ""), 1);
    assert_eq!(by("leaf", "async_leaf"), 4);
    assert_eq!(by("async_leaf", "async_branch"), 2);
    assert_eq!(by("async_leaf", "other_branch"), 1);
    assert_eq!(by("async_leaf", ""), 1);
    assert_eq!(by("branch", ""), 1);
}

// ---- cancellation ----

#[timed(concurrency)]
async fn slow_request() -> Result<(), ()> {
    yield_once().await;
    Ok(())
}

#[test]
fn dropped_async_call_is_cancelled_and_gauge_returns_to_zero() {
    let capture = Capture::new();
    capture.run(|| {
        let mut fut = pin!(slow_request());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            capture
                .metrics()
                .gauge(CALLS_CONCURRENT, &[("function", "slow_request")]),
            Some(1.0)
        );
    });
    let m = capture.metrics();
    let f = ("function", "slow_request");
    assert_eq!(m.gauge(CALLS_CONCURRENT, &[f]), Some(0.0));
    assert_eq!(m.counter(CANCELLATIONS_TOTAL, &[f, ("module", MODULE)]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[f]), 0);
    assert!(m.histogram(CALLS_DURATION, &[f]).is_empty());
}

#[test]
fn timeout_cancels_and_completion_does_not() {
    let capture = Capture::new();
    capture.run(|| {
        rt().block_on(async {
            let never = std::future::pending::<()>();
            #[timed(name = "waits_forever", concurrency)]
            async fn waits(never: std::future::Pending<()>) {
                never.await;
            }
            assert!(
                tokio::time::timeout(Duration::from_millis(1), waits(never))
                    .await
                    .is_err()
            );
            slow_request().await.unwrap();
        })
    });
    let m = capture.metrics();
    assert_eq!(
        m.counter(CANCELLATIONS_TOTAL, &[("function", "waits_forever")]),
        1
    );
    assert_eq!(
        m.gauge(CALLS_CONCURRENT, &[("function", "waits_forever")]),
        Some(0.0)
    );
    assert_eq!(
        m.counter(CANCELLATIONS_TOTAL, &[("function", "slow_request")]),
        0
    );
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "slow_request"), ("result", "ok")]
        ),
        1
    );
}

// ---- methods, generics, impl Trait, trait impls, impl blocks ----

#[derive(Default)]
struct Store {
    items: Vec<u32>,
}

impl Store {
    #[timed]
    fn into_items(self) -> Vec<u32> {
        self.items
    }

    #[timed]
    fn first(&self) -> Option<&u32> {
        self.items.first()
    }

    #[timed]
    fn push(&mut self, v: u32) -> &mut Vec<u32> {
        self.items.push(v);
        &mut self.items
    }

    #[timed]
    fn evens(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.iter().copied().filter(|v| v % 2 == 0)
    }
}

#[timed]
fn largest<T: PartialOrd + Copy, const N: usize>(xs: [T; N]) -> Option<T> {
    xs.into_iter().reduce(|a, b| if b > a { b } else { a })
}

#[timed]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if b.len() > a.len() { b } else { a }
}

trait Shape {
    fn area(&self) -> f64;
}

struct Square(f64);

impl Shape for Square {
    #[timed]
    fn area(&self) -> f64 {
        self.0 * self.0
    }
}

struct Repo<T> {
    rows: Vec<T>,
}

#[timed(labels(store = "memory"))]
impl<T: Clone> Repo<T> {
    /// Documented methods keep their docs.
    fn get(&self, i: usize) -> Option<T> {
        self.rows.get(i).cloned()
    }

    #[timed(skip)]
    fn len(&self) -> usize {
        self.rows.len()
    }

    #[timed(name = "repo_insert", labels(store = "disk"))]
    fn insert(&mut self, row: T) -> Result<usize, String> {
        self.rows.push(row);
        Ok(self.rows.len())
    }

    const fn capacity_hint() -> usize {
        16
    }

    async fn fetch(&self, i: usize) -> Result<T, String> {
        yield_once().await;
        self.get(i).ok_or_else(|| "missing".into())
    }
}

#[test]
fn methods_generics_impl_trait_and_impl_blocks() {
    let capture = Capture::new();
    capture.run(|| {
        let mut store = Store::default();
        store.push(1).push(2);
        store.push(4);
        assert_eq!(store.first(), Some(&1));
        assert_eq!(store.evens().collect::<Vec<_>>(), vec![2, 4]);
        assert_eq!(store.into_items(), vec![1, 2, 4]);
        assert_eq!(largest([3, 9, 2]), Some(9));
        assert_eq!(largest::<f64, 0>([]), None);
        assert_eq!(longest("ab", "abc"), "abc");
        assert_eq!(Square(2.0).area(), 4.0);

        let mut repo = Repo { rows: vec!["a"] };
        assert_eq!(repo.get(0), Some("a"));
        assert_eq!(repo.len(), 1);
        assert_eq!(repo.insert("b"), Ok(2));
        assert_eq!(Repo::<&str>::capacity_hint(), 16);
        assert_eq!(rt().block_on(repo.fetch(5)), Err("missing".into()));
    });
    let m = capture.metrics();
    let calls = |f: &str| m.counter(CALLS_TOTAL, &[("function", f)]);
    assert_eq!(calls("push"), 2);
    assert_eq!(calls("first"), 1);
    assert_eq!(calls("evens"), 1);
    assert_eq!(calls("into_items"), 1);
    assert_eq!(calls("largest"), 2);
    assert_eq!(calls("longest"), 1);
    assert_eq!(calls("area"), 1);
    // The impl block: `Type::method`, labels, skip, override, const fn left alone.
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "Repo::get"), ("store", "memory")]
        ),
        2
    );
    assert_eq!(calls("Repo::len") + calls("len"), 0);
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "repo_insert"), ("store", "disk")]
        ),
        1
    );
    assert_eq!(calls("Repo::capacity_hint"), 0);
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[
                ("function", "Repo::fetch"),
                ("store", "memory"),
                ("result", "error")
            ]
        ),
        1
    );
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[
                ("function", "Repo::get"),
                ("caller_function", "Repo::fetch")
            ]
        ),
        1
    );
}

// ---- async_trait, both attribute orders, on methods and on impl blocks ----

#[async_trait::async_trait]
trait Backend {
    async fn call(&self, ok: bool) -> Result<u32, String>;
    async fn name(&self) -> String;
}

struct TimedFirst;
struct AsyncTraitFirst;
struct BlockTimedFirst;
struct BlockAsyncTraitFirst;

#[async_trait::async_trait]
impl Backend for TimedFirst {
    #[timed(name = "timed_first")]
    async fn call(&self, ok: bool) -> Result<u32, String> {
        yield_once().await;
        if ok { Ok(1) } else { Err("down".into()) }
    }
    async fn name(&self) -> String {
        "a".into()
    }
}

#[async_trait::async_trait]
impl Backend for AsyncTraitFirst {
    #[timed(name = "async_trait_first")]
    async fn call(&self, ok: bool) -> Result<u32, String> {
        yield_once().await;
        if ok { Ok(2) } else { Err("down".into()) }
    }
    async fn name(&self) -> String {
        "b".into()
    }
}

#[timed]
#[async_trait::async_trait]
impl Backend for BlockTimedFirst {
    async fn call(&self, ok: bool) -> Result<u32, String> {
        yield_once().await;
        if ok { Ok(3) } else { Err("down".into()) }
    }
    async fn name(&self) -> String {
        "c".into()
    }
}

#[async_trait::async_trait]
#[timed]
impl Backend for BlockAsyncTraitFirst {
    async fn call(&self, ok: bool) -> Result<u32, String> {
        yield_once().await;
        if ok { Ok(4) } else { Err("down".into()) }
    }
    async fn name(&self) -> String {
        self.call(true).await.unwrap().to_string()
    }
}

#[test]
fn async_trait_methods_in_either_order() {
    let capture = Capture::new();
    capture.run(|| {
        rt().block_on(async {
            let backends: Vec<Box<dyn Backend>> = vec![
                Box::new(TimedFirst),
                Box::new(AsyncTraitFirst),
                Box::new(BlockTimedFirst),
                Box::new(BlockAsyncTraitFirst),
            ];
            for b in &backends {
                assert!(b.call(true).await.is_ok());
                assert!(b.call(false).await.is_err());
                let _ = b.name().await;
            }
            // Dropping a started call cancels it.
            let mut fut = BlockTimedFirst.call(true);
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        })
    });
    let m = capture.metrics();
    for f in ["timed_first", "async_trait_first", "BlockTimedFirst::call"] {
        assert_eq!(
            m.counter(CALLS_TOTAL, &[("function", f), ("result", "ok")]),
            1,
            "{f}"
        );
        assert_eq!(
            m.counter(CALLS_TOTAL, &[("function", f), ("result", "error")]),
            1,
            "{f}"
        );
    }
    let f = ("function", "BlockAsyncTraitFirst::call");
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "ok")]), 2);
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[f, ("caller_function", "BlockAsyncTraitFirst::name")]
        ),
        1
    );
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("function", "BlockTimedFirst::name")]),
        1
    );
    assert_eq!(
        m.counter(
            CANCELLATIONS_TOTAL,
            &[("function", "BlockTimedFirst::call")]
        ),
        1
    );
}

// ---- signatures are preserved ----

/// Adds one.
#[timed]
#[inline]
#[must_use]
pub unsafe extern "C" fn ffi_add_one(x: u32) -> u32 {
    x.wrapping_add(1)
}

#[timed]
pub(crate) extern "C" fn ffi_double(x: u32) -> u32 {
    x * 2
}

#[timed(crate = vigil_timing)]
fn through_sub_crate() -> Result<(), ()> {
    Err(())
}

#[test]
fn signatures_abi_and_sub_crate_paths_are_kept() {
    // The qualifiers survive: these coercions only compile if they do.
    let _: unsafe extern "C" fn(u32) -> u32 = ffi_add_one;
    let g: extern "C" fn(u32) -> u32 = ffi_double;
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(g(2), 4);
        assert!(through_sub_crate().is_err());
    });
    let m = capture.metrics();
    assert_eq!(m.counter(CALLS_TOTAL, &[("function", "ffi_double")]), 1);
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "through_sub_crate"), ("result", "error")]
        ),
        1
    );
}

// ---- labels, slow calls and late recorders ----

#[timed(labels(tier = "gold", region = "eu"), concurrency)]
fn labelled() {}

#[test]
fn static_labels_are_on_every_metric() {
    let capture = Capture::new();
    capture.run(labelled);
    let m = capture.metrics();
    let labels = [("function", "labelled"), ("tier", "gold"), ("region", "eu")];
    assert_eq!(m.counter(CALLS_TOTAL, &labels), 1);
    assert_eq!(m.histogram(CALLS_DURATION, &labels).len(), 1);
    assert_eq!(m.gauge(CALLS_CONCURRENT, &labels), Some(0.0));
    for name in [
        CALLS_TOTAL,
        CALLS_DURATION,
        CALLS_CONCURRENT,
        PANICS_TOTAL,
        CANCELLATIONS_TOTAL,
    ] {
        for set in m.label_sets(name) {
            assert!(
                set.contains(&("tier".into(), "gold".into())),
                "{name}: {set:?}"
            );
        }
    }
}

#[timed(slow = "100ms")]
fn maybe_slow(mock: &quanta::Mock, d: Duration) {
    mock.increment(d);
}

#[derive(Default, Clone)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                self.0.push_str(&format!("{}={} ", field.name(), value));
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0.trim_end().to_owned());
        }
    }
}

#[test]
fn slow_calls_warn_with_function_module_elapsed_and_threshold() {
    use tracing_subscriber::layer::SubscriberExt;
    let warnings = Warnings::default();
    let (clock, mock) = quanta::Clock::mock();
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(warnings.clone()),
        || {
            quanta::with_clock(&clock, || {
                maybe_slow(&mock, Duration::from_millis(20));
                maybe_slow(&mock, Duration::from_millis(300));
            })
        },
    );
    assert_eq!(
        *warnings.0.lock().unwrap(),
        vec![format!(
            "message=slow call function=maybe_slow module={MODULE} elapsed=300ms \
             threshold=100ms outcome=ok"
        )]
    );
}

#[timed]
fn before_and_after() {}

#[test]
fn recorder_installed_after_the_first_call_gets_later_calls() {
    before_and_after(); // no recorder yet
    let capture = Capture::new();
    capture.run(|| {
        before_and_after();
        before_and_after();
    });
    let m = capture.metrics();
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("function", "before_and_after")]),
        2
    );
    // A panic inside a timed fn leaves no state behind that breaks later calls.
    let _ = catch_unwind(AssertUnwindSafe(|| capture.run(|| explode("x"))));
    capture.run(before_and_after);
    assert_eq!(
        capture
            .metrics()
            .counter(CALLS_TOTAL, &[("function", "before_and_after")]),
        3
    );
}
