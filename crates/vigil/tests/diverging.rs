//! `#[timed]` and `#[cached]` on functions whose body diverges (`todo!()`,
//! `panic!`, `unimplemented!()`, `loop {}`, `process::exit`, or a tail of
//! type `!` after other statements): every such function compiles as it
//! does without the attribute, with the same return type and no new
//! warning (this test crate denies all of them), and a panic from it is
//! recorded as a panic.

#![cfg(feature = "cache")]
#![deny(warnings)]

#[path = "../../vigil-timing/tests/support/mod.rs"]
mod support;

use std::fmt::Display;
use std::num::ParseIntError;
use std::panic::{AssertUnwindSafe, catch_unwind};

use support::{Capture, Metrics, block_on};
use vigil::timing::{CALLS_DURATION, CALLS_TOTAL, PANICS_TOTAL};
use vigil::{cached, timed};

/// Calls of `function` recorded with `result`.
fn calls(m: &Metrics, function: &str, result: &str) -> u64 {
    m.counter(CALLS_TOTAL, &[("function", function), ("result", result)])
}

/// Runs `f` under `capture`, which must panic.
fn panics<T>(capture: &Capture, f: impl FnOnce() -> T) {
    let caught = capture.run(|| catch_unwind(AssertUnwindSafe(f)));
    assert!(caught.is_err(), "expected a panic");
}

/// Each of `functions` was called once and panicked: one error, no ok, one
/// panic, one duration.
fn assert_one_panic_each(m: &Metrics, functions: &[&str]) {
    for &f in functions {
        assert_eq!(calls(m, f, "error"), 1, "{f}: calls with result=error");
        assert_eq!(calls(m, f, "ok"), 0, "{f}: calls with result=ok");
        assert_eq!(
            m.counter(PANICS_TOTAL, &[("function", f)]),
            1,
            "{f}: panics"
        );
        assert_eq!(
            m.histogram(CALLS_DURATION, &[("function", f)]).len(),
            1,
            "{f}: durations"
        );
    }
}

// ---- free functions: unit, values, `Result`, `Option`, `impl Trait` ----

#[timed]
fn unit_todo() {
    todo!()
}

#[timed]
fn unit_todo_statement() {
    todo!();
}

#[timed]
fn unit_panic(reason: &str) {
    panic!("{reason}")
}

#[timed]
fn unit_unimplemented() {
    unimplemented!()
}

// Compile-pass only: an endless loop cannot run in a test.
#[timed]
#[allow(dead_code, clippy::empty_loop)] // the body's own lints, with or without #[timed]
fn unit_loop() {
    loop {}
}

#[timed]
fn unit_exit() {
    std::process::exit(3)
}

#[timed]
fn value_todo() -> u32 {
    todo!()
}

#[timed]
fn result_todo() -> Result<u32, String> {
    todo!()
}

#[timed]
fn option_todo() -> Option<u32> {
    todo!()
}

#[timed]
fn impl_trait_todo() -> impl Display {
    todo!()
}

#[timed]
fn boxed_todo() -> Box<dyn Display> {
    todo!()
}

#[timed]
fn generic_todo<T: Default>() -> T {
    todo!()
}

#[timed]
fn borrowed_todo(s: &str) -> &str {
    let _ = s;
    todo!()
}

#[timed]
fn never_todo() -> ! {
    todo!()
}

// A tail of type `!` after statements, after an early `return`, after `?`.

#[timed]
fn tail_after_statements(x: u32) -> u32 {
    let y = x + 1;
    panic!("{y}")
}

#[timed]
fn unit_tail_after_statements(x: u32) {
    let y = x + 1;
    panic!("{y}")
}

#[timed]
fn early_return_then_todo(x: u32) -> u32 {
    if x == 0 {
        return 1;
    }
    todo!()
}

#[timed]
fn question_mark_then_todo(input: &str) -> Result<u32, ParseIntError> {
    let _n: u32 = input.parse()?;
    todo!()
}

#[timed(error_if = Option::is_none)]
fn classified_todo() -> Option<u32> {
    todo!()
}

#[timed(
    name = "labelled_todo",
    labels(stage = "stub"),
    concurrency,
    slow = "1s"
)]
fn labelled() -> u32 {
    unimplemented!()
}

// Written on one line, a body's braces are where `unused_braces` looks.
#[rustfmt::skip]
mod one_line {
    use vigil::timed;

