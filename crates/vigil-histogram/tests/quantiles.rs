//! Percentile accuracy against a sorted `Vec` (the same rank rule as
//! hdrhistogram: `max(1, ceil(q * n)) - 1`), recording from one or four
//! threads, and shard merging against a single `hdrhistogram::Histogram`.

use proptest::prelude::*;
use vigil_histogram::{Histogram, Snapshot, Summary, Window};

const LOWEST_NS: f64 = 1_000.0;
const HIGHEST_NS: f64 = 10_000_000_000.0;
/// 3 significant figures: sub-buckets of 1/1024 of their value.
const TOLERANCE: f64 = 0.001;

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Uniform between two bounds.
    Uniform { low: f64, high: f64 },
    /// exp(N(ln median, sigma)).
    LogNormal { median: f64, sigma: f64 },
    /// Fast mode and a slow mode `ratio` times slower, `slow` of the mass.
    Bimodal { median: f64, ratio: f64, slow: f64 },
}

fn log_uniform(u: f64, low: f64, high: f64) -> f64 {
    (low.ln() + u * (high.ln() - low.ln())).exp()
}

fn shapes() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (0.0..1.0, 0.0..1.0).prop_map(|(a, b)| {
            let (a, b) = (
                log_uniform(a, LOWEST_NS, HIGHEST_NS),
                log_uniform(b, LOWEST_NS, HIGHEST_NS),
            );
            Shape::Uniform {
                low: a.min(b),
                high: a.max(b),
            }
        }),
        (0.0..1.0, 0.05..2.5).prop_map(|(m, sigma)| Shape::LogNormal {
            median: log_uniform(m, 5_000.0, 1e9),
            sigma
        }),
        (0.0..1.0, 5.0..1_000.0, 0.001..0.5).prop_map(|(m, ratio, slow)| Shape::Bimodal {
            median: log_uniform(m, 5_000.0, 1e7),
            ratio,
            slow
        }),
    ]
}

/// Samples in nanoseconds (fractional), within [1e3, 1e10].
fn sample(shape: Shape, (u1, u2, u3): (f64, f64, f64)) -> f64 {
    // Box-Muller; u1 in (0, 1].
    let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let value = match shape {
        Shape::Uniform { low, high } => low + u3 * (high - low),
        Shape::LogNormal { median, sigma } => median * (sigma * normal).exp(),
        Shape::Bimodal {
            median,
            ratio,
            slow,
        } => {
            let mode = if u3 < slow { median * ratio } else { median };
            mode * (0.3 * normal).exp()
        }
    };
    value.clamp(LOWEST_NS, HIGHEST_NS)
}

fn data() -> impl Strategy<Value = (Shape, Vec<f64>)> {
    (
        shapes(),
        prop::collection::vec((0.0..1.0, 0.0..1.0, 0.0..1.0), 1..3_000),
    )
        .prop_map(|(shape, uniforms)| {
            let values = uniforms.into_iter().map(|u| sample(shape, u)).collect();
            (shape, values)
        })
}

fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1) - 1;
    sorted[rank.min(sorted.len() - 1)]
}

const QUANTILES: [f64; 10] = [0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0];

fn summary_quantiles(summary: &Summary) -> [(f64, f64); 6] {
    [
        (0.5, summary.p50),
        (0.75, summary.p75),
        (0.9, summary.p90),
        (0.95, summary.p95),
        (0.99, summary.p99),
        (0.999, summary.p999),
    ]
}

/// Checks every quantile of `snapshot` (in units) against the exact one
/// computed on `sorted` (in the same units), and the sum and mean against
/// the exact ones up to `rounding` (units lost per value when recording).
fn assert_accurate(
    snapshot: &Snapshot,
    sorted: &[f64],
    rounding: f64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(snapshot.count(), sorted.len() as u64);
    let summary = snapshot.summary();
    let pairs = QUANTILES
        .iter()
        .map(|&q| (q, snapshot.quantile(q)))
        .chain(summary_quantiles(&summary))
        .chain([(0.0, summary.min), (1.0, summary.max)]);
    for (q, got) in pairs {
        let exact = exact_quantile(sorted, q);
        let error = (got - exact).abs() / exact;
        prop_assert!(
            error <= TOLERANCE,
            "q {}: got {}, exact {}, relative error {}",
            q,
            got,
            exact,
            error
        );
    }
    let n = sorted.len() as f64;
    let exact_sum: f64 = sorted.iter().sum();
    prop_assert!((summary.sum - exact_sum).abs() <= rounding * n + exact_sum * 1e-12);
    prop_assert!((summary.mean - exact_sum / n).abs() <= rounding + summary.mean * 1e-12);
    Ok(())
}

