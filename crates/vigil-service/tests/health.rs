//! The health score: each component inside, between and beyond its limits
//! and missing; the alerts; the bands; monotonicity; the JSON form.

use proptest::prelude::*;
use vigil_service::health::{
    HealthInputs, HealthReport, HealthStatus, HealthTargets, Limits, SeverityCounts, assess,
};

fn targets() -> HealthTargets {
    HealthTargets::default()
}

fn enough() -> HealthInputs {
    HealthInputs {
        calls: 1_000,
        cache_requests: 1_000,
        ..HealthInputs::default()
    }
}

/// The penalty, status and value of `name` after setting one input.
fn component(name: &str, set: impl FnOnce(&mut HealthInputs)) -> (f64, HealthStatus, Option<f64>) {
    let mut inputs = enough();
    set(&mut inputs);
    let report = assess(&inputs, &targets());
    let c = report.component(name).unwrap();
    let others: f64 = report
        .components
        .iter()
        .filter(|o| o.name != name)
        .map(|o| o.penalty)
        .sum();
    assert_eq!(others, 0.0, "only {name} costs anything: {report:?}");
    assert_eq!(report.score, 100.0 - c.penalty, "{report:?}");
    (c.penalty, c.status, c.value)
}

use HealthStatus::{Degraded, Healthy, Unhealthy};

#[test]
fn defaults_are_the_common_service_targets() {
    let t = targets();
    assert_eq!(t.cpu, Limits::new(0.70, 0.90));
    assert_eq!(t.memory, Limits::new(0.80, 0.95));
    assert_eq!(t.disk, Limits::new(0.85, 0.95));
    assert_eq!(t.error_rate, Limits::new(0.05, 0.10));
    assert_eq!(t.cache_hit_ratio, Limits::new(0.70, 0.50));
    assert_eq!(t.p95_seconds, Limits::new(1.0, 5.0));
}

#[test]
fn nothing_measured_is_a_perfect_score_with_every_component_listed() {
    let report = assess(&HealthInputs::default(), &targets());
    assert_eq!(report.score, 100.0);
    assert_eq!(report.status, Healthy);
    let names: Vec<_> = report.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "latency",
            "error_rate",
            "cpu",
            "memory",
            "disk",
            "cache",
            "alerts"
        ]
    );
    for c in &report.components[..6] {
        assert_eq!(c.value, None, "{c:?}");
        assert_eq!(c.penalty, 0.0);
        assert_eq!(c.status, Healthy);
        assert!(c.target.is_some());
    }
    assert_eq!(report.components[6].value, Some(0.0));
    assert_eq!(report.components[6].target, None);
}

#[test]
fn latency_inside_between_beyond_and_missing() {
    let at = |p95| component("latency", |i| i.p95_seconds = p95);
    assert_eq!(at(Some(0.5)), (0.0, Healthy, Some(0.5)));
    assert_eq!(at(Some(1.0)), (0.0, Healthy, Some(1.0)));
    // 3 s is halfway from 1 s to 5 s: half of 25 points.
    assert_eq!(at(Some(3.0)), (12.5, Degraded, Some(3.0)));
    assert_eq!(at(Some(5.0)), (25.0, Unhealthy, Some(5.0)));
    assert_eq!(at(Some(60.0)), (25.0, Unhealthy, Some(60.0)));
    assert_eq!(at(None), (0.0, Healthy, None));
}

#[test]
fn error_rate_inside_between_beyond_and_missing() {
    let at = |rate| component("error_rate", |i| i.error_rate = rate);
    assert_eq!(at(Some(0.01)), (0.0, Healthy, Some(0.01)));
    assert_eq!(at(Some(0.06)), (5.0, Degraded, Some(0.06)));
    assert_eq!(at(Some(0.10)), (25.0, Unhealthy, Some(0.10)));
    assert_eq!(at(Some(1.0)), (25.0, Unhealthy, Some(1.0)));
    assert_eq!(at(None), (0.0, Healthy, None));
}

#[test]
fn an_error_rate_over_too_few_calls_costs_nothing() {
    let (penalty, status, value) = component("error_rate", |i| {
        i.error_rate = Some(1.0);
        i.calls = 3;
    });
    assert_eq!((penalty, status, value), (0.0, Healthy, Some(1.0)));
}

#[test]
fn cpu_memory_and_disk_inside_between_beyond_and_missing() {
    let cpu = |v| component("cpu", |i| i.cpu_ratio = v);
    assert_eq!(cpu(Some(0.5)), (0.0, Healthy, Some(0.5)));
    assert_eq!(cpu(Some(0.8)), (5.0, Degraded, Some(0.8)));
    assert_eq!(cpu(Some(0.95)), (10.0, Unhealthy, Some(0.95)));
    assert_eq!(cpu(None), (0.0, Healthy, None));

    let memory = |v| component("memory", |i| i.memory_ratio = v);
    assert_eq!(memory(Some(0.8)), (0.0, Healthy, Some(0.8)));
    assert_eq!(memory(Some(0.86)), (4.0, Degraded, Some(0.86)));
    assert_eq!(memory(Some(0.99)), (10.0, Unhealthy, Some(0.99)));
    assert_eq!(memory(None), (0.0, Healthy, None));

    let disk = |v| component("disk", |i| i.disk_ratio = v);
    assert_eq!(disk(Some(0.2)), (0.0, Healthy, Some(0.2)));
    assert_eq!(disk(Some(0.9)), (5.0, Degraded, Some(0.9)));
    assert_eq!(disk(Some(1.0)), (10.0, Unhealthy, Some(1.0)));
    assert_eq!(disk(None), (0.0, Healthy, None));
}

