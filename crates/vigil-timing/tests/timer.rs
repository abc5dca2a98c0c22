//! `Timer`, `time`, `Timed`: outcomes, durations, callers and recorders.

mod support;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use quanta::{Clock, Mock};
use support::Capture;
use vigil_timing::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use vigil_timing::{
    CALLS_CONCURRENT, CALLS_DURATION, CALLS_TOTAL, CANCELLATIONS_TOTAL, CallSite, Outcome,
    PANICS_TOTAL, TimedExt, Timer, callsite, service_name, time, time_with,
};

/// Runs `f` with a mock clock as the thread's `quanta` clock.
fn with_mock_clock<T>(f: impl FnOnce(&Mock) -> T) -> T {
    let (clock, mock): (Clock, Arc<Mock>) = Clock::mock();
    quanta::with_clock(&clock, || f(&mock))
}

fn fl(site: &CallSite) -> [(&'static str, &'static str); 2] {
    [("function", site.name()), ("module", site.module())]
}

#[test]
fn timer_records_ok_call_with_mock_clock_duration() {
    static SITE: CallSite = CallSite::new("timer_ok", module_path!());
    let capture = Capture::new();
    capture.run(|| {
        with_mock_clock(|mock| {
            let timer = Timer::start(&SITE);
            mock.increment(Duration::from_millis(250));
            assert_eq!(timer.elapsed(), Duration::from_millis(250));
        })
    });
    let m = capture.metrics();
    let [f, md] = fl(&SITE);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, md, ("result", "ok")]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "error")]), 0);
    assert_eq!(m.histogram(CALLS_DURATION, &[f, md]), vec![0.25]);
    assert_eq!(
        m.label_sets(CALLS_TOTAL),
        vec![
            vec![
                ("function".into(), "timer_ok".into()),
                ("module".into(), module_path!().into()),
                ("service_name".into(), service_name().into()),
                ("caller_function".into(), String::new()),
                ("caller_module".into(), String::new()),
                ("result".into(), "ok".into()),
            ],
            vec![
                ("function".into(), "timer_ok".into()),
                ("module".into(), module_path!().into()),
                ("service_name".into(), service_name().into()),
                ("caller_function".into(), String::new()),
                ("caller_module".into(), String::new()),
                ("result".into(), "error".into()),
            ]
        ],
        "both results are registered at 0 on first use, so rates exist before the first error"
    );
}

#[test]
fn explicit_outcomes_are_recorded_once_each() {
    static SITE: CallSite = CallSite::new("timer_explicit", module_path!());
    let capture = Capture::new();
    capture.run(|| {
        Timer::start(&SITE).error();
        Timer::start(&SITE).ok();
        Timer::start(&SITE).finish(Outcome::Error);
        Timer::start(&SITE).finish(Outcome::Panic);
        drop(Timer::start(&SITE));
    });
    let m = capture.metrics();
    let [f, _] = fl(&SITE);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "ok")]), 2);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "error")]), 3);
    assert_eq!(m.counter(PANICS_TOTAL, &[f]), 1);
    assert_eq!(m.histogram(CALLS_DURATION, &[f]).len(), 5);
}

#[test]
fn panic_is_recorded_once_as_error_and_propagates_unchanged() {
    static SITE: CallSite = CallSite::new("timer_panics", module_path!()).track_concurrency();
    let capture = Capture::new();
    let caught = capture.run(|| {
        with_mock_clock(|mock| {
            catch_unwind(AssertUnwindSafe(|| {
                let _timer = Timer::start(&SITE);
                mock.increment(Duration::from_millis(3));
                std::panic::panic_any(17_u32);
            }))
        })
    });
    assert_eq!(caught.unwrap_err().downcast_ref::<u32>(), Some(&17));
    let m = capture.metrics();
    let [f, md] = fl(&SITE);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "error")]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "ok")]), 0);
    assert_eq!(m.counter(PANICS_TOTAL, &[f, md]), 1);
    assert_eq!(m.histogram(CALLS_DURATION, &[f]), vec![0.003]);
    assert_eq!(m.gauge(CALLS_CONCURRENT, &[f]), Some(0.0));
}

