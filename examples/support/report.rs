//! The terminal report: aligned tables, the target-vs-current scorecard,
//! the KPI table, latency percentiles per endpoint or function, cache hit
//! rates per cache, the alerts that fired and resolved, the health score
//! and the recommendations.

use std::collections::BTreeMap;
use std::time::SystemTime;

use vigil::Monitor;

/// Prints a section heading.
pub fn heading(title: &str) {
    println!("\n{title}\n{}", "=".repeat(title.chars().count()));
}

/// A table printed with aligned columns (numbers right-aligned).
#[derive(Clone, Debug)]
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: &str, headers: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Prints it under its title.
    pub fn print(&self) {
        heading(&self.title);
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let numeric = cell
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || "-+<>".contains(c));
                if i > 0 {
                    out.push_str("  ");
                }
                if numeric && i > 0 {
                    out.push_str(&format!("{cell:>width$}"));
                } else {
                    out.push_str(&format!("{cell:<width$}"));
                }
            }
            println!("{}", out.trim_end());
        };
        line(&self.headers);
        println!(
            "{}",
            "-".repeat(widths.iter().sum::<usize>() + 2 * (columns - 1))
        );
        for row in &self.rows {
            line(row);
        }
        if self.rows.is_empty() {
            println!("(none)");
        }
    }
}

/// A measurement against its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Within the target.
    Pass,
    /// Past the warning limit.
    Warn,
    /// Past the critical limit.
    Fail,
    /// Not measured.
    Missing,
}

impl Status {
    /// The status of `current` against `warning` and `critical` limits,
    /// where lower is better (latencies, error rates).
    pub fn lower_is_better(current: Option<f64>, warning: f64, critical: f64) -> Self {
        match current {
            None => Status::Missing,
            Some(v) if v >= critical => Status::Fail,
            Some(v) if v >= warning => Status::Warn,
            Some(_) => Status::Pass,
        }
    }

    /// The status of `current` where higher is better (hit rates,
    /// throughput).
    pub fn higher_is_better(current: Option<f64>, warning: f64, critical: f64) -> Self {
        match current {
            None => Status::Missing,
            Some(v) if v <= critical => Status::Fail,
            Some(v) if v <= warning => Status::Warn,
            Some(_) => Status::Pass,
        }
    }

    /// `PASS`, `WARN`, `FAIL` or `n/a`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Missing => "n/a",
        }
    }

    /// Points out of 100 in a scorecard (not measured: not counted).
    fn points(self) -> Option<f64> {
        match self {
            Status::Pass => Some(100.0),
            Status::Warn => Some(60.0),
            Status::Fail => Some(0.0),
            Status::Missing => None,
        }
    }
}

/// The target-vs-current scorecard with an overall score out of 100.
#[derive(Clone, Debug, Default)]
pub struct Scorecard {
    rows: Vec<(String, String, String, Status, String)>,
}

impl Scorecard {
    /// An empty scorecard.
    pub fn new() -> Self {
        Self::default()
    }

    /// A line: what, its target, the current value, its status and the
    /// system's own word for it ("within SLA", "near capacity", ...).
    pub fn add(
        &mut self,
        name: &str,
        target: impl Into<String>,
        current: impl Into<String>,
        status: Status,
        word: &str,
    ) -> &mut Self {
        self.rows.push((
            name.to_owned(),
            target.into(),
            current.into(),
            status,
            word.to_owned(),
        ));
        self
    }

    /// The mean of the measured lines' points (pass 100, warn 60, fail 0).
    pub fn score(&self) -> f64 {
        let points: Vec<f64> = self.rows.iter().filter_map(|r| r.3.points()).collect();
        points.iter().sum::<f64>() / (points.len() as f64).max(1.0)
    }

    /// The score's word: excellent from 90, good from 75, fair from 50.
    pub fn grade(&self) -> &'static str {
        match self.score() {
            s if s >= 90.0 => "excellent",
            s if s >= 75.0 => "good",
            s if s >= 50.0 => "fair",
            _ => "poor",
        }
    }

    /// Prints it with the overall score.
    pub fn print(&self, title: &str) {
        let mut table = Table::new(title, &["metric", "target", "current", "status", ""]);
        for (name, target, current, status, word) in &self.rows {
            table.row([
                name.clone(),
                target.clone(),
                current.clone(),
                status.as_str().to_owned(),
                word.clone(),
            ]);
        }
        table.print();
        println!("overall score {:.0}/100 ({})", self.score(), self.grade());
    }
}

