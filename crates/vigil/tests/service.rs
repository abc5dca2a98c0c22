//! The service layer on a Monitor: the health score and the
//! recommendations follow what the registry holds, caches registered by
//! name report and clear with exact counts, readiness checks are bounded,
//! the API token never prints, and `system_metrics` fills the exposition.

#![cfg(all(feature = "service", feature = "cache", feature = "alerts"))]

use std::time::{Duration, SystemTime};

use vigil::Monitor;
use vigil::alert::{Comparison, Engine, Rule, Severity};
use vigil::cache::{EntryOptions, future, sync};
use vigil::metrics::{counter, histogram};
use vigil::service::ActiveAlert;
use vigil::service::health::HealthStatus;
use vigil::service::recommend::{Category, Priority};

/// Records `calls` calls of `function` (module `shop`) from `caller` (or
/// none), `errors` of them failing, each lasting `seconds`, as `#[timed]`
/// does.
fn calls(
    monitor: &Monitor,
    function: &'static str,
    caller: &'static str,
    calls: u64,
    errors: u64,
    seconds: f64,
) {
    vigil::with_local_recorder(&monitor.recorder(), || {
        let module = if caller.is_empty() { "" } else { "shop" };
        let series = |result: &'static str| {
            counter!("function_calls_total", "function" => function, "module" => "shop",
                "caller_function" => caller, "caller_module" => module, "result" => result)
        };
        series("ok").increment(calls - errors);
        series("error").increment(errors);
        let duration = histogram!("function_calls_duration_seconds", "function" => function, "module" => "shop");
        for _ in 0..calls {
            duration.record(seconds);
        }
    });
}

fn tags(tags: &[&str]) -> Box<[String]> {
    tags.iter().map(|t| (*t).to_owned()).collect()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * 0.01
}

/// A sync cache with 30 hits and 90 misses, and a future cache with 80
/// hits.
async fn caches() -> (
    sync::TaggedCache<u32, u32>,
    future::TaggedCache<String, String>,
) {
    let markets: sync::TaggedCache<u32, u32> = sync::TaggedCache::builder()
        .name("markets")
        .max_capacity(1_000)
        .build();
    for i in 0..40 {
        let tag = if i % 2 == 0 { "market" } else { "eu" };
        markets.insert_with(i, i, EntryOptions::default().tag(tag));
    }
    for i in 0..30 {
        assert_eq!(markets.get(&i), Some(i));
    }
    for i in 1_000..1_090 {
        assert_eq!(markets.get(&i), None);
    }
    let pages: future::TaggedCache<String, String> = future::TaggedCache::builder()
        .name("pages")
        .max_capacity(100)
        .build();
    pages
        .insert_with(
            "home".into(),
            "x".into(),
            EntryOptions::default().tag("market"),
        )
        .await;
    pages.insert("about".into(), "y".into()).await;
    for _ in 0..80 {
        assert!(pages.get("home").await.is_some());
    }
    (markets, pages)
}

