//! Comparison with baselines and targets: a [`Kpi`] (baseline, target,
//! critical, direction) judges a measured value as a [`Verdict`]; a
//! [`Comparison`] is the table of them. [`Stat`] reads the usual values
//! from a [`LoadReport`] or [`BenchReport`].

use std::fmt;

use serde::Serialize;

use crate::format::{self, Table};
use crate::{BenchReport, Error, LoadReport};

/// Whether smaller or larger values are better.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Latency, error rate, CPU: smaller is better (the default).
    #[default]
    LowerIsBetter,
    /// Throughput, hit rate, availability: larger is better.
    HigherIsBetter,
}

/// How a measured value compares with a [`Kpi`]'s target and critical
/// level. Ordered from best to worst, so the worst of several is their
/// `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Meets the target (or there is none) and is not beyond critical.
    Pass,
    /// Misses the target but is not beyond the critical level.
    Warn,
    /// Beyond the critical level, or not a number.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        })
    }
}

/// A statistic of a report, in the unit a KPI table uses: latencies in
/// milliseconds, the error rate in percent, the rate in requests (or
/// iterations) per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Mean latency, ms.
    Mean,
    /// Median latency, ms.
    Median,
    /// 90th percentile latency, ms (a bench report has none: its p95).
    P90,
    /// 95th percentile latency, ms.
    P95,
    /// 99th percentile latency, ms.
    P99,
    /// 99.9th percentile latency, ms (a bench report has none: its max).
    P999,
    /// Shortest latency, ms.
    Min,
    /// Longest latency, ms.
    Max,
    /// Standard deviation of the latency, ms.
    Stddev,
    /// Errors, percent of requests.
    ErrorRate,
    /// Throughput: requests completed within the load (iterations) per
    /// second.
    Rate,
}

impl Stat {
    /// The unit the value is in: `ms`, `%` or `req/s`.
    pub fn unit(self) -> &'static str {
        match self {
            Stat::ErrorRate => "%",
            Stat::Rate => "req/s",
            _ => "ms",
        }
    }

    /// The direction in which the statistic is better.
    pub fn direction(self) -> Direction {
        match self {
            Stat::Rate => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }
}

/// A report that KPIs can read [`Stat`]s from.
pub trait Measured {
    /// The value of `stat`, in [`Stat::unit`]; NaN (which every KPI judges
    /// [`Verdict::Fail`]) for a report that measured nothing.
    fn stat(&self, stat: Stat) -> f64;
}

/// A load report without requests, or a bench report without iterations,
/// measured nothing: no statistic of it can pass.
impl Measured for LoadReport {
    fn stat(&self, stat: Stat) -> f64 {
        if self.requests == 0 {
            return f64::NAN;
        }
        let l = &self.latency;
        let ms = |secs: f64| secs * 1e3;
        match stat {
            Stat::Mean => ms(l.mean),
            Stat::Median => ms(l.p50),
            Stat::P90 => ms(l.p90),
            Stat::P95 => ms(l.p95),
            Stat::P99 => ms(l.p99),
            Stat::P999 => ms(l.p999),
            Stat::Min => ms(l.min),
            Stat::Max => ms(l.max),
            Stat::Stddev => ms(l.stddev),
            Stat::ErrorRate => self.error_ratio * 100.0,
            Stat::Rate => self.rate,
        }
    }
}