/// A KPI with its baseline, target and critical level.
#[derive(Clone, Debug)]
pub struct Kpi {
    /// Its name.
    pub name: String,
    /// Its unit, as printed after the numbers.
    pub unit: &'static str,
    /// The value before the change measured.
    pub baseline: f64,
    /// The value to reach.
    pub target: f64,
    /// The value past which it fails.
    pub critical: f64,
    /// The value measured now (`None`: not measured).
    pub current: Option<f64>,
}

impl Kpi {
    /// Pass within the target, warn between target and critical, fail past
    /// critical; the direction follows `critical` against `target`.
    pub fn status(&self) -> Status {
        if self.critical >= self.target {
            Status::lower_is_better(self.current, self.target, self.critical)
        } else {
            Status::higher_is_better(self.current, self.target, self.critical)
        }
    }
}

/// Prints the KPI table: baseline, target, critical, current, status.
pub fn print_kpis(title: &str, kpis: &[Kpi]) {
    let mut table = Table::new(
        title,
        &["KPI", "baseline", "target", "critical", "current", "status"],
    );
    for kpi in kpis {
        let unit = kpi.unit;
        table.row([
            kpi.name.clone(),
            format!("{} {unit}", number(kpi.baseline)),
            format!("{} {unit}", number(kpi.target)),
            format!("{} {unit}", number(kpi.critical)),
            kpi.current
                .map_or("-".to_owned(), |v| format!("{} {unit}", number(v))),
            kpi.status().as_str().to_owned(),
        ]);
    }
    table.print();
}

