//! [`Summary`]: the statistics of a window as plain numbers, for JSON APIs
//! and alert rules.

use serde::{Deserialize, Serialize};

/// Count, sum, extremes, mean, standard deviation and the usual quantiles of
/// one window, all in units (seconds for the default config).
///
/// Quantiles come from hdrhistogram's `value_at_quantile`, so they are within
/// the configured significant figures of the exact quantiles; `sum` and
/// `mean` are exact. An empty window reads 0.0 everywhere except
/// `window_seconds`.
///
/// ```
/// use vigil_histogram::{Histogram, Window};
///
/// let histogram = Histogram::new();
/// histogram.record_f64(0.25);
/// let summary = histogram.summary(Window::Cumulative);
/// assert_eq!((summary.count, summary.mean), (1, 0.25));
/// let json = serde_json::to_string(&summary).unwrap();
/// assert!(json.starts_with(r#"{"count":1,"sum":0.25,"#));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Exact sum of the values.
    pub sum: f64,
    /// Smallest value (bucket resolution).
    pub min: f64,
    /// Largest value (bucket resolution).
    pub max: f64,
    /// Exact mean, `sum / count`.
    pub mean: f64,
    /// Standard deviation (from the buckets).
    pub stddev: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Seconds of time the window covers (see
    /// [`Snapshot::window`](crate::Snapshot::window)).
    pub window_seconds: f64,
}
