//! The dispatcher and the in-process notifiers (channel, closure, tracing):
//! delivery, retries with backoff (on tokio's paused clock), timeouts,
//! queue overflow, and that every drop is counted and logged.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use support::{Capture, Counters, notification};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Level;
use vigil_alert::AlertStatus;
use vigil_alert::notify::{
    ChannelNotifier, Dispatcher, Notifier, NotifyError, TracingNotifier, notifier_fn,
};

const DELIVERED: &str = "alert_notifications_total";
const FAILED: &str = "alert_notification_failures_total";

#[tokio::test]
async fn channel_notifier_hands_notifications_to_the_host() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let (notifier, mut host) = ChannelNotifier::channel(8);
    let dispatcher = Dispatcher::builder()
        .receiver("ops", notifier)
        .build()
        .unwrap();

    let sent = notification("ops", AlertStatus::Firing);
    assert_eq!(dispatcher.dispatch(sent.clone()), 1);
    assert_eq!(host.recv().await, Some(sent));
    dispatcher.shutdown().await;
    let labels = [("receiver", "ops"), ("notifier", "channel")];
    assert_eq!(counters.get(DELIVERED, &labels), 1);
    assert_eq!(counters.get(FAILED, &[]), 0);
}

#[tokio::test]
async fn closure_notifier_receives_each_notification() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let notifier = notifier_fn(move |n| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((n.receiver, n.status));
            Ok::<_, NotifyError>(())
        }
    });
    let dispatcher = Dispatcher::builder()
        .receiver("ops", notifier)
        .build()
        .unwrap();

    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.dispatch(notification("ops", AlertStatus::Resolved));
    dispatcher.shutdown().await;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("ops".to_owned(), AlertStatus::Firing),
            ("ops".to_owned(), AlertStatus::Resolved)
        ]
    );
}

#[tokio::test]
async fn tracing_notifier_emits_a_structured_event_per_alert() {
    let capture = Capture::default();
    let _subscriber = tracing::subscriber::set_default(capture.clone());
    let notifier = TracingNotifier::new();

    notifier
        .notify(&notification("ops", AlertStatus::Firing))
        .await
        .unwrap();
    notifier
        .notify(&notification("ops", AlertStatus::Resolved))
        .await
        .unwrap();

    let events: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.target == "vigil_alert::notify")
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    let (firing, resolved) = (&events[0], &events[1]);
    assert_eq!(firing.level, Level::WARN);
    assert_eq!(firing.field("message"), Some("checkout fails 0.3 of calls"));
    assert_eq!(firing.field("alertname"), Some("HighErrorRate"));
    assert_eq!(firing.field("severity"), Some("critical"));
    assert_eq!(firing.field("status"), Some("firing"));
    assert_eq!(firing.field("receiver"), Some("ops"));
    assert_eq!(firing.field("value"), Some("0.3"));
    assert_eq!(
        firing.field("labels"),
        Some(r#"{alertname="HighErrorRate", function="checkout", severity="critical"}"#)
    );
    assert!(firing.field("ends_at").is_none());
    assert_eq!(resolved.level, Level::INFO);
    assert_eq!(resolved.field("status"), Some("resolved"));
    assert!(resolved.field("ends_at").is_some_and(|t| t.ends_with('Z')));
}

/// Records the (paused) time of each attempt; fails the first `failures`.
fn flaky(failures: u32, attempts: Arc<Mutex<Vec<Instant>>>) -> impl Notifier {
    let count = Arc::new(AtomicU32::new(0));
    notifier_fn(move |_| {
        let (count, attempts) = (count.clone(), attempts.clone());
        async move {
            attempts.lock().unwrap().push(Instant::now());
            if count.fetch_add(1, Ordering::SeqCst) < failures {
                Err("temporarily unavailable")
            } else {
                Ok(())
            }
        }
    })
    .named("flaky")
}

#[tokio::test(start_paused = true)]
async fn failing_twice_then_succeeding_is_delivered_once_after_three_attempts() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = Dispatcher::builder()
        .receiver("ops", flaky(2, attempts.clone()))
        .initial_backoff(Duration::from_secs(1))
        .max_backoff(Duration::from_secs(60))
        .max_attempts(5)
        .jitter(false) // the exact schedule
        .build()
        .unwrap();

    let start = Instant::now();
    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.shutdown().await;

    let offsets: Vec<Duration> = attempts
        .lock()
        .unwrap()
        .iter()
        .map(|t| *t - start)
        .collect();
    // Exponential backoff: 1 s, then 2 s.
    assert_eq!(
        offsets,
        [
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(3)
        ]
    );
    assert_eq!(counters.get(DELIVERED, &[("notifier", "flaky")]), 1);
    assert_eq!(counters.get(FAILED, &[]), 0);
}

