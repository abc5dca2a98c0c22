//! Open loop: the sent rate is the target rate and the rate is the
//! throughput, ramps follow the stages, the in-flight cap queues requests
//! (and drops, as errors, those it held until the end), latency counts
//! from the scheduled start, so a stall shows in every request that waited
//! for it (coordinated omission), where a closed loop hides it, and in real
//! time the scheduler sends on time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use vigil_load::{LoadTest, Mode, StoppedBy};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn sent_rate_is_the_target_rate() {
    let report = LoadTest::new(|| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok::<_, ()>(())
    })
    .rate(200.0)
    .duration(secs(10))
    .run()
    .await
    .unwrap();
    assert_eq!(report.mode, Mode::OpenLoop);
    assert_eq!(report.requests, 2_000, "{report}");
    assert_eq!(report.sent_rate, 200.0);
    // The throughput leaves out the 3 or 4 requests that completed after
    // the 10 s (sent in its last 20 ms).
    assert!(
        (199.6..=199.7).contains(&report.rate),
        "{}: {report}",
        report.rate
    );
    assert_eq!(report.duration, secs(10));
    assert_eq!(report.stopped_by, StoppedBy::Completed);
    assert_eq!(report.dropped, 0);
    // 20 ms of service: about 4 requests in flight at 200 per second.
    assert!(report.peak_in_flight <= 5, "{report}");
    assert!((report.latency.p99 - 0.02).abs() < 0.02 * 0.001, "{report}");
}

#[tokio::test(start_paused = true)]
async fn ramped_rates_follow_the_stages() {
    let report = LoadTest::new(|| async { Ok::<_, ()>(()) })
        .rate_stages([(secs(10), 100.0), (secs(10), 100.0), (secs(10), 0.0)])
        .run()
        .await
        .unwrap();
    // 0 -> 100 over 10 s, 100 for 10 s, 100 -> 0 over 10 s.
    let counts: Vec<u64> = report.stages.iter().map(|s| s.requests).collect();
    assert_eq!(counts, [500, 1_000, 500], "{report}");
    assert_eq!(report.duration, secs(30));
    assert!(report.to_string().contains("req/s target"));
}

#[tokio::test(start_paused = true)]
async fn ramp_up_reaches_the_rate() {
    let report = LoadTest::new(|| async { Ok::<_, ()>(()) })
        .rate(50.0)
        .ramp_up(secs(60))
        .duration(secs(300))
        .run()
        .await
        .unwrap();
    // The AI platform's load: 60 s to reach 50 rps, 300 s in all.
    assert_eq!(report.stages[0].requests, 1_500);
    assert_eq!(report.stages[1].requests, 12_000);
}

#[tokio::test(start_paused = true)]
async fn requests_beyond_the_in_flight_cap_wait_and_are_dropped_as_errors_at_the_end() {
    // 100 per second for 2 s against 5 s per request, at most 50 in
    // flight: 50 sent, the other 150 wait for a slot that frees only after
    // the load.
    let report = LoadTest::new(|| async {
        tokio::time::sleep(secs(5)).await;
        Ok::<_, ()>(())
    })
    .rate(100.0)
    .duration(secs(2))
    .max_in_flight(50)
    .run()
    .await
    .unwrap();
    assert_eq!(report.peak_in_flight, 50);
    assert_eq!(report.dropped, 150, "{report}");
    assert_eq!((report.requests, report.errors), (200, 150), "{report}");
    assert_eq!(report.error_ratio, 0.75);
    assert_eq!(report.unfinished, 0);
    // The 50 sent took 5 s; the dropped waited up to 1.5 s, until the end.
    assert!((report.latency.max - 5.0).abs() < 0.01, "{report}");
    assert!(report.latency.p95 > 4.9, "{report}");
    assert_eq!(report.rate, 0.0, "nothing completed within the load");
    assert_eq!(report.sent_rate, 25.0);
    assert!(report.to_string().contains("dropped 150"), "{report}");

    // 1 s per request: slots free every second, the waiting requests go
    // out late, and their latency counts the wait.
    let report = LoadTest::new(|| async {
        tokio::time::sleep(secs(1)).await;
        Ok::<_, ()>(())
    })
    .rate(100.0)
    .duration(secs(5))
    .max_in_flight(50)
    .run()
    .await
    .unwrap();
    assert_eq!(report.peak_in_flight, 50);
    assert!(report.queued >= 200, "{report}");
    assert_eq!(report.requests, 500, "{report}");
    assert_eq!(report.requests - report.dropped, 250, "{report}");
    assert!(report.lateness.max > 2.0, "{report}");
    assert!(report.sent_latency.max < 1.01, "{report}");
    assert!(report.latency.max > 3.0, "{report}");
}

