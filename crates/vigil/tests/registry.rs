//! The registry behind every view: exposition (checked by promtool and
//! scraped by a real Prometheus), JSON summary, layering, series limits,
//! idle expiry and windows under a mock clock.

#![cfg(feature = "listener")]

mod servers;

use std::sync::Arc;
use std::time::Duration;

use metrics::{Key, Label, Recorder as _};
use metrics_util::debugging::DebuggingRecorder;
use quanta::Clock;
use vigil::{Matcher, Monitor};

fn with<T>(monitor: &Monitor, f: impl FnOnce() -> T) -> T {
    vigil::with_local_recorder(&monitor.recorder(), f)
}

#[vigil::timed]
fn checkout(items: u32) -> Result<u32, String> {
    if items == 0 {
        Err("empty cart".into())
    } else {
        Ok(items)
    }
}

fn sample_workload() {
    metrics::describe_counter!("orders_total", "Orders placed");
    metrics::describe_histogram!(
        "db_query_seconds",
        metrics::Unit::Seconds,
        "Database query latency"
    );
    metrics::counter!("orders_total", "region" => "eu").increment(3);
    metrics::counter!("orders_total", "region" => "us").increment(4);
    metrics::gauge!("queue_depth").set(7.0);
    for ms in [1.0, 2.0, 3.0, 50.0] {
        metrics::histogram!("db_query_seconds").record(ms / 1000.0);
        metrics::histogram!("http_request_duration_seconds", "route" => "/cart").record(ms / 100.0);
    }
    let _ = checkout(2);
    let _ = checkout(0);
}

