//! Values that cannot mean what was written are refused, with the file,
//! item, field and reason, whether they come from a file or from code:
//! contradictory thresholds, durations longer than a year, windows that
//! cannot work at the evaluation interval, and documents nested too deeply
//! (which are refused before the parser sees them, in linear time).

#![cfg(all(feature = "config", feature = "routing", feature = "rulesets"))]

mod common;

use common::{toml_err, yaml_err};
use std::time::{Duration, Instant, UNIX_EPOCH};

use vigil_alert::config::{AlertConfig, ConfigError, Item, Location, MAX_NESTING};
use vigil_alert::{
    Aggregation, AlsoCondition, Baseline, Comparison, Engine, Error, Expr, Matcher, Result, Route,
    Routing, Rule, RuleBuilder, Severity, Silence,
};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// More than a year.
const TWO_YEARS: Duration = Duration::from_secs(2 * 31_557_600);

/// A YAML file with one gauge rule and the given rule fields.
fn yaml_rule(fields: &str) -> String {
    format!(
        "rules:\n  - name: DiskFull\n    expr: {{ gauge: {{ metric: disk_usage_ratio }} }}\n{fields}"
    )
}

/// The same rule in TOML.
fn toml_rule(fields: &str) -> String {
    format!(
        "[[rules]]\nname = \"DiskFull\"\nexpr = {{ gauge = {{ metric = \"disk_usage_ratio\" }} }}\n{fields}"
    )
}

fn disk() -> RuleBuilder {
    Rule::builder("DiskFull").gauge("disk_usage_ratio")
}

fn code_err(builder: RuleBuilder) -> String {
    builder.build().unwrap_err().to_string()
}

fn rule_item() -> Item {
    Item::Rule {
        index: 0,
        name: Some("DiskFull".into()),
    }
}

#[test]
fn a_more_severe_threshold_must_be_further_out() {
    use Comparison::{Greater, GreaterOrEqual, Less};
    assert_eq!(
        code_err(disk().threshold(Severity::Medium, Greater, 0.9).threshold(
            Severity::Critical,
            Greater,
            0.5
        )),
        "invalid rule `DiskFull`: `thresholds` critical `> 0.5` is not above medium `> 0.9`: \
         a more severe level needs a limit further from normal, or the less severe one could never be reported"
    );
    // Equal limits hide the lesser level too, whatever the operators.
    assert_eq!(
        code_err(
            disk()
                .threshold(Severity::Low, GreaterOrEqual, 0.9)
                .threshold(Severity::High, Greater, 0.9)
        ),
        "invalid rule `DiskFull`: `thresholds` high `> 0.9` is not above low `>= 0.9`: \
         a more severe level needs a limit further from normal, or the less severe one could never be reported"
    );
    // The mirror for rules on low values.
    assert_eq!(
        code_err(
            Rule::builder("CacheCold")
                .gauge("cache_hit_ratio")
                .threshold(Severity::Medium, Less, 0.5)
                .threshold(Severity::High, Less, 0.8)
        ),
        "invalid rule `CacheCold`: `thresholds` high `< 0.8` is not below medium `< 0.5`: \
         a more severe level needs a limit further from normal, or the less severe one could never be reported"
    );
    // The order the thresholds were added in does not matter.
    assert!(
        disk()
            .threshold(Severity::Critical, Greater, 0.95)
            .threshold(Severity::Medium, Greater, 0.8)
            .build()
            .is_ok()
    );
    assert!(
        Rule::builder("CacheCold")
            .gauge("cache_hit_ratio")
            .threshold(Severity::Medium, Less, 0.8)
            .threshold(Severity::High, Less, 0.5)
            .build()
            .is_ok()
    );
}

#[test]
fn thresholds_of_a_rule_point_the_same_way() {
    assert_eq!(
        code_err(
            disk()
                .threshold(Severity::Medium, Comparison::Less, 0.1)
                .threshold(Severity::Critical, Comparison::Greater, 0.95)
        ),
        "invalid rule `DiskFull`: `thresholds` medium is `< 0.1` but critical is `> 0.95`: \
         the thresholds of a rule must all alert on high values (> or >=) or all on low values (< or <=); \
         write one rule per direction"
    );
}

