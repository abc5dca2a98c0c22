//! The service layer wired to the registry: the health score (also
//! published as the [`HEALTH_SCORE`](crate::service::HEALTH_SCORE) and
//! [`HEALTH_STATUS`](crate::service::HEALTH_STATUS) gauges),
//! recommendations, system metrics, registered caches, readiness checks
//! and the performance summaries behind the HTTP API, every number read
//! from the one registry (or the caches and the system history it
//! exports).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crate::builder::MonitorBuilder;
use crate::monitor::Monitor;
use crate::summary::MetricsSummary;

#[cfg(feature = "alerts")]
mod alerts;
#[cfg(feature = "cache")]
mod caches;
mod gather;
mod health_metrics;
#[cfg(feature = "system-metrics")]
mod host;
mod readiness;
mod types;

#[doc(inline)]
pub use vigil_service::health::{HealthReport, HealthTargets};
#[doc(inline)]
pub use vigil_service::recommend::Recommendation;
/// System and process metrics: the collector, its readings and history
/// (the `system` module of `vigil-service`).
#[cfg(feature = "system-metrics")]
#[doc(inline)]
pub use vigil_service::system;
#[cfg(feature = "tracing-layer")]
#[doc(inline)]
pub use vigil_service::trace::{SPAN_DURATION, SpanLayer};
#[doc(inline)]
pub use vigil_service::{health, recommend};

pub use health_metrics::{HEALTH_INTERVAL, HEALTH_SCORE, HEALTH_STATUS};
pub use types::{
    ActiveAlert, AlertEvent, ApiToken, CacheReport, CacheTotals, CheckResult, Readiness,
    SystemUsage, Usage,
};

/// How long a readiness check may run by default before it counts as
/// failed ([`MonitorBuilder::readiness_timeout`]).
pub const DEFAULT_READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// A readiness check, boxed.
type Check =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What the builder collects for the service layer.
pub(crate) struct Settings {
    #[cfg(feature = "cache")]
    caches: caches::Caches,
    checks: Vec<(String, Check)>,
    token: Option<ApiToken>,
    targets: HealthTargets,
    /// Whether [`MonitorBuilder::health_targets`] was called.
    targets_set: bool,
    readiness_timeout: Duration,
    #[cfg(feature = "system-metrics")]
    system_interval: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            #[cfg(feature = "cache")]
            caches: caches::Caches::new(),
            checks: Vec::new(),
            token: None,
            targets: HealthTargets::default(),
            targets_set: false,
            readiness_timeout: DEFAULT_READINESS_TIMEOUT,
            #[cfg(feature = "system-metrics")]
            system_interval: None,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checks: Vec<&str> = self.checks.iter().map(|(name, _)| name.as_str()).collect();
        let mut s = f.debug_struct("Service");
        #[cfg(feature = "cache")]
        s.field("caches", &self.caches.keys().collect::<Vec<_>>());
        s.field("checks", &checks)
            .field("token", &self.token)
            .field("targets", &self.targets)
            .field("readiness_timeout", &self.readiness_timeout)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Refuses what cannot work: an API token no request can present
    /// (every request would be refused with no hint why) and a cache
    /// registered under a name other than its own (the API's figures would
    /// not be the `/metrics` ones).
    pub(crate) fn check(&self) -> Result<(), crate::Error> {
        if let Some(reason) = self.token.as_ref().and_then(ApiToken::unusable) {
            return Err(crate::Error::Setting {
                setting: "api_token",
                reason: reason.to_owned(),
            });
        }
        #[cfg(feature = "cache")]
        caches::check_names(&self.caches)?;
        Ok(())
    }

    /// Whether any service-layer setting was given: system metrics, a
    /// cache, a readiness check, an API token or health targets.
    fn in_use(&self) -> bool {
        #[allow(unused_mut)]
        let mut in_use = !self.checks.is_empty() || self.token.is_some() || self.targets_set;
        #[cfg(feature = "cache")]
        {
            in_use |= !self.caches.is_empty();
        }
        #[cfg(feature = "system-metrics")]
        {
            in_use |= self.system_interval.is_some();
        }
        in_use
    }

    /// How often the health gauges are recomputed: [`HEALTH_INTERVAL`], or
    /// the system metrics interval when that is shorter.
    fn health_interval(&self) -> Duration {
        #[cfg(feature = "system-metrics")]
        if let Some(interval) = self.system_interval {
            return interval.min(HEALTH_INTERVAL);
        }
        HEALTH_INTERVAL
    }
}

