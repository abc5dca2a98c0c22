//! autometrics' published dashboards and SLO rules on a vigil service.
//!
//! A real Prometheus loads autometrics' Sloth-generated
//! `autometrics.rules.yml` and scrapes a service whose functions have
//! autometrics objectives. Every query of autometrics' three published
//! Grafana dashboards (template variables resolved as Grafana resolves
//! them) must return data, and the SLO recording rules must give the error
//! ratio and the share of calls over the latency threshold that the
//! service produced. The rules and dashboards are vendored unchanged in
//! `tests/autometrics/` with their licence.

#![cfg(feature = "listener")]

mod servers;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use vigil::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use vigil::{CallSite, Monitor, Outcome, Timer};

/// Succeeds 99.9% of the time, 99% of calls within 250 ms.
const API_SLO: Objective = Objective::new("api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);

/// 95% of runs within one second (a whole-second threshold: `le="1"`).
const BATCH_SLO: Objective =
    Objective::new("batch").latency(ObjectiveLatency::Ms1000, ObjectivePercentile::P95);

static API: CallSite = CallSite::new("api_handler", module_path!()).objective(&API_SLO);
static LOOKUP: CallSite = CallSite::new("lookup_user", module_path!());
static BATCH: CallSite = CallSite::new("nightly_batch", module_path!())
    .objective(&BATCH_SLO)
    .track_concurrency();

/// Rounds per burst of load; every ratio below is exact per burst.
const BURST: u64 = 50;

/// Per burst: 1 error in 50 API calls (2%), 5 of 50 over 250 ms (10%), 3
/// of 10 batch runs over one second (30%).
const API_ERROR_RATIO: f64 = 1.0 / 50.0;
const API_SLOW_RATIO: f64 = 5.0 / 50.0;
const BATCH_SLOW_RATIO: f64 = 3.0 / 10.0;

/// What the service did, counted as it did it.
#[derive(Default)]
struct Produced {
    api_calls: AtomicU64,
    api_errors: AtomicU64,
    api_slow: AtomicU64,
    batch_runs: AtomicU64,
    batch_slow: AtomicU64,
}

impl Produced {
    fn ratio(part: &AtomicU64, whole: &AtomicU64) -> f64 {
        part.load(Ordering::Relaxed) as f64 / whole.load(Ordering::Relaxed) as f64
    }
}

/// One burst of calls, timed on a mock clock so every duration is exact.
fn burst(mock: &quanta::Mock, produced: &Produced) {
    for i in 0..BURST {
        let api = Timer::start(&API);
        {
            // Called from `api_handler`: `caller_function="api_handler"`.
            let lookup = Timer::start(&LOOKUP);
            mock.increment(Duration::from_millis(1));
            lookup.ok();
        }
        let slow = i % 10 == 3;
        mock.increment(Duration::from_millis(if slow { 399 } else { 19 }));
        let error = i % 50 == 7;
        api.finish(if error { Outcome::Error } else { Outcome::Ok });
        produced.api_calls.fetch_add(1, Ordering::Relaxed);
        produced
            .api_errors
            .fetch_add(u64::from(error), Ordering::Relaxed);
        produced
            .api_slow
            .fetch_add(u64::from(slow), Ordering::Relaxed);
        if i % 5 == 0 {
            let batch = Timer::start(&BATCH);
            let slow = (i / 5) % 4 == 0;
            mock.increment(Duration::from_millis(if slow { 1_500 } else { 300 }));
            batch.ok();
            produced.batch_runs.fetch_add(1, Ordering::Relaxed);
            produced
                .batch_slow
                .fetch_add(u64::from(slow), Ordering::Relaxed);
        }
    }
}

/// The build and service name are process-wide and fixed on first read:
/// install this crate's before anything is timed.
fn install_build_info() {
    let _ = vigil::build_info!().install();
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/autometrics")
}

const DASHBOARDS: [&str; 3] = [
    "autometrics-overview.json",
    "autometrics-function-explorer.json",
    "autometrics-service-level-objectives-slos.json",
];

/// A dashboard's panel queries and its template variables, in order.
struct Dashboard {
    title: String,
    exprs: Vec<(String, String)>,
    variables: Vec<Value>,
}

fn load_dashboard(file: &str) -> Dashboard {
    let path = data_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text).expect("a dashboard is JSON");
    fn walk(value: &Value, panel: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                let panel = map
                    .get("title")
                    .and_then(Value::as_str)
                    .filter(|_| map.contains_key("targets"))
                    .unwrap_or(panel);
                if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                    out.push((panel.to_owned(), expr.to_owned()));
                }
                for (key, child) in map {
                    if key != "templating" {
                        walk(child, panel, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, panel, out)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    walk(&json, "", &mut exprs);
    Dashboard {
        title: json["title"].as_str().unwrap_or(file).to_owned(),
        exprs,
        variables: json["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    }
}

/// Grafana's built-in range variables for a dashboard showing the last
/// minute, with Prometheus scraping every second (`$__rate_interval` is at
/// least four scrape intervals).
const BUILTINS: [(&str, &str); 2] = [("__rate_interval", "10s"), ("__range", "1m")];

/// `text` with `$name` and `${name}` replaced by each variable's value
/// (several values as a regex alternation, as Grafana formats multi-value
/// variables for Prometheus), longest names first so `$function` does not
/// eat `$functions_top_request_rate`.
fn substitute(text: &str, values: &BTreeMap<String, Vec<String>>) -> String {
    let mut all: Vec<(String, String)> = BUILTINS
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    for (name, values) in values {
        let value = match values.as_slice() {
            [one] => one.clone(),
            many => format!("({})", many.join("|")),
        };
        all.push((name.clone(), value));
    }
    all.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut out = text.to_owned();
    for (name, value) in &all {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    for (name, value) in &all {
        out = out.replace(&format!("${name}"), value);
    }
    out
}

/// `GET path` on Prometheus's API: `data`, or a panic with the body.
fn api(prometheus: &servers::Prometheus, path: &str) -> Value {
    let (status, body) = servers::http_get(prometheus.address, path).expect("Prometheus answers");
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(
        status == 200 && json["status"] == "success",
        "GET {path}: {status} {body}"
    );
    json["data"].clone()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query's result vector; a query Prometheus rejects panics
/// with its error.
fn query(prometheus: &servers::Prometheus, promql: &str) -> Vec<Value> {
    api(
        prometheus,
        &format!("/api/v1/query?query={}", encode(promql)),
    )["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The values of a Grafana Prometheus template variable, resolved as
/// Grafana does: `label_values(selector, label)` through the label values
/// API, `query_result(expr)` by running `expr` and applying the variable's
/// regex (here always `/function="(\w+)"/`) to each series, a textbox as
/// its text.
fn resolve_variable(
    prometheus: &servers::Prometheus,
    variable: &Value,
    values: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let query_of = |v: &Value| match &v["query"] {
        Value::String(text) => text.clone(),
        other => other["query"].as_str().unwrap_or_default().to_owned(),
    };
    let query_text = substitute(query_of(variable).trim(), values);
    match variable["type"].as_str() {
        Some("textbox") => vec![query_text],
        Some("query") => {
            if let Some(args) = query_text
                .strip_prefix("label_values(")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                let (selector, label) = args
                    .rsplit_once(',')
                    .expect("label_values(selector, label)");
                let data = api(
                    prometheus,
                    &format!(
                        "/api/v1/label/{}/values?match[]={}",
                        label.trim(),
                        encode(selector.trim())
                    ),
                );
                data.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            } else if let Some(expr) = query_text
                .strip_prefix("query_result(")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                assert_eq!(variable["regex"], r#"/function="(\w+)"/"#);
                let functions: BTreeSet<String> = query(prometheus, expr)
                    .iter()
                    .filter_map(|series| series["metric"]["function"].as_str().map(str::to_owned))
                    .collect();
                functions.into_iter().collect()
            } else {
                panic!("unknown variable query {query_text}")
            }
        }
        other => panic!("unknown variable type {other:?}"),
    }
}

#[test]
fn autometrics_dashboards_and_slo_rules_work_on_a_vigil_service() {
    install_build_info();
    let monitor = Monitor::builder().listen("127.0.0.1:0").build().unwrap();
    let target = monitor.listen_address().expect("a listener");

    // The service: bursts of calls ten times a second until the test ends.
    let produced = Arc::new(Produced::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (recorder, produced, stop) = (monitor.recorder(), produced.clone(), stop.clone());
        std::thread::spawn(move || {
            let (clock, mock) = quanta::Clock::mock();
            quanta::with_clock(&clock, || {
                vigil::with_local_recorder(&recorder, || {
                    while !stop.load(Ordering::Relaxed) {
                        burst(&mock, &produced);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
            });
        })
    };
    let _stop_load = StopOnDrop(stop.clone());

    let rules = data_dir().join("autometrics.rules.yml");
    let prometheus = servers::Prometheus::start_with_rules(&[target], &[], &[&rules]);
    prometheus.wait_for("scraping the service", |p| {
        p.query_one(r#"up{job="vigil"}"#) == Some(1.0)
    });
    // Enough scrapes for every rate, and the recording rules evaluated on
    // them.
    prometheus.wait_for("holding eight scrapes", |p| {
        p.query_one(r#"count_over_time(up{job="vigil"}[1m])"#)
            .is_some_and(|n| n >= 8.0)
    });
    prometheus.wait_for("evaluating the SLO rules", |p| {
        ["success-rate-99_9", "latency-99", "latency-95"]
            .iter()
            .all(|slo| {
                p.query(&format!(
                    r#"slo:sli_error:ratio_rate5m{{sloth_service="autometrics",sloth_slo="{slo}"}}"#
                ))
                .is_some_and(|result| !result.is_empty())
            })
    });

    // The SLO recording rules: the service's error ratio and share of
    // calls over each latency threshold.
    let service = vigil::service_name();
    let produced_error = Produced::ratio(&produced.api_errors, &produced.api_calls);
    let produced_api_slow = Produced::ratio(&produced.api_slow, &produced.api_calls);
    let produced_batch_slow = Produced::ratio(&produced.batch_slow, &produced.batch_runs);
    assert!((produced_error - API_ERROR_RATIO).abs() < 0.002);
    assert!((produced_api_slow - API_SLOW_RATIO).abs() < 0.005);
    assert!((produced_batch_slow - BATCH_SLOW_RATIO).abs() < 0.02);
    for (slo, objective, percentile, produced) in [
        ("success-rate-99_9", "api", "99.9", produced_error),
        ("latency-99", "api", "99", produced_api_slow),
        ("latency-95", "batch", "95", produced_batch_slow),
    ] {
        let result = query(
            &prometheus,
            &format!(
                r#"slo:sli_error:ratio_rate5m{{sloth_service="autometrics",sloth_slo="{slo}"}}"#
            ),
        );
        assert_eq!(result.len(), 1, "{slo}: {result:?}");
        let metric = &result[0]["metric"];
        assert_eq!(metric["objective_name"], objective, "{slo}: {metric}");
        assert_eq!(
            metric["objective_percentile"], percentile,
            "{slo}: {metric}"
        );
        assert_eq!(metric["service_name"], service, "{slo}: {metric}");
        let ratio: f64 = result[0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("a ratio");
        eprintln!("{slo}: rules {ratio:.5}, service produced {produced:.5}");
        assert!(
            (ratio - produced).abs() <= produced * 0.1,
            "{slo}: the rules give {ratio}, the service produced {produced}"
        );
    }
    // SLOs no function has stay dormant.
    for slo in [
        "success-rate-90",
        "success-rate-99",
        "latency-90",
        "latency-99_9",
    ] {
        let result = query(
            &prometheus,
            &format!(r#"slo:sli_error:ratio_rate5m{{sloth_slo="{slo}"}}"#),
        );
        assert!(result.is_empty(), "{slo}: {result:?}");
    }

    // Every query of the three dashboards, variables resolved first.
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in DASHBOARDS {
        let dashboard = load_dashboard(file);
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for variable in in_dependency_order(&dashboard.variables) {
            let name = variable["name"]
                .as_str()
                .expect("a named variable")
                .to_owned();
            let mut resolved = resolve_variable(&prometheus, variable, &values);
            if resolved.is_empty() && name == "latency_objective" {
                // `label_values(function_calls_duration_count, objective_name)`
                // names the histogram without its unit, as autometrics
                // libraries before the `_seconds` suffix did; no current
                // one (autometrics-rs 3 included) has that series, so the
                // variable is empty for them too. Every other query of the
                // dashboard matches both spellings; resolve this one as they do.
                let fixed = variable_with_query(
                    variable,
                    r#"label_values({__name__=~"function_calls_duration(_seconds)?_count"}, objective_name)"#,
                );
                resolved = resolve_variable(&prometheus, &fixed, &values);
                eprintln!(
                    "{}: ${name} resolved by the unit-agnostic selector: {resolved:?}",
                    dashboard.title
                );
            }
            if resolved.is_empty() {
                failures.push(format!(
                    "{}: variable ${name} has no values",
                    dashboard.title
                ));
            }
            if variable["multi"] != true {
                // A single-value variable shows its first option.
                resolved.truncate(1);
            }
            values.insert(name, resolved);
        }
        eprintln!("{}: variables {values:?}", dashboard.title);
        for (panel, expr) in &dashboard.exprs {
            let promql = substitute(expr, &values);
            let result = query(&prometheus, &promql);
            ran += 1;
            let first = result.first().map(|series| series["value"][1].clone());
            eprintln!(
                "{} / {panel}: {} series, first {first:?}",
                dashboard.title,
                result.len()
            );
            if result.is_empty() {
                failures.push(format!(
                    "{} / {panel}: no data from\n{promql}",
                    dashboard.title
                ));
            }
            // The SLO panels show what the service did.
            let expected = match panel.as_str() {
                "Success Rate" | "30-day Success Rate" => Some(1.0 - produced_error),
                "Error Rate by Function" => Some(produced_error),
                p if p.starts_with("% of requests under")
                    || p.starts_with("30-day % of requests under") =>
                {
                    Some(1.0 - produced_api_slow)
                }
                p if p.starts_with("% of requests exceeding") => Some(produced_api_slow),
                _ => None,
            };
            if let (Some(expected), Some(shown)) = (
                expected,
                first
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(|v| v.parse::<f64>().ok()),
            ) && (shown - expected).abs() > expected * 0.1
            {
                failures.push(format!(
                    "{} / {panel}: shows {shown}, the service produced {expected}",
                    dashboard.title
                ));
            }
        }
    }
    assert_eq!(ran, 11, "the three dashboards hold 11 panel queries");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // The SLO dashboard's latency panel agrees with the service too.
    let within = query(
        &prometheus,
        r#"sum(rate({__name__=~"function_calls_duration(_seconds)?_bucket", objective_name="api", le="0.25"}[1m]))
           / sum(rate({__name__=~"function_calls_duration(_seconds)?_count", objective_name="api"}[1m]))"#,
    );
    let within: f64 = within[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        (within - (1.0 - produced_api_slow)).abs() < 0.01,
        "{within} of calls within 250 ms, the service produced {}",
        1.0 - produced_api_slow
    );

    stop.store(true, Ordering::Relaxed);
    load.join().expect("the load thread finishes");
}

/// The variables in an order where each comes after those its query uses,
/// as Grafana refreshes them.
fn in_dependency_order(variables: &[Value]) -> Vec<&Value> {
    let name = |v: &Value| v["name"].as_str().unwrap_or_default().to_owned();
    let mut pending: Vec<&Value> = variables.iter().collect();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|v| {
                let query = v["query"].to_string();
                pending.iter().all(|other| {
                    name(other) == name(v) || !query.contains(&format!("${}", name(other)))
                })
            })
            .expect("no cycle between the dashboard's variables");
        ordered.push(pending.remove(ready));
    }
    ordered
}

/// `variable` with another query.
fn variable_with_query(variable: &Value, query: &str) -> Value {
    let mut fixed = variable.clone();
    fixed["query"] = Value::String(query.to_owned());
    fixed
}

/// Stops the load thread when the test ends, however it ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn the_exposition_has_autometrics_buckets_objective_labels_and_build_info() {
    install_build_info();
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    let (clock, mock) = quanta::Clock::mock();
    quanta::with_clock(&clock, || {
        vigil::with_local_recorder(&monitor.recorder(), || {
            for ms in [1, 249, 250, 251, 999, 1_000, 1_001, 12_000] {
                let timer = Timer::start(&BATCH);
                mock.increment(Duration::from_millis(ms));
                timer.ok();
            }
            Timer::start(&API).error();
        });
    });
    let text = monitor.render();
    let service = vigil::service_name();
    assert!(
        text.contains("# TYPE function_calls_duration_seconds histogram"),
        "{text}"
    );
    let prefix = format!(
        r#"function_calls_duration_seconds_bucket{{function="nightly_batch",module="{}",service_name="{service}",objective_name="batch",objective_percentile="95",objective_latency_threshold="1""#,
        module_path!()
    );
    // Every autometrics threshold is a bound, written as the threshold
    // label writes it; counts are cumulative from the HDR data.
    let expected = [
        ("0.005", 1),
        ("0.01", 1),
        ("0.025", 1),
        ("0.05", 1),
        ("0.075", 1),
        ("0.1", 1),
        ("0.25", 3),
        ("0.5", 4),
        ("0.75", 4),
        ("1", 6),
        ("2.5", 7),
        ("5", 7),
        ("7.5", 7),
        ("10", 7),
        ("+Inf", 8),
    ];
    let buckets: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .collect();
    assert_eq!(buckets.len(), expected.len(), "{text}");
    for (line, (le, count)) in buckets.iter().zip(expected) {
        assert_eq!(*line, format!(r#"{prefix},le="{le}"}} {count}"#));
    }
    assert!(
        text.contains(&format!(
            r#"function_calls_total{{function="api_handler",module="{}",service_name="{service}",caller_function="",caller_module="",result="error",objective_name="api",objective_percentile="99.9"}} 1"#,
            module_path!()
        )),
        "{text}"
    );
    // No summary quantiles for the function histogram.
    assert!(!text.contains("function_calls_duration_seconds{"), "{text}");
    // One build_info series, with this crate's build.
    let build: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("build_info{"))
        .collect();
    assert_eq!(
        build,
        [format!(
            r#"build_info{{commit="{}",version="{}",branch="{}",service_name="{service}",repository_url="{}",repository_provider="{}",autometrics_version="1.0.0"}} 1"#,
            option_env!("AUTOMETRICS_COMMIT")
                .or(option_env!("VERGEN_GIT_SHA"))
                .unwrap_or_default(),
            option_env!("AUTOMETRICS_VERSION").unwrap_or(env!("CARGO_PKG_VERSION")),
            option_env!("AUTOMETRICS_BRANCH")
                .or(option_env!("VERGEN_GIT_BRANCH"))
                .unwrap_or_default(),
            vigil::build_info().repository_url(),
            vigil::build_info().repository_provider(),
        )
        .as_str()]
    );
    if let Err(findings) = servers::promtool_check_metrics(&text) {
        panic!("promtool check metrics reported:\n{findings}\non:\n{text}");
    }
}
