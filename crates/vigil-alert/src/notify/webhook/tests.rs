//! Unit tests of the webhook notifier: what is shown of URLs, bodies and
//! answers.

#[test]
fn credentials_stay_out_of_what_is_shown() {
    let url = super::Url::parse("https://user:secret@am.example:9093/api/v2/alerts").unwrap();
    assert_eq!(
        super::redacted(&url),
        "https://am.example:9093/api/v2/alerts"
    );
    let chat = "https://chat.googleapis.com/v1/spaces/AAA/messages?key=k3y&token=t0k&x";
    let url = super::Url::parse(chat).unwrap();
    assert_eq!(
        super::redacted(&url),
        "https://chat.googleapis.com/v1/spaces/AAA/messages?key=***&token=***&x"
    );
}

#[test]
fn retry_after_is_seconds_or_an_http_date() {
    let now: jiff::Timestamp = "2024-05-01T22:00:00Z".parse().unwrap();
    let parse = |value| parse_retry_after(value, now);
    assert_eq!(parse(" 120 "), Some(Duration::from_secs(120)));
    let date = "Wed, 01 May 2024 22:01:30 GMT";
    assert_eq!(parse(date), Some(Duration::from_secs(90)));
    let past = "Wed, 01 May 2024 21:00:00 GMT";
    assert_eq!(parse(past), Some(Duration::ZERO));
    assert_eq!(parse("soon"), None);
    assert_eq!(parse("-5"), None);
}

#[test]
fn urls_as_given_are_masked() {
    let cases = [
        ("am:9093", false, "am:9093"),
        ("ftp://am:9093", true, "ftp://am:9093"),
        (
            "ftp://u:pw@h/a/s3cret?t=tok#f",
            false,
            "ftp://***@h/a/s3cret?t=***",
        ),
        (
            "ftp://u:pw@h/a/s3cret?t=tok#f",
            true,
            "ftp://***@h/a/***?t=***",
        ),
        (
            "hooks.slack.com/services/T/B/s3cret",
            true,
            "hooks.slack.com/services/T/B/***",
        ),
        ("", true, ""),
    ];
    for (text, last, shown) in cases {
        assert_eq!(masked_text(text, last), shown, "{text}");
    }
}

