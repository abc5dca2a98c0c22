//! `#[timed]` keeps every kind of signature compiling and recording:
//! argument patterns, `where` clauses, `impl Trait`, `?` and early `return`,
//! `!`, native `async fn` in traits, `Self` and custom receivers, `unsafe fn`,
//! trait default methods and kept attributes.

#![deny(unsafe_op_in_unsafe_fn, unused_unsafe, unused_mut)]

#[path = "../../vigil-timing/tests/support/mod.rs"]
mod support;

use std::fmt::Display;
use std::future::Future;
use std::num::ParseIntError;
use std::panic::{Location, catch_unwind};
use std::pin::Pin;

use support::{Capture, Metrics, block_on};
use vigil::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use vigil::timed;
use vigil::timing::{CALLS_DURATION, CALLS_TOTAL, PANICS_TOTAL};

fn assert_send<T: Send>(_: &T) {}

/// Calls of `function` recorded with `result`.
fn calls(m: &Metrics, function: &str, result: &str) -> u64 {
    m.counter(CALLS_TOTAL, &[("function", function), ("result", result)])
}

// ---- `!` ----

#[timed]
fn fail(msg: &'static str) -> ! {
    std::panic::panic_any(msg)
}

#[timed]
fn spin_then_fail(mut budget: u32) -> ! {
    loop {
        budget -= 1;
        if budget == 0 {
            panic!("out of budget");
        }
    }
}

/// A `-> !` body runs in place, so `#[track_caller]` is allowed and works.
#[timed]
#[track_caller]
fn fail_here() -> ! {
    std::panic::panic_any(Location::caller())
}

#[timed]
async fn fail_async(msg: &'static str) -> ! {
    std::future::ready(()).await;
    std::panic::panic_any(msg)
}

#[test]
fn never_returning_fns_compile_and_record_their_panic() {
    let capture = Capture::new();
    let caught = capture.run(|| catch_unwind(|| fail("boom")));
    assert_eq!(caught.unwrap_err().downcast_ref::<&str>(), Some(&"boom"));
    assert!(capture.run(|| catch_unwind(|| spin_then_fail(3))).is_err());
    assert!(
        capture
            .run(|| catch_unwind(|| block_on(fail_async("later"))))
            .is_err()
    );
    let (caught, line) = capture.run(|| (catch_unwind(|| fail_here()), line!()));
    let location = *caught
        .unwrap_err()
        .downcast::<&Location<'static>>()
        .unwrap();
    assert_eq!((location.file(), location.line()), (file!(), line));
    let m = capture.metrics();
    for f in ["fail", "spin_then_fail", "fail_async", "fail_here"] {
        assert_eq!(calls(&m, f, "error"), 1, "{f}");
        assert_eq!(calls(&m, f, "ok"), 0, "{f}");
        assert_eq!(m.counter(PANICS_TOTAL, &[("function", f)]), 1, "{f}");
        assert_eq!(m.histogram(CALLS_DURATION, &[("function", f)]).len(), 1);
    }
}

// ---- inner attributes of the body ----

// Under `deny(unused_mut)` above: the body's own `#![allow]` must still
// cover it.
#[timed]
fn inner_allow() -> u32 {
    #![allow(unused_mut)]
    let mut x = 4;
    x + 1
}

#[timed]
async fn inner_allow_async() -> u32 {
    #![allow(unused_mut)]
    let mut x = 5;
    x + 1
}

#[test]
fn inner_attributes_stay_in_the_body() {
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(inner_allow(), 5);
        assert_eq!(block_on(inner_allow_async()), 6);
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "inner_allow", "ok"), 1);
    assert_eq!(calls(&m, "inner_allow_async", "ok"), 1);
}

// ---- objectives ----

const API_SLO: Objective = Objective::new("api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);

static BATCH_SLO: Objective = Objective::new("batch").success_rate(ObjectivePercentile::P95);

mod slo {
    use vigil::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};

    pub const LATENCY: Objective =
        Objective::new("fast").latency(ObjectiveLatency::Ms10, ObjectivePercentile::P90);
}

#[timed(objective = API_SLO)]
fn with_objective(fail: bool) -> Result<(), String> {
    if fail { Err("no".into()) } else { Ok(()) }
}

#[timed(objective = BATCH_SLO, labels(kind = "batch"))]
async fn with_static_objective() -> u32 {
    1
}

