//! The alert loop in the facade: rules read the registry every series is
//! recorded into, and notifications reach the host's notifier.

#![cfg(feature = "alert-routing")]

use std::time::{Duration, Instant, UNIX_EPOCH};

use vigil::Monitor;
use vigil::alert::notify::ChannelNotifier;
use vigil::alert::{AlertStatus, Comparison, Engine, Routing, Rule, Severity, State};

#[test]
fn rules_read_the_registry_and_notify_the_receiver() {
    let rule = Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .per_series()
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .recover_below(50.0)
        .for_duration(Duration::from_secs(30))
        .build()
        .unwrap();
    let engine = Engine::builder()
        .rule(rule)
        .routing(
            Routing::new("ops")
                .group_by(["alertname"])
                .group_wait(Duration::ZERO),
        )
        .build()
        .unwrap();
    let (notifier, mut notifications) = ChannelNotifier::channel(16);
    let monitor = Monitor::builder()
        .manual_upkeep()
        .manual_alerts()
        .alerts(engine)
        .notifier("ops", notifier)
        .build()
        .unwrap();
    let t = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    let depth = |value: f64| {
        vigil::with_local_recorder(&monitor.recorder(), || {
            vigil::metrics::gauge!("queue_depth", "queue" => "emails").set(value);
        })
    };
    let emails = vigil::alert::labels([("queue", "emails")]);
    let state = || {
        monitor
            .with_alerts(|engine| engine.state("QueueBacklog", &emails))
            .unwrap()
    };

    depth(10.0);
    assert!(monitor.evaluate_alerts(t(0)).is_empty());
    depth(500.0);
    monitor.evaluate_alerts(t(15));
    assert_eq!(state(), State::Pending);
    monitor.evaluate_alerts(t(45));
    assert_eq!(state(), State::Firing);

    let deadline = Instant::now() + Duration::from_secs(10);
    let notification = loop {
        match notifications.try_recv() {
            Ok(notification) => break notification,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no notification delivered within 10 s: {e}"),
        }
    };
    assert_eq!(notification.receiver, "ops");
    assert_eq!(notification.alerts[0].status, AlertStatus::Firing);
    assert_eq!(notification.alerts[0].labels["queue"], "emails");

    // Hysteresis: 80 is below the threshold but not below the recovery line.
    depth(80.0);
    monitor.evaluate_alerts(t(60));
    assert_eq!(state(), State::Firing);
    depth(20.0);
    monitor.evaluate_alerts(t(75));
    assert_ne!(state(), State::Firing);

    let text = monitor.render();
    assert!(
        text.contains(r#"alerts_firing{alert="QueueBacklog",severity="high"} 0"#),
        "the engine's gauge is in the same registry:\n{text}"
    );
    let history = monitor
        .with_alerts(|engine| engine.history().by_rule("QueueBacklog").count())
        .unwrap();
    assert!(
        history >= 3,
        "pending, firing and recovery are in the history: {history}"
    );
}

#[test]
fn a_monitor_without_rules_has_no_alerts() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    assert!(monitor.evaluate_alerts(UNIX_EPOCH).is_empty());
    assert!(monitor.with_alerts(|_| ()).is_none());
}

fn queue_rule() -> Rule {
    Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .build()
        .unwrap()
}

