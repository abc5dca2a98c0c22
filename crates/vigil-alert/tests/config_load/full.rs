//! The full schema (features `routing` and `rulesets` on): the conversion
//! to core types, and errors that name the file, item, field and position.

use crate::common;
use common::{toml_err, yaml_err};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use vigil_alert::config::{AlertConfig, ConfigError, Format, Item, Location};
use vigil_alert::{
    Aggregation, Baseline, Comparison, Expr, HistogramStat, Limit, Matcher, NoDataPolicy, Routing,
    Rule, Severity, Silence,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rule_item(name: &str) -> Item {
    Item::Rule {
        index: 0,
        name: Some(name.to_owned()),
    }
}

/// One valid rule to mutate: each error test changes one thing.
const BASE: &str = "\
rules:
  - name: HighLatency
    expr: { gauge: { metric: up } }
    thresholds:
      critical: { op: '>', value: 0.5 }
";

#[test]
fn yaml_and_toml_fixtures_load_to_the_same_config() {
    let yaml = AlertConfig::load(fixture("rules.yml")).unwrap();
    let toml = AlertConfig::load(fixture("rules.toml")).unwrap();
    assert_eq!(yaml.rules(), toml.rules());
    assert_eq!(yaml.routing(), toml.routing());
    assert_eq!(yaml.inhibit_rules(), toml.inhibit_rules());
    assert_eq!(yaml.silences(), toml.silences());
    // 2 service targets + 4 SLO burn windows + 5 rules.
    let names: Vec<&str> = yaml.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "HighCpuUsage",
            "HighMemoryUsage",
            "ErrorBudgetBurn",
            "ErrorBudgetBurn",
            "ErrorBudgetBurn",
            "ErrorBudgetBurn",
            "HighLatency",
            "HighErrorRate",
            "FastErrorBurn",
            "QueueBacklog",
            "RequestSpike"
        ]
    );
}

