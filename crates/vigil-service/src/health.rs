//! The health score: one number from 0 to 100, a status word, and the
//! part each component played in it.
//!
//! [`assess`] is a pure function of [`HealthInputs`] (what the registry and
//! the system collector read) and [`HealthTargets`] (the warning and
//! critical limits), so every score can be reproduced from its inputs. The
//! score is 100 minus the penalties of the components:
//!
//! | component    | input                          | weight (full penalty) |
//! |--------------|--------------------------------|-----------------------|
//! | `latency`    | worst windowed p95, seconds    | 25                    |
//! | `error_rate` | errors / calls                 | 25                    |
//! | `cpu`        | CPU usage ratio                | 10                    |
//! | `memory`     | memory usage ratio             | 10                    |
//! | `disk`       | fullest mount's usage ratio    | 10                    |
//! | `cache`      | cache hit ratio (lower is worse) | 10                  |
//! | `alerts`     | firing alerts by severity      | 25 / 15 / 5 / 1 each, at most 40 |
//!
//! A value on the good side of its warning limit costs nothing; between
//! the warning and the critical limit the penalty rises linearly from 0 to
//! the weight; at or beyond the critical limit it is the full weight. A
//! missing input costs nothing and is reported with `value: None`. The
//! full formula, the status bands and worked examples are in
//! `docs/health.md`.
//!
//! ```
//! use vigil_service::health::{HealthInputs, HealthStatus, HealthTargets, assess};
//!
//! let inputs = HealthInputs {
//!     cpu_ratio: Some(0.80), // halfway between 70 % and 90 %: 5 of 10 points
//!     error_rate: Some(0.01),
//!     calls: 1_000,
//!     ..HealthInputs::default()
//! };
//! let report = assess(&inputs, &HealthTargets::default());
//! assert_eq!(report.score, 95.0);
//! assert_eq!(report.status, HealthStatus::Healthy);
//! assert_eq!(report.component("cpu").unwrap().penalty, 5.0);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// A warning and a critical limit. For most inputs higher is worse
/// (`critical > warning`); when `critical < warning` lower is worse, as for
/// a cache hit ratio.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Where the penalty starts.
    pub warning: f64,
    /// Where the penalty reaches the component's full weight.
    pub critical: f64,
}

impl Limits {
    /// Limits from a warning and a critical value.
    #[must_use]
    pub const fn new(warning: f64, critical: f64) -> Self {
        Self { warning, critical }
    }

    /// How far `value` lies from the warning limit towards the critical
    /// one: 0 on the good side of the warning limit, 1 at or beyond the
    /// critical limit, linear in between.
    #[must_use]
    pub fn severity_fraction(&self, value: f64) -> f64 {
        let span = self.critical - self.warning;
        let fraction = if span == 0.0 {
            // One limit: a step where it is crossed.
            if value > self.warning { 1.0 } else { 0.0 }
        } else {
            (value - self.warning) / span
        };
        if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        }
    }

    /// Whether `value` is beyond the warning limit (on the bad side).
    #[must_use]
    pub fn exceeds_warning(&self, value: f64) -> bool {
        if self.critical < self.warning {
            value < self.warning
        } else {
            value > self.warning
        }
    }

    /// Whether `value` is at or beyond the critical limit.
    #[must_use]
    pub fn reaches_critical(&self, value: f64) -> bool {
        if self.critical < self.warning {
            value <= self.critical
        } else {
            value >= self.critical
        }
    }
}

/// The limits the health score and the recommendations compare with.
///
/// Ratios are from 0 to 1 and latencies in seconds. The defaults are common
/// service targets: CPU 70 / 90 %, memory 80 / 95 %, disk 85 / 95 %, error
/// rate 5 / 10 %, cache hit ratio 70 / 50 % (lower is worse), p95 1 s / 5 s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthTargets {
    /// CPU usage ratio of the host.
    pub cpu: Limits,
    /// Memory usage ratio of the host.
    pub memory: Limits,
    /// Usage ratio of the fullest disk.
    pub disk: Limits,
    /// Errors per call.
    pub error_rate: Limits,
    /// Cache hits per request (lower is worse).
    pub cache_hit_ratio: Limits,
    /// The worst function's windowed p95, in seconds.
    pub p95_seconds: Limits,
    /// Calls below which the error rate costs nothing (a handful of calls
    /// at start-up is no rate). Default 20.
    pub min_calls: u64,
    /// Cache requests below which the hit ratio costs nothing and no cache
    /// recommendation is made (a cold cache misses). Default 100.
    pub min_cache_requests: u64,
}

