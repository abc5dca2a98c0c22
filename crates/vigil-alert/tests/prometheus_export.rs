//! Prometheus rule export: the PromQL written for each kind of rule, the
//! warnings for what Prometheus cannot say, and `promtool check rules`.

#![cfg(feature = "prometheus")]

mod prometheus_common;

use std::time::Duration;

use prometheus_common::check_rules;
use vigil_alert::prometheus::{
    HistogramExport, PrometheusExport, PrometheusExporter, to_prometheus_rules,
};
use vigil_alert::rule::Expr;
use vigil_alert::{
    Aggregation, Baseline, Comparison, Matcher, NoDataPolicy, Rule, RuleBuilder, Selector, Severity,
};

const FIVE_MINUTES: Duration = Duration::from_secs(300);

fn rule(b: RuleBuilder) -> Rule {
    b.build().expect("test rules are valid")
}

/// The `expr:` lines of an export, unquoted.
fn exprs(export: &PrometheusExport) -> Vec<String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&export.yaml).expect("valid YAML");
    doc["groups"][0]["rules"]
        .as_sequence()
        .expect("a rules list")
        .iter()
        .map(|r| r["expr"].as_str().expect("an expr").to_owned())
        .collect()
}

fn only_expr(r: Rule) -> String {
    let export = to_prometheus_rules(&[r]);
    let e = exprs(&export);
    assert_eq!(e.len(), 1, "{}", export.yaml);
    e.into_iter().next().unwrap()
}

fn high(b: RuleBuilder, op: Comparison, v: f64) -> Rule {
    rule(b.threshold(Severity::High, op, v))
}

#[test]
fn gauges_and_rates_map_to_selectors_and_rate() {
    let g = Rule::builder("A")
        .gauge("queue_depth")
        .matcher(Matcher::regex("queue", "email|sms").unwrap());
    assert_eq!(
        only_expr(high(g, Comparison::GreaterOrEqual, 100.0)),
        r#"queue_depth{queue=~"email|sms"} >= 100"#
    );
    let r = Rule::builder("A")
        .rate("http_requests_total", FIVE_MINUTES)
        .matcher(Matcher::not_equal("code", "200"));
    assert_eq!(
        only_expr(high(r, Comparison::Greater, 10.0)),
        r#"rate(http_requests_total{code!="200"}[5m]) > 10"#
    );
}

#[test]
fn aggregations_wrap_the_per_series_value() {
    let base = || Rule::builder("A").gauge("system_cpu_usage_ratio");
    for (agg, by, want) in [
        (
            Aggregation::Max,
            vec![],
            "max(system_cpu_usage_ratio) > 0.9",
        ),
        (
            Aggregation::Avg,
            vec!["host"],
            "avg by (host) (system_cpu_usage_ratio) > 0.9",
        ),
        (
            Aggregation::Min,
            vec!["host", "dc"],
            "min by (host, dc) (system_cpu_usage_ratio) > 0.9",
        ),
        (
            Aggregation::Sum,
            vec![],
            "sum(system_cpu_usage_ratio) > 0.9",
        ),
    ] {
        let r = high(base().aggregate(agg).by(by), Comparison::Greater, 0.9);
        assert_eq!(only_expr(r), want);
    }
}

#[test]
fn ratios_pair_series_like_vigil() {
    let summed = Rule::builder("E")
        .error_ratio("function_calls_total", "result", "error", FIVE_MINUTES)
        .aggregate(Aggregation::Sum)
        .by(["function"]);
    assert_eq!(
        only_expr(high(summed, Comparison::Greater, 0.05)),
        r#"sum by (function) (rate(function_calls_total{result="error"}[5m])) / sum by (function) (rate(function_calls_total[5m])) > 0.05"#
    );
    let overall = Rule::builder("E")
        .error_ratio("function_calls_total", "result", "error", FIVE_MINUTES)
        .aggregate(Aggregation::Sum);
    assert_eq!(
        only_expr(high(overall, Comparison::Greater, 0.05)),
        r#"sum(rate(function_calls_total{result="error"}[5m])) / sum(rate(function_calls_total[5m])) > 0.05"#
    );
    let per_series =
        Rule::builder("E").error_ratio("function_calls_total", "result", "error", FIVE_MINUTES);
    assert_eq!(
        only_expr(high(per_series, Comparison::Greater, 0.05)),
        r#"sum without (result) (rate(function_calls_total{result="error"}[5m])) / sum without (result) (rate(function_calls_total[5m])) > 0.05"#
    );
    let two_metrics = Rule::builder("E")
        .ratio(
            Selector::new("errors_total"),
            Selector::new("requests_total"),
            FIVE_MINUTES,
        )
        .aggregate(Aggregation::Max)
        .by(["job"]);
    assert_eq!(
        only_expr(high(two_metrics, Comparison::Greater, 0.05)),
        "max by (job) (rate(errors_total[5m]) / rate(requests_total[5m])) > 0.05"
    );
}