#[test]
fn time_and_time_macro_classify_results() {
    let capture = Capture::new();
    capture.run(|| {
        assert_eq!(time(callsite!("time_plain"), || 5), 5);
        let r = time_with(
            callsite!("time_with"),
            || "x".parse::<u8>(),
            Outcome::of_result,
        );
        assert!(r.is_err());
        let r: Result<u8, _> = vigil_timing::time!("time_macro", || "300".parse::<u8>());
        assert!(r.is_err());
        let r = vigil_timing::time!("time_macro", || Ok::<_, ()>(1));
        assert_eq!(r, Ok(1));
        assert_eq!(vigil_timing::time!("time_macro_plain", || "s"), "s");
    });
    let m = capture.metrics();
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("function", "time_plain"), ("result", "ok")]),
        1
    );
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "time_with"), ("result", "error")]
        ),
        1
    );
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "time_macro"), ("result", "error")]
        ),
        1
    );
    assert_eq!(
        m.counter(CALLS_TOTAL, &[("function", "time_macro"), ("result", "ok")]),
        1
    );
    assert_eq!(
        m.counter(
            CALLS_TOTAL,
            &[("function", "time_macro_plain"), ("result", "ok")]
        ),
        1
    );
}

#[test]
fn nested_sync_calls_report_the_innermost_caller() {
    static OUTER: CallSite = CallSite::new("outer", "app::api");
    static MIDDLE: CallSite = CallSite::new("middle", "app::db");
    static INNER: CallSite = CallSite::new("inner", "app::db");
    let capture = Capture::new();
    capture.run(|| {
        let outer = Timer::start(&OUTER);
        {
            let _middle = Timer::start(&MIDDLE);
            drop(Timer::start(&INNER));
        }
        drop(Timer::start(&INNER));
        drop(outer);
        drop(Timer::start(&INNER));
    });
    let m = capture.metrics();
    let by = |f: &str, cf: &str, cm: &str| {
        m.counter(
            CALLS_TOTAL,
            &[
                ("function", f),
                ("caller_function", cf),
                ("caller_module", cm),
            ],
        )
    };
    assert_eq!(by("inner", "middle", "app::db"), 1);
    assert_eq!(by("inner", "outer", "app::api"), 1);
    assert_eq!(by("inner", "", ""), 1);
    assert_eq!(by("middle", "outer", "app::api"), 1);
    assert_eq!(by("outer", "", ""), 1);
}

#[test]
fn callers_beyond_the_cached_table_are_still_counted() {
    const N: usize = 40;
    static CALLERS: [CallSite; N] = [
        CallSite::new("c0", "callers"),
        CallSite::new("c1", "callers"),
        CallSite::new("c2", "callers"),
        CallSite::new("c3", "callers"),
        CallSite::new("c4", "callers"),
        CallSite::new("c5", "callers"),
        CallSite::new("c6", "callers"),
        CallSite::new("c7", "callers"),
        CallSite::new("c8", "callers"),
        CallSite::new("c9", "callers"),
        CallSite::new("c10", "callers"),
        CallSite::new("c11", "callers"),
        CallSite::new("c12", "callers"),
        CallSite::new("c13", "callers"),
        CallSite::new("c14", "callers"),
        CallSite::new("c15", "callers"),
        CallSite::new("c16", "callers"),
        CallSite::new("c17", "callers"),
        CallSite::new("c18", "callers"),
        CallSite::new("c19", "callers"),
        CallSite::new("c20", "callers"),
        CallSite::new("c21", "callers"),
        CallSite::new("c22", "callers"),
        CallSite::new("c23", "callers"),
        CallSite::new("c24", "callers"),
        CallSite::new("c25", "callers"),
        CallSite::new("c26", "callers"),
        CallSite::new("c27", "callers"),
        CallSite::new("c28", "callers"),
        CallSite::new("c29", "callers"),
        CallSite::new("c30", "callers"),
        CallSite::new("c31", "callers"),
        CallSite::new("c32", "callers"),
        CallSite::new("c33", "callers"),
        CallSite::new("c34", "callers"),
        CallSite::new("c35", "callers"),
        CallSite::new("c36", "callers"),
        CallSite::new("c37", "callers"),
        CallSite::new("c38", "callers"),
        CallSite::new("c39", "callers"),
    ];
    static CALLEE: CallSite = CallSite::new("callee", "callers");
    let capture = Capture::new();
    capture.run(|| {
        for _ in 0..3 {
            for caller in &CALLERS {
                let _outer = Timer::start(caller);
                Timer::start(&CALLEE).error();
            }
        }
    });
    let m = capture.metrics();
    for caller in &CALLERS {
        assert_eq!(
            m.counter(
                CALLS_TOTAL,
                &[
                    ("function", "callee"),
                    ("caller_function", caller.name()),
                    ("result", "error")
                ]
            ),
            3,
            "caller {}",
            caller.name()
        );
    }
}

