//! [`Rejection`]: why a value given to a histogram was not recorded as
//! given, and the counters of each reason, written on the cold path only.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a value given to a [`Histogram`](crate::Histogram) was not recorded
/// as given. Each is counted
/// ([`Histogram::rejected_for`](crate::Histogram::rejected_for)), never
/// lost silently.
///
/// ```
/// use vigil_histogram::{Config, Rejection};
///
/// let histogram = Config::new().range(1, 1_000).scale(1.0).build()?;
/// for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.5, 5_000.0, 7.0] {
///     histogram.record_f64(value);
/// }
/// for reason in Rejection::ALL {
///     assert_eq!(histogram.rejected_for(reason), 1, "{reason}");
/// }
/// // NaN, the infinities and the negative value were dropped; 5 000 was
/// // recorded as 1 000.
/// assert_eq!(histogram.count(), 2);
/// assert_eq!(Rejection::Clamped.as_str(), "clamped");
/// # Ok::<(), vigil_histogram::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rejection {
    /// NaN: not recorded.
    Nan,
    /// Positive infinity: not recorded (no bucket and no sum holds it).
    PositiveInfinity,
    /// Negative infinity: not recorded.
    NegativeInfinity,
    /// A finite value below zero: not recorded (the histogram holds
    /// non-negative values; `-0.0` counts as 0).
    Negative,
    /// Above the configured highest value (finite floats too large for
    /// `u64` included): recorded as the highest value, in the top bucket
    /// and the sum.
    Clamped,
}

impl Rejection {
    /// Every reason, in declaration order.
    pub const ALL: [Rejection; 5] = [
        Rejection::Nan,
        Rejection::PositiveInfinity,
        Rejection::NegativeInfinity,
        Rejection::Negative,
        Rejection::Clamped,
    ];

    /// The reason as a label value: `nan`, `positive_infinity`,
    /// `negative_infinity`, `negative` or `clamped`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rejection::Nan => "nan",
            Rejection::PositiveInfinity => "positive_infinity",
            Rejection::NegativeInfinity => "negative_infinity",
            Rejection::Negative => "negative",
            Rejection::Clamped => "clamped",
        }
    }

    /// Whether the value was still recorded (as a different value): true
    /// for [`Clamped`](Rejection::Clamped) only.
    pub const fn is_recorded(self) -> bool {
        matches!(self, Rejection::Clamped)
    }

    /// The reason a float outside `[0, +inf)` is refused.
    fn of_float(value: f64) -> Rejection {
        if value.is_nan() {
            Rejection::Nan
        } else if value == f64::INFINITY {
            Rejection::PositiveInfinity
        } else if value == f64::NEG_INFINITY {
            Rejection::NegativeInfinity
        } else {
            Rejection::Negative
        }
    }

    const fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One counter per [`Rejection`], padded away from the fields the hot path
/// reads so bumping them never invalidates those lines.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Rejections([AtomicU64; Rejection::ALL.len()]);

impl Rejections {
    /// Counts `n` values refused for `value` (a float outside `[0, +inf)`).
    #[cold]
    #[inline(never)]
    pub(crate) fn refuse(&self, value: f64, n: u64) {
        self.count(Rejection::of_float(value), n);
    }

    /// Counts `n` values for `reason`.
    #[cold]
    pub(crate) fn count(&self, reason: Rejection, n: u64) {
        self.0[reason.slot()].fetch_add(n, Relaxed);
    }

    /// Values counted for `reason` so far.
    pub(crate) fn get(&self, reason: Rejection) -> u64 {
        self.0[reason.slot()].load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_classified_by_reason() {
        let cases = [
            (f64::NAN, Rejection::Nan),
            (-f64::NAN, Rejection::Nan),
            (f64::INFINITY, Rejection::PositiveInfinity),
            (f64::NEG_INFINITY, Rejection::NegativeInfinity),
            (-1e-300, Rejection::Negative),
            (f64::MIN, Rejection::Negative),
        ];
        for (value, reason) in cases {
            assert_eq!(Rejection::of_float(value), reason, "{value}");
        }
    }

    #[test]
    fn slots_follow_all() {
        for (i, reason) in Rejection::ALL.into_iter().enumerate() {
            assert_eq!(reason.slot(), i);
        }
        let labels: std::collections::HashSet<_> =
            Rejection::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), Rejection::ALL.len());
    }
}