#[test]
fn lower_bound_ratios_count_a_missing_numerator_as_zero() {
    let hits = Rule::builder("LowHitRatio")
        .ratio(
            Selector::new("cache_requests_total").matcher(Matcher::equal("result", "hit")),
            Selector::new("cache_requests_total"),
            FIVE_MINUTES,
        )
        .ignoring(["result"])
        .aggregate(Aggregation::Sum)
        .by(["cache"]);
    assert_eq!(
        only_expr(high(hits, Comparison::Less, 0.7)),
        r#"(sum by (cache) (rate(cache_requests_total{result="hit"}[5m])) or sum by (cache) (rate(cache_requests_total[5m])) * 0) / sum by (cache) (rate(cache_requests_total[5m])) < 0.7"#
    );
}

#[test]
fn histograms_read_summaries_or_buckets_and_say_which() {
    let p95 = high(
        Rule::builder("L")
            .histogram_quantile("http_request_duration_seconds", 0.95, FIVE_MINUTES)
            .matcher(Matcher::equal("function", "search")),
        Comparison::Greater,
        0.2,
    );
    let summary = to_prometheus_rules(std::slice::from_ref(&p95));
    assert_eq!(
        exprs(&summary),
        [
            r#"max without (quantile) (http_request_duration_seconds{function="search",quantile="0.95"}) > 0.2"#
        ]
    );
    assert!(
        summary
            .yaml
            .contains("# http_request_duration_seconds: read as a vigil summary")
    );
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let buckets = PrometheusExporter::new()
        .histograms(HistogramExport::Buckets)
        .export(std::slice::from_ref(&p95));
    assert_eq!(
        exprs(&buckets),
        [
            r#"histogram_quantile(0.95, rate(http_request_duration_seconds_bucket{function="search"}[5m])) > 0.2"#
        ]
    );
    assert!(buckets.yaml.contains("read from classic buckets"));

    let mean = high(
        Rule::builder("L").histogram_mean("http_request_duration_seconds", FIVE_MINUTES),
        Comparison::Greater,
        0.1,
    );
    assert_eq!(
        only_expr(mean),
        "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m]) > 0.1"
    );
    let count = high(
        Rule::builder("L").histogram(
            "http_request_duration_seconds",
            vigil_alert::HistogramStat::Count,
            FIVE_MINUTES,
        ),
        Comparison::Less,
        1.0,
    );
    assert_eq!(
        only_expr(count),
        "increase(http_request_duration_seconds_count[5m]) < 1"
    );
}

#[test]
fn histogram_max_is_approximate_and_warned() {
    let max = high(
        Rule::builder("SlowestCall").histogram_max("http_request_duration_seconds", FIVE_MINUTES),
        Comparison::Greater,
        2.0,
    );
    for (h, want) in [
        (
            HistogramExport::Summary,
            r#"max without (quantile) (http_request_duration_seconds{quantile="1"}) > 2"#,
        ),
        (
            HistogramExport::Buckets,
            "histogram_quantile(1, rate(http_request_duration_seconds_bucket[5m])) > 2",
        ),
    ] {
        let export = PrometheusExporter::new()
            .histograms(h)
            .export(std::slice::from_ref(&max));
        assert_eq!(exprs(&export), [want]);
        assert_eq!(export.warnings.len(), 1);
        assert!(
            export.warnings[0].starts_with(
                "rule \"SlowestCall\": histogram max over 5m has no exact Prometheus equivalent"
            ),
            "{:?}",
            export.warnings
        );
        check_rules(&export.yaml);
    }
}