#[test]
fn recorder_installed_after_first_call_receives_later_calls() {
    static SITE: CallSite = CallSite::new("late_recorder", module_path!());
    // No recorder: handles resolve against the no-op recorder.
    drop(Timer::start(&SITE));
    let first = Capture::new();
    first.run(|| drop(Timer::start(&SITE)));
    let second = Capture::new();
    second.run(|| {
        drop(Timer::start(&SITE));
        drop(Timer::start(&SITE));
    });
    first.run(|| drop(Timer::start(&SITE)));
    let [f, _] = fl(&SITE);
    assert_eq!(first.metrics().counter(CALLS_TOTAL, &[f]), 2);
    assert_eq!(second.metrics().counter(CALLS_TOTAL, &[f]), 2);
}

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
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

#[test]
fn dropped_future_is_cancelled_and_lowers_the_gauge() {
    static SITE: CallSite = CallSite::new("cancelled", module_path!()).track_concurrency();
    let capture = Capture::new();
    capture.run(|| {
        // Never polled: no call happened.
        drop(yield_once().timed(&SITE));
        let mut fut = pin!(yield_once().timed(&SITE));
        assert!(poll_once(fut.as_mut()).is_pending());
    });
    let m = capture.metrics();
    let [f, md] = fl(&SITE);
    assert_eq!(m.counter(CANCELLATIONS_TOTAL, &[f, md]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[f]), 0);
    assert!(m.histogram(CALLS_DURATION, &[f]).is_empty());
    assert_eq!(m.gauge(CALLS_CONCURRENT, &[f, md]), Some(0.0));
}

#[test]
fn gauge_counts_calls_in_flight() {
    static SITE: CallSite = CallSite::new("in_flight", module_path!()).track_concurrency();
    let capture = Capture::new();
    capture.run(|| {
        let mut a = pin!(yield_once().timed(&SITE));
        let mut b = pin!(yield_once().timed(&SITE));
        assert!(poll_once(a.as_mut()).is_pending());
        assert!(poll_once(b.as_mut()).is_pending());
        assert_eq!(
            capture.metrics().gauge(CALLS_CONCURRENT, &[fl(&SITE)[0]]),
            Some(2.0)
        );
        assert!(poll_once(a.as_mut()).is_ready());
        assert_eq!(
            capture.metrics().gauge(CALLS_CONCURRENT, &[fl(&SITE)[0]]),
            Some(1.0)
        );
    });
    assert_eq!(
        capture.metrics().gauge(CALLS_CONCURRENT, &[fl(&SITE)[0]]),
        Some(0.0)
    );
    assert_eq!(
        capture
            .metrics()
            .counter(CANCELLATIONS_TOTAL, &[fl(&SITE)[0]]),
        1
    );
}

#[test]
fn future_that_panics_is_recorded_as_panic_not_cancel() {
    static SITE: CallSite = CallSite::new("future_panics", module_path!()).track_concurrency();
    let capture = Capture::new();
    let result = capture.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::spawn(
                async {
                    yield_once().await;
                    panic!("boom");
                }
                .timed(&SITE),
            )
            .await
        })
    });
    assert!(result.unwrap_err().is_panic());
    let m = capture.metrics();
    let [f, _] = fl(&SITE);
    assert_eq!(m.counter(PANICS_TOTAL, &[f]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "error")]), 1);
    assert_eq!(m.counter(CANCELLATIONS_TOTAL, &[f]), 0);
    assert_eq!(m.gauge(CALLS_CONCURRENT, &[f]), Some(0.0));
}

#[test]
fn async_callers_survive_await_points_and_interleaving() {
    static PARENT_A: CallSite = CallSite::new("parent_a", "svc");
    static PARENT_B: CallSite = CallSite::new("parent_b", "svc");
    static CHILD: CallSite = CallSite::new("child", "svc");
    async fn child() -> Result<(), ()> {
        async {
            yield_once().await;
            Err(())
        }
        .timed_with(&CHILD, Outcome::of_result)
        .await
    }
    let capture = Capture::new();
    capture.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let a = async {
                yield_once().await;
                let _ = child().await;
                yield_once().await;
                let _ = child().await;
            }
            .timed(&PARENT_A);
            let b = async {
                let _ = child().await;
            }
            .timed(&PARENT_B);
            tokio::join!(a, b);
            // Outside any instrumented future.
            let _ = child().await;
        });
    });
    let m = capture.metrics();
    let by = |cf: &str| {
        m.counter(
            CALLS_TOTAL,
            &[
                ("function", "child"),
                ("caller_function", cf),
                ("result", "error"),
            ],
        )
    };
    assert_eq!(by("parent_a"), 2);
    assert_eq!(by("parent_b"), 1);
    assert_eq!(by(""), 1);
}