#[test]
fn fixture_values_reach_the_core_types() {
    let config = AlertConfig::load(fixture("rules.yml")).unwrap();
    let latency = config
        .rules()
        .iter()
        .find(|r| r.name == "HighLatency")
        .unwrap();
    let expected = Rule::builder("HighLatency")
        .expr(Expr::Histogram {
            metric: "function_calls_duration_seconds".into(),
            matchers: vec![Matcher::regex("function", "api_.*").unwrap()],
            stat: HistogramStat::Quantile(0.95),
            window: Duration::from_secs(300),
        })
        .threshold(Severity::Medium, Comparison::Greater, 0.2)
        .threshold(Severity::Critical, Comparison::Greater, 1.0)
        .recover_below(0.15)
        .for_duration(Duration::from_secs(120))
        .keep_firing_for(Duration::from_secs(60))
        .label("team", "web")
        .annotation("summary", "p95 of {{ $labels.function }} is {{ $value }}s")
        .escalate_after(Duration::from_secs(1800))
        .escalate_to("pager")
        // The fixture writes `warning`: the alerts say so.
        .severity_label(Severity::Medium, "warning")
        .build()
        .unwrap();
    assert_eq!(*latency, expected);

    let errors = config
        .rules()
        .iter()
        .find(|r| r.name == "HighErrorRate")
        .unwrap();
    assert_eq!(errors.aggregate, Aggregation::Sum);
    assert_eq!(errors.by, ["function"]);
    let burn = config
        .rules()
        .iter()
        .find(|r| r.name == "FastErrorBurn")
        .unwrap();
    let also = burn.also.as_ref().unwrap();
    assert_eq!((also.op, also.value), (Comparison::Greater, 0.0144));
    assert_eq!(burn.expr.window(), Some(Duration::from_secs(3600)));
    assert_eq!(also.expr.window(), Some(Duration::from_secs(300)));
    assert_eq!(
        also.expr.metrics().collect::<Vec<_>>(),
        ["function_calls_total"; 2]
    );
    let queue = config
        .rules()
        .iter()
        .find(|r| r.name == "QueueBacklog")
        .unwrap();
    assert_eq!(queue.no_data, NoDataPolicy::Alerting);
    assert_eq!(queue.thresholds[0].op, Comparison::GreaterOrEqual);
    let spike = config
        .rules()
        .iter()
        .find(|r| r.name == "RequestSpike")
        .unwrap();
    assert_eq!(
        spike.thresholds[0].value,
        Limit::Baseline(Baseline::stddevs(3.0, Duration::from_secs(3600)).min_samples(30))
    );

    let routing = config.routing();
    assert_eq!(routing.receiver, "team-email");
    assert_eq!(routing.group_by, ["alertname", "service"]);
    assert_eq!(routing.routes.len(), 2);
    assert_eq!(routing.routes[0].receiver, "pager");
    assert_eq!(
        routing.routes[0].repeat_interval,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(routing.routes[1].receiver, "web-slack"); // `notifier:` alias
    assert_eq!(
        routing.routes[1].group_by.as_deref(),
        Some(&["alertname".to_owned()][..])
    );

    assert_eq!(config.inhibit_rules()[0].equal, ["service"]);
    let silence = &config.silences()[0];
    assert_eq!(
        silence.starts_at,
        UNIX_EPOCH + Duration::from_secs(1_714_600_800)
    );
    assert_eq!(
        silence.ends_at - Duration::from_secs(4 * 3600),
        silence.starts_at
    );
    assert_eq!(silence.created_by, "ops");
}

#[test]
fn a_loaded_config_builds_an_engine_with_its_silences() {
    let engine = AlertConfig::load(fixture("rules.toml"))
        .unwrap()
        .into_engine()
        .unwrap();
    assert_eq!(engine.rules().len(), 11);
    assert_eq!(engine.silences().count(), 1);
}

#[test]
fn severity_names_and_the_warning_alias() {
    let text = "rules:\n  - name: X\n    expr: { gauge: { metric: up } }\n    thresholds: { low: '> 1', warning: '> 2', high: '> 3', critical: '> 4' }\n";
    let config = AlertConfig::from_yaml_str(text, "rules.yml").unwrap();
    let severities: Vec<Severity> = config.rules()[0]
        .thresholds
        .iter()
        .map(|t| t.severity)
        .collect();
    assert_eq!(
        severities,
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical
        ]
    );
    let text = text.replace("warning", "medium");
    assert!(AlertConfig::from_yaml_str(&text, "rules.yml").is_ok());
}

#[test]
fn durations_use_humantime() {
    for (text, secs) in [
        ("30s", 30),
        ("5m", 300),
        ("1h 30m", 5400),
        ("1h30m", 5400),
        ("2days", 172_800),
    ] {
        let yaml = BASE.replace(
            "    thresholds",
            &format!("    for: {text}\n    thresholds"),
        );
        let config = AlertConfig::from_yaml_str(&yaml, "rules.yml").unwrap();
        assert_eq!(
            config.rules()[0].for_duration,
            Duration::from_secs(secs),
            "{text}"
        );
    }
}

#[test]
fn errors_name_file_rule_field_line_and_column() {
    let text = "\
rules:
  - name: Other
    expr: { gauge: { metric: up } }
    thresholds: { low: '> 1' }
  - name: HighLatency
    expr:
      histogram: { metric: function_calls_duration_seconds, stat: p95, window: 5m }
    thresholds:
      warning: '> 0.2'
      critical:
        op: '>'
        value: fast
";
    let err = yaml_err(text);
    assert_eq!(
        err.to_string(),
        "rules.yml: rule \"HighLatency\": field \"thresholds.critical.value\": invalid type: string \"fast\", \
         expected a number, or a baseline such as {stddevs: 3, window: 1h} (line 12, column 16)"
    );
    assert_eq!(err.file(), "rules.yml");
    assert_eq!(
        err.item(),
        Some(&Item::Rule {
            index: 1,
            name: Some("HighLatency".into())
        })
    );
    assert_eq!(err.field(), Some("thresholds.critical.value"));
    assert_eq!(
        err.location(),
        Some(Location {
            line: 12,
            column: 16
        })
    );
}

