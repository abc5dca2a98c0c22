//! `MonitorBuilder::build_tasks`: the `/metrics` listener, the alert loop
//! and the upkeep handed to the host as futures, run on the host's tokio
//! runtime (here the test's own) instead of on threads vigil starts, and
//! ended when the last handle of the monitor is dropped.

#![cfg(feature = "listener")]

mod servers;

use std::future::IntoFuture;
use std::time::Duration;

use vigil::Monitor;

/// Scrapes `/metrics` off the runtime's thread (the client blocks).
async fn scrape(address: std::net::SocketAddr) -> std::io::Result<(u16, String)> {
    tokio::task::spawn_blocking(move || servers::http_get(address, "/metrics"))
        .await
        .expect("the scrape does not panic")
}

/// Waits (at most 10 s) for spawned tasks that end once their monitor is
/// dropped.
async fn ended(tasks: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(10), tasks)
        .await
        .expect("the tasks end once the monitor is dropped")
        .expect("no task panics");
}

#[tokio::test]
async fn the_listener_serves_on_the_hosts_runtime_until_the_monitor_is_dropped() {
    let (monitor, tasks) = Monitor::builder()
        .listen("127.0.0.1:0")
        .upkeep_interval(Duration::from_millis(20))
        .build_tasks()
        .expect("a monitor inside a runtime");
    let address = monitor.listen_address().expect("a listener");
    assert!(
        tasks.listener.is_some() && tasks.upkeep.is_some(),
        "{tasks:?}"
    );
    let running = tokio::spawn(tasks.into_future());

    vigil::with_local_recorder(&monitor.recorder(), || {
        vigil::metrics::counter!("jobs_done_total").increment(3);
    });
    let (status, body) = scrape(address).await.expect("a scrape");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("jobs_done_total 3"), "{body}");

    // A clone keeps the tasks running; the last handle ends them.
    let clone = monitor.clone();
    drop(monitor);
    let (status, _) = scrape(address).await.expect("served while a clone lives");
    assert_eq!(status, 200);
    drop(clone);
    ended(running).await;
    assert!(
        scrape(address).await.is_err(),
        "the listener's socket is closed with its task"
    );
}

#[tokio::test]
async fn each_task_can_be_spawned_on_its_own() {
    let (monitor, tasks) = Monitor::builder()
        .listen("127.0.0.1:0")
        .manual_upkeep()
        .build_tasks()
        .expect("a monitor inside a runtime");
    assert!(tasks.upkeep.is_none(), "manual upkeep: no upkeep task");
    let listener = tokio::spawn(tasks.listener.expect("a listener task"));
    let address = monitor.listen_address().expect("a listener");
    let (status, _) = scrape(address).await.expect("a scrape");
    assert_eq!(status, 200);
    drop(monitor);
    ended(listener).await;
}

#[test]
fn outside_a_runtime_build_tasks_says_so() {
    let err = Monitor::builder()
        .listen("127.0.0.1:0")
        .build_tasks()
        .unwrap_err();
    assert!(matches!(err, vigil::Error::NoRuntime), "{err}");
    assert!(
        err.to_string().contains("inside the tokio runtime"),
        "{err}"
    );
}

#[cfg(feature = "alerts")]
#[tokio::test]
async fn the_alert_loop_evaluates_on_the_hosts_runtime() {
    use vigil::alert::{Comparison, Engine, Rule, Severity, State};

    let rule = Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .build()
        .expect("a rule");
    let engine = Engine::new([rule]).expect("an engine");
    let builder = Monitor::builder()
        .manual_upkeep()
        .alerts(engine)
        .alert_interval(Duration::from_millis(20));
    // With local routing, the default receiver needs a notifier.
    #[cfg(feature = "alert-routing")]
    let builder = builder.notifier("default", vigil::alert::notify::TracingNotifier::new());
    let (monitor, tasks) = builder.build_tasks().expect("a monitor inside a runtime");
    vigil::with_local_recorder(&monitor.recorder(), || {
        vigil::metrics::gauge!("queue_depth").set(500.0);
    });
    let running = tokio::spawn(tasks.into_future());
    let no_labels = vigil::alert::Labels::new();
    let state = || {
        monitor
            .with_alerts(|engine| engine.state("QueueBacklog", &no_labels))
            .expect("alerts")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state() != State::Firing {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the alert loop did not evaluate within 10 s: {:?}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(monitor);
    ended(running).await;
}
