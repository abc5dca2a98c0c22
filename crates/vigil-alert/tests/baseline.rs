//! Dynamic thresholds: `mean + k·stddev` or a quantile of the rule's own
//! trailing history, with a minimum sample count before they can fire.

mod common;

use common::{s, t};
use vigil_alert::{
    Aggregation, Baseline, Comparison, Engine, Labels, MemorySource, Rule, Severity, State,
};

/// A steady signal: 100 ± 4 in a fixed pattern.
fn normal(i: u64) -> f64 {
    [100.0, 104.0, 96.0, 102.0, 98.0][(i % 5) as usize]
}

fn engine(baseline: Baseline) -> Engine {
    let rule = Rule::builder("TrafficAnomaly")
        .gauge("rps")
        .aggregate(Aggregation::Sum)
        .threshold(Severity::Medium, Comparison::Greater, baseline)
        .build()
        .unwrap();
    Engine::new([rule]).unwrap()
}

fn at(e: &mut Engine, src: &mut MemorySource, minute: u64, v: f64) -> Vec<(State, State)> {
    src.set_gauge("rps", Labels::new(), v);
    e.evaluate(t(minute * 60), src)
        .iter()
        .map(|t| (t.from, t.to))
        .collect()
}

#[test]
fn no_firing_before_min_samples_even_on_an_outlier() {
    let mut e = engine(Baseline::stddevs(3.0, s(3600)).min_samples(30));
    let mut src = MemorySource::new();
    for i in 0..10 {
        assert!(at(&mut e, &mut src, i, normal(i)).is_empty());
    }
    assert!(
        at(&mut e, &mut src, 10, 1000.0).is_empty(),
        "10 samples < 30"
    );
}

#[test]
fn fires_on_an_outlier_once_the_baseline_is_established() {
    let mut e = engine(Baseline::stddevs(3.0, s(3600)).min_samples(30));
    let mut src = MemorySource::new();
    for i in 0..40 {
        assert!(
            at(&mut e, &mut src, i, normal(i)).is_empty(),
            "normal value {i}"
        );
    }
    // mean 100, stddev ~2.8: the limit is ~108.5.
    assert!(at(&mut e, &mut src, 40, 107.0).is_empty());
    assert_eq!(
        at(&mut e, &mut src, 41, 150.0),
        [(State::Inactive, State::Firing)]
    );
    let tr = e.history().iter().last().unwrap();
    assert_eq!(tr.value, Some(150.0));
    assert_eq!(
        at(&mut e, &mut src, 42, normal(42)),
        [(State::Firing, State::Resolved)]
    );
}

#[test]
fn a_low_side_baseline_fires_on_a_drop() {
    let rule = Rule::builder("TrafficDrop")
        .gauge("rps")
        .aggregate(Aggregation::Sum)
        .threshold(
            Severity::High,
            Comparison::Less,
            Baseline::stddevs(3.0, s(3600)).min_samples(20),
        )
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    for i in 0..25 {
        assert!(at(&mut e, &mut src, i, normal(i)).is_empty());
    }
    assert_eq!(
        at(&mut e, &mut src, 25, 20.0),
        [(State::Inactive, State::Firing)]
    );
}

#[test]
fn old_samples_leave_the_window() {
    let mut e = engine(Baseline::stddevs(3.0, s(600)).min_samples(5));
    let mut src = MemorySource::new();
    for i in 0..10 {
        at(&mut e, &mut src, i, normal(i));
    }
    // A 30-minute gap: the 10-minute window is empty again, so no limit.
    assert!(at(&mut e, &mut src, 40, 1000.0).is_empty());
}

#[test]
fn a_quantile_baseline_fires_above_the_historic_quantile() {
    let mut e = engine(Baseline::quantile(0.99, s(3600)).min_samples(50));
    let mut src = MemorySource::new();
    for i in 0..60 {
        assert!(at(&mut e, &mut src, i, (i % 50) as f64).is_empty());
    }
    assert!(at(&mut e, &mut src, 60, 48.0).is_empty());
    assert_eq!(
        at(&mut e, &mut src, 61, 60.0),
        [(State::Inactive, State::Firing)]
    );
}

#[test]
fn per_series_baselines_are_independent() {
    let rule = Rule::builder("Anomaly")
        .gauge("rps")
        .threshold(
            Severity::Medium,
            Comparison::Greater,
            Baseline::stddevs(3.0, s(3600)).min_samples(10),
        )
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    for i in 0..20 {
        src.set_gauge("rps", [("svc", "small")], normal(i) / 10.0);
        src.set_gauge("rps", [("svc", "big")], normal(i) * 10.0);
        assert!(e.evaluate(t(i * 60), &src).is_empty());
    }
    // 100 is normal for neither: a huge jump for "small", a drop for "big".
    src.set_gauge("rps", [("svc", "small")], 100.0);
    src.set_gauge("rps", [("svc", "big")], 100.0);
    let tr = e.evaluate(t(20 * 60), &src);
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].labels["svc"], "small");
}

#[test]
fn fixed_and_dynamic_thresholds_combine() {
    let rule = Rule::builder("Latency")
        .gauge("p99")
        .aggregate(Aggregation::Max)
        .threshold(
            Severity::Low,
            Comparison::Greater,
            Baseline::stddevs(3.0, s(600)).min_samples(10),
        )
        .threshold(Severity::Critical, Comparison::Greater, 5.0)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    // The fixed threshold works from the first sample.
    src.set_gauge("p99", Labels::new(), 10.0);
    let tr = e.evaluate(t(0), &src);
    assert_eq!(tr[0].severity, Some(Severity::Critical));
    for i in 1..15 {
        src.set_gauge("p99", Labels::new(), normal(i) / 100.0);
        e.evaluate(t(i * 60), &src);
    }
    // The 10-minute window has dropped the incident at t=0.
    src.set_gauge("p99", Labels::new(), 2.0);
    let tr = e.evaluate(t(15 * 60), &src);
    assert_eq!(
        (tr[0].to, tr[0].severity),
        (State::Firing, Some(Severity::Low))
    );
}
