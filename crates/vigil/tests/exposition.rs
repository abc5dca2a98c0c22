//! Whatever a service records, the exposition stays valid: names and label
//! keys are sanitized, reserved keys renamed, duplicate keys and colliding
//! series merged, values escaped, and each change counted in
//! `vigil_series_rejected_total{reason}`. `promtool check metrics` (Debian
//! package `prometheus`) judges every render.

#![cfg(feature = "listener")]

mod servers;

use std::collections::HashSet;

use proptest::prelude::*;
use vigil::metrics::{counter, gauge, histogram};
use vigil::{Matcher, Monitor, SERIES_REJECTED_TOTAL};

/// Fails unless promtool can parse `text`; its lint findings (naming
/// advice such as a missing `_total`) are not parse errors and pass.
fn assert_promtool_parses(text: &str) {
    let (code, findings) = servers::promtool_metrics(text);
    // 0: clean; 3: lint findings only; anything else: the text is invalid.
    assert!(
        matches!(code, Some(0 | 3)) && !findings.contains("error"),
        "promtool refused the exposition ({code:?}): {findings}\n{text}"
    );
}

/// The series part (name and labels) of every sample line.
fn series_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.rsplit_once(' ').expect("a sample has a value").0)
        .collect()
}

/// Fails when a series appears twice.
fn assert_unique_series(text: &str) {
    let mut seen = HashSet::new();
    for series in series_lines(text) {
        assert!(seen.insert(series), "{series} rendered twice:\n{text}");
    }
}