#[test]
fn the_same_error_in_toml_has_the_same_path() {
    let err = toml_err(
        "[[rules]]\nname = \"HighLatency\"\nexpr = { gauge = { metric = \"up\" } }\n\n[rules.thresholds.critical]\nop = \">\"\nvalue = \"fast\"\n",
    );
    assert_eq!(err.item(), Some(&rule_item("HighLatency")));
    assert_eq!(err.field(), Some("thresholds.critical.value"));
    assert_eq!(err.line(), Some(7));
    assert_eq!(err.column(), Some(9));
    assert!(err.to_string().contains("expected a number"), "{err}");
}

/// (mutated config, field path, start of the message, line)
const YAML_CASES: &[(&str, &str, &str, usize)] = &[
    (
        "op: '=='",
        "thresholds.critical.op",
        "invalid comparison \"==\"",
        5,
    ),
    (
        "critical: { op:|urgent: { op:",
        "thresholds.urgent",
        "unknown severity `urgent`",
        5,
    ),
    (
        "gauge:|gauges:",
        "expr.gauges",
        "unknown variant `gauges`, expected one of `gauge`, `rate`, `ratio`, `histogram`",
        3,
    ),
    (
        "{ gauge: { metric: up } }|{}",
        "expr",
        "needs one of gauge, rate, ratio or histogram, e.g. {gauge: {metric: queue_depth}}",
        3,
    ),
    (
        "metric: up|metric: up, window: 5m",
        "expr.gauge.window",
        "unknown field `window`, expected `metric` or `matchers`",
        3,
    ),
    (
        "metric: up|metric: 'up-time'",
        "expr.gauge.metric",
        "\"up-time\" is not a valid name",
        3,
    ),
    (
        "metric: up|metric: up, matchers: ['job=~\"(\"']",
        "expr.gauge.matchers[0]",
        "invalid regex in matcher for label `job`",
        3,
    ),
    (
        "metric: up|metric: up, matchers: ['job']",
        "expr.gauge.matchers[0]",
        "invalid label matcher \"job\"",
        3,
    ),
];

#[test]
fn value_errors_point_at_the_value() {
    for (change, field, message, line) in YAML_CASES {
        let (from, to) = change.split_once('|').unwrap_or(("op: '>'", change));
        let text = BASE.replace(from, to);
        let err = yaml_err(&text);
        assert_eq!(err.item(), Some(&rule_item("HighLatency")), "{err}");
        assert_eq!(err.field(), Some(*field), "{err}");
        let shown = err.to_string();
        let prefix = format!("rules.yml: rule \"HighLatency\": field \"{field}\": {message}");
        assert!(
            shown.starts_with(&prefix),
            "{shown}\n  should start with\n{prefix}"
        );
        assert_eq!(err.line(), Some(*line), "{err}");
    }
}