#[test]
fn a_low_cache_hit_ratio_is_worse() {
    let at = |v| component("cache", |i| i.cache_hit_ratio = v);
    assert_eq!(at(Some(0.95)), (0.0, Healthy, Some(0.95)));
    assert_eq!(at(Some(0.70)), (0.0, Healthy, Some(0.70)));
    assert_eq!(at(Some(0.60)), (5.0, Degraded, Some(0.60)));
    assert_eq!(at(Some(0.50)), (10.0, Unhealthy, Some(0.50)));
    assert_eq!(at(Some(0.0)), (10.0, Unhealthy, Some(0.0)));
    assert_eq!(at(None), (0.0, Healthy, None));
    let cold = component("cache", |i| {
        i.cache_hit_ratio = Some(0.0);
        i.cache_requests = 99;
    });
    assert_eq!(cold, (0.0, Healthy, Some(0.0)));
}

#[test]
fn firing_alerts_cost_by_severity_up_to_a_cap() {
    let at = |low, medium, high, critical| {
        component("alerts", |i| {
            i.firing = SeverityCounts {
                low,
                medium,
                high,
                critical,
            }
        })
    };
    assert_eq!(at(0, 0, 0, 0), (0.0, Healthy, Some(0.0)));
    assert_eq!(at(3, 0, 0, 0), (3.0, Healthy, Some(3.0)));
    assert_eq!(at(0, 2, 0, 0), (10.0, Degraded, Some(2.0)));
    assert_eq!(at(0, 0, 1, 0), (15.0, Degraded, Some(1.0)));
    assert_eq!(at(0, 0, 0, 1), (25.0, Unhealthy, Some(1.0)));
    assert_eq!(at(1, 1, 1, 0), (21.0, Degraded, Some(3.0)));
    assert_eq!(at(0, 0, 0, 10), (40.0, Unhealthy, Some(10.0)));
}

#[test]
fn status_bands_follow_the_score() {
    assert_eq!(HealthStatus::from_score(100.0), Healthy);
    assert_eq!(HealthStatus::from_score(80.0), Healthy);
    assert_eq!(HealthStatus::from_score(79.9), Degraded);
    assert_eq!(HealthStatus::from_score(50.0), Degraded);
    assert_eq!(HealthStatus::from_score(49.9), Unhealthy);
    assert_eq!(HealthStatus::from_score(0.0), Unhealthy);
}

#[test]
fn a_critical_component_makes_a_high_score_degraded() {
    // CPU beyond 90 % costs its full 10 points: 90 is in the healthy band,
    // but a component at its critical limit caps the status at degraded.
    let inputs = HealthInputs {
        cpu_ratio: Some(0.97),
        ..enough()
    };
    let report = assess(&inputs, &targets());
    assert_eq!(report.score, 90.0);
    assert_eq!(report.status, Degraded);
    // So does one critical alert.
    let inputs = HealthInputs {
        firing: SeverityCounts {
            critical: 1,
            ..SeverityCounts::default()
        },
        ..enough()
    };
    let report = assess(&inputs, &targets());
    assert_eq!((report.score, report.status), (75.0, Degraded));
}

#[test]
fn everything_at_once_clamps_at_zero_and_is_unhealthy() {
    let inputs = HealthInputs {
        p95_seconds: Some(9.0),
        error_rate: Some(0.5),
        calls: 1_000,
        cpu_ratio: Some(1.0),
        memory_ratio: Some(1.0),
        disk_ratio: Some(1.0),
        cache_hit_ratio: Some(0.0),
        cache_requests: 1_000,
        firing: SeverityCounts {
            critical: 3,
            ..SeverityCounts::default()
        },
    };
    let report = assess(&inputs, &targets());
    assert_eq!(report.score, 0.0);
    assert_eq!(report.status, Unhealthy);
    let penalties: f64 = report.components.iter().map(|c| c.penalty).sum();
    assert_eq!(penalties, 130.0);
}

#[test]
fn a_mixed_example_adds_up() {
    // p95 2 s: (2-1)/(5-1) of 25 = 6.25 -> 6.3; memory 0.875: half of 10 = 5;
    // one medium alert: 5. 100 - 16.3 = 83.7.
    let inputs = HealthInputs {
        p95_seconds: Some(2.0),
        memory_ratio: Some(0.875),
        firing: SeverityCounts {
            medium: 1,
            ..SeverityCounts::default()
        },
        ..enough()
    };
    let report = assess(&inputs, &targets());
    assert_eq!(report.component("latency").unwrap().penalty, 6.3);
    assert_eq!(report.component("memory").unwrap().penalty, 5.0);
    assert_eq!(report.score, 83.7);
    assert_eq!(report.status, Healthy);
}