#[test]
fn async_durations_follow_the_mock_clock() {
    static SITE: CallSite = CallSite::new("async_duration", module_path!());
    let capture = Capture::new();
    capture.run(|| {
        with_mock_clock(|mock| {
            let mut fut = pin!(
                async {
                    yield_once().await;
                }
                .timed(&SITE)
            );
            mock.increment(Duration::from_secs(1)); // before the first poll: not counted
            assert!(poll_once(fut.as_mut()).is_pending());
            mock.increment(Duration::from_millis(40));
            assert!(poll_once(fut.as_mut()).is_ready());
        })
    });
    assert_eq!(
        capture.metrics().histogram(CALLS_DURATION, &[fl(&SITE)[0]]),
        vec![0.04]
    );
}

#[derive(Default, Clone)]
struct Events(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Events {
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
        let mut fields = Fields(format!("{} ", event.metadata().level()));
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0.trim_end().to_owned());
    }
}

#[test]
fn slow_calls_emit_one_warning_with_elapsed_and_threshold() {
    use tracing_subscriber::layer::SubscriberExt;
    static SITE: CallSite = CallSite::new("slow_fn", "svc::slow").slow(Duration::from_millis(100));
    let events = Events::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    tracing::subscriber::with_default(subscriber, || {
        with_mock_clock(|mock| {
            let t = Timer::start(&SITE);
            mock.increment(Duration::from_millis(99));
            drop(t);
            let t = Timer::start(&SITE);
            mock.increment(Duration::from_millis(150));
            t.error();
        })
    });
    let events = events.0.lock().unwrap();
    assert_eq!(
        *events,
        vec![
            "WARN message=slow call function=slow_fn module=svc::slow elapsed=150ms \
             threshold=100ms outcome=error"
                .to_owned()
        ]
    );
}

#[test]
fn a_call_made_while_unwinding_that_returns_normally_is_ok() {
    static SITE: CallSite = CallSite::new("cleanup", module_path!());
    struct CleansUp;
    impl Drop for CleansUp {
        fn drop(&mut self) {
            // Runs during unwinding; the timed call itself does not panic.
            time(&SITE, || ());
        }
    }
    let capture = Capture::new();
    let caught = capture.run(|| {
        catch_unwind(|| {
            let _guard = CleansUp;
            panic!("unrelated");
        })
    });
    assert!(caught.is_err());
    let m = capture.metrics();
    let [f, _] = fl(&SITE);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "ok")]), 1);
    assert_eq!(m.counter(PANICS_TOTAL, &[f]), 0);
}

#[test]
fn a_panicking_classifier_is_recorded_as_a_panic_and_lowers_the_gauge() {
    static SITE: CallSite = CallSite::new("bad_classifier", module_path!()).track_concurrency();
    let capture = Capture::new();
    let caught = capture.run(|| {
        let mut fut =
            pin!(async { 1 }.timed_with(&SITE, |_: &i32| -> Outcome { panic!("classifier") }));
        catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut())))
    });
    assert!(caught.is_err());
    let m = capture.metrics();
    let [f, _] = fl(&SITE);
    assert_eq!(m.counter(PANICS_TOTAL, &[f]), 1);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "error")]), 1);
    assert_eq!(m.gauge(CALLS_CONCURRENT, &[f]), Some(0.0));
}

#[test]
fn a_future_polled_again_after_a_caught_panic_is_not_a_new_call() {
    static SITE: CallSite = CallSite::new("repolled", module_path!()).track_concurrency();
    let capture = Capture::new();
    capture.run(|| {
        let mut polls = 0;
        let mut fut = pin!(
            std::future::poll_fn(move |_| {
                polls += 1;
                if polls < 3 {
                    panic!("poll {polls}");
                }
                Poll::Ready(())
            })
            .timed(&SITE)
        );
        for _ in 0..2 {
            assert!(catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut()))).is_err());
        }
        assert!(poll_once(fut.as_mut()).is_ready());
    });
    let m = capture.metrics();
    let [f, _] = fl(&SITE);
    assert_eq!(m.counter(PANICS_TOTAL, &[f]), 1, "one call, one panic");
    assert_eq!(m.counter(CALLS_TOTAL, &[f]), 1);
    assert_eq!(m.histogram(CALLS_DURATION, &[f]).len(), 1);
    assert_eq!(m.gauge(CALLS_CONCURRENT, &[f]), Some(0.0));
}

