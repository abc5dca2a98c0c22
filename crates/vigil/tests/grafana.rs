//! The Grafana dashboard in `docs/grafana/vigil.json`, generated from
//! vigil's metric names.
//!
//! `dashboard_is_up_to_date` builds the dashboard and compares it with the
//! checked-in file; `VIGIL_BLESS_GRAFANA=1` rewrites the file instead.
//! `every_query_is_valid_promql` writes each panel query into a rule file
//! (one recording rule per query, Grafana's variables replaced by what
//! Grafana sends) and runs Debian's `promtool check rules` on it.
//! `every_query_has_data_from_a_scraped_service` runs every query against
//! Debian's Prometheus scraping a vigil service under load.

#![cfg(all(
    feature = "axum",
    feature = "listener",
    feature = "cache",
    feature = "alert-routing",
    feature = "system-metrics"
))]

#[path = "../../vigil-alert/tests/prometheus_common.rs"]
mod prometheus_common;
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;

use serde_json::{Value, json};
use vigil::alert::engine::ALERTS_FIRING;
use vigil::alert::notify::TracingNotifier;
use vigil::alert::{Comparison, Engine, Rule, Severity};
use vigil::cache::metric_names as cache;
use vigil::cache::sync::TaggedCache;
use vigil::service::HEALTH_SCORE;
use vigil::service::system::{CPU_USAGE, MEMORY_USAGE};
use vigil::timing::{CALLS_DURATION, CALLS_TOTAL};
use vigil::{Matcher, Monitor, timed};
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

/// A gauge panel of the health score per instance, 0 to 100, red below
/// 50 (unhealthy), orange below 80 (degraded), green from 80 (healthy).
fn health_panel() -> Value {
    json!({
        "type": "gauge",
        "title": "Health score",
        "description": format!(
            "Monitor::health() score per instance, 0 to 100 ({HEALTH_SCORE}); below 80 \
             degraded, below 50 unhealthy"
        ),
        "datasource": { "type": "prometheus", "uid": "${datasource}" },
        "fieldConfig": {
            "defaults": {
                "unit": "none",
                "min": 0,
                "max": 100,
                "decimals": 1,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        { "color": "red", "value": null },
                        { "color": "orange", "value": 50 },
                        { "color": "green", "value": 80 },
                    ],
                },
            },
            "overrides": [],
        },
        "options": {
            "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
            "showThresholdLabels": false,
            "showThresholdMarkers": true,
        },
        "targets": [{
            "datasource": { "type": "prometheus", "uid": "${datasource}" },
            "expr": select(HEALTH_SCORE, ""),
            "legendFormat": "{{instance}}",
            "refId": "A",
        }],
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
        health_panel(),
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
                        metrics and the health score of services instrumented with vigil \
                        (generated by crates/vigil/tests/grafana.rs)",
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

/// `expr` as Grafana sends it: a rate interval, and `.*` for "All".
fn resolve(expr: &str) -> String {
    let expr = expr
        .replace("$__rate_interval", "1m")
        .replace("$service", ".*")
        .replace("$instance", ".*");
    assert!(!expr.contains('$'), "unresolved variable in {expr}");
    expr
}

/// Every query of the dashboard, resolved.
fn queries() -> Vec<String> {
    let mut found = Vec::new();
    expressions(&dashboard(), &mut found);
    found.iter().map(|expr| resolve(expr)).collect()
}

#[test]
fn every_query_is_valid_promql() {
    // The generated dashboard: `dashboard_is_up_to_date` checks that the
    // file holds the same.
    let found = queries();
    assert!(found.len() >= 15, "only {} queries found", found.len());
    let mut rules = String::from("groups:\n  - name: grafana\n    rules:\n");
    for (index, expr) in found.iter().enumerate() {
        // A JSON string is a YAML double-quoted scalar.
        let quoted = serde_json::to_string(&expr).expect("a string serializes");
        rules.push_str(&format!(
            "      - record: grafana:query_{index}\n        expr: {quoted}\n"
        ));
    }
    prometheus_common::check_rules(&rules);
}

/// A lookup behind the cache: every fifth id fails.
#[timed]
async fn lookup(id: u64) -> Result<u64, String> {
    if id.is_multiple_of(5) {
        return Err(format!("item {id} is unavailable"));
    }
    Ok(id * 10)
}

/// `GET /items/{id}`: cache-aside over `lookup`.
#[timed]
async fn item(
    State(items): State<TaggedCache<u64, u64>>,
    Path(id): Path<u64>,
) -> Result<String, StatusCode> {
    if let Some(value) = items.get(&id) {
        return Ok(value.to_string());
    }
    let value = lookup(id)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    items.insert(id, value);
    Ok(value.to_string())
}

/// A vigil service with every kind of metric the dashboard shows, under
/// load, scraped by two Prometheus servers: one with native histograms
/// (protobuf scrapes), one without (text, classic buckets). Every query
/// has data on the server its kind is for: native quantiles on the first,
/// `_bucket` quantiles on the second, the rest on both.
#[test]
fn every_query_has_data_from_a_scraped_service() {
    let items: TaggedCache<u64, u64> = TaggedCache::builder()
        .name("items")
        .max_capacity(1_000)
        .build();
    let backlog = Rule::builder("Backlog")
        .gauge("grafana_backlog")
        .threshold(Severity::High, Comparison::Greater, 1.0)
        .build()
        .unwrap();
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .system_metrics(Duration::from_secs(1))
        .cache("items", &items)
        .manual_alerts()
        .alerts(Engine::new([backlog]).unwrap())
        .notifier("default", TracingNotifier::new())
        .buckets(
            Matcher::Full(REQUEST_DURATION_SECONDS.to_owned()),
            &[0.0001, 0.001, 0.01, 0.1, 1.0],
        )
        .install()
        .unwrap();
    vigil::metrics::gauge!("grafana_backlog").set(5.0);
    monitor.evaluate_alerts(SystemTime::now());
    let target = monitor.listen_address().expect("a listener");

    let app = Router::new()
        .route("/items/{id}", get(item))
        .with_state(items)
        .layer(monitor.http_layer());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    let stop = Arc::new(AtomicBool::new(false));
    let load = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || {
            for id in (0..20u64).cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                servers::http_get(address, &format!("/items/{id}")).expect("the service answers");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });

    let native =
        servers::Prometheus::start_with(&[target], &["--enable-feature=native-histograms"]);
    let text = servers::Prometheus::start(target);
    let deadline = Instant::now() + Duration::from_secs(40);
    let has_data = |server: &servers::Prometheus, query: &str| {
        server.query(query).is_some_and(|result| !result.is_empty())
    };
    let mut missing: Vec<String> = queries();
    while !missing.is_empty() && Instant::now() < deadline {
        missing.retain(|query| {
            let classic = query.contains("_bucket{");
            let quantile = query.starts_with("histogram_quantile");
            let on_native = classic || has_data(&native, query);
            let on_text = (quantile && !classic) || has_data(&text, query);
            !(on_native && on_text)
        });
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(
        missing.is_empty(),
        "queries without data after 40 s:\n{}",
        missing.join("\n")
    );
}