    #[timed] pub fn unit() { todo!() }
    #[timed] pub fn never() -> ! { todo!() }
    #[timed] pub fn value(x: u32) -> u32 { x }
    #[timed] pub async fn async_unit() { todo!() }
    #[timed] pub async fn async_option() -> Option<u32> { unimplemented!() }
    #[timed] pub async fn async_never() -> ! { todo!() }
    #[timed] pub async fn async_borrowed(s: &str) -> &str { s }
}

// ---- async ----

#[timed]
async fn async_unit_todo() {
    todo!()
}

#[timed]
async fn async_unit_todo_statement() {
    todo!();
}

#[timed]
async fn async_value_todo() -> u32 {
    todo!()
}

#[timed]
async fn async_result_todo() -> Result<u32, String> {
    todo!()
}

#[timed]
async fn async_option_todo() -> Option<u32> {
    unimplemented!()
}

#[timed]
async fn async_impl_trait_todo() -> impl Display {
    todo!()
}

#[timed]
async fn async_borrowed_todo(s: &str) -> &str {
    let _ = s;
    todo!()
}

#[timed]
async fn async_generic_todo<T: Default>() -> T {
    todo!()
}

// Compile-pass only, as `unit_loop`.
#[timed]
#[allow(dead_code, clippy::empty_loop)]
async fn async_loop() {
    loop {}
}

#[timed]
async fn async_never_todo() -> ! {
    todo!()
}

#[timed]
async fn async_tail_after_await(x: u32) -> u32 {
    std::future::ready(()).await;
    panic!("{x}")
}

#[timed]
async fn async_early_return_then_todo(x: u32) -> Result<u32, String> {
    if x == 0 {
        return Ok(1);
    }
    todo!()
}

// ---- methods: one at a time, a whole impl block, traits ----

struct Stub {
    id: u32,
}

impl Stub {
    #[timed]
    fn method_todo(&self) -> u32 {
        todo!()
    }

    #[timed]
    fn method_unit_todo(&mut self) {
        todo!()
    }

    #[timed]
    async fn method_async_todo(&self) -> Result<Self, String> {
        todo!()
    }
}

#[timed]
impl Stub {
    fn new_todo(_id: u32) -> Self {
        todo!()
    }

    fn unit(&self) {
        todo!()
    }

    fn consume(self) -> Option<Self> {
        todo!()
    }

    fn shown(&self) -> impl Display + '_ {
        todo!()
    }

    async fn fetch(&self) -> Result<u32, String> {
        todo!()
    }

    async fn touch(&self) {
        todo!()
    }

    fn never(&self) -> ! {
        todo!()
    }

    fn works(&self) -> u32 {
        self.id
    }
}

trait Store {
    fn get(&self, key: u32) -> Option<u32>;
    fn put(&mut self, key: u32, value: u32);
    async fn load(&self) -> Result<u32, String>;

    #[timed]
    fn default_todo(&self) -> u32 {
        todo!()
    }
}

struct Memory;

#[timed]
impl Store for Memory {
    fn get(&self, _key: u32) -> Option<u32> {
        todo!()
    }

    fn put(&mut self, _key: u32, _value: u32) {
        todo!()
    }

    async fn load(&self) -> Result<u32, String> {
        todo!()
    }
}

#[async_trait::async_trait]
trait Remote {
    async fn call(&self) -> u32;
    async fn notify(&self);
}

#[async_trait::async_trait]
impl Remote for Memory {
    #[timed]
    async fn call(&self) -> u32 {
        todo!()
    }

    #[timed]
    async fn notify(&self) {
        todo!()
    }
}

// ---- `#[cached]`, alone and with `#[timed]` in either order ----

#[cached]
fn cached_todo(x: u32) -> u32 {
    let _ = x;
    todo!()
}

#[cached]
fn cached_result_todo(x: u32) -> Result<u32, String> {
    let _ = x;
    todo!()
}

#[cached]
fn cached_option_todo(x: u32) -> Option<u32> {
    let _ = x;
    todo!()
}

#[cached]
fn cached_unit_todo(x: u32) {
    let _ = x;
    todo!()
}

#[cached]
async fn cached_async_todo(x: u32) -> u32 {
    let _ = x;
    todo!()
}

#[cached]
async fn cached_async_result_todo(x: u32) -> Result<u32, String> {
    let _ = x;
    todo!()
}

