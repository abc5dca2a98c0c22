//! The Grafana dashboard in `docs/grafana/vigil.json`, generated from
//! vigil's metric names.
//!
//! `dashboard_is_up_to_date` builds the dashboard and compares it with the
//! checked-in file; `VIGIL_BLESS_GRAFANA=1` rewrites the file instead.
//! `every_query_is_valid_promql` writes each panel query into a rule file (one recording rule per query, Grafana's
//! variables replaced by what Grafana sends) and runs Debian's
//! `promtool check rules` on it.

#![cfg(all(
    feature = "axum",
    feature = "cache",
    feature = "alerts",
    feature = "system-metrics"
))]

#[path = "../../vigil-alert/tests/prometheus_common.rs"]
mod prometheus_common;

use std::path::PathBuf;

use serde_json::{Value, json};
use vigil::alert::engine::ALERTS_FIRING;
use vigil::cache::metric_names as cache;
use vigil::service::system::{CPU_USAGE, MEMORY_USAGE};
use vigil::timing::{CALLS_DURATION, CALLS_TOTAL};
use vigil_service::http::{REQUEST_DURATION_SECONDS, REQUESTS_TOTAL as HTTP_REQUESTS};

/// `system_disk_usage_ratio{mount}` (named in `docs/metrics.md`).
const DISK_USAGE: &str = "system_disk_usage_ratio";
/// The process collectors' resident set size.
const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";

/// The selector every query starts from: the service (Prometheus `job`)
/// and instances chosen in the dashboard's variables.
const SCOPE: &str = r#"job=~"$service", instance=~"$instance""#;

/// Panel width and height in Grafana's grid (24 columns).
const WIDTH: u64 = 12;
const HEIGHT: u64 = 8;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana/vigil.json")
}

/// `metric{scope, extra}`.
fn select(metric: &str, extra: &str) -> String {
    if extra.is_empty() {
        format!("{metric}{{{SCOPE}}}")
    } else {
        format!("{metric}{{{SCOPE}, {extra}}}")
    }
}

/// `sum by (by) (rate(metric{..}[$__rate_interval]))`.
fn rate(metric: &str, extra: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (rate({}[$__rate_interval]))",
        select(metric, extra)
    )
}

/// The share of `metric`'s rate with `extra`, per `by`.
fn ratio(metric: &str, extra: &str, by: &str) -> String {
    format!("{}\n/\n{}", rate(metric, extra, by), rate(metric, "", by))
}

/// Quantile `q` per `by` of `histogram`: first from its native histogram
/// (Prometheus started with `--enable-feature=native-histograms` scraping
/// protobuf), then from its classic `_bucket` series (text scrapes). Only
/// one of the two has data for a given scrape setup.
fn quantiles(histogram: &str, q: f64, by: &str, legend: &str) -> Vec<(String, String)> {
    vec![
        (
            format!("histogram_quantile({q}, {})", rate(histogram, "", by)),
            legend.to_owned(),
        ),
        (
            format!(
                "histogram_quantile({q}, {})",
                rate(&format!("{histogram}_bucket"), "", &format!("le, {by}"))
            ),
            format!("{legend} (classic)"),
        ),
    ]
}

/// One time-series panel with its queries `(expr, legend)`.
fn panel(title: &str, description: &str, unit: &str, queries: Vec<(String, String)>) -> Value {
    let targets: Vec<Value> = queries
        .into_iter()
        .zip('A'..)
        .map(|((expr, legend), id)| {
            json!({
                "datasource": { "type": "prometheus", "uid": "${datasource}" },
                "expr": expr,
                "legendFormat": legend,
                "refId": id.to_string(),
            })
        })
        .collect();
    json!({
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "fieldConfig": { "defaults": { "unit": unit }, "overrides": [] },
        "options": {
            "legend": { "displayMode": "list", "placement": "bottom", "showLegend": true },
            "tooltip": { "mode": "multi", "sort": "desc" },
        },
        "targets": targets,
    })
}

fn query(expr: String, legend: &str) -> Vec<(String, String)> {
    vec![(expr, legend.to_owned())]
}

