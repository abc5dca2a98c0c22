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
//! Cost: one clock read at the start and one at the end, and the series'
//! handles found in a cache the layer and its clones share: one hash of
//! the route text, no allocation, no lock, no registry lookup. The first
//! response of a `(method, route, status)` registers its series; at most
//! [`MAX_CACHED`] series are cached per layer, the responses of further
//! ones register their series each time (as correct, slower).
//!
//! Bound on the series: at most [`MAX_ROUTES`] distinct `route` values per
//! layer (the unmatched `""` aside); the requests of further route
//! templates are recorded under `route="vigil_overflow"`
//! ([`OVERFLOW_ROUTE`]). With `method` (ten values) and `status` (the
//! codes a service answers with) that bounds the series whatever the
//! requests.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use axum::extract::MatchedPath;
use http::{Method, Request, Response};
use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit};
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
/// At most this many distinct `route` values (matched templates) per
/// layer; the requests of further ones are recorded under
/// [`OVERFLOW_ROUTE`].
pub const MAX_ROUTES: usize = 1_000;
/// The `route` of the requests of route templates beyond [`MAX_ROUTES`].
pub const OVERFLOW_ROUTE: &str = "vigil_overflow";
/// At most this many series' handles are cached per layer (beyond, a
/// response registers its series each time).
pub const MAX_CACHED: usize = 4_096;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// What a layer and the services and requests it makes share: the
/// recorder given to [`HttpMetricsLayer::with_recorder`], if any (`None`:
/// the current one), and the cached series.
#[derive(Default)]
struct Shared {
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
    /// Handles by the hash of their [`SeriesKey`]; replaced whole (`rcu`)
    /// when a series is added, read without a lock.
    series: ArcSwap<SeriesMap>,
    cached: AtomicUsize,
    /// The route templates given a `route` label of their own.
    routes: Mutex<HashSet<Box<str>>>,
}

type SeriesMap = HashMap<u64, Vec<Arc<Series>>, BuildHasherDefault<RouteHasher>>;

/// What tells one series of a layer from another: the recorder (its
/// address; 0 for the layer's own), method, route text and status.
#[derive(PartialEq)]
struct SeriesKey<'a> {
    recorder: usize,
    method: &'static str,
    route: &'a str,
    status: u16,
}

impl SeriesKey<'_> {
    fn hash(&self) -> u64 {
        let mut hasher = RouteHasher::default();
        hasher.write_usize(self.recorder);
        hasher.write_u64(u64::from(self.status));
        hasher.write(self.method.as_bytes());
        hasher.write(self.route.as_bytes());
        hasher.finish()
    }
}

