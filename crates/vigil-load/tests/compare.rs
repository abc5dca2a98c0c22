//! KPI verdicts at their boundaries, in both directions, and comparisons
//! built from load and benchmark reports.

use std::time::Duration;

use vigil_load::{Bench, Comparison, Kpi, LoadTest, Measured, Stat, Verdict};

#[test]
fn lower_is_better_verdicts_at_the_boundaries() {
    // The AI platform's DB query KPI: 100 ms / 50 ms / > 500 ms.
    let kpi = Kpi::new("DB query", "ms")
        .baseline(100.0)
        .target(50.0)
        .critical(500.0);
    assert_eq!(kpi.verdict(0.0), Verdict::Pass);
    assert_eq!(
        kpi.verdict(50.0),
        Verdict::Pass,
        "meeting the target passes"
    );
    assert_eq!(kpi.verdict(50.000_001), Verdict::Warn);
    assert_eq!(kpi.verdict(500.0), Verdict::Warn, "critical is exclusive");
    assert_eq!(kpi.verdict(500.000_001), Verdict::Fail);
    assert_eq!(kpi.verdict(f64::NAN), Verdict::Fail);
    assert_eq!(kpi.verdict(f64::INFINITY), Verdict::Fail);
}

#[test]
fn higher_is_better_verdicts_at_the_boundaries() {
    // Cache hit rate: target 80 %, critical below 50 %.
    let kpi = Kpi::new("cache hit rate", "%")
        .target(80.0)
        .critical(50.0)
        .higher_is_better();
    assert_eq!(kpi.verdict(100.0), Verdict::Pass);
    assert_eq!(kpi.verdict(80.0), Verdict::Pass);
    assert_eq!(kpi.verdict(79.9), Verdict::Warn);
    assert_eq!(kpi.verdict(50.0), Verdict::Warn);
    assert_eq!(kpi.verdict(49.9), Verdict::Fail);
}

#[test]
fn missing_levels_judge_by_what_is_set() {
    let only_critical = Kpi::new("memory", "%").critical(95.0);
    assert_eq!(only_critical.verdict(94.0), Verdict::Pass);
    assert_eq!(only_critical.verdict(96.0), Verdict::Fail);
    let only_target = Kpi::new("CPU", "%").target(50.0);
    assert_eq!(only_target.verdict(70.0), Verdict::Warn);
}

#[test]
fn the_comparison_table_shows_every_level_and_the_worst_verdict() {
    let mut comparison = Comparison::new();
    assert_eq!(comparison.verdict(), Verdict::Pass);
    let kpis = [
        (
            Kpi::new("AI response", "s")
                .baseline(5.0)
                .target(3.0)
                .critical(10.0),
            2.5,
        ),
        (
            Kpi::new("CPU", "%")
                .baseline(70.0)
                .target(50.0)
                .critical(90.0),
            91.0,
        ),
        (
            Kpi::new("throughput", "req/s")
                .target(1_000.0)
                .higher_is_better(),
            1_200.0,
        ),
    ];
    let verdicts: Vec<Verdict> = kpis
        .into_iter()
        .map(|(kpi, value)| comparison.add(kpi, value))
        .collect();
    assert_eq!(verdicts, [Verdict::Pass, Verdict::Fail, Verdict::Pass]);
    assert_eq!(comparison.verdict(), Verdict::Fail);
    assert!(!comparison.passed());
    let table = comparison.to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("KPI"), "{table}");
    assert!(
        lines[1].contains("<= 3") && lines[1].contains("> 10") && lines[1].contains("-50.0 %"),
        "{table}"
    );
    assert!(lines[2].ends_with("fail"), "{table}");
    assert!(
        lines[3].contains(">= 1000") && lines[3].ends_with("pass"),
        "{table}"
    );
    assert_eq!(lines[4], "overall: fail");
    let json = serde_json::to_value(&comparison).unwrap();
    assert_eq!(json["results"][1]["verdict"], "fail");
}

#[tokio::test(start_paused = true)]
async fn kpis_read_their_statistic_from_load_and_bench_reports() {
    let report = LoadTest::new(|| async {
        tokio::time::sleep(Duration::from_millis(120)).await;
        Ok::<_, ()>(())
    })
    .rate(50.0)
    .duration(Duration::from_secs(10))
    .run()
    .await
    .unwrap();
    assert!((report.stat(Stat::P95) - 120.0).abs() < 0.2);
    // Throughput: the 494 requests completed within the 10 s (the last six
    // complete after it).
    assert!((report.stat(Stat::Rate) - 49.4).abs() < 1e-9, "{report}");
    assert_eq!(report.sent_rate, 50.0);
    assert_eq!(report.stat(Stat::ErrorRate), 0.0);

    let mut comparison = Comparison::new();
    let p95 = Kpi::of("api p95", Stat::P95)
        .baseline(250.0)
        .target(100.0)
        .critical(500.0);
    assert_eq!(p95.unit, "ms");
    assert_eq!(comparison.measure(p95, &report).unwrap(), Verdict::Warn);
    let rate = Kpi::of("rate", Stat::Rate).target(45.0).critical(10.0);
    assert_eq!(comparison.measure(rate, &report).unwrap(), Verdict::Pass);

    let bench = Bench::new("call")
        .iterations(100)
        .run(|| async { tokio::time::sleep(Duration::from_millis(4)).await })
        .await;
    let median = Kpi::of("call median", Stat::Median)
        .target(5.0)
        .critical(10.0);
    assert_eq!(comparison.measure(median, &bench).unwrap(), Verdict::Pass);
    assert!((bench.stat(Stat::Rate) - 250.0).abs() < 0.5);
    assert_eq!(comparison.results.len(), 3);
}