#[tokio::test(start_paused = true)]
async fn jittered_waits_stay_between_the_schedule_and_twice_it() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = Dispatcher::builder()
        .receiver("ops", flaky(3, attempts.clone()))
        .initial_backoff(Duration::from_secs(1))
        .max_backoff(Duration::from_secs(3))
        .build()
        .unwrap();

    let start = Instant::now();
    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.shutdown().await;

    let times: Vec<Instant> = attempts.lock().unwrap().clone();
    assert_eq!(times.len(), 4);
    let waits: Vec<Duration> = std::iter::once(start)
        .chain(times.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert_eq!(waits[0], Duration::ZERO);
    for (wait, (low, high)) in waits[1..].iter().zip([(1, 2), (2, 3), (3, 3)]) {
        let (low, high) = (Duration::from_secs(low), Duration::from_secs(high));
        assert!(low <= *wait && *wait <= high, "{waits:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_is_capped_and_attempts_are_bounded() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = Dispatcher::builder()
        .receiver("ops", flaky(u32::MAX, attempts.clone()))
        .initial_backoff(Duration::from_secs(1))
        .max_backoff(Duration::from_secs(3))
        .max_attempts(4)
        .jitter(false) // the exact schedule
        .build()
        .unwrap();

    let start = Instant::now();
    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.shutdown().await;

    let offsets: Vec<u64> = attempts
        .lock()
        .unwrap()
        .iter()
        .map(|t| (*t - start).as_secs())
        .collect();
    assert_eq!(offsets, [0, 1, 3, 6]); // waits 1, 2, then 3 (capped)
    let labels = [
        ("receiver", "ops"),
        ("notifier", "flaky"),
        ("reason", "error"),
    ];
    assert_eq!(counters.get(FAILED, &labels), 1);
    assert_eq!(counters.get(DELIVERED, &[]), 0);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_that_outlives_the_timeout_is_abandoned_and_counted() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let stuck = notifier_fn(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>()
    });
    let dispatcher = Dispatcher::builder()
        .receiver("ops", stuck)
        .timeout(Duration::from_secs(5))
        .initial_backoff(Duration::from_secs(1))
        .max_attempts(2)
        .jitter(false) // the exact schedule
        .build()
        .unwrap();

    let start = Instant::now();
    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.shutdown().await;

    assert_eq!(start.elapsed(), Duration::from_secs(11)); // 5 + 1 + 5
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let labels = [
        ("receiver", "ops"),
        ("notifier", "fn"),
        ("reason", "timeout"),
    ];
    assert_eq!(counters.get(FAILED, &labels), 1);
}

#[tokio::test]
async fn a_closed_channel_is_not_retried() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let (notifier, host) = ChannelNotifier::channel(1);
    drop(host);
    let dispatcher = Dispatcher::builder()
        .receiver("ops", notifier)
        // A retry would wait an hour: the test finishing shows there was none.
        .initial_backoff(Duration::from_secs(3600))
        .max_backoff(Duration::from_secs(3600))
        .build()
        .unwrap();

    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    tokio::time::timeout(Duration::from_secs(10), dispatcher.shutdown())
        .await
        .expect("no retry");
    let labels = [("notifier", "channel"), ("reason", "error")];
    assert_eq!(counters.get(FAILED, &labels), 1);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let gate = Arc::new(Semaphore::new(0));
    let delivered = Arc::new(AtomicU32::new(0));
    let (g, d) = (gate.clone(), delivered.clone());
    let blocked = notifier_fn(move |_| {
        let (gate, delivered) = (g.clone(), d.clone());
        async move {
            gate.acquire().await.unwrap().forget();
            delivered.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dispatcher = Dispatcher::builder()
        .receiver("ops", blocked)
        .queue_capacity(2)
        .build()
        .unwrap();

    // The worker cannot run before this test yields: the queue holds 2.
    let queued: Vec<usize> = (0..5)
        .map(|_| dispatcher.dispatch(notification("ops", AlertStatus::Firing)))
        .collect();
    assert_eq!(queued, [1, 1, 0, 0, 0]);
    let labels = [
        ("receiver", "ops"),
        ("notifier", "fn"),
        ("reason", "queue_full"),
    ];
    assert_eq!(counters.get(FAILED, &labels), 3);

    gate.add_permits(2);
    dispatcher.shutdown().await;
    assert_eq!(delivered.load(Ordering::SeqCst), 2);
    assert_eq!(counters.get(DELIVERED, &[("notifier", "fn")]), 2);
}

#[tokio::test]
async fn a_stuck_notifier_never_delays_dispatch() {
    let stuck = notifier_fn(|_| std::future::pending::<()>());
    let (channel, mut host) = ChannelNotifier::channel(100);
    let dispatcher = Dispatcher::builder()
        .receiver("ops", stuck)
        .receiver("ops", channel)
        .queue_capacity(64)
        .build()
        .unwrap();

    // dispatch only queues: waiting on the stuck notifier would take
    // forever (or its attempt timeout), so a bound far above a queue push
    // and far below any wait holds on a loaded machine too.
    for _ in 0..50 {
        let start = std::time::Instant::now();
        assert_eq!(
            dispatcher.dispatch(notification("ops", AlertStatus::Firing)),
            2
        );
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }
    // The other notifier of the receiver is not held up by the stuck one.
    for _ in 0..50 {
        assert!(host.recv().await.is_some());
    }
}

#[tokio::test]
async fn notifications_for_an_unknown_receiver_are_counted() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let dispatcher = Dispatcher::builder()
        .receiver("ops", TracingNotifier::new())
        .build()
        .unwrap();

    assert_eq!(
        dispatcher.dispatch(notification("nobody", AlertStatus::Firing)),
        0
    );
    let labels = [
        ("receiver", "nobody"),
        ("notifier", "none"),
        ("reason", "unknown_receiver"),
    ];
    assert_eq!(counters.get(FAILED, &labels), 1);
    assert_eq!(dispatcher.receivers().collect::<Vec<_>>(), ["ops"]);
}

#[tokio::test]
async fn a_burst_of_drops_is_logged_once_and_summed_up_on_recovery() {
    let capture = Capture::default();
    let _subscriber = tracing::subscriber::set_default(capture.clone());
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let blocked = notifier_fn(move |_| {
        let gate = g.clone();
        async move { gate.acquire().await.unwrap().forget() }
    });
    let dispatcher = Dispatcher::builder()
        .receiver("ops", blocked)
        .queue_capacity(1)
        .build()
        .unwrap();

    for _ in 0..10 {
        dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    }
    dispatcher.dispatch(notification("elsewhere", AlertStatus::Firing));
    let dropped = capture.with_message("alert notification dropped");
    assert_eq!(dropped.len(), 2, "one per (receiver, reason): {dropped:#?}");
    assert_eq!(dropped[0].level, Level::WARN);
    assert_eq!(dropped[0].field("receiver"), Some("ops"));
    assert_eq!(dropped[0].field("reason"), Some("queue_full"));
    assert_eq!(dropped[1].field("reason"), Some("unknown_receiver"));

    gate.add_permits(1);
    dispatcher.shutdown().await;
    let recovered = capture.with_message("delivered again");
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    assert_eq!(recovered[0].field("dropped"), Some("9"));
    assert_eq!(recovered[0].field("reason"), Some("queue_full"));
}

#[tokio::test]
async fn a_panicking_notifier_loses_one_notification_not_its_queue() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let panicky = notifier_fn(move |_| {
        let first = c.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            assert!(!first, "deliberate panic in a notifier");
        }
    });
    let dispatcher = Dispatcher::builder()
        .receiver("ops", panicky)
        .max_attempts(1)
        .build()
        .unwrap();

    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.shutdown().await;
    assert_eq!(counters.get(FAILED, &[("reason", "error")]), 1);
    assert_eq!(counters.get(DELIVERED, &[]), 1);
}