fn record_from_threads(histogram: &Histogram, values: &[u64], threads: usize) {
    let chunk = values.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for part in values.chunks(chunk) {
            s.spawn(move || part.iter().for_each(|&v| histogram.record(v)));
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn raw_quantiles_are_within_a_tenth_of_a_percent((_shape, values) in data()) {
        let raw: Vec<u64> = values.iter().map(|v| v.round() as u64).collect();
        let histogram = Histogram::new();
        raw.iter().for_each(|&v| histogram.record(v));
        let mut sorted: Vec<f64> = raw.iter().map(|&v| v as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let snapshot = histogram.snapshot(Window::Cumulative).with_scale(1.0);
        assert_accurate(&snapshot, &sorted, 0.0)?;
    }

    #[test]
    fn second_quantiles_are_within_a_tenth_of_a_percent((_shape, values) in data()) {
        let seconds: Vec<f64> = values.iter().map(|v| v / 1e9).collect();
        let histogram = Histogram::new();
        seconds.iter().for_each(|&v| histogram.record_f64(v));
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let snapshot = histogram.snapshot(Window::Last(std::time::Duration::from_secs(60)));
        // record_f64 rounds to whole nanoseconds.
        assert_accurate(&snapshot, &sorted, 0.5e-9)?;
    }

    #[test]
    fn quantiles_stay_accurate_from_four_threads((_shape, values) in data()) {
        let raw: Vec<u64> = values.iter().map(|v| v.round() as u64).collect();
        let histogram = Histogram::new();
        record_from_threads(&histogram, &raw, 4);
        let mut sorted: Vec<f64> = raw.iter().map(|&v| v as f64 / 1e9).collect();
        sorted.sort_by(f64::total_cmp);
        assert_accurate(&histogram.snapshot(Window::Cumulative), &sorted, 0.0)?;
    }

    #[test]
    fn merged_shards_equal_one_hdrhistogram((_shape, values) in data(), threads in 1usize..8) {
        let raw: Vec<u64> = values.iter().map(|v| v.round() as u64).collect();
        let histogram = Histogram::new();
        record_from_threads(&histogram, &raw, threads);
        let mut reference =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        raw.iter().for_each(|&v| reference.record(v).unwrap());

        let snapshot = histogram.snapshot(Window::Cumulative);
        let ours = snapshot.histogram();
        prop_assert_eq!(ours.len(), reference.len());
        prop_assert_eq!(ours.distinct_values(), reference.distinct_values());
        for (index, (a, b)) in ours.iter_all().zip(reference.iter_all()).enumerate() {
            prop_assert_eq!(a.value_iterated_to(), b.value_iterated_to(), "index {}", index);
            prop_assert_eq!(a.count_at_value(), b.count_at_value(), "index {}", index);
        }
        prop_assert_eq!(snapshot.sum(), raw.iter().map(|&v| u128::from(v)).sum::<u128>() as f64 / 1e9);
    }
}

#[test]
fn concurrent_writers_lose_nothing_while_reads_rotate() {
    let (clock, mock) = quanta::Clock::mock();
    let histogram = vigil_histogram::Config::new()
        .interval(std::time::Duration::from_nanos(1))
        .intervals(4)
        .clock(clock)
        .build()
        .unwrap();
    let per_thread = 200_000u64;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let histogram = &histogram;
            s.spawn(move || (0..per_thread).for_each(|i| histogram.record(1 + (i + t) % 5_000)));
        }
        // Rotate as fast as possible while the writers run.
        let histogram = &histogram;
        let mock = &mock;
        s.spawn(move || {
            for _ in 0..2_000 {
                mock.increment(1u64);
                histogram.upkeep();
            }
        });
    });
    let snapshot = histogram.snapshot(Window::Cumulative);
    assert_eq!(snapshot.count(), 4 * per_thread);
    let expected_sum: u64 = (0..4u64)
        .flat_map(|t| (0..per_thread).map(move |i| 1 + (i + t) % 5_000))
        .sum();
    assert_eq!(snapshot.sum(), expected_sum as f64 / 1e9);
}