#[test]
fn unknown_fields_are_errors_everywhere() {
    let cases = [
        (format!("{BASE}rulez: []\n"), None, "rulez"),
        (
            BASE.replace("    expr", "    colour: red\n    expr"),
            Some(rule_item("HighLatency")),
            "colour",
        ),
        (
            BASE.replace("value: 0.5", "value: 0.5, unit: s"),
            Some(rule_item("HighLatency")),
            "thresholds.critical.unit",
        ),
        (
            format!(
                "{BASE}routing:\n  receiver: a\n  routes:\n    - receiver: b\n      continue: true\n"
            ),
            Some(Item::Route {
                index: 0,
                receiver: Some("b".into()),
            }),
            "continue",
        ),
        (
            format!(
                "{BASE}silences:\n  - matchers: ['a=\"b\"']\n    starts_at: 2024-01-01T00:00:00Z\n    ends_at: 2024-01-02T00:00:00Z\n    id: 7\n"
            ),
            Some(Item::Silence { index: 0 }),
            "id",
        ),
        (
            format!(
                "{BASE}inhibit_rules:\n  - source_matchers: ['a=\"b\"']\n    target_matchers: ['c=\"d\"']\n    equals: [x]\n"
            ),
            Some(Item::InhibitRule { index: 0 }),
            "equals",
        ),
        (
            format!("{BASE}rulesets:\n  service_targets: {{ latency: 1s }}\n"),
            Some(Item::ServiceTargets),
            "latency",
        ),
    ];
    for (text, item, field) in cases {
        let err = yaml_err(&text);
        assert_eq!(err.item(), item.as_ref(), "{err}");
        assert_eq!(err.field(), Some(field), "{err}");
        assert!(err.to_string().contains("unknown field"), "{err}");
        assert!(err.line().is_some(), "{err}");
    }
    let err = toml_err(
        "[[rules]]\nname = \"X\"\nexpr = { gauge = { metric = \"up\" } }\nthresholds = { low = \"> 1\" }\ncolour = \"red\"\n",
    );
    assert_eq!(err.field(), Some("colour"));
    assert_eq!(err.line(), Some(5));
}

#[test]
fn missing_fields_name_the_item() {
    let err = yaml_err(&BASE.replace("    expr: { gauge: { metric: up } }\n", ""));
    assert_eq!(
        err.to_string(),
        "rules.yml: rule \"HighLatency\": missing field `expr` (line 2, column 5)"
    );
    let err =
        yaml_err("rules:\n  - expr: { gauge: { metric: up } }\n    thresholds: { low: '> 1' }\n");
    assert_eq!(
        err.item(),
        Some(&Item::Rule {
            index: 0,
            name: None
        })
    );
    assert!(
        err.to_string()
            .starts_with("rules.yml: rules[0]: missing field `name`"),
        "{err}"
    );
}

#[test]
fn durations_need_a_unit_and_windows_must_be_positive() {
    let err = yaml_err(&BASE.replace("    thresholds", "    for: 5\n    thresholds"));
    assert_eq!(err.field(), Some("for"));
    assert!(err.to_string().contains("invalid duration \"5\""), "{err}");
    let err = toml_err(
        "[[rules]]\nname = \"X\"\nfor = 5\nexpr = { gauge = { metric = \"up\" } }\nthresholds = { low = \"> 1\" }\n",
    );
    assert_eq!(err.field(), Some("for"));
    let message = "invalid type: integer `5`, expected a duration with a unit, such as \"30s\" or \"5m\" (a bare number has none)";
    assert!(err.to_string().contains(message), "{err}");
    let err = yaml_err(&BASE.replace("gauge: { metric: up }", "rate: { metric: up, window: 0s }"));
    assert_eq!(err.field(), Some("expr.rate.window"));
    assert!(
        err.to_string().contains("must be longer than zero"),
        "{err}"
    );
}

#[test]
fn threshold_maps_reject_duplicates_and_emptiness() {
    let err = yaml_err(&BASE.replace(
        "      critical: { op: '>', value: 0.5 }\n",
        "      medium: '> 1'\n      warning: '> 2'\n",
    ));
    assert_eq!(err.field(), Some("thresholds.warning"));
    assert!(
        err.to_string().contains(
            "severity `medium` has two thresholds (`warning` is another name for `medium`)"
        ),
        "{err}"
    );
    assert_eq!(err.line(), Some(6));
    let err = yaml_err(&BASE.replace(
        "    thresholds:\n      critical: { op: '>', value: 0.5 }\n",
        "    thresholds: {}\n",
    ));
    assert_eq!(err.field(), Some("thresholds"));
    assert!(err.to_string().contains("at least one threshold"), "{err}");
    let err = yaml_err(&BASE.replace("{ op: '>', value: 0.5 }", "'>> 0.5'"));
    assert!(err.to_string().contains("expected a condition"), "{err}");
}

