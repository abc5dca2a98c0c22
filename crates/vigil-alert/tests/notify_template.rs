//! The templated webhook (`WebhookBuilder::template`) against a loopback
//! HTTP receiver: one request per alert with the user's body filled in,
//! typed values for lone placeholders, escaping of hostile label values,
//! and unknown placeholders refused when built.

#![cfg(feature = "delivery")]

mod support;

use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;
use support::{HttpServer, notification};
use vigil_alert::notify::{Notifier, NotifyError, WebhookFormat, WebhookNotifier};
use vigil_alert::{AlertStatus, Comparison, Notification, Rule, Severity};

/// The body the TTA platform's receiver expects.
fn tta_template() -> serde_json::Value {
    json!({
        "alert_type": "{{alert}}",
        "message": "{{summary}}",
        "severity": "{{severity}}",
        "timestamp": "{{timestamp}}",
        "service": "tta",
    })
}

/// A firing and a resolved alert of the same rule, at fixed times.
fn firing_and_resolved() -> Notification {
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    let mut n = notification("ops", AlertStatus::Firing);
    n.alerts[0].starts_at = at(0);
    let mut resolved = n.alerts[0].clone();
    resolved.labels.insert("function".into(), "refund".into());
    resolved.status = AlertStatus::Resolved;
    resolved.value = None;
    resolved.ends_at = Some(at(90));
    n.alerts.push(resolved);
    n
}

#[tokio::test]
async fn posts_the_template_filled_in_once_per_alert() {
    let server = HttpServer::answering(&[200]);
    let webhook = WebhookNotifier::builder(server.url("/tta/alerts"))
        .template(tta_template())
        .header("Authorization", "Bearer s3cret")
        .build()
        .unwrap();
    assert_eq!(webhook.format(), WebhookFormat::Template);
    assert_eq!(webhook.name(), "webhook");

    webhook.notify(&firing_and_resolved()).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one request per alert");
    for request in &requests {
        assert_eq!(request.line, "POST /tta/alerts HTTP/1.1");
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.headers["authorization"], "Bearer s3cret");
    }
    assert_eq!(
        requests[0].json(),
        json!({
            "alert_type": "HighErrorRate",
            "message": "checkout fails 0.3 of calls",
            "severity": "critical",
            "timestamp": "2023-11-14T22:13:20Z",
            "service": "tta",
        })
    );
    assert_eq!(
        requests[1].json(),
        json!({
            "alert_type": "HighErrorRate",
            "message": "checkout fails 0.3 of calls",
            "severity": "critical",
            "timestamp": "2023-11-14T22:14:50Z",
            "service": "tta",
        })
    );
}

#[tokio::test]
async fn lone_placeholders_keep_their_json_type() {
    let server = HttpServer::answering(&[200]);
    let rule = Rule::builder("HighErrorRate")
        .gauge("error_ratio")
        .threshold(Severity::Critical, Comparison::Greater, 0.2)
        .build()
        .unwrap();
    let webhook = WebhookNotifier::builder(server.url("/hook"))
        .template(json!({
            "value": "{{value}}",
            "threshold": "{{ threshold }}",
            "count": "{{count}}",
            "ends_at": "{{ends_at}}",
            "missing": "{{labels.nope}}",
            "text": "{{alert}} at {{value}} (limit {{threshold}}) on {{labels.function}}{{labels.nope}}",
            "details": {
                "status": "{{status}}",
                "tags": ["{{receiver}}", "{{annotations.summary}}", 7, true, null],
                "fingerprint": "{{fingerprint}}",
            },
        }))
        .rules([&rule])
        .build()
        .unwrap();
    let sent = firing_and_resolved();

    webhook.notify(&sent).await.unwrap();

    let requests = server.requests();
    assert_eq!(
        requests[0].json(),
        json!({
            "value": 0.3,
            "threshold": 0.2,
            "count": 2,
            "ends_at": null,
            "missing": null,
            "text": "HighErrorRate at 0.3 (limit 0.2) on checkout",
            "details": {
                "status": "firing",
                "tags": ["ops", "checkout fails 0.3 of calls", 7, true, null],
                "fingerprint": sent.alerts[0].fingerprint(),
            },
        })
    );
    let resolved = requests[1].json();
    assert_eq!(resolved["value"], json!(null), "the series was absent");
    assert_eq!(resolved["ends_at"], "2023-11-14T22:14:50Z");
    assert_eq!(resolved["details"]["status"], "resolved");
    assert_eq!(resolved["text"], "HighErrorRate at  (limit 0.2) on refund");
}

#[tokio::test]
async fn label_values_with_quotes_and_newlines_are_escaped() {
    let server = HttpServer::answering(&[200]);
    let hostile = "a \"quoted\" \\ value\nwith a newline, a tab\t, </script> and ünïcödé";
    let mut sent = notification("ops", AlertStatus::Firing);
    sent.alerts[0]
        .labels
        .insert("function".into(), hostile.into());
    let webhook = WebhookNotifier::builder(server.url("/hook"))
        .template(json!({"whole": "{{labels.function}}", "inside": "fn: {{labels.function}}!"}))
        .build()
        .unwrap();

    webhook.notify(&sent).await.unwrap();

    let body = &server.requests()[0].body;
    let text = std::str::from_utf8(body).unwrap();
    assert!(!text.contains('\n'), "newlines are escaped: {text}");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(body).unwrap(),
        json!({"whole": hostile, "inside": format!("fn: {hostile}!")})
    );
}

#[test]
fn unknown_placeholders_are_refused_with_their_path() {
    let err = WebhookNotifier::builder("http://127.0.0.1:9/hook")
        .template(json!({"alert_type": "{{alert}}", "details": [{"msg": "at {{ $value }}"}]}))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::UnknownPlaceholder { placeholder, path }
            if placeholder == "$value" && path == "$.details[0].msg"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("unknown placeholder `{{$value}}` at $.details[0].msg (known: alert,"),
        "{message}"
    );

    let err = WebhookNotifier::builder("http://127.0.0.1:9/hook")
        .format(WebhookFormat::Template)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            NotifyError::InvalidConfig {
                field: "template",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn body_previews_every_request_as_an_array() {
    let webhook = WebhookNotifier::builder("http://127.0.0.1:9/hook")
        .template(json!({"alert": "{{alert}}", "function": "{{labels.function}}"}))
        .build()
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&webhook.body(&firing_and_resolved()).unwrap()).unwrap();
    assert_eq!(
        body,
        json!([
            {"alert": "HighErrorRate", "function": "checkout"},
            {"alert": "HighErrorRate", "function": "refund"},
        ])
    );
}
