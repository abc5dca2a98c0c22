//! [`Config`]: the builder that fixes a histogram's range, precision, units
//! and window ring, and with them its memory.

use std::fmt;
use std::time::Duration;

use std::sync::Arc;

use crate::bounds::ExactBounds;
use crate::layout::Layout;
use crate::{Error, Histogram};

/// How a [`Histogram`] is built: value range and precision (as in
/// HdrHistogram), the unit conversion for [`Histogram::record_f64`], the
/// sliding window ring, optional coordinated-omission correction and the
/// clock.
///
/// Builder style, by value; [`Config::build`] validates. Equality ignores the
/// clock (clocks have no meaningful equality).
///
/// ```
/// use std::time::Duration;
/// use vigil_histogram::Config;
///
/// // Microsecond resolution up to one minute, 2 significant figures,
/// // 5 minutes of history in 30 s intervals.
/// let histogram = Config::new()
///     .range(1_000, 60_000_000_000)
///     .significant_figures(2)
///     .interval(Duration::from_secs(30))
///     .intervals(10)
///     .build()?;
/// histogram.record_duration(Duration::from_micros(250));
/// assert_eq!(histogram.snapshot(vigil_histogram::Window::Cumulative).count(), 1);
/// # Ok::<(), vigil_histogram::Error>(())
/// ```
#[must_use = "a Config does nothing until `build` is called"]
#[derive(Clone)]
pub struct Config {
    pub(crate) lowest: u64,
    pub(crate) highest: u64,
    pub(crate) sigfig: u8,
    pub(crate) scale: f64,
    pub(crate) interval: Duration,
    pub(crate) intervals: usize,
    pub(crate) expected_interval: Option<u64>,
    pub(crate) clock: quanta::Clock,
    pub(crate) slots: Option<usize>,
    pub(crate) exact: Option<Arc<ExactBounds>>,
}

impl Config {
    /// The defaults, made for latencies recorded in nanoseconds and read in
    /// seconds: range 1 ns ..= 1 h (`3_600_000_000_000`), 3 significant
    /// figures, scale `1e9` (raw units per 1.0 given to
    /// [`Histogram::record_f64`]), 10 s intervals, 90 of them (15 minutes of
    /// history), no coordinated-omission correction, `quanta::Clock::new()`.
    ///
    /// A shard of this config takes 392 bytes before its first value and
    /// grows a page of 16 buckets at a time as values land; at most
    /// [`Config::shard_bytes`] = 287,888 bytes.
    pub fn new() -> Self {
        Config {
            lowest: 1,
            highest: 3_600_000_000_000,
            sigfig: 3,
            scale: 1e9,
            interval: Duration::from_secs(10),
            intervals: 90,
            expected_interval: None,
            clock: quanta::Clock::new(),
            slots: None,
            exact: None,
        }
    }

    /// Lowest discernible and highest trackable raw values (HdrHistogram's
    /// `low` and `high`). Values above `highest` are clamped to it and counted
    /// in [`Histogram::out_of_range`]; values below `lowest` (including 0) are
    /// recorded at the resolution of `lowest`, like hdrhistogram.
    pub fn range(mut self, lowest: u64, highest: u64) -> Self {
        self.lowest = lowest;
        self.highest = highest;
        self
    }

