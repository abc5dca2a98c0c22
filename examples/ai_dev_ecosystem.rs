//! The AI development platform's monitoring (SEED-SYSTEMS.md section 1) on
//! vigil: an axum service generating code with a small and a large model,
//! loading projects from the database and a dashboard that also calls an
//! external API; AI model calls timed per model in a `TimerTable` (model
//! known at run time) with token usage and prompt-cache hits per model;
//! the prompt-hash response cache (TTL 1 h) on three levels, memory ->
//! Redis -> database, promoted on hit; the KPI table with baseline /
//! target / critical judged pass / warn / fail (`vigil::load::Comparison`);
//! the platform's warning and critical alerts; the health endpoint polled
//! every 30 s for its response time and status; after the report, a short
//! stress test (`vigil::load::LoadTest::step`) of the project endpoint:
//! 10 more developers every half second up to 100, stopping above 5 %
//! errors, reporting the breaking point that the database pool's 50
//! connections set.
//!
//! ```text
//! cargo run --example ai_dev_ecosystem              # load with a degradation, report, exit
//! cargo run --example ai_dev_ecosystem -- --serve   # keeps serving on 127.0.0.1
//! ```
//!
//! Time is compressed: each second of load is 15 s for the registry's
//! windows and the alert engine. The degradation: the large model's
//! provider slows down 3.5 times and fails one call in ten, which fires the
//! moving-average and error-rate alerts. After the load the developers go
//! on working (fewer of them) while the alerts settle, so they resolve on
//! the recovered response times.

#[path = "support/mod.rs"]
mod support;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, Request as HttpRequest, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use vigil::alert::notify::ChannelNotifier;
use vigil::alert::{AlertConfig, State as AlertState};
use vigil::cache::EntryOptions;
use vigil::cache::sync::TaggedCache;
use vigil::load::{Comparison, HttpTarget, Kpi as LoadKpi, LoadReport, LoadTest};
use vigil::metrics::{counter, gauge, histogram};
use vigil::{Monitor, Outcome, TimerTable, timed};

use support::report::{self, Table, percentiles};
use support::{Degradation, Dependency, Latency, Load, Phase, Request, Rng, Status};

/// The platform's alert rules: its warning and critical levels, the
/// models' moving average, and the system monitor's disk threshold.
const RULES: &str = r#"
rules:
  - name: AiResponseTime
    expr:
      histogram:
        metric: function_calls_duration_seconds
        matchers: ['function="ai_model_call"']
        stat: mean
        window: 1m
    thresholds: { warning: "> 5", critical: "> 10" }
    for: 30s
    annotations: { summary: "{{ $labels.model }} moving average {{ $value }}s" }
  - name: ErrorRate
    expr:
      ratio:
        numerator: { metric: http_server_requests_total, matchers: ['status=~"5.."'] }
        denominator: { metric: http_server_requests_total }
        ignoring: [status, method, route]
        window: 1m
    aggregate: sum
    thresholds: { warning: "> 0.01", critical: "> 0.05" }
    for: 1m
    annotations: { summary: "error rate {{ $value }}" }
  - name: HighCpu
    expr: { gauge: { metric: system_cpu_usage_ratio } }
    thresholds: { warning: "> 0.7", critical: "> 0.9" }
    for: 1m
  - name: HighMemory
    expr: { gauge: { metric: system_memory_usage_ratio } }
    thresholds: { warning: "> 0.8", critical: "> 0.95" }
    for: 1m
  - name: DiskFilling
    expr: { gauge: { metric: system_disk_usage_ratio } }
    thresholds: { warning: "> 0.9" }
    for: 1m
"#;