#[test]
fn checks_across_fields_name_the_field_without_a_position() {
    let err = yaml_err(&BASE.replace("    expr", "    by: [job]\n    expr"));
    assert_eq!(err.item(), Some(&rule_item("HighLatency")));
    assert_eq!(err.field(), Some("by"));
    assert_eq!(err.location(), None);
    let err = yaml_err(&format!(
        "{BASE}silences:\n  - matchers: ['a=\"b\"']\n    starts_at: 2024-05-01T22:00:00Z\n    ends_at: 2024-05-01T21:00:00Z\n"
    ));
    assert_eq!(
        err.to_string(),
        "rules.yml: silences[0]: field \"ends_at\": must be after starts_at (2024-05-01T22:00:00Z)"
    );
}

#[test]
fn reserved_labels_and_bad_names_are_rejected() {
    let err = yaml_err(&BASE.replace("    expr", "    labels: { severity: page }\n    expr"));
    assert_eq!(err.field(), Some("labels.severity"));
    assert!(err.to_string().contains("set by the engine"), "{err}");
    let err = yaml_err(&BASE.replace("name: HighLatency", "name: High Latency"));
    assert_eq!(err.field(), Some("name"));
    let err = yaml_err(&format!(
        "{BASE}routing:\n  receiver: a\n  group_by: ['not a label']\n"
    ));
    assert_eq!(err.item(), Some(&Item::Routing));
    assert_eq!(err.field(), Some("group_by[0]"));
    let err = yaml_err(&format!(
        "{BASE}routing:\n  receiver: a\n  group_interval: 0s\n"
    ));
    assert_eq!(err.item(), Some(&Item::Routing));
    assert_eq!(err.field(), Some("group_interval"));
    assert!(
        err.to_string().contains("must be longer than zero"),
        "{err}"
    );
    assert_eq!(err.line(), Some(8), "{err}");
}

#[test]
fn silence_times_accept_utc_and_offsets() {
    let config = AlertConfig::from_toml_str(
        "[[silences]]\nmatchers = ['a=\"b\"']\nstarts_at = 2024-05-01T22:00:00Z\nends_at = \"2024-05-02T02:00:00+02:00\"\n",
        "s.toml",
    )
    .unwrap();
    let s = &config.silences()[0];
    assert_eq!(
        s.ends_at.duration_since(s.starts_at).unwrap(),
        Duration::from_secs(2 * 3600)
    );
    let err = toml_err(
        "[[silences]]\nmatchers = ['a=\"b\"']\nstarts_at = \"yesterday\"\nends_at = 2024-05-02T02:00:00Z\n",
    );
    assert_eq!(err.item(), Some(&Item::Silence { index: 0 }));
    assert_eq!(err.field(), Some("starts_at"));
    assert_eq!(err.line(), Some(3));
}

#[test]
fn syntax_errors_have_a_position() {
    let err = yaml_err("rules:\n  - name: X\n    expr: [\n");
    assert!(err.line().is_some(), "{err}");
    let err = toml_err("[[rules]\nname = 1\n");
    assert_eq!(err.line(), Some(1), "{err}");
    assert!(err.to_string().starts_with("rules.toml: "), "{err}");
}

