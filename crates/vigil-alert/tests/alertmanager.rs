//! Alertmanager delivery against a real Alertmanager (Debian package
//! `prometheus-alertmanager`, binary `prometheus-alertmanager`):
//! `WebhookNotifier` in Alertmanager mode makes a firing alert visible
//! through `GET /api/v2/alerts` with vigil's fingerprint, and resolving it
//! removes it from there; the Prometheus-style `Sender` keeps an alert
//! active there for longer than one send is valid.

#![cfg(feature = "delivery")]

#[path = "../../vigil/tests/servers/mod.rs"]
mod servers;

use std::time::{Duration, SystemTime};

use servers::alertmanager::Alertmanager;
use vigil_alert::alertmanager::Sender;
use vigil_alert::notify::{Dispatcher, WebhookNotifier};
use vigil_alert::{Alert, AlertStatus, Notification, Severity, labels};

/// The alert of [`notification`].
fn alert(status: AlertStatus, starts_at: SystemTime) -> Alert {
    Alert {
        rule: "VigilNotifyIntegration".into(),
        labels: labels([
            ("alertname", "VigilNotifyIntegration"),
            ("service", "checkout"),
            ("severity", "critical"),
        ]),
        annotations: labels([("summary", "checkout fails 30% of calls")]),
        status,
        severity: Severity::Critical,
        value: Some(0.3),
        starts_at,
        ends_at: (status == AlertStatus::Resolved)
            .then(|| SystemTime::now() - Duration::from_secs(1)),
        silenced: false,
        inhibited: false,
        escalated: false,
    }
}

/// A notification built from the crate's public types, as the engine
/// would produce it.
fn notification(status: AlertStatus, starts_at: SystemTime) -> Notification {
    let alert = alert(status, starts_at);
    Notification {
        receiver: "alertmanager".into(),
        group_key: r#"{}:{alertname="VigilNotifyIntegration"}"#.into(),
        group_labels: labels([("alertname", "VigilNotifyIntegration")]),
        status,
        common_labels: alert.labels.clone(),
        common_annotations: alert.annotations.clone(),
        alerts: vec![alert],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_mode_posts_alerts_a_real_alertmanager_lists() {
    let am = Alertmanager::start();

    let webhook = WebhookNotifier::builder(am.url(""))
        .alertmanager()
        .generator_url("http://checkout.internal:8080/metrics")
        .build()
        .unwrap();
    assert_eq!(webhook.url(), am.url("/api/v2/alerts"));
    let dispatcher = Dispatcher::builder()
        .receiver("alertmanager", webhook)
        .timeout(Duration::from_secs(5))
        .initial_backoff(Duration::from_millis(100))
        .max_attempts(3)
        .build()
        .unwrap();

    // Whole seconds, so the time read back compares exactly.
    let started = humantime::parse_rfc3339(
        &humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(120))
            .to_string(),
    )
    .unwrap();
    assert_eq!(
        dispatcher.dispatch(notification(AlertStatus::Firing, started)),
        1
    );
    let alerts = am.wait_for(
        "VigilNotifyIntegration",
        "the firing alert is listed",
        |a| !a.is_empty(),
    );
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    assert_eq!(alert["labels"]["service"], "checkout");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(
        alert["annotations"]["summary"],
        "checkout fails 30% of calls"
    );
    assert_eq!(
        alert["generatorURL"],
        "http://checkout.internal:8080/metrics"
    );
    let starts_at = humantime::parse_rfc3339_weak(alert["startsAt"].as_str().unwrap()).unwrap();
    assert_eq!(starts_at, started);
    let ends_at = humantime::parse_rfc3339_weak(alert["endsAt"].as_str().unwrap()).unwrap();
    assert!(ends_at > SystemTime::now(), "still active: {alert:#}");
    assert_eq!(alert["receivers"][0]["name"], "default");
    let ours = notification(AlertStatus::Firing, started).alerts[0].fingerprint();
    assert_eq!(alert["fingerprint"], ours.as_str(), "{alert:#}");

    // Resolving it (endsAt in the past) takes it off the active list.
    dispatcher.dispatch(notification(AlertStatus::Resolved, started));
    am.wait_for(
        "VigilNotifyIntegration",
        "the resolved alert is gone",
        |a| a.is_empty(),
    );
    dispatcher.shutdown().await;
}

/// Without `endsAt`, Alertmanager (with `resolve_timeout: 10s`) would
/// resolve the alert 10 s after the first post; each send is valid for
/// 4 x 1 s. The sender keeps it active by re-sending every second, and
/// resolves it there as soon as it stops firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_keeps_a_firing_alert_active_and_resolves_it() {
    let am = Alertmanager::start_with_resolve_timeout("10s");
    let resend = Duration::from_secs(1);
    let sender = Sender::builder()
        .alertmanager(am.url(""))
        .resend_delay(resend)
        .evaluation_interval(resend)
        .dispatcher(
            Dispatcher::builder()
                .timeout(Duration::from_secs(2))
                .initial_backoff(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    assert_eq!(sender.valid_for(), Duration::from_secs(4));
    let started = SystemTime::now();
    let firing = alert(AlertStatus::Firing, started);
    let expected = firing.fingerprint();

    // Fire for 14 s, well past one send's validity and the resolve
    // timeout; it must be active at every look.
    let until = tokio::time::Instant::now() + Duration::from_secs(14);
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    let mut seen = 0;
    while tokio::time::Instant::now() < until {
        ticks.tick().await;
        sender.send_alerts(SystemTime::now(), [firing.clone()]);
        let alerts = am.alerts("VigilNotifyIntegration");
        if seen == 0 && alerts.is_empty() {
            continue; // not delivered yet
        }
        seen += 1;
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0]["status"]["state"], "active", "{:#}", alerts[0]);
        assert_eq!(alerts[0]["fingerprint"], expected.as_str());
    }
    assert!(seen >= 20, "the alert was listed at {seen} looks only");

    // It stops firing: resolved there at once, not after 10 s.
    let resolved = std::time::Instant::now();
    sender.send_alerts(SystemTime::now(), []);
    am.wait_for(
        "VigilNotifyIntegration",
        "the resolved alert is gone",
        |a| a.is_empty(),
    );
    assert!(
        resolved.elapsed() < Duration::from_secs(5),
        "resolved after {:?}",
        resolved.elapsed()
    );
    sender.shutdown().await;
}
