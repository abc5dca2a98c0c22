//! Bad input is counted, never a panic; `bench` measures what it is given.

use std::time::Duration;

use vigil_histogram::{Config, Histogram, Window, bench};

#[test]
fn nan_negative_and_infinite_floats_are_rejected_and_counted() {
    let histogram = Histogram::new();
    for bad in [
        f64::NAN,
        -f64::NAN,
        -1.0,
        -1e-12,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN,
    ] {
        histogram.record_f64(bad);
    }
    histogram.record_f64(0.5);
    assert_eq!(histogram.rejected(), 7);
    assert_eq!(histogram.out_of_range(), 0);
    let summary = histogram.summary(Window::Cumulative);
    assert_eq!((summary.count, summary.sum), (1, 0.5));
}

#[test]
fn values_above_highest_are_clamped_and_counted() {
    let histogram = Config::new()
        .range(1_000, 1_000_000)
        .significant_figures(2)
        .build()
        .unwrap();
    histogram.record(1_000_001);
    histogram.record(u64::MAX);
    histogram.record_duration(Duration::from_secs(3_600 * 24 * 365 * 1_000));
    histogram.record_f64(1e300);
    histogram.record(1_000_000); // the highest itself is in range
    histogram.record(0); // below lowest: recorded like hdrhistogram does
    histogram.record(10);
    assert_eq!(histogram.out_of_range(), 4);
    assert_eq!(histogram.rejected(), 0);
    let snapshot = histogram.snapshot(Window::Cumulative);
    assert_eq!(snapshot.count(), 7);
    assert_eq!(snapshot.histogram().count_at(1_000_000), 5);
    assert_eq!(
        snapshot.histogram().count_at(0),
        2,
        "0 and 10 share the 1,024-wide first bucket"
    );
    assert_eq!(snapshot.sum(), (5 * 1_000_000 + 10) as f64 / 1e9);
}

#[test]
fn extreme_windows_and_quantiles_do_not_panic() {
    let (clock, mock) = quanta::Clock::mock();
    let histogram = Config::new()
        .interval(Duration::from_nanos(1))
        .intervals(1)
        .clock(clock)
        .build()
        .unwrap();
    histogram.record(5);
    mock.increment(u64::MAX / 2);
    for window in [
        Window::Last(Duration::ZERO),
        Window::Last(Duration::MAX),
        Window::Cumulative,
    ] {
        let snapshot = histogram.snapshot(window);
        for q in [f64::NAN, -1.0, 0.0, 1.0, 2.0, f64::INFINITY] {
            let _ = snapshot.quantile(q);
        }
        let _ = snapshot.summary();
    }
    assert_eq!(histogram.snapshot(Window::Cumulative).count(), 1);
    let huge = Config::new()
        .interval(Duration::MAX)
        .intervals(usize::MAX)
        .build()
        .unwrap();
    huge.record(1);
    assert_eq!(huge.snapshot(Window::Last(Duration::MAX)).count(), 1);
}

#[test]
fn bench_times_every_iteration() {
    let mut calls = 0u64;
    let summary = bench(2_000, || {
        calls += 1;
        std::hint::black_box((0..50u64).product::<u64>())
    });
    assert_eq!(calls, 2_000);
    assert_eq!(summary.count, 2_000);
    assert!(summary.min <= summary.p50 && summary.p50 <= summary.p99 && summary.p99 <= summary.max);
    assert!(summary.p50 < 0.001, "p50 {}", summary.p50);
    assert!(summary.window_seconds >= summary.sum);
}

#[test]
fn record_n_counts_every_clamped_and_rejected_value() {
    let histogram = vigil_histogram::Config::new()
        .range(1, 1_000)
        .build()
        .unwrap();
    histogram.record_n(5_000, 3);
    histogram.record_f64_n(f64::NAN, 4);
    assert_eq!((histogram.out_of_range(), histogram.rejected()), (3, 4));
    assert_eq!(
        histogram
            .snapshot(vigil_histogram::Window::Cumulative)
            .count(),
        3
    );
}