#[test]
fn recovery_is_on_the_healthy_side_of_the_thresholds() {
    let rule = || {
        disk()
            .threshold(Severity::Medium, Comparison::Greater, 0.9)
            .threshold(Severity::Critical, Comparison::Greater, 0.95)
    };
    assert_eq!(
        code_err(rule().recover_below(0.92)),
        "invalid rule `DiskFull`: `recover` `< 0.92` is not below the threshold it recovers from, medium `> 0.9`: \
         the recovery limit must be on the healthy side of every threshold, or it changes nothing"
    );
    assert_eq!(
        code_err(rule().recover_when(Comparison::LessOrEqual, 0.9)),
        "invalid rule `DiskFull`: `recover` `<= 0.9` is not below the threshold it recovers from, medium `> 0.9`: \
         the recovery limit must be on the healthy side of every threshold, or it changes nothing"
    );
    assert_eq!(
        code_err(rule().recover_above(0.8)),
        "invalid rule `DiskFull`: `recover` `> 0.8` points the same way as the thresholds (`>`): \
         a rule that fires above its thresholds recovers below a limit, e.g. `< 0.8`"
    );
    assert!(rule().recover_below(0.85).build().is_ok());
    let low = || {
        Rule::builder("CacheCold")
            .gauge("cache_hit_ratio")
            .threshold(Severity::High, Comparison::Less, 0.5)
    };
    assert_eq!(
        code_err(low().recover_above(0.4)),
        "invalid rule `CacheCold`: `recover` `> 0.4` is not above the threshold it recovers from, high `< 0.5`: \
         the recovery limit must be on the healthy side of every threshold, or it changes nothing"
    );
    assert_eq!(
        code_err(low().recover_below(0.7)),
        "invalid rule `CacheCold`: `recover` `< 0.7` points the same way as the thresholds (`<`): \
         a rule that fires below its thresholds recovers above a limit, e.g. `> 0.7`"
    );
    assert!(low().recover_above(0.7).build().is_ok());
}

#[test]
fn baselines_are_ordered_and_can_hold() {
    let stddevs = |k| Baseline::stddevs(k, HOUR);
    assert_eq!(
        code_err(
            disk()
                .threshold(Severity::Medium, Comparison::Greater, stddevs(3.0))
                .threshold(Severity::Critical, Comparison::Greater, stddevs(2.0))
        ),
        "invalid rule `DiskFull`: `thresholds` critical `> {stddevs: 2, window: 1h}` is not above \
         medium `> {stddevs: 3, window: 1h}`: a more severe level needs a limit further from normal, \
         or the less severe one could never be reported"
    );
    assert_eq!(
        code_err(
            Rule::builder("CacheCold")
                .gauge("cache_hit_ratio")
                .threshold(
                    Severity::Medium,
                    Comparison::Less,
                    Baseline::quantile(0.05, HOUR)
                )
                .threshold(
                    Severity::High,
                    Comparison::Less,
                    Baseline::quantile(0.1, HOUR)
                )
        ),
        "invalid rule `CacheCold`: `thresholds` high `< {quantile: 0.1, window: 1h}` is not below \
         medium `< {quantile: 0.05, window: 1h}`: a more severe level needs a limit further from normal, \
         or the less severe one could never be reported"
    );
    // Different windows read different histories: not comparable.
    assert!(
        disk()
            .threshold(Severity::Medium, Comparison::Greater, stddevs(3.0))
            .threshold(
                Severity::Critical,
                Comparison::Greater,
                Baseline::stddevs(2.0, DAY)
            )
            .build()
            .is_ok()
    );
    assert_eq!(
        code_err(disk().threshold(Severity::High, Comparison::Greater, stddevs(-2.0))),
        "invalid rule `DiskFull`: `thresholds` high: stddevs must not be negative, got -2 \
         (the operator picks the side: mean + k·σ for > and >=, mean - k·σ for < and <=)"
    );
    assert_eq!(
        code_err(disk().threshold(
            Severity::High,
            Comparison::Greater,
            stddevs(3.0).min_samples(20_000)
        )),
        "invalid rule `DiskFull`: `thresholds` high: min_samples 20000 is more than the 16384 samples \
         a baseline keeps, so the threshold could never hold"
    );
}