#[tokio::test]
async fn health_and_recommendations_follow_the_recorded_data() {
    let (clock, _mock) = quanta::Clock::mock();
    let (markets, pages) = caches().await;
    let monitor = Monitor::builder()
        .clock(clock)
        .manual_upkeep()
        .cache("markets", &markets)
        .cache("pages", &pages)
        .build()
        .unwrap();
    calls(&monitor, "checkout", "", 100, 20, 3.5);
    calls(&monitor, "db_query", "checkout", 100, 0, 3.0);

    let health = monitor.health();
    let component = |name: &str| health.component(name).unwrap().clone();
    let summary = monitor.summary();
    let p95 = summary
        .histograms
        .iter()
        .map(|h| h.window.p95)
        .fold(0.0, f64::max);
    assert!(close(p95, 3.5));
    assert_eq!(component("latency").value, Some(p95), "the registry's p95");
    assert_eq!(component("latency").status, HealthStatus::Degraded);
    assert!(close(component("error_rate").value.unwrap(), 0.1));
    assert!(component("error_rate").penalty > 0.0);
    assert!(close(component("cache").value.unwrap(), 110.0 / 200.0));
    for missing in ["cpu", "memory", "disk"] {
        assert_eq!(component(missing).value, None, "{missing} was not measured");
        assert_eq!(component(missing).penalty, 0.0);
    }
    assert!(health.score < 100.0);

    let recommendations = monitor.recommendations();
    let find = |category: Category| {
        recommendations
            .iter()
            .filter(|r| r.category == category)
            .collect::<Vec<_>>()
    };
    let cache = find(Category::Cache);
    assert_eq!(cache.len(), 1, "{recommendations:#?}");
    assert_eq!(cache[0].priority, Priority::High, "25 % hits is below 50 %");
    assert!(cache[0].title.contains("markets"));
    assert!(close(cache[0].evidence[0].value, 0.25));

    let errors = find(Category::Errors);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].priority, Priority::Critical);
    assert!(errors[0].title.contains("shop::checkout"));
    assert!(errors[0].description.contains("failed 20 of its 100 calls"));

    let latency = find(Category::Latency);
    let checkout = latency
        .iter()
        .find(|r| r.title.contains("shop::checkout"))
        .expect("checkout is slow");
    assert!(
        checkout
            .description
            .contains("spent in shop::db_query (100 calls)"),
        "{}",
        checkout.description
    );
    assert!(latency.iter().any(|r| r.title.contains("shop::db_query")));
    assert!(recommendations.iter().all(|r| !r.evidence.is_empty()));
}

#[tokio::test]
async fn cache_report_adds_up_the_registered_caches() {
    let (markets, pages) = caches().await;
    let monitor = Monitor::builder()
        .manual_upkeep()
        .cache("markets", &markets)
        .cache("pages", &pages)
        .build()
        .unwrap();
    let report = monitor.cache_report();
    let m = &report.caches["markets"];
    assert_eq!((m.hits, m.misses, m.entry_count), (30, 90, 40));
    assert_eq!(m.hit_rate, 25.0);
    assert_eq!(m.max_size, Some(1_000));
    assert_eq!(m.total_size, 40, "entries without a weigher");
    assert_eq!(m.utilization, 4.0);
    let p = &report.caches["pages"];
    assert_eq!(
        (p.hits, p.misses, p.entry_count, p.max_size),
        (80, 0, 2, Some(100))
    );
    let t = &report.totals;
    assert_eq!((t.hits, t.misses, t.entry_count), (110, 90, 42));
    assert_eq!(t.hit_rate, 55.0);
    assert_eq!(t.max_size, Some(1_100));
    assert_eq!(t.total_size, 42);

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["hit_rate"], 55.0, "totals are inline: {json}");
    assert_eq!(json["caches"]["markets"]["entry_count"], 40);
    for field in [
        "hits",
        "misses",
        "total_size",
        "entry_count",
        "utilization",
        "evictions",
        "max_size",
    ] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
}

