//! The `severity` label carries the name the configuration gave the level:
//! a threshold written `warning` fires with `severity="warning"` in
//! `alerts_firing`, in the alerts notifiers receive (and Alertmanager
//! routes on), in routing, silences, inhibit rules, the history and the
//! exported Prometheus rules, while the level (`medium`) still orders and
//! inhibits. The last test routes such an alert through a real
//! Alertmanager (Debian package `prometheus-alertmanager`).

#![cfg(all(
    feature = "config",
    feature = "routing",
    feature = "rulesets",
    feature = "prometheus"
))]

mod common;
#[path = "../../vigil/tests/servers/mod.rs"]
mod servers;

use std::time::{Duration, SystemTime};

use common::{l, t};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::Value;
use servers::alertmanager::Alertmanager;
use vigil_alert::config::AlertConfig;
use vigil_alert::notify::{ChannelNotifier, Dispatcher, WebhookNotifier};
use vigil_alert::prometheus::to_prometheus_rules;
use vigil_alert::rulesets::ServiceTargets;
use vigil_alert::{
    Comparison, Engine, Error, HistoryQuery, Matcher, MemorySource, Rule, Severity, Silence,
};

const RULES: &str = r#"
rules:
  - name: QueueBacklog
    expr: { gauge: { metric: queue_depth } }
    thresholds: { warning: "> 100", critical: "> 1000" }
  - name: QueueStalled
    expr: { gauge: { metric: queue_stalled } }
    thresholds: { critical: "> 0" }
routing:
  receiver: default
  group_by: [alertname]
  group_wait: 0s
  routes:
    - matchers: ['severity="warning"']
      receiver: tickets
    - matchers: ['severity="critical"']
      receiver: pager
"#;