#[tokio::test(start_paused = true)]
async fn rate_is_the_throughput_within_the_load() {
    // 5 s per request at 100 per second for 2 s: 200 sent, none completed
    // within the 2 s.
    let report = LoadTest::new(|| async {
        tokio::time::sleep(secs(5)).await;
        Ok::<_, ()>(())
    })
    .rate(100.0)
    .duration(secs(2))
    .run()
    .await
    .unwrap();
    assert_eq!(report.requests, 200, "{report}");
    assert_eq!(report.errors, 0);
    assert_eq!(report.rate, 0.0, "{report}");
    assert_eq!(report.sent_rate, 100.0);
    assert!(
        report
            .to_string()
            .contains("rate 0.0 req/s (sent 100.0 req/s)"),
        "{report}"
    );
}

/// In real time an open loop sends each request when due, not a timer
/// tick later: against an instant target, the latency from the scheduled
/// start stays far below tokio's 1 ms timer resolution.
#[test]
fn real_time_open_loop_sends_on_schedule() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        LoadTest::new(|| async { Ok::<_, ()>(()) })
            .rate(200.0)
            .duration(secs(1))
            .run()
            .await
            .unwrap()
    });
    assert_eq!(report.requests, 200, "{report}");
    assert!(report.latency.p50 < 500e-6, "{report}");
    assert!(report.lateness.p50 < 500e-6, "{report}");
    assert!(report.sent_latency.p50 <= report.latency.p50, "{report}");
}

/// A server that handles one request at a time in 1 ms, except the first
/// request at or after 3 s, which stalls it for 1 s.
fn stalling_server()
-> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), ()>> + Send>> + Send + Sync + 'static
{
    let origin = Instant::now();
    // (free again at, stalled yet)
    let state = Arc::new(Mutex::new((origin, false)));
    move || {
        let now = Instant::now();
        let done = {
            let mut state = state.lock().unwrap();
            let start = state.0.max(now);
            let service = if !state.1 && now >= origin + secs(3) {
                state.1 = true;
                secs(1)
            } else {
                Duration::from_millis(1)
            };
            state.0 = start + service;
            state.0
        };
        Box::pin(async move {
            tokio::time::sleep_until(done).await;
            Ok(())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn closed_loop_hides_a_stall_that_open_loop_reports() {
    // About 100 requests per second either way: one user thinking 9 ms, or
    // an open loop at 100 per second.
    let closed = LoadTest::new(stalling_server())
        .name("closed")
        .users(1)
        .think_time(Duration::from_millis(9))
        .duration(secs(10))
        .run()
        .await
        .unwrap();
    let open = LoadTest::new(stalling_server())
        .name("open")
        .rate(100.0)
        .duration(secs(10))
        .run()
        .await
        .unwrap();

    // The closed loop's one user waited out the stall: one slow sample
    // among about 900, so p99 is the 1 ms of service.
    assert!((880..=920).contains(&closed.requests), "{closed}");
    assert!(closed.latency.p99 < 0.005, "{closed}");
    assert!(closed.latency.max > 0.99, "{closed}");

    // The open loop kept sending: the ~100 requests due during the stall
    // queued behind it, and their waits (1 s down to 0) are in the latency.
    assert_eq!(open.requests, 1_000, "{open}");
    assert!(open.latency.p99 > 0.85, "{open}");
    assert!(open.latency.p95 > 0.4, "{open}");
    assert!(open.latency.p50 < 0.005, "{open}");
    assert!(open.latency.max > 0.99, "{open}");
}