impl Default for HealthTargets {
    fn default() -> Self {
        Self {
            cpu: Limits::new(0.70, 0.90),
            memory: Limits::new(0.80, 0.95),
            disk: Limits::new(0.85, 0.95),
            error_rate: Limits::new(0.05, 0.10),
            cache_hit_ratio: Limits::new(0.70, 0.50),
            p95_seconds: Limits::new(1.0, 5.0),
            min_calls: 20,
            min_cache_requests: 100,
        }
    }
}

/// Firing alerts counted by severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    /// Alerts of severity low.
    pub low: u64,
    /// Alerts of severity medium (a config's `warning`).
    pub medium: u64,
    /// Alerts of severity high.
    pub high: u64,
    /// Alerts of severity critical.
    pub critical: u64,
}

impl SeverityCounts {
    /// All alerts together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.low
            .saturating_add(self.medium)
            .saturating_add(self.high)
            .saturating_add(self.critical)
    }
}

/// What the health score is computed from; `None` where nothing was
/// measured (no calls, no system collector, no cache).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthInputs {
    /// The worst windowed p95 over functions
    /// (`function_calls_duration_seconds`), in seconds.
    pub p95_seconds: Option<f64>,
    /// Errors per call over the window, all functions together.
    pub error_rate: Option<f64>,
    /// The calls behind `error_rate`.
    pub calls: u64,
    /// CPU usage ratio of the host.
    pub cpu_ratio: Option<f64>,
    /// Memory usage ratio of the host.
    pub memory_ratio: Option<f64>,
    /// Usage ratio of the fullest mount.
    pub disk_ratio: Option<f64>,
    /// Hits per request, all caches together.
    pub cache_hit_ratio: Option<f64>,
    /// The requests behind `cache_hit_ratio`.
    pub cache_requests: u64,
    /// Firing alerts by severity.
    pub firing: SeverityCounts,
}

/// The health status word.
///
/// Ordered from best to worst, so `max` of two statuses is the worse one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Score 80 or more and nothing critical.
    #[default]
    Healthy,
    /// Score from 50 to below 80, or a component at its critical limit, or
    /// a critical alert firing.
    Degraded,
    /// Score below 50.
    Unhealthy,
}

