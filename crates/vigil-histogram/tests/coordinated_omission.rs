//! Coordinated-omission correction: a closed-loop load generator that
//! expects one request every 1 ms and stalls once for 1 s.

use vigil_histogram::{Config, Histogram, Window};

const MS: u64 = 1_000_000;

/// 10 s of requests at 1 per ms, 150-250 us each, and one that takes 1 s.
/// While it waits, the generator sends nothing: the ~1,000 requests that
/// would have seen the stall are never measured.
fn run(histogram: &Histogram) {
    for i in 0..10_000u64 {
        let latency = if i == 5_000 {
            1_000 * MS
        } else {
            150_000 + (i * 7_919) % 100_000
        };
        histogram.record(latency);
    }
}

#[test]
fn corrected_p99_sees_the_stall_and_uncorrected_does_not() {
    let uncorrected = Histogram::new();
    let corrected = Config::new().expected_interval(MS).build().unwrap();
    run(&uncorrected);
    run(&corrected);
    let raw = uncorrected.summary(Window::Cumulative);
    let fixed = corrected.summary(Window::Cumulative);
    println!(
        "uncorrected: count {} p50 {:.6} s p99 {:.6} s max {:.3} s",
        raw.count, raw.p50, raw.p99, raw.max
    );
    println!(
        "corrected:   count {} p50 {:.6} s p99 {:.6} s max {:.3} s",
        fixed.count, fixed.p50, fixed.p99, fixed.max
    );

    // Uncorrected: one slow sample in 10,000, p99 is the normal latency.
    assert_eq!(raw.count, 10_000);
    assert!(raw.p99 < 0.000_300, "uncorrected p99 {}", raw.p99);
    // Corrected: 999 synthetic samples (999 ms, 998 ms, ... 1 ms) fill the
    // stall, so the top 1% of 10,999 samples (110) are all above 0.85 s.
    assert_eq!(fixed.count, 10_999);
    assert!(
        fixed.p99 > 0.85 && fixed.p99 < 0.9,
        "corrected p99 {}",
        fixed.p99
    );
    // The median barely moves; the max is the stall either way.
    assert!(fixed.p50 < 0.000_300);
    assert!((raw.max - 1.0).abs() < 1e-3 && (fixed.max - 1.0).abs() < 1e-3);
}