#[test]
fn load_picks_the_format_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("rules.json");
    std::fs::write(&json, "{}").unwrap();
    let err = AlertConfig::load(&json).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownFormat { .. }), "{err}");
    let missing = dir.path().join("missing.yml");
    let err = AlertConfig::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.yml"), "{err}");
    let yml = dir.path().join("rules.YAML");
    std::fs::write(&yml, BASE).unwrap();
    assert_eq!(AlertConfig::load(&yml).unwrap().rules().len(), 1);
    assert_eq!(Format::from_path(&yml), Some(Format::Yaml));
    let err = AlertConfig::load(dir.path().join("bad.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
}

#[test]
fn configs_build_in_code_and_merge() {
    let rule = Rule::builder("DiskFull")
        .gauge("system_disk_usage_ratio")
        .threshold(Severity::Critical, Comparison::Greater, 0.95)
        .build()
        .unwrap();
    let start = UNIX_EPOCH + Duration::from_secs(1000);
    let code = AlertConfig::new()
        .with_rule(rule)
        .with_routing(Routing::new("ops"))
        .with_silence(
            Silence::new(start, start + Duration::from_secs(60)).matcher(Matcher::equal("a", "b")),
        );
    let file = AlertConfig::from_yaml_str(BASE, "rules.yml").unwrap();
    let merged = code.merge(file);
    assert_eq!(merged.rules().len(), 2);
    assert_eq!(merged.routing().receiver, "ops"); // the file has no routing
    let engine = merged.into_engine().unwrap();
    assert_eq!(engine.silences().count(), 1);

    // A rule built without the builder is checked too, naming it.
    let mut bad = AlertConfig::from_yaml_str(BASE, "rules.yml")
        .unwrap()
        .into_parts()
        .0
        .remove(0);
    bad.by = vec!["job".into()];
    let err = AlertConfig::new().with_rule(bad).validate().unwrap_err();
    assert_eq!(err.file(), "<code>");
    assert_eq!(err.item(), Some(&rule_item("HighLatency")));
    assert_eq!(err.field(), Some("by"));
    let err = AlertConfig::new()
        .with_silence(Silence::new(start, start))
        .into_engine()
        .unwrap_err();
    assert_eq!(err.item(), Some(&Item::Silence { index: 0 }));
}

#[test]
fn rulesets_can_be_included_from_a_file() {
    let config = AlertConfig::from_yaml_str(
        "rulesets:\n  service_targets: {}\n  slos:\n    - { name: api, objective: 0.99, by: [function] }\n",
        "rules.yml",
    )
    .unwrap();
    assert_eq!(config.rules().len(), 5 + 4);
    let slo = &config.rules()[5];
    assert_eq!(slo.labels["slo"], "api");
    assert_eq!(slo.by, ["function"]);
    assert_eq!(slo.thresholds[0].value, Limit::Fixed(0.144));
    let err = yaml_err("rulesets:\n  slos:\n    - { name: api, objective: 1.5 }\n");
    assert_eq!(
        err.item(),
        Some(&Item::Slo {
            index: 0,
            name: Some("api".into())
        })
    );
    assert_eq!(err.field(), Some("objective"));
    assert_eq!(
        err.location(),
        Some(Location {
            line: 3,
            column: 31
        }),
        "{err}"
    );
    let err =
        yaml_err("rulesets:\n  slos:\n    - { name: api, objective: 0.99, by: [bad-label] }\n");
    assert_eq!(err.field(), Some("by[0]"), "{err}");
    assert!(
        err.to_string()
            .contains("\"bad-label\" is not a valid label name"),
        "{err}"
    );
    assert_eq!(
        err.location(),
        Some(Location {
            line: 3,
            column: 42
        }),
        "{err}"
    );
    let err = yaml_err("rulesets:\n  service_targets: { only: [disk] }\n");
    assert_eq!(err.field(), Some("only[0]"));
}

#[test]
fn also_conditions_load_in_both_forms_and_errors_name_the_field() {
    let with_also = |also: &str| format!("{BASE}    also: {also}\n");
    let long = AlertConfig::from_yaml_str(
        &with_also("{expr: {gauge: {metric: workers}}, op: '<', value: 1}"),
        "rules.yml",
    )
    .unwrap();
    let short = AlertConfig::from_yaml_str(
        &with_also("{expr: {gauge: {metric: workers}}, condition: '< 1'}"),
        "rules.yml",
    )
    .unwrap();
    assert_eq!(long.rules(), short.rules());
    let also = long.rules()[0].also.as_ref().unwrap();
    assert_eq!((also.op, also.value), (Comparison::Less, 1.0));
    assert_eq!(
        also.expr,
        Expr::Gauge {
            metric: "workers".into(),
            matchers: vec![]
        }
    );

    // (also, field, message fragment)
    let cases = [
        (
            "{expr: {gauge: {metric: workers}}, op: '<', value: 1, condition: '< 1'}",
            "also",
            "not both",
        ),
        (
            "{expr: {gauge: {metric: workers}}, op: '<'}",
            "also",
            "missing field `value`",
        ),
        (
            "{expr: {gauge: {metric: workers}}}",
            "also",
            "needs `op` and `value`",
        ),
        ("{op: '<', value: 1}", "also", "missing field `expr`"),
        (
            "{expr: {rate: {metric: x, window: 0s}}, op: '>', value: 1}",
            "also.expr.rate.window",
            "longer than zero",
        ),
        (
            "{expr: {gauge: {metric: workers}}, op: '==', value: 1}",
            "also.op",
            "comparison",
        ),
        (
            "{expr: {gauge: {metric: workers}}, op: '<', value: lots}",
            "also.value",
            "a number",
        ),
        (
            "{expr: {gauge: {metric: workers}}, condition: 'about 1'}",
            "also.condition",
            "expected a condition",
        ),
        (
            "{expr: {gauge: {metric: workers}}, op: '<', value: 1, colour: red}",
            "also.colour",
            "unknown field `colour`",
        ),
    ];
    for (also, field, fragment) in cases {
        let err = yaml_err(&with_also(also));
        assert_eq!(err.item(), Some(&rule_item("HighLatency")), "{err}");
        assert_eq!(err.field(), Some(field), "{also}: {err}");
        assert!(err.to_string().contains(fragment), "{also}: {err}");
        assert!(err.line().is_some(), "{also}: {err}");
    }
    // A missing or contradictory part points at the `also:` map (line 6,
    // column 11), not at the rule around it.
    for also in &cases[..4] {
        let err = yaml_err(&with_also(also.0));
        let at = Location {
            line: 6,
            column: 11,
        };
        assert_eq!(err.location(), Some(at), "{}: {err}", also.0);
    }

    // The same in TOML.
    let err = toml_err(
        "[[rules]]\nname = \"HighLatency\"\nthresholds = { critical = \"> 0.5\" }\n[rules.expr.gauge]\nmetric = \"up\"\n[rules.also]\nop = \">\"\nvalue = \"lots\"\n[rules.also.expr.gauge]\nmetric = \"workers\"\n",
    );
    assert_eq!(err.field(), Some("also.value"), "{err}");
    assert_eq!(err.line(), Some(8), "{err}");
}

#[test]
fn an_expression_with_two_kinds_names_both() {
    let err = yaml_err(
        "rules:\n  - name: X\n    expr: { gauge: { metric: up }, rate: { metric: calls, window: 5m } }\n    thresholds: { high: '> 1' }\n",
    );
    assert!(
        err.to_string()
            .contains("an expression has exactly one kind, found `rate` besides `gauge`"),
        "{err}"
    );
    assert_eq!(err.field(), Some("expr"), "{err}");
    assert_eq!(err.line(), Some(3), "{err}");
}

#[test]
fn yaml_config_round_trips() {
    let yaml = r#"
name: HighErrorRate
expr:
  ratio:
    numerator: { metric: function_calls_total, matchers: ['result="error"'] }
    denominator: { metric: function_calls_total }
    ignoring: [result]
    window: 5m
aggregate: sum
by: [function]
thresholds:
  warning: "> 0.01"
  critical: { op: ">", value: { stddevs: 3, window: 1h, min_samples: 30 } }
also:
  expr: { rate: { metric: function_calls_total, matchers: ['result="error"'], window: 1m } }
  op: ">"
  value: 0.5
recover: { op: "<", value: 0.005 }
for: 5m
keep_firing_for: 2m
no_data: alerting
labels: { team: payments }
annotations: { summary: "{{ $labels.function }} fails {{ $value }} of calls" }
escalate: { after: 30m, receiver: pager }
"#;
    let rule: Rule = serde_yaml_ng::from_str(yaml).unwrap();
    rule.validate().unwrap();
    assert_eq!(rule.for_duration, Duration::from_secs(300));
    assert_eq!(rule.thresholds[0].severity, Severity::Medium);
    assert!(rule.has_baseline());
    assert_eq!(rule.no_data, NoDataPolicy::Alerting);
    let also = rule.also.as_ref().unwrap();
    assert_eq!((also.op, also.value), (Comparison::Greater, 0.5));
    assert_eq!(also.expr.window(), Some(Duration::from_secs(60)));
    let again: Rule = serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&rule).unwrap()).unwrap();
    assert_eq!(again, rule);
    let json: Rule = serde_json::from_str(&serde_json::to_string(&rule).unwrap()).unwrap();
    assert_eq!(json, rule);
}

