//! The enterprise agent system's monitoring (SEED-SYSTEMS.md section 3) on
//! vigil: an axum service for feature flags, deployments, user preferences,
//! agent credentials and agent tasks over a database pool of 5; a
//! two-layer cache (an in-process LRU of 1 024 in front of a simulated
//! Redis) with the system's key patterns, TTL by data class (public 1 h,
//! user 5 min, sensitive 1 min), tags, warming of the top 100 features and
//! the deployment stats, and HTTP `Cache-Control` / `ETag`; the pool's
//! free connections and the replica's lag as gauges; the latency targets
//! (p50 100 ms, p95 300 ms, p99 800 ms, DB p95 50 ms, errors < 0.1 %) and
//! the three alerts (p95 > 500 ms, error rate > 1 %, cache hit rate < 80 %);
//! after the report, the system's staged load test (`vigil::load::LoadTest`
//! with stages 1 min -> 50 users, 2 min -> 100, 1 min -> 0, here seconds)
//! checking status 200/201 and < 500 ms, judged as KPIs.
//!
//! ```text
//! cargo run --example enterprise_agents              # load with a degradation, report, exit
//! cargo run --example enterprise_agents -- --serve   # keeps serving on 127.0.0.1
//! ```
//!
//! Time is compressed: each second of load is one minute for the
//! registry's windows and the alert engine. The degradation is a rolling
//! release: every cache is flushed each minute (cold caches) and the
//! database, under the misses, answers 6 times slower and times out one
//! query in twenty. With the pool of 5 the misses queue for a connection,
//! so the p95 goes well past 500 ms (the load's 100 users ask more than
//! the pool can answer), not just near it: the three alerts fire in every
//! run, and resolve once the release is over.
//!
//! The staged load test runs on its own after the report, on the wall
//! clock, against the recovered service: the degradation above is driven
//! by the example's own load (which advances the simulated time and the
//! alerts each second), so the staged test measures the healthy system
//! the way the team's load test does.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;
use vigil::alert::AlertConfig;
use vigil::alert::notify::ChannelNotifier;
use vigil::cache::EntryOptions;
use vigil::cache::sync::TaggedCache;
use vigil::load::{Comparison, Kpi as LoadKpi, LoadReport, LoadTest, Stat};
use vigil::metrics::gauge;
use vigil::{Monitor, Outcome, TimerTable};

use support::report::{self, Kpi, Scorecard, percentiles};
use support::{Degradation, Dependency, Latency, Load, Phase, Request, Rng, Status};

/// The system's alert rules.
const RULES: &str = r#"
rules:
  - name: HighP95Latency
    expr:
      histogram: { metric: http_server_request_duration_seconds, stat: p95, window: 1m }
    aggregate: max
    thresholds: { high: "> 0.5" }
    for: 2m
    annotations: { summary: "p95 {{ $value }}s above 500 ms" }
  - name: HighErrorRate
    expr:
      ratio:
        numerator: { metric: http_server_requests_total, matchers: ['status=~"5.."'] }
        denominator: { metric: http_server_requests_total }
        ignoring: [status, method, route]
        window: 1m
    aggregate: sum
    thresholds: { critical: "> 0.01" }
    for: 1m
    annotations: { summary: "error rate {{ $value }} above 1 %" }
  - name: LowCacheHitRate
    expr:
      ratio:
        numerator: { metric: cache_requests_total, matchers: ['cache="local_lru"', 'result="hit"'] }
        denominator: { metric: cache_requests_total, matchers: ['cache="local_lru"'] }
        ignoring: [result]
        window: 1m
    thresholds: { warning: "< 0.8" }
    for: 2m
    annotations: { summary: "{{ $labels.cache }} hit rate {{ $value }} below 80 %" }
"#;

/// One second of load is this much time for the windows and the alerts.
const TICK: Duration = Duration::from_secs(60);

