//! `WebhookNotifier` against real loopback sockets: bodies in both formats,
//! and endpoints that hang, fail or refuse never delay `dispatch`, and each
//! failure is counted.
//!
//! These run on the real clock: tokio's paused clock auto-advances whenever
//! the runtime waits on I/O, which would fire attempt timeouts while a
//! response is in flight. Backoffs are therefore a few milliseconds (the
//! backoff schedule itself is tested on the paused clock in `notify.rs`),
//! and the hung socket uses a real ~150 ms timeout.

#![cfg(feature = "delivery")]

mod support;

use std::time::{Duration, Instant, SystemTime};

use metrics_util::debugging::DebuggingRecorder;
use support::{Counters, HttpServer, notification, refused_url};
use vigil_alert::notify::{Dispatcher, DispatcherBuilder, Notifier, NotifyError, WebhookNotifier};
use vigil_alert::{AlertStatus, Notification};

const DELIVERED: &str = "alert_notifications_total";
const FAILED: &str = "alert_notification_failures_total";

/// Short real backoffs; `timeout` long enough for loopback requests.
fn dispatcher(webhook: WebhookNotifier) -> DispatcherBuilder {
    Dispatcher::builder()
        .receiver("ops", webhook)
        .initial_backoff(Duration::from_millis(5))
        .max_backoff(Duration::from_millis(20))
        .max_attempts(3)
        .timeout(Duration::from_secs(5))
}

/// Dispatches `n` notifications, asserting each call returns at once.
fn dispatch_quickly(dispatcher: &Dispatcher, n: usize) {
    for _ in 0..n {
        let start = Instant::now();
        assert_eq!(
            dispatcher.dispatch(notification("ops", AlertStatus::Firing)),
            1
        );
        let took = start.elapsed();
        assert!(took < Duration::from_millis(5), "dispatch took {took:?}");
    }
}

async fn finish(dispatcher: Dispatcher) {
    tokio::time::timeout(Duration::from_secs(20), dispatcher.shutdown())
        .await
        .expect("every queued notification is delivered or dropped in time");
}

#[tokio::test]
async fn posts_the_notification_as_json() {
    let server = HttpServer::answering(&[200]);
    let webhook = WebhookNotifier::builder(server.url("/hooks/alerts"))
        .header("Authorization", "Bearer s3cret")
        .build()
        .unwrap();
    let sent = notification("ops", AlertStatus::Firing);

    webhook.notify(&sent).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.line, "POST /hooks/alerts HTTP/1.1");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["authorization"], "Bearer s3cret");
    assert!(request.headers["user-agent"].starts_with("vigil-alert/"));
    let received: Notification = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(received, sent);
}

#[tokio::test]
async fn alertmanager_format_is_an_array_of_alerts_with_rfc3339_times() {
    let server = HttpServer::answering(&[200]);
    let webhook = WebhookNotifier::builder(server.url(""))
        .alertmanager()
        .generator_url("http://checkout.internal/metrics")
        .build()
        .unwrap();

    webhook
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap();
    webhook
        .notify(&notification("ops", AlertStatus::Resolved))
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests[0].line, "POST /api/v2/alerts HTTP/1.1");
    let firing = requests[0].json();
    let alert = &firing.as_array().expect("a JSON array")[0];
    let keys: Vec<&str> = alert
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["annotations", "generatorURL", "labels", "startsAt"]);
    assert_eq!(alert["labels"]["alertname"], "HighErrorRate");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(
        alert["annotations"]["summary"],
        "checkout fails 0.3 of calls"
    );
    assert_eq!(alert["generatorURL"], "http://checkout.internal/metrics");
    let starts_at = humantime::parse_rfc3339(alert["startsAt"].as_str().unwrap()).unwrap();
    assert!(starts_at < SystemTime::now());

    let resolved = &requests[1].json()[0];
    let ends_at = humantime::parse_rfc3339(resolved["endsAt"].as_str().unwrap()).unwrap();
    assert!(
        ends_at < SystemTime::now(),
        "resolved alerts end in the past"
    );
    assert!(ends_at >= starts_at);
}

#[tokio::test]
async fn a_hung_webhook_never_delays_dispatch_and_each_timeout_is_counted() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let server = HttpServer::hanging();
    let webhook = WebhookNotifier::new(&server.url("/hook")).unwrap();
    let dispatcher = dispatcher(webhook)
        .timeout(Duration::from_millis(150))
        .max_attempts(2)
        .build()
        .unwrap();

    dispatch_quickly(&dispatcher, 2);
    let start = Instant::now();
    finish(dispatcher).await;

    // 2 notifications x 2 attempts x 150 ms (+ backoff).
    assert!(start.elapsed() >= Duration::from_millis(600));
    let labels = [
        ("receiver", "ops"),
        ("notifier", "webhook"),
        ("reason", "timeout"),
    ];
    assert_eq!(counters.get(FAILED, &labels), 2);
    assert_eq!(counters.get(DELIVERED, &[]), 0);
}