/// One second of load is this much time for the windows and the alerts.
const TICK: Duration = Duration::from_secs(15);
/// Developers still working after the load, while the alerts settle.
const SETTLE_DEVELOPERS: u64 = 30;
/// The settling's ticks: at least a window (1 min) and a half, at most 5 min.
const MIN_SETTLE_TICKS: u32 = 6;
const SETTLE_TICKS: u32 = 20;
/// The database pool's connections. A query finding none free fails at
/// once with 503 (the pool's acquire timeout is 0).
const DB_POOL: u64 = 50;
/// The stress test's step: 10 more developers each half second, up to 100.
const STRESS_STEP: Duration = Duration::from_millis(500);
const STRESS_USERS_PER_STEP: u32 = 10;
const STRESS_MAX_USERS: u32 = 100;
/// The prompt cache's TTL, on every level.
const PROMPT_TTL: Duration = Duration::from_secs(3_600);

/// AI model calls, one site per model:
/// `function_calls_*{function="ai_model_call", model="<model>"}`.
static MODEL_CALLS: TimerTable = TimerTable::by_labels("ai_model_call", "ai_dev", &["model"]);
/// Database queries by query name.
static QUERIES: TimerTable = TimerTable::by_function("ai_dev::db").with_capacity(64);

/// Connections being served (`active_connections`).
static CONNECTIONS: AtomicI64 = AtomicI64::new(0);

/// The models: name, size, response-time target (s).
const MODELS: [(&str, &str, f64); 2] =
    [("coder-small", "small", 3.0), ("coder-large", "large", 5.0)];

/// The service's state.
#[derive(Clone)]
struct App {
    small: Dependency,
    large: Dependency,
    /// PostgreSQL: 20 ms median, 90 ms p99.
    db: Dependency,
    /// Connections of the database pool in use (at most [`DB_POOL`]).
    db_busy: Arc<AtomicU64>,
    /// The external API the dashboard calls (a code host): 150 ms median.
    external: Dependency,
    /// Redis round trip.
    redis_link: Dependency,
    /// Prompt cache levels: memory (LRU of 40), Redis, database.
    memory: TaggedCache<u64, Arc<str>>,
    redis: TaggedCache<u64, Arc<str>>,
    stored: TaggedCache<u64, Arc<str>>,
}

impl App {
    /// A database query, timed by name, on a connection of the pool: 503
    /// when all [`DB_POOL`] are in use.
    async fn query(&self, name: &str) -> Result<(), StatusCode> {
        let Some(_connection) = Connection::acquire(&self.db_busy) else {
            counter!("db_pool_exhausted_total").increment(1);
            return Err(StatusCode::SERVICE_UNAVAILABLE);
        };
        QUERIES
            .timed_with(name, self.db.call(), Outcome::of_result)
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
    }

    /// Looks the prompt hash up level by level, promoting a hit to the
    /// levels above; returns the answer and the level that had it.
    async fn prompt_cache(&self, hash: u64, model: &str) -> Option<(Arc<str>, &'static str)> {
        let options = || {
            EntryOptions::default()
                .ttl(PROMPT_TTL)
                .tag(format!("model:{model}"))
        };
        if let Some(answer) = self.memory.get(&hash) {
            return Some((answer, "memory"));
        }
        self.redis_link.call().await.ok()?;
        if let Some(answer) = self.redis.get(&hash) {
            self.memory
                .insert_with(hash, Arc::clone(&answer), options());
            return Some((answer, "redis"));
        }
        self.query("get_cached_completion").await.ok()?;
        let answer = self.stored.get(&hash)?;
        self.redis.insert_with(hash, Arc::clone(&answer), options());
        self.memory
            .insert_with(hash, Arc::clone(&answer), options());
        Some((answer, "db"))
    }
}

/// A connection taken from the database pool, given back when dropped
/// (also when the request is abandoned mid-query).
struct Connection(Arc<AtomicU64>);

impl Connection {
    /// A free connection, if fewer than [`DB_POOL`] are in use.
    fn acquire(busy: &Arc<AtomicU64>) -> Option<Self> {
        busy.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < DB_POOL).then_some(n + 1)
        })
        .ok()
        .map(|_| Self(Arc::clone(busy)))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The hash a prompt is cached under (per model).