/// TTL by data class.
const PUBLIC: Duration = Duration::from_secs(3_600);
const USER: Duration = Duration::from_secs(300);
const SENSITIVE: Duration = Duration::from_secs(60);
/// Deployment stats are warmed for a day.
const STATS: Duration = Duration::from_secs(86_400);

/// Database queries, timed by query name.
static QUERIES: TimerTable = TimerTable::by_function("enterprise::db").with_capacity(64);

/// The service's state.
#[derive(Clone)]
struct App {
    /// L1: in-process LRU of 1 024.
    local: TaggedCache<String, Arc<str>>,
    /// L2: Redis (simulated: a cache behind a ~1 ms round trip).
    redis: TaggedCache<String, Arc<str>>,
    redis_link: Dependency,
    /// PostgreSQL: 6 ms median, 35 ms p99; 6x slower and 5 % timeouts while degraded.
    db: Dependency,
    /// The connection pool (5).
    pool: Arc<Semaphore>,
}

/// The pool's size.
const POOL: usize = 5;

impl App {
    /// A query on a pooled connection, timed by name.
    async fn query(&self, name: &str, row: String) -> Result<Arc<str>, StatusCode> {
        let permit = self
            .pool
            .acquire()
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        gauge!("db_pool_available").set(self.pool.available_permits() as f64);
        let result = QUERIES
            .timed_with(name, self.db.call(), Outcome::of_result)
            .await;
        drop(permit);
        gauge!("db_pool_available").set(self.pool.available_permits() as f64);
        result
            .map(|()| row.into())
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
    }

    /// Reads `key` from L1, then Redis (promoting a hit to L1), then the
    /// database with `class`'s query (filling both), with the class's TTL
    /// and tags.
    async fn cached(&self, key: String, class: &Class) -> Result<Arc<str>, StatusCode> {
        if let Some(value) = self.local.get(&key) {
            return Ok(value);
        }
        let options = class.options();
        self.redis_link
            .call()
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        if let Some(value) = self.redis.get(&key) {
            self.local.insert_with(key, Arc::clone(&value), options);
            return Ok(value);
        }
        let value = self
            .query(class.query, format!("{{\"key\":\"{key}\"}}"))
            .await?;
        self.redis
            .insert_with(key.clone(), Arc::clone(&value), options.clone());
        self.local.insert_with(key, Arc::clone(&value), options);
        Ok(value)
    }
}

/// A JSON body with its caching headers: a weak ETag of the body and
/// `Cache-Control`; `If-None-Match` with the same tag gets a 304.
fn cacheable(headers: &HeaderMap, body: Arc<str>, cache_control: &'static str) -> Response {
    let etag = format!(
        "W/\"{:x}\"",
        body.bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b))
                .wrapping_mul(0x100_0000_01b3))
    );
    let tag = HeaderValue::from_str(&etag).expect("hex ETag");
    let control = HeaderValue::from_static(cache_control);
    if headers.get(header::IF_NONE_MATCH) == Some(&tag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tag), (header::CACHE_CONTROL, control)],
        )
            .into_response();
    }
    (
        [(header::ETAG, tag), (header::CACHE_CONTROL, control)],
        body.to_string(),
    )
        .into_response()
}

/// How one kind of response is cached: the TTL of its data class (public
/// 1 h, user 5 min, sensitive 1 min), its tags, the query that loads it on
/// a miss and its HTTP `Cache-Control`.
struct Class {
    ttl: Duration,
    tags: &'static [&'static str],
    query: &'static str,
    cache_control: &'static str,
}

/// `feature:{id}`.
const FEATURE: Class = Class {
    ttl: PUBLIC,
    tags: &["features", "public"],
    query: "get_feature",
    cache_control: "public, max-age=3600",
};
/// `features:list:{page}:{page_size}:{status}`.
const FEATURE_LIST: Class = Class {
    query: "list_features",
    ..FEATURE
};
/// `deployments:stats:{env}:{period}`, warmed for 24 h.
const DEPLOYMENT_STATS: Class = Class {
    ttl: STATS,
    tags: &["deployments", "public"],
    query: "deployment_stats",
    cache_control: "public, max-age=300",
};
/// `user:{id}:preferences`.
const PREFERENCES: Class = Class {
    ttl: USER,
    tags: &["user"],
    query: "get_preferences",
    cache_control: "private, max-age=300",
};
/// `agent:{id}:credentials`: never stored by HTTP caches.
const CREDENTIALS: Class = Class {
    ttl: SENSITIVE,
    tags: &["sensitive"],
    query: "get_credentials",
    cache_control: "no-store",
};

