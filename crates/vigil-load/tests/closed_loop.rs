//! Closed loop: the number of virtual users follows the stages, think
//! time paces each user, and the report rows follow the stages.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use vigil_load::{LoadTest, Mode, StoppedBy};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn user_count_follows_the_stages() {
    let origin = Instant::now();
    let in_flight = Arc::new(AtomicU64::new(0));
    // (time since the start in ms, requests in flight) at each request's start.
    let samples = Arc::new(Mutex::new(Vec::new()));
    let target = {
        let (in_flight, samples) = (in_flight.clone(), samples.clone());
        move || {
            let now = in_flight.fetch_add(1, Relaxed) + 1;
            samples
                .lock()
                .unwrap()
                .push((origin.elapsed().as_millis() as u64, now));
            let in_flight = in_flight.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                in_flight.fetch_sub(1, Relaxed);
                Ok::<(), ()>(())
            }
        }
    };
    // The enterprise agents' shape, in seconds instead of minutes.
    let report = LoadTest::new(target)
        .name("stages")
        .stages([(secs(10), 50), (secs(20), 100), (secs(10), 0)])
        .run()
        .await
        .unwrap();

    let samples = samples.lock().unwrap();
    let users_at = |ms: u64| {
        samples
            .iter()
            .filter(|(t, _)| t.abs_diff(ms) <= 100)
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0)
    };
    for (ms, expected) in [
        (5_000, 25),
        (10_000, 50),
        (20_000, 75),
        (30_000, 100),
        (35_000, 50),
    ] {
        let users = users_at(ms);
        assert!(
            users.abs_diff(expected) <= 2,
            "at {ms} ms: {users} users, expected {expected}"
        );
    }
    assert_eq!(report.mode, Mode::ClosedLoop);
    assert_eq!(report.stopped_by, StoppedBy::Completed);
    assert_eq!(report.peak_users, 100);
    assert_eq!(report.duration, secs(40));
    // Average users x time / 100 ms per request: (10 x 25 + 20 x 75 + 10 x 50) x 10.
    let expected = 22_500.0;
    assert!(
        (report.requests as f64 - expected).abs() < expected * 0.02,
        "{report}"
    );
    let rows: Vec<(f64, f64, Duration)> = report
        .stages
        .iter()
        .map(|s| (s.from, s.to, s.duration))
        .collect();
    assert_eq!(
        rows,
        [
            (0.0, 50.0, secs(10)),
            (50.0, 100.0, secs(20)),
            (100.0, 0.0, secs(10))
        ]
    );
    assert!(
        (report.stages[1].rate - 750.0).abs() < 750.0 * 0.02,
        "{report}"
    );
    assert_eq!(report.errors, 0);
    let text = report.to_string();
    assert!(text.contains("0 -> 50"), "{text}");
    assert!(text.contains("100 -> 0"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn think_time_paces_each_user_and_ramp_up_reaches_the_users() {
    let report = LoadTest::new(|| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
    })
    .users(10)
    .ramp_up(secs(10))
    .duration(secs(30))
    .think_time(Duration::from_millis(950))
    .run()
    .await
    .unwrap();
    // One request per user per second: 5 users on average for 10 s, then 10 for 20 s.
    assert!((report.requests as f64 - 250.0).abs() <= 10.0, "{report}");
    assert_eq!(report.peak_users, 10);
    assert_eq!(report.stages.len(), 2);
    assert!((report.stages[1].rate - 10.0).abs() < 0.5, "{report}");
    let p50 = report.latency(0.5).as_secs_f64();
    assert!((p50 - 0.05).abs() < 0.05 * 0.001, "{report}");
}

#[tokio::test(start_paused = true)]
async fn a_duration_shorter_than_the_stages_cuts_them() {
    let report = LoadTest::new(|| async { tokio::time::sleep(Duration::from_millis(10)).await })
        .stages([(secs(10), 5), (secs(10), 5)])
        .duration(secs(15))
        .run()
        .await
        .unwrap();
    assert_eq!(report.stopped_by, StoppedBy::Duration);
    assert_eq!(report.duration, secs(15));
    assert_eq!(report.stages.len(), 2);
    assert_eq!(report.stages[1].duration, secs(5));
}
