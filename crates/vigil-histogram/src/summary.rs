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
/// In JSON, a non-finite field (possible in a summary built or merged by
/// hand) is written `"NaN"`, `"+Inf"` or `"-Inf"` and reads back as that
/// value ([`non_finite`](crate::non_finite)).
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
/// let back: vigil_histogram::Summary = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, summary);
///
/// let odd = vigil_histogram::Summary { max: f64::INFINITY, ..summary };
/// let json = serde_json::to_string(&odd).unwrap();
/// assert!(json.contains(r#""max":"+Inf""#));
/// assert_eq!(serde_json::from_str::<vigil_histogram::Summary>(&json).unwrap(), odd);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Exact sum of the values.
    #[serde(with = "crate::non_finite")]
    pub sum: f64,
    /// Smallest value (bucket resolution).
    #[serde(with = "crate::non_finite")]
    pub min: f64,
    /// Largest value (bucket resolution).
    #[serde(with = "crate::non_finite")]
    pub max: f64,
    /// Exact mean, `sum / count`.
    #[serde(with = "crate::non_finite")]
    pub mean: f64,
    /// Standard deviation (from the buckets).
    #[serde(with = "crate::non_finite")]
    pub stddev: f64,
    /// Median.
    #[serde(with = "crate::non_finite")]
    pub p50: f64,
    /// 75th percentile.
    #[serde(with = "crate::non_finite")]
    pub p75: f64,
    /// 90th percentile.
    #[serde(with = "crate::non_finite")]
    pub p90: f64,
    /// 95th percentile.
    #[serde(with = "crate::non_finite")]
    pub p95: f64,
    /// 99th percentile.
    #[serde(with = "crate::non_finite")]
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(with = "crate::non_finite")]
    pub p999: f64,
    /// Seconds of time the window covers (see
    /// [`Snapshot::window`](crate::Snapshot::window)).
    #[serde(with = "crate::non_finite")]
    pub window_seconds: f64,
}
