//! Dynamic thresholds: a limit computed from the rule's own recent values.
//!
//! A [`Baseline`] turns the trailing window of a rule's value (per alert
//! instance) into a limit: `mean ± k·stddev` or a quantile of that history.
//! The engine keeps the samples (one per evaluation) and computes the limit
//! *before* adding the current value, so an outlier is compared with the
//! history that preceded it. Until the window holds `min_samples` values the
//! threshold does not hold, so a fresh rule cannot fire on its first blip.
//!
//! Cost: O(samples in the window) per series per evaluation for `stddevs`,
//! plus a sort for `quantile`; at most [`MAX_SAMPLES`] are kept per series.
//! Use dynamic thresholds on aggregated rules or a handful of series.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::expr::Samples;

/// At most this many samples are kept per series for a baseline (the
/// oldest are dropped first): 4.5 hours at one evaluation per second.
pub const MAX_SAMPLES: usize = 16_384;

/// How a [`Baseline`] derives a limit from the history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BaselineMethod {
    /// `mean + k·stddev` for `>`/`>=` thresholds, `mean - k·stddev` for
    /// `<`/`<=` ones (population standard deviation). `k` is usually 2..4.
    Stddev(f64),
    /// The `q`-quantile (`0.0 ..= 1.0`, linear interpolation) of the history.
    Quantile(f64),
}

/// A threshold limit computed from the rule's own value over a trailing
/// window.
///
/// Written in config as `{stddevs: 3, window: 1h, min_samples: 30}` or
/// `{quantile: 0.99, window: 1h, min_samples: 30}` (`min_samples` defaults
/// to 10).
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::Baseline;
///
/// let b = Baseline::stddevs(3.0, Duration::from_secs(3600)).min_samples(60);
/// assert_eq!(b.min_samples, 60);
/// let yaml = serde_json::to_string(&b)?;
/// assert_eq!(yaml, r#"{"stddevs":3.0,"window":"1h","min_samples":60}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BaselineRepr", into = "BaselineRepr")]
pub struct Baseline {
    /// Mean ± k·σ, or a quantile.
    pub method: BaselineMethod,
    /// How far back the history reaches (e.g. the last hour).
    pub window: Duration,
    /// Samples the window must hold before the threshold can hold.
    pub min_samples: usize,
}

/// Default [`Baseline::min_samples`].
pub const DEFAULT_MIN_SAMPLES: usize = 10;

impl Baseline {
    /// `mean ± k·stddev` of the values over `window`.
    pub fn stddevs(k: f64, window: Duration) -> Self {
        Baseline::new(BaselineMethod::Stddev(k), window)
    }

    /// The `q`-quantile of the values over `window`.
    pub fn quantile(q: f64, window: Duration) -> Self {
        Baseline::new(BaselineMethod::Quantile(q), window)
    }

    fn new(method: BaselineMethod, window: Duration) -> Self {
        let min_samples = DEFAULT_MIN_SAMPLES;
        Baseline {
            method,
            window,
            min_samples,
        }
    }

    /// Sets the sample count needed before the threshold can hold.
    #[must_use]
    pub fn min_samples(mut self, n: usize) -> Self {
        self.min_samples = n;
        self
    }

    /// Why this baseline cannot be evaluated, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        let n = self.min_samples;
        Some(match self.method {
            BaselineMethod::Stddev(k) if !k.is_finite() => {
                format!("stddevs must be finite, got {k}")
            }
            BaselineMethod::Stddev(k) if k < 0.0 => format!(
                "stddevs must not be negative, got {k} (the operator picks the side: mean + k·σ for > and >=, mean - k·σ for < and <=)"
            ),
            BaselineMethod::Quantile(q) if !(0.0..=1.0).contains(&q) => {
                format!("quantile must be within 0..=1, got {q}")
            }
            _ => match crate::time::not_positive(self.window) {
                Some(problem) => format!("window {problem}"),
                None if n == 0 => "min_samples must be at least 1".into(),
                None if n > MAX_SAMPLES => format!(
                    "min_samples {n} is more than the {MAX_SAMPLES} samples a baseline keeps, so the threshold could never hold"
                ),
                None => return None,
            },
        })
    }

    /// The limit given the history (which must not yet hold the current
    /// value), or `None` while fewer than `min_samples` values fall in the
    /// window: above the history for a threshold that alerts on high
    /// values (`upper`), below it otherwise.
    pub(crate) fn limit(&self, history: &Samples, now: SystemTime, upper: bool) -> Option<f64> {
        let from = now.checked_sub(self.window);
        let in_window = |(t, _): &&(SystemTime, f64)| from.is_none_or(|from| *t >= from);
        let mut values: Vec<f64> = history.0.iter().filter(in_window).map(|s| s.1).collect();
        let n = values.len();
        if n < self.min_samples.max(1) {
            return None;
        }
        match self.method {
            BaselineMethod::Stddev(k) => {
                let mean = values.iter().sum::<f64>() / n as f64;
                let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
                let spread = k * var.sqrt();
                Some(mean + if upper { spread } else { -spread })
            }
            BaselineMethod::Quantile(q) => {
                values.sort_by(f64::total_cmp);
                Some(quantile_sorted(&values, q))
            }
        }
    }
}

