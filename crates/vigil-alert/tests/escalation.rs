//! Escalation: alerts firing unresolved for longer than `escalate.after`
//! raise their severity one step (or go to another receiver) and notify
//! again.

#![cfg(feature = "routing")]

mod common;

use common::{s, t};
use vigil_alert::{
    Comparison, Engine, Escalation, Labels, MemorySource, Notification, Routing, Rule, RuleBuilder,
    Severity, State,
};

const WAIT: u64 = 30;
const INTERVAL: u64 = 300;

fn lag_rule() -> RuleBuilder {
    Rule::builder("ReplicationLag")
        .gauge("lag_seconds")
        .threshold(Severity::Medium, Comparison::Greater, 60.0)
}

fn engine(rule: RuleBuilder) -> Engine {
    Engine::builder()
        .rule(rule.build().unwrap())
        .routing(
            Routing::new("team")
                .group_by(["alertname"])
                .group_wait(s(WAIT))
                .group_interval(s(INTERVAL)),
        )
        .build()
        .unwrap()
}

fn lag(src: &mut MemorySource, v: f64) {
    src.set_gauge("lag_seconds", Labels::new(), v);
}

fn tick(e: &mut Engine, src: &MemorySource, secs: u64) -> Vec<Notification> {
    e.evaluate(t(secs), src);
    e.due_notifications(t(secs))
}

#[test]
fn an_unresolved_alert_escalates_one_severity_step_and_notifies_again() {
    let mut e = engine(lag_rule().escalate_after(s(1800)));
    let mut src = MemorySource::new();
    lag(&mut src, 120.0);
    tick(&mut e, &src, 0);
    let n = tick(&mut e, &src, WAIT);
    assert_eq!(n[0].alerts[0].severity, Severity::Medium);
    assert!(!n[0].alerts[0].escalated);
    let mut escalation = None;
    let mut secs = WAIT;
    while escalation.is_none() && secs < 4000 {
        secs += 60;
        e.evaluate(t(secs), &src);
        escalation = e
            .history()
            .iter()
            .find(|t| t.escalated)
            .map(|t| (t.at, t.from, t.to, t.from_severity, t.severity));
    }
    assert_eq!(
        escalation,
        Some((
            t(1830),
            State::Firing,
            State::Firing,
            Some(Severity::Medium),
            Some(Severity::High)
        )),
        "first evaluation at or after 1800 s of firing"
    );
    let n = e.due_notifications(t(WAIT + 6 * INTERVAL));
    assert_eq!(n.len(), 1);
    let a = &n[0].alerts[0];
    assert_eq!(
        (a.severity, a.escalated, a.starts_at),
        (Severity::High, true, t(0))
    );
    assert_eq!(
        n[0].alerts.len(),
        1,
        "the medium alert is inhibited, not resolved"
    );
}

#[test]
fn escalation_is_cleared_by_resolution() {
    let mut e = engine(lag_rule().escalate_after(s(60)));
    let mut src = MemorySource::new();
    lag(&mut src, 120.0);
    e.evaluate(t(0), &src);
    let tr = e.evaluate(t(60), &src);
    assert!(tr[0].escalated);
    lag(&mut src, 0.0);
    let tr = e.evaluate(t(70), &src);
    assert_eq!(
        (tr[0].to, tr[0].severity, tr[0].escalated),
        (State::Resolved, Some(Severity::High), false)
    );
    lag(&mut src, 120.0);
    let tr = e.evaluate(t(80), &src);
    assert_eq!(
        (tr[0].to, tr[0].severity, tr[0].escalated),
        (State::Firing, Some(Severity::Medium), false)
    );
}

#[test]
fn a_critical_alert_stays_critical_but_is_notified_again() {
    let mut e = engine(
        Rule::builder("Down")
            .gauge("up")
            .threshold(Severity::Critical, Comparison::Less, 1.0)
            .escalate_after(s(600)),
    );
    let mut src = MemorySource::new();
    src.set_gauge("up", Labels::new(), 0.0);
    tick(&mut e, &src, 0);
    assert_eq!(tick(&mut e, &src, WAIT).len(), 1);
    assert!(tick(&mut e, &src, WAIT + INTERVAL).is_empty());
    // Escalates at 630 s (first evaluation at or after 600 s), notified at
    // the next group_interval tick.
    let n = tick(&mut e, &src, WAIT + 2 * INTERVAL);
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].alerts[0].severity, n[0].alerts[0].escalated),
        (Severity::Critical, true)
    );
}

#[test]
fn escalation_to_a_receiver_notifies_it_in_addition_to_the_route() {
    let mut e = engine(lag_rule().escalation(Escalation {
        after: s(600),
        raise_severity: false,
        receiver: Some("manager".into()),
    }));
    let mut src = MemorySource::new();
    lag(&mut src, 120.0);
    tick(&mut e, &src, 0);
    assert_eq!(tick(&mut e, &src, WAIT)[0].receiver, "team");
    assert!(tick(&mut e, &src, WAIT + INTERVAL).is_empty());
    // Escalates at 600 s; the escalation group is new, so it waits
    // group_wait, which here coincides with the route group's next check.
    assert!(tick(&mut e, &src, 600).is_empty());
    let n = tick(&mut e, &src, WAIT + 2 * INTERVAL);
    let got: Vec<_> = n
        .iter()
        .map(|n| {
            (
                n.receiver.as_str(),
                n.alerts[0].severity,
                n.alerts[0].escalated,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("manager", Severity::Medium, true),
            ("team", Severity::Medium, true)
        ]
    );
    assert_eq!(
        n[0].group_key,
        r#"{}/{escalated_to="manager"}:{alertname="ReplicationLag"}"#
    );
    // Both are told when it resolves.
    lag(&mut src, 0.0);
    let n = tick(&mut e, &src, WAIT + 3 * INTERVAL);
    let mut receivers: Vec<_> = n.iter().map(|n| n.receiver.as_str()).collect();
    receivers.sort();
    assert_eq!(receivers, ["manager", "team"]);
}

#[test]
fn escalation_counts_in_alerts_firing_severity() {
    let mut e = engine(lag_rule().escalate_after(s(60)));
    let mut src = MemorySource::new();
    lag(&mut src, 120.0);
    e.evaluate(t(0), &src);
    e.evaluate(t(60), &src);
    let i = &e.instances()[0];
    assert_eq!(
        (i.state, i.severity, i.escalated),
        (State::Firing, Some(Severity::High), true)
    );
}
