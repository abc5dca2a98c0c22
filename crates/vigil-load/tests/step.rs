//! Stress tests: users step up until the error-rate limit is crossed, and
//! the report names the breaking point.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;
use vigil_load::{BreakingPoint, LoadTest, StepLoad, StoppedBy};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A target that fails the requests beyond `capacity` in flight.
fn limited_to(
    capacity: u64,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), ()>> + Send>> + Send + Sync + 'static
{
    let in_flight = Arc::new(AtomicU64::new(0));
    move || {
        let over = in_flight.fetch_add(1, Relaxed) + 1 > capacity;
        let in_flight = in_flight.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            in_flight.fetch_sub(1, Relaxed);
            if over { Err(()) } else { Ok(()) }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn step_load_finds_the_breaking_point() {
    // The seed's stress test: +10 users per step up to 100, stop above 5 %.
    let report = LoadTest::new(limited_to(35))
        .name("stress")
        .step(10, secs(5), 100)
        .run()
        .await
        .unwrap();
    assert!(
        matches!(report.stopped_by, StoppedBy::ErrorRate { limit: 0.05, .. }),
        "{report}"
    );
    let point = report.breaking_point.expect("the 40-user step fails");
    assert_eq!(point.failed_users, 40);
    assert_eq!(point.last_good_users, Some(30));
    assert!(point.error_ratio > 0.05, "{report}");
    let levels: Vec<f64> = report.stages.iter().map(|s| s.to).collect();
    assert_eq!(levels, [10.0, 20.0, 30.0, 40.0]);
    assert!(report.stages[..3].iter().all(|s| s.errors == 0), "{report}");
    assert_eq!(report.peak_users, 40);
    assert!(
        report.to_string().contains("breaking point: 40 users"),
        "{report}"
    );
    assert!(
        report.to_string().contains("last good step: 30 users"),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_whole_step_is_held_to_the_limit() {
    // 3 % errors in every window would pass a 5 % limit; a stricter limit
    // of 1 % with a window too long to fill within a step leaves the
    // judgement to the step's end.
    let report = LoadTest::new(limited_to(20))
        .step_load(StepLoad::new(7, secs(2), 21))
        .error_rate_limit(0.01)
        .error_window(secs(60), 1_000_000)
        .run()
        .await
        .unwrap();
    assert_eq!(
        report.breaking_point,
        Some(BreakingPoint {
            failed_users: 21,
            error_ratio: report.stages[2].error_ratio,
            last_good_users: Some(14),
        }),
        "{report}"
    );
    assert!(report.stages[2].error_ratio > 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_target_that_holds_every_step_has_no_breaking_point() {
    let report = LoadTest::new(limited_to(1_000))
        .step(10, secs(1), 30)
        .run()
        .await
        .unwrap();
    assert_eq!(report.stopped_by, StoppedBy::Completed);
    assert_eq!(report.breaking_point, None);
    assert_eq!(report.stages.len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_first_step_beyond_capacity_has_no_good_step() {
    let report = LoadTest::new(limited_to(5))
        .step(10, secs(1), 30)
        .run()
        .await
        .unwrap();
    let point = report.breaking_point.unwrap();
    assert_eq!((point.failed_users, point.last_good_users), (10, None));
    assert!(
        report
            .to_string()
            .contains("no step stayed within the limit")
    );
}

#[tokio::test(start_paused = true)]
async fn a_step_is_judged_after_its_slow_requests_complete() {
    // 800 ms per request; those started in the second half of the second
    // step fail, and complete only after that step has ended.
    let origin = Instant::now();
    let target = move || {
        let started = origin.elapsed();
        async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            let failing = started >= Duration::from_millis(1_500) && started < secs(2);
            if failing { Err(()) } else { Ok(()) }
        }
    };
    let report = LoadTest::new(target)
        .step(10, secs(1), 30)
        .error_window(secs(60), 1_000_000)
        .run()
        .await
        .unwrap();
    // Step 2: the 10 new users' requests at 1.0 s succeed; the first 10
    // users' at 1.6 s and the new ones' at 1.8 s fail, at 2.4 and 2.6 s,
    // in the third step. When that step began, step 2 had no error yet.
    assert_eq!(report.stages[1].requests, 30, "{report}");
    assert_eq!(report.stages[1].errors, 20, "{report}");
    let point = report.breaking_point.expect("step 2 fails");
    assert_eq!(point.failed_users, 20, "{report}");
    assert_eq!(point.last_good_users, Some(10));
    assert!(
        matches!(report.stopped_by, StoppedBy::ErrorRate { ratio, .. } if ratio == 2.0 / 3.0),
        "{report}"
    );
    assert_eq!(report.duration, Duration::from_millis(2_600), "{report}");
}