#[test]
fn contradictory_thresholds_in_files_name_file_rule_and_field() {
    let cases = [
        (
            "    thresholds:\n      warning: '> 0.9'\n      critical: '> 0.5'\n",
            "[rules.thresholds]\nwarning = \"> 0.9\"\ncritical = \"> 0.5\"\n",
            "thresholds",
            "critical `> 0.5` is not above warning `> 0.9`: a more severe level needs a limit further \
             from normal, or the less severe one could never be reported",
        ),
        (
            "    thresholds: { warning: '> 0.9' }\n    recover: '< 0.95'\n",
            "recover = \"< 0.95\"\n[rules.thresholds]\nwarning = \"> 0.9\"\n",
            "recover",
            "`< 0.95` is not below the threshold it recovers from, warning `> 0.9`: the recovery limit \
             must be on the healthy side of every threshold, or it changes nothing",
        ),
        (
            "    thresholds: { warning: '> 0.9' }\n    recover: { op: '>', value: 0.5 }\n",
            "recover = { op = \">\", value = 0.5 }\n[rules.thresholds]\nwarning = \"> 0.9\"\n",
            "recover",
            "`> 0.5` points the same way as the thresholds (`>`): a rule that fires above its thresholds \
             recovers below a limit, e.g. `< 0.5`",
        ),
        (
            "    thresholds: { info: '< 0.1', critical: '> 0.9' }\n",
            "thresholds = { info = \"< 0.1\", critical = \"> 0.9\" }\n",
            "thresholds",
            "info is `< 0.1` but critical is `> 0.9`: the thresholds of a rule must all alert on high values \
             (> or >=) or all on low values (< or <=); write one rule per direction",
        ),
    ];
    for (yaml, toml, field, message) in cases {
        for err in [yaml_err(&yaml_rule(yaml)), toml_err(&toml_rule(toml))] {
            let file = err.file().to_owned();
            assert_eq!(err.item(), Some(&rule_item()), "{err}");
            assert_eq!(err.field(), Some(field), "{err}");
            assert_eq!(err.location(), None, "{err}");
            assert_eq!(
                err.to_string(),
                format!("{file}: rule \"DiskFull\": field \"{field}\": {message}")
            );
        }
    }
    // A config built in code says so.
    let config = AlertConfig::new().with_rule(Rule {
        recover: Some(vigil_alert::Recovery {
            op: Comparison::Less,
            value: 2.0,
        }),
        ..disk()
            .threshold(Severity::High, Comparison::Greater, 1.0)
            .build()
            .unwrap()
    });
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "<code>: rule \"DiskFull\": field \"recover\": `< 2` is not below the threshold it recovers from, \
         high `> 1`: the recovery limit must be on the healthy side of every threshold, or it changes nothing"
    );
    // And an engine refuses such a rule however it was made.
    let rule: Rule = serde_json::from_str(
        r#"{"name": "DiskFull", "expr": {"gauge": {"metric": "disk_usage_ratio"}},
            "thresholds": {"medium": "> 0.9", "critical": {"op": ">", "value": 0.9}}}"#,
    )
    .unwrap();
    assert_eq!(
        Engine::new([rule]).unwrap_err().to_string(),
        "invalid rule `DiskFull`: `thresholds` critical `> 0.9` is not above medium `> 0.9`: \
         a more severe level needs a limit further from normal, or the less severe one could never be reported"
    );
}