#[test]
fn receivers_without_a_notifier_fail_the_build_with_their_names() {
    let rule = Rule::builder("DiskFull")
        .gauge("disk_usage_ratio")
        .threshold(Severity::High, Comparison::Greater, 0.9)
        .escalate_after(Duration::from_secs(3600))
        .escalate_to("boss")
        .build()
        .unwrap();
    let engine = || {
        Engine::builder()
            .rule(rule.clone())
            .routing(
                Routing::new("ops").route(
                    vigil::alert::Route::new("pager")
                        .matcher(vigil::alert::Matcher::equal("severity", "critical")),
                ),
            )
            .build()
            .unwrap()
    };
    let (ops, _keep) = ChannelNotifier::channel(1);
    let err = Monitor::builder()
        .manual_upkeep()
        .manual_alerts()
        .alerts(engine())
        .notifier("ops", ops.clone())
        .notifier("audit", ops.clone())
        .build()
        .unwrap_err();
    let message = err.to_string();
    match &err {
        vigil::Error::UnknownReceivers { unknown, known } => {
            assert_eq!(unknown, &["pager", "boss"]);
            assert_eq!(known, &["ops", "audit"]);
        }
        other => panic!("expected UnknownReceivers, got {other}"),
    }
    assert!(
        message.contains(r#"without a notifier: "pager", "boss";"#)
            && message.contains(r#"registered for: "ops", "audit""#),
        "names the unknown receivers and the known ones: {message}"
    );

    // With a notifier for each, it builds.
    let monitor = Monitor::builder()
        .manual_upkeep()
        .manual_alerts()
        .alerts(engine())
        .notifier("ops", ops.clone())
        .notifier("pager", ops.clone())
        .notifier("boss", ops)
        .build();
    assert!(monitor.is_ok(), "{:?}", monitor.err());

    // Rules with nowhere to go at all.
    let err = Monitor::builder()
        .manual_upkeep()
        .manual_alerts()
        .alerts(Engine::new([queue_rule()]).unwrap())
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"without a notifier: "default"; notifiers are registered for: none"#),
        "{err}"
    );
}

#[cfg(feature = "alert-delivery")]
#[test]
fn alerts_sent_only_to_alertmanager_need_no_notifier() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .manual_alerts()
        .alerts(Engine::new([queue_rule()]).unwrap())
        .alertmanager("http://127.0.0.1:9093")
        .build();
    assert!(monitor.is_ok(), "{:?}", monitor.err());
    // Notifiers next to Alertmanager: vigil's routing is used, and checked.
    let (ops, _keep) = ChannelNotifier::channel(1);
    let err = Monitor::builder()
        .manual_upkeep()
        .manual_alerts()
        .alerts(Engine::new([queue_rule()]).unwrap())
        .alertmanager("http://127.0.0.1:9093")
        .notifier("ops", ops)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains(r#""default""#), "{err}");
}

#[cfg(feature = "alert-delivery")]
#[tokio::test]
async fn a_refused_setting_inside_the_hosts_runtime_is_an_error_not_a_panic() {
    // build() makes its runtime before the Alertmanager URL is checked;
    // dropping that runtime inside the host's would panic.
    let err = Monitor::builder()
        .manual_upkeep()
        .alerts(Engine::new([queue_rule()]).unwrap())
        .alertmanager("ftp://am:9093")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            vigil::Error::Address {
                setting: "alertmanager",
                ..
            }
        ),
        "{err}"
    );
}

#[cfg(feature = "alert-delivery")]
#[test]
fn alertmanager_settings_are_checked_by_build() {
    let build = |url: &str| {
        Monitor::builder()
            .manual_upkeep()
            .manual_alerts()
            .alerts(Engine::new([queue_rule()]).unwrap())
            .alertmanager("http://127.0.0.1:9093")
            .alertmanager(url)
            .build()
    };
    for bad in ["ftp://am:9093", "am:9093", ""] {
        match build(bad) {
            Err(vigil::Error::Address {
                setting: "alertmanager",
                address,
                ..
            }) => assert_eq!(address, bad),
            other => panic!("{bad:?}: expected an address error, got {other:?}"),
        }
    }
    let message = build("ftp://am:9093").unwrap_err().to_string();
    assert!(
        message.contains("ftp://am:9093") && message.contains("`alertmanager`"),
        "{message}"
    );
    // Hosted Alertmanagers answer over TLS.
    assert!(build("https://am:9093").is_ok());

    let err = Monitor::builder()
        .manual_upkeep()
        .alerts(Engine::new([queue_rule()]).unwrap())
        .alertmanager("http://127.0.0.1:9093")
        .alertmanager_resend_delay(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        refused_setting(&err),
        Some("alertmanager_resend_delay"),
        "{err}"
    );
    let err = Monitor::builder()
        .manual_upkeep()
        .alertmanager("http://127.0.0.1:9093")
        .build()
        .unwrap_err();
    assert_eq!(
        refused_setting(&err),
        Some("alertmanager"),
        "an Alertmanager without rules to send: {err}"
    );
}

/// The builder method a [`vigil::Error::Setting`] names.
#[cfg(feature = "alert-delivery")]
fn refused_setting(err: &vigil::Error) -> Option<&'static str> {
    match err {
        vigil::Error::Setting { setting, .. } => Some(setting),
        _ => None,
    }
}
