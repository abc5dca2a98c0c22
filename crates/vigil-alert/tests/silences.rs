//! Silences (runtime, time-ranged, flagged in history, never notified) and
//! inhibition (built-in by severity, and Alertmanager inhibit rules).

#![cfg(feature = "routing")]

mod common;

use common::{l, moves, s, summary, t};
use vigil_alert::{
    Comparison, Engine, Error, InhibitRule, Matcher, MemorySource, Notification, Routing, Rule,
    Severity, Silence, SilenceId, SilenceState, State,
};

const WAIT: u64 = 30;
const INTERVAL: u64 = 300;

fn routing() -> Routing {
    Routing::new("team")
        .group_by(["alertname"])
        .group_wait(s(WAIT))
        .group_interval(s(INTERVAL))
}

fn disk_rule() -> Rule {
    Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Medium, Comparison::Greater, 80.0)
        .threshold(Severity::Critical, Comparison::Greater, 95.0)
        .build()
        .unwrap()
}

fn engine(rules: impl IntoIterator<Item = Rule>) -> Engine {
    Engine::builder()
        .rules(rules)
        .routing(routing())
        .build()
        .unwrap()
}

fn tick(e: &mut Engine, src: &MemorySource, secs: u64) -> Vec<Notification> {
    e.evaluate(t(secs), src);
    e.due_notifications(t(secs))
}

fn disk(src: &mut MemorySource, host: &str, v: f64) {
    src.set_gauge("disk", [("host", host)], v);
}

#[test]
fn silenced_instances_change_state_and_are_flagged_in_history_but_not_notified() {
    let mut e = engine([disk_rule()]);
    let id = e
        .add_silence(
            Silence::new(t(0), t(1000))
                .matcher(Matcher::equal("host", "a"))
                .created_by("ops")
                .comment("migration"),
        )
        .unwrap();
    assert_eq!(id, SilenceId(1));
    let mut src = MemorySource::new();
    disk(&mut src, "a", 90.0);
    disk(&mut src, "b", 90.0);
    let tr = e.evaluate(t(0), &src);
    let flags: Vec<_> = tr
        .iter()
        .map(|t| (t.labels["host"].as_str(), t.silenced))
        .collect();
    assert_eq!(flags.len(), 2);
    assert!(flags.contains(&("a", true)) && flags.contains(&("b", false)));
    assert_eq!(e.state("DiskFull", &l([("host", "a")])), State::Firing);
    let n = e.due_notifications(t(WAIT));
    assert_eq!(
        summary(&n, "host"),
        [("team".to_owned(), vec![("b".into(), "firing".into())])]
    );
    let listed: Vec<_> = e
        .alerts(t(WAIT))
        .into_iter()
        .map(|a| (a.labels["host"].clone(), a.silenced))
        .collect();
    assert_eq!(listed, [("a".to_owned(), true), ("b".to_owned(), false)]);
    // Its resolution is silent too.
    disk(&mut src, "a", 10.0);
    let tr = e.evaluate(t(100), &src);
    assert_eq!(moves(&tr), [(State::Firing, State::Resolved)]);
    assert!(tr[0].silenced);
    assert!(e.due_notifications(t(WAIT + INTERVAL)).is_empty());
    let silenced_in_history = e.history().iter().filter(|t| t.silenced).count();
    assert_eq!(silenced_in_history, 2);
}

#[test]
fn an_expired_silence_lets_notifications_through_again() {
    let mut e = engine([disk_rule()]);
    let id = e
        .add_silence(Silence::new(t(0), t(10_000)).matcher(Matcher::equal("alertname", "DiskFull")))
        .unwrap();
    let mut src = MemorySource::new();
    disk(&mut src, "a", 90.0);
    tick(&mut e, &src, 0);
    assert!(tick(&mut e, &src, WAIT).is_empty());
    e.expire_silence(id, t(100)).unwrap();
    assert_eq!(e.silence(id).unwrap().state(t(100)), SilenceState::Expired);
    assert_eq!(e.silence(id).unwrap().ends_at, t(100));
    let n = tick(&mut e, &src, WAIT + INTERVAL);
    assert_eq!(
        summary(&n, "host"),
        [("team".to_owned(), vec![("a".into(), "firing".into())])]
    );
    // Expiring again changes nothing; unknown ids are errors.
    e.expire_silence(id, t(200)).unwrap();
    assert_eq!(e.silence(id).unwrap().ends_at, t(100));
    assert!(matches!(
        e.expire_silence(SilenceId(99), t(200)),
        Err(Error::UnknownSilence { id: SilenceId(99) })
    ));
}

