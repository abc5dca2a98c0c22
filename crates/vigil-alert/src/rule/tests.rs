use std::time::Duration;

use super::*;

use crate::{Error, Matcher, Result, labels};

fn minimal() -> RuleBuilder {
    Rule::builder("Up")
        .gauge("up")
        .threshold(Severity::High, Comparison::Less, 1.0)
}

#[test]
fn comparisons_hold_as_written() {
    assert!(Comparison::Greater.holds(2.0, 1.0));
    assert!(!Comparison::Greater.holds(1.0, 1.0));
    assert!(Comparison::GreaterOrEqual.holds(1.0, 1.0));
    assert!(Comparison::Less.holds(0.0, 1.0));
    assert!(Comparison::LessOrEqual.holds(1.0, 1.0));
    assert!(!Comparison::LessOrEqual.holds(f64::NAN, 1.0));
    for c in [">", ">=", "<", "<="] {
        assert_eq!(c.parse::<Comparison>().unwrap().to_string(), c);
    }
    assert!("==".parse::<Comparison>().is_err());
}

#[test]
fn builder_puts_matchers_on_every_selector() {
    let rule = Rule::builder("Errors")
        .error_ratio("calls_total", "result", "error", Duration::from_secs(60))
        .matcher(Matcher::equal("service", "api"))
        .aggregate(Aggregation::Sum)
        .threshold(Severity::High, Comparison::Greater, 0.1)
        .build()
        .unwrap();
    let Expr::Ratio {
        numerator,
        denominator,
        ignoring,
        ..
    } = &rule.expr
    else {
        panic!("expected a ratio");
    };
    assert_eq!(numerator.matchers.len(), 2);
    assert_eq!(denominator.matchers, vec![Matcher::equal("service", "api")]);
    assert_eq!(ignoring, &["result"]);
}

#[test]
fn builder_matchers_reach_the_also_expression() {
    let rule = Rule::builder("Errors")
        .matcher(Matcher::equal("service", "api"))
        .rate("errors_total", Duration::from_secs(3600))
        .threshold(Severity::High, Comparison::Greater, 1.0)
        .also(
            Expr::Rate {
                metric: "errors_total".into(),
                matchers: vec![],
                window: Duration::from_secs(300),
            },
            Comparison::Greater,
            1.0,
        )
        .build()
        .unwrap();
    let Some(AlsoCondition {
        expr: Expr::Rate { matchers, .. },
        ..
    }) = &rule.also
    else {
        panic!("expected a rate");
    };
    assert_eq!(matchers, &[Matcher::equal("service", "api")]);
    assert!(rule.also.as_ref().unwrap().holds(Some(2.0)));
    assert!(!rule.also.as_ref().unwrap().holds(Some(1.0)));
    assert!(!rule.also.as_ref().unwrap().holds(None));
}

#[test]
fn validation_reports_the_field() {
    let field = |r: Result<Rule>| match r {
        Err(Error::InvalidRule { field, .. }) => field,
        other => panic!("expected InvalidRule, got {other:?}"),
    };
    assert_eq!(field(Rule::builder("X").build()), "expr");
    assert_eq!(field(Rule::builder("X").gauge("up").build()), "thresholds");
    assert_eq!(field(minimal().label("severity", "x").build()), "labels");
    assert_eq!(field(minimal().by(["job"]).build()), "by");
    assert_eq!(
        field(
            minimal()
                .threshold(Severity::High, Comparison::Less, 2.0)
                .build()
        ),
        "thresholds"
    );
    assert_eq!(field(Rule::builder("bad name").gauge("up").build()), "name");
    assert_eq!(
        field(
            Rule::builder("R")
                .rate("x", Duration::ZERO)
                .threshold(Severity::Low, Comparison::Greater, 1.0)
                .build()
        ),
        "expr"
    );
    assert_eq!(field(minimal().escalate_to("pager").build()), "escalate");
    let zero_window = Expr::Rate {
        metric: "x".into(),
        matchers: vec![],
        window: Duration::ZERO,
    };
    assert_eq!(
        field(minimal().also(zero_window, Comparison::Less, 1.0).build()),
        "also"
    );
    let bad_metric = Expr::Gauge {
        metric: "not a metric".into(),
        matchers: vec![],
    };
    assert_eq!(
        field(minimal().also(bad_metric, Comparison::Less, 1.0).build()),
        "also"
    );
    let gauge = Expr::Gauge {
        metric: "workers".into(),
        matchers: vec![],
    };
    assert_eq!(
        field(minimal().also(gauge, Comparison::Less, f64::NAN).build()),
        "also"
    );
    assert!(
        minimal()
            .escalate_after(Duration::from_secs(1))
            .escalate_to("p")
            .build()
            .is_ok()
    );
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
fn builder_names_levels_and_rejects_unusable_names() {
    let rule = minimal()
        .severity_label(Severity::High, "page")
        .build()
        .unwrap();
    assert_eq!(rule.severity_label(Severity::High), "page");
    let text = serde_json::to_string(&rule).unwrap();
    assert!(
        text.contains(r#""severity_labels":{"high":"page"}"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<Rule>(&text).unwrap(), rule);
    let reason = |b: RuleBuilder| match b.build() {
        Err(Error::InvalidRule { field, reason, .. }) => format!("{field}: {reason}"),
        other => panic!("expected InvalidRule, got {other:?}"),
    };
    assert_eq!(
        reason(
            minimal()
                .severity_label(Severity::Low, "page")
                .severity_label(Severity::High, "page")
        ),
        "severity_labels: `low` and `high` are both labelled `page`"
    );
    assert_eq!(
        reason(minimal().severity_label(Severity::Low, "high")),
        "severity_labels: `high` cannot name `low`: it is read as `high`"
    );
    assert_eq!(
        reason(minimal().severity_label(Severity::High, "info")),
        "severity_labels: `info` cannot name `high`: it is read as `low`"
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

#[test]
fn templates_expand_value_and_labels() {
    let l = labels([("route", "/api")]);
    assert_eq!(
        expand_template(
            "{{ $labels.route }} at {{$value}} ({{ humanize }})",
            Some(0.5),
            &l
        ),
        "/api at 0.5 ({{ humanize }})"
    );
    assert_eq!(expand_template("no {{ end", None, &l), "no {{ end");
    assert_eq!(
        expand_template("{{ $labels.x }}|{{ $value }}", None, &l),
        "|NaN"
    );
}