/// The value of `vigil_series_rejected_total{reason}`, 0 when absent.
fn rejected(text: &str, reason: &str) -> u64 {
    let series = format!("{SERIES_REJECTED_TOTAL}{{service=\"shop\",reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.parse().expect("a counter value"))
}

fn monitor() -> Monitor {
    builder().build().expect("a monitor")
}

fn builder() -> vigil::MonitorBuilder {
    Monitor::builder()
        .global_label("service", "shop")
        .buckets(Matcher::Suffix("_bucketed".into()), &[0.5, 1.0])
        .manual_upkeep()
}

/// The recorded probes: reserved, empty, duplicate and colliding keys and
/// names, and values that differ only in escaping.
fn record_probes(monitor: &Monitor) {
    vigil::with_local_recorder(&monitor.recorder(), || {
        histogram!("h_seconds", "quantile" => "x").record(1.0);
        histogram!("h_bucketed", "le" => "x").record(1.0);
        counter!("empty_key_total", "" => "v").increment(1);
        counter!("name_label_total", "__name__" => "n").increment(1);
        counter!("keys_total", "a-b" => "1", "a.b" => "2").increment(1);
        counter!("").increment(1);
        counter!("a-b").increment(1);
        counter!("a.b").increment(2);
        counter!("values_total", "k" => "a\\b").increment(1);
        counter!("values_total", "k" => "a\\\\b").increment(2);
        counter!("values_total", "k" => "q\"\n").increment(3);
        gauge!("9lives", "service" => "own").set(1.0);
        // A summary whose `_sum` would repeat a counter's series.
        counter!("s_sum").increment(1);
        histogram!("s").record(1.0);
    });
}

#[test]
fn hostile_probes_render_a_valid_exposition() {
    let monitor = monitor();
    record_probes(&monitor);
    let text = monitor.render();
    assert_promtool_parses(&text);
    assert_unique_series(&text);
    for expected in [
        "h_seconds{service=\"shop\",label_quantile=\"x\",quantile=\"0.5\"}",
        "h_bucketed_bucket{service=\"shop\",label_le=\"x\",le=\"0.5\"} 0",
        "empty_key_total{service=\"shop\"} 1",
        "name_label_total{service=\"shop\",label___name__=\"n\"} 1",
        "keys_total{service=\"shop\",a_b=\"1\"} 1",
        "a_b{service=\"shop\"} 3",
        r#"values_total{service="shop",k="a\\b"} 1"#,
        r#"values_total{service="shop",k="a\\\\b"} 2"#,
        r#"values_total{service="shop",k="q\"\n"} 3"#,
        "_9lives{service=\"own\"} 1",
    ] {
        assert!(text.contains(expected), "{expected} missing:\n{text}");
    }
    // The two counters that both expose as `a_b` are stored as one series
    // when registered: their values add up.
    assert_eq!(text.matches("\na_b{").count(), 1, "{text}");
    assert!(!text.contains("# TYPE s summary"), "{text}");
    // Changes are counted once, however often the registry is read.
    let again = monitor.render();
    let third = monitor.render();
    assert_eq!(again, third, "renders are stable");
    assert_promtool_parses(&third);
    assert_eq!(rejected(&third, "invalid_name"), 1, "{third}");
    assert_eq!(rejected(&third, "invalid_label"), 1, "{third}");
    assert_eq!(rejected(&third, "reserved_label"), 3, "{third}");
    assert_eq!(rejected(&third, "duplicate_label"), 1, "{third}");
    assert_eq!(rejected(&third, "collision"), 1, "{third}");
}

#[test]
fn colliding_series_render_once_whatever_the_registration_order() {
    for names in [["x-y", "x.y", "x y"], ["x y", "x.y", "x-y"]] {
        let monitor = monitor();
        vigil::with_local_recorder(&monitor.recorder(), || {
            for (value, name) in (1..).zip(names) {
                counter!(name, "k" => "v").increment(value);
            }
        });
        let text = monitor.render();
        assert_unique_series(&text);
        // One series, into which all three names recorded.
        assert!(text.contains("x_y{service=\"shop\",k=\"v\"} 6\n"), "{text}");
        assert_eq!(rejected(&monitor.render(), "collision"), 2);
    }
}

#[test]
fn prometheus_scrapes_the_probes_and_stores_every_good_series() {
    let monitor = builder().listen("127.0.0.1:0").build().expect("a monitor");
    record_probes(&monitor);
    let target = monitor.listen_address().expect("a listener");
    // Text, then protobuf (negotiated with native histograms on).
    for flags in [&[][..], &["--enable-feature=native-histograms"][..]] {
        let prometheus = servers::Prometheus::start_with(&[target], flags);
        prometheus.wait_for("scraping the target with up=1", |p| {
            p.query_one(r#"up{job="vigil"}"#) == Some(1.0)
        });
        let stored = r#"count({job="vigil",__name__=~"values_total|a_b|keys_total|name_label_total|empty_key_total|_9lives"})"#;
        prometheus.wait_for("storing every good series", |p| {
            p.query_one(stored) == Some(8.0)
        });
        assert_eq!(
            prometheus.query_one(r#"values_total{k="a\\b"}"#),
            Some(1.0),
            "{flags:?}"
        );
        assert_eq!(
            prometheus.query_one(r#"sum(name_label_total{label___name__="n"})"#),
            Some(1.0),
            "{flags:?}"
        );
    }
}

/// Names, keys and values built from characters that the grammar treats
/// differently: valid ones, separators, digits, quotes, backslashes, line
/// feeds and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('b'),
            Just('_'),
            Just(':'),
            Just('1'),
            Just('-'),
            Just('.'),
            Just(' '),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('é'),
        ],
        0..4,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// One recorded series: kind (0 counter, 1 gauge, 2 summary, 3 histogram
/// with buckets), name and labels.
fn series() -> impl Strategy<Value = (u8, String, Vec<(String, String)>)> {
    (
        0..4u8,
        text(),
        proptest::collection::vec(
            (
                prop_oneof![
                    text(),
                    Just("le".to_owned()),
                    Just("quantile".to_owned()),
                    Just("service".to_owned()),
                    Just("__name__".to_owned())
                ],
                text(),
            ),
            0..4,
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_recorded_series_render_a_valid_exposition(
        recorded in proptest::collection::vec(series(), 1..24),
    ) {
        let monitor = monitor();
        vigil::with_local_recorder(&monitor.recorder(), || {
            for (kind, name, labels) in &recorded {
                let labels: Vec<vigil::metrics::Label> = labels
                    .iter()
                    .map(|(key, value)| vigil::metrics::Label::new(key.clone(), value.clone()))
                    .collect();
                match kind {
                    0 => counter!(name.clone(), labels).increment(1),
                    1 => gauge!(name.clone(), labels).set(2.0),
                    2 => histogram!(name.clone(), labels).record(0.25),
                    _ => histogram!(format!("{name}_bucketed"), labels).record(0.25),
                }
            }
        });
        monitor.render();
        let text = monitor.render();
        assert_unique_series(&text);
        assert_promtool_parses(&text);
    }
}