#[test]
fn exposition_passes_promtool_with_summaries_and_buckets() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .global_label("service", "shop")
        .buckets(Matcher::Prefix("http_".into()), &[0.01, 0.05, 0.5])
        .build()
        .unwrap();
    with(&monitor, sample_workload);
    let text = monitor.render();
    assert!(text.contains("# HELP orders_total Orders placed"), "{text}");
    assert!(
        text.contains(r#"orders_total{service="shop",region="eu"} 3"#),
        "{text}"
    );
    assert!(text.contains("# TYPE db_query_seconds summary"), "{text}");
    assert!(
        text.contains(r#"db_query_seconds_count{service="shop"} 4"#),
        "{text}"
    );
    assert!(
        text.contains("# TYPE http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_request_duration_seconds_bucket{service="shop",route="/cart",le="0.05"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_request_duration_seconds_bucket{service="shop",route="/cart",le="+Inf"} 4"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"function_calls_total{service="shop",function="checkout""#),
        "{text}"
    );
    if let Err(findings) = servers::promtool_check_metrics(&text) {
        panic!("promtool check metrics reported:\n{findings}\non:\n{text}");
    }
}

#[test]
fn summary_quantiles_are_windowed_and_sum_count_cumulative() {
    let (clock, mock) = Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .window(Duration::from_secs(60))
        .build()
        .unwrap();
    with(&monitor, || metrics::histogram!("job_seconds").record(10.0));
    // The upkeep thread would rotate at each interval boundary; here the
    // test does: the first interval closes at 10 s, then 110 s pass.
    mock.increment(Duration::from_secs(10));
    monitor.upkeep();
    mock.increment(Duration::from_secs(110));
    monitor.upkeep();
    with(&monitor, || metrics::histogram!("job_seconds").record(0.5));
    let summary = monitor.summary();
    let job = &summary.histograms[0];
    assert_eq!(job.window.count, 1);
    assert!((job.window.max - 0.5).abs() < 0.001, "{job:?}");
    assert_eq!(job.total.count, 2);
    assert!((job.total.sum - 10.5).abs() < 1e-6, "{job:?}");
    let text = monitor.render();
    // HDR reports the top of the 0.5 s bucket: within 0.1%.
    assert!(
        text.contains(r#"job_seconds{quantile="1"} 0.500"#),
        "{text}"
    );
    assert!(text.contains("job_seconds_count 2"), "{text}");
}

#[test]
fn json_summary_has_counter_rates_and_gauge_window_statistics() {
    let (clock, mock) = Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .global_label("env", "test")
        .build()
        .unwrap();
    let recorder = monitor.recorder();
    let key = Key::from_parts("requests_total", vec![Label::new("route", "/")]);
    let requests = recorder.register_counter(
        &key,
        &metrics::Metadata::new("t", metrics::Level::INFO, None),
    );
    let depth = recorder.register_gauge(
        &Key::from_name("depth"),
        &metrics::Metadata::new("t", metrics::Level::INFO, None),
    );
    depth.set(1.0);
    monitor.upkeep();
    mock.increment(Duration::from_secs(10));
    requests.increment(20);
    depth.set(5.0);
    monitor.upkeep();
    mock.increment(Duration::from_secs(10));
    depth.set(3.0);
    let summary = monitor.summary();

    let counter = summary
        .counters
        .iter()
        .find(|c| c.name == "requests_total")
        .unwrap();
    assert_eq!(counter.total, 20);
    assert!(
        (counter.rate - 1.0).abs() < 1e-9,
        "20 over 20 s: {counter:?}"
    );
    assert_eq!(counter.labels.get("route").map(String::as_str), Some("/"));
    let gauge = summary.gauges.iter().find(|g| g.name == "depth").unwrap();
    assert_eq!((gauge.value, gauge.min, gauge.max), (3.0, 1.0, 5.0));
    assert!((gauge.mean - 3.0).abs() < 1e-9, "{gauge:?}");

    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["window_seconds"], 60.0);
    assert_eq!(json["global_labels"]["env"], "test");
    assert_eq!(json["counters"][0]["name"], "requests_total");
    assert_eq!(json["counters"][0]["labels"]["route"], "/");
    let back: vigil::MetricsSummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
}

#[test]
fn layer_forwards_every_call_unchanged_to_the_host_recorder() {
    let host = DebuggingRecorder::new();
    let snapshotter = host.snapshotter();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .layer(host)
        .build()
        .unwrap();
    with(&monitor, || {
        metrics::counter!("forwarded_total").increment(5);
        metrics::gauge!("forwarded_gauge").set(2.5);
        metrics::histogram!("forwarded_seconds").record(0.25);
    });
    let host_view = snapshotter.snapshot().into_vec();
    assert_eq!(host_view.len(), 3, "{host_view:?}");
    let text = monitor.render();
    assert!(text.contains("forwarded_total 5"), "{text}");
    assert!(text.contains("forwarded_gauge 2.5"), "{text}");
    assert!(text.contains("forwarded_seconds_count 1"), "{text}");
}

#[test]
fn label_sets_beyond_the_limit_fold_into_one_overflow_series() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .max_series_per_metric(3)
        .build()
        .unwrap();
    with(&monitor, || {
        for user in 0..10 {
            metrics::counter!("logins_total", "user" => user.to_string()).increment(1);
        }
    });
    let text = monitor.render();
    let series = text
        .lines()
        .filter(|line| line.starts_with("logins_total{"))
        .count();
    assert_eq!(series, 4, "3 series and the overflow:\n{text}");
    assert!(
        text.contains(r#"logins_total{vigil_overflow="true"} 7"#),
        "{text}"
    );
    assert!(text.contains("vigil_series_dropped_total 7"), "{text}");
    assert_eq!(monitor.series_dropped(), 7);
}

#[test]
fn idle_series_expire_but_held_handles_keep_recording() {
    let (clock, mock) = Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .idle_timeout(Duration::from_secs(30))
        .max_series_per_metric(1)
        .build()
        .unwrap();
    let recorder = monitor.recorder();
    let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
    let held = recorder.register_counter(&Key::from_name("held_total"), &meta);
    held.increment(1);
    with(&monitor, || {
        metrics::counter!("ephemeral_total", "id" => "a").increment(1)
    });
    monitor.upkeep();
    mock.increment(Duration::from_secs(31));
    monitor.upkeep();
    let text = monitor.render();
    assert!(
        !text.contains("held_total"),
        "idle series leave the exposition:\n{text}"
    );
    assert!(!text.contains("ephemeral_total"), "{text}");

    // The expired label set freed its slot: a new one is admitted.
    with(&monitor, || {
        metrics::counter!("ephemeral_total", "id" => "b").increment(1)
    });
    held.increment(1);
    let text = monitor.render();
    assert!(text.contains(r#"ephemeral_total{id="b"} 1"#), "{text}");
    assert!(
        text.contains("held_total 2"),
        "a held handle never loses a value:\n{text}"
    );
    assert_eq!(monitor.series_dropped(), 0);
}

#[test]
fn timed_functions_record_into_the_registry() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    with(&monitor, || {
        for items in 0..5 {
            let _ = checkout(items);
        }
    });
    let summary = monitor.summary();
    let durations = summary
        .histograms
        .iter()
        .find(|h| h.name == "function_calls_duration_seconds" && h.labels["function"] == "checkout")
        .expect("a duration histogram for checkout");
    assert_eq!(durations.total.count, 5);
    let calls = |result: &str| {
        summary
            .counters
            .iter()
            .find(|c| {
                c.name == "function_calls_total"
                    && c.labels["result"] == result
                    && c.labels["function"] == "checkout"
            })
            .map(|c| c.total)
    };
    assert_eq!(calls("ok"), Some(4));
    assert_eq!(calls("error"), Some(1));
}

#[test]
fn histograms_recorded_from_many_threads_are_all_counted() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    let histogram = monitor.recorder().register_histogram(
        &Key::from_name("work_seconds"),
        &metrics::Metadata::new("t", metrics::Level::INFO, None),
    );
    let histogram = Arc::new(histogram);
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let histogram = Arc::clone(&histogram);
            scope.spawn(move || {
                for i in 0..10_000 {
                    histogram.record(f64::from(thread * 10_000 + i + 1) / 1e6);
                }
            });
        }
    });
    let summary = monitor.summary();
    assert_eq!(summary.histograms[0].total.count, 40_000);
    let p50 = summary.histograms[0].total.p50;
    assert!(
        (p50 - 0.02).abs() / 0.02 < 0.001,
        "p50 of 1..=40000 us is 20 ms: {p50}"
    );
}

