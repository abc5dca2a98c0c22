//! Prometheus's protobuf exposition with native histograms: negotiated by
//! `Accept`, decoded here with minimal copies of the
//! `io.prometheus.client` messages, and scraped by a real Prometheus with
//! `--enable-feature=native-histograms` whose fleet quantiles over three
//! vigil instances must match the exact quantiles of the union.

#![cfg(feature = "listener")]

mod proto;
mod servers;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use prost::Message as _;
use proto::{Histogram, Metric, MetricFamily};
use vigil::{Matcher, Monitor};

/// What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
const PROMETHEUS_NATIVE_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// The Content-Type of the protobuf exposition.
const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Every length-delimited family of a protobuf exposition.
fn decode(mut body: &[u8]) -> Vec<MetricFamily> {
    let mut families = Vec::new();
    while !body.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut body).expect("a MetricFamily"));
    }
    families
}

/// A native histogram's nonzero positive buckets as (index, count), decoded
/// as Prometheus does.
fn native_buckets(histogram: &Histogram) -> Vec<(i32, u64)> {
    let mut buckets = Vec::new();
    let mut deltas = histogram.positive_delta.iter();
    let (mut index, mut count) = (0i32, 0i64);
    for span in &histogram.positive_span {
        index += span.offset;
        for _ in 0..span.length {
            count += deltas.next().expect("a delta per bucket of the spans");
            assert!(count >= 0, "negative bucket count");
            if count > 0 {
                buckets.push((index, count as u64));
            }
            index += 1;
        }
    }
    assert!(deltas.next().is_none(), "more deltas than buckets");
    buckets
}

/// Schema 8: bucket `i` is `(2^((i-1)/256), 2^(i/256)]`.
fn bounds(index: i32) -> (f64, f64) {
    let upper = |i: i32| (f64::from(i) / 256.0).exp2();
    (upper(index - 1), upper(index))
}

/// A series' labels as (name, value).
fn labels(metric: &Metric) -> Vec<(&str, &str)> {
    metric
        .label
        .iter()
        .map(|pair| (pair.name.as_str(), pair.value.as_str()))
        .collect()
}

/// `# HELP` and `# TYPE` of each family of a text exposition, in order.
fn text_families(text: &str) -> Vec<(String, String, String)> {
    let mut help = BTreeMap::new();
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap();
            help.insert(name.to_owned(), text.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            families.push((name.to_owned(), help[name].clone(), kind.to_owned()));
        }
    }
    families
}

