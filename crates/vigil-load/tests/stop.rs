//! Stop conditions: the error rate over a sliding window, the number of
//! requests, the per-request timeout; and settings that describe no load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;
use vigil_load::{Comparison, Error, Kpi, LoadTest, Stat, StoppedBy, Verdict};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn stops_when_the_error_rate_crosses_the_limit() {
    let origin = Instant::now();
    let calls = Arc::new(AtomicU64::new(0));
    let target = move || {
        // Healthy for 5 s, then every fifth request fails (20 %).
        let n = calls.fetch_add(1, Relaxed);
        let failing = origin.elapsed() >= secs(5) && n.is_multiple_of(5);
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if failing { Err("503") } else { Ok(()) }
        }
    };
    let report = LoadTest::new(target)
        .users(10)
        .duration(secs(60))
        .error_rate_limit(0.05)
        .error_window(secs(1), 20)
        .run()
        .await
        .unwrap();
    let StoppedBy::ErrorRate { ratio, limit } = report.stopped_by else {
        panic!("expected an error-rate stop: {report}");
    };
    assert_eq!(limit, 0.05);
    assert!(ratio > 0.05, "{report}");
    assert!(
        report.duration > secs(5) && report.duration < secs(6),
        "{report}"
    );
    assert!(report.errors > 0);
    assert!(
        report.to_string().contains("stopped: error rate"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_healthy_target_runs_to_the_end_under_an_error_limit() {
    let report = LoadTest::new(|| async { Ok::<_, ()>(()) })
        .rate(50.0)
        .duration(secs(10))
        .error_rate_limit(0.05)
        .run()
        .await
        .unwrap();
    assert_eq!(report.stopped_by, StoppedBy::Completed);
}

#[tokio::test(start_paused = true)]
async fn stops_after_max_requests() {
    let report = LoadTest::new(|| async { tokio::time::sleep(Duration::from_millis(5)).await })
        .users(7)
        .duration(secs(60))
        .max_requests(100)
        .run()
        .await
        .unwrap();
    assert_eq!(report.requests, 100);
    assert_eq!(report.stopped_by, StoppedBy::MaxRequests);
    assert!(report.duration < secs(1));

    // The load ends when the next request would have been due: 2 requests
    // in 2 s is the 1 per second offered, not 2 in 1 s.
    let report = LoadTest::new(|| async { Ok::<_, ()>(()) })
        .rate(1.0)
        .duration(secs(60))
        .max_requests(2)
        .run()
        .await
        .unwrap();
    assert_eq!(report.requests, 2);
    assert_eq!(report.duration, secs(2));
    assert_eq!((report.rate, report.sent_rate), (1.0, 1.0), "{report}");
}

#[tokio::test(start_paused = true)]
async fn max_requests_in_a_closed_loop_ends_at_the_last_completion() {
    // 4 users, 100 ms per request, 8 requests: two rounds, 200 ms.
    let report = LoadTest::new(|| async { tokio::time::sleep(Duration::from_millis(100)).await })
        .users(4)
        .duration(secs(60))
        .max_requests(8)
        .run()
        .await
        .unwrap();
    assert_eq!(report.requests, 8);
    assert_eq!(report.duration, Duration::from_millis(200), "{report}");
    assert_eq!(report.rate, 40.0, "{report}");
}

#[tokio::test(start_paused = true)]
async fn slow_requests_time_out_as_errors() {
    let calls = Arc::new(AtomicU64::new(0));
    let target = move || {
        let slow = calls.fetch_add(1, Relaxed).is_multiple_of(2);
        async move {
            let wait = if slow {
                secs(5)
            } else {
                Duration::from_millis(10)
            };
            tokio::time::sleep(wait).await;
        }
    };
    let report = LoadTest::new(target)
        .users(1)
        .duration(secs(10))
        .timeout(secs(1))
        .run()
        .await
        .unwrap();
    assert_eq!(report.timeouts, report.errors);
    assert!(report.timeouts >= 9, "{report}");
    assert!((report.latency.max - 1.0).abs() < 0.001, "{report}");
}

#[tokio::test(start_paused = true)]
async fn requests_outliving_the_grace_period_are_unfinished() {
    let report = LoadTest::new(|| async { tokio::time::sleep(secs(3_600)).await })
        .users(3)
        .duration(secs(1))
        .grace(secs(2))
        .run()
        .await
        .unwrap();
    // Abandoned at 3 s (1 s of load, 2 s of grace): errors, 3 s each.
    assert_eq!(report.unfinished, 3);
    assert_eq!((report.requests, report.errors), (3, 3), "{report}");
    assert_eq!(report.error_ratio, 1.0);
    assert!((report.latency.max - 3.0).abs() < 0.01, "{report}");
    assert!((report.latency.p50 - 3.0).abs() < 0.01, "{report}");
    assert_eq!(report.rate, 0.0, "nothing completed: {report}");
}

#[tokio::test(start_paused = true)]
async fn a_target_that_never_answers_fails_its_kpis() {
    let report = LoadTest::new(std::future::pending::<Result<(), ()>>)
        .rate(10.0)
        .duration(secs(3))
        .grace(secs(1))
        .run()
        .await
        .unwrap();
    assert_eq!(report.unfinished, 30, "{report}");
    assert_eq!((report.requests, report.errors), (30, 30), "{report}");
    // Each waited from its scheduled start (0 .. 2.9 s) to the abort at 4 s.
    assert!(
        report.latency.min > 1.09 && report.latency.max < 4.01,
        "{report}"
    );
    assert!(report.latency(0.95) > secs(3), "{report}");
    let mut kpis = Comparison::new();
    let p95 = Kpi::of("p95", Stat::P95).target(200.0).critical(500.0);
    assert_eq!(kpis.measure(p95, &report).unwrap(), Verdict::Fail);
    let errors = Kpi::of("errors", Stat::ErrorRate).target(1.0).critical(5.0);
    assert_eq!(kpis.measure(errors, &report).unwrap(), Verdict::Fail);
    let rate = Kpi::of("throughput", Stat::Rate).target(10.0).critical(5.0);
    assert_eq!(kpis.measure(rate, &report).unwrap(), Verdict::Fail);
}

#[tokio::test(start_paused = true)]
async fn durations_beyond_the_clock_are_invalid_settings_not_panics() {
    let invalid = |err: Error| match err {
        Error::Invalid { setting, .. } => setting,
        other => panic!("expected Invalid, got {other}"),
    };
    let err = LoadTest::new(ok)
        .users(1)
        .duration(Duration::MAX)
        .run()
        .await
        .unwrap_err();
    assert_eq!(invalid(err), "duration");
    let err = LoadTest::new(ok)
        .stages([(Duration::MAX, 1), (Duration::MAX, 1)])
        .run()
        .await
        .unwrap_err();
    assert_eq!(invalid(err), "stages");
    let err = LoadTest::new(ok)
        .rate_stages([(Duration::MAX, 1.0)])
        .run()
        .await
        .unwrap_err();
    assert_eq!(invalid(err), "rate_stages");
    let err = LoadTest::new(ok)
        .step(1, Duration::MAX, 3)
        .run()
        .await
        .unwrap_err();
    assert_eq!(invalid(err), "step");
    let err = LoadTest::new(ok)
        .users(1)
        .duration(secs(1))
        .error_rate_limit(0.05)
        .error_window(Duration::MAX, 1)
        .run()
        .await
        .unwrap_err();
    assert_eq!(invalid(err), "error_window");
    let err = LoadTest::new(ok)
        .users(1)
        .duration(secs(1))
        .think_time(Duration::MAX)
        .run()
        .await
        .unwrap_err();
    assert_eq!(invalid(err), "think_time");
    // Long timeouts and grace periods are fine: tokio caps its timers.
    let report = LoadTest::new(ok)
        .users(1)
        .duration(secs(1))
        .timeout(Duration::MAX)
        .grace(Duration::MAX)
        .max_requests(5)
        .run()
        .await
        .unwrap();
    assert_eq!(report.requests, 5);
}

async fn ok() -> Result<(), ()> {
    Ok(())
}

#[tokio::test]
async fn settings_that_describe_no_single_load_are_errors() {
    let err = LoadTest::new(ok).name("t").run().await.unwrap_err();
    assert!(matches!(err, Error::NoLoad { .. }), "{err}");
    let err = LoadTest::new(ok)
        .users(5)
        .rate(10.0)
        .duration(secs(1))
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "load test `load test`: `users` and `rate` both set the load; keep one"
    );
    let err = LoadTest::new(ok).users(5).run().await.unwrap_err();
    assert!(
        matches!(err, Error::MissingDuration { load: "users", .. }),
        "{err}"
    );
    let err = LoadTest::new(ok)
        .rate(-1.0)
        .duration(secs(1))
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rate = -1 is invalid"), "{err}");
    let err = LoadTest::new(ok)
        .users(1)
        .duration(secs(1))
        .ramp_up(secs(2))
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ramp_up"), "{err}");
    let err = LoadTest::new(ok)
        .stages([(secs(1), 1)])
        .error_rate_limit(1.5)
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("error_rate_limit = 1.5"), "{err}");
    // The same setting twice: the last one counts.
    let report = LoadTest::new(ok)
        .users(5)
        .users(2)
        .duration(secs(1))
        .max_requests(4)
        .run()
        .await
        .unwrap();
    assert_eq!(report.requests, 4);
}

#[test]
fn run_outside_a_tokio_runtime_is_an_error() {
    let run = LoadTest::new(ok).users(1).duration(secs(1)).run();
    let mut run = std::pin::pin!(run);
    let Poll::Ready(result) = run.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("the check comes before any await");
    };
    assert!(matches!(result, Err(Error::NoRuntime { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_request_is_an_error_and_its_user_goes_on() {
    let calls = Arc::new(AtomicU64::new(0));
    let target = move || {
        let n = calls.fetch_add(1, Relaxed);
        if n % 10 == 5 {
            panic!("the target's closure panics");
        }
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if n % 10 == 9 {
                panic!("the target's future panics");
            }
        }
    };
    let report = LoadTest::new(target)
        .users(2)
        .duration(secs(10))
        .run()
        .await
        .unwrap();
    assert!((report.error_ratio - 0.2).abs() < 0.01, "{report}");
    assert_eq!(report.unfinished, 0);
    assert!(report.requests >= 200, "both users kept going: {report}");
}