    setters! {
        /// Decimal significant figures kept (0 ..= 5). Each step multiplies
        /// memory by about 10.
        significant_figures(figures: u8) => sigfig = figures;

        /// Raw units per unit: what [`Histogram::record_f64`] multiplies by and
        /// what every read divides by. The default `1e9` records seconds as
        /// nanoseconds.
        scale(raw_per_unit: f64) => scale = raw_per_unit;

        /// Length of one interval of the sliding window ring.
        interval(length: Duration) => interval = length;

        /// Number of completed intervals kept; history = `count * interval`.
        intervals(count: usize) => intervals = count;

        /// Opt in to coordinated-omission correction: a caller expects a value
        /// every `raw` units, so a value `v` also records `v - raw`, `v - 2*raw`,
        /// ... down to `raw`, the samples a stalled load generator failed to take
        /// (hdrhistogram's `record_correct`). Must be at least 1.
        expected_interval(raw: u64) => expected_interval = Some(raw);

        /// The clock that drives window rotation. Use `quanta::Clock::mock()` in
        /// tests to move time by hand.
        clock(clock: quanta::Clock) => clock = clock;

        /// Most threads that each own a shard of the histogram at the same
        /// time (clamped to 1 ..= 64); default: the CPU count, up to 64. A
        /// thread that records while all are taken adds to one shared shard
        /// with `fetch_add`, correct but slower under contention (and that
        /// shard holds its pages twice, so reads see it whole). A histogram
        /// only ever allocates shards for threads that record into it while
        /// other recording threads are alive, so this bounds memory, it does
        /// not reserve it.
        ///
        /// ```
        /// use std::sync::Arc;
        /// use vigil_histogram::{Config, Window};
        ///
        /// let histogram = Arc::new(Config::new().shards(1).build()?);
        /// std::thread::scope(|s| {
        ///     for _ in 0..4 {
        ///         s.spawn(|| (0..1_000).for_each(|v| histogram.record(v)));
        ///     }
        /// });
        /// assert_eq!(histogram.snapshot(Window::Cumulative).count(), 4_000);
        /// # Ok::<(), vigil_histogram::Error>(())
        /// ```
        shards(most: usize) => slots = Some(most.clamp(1, crate::slots::MAX_SLOTS));

        /// Keeps counts at these bounds (in units, e.g. Prometheus `le` bounds
        /// in seconds) exact: [`Snapshot::count_le`](crate::Snapshot::count_le)
        /// of a bound counts exactly the values at or below it. Without this,
        /// a bound inside an HDR bucket (250 ms lies in the 3-figure bucket
        /// 249.954..=250.085 ms) also counts the values above it in that
        /// bucket; with it, such a value is counted one bucket up (so
        /// quantiles move by at most one bucket width, within the precision),
        /// and sums stay exact. Two bounds in one bucket keep the lower one
        /// exact. Each thread's shard also keeps one counter per bound, read
        /// by [`Histogram::bound_counts`] without walking the buckets (what a
        /// Prometheus classic histogram needs on every scrape). Costs about
        /// 2 ns per record: two small table loads, a few compares and one more
        /// relaxed add.
        ///
        /// ```
        /// use vigil_histogram::{Config, Window};
        ///
        /// let exact = Config::new().exact_bounds(&[0.25]).build()?;
        /// let plain = Config::new().build()?;
        /// for histogram in [&exact, &plain] {
        ///     histogram.record_f64(0.250_000); // at the bound
        ///     histogram.record_f64(0.250_050); // 50 us above, same HDR bucket
        /// }
        /// assert_eq!(exact.snapshot(Window::Cumulative).count_le(0.25), 1);
        /// assert_eq!(plain.snapshot(Window::Cumulative).count_le(0.25), 2);
        /// # Ok::<(), vigil_histogram::Error>(())
        /// ```
        exact_bounds(bounds: &[f64]) =>
            exact = (!bounds.is_empty()).then(|| Arc::new(ExactBounds::new(bounds)));
    }

    /// The bounds given to [`exact_bounds`](Config::exact_bounds), if any.
    pub fn exact_bound_values(&self) -> &[f64] {
        self.exact.as_deref().map_or(&[], ExactBounds::bounds)
    }

    /// Validate and build the histogram.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field when `lowest < 1`,
    /// `highest < 2 * lowest`, figures > 5 (or a range and precision that do
    /// not fit in 64 bits), scale not finite and positive, a zero interval,
    /// zero intervals, or a zero expected interval.
    pub fn build(self) -> Result<Histogram, Error> {
        let layout = self.validate()?;
        Ok(Histogram::from_parts(self, layout))
    }

    /// The most one shard of this config can hold: every page of buckets
    /// allocated (one `u64` per HdrHistogram bucket, in pages of 16, groups
    /// of 64 pages) plus its header. A shard starts with none and allocates
    /// a page when a value first lands in it, so real shards hold a small
    /// fraction of this. For the defaults: 33,792 buckets, 287,888 bytes.
    /// 0 for an invalid config.
    ///
    /// ```
    /// use vigil_histogram::Config;
    /// assert_eq!(Config::new().shard_bytes(), 287_888);
    /// assert_eq!(Config::new().significant_figures(2).shard_bytes(), 39_632);
    /// ```
    pub fn shard_bytes(&self) -> usize {
        self.layout()
            .map_or(0, |layout| crate::shard::Shard::full_bytes(layout.len()))
    }

    /// Lowest discernible raw value.
    pub fn lowest(&self) -> u64 {
        self.lowest
    }

    /// Highest trackable raw value.
    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Significant figures.
    pub fn sigfig(&self) -> u8 {
        self.sigfig
    }

    /// Raw units per unit (see [`Config::scale`]).
    pub fn raw_per_unit(&self) -> f64 {
        self.scale
    }

    /// Length of one ring interval.
    pub fn interval_length(&self) -> Duration {
        self.interval
    }

    /// Number of completed intervals kept.
    pub fn interval_count(&self) -> usize {
        self.intervals
    }