#[timed]
#[cached]
fn timed_cached_todo(x: u32) -> u32 {
    let _ = x;
    todo!()
}

#[cached]
#[timed]
async fn cached_timed_async_todo(x: u32) -> Option<u32> {
    let _ = x;
    todo!()
}

impl Stub {
    #[cached(key: u32 = self.id)]
    fn cached_method_todo(&self) -> u32 {
        todo!()
    }
}

// ---- what runs: every panic is recorded ----

#[test]
fn diverging_free_functions_record_their_panic() {
    let capture = Capture::new();
    panics(&capture, unit_todo);
    panics(&capture, unit_todo_statement);
    panics(&capture, || unit_panic("no"));
    panics(&capture, unit_unimplemented);
    panics(&capture, value_todo);
    panics(&capture, result_todo);
    panics(&capture, option_todo);
    panics(&capture, || impl_trait_todo().to_string());
    panics(&capture, || boxed_todo().to_string());
    panics(&capture, generic_todo::<String>);
    panics(&capture, || borrowed_todo("s").len());
    panics(&capture, || never_todo());
    panics(&capture, || tail_after_statements(1));
    panics(&capture, || unit_tail_after_statements(1));
    panics(&capture, || early_return_then_todo(5));
    panics(&capture, || question_mark_then_todo("5"));
    panics(&capture, classified_todo);
    panics(&capture, labelled);
    let m = capture.metrics();
    assert_one_panic_each(
        &m,
        &[
            "unit_todo",
            "unit_todo_statement",
            "unit_panic",
            "unit_unimplemented",
            "value_todo",
            "result_todo",
            "option_todo",
            "impl_trait_todo",
            "boxed_todo",
            "generic_todo",
            "borrowed_todo",
            "never_todo",
            "tail_after_statements",
            "unit_tail_after_statements",
            "early_return_then_todo",
            "question_mark_then_todo",
            "classified_todo",
            "labelled_todo",
        ],
    );
}

#[test]
fn paths_around_the_divergence_return_as_written() {
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(early_return_then_todo(0), 1);
        assert_eq!(
            question_mark_then_todo("x").unwrap_err().to_string(),
            "invalid digit found in string"
        );
        assert_eq!(block_on(async_early_return_then_todo(0)), Ok(1));
    });
    let m = capture.metrics();
    assert_eq!(calls(&m, "early_return_then_todo", "ok"), 1);
    assert_eq!(calls(&m, "question_mark_then_todo", "error"), 1);
    assert_eq!(calls(&m, "async_early_return_then_todo", "ok"), 1);
    for f in [
        "early_return_then_todo",
        "question_mark_then_todo",
        "async_early_return_then_todo",
    ] {
        assert_eq!(m.counter(PANICS_TOTAL, &[("function", f)]), 0, "{f}");
    }
}

#[test]
fn diverging_async_functions_record_their_panic() {
    let capture = Capture::new();
    panics(&capture, || block_on(async_unit_todo()));
    panics(&capture, || block_on(async_unit_todo_statement()));
    panics(&capture, || block_on(async_value_todo()));
    panics(&capture, || block_on(async_result_todo()));
    panics(&capture, || block_on(async_option_todo()));
    panics(&capture, || block_on(async_impl_trait_todo()).to_string());
    panics(&capture, || block_on(async_borrowed_todo("s")).len());
    panics(&capture, || block_on(async_generic_todo::<u8>()));
    panics(&capture, || block_on(async_never_todo()));
    panics(&capture, || block_on(async_tail_after_await(2)));
    panics(&capture, || block_on(async_early_return_then_todo(2)));
    let m = capture.metrics();
    assert_one_panic_each(
        &m,
        &[
            "async_unit_todo",
            "async_unit_todo_statement",
            "async_value_todo",
            "async_result_todo",
            "async_option_todo",
            "async_impl_trait_todo",
            "async_borrowed_todo",
            "async_generic_todo",
            "async_never_todo",
            "async_tail_after_await",
            "async_early_return_then_todo",
        ],
    );
}

