//! A real Prometheus (Debian's `prometheus` package) scrapes a host
//! service's `/metrics` from `monitor.router()`, and what it stores of
//! `http_server_requests_total` (recorded by `monitor.http_layer()`)
//! agrees with the requests the test made: the counter, the increase over
//! the window and the rate.

#![cfg(all(
    feature = "axum",
    feature = "cache",
    feature = "alert-routing",
    feature = "system-metrics"
))]

#[path = "api/client.rs"]
mod client;
#[path = "api/host.rs"]
mod host;
mod servers;

use std::time::{SystemTime, UNIX_EPOCH};

use client::Request;
use host::{Host, Options};
use serde_json::Value;

const SERIES: &str =
    r#"http_server_requests_total{job="vigil",method="GET",route="/markets/{id}",status="200"}"#;

#[test]
fn prometheus_counts_the_requests_the_middleware_saw() {
    let host = Host::start(Options::default());
    let get = |id: u64| {
        let answer = Request::get(&format!("/markets/{id}")).send(host.address);
        assert_eq!(answer.status, 200, "{}", answer.text());
    };
    // One request creates the series; Prometheus then holds samples of it
    // at 1 before the counted requests, so nothing is lost to a series
    // appearing mid-range.
    get(0);
    let prometheus = servers::Prometheus::start(host.address);
    prometheus.wait_for("scraping the service", |p| p.query_one(SERIES) == Some(1.0));
    prometheus.wait_for("holding three samples at 1", |p| {
        p.query_one(&format!("count_over_time({SERIES}[1m])")) >= Some(3.0)
    });

    const REQUESTS: u64 = 57;
    for id in 1..=REQUESTS {
        get(id);
    }
    let total = (REQUESTS + 1) as f64;
    prometheus.wait_for("scraping the requests", |p| {
        p.query_one(SERIES) == Some(total)
    });
    // Enough samples in the window that extrapolation stays small (below).
    prometheus.wait_for("holding 13 samples", |p| {
        p.query_one(&format!("count_over_time({SERIES}[1m])")) >= Some(13.0)
    });

    // Every query below is evaluated at one instant, so they see the same
    // samples.
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let samples = samples_at(&prometheus, &format!("{SERIES}[1m]"), at);
    // The primary check, exact: the stored samples span every counted
    // request, and never go down.
    let first = samples.first().expect("samples").1;
    let last = samples.last().expect("samples").1;
    assert_eq!((first, last), (1.0, total), "{samples:?}");
    assert!(samples.windows(2).all(|pair| pair[0].1 <= pair[1].1));
    // increase() is exactly Prometheus's extrapolation of those samples
    // to the window's edges...
    let increase = query_at(&prometheus, &format!("increase({SERIES}[1m])"), at);
    let expected = extrapolated_increase(&samples, at - 60_000, at);
    assert!(
        (increase - expected).abs() <= expected * 1e-9,
        "increase {increase}, extrapolated from {samples:?}: {expected}"
    );
    // ... which adds at most the time to the counter's zero point before
    // the first sample (1 of 58) and 1.1 sample intervals after the
    // last: below 11 % with 13 samples.
    let intervals = (samples.len() - 1) as f64;
    let most = REQUESTS as f64 * (1.0 + 1.0 / REQUESTS as f64 + 1.1 / intervals);
    assert!(
        (REQUESTS as f64..=most).contains(&increase) && most <= REQUESTS as f64 * 1.11,
        "increase {increase} for {REQUESTS} requests over {} samples",
        samples.len()
    );
    // The rate is the increase per second of the window.
    let rate = query_at(&prometheus, &format!("rate({SERIES}[1m])"), at);
    assert!(
        (rate * 60.0 - increase).abs() <= increase * 1e-9,
        "rate {rate} per second against increase {increase}"
    );
    // The scrapes themselves are counted under their own route.
    assert!(
        prometheus
            .query_one(r#"http_server_requests_total{job="vigil",route="/metrics"}"#)
            .is_some_and(|scrapes| scrapes >= 3.0)
    );
}

/// The data of an instant query evaluated at `at` (Unix milliseconds).
fn result_at(prometheus: &servers::Prometheus, promql: &str, at: i64) -> Vec<Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let path = format!(
        "/api/v1/query?query={encoded}&time={}.{:03}",
        at / 1000,
        at % 1000
    );
    let (status, body) = servers::http_get(prometheus.address, &path).expect("Prometheus answers");
    assert_eq!(status, 200, "{promql}: {body}");
    let json: Value = serde_json::from_str(&body).expect("JSON");
    let result = json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(result.len(), 1, "{promql}: {body}");
    result
}

/// The one value of an instant query evaluated at `at`.
fn query_at(prometheus: &servers::Prometheus, promql: &str, at: i64) -> f64 {
    let result = result_at(prometheus, promql, at);
    let value = result[0]["value"][1].as_str().and_then(|v| v.parse().ok());
    value.unwrap_or_else(|| panic!("{promql}: {result:?}"))
}

/// The samples of a range selector evaluated at `at`: (Unix
/// milliseconds, value), oldest first.
fn samples_at(prometheus: &servers::Prometheus, selector: &str, at: i64) -> Vec<(i64, f64)> {
    let result = result_at(prometheus, selector, at);
    let values = result[0]["values"].as_array().expect("a range vector");
    values
        .iter()
        .map(|pair| {
            let seconds = pair[0].as_f64().expect("a timestamp");
            let value = pair[1].as_str().and_then(|v| v.parse().ok());
            ((seconds * 1000.0).round() as i64, value.expect("a value"))
        })
        .collect()
}

/// `increase()` over the window `start..=end` (Unix milliseconds) of a
/// counter's `samples` without resets, as Prometheus 2 computes it
/// (`extrapolatedRate` in promql/functions.go): the difference of the
/// last and first sample, scaled from the sampled interval to the window's
/// edges where they lie within 1.1 average intervals of a sample (half an
/// interval otherwise), and never back past the counter's zero point.
fn extrapolated_increase(samples: &[(i64, f64)], start: i64, end: i64) -> f64 {
    let ((first_at, first), (last_at, last)) = (samples[0], samples[samples.len() - 1]);
    let difference = last - first;
    let sampled = (last_at - first_at) as f64 / 1000.0;
    let average = sampled / (samples.len() - 1) as f64;
    let mut to_start = (first_at - start) as f64 / 1000.0;
    let to_end = (end - last_at) as f64 / 1000.0;
    if difference > 0.0 && first >= 0.0 {
        to_start = to_start.min(sampled * (first / difference));
    }
    let threshold = average * 1.1;
    let edge = |gap: f64| if gap < threshold { gap } else { average / 2.0 };
    difference * ((sampled + edge(to_start) + edge(to_end)) / sampled)
}