/// The service layer of a running monitor.
#[derive(Debug)]
pub(crate) struct Service {
    settings: Settings,
    #[cfg(feature = "system-metrics")]
    system: Option<host::System>,
    /// The latest readiness result, reused for a second.
    readiness: readiness::Latest,
    /// The monitor's clock, which times that second.
    clock: quanta::Clock,
    /// The thread keeping the health gauges current, once started.
    health_refresh: OnceLock<health_metrics::Refresh>,
}

impl Service {
    /// Starts what the settings ask for: the system metrics thread,
    /// recording into `recorder`, with its first reading taken.
    pub(crate) fn start(settings: Settings, recorder: &crate::Recorder) -> Self {
        Self {
            #[cfg(feature = "system-metrics")]
            system: settings
                .system_interval
                .map(|interval| host::System::start(interval, recorder)),
            settings,
            readiness: readiness::Latest::default(),
            clock: recorder.shared.settings.clock.clone(),
            health_refresh: OnceLock::new(),
        }
    }
}

/// Once `monitor` is built: when the service layer is in use (a
/// service-layer setting on the builder, or alert rules, whose firing
/// alerts weigh on the score), publishes its health as the
/// [`HEALTH_SCORE`] and [`HEALTH_STATUS`] gauges and keeps them current on
/// the `vigil-health` thread. (Without it they appear once the health is
/// first computed, so a bare registry holds only what the host records.)
pub(crate) fn start_health_metrics(monitor: &Monitor) {
    let settings = &monitor.service().settings;
    #[allow(unused_mut)]
    let mut in_use = settings.in_use();
    #[cfg(feature = "alerts")]
    {
        in_use |= monitor.inner.alerts.is_some();
    }
    if in_use {
        let interval = settings.health_interval();
        monitor
            .service()
            .health_refresh
            .get_or_init(|| health_metrics::Refresh::start(monitor, interval));
    }
}

impl MonitorBuilder {
    /// Collects CPU, memory, disk, network, load and process metrics
    /// (`system_*`, `process_*`) into the monitor's registry every
    /// `interval`, on a background thread named `vigil-system`, and keeps
    /// a history of the readings for [`Monitor::system_usage`],
    /// [`Monitor::health`] and [`Monitor::recommendations`]. The first
    /// reading is taken when the monitor is built.
    #[cfg(feature = "system-metrics")]
    pub fn system_metrics(mut self, interval: Duration) -> Self {
        self.service.system_interval = Some(interval);
        self
    }

    /// The bearer token the performance API (`Monitor::router`, feature
    /// `axum`) requires on `/api/v1/performance/*`. Never printed.
    /// [`build`](Self::build) refuses a token that no
    /// `Authorization: Bearer` header can carry: empty or only whitespace,
    /// with whitespace around it, or with characters other than visible
    /// ASCII, space and tab.
    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.service.token = Some(ApiToken::new(token));
        self
    }

    /// Registers a cache (any `TaggedCache`, sync or future) under `name`
    /// for [`Monitor::cache_report`], [`Monitor::clear_caches`], the
    /// health score and the recommendations. The monitor keeps a clone of
    /// the handle. A second cache under the same name replaces the first.
    ///
    /// `name` must be the name the cache was built with
    /// (`CacheBuilder::name`), under which `/metrics` shows its `cache_*`
    /// series, so that the API's figures are the `/metrics` ones:
    /// [`build`](Self::build) refuses a cache built without a name or
    /// with another one, naming both.
    #[cfg(feature = "cache")]
    pub fn cache<C: vigil_cache::CacheAdmin + ?Sized>(
        mut self,
        name: impl Into<String>,
        cache: &C,
    ) -> Self {
        self.service.caches.insert(name.into(), cache.clone_admin());
        self
    }

    /// Adds a readiness check: [`Monitor::readiness`] (and
    /// `GET /health/ready`) runs every check, each bounded by the
    /// [`readiness_timeout`](Self::readiness_timeout), and is ready when
    /// all return `Ok`.
    pub fn readiness_check<F, Fut>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: Check = Arc::new(move || Box::pin(check()));
        self.service.checks.push((name.into(), check));
        self
    }

    /// How long each readiness check may run before it counts as failed
    /// (default [`DEFAULT_READINESS_TIMEOUT`], 5 s).
    pub fn readiness_timeout(mut self, timeout: Duration) -> Self {
        self.service.readiness_timeout = timeout;
        self
    }

    /// The targets the health score and the recommendations compare with
    /// (default [`HealthTargets::default`]).
    pub fn health_targets(mut self, targets: HealthTargets) -> Self {
        self.service.targets = targets;
        self.service.targets_set = true;
        self
    }
}

