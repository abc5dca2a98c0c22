//! Percentiles read from the registry's summary agree with exact quantiles
//! of the same data (a sorted `Vec`) to 3 significant figures, whatever the
//! distribution and however many threads recorded it.

#![cfg(feature = "registry")]

use std::sync::Arc;

use metrics::{Key, Recorder as _};
use proptest::prelude::*;
use vigil::Monitor;

/// The rank rule of HdrHistogram: the smallest value with at least
/// `ceil(q * n)` values at or below it.
fn exact(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

/// Records `values` (nanoseconds, as f64 seconds like `metrics::histogram!`
/// does) from `threads` threads into one registry histogram and checks every
/// reported quantile against the exact one.
fn check(values: &[u64], threads: usize) -> Result<(), TestCaseError> {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    let handle = Arc::new(monitor.recorder().register_histogram(
        &Key::from_name("latency_seconds"),
        &metrics::Metadata::new("t", metrics::Level::INFO, None),
    ));
    std::thread::scope(|scope| {
        for chunk in values.chunks(values.len().div_ceil(threads)) {
            let handle = Arc::clone(&handle);
            scope.spawn(move || {
                for &ns in chunk {
                    handle.record(ns as f64 / 1e9);
                }
            });
        }
    });
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let summary = monitor.summary();
    let total = &summary.histograms[0].total;
    prop_assert_eq!(total.count, values.len() as u64);
    for (q, reported) in [
        (0.5, total.p50),
        (0.75, total.p75),
        (0.9, total.p90),
        (0.95, total.p95),
        (0.99, total.p99),
        (0.999, total.p999),
    ] {
        let want = exact(&sorted, q) as f64;
        let got = reported * 1e9;
        prop_assert!(
            (got - want).abs() / want <= 0.001,
            "q={} exact={} reported={} (relative error {:.5}%)",
            q,
            want,
            got,
            (got - want).abs() / want * 100.0
        );
    }
    let window = &summary.histograms[0].window;
    prop_assert_eq!(
        window.count,
        values.len() as u64,
        "everything was recorded inside the window"
    );
    Ok(())
}

/// Standard normal samples from uniform pairs (Box-Muller).
fn normal(u1: f64, u2: f64) -> f64 {
    (-2.0 * u1.max(f64::MIN_POSITIVE).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn uniform() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(1_000u64..10_000_000_000, 1..3_000)
}

fn lognormal() -> impl Strategy<Value = Vec<u64>> {
    // Median ~1 ms, sigma 1.5: a long right tail, like request latencies.
    prop::collection::vec((0.0f64..1.0, 0.0f64..1.0), 1..3_000).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(a, b)| (1e6 * (1.5 * normal(a, b)).exp()).clamp(1_000.0, 1e10) as u64)
            .collect()
    })
}

fn bimodal() -> impl Strategy<Value = Vec<u64>> {
    // 90% cache hits near 200 us, 10% misses near 80 ms.
    prop::collection::vec((0.0f64..1.0, 0.0f64..1.0, 0.0f64..1.0), 1..3_000).prop_map(|triples| {
        triples
            .into_iter()
            .map(|(pick, a, b)| {
                let centre = if pick < 0.9 { 2e5 } else { 8e7 };
                (centre * (0.3 * normal(a, b)).exp()).clamp(1_000.0, 1e10) as u64
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn uniform_quantiles_match_exact(values in uniform()) {
        check(&values, 1)?;
    }

    #[test]
    fn lognormal_quantiles_match_exact(values in lognormal()) {
        check(&values, 1)?;
    }

    #[test]
    fn bimodal_quantiles_match_exact(values in bimodal()) {
        check(&values, 1)?;
    }

    #[test]
    fn quantiles_match_exact_when_four_threads_record(values in prop_oneof![uniform(), lognormal(), bimodal()]) {
        check(&values, 4)?;
    }
}
