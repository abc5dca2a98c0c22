//! The ready-made rule sets build, fire on vigil's own metric names when
//! evaluated on a `MemorySource`, and export through `promtool`.

#![cfg(all(feature = "prometheus", feature = "rulesets"))]

mod prometheus_common;

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_common::{check_rules, test_rules};
use vigil_alert::prometheus::{HistogramExport, PrometheusExporter, to_prometheus_rules};
use vigil_alert::rulesets::{SRE_WORKBOOK_WINDOWS, ServiceTargets, SloBurnRate, Target};
use vigil_alert::{
    AlertStatus, Comparison, Engine, HistogramStat, Labels, Limit, Matcher, MemorySource, Rule,
    Severity, State,
};

const MINUTE: Duration = Duration::from_secs(60);

fn at(minute: u32) -> SystemTime {
    UNIX_EPOCH + MINUTE * minute
}

/// (rule, severity) of every alerting instance, sorted.
fn alerting(engine: &Engine) -> Vec<(String, Severity)> {
    let mut out: Vec<_> = engine
        .instances()
        .into_iter()
        .filter(|i| i.state.is_alerting())
        .map(|i| {
            (
                i.rule,
                i.severity.expect("alerting instances have a severity"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn service_targets_use_vigil_metric_names_and_the_documented_limits() {
    let rules = ServiceTargets::new().rules().unwrap();
    type Limits = Vec<(Severity, Comparison, f64)>;
    let summary: Vec<(String, Limits)> = rules
        .iter()
        .map(|r| {
            let thresholds = r
                .thresholds
                .iter()
                .map(|t| match t.value {
                    Limit::Fixed(v) => (t.severity, t.op, v),
                    Limit::Baseline(_) => panic!("ready-made rules use fixed limits"),
                })
                .collect();
            (r.name.clone(), thresholds)
        })
        .collect();
    use Comparison::{Greater as Gt, Less as Lt};
    use Severity::*;
    assert_eq!(
        summary,
        [
            ("HighLatency".to_owned(), vec![(High, Gt, 0.2)]),
            (
                "HighErrorRate".to_owned(),
                vec![(Medium, Gt, 0.01), (Critical, Gt, 0.05)]
            ),
            (
                "HighCpuUsage".to_owned(),
                vec![(Medium, Gt, 0.8), (Critical, Gt, 0.9)]
            ),
            (
                "HighMemoryUsage".to_owned(),
                vec![(Medium, Gt, 0.85), (Critical, Gt, 0.95)]
            ),
            (
                "LowCacheHitRatio".to_owned(),
                vec![(Medium, Lt, 0.7), (High, Lt, 0.5)]
            ),
        ]
    );
    let metrics: Vec<Vec<&str>> = rules.iter().map(|r| r.expr.metrics().collect()).collect();
    assert_eq!(
        metrics,
        [
            vec!["function_calls_duration_seconds"],
            vec!["function_calls_total", "function_calls_total"],
            vec!["system_cpu_usage_ratio"],
            vec!["system_memory_usage_ratio"],
            vec!["cache_requests_total", "cache_requests_total"],
        ]
    );
    let only = ServiceTargets::new()
        .only([Target::CacheHitRatio, Target::Cpu])
        .rules()
        .unwrap();
    let names: Vec<&str> = only.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["HighCpuUsage", "LowCacheHitRatio"]);
    assert!(ServiceTargets::new().cpu(f64::NAN, 0.9).rules().is_err());
}

#[test]
fn service_targets_fire_on_a_memory_source() {
    let mut engine = Engine::new(ServiceTargets::new().rules().unwrap()).unwrap();
    let mut source = MemorySource::new();
    let checkout = [("function", "checkout"), ("module", "shop")];
    let search = [("function", "search"), ("module", "shop")];
    for minute in 0..=8u32 {
        let m = f64::from(minute);
        // search is slow; checkout fails 10% of calls; CPU at 85%, memory
        // at 97%; the sessions cache hits 40% and the users cache 95%.
        source.set_histogram(
            "function_calls_duration_seconds",
            search,
            HistogramStat::Quantile(0.95),
            0.35,
        );
        source.set_histogram(
            "function_calls_duration_seconds",
            checkout,
            HistogramStat::Quantile(0.95),
            0.05,
        );
        for (labels, ok, errors) in [(checkout, 900.0, 100.0), (search, 1000.0, 1.0)] {
            let [f, md] = labels;
            source.set_counter("function_calls_total", [f, md, ("result", "ok")], ok * m);
            source.set_counter(
                "function_calls_total",
                [f, md, ("result", "error")],
                errors * m,
            );
        }
        source.set_gauge("system_cpu_usage_ratio", [("host", "a")], 0.85);
        source.set_gauge("system_memory_usage_ratio", [("host", "a")], 0.97);
        for (cache, hits, misses) in [("sessions", 40.0, 60.0), ("users", 95.0, 5.0)] {
            source.set_counter(
                "cache_requests_total",
                [("cache", cache), ("result", "hit")],
                hits * m,
            );
            source.set_counter(
                "cache_requests_total",
                [("cache", cache), ("result", "miss")],
                misses * m,
            );
        }
        engine.evaluate(at(minute), &source);
        if minute == 4 {
            // `for: 5m` has not passed yet.
            assert_eq!(alerting(&engine), []);
        }
    }
    assert_eq!(
        alerting(&engine),
        [
            ("HighCpuUsage".to_owned(), Severity::Medium),
            ("HighErrorRate".to_owned(), Severity::Critical),
            ("HighLatency".to_owned(), Severity::High),
            ("HighMemoryUsage".to_owned(), Severity::Critical),
            ("LowCacheHitRatio".to_owned(), Severity::High),
        ]
    );
    let labels = |pairs: &[(&str, &str)]| vigil_alert::labels(pairs.iter().copied());
    assert_eq!(engine.state("HighLatency", &labels(&search)), State::Firing);
    assert_eq!(
        engine.state("HighLatency", &labels(&checkout)),
        State::Inactive
    );
    assert_eq!(
        engine.state("HighErrorRate", &labels(&checkout)),
        State::Firing
    );
    assert_eq!(
        engine.state("LowCacheHitRatio", &labels(&[("cache", "sessions")])),
        State::Firing
    );
    assert_eq!(
        engine.state("LowCacheHitRatio", &labels(&[("cache", "users")])),
        State::Inactive
    );
}

#[test]
fn service_targets_export_through_promtool() {
    let rules = ServiceTargets::new().rules().unwrap();
    for h in [HistogramExport::Summary, HistogramExport::Buckets] {
        let export = PrometheusExporter::new().histograms(h).export(&rules);
        check_rules(&export.yaml);
        // Only the per-severity `for` note: everything else is exact.
        assert!(
            export
                .warnings
                .iter()
                .all(|w| w.contains("counts `for` from the first breach")),
            "{:?}",
            export.warnings
        );
    }
}

#[test]
fn slo_burn_rates_follow_the_sre_workbook() {
    let slo = SloBurnRate::new("checkout", 0.999).matcher(Matcher::equal("function", "checkout"));
    let rules = slo.rules().unwrap();
    let got: Vec<(String, String, Severity, f64)> = rules
        .iter()
        .zip(SRE_WORKBOOK_WINDOWS)
        .map(|(r, w)| {
            let t = &r.thresholds[0];
            let Limit::Fixed(v) = t.value else {
                panic!("fixed limits")
            };
            // The long window is the rule's value, the short one its `also`.
            let also = r.also.as_ref().expect("burn-rate rules check two windows");
            assert_eq!((also.op, also.value), (Comparison::Greater, v));
            assert_eq!(r.expr.window(), Some(w.long));
            assert_eq!(also.expr.window(), Some(w.short));
            (
                r.labels["long_window"].clone(),
                r.labels["short_window"].clone(),
                t.severity,
                v,
            )
        })
        .collect();
    let want = [
        ("1h", "5m", Severity::Critical, 0.0144),
        ("6h", "30m", Severity::Critical, 0.006),
        ("1d", "2h", Severity::Medium, 0.003),
        ("3d", "6h", Severity::Medium, 0.001),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str(), g.2, g.3), w);
    }
    assert!(rules.iter().all(|r| r.name == "ErrorBudgetBurn"));
    assert!(rules.iter().all(|r| r.labels["slo"] == "checkout"));
    assert_eq!(SRE_WORKBOOK_WINDOWS.len(), 4);
}

/// Errors and totals per minute for `function="checkout"`.
fn feed(source: &mut MemorySource, minute: u32, errors: f64, oks: f64) {
    let m = f64::from(minute);
    source.set_counter(
        "function_calls_total",
        [("function", "checkout"), ("result", "error")],
        errors * m,
    );
    source.set_counter(
        "function_calls_total",
        [("function", "checkout"), ("result", "ok")],
        oks * m,
    );
}

#[test]
fn slo_rules_page_on_fast_burns_and_ticket_on_slow_ones() {
    let slo = SloBurnRate::new("checkout", 0.999).matcher(Matcher::equal("function", "checkout"));
    let windows = |engine: &Engine| -> Vec<(String, Severity)> {
        let mut out: Vec<_> = engine
            .instances()
            .into_iter()
            .filter(|i| i.state.is_alerting())
            .map(|i| (i.labels["long_window"].clone(), i.severity.unwrap()))
            .collect();
        out.sort();
        out
    };
    // 2% errors burn a 99.9% budget 20x too fast: every window alerts.
    let mut engine = Engine::new(slo.rules().unwrap()).unwrap();
    let mut source = MemorySource::new();
    for minute in 0..=3 {
        feed(&mut source, minute, 20.0, 980.0);
        engine.evaluate(at(minute), &source);
    }
    assert_eq!(
        windows(&engine),
        [
            ("1d".to_owned(), Severity::Medium),
            ("1h".to_owned(), Severity::Critical),
            ("3d".to_owned(), Severity::Medium),
            ("6h".to_owned(), Severity::Critical),
        ]
    );
    // 0.5% errors (5x): tickets only.
    let mut engine = Engine::new(slo.rules().unwrap()).unwrap();
    let mut source = MemorySource::new();
    for minute in 0..=3 {
        feed(&mut source, minute, 5.0, 995.0);
        engine.evaluate(at(minute), &source);
    }
    assert_eq!(
        windows(&engine),
        [
            ("1d".to_owned(), Severity::Medium),
            ("3d".to_owned(), Severity::Medium),
        ]
    );
}

#[test]
fn slo_rules_export_through_promtool() {
    let slo = SloBurnRate::new("checkout", 0.999)
        .matcher(Matcher::equal("function", "checkout"))
        .by(["module"]);
    let export = slo.prometheus_rules().unwrap();
    check_rules(&export.yaml);
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&export.yaml).unwrap();
    assert_eq!(
        doc["groups"][0]["rules"][0]["expr"].as_str(),
        Some(
            r#"(sum by (module) (rate(function_calls_total{result="error",function="checkout"}[1h])) / sum by (module) (rate(function_calls_total{function="checkout"}[1h])) > 0.0144) and on (module) (sum by (module) (rate(function_calls_total{result="error",function="checkout"}[5m])) / sum by (module) (rate(function_calls_total{function="checkout"}[5m])) > 0.0144)"#
        ),
        "{}",
        export.yaml
    );
    // The vigil rules export to exactly the same alerts through the generic
    // exporter: the two-window condition is part of the rule.
    let generic = to_prometheus_rules(&slo.rules().unwrap());
    check_rules(&generic.yaml);
    assert!(generic.warnings.is_empty(), "{:?}", generic.warnings);
    let exprs = |yaml: &str| -> Vec<serde_yaml_ng::Value> {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
        let rules = doc["groups"][0]["rules"].as_sequence().unwrap().iter();
        rules.map(|r| r["expr"].clone()).collect()
    };
    assert_eq!(exprs(&export.yaml).len(), 4);
    assert_eq!(exprs(&export.yaml), exprs(&generic.yaml));
}

/// Errors and oks per minute of one function.
type Traffic = fn(u32) -> (f64, f64);

/// Firing alerts at one minute: (labels without alertname, annotations).
type Firing = Vec<(Labels, Labels)>;

/// Runs vigil over the functions' cumulative counters, one evaluation a
/// minute, and returns the firing alerts per minute.
fn run_vigil(rules: &[Rule], functions: &[(&str, Traffic)], minutes: u32) -> Vec<Firing> {
    let mut engine = Engine::new(rules.iter().cloned()).unwrap();
    let mut source = MemorySource::new();
    (0..minutes)
        .map(|minute| {
            for (function, traffic) in functions {
                let (errors, oks) = totals(*traffic, minute);
                for (result, total) in [("error", errors), ("ok", oks)] {
                    source.set_counter(
                        "function_calls_total",
                        [("function", *function), ("result", result)],
                        total,
                    );
                }
            }
            engine.evaluate(at(minute), &source);
            let mut firing: Firing = engine
                .alerts(at(minute))
                .into_iter()
                .filter(|a| a.status == AlertStatus::Firing)
                .map(|a| {
                    let mut labels = a.labels;
                    labels.remove("alertname");
                    (labels, a.annotations)
                })
                .collect();
            firing.sort();
            firing
        })
        .collect()
}

/// Cumulative (errors, oks) of `traffic` at `minute`.
fn totals(traffic: Traffic, minute: u32) -> (f64, f64) {
    (1..=minute)
        .map(traffic)
        .fold((0.0, 0.0), |(e, o), (de, d_ok)| (e + de, o + d_ok))
}

fn flow_map(map: &Labels) -> String {
    let pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}: {}", serde_json::to_string(v).unwrap()))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// A promtool unit test expecting, at every minute, exactly the alerts
/// vigil had firing.
fn promtool_test(functions: &[(&str, Traffic)], firing: &[Firing]) -> String {
    let mut test = String::from(
        "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    for (function, traffic) in functions {
        for (result, pick) in [
            ("error", (|t: (f64, f64)| t.0) as fn((f64, f64)) -> f64),
            ("ok", |t| t.1),
        ] {
            let values: Vec<String> = (0..firing.len() as u32)
                .map(|m| pick(totals(*traffic, m)).to_string())
                .collect();
            let _ = writeln!(
                test,
                "      - series: 'function_calls_total{{function=\"{function}\",result=\"{result}\"}}'\n        values: '{}'",
                values.join(" ")
            );
        }
    }
    test.push_str("    alert_rule_test:\n");
    for (minute, alerts) in firing.iter().enumerate() {
        let _ = writeln!(
            test,
            "      - eval_time: {minute}m\n        alertname: ErrorBudgetBurn"
        );
        if alerts.is_empty() {
            test.push_str("        exp_alerts: []\n");
            continue;
        }
        test.push_str("        exp_alerts:\n");
        for (labels, annotations) in alerts {
            let _ = writeln!(
                test,
                "          - exp_labels: {}\n            exp_annotations: {}",
                flow_map(labels),
                flow_map(annotations)
            );
        }
    }
    test
}

/// Minutes at which `function`'s alert is firing.
fn firing_minutes(firing: &[Firing], function: &str) -> Vec<u32> {
    (0..firing.len() as u32)
        .filter(|&m| {
            firing[m as usize]
                .iter()
                .any(|(l, _)| l["function"] == function)
        })
        .collect()
}

#[test]
fn the_two_window_page_fires_and_resolves_with_prometheus() {
    // checkout: 10% errors from minute 70 to 89 (after a clean hour), none
    // otherwise. search: clean until minute 100, then 2% errors for good.
    // 1000 calls a minute each.
    let minutes = 150u32;
    let checkout: Traffic = |m| {
        if (70..90).contains(&m) {
            (100.0, 900.0)
        } else {
            (0.0, 1000.0)
        }
    };
    let search: Traffic = |m| {
        if m >= 100 {
            (20.0, 980.0)
        } else {
            (0.0, 1000.0)
        }
    };
    let functions = [("checkout", checkout), ("search", search)];
    let slo = SloBurnRate::new("api", 0.999)
        .windows([SRE_WORKBOOK_WINDOWS[0]])
        .by(["function"])
        .annotation("summary", "{{ $labels.function }} burns its error budget");
    let rules = slo.rules().unwrap();

    let firing = run_vigil(&rules, &functions, minutes);
    // checkout: the 1h ratio passes 1.44% once 9 burst minutes are in the
    // window (minute 78); the 5m ratio drops to 0 five minutes after the
    // last burst minute (minute 94), while the 1h ratio stays above it
    // through minute 140.
    let fired: Vec<u32> = (78..94).collect();
    assert_eq!(firing_minutes(&firing, "checkout"), fired);
    // search: the 5m ratio is above 1.44% from minute 103, the 1h ratio
    // only once 44 of its minutes have errors (minute 143).
    let fired: Vec<u32> = (143..minutes).collect();
    assert_eq!(firing_minutes(&firing, "search"), fired);
    let (labels, annotations) = &firing[80][0];
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["slo"], "api");
    assert_eq!(
        (
            labels["long_window"].as_str(),
            labels["short_window"].as_str()
        ),
        ("1h", "5m")
    );
    assert_eq!(annotations["summary"], "checkout burns its error budget");

    // Prometheus fires and resolves the exported rule at the same minutes:
    // promtool checks every minute against what vigil had firing.
    let export = slo.prometheus_rules().unwrap();
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
    let test = promtool_test(&functions, &firing);
    let (ok, output) = test_rules(&export.yaml, &test);
    assert!(
        ok,
        "promtool disagrees with vigil:\n{output}\n--- rules.yml\n{}\n--- test.yml\n{test}",
        export.yaml
    );

    // Without the short window, the rule would keep firing until fewer than
    // 9 burst minutes are left in the hour.
    let mut long_only = rules[0].clone();
    long_only.also = None;
    let firing = run_vigil(&[long_only], &functions, minutes);
    let fired: Vec<u32> = (78..141).collect();
    assert_eq!(firing_minutes(&firing, "checkout"), fired);
}