#[test]
fn diverging_methods_record_their_panic() {
    let capture = Capture::new();
    let stub = Stub { id: 4 };
    panics(&capture, || stub.method_todo());
    panics(&capture, || Stub { id: 1 }.method_unit_todo());
    panics(&capture, || block_on(stub.method_async_todo()).is_ok());
    panics(&capture, || Stub::new_todo(1));
    panics(&capture, || stub.unit());
    panics(&capture, || Stub { id: 2 }.consume().is_some());
    panics(&capture, || stub.shown().to_string());
    panics(&capture, || block_on(stub.fetch()));
    panics(&capture, || block_on(stub.touch()));
    panics(&capture, || stub.never());
    panics(&capture, || Memory.default_todo());
    panics(&capture, || Memory.get(1));
    panics(&capture, || Memory.put(1, 2));
    panics(&capture, || block_on(Memory.load()));
    panics(&capture, || block_on(Memory.call()));
    panics(&capture, || block_on(Memory.notify()));
    assert_eq!(capture.run(|| stub.works()), 4);
    let m = capture.metrics();
    assert_one_panic_each(
        &m,
        &[
            "method_todo",
            "method_unit_todo",
            "method_async_todo",
            "Stub::new_todo",
            "Stub::unit",
            "Stub::consume",
            "Stub::shown",
            "Stub::fetch",
            "Stub::touch",
            "Stub::never",
            "default_todo",
            "Memory::get",
            "Memory::put",
            "Memory::load",
            "call",
            "notify",
        ],
    );
    assert_eq!(calls(&m, "Stub::works", "ok"), 1);
}

#[test]
fn cached_diverging_functions_panic_every_time_and_cache_nothing() {
    let capture = Capture::new();
    for _ in 0..2 {
        panics(&capture, || cached_todo(1));
        panics(&capture, || cached_result_todo(1));
        panics(&capture, || cached_option_todo(1));
        panics(&capture, || cached_unit_todo(1));
        panics(&capture, || block_on(cached_async_todo(1)));
        panics(&capture, || block_on(cached_async_result_todo(1)));
        panics(&capture, || Stub { id: 3 }.cached_method_todo());
    }
    panics(&capture, || cached_todo_uncached(1));
    assert!(!cached_todo_cache().contains_key(&1));
    assert!(!cached_result_todo_cache().contains_key(&1));
    assert!(!cached_option_todo_cache().contains_key(&1));
    assert!(!cached_unit_todo_cache().contains_key(&1));
    assert_eq!(block_on(cached_async_todo_cache().get(&1)), None);
    assert_eq!(block_on(cached_async_result_todo_cache().get(&1)), None);
    assert!(!Stub::cached_method_todo_cache().contains_key(&3));
}

#[test]
fn timed_and_cached_diverging_functions_record_each_panic() {
    let capture = Capture::new();
    panics(&capture, || timed_cached_todo(1));
    panics(&capture, || block_on(cached_timed_async_todo(1)));
    let m = capture.metrics();
    assert_one_panic_each(&m, &["timed_cached_todo", "cached_timed_async_todo"]);
    panics(&capture, || timed_cached_todo(1));
    let m = capture.metrics();
    assert_eq!(calls(&m, "timed_cached_todo", "error"), 2);
    assert_eq!(
        m.counter(PANICS_TOTAL, &[("function", "timed_cached_todo")]),
        2
    );
}

#[test]
fn one_line_bodies_record_as_the_others() {
    let capture = Capture::new();
    panics(&capture, one_line::unit);
    panics(&capture, || one_line::never());
    panics(&capture, || block_on(one_line::async_unit()));
    panics(&capture, || block_on(one_line::async_option()));
    panics(&capture, || block_on(one_line::async_never()));
    capture.run(|| {
        assert_eq!(one_line::value(3), 3);
        assert_eq!(block_on(one_line::async_borrowed("s")), "s");
    });
    let m = capture.metrics();
    assert_one_panic_each(
        &m,
        &["unit", "never", "async_unit", "async_option", "async_never"],
    );
    assert_eq!(calls(&m, "value", "ok"), 1);
    assert_eq!(calls(&m, "async_borrowed", "ok"), 1);
}

/// `process::exit` ends the process as it would without `#[timed]`: the
/// test runs itself again with `VIGIL_DIVERGING_EXIT` set and reads the
/// child's exit code.
#[test]
fn exiting_bodies_exit_with_their_code() {
    if std::env::var_os("VIGIL_DIVERGING_EXIT").is_some() {
        unit_exit();
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "exiting_bodies_exit_with_their_code",
            "--nocapture",
        ])
        .env("VIGIL_DIVERGING_EXIT", "1")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
}
