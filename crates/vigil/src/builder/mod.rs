//! [`MonitorBuilder`]: every knob of the registry, the exposition and the
//! listener, validated once in [`build`](MonitorBuilder::build).

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use metrics_exporter_prometheus::Matcher;
use vigil_histogram::Config;

use crate::Error;
use crate::monitor::Monitor;

mod start;

/// The quantiles rendered for summaries by default (those of
/// `metrics-exporter-prometheus`).
pub const DEFAULT_QUANTILES: [f64; 7] = [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0];

/// The `le` bounds of classic buckets when none are given (those of the
/// Prometheus client libraries), in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The default of [`MonitorBuilder::max_series`]: how many series the
/// registry stores across every metric name.
pub const DEFAULT_MAX_SERIES: usize = 100_000;

/// Builds a [`Monitor`]: `Monitor::builder()...install()`.
///
/// ```
/// use std::time::Duration;
/// use vigil::{Matcher, Monitor};
///
/// let monitor = Monitor::builder()
///     .global_label("service", "checkout")
///     .window(Duration::from_secs(300))
///     .buckets(Matcher::Suffix("_seconds".into()), &[0.01, 0.1, 1.0])
///     .max_series_per_metric(500)
///     .max_series(50_000)
///     .build()?;
/// # let _ = monitor;
/// # Ok::<(), vigil::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` or `install`"]
pub struct MonitorBuilder {
    global_labels: IndexMap<String, String>,
    quantiles: Vec<f64>,
    buckets: Vec<(Matcher, Vec<f64>)>,
    histogram_default: Config,
    histograms: Vec<(Matcher, Config)>,
    window: Duration,
    idle_timeout: Option<Duration>,
    max_series_per_metric: usize,
    max_series: usize,
    clock: Option<quanta::Clock>,
    upkeep_interval: Option<Duration>,
    layer: Option<Arc<dyn metrics::Recorder + Send + Sync>>,
    #[cfg(feature = "listener")]
    listen: Option<String>,
    #[cfg(feature = "listener")]
    allowed: Vec<String>,
    #[cfg(feature = "listener")]
    listener_limits: crate::http::Limits,
    #[cfg(feature = "alerts")]
    alerts: Option<vigil_alert::Engine>,
    #[cfg(feature = "alert-routing")]
    notifiers: Vec<(String, Arc<dyn vigil_alert::notify::Notifier>)>,
    #[cfg(feature = "alert-delivery")]
    alertmanagers: Vec<String>,
    #[cfg(feature = "alert-delivery")]
    alertmanager_resend_delay: Duration,
    #[cfg(feature = "alerts")]
    alert_interval: Option<Duration>,
    #[cfg(feature = "service")]
    pub(crate) service: crate::service::Settings,
}