#[tokio::test]
async fn delivery_metrics_are_described() {
    let recorder = DebuggingRecorder::new();
    let mut counters = Counters::new(&recorder);
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let dispatcher = Dispatcher::builder()
        .receiver("ops", TracingNotifier::new())
        .build()
        .unwrap();
    dispatcher.dispatch(notification("ops", AlertStatus::Firing));
    dispatcher.dispatch(notification("nobody", AlertStatus::Firing));
    dispatcher.shutdown().await;
    assert!(counters.described(DELIVERED));
    assert!(counters.described(FAILED));
}

#[test]
fn notifiers_are_object_safe() {
    let notifiers: Vec<Arc<dyn Notifier>> = vec![
        Arc::new(TracingNotifier::new()),
        Arc::new(ChannelNotifier::channel(1).0),
        Arc::new(notifier_fn(|_| async {})),
    ];
    let names: Vec<&str> = notifiers.iter().map(|n| n.name()).collect();
    assert_eq!(names, ["tracing", "channel", "fn"]);
}

#[cfg(feature = "routing")]
#[tokio::test]
async fn engine_notifications_reach_the_receivers_notifiers() {
    use std::time::UNIX_EPOCH;
    use vigil_alert::{Comparison, Engine, MemorySource, Routing, Rule, Severity};

    let rule = Rule::builder("QueueDeep")
        .gauge("queue_depth")
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .build()
        .unwrap();
    let mut engine = Engine::builder()
        .rule(rule)
        .routing(Routing::new("ops").group_wait(Duration::ZERO))
        .build()
        .unwrap();
    let mut source = MemorySource::new();
    source.set_gauge("queue_depth", [("queue", "jobs")], 250.0);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    engine.evaluate(now, &source);

    let (notifier, mut host) = ChannelNotifier::channel(8);
    let dispatcher = Dispatcher::builder()
        .receiver("ops", notifier)
        .build()
        .unwrap();
    assert_eq!(dispatcher.dispatch_all(engine.due_notifications(now)), 1);
    let received = host.recv().await.unwrap();
    assert_eq!(received.receiver, "ops");
    assert_eq!(received.alerts[0].labels["alertname"], "QueueDeep");
    assert_eq!(received.alerts[0].labels["queue"], "jobs");
    dispatcher.shutdown().await;
}
