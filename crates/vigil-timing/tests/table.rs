//! `TimerTable`: call sites named at run time, bounded in number, with the
//! outcomes and caller tracking of static ones.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use quanta::{Clock, Mock};
use support::{Capture, block_on};
use vigil_timing::{
    CALLS_DURATION, CALLS_TOTAL, CANCELLATIONS_TOTAL, CallSite, Outcome, PANICS_TOTAL, Timer,
    TimerTable,
};

const MODULE: &str = module_path!();

/// Runs `f` with a mock clock as the thread's `quanta` clock.
fn with_mock_clock<T>(f: impl FnOnce(&Mock) -> T) -> T {
    let (clock, mock): (Clock, Arc<Mock>) = Clock::mock();
    quanta::with_clock(&clock, || f(&mock))
}

#[test]
fn a_labels_table_records_each_key_as_its_label_value() {
    static INFER: TimerTable = TimerTable::by_labels("infer", MODULE, &["model"]);
    let capture = Capture::new();
    capture.run(|| {
        with_mock_clock(|mock| {
            for (model, millis) in [("small", 20), ("large", 300), ("small", 40)] {
                let timer = INFER.start(model);
                mock.increment(Duration::from_millis(millis));
                drop(timer);
            }
            let failed: Result<(), &str> =
                INFER.time_with("large", || Err("busy"), Outcome::of_result);
            assert_eq!(failed, Err("busy"));
        });
    });
    let m = capture.metrics();
    let small = [("function", "infer"), ("model", "small")];
    let large = [("function", "infer"), ("model", "large")];
    assert_eq!(m.histogram(CALLS_DURATION, &small), vec![0.02, 0.04]);
    assert_eq!(m.histogram(CALLS_DURATION, &large), vec![0.3, 0.0]);
    assert_eq!(m.counter(CALLS_TOTAL, &[small[1], ("result", "ok")]), 2);
    assert_eq!(m.counter(CALLS_TOTAL, &[large[1], ("result", "ok")]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[large[1], ("result", "error")]), 1);
    assert_eq!(INFER.len(), 2);
    assert_eq!(INFER.overflowed(), 0);
}

#[test]
fn a_function_table_names_the_function_and_finds_the_same_site_again() {
    static QUERIES: TimerTable = TimerTable::by_function(MODULE).labels(&[("db", "main")]);
    let capture = Capture::new();
    let name = String::from("find_user");
    capture.run(|| {
        QUERIES.time(&name, || ());
        QUERIES.time("find_user", || ());
        QUERIES.time(name.as_str(), || ());
    });
    let site = QUERIES.site(&name);
    assert!(
        std::ptr::eq(site, QUERIES.site("find_user")),
        "one site per key"
    );
    assert_eq!(site.name(), "find_user");
    assert_eq!(site.module(), MODULE);
    assert_eq!(site.static_labels(), [("db", "main")]);
    let m = capture.metrics();
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "find_user"), ("db", "main"), ("result", "ok")]
        ),
        3
    );
    assert_eq!(QUERIES.len(), 1);
}

#[test]
fn keys_beyond_the_capacity_share_the_overflow_site_and_are_counted() {
    static TABLE: TimerTable = TimerTable::by_labels("call", MODULE, &["peer"]).with_capacity(2);
    let capture = Capture::new();
    capture.run(|| {
        for peer in ["a", "b", "c", "d", "a", "c"] {
            TABLE.time(peer, || ());
        }
    });
    assert_eq!(TABLE.len(), 2);
    assert_eq!(TABLE.capacity(), 2);
    assert_eq!(
        format!("{TABLE:?}"),
        format!(
            "TimerTable {{ naming: Labels {{ function: \"call\", names: [\"peer\"] }}, \
             module: {MODULE:?}, keys: 2/2, overflowed: 3 }}"
        )
    );
    assert_eq!(TABLE.overflowed(), 3, "c, d and c again");
    let m = capture.metrics();
    let ok = ("result", "ok");
    assert_eq!(m.counter(CALLS_TOTAL, &[("peer", "a"), ok]), 2);
    assert_eq!(m.counter(CALLS_TOTAL, &[("peer", "b"), ok]), 1);
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("peer", TimerTable::OVERFLOW), ok]),
        3
    );
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("peer", "c")]),
        0,
        "no series for keys beyond the capacity"
    );
    let series = m.label_sets(CALLS_TOTAL).len();
    assert_eq!(series, 6, "ok and error for a, b and the overflow site");
}

#[test]
fn keys_with_several_values_fill_the_labels_in_order() {
    static ROUTES: TimerTable = TimerTable::by_labels("route", MODULE, &["method", "path"]);
    let capture = Capture::new();
    capture.run(|| {
        ROUTES.time(["GET", "/a"], || ());
        ROUTES.time(&["GET", "/a"][..], || ());
        ROUTES.time(["POST", "/a"], || ());
        // The wrong number of values: the overflow site, not a new series.
        ROUTES.time(["GET"], || ());
    });
    assert_eq!(
        ROUTES.site(["GET", "/a"]).static_labels(),
        [("method", "GET"), ("path", "/a")]
    );
    assert_eq!(ROUTES.len(), 2);
    assert_eq!(ROUTES.overflowed(), 1);
    let m = capture.metrics();
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("method", "GET"), ("path", "/a")]),
        2
    );
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("method", "POST"), ("path", "/a")]),
        1
    );
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[
                ("method", TimerTable::OVERFLOW),
                ("path", TimerTable::OVERFLOW)
            ]
        ),
        1
    );
}