#[timed(objective = slo::LATENCY)]
impl Node {
    fn checked(&self) -> u32 {
        self.value
    }

    #[timed(objective = API_SLO)]
    fn overridden(&self) -> u32 {
        self.value
    }
}

#[test]
fn objectives_label_calls_and_durations() {
    let capture = Capture::new();
    capture.run(|| {
        assert!(with_objective(false).is_ok());
        assert!(with_objective(true).is_err());
        assert_eq!(block_on(with_static_objective()), 1);
        assert_eq!(Node::new(2).checked(), 2);
        assert_eq!(Node::new(3).overridden(), 3);
    });
    let m = capture.metrics();
    let api = [("objective_name", "api"), ("objective_percentile", "99.9")];
    for result in ["ok", "error"] {
        let labels = [
            ("function", "with_objective"),
            ("result", result),
            api[0],
            api[1],
        ];
        assert_eq!(m.counter(CALLS_TOTAL, &labels), 1, "{result}");
    }
    let latency = [
        ("function", "with_objective"),
        ("objective_name", "api"),
        ("objective_percentile", "99"),
        ("objective_latency_threshold", "0.25"),
    ];
    assert_eq!(m.histogram(CALLS_DURATION, &latency).len(), 2);
    let batch = [
        ("function", "with_static_objective"),
        ("kind", "batch"),
        ("objective_name", "batch"),
        ("objective_percentile", "95"),
    ];
    assert_eq!(m.counter(CALLS_TOTAL, &batch), 1);
    // A latency-only objective labels the histogram, not the counter.
    let fast = [
        ("function", "Node::checked"),
        ("objective_name", "fast"),
        ("objective_latency_threshold", "0.01"),
    ];
    assert_eq!(m.histogram(CALLS_DURATION, &fast).len(), 1);
    assert!(
        m.label_sets(CALLS_TOTAL)
            .iter()
            .filter(|set| set
                .iter()
                .any(|(k, v)| k == "function" && v == "Node::checked"))
            .all(|set| set.iter().all(|(k, _)| !k.starts_with("objective_")))
    );
    let overridden = [("function", "Node::overridden"), api[0], api[1]];
    assert_eq!(m.counter(CALLS_TOTAL, &overridden), 1);
}

// ---- raw label keys ----

#[timed(labels(r#type = "query"))]
fn raw_label() {}

#[test]
fn raw_identifier_label_keys_lose_their_prefix() {
    let capture = Capture::new();
    capture.run(raw_label);
    let m = capture.metrics();
    let labels = [("function", "raw_label"), ("type", "query")];
    assert_eq!(m.counter(CALLS_TOTAL, &labels), 1);
    assert!(
        m.label_sets(CALLS_TOTAL)
            .iter()
            .flatten()
            .all(|(k, _)| k != "r#type")
    );
}

// ---- argument patterns, `where`, `impl Trait` arguments ----

#[timed]
fn sum_pair((a, b): (u8, u8)) -> u16 {
    u16::from(a) + u16::from(b)
}

#[timed]
fn count_down(mut x: u32) -> u32 {
    while x > 3 {
        x -= 1;
    }
    x
}

#[timed]
fn describe<T>(value: T) -> String
where
    T: Display + Clone,
{
    format!("<{}>", value.clone())
}

#[timed]
fn total(xs: impl IntoIterator<Item = u32>, label: &impl Display) -> String {
    format!("{label}={}", xs.into_iter().sum::<u32>())
}

#[test]
fn argument_patterns_where_clauses_and_impl_trait_arguments() {
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(sum_pair((200, 100)), 300);
        assert_eq!(count_down(10), 3);
        assert_eq!(count_down(1), 1);
        assert_eq!(describe(5), "<5>");
        assert_eq!(total(vec![1, 2, 3], &"n"), "n=6");
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "sum_pair", "ok"), 1);
    assert_eq!(calls(&m, "count_down", "ok"), 2);
    assert_eq!(calls(&m, "describe", "ok"), 1);
    assert_eq!(calls(&m, "total", "ok"), 1);
}

// ---- `?` and early `return` ----

#[derive(Debug, PartialEq)]
struct BadInput(String);

impl From<ParseIntError> for BadInput {
    fn from(e: ParseIntError) -> BadInput {
        BadInput(e.to_string())
    }
}