#[test]
fn durations_longer_than_a_year_are_refused_in_code() {
    let rule = || disk().threshold(Severity::High, Comparison::Greater, 0.9);
    let long = "2years is longer than one year, the longest duration allowed";
    assert_eq!(
        code_err(rule().for_duration(TWO_YEARS)),
        format!("invalid rule `DiskFull`: `for` {long}")
    );
    assert_eq!(
        code_err(rule().keep_firing_for(TWO_YEARS)),
        format!("invalid rule `DiskFull`: `keep_firing_for` {long}")
    );
    assert_eq!(
        code_err(
            Rule::builder("Errors")
                .rate("errors_total", TWO_YEARS)
                .threshold(Severity::High, Comparison::Greater, 1.0)
        ),
        format!("invalid rule `Errors`: `expr` window {long}")
    );
    assert_eq!(
        code_err(rule().also(
            vigil_alert::Expr::Rate {
                metric: "writes_total".into(),
                matchers: vec![],
                window: TWO_YEARS,
            },
            Comparison::Greater,
            0.0
        )),
        format!("invalid rule `DiskFull`: `also` window {long}")
    );
    assert_eq!(
        code_err(disk().threshold(
            Severity::High,
            Comparison::Greater,
            Baseline::stddevs(3.0, TWO_YEARS)
        )),
        format!("invalid rule `DiskFull`: `thresholds` high: window {long}")
    );
    assert_eq!(
        code_err(rule().escalate_after(TWO_YEARS)),
        format!("invalid rule `DiskFull`: `escalate` `after` {long}")
    );
    // One year itself is allowed.
    let year = Duration::from_secs(31_557_600);
    assert_eq!(vigil_alert::MAX_DURATION, year);
    assert!(rule().for_duration(year).build().is_ok());

    let engine = |routing: Routing| Engine::builder().routing(routing).build().unwrap_err();
    assert_eq!(
        engine(Routing::new("ops").repeat_interval(TWO_YEARS)).to_string(),
        format!("invalid route to receiver `ops`: `repeat_interval` {long}")
    );
    assert_eq!(
        engine(Routing::new("ops").group_wait(TWO_YEARS)).to_string(),
        format!("invalid route to receiver `ops`: `group_wait` {long}")
    );
    assert_eq!(
        engine(Routing::new("ops").route(Route::new("pager").group_interval(TWO_YEARS)))
            .to_string(),
        format!("invalid route to receiver `pager`: `group_interval` {long}")
    );
    assert_eq!(
        Engine::builder()
            .silence_retention(TWO_YEARS)
            .build()
            .unwrap_err()
            .to_string(),
        format!("invalid engine setting `silence_retention`: {long}")
    );
    let mut engine = Engine::new([]).unwrap();
    let silence =
        Silence::new(UNIX_EPOCH, UNIX_EPOCH + TWO_YEARS).matcher(Matcher::equal("a", "b"));
    assert_eq!(
        engine.add_silence(silence.clone()).unwrap_err().to_string(),
        "invalid silence: it lasts 2years, longer than one year, the longest a silence may last"
    );
    assert_eq!(
        AlertConfig::new()
            .with_silence(silence)
            .validate()
            .unwrap_err()
            .to_string(),
        "<code>: silences[0]: field \"ends_at\": it lasts 2years, longer than one year, \
         the longest a silence may last"
    );
}

