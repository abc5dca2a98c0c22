//! Scaffolding shared by the system examples (`opinion_market`,
//! `samplemind`, ...): simulated dependencies with realistic latency
//! distributions and failure rates ([`sim`]), a load driver with a
//! degradation phase ([`load`]), the terminal report ([`report`]) and the
//! `--serve` handling below. Each example includes it with
//! `#[path = "support/mod.rs"] mod support;` and uses the parts it needs.

// Each example uses a different subset of the helpers.
#![allow(dead_code, unused_imports)]

pub mod load;
pub mod report;
pub mod sim;

use std::net::SocketAddr;
use std::time::Duration;

pub use load::{Load, LoadStats, Phase, Request, fetch};
pub use report::{Status, Table};
pub use sim::{Degradation, Dependency, Latency, Rng};

/// The command line every system example accepts.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--serve`: keep serving after the report until Ctrl-C.
    pub serve: bool,
    /// The port to bind (`PORT`, or a free one).
    pub port: u16,
    /// The bearer token of the performance API (`VIGIL_API_TOKEN`, else
    /// `demo-token`).
    pub token: String,
    /// The token as printed: the demo's own, or `$VIGIL_API_TOKEN`.
    pub shown_token: String,
    /// `--duration SECS`: how long the load runs (default 15, at most 20).
    pub duration: Duration,
    /// `--external-load`: drive no load of its own, only the degradation
    /// on the wall clock, for a load generator outside the example (such
    /// as `vigil::load` in the end-to-end test).
    pub external_load: bool,
    /// `ALERTMANAGER_URL`: an Alertmanager to send the alerts to as well.
    pub alertmanager: Option<String>,
}

impl Options {
    /// Reads the command line and the environment.
    pub fn from_env() -> Self {
        let args: Vec<String> = std::env::args().collect();
        let serve = args.iter().any(|arg| arg == "--serve");
        let external_load = args.iter().any(|arg| arg == "--external-load");
        let duration = args
            .iter()
            .position(|arg| arg == "--duration")
            .and_then(|i| args.get(i + 1))
            .and_then(|secs| secs.parse::<f64>().ok())
            .map_or(15.0, |secs| secs.clamp(1.0, 20.0));
        let (token, shown_token) = match std::env::var("VIGIL_API_TOKEN") {
            Ok(token) => (token, "$VIGIL_API_TOKEN".to_owned()),
            Err(_) => ("demo-token".to_owned(), "demo-token".to_owned()),
        };
        let port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Self {
            serve,
            port,
            token,
            shown_token,
            duration: Duration::from_secs_f64(duration),
            external_load,
            alertmanager: std::env::var("ALERTMANAGER_URL")
                .ok()
                .filter(|url| !url.trim().is_empty()),
        }
    }
}

/// Binds 127.0.0.1 on the chosen port and serves `app` on a task; returns
/// the address and the server task.
pub async fn serve(
    options: &Options,
    app: axum::Router,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((address, server))
}

/// Prints the service's URLs (`paths` of its own, then vigil's) and, with
/// `--serve`, keeps serving until the server stops; otherwise returns.
pub async fn finish(
    options: &Options,
    name: &str,
    address: SocketAddr,
    paths: &[&str],
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let base = format!("http://{address}");
    report::heading(&format!("{name} on {base}"));
    for path in paths {
        println!("  {base}{path}");
    }
    println!("  {base}/status  (status page; with a token set it asks for it)");
    println!("  {base}/metrics");
    println!("  {base}/health  {base}/health/live  {base}/health/ready");
    let shown = &options.shown_token;
    for route in [
        "metrics/summary",
        "alerts?severity=high",
        "alerts/history",
        "recommendations?priority=high",
        "cache/stats",
        "health",
    ] {
        println!("  curl -H \"Authorization: Bearer {shown}\" {base}/api/v1/performance/{route}");
    }
    if options.serve {
        println!("\nserving on {base}; Ctrl-C stops");
        server.await??;
    } else {
        println!("\n(run with `-- --serve` to keep serving)");
        server.abort();
    }
    Ok(())
}

/// After the load: waits (at most `max`) until every firing alert is one of
/// `host_alerts` (alerts on the machine, such as a full disk, that the
/// load does not cause), so the report shows the degradation's alerts
/// resolved; returns how long it waited.
pub async fn wait_for_recovery(
    monitor: &vigil::Monitor,
    host_alerts: &[&str],
    max: Duration,
) -> Duration {
    let started = std::time::Instant::now();
    while started.elapsed() < max {
        let firing = monitor.active_alerts();
        if firing
            .iter()
            .all(|alert| host_alerts.contains(&alert.name.as_str()))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    started.elapsed()
}

/// With `--serve`, keeps an example's simulated time running after the
/// load at its real pace: the mock clock and the alert time advance one
/// second a second, and the alerts are evaluated every 15 s.
pub fn keep_time(
    options: &Options,
    monitor: &vigil::Monitor,
    mock: std::sync::Arc<quanta::Mock>,
    mut now: std::time::SystemTime,
) {
    if !options.serve {
        return;
    }
    let monitor = monitor.clone();
    tokio::spawn(async move {
        let mut second = tokio::time::interval(Duration::from_secs(1));
        for n in 0u64.. {
            second.tick().await;
            mock.increment(Duration::from_secs(1));
            now += Duration::from_secs(1);
            if n.is_multiple_of(15) {
                monitor.evaluate_alerts(now);
            }
        }
    });
}

/// Prints the notifications a `ChannelNotifier` delivered, one line per
/// alert: status, rule, severity and its summary.
pub fn print_notifications(
    notifications: &mut tokio::sync::mpsc::Receiver<vigil::alert::Notification>,
) {
    report::heading("Notifications delivered");
    while let Ok(notification) = notifications.try_recv() {
        for alert in &notification.alerts {
            let summary = alert.annotations.get("summary").map_or("", String::as_str);
            println!(
                "{:?} {} [{}] {summary}",
                alert.status, alert.rule, alert.severity
            );
        }
    }
}
