//! The handlers under `/api/v1/performance/`: each reads the monitor (the
//! one registry behind `/metrics`) and answers in the envelope. Shapes:
//! `docs/http-api.md`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_timing::{CALLS_DURATION, CALLS_TOTAL};

use super::envelope::{ApiError, success};
use super::guard::require_token;
use crate::Monitor;
use crate::summary::MetricsSummary;

/// The severities and priorities, lowest first: the values `?severity=`
/// and `?priority=` accept and the keys of the breakdowns.
const LEVELS: [&str; 4] = ["low", "medium", "high", "critical"];

/// How many items there are of each level.
#[derive(Debug, Default, Serialize)]
struct Breakdown {
    low: u64,
    medium: u64,
    high: u64,
    critical: u64,
}

impl Breakdown {
    /// Counts `items` by their string field `field`.
    fn of(items: &[Value], field: &str) -> Self {
        let mut breakdown = Self::default();
        for item in items {
            match item[field].as_str() {
                Some("low") => breakdown.low += 1,
                Some("medium") => breakdown.medium += 1,
                Some("high") => breakdown.high += 1,
                Some("critical") => breakdown.critical += 1,
                _ => {}
            }
        }
        breakdown
    }
}

/// `?severity=` or `?priority=` (other parameters are ignored).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LevelFilter {
    severity: Option<String>,
    priority: Option<String>,
}

/// The answer of a list filtered by level: `{list: the items whose
/// `field` is `wanted`, "count": how many, "<field>_breakdown": the
/// counts of all items}`. An absent or empty `wanted` keeps every item;
/// anything but a level is refused naming the levels.
fn by_level(
    all: Vec<Value>,
    wanted: Option<String>,
    field: &str,
    list: &str,
) -> Result<Response, ApiError> {
    let breakdown = Breakdown::of(&all, field);
    let items: Vec<Value> = match wanted.as_deref().filter(|wanted| !wanted.is_empty()) {
        None => all,
        Some(wanted) if LEVELS.contains(&wanted) => all
            .into_iter()
            .filter(|item| item[field].as_str() == Some(wanted))
            .collect(),
        Some(wanted) => return Err(ApiError::invalid_parameter(field, wanted, &LEVELS)),
    };
    let mut data = serde_json::Map::new();
    data.insert("count".to_owned(), items.len().into());
    data.insert(list.to_owned(), Value::Array(items));
    data.insert(
        format!("{field}_breakdown"),
        serde_json::to_value(breakdown).unwrap_or_default(),
    );
    Ok(success(data))
}

/// Serializes each of `items` (they are `Serialize` structs of
/// `vigil::service`, so this cannot fail; a failure would drop the item).
fn values<T: Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|item| serde_json::to_value(item).ok())
        .collect()
}

/// The firing alerts, each as `vigil::service::ActiveAlert` serializes;
/// none without the `alerts` feature.
fn firing(monitor: &Monitor) -> Vec<Value> {
    #[cfg(feature = "alerts")]
    return values(monitor.active_alerts());
    #[cfg(not(feature = "alerts"))]
    {
        let _ = monitor;
        Vec::new()
    }
}

/// One instrumented function over the registry: calls since start, the
/// share that failed, and its duration percentiles over the window.
#[derive(Debug, Default, Serialize)]
struct FunctionFigures {
    function: String,
    module: String,
    calls: u64,
    errors: u64,
    /// `errors / calls`, 0 without calls.
    error_rate: f64,
    /// Seconds, over the window; `null` without calls in it.
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

/// The functions of `function_calls_total` and
/// `function_calls_duration_seconds` (callers and objectives folded),
/// sorted by module then function. A function with several duration
/// series (one per objective) shows the busiest.
fn functions(summary: &MetricsSummary) -> Vec<FunctionFigures> {
    let key = |labels: &crate::Labels| {
        let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
        (label("module"), label("function"))
    };
    let mut by_function: BTreeMap<(String, String), FunctionFigures> = BTreeMap::new();
    for counter in summary.counters.iter().filter(|c| c.name == CALLS_TOTAL) {
        let figures =
            by_function
                .entry(key(&counter.labels))
                .or_insert_with_key(|(module, function)| FunctionFigures {
                    function: function.clone(),
                    module: module.clone(),
                    ..FunctionFigures::default()
                });
        figures.calls += counter.total;
        if counter.labels.get("result").map(String::as_str) == Some("error") {
            figures.errors += counter.total;
        }
    }
    let mut busiest: BTreeMap<(String, String), u64> = BTreeMap::new();
    for histogram in summary
        .histograms
        .iter()
        .filter(|h| h.name == CALLS_DURATION && h.window.count > 0)
    {
        let key = key(&histogram.labels);
        let count = busiest.entry(key.clone()).or_default();
        if histogram.window.count <= *count {
            continue;
        }
        *count = histogram.window.count;
        if let Some(figures) = by_function.get_mut(&key) {
            figures.p50 = Some(histogram.window.p50);
            figures.p95 = Some(histogram.window.p95);
            figures.p99 = Some(histogram.window.p99);
        }
    }
    by_function
        .into_values()
        .map(|mut figures| {
            if figures.calls > 0 {
                figures.error_rate = figures.errors as f64 / figures.calls as f64;
            }
            figures
        })
        .collect()
}

/// Runs `read` (a pass over the registry, the caches or the system
/// history, which takes their locks) on tokio's blocking pool, off the
/// host's request workers; a panic in it is a 500, not a dropped
/// connection.
pub(super) async fn read<T: Send + 'static>(
    monitor: Monitor,
    read: impl FnOnce(&Monitor) -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || read(&monitor))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "reading the monitor failed",
            )
        })
}