#[tokio::test]
async fn a_webhook_answering_500_is_retried_then_counted() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let server = HttpServer::answering(&[500]);
    let dispatcher = dispatcher(WebhookNotifier::new(&server.url("/hook")).unwrap())
        .build()
        .unwrap();

    dispatch_quickly(&dispatcher, 2);
    finish(dispatcher).await;

    assert_eq!(server.requests().len(), 6, "3 attempts per notification");
    let labels = [
        ("receiver", "ops"),
        ("notifier", "webhook"),
        ("reason", "error"),
    ];
    assert_eq!(counters.get(FAILED, &labels), 2);
    assert_eq!(counters.get(DELIVERED, &[]), 0);
}

#[tokio::test]
async fn a_refused_connection_never_delays_dispatch_and_is_counted() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let url = refused_url();
    let webhook = WebhookNotifier::new(&url).unwrap();
    let err = webhook
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport { reason, .. } if reason.contains("refused")),
        "{err}"
    );
    let dispatcher = dispatcher(webhook).build().unwrap();

    dispatch_quickly(&dispatcher, 3);
    finish(dispatcher).await;

    let labels = [
        ("receiver", "ops"),
        ("notifier", "webhook"),
        ("reason", "error"),
    ];
    assert_eq!(counters.get(FAILED, &labels), 3);
}

#[tokio::test]
async fn a_webhook_failing_twice_then_succeeding_is_delivered_once_after_three_attempts() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let server = HttpServer::answering(&[500, 503, 200]);
    let dispatcher = dispatcher(WebhookNotifier::new(&server.url("/hook")).unwrap())
        .max_attempts(5)
        .build()
        .unwrap();

    dispatch_quickly(&dispatcher, 1);
    finish(dispatcher).await;

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.body == requests[0].body));
    assert_eq!(counters.get(DELIVERED, &[("notifier", "webhook")]), 1);
    assert_eq!(counters.get(FAILED, &[]), 0);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let server = HttpServer::answering(&[400]);
    let webhook = WebhookNotifier::new(&server.url("/hook")).unwrap();
    let err = webhook
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Status { status: 400, body, .. } if body == "status 400 by script"),
        "{err}"
    );
    let dispatcher = dispatcher(webhook).max_attempts(5).build().unwrap();

    dispatch_quickly(&dispatcher, 1);
    finish(dispatcher).await;

    assert_eq!(
        server.requests().len(),
        2,
        "one direct call, one dispatched attempt"
    );
    assert_eq!(counters.get(FAILED, &[("reason", "error")]), 1);
}

/// One HTTPS request on a loopback port, served with a self-signed
/// certificate for `127.0.0.1`: the request's head and body, as text.
/// Connections whose TLS handshake fails are dropped and the next is
/// awaited.
async fn https_receiver(
    certificate: &rcgen::CertifiedKey<rcgen::KeyPair>,
) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(certificate.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hooks/alerts", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !whole_request(&request) {
                let n = tls.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed the connection mid-request");
                request.extend_from_slice(&buf[..n]);
            }
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            tls.write_all(answer).await.unwrap();
            let _ = tls.shutdown().await;
            return String::from_utf8(request).unwrap();
        }
    });
    (url, server)
}

/// Whether `data` holds a request head and the body its
/// `content-length` announces.
fn whole_request(data: &[u8]) -> bool {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    data.len() >= end + 4 + length
}

#[tokio::test]
async fn posts_over_https_to_a_receiver_it_is_told_to_trust() {
    let certificate = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap();
    let (url, server) = https_receiver(&certificate).await;
    let sent = notification("ops", AlertStatus::Firing);

    // Not among the trusted roots: the handshake fails, before any request.
    let untrusted = WebhookNotifier::new(&url).unwrap();
    let err = untrusted.notify(&sent).await.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport { reason, .. } if reason.contains("certificate")),
        "{err}"
    );

    let trusted = WebhookNotifier::builder(&url)
        .root_certificate(certificate.cert.pem())
        .build()
        .unwrap();
    assert_eq!(trusted.url(), url);
    trusted.notify(&sent).await.unwrap();

    let request = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the receiver got the request")
        .unwrap();
    assert!(
        request.starts_with("POST /hooks/alerts HTTP/1.1\r\n"),
        "{request}"
    );
    let (_, body) = request.split_once("\r\n\r\n").unwrap();
    let received: Notification = serde_json::from_str(body).unwrap();
    assert_eq!(received, sent);
}