#[test]
fn one_alerting_rule_per_threshold_with_severity_for_and_keep_firing_for() {
    let r = rule(
        Rule::builder("HighErrorRate")
            .gauge("error_ratio")
            .threshold(Severity::Critical, Comparison::Greater, 0.2)
            .threshold(Severity::Medium, Comparison::Greater, 0.05)
            .for_duration(Duration::from_secs(90))
            .keep_firing_for(Duration::from_secs(3600))
            .label("team", "payments")
            .annotation("summary", "{{ $labels.job }} fails {{ $value }} of calls")
            .annotation("runbook_url", "https://example.com/runbooks/it's-broken"),
    );
    let export = to_prometheus_rules(&[r]);
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&export.yaml).unwrap();
    let group = &doc["groups"][0];
    assert_eq!(group["name"], "vigil");
    let rules = group["rules"].as_sequence().unwrap();
    assert_eq!(rules.len(), 2);
    for (r, (severity, limit)) in rules.iter().zip([("medium", "0.05"), ("critical", "0.2")]) {
        assert_eq!(r["alert"], "HighErrorRate");
        assert_eq!(
            r["expr"].as_str().unwrap(),
            format!("error_ratio > {limit}")
        );
        assert_eq!(r["for"], "1m30s");
        assert_eq!(r["keep_firing_for"], "1h");
        assert_eq!(r["labels"]["severity"], severity);
        assert_eq!(r["labels"]["team"], "payments");
        assert_eq!(
            r["annotations"]["summary"],
            "{{ $labels.job }} fails {{ $value }} of calls"
        );
        assert_eq!(
            r["annotations"]["runbook_url"],
            "https://example.com/runbooks/it's-broken"
        );
    }
    // Two severities with `for`: Prometheus times each on its own.
    assert_eq!(export.warnings.len(), 1);
    assert!(export.warnings[0].contains("counts `for` from the first breach"));
    check_rules(&export.yaml);
}

#[test]
fn features_without_an_equivalent_are_commented_and_warned() {
    let r = rule(
        Rule::builder("DiskFull")
            .gauge("system_disk_usage_ratio")
            .threshold(Severity::Critical, Comparison::Greater, 0.95)
            .recover_below(0.9)
            .no_data(NoDataPolicy::Alerting)
            .escalate_after(Duration::from_secs(1800))
            .escalate_to("pager"),
    );
    let export = to_prometheus_rules(&[r]);
    let w = &export.warnings;
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w.iter().all(|w| w.starts_with("rule \"DiskFull\": ")));
    assert!(w[0].contains("recovery threshold `< 0.9` (hysteresis) has no Prometheus equivalent"));
    assert!(w[1].contains("escalation after 30m has no Prometheus equivalent"));
    assert!(w[1].contains("`pager`"));
    assert!(w[2].contains("`no_data: alerting` is not exported"));
    assert!(w[2].contains("absent(system_disk_usage_ratio)"));
    // Each warning is also a comment right above the rule it is about.
    let lines: Vec<&str> = export.yaml.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "- alert: DiskFull")
        .unwrap();
    let indent = &lines[at][..lines[at].len() - lines[at].trim_start().len()];
    assert!(!indent.is_empty(), "rules are indented: {}", export.yaml);
    let comments: Vec<&str> = lines[..at]
        .iter()
        .rev()
        .take_while(|l| l.strip_prefix(indent).is_some_and(|c| c.starts_with('#')))
        .copied()
        .collect();
    assert_eq!(comments.len(), 3, "{}", export.yaml);
    for warning in w {
        let text = warning.trim_start_matches("rule \"DiskFull\": ");
        assert!(
            comments.iter().any(|c| c.ends_with(text)),
            "missing comment for {text}\n{}",
            export.yaml
        );
    }
    check_rules(&export.yaml);

    let keep = rule(
        Rule::builder("Stale")
            .gauge("x")
            .threshold(Severity::Low, Comparison::Greater, 1.0)
            .no_data(NoDataPolicy::KeepState),
    );
    let export = to_prometheus_rules(&[keep]);
    assert_eq!(export.warnings.len(), 1);
    assert!(export.warnings[0].contains("`no_data: keep_state` has no Prometheus equivalent"));
}

#[test]
fn dynamic_baselines_are_approximated_with_subqueries_and_warned() {
    let spike = rule(
        Rule::builder("RequestSpike")
            .rate("http_requests_total", Duration::from_secs(60))
            .aggregate(Aggregation::Sum)
            .threshold(
                Severity::Medium,
                Comparison::Greater,
                Baseline::stddevs(3.0, Duration::from_secs(3600)),
            )
            .threshold(
                Severity::High,
                Comparison::Greater,
                Baseline::quantile(0.99, Duration::from_secs(3600)),
            ),
    );
    let export = to_prometheus_rules(&[spike]);
    assert_eq!(
        exprs(&export),
        [
            "sum(rate(http_requests_total[1m])) > (avg_over_time((sum(rate(http_requests_total[1m])))[1h:]) + 3 * stddev_over_time((sum(rate(http_requests_total[1m])))[1h:]))",
            "sum(rate(http_requests_total[1m])) > quantile_over_time(0.99, (sum(rate(http_requests_total[1m])))[1h:])",
        ]
    );
    let baseline_warnings = export
        .warnings
        .iter()
        .filter(|w| w.contains("dynamic baseline"))
        .count();
    assert_eq!(baseline_warnings, 2, "{:?}", export.warnings);
    check_rules(&export.yaml);
}