fn panels() -> Vec<Value> {
    let percentiles = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")].map(|(q, name)| {
        panel(
            &format!("Latency {name} per function"),
            &format!(
                "{name} of {CALLS_DURATION} per function over the rate interval, from the \
                 native histogram or else the classic buckets"
            ),
            "s",
            quantiles(
                CALLS_DURATION,
                q,
                "function",
                &format!("{{{{function}}}} {name}"),
            ),
        )
    });
    let mut panels = vec![
        panel(
            "Request rate per function",
            &format!("Completed calls per second ({CALLS_TOTAL})"),
            "reqps",
            query(rate(CALLS_TOTAL, "", "function"), "{{function}}"),
        ),
        panel(
            "Error ratio per function",
            &format!("Share of calls with result=\"error\" ({CALLS_TOTAL})"),
            "percentunit",
            query(
                ratio(CALLS_TOTAL, r#"result="error""#, "function"),
                "{{function}}",
            ),
        ),
    ];
    panels.extend(percentiles);
    panels.extend([
        panel(
            "Calls by caller",
            &format!("Calls per second per caller and callee ({CALLS_TOTAL})"),
            "reqps",
            query(
                rate(CALLS_TOTAL, "", "caller_function, function"),
                "{{caller_function}} → {{function}}",
            ),
        ),
        panel(
            "Cache hit ratio per cache",
            &format!(
                "Hits over reads per named cache ({})",
                cache::REQUESTS_TOTAL
            ),
            "percentunit",
            query(
                ratio(cache::REQUESTS_TOTAL, r#"result="hit""#, "cache"),
                "{{cache}}",
            ),
        ),
        panel(
            "Alerts firing by severity",
            &format!("Alerting instances per severity ({ALERTS_FIRING})"),
            "short",
            query(
                format!("sum by (severity) ({})", select(ALERTS_FIRING, "")),
                "{{severity}}",
            ),
        ),
        panel(
            "CPU, memory and disk",
            "Share of all CPUs busy, of memory in use and of each mounted file system's space",
            "percentunit",
            vec![
                (select(CPU_USAGE, ""), "CPU {{instance}}".to_owned()),
                (select(MEMORY_USAGE, ""), "memory {{instance}}".to_owned()),
                (
                    select(DISK_USAGE, ""),
                    "disk {{mount}} {{instance}}".to_owned(),
                ),
            ],
        ),
        panel(
            "Process resident memory",
            &format!("Resident set size of the process ({RESIDENT_MEMORY})"),
            "bytes",
            query(select(RESIDENT_MEMORY, ""), "{{instance}}"),
        ),
        panel(
            "HTTP requests by route and status",
            &format!("Requests answered per second ({HTTP_REQUESTS})"),
            "reqps",
            query(
                rate(HTTP_REQUESTS, "", "route, status"),
                "{{route}} {{status}}",
            ),
        ),
        panel(
            "HTTP p95 per route",
            &format!(
                "p95 of {REQUEST_DURATION_SECONDS} per route, from the native histogram or \
                 else the classic buckets (MonitorBuilder::buckets)"
            ),
            "s",
            quantiles(REQUEST_DURATION_SECONDS, 0.95, "route", "{{route}} p95"),
        ),
    ]);
    for (index, panel) in panels.iter_mut().enumerate() {
        let index = index as u64;
        panel["id"] = json!(index + 1);
        panel["gridPos"] = json!({
            "h": HEIGHT,
            "w": WIDTH,
            "x": (index % 2) * WIDTH,
            "y": (index / 2) * HEIGHT,
        });
    }
    panels
}

/// A multi-value variable over `label` of `up`.
fn variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "type": "query",
        "name": name,
        "label": label,
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "definition": query,
        "query": { "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery" },
        "refresh": 2,
        "multi": true,
        "includeAll": true,
        "allValue": ".*",
        "current": { "selected": true, "text": "All", "value": "$__all" },
        "sort": 1,
    })
}

fn dashboard() -> Value {
    json!({
        "title": "vigil",
        "uid": "vigil",
        "description": "Function calls, latency percentiles, caches, alerts, system and HTTP \
                        metrics of services instrumented with vigil (generated by \
                        crates/vigil/tests/grafana.rs)",
        "tags": ["vigil"],
        "editable": true,
        "schemaVersion": 39,
        "version": 1,
        "time": { "from": "now-1h", "to": "now" },
        "refresh": "30s",
        "annotations": { "list": [] },
        "links": [],
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Data source",
                    "query": "prometheus",
                    "current": {},
                },
                variable("service", "Service (job)", "label_values(up, job)"),
                variable(
                    "instance",
                    "Instance",
                    r#"label_values(up{job=~"$service"}, instance)"#,
                ),
            ]
        },
        "panels": panels(),
    })
}

#[test]
fn dashboard_is_up_to_date() {
    let generated = dashboard();
    let path = path();
    if std::env::var_os("VIGIL_BLESS_GRAFANA").is_some_and(|value| value == "1") {
        let text = serde_json::to_string_pretty(&generated).expect("the dashboard serializes");
        std::fs::write(&path, text + "\n").expect("docs/grafana/vigil.json is writable");
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let stored: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(
        stored == generated,
        "{} is stale: regenerate it with \
         `VIGIL_BLESS_GRAFANA=1 cargo test -p vigil --all-features --test grafana`",
        path.display()
    );
}

/// Every `expr` in `value`, depth first.
fn expressions(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(expr) if key == "expr" => found.push(expr.clone()),
                    _ => expressions(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| expressions(item, found)),
        _ => {}
    }
}

#[test]
fn every_query_is_valid_promql() {
    // The generated dashboard: `dashboard_is_up_to_date` checks that the
    // file holds the same.
    let mut found = Vec::new();
    expressions(&dashboard(), &mut found);
    assert!(found.len() >= 15, "only {} queries found", found.len());
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for (index, expr) in found.iter().enumerate() {
        // What Grafana sends: a rate interval, and `.*` for "All".
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$service", ".*")
            .replace("$instance", ".*");
        assert!(!expr.contains('$'), "unresolved variable in {expr}");
        // A JSON string is a YAML double-quoted scalar.
        let quoted = serde_json::to_string(&expr).expect("a string serializes");
        rules.push_str(&format!(
            "      - record: grafana:query_{index}\n        expr: {quoted}\n"
        ));
    }
    prometheus_common::check_rules(&rules);
}
