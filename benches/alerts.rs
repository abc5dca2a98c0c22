//! What one evaluation tick of the alert engine costs: 10 000 rules over
//! 100 000 series, read from the in-memory source (the facade's registry
//! source has the same shape: a map lookup per metric name, then the
//! matching series).
//!
//! ```text
//! cargo bench --bench alerts
//! python3 scripts/bench-report alerts tick_10k_rules_100k_series
//! ```
//!
//! `config/reject_nested_*` times refusing a 200 KB rule file of nested
//! lists (`[[[...]]]` and `- - - ...` in YAML, `[[[...]]]` in TOML), which
//! the nesting limit stops before the parser sees it.
//!
//! 1 000 gauge metrics with 100 series each (`instance` 0..100, `shard` =
//! instance % 10). Rule `i` watches metric `i % 1000`, shard `i / 1000`, per
//! series: each series is read by exactly one rule, 100 000 instances in
//! all, 10% of them above the threshold (firing after the first ticks).

use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil::alert::{Comparison, Engine, Matcher, MemorySource, Rule, Severity};

const METRICS: usize = 1_000;
const SERIES_PER_METRIC: usize = 100;
const RULES: usize = 10_000;

fn source() -> MemorySource {
    let mut source = MemorySource::new();
    for metric in 0..METRICS {
        let name = format!("load_{metric}");
        for instance in 0..SERIES_PER_METRIC {
            let value = if instance.is_multiple_of(10) {
                95.0
            } else {
                10.0
            };
            let labels = [
                ("instance", instance.to_string()),
                ("shard", (instance % 10).to_string()),
            ];
            source.set_gauge(&name, labels, value);
        }
    }
    source
}

fn engine() -> Engine {
    let rules = (0..RULES).map(|i| {
        Rule::builder(format!("HighLoad{i}"))
            .gauge(format!("load_{}", i % METRICS))
            .matcher(Matcher::equal("shard", (i / METRICS).to_string()))
            .per_series()
            .threshold(Severity::High, Comparison::Greater, 80.0)
            .threshold(Severity::Critical, Comparison::Greater, 99.0)
            .for_duration(Duration::from_secs(30))
            .build()
            .expect("a valid rule")
    });
    Engine::new(rules).expect("valid rules")
}

fn alerts(c: &mut Criterion) {
    let source = source();
    let mut engine = engine();
    let mut now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    // Reach the steady state (instances firing or inactive) first.
    for _ in 0..4 {
        engine.evaluate(now, &source);
        now += Duration::from_secs(15);
    }
    let mut group = c.benchmark_group("alerts");
    group.sample_size(10);
    group.bench_function("tick_10k_rules_100k_series", |b| {
        b.iter(|| {
            now += Duration::from_secs(15);
            engine.evaluate(now, &source)
        })
    });
    group.finish();
}

/// 200 KB rule files nested 100 000 (YAML flow, TOML) or 100 000 (YAML
/// block, `- ` each) levels deep.
fn config(c: &mut Criterion) {
    use vigil::alert::config::{AlertConfig, Format};
    let n = 100_000;
    let files = [
        (
            "reject_nested_yaml_flow_200kb",
            format!("rules: {}{}\n", "[".repeat(n), "]".repeat(n)),
            Format::Yaml,
        ),
        (
            "reject_nested_yaml_block_200kb",
            format!("rules:\n  {}x\n", "- ".repeat(n)),
            Format::Yaml,
        ),
        (
            "reject_nested_toml_200kb",
            format!("rules = {}{}\n", "[".repeat(n), "]".repeat(n)),
            Format::Toml,
        ),
    ];
    let mut group = c.benchmark_group("config");
    for (name, text, format) in &files {
        group.bench_function(*name, |b| {
            b.iter(|| {
                AlertConfig::from_str_as(text, "rules", *format).expect_err("nested too deeply")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, alerts, config);
criterion_main!(benches);