#[timed]
fn parse_double(input: &str) -> Result<u32, BadInput> {
    if input.is_empty() {
        return Err(BadInput("empty".into()));
    }
    if input == "zero" {
        return Ok(0);
    }
    let n: u32 = input.parse()?; // converted with `From`
    Ok(n * 2)
}

#[timed]
async fn parse_double_async(input: &str) -> Result<u32, BadInput> {
    if input.is_empty() {
        return Err(BadInput("empty".into()));
    }
    if input == "zero" {
        return Ok(0);
    }
    let n: u32 = input.parse()?;
    Ok(n * 2)
}

// Nothing but the return type says which error `?` converts to.
#[timed]
fn shown(input: &str) -> Result<impl Display, BadInput> {
    Ok(format!("#{}", input.parse::<u32>()?))
}

#[timed]
async fn shown_async(input: &str) -> Result<impl Display, BadInput> {
    Ok(input.parse::<u32>()? + 1)
}

#[test]
fn question_mark_and_early_return_set_the_outcome() {
    let capture = Capture::new();
    capture.run(|| {
        for (input, want) in [
            ("", Err(BadInput("empty".into()))),
            ("zero", Ok(0)),
            ("21", Ok(42)),
            ("x", Err(BadInput("invalid digit found in string".into()))),
        ] {
            assert_eq!(parse_double(input), want, "{input:?}");
            assert_eq!(block_on(parse_double_async(input)), want, "{input:?}");
        }
        assert_eq!(shown("7").unwrap().to_string(), "#7");
        assert!(shown("-").is_err());
        assert_eq!(block_on(shown_async("7")).unwrap().to_string(), "8");
        assert!(block_on(shown_async("")).is_err());
    });
    let m = capture.metrics();
    for f in ["parse_double", "parse_double_async"] {
        assert_eq!(calls(&m, f, "ok"), 2, "{f}");
        assert_eq!(calls(&m, f, "error"), 2, "{f}");
    }
    for f in ["shown", "shown_async"] {
        assert_eq!(calls(&m, f, "ok"), 1, "{f}");
        assert_eq!(calls(&m, f, "error"), 1, "{f}");
    }
}

// ---- native `async fn` in traits ----

trait Fetch {
    async fn fetch(&self, key: u32) -> Result<u32, String>;
    /// Callers can rely on a `Send` future.
    fn fetch_send(&self, key: u32) -> impl Future<Output = Option<u32>> + Send;
}

struct Cache;

impl Fetch for Cache {
    #[timed]
    async fn fetch(&self, key: u32) -> Result<u32, String> {
        if key == 0 {
            return Err("no key 0".into());
        }
        Ok(key * 10)
    }

    #[timed(error_if = Option::is_none)]
    async fn fetch_send(&self, key: u32) -> Option<u32> {
        (key != 0).then_some(key + 1)
    }
}

struct TimedCache;

#[timed]
impl Fetch for TimedCache {
    async fn fetch(&self, key: u32) -> Result<u32, String> {
        Cache.fetch(key).await
    }

    async fn fetch_send(&self, key: u32) -> Option<u32> {
        Cache.fetch_send(key).await
    }
}

#[test]
fn native_async_fn_in_trait_impls_is_timed_and_stays_send() {
    let capture = Capture::new();
    capture.run(|| {
        let fut = TimedCache.fetch_send(1);
        assert_send(&fut);
        assert_eq!(block_on(fut), Some(2));
        assert_send(&Cache.fetch_send(0));
        assert_eq!(block_on(Cache.fetch_send(0)), None);
        assert_eq!(block_on(Cache.fetch(2)), Ok(20));
        assert!(block_on(TimedCache.fetch(0)).is_err());
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "fetch_send", "ok"), 1);
    assert_eq!(calls(&m, "fetch_send", "error"), 1);
    assert_eq!(calls(&m, "TimedCache::fetch_send", "ok"), 1);
    assert_eq!(calls(&m, "fetch", "ok"), 1);
    assert_eq!(calls(&m, "fetch", "error"), 1);
    assert_eq!(calls(&m, "TimedCache::fetch", "error"), 1);
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[
                ("function", "fetch"),
                ("caller_function", "TimedCache::fetch")
            ]
        ),
        1
    );
}