#[test]
fn timers_dropped_in_start_order_leave_no_stale_caller() {
    static A: CallSite = CallSite::new("first", module_path!());
    static B: CallSite = CallSite::new("second", module_path!());
    let capture = Capture::new();
    capture.run(|| {
        let a = Timer::start(&A);
        let b = Timer::start(&B);
        drop(a);
        drop(b);
        assert!(vigil_timing::current_call_site().is_none());
    });
}

#[test]
fn local_recorders_at_a_reused_address_each_receive_their_calls() {
    static SITE: CallSite = CallSite::new("reused", module_path!());
    for round in 0..3 {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        vigil_timing::with_local_recorder(&recorder, || time(&SITE, || ()));
        let recorded = snapshotter.snapshot().into_vec();
        assert!(
            recorded
                .iter()
                .any(|(key, ..)| key.key().name() == CALLS_TOTAL),
            "round {round} reached its own recorder"
        );
    }
}

#[test]
fn service_name_is_the_binary_package_unless_the_environment_names_one() {
    let named = ["AUTOMETRICS_SERVICE_NAME", "OTEL_SERVICE_NAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
    // This test binary is `target/*/deps/timer-<hash>`.
    assert_eq!(service_name(), named.as_deref().unwrap_or("timer"));
}

#[test]
fn objectives_label_the_counter_and_the_histogram_as_autometrics_does() {
    const API: Objective = Objective::new("api")
        .success_rate(ObjectivePercentile::P99_9)
        .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);
    const SUCCESS_ONLY: Objective = Objective::new("jobs").success_rate(ObjectivePercentile::P95);
    const LATENCY_ONLY: Objective =
        Objective::new("batch").latency(ObjectiveLatency::Ms1000, ObjectivePercentile::P90);
    static BOTH: CallSite = CallSite::new("slo_both", module_path!())
        .objective(&API)
        .track_concurrency();
    static SUCCESS: CallSite =
        CallSite::new("slo_success", module_path!()).objective(&SUCCESS_ONLY);
    static LATENCY: CallSite =
        CallSite::new("slo_latency", module_path!()).objective(&LATENCY_ONLY);
    let capture = Capture::new();
    capture.run(|| {
        Timer::start(&BOTH).ok();
        Timer::start(&BOTH).error();
        Timer::start(&SUCCESS).ok();
        Timer::start(&LATENCY).ok();
    });
    let m = capture.metrics();
    let labels_of = |name: &str, function: &str| -> Vec<Vec<(String, String)>> {
        m.label_sets(name)
            .into_iter()
            .filter(|set| set.iter().any(|(k, v)| k == "function" && v == function))
            .map(|set| {
                set.into_iter()
                    .filter(|(k, _)| k.starts_with("objective_"))
                    .collect()
            })
            .collect()
    };
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let counter_labels = pairs(&[("objective_name", "api"), ("objective_percentile", "99.9")]);
    assert_eq!(
        labels_of(CALLS_TOTAL, "slo_both"),
        [counter_labels.clone(), counter_labels]
    );
    assert_eq!(
        labels_of(CALLS_DURATION, "slo_both"),
        [pairs(&[
            ("objective_name", "api"),
            ("objective_percentile", "99"),
            ("objective_latency_threshold", "0.25"),
        ])]
    );
    // No objective labels on the other metrics.
    for name in [CALLS_CONCURRENT, PANICS_TOTAL, CANCELLATIONS_TOTAL] {
        assert!(
            labels_of(name, "slo_both").iter().all(Vec::is_empty),
            "{name}"
        );
    }
    // A success-rate-only objective leaves the histogram alone, and a
    // latency-only one the counter.
    assert!(labels_of(CALLS_DURATION, "slo_success")[0].is_empty());
    assert_eq!(
        labels_of(CALLS_TOTAL, "slo_success")[0],
        pairs(&[("objective_name", "jobs"), ("objective_percentile", "95")])
    );
    assert!(
        labels_of(CALLS_TOTAL, "slo_latency")
            .iter()
            .all(Vec::is_empty)
    );
    assert_eq!(
        labels_of(CALLS_DURATION, "slo_latency")[0],
        pairs(&[
            ("objective_name", "batch"),
            ("objective_percentile", "90"),
            ("objective_latency_threshold", "1"),
        ])
    );
    let [f, _] = fl(&BOTH);
    assert_eq!(m.counter(CALLS_TOTAL, &[f, ("result", "error")]), 1);
    assert_eq!(m.histogram(CALLS_DURATION, &[f]).len(), 2);
}