impl Monitor {
    fn service(&self) -> &Service {
        &self.inner.service
    }

    /// The health score: the worst function's windowed p95
    /// (`function_calls_duration_seconds`), the error rate over the window
    /// (`function_calls_total` by `result`), CPU and memory (`system_*`
    /// gauges), the fullest disk, the registered caches' hit ratio and the
    /// firing alerts by severity, against the
    /// [`health_targets`](MonitorBuilder::health_targets). Every input is
    /// read from the registry (or the caches, which export it); what was
    /// not measured costs nothing.
    ///
    /// The fullest disk is that of the latest system reading (the disks
    /// mounted now) with [`system_metrics`](MonitorBuilder::system_metrics),
    /// else the highest `system_disk_usage_ratio` series recorded.
    ///
    /// Each computation also sets the [`HEALTH_SCORE`] and
    /// [`HEALTH_STATUS`] gauges in the registry; while the service layer
    /// is in use (any service-layer setting on the builder, or alert
    /// rules) a `vigil-health` thread recomputes them every
    /// [`HEALTH_INTERVAL`] (or the shorter system metrics interval), so
    /// `/metrics` always shows a current score.
    ///
    /// ```
    /// use vigil::service::{HEALTH_SCORE, health::HealthTargets};
    ///
    /// let monitor = vigil::Monitor::builder()
    ///     .health_targets(HealthTargets::default())
    ///     .build()?;
    /// let health = monitor.health();
    /// assert_eq!(health.score, 100.0, "nothing measured, nothing wrong");
    /// let text = monitor.render();
    /// assert!(text.contains(&format!("\n{HEALTH_SCORE} 100\n")), "{text}");
    /// assert!(text.contains(r#"vigil_health_status{status="healthy"} 1"#));
    /// # Ok::<(), vigil::Error>(())
    /// ```
    pub fn health(&self) -> HealthReport {
        self.health_from(&self.summary())
    }

    /// [`health`](Self::health) with the registry read once already, as
    /// `summary`.
    pub(crate) fn health_from(&self, summary: &MetricsSummary) -> HealthReport {
        let functions = gather::Functions::read(summary);
        let (error_rate, calls) = functions.error_rate();
        #[allow(unused_mut)]
        let mut inputs = health::HealthInputs {
            p95_seconds: functions.worst_p95(),
            error_rate,
            calls,
            cpu_ratio: gather::gauge(summary, "system_cpu_usage_ratio"),
            memory_ratio: gather::gauge(summary, "system_memory_usage_ratio"),
            disk_ratio: gather::gauge(summary, "system_disk_usage_ratio"),
            ..health::HealthInputs::default()
        };
        #[cfg(feature = "system-metrics")]
        if let Some(system) = &self.service().system {
            inputs.disk_ratio = system.fullest_disk();
        }
        #[cfg(feature = "cache")]
        {
            let (ratio, requests) = caches::hit_ratio(&self.service().settings.caches);
            inputs.cache_hit_ratio = ratio;
            inputs.cache_requests = requests;
        }
        #[cfg(feature = "alerts")]
        {
            let now = SystemTime::now();
            inputs.firing = self
                .with_alerts(|engine| alerts::firing(engine, now))
                .unwrap_or_default();
        }
        let report = health::assess(&inputs, &self.service().settings.targets);
        health_metrics::publish(&self.inner.recorder, &report);
        report
    }

    /// Recommendations backed by evidence, most urgent first: from the
    /// timed functions in the registry (windowed calls, errors, p95, mean
    /// and callees by their `caller_function` labels), the system history
    /// and the registered caches, against the
    /// [`health_targets`](MonitorBuilder::health_targets).
    pub fn recommendations(&self) -> Vec<Recommendation> {
        #[allow(unused_mut)]
        let mut inputs = recommend::RecommendInputs {
            functions: gather::Functions::read(&self.summary()).usage(),
            ..recommend::RecommendInputs::default()
        };
        #[cfg(feature = "cache")]
        {
            inputs.caches = caches::usage(&self.service().settings.caches);
        }
        #[cfg(feature = "system-metrics")]
        if let Some(system) = &self.service().system {
            system.fill(&mut inputs);
        }
        recommend::recommend(&inputs, &self.service().settings.targets, SystemTime::now())
    }