// ---- `Self` and custom receivers in an impl block ----

#[derive(Debug, PartialEq)]
struct Node {
    value: u32,
}

#[timed]
impl Node {
    fn new(value: u32) -> Self {
        Self { value }
    }

    fn boxed(self: Box<Self>) -> Box<Self> {
        Box::new(Self::new(self.value + 1))
    }

    fn bump(mut self: Pin<&mut Self>) -> u32 {
        self.value += 1;
        self.value
    }

    fn pair(&self) -> (Self, Self) {
        (Self::new(self.value), Self::new(self.value * 2))
    }
}

#[test]
fn self_types_and_custom_receivers_in_impl_blocks() {
    let capture = Capture::new();
    capture.run(|| {
        let node = Box::new(Node::new(1)).boxed();
        assert_eq!(*node, Node { value: 2 });
        let mut node = Node::new(5);
        assert_eq!(Pin::new(&mut node).bump(), 6);
        assert_eq!(node.pair(), (Node { value: 6 }, Node { value: 12 }));
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "Node::new", "ok"), 5);
    assert_eq!(calls(&m, "Node::boxed", "ok"), 1);
    assert_eq!(calls(&m, "Node::bump", "ok"), 1);
    assert_eq!(calls(&m, "Node::pair", "ok"), 1);
}

// ---- `unsafe fn` under `deny(unsafe_op_in_unsafe_fn)` ----

/// # Safety
///
/// `p` is valid for reads.
#[timed]
#[allow(unsafe_code)] // what is tested: unsafe blocks inside the timed body
unsafe fn read(p: *const u32) -> u32 {
    // SAFETY: the caller promises `p` is valid for reads.
    unsafe { p.read() }
}

struct Raw(*const u32);

#[timed]
#[allow(unsafe_code)]
impl Raw {
    /// # Safety
    ///
    /// The pointer is valid for reads.
    unsafe fn get(&self) -> u32 {
        // SAFETY: the caller promises the pointer is valid for reads.
        unsafe { self.0.read() }
    }
}

#[test]
#[allow(unsafe_code)]
fn unsafe_fns_keep_their_unsafe_blocks_meaningful() {
    let x = 9;
    let capture = Capture::new();
    capture.run(|| {
        // SAFETY: `x` is alive and aligned.
        assert_eq!(unsafe { read(&x) }, 9);
        // SAFETY: as above.
        assert_eq!(unsafe { Raw(&x).get() }, 9);
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "read", "ok"), 1);
    assert_eq!(calls(&m, "Raw::get", "ok"), 1);
}

// ---- trait default methods ----

trait Greeter {
    fn name(&self) -> String;

    #[timed]
    fn greet(&self) -> String {
        format!("hello, {}", self.name())
    }

    #[timed(name = "greeter_check")]
    fn check(&self, strict: bool) -> Result<(), String>
    where
        Self: Sized,
    {
        if strict && self.name().is_empty() {
            return Err("anonymous".into());
        }
        Ok(())
    }
}

struct Named(&'static str);

impl Greeter for Named {
    fn name(&self) -> String {
        self.0.to_owned()
    }
}

#[test]
fn trait_default_methods_are_timed() {
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(Named("ada").greet(), "hello, ada");
        let dynamic: &dyn Greeter = &Named("bob");
        assert_eq!(dynamic.greet(), "hello, bob");
        assert!(Named("").check(true).is_err());
        assert!(Named("").check(false).is_ok());
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "greet", "ok"), 2);
    assert_eq!(calls(&m, "greeter_check", "ok"), 1);
    assert_eq!(calls(&m, "greeter_check", "error"), 1);
}

// ---- kept attributes ----

#[timed]
#[must_use = "the sum is the point"]
fn must_sum(a: u32, b: u32) -> u32 {
    a + b
}

#[timed]
impl Node {
    #[must_use]
    fn doubled(&self) -> u32 {
        self.value * 2
    }
}

#[test]
fn must_use_is_kept() {
    // `tests/ui/fail/must_use_kept.rs` in vigil-macros shows the lint firing.
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(must_sum(1, 2), 3);
        assert_eq!(Node::new(4).doubled(), 8);
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "must_sum", "ok"), 1);
    assert_eq!(calls(&m, "Node::doubled", "ok"), 1);
}
