//! [`Bench`]: time an async or sync call many times and summarize the
//! call times ([`BenchReport`]): the async benchmark helper of a test
//! suite, on vigil's HDR histograms. Criterion remains the tool for
//! benchmarks that gate changes.

use std::fmt;
use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use serde::Serialize;
use vigil_histogram::{Histogram, Window};

use crate::format::{self, Table, serialize_seconds};
use crate::response::Response;

/// A benchmark: a name, a number of measured iterations and of warm-up
/// iterations run first and not measured.
///
/// [`run`](Bench::run) awaits an async call per iteration, one after the
/// other, timed with tokio's clock (so under
/// `#[tokio::test(start_paused = true)]` the times are the simulated
/// ones); [`run_sync`](Bench::run_sync) times a plain closure with the
/// TSC-backed `quanta` clock. Calls returning a `Result` (or an HTTP
/// status) count their errors; see [`Response`].
///
/// ```
/// use std::time::Duration;
/// use vigil_load::Bench;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let report = Bench::new("lookup")
///     .iterations(1_000)
///     .warmup(50)
///     .run(|| async {
///         tokio::time::sleep(Duration::from_millis(2)).await;
///         Ok::<_, std::io::Error>(())
///     })
///     .await;
/// assert_eq!((report.iterations, report.errors), (1_000, 0));
/// // Quantiles are within 0.1 % (3 significant figures).
/// assert!(report.median.abs_diff(Duration::from_millis(2)) <= Duration::from_micros(2));
/// println!("{report}"); // lookup  1000 iterations  0 errors  mean 2.00 ms ...
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Bench does nothing until `run` or `run_sync`"]
pub struct Bench {
    name: String,
    iterations: u64,
    warmup: u64,
    clock: Option<quanta::Clock>,
}

impl Bench {
    /// A benchmark named `name`: 1 000 iterations, no warm-up.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            iterations: 1_000,
            warmup: 0,
            clock: None,
        }
    }

    setters! {
        /// The number of measured iterations (1 000 by default).
        iterations(iterations: u64) => iterations = iterations;

        /// Iterations run before the measured ones and not recorded (none by
        /// default): caches, connections and JIT-like lazy set-ups settle.
        warmup(iterations: u64) => warmup = iterations;

        /// The clock [`run_sync`](Bench::run_sync) times calls with
        /// (`quanta::Clock::new()` by default; `quanta::Clock::mock()` in
        /// tests).
        clock(clock: quanta::Clock) => clock = Some(clock);
    }

    /// Await `call()` for each warm-up, then each measured iteration, one
    /// at a time, and summarize the measured call times.
    pub async fn run<F, Fut>(&self, mut call: F) -> BenchReport
    where
        F: FnMut() -> Fut,
        Fut: Future,
        Fut::Output: Response,
    {
        for _ in 0..self.warmup {
            black_box(call().await);
        }
        let mut samples = Samples::new();
        let began = tokio::time::Instant::now();
        for _ in 0..self.iterations {
            let start = tokio::time::Instant::now();
            let output = call().await;
            samples.record(start.elapsed(), black_box(&output).outcome().error);
        }
        samples.report(&self.name, began.elapsed())
    }

    /// Call `call()` for each warm-up, then each measured iteration, and
    /// summarize the measured call times. Each time includes one clock
    /// read (about 10-15 ns); results go through `black_box` so the calls
    /// are not optimized away. Return `()` from a call whose result is
    /// neither a `Result` nor a status.
    ///
    /// ```
    /// let report = vigil_load::Bench::new("parse").iterations(100).run_sync(|| "8080".parse::<u16>());
    /// assert_eq!((report.iterations, report.errors), (100, 0));
    /// assert!(report.min <= report.median && report.median <= report.max);
    /// ```
    pub fn run_sync<F, R>(&self, mut call: F) -> BenchReport
    where
        F: FnMut() -> R,
        R: Response,
    {
        let clock = self.clock.clone().unwrap_or_default();
        for _ in 0..self.warmup {
            black_box(call());
        }
        let mut samples = Samples::new();
        let began = clock.now();
        for _ in 0..self.iterations {
            let start = clock.now();
            let output = call();
            let end = clock.now();
            samples.record(
                end.saturating_duration_since(start),
                black_box(&output).outcome().error,
            );
        }
        samples.report(&self.name, clock.now().saturating_duration_since(began))
    }
}

/// The call times of one benchmark run: quantiles from a histogram; the
/// mean, variance (Welford's running update, in nanoseconds), minimum and
/// maximum exact, since a histogram's buckets blur distributions tighter
/// than their width.
struct Samples {
    histogram: Histogram,
    iterations: u64,
    errors: u64,
    mean: f64,
    /// Sum of squared differences from the running mean.
    m2: f64,
    min: Duration,
    max: Duration,
}

impl Samples {
    fn new() -> Self {
        Self {
            histogram: Histogram::new(),
            iterations: 0,
            errors: 0,
            mean: 0.0,
            m2: 0.0,
            min: Duration::MAX,
            max: Duration::ZERO,
        }
    }

    fn record(&mut self, time: Duration, error: bool) {
        self.histogram.record_duration(time);
        self.iterations += 1;
        self.errors += u64::from(error);
        let nanos = time.as_nanos() as f64;
        let delta = nanos - self.mean;
        self.mean += delta / self.iterations as f64;
        self.m2 += delta * (nanos - self.mean);
        self.min = self.min.min(time);
        self.max = self.max.max(time);
    }