impl Measured for BenchReport {
    fn stat(&self, stat: Stat) -> f64 {
        if self.iterations == 0 {
            return f64::NAN;
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        match stat {
            Stat::Mean => ms(self.mean),
            Stat::Median => ms(self.median),
            Stat::P90 | Stat::P95 => ms(self.p95),
            Stat::P99 => ms(self.p99),
            Stat::P999 | Stat::Max => ms(self.max),
            Stat::Min => ms(self.min),
            Stat::Stddev => ms(self.stddev),
            Stat::ErrorRate => self.error_ratio() * 100.0,
            Stat::Rate => {
                let secs = self.total.as_secs_f64();
                if secs > 0.0 {
                    self.iterations as f64 / secs
                } else {
                    0.0
                }
            }
        }
    }
}

/// A key performance indicator: a name, a unit, and the levels a measured
/// value is judged by: the `target` it should meet and the `critical`
/// level it must not go beyond; the `baseline` (today's value) is shown
/// for reference with the change against it.
///
/// With lower values better (the default): a value at or below the
/// target passes, one above the critical level fails, one in between
/// warns. [`higher_is_better`](Kpi::higher_is_better) mirrors this.
///
/// ```
/// use vigil_load::{Kpi, Verdict};
///
/// // The AI platform's KPI table: AI response 5 s / 3 s / >10 s.
/// let ai = Kpi::new("AI response", "s").baseline(5.0).target(3.0).critical(10.0);
/// assert_eq!(ai.verdict(3.0), Verdict::Pass);
/// assert_eq!(ai.verdict(7.5), Verdict::Warn);
/// assert_eq!(ai.verdict(10.0), Verdict::Warn); // critical is "> 10 s"
/// assert_eq!(ai.verdict(10.1), Verdict::Fail);
///
/// let hits = Kpi::new("cache hit rate", "%").target(80.0).critical(50.0).higher_is_better();
/// assert_eq!(hits.verdict(85.0), Verdict::Pass);
/// assert_eq!(hits.verdict(49.0), Verdict::Fail);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Kpi {
    /// What is measured, e.g. `API p95`.
    pub name: String,
    /// The unit of the values, e.g. `ms`.
    pub unit: String,
    /// Today's value, for reference.
    pub baseline: Option<f64>,
    /// The value to meet.
    pub target: Option<f64>,
    /// The level not to go beyond.
    pub critical: Option<f64>,
    /// Whether smaller or larger values are better.
    pub direction: Direction,
    /// The statistic read from reports ([`Kpi::of`]).
    pub stat: Option<Stat>,
}

impl Kpi {
    /// A KPI named `name` measured in `unit`, lower values better, with
    /// no levels yet.
    pub fn new(name: impl Into<String>, unit: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            unit: unit.into(),
            baseline: None,
            target: None,
            critical: None,
            direction: Direction::LowerIsBetter,
            stat: None,
        }
    }

    /// A KPI read from reports as `stat` (its unit and direction), for
    /// [`Comparison::measure`].
    ///
    /// ```
    /// use vigil_load::{Comparison, Kpi, LoadReport, Stat, Verdict};
    ///
    /// # let report = LoadReport::example(); // from LoadTest::run
    /// let p95 = Kpi::of("api p95", Stat::P95).baseline(250.0).target(200.0).critical(500.0);
    /// let mut comparison = Comparison::new();
    /// assert_eq!(comparison.measure(p95, &report)?, Verdict::Pass); // 95 ms
    /// # Ok::<(), vigil_load::Error>(())
    /// ```
    pub fn of(name: impl Into<String>, stat: Stat) -> Self {
        Self {
            direction: stat.direction(),
            stat: Some(stat),
            ..Self::new(name, stat.unit())
        }
    }

    setters! {
        /// Today's value, shown with the change against it.
        baseline(value: f64) => baseline = Some(value);

        /// The value to meet for a pass.
        target(value: f64) => target = Some(value);

        /// The level beyond which the value fails.
        critical(value: f64) => critical = Some(value);
    }

    /// Larger values are better (throughput, hit rate).
    pub fn higher_is_better(mut self) -> Self {
        self.direction = Direction::HigherIsBetter;
        self
    }

    /// Smaller values are better (the default).
    pub fn lower_is_better(mut self) -> Self {
        self.direction = Direction::LowerIsBetter;
        self
    }

    /// Judge `value`: [`Verdict::Fail`] beyond the critical level (or for
    /// a value that is not a number), [`Verdict::Pass`] when it meets the
    /// target (or there is none), [`Verdict::Warn`] otherwise.
    pub fn verdict(&self, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::Fail;
        }
        // `worse(a, b)`: a is strictly worse than b in this direction.
        let worse = |a: f64, b: f64| match self.direction {
            Direction::LowerIsBetter => a > b,
            Direction::HigherIsBetter => a < b,
        };
        if self.critical.is_some_and(|critical| worse(value, critical)) {
            Verdict::Fail
        } else if self.target.is_none_or(|target| !worse(value, target)) {
            Verdict::Pass
        } else {
            Verdict::Warn
        }
    }
}

/// One measured KPI of a [`Comparison`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KpiResult {
    /// The KPI.
    pub kpi: Kpi,
    /// The measured value, in the KPI's unit.
    pub value: f64,
    /// How it compares.
    pub verdict: Verdict,
    /// Change against the baseline in percent (positive: larger), when
    /// the KPI has a nonzero baseline.
    pub change: Option<f64>,
}