    /// History kept by the ring: `interval_length * interval_count`
    /// (saturating).
    pub fn history(&self) -> Duration {
        self.interval
            .saturating_mul(u32::try_from(self.intervals).unwrap_or(u32::MAX))
    }

    /// The coordinated-omission expected interval, if set.
    pub fn expected_interval_raw(&self) -> Option<u64> {
        self.expected_interval
    }

    /// The clock driving rotation.
    pub fn time_source(&self) -> &quanta::Clock {
        &self.clock
    }

    pub(crate) fn layout(&self) -> Option<Layout> {
        Layout::new(self.lowest, self.highest, self.sigfig)
    }

    pub(crate) fn validate(&self) -> Result<Layout, Error> {
        let invalid = |field: &'static str, reason: String| Error::InvalidConfig { field, reason };
        if self.lowest < 1 {
            return Err(invalid("range", "lowest must be at least 1, got 0".into()));
        }
        if self.lowest > u64::MAX / 2 || self.highest < 2 * self.lowest {
            return Err(invalid(
                "range",
                format!(
                    "highest must be at least 2 * lowest, got lowest {} and highest {}",
                    self.lowest, self.highest
                ),
            ));
        }
        if self.sigfig > 5 {
            return Err(invalid(
                "significant_figures",
                format!("must be at most 5, got {}", self.sigfig),
            ));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(invalid(
                "scale",
                format!("must be finite and positive, got {}", self.scale),
            ));
        }
        if self.interval.is_zero() {
            return Err(invalid("interval", "must be longer than zero".into()));
        }
        if self.intervals < 1 {
            return Err(invalid("intervals", "must be at least 1, got 0".into()));
        }
        if self.expected_interval == Some(0) {
            return Err(invalid(
                "expected_interval",
                "must be at least 1, got 0".into(),
            ));
        }
        self.layout().ok_or_else(|| {
            invalid(
                "significant_figures",
                format!(
                    "{} figures above a lowest value of {} do not fit in 64 bits; lower either",
                    self.sigfig, self.lowest
                ),
            )
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.lowest == other.lowest
            && self.highest == other.highest
            && self.sigfig == other.sigfig
            && self.scale == other.scale
            && self.interval == other.interval
            && self.intervals == other.intervals
            && self.expected_interval == other.expected_interval
            && self.slots == other.slots
            && self.exact_bound_values() == other.exact_bound_values()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("lowest", &self.lowest)
            .field("highest", &self.highest)
            .field("significant_figures", &self.sigfig)
            .field("scale", &self.scale)
            .field("interval", &self.interval)
            .field("intervals", &self.intervals)
            .field("expected_interval", &self.expected_interval)
            .field("shards", &self.slots)
            .field("exact_bounds", &self.exact_bound_values())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: Config) -> &'static str {
        match config.build() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn defaults_build() {
        let config = Config::default();
        assert_eq!(config, Config::new());
        assert_eq!(
            (config.lowest(), config.highest(), config.sigfig()),
            (1, 3_600_000_000_000, 3)
        );
        assert_eq!(config.history(), Duration::from_secs(900));
        assert!(config.build().is_ok());
    }

    #[test]
    fn each_invalid_field_is_named() {
        assert_eq!(field_of(Config::new().range(0, 10)), "range");
        assert_eq!(field_of(Config::new().range(10, 19)), "range");
        assert_eq!(field_of(Config::new().range(u64::MAX, u64::MAX)), "range");
        assert_eq!(
            field_of(Config::new().significant_figures(6)),
            "significant_figures"
        );
        assert_eq!(
            field_of(
                Config::new()
                    .range(1 << 50, u64::MAX)
                    .significant_figures(5)
            ),
            "significant_figures"
        );
        for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(field_of(Config::new().scale(scale)), "scale");
        }
        assert_eq!(field_of(Config::new().interval(Duration::ZERO)), "interval");
        assert_eq!(field_of(Config::new().intervals(0)), "intervals");
        assert_eq!(
            field_of(Config::new().expected_interval(0)),
            "expected_interval"
        );
    }

    #[test]
    fn error_message_says_what_and_where() {
        let message = Config::new()
            .range(10, 15)
            .build()
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            message,
            "invalid histogram config: `range` highest must be at least 2 * lowest, got lowest 10 and highest 15"
        );
    }

    #[test]
    fn equality_ignores_the_clock() {
        let (mock, _) = quanta::Clock::mock();
        assert_eq!(Config::new().clock(mock), Config::new());
        assert_ne!(Config::new().intervals(3), Config::new());
    }

    #[test]
    fn shard_bytes_follow_precision() {
        assert_eq!(Config::new().shard_bytes(), 287_888);
        assert_eq!(Config::new().range(0, 1).shard_bytes(), 0);
    }
}
