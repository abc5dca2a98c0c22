//! [`MonitorBuilder`]: every knob of the registry, the exposition and the
//! listener, validated once in [`build`](MonitorBuilder::build).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use ipnet::IpNet;
use metrics_exporter_prometheus::Matcher;
use vigil_histogram::Config;

use crate::Error;
use crate::alerting::AlertLoop;
use crate::monitor::{Inner, Monitor, Upkeep};
use crate::recorder::{Recorder, Settings, Shared};
use crate::storage::Storage;

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
    listen: Option<String>,
    allowed: Vec<String>,
    listener_limits: crate::http::Limits,
    layer: Option<Arc<dyn metrics::Recorder + Send + Sync>>,
    alerts: Option<vigil_alert::Engine>,
    notifiers: Vec<(String, Arc<dyn vigil_alert::notify::Notifier>)>,
    alertmanagers: Vec<String>,
    alertmanager_resend_delay: Duration,
    alert_interval: Option<Duration>,
}

impl std::fmt::Debug for MonitorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorBuilder")
            .field("global_labels", &self.global_labels)
            .field("window", &self.window)
            .field("listen", &self.listen)
            .field("alertmanagers", &self.alertmanagers)
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
            listen: None,
            allowed: Vec::new(),
            listener_limits: crate::http::Limits::default(),
            layer: None,
            alerts: None,
            notifiers: Vec::new(),
            alertmanagers: Vec::new(),
            alertmanager_resend_delay: vigil_alert::alertmanager::DEFAULT_RESEND_DELAY,
            alert_interval: Some(Duration::from_secs(15)),
        }
    }
}

