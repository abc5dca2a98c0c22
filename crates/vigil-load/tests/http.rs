//! URL targets against a local axum server: 4xx and 5xx count as errors,
//! statuses are tallied, bodies and headers are sent with every request,
//! and a refused connection is an error without a status.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use vigil_load::{Error, HttpTarget, LoadTest, StoppedBy};

/// Serves `/ok` (200), `/flaky` (every fourth request 500), `/echo` (POST:
/// 201 for the body `{"ping":1}` as JSON, else 400) and `/private` (200
/// with the bearer token `secret`, else 401) on a free loopback port.
async fn server() -> String {
    let calls = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/flaky",
            get(move || {
                let n = calls.fetch_add(1, Relaxed);
                async move {
                    if n % 4 == 3 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
        .route(
            "/echo",
            post(|headers: HeaderMap, body: String| async move {
                let json = headers
                    .get("content-type")
                    .is_some_and(|v| v == "application/json");
                if json && body == r#"{"ping":1}"# {
                    StatusCode::CREATED
                } else {
                    StatusCode::BAD_REQUEST
                }
            }),
        )
        .route(
            "/private",
            get(|headers: HeaderMap| async move {
                if headers
                    .get("authorization")
                    .is_some_and(|v| v == "Bearer secret")
                {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn load(target: HttpTarget) -> LoadTest {
    LoadTest::new(target)
        .users(4)
        .duration(Duration::from_secs(60))
        .max_requests(200)
}

#[tokio::test]
async fn server_errors_count_as_errors_and_statuses_are_tallied() {
    let base = server().await;
    let report = load(HttpTarget::get(&format!("{base}/flaky")).unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(report.stopped_by, StoppedBy::MaxRequests);
    assert_eq!(report.requests, 200);
    assert_eq!(report.errors, 50, "{report}");
    assert_eq!(report.error_ratio, 0.25);
    assert_eq!(report.statuses.get(&200), Some(&150));
    assert_eq!(report.statuses.get(&500), Some(&50));
    assert!(report.rate > 0.0);
    assert!(
        report.latency.p95 > 0.0 && report.latency.p95 < 1.0,
        "{report}"
    );
    assert!(
        report.to_string().contains("statuses  200: 150  500: 50"),
        "{report}"
    );
}

#[tokio::test]
async fn client_errors_count_as_errors() {
    let base = server().await;
    let report = load(HttpTarget::get(&format!("{base}/missing")).unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!((report.requests, report.errors), (200, 200));
    assert_eq!(report.statuses.get(&404), Some(&200));

    let report = load(HttpTarget::get(&format!("{base}/ok")).unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!((report.requests, report.errors), (200, 0));
}

#[tokio::test]
async fn post_bodies_and_headers_go_with_every_request() {
    let base = server().await;
    let echo = format!("{base}/echo");
    let report = load(HttpTarget::post_json(&echo, r#"{"ping":1}"#).unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(report.statuses.get(&201), Some(&200), "{report}");
    let report = load(HttpTarget::post(&echo, "nope").unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(report.statuses.get(&400), Some(&200), "{report}");

    let private = format!("{base}/private");
    let report = load(
        HttpTarget::get(&private)
            .unwrap()
            .bearer_auth("secret")
            .unwrap(),
    )
    .run()
    .await
    .unwrap();
    assert_eq!(report.errors, 0, "{report}");
    let report = load(HttpTarget::get(&private).unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(report.statuses.get(&401), Some(&200), "{report}");
}

#[tokio::test]
async fn an_open_loop_against_a_url_reaches_its_rate() {
    let base = server().await;
    let report = LoadTest::new(HttpTarget::get(&format!("{base}/ok")).unwrap())
        .rate(100.0)
        .duration(Duration::from_secs(2))
        .run()
        .await
        .unwrap();
    assert_eq!(report.requests, 200, "{report}");
    assert!((report.rate - 100.0).abs() < 1.0, "{report}");
    assert_eq!(report.errors, 0);
}

#[tokio::test]
async fn a_refused_connection_is_an_error_without_a_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let report = LoadTest::new(HttpTarget::get(&format!("http://{address}/")).unwrap())
        .users(1)
        .duration(Duration::from_secs(60))
        .max_requests(5)
        .run()
        .await
        .unwrap();
    assert_eq!((report.requests, report.errors), (5, 5));
    assert!(report.statuses.is_empty());
}

#[test]
fn bad_urls_and_headers_are_errors_that_name_them() {
    let err = HttpTarget::get("not a url").unwrap_err();
    assert!(matches!(err, Error::Url { .. }), "{err}");
    assert!(err.to_string().contains("not a url"), "{err}");
    let err = HttpTarget::get("http://127.0.0.1:1/")
        .unwrap()
        .header("bad header", "x")
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid header `bad header`"),
        "{err}"
    );
}

#[test]
fn debug_and_errors_keep_credentials_out() {
    let target = HttpTarget::get("http://user:hunter2@127.0.0.1:1/x?page=2")
        .unwrap()
        .bearer_auth("tok-123")
        .unwrap()
        .header("x-api-key", "key-456")
        .unwrap();
    let debug = format!("{target:?}");
    for secret in ["hunter2", "tok-123", "key-456"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("authorization"), "{debug}");
    assert!(debug.contains("127.0.0.1:1/x?page=2"), "{debug}");

    let err = HttpTarget::get("http://user:hunter2@[::1/x").unwrap_err();
    assert!(matches!(err, Error::Url { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");

    let err = HttpTarget::get("http://user:hunter2@127.0.0.1:1/")
        .unwrap()
        .header("bad header", "x")
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");

    let client = reqwest::Client::new();
    let err = HttpTarget::from_request(
        client
            .get("http://user:hunter2@127.0.0.1:1/")
            .header("bad\nname", "x"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Request { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}