#[test]
fn a_silence_only_mutes_within_its_time_range() {
    let mut e = engine([disk_rule()]);
    e.add_silence(Silence::new(t(1000), t(2000)).matcher(Matcher::equal("host", "a")))
        .unwrap();
    let mut src = MemorySource::new();
    disk(&mut src, "a", 90.0);
    let tr = e.evaluate(t(0), &src);
    assert!(!tr[0].silenced, "pending silence");
    assert_eq!(e.due_notifications(t(WAIT)).len(), 1);
    assert!(e.alerts(t(1500))[0].silenced);
    assert!(!e.alerts(t(2000))[0].silenced, "ends_at is exclusive");
}

#[test]
fn a_silence_can_match_on_severity() {
    let mut e = engine([disk_rule()]);
    e.add_silence(Silence::new(t(0), t(10_000)).matcher(Matcher::equal("severity", "medium")))
        .unwrap();
    let mut src = MemorySource::new();
    disk(&mut src, "a", 90.0);
    assert!(tick(&mut e, &src, 0).is_empty());
    assert!(tick(&mut e, &src, WAIT).is_empty(), "medium is silenced");
    disk(&mut src, "a", 99.0);
    let n = tick(&mut e, &src, WAIT + INTERVAL);
    assert_eq!(n[0].alerts[0].labels["severity"], "critical");
}

#[test]
fn invalid_silences_are_rejected_and_old_ones_pruned() {
    let mut e = Engine::builder()
        .rule(disk_rule())
        .silence_retention(s(60))
        .build()
        .unwrap();
    assert!(matches!(
        e.add_silence(Silence::new(t(0), t(10))),
        Err(Error::InvalidSilence { .. })
    ));
    assert!(matches!(
        e.add_silence(Silence::new(t(10), t(10)).matcher(Matcher::equal("a", "b"))),
        Err(Error::InvalidSilence { .. })
    ));
    let id = e
        .add_silence(Silence::new(t(0), t(10)).matcher(Matcher::equal("a", "b")))
        .unwrap();
    e.evaluate(t(60), &MemorySource::new());
    assert!(e.silence(id).is_some(), "within retention");
    e.evaluate(t(71), &MemorySource::new());
    assert!(e.silence(id).is_none());
    assert_eq!(e.silences().count(), 0);
}

#[test]
fn a_higher_severity_mutes_the_lower_one_of_the_same_instance() {
    let mut e = engine([disk_rule()]);
    let mut src = MemorySource::new();
    disk(&mut src, "a", 90.0);
    tick(&mut e, &src, 0);
    let n = tick(&mut e, &src, WAIT);
    assert_eq!(n[0].alerts[0].labels["severity"], "medium");
    // Up to critical: receivers get the critical alert and no "resolved"
    // for the medium one.
    disk(&mut src, "a", 99.0);
    let n = tick(&mut e, &src, WAIT + INTERVAL);
    assert_eq!(n[0].alerts.len(), 1, "{n:#?}");
    assert_eq!(n[0].alerts[0].labels["severity"], "critical");
    // Back down to medium: the critical alert resolves, medium fires.
    disk(&mut src, "a", 90.0);
    let n = tick(&mut e, &src, WAIT + 2 * INTERVAL);
    let got: Vec<_> = n[0]
        .alerts
        .iter()
        .map(|a| (a.labels["severity"].as_str(), a.status))
        .collect();
    use vigil_alert::AlertStatus::{Firing, Resolved};
    assert_eq!(got, [("medium", Firing), ("critical", Resolved)]);
}