    /// CPU and memory use over the readings kept by
    /// `MonitorBuilder::system_metrics` (feature `system-metrics`), in
    /// percent; `None` without it.
    pub fn system_usage(&self) -> Option<SystemUsage> {
        #[cfg(feature = "system-metrics")]
        if let Some(system) = &self.service().system {
            return system.usage();
        }
        None
    }

    /// The registered caches' figures, together and by name (empty without
    /// the `cache` feature or without caches).
    pub fn cache_report(&self) -> CacheReport {
        #[cfg(feature = "cache")]
        return caches::report(&self.service().settings.caches);
        #[cfg(not(feature = "cache"))]
        CacheReport::default()
    }

    /// Clears registered caches and returns the exact number of entries
    /// removed: of the cache named `cache`, or of every registered cache
    /// when `None`.
    ///
    /// `tags` chooses the entries: `Some(tags)` clears those carrying any
    /// of `tags` (so `Some(&[])` clears nothing and returns 0), `None`
    /// clears every entry. Only `None` means "all": an empty list never
    /// does.
    ///
    /// # Errors
    /// [`Error::UnknownCache`](crate::Error::UnknownCache) when no cache is
    /// registered as `cache`.
    pub async fn clear_caches(
        &self,
        cache: Option<&str>,
        tags: Option<&[String]>,
    ) -> Result<u64, crate::Error> {
        #[cfg(feature = "cache")]
        return caches::clear(&self.service().settings.caches, cache, tags).await;
        #[cfg(not(feature = "cache"))]
        match cache {
            Some(name) => Err(crate::Error::UnknownCache {
                name: name.to_owned(),
                known: Vec::new(),
            }),
            None => {
                let _ = tags;
                Ok(0)
            }
        }
    }

    /// Runs every readiness check at once, each on its own tokio task and
    /// bounded by the
    /// [`readiness_timeout`](MonitorBuilder::readiness_timeout); a check
    /// that times out or panics fails. The tasks run on the current tokio
    /// runtime, or, when called from another executor, on a short-lived
    /// thread with a runtime of its own.
    ///
    /// One run at a time, and its result is reused for 1 second (on the
    /// monitor's [`clock`](MonitorBuilder::clock)): calls made while the
    /// checks run wait for that run, and calls within a second of its end
    /// return its result, so frequent probes (`GET /health/ready`) cost
    /// the checked services at most one round of checks per second.
    pub async fn readiness(&self) -> Readiness {
        let service = self.service();
        let settings = &service.settings;
        let run = readiness::run(&settings.checks, settings.readiness_timeout);
        service.readiness.get(&service.clock, run).await
    }

    /// The firing alerts, most severe first: the rule's metric, the limit
    /// of the alert's severity, the latest value and the `summary` (or
    /// `description`) annotation. Empty without
    /// [`alerts`](MonitorBuilder::alerts).
    #[cfg(feature = "alerts")]
    pub fn active_alerts(&self) -> Vec<ActiveAlert> {
        let now = SystemTime::now();
        self.with_alerts(|engine| alerts::active(engine, now))
            .unwrap_or_default()
    }

    /// Every change of state the alert engine's history holds, oldest
    /// first. Empty without [`alerts`](MonitorBuilder::alerts).
    #[cfg(feature = "alerts")]
    pub fn alert_history(&self) -> Vec<AlertEvent> {
        self.with_alerts(|engine| alerts::history(engine))
            .unwrap_or_default()
    }

    /// A `tracing_subscriber::Layer` recording the duration of every span
    /// into this monitor's registry as `tracing_span_duration_seconds{span,
    /// target}`, timed by the monitor's clock.
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let monitor = vigil::Monitor::builder().build()?;
    /// let subscriber = tracing_subscriber::registry().with(monitor.span_layer());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     tracing::info_span!("load_user").in_scope(|| { /* ... */ });
    /// });
    /// assert!(monitor.render().contains("tracing_span_duration_seconds_count{span=\"load_user\""));
    /// # Ok::<(), vigil::Error>(())
    /// ```
    #[cfg(feature = "tracing-layer")]
    pub fn span_layer(&self) -> SpanLayer {
        SpanLayer::new()
            .with_recorder(Arc::new(self.recorder()))
            .with_clock(self.inner.recorder.shared.settings.clock.clone())
    }

    /// The bearer token of the performance API, if one was set.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn api_token(&self) -> Option<&ApiToken> {
        self.service().settings.token.as_ref()
    }
}

#[cfg(test)]
mod tests;