#[test]
fn also_conditions_join_with_and_on_the_labels_vigil_pairs_by() {
    let gauge = |metric: &str| Expr::Gauge {
        metric: metric.into(),
        matchers: vec![],
    };
    // Per series: `and` on all labels, as vigil pairs by the whole label set.
    let per_series = Rule::builder("QueueStuck")
        .gauge("queue_depth")
        .matcher(Matcher::equal("env", "prod"))
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .threshold(Severity::Critical, Comparison::Greater, 1000.0)
        .also(gauge("queue_consumers"), Comparison::Less, 1.0)
        .build()
        .unwrap();
    let export = to_prometheus_rules(std::slice::from_ref(&per_series));
    assert_eq!(
        exprs(&export),
        [
            r#"(queue_depth{env="prod"} > 100) and (queue_consumers{env="prod"} < 1)"#,
            r#"(queue_depth{env="prod"} > 1000) and (queue_consumers{env="prod"} < 1)"#,
        ]
    );
    assert!(export.warnings.is_empty(), "{:?}", export.warnings);
    check_rules(&export.yaml);

    // Aggregated: `on (by)`, or `on ()` for the one group without `by`.
    let ratio = |window| Expr::Ratio {
        numerator: Selector::new("calls_total").matcher(Matcher::equal("result", "error")),
        denominator: Selector::new("calls_total"),
        ignoring: vec![],
        window,
    };
    let burn = |by: &[&str]| {
        Rule::builder("Burn")
            .expr(ratio(Duration::from_secs(3600)))
            .aggregate(Aggregation::Sum)
            .by(by.iter().copied())
            .threshold(Severity::Critical, Comparison::Greater, 0.0144)
            .also(ratio(FIVE_MINUTES), Comparison::Greater, 0.0144)
            .build()
            .unwrap()
    };
    assert_eq!(
        only_expr(burn(&["function", "module"])),
        r#"(sum by (function, module) (rate(calls_total{result="error"}[1h])) / sum by (function, module) (rate(calls_total[1h])) > 0.0144) and on (function, module) (sum by (function, module) (rate(calls_total{result="error"}[5m])) / sum by (function, module) (rate(calls_total[5m])) > 0.0144)"#
    );
    assert_eq!(
        only_expr(burn(&[])),
        r#"(sum(rate(calls_total{result="error"}[1h])) / sum(rate(calls_total[1h])) > 0.0144) and on () (sum(rate(calls_total{result="error"}[5m])) / sum(rate(calls_total[5m])) > 0.0144)"#
    );
    let max_by = Rule::builder("Hot")
        .gauge("cpu")
        .aggregate(Aggregation::Max)
        .by(["cluster"])
        .threshold(Severity::High, Comparison::Greater, 0.9)
        .also(gauge("mem"), Comparison::GreaterOrEqual, 0.8)
        .build()
        .unwrap();
    assert_eq!(
        only_expr(max_by),
        "(max by (cluster) (cpu) > 0.9) and on (cluster) (max by (cluster) (mem) >= 0.8)"
    );

    // An `also` that holds at 0 counts a missing numerator as 0, as vigil does.
    let hits = Expr::Ratio {
        numerator: Selector::new("cache_requests_total").matcher(Matcher::equal("result", "hit")),
        denominator: Selector::new("cache_requests_total"),
        ignoring: vec!["result".into()],
        window: FIVE_MINUTES,
    };
    let cold = Rule::builder("ColdCache")
        .rate("db_queries_total", FIVE_MINUTES)
        .threshold(Severity::Medium, Comparison::Greater, 100.0)
        .also(hits, Comparison::Less, 0.5)
        .build()
        .unwrap();
    let export = to_prometheus_rules(std::slice::from_ref(&cold));
    assert_eq!(
        exprs(&export),
        [
            r#"(rate(db_queries_total[5m]) > 100) and ((sum without (result) (rate(cache_requests_total{result="hit"}[5m])) or sum without (result) (rate(cache_requests_total[5m])) * 0) / sum without (result) (rate(cache_requests_total[5m])) < 0.5)"#
        ]
    );
    check_rules(&export.yaml);

    // Notes and warnings about the `also` expression are kept.
    let slow = Rule::builder("SlowAndBusy")
        .rate("http_requests_total", FIVE_MINUTES)
        .threshold(Severity::High, Comparison::Greater, 10.0)
        .also(
            Expr::Histogram {
                metric: "http_request_duration_seconds".into(),
                matchers: vec![],
                stat: vigil_alert::HistogramStat::Max,
                window: FIVE_MINUTES,
            },
            Comparison::Greater,
            1.0,
        )
        .build()
        .unwrap();
    let export = to_prometheus_rules(&[slow]);
    assert_eq!(export.warnings.len(), 1, "{:?}", export.warnings);
    assert!(
        export.warnings[0].contains("`also`: histogram max"),
        "{:?}",
        export.warnings
    );
    assert!(export.yaml.contains("# WARNING: `also`: histogram max"));
    check_rules(&export.yaml);
}

