//! The HTTP middleware on an axum router: route templates, the unmatched
//! route, status codes, methods, durations, failures and cancellations,
//! the series' handles cached, the routes bounded.

#![cfg(feature = "http")]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::{get, post};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower::{Layer, Service, ServiceExt};
use vigil_service::http::{
    HttpMetricsLayer, MAX_ROUTES, OVERFLOW_ROUTE, REQUEST_DURATION_SECONDS, REQUESTS_TOTAL,
};

/// `(method, route, status)` of a series.
type Series = (String, String, String);

fn app() -> (Router, Snapshotter) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let router = Router::new()
        .route("/markets/{id}", get(|| async { "market" }))
        .route(
            "/orders",
            post(|| async { (StatusCode::CREATED, "created") }),
        )
        .route(
            "/broken",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route("/panics", get(panicking))
        .route("/hangs", get(std::future::pending::<&'static str>))
        .layer(HttpMetricsLayer::new().with_recorder(Arc::new(recorder)));
    (router, snapshotter)
}

async fn panicking() -> &'static str {
    panic!("handler failed")
}

fn request(method: Method, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

async fn send(router: &Router, method: Method, uri: &str) -> StatusCode {
    router
        .clone()
        .oneshot(request(method, uri))
        .await
        .unwrap()
        .status()
}

/// Counters and duration sample counts per `(method, route, status)`.
struct Recorded {
    requests: BTreeMap<Series, u64>,
    durations: BTreeMap<Series, Vec<f64>>,
}

fn recorded(snapshotter: &Snapshotter) -> Recorded {
    let mut out = Recorded {
        requests: BTreeMap::new(),
        durations: BTreeMap::new(),
    };
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_else(|| panic!("{key:?} has no {name} label"))
        };
        let series = (label("method"), label("route"), label("status"));
        assert_eq!(key.labels().count(), 3, "{key:?}");
        match (key.name(), value) {
            (REQUESTS_TOTAL, DebugValue::Counter(n)) => {
                out.requests.insert(series, n);
            }
            (REQUEST_DURATION_SECONDS, DebugValue::Histogram(samples)) => {
                out.durations
                    .insert(series, samples.into_iter().map(|s| s.0).collect());
            }
            other => panic!("unexpected metric {other:?}"),
        }
    }
    out
}

fn series(method: &str, route: &str, status: &str) -> Series {
    (method.to_owned(), route.to_owned(), status.to_owned())
}

#[tokio::test]
async fn matched_routes_are_recorded_by_template_not_raw_path() {
    let (router, snapshotter) = app();
    for id in ["1", "2", "abc"] {
        let status = send(&router, Method::GET, &format!("/markets/{id}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let recorded = recorded(&snapshotter);
    let key = series("GET", "/markets/{id}", "200");
    assert_eq!(recorded.requests, BTreeMap::from([(key.clone(), 3)]));
    let durations = &recorded.durations[&key];
    assert_eq!(durations.len(), 3);
    assert!(
        durations
            .iter()
            .all(|d| d.is_finite() && *d >= 0.0 && *d < 10.0),
        "{durations:?}"
    );
}

#[tokio::test]
async fn unmatched_requests_share_the_empty_route() {
    let (router, snapshotter) = app();
    for path in ["/wp-admin", "/.env", "/markets", "/markets/1/extra"] {
        assert_eq!(
            send(&router, Method::GET, path).await,
            StatusCode::NOT_FOUND
        );
    }
    let recorded = recorded(&snapshotter);
    assert_eq!(
        recorded.requests,
        BTreeMap::from([(series("GET", "", "404"), 4)])
    );
    assert_eq!(recorded.durations[&series("GET", "", "404")].len(), 4);
}

#[tokio::test]
async fn status_codes_and_methods_are_labels() {
    let (router, snapshotter) = app();
    assert_eq!(
        send(&router, Method::POST, "/orders").await,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&router, Method::GET, "/broken").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A method the route does not allow: matched, answered 405.
    assert_eq!(
        send(&router, Method::DELETE, "/orders").await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let custom = Method::from_bytes(b"PURGE").unwrap();
    send(&router, custom, "/markets/1").await;
    let recorded = recorded(&snapshotter);
    let requests = recorded.requests;
    assert_eq!(requests[&series("POST", "/orders", "201")], 1);
    assert_eq!(requests[&series("GET", "/broken", "503")], 1);
    assert_eq!(requests[&series("DELETE", "/orders", "405")], 1);
    let other: Vec<_> = requests.keys().filter(|s| s.0 == "OTHER").collect();
    assert_eq!(other.len(), 1, "{requests:?}");
    assert_eq!(requests.len(), 4, "{requests:?}");
}

#[tokio::test]
async fn a_panicking_handler_counts_as_a_500() {
    let (router, snapshotter) = app();
    let task = tokio::spawn(router.oneshot(request(Method::GET, "/panics")));
    let joined = task.await;
    assert!(joined.unwrap_err().is_panic());
    let recorded = recorded(&snapshotter);
    assert_eq!(
        recorded.requests,
        BTreeMap::from([(series("GET", "/panics", "500"), 1)])
    );
}

#[tokio::test]
async fn a_request_dropped_before_its_response_counts_as_a_499() {
    let (mut router, snapshotter) = app();
    {
        let ready = ServiceExt::<Request<Body>>::ready(&mut router)
            .await
            .unwrap();
        let mut response = pin!(ready.call(request(Method::GET, "/hangs")));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(response.as_mut().poll(&mut cx).is_pending());
        assert!(recorded(&snapshotter).requests.is_empty());
    }
    let recorded = recorded(&snapshotter);
    assert_eq!(
        recorded.requests,
        BTreeMap::from([(series("GET", "/hangs", "499"), 1)])
    );
}

#[test]
fn without_a_recorder_the_current_one_is_used() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let router = Router::new()
        .route("/markets/{id}", get(|| async { "market" }))
        .layer(HttpMetricsLayer::new());
    // The response completes inside `block_on` on this thread, where the
    // local recorder is current.
    metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(send(&router, Method::GET, "/markets/7"));
    });
    let recorded = recorded(&snapshotter);
    assert_eq!(
        recorded.requests,
        BTreeMap::from([(series("GET", "/markets/{id}", "200"), 1)])
    );
}

#[tokio::test]
async fn a_service_error_counts_as_a_500() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let failing = tower::service_fn(|_: Request<Body>| async {
        Err::<axum::http::Response<Body>, _>(std::io::Error::other("backend down"))
    });
    let service = HttpMetricsLayer::new()
        .with_recorder(Arc::new(recorder))
        .layer(failing);
    let result = service.oneshot(request(Method::PUT, "/anything")).await;
    assert_eq!(result.unwrap_err().to_string(), "backend down");
    // Outside a router there is no matched path.
    assert_eq!(
        recorded(&snapshotter).requests,
        BTreeMap::from([(series("PUT", "", "500"), 1)])
    );
}