#[test]
fn serde_keeps_the_severity_spelling_as_the_label() {
    let yaml = "name: X\nexpr: {gauge: {metric: up}}\nthresholds:\n  warning: '> 1'\n  critical: {op: '>', value: 2}\nseverity_labels: {high: page}\n";
    let rule: Rule = serde_yaml_ng::from_str(yaml).unwrap();
    rule.validate().unwrap();
    assert_eq!(rule.thresholds[0].severity, Severity::Medium);
    assert_eq!(rule.severity_label(Severity::Medium), "warning");
    assert_eq!(rule.severity_label(Severity::High), "page");
    assert_eq!(rule.severity_label(Severity::Critical), "critical");
    let text = serde_yaml_ng::to_string(&rule).unwrap();
    assert!(text.contains("\n  warning:\n    op: '>'"), "{text}");
    assert!(text.contains("severity_labels:\n  high: page"), "{text}");
    assert!(!text.contains("medium"), "{text}");
    assert_eq!(serde_yaml_ng::from_str::<Rule>(&text).unwrap(), rule);

    let clash = "name: X\nexpr: {gauge: {metric: up}}\nthresholds: {warning: '> 1'}\nseverity_labels: {medium: P3}\n";
    let err = serde_yaml_ng::from_str::<Rule>(clash)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("severity `medium` is written `warning` in `thresholds` but named `P3`"),
        "{err}"
    );
}

