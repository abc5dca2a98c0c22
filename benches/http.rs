//! The cost per request of `Monitor::http_layer` on an axum router, against
//! the same router without middleware (the floor) and against what a user
//! writes instead: an `axum::middleware::from_fn` recording the same two
//! metrics with `metrics::counter!` and `metrics::histogram!` into
//! `metrics-exporter-prometheus`'s recorder, in one run.
//!
//! ```text
//! cargo bench -p vigil-benches --bench http
//! python3 scripts/bench-report http floor
//! ```
//!
//! Every request is `GET /markets/{id}` with one of 10 000 ids (cycled),
//! driven with `tower::ServiceExt::oneshot` on a current-thread tokio
//! runtime, no sockets: the time is routing, the handler (which parses
//! the id) and the middleware. Both sides label by the matched route
//! template, so the 10 000 raw paths make one series each; the run checks
//! it at the end. Both recorders run their upkeep once a second, as in a
//! service.

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Uri;
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::ServiceExt;

/// How many distinct ids the requests cycle through.
const IDS: u64 = 10_000;

async fn show_market(Path(id): Path<u64>) -> String {
    format!("market {id}")
}

fn app() -> Router {
    Router::new().route("/markets/{id}", get(show_market))
}

/// The peer: the middleware a user writes by hand (as axum's
/// `prometheus-metrics` example does), recording the same two metrics with
/// the same labels into the current `metrics` recorder.
async fn record_by_hand(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_server_requests_total", &labels).increment(1);
    metrics::histogram!("http_server_request_duration_seconds", &labels).record(seconds);
    response
}

/// Sends one request for the next id to a clone of `app`.
fn serve(runtime: &tokio::runtime::Runtime, app: &Router, uris: &mut impl Iterator<Item = Uri>) {
    let uri = uris.next().expect("the ids cycle");
    let request = Request::get(uri)
        .body(Body::empty())
        .expect("a GET with a valid uri");
    let response = runtime
        .block_on(app.clone().oneshot(request))
        .expect("the router is infallible");
    assert!(response.status().is_success());
    black_box(response);
}

/// Asserts that `text` exposes the request counter by route template
/// only, never by raw path.
fn assert_by_template(side: &str, text: &str) {
    assert!(
        text.contains(r#"route="/markets/{id}""#),
        "{side}: no series for the route template"
    );
    assert!(
        !text.contains(r#"route="/markets/1""#),
        "{side}: a series for a raw path"
    );
}

fn http(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let uris: Vec<Uri> = (0..IDS)
        .map(|id| format!("/markets/{id}").parse().expect("a valid uri"))
        .collect();
    let mut uris = uris.into_iter().cycle();

    let monitor = vigil::Monitor::builder()
        .build()
        .expect("a monitor without listener");
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let upkeep = handle.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            upkeep.run_upkeep();
        }
    });

    let mut group = c.benchmark_group("http");

    let floor = app();
    group.bench_function("floor", |b| b.iter(|| serve(&runtime, &floor, &mut uris)));

    let vigil = app().layer(monitor.http_layer());
    group.bench_function("vigil_http_layer", |b| {
        b.iter(|| serve(&runtime, &vigil, &mut uris))
    });

    let peer = app().layer(middleware::from_fn(record_by_hand));
    metrics::with_local_recorder(&recorder, || {
        group.bench_function("metrics_from_fn_prometheus", |b| {
            b.iter(|| serve(&runtime, &peer, &mut uris))
        });
    });

    group.finish();

    assert_by_template("vigil", &monitor.render());
    assert_by_template("peer", &handle.render());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = http
}
criterion_main!(benches);
