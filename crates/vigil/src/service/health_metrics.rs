//! The health score as metrics in the monitor's own registry:
//! [`HEALTH_SCORE`] and [`HEALTH_STATUS`], set each time the monitor
//! computes its health and, while the service layer is in use, every
//! interval on a `vigil-health` thread, so that a scrape of `/metrics`
//! (and Prometheus, and Grafana) always finds a current score.
//!
//! Why a thread of its own rather than a computation on each scrape: the
//! exposition is served from the registry alone (the `/metrics` listener
//! and route hold the recorder, not the monitor), while the score also
//! reads the registered caches, the system history and the alert engine;
//! and computing it reads a summary of the whole registry, which would
//! double the cost of every scrape. Why not only on the system metrics
//! tick: without system metrics there is none, and the score's other
//! inputs (p95, error rate, hit ratio, firing alerts) change without it.
//! So the thread recomputes every [`HEALTH_INTERVAL`] (Prometheus's default
//! scrape interval), or at the system metrics interval when that is
//! shorter (CPU, memory and disk change only at that tick): a scrape shows
//! a score at most one interval old.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use vigil_service::health::{HealthReport, HealthStatus};

use crate::monitor::{Inner, Monitor};
use crate::recorder::Recorder;

/// The health score, 0 to 100 (a gauge): `HealthReport::score` of the
/// latest computation.
pub const HEALTH_SCORE: &str = "vigil_health_score";

/// The health status as a state set (a gauge labelled `status` =
/// `healthy` | `degraded` | `unhealthy`): 1 for the status of the latest
/// computation, 0 for the other two.
pub const HEALTH_STATUS: &str = "vigil_health_status";

/// How often the `vigil-health` thread recomputes the score at most
/// apart: 15 s, or the system metrics interval when that is shorter.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(15);

/// Every status, each a series of [`HEALTH_STATUS`].
const STATUSES: [HealthStatus; 3] = [
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Unhealthy,
];

/// Sets the two gauges from `report`, through `recorder` (so a layered
/// recorder gets them too).
pub(super) fn publish(recorder: &Recorder, report: &HealthReport) {
    metrics::with_local_recorder(recorder, || {
        metrics::describe_gauge!(
            HEALTH_SCORE,
            "Health score of the service, 0 to 100 (Monitor::health)"
        );
        metrics::describe_gauge!(
            HEALTH_STATUS,
            "Health status of the service: 1 for the current status, 0 for the others"
        );
        metrics::gauge!(HEALTH_SCORE).set(report.score);
        for status in STATUSES {
            let current = if status == report.status { 1.0 } else { 0.0 };
            metrics::gauge!(HEALTH_STATUS, "status" => status.as_str()).set(current);
        }
    });
}

/// The `vigil-health` thread; told to stop when dropped.
///
/// It is not joined: the thread holds the monitor for the length of one
/// computation, so the last handle may be dropped on the thread itself,
/// which then drops this value.
#[derive(Debug)]
pub(super) struct Refresh {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::Thread>,
}

impl Refresh {
    /// Publishes `monitor`'s health now, then starts the thread
    /// recomputing it every `interval` for as long as the monitor lives.
    pub(super) fn start(monitor: &Monitor, interval: Duration) -> Self {
        monitor.health();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let weak: Weak<Inner> = Arc::downgrade(&monitor.inner);
        let thread = std::thread::Builder::new()
            .name("vigil-health".into())
            .spawn(move || {
                loop {
                    // `park_timeout` may return early: wait out the interval.
                    let due = Instant::now() + interval;
                    while let Some(left) = due.checked_duration_since(Instant::now()) {
                        if stopped.load(Ordering::Acquire) || left.is_zero() {
                            break;
                        }
                        std::thread::park_timeout(left);
                    }
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let Some(inner) = weak.upgrade() else {
                        break;
                    };
                    Monitor { inner }.health();
                }
            });
        if let Err(error) = &thread {
            tracing::warn!(
                "vigil could not start its health thread; {HEALTH_SCORE} is set only when \
                 the health is asked for: {error}"
            );
        }
        Self {
            stop,
            thread: thread.ok().map(|handle| handle.thread().clone()),
        }
    }
}

impl Drop for Refresh {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.unpark();
        }
    }
}
