//! Alertmanager-style grouping and routing: `group_by`, `group_wait`,
//! `group_interval`, `repeat_interval`, resolved notifications, routes.

#![cfg(feature = "routing")]

mod common;

use common::{s, summary, t};
use vigil_alert::{
    AlertStatus, Comparison, Engine, Matcher, MemorySource, Notification, Route, Routing, Rule,
    Severity,
};

const WAIT: u64 = 30;
const INTERVAL: u64 = 300;
const REPEAT: u64 = 3600;

fn routing() -> Routing {
    Routing::new("team")
        .group_by(["alertname"])
        .group_wait(s(WAIT))
        .group_interval(s(INTERVAL))
        .repeat_interval(s(REPEAT))
}

fn cpu_rule() -> Rule {
    Rule::builder("HighCpu")
        .gauge("cpu")
        .threshold(Severity::High, Comparison::Greater, 0.9)
        .annotation("summary", "{{ $labels.host }} at {{ $value }}")
        .build()
        .unwrap()
}

fn engine(routing: Routing) -> Engine {
    Engine::builder()
        .rule(cpu_rule())
        .routing(routing)
        .build()
        .unwrap()
}

fn cpu(src: &mut MemorySource, host: &str, v: f64) {
    src.set_gauge("cpu", [("host", host)], v);
}

/// Evaluates and flushes at `secs`.
fn tick(e: &mut Engine, src: &MemorySource, secs: u64) -> Vec<Notification> {
    e.evaluate(t(secs), src);
    e.due_notifications(t(secs))
}

#[test]
fn group_wait_delays_the_first_notification_and_batches_alerts() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    assert!(tick(&mut e, &src, 0).is_empty(), "group_wait not over");
    cpu(&mut src, "b", 0.99);
    assert!(tick(&mut e, &src, 10).is_empty());
    assert_eq!(e.next_notification_at(), Some(t(WAIT)));
    let n = tick(&mut e, &src, WAIT);
    assert_eq!(
        summary(&n, "host"),
        [(
            "team".to_owned(),
            vec![("a".into(), "firing".into()), ("b".into(), "firing".into())]
        )]
    );
    let n = &n[0];
    assert_eq!(n.status, AlertStatus::Firing);
    assert_eq!(n.group_labels, common::l([("alertname", "HighCpu")]));
    assert_eq!(n.group_key, r#"{}:{alertname="HighCpu"}"#);
    assert_eq!(n.common_labels["severity"], "high");
    assert!(!n.common_labels.contains_key("host"));
    let a = &n.alerts[0];
    assert_eq!(a.labels["alertname"], "HighCpu");
    assert_eq!(a.labels["severity"], "high");
    assert_eq!(a.annotations["summary"], "a at 0.95");
    assert_eq!((a.starts_at, a.ends_at, a.value), (t(0), None, Some(0.95)));
    assert!(!a.silenced && !a.escalated);
    // Handed over: nothing more is due at the same time.
    assert!(e.due_notifications(t(WAIT)).is_empty());
}

#[test]
fn a_new_alert_in_a_notified_group_waits_for_group_interval() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 0);
    assert_eq!(tick(&mut e, &src, WAIT).len(), 1);
    cpu(&mut src, "b", 0.95);
    assert!(tick(&mut e, &src, WAIT + 10).is_empty());
    assert!(tick(&mut e, &src, WAIT + INTERVAL - 1).is_empty());
    let n = tick(&mut e, &src, WAIT + INTERVAL);
    // The whole group: the known alert and the new one.
    assert_eq!(
        summary(&n, "host"),
        [(
            "team".to_owned(),
            vec![("a".into(), "firing".into()), ("b".into(), "firing".into())]
        )]
    );
}

#[test]
fn an_unchanged_group_is_renotified_after_repeat_interval() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 0);
    assert_eq!(tick(&mut e, &src, WAIT).len(), 1);
    let mut sent = vec![];
    let mut secs = WAIT;
    while secs < WAIT + 2 * REPEAT + INTERVAL {
        secs += 60;
        if !tick(&mut e, &src, secs).is_empty() {
            sent.push(secs);
        }
    }
    // Checked every group_interval (300 s), sent once repeat_interval (3600 s) passed.
    assert_eq!(sent, [WAIT + REPEAT, WAIT + 2 * REPEAT]);
}

#[test]
fn resolved_alerts_are_notified_once_then_forgotten() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    cpu(&mut src, "b", 0.95);
    tick(&mut e, &src, 0);
    assert_eq!(tick(&mut e, &src, WAIT).len(), 1);
    cpu(&mut src, "a", 0.1);
    assert!(
        tick(&mut e, &src, 100).is_empty(),
        "waits for group_interval"
    );
    let n = tick(&mut e, &src, WAIT + INTERVAL);
    assert_eq!(
        summary(&n, "host"),
        [(
            "team".to_owned(),
            vec![
                ("b".into(), "firing".into()),
                ("a".into(), "resolved".into())
            ]
        )]
    );
    let resolved = &n[0].alerts[1];
    assert_eq!(resolved.ends_at, Some(t(100)));
    assert_eq!(
        resolved.value,
        Some(0.95),
        "the last value while firing, as in Prometheus"
    );
    assert_eq!(n[0].status, AlertStatus::Firing);
    // All resolved: a notification with status resolved, then the group is gone.
    cpu(&mut src, "b", 0.1);
    let n = tick(&mut e, &src, WAIT + 2 * INTERVAL);
    assert_eq!(
        summary(&n, "host"),
        [("team".to_owned(), vec![("b".into(), "resolved".into())])]
    );
    assert_eq!(n[0].status, AlertStatus::Resolved);
    assert_eq!(e.next_notification_at(), None);
    assert!(e.alerts(t(1000)).is_empty());
}