#[test]
fn scrapers_get_protobuf_only_when_they_prefer_it() {
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .global_label("service", "shop")
        .global_label("region", "global")
        .buckets(Matcher::Full("db_query_seconds".into()), &[0.005, 0.05])
        .build()
        .unwrap();
    let target = monitor.listen_address().expect("a listener");
    let values = [0.0, 0.001, 0.002, 0.003, 0.05];
    vigil::with_local_recorder(&monitor.recorder(), || {
        metrics::describe_histogram!(
            "db_query_seconds",
            metrics::Unit::Seconds,
            "Database query latency"
        );
        metrics::counter!("orders_total", "region" => "eu").increment(3);
        metrics::gauge!("queue_depth", "a b" => "q\"v").set(7.5);
        // Same name as a counter: left out of both formats.
        metrics::gauge!("orders_total").set(1.0);
        for value in values {
            metrics::histogram!("db_query_seconds").record(value);
        }
        metrics::histogram!("http_request_duration_seconds", "route" => "/cart").record(0.25);
    });

    // Text unless protobuf is preferred.
    for accept in [
        None,
        Some("text/plain"),
        Some("*/*"),
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
        Some(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2,text/plain;q=0.3",
        ),
    ] {
        let answer = servers::http_get_accepting(target, "/metrics", accept).unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8"),
            "{accept:?}"
        );
        let text = String::from_utf8(answer.body).unwrap();
        assert!(text.contains("# TYPE db_query_seconds histogram"), "{text}");
    }
    let text = monitor.render();

    let answer =
        servers::http_get_accepting(target, "/metrics", Some(PROMETHEUS_NATIVE_ACCEPT)).unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some(PROTOBUF));
    assert_eq!(answer.header("vary"), Some("Accept"));
    let families = decode(&answer.body);

    // The same families as text, in the same order with the same HELP;
    // every histogram is a HISTOGRAM, summaries included.
    let kinds: Vec<(String, String, String)> = families
        .iter()
        .map(|family| {
            let kind = match family.r#type {
                0 => "counter",
                1 => "gauge",
                4 => "histogram",
                other => panic!("unexpected type {other}"),
            };
            (family.name.clone(), family.help.clone(), kind.to_owned())
        })
        .collect();
    let expected: Vec<_> = text_families(&text)
        .into_iter()
        .map(|(name, help, kind)| {
            let kind = if kind == "summary" {
                "histogram".into()
            } else {
                kind
            };
            (name, help, kind)
        })
        .collect();
    assert_eq!(kinds, expected, "{text}");
    let family = |name: &str| {
        families
            .iter()
            .find(|family| family.name == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    };

    let orders = &family("orders_total").metric;
    assert_eq!(orders.len(), 1);
    // A series label replaces the global one of its name in place.
    assert_eq!(labels(&orders[0]), [("service", "shop"), ("region", "eu")]);
    assert_eq!(orders[0].counter.as_ref().unwrap().value, 3.0);
    let depth = &family("queue_depth").metric[0];
    // Names sanitized as in text; values need no escaping here.
    assert_eq!(
        labels(depth),
        [("service", "shop"), ("region", "global"), ("a_b", "q\"v")]
    );
    assert!(text.contains(r#"queue_depth{service="shop",region="global",a_b="q\"v"} 7.5"#));
    assert_eq!(depth.gauge.as_ref().unwrap().value, 7.5);

    let db = family("db_query_seconds");
    assert_eq!(db.help, "Database query latency");
    let histogram = db.metric[0].histogram.as_ref().unwrap();
    assert_eq!(
        labels(&db.metric[0]),
        [("service", "shop"), ("region", "global")]
    );
    assert_eq!(histogram.schema, 8);
    assert_eq!(histogram.zero_threshold, 2f64.powi(-128));
    assert_eq!(histogram.sample_count, 5);
    assert!((histogram.sample_sum - 0.056).abs() < 1e-9);
    assert_eq!(histogram.zero_count, 1, "the raw 0");
    assert!(histogram.negative_span.is_empty());
    let buckets = native_buckets(histogram);
    assert_eq!(buckets.len(), 4, "{buckets:?}");
    for ((index, count), value) in buckets.iter().zip(&values[1..]) {
        assert_eq!(*count, 1);
        // HDR moves a value by at most half its bucket (0.05%) first.
        let (lower, upper) = bounds(*index);
        assert!(
            lower * (1.0 - 5e-4) < *value && *value <= upper * (1.0 + 5e-4),
            "{value} in bucket {index} ({lower}, {upper}]"
        );
    }
    // Classic buckets as in text (`le="+Inf"` is implied by the count).
    let classic: Vec<(u64, f64)> = histogram
        .bucket
        .iter()
        .map(|bucket| (bucket.cumulative_count, bucket.upper_bound))
        .collect();
    assert_eq!(classic, [(4, 0.005), (5, 0.05)]);
    assert!(
        text.contains(r#"db_query_seconds_bucket{service="shop",region="global",le="0.005"} 4"#)
    );

    // A summary in text is a native histogram without classic buckets.
    let http = &family("http_request_duration_seconds").metric[0];
    assert_eq!(
        labels(http),
        [
            ("service", "shop"),
            ("region", "global"),
            ("route", "/cart")
        ]
    );
    let histogram = http.histogram.as_ref().unwrap();
    assert!(histogram.bucket.is_empty());
    assert_eq!(histogram.sample_count, 1);
    assert_eq!(histogram.zero_count, 0);
    // 0.25 s = 2^-2 would close bucket -512, but HDR holds it in
    // 249_954_304 ..= 250_085_375 ns, whose midpoint (0.25002 s) is in -511.
    assert_eq!(native_buckets(histogram), [(-511, 1)]);
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // 53 random bits in (0, 1].
        ((bits >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A lognormal value with median `median` and log-space deviation
    /// `sigma` (Box-Muller).
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u, v) = (self.next_f64(), self.next_f64());
        let normal = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
        median * (sigma * normal).exp()
    }
}

#[test]
fn fleet_quantiles_from_native_histograms_are_within_a_tenth_of_a_percent() {
    const PER_INSTANCE: usize = 20_000;
    // (median seconds, sigma, seed): a different distribution per instance.
    let instances = [
        (0.020, 0.5, 0x9e37_79b9_7f4a_7c15),
        (0.045, 0.8, 0xd1b5_4a32_d192_ed03),
        (0.110, 0.3, 0x94d0_49bb_1331_11eb),
    ];
    let mut all = Vec::with_capacity(PER_INSTANCE * instances.len());
    let mut monitors = Vec::new();
    for (median, sigma, seed) in instances {
        let monitor = Monitor::builder().listen("127.0.0.1:0").build().unwrap();
        let mut rng = Rng(seed);
        vigil::with_local_recorder(&monitor.recorder(), || {
            let histogram = metrics::histogram!("request_duration_seconds");
            for _ in 0..PER_INSTANCE {
                let value = rng.lognormal(median, sigma);
                histogram.record(value);
                all.push(value);
            }
        });
        monitors.push(monitor);
    }
    let targets: Vec<SocketAddr> = monitors
        .iter()
        .map(|monitor| monitor.listen_address().expect("a listener"))
        .collect();

    let prometheus =
        servers::Prometheus::start_with(&targets, &["--enable-feature=native-histograms"]);
    prometheus.wait_for("scraping all three", |p| {
        p.query_one(r#"sum(up{job="vigil"})"#) == Some(3.0)
    });
    // Each target's series is a native histogram: `histogram`, not `value`.
    prometheus.wait_for("holding three native histograms", |p| {
        p.query("request_duration_seconds").is_some_and(|result| {
            result.len() == 3
                && result.iter().all(|series| {
                    series.get("value").is_none()
                        && series["histogram"][1]["count"].as_str()
                            == Some(PER_INSTANCE.to_string().as_str())
                })
        })
    });

    all.sort_by(f64::total_cmp);
    let n = all.len();
    assert_eq!(
        prometheus.query_one("histogram_count(sum(request_duration_seconds))"),
        Some(n as f64)
    );
    let mut failures = Vec::new();
    for q in [0.5, 0.9, 0.99] {
        let exact = all[(q * n as f64).ceil() as usize - 1];
        let fleet = prometheus
            .query_one(&format!(
                "histogram_quantile({q}, sum(request_duration_seconds))"
            ))
            .expect("a fleet quantile");
        let error = (fleet - exact) / exact;
        eprintln!(
            "fleet p{}: Prometheus {fleet:.9} s, exact {exact:.9} s, relative error {:+.4}%",
            q * 100.0,
            error * 100.0
        );
        if error.abs() > 1e-3 {
            failures.push(format!("q={q}: {fleet} vs exact {exact} ({error:+e})"));
        }
    }
    assert!(failures.is_empty(), "beyond 0.1%: {failures:?}");
}