#[test]
fn a_real_prometheus_scrapes_the_listener() {
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .global_label("service", "scraped")
        .build()
        .unwrap();
    let target = monitor.listen_address().expect("a listener");
    with(&monitor, || {
        metrics::counter!("scraped_orders_total", "region" => "eu").increment(42);
        for _ in 0..10 {
            metrics::histogram!("scraped_latency_seconds").record(0.125);
        }
    });
    let (status, body) = servers::http_get(target, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("scraped_orders_total"), "{body}");
    assert_eq!(servers::http_get(target, "/other").unwrap().0, 404);

    let prometheus = servers::Prometheus::start(target);
    prometheus.wait_for("scraping vigil", |p| {
        p.query_one(r#"up{job="vigil"}"#) == Some(1.0)
    });
    prometheus.wait_for("holding the counter", |p| {
        p.query_one(r#"scraped_orders_total{region="eu",service="scraped"}"#) == Some(42.0)
    });
    assert_eq!(
        prometheus.query_one("scraped_latency_seconds_count"),
        Some(10.0)
    );
    let p99 = prometheus
        .query_one(r#"scraped_latency_seconds{quantile="0.99"}"#)
        .unwrap();
    assert!((p99 - 0.125).abs() / 0.125 < 0.001, "{p99}");
}

#[test]
fn the_listener_refuses_peers_outside_the_allowlist() {
    let monitor = Monitor::builder()
        .listen("127.0.0.1:0")
        .allow("10.0.0.0/8")
        .build()
        .unwrap();
    let target = monitor.listen_address().unwrap();
    let answer = servers::http_get(target, "/metrics");
    assert!(
        !matches!(answer, Ok((200, _))),
        "127.0.0.1 is outside 10.0.0.0/8 and must not be served: {answer:?}"
    );
}

#[test]
fn bad_settings_are_errors_naming_the_setting() {
    let error = Monitor::builder()
        .listen("not an address")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("listen"), "{error}");
    let error = Monitor::builder().quantiles(&[1.5]).build().unwrap_err();
    assert!(error.to_string().contains("quantiles"), "{error}");
    let error = Monitor::builder()
        .buckets(Matcher::Full("x".into()), &[1.0, 0.5])
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("buckets"), "{error}");
    let error = Monitor::builder()
        .histogram(
            Matcher::Full("x".into()),
            vigil::histogram::Config::new().significant_figures(9),
        )
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("x"), "{error}");
}