/// Linear interpolation between closest ranks (numpy's default).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stddevs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quantile: Option<f64>,
    #[serde(with = "crate::time::duration::positive")]
    window: Duration,
    #[serde(default = "default_min_samples")]
    min_samples: usize,
}

fn default_min_samples() -> usize {
    DEFAULT_MIN_SAMPLES
}

impl TryFrom<BaselineRepr> for Baseline {
    type Error = String;

    fn try_from(repr: BaselineRepr) -> Result<Self, Self::Error> {
        let method = match (repr.stddevs, repr.quantile) {
            (Some(k), None) => BaselineMethod::Stddev(k),
            (None, Some(q)) => BaselineMethod::Quantile(q),
            _ => return Err("a baseline needs exactly one of `stddevs` or `quantile`".into()),
        };
        let baseline = Baseline::new(method, repr.window).min_samples(repr.min_samples);
        baseline.problem().map_or(Ok(baseline), Err)
    }
}

impl From<Baseline> for BaselineRepr {
    fn from(b: Baseline) -> Self {
        let (stddevs, quantile) = match b.method {
            BaselineMethod::Stddev(k) => (Some(k), None),
            BaselineMethod::Quantile(q) => (None, Some(q)),
        };
        let (window, min_samples) = (b.window, b.min_samples);
        BaselineRepr {
            stddevs,
            quantile,
            window,
            min_samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn history(values: &[f64]) -> Samples {
        let mut h = Samples::default();
        for (i, v) in values.iter().enumerate() {
            h.push(
                at(1000 + i as u64),
                *v,
                Duration::from_secs(3600),
                MAX_SAMPLES,
            );
        }
        h
    }

    #[test]
    fn stddev_limit_is_mean_plus_or_minus_k_sigma() {
        let h = history(&[1.0, 3.0, 1.0, 3.0]); // mean 2, sigma 1
        let b = Baseline::stddevs(2.0, Duration::from_secs(3600)).min_samples(4);
        let now = at(1010);
        assert_eq!(b.limit(&h, now, true), Some(4.0));
        assert_eq!(b.limit(&h, now, false), Some(0.0));
    }

    #[test]
    fn quantile_limit_interpolates() {
        let h = history(&[4.0, 1.0, 3.0, 2.0, 5.0]);
        let b = Baseline::quantile(0.5, Duration::from_secs(3600)).min_samples(5);
        assert_eq!(b.limit(&h, at(1010), true), Some(3.0));
        let b = Baseline::quantile(0.9, Duration::from_secs(3600)).min_samples(5);
        let got = b.limit(&h, at(1010), true).unwrap();
        assert!((got - 4.6).abs() < 1e-12, "{got}");
    }

    #[test]
    fn no_limit_below_min_samples_or_outside_the_window() {
        let h = history(&[1.0, 2.0, 3.0]);
        let b = Baseline::stddevs(3.0, Duration::from_secs(3600)).min_samples(4);
        assert_eq!(b.limit(&h, at(1010), true), None);
        // Two hours later all three samples are outside a one-minute window.
        let b = Baseline::stddevs(3.0, Duration::from_secs(60)).min_samples(1);
        assert_eq!(b.limit(&h, at(8200), true), None);
    }

    #[test]
    fn history_is_bounded_by_window_and_max_samples() {
        let mut h = Samples::default();
        for i in 0..100 {
            h.push(at(i), i as f64, Duration::from_secs(10), MAX_SAMPLES);
        }
        assert_eq!(h.0.len(), 11); // 89..=99
        let mut h = Samples::default();
        for i in 0..(MAX_SAMPLES as u64 + 5) {
            h.push(at(i), 0.0, Duration::from_secs(u64::MAX / 4), MAX_SAMPLES);
        }
        assert_eq!(h.0.len(), MAX_SAMPLES);
    }

    #[test]
    fn serde_needs_exactly_one_method() {
        let b: Baseline = serde_json::from_str(r#"{"quantile":0.99,"window":"30m"}"#).unwrap();
        assert_eq!(b.method, BaselineMethod::Quantile(0.99));
        assert_eq!(b.window, Duration::from_secs(1800));
        assert_eq!(b.min_samples, DEFAULT_MIN_SAMPLES);
        assert!(serde_json::from_str::<Baseline>(r#"{"window":"30m"}"#).is_err());
        assert!(
            serde_json::from_str::<Baseline>(r#"{"stddevs":2,"quantile":0.9,"window":"1m"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Baseline>(r#"{"stddevs":2,"window":"1m","x":1}"#).is_err());
        assert!(serde_json::from_str::<Baseline>(r#"{"quantile":2,"window":"1m"}"#).is_err());
    }
}
