//! Alertmanager delivery against a real Alertmanager (Debian package
//! `prometheus-alertmanager`, binary `prometheus-alertmanager`):
//! `WebhookNotifier` in Alertmanager mode makes a firing alert visible
//! through `GET /api/v2/alerts` with vigil's fingerprint, and resolving it
//! removes it from there; the Prometheus-style `Sender` keeps an alert
//! active there for longer than one send is valid.

use std::fs::File;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use vigil_alert::alertmanager::Sender;
use vigil_alert::notify::{Dispatcher, WebhookNotifier};
use vigil_alert::{Alert, AlertStatus, Notification, Severity, labels};

const BINARY: &str = "prometheus-alertmanager";
const DEADLINE: Duration = Duration::from_secs(20);

/// An Alertmanager on a free loopback port with its own temp dir; killed on
/// drop.
struct Alertmanager {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start() -> Self {
        Self::start_with("")
    }

    /// With this `global:` section (e.g. `resolve_timeout: 10s`).
    fn start_with(global: &str) -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let config = dir.path().join("am.yml");
        let global = if global.is_empty() {
            String::new()
        } else {
            format!("global:\n  {global}\n")
        };
        std::fs::write(
            &config,
            format!("{global}route:\n  receiver: default\nreceivers:\n  - name: default\n"),
        )
        .expect("write am.yml");
        let port = free_port();
        let log = File::create(dir.path().join("am.log")).expect("create am.log");
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{BINARY}` ({e}): this test needs Alertmanager from the Debian \
                     package `prometheus-alertmanager` (apt-get install -y \
                     --no-install-recommends prometheus-alertmanager)"
                )
            });
        Alertmanager { child, port, dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default()
    }

    /// Waits until `/-/ready` answers 200.
    async fn ready(&mut self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{BINARY} exited with {status}:\n{}", self.log());
            }
            if matches!(get(&self.url("/-/ready")).await, Ok((200, _))) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{BINARY} not ready within {DEADLINE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Alerts listed by `GET /api/v2/alerts` with `alertname`.
    async fn alerts(&self, alertname: &str) -> Vec<Value> {
        let (status, body) = get(&self.url("/api/v2/alerts"))
            .await
            .expect("GET /api/v2/alerts");
        assert_eq!(status, 200, "{body}");
        let all: Vec<Value> = serde_json::from_str(&body).expect("a JSON array of alerts");
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }

    /// Polls until `check` accepts the alerts named `alertname`.
    async fn wait_for(
        &self,
        alertname: &str,
        what: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let alerts = self.alerts(alertname).await;
            if check(&alerts) {
                return alerts;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} within {DEADLINE:?}; Alertmanager lists {alerts:#?}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free loopback port")
        .port()
}

async fn get(url: &str) -> Result<(u16, String), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = url.parse().map_err(|e| format!("{e}"))?;
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

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
    let mut am = Alertmanager::start();
    am.ready().await;

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
    let alerts = am
        .wait_for(
            "VigilNotifyIntegration",
            "the firing alert is listed",
            |a| !a.is_empty(),
        )
        .await;
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
    )
    .await;
    dispatcher.shutdown().await;
}

/// Without `endsAt`, Alertmanager (with `resolve_timeout: 10s`) would
/// resolve the alert 10 s after the first post; each send is valid for
/// 4 x 1 s. The sender keeps it active by re-sending every second, and
/// resolves it there as soon as it stops firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_keeps_a_firing_alert_active_and_resolves_it() {
    let mut am = Alertmanager::start_with("resolve_timeout: 10s");
    am.ready().await;
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
        let alerts = am.alerts("VigilNotifyIntegration").await;
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
    )
    .await;
    assert!(
        resolved.elapsed() < Duration::from_secs(5),
        "resolved after {:?}",
        resolved.elapsed()
    );
    sender.shutdown().await;
}
