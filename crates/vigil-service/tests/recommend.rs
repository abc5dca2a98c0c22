//! Each recommendation rule with constructed inputs: when it fires, with
//! which priority and evidence, and when it stays quiet.

use std::time::{Duration, SystemTime};

use vigil_service::health::HealthTargets;
use vigil_service::recommend::{
    CacheUsage, CalleeUsage, Category, DiskUsage, FunctionUsage, Priority, RecommendInputs,
    Recommendation, UsageWindow, priority_breakdown, recommend,
};

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_633_600) // 2025-12-02T00:00:00Z
}

fn run(inputs: &RecommendInputs) -> Vec<Recommendation> {
    let found = recommend(inputs, &HealthTargets::default(), now());
    for r in &found {
        assert!(!r.evidence.is_empty(), "{r:?}");
        assert_eq!(r.created_at, now());
        assert!(
            ["low", "medium", "high"].contains(&r.effort.as_str()),
            "{r:?}"
        );
        for text in [&r.title, &r.description, &r.impact, &r.implementation] {
            assert!(!text.is_empty(), "{r:?}");
        }
    }
    found
}

/// A series every `step` ending at `now()`.
fn series(values: impl IntoIterator<Item = f64>, step: Duration) -> Vec<(SystemTime, f64)> {
    let values: Vec<f64> = values.into_iter().collect();
    let n = values.len() as u32;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (now() - step * (n - 1 - i as u32), v))
        .collect()
}

fn cache(name: &str, hits: u64, misses: u64) -> CacheUsage {
    CacheUsage {
        name: name.into(),
        hits,
        misses,
    }
}

fn caches(list: Vec<CacheUsage>) -> RecommendInputs {
    RecommendInputs {
        caches: list,
        ..RecommendInputs::default()
    }
}

#[test]
fn nothing_to_say_about_nothing() {
    assert!(run(&RecommendInputs::default()).is_empty());
}

#[test]
fn a_low_cache_hit_ratio_names_the_cache() {
    let found = run(&caches(vec![cache("markets", 60, 40)]));
    assert_eq!(found.len(), 1);
    let r = &found[0];
    assert_eq!(
        (r.category, r.priority),
        (Category::Cache, Priority::Medium)
    );
    assert!(r.title.contains("\"markets\""), "{}", r.title);
    assert!(r.description.contains("60.0 %"), "{}", r.description);
    for advice in ["keys", "TTL", "warm"] {
        assert!(r.implementation.contains(advice), "{}", r.implementation);
    }
    let e = &r.evidence[0];
    assert_eq!(e.metric, "cache_requests_total");
    assert_eq!(e.labels["cache"], "markets");
    assert_eq!(e.labels["stat"], "hit_ratio");
    assert_eq!((e.value, e.target), (0.6, 0.7));
}

#[test]
fn a_cache_hit_ratio_at_the_critical_limit_is_high_priority() {
    let found = run(&caches(vec![cache("sessions", 50, 50)]));
    assert_eq!(found[0].priority, Priority::High);
    assert_eq!(found[0].evidence[0].target, 0.5);
}

#[test]
fn a_good_or_cold_cache_is_not_reported() {
    let quiet = caches(vec![
        cache("good", 700, 300),
        cache("cold", 0, 99),
        cache("empty", 0, 0),
    ]);
    assert!(run(&quiet).is_empty());
}

fn window(average: f64, samples: usize) -> UsageWindow {
    UsageWindow {
        current: average,
        average,
        min: average - 0.05,
        max: average + 0.05,
        samples,
    }
}

#[test]
fn high_average_cpu_is_a_high_priority_system_recommendation() {
    let inputs = RecommendInputs {
        cpu: Some(window(0.851, 20)),
        ..RecommendInputs::default()
    };
    let found = run(&inputs);
    assert_eq!(found.len(), 1);
    let r = &found[0];
    assert_eq!((r.category, r.priority), (Category::System, Priority::High));
    assert_eq!(r.title, "High CPU Usage Detected");
    assert!(r.description.contains("85.1 %"), "{}", r.description);
    assert_eq!(r.evidence[0].metric, "system_cpu_usage_ratio");
    assert_eq!((r.evidence[0].value, r.evidence[0].target), (0.851, 0.7));
}