#[tokio::test]
async fn every_value_of_a_repeated_header_is_sent_then_the_json_type() {
    let certificate = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap();
    let (url, server) = https_receiver(&certificate).await;
    let webhook = WebhookNotifier::builder(&url)
        .header("X-Tag", "a")
        .header("X-Tag", "b")
        .header("Content-Type", "text/plain")
        .root_certificate(certificate.cert.pem())
        .build()
        .unwrap();
    webhook
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap();

    let request = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the receiver got the request")
        .unwrap()
        .to_ascii_lowercase();
    let lines = |name: &str| {
        let lines = request.lines().filter(|l| l.starts_with(name));
        lines.map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(lines("x-tag:"), ["x-tag: a", "x-tag: b"], "{request}");
    assert_eq!(
        lines("content-type:"),
        ["content-type: text/plain", "content-type: application/json"],
        "{request}"
    );
}

#[test]
fn a_root_certificate_that_is_not_pem_is_refused() {
    let err = WebhookNotifier::builder("https://127.0.0.1/hook")
        .root_certificate("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            NotifyError::InvalidConfig {
                field: "root_certificate",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn the_alertmanager_sender_posts_over_https_to_a_trusted_receiver() {
    let certificate = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap();
    let (url, server) = https_receiver(&certificate).await;
    let base = url.trim_end_matches("/hooks/alerts");
    let sender = vigil_alert::alertmanager::Sender::builder()
        .alertmanager(base)
        .root_certificate(certificate.cert.pem())
        .build()
        .unwrap();
    assert_eq!(sender.urls(), [format!("{base}/api/v2/alerts")]);
    let alert = notification("ops", AlertStatus::Firing).alerts[0].clone();
    assert_eq!(sender.send_alerts(SystemTime::now(), [alert.clone()]), 1);

    let request = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the receiver got the request")
        .unwrap();
    assert!(
        request.starts_with("POST /api/v2/alerts HTTP/1.1\r\n"),
        "{request}"
    );
    let (_, body) = request.split_once("\r\n\r\n").unwrap();
    let posted: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        posted[0]["labels"]["alertname"],
        alert.labels["alertname"].as_str()
    );
    sender.shutdown().await;
}

#[tokio::test]
async fn an_error_body_is_read_only_up_to_its_cap() {
    // A 502 whose body never ends: the error comes back with its first
    // 512 bytes instead of waiting for (and holding) the whole body.
    let server = HttpServer::endless_body(502);
    let webhook = WebhookNotifier::new(&server.url("/hook")).unwrap();
    let sent = notification("ops", AlertStatus::Firing);
    let attempt = webhook.notify(&sent);

    let err = tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .expect("the error returns without reading the whole body")
        .unwrap_err();

    assert!(
        matches!(&err, NotifyError::Status { status: 502, body, .. } if body == &"x".repeat(512)),
        "{err}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_redirect_is_not_followed_nor_retried() {
    let server = HttpServer::answering(&[301, 200]);
    let webhook = WebhookNotifier::new(&server.url("/hook")).unwrap();
    let dispatcher = dispatcher(webhook).build().unwrap();

    dispatch_quickly(&dispatcher, 1);
    finish(dispatcher).await;

    assert_eq!(
        server.requests().len(),
        1,
        "the same request would be redirected again"
    );
}

#[tokio::test]
async fn query_tokens_and_passwords_stay_out_of_errors_and_debug() {
    let url = refused_url().replace("http://", "http://user:pa55@") + "?key=k3y&token=t0k";
    let webhook = WebhookNotifier::builder(&url)
        .header("Authorization", "Bearer s3cret")
        .build()
        .unwrap();

    let err = webhook
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap_err();

    for shown in [err.to_string(), format!("{webhook:?}")] {
        assert!(shown.contains("key=***&token=***"), "{shown}");
        for secret in ["pa55", "k3y", "t0k", "s3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[tokio::test]
async fn throttling_with_retry_after_says_how_long_to_wait() {
    let server = HttpServer::answering_with_headers(&[
        (429, "retry-after: 7\r\n", "slow down"),
        (
            503,
            "Retry-After: Wed, 01 Jan 2020 00:00:00 GMT\r\n",
            "maintenance",
        ),
        (429, "", "slow down"),
    ]);
    let webhook = WebhookNotifier::new(&server.url("/hook")).unwrap();
    let sent = notification("ops", AlertStatus::Firing);

    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(webhook.notify(&sent).await.unwrap_err());
    }

    assert!(
        matches!(&errors[0], NotifyError::Throttled { status: 429, retry_after, body, .. }
            if *retry_after == Duration::from_secs(7) && body == "slow down"),
        "{}",
        errors[0]
    );
    assert_eq!(
        errors[1].retry_after(),
        Some(Duration::ZERO),
        "a date in the past"
    );
    assert!(
        matches!(&errors[2], NotifyError::Status { status: 429, .. }),
        "{}",
        errors[2]
    );
    assert!(errors.iter().all(NotifyError::is_retryable));
}