fn prompt_hash(model: &str, prompt: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (model, prompt).hash(&mut hasher);
    hasher.finish()
}

/// `POST /api/v1/models/{model}/generate?prompt=`: a completion, from the
/// prompt cache or the model; counts tokens and cache results per model.
async fn generate(
    State(app): State<App>,
    Path(model): Path<String>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Result<String, (StatusCode, String)> {
    let Some(provider) = (match model.as_str() {
        "coder-small" => Some(&app.small),
        "coder-large" => Some(&app.large),
        _ => None,
    }) else {
        return Err((StatusCode::NOT_FOUND, format!("no model {model}")));
    };
    let prompt = query.get("prompt").cloned().unwrap_or_default();
    let hash = prompt_hash(&model, &prompt);
    if let Some((answer, level)) = app.prompt_cache(hash, &model).await {
        counter!("ai_prompt_cache_requests_total", "model" => model.clone(), "result" => "hit", "level" => level)
            .increment(1);
        return Ok(answer.to_string());
    }
    counter!("ai_prompt_cache_requests_total", "model" => model.clone(), "result" => "miss", "level" => "none")
        .increment(1);
    let call = MODEL_CALLS.timed_with(model.as_str(), provider.call(), Outcome::of_result);
    call.await.map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
    let (prompt_tokens, completion_tokens) = (120 + prompt.len() as u64 * 7, 380);
    counter!("ai_tokens_total", "model" => model.clone(), "kind" => "prompt")
        .increment(prompt_tokens);
    counter!("ai_tokens_total", "model" => model.clone(), "kind" => "completion")
        .increment(completion_tokens);
    let answer: Arc<str> = Arc::from(format!("// {completion_tokens} tokens for {prompt}"));
    let options = EntryOptions::default()
        .ttl(PROMPT_TTL)
        .tag(format!("model:{model}"));
    app.stored
        .insert_with(hash, Arc::clone(&answer), options.clone());
    app.redis
        .insert_with(hash, Arc::clone(&answer), options.clone());
    app.memory.insert_with(hash, Arc::clone(&answer), options);
    Ok(answer.to_string())
}

/// `GET /api/v1/projects/{id}`: one project row.
async fn project(State(app): State<App>, Path(id): Path<u64>) -> Result<String, StatusCode> {
    app.query("get_project").await?;
    Ok(format!("{{\"id\":{id}}}"))
}

/// The dashboard's data: three queries and the external API, timed as
/// `load_dashboard`.
#[timed]
async fn load_dashboard(app: &App) -> Result<String, StatusCode> {
    app.query("recent_builds").await?;
    app.query("usage_by_model").await?;
    app.query("open_reviews").await?;
    external_api(&app.external)
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok("{\"widgets\":4}".to_owned())
}

/// The code host's API, timed as `external_api`.
#[timed]
async fn external_api(external: &Dependency) -> Result<(), String> {
    external.call().await
}

/// `GET /api/v1/dashboard`.
async fn dashboard(State(app): State<App>) -> Result<String, StatusCode> {
    load_dashboard(&app).await
}

/// Counts the connections being served in `active_connections`.
async fn track_connections(request: HttpRequest, next: Next) -> Response {
    gauge!("active_connections").set(CONNECTIONS.fetch_add(1, Ordering::Relaxed) as f64 + 1.0);
    let response = next.run(request).await;
    gauge!("active_connections").set(CONNECTIONS.fetch_sub(1, Ordering::Relaxed) as f64 - 1.0);
    response
}

/// The next request of a developer: half generations (as many for each
/// model; prompts drawn from a skewed set of 150 for the small model, of
/// 600 for the large one, whose prompts are longer and repeat less),
/// projects, the dashboard.
fn next_request(rng: &mut Rng, _phase: Phase) -> Request {
    match rng.below(100) {
        0..=49 => {
            let (model, prompts) = if rng.below(2) == 0 {
                ("coder-small", 150)
            } else {
                ("coder-large", 600)
            };
            let bound = rng.below(prompts) + 1;
            let prompt = rng.below(bound);
            Request::post(
                format!("/api/v1/models/{model}/generate?prompt=p{prompt}"),
                "{}",
            )
        }
        50..=84 => Request::get(format!("/api/v1/projects/{}", rng.below(500))),
        _ => Request::get("/api/v1/dashboard"),
    }
}

/// The alerts on the machine rather than the platform (CPU, memory, disk):
/// the load does not cause them, so the settling does not wait for them.
const HOST_ALERTS: [&str; 3] = ["HighCpu", "HighMemory", "DiskFilling"];

/// Whether an alert other than the host's is pending or firing.
fn platform_alerting(monitor: &Monitor) -> bool {
    let instances = monitor.with_alerts(|engine| engine.instances());
    instances.unwrap_or_default().iter().any(|instance| {
        !HOST_ALERTS.contains(&instance.rule.as_str())
            && (instance.state == AlertState::Pending || instance.state.is_alerting())
    })
}

/// After the load the developers go on working, fewer of them, against
/// healthy providers, while `tick` runs once a second (a simulated
/// [`TICK`]), until no alert but the host's is pending or firing: at least
/// one window's worth of ticks (the large model's slowest answers land
/// after the load), at most [`SETTLE_TICKS`]. Returns the ticks it took.
///
/// Traffic goes on so that an alert ends on its recovered value: an alert
/// whose window runs empty (no more calls to that model) ends in
/// `no_data`, not `resolved`.
async fn settle(address: SocketAddr, monitor: &Monitor, mut tick: impl FnMut(&Monitor)) -> u32 {
    let developers: Vec<_> = (0..SETTLE_DEVELOPERS)
        .map(|developer| {
            tokio::spawn(async move {
                let mut rng = Rng::new(0xDE7E_1000 + developer);
                loop {
                    let request = next_request(&mut rng, Phase::Recovery);
                    let _ = support::load::send(address, &request, None).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        })
        .collect();
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    let mut ticks = 0;
    while ticks < SETTLE_TICKS {
        second.tick().await;
        tick(monitor);
        ticks += 1;
        if ticks >= MIN_SETTLE_TICKS && !platform_alerting(monitor) {
            break;
        }
    }
    for developer in developers {
        developer.abort();
    }
    ticks
}

/// The seed's stress test, compressed: [`STRESS_USERS_PER_STEP`] more
/// developers every [`STRESS_STEP`] up to [`STRESS_MAX_USERS`], each
/// reading a project without pause, until more than 5 % of the requests
/// fail (over the last step, at least 20 requests).
async fn stress_test(address: SocketAddr) -> Result<LoadReport, vigil::load::Error> {
    let url = format!("http://{address}/api/v1/projects/7");
    LoadTest::new(HttpTarget::get(url.as_str())?)
        .name("projects stress")
        .step(STRESS_USERS_PER_STEP, STRESS_STEP, STRESS_MAX_USERS)
        .error_rate_limit(0.05)
        .error_window(STRESS_STEP, 20)
        .timeout(Duration::from_secs(2))
        .grace(Duration::from_secs(2))
        .run()
        .await
}

/// Prints the stress test's steps and its breaking point.
fn print_stress_test(stress: &LoadReport) {
    report::print_load_test(
        &format!(
            "Stress test: GET /api/v1/projects/{{id}}, +{STRESS_USERS_PER_STEP} developers \
             every {:.1} s up to {STRESS_MAX_USERS}, stop above 5 % errors",
            STRESS_STEP.as_secs_f64()
        ),
        stress,
    );
    match &stress.breaking_point {
        Some(point) => println!(
            "breaking point: {} developers ({:.1} % errors); last good step: {} \
             (the database pool has {DB_POOL} connections)",
            point.failed_users,
            point.error_ratio * 100.0,
            point
                .last_good_users
                .map_or("none".to_owned(), |users| format!("{users} developers")),
        ),
        None => println!(
            "breaking point: none reached up to {} developers",
            stress.peak_users
        ),
    }
}

/// Sums `metric`'s counters whose labels include every `(name, value)`.
fn total(monitor: &Monitor, metric: &str, labels: &[(&str, &str)]) -> u64 {
    monitor
        .summary()
        .counters
        .iter()
        .filter(|c| c.name == metric)
        .filter(|c| {
            labels
                .iter()
                .all(|(k, v)| c.labels.get(*k).is_some_and(|l| l == v))
        })
        .map(|c| c.total)
        .sum()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = support::Options::from_env();
    let degradation = Degradation::new();
    let prompt_level = |name: &str, capacity: u64| {
        TaggedCache::<u64, Arc<str>>::builder()
            .name(name)
            .max_capacity(capacity)
            .build()
    };
    let app = App {
        small: Dependency::new("coder-small", Latency::ms(900.0, 2_800.0), 0.005).degrades(
            &degradation,
            1.0,
            0.04,
        ),
        large: Dependency::new("coder-large", Latency::ms(2_200.0, 5_500.0), 0.01).degrades(
            &degradation,
            3.5,
            0.10,
        ),
        db: Dependency::new("postgres", Latency::ms(20.0, 90.0), 0.001),
        db_busy: Arc::new(AtomicU64::new(0)),
        external: Dependency::new("code-host", Latency::ms(150.0, 600.0), 0.005),
        redis_link: Dependency::new("redis", Latency::ms(0.8, 3.0), 0.0),
        memory: prompt_level("prompt_memory", 40),
        redis: prompt_level("prompt_redis", 50_000),
        stored: prompt_level("prompt_db", 1_000_000),
    };

    // Yesterday's answers to the 60 most asked prompts of each model are in
    // the database level.
    for (model, _, _) in MODELS {
        let options = EntryOptions::default()
            .ttl(PROMPT_TTL)
            .tag(format!("model:{model}"));
        for prompt in 0..60 {
            let answer = Arc::from(format!("// stored answer to p{prompt}"));
            app.stored.insert_with(
                prompt_hash(model, &format!("p{prompt}")),
                answer,
                options.clone(),
            );
        }
    }

    let (clock, mock) = quanta::Clock::mock();
    let (console, mut notifications) = ChannelNotifier::channel(64);
    let db = app.db.clone();
    let monitor = Monitor::builder()
        .global_label("service", "ai-dev-ecosystem")
        .clock(clock)
        .system_metrics(Duration::from_secs(15))
        .api_token(options.token.clone())
        .cache("prompt_memory", &app.memory)
        .cache("prompt_redis", &app.redis)
        .cache("prompt_db", &app.stored)
        .readiness_check("postgres", move || {
            let db = db.clone();
            async move { db.call().await }
        })
        .alerts(AlertConfig::from_yaml_str(RULES, "ai-dev-alerts.yml")?.into_engine()?)
        .manual_alerts()
        .notifier("default", console)
        .install()?;

    let router = Router::new()
        .route("/api/v1/models/{model}/generate", post(generate))
        .route("/api/v1/projects/{id}", get(project))
        .route("/api/v1/dashboard", get(dashboard))
        .with_state(app)
        .route_layer(middleware::from_fn(track_connections))
        .merge(monitor.router())
        .layer(monitor.http_layer());
    let (address, server) = support::serve(&options, router).await?;

    // The health endpoint polled every 30 (simulated) seconds: its
    // response time and status.
    let (polls, polls_ok) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let poller = {
        let (polls, polls_ok) = (Arc::clone(&polls), Arc::clone(&polls_ok));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(2));
            loop {
                every.tick().await;
                let started = Instant::now();
                let status = support::fetch(address, "/health/ready", None)
                    .await
                    .map_or(0, |(s, _)| s);
                histogram!("health_check_duration_seconds").record(started.elapsed().as_secs_f64());
                counter!("health_checks_total", "status" => status.to_string()).increment(1);
                polls.fetch_add(1, Ordering::Relaxed);
                if status == 200 {
                    polls_ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // 45 developers, 15 more each second; the large model degrades from 5 % to 75 %:
    // its slowed answers take about 8 s, so a shorter slowdown would be over
    // before enough of them land to move the average (and fewer developers
    // would leave the minute's average to a handful of calls).
    // (At most 14 s: a large model's answer started at the end takes seconds more.)
    let mut load = Load::new(options.duration.min(Duration::from_secs(14)), 45);
    load.ramp_up_per_second = 15.0;
    load.degraded = (0.05, 0.75);
    load.think_time = Duration::from_millis(200);
    let start = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    let mut now = start;
    let stats = load
        .run(address, &degradation, next_request, |_phase| {
            mock.increment(TICK);
            now += TICK;
            monitor.evaluate_alerts(now);
        })
        .await;
    let settled = settle(address, &monitor, |monitor| {
        mock.increment(TICK);
        now += TICK;
        monitor.evaluate_alerts(now);
    })
    .await;
    poller.abort();

    report::heading("AI development platform: run report");
    println!(
        "(1 s of load = {} simulated s; alert times below are simulated)",
        TICK.as_secs()
    );
    println!(
        "(after the load, {SETTLE_DEVELOPERS} developers kept working for {} simulated s \
         while the alerts settled)",
        u64::from(settled) * TICK.as_secs()
    );
    stats.print();

    let calls = percentiles(
        &monitor,
        "function_calls_duration_seconds",
        &["function", "model"],
    );
    let mut models = Table::new(
        "Per-model statistics",
        &[
            "model",
            "size",
            "calls",
            "errors",
            "tokens",
            "cache hit rate",
            "avg s",
            "p95 s",
            "target",
            "status",
        ],
    );
    let mut worst_mean: Option<f64> = None;
    for (model, size, target) in MODELS {
        let p = calls
            .get(&format!("ai_model_call {model}"))
            .cloned()
            .unwrap_or_default();
        let model_calls = total(
            &monitor,
            "function_calls_total",
            &[("function", "ai_model_call"), ("model", model)],
        );
        let errors = total(
            &monitor,
            "function_calls_total",
            &[("model", model), ("result", "error")],
        );
        let hits = total(
            &monitor,
            "ai_prompt_cache_requests_total",
            &[("model", model), ("result", "hit")],
        );
        let lookups = total(
            &monitor,
            "ai_prompt_cache_requests_total",
            &[("model", model)],
        );
        let mean = (p.count > 0).then_some(p.mean);
        worst_mean = match (worst_mean, mean) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        models.row([
            model.to_owned(),
            size.to_owned(),
            model_calls.to_string(),
            errors.to_string(),
            total(&monitor, "ai_tokens_total", &[("model", model)]).to_string(),
            format!("{:.1} %", hits as f64 / (lookups as f64).max(1.0) * 100.0),
            format!("{:.2}", p.mean),
            format!("{:.2}", p.p95),
            format!("< {target} s"),
            Status::lower_is_better(mean, target, 5.0_f64.max(target * 1.5))
                .as_str()
                .to_owned(),
        ]);
    }
    models.print();

    let gauges = monitor.summary().gauges;
    let gauge = |name: &str| gauges.iter().find(|g| g.name == name);
    let db_p95 = calls
        .iter()
        .filter(|(k, _)| {
            k.starts_with("get_")
                || k.starts_with("recent_")
                || k.starts_with("usage_")
                || k.starts_with("open_")
        })
        .map(|(_, p)| p.p95)
        .reduce(f64::max);
    let dashboard_p95 = calls.get("load_dashboard -").map(|p| p.p95);
    let measured = |value: Option<f64>| value.unwrap_or(f64::NAN);
    let mut kpis = Comparison::new();
    for (name, unit, [baseline, target, critical], current) in [
        (
            "AI response (worst model average)",
            "s",
            [5.0, 3.0, 10.0],
            worst_mean,
        ),
        (
            "DB query p95 (worst query)",
            "ms",
            [100.0, 50.0, 500.0],
            db_p95.map(|s| s * 1e3),
        ),
        ("dashboard load p95", "s", [2.0, 1.0, 5.0], dashboard_p95),
        (
            "CPU",
            "%",
            [70.0, 50.0, 90.0],
            gauge("system_cpu_usage_ratio").map(|g| g.value * 100.0),
        ),
        (
            "memory",
            "%",
            [80.0, 60.0, 95.0],
            gauge("system_memory_usage_ratio").map(|g| g.value * 100.0),
        ),
        (
            "error rate",
            "%",
            [1.0, 0.1, 5.0],
            Some(stats.error_ratio(None) * 100.0),
        ),
    ] {
        let kpi = LoadKpi::new(name, unit)
            .baseline(baseline)
            .target(target)
            .critical(critical);
        kpis.add(kpi, measured(current));
    }
    report::print_comparison("KPIs: baseline / target / critical", &kpis);

    let (polled, ok) = (
        polls.load(Ordering::Relaxed),
        polls_ok.load(Ordering::Relaxed),
    );
    let health_poll = percentiles(&monitor, "health_check_duration_seconds", &[]);
    let mut availability = Table::new("Availability", &["measure", "value"]);
    availability.row([
        "health polls (every 30 simulated s)".to_owned(),
        format!("{ok} of {polled} ready"),
    ]);
    availability.row([
        "availability".to_owned(),
        format!("{:.2} %", ok as f64 / (polled as f64).max(1.0) * 100.0),
    ]);
    if let Some(p) = health_poll.values().next() {
        availability.row([
            "health response p50 / p95".to_owned(),
            format!("{:.1} / {:.1} ms", p.p50 * 1e3, p.p95 * 1e3),
        ]);
    }
    availability.row([
        "active connections (peak in the last minute)".to_owned(),
        gauge("active_connections").map_or("-".to_owned(), |g| report::number(g.max)),
    ]);
    availability.row([
        "uptime".to_owned(),
        format!("{:.1} s", stats.elapsed.as_secs_f64()),
    ]);
    availability.print();

    report::print_percentiles(
        &monitor,
        "Timed calls (AI model calls per model, DB queries, external API, dashboard)",
        "function_calls_duration_seconds",
        &["function", "model"],
        |key| match key {
            "ai_model_call coder-small" => Some(3_000.0),
            "ai_model_call coder-large" => Some(5_000.0),
            "load_dashboard -" => Some(1_000.0),
            "external_api -" => None,
            _ => Some(50.0),
        },
    );
    report::print_percentiles(
        &monitor,
        "HTTP routes",
        "http_server_request_duration_seconds",
        &["method", "route"],
        |_| None,
    );
    report::print_caches(
        &monitor,
        "Prompt cache levels (memory -> Redis -> DB, TTL 1 h, promoted on hit)",
        60.0,
    );
    report::print_alerts(&monitor, start);
    support::print_notifications(&mut notifications);
    report::print_health(&monitor);
    print_stress_test(&stress_test(address).await?);

    // From here time runs at its real pace, alerts evaluated every 15 s.
    support::keep_time(&options, &monitor, mock, now);
    support::finish(
        &options,
        "ai_dev_ecosystem",
        address,
        &[
            "/api/v1/projects/7",
            "/api/v1/dashboard",
            "/api/v1/models/coder-small/generate?prompt=p1 (POST)",
        ],
        server,
    )
    .await
}
