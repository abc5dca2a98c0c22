//! Alerts end to end: rules from a YAML file evaluated against vigil's
//! registry, a synthetic latency spike and recovery, the transitions the
//! engine makes and the notifications a receiver gets.
//!
//! ```text
//! cargo run --example alerts
//! ```
//!
//! Time is synthetic: the registry's windows run on a mock clock and the
//! engine is given the matching wall-clock times, so two simulated minutes
//! take milliseconds.

use std::time::{Duration, UNIX_EPOCH};

use vigil::Monitor;
use vigil::alert::AlertConfig;
use vigil::alert::notify::ChannelNotifier;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.yml");
    let config = AlertConfig::load(path)?;
    println!("loaded {} rules from {path}", config.rules().len());
    for export_warning in vigil::alert::to_prometheus_rules(config.rules()).warnings {
        println!("  (Prometheus export: {export_warning})");
    }

    let (clock, mock) = quanta::Clock::mock();
    let (console, mut notifications) = ChannelNotifier::channel(64);
    let monitor = Monitor::builder()
        .clock(clock)
        .manual_upkeep()
        .manual_alerts()
        .alerts(config.into_engine()?)
        .notifier("console", console)
        .build()?;
    let recorder = monitor.recorder();

    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    let step = Duration::from_secs(10);
    println!("\n  time  p95 ms  transitions");
    for tick in 0..24u32 {
        // Requests of the last 10 s: a spike from 40 s to 110 s.
        let spiking = (4..11).contains(&tick);
        vigil::with_local_recorder(&recorder, || {
            for i in 0..100u32 {
                let ms = if spiking {
                    400.0 + f64::from(i) * 3.0
                } else {
                    20.0 + f64::from(i % 10)
                };
                vigil::metrics::histogram!("http_request_duration_seconds", "route" => "/cart")
                    .record(ms / 1000.0);
                let status = if spiking && i.is_multiple_of(10) {
                    "500"
                } else {
                    "200"
                };
                vigil::metrics::counter!("http_requests_total", "route" => "/cart", "status" => status)
                    .increment(1);
            }
        });
        mock.increment(step);
        let now = start + step * (tick + 1);
        let transitions = monitor.evaluate_alerts(now);
        let p95 = monitor
            .summary()
            .histograms
            .iter()
            .find(|h| h.name == "http_request_duration_seconds")
            .map_or(0.0, |h| h.window.p95 * 1e3);
        let described: Vec<String> = transitions
            .iter()
            .map(|t| {
                let severity = t
                    .severity_label()
                    .map_or_else(String::new, |s| format!(" [{s}]"));
                format!("{} {} -> {}{severity}", t.rule, t.from, t.to)
            })
            .collect();
        println!(
            "{:>5}s {:>7.1}  {}",
            (tick + 1) * 10,
            p95,
            described.join("; ")
        );
    }

    // Delivery runs in the background; give the queue a moment to drain.
    std::thread::sleep(Duration::from_millis(200));
    println!("\nnotifications to `console`:");
    while let Ok(notification) = notifications.try_recv() {
        for alert in &notification.alerts {
            println!(
                "  {:?} {} [{}] value {:.3}: {}",
                alert.status,
                alert.rule,
                alert.labels.get("severity").map_or("", String::as_str),
                alert.value.unwrap_or(f64::NAN),
                alert.annotations.get("summary").map_or("", String::as_str),
            );
        }
    }
    Ok(())
}