impl HealthStatus {
    /// The status in lower case, as serialized: `healthy`, `degraded`,
    /// `unhealthy`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// The band a score falls in: 80 and above healthy, 50 and above
    /// degraded, below 50 unhealthy.
    #[must_use]
    pub fn from_score(score: f64) -> Self {
        if score >= HEALTHY_FROM {
            Self::Healthy
        } else if score >= DEGRADED_FROM {
            Self::Degraded
        } else {
            Self::Unhealthy
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One component's part in the score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthComponent {
    /// `latency`, `error_rate`, `cpu`, `memory`, `disk`, `cache` or
    /// `alerts`.
    pub name: String,
    /// The input (for `alerts`, the number of firing alerts); `None` when
    /// it was not measured.
    pub value: Option<f64>,
    /// The limits compared with (`None` for `alerts`).
    pub target: Option<Limits>,
    /// Healthy inside the warning limit, degraded between the limits,
    /// unhealthy at or beyond the critical limit (for `alerts`: unhealthy
    /// with a critical alert, degraded with a high or medium one).
    pub status: HealthStatus,
    /// Points taken off 100, rounded to 0.1.
    pub penalty: f64,
}

/// The health score with its components.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// From 0 to 100: 100 minus the components' penalties, rounded to 0.1.
    pub score: f64,
    /// The score's band, at most `degraded` when a component is unhealthy.
    pub status: HealthStatus,
    /// Every component, in the order latency, error rate, CPU, memory,
    /// disk, cache, alerts.
    pub components: Vec<HealthComponent>,
}

impl HealthReport {
    /// The component named `name`.
    #[must_use]
    pub fn component(&self, name: &str) -> Option<&HealthComponent> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// Scores at or above this are healthy.
pub const HEALTHY_FROM: f64 = 80.0;
/// Scores at or above this (and below [`HEALTHY_FROM`]) are degraded.
pub const DEGRADED_FROM: f64 = 50.0;

/// The full penalty of the latency component.
pub const LATENCY_WEIGHT: f64 = 25.0;
/// The full penalty of the error rate component.
pub const ERROR_RATE_WEIGHT: f64 = 25.0;
/// The full penalty of each of the CPU, memory, disk and cache components.
pub const RESOURCE_WEIGHT: f64 = 10.0;
/// Points each firing alert costs, by severity: critical, high, medium,
/// low.
pub const ALERT_COSTS: [f64; 4] = [25.0, 15.0, 5.0, 1.0];
/// The most the firing alerts together cost.
pub const ALERTS_CAP: f64 = 40.0;

/// The health score of `inputs` against `targets`.
///
/// A pure function: the same inputs give the same report. A worse input
/// never raises the score. Non-finite ratios (`NaN`) count as missing.
#[must_use]
pub fn assess(inputs: &HealthInputs, targets: &HealthTargets) -> HealthReport {
    let enough_calls = inputs.calls >= targets.min_calls;
    let enough_requests = inputs.cache_requests >= targets.min_cache_requests;
    let components = vec![
        limited(
            "latency",
            inputs.p95_seconds,
            targets.p95_seconds,
            LATENCY_WEIGHT,
            true,
        ),
        limited(
            "error_rate",
            inputs.error_rate,
            targets.error_rate,
            ERROR_RATE_WEIGHT,
            enough_calls,
        ),
        limited("cpu", inputs.cpu_ratio, targets.cpu, RESOURCE_WEIGHT, true),
        limited(
            "memory",
            inputs.memory_ratio,
            targets.memory,
            RESOURCE_WEIGHT,
            true,
        ),
        limited(
            "disk",
            inputs.disk_ratio,
            targets.disk,
            RESOURCE_WEIGHT,
            true,
        ),
        limited(
            "cache",
            inputs.cache_hit_ratio,
            targets.cache_hit_ratio,
            RESOURCE_WEIGHT,
            enough_requests,
        ),
        alerts(&inputs.firing),
    ];
    let penalties: f64 = components.iter().map(|c| c.penalty).sum();
    let score = round_tenth((100.0 - penalties).clamp(0.0, 100.0));
    // A component at its critical limit (or a critical alert) makes the
    // service at least degraded, whatever the other components score.
    let critical = components
        .iter()
        .any(|c| c.status == HealthStatus::Unhealthy);
    let floor = if critical {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    let status = HealthStatus::from_score(score).max(floor);
    HealthReport {
        score,
        status,
        components,
    }
}

/// A component compared with limits. Below its sample minimum
/// (`counted == false`) it is reported but costs nothing.
fn limited(
    name: &str,
    value: Option<f64>,
    target: Limits,
    weight: f64,
    counted: bool,
) -> HealthComponent {
    let value = value.filter(|v| !v.is_nan());
    let (status, penalty) = match value {
        Some(v) if counted => {
            let status = if target.reaches_critical(v) {
                HealthStatus::Unhealthy
            } else if target.exceeds_warning(v) {
                HealthStatus::Degraded
            } else {
                HealthStatus::Healthy
            };
            (status, round_tenth(weight * target.severity_fraction(v)))
        }
        _ => (HealthStatus::Healthy, 0.0),
    };
    HealthComponent {
        name: name.to_owned(),
        value,
        target: Some(target),
        status,
        penalty,
    }
}

fn alerts(firing: &SeverityCounts) -> HealthComponent {
    let counts = [firing.critical, firing.high, firing.medium, firing.low];
    let cost: f64 = counts
        .iter()
        .zip(ALERT_COSTS)
        .map(|(&n, each)| n as f64 * each)
        .sum();
    let status = if firing.critical > 0 {
        HealthStatus::Unhealthy
    } else if firing.high > 0 || firing.medium > 0 {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    HealthComponent {
        name: "alerts".to_owned(),
        value: Some(firing.total() as f64),
        target: None,
        status,
        penalty: round_tenth(cost.min(ALERTS_CAP)),
    }
}

/// `x` rounded to one decimal place (monotonic, so rounding never turns a
/// worse input into a better score).
fn round_tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
