//! `Summary` in JSON: every f64, NaN and the infinities included, reads
//! back to the bits it was written from (NaN to a NaN).

use proptest::prelude::*;
use vigil_histogram::{Histogram, Summary, Window};

/// Equal field by field, a NaN equal to any NaN; `-0.0` and `0.0` told
/// apart (JSON writes the sign).
fn same(a: &Summary, b: &Summary) -> bool {
    let floats = |s: &Summary| {
        [
            s.sum,
            s.min,
            s.max,
            s.mean,
            s.stddev,
            s.p50,
            s.p75,
            s.p90,
            s.p95,
            s.p99,
            s.p999,
            s.window_seconds,
        ]
    };
    a.count == b.count
        && floats(a)
            .iter()
            .zip(floats(b))
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits())
}

fn round_trip(summary: &Summary) -> Summary {
    let json = serde_json::to_string(summary).unwrap();
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn non_finite_fields_are_written_as_strings_and_read_back() {
    let summary = Summary {
        count: 3,
        sum: f64::INFINITY,
        min: f64::NEG_INFINITY,
        max: f64::NAN,
        mean: -0.0,
        p999: f64::MIN_POSITIVE / 4.0, // subnormal
        window_seconds: 60.0,
        ..Summary::default()
    };
    let json = serde_json::to_string(&summary).unwrap();
    assert!(
        json.starts_with(r#"{"count":3,"sum":"+Inf","min":"-Inf","max":"NaN","mean":-0.0,"#),
        "{json}"
    );
    let back = round_trip(&summary);
    assert!(same(&summary, &back), "{summary:?} {back:?}");
}

#[test]
fn a_real_summary_reads_back_equal() {
    let histogram = Histogram::new();
    for micros in [3, 250, 999, 12_345, 7_654_321] {
        histogram.record_f64(micros as f64 * 1e-6);
    }
    let summary = histogram.summary(Window::Cumulative);
    assert_eq!(round_trip(&summary), summary);
}

fn any_summary() -> impl Strategy<Value = Summary> {
    let float = proptest::num::f64::ANY;
    (any::<u64>(), proptest::array::uniform12(float)).prop_map(|(count, f)| Summary {
        count,
        sum: f[0],
        min: f[1],
        max: f[2],
        mean: f[3],
        stddev: f[4],
        p50: f[5],
        p75: f[6],
        p90: f[7],
        p95: f[8],
        p99: f[9],
        p999: f[10],
        window_seconds: f[11],
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_summary_reads_back(summary in any_summary()) {
        let back = round_trip(&summary);
        prop_assert!(same(&summary, &back), "{:?} became {:?}", summary, back);
    }

    /// The same through `serde_json::Value`, the way a host that edits a
    /// document before passing it on reads it.
    #[test]
    fn any_summary_reads_back_through_a_value(summary in any_summary()) {
        let value = serde_json::to_value(&summary).unwrap();
        let back: Summary = serde_json::from_value(value).unwrap();
        prop_assert!(same(&summary, &back), "{:?} became {:?}", summary, back);
    }
}
