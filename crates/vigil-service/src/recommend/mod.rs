//! Recommendations: what to look at first, each backed by the numbers that
//! triggered it.
//!
//! [`recommend`] is a pure function of [`RecommendInputs`] (cache counts,
//! the CPU and memory windows, memory and disk histories, per-function
//! calls, errors and latencies), the [`HealthTargets`] and the time. Every
//! rule makes a [`Recommendation`] only with [`Evidence`]: the metric, its
//! labels, the value seen and the target it crossed. The rules (each
//! described with its thresholds in `docs/health.md`):
//!
//! | rule | category | priority |
//! |------|----------|----------|
//! | a cache's hit ratio below the warning limit over at least `min_cache_requests` requests | cache | medium; high at the critical limit |
//! | average CPU or memory above the warning limit over the window | system / memory | high; critical at the critical limit |
//! | memory growing steadily (least-squares slope, R² ≥ 0.8, ≥ 10 % growth) | memory | medium; high at ≥ 25 % growth |
//! | a function's p95 above the warning limit, naming a callee with more than half its time | latency | medium; high at the critical limit |
//! | one function with at least half the errors and its own rate above the warning limit | errors | high; critical at the critical limit |
//! | a disk above the warning limit or projected full within 24 h | disk | medium; high when full within 24 h; critical at the critical limit |
//!
//! The output is sorted by priority (critical first), then category, then
//! title, so the same inputs always give the same list.
//!
//! ```
//! use std::time::SystemTime;
//! use vigil_service::health::HealthTargets;
//! use vigil_service::recommend::{CacheUsage, Category, Priority, RecommendInputs, recommend};
//!
//! let inputs = RecommendInputs {
//!     caches: vec![CacheUsage { name: "markets".into(), hits: 40, misses: 60 }],
//!     ..RecommendInputs::default()
//! };
//! let found = recommend(&inputs, &HealthTargets::default(), SystemTime::now());
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].category, Category::Cache);
//! assert_eq!(found[0].priority, Priority::High); // 40 % is below the critical 50 %
//! assert_eq!(found[0].evidence[0].labels["cache"], "markets");
//! ```

mod rules;
mod trend;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::health::{HealthTargets, SeverityCounts};

pub use rules::{
    CONCENTRATED_SHARE, DOMINANT_SHARE, FULL_WITHIN_HOURS, HIGH_MEMORY_GROWTH, MIN_MEMORY_GROWTH,
    MIN_USAGE_SAMPLES,
};
pub use trend::{MIN_R_SQUARED, MIN_TREND_SAMPLES, MIN_TREND_SPAN};

/// What the recommendations are made from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecommendInputs {
    /// Hits and misses per cache.
    pub caches: Vec<CacheUsage>,
    /// CPU usage ratios over the window.
    pub cpu: Option<UsageWindow>,
    /// Memory usage ratios over the window.
    pub memory: Option<UsageWindow>,
    /// Memory used in bytes over time, oldest first (the leak check).
    pub memory_used: Vec<(SystemTime, f64)>,
    /// Usage ratio over time per mount.
    pub disks: Vec<DiskUsage>,
    /// Calls, errors and latencies per function.
    pub functions: Vec<FunctionUsage>,
}

/// One cache's requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheUsage {
    /// The name the cache was registered under.
    pub name: String,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests the cache could not answer.
    pub misses: u64,
}

/// A ratio (0 to 1) over a window of samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageWindow {
    /// The latest sample.
    pub current: f64,
    /// The mean of the samples.
    pub average: f64,
    /// The lowest sample.
    pub min: f64,
    /// The highest sample.
    pub max: f64,
    /// How many samples the window holds.
    pub samples: usize,
}

/// One mount's usage ratio over time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskUsage {
    /// The mount point (`/`, `/var`).
    pub mount: String,
    /// Usage ratio (0 to 1) over time, oldest first.
    pub history: Vec<(SystemTime, f64)>,
}

/// One function's calls over the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunctionUsage {
    /// The function's name, as in `function_calls_total{function}`.
    pub function: String,
    /// Its module, as in `function_calls_total{module}`.
    pub module: String,
    /// Calls over the window.
    pub calls: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// The windowed p95 duration, in seconds.
    pub p95_seconds: Option<f64>,
    /// The windowed mean duration, in seconds.
    pub mean_seconds: Option<f64>,
    /// The functions it called (from their `caller_function` labels).
    pub callees: Vec<CalleeUsage>,
}