#[test]
fn durations_longer_than_a_year_are_refused_in_files_at_their_position() {
    let err = yaml_err(&yaml_rule(
        "    thresholds: { high: '> 0.9' }\n    for: 500000000years\n",
    ));
    assert_eq!(
        err.to_string(),
        "rules.yml: rule \"DiskFull\": field \"for\": \"500000000years\" is longer than one year, \
         the longest duration allowed (line 5, column 10)"
    );
    assert_eq!(err.item(), Some(&rule_item()));
    let err = toml_err(&toml_rule(
        "for = \"500000000years\"\nthresholds = { high = \"> 0.9\" }\n",
    ));
    assert_eq!(
        err.to_string(),
        "rules.toml: rule \"DiskFull\": field \"for\": \"500000000years\" is longer than one year, \
         the longest duration allowed (line 4, column 7)"
    );
    let fields = [
        ("    keep_firing_for: 400d\n", "keep_firing_for", "\"400d\""),
        ("    escalate: { after: 2y }\n", "escalate.after", "\"2y\""),
    ];
    for (extra, field, written) in fields {
        let err = yaml_err(&yaml_rule(&format!(
            "    thresholds: {{ high: '> 0.9' }}\n{extra}"
        )));
        assert_eq!(err.field(), Some(field), "{err}");
        assert_eq!(err.line(), Some(5), "{err}");
        assert!(
            err.to_string().contains(&format!(
                "{written} is longer than one year, the longest duration allowed"
            )),
            "{err}"
        );
    }
    let err = yaml_err(
        "rules:\n  - name: Errors\n    expr: { rate: { metric: errors_total, window: 13 months } }\n    thresholds: { high: '> 1' }\n",
    );
    assert_eq!(
        err.to_string(),
        "rules.yml: rule \"Errors\": field \"expr.rate.window\": \"13 months\" is longer than one year, \
         the longest duration allowed (line 3, column 51)"
    );
    let err = yaml_err(&yaml_rule(
        "    thresholds:\n      high: { op: '>', value: { stddevs: 3, window: 1000d } }\n",
    ));
    assert_eq!(err.field(), Some("thresholds.high.value.window"), "{err}");
    let err = yaml_err(
        "routing:\n  receiver: ops\n  routes:\n    - receiver: pager\n      repeat_interval: 9999h\n",
    );
    assert_eq!(
        err.to_string(),
        "rules.yml: routing.routes[0] (receiver \"pager\"): field \"repeat_interval\": \"9999h\" is longer \
         than one year, the longest duration allowed (line 5, column 24)"
    );
    let err = yaml_err("rulesets:\n  service_targets: { window: 2y }\n");
    assert_eq!(err.item(), Some(&Item::ServiceTargets), "{err}");
    assert_eq!(err.field(), Some("window"), "{err}");
    let err = yaml_err(
        "silences:\n  - matchers: ['a=\"b\"']\n    starts_at: 2024-01-01T00:00:00Z\n    ends_at: 2026-01-01T00:00:00Z\n",
    );
    assert_eq!(
        err.to_string(),
        "rules.yml: silences[0]: field \"ends_at\": it lasts 2years 12h, longer than one year, \
         the longest a silence may last"
    );
    // `1y` is exactly the limit.
    let ok = yaml_rule("    thresholds: { high: '> 0.9' }\n    for: 1y\n");
    assert_eq!(
        AlertConfig::from_yaml_str(&ok, "rules.yml")
            .unwrap()
            .rules()[0]
            .for_duration,
        vigil_alert::MAX_DURATION
    );
}

