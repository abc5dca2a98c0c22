//! The handlers under `/api/v1/performance/`: each reads the monitor (the
//! one registry behind `/metrics`) and answers in the envelope. Shapes:
//! `docs/http-api.md`.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vigil_service::health::SeverityCounts;
use vigil_service::recommend::{Priority, priority_breakdown};
use vigil_timing::{CALLS_DURATION, CALLS_TOTAL};

use super::envelope::{ApiError, success};
use super::guard::require_token;
use crate::Monitor;
use crate::summary::MetricsSummary;

/// The levels `?severity=` and `?priority=` name, lowest first, as a
/// refused value's message lists them.
const LEVELS: [&str; 4] = ["low", "medium", "high", "critical"];

/// `?severity=` or `?priority=` (other parameters are ignored).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LevelFilter {
    severity: Option<String>,
    priority: Option<String>,
}

/// The level `value` names, read by the level's own parser (any case, and
/// a severity's `info`, `warning`, `warn`); `None` when absent or empty
/// (no filter); anything else is refused naming the four levels.
fn level<L: FromStr>(value: Option<&str>, name: &str) -> Result<Option<L>, ApiError> {
    match value.map(str::trim).filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid_parameter(name, value, &LEVELS)),
    }
}

/// The answer of a list filtered by level: `{list: items, "count": how
/// many, "<field>_breakdown": the counts of all items}`.
fn listed<T: Serialize>(
    items: Vec<T>,
    list: &str,
    field: &str,
    breakdown: SeverityCounts,
) -> Result<Response, ApiError> {
    let items = values(items)?;
    let mut data = serde_json::Map::new();
    data.insert("count".to_owned(), items.len().into());
    data.insert(list.to_owned(), Value::Array(items));
    data.insert(format!("{field}_breakdown"), value(breakdown)?);
    Ok(success(data))
}

/// `item` as JSON; a failure (which the `vigil::service` types cannot
/// produce) is a 500 rather than a missing item.
fn value<T: Serialize>(item: T) -> Result<Value, ApiError> {
    serde_json::to_value(item).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("serializing the answer failed: {error}"),
        )
    })
}

/// Each of `items` as JSON, or a 500 when one fails, so that a list and
/// its count never disagree.
fn values<T: Serialize>(items: Vec<T>) -> Result<Vec<Value>, ApiError> {
    items.into_iter().map(value).collect()
}

/// The firing alerts of severity `wanted` (all without), and how many fire
/// at each severity; none without the `alerts` feature.
#[cfg(feature = "alerts")]
fn firing(
    monitor: &Monitor,
    wanted: Option<vigil_alert::Severity>,
) -> (Vec<crate::service::ActiveAlert>, SeverityCounts) {
    use vigil_alert::Severity;

    let all = monitor.active_alerts();
    let mut breakdown = SeverityCounts::default();
    let mut kept = Vec::with_capacity(all.len());
    for alert in all {
        let severity = alert.severity.parse::<Severity>().ok();
        if let Some(severity) = severity {
            let slots = [
                &mut breakdown.low,
                &mut breakdown.medium,
                &mut breakdown.high,
                &mut breakdown.critical,
            ];
            if let Some(slot) = slots.into_iter().nth(severity.index()) {
                *slot += 1;
            }
        }
        if wanted.is_none() || severity == wanted {
            kept.push(alert);
        }
    }
    (kept, breakdown)
}