/// `GET metrics/summary`.
pub(crate) async fn summary(State(monitor): State<Monitor>) -> Result<Response, ApiError> {
    let data = read(monitor, |monitor| {
        let usage = monitor.system_usage();
        let registry = monitor.summary();
        serde_json::json!({
            "cpu_usage": usage.as_ref().map(|usage| &usage.cpu_usage),
            "memory_usage": usage.as_ref().map(|usage| &usage.memory_usage),
            "cache": monitor.cache_report().totals,
            "health_score": monitor.health().score,
            "window_seconds": registry.window_seconds,
            "functions": functions(&registry),
        })
    });
    Ok(success(data.await?))
}

/// `GET alerts?severity=`: the firing alerts (of one severity), their
/// count, and how many fire at each severity (unfiltered).
pub(crate) async fn alerts(
    State(monitor): State<Monitor>,
    filter: Result<Query<LevelFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(filter) = filter?;
    let all = read(monitor, firing).await?;
    by_level(all, filter.severity, "severity", "alerts")
}

/// `GET alerts/history`: the alert transitions kept, oldest first.
pub(crate) async fn alert_history(State(monitor): State<Monitor>) -> Result<Response, ApiError> {
    let events = read(monitor, |monitor| {
        #[cfg(feature = "alerts")]
        return values(monitor.alert_history());
        #[cfg(not(feature = "alerts"))]
        {
            let _ = monitor;
            Vec::<Value>::new()
        }
    });
    let events = events.await?;
    Ok(success(
        serde_json::json!({ "count": events.len(), "events": events }),
    ))
}

/// `GET recommendations?priority=`: the recommendations (of one
/// priority), their count, and how many there are of each priority
/// (unfiltered).
pub(crate) async fn recommendations(
    State(monitor): State<Monitor>,
    filter: Result<Query<LevelFilter>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(filter) = filter?;
    let all = read(monitor, |monitor| values(monitor.recommendations())).await?;
    by_level(all, filter.priority, "priority", "recommendations")
}

/// `GET cache/stats`: the totals over every registered cache, and each
/// cache by name.
pub(crate) async fn cache_stats(State(monitor): State<Monitor>) -> Result<Response, ApiError> {
    Ok(success(read(monitor, Monitor::cache_report).await?))
}

/// The body of `POST cache/clear`: tags (entries with any of them), a
/// cache (all of it), or both (its entries with any of the tags).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClearRequest {
    #[serde(default)]
    cache: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `POST cache/clear`: the exact number of entries removed, and a message
/// saying it.
pub(crate) async fn clear_cache(
    State(monitor): State<Monitor>,
    body: Result<Json<ClearRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_token(&monitor)?;
    let Json(request) = body?;
    let tags = request.tags.unwrap_or_default();
    if request.cache.is_none() && tags.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "give `tags` (a non-empty list), `cache` (a registered cache's name) or both",
        ));
    }
    let cleared = monitor
        .clear_caches(
            request.cache.as_deref(),
            (!tags.is_empty()).then_some(tags.as_slice()),
        )
        .await
        .map_err(|error| match error {
            crate::Error::UnknownCache { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_cache", error.to_string())
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                other.to_string(),
            ),
        })?;
    let mut message = format!(
        "Cleared {cleared} cache {}",
        if cleared == 1 { "entry" } else { "entries" }
    );
    if !tags.is_empty() {
        message.push_str(&format!(" with tags: {tags:?}"));
    }
    if let Some(name) = &request.cache {
        message.push_str(&format!(" from cache {name:?}"));
    }
    Ok(success(serde_json::json!({
        "cleared": cleared,
        "cache": request.cache,
        "tags": tags,
        "message": message,
    })))
}

/// `GET health`: the health report (score, status, components) and the
/// firing alerts.
pub(crate) async fn health(State(monitor): State<Monitor>) -> Result<Response, ApiError> {
    let data = read(monitor, |monitor| {
        let mut data = serde_json::to_value(monitor.health()).unwrap_or(Value::Null);
        if let Value::Object(fields) = &mut data {
            fields.insert("active_alerts".to_owned(), Value::Array(firing(monitor)));
        }
        data
    });
    Ok(success(data.await?))
}

/// Any other path under the prefix, any method.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}