#[test]
fn windows_must_work_at_the_evaluation_interval() {
    let errors = |window| {
        Rule::builder("Errors")
            .rate("errors_total", window)
            .threshold(Severity::High, Comparison::Greater, 1.0)
            .build()
            .unwrap()
    };
    let build = |rule: Rule, interval| {
        Engine::builder()
            .rule(rule)
            .evaluation_interval(interval)
            .build()
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let secs = Duration::from_secs;
    assert_eq!(
        build(errors(secs(10)), secs(15)).unwrap_err(),
        "invalid rule `Errors`: `expr` window 10s is shorter than the evaluation interval 15s, \
         so it never holds the two samples a rate needs"
    );
    assert_eq!(build(errors(secs(15)), secs(15)), Ok(()));
    let baseline = disk()
        .threshold(
            Severity::High,
            Comparison::Greater,
            Baseline::stddevs(3.0, secs(60)),
        )
        .build()
        .unwrap();
    assert_eq!(
        build(baseline.clone(), secs(15)).unwrap_err(),
        "invalid rule `DiskFull`: `thresholds` high: baseline window 1m holds at most 4 earlier values \
         at the evaluation interval 15s, fewer than min_samples 10, so the threshold never holds"
    );
    assert_eq!(build(baseline, secs(6)), Ok(()));
    assert_eq!(
        build(errors(secs(60)), Duration::ZERO).unwrap_err(),
        "invalid engine setting `evaluation_interval`: must be longer than zero"
    );
    assert_eq!(
        build(errors(secs(60)), TWO_YEARS).unwrap_err(),
        "invalid engine setting `evaluation_interval`: 2years is longer than one year, \
         the longest duration allowed"
    );

    // In a file, the top-level `evaluation_interval` applies to every rule.
    let err = yaml_err(
        "evaluation_interval: 30s\nrules:\n  - name: Errors\n    expr: { rate: { metric: errors_total, window: 20s } }\n    thresholds: { high: '> 1' }\n",
    );
    assert_eq!(
        err.to_string(),
        "rules.yml: rule \"Errors\": field \"expr\": window 20s is shorter than the evaluation interval 30s, \
         so it never holds the two samples a rate needs"
    );
    let err = toml_err(
        "evaluation_interval = \"30s\"\n[[rules]]\nname = \"Errors\"\nexpr = { rate = { metric = \"errors_total\", window = \"20s\" } }\nthresholds = { high = \"> 1\" }\n",
    );
    assert_eq!(err.field(), Some("expr"), "{err}");
    let config = AlertConfig::from_yaml_str(
        "evaluation_interval: 15s\nrules:\n  - name: Errors\n    expr: { rate: { metric: errors_total, window: 1m } }\n    thresholds: { high: '> 1' }\n",
        "rules.yml",
    )
    .unwrap();
    assert_eq!(config.evaluation_interval(), Some(secs(15)));
    // The interval reaches the engine, and code-built configs check it too.
    let err = AlertConfig::new()
        .with_rule(errors(secs(10)))
        .with_evaluation_interval(secs(15))
        .validate()
        .unwrap_err();
    assert_eq!(err.field(), Some("expr"));
    assert_eq!(
        err.item(),
        Some(&Item::Rule {
            index: 0,
            name: Some("Errors".into())
        })
    );
    assert!(config.into_engine().is_ok());
}

/// A rule file of `n` nested flow lists: `rules: [[[...]]]`.
fn flow_lists(n: usize) -> String {
    format!("rules: {}{}\n", "[".repeat(n), "]".repeat(n))
}

/// A rule file of `n` nested block lists on one line: `- - - x`.
fn block_lists(n: usize) -> String {
    format!("rules:\n  {}x\n", "- ".repeat(n))
}

/// Loads `text`, asserting that it fails within 2 s (in any profile).
fn rejected_quickly(text: &str, file: &str) -> ConfigError {
    let started = Instant::now();
    let result = if file.ends_with(".toml") {
        AlertConfig::from_toml_str(text, file)
    } else {
        AlertConfig::from_yaml_str(text, file)
    };
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{} bytes took {took:?}",
        text.len()
    );
    result.unwrap_err()
}