#[test]
fn toml_config_parses() {
    let toml_text = r#"
name = "QueueBacklog"
thresholds = { high = ">= 100" }
for = "1m"
[expr.gauge]
metric = "queue_depth"
matchers = ['queue=~"email|sms"']
"#;
    let rule: Rule = toml::from_str(toml_text).unwrap();
    rule.validate().unwrap();
    assert_eq!(rule.thresholds[0].value, Limit::Fixed(100.0));
}

#[test]
fn unknown_fields_are_rejected() {
    let base = "name: X\nexpr: {gauge: {metric: up}}\nthresholds: {low: '< 1'}\n";
    assert!(serde_yaml_ng::from_str::<Rule>(base).is_ok());
    for extra in ["severity: high\n", "expr2: 1\n"] {
        let text = format!("{base}{extra}");
        assert!(serde_yaml_ng::from_str::<Rule>(&text).is_err(), "{extra}");
    }
    let bad_expr = "name: X\nexpr: {gauge: {metric: up, window: 5m}}\nthresholds: {low: '< 1'}\n";
    assert!(serde_yaml_ng::from_str::<Rule>(bad_expr).is_err());
    let bad_also =
        format!("{base}also: {{expr: {{gauge: {{metric: up}}}}, op: '<', value: 1, x: 2}}\n");
    assert!(serde_yaml_ng::from_str::<Rule>(&bad_also).is_err());
    let bad_threshold =
        "name: X\nexpr: {gauge: {metric: up}}\nthresholds: {low: {op: '<', value: 1, x: 2}}\n";
    assert!(serde_yaml_ng::from_str::<Rule>(bad_threshold).is_err());
}