/// Without the `alerts` feature nothing fires; the filter is still read
/// (as one of the four levels).
#[cfg(not(feature = "alerts"))]
fn firing(_: &Monitor, _: Option<Priority>) -> (Vec<Value>, SeverityCounts) {
    (Vec::new(), SeverityCounts::default())
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

/// `GET metrics/summary`: one pass over the registry for the functions
/// and the health score.
pub(crate) async fn summary(State(monitor): State<Monitor>) -> Result<Response, ApiError> {
    let data = read(monitor, |monitor| {
        let usage = monitor.system_usage();
        let registry = monitor.summary();
        serde_json::json!({
            "cpu_usage": usage.as_ref().map(|usage| &usage.cpu_usage),
            "memory_usage": usage.as_ref().map(|usage| &usage.memory_usage),
            "cache": monitor.cache_report().totals,
            "health_score": monitor.health_from(&registry).score,
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
    let wanted = level(filter.severity.as_deref(), "severity")?;
    let (alerts, breakdown) = read(monitor, move |monitor| firing(monitor, wanted)).await?;
    listed(alerts, "alerts", "severity", breakdown)
}

/// `GET alerts/history`: the alert transitions kept, oldest first.
pub(crate) async fn alert_history(State(monitor): State<Monitor>) -> Result<Response, ApiError> {
    let events = read(monitor, |monitor| {
        #[cfg(feature = "alerts")]
        return monitor.alert_history();
        #[cfg(not(feature = "alerts"))]
        {
            let _ = monitor;
            Vec::<Value>::new()
        }
    });
    let events = values(events.await?)?;
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
    let wanted: Option<Priority> = level(filter.priority.as_deref(), "priority")?;
    let mut all = read(monitor, |monitor| monitor.recommendations()).await?;
    let breakdown = priority_breakdown(&all);
    all.retain(|recommendation| wanted.is_none_or(|wanted| recommendation.priority == wanted));
    listed(all, "recommendations", "priority", breakdown)
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
    /// `None` when left out; an empty list is refused rather than read
    /// as "every entry".
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// `POST cache/clear`: the exact number of entries removed, and a message
/// saying it. The clearing runs on the blocking pool, as the reads do.
pub(crate) async fn clear_cache(
    State(monitor): State<Monitor>,
    body: Result<Json<ClearRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_token(&monitor)?;
    let Json(ClearRequest { cache, tags }) = body?;
    let refused = |message| {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            message,
        ))
    };
    match (&cache, &tags) {
        (None, None) => {
            return refused(
                "give `tags` (a non-empty list), `cache` (a registered cache's name) or both",
            );
        }
        (_, Some(tags)) if tags.is_empty() => {
            return refused(
                "`tags` is empty: give `tags` with at least one tag, or leave it out \
                 to clear a whole `cache`",
            );
        }
        _ => {}
    }
    let (name, chosen) = (cache.clone(), tags.clone());
    let cleared = read(monitor, move |monitor| {
        let clearing = monitor.clear_caches(name.as_deref(), chosen.as_deref());
        tokio::runtime::Handle::current().block_on(clearing)
    })
    .await?
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
    let tags = tags.unwrap_or_default();
    let mut message = format!(
        "Cleared {cleared} cache {}",
        if cleared == 1 { "entry" } else { "entries" }
    );
    if !tags.is_empty() {
        message.push_str(&format!(" with tags: {tags:?}"));
    }
    if let Some(name) = &cache {
        message.push_str(&format!(" from cache {name:?}"));
    }
    Ok(success(serde_json::json!({
        "cleared": cleared,
        "cache": cache,
        "tags": tags,
        "message": message,
    })))
}

/// `GET health`: the health report (score, status, components) and the
/// firing alerts.
pub(crate) async fn health(State(monitor): State<Monitor>) -> Result<Response, ApiError> {
    let (report, (alerts, _)) =
        read(monitor, |monitor| (monitor.health(), firing(monitor, None))).await?;
    let mut data = value(report)?;
    if let Value::Object(fields) = &mut data {
        fields.insert("active_alerts".to_owned(), Value::Array(values(alerts)?));
    }
    Ok(success(data))
}

/// Any other path under the prefix, any method.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use serde::Serializer;
    use serde::ser::Error as _;

    use super::*;

    /// Serializes as a number, or fails.
    struct Item(Option<u64>);

    impl Serialize for Item {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                Some(n) => serializer.serialize_u64(n),
                None => Err(S::Error::custom("no value")),
            }
        }
    }

    #[test]
    fn an_item_failing_to_serialize_is_a_500_not_a_shorter_list() {
        let listed = listed(
            vec![Item(Some(1)), Item(None), Item(Some(3))],
            "items",
            "severity",
            SeverityCounts::default(),
        );
        let response = listed.expect_err("a failed item fails the answer");
        assert_eq!(
            response.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let fine = values(vec![Item(Some(1)), Item(Some(2))]).expect("both serialize");
        assert_eq!(fine, [Value::from(1), Value::from(2)]);
    }

    #[test]
    fn levels_are_read_by_their_own_parsers() {
        assert_eq!(
            level::<Priority>(Some(" HIGH "), "priority").ok(),
            Some(Some(Priority::High))
        );
        assert_eq!(level::<Priority>(Some(""), "priority").ok(), Some(None));
        assert!(level::<Priority>(Some("warning"), "priority").is_err());
        #[cfg(feature = "alerts")]
        assert_eq!(
            level::<vigil_alert::Severity>(Some("warning"), "severity").ok(),
            Some(Some(vigil_alert::Severity::Medium))
        );
    }
}
