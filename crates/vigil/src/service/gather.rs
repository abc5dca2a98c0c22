//! The inputs of the health score and the recommendations, read from the
//! registry's summary: the timed functions' calls, errors, durations and
//! callers, and the system gauges.

use std::collections::BTreeMap;

use vigil_histogram::Summary;
use vigil_service::recommend::{CalleeUsage, FunctionUsage};
use vigil_timing::{CALLS_DURATION, CALLS_TOTAL};

use crate::summary::MetricsSummary;

/// A function by `(function, module)` labels.
type Site = (String, String);

/// What the registry holds about one function.
#[derive(Default)]
struct Calls {
    /// Calls per second over the window, every caller and result.
    rate: f64,
    /// Errors per second over the window.
    error_rate: f64,
    /// Calls per second over the window by caller.
    callers: BTreeMap<Site, f64>,
    /// The windowed durations (several series merged: the worst p95, the
    /// count-weighted mean).
    count: u64,
    p95: Option<f64>,
    mean_sum: f64,
}

impl Calls {
    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.mean_sum / self.count as f64)
    }

    /// The share of the calls over the window that `rate` (a part of
    /// [`rate`](Self::rate)) stands for.
    fn share(&self, rate: f64) -> u64 {
        if self.rate > 0.0 {
            (self.count as f64 * rate / self.rate).round() as u64
        } else {
            0
        }
    }
}

fn label<'a>(labels: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map_or("", String::as_str)
}

fn site(labels: &BTreeMap<String, String>) -> Site {
    (
        label(labels, "function").to_owned(),
        label(labels, "module").to_owned(),
    )
}

/// The timed functions of `summary`: `function_calls_total` (rates by
/// result and caller over the window) and
/// `function_calls_duration_seconds` (the window's count, p95 and mean).
/// The calls over the window are the duration histogram's window count;
/// errors and calls by caller are its share by the counters' rates.
pub(super) struct Functions {
    sites: BTreeMap<Site, Calls>,
}

impl Functions {
    pub(super) fn read(summary: &MetricsSummary) -> Self {
        let mut sites: BTreeMap<Site, Calls> = BTreeMap::new();
        for counter in summary.counters.iter().filter(|c| c.name == CALLS_TOTAL) {
            let calls = sites.entry(site(&counter.labels)).or_default();
            calls.rate += counter.rate;
            if label(&counter.labels, "result") == "error" {
                calls.error_rate += counter.rate;
            }
            let caller = (
                label(&counter.labels, "caller_function").to_owned(),
                label(&counter.labels, "caller_module").to_owned(),
            );
            if !caller.0.is_empty() {
                *calls.callers.entry(caller).or_default() += counter.rate;
            }
        }
        let durations = summary
            .histograms
            .iter()
            .filter(|h| h.name == CALLS_DURATION);
        for histogram in durations {
            let window: &Summary = &histogram.window;
            if window.count == 0 {
                continue;
            }
            let calls = sites.entry(site(&histogram.labels)).or_default();
            calls.count += window.count;
            calls.mean_sum += window.mean * window.count as f64;
            calls.p95 = Some(calls.p95.map_or(window.p95, |p95| p95.max(window.p95)));
        }
        Self { sites }
    }

    /// The worst windowed p95 over functions, in seconds.
    pub(super) fn worst_p95(&self) -> Option<f64> {
        self.sites.values().filter_map(|c| c.p95).reduce(f64::max)
    }

    /// Errors per call over the window, every function together, and the
    /// calls behind it; `None` without calls.
    pub(super) fn error_rate(&self) -> (Option<f64>, u64) {
        let rate: f64 = self.sites.values().map(|c| c.rate).sum();
        let errors: f64 = self.sites.values().map(|c| c.error_rate).sum();
        let calls = self.sites.values().map(|c| c.count).sum();
        ((rate > 0.0).then(|| errors / rate), calls)
    }

    /// Each function with its callees (the functions whose
    /// `caller_function` / `caller_module` labels name it).
    pub(super) fn usage(&self) -> Vec<FunctionUsage> {
        let mut usage: BTreeMap<&Site, FunctionUsage> = self
            .sites
            .iter()
            .map(|(site, calls)| {
                let function = FunctionUsage {
                    function: site.0.clone(),
                    module: site.1.clone(),
                    calls: calls.count,
                    errors: calls.share(calls.error_rate),
                    p95_seconds: calls.p95,
                    mean_seconds: calls.mean(),
                    callees: Vec::new(),
                };
                (site, function)
            })
            .collect();
        for (callee, calls) in &self.sites {
            for (caller, rate) in &calls.callers {
                if let Some(caller) = usage.get_mut(caller) {
                    caller.callees.push(CalleeUsage {
                        function: callee.0.clone(),
                        module: callee.1.clone(),
                        calls: calls.share(*rate),
                        mean_seconds: calls.mean(),
                    });
                }
            }
        }
        usage.into_values().collect()
    }
}

/// The value of the gauge `name` (the highest over its series), if the
/// registry has it.
pub(super) fn gauge(summary: &MetricsSummary, name: &str) -> Option<f64> {
    summary
        .gauges
        .iter()
        .filter(|g| g.name == name && g.value.is_finite())
        .map(|g| g.value)
        .reduce(f64::max)
}