#[tokio::test]
async fn clear_caches_counts_exactly() {
    let (markets, pages) = caches().await;
    let monitor = Monitor::builder()
        .manual_upkeep()
        .cache("markets", &markets)
        .cache("pages", &pages)
        .build()
        .unwrap();
    // Tags across every cache: 20 in markets, 1 in pages.
    assert_eq!(
        monitor
            .clear_caches(None, Some(&tags(&["market"])))
            .await
            .unwrap(),
        21
    );
    assert_eq!(
        monitor
            .clear_caches(None, Some(&tags(&["market"])))
            .await
            .unwrap(),
        0
    );
    // One cache, tags.
    assert_eq!(
        monitor
            .clear_caches(Some("pages"), Some(&tags(&["eu"])))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        monitor
            .clear_caches(Some("markets"), Some(&tags(&["eu", "market"])))
            .await
            .unwrap(),
        20
    );
    // An empty list of tags matches no entry, in one cache or in all.
    markets.insert(7, 7);
    assert_eq!(
        monitor
            .clear_caches(Some("markets"), Some(&[]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(monitor.clear_caches(None, Some(&[])).await.unwrap(), 0);
    assert_eq!(monitor.cache_report().totals.entry_count, 2);
    // One cache, everything.
    assert_eq!(
        monitor.clear_caches(Some("markets"), None).await.unwrap(),
        1
    );
    assert_eq!(monitor.clear_caches(Some("pages"), None).await.unwrap(), 1);
    assert_eq!(monitor.cache_report().totals.entry_count, 0);
    // Every cache, everything.
    markets.insert(8, 8);
    pages.insert("contact".into(), "z".into()).await;
    assert_eq!(monitor.clear_caches(None, None).await.unwrap(), 2);
    assert_eq!(monitor.cache_report().totals.entry_count, 0);

    let error = monitor
        .clear_caches(Some("sessions"), None)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, vigil::Error::UnknownCache { .. }));
    assert!(message.contains("\"sessions\""), "{message}");
    assert!(message.contains("\"markets\", \"pages\""), "{message}");
}

#[tokio::test(start_paused = true)]
async fn readiness_fails_on_an_error_and_on_a_hanging_check() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .readiness_check("db", || async { Ok(()) })
        .readiness_check("queue", || async { Err("connection refused".to_owned()) })
        .readiness_check("search", std::future::pending)
        .build()
        .unwrap();
    let readiness = monitor.readiness().await;
    assert!(!readiness.ready);
    let names: Vec<&str> = readiness.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["db", "queue", "search"]);
    assert!(readiness.checks[0].ok);
    assert_eq!(readiness.checks[0].error, None);
    assert!(!readiness.checks[1].ok);
    assert_eq!(
        readiness.checks[1].error.as_deref(),
        Some("connection refused")
    );
    assert!(!readiness.checks[2].ok);
    assert_eq!(
        readiness.checks[2].error.as_deref(),
        Some("timed out after 5s")
    );
    assert!(readiness.checks[2].duration_seconds >= 5.0);

    let quick = Monitor::builder()
        .manual_upkeep()
        .readiness_check("search", std::future::pending)
        .readiness_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let readiness = quick.readiness().await;
    assert_eq!(
        readiness.checks[0].error.as_deref(),
        Some("timed out after 250ms")
    );

    let none = Monitor::builder().manual_upkeep().build().unwrap();
    assert!(none.readiness().await.ready);
}

#[tokio::test(start_paused = true)]
async fn concurrent_readiness_calls_share_one_run_reused_for_a_second() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let (clock, mock) = quanta::Clock::mock();
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let monitor = Monitor::builder()
        .clock(clock)
        .manual_upkeep()
        .readiness_check("db", move || {
            let runs = Arc::clone(&counted);
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(())
            }
        })
        .build()
        .unwrap();
    let (first, second) = tokio::join!(monitor.readiness(), monitor.readiness());
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one run for both calls");
    assert!(first.ready);
    assert_eq!(first, second);

    mock.increment(Duration::from_millis(999));
    assert_eq!(monitor.readiness().await, first);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "reused within a second");
    mock.increment(Duration::from_millis(1));
    assert!(monitor.readiness().await.ready);
    assert_eq!(runs.load(Ordering::SeqCst), 2, "run again after a second");
}

/// Polls `future` to completion on this thread, outside any tokio
/// runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn readiness_is_bounded_outside_a_tokio_runtime_too() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .readiness_check("db", || async { Ok(()) })
        .readiness_check("queue", || async { Err("connection refused".to_owned()) })
        .readiness_check("search", std::future::pending)
        .readiness_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let readiness = block_on(monitor.readiness());
    assert!(!readiness.ready);
    let errors: Vec<Option<&str>> = readiness
        .checks
        .iter()
        .map(|c| c.error.as_deref())
        .collect();
    assert_eq!(
        errors,
        [
            None,
            Some("connection refused"),
            Some("timed out after 50ms")
        ]
    );
}

#[test]
fn the_api_token_never_prints() {
    let token = vigil::service::ApiToken::new("s3cret-token");
    assert_eq!(format!("{token:?}"), "ApiToken(***)");
    assert!(token.matches("s3cret-token"));
    assert!(!token.matches("s3cret-toke"));
    assert!(!token.matches(""));
    let builder = Monitor::builder().api_token("s3cret-token");
    let printed = format!("{builder:?}");
    assert!(printed.contains("ApiToken(***)"), "{printed}");
    assert!(!printed.contains("s3cret"), "{printed}");
    let monitor = builder.manual_upkeep().build().unwrap();
    assert!(!format!("{monitor:?}").contains("s3cret"));
}