impl Class {
    /// The cache entry options: the class's TTL and tags.
    fn options(&self) -> EntryOptions {
        EntryOptions::default()
            .ttl(self.ttl)
            .tags(self.tags.iter().copied())
    }
}

impl App {
    /// `key` through the cache layers as `class`, answered with the
    /// class's `Cache-Control` and an ETag (a 304 for a matching
    /// `If-None-Match`).
    async fn respond(
        &self,
        headers: &HeaderMap,
        key: String,
        class: &Class,
    ) -> Result<Response, StatusCode> {
        let body = self.cached(key, class).await?;
        Ok(cacheable(headers, body, class.cache_control))
    }
}

/// The cache key `prefix:{value}:{value}...`: the value of each of
/// `params` (a name and its default) in the query string.
fn query_key(prefix: &str, query: &BTreeMap<String, String>, params: &[(&str, &str)]) -> String {
    let mut key = prefix.to_owned();
    for (name, default) in params {
        key.push(':');
        key.push_str(query.get(*name).map_or(default, String::as_str));
    }
    key
}

/// `GET /api/v1/features/{id}`: `feature:{id}`, public, 1 h.
async fn feature(
    State(app): State<App>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, StatusCode> {
    app.respond(&headers, format!("feature:{id}"), &FEATURE)
        .await
}

/// `GET /api/v1/features?page=&page_size=&status=`:
/// `features:list:{page}:{page_size}:{status}`, public, 1 h.
async fn features(
    State(app): State<App>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, StatusCode> {
    let params = [("page", "1"), ("page_size", "20"), ("status", "active")];
    let key = query_key("features:list", &q, &params);
    app.respond(&headers, key, &FEATURE_LIST).await
}

/// `GET /api/v1/deployments/stats?env=&period=`:
/// `deployments:stats:{env}:{period}`, warmed for 24 h.
async fn deployment_stats(
    State(app): State<App>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, StatusCode> {
    let key = query_key(
        "deployments:stats",
        &q,
        &[("env", "prod"), ("period", "24h")],
    );
    app.respond(&headers, key, &DEPLOYMENT_STATS).await
}

/// `GET /api/v1/users/{id}/preferences`: user data, 5 min.
async fn preferences(
    State(app): State<App>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, StatusCode> {
    let key = format!("user:{id}:preferences");
    app.respond(&headers, key, &PREFERENCES).await
}

/// `GET /api/v1/agents/{id}/credentials`: sensitive, 1 min, never stored by HTTP caches.
async fn credentials(State(app): State<App>, Path(id): Path<u64>) -> Result<Response, StatusCode> {
    let body = app
        .cached(format!("agent:{id}:credentials"), &CREDENTIALS)
        .await?;
    let control = [(header::CACHE_CONTROL, CREDENTIALS.cache_control)];
    Ok((control, body.to_string()).into_response())
}

/// `POST /api/v1/agents/{id}/tasks`: schedules a task (a write), 201.
async fn create_task(
    State(app): State<App>,
    Path(id): Path<u64>,
) -> Result<(StatusCode, String), StatusCode> {
    app.query("insert_task", format!("{{\"agent\":{id}}}"))
        .await?;
    app.local.invalidate(&format!("agent:{id}:credentials"));
    Ok((
        StatusCode::CREATED,
        format!("{{\"agent\":{id},\"status\":\"queued\"}}"),
    ))
}

/// The next request of a virtual user: features dominate, Zipf-like ids.
fn next_request(rng: &mut Rng, _phase: Phase) -> Request {
    let hot = |rng: &mut Rng, n: u64| {
        let bound = rng.below(n) + 1;
        rng.below(bound)
    };
    match rng.below(100) {
        0..=44 => Request::get(format!("/api/v1/features/{}", hot(rng, 400))),
        45..=59 => Request::get(format!(
            "/api/v1/features?page={}&page_size=20&status=active",
            hot(rng, 10) + 1
        )),
        60..=69 => Request::get(format!(
            "/api/v1/deployments/stats?env={}&period=24h",
            rng.pick(&["prod", "staging", "dev"])
        )),
        70..=84 => Request::get(format!("/api/v1/users/{}/preferences", hot(rng, 200))),
        85..=92 => Request::get(format!("/api/v1/agents/{}/credentials", rng.below(30))),
        _ => Request::post(
            format!("/api/v1/agents/{}/tasks", rng.below(30)),
            r#"{"kind":"sync"}"#,
        ),
    }
}

/// The seed's stages (1 min -> 50 users, 2 min -> 100, 1 min -> 0) with
/// a second for each of its minutes.
const STAGES: [(Duration, u32); 3] = [
    (Duration::from_secs(1), 50),
    (Duration::from_secs(2), 100),
    (Duration::from_secs(1), 0),
];
/// The staged test's check: a response slower than this fails it.
const CHECK_LATENCY: Duration = Duration::from_millis(500);

/// The staged load test: virtual users ramping through [`STAGES`], each
/// sending the same mix of requests as the load above with 100 ms of think
/// time; a request passes its check with status 200 or 201 within
/// [`CHECK_LATENCY`].
async fn staged_load_test(address: std::net::SocketAddr) -> Result<LoadReport, vigil::load::Error> {
    let request = move || async move {
        let request = next_request(&mut Rng::next_seeded(), Phase::Recovery);
        match support::load::send(address, &request, None).await {
            Ok((200 | 201, _)) => Ok(()),
            Ok((status, _)) => Err(format!(
                "{} {}: status {status}",
                request.method, request.path
            )),
            Err(error) => Err(format!("{} {}: {error}", request.method, request.path)),
        }
    };
    LoadTest::new(request)
        .name("agents staged")
        .stages(STAGES)
        .think_time(Duration::from_millis(100))
        .timeout(CHECK_LATENCY)
        .grace(Duration::from_secs(2))
        .run()
        .await
}

/// Prints the staged test's stages and its checks as KPIs.
fn print_staged_load_test(staged: &LoadReport) -> Result<(), vigil::load::Error> {
    report::print_load_test(
        "Staged load test: 1 s -> 50 users, 2 s -> 100, 1 s -> 0 (the seed's minutes as seconds)",
        staged,
    );
    let mut checks = Comparison::new();
    for kpi in [
        LoadKpi::of(
            "failed checks (status not 200/201, or >= 500 ms)",
            Stat::ErrorRate,
        )
        .target(0.1)
        .critical(1.0),
        LoadKpi::of("p95", Stat::P95).target(300.0).critical(500.0),
        LoadKpi::of("p99", Stat::P99)
            .target(800.0)
            .critical(1_000.0),
    ] {
        checks.measure(kpi, staged)?;
    }
    report::print_comparison("Staged load test checks", &checks);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = support::Options::from_env();
    let degradation = Degradation::new();
    let app = App {
        local: TaggedCache::builder()
            .name("local_lru")
            .max_capacity(1_024)
            .build(),
        redis: TaggedCache::builder()
            .name("redis")
            .max_capacity(100_000)
            .build(),
        redis_link: Dependency::new("redis", Latency::ms(0.8, 3.0), 0.0),
        db: Dependency::new("postgres", Latency::ms(6.0, 35.0), 0.0002).degrades(
            &degradation,
            6.0,
            0.05,
        ),
        pool: Arc::new(Semaphore::new(POOL)),
    };

    // Warming: the top 100 features (1 h) and the deployment stats (24 h).
    let top_feature = |id: u64| {
        (
            format!("feature:{id}"),
            Arc::<str>::from(format!("{{\"id\":{id}}}")),
        )
    };
    let warm = |cache: &TaggedCache<String, Arc<str>>| {
        let mut loaded = 0;
        for id in 0..100 {
            let (key, value) = top_feature(id);
            cache.insert_with(key, value, FEATURE.options());
            loaded += 1;
        }
        for env in ["prod", "staging", "dev"] {
            let key = format!("deployments:stats:{env}:24h");
            let value = Arc::from("{\"deploys\":42}");
            cache.insert_with(key, value, DEPLOYMENT_STATS.options());
            loaded += 1;
        }
        loaded
    };
    println!(
        "warmed {} entries in each layer",
        warm(&app.local).min(warm(&app.redis))
    );

    let (clock, mock) = quanta::Clock::mock();
    let (console, mut notifications) = ChannelNotifier::channel(64);
    let db = app.db.clone();
    let monitor = Monitor::builder()
        .global_label("service", "enterprise-agents")
        .clock(clock)
        .system_metrics(Duration::from_secs(15))
        .api_token(options.token.clone())
        .cache("local_lru", &app.local)
        .cache("redis", &app.redis)
        .readiness_check("postgres", move || {
            let db = db.clone();
            async move { db.call().await }
        })
        .alerts(AlertConfig::from_yaml_str(RULES, "enterprise-alerts.yml")?.into_engine()?)
        .manual_alerts()
        .notifier("default", console)
        .install()?;
    gauge!("db_pool_available").set(POOL as f64);

    let router = Router::new()
        .route("/api/v1/features", get(features))
        .route("/api/v1/features/{id}", get(feature))
        .route("/api/v1/deployments/stats", get(deployment_stats))
        .route("/api/v1/users/{id}/preferences", get(preferences))
        .route("/api/v1/agents/{id}/credentials", get(credentials))
        .route("/api/v1/agents/{id}/tasks", post(create_task))
        .with_state(app.clone())
        .merge(monitor.router())
        .layer(monitor.http_layer());
    let (address, server) = support::serve(&options, router).await?;

    // 100 virtual users ramped up over the first 3 s; a rolling release
    // from 30 % to 70 % flushes the caches and slows the database (at
    // least three of its minutes, even with a short --duration: the p95
    // alert's `for` is 2 minutes).
    let mut load = Load::new(options.duration, 100);
    load.ramp_up_per_second = 35.0;
    load.degraded = (0.3, 0.7);
    load.think_time = Duration::from_millis(100);
    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    let mut now = start;
    let mut max_lag: f64 = 0.0;
    let (local, redis) = (app.local.clone(), app.redis.clone());
    let stats = load
        .run(address, &degradation, next_request, |phase| {
            if phase == Phase::Degraded {
                // A rolling release invalidates every cached entry each minute.
                local.invalidate_all();
                redis.invalidate_all();
            }
            let lag = if phase == Phase::Degraded { 1.6 } else { 0.2 };
            gauge!("db_replication_lag_seconds").set(lag);
            max_lag = max_lag.max(lag);
            mock.increment(TICK);
            now += TICK;
            monitor.evaluate_alerts(now);
        })
        .await;

    report::heading("Enterprise agent system: run report");
    println!(
        "(1 s of load = {} simulated s; alert times below are simulated)",
        TICK.as_secs()
    );
    stats.print();

    let routes = percentiles(&monitor, "http_server_request_duration_seconds", &["route"]);
    let worst = |pick: fn(&report::Percentiles) -> f64| routes.values().map(pick).reduce(f64::max);
    let queries = percentiles(&monitor, "function_calls_duration_seconds", &["function"]);
    let db_p95 = queries.values().map(|p| p.p95).reduce(f64::max);
    let mut scorecard = Scorecard::new();
    for (name, target, current) in [
        ("p50 (worst route)", 0.1, worst(|p| p.p50)),
        ("p95 (worst route)", 0.3, worst(|p| p.p95)),
        ("p99 (worst route)", 0.8, worst(|p| p.p99)),
        ("DB p95 (worst query)", 0.05, db_p95),
    ] {
        let status = Status::lower_is_better(current, target, target * 2.0);
        let shown = current.map_or("-".to_owned(), |v| format!("{:.0} ms", v * 1e3));
        scorecard.add(
            name,
            format!("{:.0} ms", target * 1e3),
            shown,
            status,
            if status == Status::Pass {
                "within SLO"
            } else {
                "SLO missed"
            },
        );
    }
    let errors = stats.error_ratio(None);
    let error_status = Status::lower_is_better(Some(errors), 0.001, 0.01);
    scorecard.add(
        "error rate",
        "< 0.1 %",
        format!("{:.2} %", errors * 100.0),
        error_status,
        "",
    );
    let rps_status = Status::higher_is_better(Some(stats.rate()), 9_999.0, 5_000.0);
    scorecard.add(
        "throughput",
        "10000 rps",
        format!("{:.0} rps", stats.rate()),
        rps_status,
        "one laptop, simulated users",
    );
    scorecard.print("Targets over the whole run (degradation included)");

    let gauges = monitor.summary().gauges;
    let gauge_stats = |name: &str| {
        gauges
            .iter()
            .find(|g| g.name == name)
            .map(|g| (g.value, g.min, g.max))
    };
    let cache_rate = {
        let totals = monitor.cache_report().totals;
        (totals.hits + totals.misses > 0)
            .then(|| totals.hits as f64 / (totals.hits + totals.misses) as f64 * 100.0)
    };
    report::print_kpis(
        "Key metrics",
        &[
            Kpi {
                name: "DB pool available (lowest in the window)".into(),
                unit: "conns",
                baseline: POOL as f64,
                target: 2.0,
                critical: 0.0,
                current: gauge_stats("db_pool_available").map(|g| g.1),
            },
            Kpi {
                name: "replication lag (highest in the run)".into(),
                unit: "s",
                baseline: 0.2,
                target: 1.0,
                critical: 5.0,
                current: Some(max_lag),
            },
            Kpi {
                name: "cache hit rate (all layers)".into(),
                unit: "%",
                baseline: 95.0,
                target: 80.0,
                critical: 60.0,
                current: cache_rate,
            },
            Kpi {
                name: "CPU".into(),
                unit: "%",
                baseline: 50.0,
                target: 70.0,
                critical: 90.0,
                current: gauge_stats("system_cpu_usage_ratio").map(|g| g.0 * 100.0),
            },
            Kpi {
                name: "memory".into(),
                unit: "%",
                baseline: 60.0,
                target: 80.0,
                critical: 95.0,
                current: gauge_stats("system_memory_usage_ratio").map(|g| g.0 * 100.0),
            },
        ],
    );

    report::print_percentiles(
        &monitor,
        "Latency by route",
        "http_server_request_duration_seconds",
        &["method", "route"],
        |_| Some(300.0),
    );
    report::print_percentiles(
        &monitor,
        "DB queries by name",
        "function_calls_duration_seconds",
        &["function"],
        |_| Some(50.0),
    );
    report::print_caches(
        &monitor,
        "Cache layers (L1 LRU 1 024 -> Redis; public 1 h, user 5 min, sensitive 1 min)",
        80.0,
    );
    report::print_alerts(&monitor, start);
    support::print_notifications(&mut notifications);
    report::print_health(&monitor);
    print_staged_load_test(&staged_load_test(address).await?)?;

    // From here time runs at its real pace, alerts evaluated every 15 s.
    support::keep_time(&options, &monitor, mock, now);
    support::finish(
        &options,
        "enterprise_agents",
        address,
        &[
            "/api/v1/features/7",
            "/api/v1/features?page=1&page_size=20&status=active",
            "/api/v1/deployments/stats?env=prod&period=24h",
            "/api/v1/users/3/preferences",
            "/api/v1/agents/4/credentials",
        ],
        server,
    )
    .await
}
