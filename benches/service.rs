//! The service layer's reads at scale: `Monitor::health`,
//! `Monitor::recommendations`, `Monitor::cache_report` and
//! `GET /api/v1/performance/metrics/summary` through `Monitor::router`
//! (tower `oneshot` on a current-thread runtime, no sockets), each against
//! what it reads, the registry's own `Monitor::summary` (and, beside it,
//! `Monitor::render`), with 100 and 1 000 timed functions.
//!
//! ```text
//! cargo bench -p vigil-benches --bench service
//! python3 scripts/bench-report service_100 summary
//! python3 scripts/bench-report service_1000 summary
//! ```
//!
//! Each function has what `#[timed]` records: `function_calls_total` by
//! `result` (90 `ok`, 10 `error`) and by two callers
//! (`caller_function`, `caller_module`), and
//! `function_calls_duration_seconds` with 100 latency-like values (5
//! series per function; the monitor's series limit per metric is raised
//! to keep them all). The
//! monitor is built with `manual_upkeep` and measured right after
//! recording, before any upkeep has run. One cache of 1 000 entries
//! (half of 2 000 reads hit) is registered for `cache_report` and the
//! health score.
//!
//! The run starts with the resident memory a monitor adds with and without
//! `system_metrics` (its thread and `sysinfo` state, after two ticks of
//! 1 s), and the median time of one system-metrics tick over 15 ticks
//! spaced by `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`, both printed.

#[allow(dead_code)]
mod series;

use std::hint::black_box;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use series::Latencies;
use tower::ServiceExt;
use vigil::Monitor;
use vigil::cache::sync::TaggedCache;

/// The numbers of timed functions measured.
const SIZES: [usize; 2] = [100, 1_000];

const SUMMARY_PATH: &str = "/api/v1/performance/metrics/summary";

/// Records `n` functions' calls, errors, callers and durations into the
/// recorder in scope, as `#[timed]` would.
fn record_functions(n: usize) {
    let mut latencies = Latencies::new(n as u64);
    for i in 0..n {
        let function = format!("handler_{i:04}");
        for caller in ["route_a", "route_b"] {
            for (result, calls) in [("ok", 45), ("error", 5)] {
                metrics::counter!(
                    "function_calls_total",
                    "function" => function.clone(),
                    "module" => "bench::service",
                    "result" => result,
                    "caller_function" => caller,
                    "caller_module" => "bench::routes",
                )
                .increment(calls);
            }
        }
        let duration = metrics::histogram!(
            "function_calls_duration_seconds",
            "function" => function,
            "module" => "bench::service",
        );
        for _ in 0..100 {
            duration.record(latencies.next_seconds());
        }
    }
}

/// A cache of 1 000 entries, 1 000 hits and 1 000 misses.
fn markets() -> TaggedCache<u32, u32> {
    let cache = TaggedCache::builder()
        .name("markets")
        .max_capacity(10_000)
        .build();
    for i in 0..1_000 {
        cache.insert(i, i);
    }
    for i in 0..2_000 {
        black_box(cache.get(&i));
    }
    cache
}

/// A monitor with `n` timed functions recorded and one cache registered;
/// no upkeep has run. The series limit per metric is raised from its
/// default (1 000) so that every function's 4 counter series are kept.
fn monitor(n: usize, cache: &TaggedCache<u32, u32>) -> Monitor {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .max_series_per_metric(10 * n)
        .cache("markets", cache)
        .build()
        .expect("a monitor without listener");
    vigil::with_local_recorder(&monitor.recorder(), || record_functions(n));
    monitor
}

/// `GET` `path` on `router`; the status and the body's bytes.
async fn get(router: axum::Router, path: &str) -> (u16, axum::body::Bytes) {
    let request = Request::get(path)
        .body(Body::empty())
        .expect("a GET with a valid path");
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a buffered body");
    (status, body)
}

fn service(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    // First, while the allocator has no freed memory to reuse.
    system_metrics_memory();
    system_tick_cost();
    let cache = markets();
    for n in SIZES {
        let monitor = monitor(n, &cache);
        let router = monitor.router();
        let (status, body) = runtime.block_on(get(router.clone(), SUMMARY_PATH));
        assert_eq!(status, 200);
        let last = format!("handler_{:04}", n - 1);
        assert!(
            String::from_utf8_lossy(&body).contains(&last),
            "the summary lists every function"
        );

        let mut group = c.benchmark_group(format!("service_{n}"));
        group.sample_size(if n < 1_000 { 50 } else { 20 });
        group.bench_function("summary", |b| b.iter(|| monitor.summary()));
        group.bench_function("render", |b| b.iter(|| monitor.render()));
        group.bench_function("health", |b| b.iter(|| monitor.health()));
        group.bench_function("recommendations", |b| b.iter(|| monitor.recommendations()));
        group.bench_function("cache_report", |b| b.iter(|| monitor.cache_report()));
        group.bench_function("api_metrics_summary", |b| {
            b.iter(|| runtime.block_on(get(router.clone(), SUMMARY_PATH)))
        });
        group.finish();
    }
}

/// Prints the median time of one `SystemCollector::collect` into a
/// monitor's registry, over 15 ticks spaced by sysinfo's minimum CPU
/// update interval (a tick sooner than that waits out the rest first, so
/// criterion's back-to-back calls would time the wait).
fn system_tick_cost() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .build()
        .expect("a monitor without listener");
    let mut collector = vigil_service::system::SystemCollector::new();
    let mut ticks: Vec<Duration> = (0..15)
        .map(|_| {
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(10));
            vigil::with_local_recorder(&monitor.recorder(), || {
                let start = std::time::Instant::now();
                black_box(collector.collect());
                start.elapsed()
            })
        })
        .collect();
    ticks.sort();
    println!(
        "system_metrics: one tick (SystemCollector::collect into the registry), median of 15: {:.1} us (min {:.1}, max {:.1})",
        ticks[7].as_secs_f64() * 1e6,
        ticks[0].as_secs_f64() * 1e6,
        ticks[14].as_secs_f64() * 1e6
    );
}

/// The resident memory a monitor built by `builder` adds, measured after
/// `wait`.
fn resident_added(builder: vigil::MonitorBuilder, wait: Duration) -> (Monitor, u64) {
    let before = series::rss_bytes();
    let monitor = builder.build().expect("a monitor without listener");
    std::thread::sleep(wait);
    (monitor, series::rss_bytes().saturating_sub(before))
}

/// Prints the resident memory `system_metrics` adds: a monitor with a
/// 1 s interval after two ticks, next to a monitor without it.
fn system_metrics_memory() {
    let wait = Duration::from_millis(2_500);
    // A first monitor pays for what every later one shares (the runtime's
    // and the allocator's first pages).
    drop(resident_added(Monitor::builder().manual_upkeep(), wait));
    let (_plain, plain) = resident_added(Monitor::builder().manual_upkeep(), wait);
    let (system, with_system) = resident_added(
        Monitor::builder()
            .manual_upkeep()
            .system_metrics(Duration::from_secs(1)),
        wait,
    );
    assert!(system.render().contains("process_resident_memory_bytes"));
    println!(
        "resident memory added: a monitor {:.1} KiB, a monitor with system_metrics {:.1} KiB",
        plain as f64 / 1024.0,
        with_system as f64 / 1024.0
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = service
}
criterion_main!(benches);