/// Measured values judged against their KPIs: a table with `Display`
/// (KPI, baseline, target, critical, measured, change, verdict) and
/// `Serialize`, and the overall [`verdict`](Comparison::verdict).
///
/// ```
/// use vigil_load::{Comparison, Kpi, Verdict};
///
/// let mut comparison = Comparison::new();
/// comparison.add(Kpi::new("DB query", "ms").baseline(100.0).target(50.0).critical(500.0), 42.0);
/// comparison.add(Kpi::new("error rate", "%").baseline(1.0).target(0.1).critical(5.0), 0.4);
/// assert_eq!(comparison.verdict(), Verdict::Warn);
/// let table = comparison.to_string();
/// assert!(table.contains("DB query"));
/// assert!(table.contains("-58.0 %")); // 42 ms against the 100 ms baseline
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Comparison {
    /// The KPIs in the order added.
    pub results: Vec<KpiResult>,
}

impl Comparison {
    /// An empty comparison.
    pub fn new() -> Self {
        Self::default()
    }

    /// Judge `value` against `kpi`, add the row, return its verdict.
    pub fn add(&mut self, kpi: Kpi, value: f64) -> Verdict {
        let verdict = kpi.verdict(value);
        let change = kpi
            .baseline
            .filter(|b| *b != 0.0 && b.is_finite())
            .map(|b| (value - b) / b.abs() * 100.0);
        self.results.push(KpiResult {
            kpi,
            value,
            verdict,
            change,
        });
        verdict
    }

    /// Read `kpi`'s statistic from `report` and [`add`](Comparison::add)
    /// it; an error if the KPI was not built with [`Kpi::of`].
    pub fn measure(&mut self, kpi: Kpi, report: &impl Measured) -> Result<Verdict, Error> {
        let stat = kpi.stat.ok_or_else(|| Error::NoStat {
            kpi: kpi.name.clone(),
        })?;
        let value = report.stat(stat);
        Ok(self.add(kpi, value))
    }

    /// The worst verdict ([`Verdict::Pass`] when empty).
    pub fn verdict(&self) -> Verdict {
        self.results
            .iter()
            .map(|r| r.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }

    /// Whether no KPI failed.
    pub fn passed(&self) -> bool {
        self.verdict() != Verdict::Fail
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut table = Table::new(
            "",
            &[
                "KPI",
                "unit",
                "baseline",
                "target",
                "critical",
                "measured",
                "vs baseline",
                "verdict",
            ],
        )
        .left_aligned(2);
        let level = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), format::number);
        for r in &self.results {
            let (better, worse) = match r.kpi.direction {
                Direction::LowerIsBetter => ("<= ", "> "),
                Direction::HigherIsBetter => (">= ", "< "),
            };
            table.row(vec![
                r.kpi.name.clone(),
                r.kpi.unit.clone(),
                level(r.kpi.baseline),
                r.kpi.target.map_or_else(
                    || "-".to_owned(),
                    |t| format!("{better}{}", format::number(t)),
                ),
                r.kpi.critical.map_or_else(
                    || "-".to_owned(),
                    |c| format!("{worse}{}", format::number(c)),
                ),
                format!("{:.3}", r.value)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_owned(),
                r.change
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:+.1} %")),
                r.verdict.to_string(),
            ]);
        }
        write!(f, "{table}")?;
        write!(f, "overall: {}", self.verdict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kpi_without_levels_passes_any_number() {
        let kpi = Kpi::new("x", "ms");
        assert_eq!(kpi.verdict(1e9), Verdict::Pass);
        assert_eq!(kpi.verdict(f64::NAN), Verdict::Fail);
    }

    #[test]
    fn a_report_without_requests_fails_every_kpi() {
        let mut empty = LoadReport::example();
        empty.requests = 0;
        empty.errors = 0;
        empty.error_ratio = 0.0;
        empty.latency = vigil_histogram::Summary::default();
        let mut comparison = Comparison::new();
        for kpi in [
            Kpi::of("p95", Stat::P95).target(100.0).critical(500.0),
            Kpi::of("errors", Stat::ErrorRate).target(1.0).critical(5.0),
            Kpi::of("rate", Stat::Rate),
        ] {
            assert_eq!(comparison.measure(kpi, &empty).unwrap(), Verdict::Fail);
        }
        let bench = crate::Bench::new("none").iterations(0).run_sync(|| ());
        assert_eq!(
            comparison
                .measure(Kpi::of("median", Stat::Median), &bench)
                .unwrap(),
            Verdict::Fail
        );
    }

    #[test]
    fn measure_needs_a_statistic() {
        let mut comparison = Comparison::new();
        let err = comparison
            .measure(Kpi::new("p95", "ms"), &LoadReport::example())
            .unwrap_err();
        assert!(err.to_string().contains("KPI `p95`"), "{err}");
    }
}