#[test]
fn critical_rule_inhibits_warning_rule_with_the_same_name_and_labels() {
    // Prometheus style: one rule per severity, same alertname.
    let warning = Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Medium, Comparison::Greater, 80.0)
        .build()
        .unwrap();
    let critical = Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Critical, Comparison::Greater, 95.0)
        .build()
        .unwrap();
    let mut e = engine([warning, critical]);
    let mut src = MemorySource::new();
    disk(&mut src, "a", 99.0);
    disk(&mut src, "b", 90.0);
    let tr = e.evaluate(t(0), &src);
    assert_eq!(tr.len(), 3, "both rules fire for a, only warning for b");
    let n = e.due_notifications(t(WAIT));
    let got: Vec<_> = n[0]
        .alerts
        .iter()
        .map(|a| (a.labels["host"].as_str(), a.labels["severity"].as_str()))
        .collect();
    assert_eq!(got, [("a", "critical"), ("b", "medium")]);
    let listed = e.alerts(t(WAIT));
    let inhibited: Vec<_> = listed
        .iter()
        .filter(|a| a.inhibited)
        .map(|a| (a.labels["host"].as_str(), a.labels["severity"].as_str()))
        .collect();
    assert_eq!(inhibited, [("a", "medium")]);
}

#[test]
fn inhibit_rules_mute_targets_while_a_matching_source_fires() {
    let down = Rule::builder("ServiceDown")
        .gauge("up")
        .threshold(Severity::Critical, Comparison::Less, 1.0)
        .build()
        .unwrap();
    let latency = Rule::builder("HighLatency")
        .gauge("latency")
        .threshold(Severity::High, Comparison::Greater, 1.0)
        .build()
        .unwrap();
    let mut e = Engine::builder()
        .rules([down, latency])
        .routing(routing().group_by(["service"]))
        .inhibit_rule(InhibitRule {
            source_matchers: vec![Matcher::equal("alertname", "ServiceDown")],
            target_matchers: vec![Matcher::equal("alertname", "HighLatency")],
            equal: vec!["service".into()],
        })
        .build()
        .unwrap();
    let mut src = MemorySource::new();
    src.set_gauge("up", [("service", "api")], 0.0);
    src.set_gauge("up", [("service", "db")], 1.0);
    src.set_gauge("latency", [("service", "api")], 5.0);
    src.set_gauge("latency", [("service", "db")], 5.0);
    tick(&mut e, &src, 0);
    let n = tick(&mut e, &src, WAIT);
    let got: Vec<_> = n
        .iter()
        .flat_map(|n| {
            n.alerts
                .iter()
                .map(|a| (a.labels["service"].as_str(), a.labels["alertname"].as_str()))
        })
        .collect();
    assert_eq!(got, [("api", "ServiceDown"), ("db", "HighLatency")]);
    // The source resolves: the target is no longer muted.
    src.set_gauge("up", [("service", "api")], 1.0);
    let n = tick(&mut e, &src, WAIT + INTERVAL);
    let api = n
        .iter()
        .find(|n| n.group_labels["service"] == "api")
        .unwrap();
    let got: Vec<_> = api
        .alerts
        .iter()
        .map(|a| (a.labels["alertname"].as_str(), a.status))
        .collect();
    use vigil_alert::AlertStatus::{Firing, Resolved};
    assert_eq!(got, [("HighLatency", Firing), ("ServiceDown", Resolved)]);
}

