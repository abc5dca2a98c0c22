//! Runs each of the five system examples with a short load and checks that
//! it exits 0 and prints its system's report: the sections every report
//! has, and what is particular to that system (for the examples whose
//! degradation fires an alert, that the alert fired and resolved).
//!
//! The examples are built (or found fresh) by `cargo build --example` from
//! here, once for all the tests, so `cargo test -p vigil-examples --test
//! system_examples` alone runs the current code. The tests run in
//! parallel; the longest (ai_dev_ecosystem, 14 s of load, 6 to 20 s of
//! settling and a stress test of about 3 s) bounds the file's run time.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The five system examples.
const EXAMPLES: [&str; 5] = [
    "opinion_market",
    "samplemind",
    "ai_dev_ecosystem",
    "tta_platform",
    "enterprise_agents",
];

/// The target directory's profile directory this test runs from
/// (`target/debug` or `target/release`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("the target directory")
        .to_path_buf()
}

/// Builds the five examples with the profile of this test, once: an
/// error here names the example that does not compile.
fn build_examples() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "-p", "vigil-examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        for name in EXAMPLES {
            cargo.args(["--example", name]);
        }
        let profile = profile_dir();
        if let Some(target) = profile.parent() {
            cargo.arg("--target-dir").arg(target);
        }
        if profile.ends_with("release") {
            cargo.arg("--release");
        }
        let output = cargo.output().map_err(|e| format!("cargo: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    });
    if let Err(error) = built {
        panic!("the examples do not build:\n{error}");
    }
}

/// The example binary `name`, built.
fn example(name: &str) -> PathBuf {
    build_examples();
    let path = profile_dir()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// Runs `name` with `seconds` of load and returns its output, checking the
/// exit status, that it ended within 60 s and the sections every system
/// report has.
fn run(name: &str, seconds: u32) -> String {
    let example = example(name);
    let started = Instant::now();
    let output = Command::new(example)
        .args(["--duration", &seconds.to_string()])
        .env_remove("PORT")
        .env_remove("VIGIL_API_TOKEN")
        .output()
        .expect("the example runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} exited with {}:\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        took < Duration::from_secs(60),
        "{name} took {took:?} with --duration {seconds}"
    );
    assert_sections(
        name,
        &stdout,
        &[
            "Load (client side)",
            "Alerts fired and resolved",
            "Health score",
            "Recommendations",
            "/api/v1/performance/metrics/summary",
            "/status",
            "/metrics",
        ],
    );
    stdout
}

/// Checks that `stdout` has every one of `sections`.
fn assert_sections(name: &str, stdout: &str, sections: &[&str]) {
    for section in sections {
        assert!(
            stdout.contains(section),
            "{name} printed no {section:?}:\n{stdout}"
        );
    }
}

/// The rows of the report's "Alerts fired and resolved" table about
/// `alert`: its `from -> to` transitions, in order.
fn transitions(stdout: &str, alert: &str) -> Vec<String> {
    let table = stdout
        .split("Alerts fired and resolved")
        .nth(1)
        .and_then(|rest| rest.split("fired, ").next())
        .unwrap_or_default();
    table
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some(alert))
        .filter_map(|line| {
            let (from, to) = line.split_once(" -> ")?;
            let from = from.split_whitespace().last()?;
            let to = to.split_whitespace().next()?;
            Some(format!("{from} -> {to}"))
        })
        .collect()
}

/// The rows of the table titled `title` (from its heading to the next
/// blank line), below its header and rule.
fn table<'a>(stdout: &'a str, title: &str) -> Vec<&'a str> {
    let Some((_, rest)) = stdout.split_once(title) else {
        return Vec::new();
    };
    rest.lines()
        .skip(4) // the rest of the title line, `===`, the header and `---`
        .take_while(|line| !line.trim().is_empty())
        .collect()
}

/// Checks that the comparison titled `title` judged every KPI in `kpis`
/// (pass, warn or fail) and printed an overall verdict.
fn assert_comparison(name: &str, stdout: &str, title: &str, kpis: &[&str]) {
    let rows = table(stdout, title);
    for kpi in kpis {
        let row = rows.iter().find(|row| row.starts_with(kpi));
        assert!(
            row.is_some_and(|row| ["pass", "warn", "fail"]
                .iter()
                .any(|verdict| row.split_whitespace().any(|word| word == *verdict))),
            "{name}: {title:?} has no verdict for {kpi:?}: {rows:#?}\n{stdout}"
        );
    }
    assert!(
        rows.iter().any(|row| row.starts_with("overall verdict: ")),
        "{name}: {title:?} has no overall verdict: {rows:#?}"
    );
}