/// A recorder counting the registrations it is asked for.
struct Counting {
    inner: DebuggingRecorder,
    registrations: AtomicUsize,
}

impl Recorder for Counting {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        self.inner.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        self.inner.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        self.inner.register_histogram(key, metadata)
    }
}

#[tokio::test]
async fn a_series_is_registered_once_then_found_in_the_layers_cache() {
    let recorder = Arc::new(Counting {
        inner: DebuggingRecorder::new(),
        registrations: AtomicUsize::new(0),
    });
    let snapshotter = recorder.inner.snapshotter();
    let router = Router::new()
        .route("/markets/{id}", get(|| async { "market" }))
        .route(
            "/orders",
            post(|| async { (StatusCode::CREATED, "created") }),
        )
        .layer(HttpMetricsLayer::new().with_recorder(Arc::clone(&recorder) as _));
    for id in 0..50 {
        send(&router, Method::GET, &format!("/markets/{id}")).await;
        send(&router, Method::POST, "/orders").await;
        send(&router, Method::GET, "/nowhere").await;
    }
    // Three series, a counter and a histogram each: the other 147
    // responses found their handles without asking the recorder.
    assert_eq!(recorder.registrations.load(Ordering::Relaxed), 6);
    let recorded = recorded(&snapshotter);
    assert_eq!(
        recorded.requests,
        BTreeMap::from([
            (series("GET", "", "404"), 50),
            (series("GET", "/markets/{id}", "200"), 50),
            (series("POST", "/orders", "201"), 50),
        ])
    );
    assert!(recorded.durations.values().all(|d| d.len() == 50));
}

#[tokio::test]
async fn route_templates_beyond_the_bound_share_the_overflow_route() {
    let (extra, mut router) = (3, Router::new());
    for i in 0..MAX_ROUTES + extra {
        router = router.route(&format!("/r{i:04}"), get(|| async { "ok" }));
    }
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let router = router.layer(HttpMetricsLayer::new().with_recorder(Arc::new(recorder)));
    for i in 0..MAX_ROUTES + extra {
        send(&router, Method::GET, &format!("/r{i:04}")).await;
    }
    // Seen again: still its own route, or still the overflow one.
    send(&router, Method::GET, "/r0000").await;
    send(&router, Method::GET, &format!("/r{:04}", MAX_ROUTES + 1)).await;
    send(&router, Method::GET, "/unmatched").await;
    let requests = recorded(&snapshotter).requests;
    assert_eq!(
        requests.len(),
        MAX_ROUTES + 2,
        "the overflow and unmatched routes"
    );
    assert_eq!(requests[&series("GET", "/r0000", "200")], 2);
    assert_eq!(
        requests[&series("GET", &format!("/r{:04}", MAX_ROUTES - 1), "200")],
        1
    );
    assert_eq!(
        requests[&series("GET", OVERFLOW_ROUTE, "200")],
        extra as u64 + 1
    );
    assert_eq!(requests[&series("GET", "", "404")], 1);
}