#[test]
fn invalid_url_errors_do_not_repeat_secrets() {
    for bad in [
        "ftp://user:pa55@h/hook?token=t0k",
        "hooks.slack.com/services/T0/B0/s3cret",
        "http://user:pa55@[bad/hook?token=t0k",
    ] {
        let err = WebhookNotifier::new(bad).unwrap_err();
        let shown = format!("{err} {err:?}");
        for secret in ["pa55", "t0k", "s3cret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[test]
fn debug_output_hides_passwords_and_query_tokens() {
    let url = "http://user:pa55@h/hook?token=t0k";
    let builder = WebhookNotifier::builder(url).header("Authorization", "Bearer s3cret");
    let hook = builder.clone().build().unwrap();
    for debug in [format!("{builder:?}"), format!("{hook:?}")] {
        assert!(debug.contains("Authorization") || debug.contains("authorization"));
        for secret in ["pa55", "t0k", "s3cret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}

use std::time::UNIX_EPOCH;

use super::*;
use crate::{Alert, Severity, labels};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn alert(status: AlertStatus, starts_at: SystemTime, ends_at: Option<SystemTime>) -> Alert {
    Alert {
        rule: "Down".into(),
        labels: labels([("alertname", "Down"), ("severity", "high")]),
        annotations: labels([("summary", "it is down")]),
        status,
        severity: Severity::High,
        value: Some(1.0),
        starts_at,
        ends_at,
        silenced: false,
        inhibited: false,
        escalated: false,
    }
}

fn notification(alerts: Vec<Alert>) -> Notification {
    Notification {
        receiver: "r".into(),
        group_key: "{}:{}".into(),
        group_labels: Labels::new(),
        status: AlertStatus::Firing,
        alerts,
        common_labels: Labels::new(),
        common_annotations: Labels::new(),
    }
}

/// The Alertmanager body of a webhook with these settings.
fn am_body(
    n: &Notification,
    now: SystemTime,
    generator: Option<&str>,
    ttl: Option<Duration>,
) -> serde_json::Value {
    let mut hook = WebhookNotifier::builder("http://am/").alertmanager();
    if let Some(generator) = generator {
        hook = hook.generator_url(generator);
    }
    if let Some(ttl) = ttl {
        hook = hook.firing_ttl(ttl);
    }
    serde_json::to_value(hook.build().unwrap().alertmanager_alerts(n, now)).unwrap()
}

#[test]
fn alertmanager_body_has_rfc3339_times_and_no_end_for_firing_alerts() {
    let n = notification(vec![alert(AlertStatus::Firing, at(0), None)]);
    let body = am_body(&n, at(60), Some("http://h/"), None);
    assert_eq!(
        body,
        serde_json::json!([{
            "labels": {"alertname": "Down", "severity": "high"},
            "annotations": {"summary": "it is down"},
            "startsAt": "2023-11-14T22:13:20Z",
            "generatorURL": "http://h/",
        }])
    );
    let ttl = Some(Duration::from_secs(600));
    let body = am_body(&n, at(60), None, ttl);
    assert_eq!(body[0]["endsAt"], "2023-11-14T22:24:20Z");
    assert!(body[0].get("generatorURL").is_none());
}

#[test]
fn firing_alerts_keep_the_validity_they_carry() {
    let mut valid = alert(AlertStatus::Firing, at(0), Some(at(300)));
    let n = notification(vec![valid.clone()]);
    let ttl = Some(Duration::from_secs(600));
    let body = am_body(&n, at(60), None, ttl);
    assert_eq!(body[0]["endsAt"], "2023-11-14T22:18:20Z", "{body}");
    // Never before it started.
    valid.starts_at = at(400);
    let body = am_body(&notification(vec![valid]), at(500), None, None);
    assert_eq!(body[0]["startsAt"], body[0]["endsAt"], "{body}");
}

#[test]
fn resolved_alerts_end_in_the_past_and_after_they_started() {
    let n = notification(vec![
        alert(AlertStatus::Resolved, at(0), Some(at(30))),
        // Clock skew: ended "after now" and started "after now".
        alert(AlertStatus::Resolved, at(100), Some(at(200))),
        // Ended before it started.
        alert(AlertStatus::Resolved, at(20), Some(at(10))),
    ]);
    let body = am_body(&n, at(60), None, None);
    let times = |i: usize| {
        let parse = |k: &str| crate::time::parse_rfc3339(body[i][k].as_str().unwrap()).unwrap();
        (parse("startsAt"), parse("endsAt"))
    };
    assert_eq!(times(0), (at(0), at(30)));
    assert_eq!(times(1), (at(60), at(60)));
    assert_eq!(times(2), (at(20), at(20)));
}

#[test]
fn times_outside_rfc3339_are_clamped_not_panicking() {
    let before = UNIX_EPOCH - Duration::from_secs(10);
    let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
    let n = notification(vec![alert(AlertStatus::Firing, before, Some(far))]);
    let body = am_body(&n, at(0), None, None);
    assert_eq!(body[0]["startsAt"], "1969-12-31T23:59:50Z");
    assert!(body[0]["endsAt"].as_str().unwrap().starts_with("9999-12-"));
}

#[test]
fn urls_are_checked_and_alertmanager_gets_its_path() {
    let am = WebhookNotifier::builder("http://127.0.0.1:9093/")
        .alertmanager()
        .build()
        .unwrap();
    assert_eq!(am.url(), "http://127.0.0.1:9093/api/v2/alerts");
    let custom = WebhookNotifier::builder("http://proxy/am/api/v2/alerts")
        .alertmanager()
        .build()
        .unwrap();
    assert_eq!(custom.url(), "http://proxy/am/api/v2/alerts");
    assert_eq!(
        WebhookNotifier::new("http://h:1/hook").unwrap().url(),
        "http://h:1/hook"
    );
    assert_eq!(
        WebhookNotifier::new("https://h/hook").unwrap().url(),
        "https://h/hook"
    );
    for bad in ["h/hook", "", "ftp://h/", "http://"] {
        assert!(
            matches!(
                WebhookNotifier::new(bad),
                Err(NotifyError::InvalidUrl { .. })
            ),
            "{bad:?}"
        );
    }
    let err = WebhookNotifier::builder("http://h/")
        .header("bad header", "x")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            NotifyError::InvalidConfig {
                field: "header",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn debug_output_hides_header_values() {
    let hook = WebhookNotifier::builder("http://h/")
        .header("Authorization", "Bearer s3cret")
        .build()
        .unwrap();
    let debug = format!("{hook:?}");
    assert!(
        debug.contains("authorization") && !debug.contains("s3cret"),
        "{debug}"
    );
}