#[test]
fn exports_with_every_feature_pass_promtool() {
    let rules = vec![
        rule(
            Rule::builder("HighLatency")
                .histogram_quantile("function_calls_duration_seconds", 0.999, FIVE_MINUTES)
                .matcher(Matcher::regex("route", r"/api/v\d+/.*").unwrap())
                .aggregate(Aggregation::Max)
                .by(["route"])
                .threshold(Severity::High, Comparison::Greater, 0.2)
                .threshold(Severity::Critical, Comparison::Greater, 1.0)
                .recover_below(0.15)
                .for_duration(Duration::from_secs(120))
                .keep_firing_for(Duration::from_secs(60))
                .label("team", "web \"frontend\"")
                .annotation("summary", "line one\nline two: {{ $value }}")
                .escalate_after(Duration::from_secs(1800)),
        ),
        rule(
            Rule::builder("HighErrorRate")
                .error_ratio("function_calls_total", "result", "error", FIVE_MINUTES)
                .aggregate(Aggregation::Sum)
                .by(["function", "module"])
                .threshold(Severity::Medium, Comparison::Greater, 0.01)
                .threshold(Severity::Critical, Comparison::Greater, 0.05),
        ),
        rule(
            Rule::builder("NoTraffic")
                .rate("http_requests_total", Duration::from_millis(90_500))
                .threshold(Severity::Low, Comparison::LessOrEqual, 0.0)
                .no_data(NoDataPolicy::KeepState),
        ),
        rule(
            Rule::builder("SlowMean")
                .histogram_mean("db_query_duration_seconds", Duration::from_secs(3 * 86_400))
                .threshold(Severity::Medium, Comparison::Greater, 0.05),
        ),
    ];
    for h in [HistogramExport::Summary, HistogramExport::Buckets] {
        let export = PrometheusExporter::new()
            .group("vigil \"rules\"")
            .interval(Duration::from_secs(30))
            .histograms(h)
            .export(&rules);
        check_rules(&export.yaml);
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&export.yaml).unwrap();
        assert_eq!(doc["groups"][0]["interval"], "30s");
        assert_eq!(doc["groups"][0]["name"], "vigil \"rules\"");
        assert_eq!(doc["groups"][0]["rules"].as_sequence().unwrap().len(), 6);
        assert_eq!(
            doc["groups"][0]["rules"][1]["annotations"]["summary"],
            "line one\nline two: {{ $value }}"
        );
    }
}

#[test]
fn an_empty_rule_list_is_a_valid_file() {
    let export = to_prometheus_rules(&[]);
    assert!(export.warnings.is_empty());
    check_rules(&export.yaml);
}

#[test]
#[cfg(feature = "config")]
fn the_config_fixtures_export_cleanly_through_promtool() {
    let config = vigil_alert::config::AlertConfig::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rules.yml"
    ))
    .unwrap();
    let export = to_prometheus_rules(config.rules());
    check_rules(&export.yaml);
    assert!(!export.warnings.is_empty());
}

#[test]
fn the_function_duration_histogram_is_always_read_from_its_buckets() {
    let p95 = high(
        Rule::builder("L")
            .histogram_quantile("function_calls_duration_seconds", 0.95, FIVE_MINUTES)
            .matcher(Matcher::equal("function", "search")),
        Comparison::Greater,
        0.2,
    );
    let export = to_prometheus_rules(std::slice::from_ref(&p95));
    assert_eq!(
        exprs(&export),
        [
            r#"histogram_quantile(0.95, rate(function_calls_duration_seconds_bucket{function="search"}[5m])) > 0.2"#
        ]
    );
}