#[test]
fn the_builder_refuses_unusable_tokens_and_caches_registered_under_another_name() {
    for unusable in ["", " \t\n", "s3cret\n", " s3cret", "s3crét", "s3c\u{7f}ret"] {
        let error = Monitor::builder()
            .manual_upkeep()
            .api_token(unusable)
            .build()
            .unwrap_err();
        assert!(!error.to_string().contains("s3c"), "{error}");
        assert!(
            matches!(
                error,
                vigil::Error::Setting {
                    setting: "api_token",
                    ..
                }
            ),
            "{error}"
        );
    }

    let unnamed: sync::TaggedCache<u32, u32> = sync::TaggedCache::new(10);
    let error = Monitor::builder()
        .manual_upkeep()
        .cache("markets", &unnamed)
        .build()
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error,
            vigil::Error::Setting {
                setting: "cache",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("\"markets\" has no name"), "{message}");

    let pages: sync::TaggedCache<u32, u32> = sync::TaggedCache::builder()
        .name("pages")
        .max_capacity(10)
        .build();
    let message = Monitor::builder()
        .manual_upkeep()
        .cache("markets", &pages)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("registered as \"markets\" is named \"pages\""),
        "{message}"
    );

    let markets: sync::TaggedCache<u32, u32> = sync::TaggedCache::builder()
        .name("markets")
        .max_capacity(10)
        .build();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .api_token("s3cret token_with-all ~!\"#$%&'()*+,./:;<=>?@[\\]^`{|}\tvisible")
        .cache("markets", &markets)
        .build();
    assert!(monitor.is_ok(), "{monitor:?}");
}

/// A monitor evaluating `rule` when told, notifying a channel.
#[cfg(feature = "alert-routing")]
fn alerting(rule: Rule) -> Monitor {
    let (notifier, _notifications) = vigil::alert::notify::ChannelNotifier::channel(4);
    Monitor::builder()
        .manual_upkeep()
        .manual_alerts()
        .alerts(Engine::new([rule]).unwrap())
        .notifier("default", notifier)
        .build()
        .unwrap()
}

#[cfg(feature = "alert-routing")]
#[test]
fn firing_alerts_carry_their_metric_threshold_and_message() {
    let rule = Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .per_series()
        .threshold(Severity::Medium, Comparison::Greater, 100.0)
        .threshold(Severity::Critical, Comparison::Greater, 1_000.0)
        .annotation("summary", "queue {{ $labels.queue }} is backing up")
        .build()
        .unwrap();
    let monitor = alerting(rule);
    vigil::with_local_recorder(&monitor.recorder(), || {
        vigil::metrics::gauge!("queue_depth", "queue" => "emails").set(500.0);
    });
    let now = SystemTime::now() - Duration::from_secs(1);
    monitor.evaluate_alerts(now);
    let alerts = monitor.active_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.name, "QueueBacklog");
    assert_eq!(alert.metric_name, "queue_depth");
    assert_eq!(alert.threshold, Some(100.0), "the medium limit holds");
    assert_eq!(alert.current_value, Some(500.0));
    assert_eq!(alert.severity, "medium");
    assert_eq!(alert.message, "queue emails is backing up");
    assert_eq!(alert.labels["queue"], "emails");
    assert_eq!(alert.timestamp, now, "started firing at the evaluation");
    let json = serde_json::to_value(alert).unwrap();
    let rfc3339 = jiff::Timestamp::try_from(now).unwrap().to_string();
    assert_eq!(json["timestamp"], rfc3339.as_str());
    assert_eq!(serde_json::from_value::<ActiveAlert>(json).unwrap(), *alert);

    let health = monitor.health();
    let alerts_part = health.component("alerts").unwrap();
    assert!(alerts_part.penalty > 0.0);

    let history = monitor.alert_history();
    assert_eq!(history.last().unwrap().to, "firing");
    let json = serde_json::to_value(history.last().unwrap()).unwrap();
    assert_eq!(json["timestamp"], rfc3339.as_str());
    assert_eq!(history.last().unwrap().severity.as_deref(), Some("medium"));
}

