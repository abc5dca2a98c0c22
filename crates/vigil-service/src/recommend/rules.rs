//! The recommendation rules, one function each. A rule pushes a [`Draft`]
//! only with the evidence that triggered it; non-finite inputs count as
//! missing.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::trend::{MIN_R_SQUARED, Trend};
use super::{
    CacheUsage, Category, DiskUsage, Evidence, FunctionUsage, Priority, Recommendation, UsageWindow,
};
use crate::health::{HealthTargets, Limits};

/// The fewest samples a CPU or memory window needs (one reading is a
/// spike, not a trend).
pub const MIN_USAGE_SAMPLES: usize = 3;
/// The growth of memory used over the fitted span (as a share of where
/// the line starts) from which steady growth is reported.
pub const MIN_MEMORY_GROWTH: f64 = 0.10;
/// The growth from which steady memory growth is a high priority.
pub const HIGH_MEMORY_GROWTH: f64 = 0.25;
/// A callee whose share of its caller's time is above this dominates it.
pub const DOMINANT_SHARE: f64 = 0.5;
/// A function with at least this share of all errors concentrates them.
pub const CONCENTRATED_SHARE: f64 = 0.5;
/// A disk projected full within this many hours is filling up.
pub const FULL_WITHIN_HOURS: f64 = 24.0;

/// A recommendation before it is stamped with its time.
pub(super) struct Draft {
    category: Category,
    priority: Priority,
    title: String,
    description: String,
    impact: String,
    effort: &'static str,
    implementation: String,
    evidence: Vec<Evidence>,
}

impl Draft {
    pub(super) fn made_at(self, now: SystemTime) -> Recommendation {
        Recommendation {
            category: self.category,
            priority: self.priority,
            title: self.title,
            description: self.description,
            impact: self.impact,
            effort: self.effort.to_owned(),
            implementation: self.implementation,
            created_at: now,
            evidence: self.evidence,
        }
    }
}

fn evidence(metric: &str, labels: &[(&str, &str)], value: f64, target: f64) -> Evidence {
    Evidence {
        metric: metric.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        value,
        target,
    }
}