#[test]
fn a_gauge_set_to_the_same_value_stays_active() {
    let (clock, mock) = Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .idle_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
    let up = monitor
        .recorder()
        .register_gauge(&Key::from_name("up"), &meta);
    for _ in 0..15 {
        up.set(1.0);
        mock.increment(Duration::from_secs(1));
        monitor.upkeep();
    }
    assert!(monitor.render().contains("up 1\n"), "{}", monitor.render());
}

#[test]
fn an_expired_overflow_series_frees_no_slot() {
    let (clock, mock) = Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .idle_timeout(Duration::from_secs(10))
        .max_series_per_metric(2)
        .build()
        .unwrap();
    let recorder = monitor.recorder();
    let meta = metrics::Metadata::new("t", metrics::Level::INFO, None);
    let key = |i: u32| Key::from_parts("c_total", vec![Label::new("i", i.to_string())]);
    let held: Vec<_> = (0..2)
        .map(|i| recorder.register_counter(&key(i), &meta))
        .collect();
    recorder.register_counter(&key(2), &meta).increment(1); // folds into overflow, not held
    for _ in 0..3 {
        for counter in &held {
            counter.increment(1);
        }
        mock.increment(Duration::from_secs(6));
        monitor.upkeep();
    }
    recorder.register_counter(&key(5), &meta).increment(1);
    let text = monitor.render();
    let series = text.lines().filter(|l| l.starts_with("c_total{i=")).count();
    assert_eq!(
        series, 2,
        "the limit still holds after the overflow series expired:\n{text}"
    );
}

#[test]
fn one_name_is_one_metric_family_and_keeps_its_help() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    with(&monitor, || {
        metrics::describe_counter!("jobs.done_total", "Jobs done");
        metrics::counter!("jobs.done_total").increment(1);
        metrics::counter!("shared_total").increment(1);
        metrics::gauge!("shared_total").set(5.0);
    });
    let text = monitor.render();
    assert!(text.contains("# HELP jobs_done_total Jobs done"), "{text}");
    assert_eq!(text.matches("# TYPE shared_total").count(), 1, "{text}");
    if let Err(findings) = servers::promtool_check_metrics(&text) {
        panic!("promtool check metrics reported:\n{findings}\non:\n{text}");
    }
}

#[test]
fn bucket_counts_are_exact_at_every_bound() {
    // 250.05 ms and 1.0003 s share an HDR bucket (3 figures) with the
    // 0.25 s and 1 s bounds; they still count above them.
    let monitor = Monitor::builder()
        .manual_upkeep()
        .buckets(Matcher::Full("db_query_seconds".into()), &[0.25, 1.0])
        .build()
        .unwrap();
    with(&monitor, || {
        for seconds in [0.25, 0.25005, 1.0, 1.0003] {
            metrics::histogram!("function_calls_duration_seconds", "function" => "f")
                .record(seconds);
            metrics::histogram!("db_query_seconds").record(seconds);
        }
    });
    let text = monitor.render();
    for expected in [
        r#"function_calls_duration_seconds_bucket{function="f",le="0.25"} 1"#,
        r#"function_calls_duration_seconds_bucket{function="f",le="0.5"} 2"#,
        r#"function_calls_duration_seconds_bucket{function="f",le="1"} 3"#,
        r#"function_calls_duration_seconds_bucket{function="f",le="2.5"} 4"#,
        r#"db_query_seconds_bucket{le="0.25"} 1"#,
        r#"db_query_seconds_bucket{le="1"} 3"#,
        r#"db_query_seconds_bucket{le="+Inf"} 4"#,
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
}

#[test]
fn the_listener_accepts_a_host_name() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .listen("localhost:0")
        .build()
        .unwrap();
    let address = monitor.listen_address().expect("a listener");
    assert!(address.ip().is_loopback(), "{address}");
    assert_ne!(address.port(), 0);
    let error = Monitor::builder()
        .listen("no-such-host.invalid:9000")
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("no-such-host.invalid:9000"),
        "{error}"
    );
}