#[cfg(feature = "alert-routing")]
#[test]
fn a_baseline_alert_has_no_threshold_to_show() {
    use vigil::alert::Baseline;

    let rule = Rule::builder("TrafficAnomaly")
        .gauge("rps")
        .threshold(
            Severity::Medium,
            Comparison::Greater,
            Baseline::stddevs(3.0, Duration::from_secs(3_600)).min_samples(5),
        )
        .build()
        .unwrap();
    let monitor = alerting(rule);
    let start = SystemTime::now() - Duration::from_secs(600);
    let rps = |value: f64, minute: u64| {
        vigil::with_local_recorder(&monitor.recorder(), || {
            vigil::metrics::gauge!("rps").set(value);
        });
        monitor.evaluate_alerts(start + Duration::from_secs(minute * 60));
    };
    for (minute, value) in [100.0, 104.0, 96.0, 102.0, 98.0, 100.0]
        .into_iter()
        .enumerate()
    {
        rps(value, minute as u64);
    }
    rps(1_000.0, 6);
    let alerts = monitor.active_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].current_value, Some(1_000.0));
    assert_eq!(
        alerts[0].threshold, None,
        "the computed limit is not published"
    );
}

#[cfg(feature = "system-metrics")]
#[test]
fn system_metrics_fill_the_exposition() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .system_metrics(Duration::from_secs(3_600))
        .build()
        .unwrap();
    let text = monitor.render();
    for name in [
        "system_cpu_usage_ratio",
        "system_memory_used_bytes",
        "system_memory_usage_ratio",
        "system_load1",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        assert!(
            text.contains(&format!("\n{name}")),
            "{name} missing from:\n{text}"
        );
    }
    let usage = monitor.system_usage().expect("one reading taken at build");
    assert_eq!(usage.memory_usage.unit, "percent");
    assert!((0.0..=100.0).contains(&usage.memory_usage.current));
    assert_eq!(usage.memory_usage.min, usage.memory_usage.max);
    let json = serde_json::to_value(&usage).unwrap();
    let at = json["cpu_usage"]["timestamp"].as_str().unwrap();
    let parsed = SystemTime::try_from(at.parse::<jiff::Timestamp>().unwrap()).unwrap();
    assert_eq!(parsed, usage.cpu_usage.timestamp, "RFC 3339: {at}");
    let memory = monitor.health().component("memory").unwrap().value.unwrap();
    assert!(close(memory * 100.0, usage.memory_usage.current));

    let without = Monitor::builder().manual_upkeep().build().unwrap();
    assert_eq!(without.system_usage(), None);
    assert!(!without.render().contains("system_cpu_usage_ratio"));
}

#[cfg(feature = "system-metrics")]
#[test]
fn health_weighs_the_disks_of_the_latest_system_reading() {
    const GONE: &str = "/vigil-test-unmounted";
    let full_disk_gone = |monitor: &Monitor| {
        vigil::with_local_recorder(&monitor.recorder(), || {
            vigil::metrics::gauge!("system_disk_usage_ratio", "mount" => GONE).set(0.999);
        });
    };
    let monitor = Monitor::builder()
        .manual_upkeep()
        .system_metrics(Duration::from_secs(3_600))
        .build()
        .unwrap();
    full_disk_gone(&monitor);
    let mounted = monitor
        .summary()
        .gauges
        .iter()
        .filter(|g| g.name == "system_disk_usage_ratio" && g.labels["mount"] != GONE)
        .map(|g| g.value)
        .reduce(f64::max);
    let disk = monitor.health().component("disk").unwrap().clone();
    assert_eq!(
        disk.value, mounted,
        "the disks mounted at the latest reading"
    );

    // Without the system thread, the series recorded are all there is.
    let without = Monitor::builder().manual_upkeep().build().unwrap();
    full_disk_gone(&without);
    let disk = without.health().component("disk").unwrap().clone();
    assert_eq!(disk.value, Some(0.999));
}