#[test]
fn cpu_or_memory_beyond_the_critical_limit_is_critical() {
    let inputs = RecommendInputs {
        cpu: Some(window(0.93, 20)),
        memory: Some(window(0.97, 20)),
        ..RecommendInputs::default()
    };
    let found = run(&inputs);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|r| r.priority == Priority::Critical));
    let memory = found
        .iter()
        .find(|r| r.category == Category::Memory)
        .unwrap();
    assert_eq!(memory.title, "High Memory Usage Detected");
    assert_eq!(memory.evidence[0].metric, "system_memory_usage_ratio");
    assert_eq!(memory.evidence[0].target, 0.95);
}

#[test]
fn usage_inside_the_limits_or_over_too_few_samples_is_quiet() {
    let inputs = RecommendInputs {
        cpu: Some(window(0.5, 20)),
        memory: Some(window(0.99, 2)),
        ..RecommendInputs::default()
    };
    assert!(run(&inputs).is_empty());
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn steady_memory_growth_is_a_leak_suspicion() {
    // 500 MiB growing 2 MiB a minute for 60 minutes: +24 %.
    let used = series(
        (0..61).map(|i| (500.0 + 2.0 * f64::from(i)) * MIB),
        Duration::from_secs(60),
    );
    let inputs = RecommendInputs {
        memory_used: used,
        ..RecommendInputs::default()
    };
    let found = run(&inputs);
    assert_eq!(found.len(), 1);
    let r = &found[0];
    assert_eq!(
        (r.category, r.priority),
        (Category::Memory, Priority::Medium)
    );
    assert!(r.title.contains("Leak"), "{}", r.title);
    assert!(
        r.description.contains("120.0 MiB per hour"),
        "{}",
        r.description
    );
    assert_eq!(r.evidence[0].labels["stat"], "growth_ratio");
    assert!((r.evidence[0].value - 0.24).abs() < 1e-9);
    assert_eq!(r.evidence[0].target, 0.1);
    assert_eq!(r.evidence[1].labels["stat"], "r_squared");
    assert!(r.evidence[1].value > 0.99);
}

#[test]
fn fast_memory_growth_is_high_priority() {
    let used = series(
        (0..61).map(|i| (400.0 + 5.0 * f64::from(i)) * MIB),
        Duration::from_secs(60),
    );
    let inputs = RecommendInputs {
        memory_used: used,
        ..RecommendInputs::default()
    };
    assert_eq!(run(&inputs)[0].priority, Priority::High);
}

#[test]
fn noisy_flat_short_or_small_memory_changes_are_not_leaks() {
    let minute = Duration::from_secs(60);
    let cases = [
        // Saw-tooth: garbage collected every few minutes, no trend.
        series(
            (0..61).map(|i| (500.0 + f64::from(i % 5) * 40.0) * MIB),
            minute,
        ),
        // Flat.
        series((0..61).map(|_| 500.0 * MIB), minute),
        // Steep but only 5 minutes of samples.
        series(
            (0..30).map(|i| (500.0 + 10.0 * f64::from(i)) * MIB),
            Duration::from_secs(10),
        ),
        // Steady but +2 % only.
        series((0..61).map(|i| (500.0 + 0.2 * f64::from(i)) * MIB), minute),
        // Shrinking.
        series((0..61).map(|i| (500.0 - 2.0 * f64::from(i)) * MIB), minute),
    ];
    for used in cases {
        let inputs = RecommendInputs {
            memory_used: used,
            ..RecommendInputs::default()
        };
        assert!(run(&inputs).is_empty(), "{:?}", run(&inputs));
    }
}

fn function(name: &str, calls: u64, errors: u64, p95: Option<f64>) -> FunctionUsage {
    FunctionUsage {
        function: name.into(),
        module: "shop".into(),
        calls,
        errors,
        p95_seconds: p95,
        mean_seconds: p95.map(|p| p / 2.0),
        callees: Vec::new(),
    }
}

fn callee(name: &str, calls: u64, mean: f64) -> CalleeUsage {
    CalleeUsage {
        function: name.into(),
        module: "db".into(),
        calls,
        mean_seconds: Some(mean),
    }
}

fn functions(list: Vec<FunctionUsage>) -> RecommendInputs {
    RecommendInputs {
        functions: list,
        ..RecommendInputs::default()
    }
}

#[test]
fn a_slow_p95_names_the_callee_that_dominates() {
    // list_markets: 100 calls, mean 1 s = 100 s; load_markets: 100 calls
    // of 0.8 s = 80 s, 80 % of it.
    let mut f = function("list_markets", 100, 0, Some(2.0));
    f.mean_seconds = Some(1.0);
    f.callees = vec![callee("load_markets", 100, 0.8), callee("audit", 100, 0.1)];
    let found = run(&functions(vec![f]));
    assert_eq!(found.len(), 1);
    let r = &found[0];
    assert_eq!(
        (r.category, r.priority),
        (Category::Latency, Priority::Medium)
    );
    assert!(r.title.contains("shop::list_markets"), "{}", r.title);
    assert!(r.description.contains("80.0 %"), "{}", r.description);
    assert!(
        r.description.contains("db::load_markets"),
        "{}",
        r.description
    );
    assert!(r.implementation.starts_with("Start with db::load_markets"));
    let p95 = &r.evidence[0];
    assert_eq!(p95.metric, "function_calls_duration_seconds");
    assert_eq!(p95.labels["quantile"], "0.95");
    assert_eq!((p95.value, p95.target), (2.0, 1.0));
    let share = &r.evidence[1];
    assert_eq!(share.labels["function"], "load_markets");
    assert_eq!(share.labels["caller_function"], "list_markets");
    assert_eq!(share.labels["stat"], "time_share");
    assert!((share.value - 0.8).abs() < 1e-12);
    assert_eq!(share.target, 0.5);
}

#[test]
fn a_slow_p95_without_a_dominant_callee_names_none() {
    let mut f = function("search", 100, 0, Some(6.0));
    f.mean_seconds = Some(1.0);
    f.callees = vec![callee("a", 100, 0.4), callee("b", 100, 0.4)];
    let found = run(&functions(vec![f]));
    assert_eq!(found[0].priority, Priority::High);
    assert_eq!(found[0].evidence.len(), 1);
    assert!(found[0].implementation.starts_with("Profile shop::search"));
}

#[test]
fn fast_or_rarely_called_functions_are_quiet() {
    let quiet = functions(vec![
        function("fast", 1_000, 0, Some(0.3)),
        function("rare", 5, 0, Some(30.0)),
        function("unmeasured", 1_000, 0, None),
    ]);
    assert!(run(&quiet).is_empty());
}

#[test]
fn errors_concentrated_on_one_function_name_it() {
    let found = run(&functions(vec![
        function("checkout", 200, 30, None),
        function("browse", 5_000, 10, None),
    ]));
    assert_eq!(found.len(), 1);
    let r = &found[0];
    assert_eq!(
        (r.category, r.priority),
        (Category::Errors, Priority::Critical)
    );
    assert!(r.title.contains("shop::checkout"), "{}", r.title);
    let rate = &r.evidence[0];
    assert_eq!(rate.metric, "function_calls_total");
    assert_eq!(rate.labels["stat"], "error_ratio");
    assert_eq!(rate.labels["result"], "error");
    assert_eq!((rate.value, rate.target), (0.15, 0.10));
    let share = &r.evidence[1];
    assert_eq!(share.labels["stat"], "error_share");
    assert_eq!((share.value, share.target), (0.75, 0.5));
}

#[test]
fn an_error_rate_between_the_limits_is_high_priority() {
    let found = run(&functions(vec![function("checkout", 1_000, 70, None)]));
    assert_eq!(found[0].priority, Priority::High);
    assert_eq!(found[0].evidence[0].target, 0.05);
}

#[test]
fn spread_or_low_error_rates_are_quiet() {
    let spread = functions(vec![
        function("a", 100, 20, None),
        function("b", 100, 20, None),
        function("c", 100, 20, None),
    ]);
    assert!(run(&spread).is_empty());
    let low = functions(vec![function("a", 1_000, 30, None)]);
    assert!(run(&low).is_empty());
}

fn disk(mount: &str, history: Vec<(SystemTime, f64)>) -> RecommendInputs {
    RecommendInputs {
        disks: vec![DiskUsage {
            mount: mount.into(),
            history,
        }],
        ..RecommendInputs::default()
    }
}

#[test]
fn a_disk_filling_within_a_day_is_high_priority() {
    // 70 % growing 2 points an hour (over an hour of samples): full in 15 h.
    let history = series(
        (0..61).map(|i| 0.68 + 0.02 * f64::from(i) / 60.0),
        Duration::from_secs(60),
    );
    let found = run(&disk("/var", history));
    assert_eq!(found.len(), 1);
    let r = &found[0];
    assert_eq!((r.category, r.priority), (Category::Disk, Priority::High));
    assert!(r.title.contains("/var"), "{}", r.title);
    assert_eq!(r.evidence[0].labels["mount"], "/var");
    assert!((r.evidence[0].value - 0.70).abs() < 1e-9);
    let projection = &r.evidence[1];
    assert_eq!(projection.labels["stat"], "hours_to_full");
    assert!((projection.value - 15.0).abs() < 0.01, "{projection:?}");
    assert_eq!(projection.target, 24.0);
}

#[test]
fn a_full_disk_is_reported_by_level() {
    let flat = |v: f64| series((0..61).map(|_| v), Duration::from_secs(60));
    let found = run(&disk("/", flat(0.90)));
    assert_eq!(found[0].priority, Priority::Medium);
    assert_eq!(found[0].evidence.len(), 1);
    let found = run(&disk("/", vec![(now(), 0.97)]));
    assert_eq!(found[0].priority, Priority::Critical);
    assert_eq!(found[0].evidence[0].target, 0.95);
}

#[test]
fn a_slowly_filling_or_roomy_disk_is_quiet() {
    // 50 % growing 1 point an hour: full in 50 h.
    let slow = series(
        (0..61).map(|i| 0.49 + 0.01 * f64::from(i) / 60.0),
        Duration::from_secs(60),
    );
    assert!(run(&disk("/", slow)).is_empty());
    assert!(run(&disk("/", vec![(now(), 0.4)])).is_empty());
    assert!(run(&disk("/", Vec::new())).is_empty());
}

#[test]
fn the_output_is_sorted_by_priority_and_deterministic() {
    let inputs = RecommendInputs {
        caches: vec![cache("b", 60, 40), cache("a", 60, 40), cache("c", 10, 90)],
        cpu: Some(window(0.95, 10)),
        memory: Some(window(0.85, 10)),
        functions: vec![function("slow", 100, 0, Some(2.0))],
        ..RecommendInputs::default()
    };
    let found = run(&inputs);
    let order: Vec<(Priority, &str)> = found
        .iter()
        .map(|r| (r.priority, r.title.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            (Priority::Critical, "High CPU Usage Detected"),
            (Priority::High, "Low Cache Hit Ratio in Cache \"c\""),
            (Priority::High, "High Memory Usage Detected"),
            (Priority::Medium, "Low Cache Hit Ratio in Cache \"a\""),
            (Priority::Medium, "Low Cache Hit Ratio in Cache \"b\""),
            (Priority::Medium, "Slow p95 in shop::slow"),
        ]
    );
    assert_eq!(run(&inputs), found);
    let breakdown = priority_breakdown(&found);
    assert_eq!(
        (
            breakdown.low,
            breakdown.medium,
            breakdown.high,
            breakdown.critical
        ),
        (0, 3, 2, 1)
    );
}

#[test]
fn priorities_parse_order_and_print() {
    assert_eq!("low".parse(), Ok(Priority::Low));
    assert_eq!("Medium".parse(), Ok(Priority::Medium));
    assert_eq!("HIGH".parse(), Ok(Priority::High));
    assert_eq!("critical".parse(), Ok(Priority::Critical));
    let err = "urgent".parse::<Priority>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown priority \"urgent\": expected one of low, medium, high, critical"
    );
    assert!(Priority::Low < Priority::Medium);
    assert!(Priority::High < Priority::Critical);
    assert_eq!(Priority::High.to_string(), "high");
}

#[test]
fn a_recommendation_round_trips_through_json() {
    let found = run(&caches(vec![cache("markets", 60, 40)]));
    let json = serde_json::to_value(&found[0]).unwrap();
    assert_eq!(json["category"], "cache");
    assert_eq!(json["priority"], "medium");
    assert_eq!(json["effort"], "medium");
    assert_eq!(json["created_at"], "2025-12-02T00:00:00Z");
    assert_eq!(json["evidence"][0]["labels"]["cache"], "markets");
    for field in ["title", "description", "impact", "implementation"] {
        assert!(json[field].is_string(), "{field}");
    }
    let back: Recommendation = serde_json::from_value(json).unwrap();
    assert_eq!(back, found[0]);
}
