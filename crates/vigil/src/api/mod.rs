//! The monitor over HTTP with axum (feature `axum`): [`Monitor::router`]
//! serves `/metrics`, the health probes and the performance API under
//! `/api/v1/performance/`, and [`Monitor::http_layer`] records the host's
//! requests by matched route into the same registry. Routes, fields and
//! errors: `docs/http-api.md` and `docs/openapi.json`.

mod envelope;
mod guard;
mod health;
mod performance;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use vigil_service::http::HttpMetricsLayer;

use crate::Monitor;

/// Where the performance API lives.
const PREFIX: &str = "/api/v1/performance";

/// The largest request body the API reads (64 KiB).
const BODY_LIMIT: usize = 64 * 1024;

/// How long a request to the monitor's routes may take before it is
/// answered 408 (a readiness check is bounded well below it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The content type of Prometheus text exposition format 0.0.4.
const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Monitor {
    /// The monitor's routes, to merge into the host's axum app:
    ///
    /// - `GET /metrics`: the registry in Prometheus text format;
    /// - `GET /health/live`, `GET /health/ready`, `GET /health`: the
    ///   probes (200, or 503 naming the failing readiness checks);
    /// - under `/api/v1/performance/`: `GET metrics/summary`,
    ///   `GET alerts?severity=`, `GET alerts/history`,
    ///   `GET recommendations?priority=`, `GET cache/stats`,
    ///   `POST cache/clear`, `GET health`, each answering
    ///   `{"status": "success", "data": ..}` or
    ///   `{"status": "error", "error": {"code", "message"}}`.
    ///
    /// With an [`api_token`](crate::MonitorBuilder::api_token), every
    /// route under `/api/v1/performance/` needs
    /// `Authorization: Bearer <token>` (401 otherwise); without one, the
    /// reads answer and `POST cache/clear` is refused (403). `/metrics` and
    /// `/health*` need no token. Bodies are limited to 64 KiB and requests
    /// to 30 s. The router sets no fallback, so the host keeps its own.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use axum::routing::get;
    ///
    /// let monitor = vigil::Monitor::builder().api_token("s3cret").build()?;
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/markets/{id}", get(|| async { "market" }))
    ///     .merge(monitor.router())
    ///     .layer(monitor.http_layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// tokio::spawn(async move { axum::serve(listener, app).await });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn router(&self) -> Router {
        let api = |path: &str| format!("{PREFIX}/{path}");
        let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT);
        let performance = Router::new()
            .route(&api("metrics/summary"), get(performance::summary))
            .route(&api("alerts"), get(performance::alerts))
            .route(&api("alerts/history"), get(performance::alert_history))
            .route(&api("recommendations"), get(performance::recommendations))
            .route(&api("cache/stats"), get(performance::cache_stats))
            .route(&api("cache/clear"), post(performance::clear_cache))
            .route(&api("health"), get(performance::health))
            .route(PREFIX, any(performance::not_found))
            .route(&api("{*path}"), any(performance::not_found))
            // Innermost first: the body limit, then the token, the
            // timeout, and the envelope around whatever answered.
            .route_layer(DefaultBodyLimit::max(BODY_LIMIT))
            .route_layer(RequestBodyLimitLayer::new(BODY_LIMIT))
            .route_layer(middleware::from_fn_with_state(self.clone(), guard::bearer))
            .route_layer(timeout)
            .route_layer(middleware::map_response(envelope::enveloped));
        let probes = Router::new()
            .route("/metrics", get(metrics))
            .route("/health/live", get(health::live))
            .route("/health/ready", get(health::ready))
            .route("/health", get(health::ready))
            .route_layer(timeout);
        performance.merge(probes).with_state(self.clone())
    }

    /// A tower middleware for the host's app (`Router::layer`) recording
    /// `http_server_requests_total{method, route, status}` and
    /// `http_server_request_duration_seconds{method, route, status}` into
    /// this monitor's registry; `route` is the matched route template
    /// (`/markets/{id}`), `""` for requests no route matched.
    pub fn http_layer(&self) -> HttpMetricsLayer {
        HttpMetricsLayer::new().with_recorder(Arc::new(self.recorder()))
    }
}

/// `GET /metrics`: the registry in text exposition format 0.0.4,
/// rendered on the blocking pool.
async fn metrics(State(monitor): State<Monitor>) -> Response {
    match performance::read(monitor, Monitor::render).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE_TEXT)], text).into_response(),
        Err(error) => error.into_response(),
    }
}