/// Checks that `alert` started firing and later resolved (on a value, not
/// for want of data) and is not left firing.
fn assert_fired_and_resolved(name: &str, stdout: &str, alert: &str) {
    let seen = transitions(stdout, alert);
    let fired = seen
        .iter()
        .position(|t| t.ends_with("-> firing") && !t.starts_with("firing"));
    let resolved = seen.iter().rposition(|t| t.ends_with("-> resolved"));
    assert!(
        matches!((fired, resolved), (Some(f), Some(r)) if f < r),
        "{name}: {alert} did not fire and then resolve: {seen:?}\n{stdout}"
    );
    assert!(
        !seen.last().is_some_and(|t| t.ends_with("-> no_data")),
        "{name}: {alert} ended in no_data: {seen:?}\n{stdout}"
    );
    assert!(
        !stdout.contains(&format!("still firing: {alert} ")),
        "{name}: {alert} still fires:\n{stdout}"
    );
}

#[test]
fn opinion_market_prints_its_report() {
    let stdout = run("opinion_market", 4);
    let scorecard = [
        "Scorecard: target vs current",
        "overall score",
        "Cache hit rate per cache",
    ];
    assert_sections("opinion_market", &stdout, &scorecard);
    assert!(
        stdout.contains("Cleared "),
        "the cold-cache step ran:\n{stdout}"
    );
    assert!(stdout.contains("GET /api/v1/markets/{id}"), "{stdout}");
}

#[test]
fn samplemind_prints_its_report() {
    let stdout = run("samplemind", 4);
    let scorecard = [
        "Scorecard: target vs current",
        "overall score",
        "Cache hit rate per cache",
    ];
    assert_sections("samplemind", &stdout, &scorecard);
    assert!(stdout.contains("bottleneck: "), "{stdout}");
    assert!(stdout.contains("Time a hit saves"), "{stdout}");
    assert!(
        stdout.contains("autoscaling (CPU 70 %, memory 80 %)"),
        "{stdout}"
    );
    // The load-test matrix: a row per level, then its three named levels.
    let matrix = stdout
        .split_once("Load-test matrix: GET /api/v1/files/{id}")
        .map(|(_, matrix)| matrix)
        .unwrap_or_else(|| panic!("no load-test matrix:\n{stdout}"));
    for users in ["10", "50", "100", "200", "400", "600"] {
        assert!(
            matrix
                .lines()
                .any(|line| line.split_whitespace().next() == Some(users)),
            "no row for {users} users in the matrix:\n{matrix}"
        );
    }
    for (name, line_start) in [
        (
            "optimal",
            "optimal (best throughput, p95 < 200 ms, <= 1 % errors): ",
        ),
        ("maximum", "maximum (most users, <= 1 % errors): "),
        ("breaking point", "breaking point (over 5 % errors): "),
    ] {
        let line = matrix
            .lines()
            .find_map(|line| line.strip_prefix(line_start))
            .unwrap_or_else(|| panic!("the matrix names no {name}:\n{matrix}"));
        assert!(
            line == "none" || line.starts_with("none up to 600 users") || line.contains(" users ("),
            "{name} is neither a level nor none: {line}"
        );
    }
}

#[test]
fn ai_dev_ecosystem_reports_per_model_and_its_slow_model_alert_resolves() {
    // Its full 14 s: the slowed model's answers take about 8 s each, so a
    // shorter run ends its slowdown before they move the minute's average.
    let stdout = run("ai_dev_ecosystem", 14);
    assert_sections(
        "ai_dev_ecosystem",
        &stdout,
        &[
            "Per-model statistics",
            "coder-small",
            "coder-large",
            "KPIs",
            "Availability",
            "health polls (every 30 simulated s)",
            "Prompt cache levels",
            "prompt_memory",
            "prompt_redis",
            "prompt_db",
        ],
    );
    assert_fired_and_resolved("ai_dev_ecosystem", &stdout, "AiResponseTime");
    assert_comparison(
        "ai_dev_ecosystem",
        &stdout,
        "KPIs: baseline / target / critical",
        &[
            "AI response (worst model average)",
            "DB query p95 (worst query)",
            "dashboard load p95",
            "CPU",
            "memory",
            "error rate",
        ],
    );
    // The stress test: a row per step of 10 more developers, from 10, and
    // its breaking point, or that none was reached up to 100.
    let steps = table(&stdout, "Stress test: GET /api/v1/projects/{id}");
    // A step's row: `users  0.5 s  requests ...`; the totals follow.
    let users: Vec<u32> = steps
        .iter()
        .map_while(|row| {
            let cells: Vec<&str> = row.split_whitespace().collect();
            (cells.get(2) == Some(&"s")).then(|| cells[0].parse().ok())?
        })
        .collect();
    assert!(
        !users.is_empty() && users.iter().zip(1..).all(|(u, step)| *u == 10 * step),
        "stress steps: {steps:#?}\n{stdout}"
    );
    let point = stdout
        .lines()
        .find_map(|line| line.strip_prefix("breaking point: "))
        .unwrap_or_else(|| panic!("no breaking point line:\n{stdout}"));
    if point.starts_with("none reached") {
        assert_eq!(users.last(), Some(&100), "{steps:#?}");
    } else {
        let failed: u32 = point
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("breaking point {point:?}"));
        assert_eq!(users.last(), Some(&failed), "{steps:#?}\n{point}");
        assert!(point.contains("last good step: "), "{point}");
    }
}

