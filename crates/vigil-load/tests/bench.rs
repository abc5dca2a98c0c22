//! `Bench`: the statistics of a known sequence of call times.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use vigil_load::{Bench, BenchReport};

fn close(actual: Duration, expected: Duration) -> bool {
    let (a, e) = (actual.as_secs_f64(), expected.as_secs_f64());
    (a - e).abs() <= e * 0.001
}

/// Calls taking 1, 2, ..., 1000 ms: mean 500.5 ms, median 500 ms, p95 950
/// ms, p99 990 ms, sample stddev sqrt(1000 x 1001 / 12) = 288.819 ms.
fn assert_one_to_a_thousand_ms(report: &BenchReport) {
    assert_eq!(report.iterations, 1_000);
    assert!(
        close(report.mean, Duration::from_micros(500_500)),
        "{report}"
    );
    assert!(close(report.median, Duration::from_millis(500)), "{report}");
    assert!(close(report.p95, Duration::from_millis(950)), "{report}");
    assert!(close(report.p99, Duration::from_millis(990)), "{report}");
    assert_eq!(report.min, Duration::from_millis(1), "{report}");
    assert_eq!(report.max, Duration::from_millis(1_000), "{report}");
    assert!(
        report.stddev.abs_diff(Duration::from_nanos(288_819_436)) < Duration::from_nanos(10),
        "{report}"
    );
    assert_eq!(report.total, Duration::from_millis(500_500));
}

#[tokio::test(start_paused = true)]
async fn async_bench_summarizes_a_known_sequence_and_counts_errors() {
    let calls = AtomicU64::new(0);
    let report = Bench::new("known")
        .iterations(1_000)
        .warmup(5)
        .run(|| {
            let n = calls.fetch_add(1, Relaxed);
            async move {
                if n < 5 {
                    // Warm-up calls: slow, and not measured.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return Ok(());
                }
                let i = n - 4; // 1 ..= 1000
                tokio::time::sleep(Duration::from_millis(i)).await;
                if i.is_multiple_of(10) {
                    Err("every tenth call fails")
                } else {
                    Ok(())
                }
            }
        })
        .await;
    assert_eq!(calls.load(Relaxed), 1_005);
    assert_eq!(report.errors, 100);
    assert!((report.error_ratio() - 0.1).abs() < 1e-12);
    assert_one_to_a_thousand_ms(&report);
    assert_eq!(report.name, "known");
}

#[test]
fn sync_bench_summarizes_a_known_sequence_on_a_mock_clock() {
    let (clock, mock) = quanta::Clock::mock();
    let mut i = 0;
    let report = Bench::new("sync").clock(clock).run_sync(|| {
        i += 1;
        mock.increment(Duration::from_millis(i));
        if i.is_multiple_of(4) { 503u16 } else { 200 }
    });
    assert_eq!(report.errors, 250);
    assert_one_to_a_thousand_ms(&report);
}

#[test]
fn stddev_is_exact_for_a_distribution_tighter_than_the_buckets() {
    // 3 ms and 3.0005 ms alternating: both in one histogram bucket's
    // neighbourhood, yet a standard deviation of 250 ns (sample: 250.125).
    let (clock, mock) = quanta::Clock::mock();
    let mut i = 0u64;
    let report = Bench::new("tight").clock(clock).run_sync(|| {
        i += 1;
        let extra = if i.is_multiple_of(2) { 500 } else { 0 };
        mock.increment(Duration::from_nanos(3_000_000 + extra));
    });
    let expected = 250.0 * (1_000.0f64 / 999.0).sqrt();
    let stddev = report.stddev.as_nanos() as f64;
    assert!((stddev - expected).abs() <= 1.0, "{stddev} ns: {report}");
    assert_eq!(report.mean, Duration::from_nanos(3_000_250), "{report}");
    assert_eq!(report.min, Duration::from_millis(3));
    assert_eq!(report.max, Duration::from_nanos(3_000_500));
}

#[test]
fn display_is_one_line_and_the_table_aligns_reports() {
    let (clock, mock) = quanta::Clock::mock();
    let report = Bench::new("parse").iterations(3).clock(clock).run_sync(|| {
        mock.increment(Duration::from_micros(1_500));
    });
    let line = report.to_string();
    assert_eq!(line.lines().count(), 1);
    assert!(
        line.starts_with("parse  3 iterations  0 errors  mean 1.50 ms  median 1.50 ms"),
        "{line}"
    );
    let table = BenchReport::table(&[report.clone(), report]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("benchmark  iterations  errors"),
        "{table}"
    );
    assert_eq!(lines[1], lines[2]);
}

#[test]
fn json_has_every_statistic_in_seconds() {
    let (clock, mock) = quanta::Clock::mock();
    let report = Bench::new("json").iterations(2).clock(clock).run_sync(|| {
        mock.increment(Duration::from_millis(250));
    });
    let json = serde_json::to_value(&report).unwrap();
    for field in ["mean", "median", "p95", "p99", "min", "max", "stddev"] {
        let secs = json[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field}: {json}"));
        assert!(
            (secs - 0.25).abs() < 0.25 * 0.001 || field == "stddev",
            "{field}: {secs}"
        );
    }
    assert_eq!(json["total"], 0.5);
    assert_eq!(json["errors"], 0);
}