/// The limit `value` crossed (critical or warning) and the priority for
/// it: `at_warning` past the warning limit, `at_critical` at the critical
/// one; `None` inside the warning limit.
fn crossed(
    limits: Limits,
    value: f64,
    at_warning: Priority,
    at_critical: Priority,
) -> Option<(Priority, f64)> {
    if limits.reaches_critical(value) {
        Some((at_critical, limits.critical))
    } else if limits.exceeds_warning(value) {
        Some((at_warning, limits.warning))
    } else {
        None
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

fn qualified(module: &str, function: &str) -> String {
    if module.is_empty() {
        function.to_owned()
    } else {
        format!("{module}::{function}")
    }
}

/// Finite values only.
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// A cache's hit ratio below the warning limit over enough requests.
pub(super) fn caches(caches: &[CacheUsage], targets: &HealthTargets, out: &mut Vec<Draft>) {
    for cache in caches {
        let requests = cache.hits.saturating_add(cache.misses);
        if requests == 0 || requests < targets.min_cache_requests {
            continue;
        }
        let ratio = cache.hits as f64 / requests as f64;
        let limits = targets.cache_hit_ratio;
        let Some((priority, target)) = crossed(limits, ratio, Priority::Medium, Priority::High)
        else {
            continue;
        };
        // Misses that reaching the warning limit would save.
        let saved = 1.0 - (1.0 - limits.warning) / (1.0 - ratio);
        let name = &cache.name;
        out.push(Draft {
            category: Category::Cache,
            priority,
            title: format!("Low Cache Hit Ratio in Cache \"{name}\""),
            description: format!(
                "Cache \"{name}\" answered {} of {requests} requests ({} hits, {} misses); \
                 the target is at least {}.",
                percent(ratio),
                cache.hits,
                cache.misses,
                percent(limits.warning),
            ),
            impact: format!(
                "Every miss loads from the backing store: a hit ratio of {} would cut those \
                 loads by {}.",
                percent(limits.warning),
                percent(saved),
            ),
            effort: "medium",
            implementation: "Check that keys hold no per-request parts (timestamps, request \
                 ids) and are normalised; lengthen the TTL where the data allows; warm the \
                 most requested keys at start-up; make sure the capacity holds the working set \
                 (cache_evictions_total{cause=\"size\"})."
                .to_owned(),
            evidence: vec![
                evidence(
                    "cache_requests_total",
                    &[("cache", name), ("stat", "hit_ratio")],
                    ratio,
                    target,
                ),
                evidence(
                    "cache_requests_total",
                    &[("cache", name), ("stat", "requests")],
                    requests as f64,
                    targets.min_cache_requests as f64,
                ),
            ],
        });
    }
}

/// Average CPU or memory usage above the warning limit over the window.
pub(super) fn usage(
    cpu: Option<&UsageWindow>,
    memory: Option<&UsageWindow>,
    targets: &HealthTargets,
    out: &mut Vec<Draft>,
) {
    let kinds = [
        (
            cpu,
            targets.cpu,
            Category::System,
            "CPU",
            "system_cpu_usage_ratio",
        ),
        (
            memory,
            targets.memory,
            Category::Memory,
            "Memory",
            "system_memory_usage_ratio",
        ),
    ];
    for (window, limits, category, what, metric) in kinds {
        let Some(window) = window.filter(|w| w.samples >= MIN_USAGE_SAMPLES) else {
            continue;
        };
        let Some(average) = finite(Some(window.average)) else {
            continue;
        };
        let Some((priority, target)) = crossed(limits, average, Priority::High, Priority::Critical)
        else {
            continue;
        };
        let (impact, implementation) = if category == Category::System {
            (
                "Requests queue for the CPU: latency rises and the host has no headroom for \
                 peaks.",
                "Profile the functions that take the most time (function_calls_duration_seconds), \
                 cache repeated work, move heavy work off the request path, or add workers or \
                 instances (scale out from 70 % CPU).",
            )
        } else {
            (
                "The host swaps or the process is killed for lack of memory.",
                "Lower cache capacities or entry sizes, paginate large results, check for steady \
                 growth (a leak), or give the service more memory (scale out from 80 %).",
            )
        };
        out.push(Draft {
            category,
            priority,
            title: format!("High {what} Usage Detected"),
            description: format!(
                "Average {what} usage was {} over the last {} samples (min {}, max {}, current \
                 {}); the warning limit is {} and the critical limit {}.",
                percent(average),
                window.samples,
                percent(window.min),
                percent(window.max),
                percent(window.current),
                percent(limits.warning),
                percent(limits.critical),
            ),
            impact: impact.to_owned(),
            effort: "medium",
            implementation: implementation.to_owned(),
            evidence: vec![evidence(metric, &[("stat", "average")], average, target)],
        });
    }
}

/// Memory used growing steadily: a least-squares line with a good fit and
/// a growth of at least [`MIN_MEMORY_GROWTH`] over its span.
pub(super) fn memory_growth(memory_used: &[(SystemTime, f64)], out: &mut Vec<Draft>) {
    let Some(trend) = Trend::fit(memory_used) else {
        return;
    };
    if trend.slope <= 0.0 || trend.start <= 0.0 || trend.r_squared < MIN_R_SQUARED {
        return;
    }
    let growth = (trend.end - trend.start) / trend.start;
    if growth < MIN_MEMORY_GROWTH {
        return;
    }
    let priority = if growth >= HIGH_MEMORY_GROWTH {
        Priority::High
    } else {
        Priority::Medium
    };
    let minutes = trend.span.as_secs() / 60;
    out.push(Draft {
        category: Category::Memory,
        priority,
        title: "Steady Memory Growth (Possible Leak)".to_owned(),
        description: format!(
            "Memory used grew steadily from {} to {} (+{}) over the last {minutes} minutes \
             (R² = {:.2}), about {} per hour.",
            mib(trend.start),
            mib(trend.end),
            percent(growth),
            trend.r_squared,
            mib(trend.slope * 3600.0),
        ),
        impact: "If the growth goes on, the process runs out of memory and is killed or the \
                 host starts swapping."
            .to_owned(),
        effort: "high",
        implementation: "Compare heap profiles taken some minutes apart (heaptrack, jemalloc's \
             profiler); look for caches without a capacity or TTL, maps and queues that only \
             grow, and tasks that are spawned but never finish."
            .to_owned(),
        evidence: vec![
            evidence(
                "system_memory_used_bytes",
                &[("stat", "growth_ratio")],
                growth,
                MIN_MEMORY_GROWTH,
            ),
            evidence(
                "system_memory_used_bytes",
                &[("stat", "r_squared")],
                trend.r_squared,
                MIN_R_SQUARED,
            ),
        ],
    });
}

/// The callee taking the largest share of `caller`'s time, with that
/// share, if it takes more than [`DOMINANT_SHARE`].
fn dominant_callee(caller: &FunctionUsage) -> Option<(&super::CalleeUsage, f64)> {
    let caller_mean = finite(caller.mean_seconds).filter(|m| *m > 0.0)?;
    let caller_time = caller.calls as f64 * caller_mean;
    if caller_time <= 0.0 {
        return None;
    }
    caller
        .callees
        .iter()
        .filter_map(|callee| {
            let mean = finite(callee.mean_seconds)?;
            Some((callee, callee.calls as f64 * mean / caller_time))
        })
        .filter(|(_, share)| *share > DOMINANT_SHARE)
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// A function's p95 above the warning limit, naming a dominant callee.
pub(super) fn latency(functions: &[FunctionUsage], targets: &HealthTargets, out: &mut Vec<Draft>) {
    let limits = targets.p95_seconds;
    for f in functions {
        if f.calls == 0 || f.calls < targets.min_calls {
            continue;
        }
        let Some(p95) = finite(f.p95_seconds) else {
            continue;
        };
        let Some((priority, target)) = crossed(limits, p95, Priority::Medium, Priority::High)
        else {
            continue;
        };
        let name = qualified(&f.module, &f.function);
        let mut description = format!(
            "{name} has a p95 of {} over {} calls (warning limit {}, critical {}).",
            seconds(p95),
            f.calls,
            seconds(limits.warning),
            seconds(limits.critical),
        );
        let mut evidence_list = vec![evidence(
            "function_calls_duration_seconds",
            &[
                ("function", &f.function),
                ("module", &f.module),
                ("quantile", "0.95"),
            ],
            p95,
            target,
        )];
        let implementation = match dominant_callee(f) {
            Some((callee, share)) => {
                let callee_name = qualified(&callee.module, &callee.function);
                description.push_str(&format!(
                    " {} of its time is spent in {callee_name} ({} calls).",
                    percent(share),
                    callee.calls,
                ));
                evidence_list.push(evidence(
                    "function_calls_duration_seconds",
                    &[
                        ("function", &callee.function),
                        ("module", &callee.module),
                        ("caller_function", &f.function),
                        ("caller_module", &f.module),
                        ("stat", "time_share"),
                    ],
                    share,
                    DOMINANT_SHARE,
                ));
                format!(
                    "Start with {callee_name}, which takes most of {name}'s time: cache its \
                     results, batch or parallelise its calls, and for a database query check \
                     its indexes and look for one query per item (N+1)."
                )
            }
            None => format!(
                "Profile {name}: cache results that repeat, add indexes to slow queries, run \
                 independent calls concurrently, and set timeouts on external calls."
            ),
        };
        out.push(Draft {
            category: Category::Latency,
            priority,
            title: format!("Slow p95 in {name}"),
            description,
            impact: format!(
                "One call in twenty to {name} takes {} or more; users feel it in every request \
                 that makes the call.",
                seconds(p95)
            ),
            effort: "medium",
            implementation,
            evidence: evidence_list,
        });
    }
}

/// One function holding at least [`CONCENTRATED_SHARE`] of the errors with
/// its own error rate above the warning limit.
pub(super) fn errors(functions: &[FunctionUsage], targets: &HealthTargets, out: &mut Vec<Draft>) {
    let total: u64 = functions
        .iter()
        .fold(0u64, |sum, f| sum.saturating_add(f.errors));
    if total == 0 {
        return;
    }
    // Most errors first; the name breaks ties so the choice is stable.
    let Some(f) = functions.iter().max_by(|a, b| {
        a.errors
            .cmp(&b.errors)
            .then_with(|| b.module.cmp(&a.module))
            .then_with(|| b.function.cmp(&a.function))
    }) else {
        return;
    };
    if f.calls == 0 || f.calls < targets.min_calls {
        return;
    }
    let share = f.errors as f64 / total as f64;
    let rate = (f.errors as f64 / f.calls as f64).min(1.0);
    if share < CONCENTRATED_SHARE {
        return;
    }
    let Some((priority, target)) =
        crossed(targets.error_rate, rate, Priority::High, Priority::Critical)
    else {
        return;
    };
    let name = qualified(&f.module, &f.function);
    let labels = |stat| {
        [
            ("function", f.function.as_str()),
            ("module", f.module.as_str()),
            ("result", "error"),
            ("stat", stat),
        ]
    };
    out.push(Draft {
        category: Category::Errors,
        priority,
        title: format!("Errors Concentrated in {name}"),
        description: format!(
            "{name} failed {} of its {} calls ({}) and accounts for {} of all {total} errors; \
             the warning limit is {}.",
            f.errors,
            f.calls,
            percent(rate),
            percent(share),
            percent(targets.error_rate.warning),
        ),
        impact: format!(
            "Fixing {name} removes {} of the service's errors.",
            percent(share)
        ),
        effort: "medium",
        implementation: format!(
            "Read the errors {name} returns (logs, error types): a failing dependency wants a \
             timeout, retries with backoff or a circuit breaker; bad input wants validation \
             before the call."
        ),
        evidence: vec![
            evidence("function_calls_total", &labels("error_ratio"), rate, target),
            evidence(
                "function_calls_total",
                &labels("error_share"),
                share,
                CONCENTRATED_SHARE,
            ),
        ],
    });
}

/// A disk above the warning limit or projected full within
/// [`FULL_WITHIN_HOURS`].
pub(super) fn disks(disks: &[DiskUsage], targets: &HealthTargets, out: &mut Vec<Draft>) {
    let limits = targets.disk;
    for disk in disks {
        let Some(&(_, current)) = disk.history.iter().rev().find(|(_, v)| v.is_finite()) else {
            continue;
        };
        let hours_to_full = Trend::fit(&disk.history)
            .filter(|t| t.slope > 0.0 && t.r_squared >= MIN_R_SQUARED)
            .map(|t| {
                (
                    (1.0 - current).max(0.0) / t.slope / 3600.0,
                    t.slope * 3600.0,
                )
            });
        let full_soon = hours_to_full.filter(|(hours, _)| *hours <= FULL_WITHIN_HOURS);
        let by_level = crossed(limits, current, Priority::Medium, Priority::Critical);
        let priority = match (by_level, full_soon) {
            (Some((Priority::Critical, _)), _) => Priority::Critical,
            (_, Some(_)) => Priority::High,
            (Some((p, _)), None) => p,
            (None, None) => continue,
        };
        let target = by_level.map_or(limits.warning, |(_, t)| t);
        let mount = &disk.mount;
        let mut description = format!(
            "{mount} is {} full (warning limit {}, critical {}).",
            percent(current),
            percent(limits.warning),
            percent(limits.critical),
        );
        let mut evidence_list = vec![evidence(
            "system_disk_usage_ratio",
            &[("mount", mount)],
            current,
            target,
        )];
        if let Some((hours, per_hour)) = full_soon {
            description.push_str(&format!(
                " It grows {} per hour and will be full in about {hours:.1} hours.",
                percent(per_hour)
            ));
            evidence_list.push(evidence(
                "system_disk_usage_ratio",
                &[("mount", mount), ("stat", "hours_to_full")],
                hours,
                FULL_WITHIN_HOURS,
            ));
        }
        out.push(Draft {
            category: Category::Disk,
            priority,
            title: format!("Disk {mount} Filling Up"),
            description,
            impact: "A full disk stops writes: logs, databases, uploads and temporary files fail."
                .to_owned(),
            effort: "low",
            implementation: "Find what grows (du -x), rotate and compress logs, delete old \
                 artifacts and temporary files, or move data to a larger volume."
                .to_owned(),
            evidence: evidence_list,
        });
    }
}