/// A cached series: its key and handles.
struct Series {
    recorder: usize,
    method: &'static str,
    route: Box<str>,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

impl Series {
    fn is(&self, key: &SeriesKey<'_>) -> bool {
        key == &SeriesKey {
            recorder: self.recorder,
            method: self.method,
            route: &self.route,
            status: self.status,
        }
    }
}

/// FxHash's mixing, a word at a time: the keys are route templates the
/// application defines (never a client's raw path), so a keyed hash buys
/// nothing here and costs a SipHash per request.
#[derive(Default)]
struct RouteHasher(u64);

impl RouteHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for RouteHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0; 8];
            buf.copy_from_slice(word);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        let mut buf = [0; 8];
        buf[..rest.len()].copy_from_slice(rest);
        // The length tells "a" from "a\0".
        self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Shared {
    fn new(recorder: Option<Arc<dyn Recorder + Send + Sync>>) -> Shared {
        Shared {
            recorder,
            ..Shared::default()
        }
    }

    /// Records one request into the layer's recorder, else the current
    /// one.
    fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        match &self.recorder {
            Some(recorder) => self.record_into(&**recorder, 0, method, route, status, seconds),
            None => metrics::with_recorder(|recorder| {
                let id = std::ptr::from_ref(recorder).cast::<()>() as usize;
                self.record_into(recorder, id, method, route, status, seconds);
            }),
        }
    }

    #[inline]
    fn record_into(
        &self,
        recorder: &dyn Recorder,
        recorder_id: usize,
        method: &'static str,
        route: &str,
        status: u16,
        seconds: f64,
    ) {
        let key = SeriesKey {
            recorder: recorder_id,
            method,
            route,
            status,
        };
        let hash = key.hash();
        let series = self.series.load();
        let cached = series
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|series| series.is(&key)));
        if let Some(series) = cached {
            series.requests.increment(1);
            series.duration.record(seconds);
            return;
        }
        drop(series);
        let series = self.register(recorder, &key, hash);
        series.requests.increment(1);
        series.duration.record(seconds);
    }

    /// Registers the series of `key` in `recorder` and caches its handles
    /// while fewer than [`MAX_CACHED`] are: once per series.
    #[cold]
    #[inline(never)]
    fn register(&self, recorder: &dyn Recorder, key: &SeriesKey<'_>, hash: u64) -> Arc<Series> {
        let labels = vec![
            Label::from_static_parts("method", key.method),
            Label::new("route", self.route_label(key.route)),
            Label::new("status", status_label(key.status)),
        ];
        let requests = Key::from_parts(REQUESTS_TOTAL, labels.clone());
        let duration = Key::from_parts(REQUEST_DURATION_SECONDS, labels);
        let series = Arc::new(Series {
            recorder: key.recorder,
            method: key.method,
            route: key.route.into(),
            status: key.status,
            requests: recorder.register_counter(&requests, &METADATA),
            duration: recorder.register_histogram(&duration, &METADATA),
        });
        if self.cached.load(Ordering::Relaxed) < MAX_CACHED {
            // Registering again gives handles on the same series, so a
            // thread that loses a race here records correctly; only the
            // first entry of a key is found.
            self.series.rcu(|map| {
                let mut map = SeriesMap::clone(map);
                map.entry(hash).or_default().push(Arc::clone(&series));
                map
            });
            self.cached.fetch_add(1, Ordering::Relaxed);
        }
        series
    }

    /// The `route` label of `route`: itself while fewer than
    /// [`MAX_ROUTES`] templates have one, else [`OVERFLOW_ROUTE`].
    fn route_label(&self, route: &str) -> SharedString {
        if route.is_empty() {
            return SharedString::const_str("");
        }
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if routes.contains(route) || routes.len() < MAX_ROUTES {
            routes.insert(route.into());
            SharedString::from(route.to_owned())
        } else {
            SharedString::const_str(OVERFLOW_ROUTE)
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field(
                "recorder",
                &if self.recorder.is_some() {
                    "Own"
                } else {
                    "Current"
                },
            )
            .field("cached", &self.cached.load(Ordering::Relaxed))
            .finish()
    }
}

/// `"100"` to `"999"`, three bytes each: the `status` labels, never
/// formatted per request.
static STATUS_DIGITS: [u8; 2_700] = status_digits();

const fn status_digits() -> [u8; 2_700] {
    let mut digits = [0; 2_700];
    let mut code = 100;
    while code < 1_000 {
        let at = (code - 100) * 3;
        digits[at] = b'0' + (code / 100) as u8;
        digits[at + 1] = b'0' + (code / 10 % 10) as u8;
        digits[at + 2] = b'0' + (code % 10) as u8;
        code += 1;
    }
    digits
}

/// The `status` label of `code` (an HTTP status code is 100 to 999).
fn status_label(code: u16) -> SharedString {
    match usize::from(code) {
        code @ 100..1_000 => {
            let at = (code - 100) * 3;
            match std::str::from_utf8(&STATUS_DIGITS[at..at + 3]) {
                Ok(digits) => SharedString::const_str(digits),
                Err(_) => SharedString::from(code.to_string()),
            }
        }
        code => SharedString::from(code.to_string()),
    }
}

/// The tower layer recording HTTP requests; see the [module](self) docs.
///
/// Its clones, and the services it wraps, share one cache of series.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct HttpMetricsLayer {
    shared: Arc<Shared>,
}

impl HttpMetricsLayer {
    /// A layer recording into the current `metrics` recorder (the global
    /// one, or a thread's local one when the response completes).
    ///
    /// Handles are cached by the recorder's address: a local recorder
    /// dropped while the layer lives and another made at the same address
    /// would not receive the series the first one had; give such a
    /// recorder with [`with_recorder`](Self::with_recorder) instead.
    pub fn new() -> Self {
        describe(None);
        Self::default()
    }

    /// Records into `recorder` instead of the current one.
    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        describe(Some(&*recorder));
        self.shared = Arc::new(Shared::new(Some(recorder)));
        self
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`HttpMetricsLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct HttpMetrics<S> {
    inner: S,
    shared: Arc<Shared>,
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
            shared: Arc::clone(&self.shared),
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
    shared: Arc<Shared>,
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
        self.shared.record(self.method, route, status, seconds);
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