#[cfg(feature = "tracing-layer")]
#[test]
fn spans_are_timed_into_the_registry_on_the_monitors_clock() {
    use tracing_subscriber::layer::SubscriberExt;

    let (clock, mock) = quanta::Clock::mock();
    let monitor = Monitor::builder()
        .clock(clock)
        .manual_upkeep()
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(monitor.span_layer());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("load_user");
        mock.increment(Duration::from_millis(250));
        drop(span);
    });
    let summary = monitor.summary();
    let spans = summary
        .histograms
        .iter()
        .find(|h| h.name == vigil::service::SPAN_DURATION)
        .expect("the span's histogram");
    assert_eq!(spans.labels["span"], "load_user");
    assert_eq!(spans.labels["target"], "service");
    assert_eq!(spans.window.count, 1);
    assert!(close(spans.window.max, 0.25), "{}", spans.window.max);
}

/// The value of the sample line `series` (a name with its labels, as
/// exposed) in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a sample value"))
}

/// The `vigil_health_status` series set to 1 and to 0, by `status`.
fn statuses(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for status in ["healthy", "degraded", "unhealthy"] {
        let series = format!("{}{{status=\"{status}\"}}", vigil::service::HEALTH_STATUS);
        match sample(text, &series) {
            Some(1.0) => on.push(status.to_owned()),
            Some(0.0) => off.push(status.to_owned()),
            other => panic!("{series} is {other:?} in:\n{text}"),
        }
    }
    (on, off)
}

#[test]
fn the_health_score_is_a_gauge_equal_to_the_latest_health() {
    use vigil::service::HEALTH_SCORE;
    use vigil::service::health::{HealthTargets, Limits};

    let targets = HealthTargets {
        p95_seconds: Limits::new(0.2, 0.5),
        ..HealthTargets::default()
    };
    let monitor = Monitor::builder()
        .manual_upkeep()
        .health_targets(targets)
        .install()
        .unwrap();
    // Published when the monitor was built, before anything asked.
    let text = monitor.render();
    assert_eq!(sample(&text, HEALTH_SCORE), Some(100.0), "{text}");
    assert_eq!(statuses(&text).0, ["healthy"]);
    assert!(text.contains(&format!("# HELP {HEALTH_SCORE} ")), "{text}");
    assert!(
        text.contains(&format!("# TYPE {HEALTH_SCORE} gauge")),
        "{text}"
    );

    // p95 0.6 s beyond the 0.5 s critical limit (25 points) and 3 of 30
    // calls failing, at the 10 % critical limit (25 points): 50, degraded.
    calls(&monitor, "checkout", "", 30, 3, 0.6);
    let health = monitor.health();
    assert_eq!(health.score, 50.0, "{health:#?}");
    assert_eq!(health.status, HealthStatus::Degraded);
    let text = monitor.render();
    assert_eq!(sample(&text, HEALTH_SCORE), Some(health.score), "{text}");
    let (on, off) = statuses(&text);
    assert_eq!(on, ["degraded"]);
    assert_eq!(off, ["healthy", "unhealthy"]);
}

#[test]
fn a_bare_registry_gets_the_health_gauges_only_once_asked() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    let text = monitor.render();
    assert!(!text.contains(vigil::service::HEALTH_SCORE), "{text}");
    let health = monitor.health();
    let text = monitor.render();
    assert_eq!(
        sample(&text, vigil::service::HEALTH_SCORE),
        Some(health.score)
    );
    assert_eq!(statuses(&text).0, ["healthy"]);
}

#[cfg(feature = "system-metrics")]
#[test]
fn the_health_gauge_follows_the_registry_without_being_asked() {
    // The health thread recomputes at the system metrics interval (here
    // shorter than the 15 s default); this test only reads the exposition.
    let monitor = Monitor::builder()
        .manual_upkeep()
        .system_metrics(Duration::from_millis(250))
        .build()
        .unwrap();
    let score = |monitor: &Monitor| sample(&monitor.render(), vigil::service::HEALTH_SCORE);
    assert!(score(&monitor).is_some(), "published when built");
    // A p95 of 6 s costs the latency's 25 points whatever the host does.
    calls(&monitor, "report", "", 30, 0, 6.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while score(&monitor).is_none_or(|score| score > 75.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the score was not recomputed in 20 s:\n{}",
            monitor.render()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