impl MonitorBuilder {
    /// Adds a label to every series in the exposition (e.g. `service`).
    /// The key must be a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`)
    /// that the exposition does not reserve: not `__`-prefixed, not `le`
    /// or `quantile` (histograms and summaries add those), not
    /// `vigil_overflow`; [`build`](Self::build) refuses any other, naming
    /// it. The value may be any text (it is escaped). A series label of the
    /// same key replaces the global one on that series.
    pub fn global_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.global_labels.insert(key.into(), value.into());
        self
    }

    /// The quantiles written for histograms rendered as summaries
    /// (default [`DEFAULT_QUANTILES`]); each must lie in `0.0..=1.0`.
    pub fn quantiles(mut self, quantiles: &[f64]) -> Self {
        self.quantiles = quantiles.to_vec();
        self
    }

    /// Renders histograms whose name matches as classic Prometheus
    /// histograms with these `le` bounds (cumulative counts from the HDR
    /// histogram) instead of summaries, so a fleet can aggregate them with
    /// `histogram_quantile`. An empty slice means [`DEFAULT_BUCKETS`].
    pub fn buckets(mut self, matcher: Matcher, bounds: &[f64]) -> Self {
        let bounds = if bounds.is_empty() {
            DEFAULT_BUCKETS.to_vec()
        } else {
            bounds.to_vec()
        };
        self.buckets.push((matcher, bounds));
        self
    }

    /// The range, precision, windows or coordinated-omission correction of
    /// histograms whose name matches (first match wins). Values recorded
    /// through `metrics::histogram!` are `f64`s multiplied by the config's
    /// scale (default 1e9: seconds stored as nanoseconds).
    pub fn histogram(mut self, matcher: Matcher, config: Config) -> Self {
        self.histograms.push((matcher, config));
        self
    }

    /// The configuration of every other histogram (default
    /// [`Config::new`]: 1 ns to 1 h at 3 significant figures, 10 s
    /// intervals kept for 15 min).
    pub fn default_histogram(mut self, config: Config) -> Self {
        self.histogram_default = config;
        self
    }

    /// The window that summary quantiles, counter rates and gauge
    /// statistics cover (default 60 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Series not updated for this long leave the exposition; those no
    /// handle holds any more are deleted, freeing their slot under the
    /// series limit. Off by default.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The most series one metric name may have (default 1 000). New label
    /// sets beyond it fold into one series labelled `vigil_overflow="true"`
    /// and count in `vigil_series_dropped_total`.
    pub fn max_series_per_metric(mut self, limit: usize) -> Self {
        self.max_series_per_metric = limit;
        self
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
    pub fn max_series(mut self, limit: usize) -> Self {
        self.max_series = limit;
        self
    }

    /// The clock for windows, rates and idle expiry (tests pass
    /// `quanta::Clock::mock()`); it is also given to every histogram config.
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How often a background thread rotates windows, samples counters and
    /// gauges and expires idle series (default every second). Reads do the
    /// same work on demand.
    pub fn upkeep_interval(mut self, interval: Duration) -> Self {
        self.upkeep_interval = Some(interval);
        self
    }

    /// Starts no upkeep thread: windows rotate and samples are taken only
    /// on reads and on [`Monitor::upkeep`] (for tests with a mock clock and
    /// hosts that drive upkeep themselves).
    pub fn manual_upkeep(mut self) -> Self {
        self.upkeep_interval = None;
        self
    }

    /// Serves `GET /metrics` on this address, e.g. `"127.0.0.1:9000"`
    /// (port 0 picks a free port; see [`Monitor::listen_address`]). A host
    /// name (`"localhost:9000"`) is resolved when the monitor is built and
    /// its first address is bound. Bind a non-loopback address only on
    /// purpose, ideally with [`allow`](Self::allow).
    pub fn listen(mut self, address: impl Into<String>) -> Self {
        self.listen = Some(address.into());
        self
    }

    /// Accepts scrapes only from this address or network (`"10.0.0.0/8"`,
    /// `"192.168.1.7"`); may be given several times. Without any, every
    /// peer that can reach the listen address is served.
    pub fn allow(mut self, address_or_network: impl Into<String>) -> Self {
        self.allowed.push(address_or_network.into());
        self
    }

    /// How long the `/metrics` listener waits on a client (defaults: 10 s,
    /// 90 s, 30 s): `header_read` from a request's first byte to the end of
    /// its head, `idle` on a connection with no request in progress, and
    /// `write` from a request's head to its response written, so a client
    /// that never reads holds its buffered exposition no longer than that.
    /// A connection past its limit is closed.
    pub fn listener_timeouts(
        mut self,
        header_read: Duration,
        idle: Duration,
        write: Duration,
    ) -> Self {
        self.listener_limits.header_read = header_read;
        self.listener_limits.idle = idle;
        self.listener_limits.write = write;
        self
    }

    /// The most connections the `/metrics` listener keeps open (default
    /// 64). A new one beyond it closes the connection idle for longest, or
    /// is closed itself when every connection has a request in progress.
    pub fn listener_max_connections(mut self, limit: usize) -> Self {
        self.listener_limits.max_connections = limit;
        self
    }

    /// Keeps a recorder the host already has: every describe, register and
    /// record goes to vigil's registry and, unchanged, to `recorder`.
    pub fn layer<R>(mut self, recorder: R) -> Self
    where
        R: metrics::Recorder + Send + Sync + 'static,
    {
        self.layer = Some(Arc::new(recorder));
        self
    }

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
    pub fn alerts(mut self, engine: vigil_alert::Engine) -> Self {
        self.alerts = Some(engine);
        self
    }

    /// Delivers notifications routed to `receiver` with `notifier`; give a
    /// receiver several by calling this again. Each has its own bounded
    /// queue, retries and timeout (see `vigil::alert::notify`).
    /// [`build`](Self::build) fails, naming them, if a receiver of the
    /// [`alerts`](Self::alerts)' routing has no notifier.
    pub fn notifier(
        mut self,
        receiver: impl Into<String>,
        notifier: impl vigil_alert::notify::Notifier + 'static,
    ) -> Self {
        self.notifiers.push((receiver.into(), Arc::new(notifier)));
        self
    }

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
    /// `/api/v2/alerts` is used as it is), `http://` only. This path
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
    pub fn alertmanager(mut self, url: impl Into<String>) -> Self {
        self.alertmanagers.push(url.into());
        self
    }

    /// How often every active alert is sent to the
    /// [`alertmanager`](Self::alertmanager)s at least (default 1 min, as
    /// Prometheus's `--rules.alert.resend-delay`); firing alerts are valid
    /// there for `4 x max(alert_interval, delay)`.
    pub fn alertmanager_resend_delay(mut self, delay: Duration) -> Self {
        self.alertmanager_resend_delay = delay;
        self
    }

    /// How often the alert rules are evaluated (default 15 s).
    /// [`build`](Self::build) refuses rules that cannot work at this
    /// interval (a rate window shorter than it, a baseline window shorter
    /// than `min_samples` intervals); see
    /// [`Engine::check_evaluation_interval`](vigil_alert::Engine::check_evaluation_interval).
    pub fn alert_interval(mut self, interval: Duration) -> Self {
        self.alert_interval = Some(interval);
        self
    }

    /// Evaluates alerts only when [`Monitor::evaluate_alerts`] is called
    /// (tests with synthetic times, hosts with their own scheduler);
    /// notifications are still delivered in the background.
    pub fn manual_alerts(mut self) -> Self {
        self.alert_interval = None;
        self
    }

    /// Builds the registry, starts the upkeep thread, the listener and the
    /// alert loop (if configured), which run until the last clone of the
    /// returned [`Monitor`] is dropped, but does not install the recorder
    /// globally: use
    /// [`Monitor::recorder`] with [`with_local_recorder`](crate::with_local_recorder) or
    /// `metrics::set_global_recorder`.
    pub fn build(self) -> Result<Monitor, Error> {
        let clock = self.clock.clone().unwrap_or_default();
        let default = self.histogram_default.clone().clock(clock.clone());
        let validate = |metrics: String, config: &Config| {
            config
                .clone()
                .build()
                .map(drop)
                .map_err(|source| Error::Histogram { metrics, source })
        };
        validate("every histogram".into(), &default)?;
        let mut histograms = Vec::with_capacity(self.histograms.len());
        for (matcher, config) in self.histograms {
            let config = config.clock(clock.clone());
            validate(format!("{matcher:?}"), &config)?;
            histograms.push((matcher, config));
        }
        if let Some(q) = self.quantiles.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            return Err(Error::Setting {
                setting: "quantiles",
                reason: format!("{q} is not in 0.0..=1.0"),
            });
        }
        for (matcher, bounds) in &self.buckets {
            if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Error::Setting {
                    setting: "buckets",
                    reason: format!(
                        "bounds for {matcher:?} must be finite and strictly increasing: {bounds:?}"
                    ),
                });
            }
        }
        if self.window.is_zero() {
            return Err(Error::Setting {
                setting: "window",
                reason: "must be longer than zero".into(),
            });
        }
        if self.max_series_per_metric == 0 {
            return Err(Error::Setting {
                setting: "max_series_per_metric",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_series == 0 {
            return Err(Error::Setting {
                setting: "max_series",
                reason: "must be at least 1".into(),
            });
        }
        for key in self.global_labels.keys() {
            check_global_label(key)?;
        }
        if self.alert_interval.is_some_and(|i| i.is_zero()) {
            return Err(Error::Setting {
                setting: "alert_interval",
                reason: "must be longer than zero".into(),
            });
        }
        if let (Some(engine), Some(interval)) = (&self.alerts, self.alert_interval) {
            engine
                .check_evaluation_interval(interval)
                .map_err(|e| Error::Setting {
                    setting: "alert_interval",
                    reason: e.to_string(),
                })?;
        }
        if self.alertmanager_resend_delay.is_zero() {
            return Err(Error::Setting {
                setting: "alertmanager_resend_delay",
                reason: "must be longer than zero".into(),
            });
        }
        if let Some(engine) = &self.alerts {
            check_receivers(engine, &self.notifiers, &self.alertmanagers)?;
        } else if let Some(url) = self.alertmanagers.first() {
            return Err(Error::Setting {
                setting: "alertmanager",
                reason: format!(
                    "there are no alert rules to send to {url}: add them with `alerts(engine)`"
                ),
            });
        }
        if self.upkeep_interval.is_some_and(|i| i.is_zero()) {
            return Err(Error::Setting {
                setting: "upkeep_interval",
                reason: "must be longer than zero".into(),
            });
        }
        let limits = self.listener_limits;
        for (setting, value) in [
            ("listener_timeouts", limits.header_read),
            ("listener_timeouts", limits.idle),
            ("listener_timeouts", limits.write),
        ] {
            if value.is_zero() {
                return Err(Error::Setting {
                    setting,
                    reason: "every timeout must be longer than zero".into(),
                });
            }
        }
        if limits.max_connections == 0 {
            return Err(Error::Setting {
                setting: "listener_max_connections",
                reason: "must be at least 1".into(),
            });
        }
        let listen = match &self.listen {
            None => None,
            Some(address) => Some(listen_address(address)?),
        };
        let mut allowed = Vec::with_capacity(self.allowed.len());
        for address in &self.allowed {
            let net = address
                .parse::<IpNet>()
                .or_else(|_| address.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|e| Error::Address {
                    setting: "allow",
                    address: address.clone(),
                    reason: e.to_string(),
                })?;
            allowed.push(net);
        }

        let settings = Settings {
            global_labels: self.global_labels,
            quantiles: self.quantiles,
            buckets: self.buckets,
            window: self.window,
            idle_timeout: self.idle_timeout,
            max_series_per_metric: self.max_series_per_metric,
            max_series: self.max_series,
            clock,
        };
        let shared = Arc::new(Shared::new(Storage::new(default, histograms), settings));
        let recorder = Recorder {
            shared,
            next: self.layer,
        };
        // Alerts first: they may still refuse an Alertmanager URL, and
        // nothing else has started yet then.
        let alerts = match self.alerts {
            Some(engine) => Some(AlertLoop::start(
                engine,
                self.notifiers,
                Alertmanagers {
                    urls: self.alertmanagers,
                    resend_delay: self.alertmanager_resend_delay,
                },
                recorder.clone(),
                self.alert_interval,
            )?),
            None => None,
        };
        let listener = match listen {
            Some(address) => Some(crate::http::spawn(
                address,
                allowed,
                limits,
                recorder.clone(),
            )?),
            None => None,
        };
        let upkeep = self
            .upkeep_interval
            .map(|interval| Upkeep::spawn(recorder.clone(), interval));
        Ok(Monitor {
            inner: Arc::new(Inner {
                recorder,
                alerts,
                listener,
                _upkeep: upkeep,
            }),
        })
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
    /// vigil::Monitor::builder().listen("127.0.0.1:9000").install()?;
    /// // /metrics is served until the process exits.
    /// # Ok::<(), vigil::Error>(())
    /// ```
    pub fn install(self) -> Result<Monitor, Error> {
        let monitor = self.build()?;
        metrics::set_global_recorder(monitor.recorder()).map_err(|_| Error::AlreadyInstalled)?;
        crate::monitor::keep_installed(&monitor);
        Ok(monitor)
    }
}

/// The Alertmanagers alerts are sent to, and how often at least.
#[derive(Debug)]
pub(crate) struct Alertmanagers {
    pub(crate) urls: Vec<String>,
    pub(crate) resend_delay: Duration,
}

/// Fails unless every receiver `engine` can notify has a notifier, or the
/// alerts go only to Alertmanager (no notifier at all).
fn check_receivers(
    engine: &vigil_alert::Engine,
    notifiers: &[(String, Arc<dyn vigil_alert::notify::Notifier>)],
    alertmanagers: &[String],
) -> Result<(), Error> {
    if notifiers.is_empty() && !alertmanagers.is_empty() {
        return Ok(());
    }
    let mut known: Vec<&str> = Vec::new();
    for (receiver, _) in notifiers {
        if !known.contains(&receiver.as_str()) {
            known.push(receiver);
        }
    }
    let unknown: Vec<&str> = engine
        .receivers()
        .into_iter()
        .filter(|receiver| !known.contains(receiver))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::UnknownReceivers {
        unknown: unknown.iter().map(|s| (*s).to_owned()).collect(),
        known: known.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// Fails unless `key` can be a global label: a label name in Prometheus's
/// grammar that the exposition does not reserve.
fn check_global_label(key: &str) -> Result<(), Error> {
    let refuse = |reason: String| {
        Err(Error::Setting {
            setting: "global_label",
            reason: format!("the key {key:?} {reason}"),
        })
    };
    if !crate::sanitize::valid_label_key(key) {
        return match crate::sanitize::label_key(key) {
            None => refuse("is empty".into()),
            Some(valid) => refuse(format!(
                "is not a label name ([a-zA-Z_][a-zA-Z0-9_]*); {valid:?} would be"
            )),
        };
    }
    if key.starts_with("__") {
        return refuse("is reserved: names starting with `__` are Prometheus's own".into());
    }
    if key == "le" || key == "quantile" {
        return refuse(format!(
            "is reserved: histograms and summaries add `{key}` to their samples"
        ));
    }
    if key == crate::recorder::OVERFLOW_LABEL {
        return refuse("is reserved: it marks a metric's overflow series".into());
    }
    Ok(())
}

/// The socket address of the `listen` setting: an IP address and port, or
/// a host name and port resolved to its first address.
fn listen_address(address: &str) -> Result<SocketAddr, Error> {
    if let Ok(parsed) = address.parse::<SocketAddr>() {
        return Ok(parsed);
    }
    let error = |reason: String| Error::Address {
        setting: "listen",
        address: address.to_owned(),
        reason,
    };
    let mut resolved = std::net::ToSocketAddrs::to_socket_addrs(address).map_err(|e| {
        error(format!(
            "not an address and port, nor a host name and port that resolves: {e}"
        ))
    })?;
    resolved
        .next()
        .ok_or_else(|| error("the host name resolves to no address".into()))
}