#[test]
fn nan_counts_as_missing() {
    let (penalty, status, value) = component("cpu", |i| i.cpu_ratio = Some(f64::NAN));
    assert_eq!((penalty, status, value), (0.0, Healthy, None));
}

#[test]
fn custom_targets_are_used() {
    let targets = HealthTargets {
        p95_seconds: Limits::new(0.2, 0.5),
        ..HealthTargets::default()
    };
    let inputs = HealthInputs {
        p95_seconds: Some(0.35),
        ..HealthInputs::default()
    };
    let report = assess(&inputs, &targets);
    assert_eq!(report.component("latency").unwrap().penalty, 12.5);
}

#[test]
fn the_report_round_trips_through_json() {
    let inputs = HealthInputs {
        p95_seconds: Some(2.0),
        cpu_ratio: Some(0.8),
        firing: SeverityCounts {
            high: 1,
            ..SeverityCounts::default()
        },
        ..enough()
    };
    let report = assess(&inputs, &targets());
    let json = serde_json::to_value(&report).unwrap();
    // 100 - 6.3 (p95) - 5 (CPU) - 15 (a high alert) = 73.7: degraded.
    assert_eq!(json["score"], 73.7);
    assert_eq!(json["status"], "degraded");
    assert_eq!(json["components"][0]["name"], "latency");
    assert_eq!(json["components"][0]["status"], "degraded");
    assert_eq!(json["components"][0]["target"]["warning"], 1.0);
    assert_eq!(json["components"][3]["value"], serde_json::Value::Null);
    let back: HealthReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);

    let targets_json = serde_json::to_string(&targets()).unwrap();
    let back: HealthTargets = serde_json::from_str(&targets_json).unwrap();
    assert_eq!(back, targets());
    // A partial targets object keeps the defaults for what it leaves out.
    let partial: HealthTargets =
        serde_json::from_str(r#"{"cpu": {"warning": 0.5, "critical": 0.8}}"#).unwrap();
    assert_eq!(partial.cpu, Limits::new(0.5, 0.8));
    assert_eq!(partial.memory, targets().memory);
    let inputs_back: HealthInputs =
        serde_json::from_str(&serde_json::to_string(&inputs).unwrap()).unwrap();
    assert_eq!(inputs_back, inputs);
}

fn ratio() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(0.0..=1.0f64)
}

prop_compose! {
    fn inputs()(
        p95 in prop::option::of(0.0..20.0f64),
        error_rate in ratio(),
        calls in 0u64..200,
        cpu in ratio(),
        memory in ratio(),
        disk in ratio(),
        cache in ratio(),
        cache_requests in 0u64..300,
        counts in prop::array::uniform4(0u64..4),
    ) -> HealthInputs {
        HealthInputs {
            p95_seconds: p95,
            error_rate,
            calls,
            cpu_ratio: cpu,
            memory_ratio: memory,
            disk_ratio: disk,
            cache_hit_ratio: cache,
            cache_requests,
            firing: SeverityCounts { low: counts[0], medium: counts[1], high: counts[2], critical: counts[3] },
        }
    }
}

/// `worse` with one input made worse than in `base` by `step`.
fn worsen(base: &HealthInputs, which: usize, step: f64) -> HealthInputs {
    let mut worse = base.clone();
    let up = |v: Option<f64>| Some(v.unwrap_or(0.0) + step);
    match which {
        0 => worse.p95_seconds = up(base.p95_seconds),
        1 => worse.error_rate = up(base.error_rate),
        2 => worse.cpu_ratio = up(base.cpu_ratio),
        3 => worse.memory_ratio = up(base.memory_ratio),
        4 => worse.disk_ratio = up(base.disk_ratio),
        5 => worse.cache_hit_ratio = base.cache_hit_ratio.map(|v| v - step),
        6 => worse.firing.low += 1,
        7 => worse.firing.medium += 1,
        8 => worse.firing.high += 1,
        _ => worse.firing.critical += 1,
    }
    worse
}

proptest! {
    #[test]
    fn a_worse_input_never_raises_the_score(
        base in inputs(),
        which in 0usize..10,
        step in 0.0..1.0f64,
    ) {
        let t = targets();
        let before = assess(&base, &t);
        let after = assess(&worsen(&base, which, step), &t);
        prop_assert!(after.score <= before.score, "{before:?} -> {after:?}");
        prop_assert!(after.status >= before.status, "{before:?} -> {after:?}");
    }

    #[test]
    fn the_score_is_in_range_and_is_100_minus_the_penalties(base in inputs()) {
        let report = assess(&base, &targets());
        prop_assert!((0.0..=100.0).contains(&report.score));
        let penalties: f64 = report.components.iter().map(|c| c.penalty).sum();
        let expected = ((100.0 - penalties).max(0.0) * 10.0).round() / 10.0;
        prop_assert_eq!(report.score, expected);
        prop_assert!(report.status >= HealthStatus::from_score(report.score));
    }
}