#[test]
fn deeply_nested_documents_are_refused_before_parsing() {
    let deep = format!(
        "lists and maps are nested more than {MAX_NESTING} levels deep; a config needs only a few"
    );
    // 200 KB of `[` and `]`: the 65th bracket is refused.
    let text = flow_lists(100_000);
    assert!(text.len() > 200_000);
    let err = rejected_quickly(&text, "rules.yml");
    assert_eq!(
        err.to_string(),
        format!("rules.yml: {deep} (line 1, column 72)")
    );
    assert_eq!(
        err.location(),
        Some(Location {
            line: 1,
            column: 72
        })
    );
    assert_eq!(err.item(), None);

    // Block nesting costs the parser no more than its length; the schema
    // refuses it at the first level that is not a rule.
    let text = block_lists(100_000);
    assert!(text.len() > 200_000);
    let err = rejected_quickly(&text, "rules.yml");
    assert_eq!(
        err.to_string(),
        "rules.yml: rules[0]: invalid type: sequence, expected a rule: a map with name, expr and thresholds (line 2, column 5)"
    );

    // The `toml` crate stops at 80 levels itself.
    let toml_deep = "cannot recurse further; max recursion depth met";
    let text = format!("rules = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let err = rejected_quickly(&text, "rules.toml");
    assert_eq!(
        err.to_string(),
        format!("rules.toml: {toml_deep} (line 1, column 89)")
    );
    let text = format!(
        "rules = {}1{}\n",
        "{a = ".repeat(40_000),
        "}".repeat(40_000)
    );
    let err = rejected_quickly(&text, "rules.toml");
    assert!(
        err.to_string()
            .starts_with(&format!("rules.toml: {toml_deep} (line 1, column ")),
        "{err}"
    );

    // Within the limit, a wide 200 KB document costs the parser little.
    let wide = format!(
        "rules: {}{}{}\n",
        "[".repeat(MAX_NESTING - 1),
        "1, ".repeat(70_000),
        "]".repeat(MAX_NESTING - 1)
    );
    assert!(wide.len() > 200_000);
    let err = rejected_quickly(&wide, "rules.yml");
    assert!(
        err.to_string()
            .starts_with("rules.yml: rules[0]: invalid type: sequence"),
        "{err}"
    );

    // Nesting up to the limit is left to the parser (and the schema).
    let err = yaml_err(&flow_lists(MAX_NESTING));
    assert_eq!(
        err.to_string(),
        "rules.yml: rules[0]: invalid type: sequence, expected a rule: a map with name, expr and thresholds (line 1, column 9)"
    );
}

#[test]
fn errors_name_their_item() {
    // YAML: the rule is named by its `name`.
    let err = yaml_err(&yaml_rule(
        "    thresholds: { high: '> 0.9' }\n    for: soon\n",
    ));
    assert_eq!(err.item(), Some(&rule_item()));
    // A name written after the bad field names the rule too, and the line
    // and column still point at the field.
    let err = yaml_err(
        "rules:\n  - expr: { gauge: { metric: up } }\n    for: soon\n    thresholds: { high: '> 0.9' }\n    name: Late\n",
    );
    assert_eq!(
        err.item(),
        Some(&Item::Rule {
            index: 0,
            name: Some("Late".into())
        })
    );
    assert!(
        err.to_string()
            .starts_with("rules.yml: rule \"Late\": field \"for\": invalid duration \"soon\""),
        "{err}"
    );
    assert_eq!(err.line(), Some(3));
    // TOML reads keys sorted (`expr` before `name`); the item is still named.
    let err = toml_err(&toml_rule(
        "for = \"soon\"\nthresholds = { high = \"> 0.9\" }\n",
    ));
    assert_eq!(err.item(), Some(&rule_item()));
    let err = yaml_err(
        "routing:\n  receiver: ops\n  routes:\n    - receiver: pager\n      group_wait: later\n",
    );
    assert_eq!(
        err.item(),
        Some(&Item::Route {
            index: 0,
            receiver: Some("pager".into())
        })
    );
}

#[test]
fn text_with_multibyte_characters_is_refused_not_panicked_on() {
    // The offset check of a time once split this inside `€`.
    let err = yaml_err(
        "silences:\n  - matchers: ['a=\"b\"']\n    starts_at: \"2024-05-01T€é€\"\n    ends_at: 2024-05-02T00:00:00Z\n",
    );
    assert_eq!(err.field(), Some("starts_at"), "{err}");
    assert!(
        err.to_string().contains("invalid time \"2024-05-01T€é€\""),
        "{err}"
    );
    assert_eq!(err.line(), Some(3), "{err}");
    let err = toml_err(
        "[[silences]]\nmatchers = ['a=\"b\"']\nstarts_at = \"2024-05-01T€é€\"\nends_at = 2024-05-02T00:00:00Z\n",
    );
    assert_eq!(err.field(), Some("starts_at"), "{err}");
    // Nesting past the limit after multibyte text is located in characters.
    let text = format!(
        "# ééé\nrules: {}",
        flow_lists(100).trim_start_matches("rules: ")
    );
    let err = yaml_err(&text);
    assert_eq!(
        err.location(),
        Some(Location {
            line: 2,
            column: 72
        }),
        "{err}"
    );
}

#[cfg(feature = "delivery")]
#[tokio::test]
async fn delivery_timers_longer_than_a_year_are_refused() {
    use vigil_alert::alertmanager::Sender;
    use vigil_alert::notify::{Dispatcher, WebhookNotifier};
    let long = "2years is longer than one year, the longest duration allowed";
    let webhook = WebhookNotifier::builder("http://alertmanager:9093")
        .alertmanager()
        .firing_ttl(TWO_YEARS)
        .build()
        .unwrap_err();
    assert_eq!(
        webhook.to_string(),
        format!("invalid setting `firing_ttl`: {long} (WebhookBuilder)")
    );
    let dispatcher = |b: vigil_alert::notify::DispatcherBuilder| b.build().unwrap_err().to_string();
    assert_eq!(
        dispatcher(Dispatcher::builder().timeout(TWO_YEARS)),
        format!("invalid setting `timeout`: {long} (DispatcherBuilder)")
    );
    assert_eq!(
        dispatcher(
            Dispatcher::builder()
                .initial_backoff(TWO_YEARS)
                .max_backoff(TWO_YEARS)
        ),
        format!("invalid setting `initial_backoff`: {long} (DispatcherBuilder)")
    );
    let sender = |b: vigil_alert::alertmanager::SenderBuilder| {
        b.alertmanager("http://127.0.0.1:9")
            .build()
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        sender(Sender::builder().resend_delay(TWO_YEARS)),
        format!("invalid setting `resend_delay`: {long} (SenderBuilder)")
    );
    assert_eq!(
        sender(Sender::builder().evaluation_interval(TWO_YEARS)),
        format!("invalid setting `evaluation_interval`: {long} (SenderBuilder)")
    );
}

#[test]
fn a_built_engine_checks_an_interval_learnt_later() {
    let engine = Engine::new([Rule::builder("Errors")
        .rate("errors_total", Duration::from_secs(10))
        .threshold(Severity::High, Comparison::Greater, 1.0)
        .build()
        .unwrap()])
    .unwrap();
    assert_eq!(
        engine
            .check_evaluation_interval(Duration::from_secs(15))
            .unwrap_err()
            .to_string(),
        "invalid rule `Errors`: `expr` window 10s is shorter than the evaluation interval 15s, \
         so it never holds the two samples a rate needs"
    );
    assert!(
        engine
            .check_evaluation_interval(Duration::from_secs(5))
            .is_ok()
    );
    assert_eq!(
        engine
            .check_evaluation_interval(Duration::ZERO)
            .unwrap_err()
            .to_string(),
        "invalid engine setting `evaluation_interval`: must be longer than zero"
    );
}

#[test]
fn conditions_that_can_never_hold_are_refused() {
    let errors = || Rule::builder("Errors").rate("errors_total", Duration::from_secs(60));
    assert_eq!(
        code_err(errors().threshold(Severity::High, Comparison::Less, 0.0)),
        "invalid rule `Errors`: `thresholds` high `< 0` can never hold: a rate is never negative"
    );
    assert_eq!(
        code_err(
            errors()
                .threshold(Severity::High, Comparison::Greater, 5.0)
                .recover_when(Comparison::LessOrEqual, -1.0)
        ),
        "invalid rule `Errors`: `recover` `<= -1` can never hold: a rate is never negative, \
         so an alerting instance would never resolve"
    );
    assert_eq!(
        code_err(
            disk()
                .threshold(Severity::High, Comparison::Greater, 0.9)
                .also(
                    vigil_alert::Expr::Histogram {
                        metric: "write_seconds".into(),
                        matchers: vec![],
                        stat: vigil_alert::HistogramStat::Count,
                        window: Duration::from_secs(60),
                    },
                    Comparison::Less,
                    0.0
                )
        ),
        "invalid rule `DiskFull`: `also` `< 0` can never hold: a histogram count is never negative"
    );
    // `<= 0` holds for an idle counter, and gauges may be negative.
    assert!(
        errors()
            .threshold(Severity::High, Comparison::LessOrEqual, 0.0)
            .build()
            .is_ok()
    );
    assert!(
        disk()
            .threshold(Severity::High, Comparison::Less, -1.0)
            .build()
            .is_ok()
    );
    let err = yaml_err(
        "rules:\n  - name: Errors\n    expr: { ratio: { numerator: { metric: a }, denominator: { metric: b }, window: 5m } }\n    thresholds: { warning: '< 0' }\n",
    );
    assert_eq!(
        err.to_string(),
        "rules.yml: rule \"Errors\": field \"thresholds\": warning `< 0` can never hold: a ratio of rates is never negative"
    );
}

/// A valid rule to change.
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