/// A function called by another, as seen from the caller.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CalleeUsage {
    /// The callee's name.
    pub function: String,
    /// The callee's module.
    pub module: String,
    /// Calls this caller made to it.
    pub calls: u64,
    /// The callee's mean duration, in seconds.
    pub mean_seconds: Option<f64>,
}

/// A recommendation with the evidence for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// What it is about.
    pub category: Category,
    /// How soon to act.
    pub priority: Priority,
    /// A short headline ("High CPU Usage Detected").
    pub title: String,
    /// What was seen, with the numbers.
    pub description: String,
    /// What acting on it gains.
    pub impact: String,
    /// `low`, `medium` or `high`.
    pub effort: String,
    /// What to do.
    pub implementation: String,
    /// When it was made (RFC 3339 in JSON).
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: SystemTime,
    /// The measurements behind it; never empty.
    pub evidence: Vec<Evidence>,
}

/// One measurement behind a recommendation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The metric measured (`cache_requests_total`,
    /// `system_cpu_usage_ratio`, ...).
    pub metric: String,
    /// Its labels; a derived value says which in `stat` (`hit_ratio`,
    /// `average`, `time_share`, ...).
    pub labels: BTreeMap<String, String>,
    /// The value seen.
    pub value: f64,
    /// The limit it was compared with.
    pub target: f64,
}

/// How soon to act on a recommendation, from `low` to `critical`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// When convenient.
    #[default]
    Low,
    /// Soon.
    Medium,
    /// Before it becomes an incident.
    High,
    /// Now.
    Critical,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Self; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The priority in lower case, as serialized.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        ["low", "medium", "high", "critical"][self as usize]
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A priority that is none of `low`, `medium`, `high`, `critical`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsePriorityError {
    /// The text that was given.
    pub value: String,
}

impl fmt::Display for ParsePriorityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown priority {:?}: expected one of low, medium, high, critical",
            self.value
        )
    }
}

impl std::error::Error for ParsePriorityError {}

impl FromStr for Priority {
    type Err = ParsePriorityError;

    /// Reads `low`, `medium`, `high` or `critical` (in any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParsePriorityError {
                value: s.to_owned(),
            })
    }
}

/// What a recommendation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// A cache's hit ratio.
    Cache,
    /// CPU usage.
    System,
    /// A function's latency.
    Latency,
    /// A function's errors.
    Errors,
    /// Memory usage or growth.
    Memory,
    /// A disk filling up.
    Disk,
}

/// The recommendations for `inputs` against `targets`, made at `now`
/// (their `created_at`), critical first.
#[must_use]
pub fn recommend(
    inputs: &RecommendInputs,
    targets: &HealthTargets,
    now: SystemTime,
) -> Vec<Recommendation> {
    let mut found = Vec::new();
    rules::caches(&inputs.caches, targets, &mut found);
    rules::usage(
        inputs.cpu.as_ref(),
        inputs.memory.as_ref(),
        targets,
        &mut found,
    );
    rules::memory_growth(&inputs.memory_used, &mut found);
    rules::latency(&inputs.functions, targets, &mut found);
    rules::errors(&inputs.functions, targets, &mut found);
    rules::disks(&inputs.disks, targets, &mut found);
    let mut out: Vec<Recommendation> = found.into_iter().map(|draft| draft.made_at(now)).collect();
    out.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.category.cmp(&b.category))
            .then_with(|| a.title.cmp(&b.title))
            .then_with(|| a.description.cmp(&b.description))
    });
    out
}

/// How many recommendations there are of each priority.
#[must_use]
pub fn priority_breakdown(recommendations: &[Recommendation]) -> SeverityCounts {
    let mut counts = SeverityCounts::default();
    for r in recommendations {
        let slot = match r.priority {
            Priority::Low => &mut counts.low,
            Priority::Medium => &mut counts.medium,
            Priority::High => &mut counts.high,
            Priority::Critical => &mut counts.critical,
        };
        *slot += 1;
    }
    counts
}
