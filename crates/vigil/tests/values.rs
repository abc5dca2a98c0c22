//! Values that cannot be recorded as given are counted, never lost
//! silently; JSON summaries with non-finite numbers read back; and every
//! histogram read of a render agrees with itself while other threads
//! record (`_sum` with `_count`, `_count` with the `+Inf` bucket, the
//! buckets with each other, the native buckets with `sample_count`).

#![cfg(feature = "listener")]

mod proto;
mod servers;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prost::Message as _;
use vigil::{Matcher, MetricsSummary, Monitor, Summary};

/// The counter of values histograms did not record as given.
const REJECTED: &str = "vigil_values_rejected_total";

/// The value of the one line of `text` that starts with `series` and a
/// space; panics naming the series when there is none or more than one.
fn sample(text: &str, series: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a number"))
        .collect();
    assert_eq!(values.len(), 1, "{series} in\n{text}");
    values[0]
}

#[test]
fn rejected_values_are_counted_per_histogram_and_reason() {
    let monitor = Monitor::builder()
        .global_label("service", "shop")
        .manual_upkeep()
        .build()
        .unwrap();
    vigil::with_local_recorder(&monitor.recorder(), || {
        let a = metrics::histogram!("request-seconds", "route" => "/a");
        for value in [f64::NAN, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.25] {
            a.record(value);
        }
        a.record_many(-1.0, 3);
        a.record(1e12); // far above the default highest value, 1 h
        a.record(0.5);
        a.record(-0.0); // zero, recorded
        metrics::histogram!("request-seconds", "route" => "/b").record(f64::NAN);
        metrics::histogram!("nan_only_seconds").record_many(f64::NAN, 2);
        metrics::histogram!("clean_seconds").record(0.1);
    });

    let text = monitor.render();
    let rejected = |metric: &str, reason: &str| {
        sample(
            &text,
            &format!(r#"{REJECTED}{{service="shop",metric="{metric}",reason="{reason}"}}"#),
        )
    };
    // Both series of the exposed name `request_seconds` add up.
    assert_eq!(rejected("request_seconds", "nan"), 3.0);
    assert_eq!(rejected("request_seconds", "positive_infinity"), 1.0);
    assert_eq!(rejected("request_seconds", "negative_infinity"), 1.0);
    assert_eq!(rejected("request_seconds", "negative"), 4.0);
    assert_eq!(rejected("request_seconds", "clamped"), 1.0);
    assert_eq!(rejected("nan_only_seconds", "nan"), 2.0);
    // Reasons and histograms without any are not written.
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(REJECTED)).collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(text.contains(&format!(
        "# HELP {REJECTED} Values recorded into a histogram that were dropped (NaN, infinite, negative) or clamped to its highest value, by histogram and reason\n# TYPE {REJECTED} counter\n"
    )));
    // The clamped value counts at the highest value (3 600 s); the dropped
    // ones nowhere.
    let a = r#"{service="shop",route="/a"}"#;
    assert_eq!(sample(&text, &format!("request_seconds_count{a}")), 3.0);
    assert_eq!(sample(&text, &format!("request_seconds_sum{a}")), 3_600.5);
    assert_eq!(
        sample(&text, r#"request_seconds_count{service="shop",route="/b"}"#),
        0.0
    );
    servers::promtool_check_metrics(&text).unwrap();

    // The JSON summary has the same counts, per series (names as
    // registered: sanitized).
    let summary = monitor.summary();
    let rejected_of = |route: Option<&str>, name: &str| {
        summary
            .histograms
            .iter()
            .find(|h| h.name == name && h.labels.get("route").map(String::as_str) == route)
            .map(|h| h.rejected.clone())
            .unwrap_or_else(|| panic!("{name} {route:?} in {:#?}", summary.histograms))
    };
    let expected: BTreeMap<String, u64> = [
        ("nan", 2),
        ("positive_infinity", 1),
        ("negative_infinity", 1),
        ("negative", 4),
        ("clamped", 1),
    ]
    .into_iter()
    .map(|(reason, n)| (reason.to_owned(), n))
    .collect();
    assert_eq!(rejected_of(Some("/a"), "request_seconds"), expected);
    assert_eq!(
        rejected_of(Some("/b"), "request_seconds"),
        BTreeMap::from([("nan".to_owned(), 1)])
    );
    assert!(rejected_of(None, "clean_seconds").is_empty());
    let json: serde_json::Value = serde_json::to_value(&summary).unwrap();
    let clean = json["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "clean_seconds")
        .unwrap();
    assert!(clean.get("rejected").is_none(), "{clean}");
}

#[test]
fn a_service_metric_of_the_same_name_keeps_it() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    vigil::with_local_recorder(&monitor.recorder(), || {
        metrics::histogram!(REJECTED).record(f64::NAN);
        metrics::histogram!(REJECTED).record(0.5);
    });
    let text = monitor.render();
    assert!(
        text.contains(&format!("# TYPE {REJECTED} summary\n")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("# TYPE {REJECTED} counter")),
        "{text}"
    );
    assert_eq!(sample(&text, &format!("{REJECTED}_count")), 1.0);
}

#[test]
fn rejected_values_of_expired_names_beyond_the_budget_share_one_series() {
    let (clock, mock) = quanta::Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .idle_timeout(Duration::from_secs(30))
        .max_series(2)
        .build()
        .unwrap();
    let recorder = monitor.recorder();
    // Three rounds of two names each, every series expiring after its
    // round: the counts of names beyond the budget (2) are kept under
    // `metric=""`, not one series a name.
    for round in 0..3 {
        vigil::with_local_recorder(&recorder, || {
            for i in 0..2 {
                metrics::histogram!(format!("job{round}{i}_seconds")).record(f64::NAN);
            }
        });
        // The first upkeep sees the series, the second finds it idle.
        for _ in 0..2 {
            mock.increment(Duration::from_secs(31));
            monitor.upkeep();
        }
    }
    let text = monitor.render();
    let nan = |metric: &str| {
        sample(
            &text,
            &format!(r#"{REJECTED}{{metric="{metric}",reason="nan"}}"#),
        )
    };
    assert_eq!(nan("job00_seconds"), 1.0, "{text}");
    assert_eq!(nan("job01_seconds"), 1.0, "{text}");
    assert_eq!(nan(""), 4.0, "{text}");
    assert!(!text.contains("job10_seconds"), "{text}");
}

#[test]
fn rejected_values_stay_counted_after_their_series_expires() {
    let (clock, mock) = quanta::Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let recorder = monitor.recorder();
    let held = vigil::with_local_recorder(&recorder, || {
        // Recorded through a handle that is dropped: the series can expire.
        metrics::histogram!("job_seconds", "id" => "gone").record_many(f64::NAN, 2);
        metrics::histogram!("job_seconds", "id" => "gone").record(-1.0);
        let held = metrics::histogram!("job_seconds", "id" => "held");
        held.record(f64::NAN);
        held
    });
    let nan = format!(r#"{REJECTED}{{metric="job_seconds",reason="nan"}}"#);
    let negative = format!(r#"{REJECTED}{{metric="job_seconds",reason="negative"}}"#);
    let text = monitor.render();
    assert_eq!(sample(&text, &nan), 3.0);
    assert_eq!(sample(&text, &negative), 1.0);

    mock.increment(Duration::from_secs(31));
    monitor.upkeep();
    let text = monitor.render();
    // The dropped series expired; the held one is hidden.
    assert!(!text.contains(r#"id="gone""#), "{text}");
    assert!(!text.contains(r#"id="held""#), "{text}");
    assert_eq!(sample(&text, &nan), 3.0, "the counter went down:\n{text}");
    assert_eq!(sample(&text, &negative), 1.0, "{text}");

    // A new series of the name adds to what the expired one left.
    vigil::with_local_recorder(&recorder, || {
        metrics::histogram!("job_seconds", "id" => "gone").record(f64::NAN);
    });
    held.record(f64::NEG_INFINITY);
    let text = monitor.render();
    assert_eq!(sample(&text, &nan), 4.0, "{text}");
    assert_eq!(
        sample(
            &text,
            &format!(r#"{REJECTED}{{metric="job_seconds",reason="negative_infinity"}}"#)
        ),
        1.0
    );
    servers::promtool_check_metrics(&text).unwrap();
}

/// Serializes `summary` and reads it back: equal, NaN and all (compared
/// through a second serialization, which writes NaN as "NaN").
fn round_trip(summary: &MetricsSummary) -> MetricsSummary {
    let json = serde_json::to_string(summary).unwrap();
    let back: MetricsSummary =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    back
}

#[test]
fn json_summaries_with_non_finite_numbers_read_back() {
    let (clock, mock) = quanta::Clock::mock();
    mock.increment(Duration::from_secs(1_000));
    let monitor = Monitor::builder()
        .clock(clock)
        .manual_upkeep()
        .build()
        .unwrap();
    vigil::with_local_recorder(&monitor.recorder(), || {
        metrics::gauge!("g", "v" => "nan").set(f64::NAN);
        metrics::gauge!("g", "v" => "inf").set(f64::INFINITY);
        metrics::gauge!("g", "v" => "-inf").set(f64::NEG_INFINITY);
        metrics::gauge!("g", "v" => "finite").set(0.25);
        metrics::counter!("c").increment(3);
        metrics::histogram!("h_seconds").record(0.004);
        metrics::histogram!("h_seconds").record(f64::NAN);
    });
    let summary = monitor.summary();
    let json = serde_json::to_string(&summary).unwrap();
    assert!(json.contains(r#""value":"NaN""#), "{json}");
    assert!(json.contains(r#""value":"+Inf""#), "{json}");
    assert!(json.contains(r#""value":"-Inf""#), "{json}");
    assert!(!json.contains("null"), "{json}");
    let back = round_trip(&summary);
    let value = |summary: &MetricsSummary, v: &str| {
        summary
            .gauges
            .iter()
            .find(|g| g.labels["v"] == v)
            .map(|g| g.value)
            .unwrap()
    };
    assert!(value(&back, "nan").is_nan());
    assert_eq!(value(&back, "inf"), f64::INFINITY);
    assert_eq!(value(&back, "-inf"), f64::NEG_INFINITY);
    assert_eq!(value(&back, "finite"), 0.25);
    assert_eq!(back.counters, summary.counters);
    assert_eq!(back.histograms, summary.histograms);
    assert_eq!(back.histograms[0].rejected["nan"], 1);

    // Every float field of every type, non-finite.
    let odd = Summary {
        count: 1,
        sum: f64::INFINITY,
        min: f64::NEG_INFINITY,
        mean: f64::NAN,
        p999: f64::NAN,
        window_seconds: f64::INFINITY,
        ..Summary::default()
    };
    let mut hand = back.clone();
    hand.window_seconds = f64::INFINITY;
    hand.counters[0].rate = f64::NAN;
    for gauge in &mut hand.gauges {
        (gauge.min, gauge.max, gauge.mean) = (f64::NAN, f64::INFINITY, f64::NEG_INFINITY);
    }
    hand.histograms[0].window = odd.clone();
    hand.histograms[0].total = odd;
    let back = round_trip(&hand);
    assert_eq!(back.window_seconds, f64::INFINITY);
    assert!(back.counters[0].rate.is_nan());
    assert_eq!(back.histograms[0].total.min, f64::NEG_INFINITY);

    // What serde_json alone wrote for NaN (`null`) reads back as NaN.
    let old = json.replace(r#""value":"NaN""#, r#""value":null"#);
    let read: MetricsSummary = serde_json::from_str(&old).unwrap();
    assert!(value(&read, "nan").is_nan());
    // A misspelt value names what it expects.
    let bad = json.replace(r#""value":"NaN""#, r#""value":"not a number""#);
    let error = serde_json::from_str::<MetricsSummary>(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(r#"expected a number, "NaN", "+Inf" or "-Inf""#),
        "{error}"
    );
}

/// A histogram recorded into by every thread, one value of exactly 1.0 at
/// a time; rendered with classic buckets.
const BUCKETED: &str = "values_bucketed_seconds";
/// The same, rendered as a summary.
const SUMMARY: &str = "values_summary_seconds";
/// The classic bounds of [`BUCKETED`].
const BOUNDS: [f64; 3] = [0.5, 1.0, 2.0];
/// Recording threads.
const THREADS: usize = 4;

/// What is wrong with one read of a histogram of 1.0s: `count` values,
/// summing to `sum`, the `+Inf` bucket `inf`, and the classic buckets
/// (`le` 0.5, 1, 2) if any; `None` when it agrees with itself.
fn disagreement(count: u64, sum: f64, inf: u64, classic: &[u64]) -> Option<String> {
    let wrong = sum != count as f64
        || inf != count
        || !(classic.is_empty() || classic == [0, count, count]);
    wrong.then(|| format!("count {count}, sum {sum}, +Inf {inf}, buckets {classic:?}"))
}

/// Every disagreement of the text exposition's two histograms.
fn text_disagreements(text: &str, out: &mut Vec<String>) {
    let count = |name: &str| sample(text, &format!("{name}_count")) as u64;
    let sum = |name: &str| sample(text, &format!("{name}_sum"));
    let bucket = |le: &str| sample(text, &format!(r#"{BUCKETED}_bucket{{le="{le}"}}"#)) as u64;
    let classic = [bucket("0.5"), bucket("1"), bucket("2")];
    let bucketed = disagreement(count(BUCKETED), sum(BUCKETED), bucket("+Inf"), &classic);
    let summary = disagreement(count(SUMMARY), sum(SUMMARY), count(SUMMARY), &[]);
    out.extend(bucketed.map(|d| format!("text {BUCKETED}: {d}")));
    out.extend(summary.map(|d| format!("text {SUMMARY}: {d}")));
}

/// Every disagreement of the protobuf exposition's two histograms: the
/// native buckets (zero bucket included) must add up to `sample_count`.
fn protobuf_disagreements(mut body: &[u8], out: &mut Vec<String>) {
    let mut seen = 0;
    while !body.is_empty() {
        let family = proto::MetricFamily::decode_length_delimited(&mut body).expect("a family");
        if family.name != BUCKETED && family.name != SUMMARY {
            continue;
        }
        seen += 1;
        for metric in &family.metric {
            let h = metric.histogram.as_ref().expect("a histogram");
            let mut native = h.zero_count;
            let mut running = 0i64;
            for delta in &h.positive_delta {
                running += delta;
                native += running as u64;
            }
            let classic: Vec<u64> = h.bucket.iter().map(|b| b.cumulative_count).collect();
            let found = disagreement(h.sample_count, h.sample_sum, native, &classic);
            out.extend(found.map(|d| format!("protobuf {}: {d}", family.name)));
        }
    }
    assert_eq!(seen, 2, "both histograms in the protobuf exposition");
}

/// Every disagreement of the JSON summary's two histograms (both windows).
fn summary_disagreements(summary: &MetricsSummary, out: &mut Vec<String>) {
    for histogram in &summary.histograms {
        for (window, s) in [("window", &histogram.window), ("total", &histogram.total)] {
            let mean_ok = s.count == 0 || s.mean == 1.0;
            if s.sum != s.count as f64 || !mean_ok {
                out.push(format!(
                    "summary {} {window}: count {}, sum {}, mean {}",
                    histogram.name, s.count, s.sum, s.mean
                ));
            }
        }
    }
}

#[test]
fn every_render_agrees_with_itself_while_threads_record() {
    let monitor = Monitor::builder()
        .buckets(Matcher::Full(BUCKETED.to_owned()), &BOUNDS)
        .listen("127.0.0.1:0")
        .build()
        .unwrap();
    let address = monitor.listen_address().expect("listening");
    let recorder = monitor.recorder();
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_millis(2_500);
    let mut disagreements = Vec::new();
    let (mut texts, mut protobufs, mut summaries) = (0u32, 0u32, 0u32);

    let recorded: u64 = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (recorder, stop) = (recorder.clone(), &stop);
                s.spawn(move || {
                    vigil::with_local_recorder(&recorder, || {
                        let bucketed = metrics::histogram!(BUCKETED);
                        let summary = metrics::histogram!(SUMMARY);
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            bucketed.record(1.0);
                            summary.record(1.0);
                            n += 1;
                        }
                        n
                    })
                })
            })
            .collect();
        let mut round = 0u32;
        while Instant::now() < deadline {
            round += 1;
            let text = monitor.render();
            if text.contains(BUCKETED) && text.contains(SUMMARY) {
                text_disagreements(&text, &mut disagreements);
                texts += 1;
            }
            if round.is_multiple_of(4) {
                summary_disagreements(&monitor.summary(), &mut disagreements);
                summaries += 1;
            }
            if round.is_multiple_of(8) {
                let answer = servers::http_get_accepting(
                    address,
                    "/metrics",
                    Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3"),
                )
                .unwrap();
                assert_eq!(answer.status, 200);
                if !answer.body.is_empty() {
                    protobuf_disagreements(&answer.body, &mut disagreements);
                    protobufs += 1;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });

    assert!(
        disagreements.is_empty(),
        "{} of {texts} text renders, {summaries} summaries and {protobufs} protobuf renders disagreed, e.g. {:#?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(10)]
    );
    assert!(
        texts >= 20 && summaries >= 5 && protobufs >= 2,
        "too few reads to tell: {texts} text, {summaries} summaries, {protobufs} protobuf"
    );
    // Exact at the end: every value counted once, in the right bucket.
    let text = monitor.render();
    let mut last = Vec::new();
    text_disagreements(&text, &mut last);
    assert!(last.is_empty(), "{last:?}");
    assert_eq!(sample(&text, &format!("{BUCKETED}_count")), recorded as f64);
    assert_eq!(sample(&text, &format!("{SUMMARY}_count")), recorded as f64);
    let summary = monitor.summary();
    assert!(summary.histograms.iter().all(|h| h.total.count == recorded));
}
