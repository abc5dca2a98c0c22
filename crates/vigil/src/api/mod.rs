//! The monitor over HTTP with axum (feature `axum`): [`Monitor::router`]
//! serves `/metrics`, the health probes and the performance API under
//! `/api/v1/performance/` and a status page at `/status`, and
//! [`Monitor::http_layer`] records the host's
//! requests by matched route into the same registry. Routes, fields and
//! errors: `docs/http-api.md` and `docs/openapi.json`.

mod envelope;
mod guard;
mod health;
mod performance;
mod status;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use vigil_service::http::HttpMetricsLayer;

use crate::Monitor;
use envelope::ApiError;

/// Where the performance API lives.
const PREFIX: &str = "/api/v1/performance";

/// The limits of [`Monitor::router_with`]; [`Monitor::router`] uses the
/// defaults: requests answered 408 after 30 s, bodies refused 413 over
/// 64 KiB, and at most 32 requests to the performance API and `/metrics`
/// handled at once (503 `overloaded` with `Retry-After: 1` beyond, so a
/// flood of reads, with or without a token, cannot queue without bound
/// on the registry's locks and the blocking pool).
///
/// ```
/// use std::time::Duration;
///
/// let monitor = vigil::Monitor::builder().build()?;
/// let options = vigil::RouterOptions::default()
///     .timeout(Duration::from_secs(5))
///     .max_concurrency(8)
///     .body_limit(16 * 1024);
/// let app: axum::Router = axum::Router::new().merge(monitor.router_with(options));
/// # drop(app);
/// # Ok::<(), vigil::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterOptions {
    timeout: Duration,
    max_concurrency: usize,
    body_limit: usize,
}

impl Default for RouterOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_concurrency: 32,
            body_limit: 64 * 1024,
        }
    }
}

impl RouterOptions {
    /// How long a request to the monitor's routes may take before it is
    /// answered 408 (default 30 s; a readiness check is bounded by the
    /// readiness timeout, 5 s by default).
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many requests to the performance API and `/metrics` are handled
    /// at once (default 32, at least 1); one more is answered 503. The
    /// probes are not counted.
    #[must_use]
    pub const fn max_concurrency(mut self, requests: usize) -> Self {
        self.max_concurrency = if requests == 0 { 1 } else { requests };
        self
    }

    /// The largest request body read, in bytes (default 64 KiB); a larger
    /// one is answered 413.
    #[must_use]
    pub const fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }
}

impl Monitor {
    /// The monitor's routes, to merge into the host's axum app:
    ///
    /// - `GET /metrics`: the registry in the format the `Accept` header
    ///   negotiates, as `MonitorBuilder::listen`'s listener: Prometheus
    ///   text format 0.0.4, or (with the `listener` feature) the protobuf
    ///   format carrying native histograms when the scraper prefers it;
    /// - `GET /health/live`, `GET /health/ready`, `GET /health`: the
    ///   probes (200, or 503 naming the failing readiness checks);
    /// - `GET /status`: a self-contained HTML status page (health, p50/p95/p99
    ///   per function and route, alerts, recommendations, caches, system),
    ///   server-rendered and refreshing itself from the performance API,
    ///   behind the token like the API;
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
    /// `/health*` need no token; `/health/ready` and `/health` show every
    /// readiness check's error text to any caller, so a check should not
    /// return secrets (connection strings with passwords) in its `Err`.
    /// The limits are
    /// [`RouterOptions::default`]'s (30 s, 64 KiB, 32 requests at once);
    /// [`router_with`](Self::router_with) sets others. The router sets no
    /// fallback, so the host keeps its own.
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
        self.router_with(RouterOptions::default())
    }

    /// [`router`](Self::router) with other limits: the request timeout,
    /// the concurrency cap and the body limit.
    pub fn router_with(&self, options: RouterOptions) -> Router {
        let api = |path: &str| format!("{PREFIX}/{path}");
        let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, options.timeout);
        let permits = Arc::new(Semaphore::new(options.max_concurrency));
        let limit = middleware::from_fn_with_state(permits, limited);
        let performance = Router::new()
            .route(&api("metrics/summary"), get(performance::summary))
            .route(&api("alerts"), get(performance::alerts))
            .route(&api("alerts/history"), get(performance::alert_history))
            .route(&api("recommendations"), get(performance::recommendations))
            .route(&api("cache/stats"), get(performance::cache_stats))
            .route(&api("cache/clear"), post(performance::clear_cache))
            .route(&api("health"), get(performance::health))
            .route(PREFIX, any(performance::not_found))
            .route(&api(""), any(performance::not_found))
            .route(&api("{*path}"), any(performance::not_found))
            // Innermost first: the body limit, the concurrency cap, then
            // the token, the timeout, and the envelope around whatever
            // answered.
            .route_layer(DefaultBodyLimit::max(options.body_limit))
            .route_layer(RequestBodyLimitLayer::new(options.body_limit))
            .route_layer(limit.clone())
            .route_layer(middleware::from_fn_with_state(self.clone(), guard::bearer))
            .route_layer(timeout)
            .route_layer(middleware::map_response_with_state(
                options,
                envelope::enveloped,
            ));
        let probes = Router::new()
            .route("/metrics", get(metrics).route_layer(limit.clone()))
            .route("/status", get(status::page).route_layer(limit))
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

/// Middleware: the request runs while one of `permits` is free; otherwise
/// it is answered 503 `overloaded` with `Retry-After: 1` at once.
async fn limited(State(permits): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    let Ok(_permit) = permits.try_acquire() else {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests to the monitor at once; retry shortly",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// `GET /metrics`: the registry in the format `Accept` negotiates (text
/// format 0.0.4 or protobuf with native histograms, as the listener),
/// rendered on the blocking pool.
#[cfg(feature = "listener")]
async fn metrics(State(monitor): State<Monitor>, headers: HeaderMap) -> Response {
    use crate::http::exposition::Exposition;

    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let exposition = Exposition::negotiate(&accept.join(","));
    let body = performance::read(monitor, move |monitor| {
        exposition.render(&monitor.recorder())
    });
    exposed(body.await, exposition.content_type())
}

/// `GET /metrics`: the registry in text format 0.0.4 (the protobuf format
/// needs the `listener` feature), rendered on the blocking pool.
#[cfg(not(feature = "listener"))]
async fn metrics(State(monitor): State<Monitor>, _: HeaderMap) -> Response {
    let body = performance::read(monitor, Monitor::render).await;
    exposed(body, "text/plain; version=0.0.4; charset=utf-8")
}

/// The answer of `/metrics`: `body` as `content_type`, varying by `Accept`.
fn exposed<B: Into<axum::body::Body>>(
    body: Result<B, ApiError>,
    content_type: &'static str,
) -> Response {
    match body {
        Ok(body) => {
            let headers = [
                (header::CONTENT_TYPE, content_type),
                (header::VARY, "Accept"),
            ];
            (headers, body.into()).into_response()
        }
        Err(error) => error.into_response(),
    }
}
