//! [`Monitor`]: the handle to vigil's registry that a host keeps, and the
//! background upkeep that keeps windows rotating.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::builder::MonitorBuilder;
use crate::recorder::Recorder;
use crate::registry::Shared;
use crate::summary::MetricsSummary;

/// The handle to vigil's registry: render it for Prometheus, summarize it
/// as JSON, drive its upkeep. Cheap to clone.
///
/// What a monitor runs (the `/metrics` listener, the upkeep, the alert
/// loop) lives as long as the monitor: from
/// [`build`](MonitorBuilder::build) (on vigil's own threads) and
/// `build_tasks` (on the host's runtime), until the last clone is dropped;
/// from [`install`](MonitorBuilder::install), for the rest of the process,
/// like the global recorder it installed (the returned handle may be
/// dropped).
///
/// ```
/// use vigil::Monitor;
///
/// let monitor = Monitor::builder().build()?;
/// vigil::with_local_recorder(&monitor.recorder(), || {
///     vigil::metrics::histogram!("db_query_seconds").record(0.004);
///     vigil::metrics::counter!("db_queries_total").increment(1);
/// });
/// let text = monitor.render();
/// assert!(text.contains("# TYPE db_query_seconds summary"));
/// assert!(text.contains("db_queries_total 1"));
/// # Ok::<(), vigil::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Monitor {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) recorder: Recorder,
    #[cfg(feature = "alerts")]
    pub(crate) alerts: Option<Arc<crate::alerting::Alerting>>,
    #[cfg(feature = "listener")]
    pub(crate) listen_address: Option<std::net::SocketAddr>,
    /// Held for its `Drop`, which ends the listener and alert tasks.
    #[cfg(any(feature = "listener", feature = "alerts"))]
    pub(crate) _stop: Option<crate::tasks::Stop>,
    /// Held for its `Drop`, which stops the thread.
    pub(crate) _upkeep: Option<Upkeep>,
    /// Registered caches, readiness checks, the system metrics thread.
    #[cfg(feature = "service")]
    pub(crate) service: crate::service::Service,
}

impl Monitor {
    /// Starts configuring a monitor.
    pub fn builder() -> MonitorBuilder {
        MonitorBuilder::default()
    }

    /// vigil's `metrics::Recorder` (forwarding to the layered recorder, if
    /// any).
    pub fn recorder(&self) -> Recorder {
        self.inner.recorder.clone()
    }

    fn shared(&self) -> &Shared {
        &self.inner.recorder.shared
    }

    /// The registry as Prometheus text exposition (format 0.0.4): HELP and
    /// TYPE lines, global labels, counters, gauges, and histograms as
    /// summaries over the window (or classic buckets where configured).
    pub fn render(&self) -> String {
        self.inner.recorder.refresh();
        crate::render::text(self.shared())
    }

    /// Every series as a serde-serializable [`MetricsSummary`].
    pub fn summary(&self) -> MetricsSummary {
        self.inner.recorder.refresh();
        crate::summary::of(self.shared())
    }

    /// Rotates histogram windows, samples counters and gauges and expires
    /// idle series now (the upkeep does this every
    /// [`upkeep_interval`](MonitorBuilder::upkeep_interval)).
    pub fn upkeep(&self) {
        self.inner.recorder.tick();
    }

    /// The address the `/metrics` listener is bound to, if one was
    /// configured (useful with port 0).
    #[cfg(feature = "listener")]
    pub fn listen_address(&self) -> Option<std::net::SocketAddr> {
        self.inner.listen_address
    }

    /// Evaluates the alert rules against the registry now, as the alert
    /// loop does every interval, and dispatches due notifications (without
    /// waiting for their delivery). Empty without
    /// [`alerts`](MonitorBuilder::alerts).
    #[cfg(feature = "alerts")]
    pub fn evaluate_alerts(&self, now: std::time::SystemTime) -> Vec<vigil_alert::Transition> {
        self.inner
            .alerts
            .as_ref()
            .map(|alerts| alerts.evaluate(now))
            .unwrap_or_default()
    }

    /// Runs `f` on the alert engine: its history, instances, firing
    /// alerts, silences (`add_silence`, `expire_silence`). `None` without
    /// [`alerts`](MonitorBuilder::alerts).
    #[cfg(feature = "alerts")]
    pub fn with_alerts<R>(&self, f: impl FnOnce(&mut vigil_alert::Engine) -> R) -> Option<R> {
        let alerts = self.inner.alerts.as_ref()?;
        let mut engine = alerts
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(f(&mut engine))
    }

    /// Registrations not stored as their own series so far: label sets
    /// folded into overflow series, and new names beyond
    /// [`max_series`](MonitorBuilder::max_series) not stored at all (also
    /// exported as `vigil_series_dropped_total`).
    pub fn series_dropped(&self) -> u64 {
        self.shared().series_dropped()
    }
}

/// The monitor made global by `install`: it runs as long as its recorder,
/// which `metrics` keeps for the rest of the process.
static INSTALLED: OnceLock<Monitor> = OnceLock::new();

/// Keeps `monitor` (and so its listener, upkeep and alert loop) for the
/// rest of the process; called once its recorder is the global one, which
/// can happen only once.
pub(crate) fn keep_installed(monitor: &Monitor) {
    let _ = INSTALLED.set(monitor.clone());
}

/// The background upkeep thread; stops when dropped.
#[derive(Debug)]
pub(crate) struct Upkeep {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upkeep {
    pub(crate) fn spawn(recorder: Recorder, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("vigil-upkeep".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    std::thread::park_timeout(interval);
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    recorder.tick();
                }
            })
            .ok();
        if thread.is_none() {
            tracing::warn!("vigil could not start its upkeep thread; windows rotate on reads only");
        }
        Self { stop, thread }
    }
}

impl Drop for Upkeep {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