#[test]
fn an_alert_resolved_before_its_first_notification_is_never_sent() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 0);
    cpu(&mut src, "a", 0.1);
    tick(&mut e, &src, 10);
    assert!(tick(&mut e, &src, WAIT).is_empty());
    assert_eq!(e.next_notification_at(), None, "empty group dropped");
}

#[test]
fn a_flap_between_notifications_is_not_notified() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 0);
    assert_eq!(tick(&mut e, &src, WAIT).len(), 1);
    cpu(&mut src, "a", 0.1);
    tick(&mut e, &src, 60);
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 120);
    assert!(tick(&mut e, &src, WAIT + INTERVAL).is_empty());
}

#[test]
fn group_by_splits_alerts_into_groups() {
    let mut e = engine(routing().group_by(["alertname", "host"]));
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    cpu(&mut src, "b", 0.95);
    tick(&mut e, &src, 0);
    let n = tick(&mut e, &src, WAIT);
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].group_key, r#"{}:{alertname="HighCpu", host="a"}"#);
    assert_eq!(n[1].group_labels["host"], "b");
    assert!(n.iter().all(|n| n.alerts.len() == 1));
}

#[test]
fn group_by_all_labels_makes_one_group_per_alert() {
    let mut e = engine(routing().group_by(["..."]));
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    cpu(&mut src, "b", 0.95);
    tick(&mut e, &src, 0);
    let n = tick(&mut e, &src, WAIT);
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].group_labels.len(), 3, "alertname, host, severity");
}

#[test]
fn an_empty_group_by_puts_everything_in_one_group() {
    let disk = Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Medium, Comparison::Greater, 0.9)
        .build()
        .unwrap();
    let mut e = Engine::builder()
        .rules([cpu_rule(), disk])
        .routing(Routing::new("all").group_wait(s(WAIT)))
        .build()
        .unwrap();
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    src.set_gauge("disk", [("host", "a")], 0.95);
    tick(&mut e, &src, 0);
    let n = tick(&mut e, &src, WAIT);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].alerts.len(), 2);
    assert!(n[0].group_labels.is_empty());
    assert_eq!(n[0].group_key, "{}:{}");
}

#[test]
fn the_first_matching_route_wins_and_the_default_takes_the_rest() {
    let routing = routing()
        .route(
            Route::new("pager")
                .matcher(Matcher::equal("severity", "critical"))
                .group_wait(s(0)),
        )
        .route(Route::new("web-team").matcher(Matcher::regex("host", "web-.*").unwrap()))
        .route(Route::new("never").matcher(Matcher::equal("severity", "critical")));
    let disk = Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Critical, Comparison::Greater, 0.9)
        .build()
        .unwrap();
    let mut e = Engine::builder()
        .rules([cpu_rule(), disk])
        .routing(routing)
        .build()
        .unwrap();
    let mut src = MemorySource::new();
    cpu(&mut src, "web-1", 0.95);
    cpu(&mut src, "db-1", 0.95);
    src.set_gauge("disk", [("host", "web-1")], 0.95);
    let n = tick(&mut e, &src, 0);
    assert_eq!(
        summary(&n, "alertname"),
        [(
            "pager".to_owned(),
            vec![("DiskFull".into(), "firing".into())]
        )]
    );
    assert_eq!(
        n[0].group_key,
        r#"{}/{severity="critical"}:{alertname="DiskFull"}"#
    );
    let n = tick(&mut e, &src, WAIT);
    let receivers: Vec<_> = n
        .iter()
        .map(|n| (n.receiver.as_str(), n.alerts[0].labels["host"].as_str()))
        .collect();
    assert_eq!(receivers, [("team", "db-1"), ("web-team", "web-1")]);
}

#[test]
fn routes_inherit_unset_timers_from_the_default() {
    let routing =
        routing().route(Route::new("ops").matcher(Matcher::equal("alertname", "HighCpu")));
    let mut e = engine(routing);
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 0);
    assert!(tick(&mut e, &src, WAIT - 1).is_empty());
    assert_eq!(tick(&mut e, &src, WAIT)[0].receiver, "ops");
}

#[test]
fn notifications_serialize_with_rfc3339_times() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 0);
    let n = tick(&mut e, &src, WAIT);
    let json = serde_json::to_value(&n[0]).unwrap();
    assert_eq!(json["receiver"], "team");
    assert_eq!(json["status"], "firing");
    assert_eq!(json["alerts"][0]["status"], "firing");
    assert_eq!(json["alerts"][0]["severity"], "high");
    assert_eq!(json["alerts"][0]["starts_at"], "2023-11-14T22:13:20Z");
    assert_eq!(json["alerts"][0]["ends_at"], serde_json::Value::Null);
    let back: Notification = serde_json::from_value(json).unwrap();
    assert_eq!(back, n[0]);
}

/// A firing alert whose value changes is handed to its group again: a
/// repeated notification carries the new value and annotations.
#[test]
fn a_repeated_notification_carries_the_latest_value() {
    let mut e = engine(routing());
    let mut src = MemorySource::new();
    cpu(&mut src, "a", 0.95);
    tick(&mut e, &src, 0);
    assert_eq!(tick(&mut e, &src, WAIT)[0].alerts[0].value, Some(0.95));
    cpu(&mut src, "a", 0.97);
    tick(&mut e, &src, WAIT + 15);
    // Unchanged since: nothing to hand over again.
    tick(&mut e, &src, WAIT + 30);
    let n = tick(&mut e, &src, WAIT + REPEAT);
    assert_eq!(n[0].alerts[0].value, Some(0.97));
    assert_eq!(n[0].alerts[0].annotations["summary"], "a at 0.97");
}
