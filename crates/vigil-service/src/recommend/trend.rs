//! A least-squares line through a series of timed values: the slope of
//! memory growth and of a disk filling up.

use std::time::{Duration, SystemTime};

/// The fewest samples a trend is fitted on.
pub const MIN_TREND_SAMPLES: usize = 10;
/// The shortest time a trend is fitted over.
pub const MIN_TREND_SPAN: Duration = Duration::from_secs(10 * 60);
/// The least coefficient of determination (R²) for a trend to count as
/// steady.
pub const MIN_R_SQUARED: f64 = 0.8;

/// A fitted line `value = start + slope * seconds since the first sample`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Trend {
    /// Units per second.
    pub(crate) slope: f64,
    /// The fitted value at the first sample.
    pub(crate) start: f64,
    /// The fitted value at the last sample.
    pub(crate) end: f64,
    /// How well the line explains the values, 0 to 1.
    pub(crate) r_squared: f64,
    /// From the first sample to the last.
    pub(crate) span: Duration,
}

impl Trend {
    /// The line through `series` (oldest first), if it has at least
    /// [`MIN_TREND_SAMPLES`] finite samples over at least
    /// [`MIN_TREND_SPAN`] and its times are not all equal.
    pub(crate) fn fit(series: &[(SystemTime, f64)]) -> Option<Self> {
        let first = series.first()?.0;
        let points: Vec<(f64, f64)> = series
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(t, v)| (secs_between(first, *t), *v))
            .collect();
        if points.len() < MIN_TREND_SAMPLES {
            return None;
        }
        let last_x = points.iter().map(|p| p.0).fold(0.0, f64::max);
        let span = Duration::try_from_secs_f64(last_x).ok()?;
        if span < MIN_TREND_SPAN {
            return None;
        }
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for (x, y) in &points {
            let (dx, dy) = (x - mean_x, y - mean_y);
            sxx += dx * dx;
            sxy += dx * dy;
            syy += dy * dy;
        }
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let intercept = mean_y - slope * mean_x;
        // A flat series is explained perfectly by a flat line.
        let r_squared = if syy > 0.0 {
            (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        Some(Self {
            slope,
            start: intercept,
            end: intercept + slope * last_x,
            r_squared,
            span,
        })
    }
}

/// Seconds from `from` to `to`, negative when `to` is earlier.
fn secs_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: impl IntoIterator<Item = f64>, step_secs: u64) -> Vec<(SystemTime, f64)> {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (t0 + Duration::from_secs(i as u64 * step_secs), v))
            .collect()
    }

    #[test]
    fn a_straight_line_fits_exactly() {
        let trend = Trend::fit(&series((0..20).map(|i| 100.0 + 2.0 * i as f64), 60)).unwrap();
        assert!((trend.slope - 2.0 / 60.0).abs() < 1e-12);
        assert!((trend.start - 100.0).abs() < 1e-9);
        assert!((trend.end - 138.0).abs() < 1e-9);
        assert!((trend.r_squared - 1.0).abs() < 1e-12);
        assert_eq!(trend.span, Duration::from_secs(19 * 60));
    }

    #[test]
    fn too_few_samples_or_too_short_a_span_fit_nothing() {
        assert_eq!(Trend::fit(&series((0..9).map(f64::from), 600)), None);
        assert_eq!(Trend::fit(&series((0..30).map(f64::from), 10)), None);
        assert_eq!(Trend::fit(&[]), None);
    }

    #[test]
    fn noise_has_a_low_r_squared() {
        let values = (0..40).map(|i| if i % 2 == 0 { 0.0 } else { 10.0 });
        let trend = Trend::fit(&series(values, 60)).unwrap();
        assert!(trend.r_squared < 0.1, "{trend:?}");
    }
}