/// The Alertmanager path reads the engine's active alerts: local silences
/// and inhibition flag them but never leave them out.
#[test]
fn locally_muted_alerts_stay_in_what_the_alertmanager_path_reads() {
    let down = Rule::builder("ServiceDown")
        .gauge("up")
        .threshold(Severity::Critical, Comparison::Less, 1.0)
        .build()
        .unwrap();
    let inhibit = InhibitRule {
        source_matchers: vec![Matcher::equal("alertname", "ServiceDown")],
        target_matchers: vec![Matcher::equal("alertname", "DiskFull")],
        equal: vec!["host".into()],
    };
    let mut e = Engine::builder()
        .rules([disk_rule(), down])
        .routing(routing())
        .inhibit_rule(inhibit)
        .build()
        .unwrap();
    e.add_silence(Silence::new(t(0), t(10_000)).matcher(Matcher::equal("host", "a")))
        .unwrap();
    let mut src = MemorySource::new();
    disk(&mut src, "a", 90.0);
    disk(&mut src, "b", 90.0);
    src.set_gauge("up", [("host", "b")], 0.0);
    e.evaluate(t(0), &src);
    let notified = e.due_notifications(t(WAIT));
    let notified: Vec<_> = notified
        .iter()
        .flat_map(|n| &n.alerts)
        .map(|a| (a.rule.as_str(), a.labels["host"].as_str()))
        .collect();
    assert_eq!(notified, [("ServiceDown", "b")], "muted locally");
    let active = e.alerts(t(WAIT));
    let listed: Vec<_> = active
        .iter()
        .map(|a| {
            (
                a.rule.as_str(),
                a.labels["host"].as_str(),
                a.silenced,
                a.inhibited,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("DiskFull", "a", true, false),
            ("DiskFull", "b", false, true),
            ("ServiceDown", "b", false, false),
        ]
    );
    assert!(
        active
            .iter()
            .all(|a| a.status == vigil_alert::AlertStatus::Firing)
    );
    #[cfg(feature = "delivery")]
    {
        // What `alertmanager::Sender::send` posts: every active alert.
        let mut resender = vigil_alert::alertmanager::Resender::new(None, s(60));
        let sent = resender.update(t(WAIT), active);
        let hosts: Vec<_> = sent.iter().map(|a| a.labels["host"].as_str()).collect();
        assert_eq!(hosts, ["a", "b", "b"]);
    }
}

/// Inhibition is indexed once per pass: with 2 000 firing targets and
/// 1 000 sources, each target is muted exactly when a source shares its
/// `equal` label, both in the active alerts' flags and in notifications.
#[test]
fn thousands_of_firing_alerts_are_inhibited_by_their_own_source_only() {
    let down = Rule::builder("ServiceDown")
        .gauge("up")
        .threshold(Severity::Critical, Comparison::Less, 1.0)
        .build()
        .unwrap();
    let latency = Rule::builder("HighLatency")
        .gauge("latency")
        .threshold(Severity::High, Comparison::Greater, 1.0)
        .build()
        .unwrap();
    let mut e = Engine::builder()
        .rules([down, latency])
        .routing(routing())
        .inhibit_rule(InhibitRule {
            source_matchers: vec![Matcher::equal("alertname", "ServiceDown")],
            target_matchers: vec![Matcher::equal("alertname", "HighLatency")],
            equal: vec!["service".into()],
        })
        .build()
        .unwrap();
    let mut src = MemorySource::new();
    for i in 0..2_000 {
        let service = format!("s{i}");
        src.set_gauge("latency", [("service", service.as_str())], 5.0);
        if i % 2 == 0 {
            src.set_gauge("up", [("service", service.as_str())], 0.0);
        }
    }
    e.evaluate(t(0), &src);
    let even = |a: &vigil_alert::Alert| a.labels["service"][1..].parse::<u32>().unwrap() % 2 == 0;
    let active = e.alerts(t(0));
    assert_eq!(active.len(), 3_000);
    for a in &active {
        let inhibited = a.rule == "HighLatency" && even(a);
        assert_eq!(
            (a.inhibited, a.silenced),
            (inhibited, false),
            "{:?}",
            a.labels
        );
    }
    let notified: Vec<_> = e
        .due_notifications(t(WAIT))
        .into_iter()
        .flat_map(|n| n.alerts)
        .collect();
    assert_eq!(notified.len(), 2_000);
    assert!(
        notified
            .iter()
            .all(|a| (a.rule == "ServiceDown") == even(a))
    );
}