    fn report(self, name: &str, total: Duration) -> BenchReport {
        let summary = self.histogram.summary(Window::Cumulative);
        let nanos = |n: f64| format::from_seconds(n / 1e9);
        // The sample standard deviation (n - 1), as criterion reports.
        let stddev = if self.iterations > 1 {
            nanos((self.m2 / (self.iterations - 1) as f64).sqrt())
        } else {
            Duration::ZERO
        };
        BenchReport {
            name: name.to_owned(),
            iterations: self.iterations,
            errors: self.errors,
            mean: nanos(self.mean),
            median: format::from_seconds(summary.p50),
            p95: format::from_seconds(summary.p95),
            p99: format::from_seconds(summary.p99),
            min: if self.iterations == 0 {
                Duration::ZERO
            } else {
                self.min
            },
            max: self.max,
            stddev,
            total,
        }
    }
}

/// The statistics of a [`Bench`] run: iterations, errors and the call
/// times. Quantiles come from an HDR histogram at 3 significant figures
/// (within 0.1 % of the exact values); the mean, minimum, maximum and
/// standard deviation are exact.
///
/// `Display` writes one aligned line; [`table`](BenchReport::table) lines
/// up several. In JSON the durations are seconds (floats).
///
/// ```
/// use vigil_load::Bench;
///
/// let clock = quanta::Clock::new();
/// let report = Bench::new("noop").iterations(10).clock(clock).run_sync(|| ());
/// let json = serde_json::to_value(&report).unwrap();
/// assert_eq!(json["iterations"], 10);
/// assert!(json["p99"].is_f64());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// The benchmark's name.
    pub name: String,
    /// Measured iterations.
    pub iterations: u64,
    /// Measured iterations whose result counted as an error.
    pub errors: u64,
    /// Mean call time (exact).
    #[serde(serialize_with = "serialize_seconds")]
    pub mean: Duration,
    /// Median call time.
    #[serde(serialize_with = "serialize_seconds")]
    pub median: Duration,
    /// 95th percentile.
    #[serde(serialize_with = "serialize_seconds")]
    pub p95: Duration,
    /// 99th percentile.
    #[serde(serialize_with = "serialize_seconds")]
    pub p99: Duration,
    /// Shortest call.
    #[serde(serialize_with = "serialize_seconds")]
    pub min: Duration,
    /// Longest call.
    #[serde(serialize_with = "serialize_seconds")]
    pub max: Duration,
    /// Sample standard deviation of the call times (divided by n - 1, as
    /// criterion reports it; 0 for fewer than two iterations).
    #[serde(serialize_with = "serialize_seconds")]
    pub stddev: Duration,
    /// Time of the measured iterations, end to end.
    #[serde(serialize_with = "serialize_seconds")]
    pub total: Duration,
}

impl BenchReport {
    /// The share of iterations that were errors, 0.0 ..= 1.0 (0.0 without
    /// iterations).
    pub fn error_ratio(&self) -> f64 {
        ratio(self.errors, self.iterations)
    }

    /// Several reports as one aligned table with a header line.
    ///
    /// ```
    /// use vigil_load::{Bench, BenchReport};
    ///
    /// let a = Bench::new("a").iterations(10).run_sync(|| ());
    /// let b = Bench::new("longer name").iterations(10).run_sync(|| ());
    /// let table = BenchReport::table(&[a, b]);
    /// assert!(table.starts_with("benchmark"));
    /// assert_eq!(table.lines().count(), 3);
    /// ```
    pub fn table(reports: &[BenchReport]) -> String {
        let mut table = Table::new("", &HEADER);
        for report in reports {
            table.row(report.cells());
        }
        table.to_string()
    }

    fn cells(&self) -> Vec<String> {
        let mut cells = vec![
            self.name.clone(),
            self.iterations.to_string(),
            self.errors.to_string(),
        ];
        cells.extend(
            [
                self.mean,
                self.median,
                self.p95,
                self.p99,
                self.min,
                self.max,
                self.stddev,
                self.total,
            ]
            .map(format::duration),
        );
        cells
    }
}

const HEADER: [&str; 11] = [
    "benchmark",
    "iterations",
    "errors",
    "mean",
    "median",
    "p95",
    "p99",
    "min",
    "max",
    "stddev",
    "total",
];

pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl fmt::Display for BenchReport {
    /// One line: `name  N iterations  E errors  mean ..  median ..  p95 ..
    /// p99 ..  min ..  max ..  stddev ..  total ..`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells = self.cells();
        write!(
            f,
            "{}  {} iterations  {} errors",
            cells[0], cells[1], cells[2]
        )?;
        for (label, value) in HEADER[3..].iter().zip(&cells[3..]) {
            write!(f, "  {label} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_iterations_give_an_empty_report() {
        let report = Bench::new("empty").iterations(0).run_sync(|| ());
        assert_eq!(report.iterations, 0);
        assert_eq!(report.max, Duration::ZERO);
        assert_eq!(report.error_ratio(), 0.0);
    }

    #[test]
    fn warmup_iterations_are_called_but_not_measured() {
        let mut calls = 0;
        let report = Bench::new("w").iterations(10).warmup(5).run_sync(|| {
            calls += 1;
        });
        assert_eq!(calls, 15);
        assert_eq!(report.iterations, 10);
    }
}
