//! vigil and Prometheus agree on when exported rules fire and resolve.
//!
//! Each scenario feeds the same per-minute series to vigil's [`Engine`]
//! (through a [`MemorySource`], evaluated every minute) and to
//! `promtool test rules` (as `input_series`, evaluation interval 1m). The
//! alerts vigil has firing at each minute become the `exp_alerts` of an
//! `alert_rule_test` at that `eval_time`, and promtool must agree at every
//! minute: firing and resolving times match exactly (the requirement is
//! within one evaluation interval).
//!
//! Rules with an `also` condition are exported as `(value > x) and on (..)
//! (also > y)` and agree the same way.
//!
//! Rates are compared once their window is full: for the first window of
//! a series vigil divides the increase by the time its samples span and
//! Prometheus by the whole window (the export says so in a comment).

#![cfg(feature = "prometheus")]

mod prometheus_common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vigil_alert::prometheus::{HistogramExport, PrometheusExporter};
use vigil_alert::rule::Expr;
use vigil_alert::{
    Aggregation, AlertStatus, Comparison, Engine, HistogramStat, Labels, MemorySource, Rule,
    Selector, Severity,
};

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
    /// A summary quantile: vigil reads it as a histogram statistic,
    /// Prometheus as the `quantile` series.
    Quantile(f64),
}

struct Input {
    name: &'static str,
    labels: Vec<(&'static str, &'static str)>,
    kind: Kind,
    values: Vec<f64>,
}

impl Input {
    fn new(name: &'static str, labels: &[(&'static str, &'static str)], kind: Kind) -> Self {
        Input {
            name,
            labels: labels.to_vec(),
            kind,
            values: Vec::new(),
        }
    }

    /// Values per minute from a function of the minute.
    fn values(mut self, minutes: usize, f: impl Fn(usize) -> f64) -> Self {
        self.values = (0..minutes).map(f).collect();
        self
    }