/// `alerts_firing` series as `(alert, severity) -> value`.
fn alerts_firing(recorder: &DebuggingRecorder) -> Vec<((String, String), f64)> {
    let mut out: Vec<_> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            if key.name() != "alerts_firing" {
                return None;
            }
            let label = |name: &str| {
                key.labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default()
            };
            let DebugValue::Gauge(v) = value else {
                return None;
            };
            Some(((label("alert"), label("severity")), v.into_inner()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn series(alert: &str, severity: &str, value: f64) -> ((String, String), f64) {
    ((alert.to_owned(), severity.to_owned()), value)
}

#[test]
fn a_warning_threshold_fires_with_severity_warning_everywhere() {
    let config = AlertConfig::from_yaml_str(RULES, "rules.yml").unwrap();
    let mut engine = config.clone().into_engine().unwrap();
    let recorder = DebuggingRecorder::new();
    let mut source = MemorySource::new();
    source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
    source.set_gauge("queue_stalled", [("queue", "emails")], 0.0);
    let transitions = metrics::with_local_recorder(&recorder, || engine.evaluate(t(0), &source));

    // The level orders; the label is the spelling.
    let fired = common::only(&transitions);
    assert_eq!(fired.severity, Some(Severity::Medium));
    assert_eq!(fired.severity_label.as_deref(), Some("warning"));
    assert_eq!(
        alerts_firing(&recorder),
        [series("QueueBacklog", "warning", 1.0)]
    );

    // Routed by `severity="warning"`, and the alert notifiers get says so.
    let notifications = engine.due_notifications(t(0));
    assert_eq!(notifications.len(), 1, "{notifications:#?}");
    let n = &notifications[0];
    assert_eq!(n.receiver, "tickets");
    let alert = &n.alerts[0];
    assert_eq!(alert.severity, Severity::Medium);
    assert_eq!(alert.labels["severity"], "warning");
    assert_eq!(n.common_labels["severity"], "warning");

    // The body an Alertmanager receives carries it too.
    let webhook = WebhookNotifier::builder("http://127.0.0.1:9093")
        .alertmanager()
        .build()
        .unwrap();
    let body: Value = serde_json::from_slice(&webhook.body(n).unwrap()).unwrap();
    assert_eq!(body[0]["labels"]["severity"], "warning", "{body:#}");

    // The history answers `severity="warning"`, not `severity="medium"`.
    let query = |value: &str| {
        let q = HistoryQuery::new().matcher(Matcher::equal("severity", value));
        engine.history().query(&q).count()
    };
    assert_eq!((query("warning"), query("medium")), (1, 0));

    // Critical: `severity="critical"` (written so), the warning alert of the
    // same instance is inhibited by level, and the gauge moves.
    source.set_gauge("queue_depth", [("queue", "emails")], 5000.0);
    metrics::with_local_recorder(&recorder, || engine.evaluate(t(10), &source));
    assert_eq!(
        alerts_firing(&recorder),
        [
            series("QueueBacklog", "critical", 1.0),
            series("QueueBacklog", "warning", 0.0),
        ]
    );
    let notifications = engine.due_notifications(t(10));
    let receivers: Vec<_> = notifications.iter().map(|n| n.receiver.as_str()).collect();
    assert_eq!(receivers, ["pager"], "{notifications:#?}");
}

#[test]
fn silences_and_inhibit_rules_match_the_configured_name() {
    let yaml = format!(
        "{RULES}inhibit_rules:\n  - source_matchers: ['alertname=\"QueueStalled\"']\n    target_matchers: ['severity=\"warning\"']\n    equal: [queue]\n"
    );
    let mut engine = AlertConfig::from_yaml_str(&yaml, "rules.yml")
        .unwrap()
        .into_engine()
        .unwrap();
    let mut source = MemorySource::new();
    source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
    source.set_gauge("queue_depth", [("queue", "sms")], 250.0);
    source.set_gauge("queue_stalled", [("queue", "emails")], 1.0);
    engine.evaluate(t(0), &source);
    let flags = |engine: &Engine| {
        engine
            .alerts(t(0))
            .into_iter()
            .filter(|a| a.rule == "QueueBacklog")
            .map(|a| {
                let queue = a.labels["queue"].clone();
                (queue, a.labels["severity"].clone(), a.silenced, a.inhibited)
            })
            .collect::<Vec<_>>()
    };
    let row = |queue: &str, silenced, inhibited| {
        (queue.to_owned(), "warning".to_owned(), silenced, inhibited)
    };
    assert_eq!(
        flags(&engine),
        [row("emails", false, true), row("sms", false, false)]
    );

    let silence = Silence::new(t(0), t(3600))
        .matcher(Matcher::equal("severity", "warning"))
        .matcher(Matcher::equal("queue", "sms"));
    engine.add_silence(silence).unwrap();
    assert_eq!(
        flags(&engine),
        [row("emails", false, true), row("sms", true, false)]
    );
    // A silence on the level's own name matches nothing.
    let mut other = AlertConfig::from_yaml_str(RULES, "rules.yml")
        .unwrap()
        .into_engine()
        .unwrap();
    other.evaluate(t(0), &source);
    other
        .add_silence(Silence::new(t(0), t(3600)).matcher(Matcher::equal("severity", "medium")))
        .unwrap();
    assert!(
        other.alerts(t(0)).iter().all(|a| !a.silenced),
        "{:#?}",
        other.alerts(t(0))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn notifiers_receive_the_configured_name() {
    let mut engine = AlertConfig::from_yaml_str(RULES, "rules.yml")
        .unwrap()
        .into_engine()
        .unwrap();
    let (notifier, mut received) = ChannelNotifier::channel(4);
    let dispatcher = Dispatcher::builder()
        .receiver("tickets", notifier)
        .build()
        .unwrap();
    let mut source = MemorySource::new();
    source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
    engine.evaluate(t(0), &source);
    assert_eq!(dispatcher.dispatch_all(engine.due_notifications(t(0))), 1);
    let notification = received.recv().await.expect("a notification");
    let labels: Vec<_> = notification
        .alerts
        .iter()
        .map(|a| (a.severity, a.labels["severity"].as_str()))
        .collect();
    assert_eq!(labels, [(Severity::Medium, "warning")]);
    dispatcher.shutdown().await;
}

#[test]
fn the_exported_prometheus_rules_keep_the_name() {
    let config = AlertConfig::from_yaml_str(RULES, "rules.yml").unwrap();
    let export = to_prometheus_rules(config.rules());
    assert!(export.yaml.contains("severity: warning"), "{}", export.yaml);
    assert!(
        export.yaml.contains("severity: critical"),
        "{}",
        export.yaml
    );
    assert!(!export.yaml.contains("severity: medium"), "{}", export.yaml);
}

#[test]
fn toml_rules_keep_the_spelling_too() {
    let toml = r#"
[[rules]]
name = "QueueBacklog"
expr = { gauge = { metric = "queue_depth" } }
thresholds = { info = "> 10", warn = "> 100" }
"#;
    let config = AlertConfig::from_toml_str(toml, "rules.toml").unwrap();
    let rule = &config.rules()[0];
    let levels: Vec<_> = rule.thresholds.iter().map(|t| t.severity).collect();
    assert_eq!(levels, [Severity::Low, Severity::Medium]);
    assert_eq!(rule.severity_label(Severity::Low), "info");
    assert_eq!(rule.severity_label(Severity::Medium), "warn");
    assert_eq!(rule.severity_label(Severity::High), "high");
}

#[test]
fn a_file_names_levels_for_its_rules_and_rulesets() {
    let yaml = r#"
severity_labels: { low: info, medium: warning, high: page }
rulesets:
  service_targets: { only: [error_rate, cache_hit_ratio] }
rules:
  - name: QueueBacklog
    expr: { gauge: { metric: queue_depth } }
    thresholds: { medium: "> 100", critical: "> 1000" }
  - name: QueueSlow
    expr: { gauge: { metric: queue_age_seconds } }
    thresholds: { warn: "> 60" }
"#;
    let config = AlertConfig::from_yaml_str(yaml, "rules.yml").unwrap();
    let labels: Vec<_> = config
        .rules()
        .iter()
        .map(|r| {
            let names: Vec<_> = r
                .thresholds
                .iter()
                .map(|t| r.severity_label(t.severity))
                .collect();
            (r.name.as_str(), names)
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("HighErrorRate", vec!["warning", "critical"]),
            ("LowCacheHitRatio", vec!["warning", "page"]),
            ("QueueBacklog", vec!["warning", "critical"]),
            ("QueueSlow", vec!["warn"]), // the rule's own spelling wins
        ]
    );

    let err =
        AlertConfig::from_yaml_str("severity_labels: { low: warning }\n", "rules.yml").unwrap_err();
    assert_eq!(err.field(), Some("severity_labels"));
    assert!(
        err.to_string()
            .contains("`warning` cannot name `low`: it is read as `medium`"),
        "{err}"
    );
    let err = AlertConfig::from_yaml_str(
        "severity_labels: { medium: warning, warning: warn }\n",
        "rules.yml",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("severity `medium` has two names"),
        "{err}"
    );
}

#[test]
fn code_names_levels_per_rule_or_per_engine() {
    let rule = Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .threshold(Severity::Medium, Comparison::Greater, 100.0)
        .severity_label(Severity::Medium, "P3")
        .build()
        .unwrap();
    let ready_made = ServiceTargets::new().rules().unwrap();
    let mut engine = Engine::builder()
        .rule(rule)
        .rules(ready_made)
        .severity_label(Severity::Medium, "warning")
        .build()
        .unwrap();
    let names: Vec<_> = engine
        .rules()
        .iter()
        .map(|r| (r.name.as_str(), r.severity_label(Severity::Medium)))
        .collect();
    assert_eq!(names[0], ("QueueBacklog", "P3"), "the rule's own name wins");
    assert!(names[1..].iter().all(|(_, n)| *n == "warning"), "{names:?}");

    let recorder = DebuggingRecorder::new();
    let mut source = MemorySource::new();
    source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
    source.set_gauge("system_memory_usage_ratio", l([]), 0.9);
    metrics::with_local_recorder(&recorder, || engine.evaluate(t(0), &source));
    metrics::with_local_recorder(&recorder, || engine.evaluate(t(300), &source));
    assert_eq!(
        alerts_firing(&recorder),
        [
            series("HighMemoryUsage", "warning", 1.0),
            series("QueueBacklog", "P3", 1.0),
        ]
    );

    let err = Engine::builder()
        .severity_label(Severity::High, "critical")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSeverityLabels { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid severity labels: `critical` cannot name `high`: it is read as `critical`"
    );
    let clash = Rule::builder("X")
        .gauge("x")
        .threshold(Severity::Low, Comparison::Greater, 1.0)
        .severity_label(Severity::Low, "page")
        .build()
        .unwrap();
    let err = Engine::builder()
        .rule(clash)
        .severity_label(Severity::High, "page")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid rule `X`: `severity_labels` `low` and `high` are both labelled `page`"
    );
}

#[test]
fn escalation_raises_the_level_and_uses_its_name() {
    let rule = Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .threshold(Severity::Medium, Comparison::Greater, 100.0)
        .severity_label(Severity::Medium, "warning")
        .severity_label(Severity::High, "page")
        .escalate_after(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut engine = Engine::new([rule]).unwrap();
    let mut source = MemorySource::new();
    source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
    engine.evaluate(t(0), &source);
    let escalated = engine.evaluate(t(60), &source);
    let last = common::only(&escalated);
    assert_eq!(last.severity, Some(Severity::High));
    assert_eq!(last.severity_label.as_deref(), Some("page"));
    // Escalation is local routing: the local notification carries the
    // raised level under its name ...
    let notes = engine.due_notifications(t(60));
    let notified: Vec<_> = notes
        .iter()
        .flat_map(|n| &n.alerts)
        .map(|a| a.labels["severity"].as_str())
        .collect();
    assert_eq!(notified, ["page"], "{notes:#?}");
    // ... while the active alerts (the Alertmanager path) keep the rule's own.
    let alerts = engine.alerts(t(60));
    let active: Vec<_> = alerts
        .iter()
        .map(|a| (a.severity, a.labels["severity"].as_str(), a.escalated))
        .collect();
    assert_eq!(
        active,
        [(Severity::Medium, "warning", false)],
        "{alerts:#?}"
    );
}

// ---------------------------------------------------------------------------
// A real Alertmanager routes on the name.

/// Sends `severity="warning"` to `tickets` and the rest to `default`.
const AM_CONFIG: &str = r#"
route:
  receiver: default
  routes:
    - receiver: tickets
      matchers: ['severity="warning"']
receivers:
  - name: default
  - name: tickets
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_routes_the_warning_alert_on_severity_warning() {
    let am = Alertmanager::start_with_config(AM_CONFIG);
    let rules = r#"
rules:
  - name: VigilSeverityLabel
    expr: { gauge: { metric: queue_depth } }
    thresholds: { warning: "> 100", critical: "> 1000" }
routing: { receiver: alertmanager, group_wait: 0s }
"#;
    let mut engine = AlertConfig::from_yaml_str(rules, "rules.yml")
        .unwrap()
        .into_engine()
        .unwrap();
    let webhook = WebhookNotifier::builder(am.url(""))
        .alertmanager()
        .build()
        .unwrap();
    let dispatcher = Dispatcher::builder()
        .receiver("alertmanager", webhook)
        .timeout(Duration::from_secs(5))
        .initial_backoff(Duration::from_millis(100))
        .max_attempts(3)
        .build()
        .unwrap();
    let mut source = MemorySource::new();
    source.set_gauge("queue_depth", [("queue", "emails")], 250.0);
    let now = SystemTime::now();
    engine.evaluate(now, &source);
    assert_eq!(dispatcher.dispatch_all(engine.due_notifications(now)), 1);

    let listed = am.wait_for("VigilSeverityLabel", "the warning alert is listed", |a| {
        !a.is_empty()
    });
    let alert = &listed[0];
    assert_eq!(alert["labels"]["severity"], "warning", "{alert:#}");
    assert_eq!(alert["receivers"][0]["name"], "tickets", "{alert:#}");
    dispatcher.shutdown().await;
}