/// A number with at most two decimals, without trailing zeros.
pub fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// Latency figures of one group of series, in seconds.
#[derive(Clone, Debug, Default)]
pub struct Percentiles {
    /// Observations over the whole run.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The percentiles over the whole run of the histogram `metric`, by the
/// values of the `by` labels; series differing only in other labels (a
/// status, a result) keep the largest one's percentiles and add the counts.
pub fn percentiles(monitor: &Monitor, metric: &str, by: &[&str]) -> BTreeMap<String, Percentiles> {
    let mut groups: BTreeMap<String, (u64, Percentiles)> = BTreeMap::new();
    for histogram in monitor.summary().histograms {
        if histogram.name != metric || histogram.total.count == 0 {
            continue;
        }
        let key: Vec<&str> = by
            .iter()
            .map(|label| histogram.labels.get(*label).map_or("-", String::as_str))
            .collect();
        let total = &histogram.total;
        let entry = groups.entry(key.join(" ")).or_default();
        if total.count > entry.0 {
            entry.0 = total.count;
            entry.1.mean = total.mean;
            entry.1.p50 = total.p50;
            entry.1.p95 = total.p95;
            entry.1.p99 = total.p99;
        }
        entry.1.count += total.count;
    }
    groups.into_iter().map(|(k, (_, p))| (k, p)).collect()
}

/// Prints avg / p50 / p95 / p99 (ms) per group of `metric`'s series, with
/// each group's p95 against `target_ms` when given.
pub fn print_percentiles(
    monitor: &Monitor,
    title: &str,
    metric: &str,
    by: &[&str],
    target_ms: impl Fn(&str) -> Option<f64>,
) {
    let mut table = Table::new(
        title,
        &[
            by.join(" ").as_str(),
            "count",
            "avg ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p95 target",
            "status",
        ],
    );
    for (key, p) in percentiles(monitor, metric, by) {
        let target = target_ms(&key);
        let status = target.map_or(Status::Missing, |t| {
            Status::lower_is_better(Some(p.p95 * 1e3), t, t * 2.0)
        });
        table.row([
            key,
            p.count.to_string(),
            format!("{:.1}", p.mean * 1e3),
            format!("{:.1}", p.p50 * 1e3),
            format!("{:.1}", p.p95 * 1e3),
            format!("{:.1}", p.p99 * 1e3),
            target.map_or("-".to_owned(), |t| format!("< {} ms", number(t))),
            status.as_str().to_owned(),
        ]);
    }
    table.print();
}

/// Prints the hit rate, hits, misses, entries and evictions of each
/// registered cache, against a hit-rate target (percent).
pub fn print_caches(monitor: &Monitor, title: &str, target_percent: f64) {
    let report = monitor.cache_report();
    let mut table = Table::new(
        title,
        &[
            "cache",
            "hit rate",
            "hits",
            "misses",
            "entries",
            "evictions",
            "status",
        ],
    );
    for (name, cache) in report
        .caches
        .iter()
        .chain([(&"all".to_owned(), &report.totals)])
    {
        let requests = cache.hits + cache.misses;
        let rate = (requests > 0).then(|| cache.hits as f64 / requests as f64 * 100.0);
        table.row([
            name.clone(),
            rate.map_or("-".to_owned(), |r| format!("{r:.1} %")),
            cache.hits.to_string(),
            cache.misses.to_string(),
            cache.entry_count.to_string(),
            cache.evictions.to_string(),
            Status::higher_is_better(rate, target_percent, target_percent - 20.0)
                .as_str()
                .to_owned(),
        ]);
    }
    table.print();
}

/// Prints every change of alert state since `since`, and the counts of
/// alerts that fired and resolved; returns them (fired, resolved).
pub fn print_alerts(monitor: &Monitor, since: SystemTime) -> (usize, usize) {
    let mut table = Table::new(
        "Alerts fired and resolved",
        &["at s", "alert", "severity", "from -> to", "value"],
    );
    let (mut fired, mut resolved) = (0, 0);
    for event in monitor.alert_history() {
        let at = event
            .timestamp
            .duration_since(since)
            .map_or(0.0, |d| d.as_secs_f64());
        match event.to.as_str() {
            "firing" if event.from != "firing" => fired += 1,
            "resolved" | "inactive" if event.from == "firing" => resolved += 1,
            _ => {}
        }
        table.row([
            format!("{at:.1}"),
            event.name.clone(),
            event.severity.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{} -> {}", event.from, event.to),
            event.value.map_or("-".to_owned(), number),
        ]);
    }
    table.print();
    println!("{fired} fired, {resolved} resolved");
    for alert in monitor.active_alerts() {
        println!(
            "still firing: {} ({}): {}",
            alert.name, alert.severity, alert.message
        );
    }
    (fired, resolved)
}

/// Prints the health score with its components, then the recommendations.
pub fn print_health(monitor: &Monitor) {
    let health = monitor.health();
    let mut table = Table::new(
        &format!("Health score {:.1}/100 ({})", health.score, health.status),
        &[
            "component",
            "value",
            "warning",
            "critical",
            "status",
            "penalty",
        ],
    );
    for component in &health.components {
        table.row([
            component.name.clone(),
            component.value.map_or("-".to_owned(), number),
            component
                .target
                .as_ref()
                .map_or("-".to_owned(), |t| number(t.warning)),
            component
                .target
                .as_ref()
                .map_or("-".to_owned(), |t| number(t.critical)),
            component.status.to_string(),
            number(component.penalty),
        ]);
    }
    table.print();
    let recommendations = monitor.recommendations();
    heading(&format!("Recommendations ({})", recommendations.len()));
    for r in &recommendations {
        let category = format!("{:?}", r.category).to_lowercase();
        println!("[{} / {category}] {}", r.priority, r.title);
        println!("    {}", r.description);
        println!("    impact: {}; effort: {}", r.impact, r.effort);
        println!("    do: {}", r.implementation);
    }
    if recommendations.is_empty() {
        println!("(none)");
    }
}

/// Prints each pipeline step's mean and p95 time (the `function` label of
/// `metric`), its share of the steps' total mean, and names the bottleneck.
pub fn print_pipeline(monitor: &Monitor, title: &str, metric: &str, steps: &[&str]) {
    let figures = percentiles(monitor, metric, &["function"]);
    let steps: Vec<(&str, &Percentiles)> = steps
        .iter()
        .filter_map(|step| figures.get(*step).map(|p| (*step, p)))
        .collect();
    let total: f64 = steps.iter().map(|(_, p)| p.mean).sum();
    let mut table = Table::new(title, &["step", "runs", "mean ms", "p95 ms", "share"]);
    for (step, p) in &steps {
        table.row([
            (*step).to_owned(),
            p.count.to_string(),
            format!("{:.1}", p.mean * 1e3),
            format!("{:.1}", p.p95 * 1e3),
            format!("{:.1} %", p.mean / total.max(1e-12) * 100.0),
        ]);
    }
    table.print();
    if let Some((step, p)) = steps.iter().max_by(|a, b| a.1.mean.total_cmp(&b.1.mean)) {
        println!(
            "bottleneck: {step} ({:.0} % of the pipeline's {:.0} ms)",
            p.mean / total.max(1e-12) * 100.0,
            total * 1e3
        );
    }
}

/// Seconds shown in milliseconds with one decimal.
fn millis(secs: f64) -> String {
    format!("{:.1} ms", secs * 1e3)
}

/// Prints benchmark results, one row each: iterations, errors, mean,
/// median, p95, p99, min, max and stddev.
pub fn print_benches(title: &str, reports: &[vigil::load::BenchReport]) {
    let mut table = Table::new(
        title,
        &[
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
        ],
    );
    for report in reports {
        let mut cells = vec![
            report.name.clone(),
            report.iterations.to_string(),
            report.errors.to_string(),
        ];
        cells.extend(
            [
                report.mean,
                report.median,
                report.p95,
                report.p99,
                report.min,
                report.max,
                report.stddev,
            ]
            .map(|d| millis(d.as_secs_f64())),
        );
        table.row(cells);
    }
    table.print();
}

/// Prints measured values against their baseline, target and critical
/// levels with each verdict (pass, warn, fail), then the overall verdict.
pub fn print_comparison(title: &str, comparison: &vigil::load::Comparison) {
    use vigil::load::Direction;
    let mut table = Table::new(
        title,
        &[
            "KPI",
            "baseline",
            "target",
            "critical",
            "measured",
            "vs baseline",
            "verdict",
        ],
    );
    for result in &comparison.results {
        let kpi = &result.kpi;
        let unit = kpi.unit.as_str();
        let (better, worse) = match kpi.direction {
            Direction::LowerIsBetter => ("<=", ">"),
            Direction::HigherIsBetter => (">=", "<"),
        };
        let level = |prefix: &str, value: Option<f64>| {
            value.map_or("-".to_owned(), |v| format!("{prefix}{} {unit}", number(v)))
        };
        let measured = result.value.is_finite();
        table.row([
            kpi.name.clone(),
            level("", kpi.baseline),
            level(better, kpi.target),
            level(worse, kpi.critical),
            if measured {
                format!("{} {unit}", number(result.value))
            } else {
                "-".to_owned()
            },
            result
                .change
                .filter(|_| measured)
                .map_or("-".to_owned(), |c| format!("{c:+.0} %")),
            if measured {
                result.verdict.to_string()
            } else {
                format!("{} (not measured)", result.verdict)
            },
        ]);
    }
    table.print();
    println!("overall verdict: {}", comparison.verdict());
}

/// Prints a load test run with `vigil::load`: a row per stage or step
/// (users, requests, errors, rate, p50, p95, p99), why it stopped and,
/// for a stress test, its breaking point.
pub fn print_load_test(title: &str, report: &vigil::load::LoadReport) {
    let mut table = Table::new(
        title,
        &[
            "users", "for", "requests", "errors", "error %", "req/s", "p50", "p95", "p99",
        ],
    );
    for stage in &report.stages {
        let users = if stage.from == stage.to {
            number(stage.to)
        } else {
            format!("{} -> {}", number(stage.from), number(stage.to))
        };
        table.row([
            users,
            format!("{:.1} s", stage.duration.as_secs_f64()),
            stage.requests.to_string(),
            stage.errors.to_string(),
            format!("{:.1} %", stage.error_ratio * 100.0),
            format!("{:.0}", stage.rate),
            millis(stage.latency.p50),
            millis(stage.latency.p95),
            millis(stage.latency.p99),
        ]);
    }
    table.print();
    println!(
        "{} requests in {:.1} s, {:.2} % errors, {:.0} req/s; stopped: {}",
        report.requests,
        report.duration.as_secs_f64(),
        report.error_ratio * 100.0,
        report.rate,
        report.stopped_by
    );
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}: {count}"))
        .collect();
    if !statuses.is_empty() {
        println!("statuses: {}", statuses.join(", "));
    }
}