impl std::fmt::Debug for MonitorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut builder = f.debug_struct("MonitorBuilder");
        builder
            .field("global_labels", &self.global_labels)
            .field("window", &self.window);
        #[cfg(feature = "listener")]
        builder.field("listen", &self.listen);
        #[cfg(feature = "alert-delivery")]
        builder.field("alertmanagers", &self.alertmanagers);
        #[cfg(feature = "service")]
        builder.field("service", &self.service);
        builder
            .field("layered", &self.layer.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for MonitorBuilder {
    fn default() -> Self {
        Self {
            global_labels: IndexMap::new(),
            quantiles: DEFAULT_QUANTILES.to_vec(),
            buckets: Vec::new(),
            histogram_default: Config::new(),
            histograms: Vec::new(),
            window: Duration::from_secs(60),
            idle_timeout: None,
            max_series_per_metric: 1000,
            max_series: DEFAULT_MAX_SERIES,
            clock: None,
            upkeep_interval: Some(Duration::from_secs(1)),
            layer: None,
            #[cfg(feature = "listener")]
            listen: None,
            #[cfg(feature = "listener")]
            allowed: Vec::new(),
            #[cfg(feature = "listener")]
            listener_limits: crate::http::Limits::default(),
            #[cfg(feature = "alerts")]
            alerts: None,
            #[cfg(feature = "alert-routing")]
            notifiers: Vec::new(),
            #[cfg(feature = "alert-delivery")]
            alertmanagers: Vec::new(),
            #[cfg(feature = "alert-delivery")]
            alertmanager_resend_delay: vigil_alert::alertmanager::DEFAULT_RESEND_DELAY,
            #[cfg(feature = "alerts")]
            alert_interval: Some(Duration::from_secs(15)),
            #[cfg(feature = "service")]
            service: crate::service::Settings::default(),
        }
    }
}

impl MonitorBuilder {
    /// Applies one setting (what it returns, such as a replaced value, is
    /// not needed).
    fn set<R>(mut self, setting: impl FnOnce(&mut Self) -> R) -> Self {
        setting(&mut self);
        self
    }

    /// Adds a label to every series in the exposition (e.g. `service`).
    /// The key must be a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`)
    /// that the exposition does not reserve: not `__`-prefixed, not `le`
    /// or `quantile` (histograms and summaries add those), not
    /// `vigil_overflow`; [`build`](Self::build) refuses any other, naming
    /// it. The value may be any text (it is escaped). A series label of the
    /// same key replaces the global one on that series.
    pub fn global_label(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(|b| b.global_labels.insert(key.into(), value.into()))
    }

    /// The quantiles written for histograms rendered as summaries
    /// (default [`DEFAULT_QUANTILES`]); each must lie in `0.0..=1.0`.
    pub fn quantiles(self, quantiles: &[f64]) -> Self {
        self.set(|b| b.quantiles = quantiles.to_vec())
    }

    /// Renders histograms whose name matches as classic Prometheus
    /// histograms with these `le` bounds (cumulative counts from the HDR
    /// histogram) instead of summaries, so a fleet can aggregate them with
    /// `histogram_quantile`. An empty slice means [`DEFAULT_BUCKETS`].
    pub fn buckets(self, matcher: Matcher, bounds: &[f64]) -> Self {
        self.set(|b| {
            let bounds = if bounds.is_empty() {
                DEFAULT_BUCKETS.to_vec()
            } else {
                bounds.to_vec()
            };
            b.buckets.push((matcher, bounds));
        })
    }

    /// The range, precision, windows or coordinated-omission correction of
    /// histograms whose name matches (first match wins). Values recorded
    /// through `metrics::histogram!` are `f64`s multiplied by the config's
    /// scale (default 1e9: seconds stored as nanoseconds).
    pub fn histogram(self, matcher: Matcher, config: Config) -> Self {
        self.set(|b| b.histograms.push((matcher, config)))
    }

    /// The configuration of every other histogram (default
    /// [`Config::new`]: 1 ns to 1 h at 3 significant figures, 10 s
    /// intervals kept for 15 min).
    pub fn default_histogram(self, config: Config) -> Self {
        self.set(|b| b.histogram_default = config)
    }

    /// The window that summary quantiles, counter rates and gauge
    /// statistics cover (default 60 s).
    pub fn window(self, window: Duration) -> Self {
        self.set(|b| b.window = window)
    }

    /// Series not updated for this long leave the exposition; those no
    /// handle holds any more are deleted, freeing their slot under the
    /// series limit. Off by default.
    pub fn idle_timeout(self, timeout: Duration) -> Self {
        self.set(|b| b.idle_timeout = Some(timeout))
    }

    /// The most series one metric name may have (default 1 000). New label
    /// sets beyond it fold into one series labelled `vigil_overflow="true"`
    /// and count in `vigil_series_dropped_total`.
    pub fn max_series_per_metric(self, limit: usize) -> Self {
        self.set(|b| b.max_series_per_metric = limit)
    }

    /// The most series the registry stores across every metric name and
    /// kind (default [`DEFAULT_MAX_SERIES`], 100 000), so that memory stays
    /// bounded whatever names and labels are recorded (a request id in a
    /// metric name, say). Once it is reached, a new label set of a metric
    /// that has series folds into that metric's overflow series (labelled
    /// `vigil_overflow="true"`, as beyond
    /// [`max_series_per_metric`](Self::max_series_per_metric)), and a
    /// series of a metric name with no series is not stored at all: its
    /// handle records nothing, and nothing is kept for the name. Both
    /// count in `vigil_series_dropped_total`, once per registration
    /// (`metrics::counter!` registers at each call; a kept handle
    /// registered once). Overflow series are not counted in the budget:
    /// at most one more per stored metric name. Series that expire (see
    /// [`idle_timeout`](Self::idle_timeout)) give their room back.
    ///
    /// At the default, 1 000 000 distinct counter names (100 000 stored,
    /// 900 000 dropped) add about 22 MiB of resident memory, about 54 MiB
    /// once rendered (`docs/benchmarks.md`).
    pub fn max_series(self, limit: usize) -> Self {
        self.set(|b| b.max_series = limit)
    }

    /// The clock for windows, rates and idle expiry (tests pass
    /// `quanta::Clock::mock()`); it is also given to every histogram config.
    pub fn clock(self, clock: quanta::Clock) -> Self {
        self.set(|b| b.clock = Some(clock))
    }

    /// How often the upkeep (a background thread, or the `upkeep` task of
    /// `build_tasks`) rotates windows, samples counters and gauges and
    /// expires idle series (default every second). Reads do the same work
    /// on demand.
    pub fn upkeep_interval(self, interval: Duration) -> Self {
        self.set(|b| b.upkeep_interval = Some(interval))
    }

    /// Runs no upkeep (no thread, no task): windows rotate and samples are
    /// taken only on reads and on [`Monitor::upkeep`] (for tests with a
    /// mock clock and hosts that drive upkeep themselves).
    pub fn manual_upkeep(self) -> Self {
        self.set(|b| b.upkeep_interval = None)
    }

    #[cfg(feature = "listener")]
    /// Serves `GET /metrics` on this address, e.g. `"127.0.0.1:9000"`
    /// (port 0 picks a free port; see [`Monitor::listen_address`]). A host
    /// name (`"localhost:9000"`) is resolved when the monitor is built and
    /// its first address is bound. Bind a non-loopback address only on
    /// purpose, ideally with [`allow`](Self::allow).
    pub fn listen(self, address: impl Into<String>) -> Self {
        self.set(|b| b.listen = Some(address.into()))
    }

    #[cfg(feature = "listener")]
    /// Accepts scrapes only from this address or network (`"10.0.0.0/8"`,
    /// `"192.168.1.7"`); may be given several times. Without any, every
    /// peer that can reach the listen address is served.
    pub fn allow(self, address_or_network: impl Into<String>) -> Self {
        self.set(|b| b.allowed.push(address_or_network.into()))
    }

    #[cfg(feature = "listener")]
    /// How long the `/metrics` listener waits on a client (defaults: 10 s,
    /// 90 s, 30 s): `header_read` from a request's first byte to the end of
    /// its head, `idle` on a connection with no request in progress, and
    /// `write` from a request's head to its response written, so a client
    /// that never reads holds its buffered exposition no longer than that.
    /// A connection past its limit is closed.
    pub fn listener_timeouts(self, header_read: Duration, idle: Duration, write: Duration) -> Self {
        self.set(|b| {
            b.listener_limits.header_read = header_read;
            b.listener_limits.idle = idle;
            b.listener_limits.write = write;
        })
    }

    #[cfg(feature = "listener")]
    /// The most connections the `/metrics` listener keeps open (default
    /// 64). A new one beyond it closes the connection idle for longest, or
    /// is closed itself when every connection has a request in progress.
    pub fn listener_max_connections(self, limit: usize) -> Self {
        self.set(|b| b.listener_limits.max_connections = limit)
    }

    /// Keeps a recorder the host already has: every describe, register and
    /// record goes to vigil's registry and, unchanged, to `recorder`.
    pub fn layer<R>(self, recorder: R) -> Self
    where
        R: metrics::Recorder + Send + Sync + 'static,
    {
        self.set(|b| b.layer = Some(Arc::new(recorder)))
    }

    #[cfg(feature = "alerts")]
    /// Evaluates these alert rules against the registry every
    /// [`alert_interval`](Self::alert_interval) (default 15 s) and hands
    /// the notifications to the [`notifier`](Self::notifier)s of their
    /// receivers, and/or sends the alerts to
    /// [`alertmanager`](Self::alertmanager)s. Build the engine in code or
    /// from a rule file (`vigil::alert::config`).
    ///
    /// [`build`](Self::build) checks that every receiver the engine can
    /// notify (its routes', its default, its rules' escalation receivers;
    /// see [`Engine::receivers`](vigil_alert::Engine::receivers)) has a
    /// notifier, unless the alerts only go to Alertmanager (no notifier at
    /// all): then vigil's own routing is not used.
    pub fn alerts(self, engine: vigil_alert::Engine) -> Self {
        self.set(|b| b.alerts = Some(engine))
    }

    #[cfg(feature = "alert-routing")]
    /// Delivers notifications routed to `receiver` with `notifier`; give a
    /// receiver several by calling this again. Each has its own bounded
    /// queue, retries and timeout (see `vigil::alert::notify`).
    /// [`build`](Self::build) fails, naming them, if a receiver of the
    /// [`alerts`](Self::alerts)' routing has no notifier.
    pub fn notifier(
        self,
        receiver: impl Into<String>,
        notifier: impl vigil_alert::notify::Notifier + 'static,
    ) -> Self {
        self.set(|b| b.notifiers.push((receiver.into(), Arc::new(notifier))))
    }

    #[cfg(feature = "alert-delivery")]
    /// Sends every active alert to the Alertmanager at `url`, the way
    /// Prometheus does; call again for each of several Alertmanagers (each
    /// gets every alert).
    ///
    /// After every evaluation in which an alert started firing or resolved,
    /// and at least every
    /// [`alertmanager_resend_delay`](Self::alertmanager_resend_delay)
    /// (default 1 min), every firing alert is sent with
    /// `endsAt = now + 4 x max(alert_interval, resend delay)`, so it stays
    /// active in Alertmanager while it fires and expires there if this
    /// process stops sending. A resolved alert is sent with its resolution
    /// time as `endsAt` and re-sent for 15 minutes. Pending alerts are not
    /// sent. Alerts carry their labels (with `alertname` and `severity`),
    /// annotations and `startsAt` (when they started firing); Alertmanager
    /// identifies them by the same
    /// [fingerprint](vigil_alert::Alert::fingerprint) as vigil.
    ///
    /// `url` is Alertmanager's base URL, e.g. `"http://alertmanager:9093"`
    /// (or `"http://proxy/alertmanager"` behind a route prefix): alerts are
    /// posted to `<url>/api/v2/alerts` (a URL already ending in
    /// `/api/v2/alerts` is used as it is), `http://` or `https://`. This path
    /// bypasses vigil's own routing, grouping, timers, silences and
    /// inhibit rules, which Alertmanager applies instead; delivery uses
    /// vigil's non-blocking dispatcher (a bounded queue per Alertmanager,
    /// retries, drops counted in `alert_notification_failures_total` with
    /// `receiver="alertmanager"` and `notifier` = the URL). Needs
    /// [`alerts`](Self::alerts); [`build`](Self::build) rejects a URL it
    /// cannot use, naming it. See `vigil::alert::alertmanager`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil::Monitor;
    /// use vigil::alert::{Comparison, Engine, Rule, Severity};
    ///
    /// let engine = Engine::new([Rule::builder("QueueBacklog")
    ///     .gauge("queue_depth")
    ///     .threshold(Severity::High, Comparison::Greater, 100.0)
    ///     .build()?])?;
    /// let monitor = Monitor::builder()
    ///     .alerts(engine)
    ///     .alertmanager("http://alertmanager-1:9093")
    ///     .alertmanager("http://alertmanager-2:9093")
    ///     .alertmanager_resend_delay(Duration::from_secs(30))
    ///     .build()?;
    /// # drop(monitor);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn alertmanager(self, url: impl Into<String>) -> Self {
        self.set(|b| b.alertmanagers.push(url.into()))
    }

    #[cfg(feature = "alert-delivery")]
    /// How often every active alert is sent to the
    /// [`alertmanager`](Self::alertmanager)s at least (default 1 min, as
    /// Prometheus's `--rules.alert.resend-delay`); firing alerts are valid
    /// there for `4 x max(alert_interval, delay)`.
    pub fn alertmanager_resend_delay(self, delay: Duration) -> Self {
        self.set(|b| b.alertmanager_resend_delay = delay)
    }

    #[cfg(feature = "alerts")]
    /// How often the alert rules are evaluated (default 15 s).
    /// [`build`](Self::build) refuses rules that cannot work at this
    /// interval (a rate window shorter than it, a baseline window shorter
    /// than `min_samples` intervals); see
    /// [`Engine::check_evaluation_interval`](vigil_alert::Engine::check_evaluation_interval).
    pub fn alert_interval(self, interval: Duration) -> Self {
        self.set(|b| b.alert_interval = Some(interval))
    }

    #[cfg(feature = "alerts")]
    /// Evaluates alerts only when [`Monitor::evaluate_alerts`] is called
    /// (tests with synthetic times, hosts with their own scheduler);
    /// notifications are still delivered in the background.
    pub fn manual_alerts(self) -> Self {
        self.set(|b| b.alert_interval = None)
    }

    /// Builds the registry and starts what the monitor runs, on threads of
    /// its own: the upkeep thread, and one thread (a current-thread tokio
    /// runtime) for the listener and the alert loop, if configured. They
    /// run until the last clone of the returned [`Monitor`] is dropped.
    /// Does not install the recorder globally: use [`Monitor::recorder`]
    /// with [`with_local_recorder`](crate::with_local_recorder) or
    /// `metrics::set_global_recorder`, or [`install`](Self::install).
    /// To run them on the host's runtime instead, see `build_tasks`.
    pub fn build(self) -> Result<Monitor, Error> {
        let prepared = self.prepare()?;
        #[cfg(any(feature = "listener", feature = "alerts"))]
        if prepared.needs_runtime() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| Error::Runtime { source })?;
            let started = {
                // The listener's socket and the delivery tasks register
                // with the runtime that is current.
                let _entered = runtime.enter();
                prepared.start(false)
            };
            let (monitor, tasks) = match started {
                Ok(started) => started,
                Err(e) => {
                    // Dropping a runtime inside the host's async context
                    // panics; this one has nothing to wait for.
                    runtime.shutdown_background();
                    return Err(e);
                }
            };
            crate::tasks::spawn_thread(runtime, tasks)
                .map_err(|source| Error::Runtime { source })?;
            return Ok(monitor);
        }
        Ok(prepared.without_runtime())
    }

    /// Builds the registry like [`build`](Self::build), but starts no
    /// thread or runtime: returns the monitor and its background jobs as
    /// futures ([`Tasks`](crate::Tasks): the `/metrics` listener, the alert
    /// loop, the upkeep) for the host to run on its own tokio runtime, as
    /// `metrics_exporter_prometheus::PrometheusBuilder::build` returns its
    /// exporter's future. Call it inside that runtime (the listener's
    /// socket and the alert delivery tasks register with it; outside one,
    /// it fails with [`Error::NoRuntime`]). The tasks end once the last
    /// clone of the monitor is dropped: keep one for as long as they should
    /// run. To make the recorder global, pass [`Monitor::recorder`] to
    /// `metrics::set_global_recorder`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), vigil::Error> {
    /// # #[cfg(feature = "listener")] {
    /// let (monitor, tasks) = vigil::Monitor::builder()
    ///     .listen("127.0.0.1:0")
    ///     .build_tasks()?;
    /// if let Some(listener) = tasks.listener {
    ///     tokio::spawn(listener);
    /// }
    /// # if let Some(upkeep) = tasks.upkeep { tokio::spawn(upkeep); }
    /// assert!(monitor.listen_address().is_some());
    /// # }
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(any(feature = "listener", feature = "alerts"))]
    pub fn build_tasks(self) -> Result<(Monitor, crate::Tasks), Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        self.prepare()?.start(true)
    }

    /// [`build`](Self::build)s and makes vigil's recorder the global
    /// `metrics` recorder, so every `metrics::counter!`, `histogram!`,
    /// `#[timed]` and [`Timer`](crate::Timer) in the process records into
    /// it.
    ///
    /// The global recorder stays for the life of the process, and so does
    /// what the monitor runs (the `/metrics` listener, the upkeep thread,
    /// the alert loop): the returned [`Monitor`] is a handle, which may be
    /// dropped. `Monitor::builder().listen(addr).install()?;` keeps serving.
    ///
    /// ```no_run
    /// # #[cfg(feature = "listener")] {
    /// vigil::Monitor::builder().listen("127.0.0.1:9000").install()?;
    /// // /metrics is served until the process exits.
    /// # }
    /// # Ok::<(), vigil::Error>(())
    /// ```
    pub fn install(self) -> Result<Monitor, Error> {
        let monitor = self.build()?;
        metrics::set_global_recorder(monitor.recorder()).map_err(|_| Error::AlreadyInstalled)?;
        crate::monitor::keep_installed(&monitor);
        Ok(monitor)
    }
}