#[test]
fn callers_are_tracked_across_table_and_static_sites() {
    static HANDLER: CallSite = CallSite::new("handler", MODULE);
    static MODELS: TimerTable = TimerTable::by_function(MODULE);
    static STORE: CallSite = CallSite::new("store", MODULE);
    let capture = Capture::new();
    capture.run(|| {
        let outer = Timer::start(&HANDLER);
        MODELS.time("embed", || drop(Timer::start(&STORE)));
        drop(outer);
    });
    let m = capture.metrics();
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "embed"), ("caller_function", "handler")]
        ),
        1
    );
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "store"), ("caller_function", "embed")]
        ),
        1
    );
}

#[test]
fn futures_and_panics_keep_their_outcomes() {
    static JOBS: TimerTable = TimerTable::by_labels("job", MODULE, &["kind"]);
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(block_on(JOBS.timed("sync", async { 5 })), 5);
        let failed: Result<u8, ()> =
            block_on(JOBS.timed_with("sync", async { Err(()) }, Outcome::of_result));
        assert_eq!(failed, Err(()));
        // Polled once, then dropped: cancelled.
        {
            let mut pending = pin!(JOBS.timed("slow", std::future::pending::<()>()));
            let mut cx = Context::from_waker(Waker::noop());
            assert_eq!(pending.as_mut().poll(&mut cx), Poll::Pending);
        }
        let panicked = catch_unwind(AssertUnwindSafe(|| JOBS.time("crash", || panic!("boom"))));
        assert!(panicked.is_err());
    });
    let m = capture.metrics();
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("kind", "sync"), ("result", "ok")]),
        1
    );
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("kind", "sync"), ("result", "error")]),
        1
    );
    assert_eq!(m.counter(CANCELLATIONS_TOTAL, &[("kind", "slow")]), 1);
    assert_eq!(m.counter(PANICS_TOTAL, &[("kind", "crash")]), 1);
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("kind", "crash"), ("result", "error")]),
        1
    );
}

#[test]
fn threads_racing_on_new_keys_share_one_site_per_key_within_the_capacity() {
    static RACE: TimerTable = TimerTable::by_function(MODULE).with_capacity(40);
    let keys: Vec<String> = (0..60).map(|i| format!("key{i}")).collect();
    let sites: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    keys.iter()
                        .map(|key| std::ptr::from_ref(RACE.site(key)) as usize)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        sites.windows(2).all(|w| w[0] == w[1]),
        "every thread found the same sites"
    );
    assert_eq!(RACE.len(), 40);
    let overflow = std::ptr::from_ref(RACE.site("not seen before")) as usize;
    let overflowed = sites[0].iter().filter(|&&site| site == overflow).count();
    assert_eq!(overflowed, 20, "the keys beyond the capacity");
}

#[test]
fn the_table_behaves_like_a_bounded_map_of_first_seen_keys() {
    // Reference model: the first `capacity` distinct keys get a site each,
    // every later new key the overflow site.
    static MODEL: TimerTable = TimerTable::by_function(MODULE).with_capacity(50);
    let mut model: Vec<(String, usize)> = Vec::new();
    let mut overflowed = 0;
    let overflow = std::ptr::from_ref(MODEL.site(["two", "values"])) as usize;
    overflowed += 1;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..5_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("k{}", x % 120);
        let site = MODEL.site(key.as_str());
        if site.name() != TimerTable::OVERFLOW {
            assert_eq!(site.name(), key);
        }
        let site = std::ptr::from_ref(site) as usize;
        match model.iter().find(|(k, _)| *k == key) {
            Some(&(_, expected)) => assert_eq!(site, expected, "{key} keeps its site"),
            None if model.len() < 50 => model.push((key, site)),
            None => {
                assert_eq!(site, overflow, "{key} beyond the capacity");
                overflowed += 1;
            }
        }
    }
    assert_eq!(MODEL.len(), model.len());
    assert_eq!(MODEL.overflowed(), overflowed);
    let distinct: std::collections::HashSet<usize> = model.iter().map(|(_, site)| *site).collect();
    assert_eq!(distinct.len(), 50, "one site per key");
    assert!(!distinct.contains(&overflow));
}

/// Whether `TimerTable::by_labels` (then `labels`) refuses these names;
/// the names come through `black_box` so the check runs at run time (in a
/// `static` it stops the build).
fn refused(
    names: &'static [&'static str],
    labels: &'static [(&'static str, &'static str)],
) -> bool {
    let names = std::hint::black_box(names);
    let labels = std::hint::black_box(labels);
    catch_unwind(|| TimerTable::by_labels("infer", MODULE, names).labels(labels)).is_err()
}

#[test]
fn key_labels_the_function_metrics_set_themselves_are_refused() {
    for name in [
        "function",
        "module",
        "service_name",
        "caller_function",
        "caller_module",
        "result",
        "objective_name",
        "objective_percentile",
        "objective_latency_threshold",
    ] {
        let names: &'static [&'static str] = Box::leak(Box::new(["model", name]));
        assert!(refused(names, &[]), "{name} is refused");
    }
    assert!(refused(&["model", "model"], &[]), "a name given twice");
    assert!(
        refused(&["model"], &[("region", "eu"), ("model", "x")]),
        "a static label with a key label's name"
    );
    // Names that only look like reserved ones are fine.
    assert!(!refused(
        &["model", "objective", "results", "function_kind"],
        &[("region", "eu")]
    ));
}