#[test]
fn tta_platform_reports_its_targets_benchmark_and_alerts() {
    // Its full 15 s: the 5xx alert's 2 minutes of `for` and its recovery
    // after the degradation need the ticks.
    let stdout = run("tta_platform", 15);
    assert_sections(
        "tta_platform",
        &stdout,
        &[
            "p95 targets over the whole run",
            "overall score",
            "tta_therapeutic_processing_seconds by intervention_type",
            "Slow-query log (> 100 ms)",
            "Caches (user:{id}",
            "Webhook bodies",
        ],
    );
    assert_fired_and_resolved("tta_platform", &stdout, "TtaApiLatencyP95");
    assert_fired_and_resolved("tta_platform", &stdout, "TtaServerErrors");
    // The benchmark: its statistics in columns, a row with every one.
    let bench_title = "Benchmark: therapeutic processing";
    assert_sections("tta_platform", &stdout, &[bench_title]);
    let header = stdout
        .split(bench_title)
        .nth(1)
        .and_then(|rest| rest.lines().nth(2))
        .unwrap_or_default();
    for stat in [
        "iterations",
        "mean",
        "median",
        "p95",
        "p99",
        "min",
        "max",
        "stddev",
    ] {
        assert!(
            header.split_whitespace().any(|column| column == stat),
            "the benchmark has no {stat} column: {header:?}\n{stdout}"
        );
    }
    let rows = table(&stdout, bench_title);
    let row = rows
        .iter()
        .find(|row| row.starts_with("therapeutic processing"))
        .unwrap_or_else(|| panic!("no benchmark row: {rows:#?}\n{stdout}"));
    let iterations: u64 = row
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("iterations in {row:?}"));
    assert!((10..=1_000).contains(&iterations), "{row}");
    assert_eq!(
        row.matches(" ms").count(),
        7,
        "seven statistics in ms: {row}"
    );
    if iterations < 1_000 {
        assert!(
            stdout.contains("of the suite's 1000 iterations"),
            "{stdout}"
        );
    }
    assert_comparison(
        "tta_platform",
        &stdout,
        "Benchmark against the targets",
        &["therapeutic processing p95", "benchmark errors"],
    );
    assert!(
        table(&stdout, "Benchmark against the targets")
            .iter()
            .any(|row| row.starts_with("therapeutic processing p95") && row.contains("<=500 ms")),
        "the p95 is judged against 500 ms:\n{stdout}"
    );
}

#[test]
fn enterprise_agents_reports_its_layers_and_its_three_alerts_resolve() {
    let stdout = run("enterprise_agents", 10);
    assert_sections(
        "enterprise_agents",
        &stdout,
        &[
            "Targets over the whole run",
            "overall score",
            "Key metrics",
            "DB pool available",
            "replication lag",
            "Cache layers",
            "local_lru",
            "Latency by route",
        ],
    );
    for alert in ["HighP95Latency", "HighErrorRate", "LowCacheHitRate"] {
        assert_fired_and_resolved("enterprise_agents", &stdout, alert);
    }
    // The staged load test: its three stages, then its checks judged.
    let stages = table(&stdout, "Staged load test: 1 s -> 50 users");
    let users: Vec<&str> = stages
        .iter()
        .filter(|row| row.contains(" -> "))
        .filter_map(|row| row.split("  ").next())
        .collect();
    assert_eq!(
        users,
        ["0 -> 50", "50 -> 100", "100 -> 0"],
        "{stages:#?}\n{stdout}"
    );
    assert_comparison(
        "enterprise_agents",
        &stdout,
        "Staged load test checks",
        &[
            "failed checks (status not 200/201, or >= 500 ms)",
            "p95",
            "p99",
        ],
    );
}