    /// The series as promtool writes it.
    fn series(&self) -> String {
        let mut labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        if let Kind::Quantile(q) = self.kind {
            labels.push(format!("quantile=\"{q}\""));
        }
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// Firing alerts at one minute: (labels without alertname, annotations).
type Firing = Vec<(Labels, Labels)>;

/// Runs vigil over the inputs and returns the firing alerts per minute.
fn run_vigil(rules: &[Rule], inputs: &[Input], minutes: usize) -> Vec<Firing> {
    let mut engine = Engine::new(rules.iter().cloned()).expect("rules build an engine");
    let mut source = MemorySource::new();
    (0..minutes)
        .map(|m| {
            for input in inputs {
                let labels = input.labels.iter().copied();
                let v = input.values[m];
                match input.kind {
                    Kind::Gauge => source.set_gauge(input.name, labels, v),
                    Kind::Counter => source.set_counter(input.name, labels, v),
                    Kind::Quantile(q) => {
                        source.set_histogram(input.name, labels, HistogramStat::Quantile(q), v)
                    }
                }
            }
            let now: SystemTime = UNIX_EPOCH + MINUTE * m as u32;
            engine.evaluate(now, &source);
            let mut firing: Firing = engine
                .alerts(now)
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

fn yaml_map(out: &mut String, indent: &str, key: &str, map: &Labels) {
    let _ = writeln!(out, "{indent}{key}:");
    for (k, v) in map {
        let _ = writeln!(out, "{indent}  {k}: {}", serde_json::to_string(v).unwrap());
    }
}

/// Writes the promtool unit test: one `alert_rule_test` per minute.
fn promtool_test(alertname: &str, inputs: &[Input], firing: &[Firing]) -> String {
    let mut out = String::new();
    out.push_str("rule_files:\n  - rules.yml\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n");
    for input in inputs {
        let values: Vec<String> = input.values.iter().map(|v| v.to_string()).collect();
        let _ = writeln!(out, "      - series: '{}'", input.series());
        let _ = writeln!(out, "        values: '{}'", values.join(" "));
    }
    out.push_str("    alert_rule_test:\n");
    for (m, alerts) in firing.iter().enumerate() {
        let _ = writeln!(
            out,
            "      - eval_time: {m}m\n        alertname: {alertname}"
        );
        if alerts.is_empty() {
            out.push_str("        exp_alerts: []\n");
            continue;
        }
        out.push_str("        exp_alerts:\n");
        for (labels, annotations) in alerts {
            let mut item = String::new();
            yaml_map(&mut item, "          ", "exp_labels", labels);
            if !annotations.is_empty() {
                yaml_map(&mut item, "          ", "exp_annotations", annotations);
            }
            // First line of the item carries the list dash.
            let item = item.replacen("          exp_labels", "          - exp_labels", 1);
            let item = item.replace("\n          ", "\n            ");
            out.push_str(&item);
        }
    }
    out
}

/// Checks that vigil and promtool agree on `rule` over `inputs`, and that
/// the scenario fires and resolves at least once (so it tests something).
fn agree(rule: Rule, inputs: Vec<Input>) -> Vec<Firing> {
    let minutes = inputs[0].values.len();
    let rules = [rule];
    let firing = run_vigil(&rules, &inputs, minutes);
    let fired = firing.iter().position(|f| !f.is_empty());
    let resolved = fired.and_then(|start| firing[start..].iter().position(Vec::is_empty));
    assert!(
        fired.is_some() && resolved.is_some(),
        "scenario for {} must fire and resolve in vigil; firing per minute: {firing:?}",
        rules[0].name
    );
    let export = PrometheusExporter::new()
        .histograms(HistogramExport::Summary)
        .export(&rules);
    assert!(
        export.warnings.is_empty(),
        "agreement rules must be exactly expressible: {:?}",
        export.warnings
    );
    let test = promtool_test(&rules[0].name, &inputs, &firing);
    let (ok, output) = prometheus_common::test_rules(&export.yaml, &test);
    assert!(
        ok,
        "promtool disagrees with vigil for {}:\n{output}\n--- rules.yml\n{}\n--- test.yml\n{test}",
        rules[0].name, export.yaml
    );
    firing
}

/// Minutes at which the alert set changes, with the number firing after.
fn changes(firing: &[Firing]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for m in 0..firing.len() {
        if m == 0 && !firing[0].is_empty() || m > 0 && firing[m] != firing[m - 1] {
            out.push((m, firing[m].len()));
        }
    }
    out
}

#[test]
fn gauge_threshold_with_for_fires_and_resolves_at_the_same_minutes() {
    let minutes = 30;
    let rule = Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .for_duration(3 * MINUTE)
        .label("team", "mail")
        .annotation("summary", "queue {{ $labels.queue }} is backed up")
        .build()
        .unwrap();
    let inputs = vec![
        // Above 100 from minute 5 to 14, with a dip at 8 that resets `for`.
        Input::new("queue_depth", &[("queue", "email")], Kind::Gauge).values(minutes, |m| {
            if (5..15).contains(&m) && m != 8 {
                150.0
            } else {
                20.0
            }
        }),
        // Above from 20 on: fires at 23, stays.
        Input::new("queue_depth", &[("queue", "sms")], Kind::Gauge)
            .values(minutes, |m| if m >= 20 { 300.0 } else { 10.0 }),
    ];
    let firing = agree(rule, inputs);
    // email: pending 9..11, fires at 12 (3m after 9), resolves at 15; sms fires at 23.
    assert_eq!(changes(&firing), [(12, 1), (15, 0), (23, 1)]);
    let (labels, annotations) = &firing[23][0];
    assert_eq!(labels["severity"], "high");
    assert_eq!(labels["team"], "mail");
    assert_eq!(annotations["summary"], "queue sms is backed up");
}

#[test]
fn counter_rate_with_for_fires_and_resolves_at_the_same_minutes() {
    let minutes = 45;
    // 0.5/s, then 3/s from minute 10 to 20, then 0.5/s again; the process
    // had served a million requests before the data starts.
    let per_minute = |m: usize| if (10..20).contains(&m) { 180.0 } else { 30.0 };
    let total = move |m: usize| 1e6 + (1..=m).map(per_minute).sum::<f64>();
    let rule = Rule::builder("RequestSurge")
        .rate("http_requests_total", 5 * MINUTE)
        .threshold(Severity::Medium, Comparison::Greater, 1.0)
        .for_duration(2 * MINUTE)
        .build()
        .unwrap();
    let inputs = vec![
        Input::new("http_requests_total", &[("route", "/api")], Kind::Counter)
            .values(minutes, total),
    ];
    let firing = agree(rule, inputs);
    // The 5m rate passes 1/s once 2 of its 5 minutes run at 3/s (minute 11)
    // and fires 2m later; it is back to 1/s when one surge minute is left in
    // the window (minute 23).
    assert_eq!(changes(&firing), [(13, 1), (23, 0)]);
}

#[test]
fn keep_firing_for_holds_the_alert_the_same_time() {
    let minutes = 25;
    let rule = Rule::builder("CpuSpike")
        .gauge("system_cpu_usage_ratio")
        .threshold(Severity::Critical, Comparison::Greater, 0.9)
        .keep_firing_for(4 * MINUTE)
        .build()
        .unwrap();
    let inputs = vec![
        Input::new("system_cpu_usage_ratio", &[("host", "a")], Kind::Gauge).values(minutes, |m| {
            match m {
                5..=6 => 0.95, // fires at 5, recovering from 7, resolves at 11
                9 => 0.97,     // ...but breaches again at 9: keeps firing, resolves at 14
                _ => 0.3,
            }
        }),
    ];
    let firing = agree(rule, inputs);
    assert_eq!(changes(&firing), [(5, 1), (14, 0)]);
}

#[test]
fn summed_error_ratio_agrees() {
    let minutes = 40;
    let rule = Rule::builder("HighErrorRate")
        .error_ratio("function_calls_total", "result", "error", 5 * MINUTE)
        .aggregate(Aggregation::Sum)
        .by(["function"])
        .threshold(Severity::Critical, Comparison::Greater, 0.05)
        .for_duration(MINUTE)
        .build()
        .unwrap();
    let counter = |labels: &[(&'static str, &'static str)], per_minute: fn(usize) -> f64| {
        Input::new("function_calls_total", labels, Kind::Counter)
            .values(minutes, move |m| (1..=m).map(per_minute).sum::<f64>())
    };
    let inputs = vec![
        counter(&[("function", "checkout"), ("result", "ok")], |_| 100.0),
        counter(&[("function", "checkout"), ("result", "error")], |m| {
            if (10..18).contains(&m) { 12.0 } else { 1.0 }
        }),
        counter(&[("function", "search"), ("result", "ok")], |_| 200.0),
        counter(&[("function", "search"), ("result", "error")], |_| 1.0),
    ];
    let firing = agree(rule, inputs);
    assert!(
        firing
            .iter()
            .flatten()
            .all(|(l, _)| l["function"] == "checkout")
    );
}

#[test]
fn ratio_without_numerator_series_reads_zero_in_both() {
    // Cache "b" has misses but no hit series at all: vigil reads a hit
    // ratio of 0, and the export's `(num or den * 0) / den` does too.
    let minutes = 30;
    let rule = Rule::builder("LowCacheHitRatio")
        .ratio(
            Selector::new("cache_requests_total")
                .matcher(vigil_alert::Matcher::equal("result", "hit")),
            Selector::new("cache_requests_total"),
            5 * MINUTE,
        )
        .ignoring(["result"])
        .threshold(Severity::Medium, Comparison::Less, 0.5)
        .for_duration(2 * MINUTE)
        .build()
        .unwrap();
    let counter = |labels: &[(&'static str, &'static str)], per_minute: fn(usize) -> f64| {
        Input::new("cache_requests_total", labels, Kind::Counter)
            .values(minutes, move |m| (1..=m).map(per_minute).sum::<f64>())
    };
    let inputs = vec![
        counter(&[("cache", "a"), ("result", "hit")], |m| {
            if (8..16).contains(&m) { 5.0 } else { 90.0 }
        }),
        counter(&[("cache", "a"), ("result", "miss")], |_| 10.0),
        counter(&[("cache", "b"), ("result", "miss")], |m| {
            if m < 20 { 10.0 } else { 0.0 }
        }),
    ];
    let firing = agree(rule, inputs);
    assert!(firing.iter().flatten().any(|(l, _)| l["cache"] == "b"));
    assert!(firing.iter().flatten().any(|(l, _)| l["cache"] == "a"));
}

#[test]
fn summary_quantile_agrees_with_the_histogram_statistic() {
    let minutes = 20;
    let rule = Rule::builder("HighLatency")
        .histogram_quantile("http_request_duration_seconds", 0.95, 5 * MINUTE)
        .threshold(Severity::High, Comparison::Greater, 0.2)
        .for_duration(2 * MINUTE)
        .build()
        .unwrap();
    let inputs = vec![
        Input::new(
            "http_request_duration_seconds",
            &[("function", "search"), ("module", "api")],
            Kind::Quantile(0.95),
        )
        .values(minutes, |m| if (4..12).contains(&m) { 0.35 } else { 0.05 }),
    ];
    let firing = agree(rule, inputs);
    assert_eq!(changes(&firing), [(6, 1), (12, 0)]);
    let mut expected = BTreeMap::new();
    expected.insert("function".to_owned(), "search".to_owned());
    expected.insert("module".to_owned(), "api".to_owned());
    expected.insert("severity".to_owned(), "high".to_owned());
    assert_eq!(firing[6][0].0, expected);
}

#[test]
fn per_series_also_condition_agrees_and_a_missing_also_series_never_fires() {
    let minutes = 30;
    let rule = Rule::builder("QueueStuck")
        .gauge("queue_depth")
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .also(
            Expr::Gauge {
                metric: "queue_consumers".into(),
                matchers: vec![],
            },
            Comparison::Less,
            1.0,
        )
        .for_duration(2 * MINUTE)
        .annotation("summary", "queue {{ $labels.queue }} has no consumers")
        .build()
        .unwrap();
    let inputs = vec![
        // email: backed up from 5 to 24, without consumers from 10 to 17:
        // pending at 10, fires at 12, resolves at 18.
        Input::new("queue_depth", &[("queue", "email")], Kind::Gauge)
            .values(minutes, |m| if (5..25).contains(&m) { 150.0 } else { 0.0 }),
        Input::new("queue_consumers", &[("queue", "email")], Kind::Gauge)
            .values(minutes, |m| if (10..18).contains(&m) { 0.0 } else { 2.0 }),
        // sms: backed up, but consumed: never.
        Input::new("queue_depth", &[("queue", "sms")], Kind::Gauge).values(minutes, |_| 150.0),
        Input::new("queue_consumers", &[("queue", "sms")], Kind::Gauge).values(minutes, |_| 3.0),
        // push: backed up, no consumer series at all: the condition cannot
        // hold (vigil: no value; Prometheus: nothing to `and` with).
        Input::new("queue_depth", &[("queue", "push")], Kind::Gauge).values(minutes, |_| 500.0),
    ];
    let firing = agree(rule, inputs);
    assert_eq!(changes(&firing), [(12, 1), (18, 0)]);
    assert_eq!(firing[12][0].0["queue"], "email");
}

#[test]
fn aggregated_also_condition_pairs_by_the_by_labels() {
    let minutes = 25;
    let rule = Rule::builder("Saturated")
        .gauge("inflight_requests")
        .aggregate(Aggregation::Sum)
        .by(["service"])
        .threshold(Severity::Critical, Comparison::Greater, 100.0)
        .also(
            Expr::Gauge {
                metric: "queued_requests".into(),
                matchers: vec![],
            },
            Comparison::Greater,
            10.0,
        )
        .build()
        .unwrap();
    let gauge = |name, labels: &[(&'static str, &'static str)], f: fn(usize) -> f64| {
        Input::new(name, labels, Kind::Gauge).values(minutes, f)
    };
    let inputs = vec![
        // api: 120 in flight over two hosts from 5 to 19; host a queues
        // from 8 to 13: fires at 8, resolves at 14.
        gauge(
            "inflight_requests",
            &[("service", "api"), ("host", "a")],
            |m| {
                if (5..20).contains(&m) { 60.0 } else { 10.0 }
            },
        ),
        gauge(
            "inflight_requests",
            &[("service", "api"), ("host", "b")],
            |m| {
                if (5..20).contains(&m) { 60.0 } else { 10.0 }
            },
        ),
        gauge(
            "queued_requests",
            &[("service", "api"), ("host", "a")],
            |m| {
                if (8..14).contains(&m) { 20.0 } else { 0.0 }
            },
        ),
        gauge(
            "queued_requests",
            &[("service", "api"), ("host", "b")],
            |_| 0.0,
        ),
        // web: busy, never queues; db: queues, never busy.
        gauge(
            "inflight_requests",
            &[("service", "web"), ("host", "c")],
            |_| 500.0,
        ),
        gauge(
            "queued_requests",
            &[("service", "web"), ("host", "c")],
            |_| 0.0,
        ),
        gauge(
            "inflight_requests",
            &[("service", "db"), ("host", "d")],
            |_| 5.0,
        ),
        gauge(
            "queued_requests",
            &[("service", "db"), ("host", "d")],
            |_| 50.0,
        ),
    ];
    let firing = agree(rule, inputs);
    assert_eq!(changes(&firing), [(8, 1), (14, 0)]);
    assert_eq!(firing[8][0].0["service"], "api");
}
