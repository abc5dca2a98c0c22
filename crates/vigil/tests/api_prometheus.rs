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

use client::Request;
use host::{Host, Options};

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
    // Exactly: the samples span every counted request.
    let spread = prometheus
        .query_one(&format!(
            "max_over_time({SERIES}[1m]) - min_over_time({SERIES}[1m])"
        ))
        .expect("the spread of the counter");
    assert_eq!(spread, REQUESTS as f64);
    // increase() and rate() extrapolate to the window's edges (by at most
    // half a scrape interval at each end of a series younger than the
    // window), so they read a little above the requests made.
    let increase = prometheus
        .query_one(&format!("increase({SERIES}[1m])"))
        .expect("the increase over a minute");
    assert!(
        (REQUESTS as f64..=REQUESTS as f64 * 1.5).contains(&increase),
        "increase {increase} for {REQUESTS} requests"
    );
    let rate = prometheus
        .query_one(&format!("rate({SERIES}[1m]) * 60"))
        .expect("the rate over a minute");
    assert!(
        (REQUESTS as f64..=REQUESTS as f64 * 1.5).contains(&rate),
        "rate {rate} per minute for {REQUESTS} requests"
    );
    // Evaluated at one instant (separate queries may straddle a scrape),
    // the rate is the increase per second.
    let difference = prometheus
        .query_one(&format!("rate({SERIES}[1m]) * 60 - increase({SERIES}[1m])"))
        .expect("the rate against the increase");
    assert!(
        difference.abs() < 1e-6,
        "rate * 60 - increase = {difference}"
    );
    // The scrapes themselves are counted under their own route.
    assert!(
        prometheus
            .query_one(r#"http_server_requests_total{job="vigil",route="/metrics"}"#)
            .is_some_and(|scrapes| scrapes >= 3.0)
    );
}
