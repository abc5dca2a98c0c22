//! A tower middleware recording every HTTP request by method, matched
//! route template and status.
//!
//! [`HttpMetricsLayer`] records
//! `http_server_requests_total{method, route, status}` and
//! `http_server_request_duration_seconds{method, route, status}` when the
//! response future completes:
//!
//! - `route` is axum's [`MatchedPath`] (`/markets/{id}`), never the raw
//!   path, and `""` for a request no route matched, so a scan of random
//!   URLs adds one series, not one per URL;
//! - `method` is the upper-case method for the nine standard ones and
//!   `OTHER` for any extension method;
//! - `status` is the numeric code of the response; a service error
//!   counts as `500`, a handler that panics (the future is dropped while
//!   unwinding) as `500`, and a request whose future is dropped before it
//!   completes (the client went away) as `499`.
//!
//! Add it with `Router::layer` so it runs after routing and sees the
//! matched path:
//!
//! ```
//! use axum::{Router, routing::get};
//! use vigil_service::http::HttpMetricsLayer;
//!
//! let app: Router = Router::new()
//!     .route("/markets/{id}", get(|| async { "market" }))
//!     .layer(HttpMetricsLayer::new());
//! ```
//!
//! Cost: one clock read at the start and one at the end, and a label set
//! built per response (the route is text known only per request); next to
//! an HTTP exchange this is noise.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use http::{Method, Request, Response};
use metrics::{Key, Label, Level, Metadata, Recorder, SharedString, Unit};
use pin_project_lite::pin_project;
use quanta::Instant;
use tower::{Layer, Service};

/// The request counter's name.
pub const REQUESTS_TOTAL: &str = "http_server_requests_total";
/// The request duration histogram's name.
pub const REQUEST_DURATION_SECONDS: &str = "http_server_request_duration_seconds";
/// The `status` of a request whose response future was dropped before it
/// completed (nginx's "client closed request").
pub const STATUS_CANCELLED: u16 = 499;
/// The `status` of a service error or a panicking handler.
pub const STATUS_FAILED: u16 = 500;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The recorder given to [`HttpMetricsLayer::with_recorder`], if any
/// (`None`: the current one).
#[derive(Clone, Default)]
struct OwnRecorder(Option<Arc<dyn Recorder + Send + Sync>>);

impl fmt::Debug for OwnRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Own" } else { "Current" })
    }
}

/// The tower layer recording HTTP requests; see the [module](self) docs.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct HttpMetricsLayer {
    recorder: OwnRecorder,
}

impl HttpMetricsLayer {
    /// A layer recording into the current `metrics` recorder (the global
    /// one, or a thread's local one when the response completes).
    pub fn new() -> Self {
        describe(None);
        Self::default()
    }

    /// Records into `recorder` instead of the current one.
    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        describe(Some(&*recorder));
        self.recorder = OwnRecorder(Some(recorder));
        self
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            recorder: self.recorder.clone(),
        }
    }
}

/// The service [`HttpMetricsLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct HttpMetrics<S> {
    inner: S,
    recorder: OwnRecorder,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HttpMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let pending = Pending {
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
            start: Instant::now(),
            recorder: self.recorder.clone(),
            recorded: false,
        };
        ResponseFuture {
            inner: self.inner.call(request),
            pending: Some(pending),
        }
    }
}

pin_project! {
    /// The response future of [`HttpMetrics`]: records the request when
    /// the inner future completes (or is dropped unfinished).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Some(pending) = this.pending.take() {
            let status = match &output {
                Ok(response) => response.status().as_u16(),
                Err(_) => STATUS_FAILED,
            };
            pending.finish(status);
        }
        Poll::Ready(output)
    }
}

/// A request on its way: what its series need besides the status. Dropped
/// without [`finish`](Self::finish), it records the request as failed
/// (while panicking) or cancelled.
#[derive(Debug)]
struct Pending {
    method: &'static str,
    route: Option<MatchedPath>,
    start: Instant,
    recorder: OwnRecorder,
    recorded: bool,
}

impl Pending {
    fn finish(mut self, status: u16) {
        self.record(status);
        self.recorded = true;
    }

    fn record(&self, status: u16) {
        let seconds = self.start.elapsed().as_secs_f64();
        let route = self.route.as_ref().map_or("", MatchedPath::as_str);
        let labels = vec![
            Label::from_static_parts("method", self.method),
            Label::new("route", SharedString::from(route.to_owned())),
            Label::new("status", SharedString::from(status.to_string())),
        ];
        let requests = Key::from_parts(REQUESTS_TOTAL, labels.clone());
        let duration = Key::from_parts(REQUEST_DURATION_SECONDS, labels);
        let write = |recorder: &dyn Recorder| {
            recorder.register_counter(&requests, &METADATA).increment(1);
            recorder
                .register_histogram(&duration, &METADATA)
                .record(seconds);
        };
        match &self.recorder.0 {
            Some(recorder) => write(&**recorder),
            None => metrics::with_recorder(write),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        let status = if std::thread::panicking() {
            STATUS_FAILED
        } else {
            STATUS_CANCELLED
        };
        self.record(status);
    }
}

/// The `method` label: the standard methods by name, anything else
/// `OTHER` (an extension method is client-chosen text).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The metrics' help texts and units.
fn describe(recorder: Option<&dyn Recorder>) {
    let write = |recorder: &dyn Recorder| {
        recorder.describe_counter(
            REQUESTS_TOTAL.into(),
            None,
            "HTTP requests served, by method, matched route template and status code".into(),
        );
        recorder.describe_histogram(
            REQUEST_DURATION_SECONDS.into(),
            Some(Unit::Seconds),
            "Time from receiving an HTTP request to its response, by method, matched route \
             template and status code"
                .into(),
        );
    };
    match recorder {
        Some(recorder) => write(recorder),
        None => metrics::with_recorder(write),
    }
}
