//! The opinion market's monitoring: an axum service for prediction markets
//! (market pages, odds, orders, portfolios) over a simulated database,
//! instrumented with vigil as the opinion market team runs it.
//!
//! - A performance monitor sampling CPU, memory, disk, network and the
//!   process every 30 s (2 s here, so the short run has readings), custom
//!   metrics with units (`opinion_market_*`), `#[timed]` execution times
//!   and the metrics summary.
//! - Thresholds (warning / critical): CPU 70 / 90 %, memory 80 / 95 %, disk
//!   85 / 95 %, API response 1 000 / 5 000 ms, DB query 500 / 2 000 ms,
//!   cache hit rate below 70 / 50 %, error rate 5 / 10 %: the alert rules
//!   below and the health targets.
//! - A market cache (LRU with TTL and tags; size, default TTL and cleanup
//!   interval from `CACHE_MAX_SIZE`, `CACHE_DEFAULT_TTL`,
//!   `CACHE_CLEANUP_INTERVAL`: 2 000, 3 600 s, 300 s), warmed with the open
//!   markets; an order drops its market's entries by tag.
//! - The HTTP API under `/api/v1/performance/` with a bearer token.
//!
//! ```text
//! cargo run --example opinion_market              # load, report, exit
//! cargo run --example opinion_market -- --serve   # then keep serving
//! ```
//!
//! The load runs 15 s (`--duration SECS`, at most 20). From 30 % to 65 % of
//! it the database is fifteen times slower and fails 35 % of its queries,
//! and the market cache is cleared by tag (a cold cache): the latency,
//! error-rate and cache alerts fire, then resolve in the recovery.
//!
//! Alerts go to the log, and also to Slack with `SLACK_WEBHOOK_URL` (an
//! incoming webhook) and to a webhook with `ALERT_WEBHOOK_URL` (one JSON
//! body per alert: `alert_type`, `message`, `severity`, `timestamp`,
//! `service`).
//!
//! `--external-load` drives no load of its own (only the degradation, on
//! the wall clock), for a load generator outside; `ALERTMANAGER_URL` sends
//! the alerts to an Alertmanager too. The end-to-end test
//! (`examples/tests/end_to_end.rs`) runs it so, with Prometheus scraping
//! it and `vigil::load` driving it.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use vigil::alert::Engine;
use vigil::alert::config::AlertConfig;
use vigil::alert::notify::{SlackNotifier, TracingNotifier, WebhookNotifier};
use vigil::alert::rulesets::{ServiceTargets, Target};
use vigil::cache::EntryOptions;
use vigil::cache::sync::TaggedCache;
use vigil::service::HealthTargets;
use vigil::service::health::Limits;
use vigil::{Monitor, metrics, timed};

use support::report::{self, Kpi, Scorecard};
use support::{Degradation, Dependency, Latency, Load, Options, Phase, Request, Status};

/// The alert rules: the team's warning / critical thresholds, evaluated
/// every second over 5 s windows so the short run shows them fire and
/// resolve (production: 1 min windows, `for: 2m`). CPU, memory and the
/// cache hit rate use vigil's ready-made rules ([`ServiceTargets`]) with
/// the team's limits.
const RULES: &str = r#"
# Notifications: a group's first after 1 s, changes every 5 s (production:
# Alertmanager's 30 s / 5 min).
routing: { receiver: default, group_wait: 1s, group_interval: 5s }
rules:
  - name: SlowApiResponse
    expr: { histogram: { metric: http_server_request_duration_seconds, stat: p95, window: 5s } }
    aggregate: max
    by: [route]
    thresholds: { high: "> 1.0", critical: "> 5.0" }
    for: 1s
    annotations: { summary: "p95 of {{ $labels.route }} is {{ $value }}s (warning 1 s, critical 5 s)" }
  - name: SlowDatabaseQuery
    expr:
      histogram: { metric: function_calls_duration_seconds, stat: p99, window: 5s, matchers: ['function="query_db"'] }
    thresholds: { medium: "> 0.5", critical: "> 2.0" }
    for: 1s
    annotations: { summary: "DB query p99 is {{ $value }}s (warning 0.5 s, critical 2 s)" }
  - name: HighErrorRate
    expr:
      ratio:
        numerator: { metric: http_server_requests_total, matchers: ['status=~"5.."'] }
        denominator: { metric: http_server_requests_total }
        ignoring: [status]
        window: 5s
    aggregate: sum
    thresholds: { high: "> 0.05", critical: "> 0.10" }
    for: 1s
    annotations: { summary: "{{ $value }} of the requests fail (warning 5 %, critical 10 %)" }
  - name: HighDiskUsage
    expr: { gauge: { metric: system_disk_usage_ratio } }
    aggregate: max
    thresholds: { high: "> 0.85", critical: "> 0.95" }
    for: 5s
"#;

/// A market as the database returns it.
#[derive(Clone, Debug)]
struct Market {
    id: u64,
    category: &'static str,
    yes_price: f64,
}

/// The service's state: the database and the market cache.
#[derive(Clone)]
struct App {
    db: Arc<Dependency>,
    markets: TaggedCache<u64, Market>,
}

const CATEGORIES: [&str; 4] = ["politics", "sports", "crypto", "science"];

/// One database query: ~25 ms median, 250 ms p99, 0.5 % failures.
#[timed]
async fn query_db(db: &Dependency) -> Result<(), String> {
    db.call().await
}

/// The market from the cache, or the database (cached with the default TTL
/// and tagged `market`, `market:{id}` and `category:{category}`).
#[timed]
async fn load_market(app: &App, id: u64) -> Result<Market, String> {
    if let Some(market) = app.markets.get(&id) {
        return Ok(market);
    }
    query_db(&app.db).await?;
    let market = market_row(id);
    app.markets.insert_with(
        id,
        market.clone(),
        EntryOptions::default().tags(tags(&market)),
    );
    Ok(market)
}

fn market_row(id: u64) -> Market {
    Market {
        id,
        category: CATEGORIES[(id % 4) as usize],
        yes_price: 0.05 + (id % 90) as f64 / 100.0,
    }
}

fn tags(market: &Market) -> Vec<String> {
    vec![
        "market".to_owned(),
        format!("market:{}", market.id),
        format!("category:{}", market.category),
    ]
}

type Reply = Result<String, (StatusCode, String)>;

fn unavailable(error: String) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, error)
}

/// `GET /api/v1/markets/{id}`.
#[timed]
async fn show_market(State(app): State<App>, Path(id): Path<u64>) -> Reply {
    let market = load_market(&app, id).await.map_err(unavailable)?;
    Ok(format!(
        "{{\"id\":{},\"category\":\"{}\",\"yes\":{:.2}}}",
        market.id, market.category, market.yes_price
    ))
}

/// `GET /api/v1/markets/{id}/odds`: the cached market and the order book's
/// depth (a second query).
#[timed]
async fn market_odds(State(app): State<App>, Path(id): Path<u64>) -> Reply {
    let market = load_market(&app, id).await.map_err(unavailable)?;
    query_db(&app.db).await.map_err(unavailable)?;
    let yes = market.yes_price;
    Ok(format!("{{\"yes\":{yes:.2},\"no\":{:.2}}}", 1.0 - yes))
}

/// `POST /api/v1/markets/{id}/orders`: writes the order, counts it in
/// `opinion_market_orders_total{side}` and its value in
/// `opinion_market_order_value_dollars`, and drops the market's cached
/// entries (its price moved).
#[timed]
async fn place_order(State(app): State<App>, Path(id): Path<u64>, body: String) -> Reply {
    let side = if body.contains("\"no\"") { "no" } else { "yes" };
    query_db(&app.db).await.map_err(unavailable)?;
    let value = 5.0 + (id % 20) as f64 * 2.5;
    metrics::counter!("opinion_market_orders_total", "side" => side).increment(1);
    metrics::histogram!("opinion_market_order_value_dollars").record(value);
    app.markets.invalidate_tag(&format!("market:{id}"));
    Ok(format!(
        "{{\"market\":{id},\"side\":\"{side}\",\"value\":{value}}}"
    ))
}

/// `GET /api/v1/users/{id}/portfolio`: two queries, never cached.
#[timed]
async fn portfolio(State(app): State<App>, Path(id): Path<u64>) -> Reply {
    query_db(&app.db).await.map_err(unavailable)?;
    query_db(&app.db).await.map_err(unavailable)?;
    Ok(format!("{{\"user\":{id},\"positions\":{}}}", id % 7))
}

/// A duration from the environment in seconds, or `default`.
fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// The share of the service's own requests (not vigil's routes) answered
/// with 5xx, from the server's counters.
fn server_error_ratio(summary: &vigil::MetricsSummary) -> f64 {
    let (mut errors, mut all) = (0, 0);
    for counter in &summary.counters {
        let route = counter.labels.get("route").map_or("", String::as_str);
        if counter.name != "http_server_requests_total" || !route.starts_with("/api/v1/") {
            continue;
        }
        if route.starts_with("/api/v1/performance/") {
            continue;
        }
        all += counter.total;
        if counter
            .labels
            .get("status")
            .is_some_and(|s| s.starts_with('5'))
        {
            errors += counter.total;
        }
    }
    errors as f64 / (all as f64).max(1.0)
}

/// The traffic: mostly market pages and odds over 400 markets (a hot set
/// of 60), some orders and portfolios.
fn traffic(rng: &mut support::Rng, _phase: Phase) -> Request {
    let market = if rng.chance(0.8) {
        rng.below(60) + 1
    } else {
        rng.below(400) + 1
    };
    match rng.below(100) {
        0..=54 => Request::get(format!("/api/v1/markets/{market}")),
        55..=79 => Request::get(format!("/api/v1/markets/{market}/odds")),
        80..=89 => Request::post(
            format!("/api/v1/markets/{market}/orders"),
            if rng.chance(0.5) {
                r#"{"side":"yes"}"#
            } else {
                r#"{"side":"no"}"#
            },
        ),
        _ => Request::get(format!("/api/v1/users/{}/portfolio", rng.below(500))),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::from_env();
    let degradation = Degradation::new();
    let db = Dependency::new("database", Latency::ms(25.0, 250.0), 0.005).degrades(
        &degradation,
        15.0,
        0.35,
    );

    let markets: TaggedCache<u64, Market> = TaggedCache::builder()
        .name("markets")
        .max_capacity(
            std::env::var("CACHE_MAX_SIZE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2_000),
        )
        .default_ttl(env_secs("CACHE_DEFAULT_TTL", 3_600))
        .build();
    // Warming: the 60 most traded markets.
    let warmed = markets.warm((1..=60).map(|id| (id, market_row(id))));
    let app = App {
        db: Arc::new(db),
        markets: markets.clone(),
    };

    let config = AlertConfig::from_yaml_str(RULES, "opinion_market rules")?;
    let ready_made = ServiceTargets::new()
        .window(Duration::from_secs(5))
        .for_duration(Duration::from_secs(1))
        .cpu(0.70, 0.90)
        .memory(0.80, 0.95)
        .cache_hit_ratio(0.70, 0.50)
        .only([Target::Cpu, Target::Memory, Target::CacheHitRatio])
        .rules()?;
    let rules: Vec<_> = config.rules().iter().cloned().chain(ready_made).collect();
    let engine = Engine::builder()
        .rules(rules.clone())
        .routing(config.routing().clone())
        .build()?;
    let percent = |warning: f64, critical: f64| Limits {
        warning: warning / 100.0,
        critical: critical / 100.0,
    };
    let mut monitor = Monitor::builder()
        .global_label("service", "opinion_market")
        .window(Duration::from_secs(5))
        .system_metrics(Duration::from_secs(2))
        .api_token(options.token.clone())
        .cache("markets", &markets)
        .readiness_check("database", || async { Ok(()) })
        .health_targets(HealthTargets {
            cpu: percent(70.0, 90.0),
            memory: percent(80.0, 95.0),
            disk: percent(85.0, 95.0),
            error_rate: percent(5.0, 10.0),
            cache_hit_ratio: percent(70.0, 50.0),
            p95_seconds: Limits {
                warning: 1.0,
                critical: 5.0,
            },
            ..HealthTargets::default()
        })
        .alerts(engine)
        .alert_interval(Duration::from_secs(1))
        .notifier("default", TracingNotifier::new());
    // The team's other channels, when configured: Slack (each alert's
    // value and threshold, linked to the status page) and the alert
    // webhook with the body its receiver expects.
    if let Ok(url) = std::env::var("SLACK_WEBHOOK_URL") {
        let mut slack = SlackNotifier::builder(url).rules(&rules);
        if options.port != 0 {
            slack = slack.link(format!("http://127.0.0.1:{}/status", options.port));
        }
        monitor = monitor.notifier("default", slack.build()?);
    }
    if let Ok(url) = std::env::var("ALERT_WEBHOOK_URL") {
        let webhook = WebhookNotifier::builder(url)
            .template(serde_json::json!({
                "alert_type": "{{alert}}",
                "message": "{{summary}}",
                "severity": "{{severity}}",
                "timestamp": "{{timestamp}}",
                "service": "opinion_market",
            }))
            .build()?;
        monitor = monitor.notifier("default", webhook);
    }
    if let Some(url) = &options.alertmanager {
        // Every active alert, re-sent each second with a fresh `endsAt`,
        // and a resolved one with its end: Alertmanager groups and routes.
        monitor = monitor
            .alertmanager(url.as_str())
            .alertmanager_resend_delay(Duration::from_secs(1));
    }
    let monitor = monitor.install()?;

    // Background cleanup of expired entries.
    let cleanup = markets.clone();
    let every = env_secs("CACHE_CLEANUP_INTERVAL", 300);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            cleanup.run_pending_tasks();
        }
    });

    let router = Router::new()
        .route("/api/v1/markets/{id}", get(show_market))
        .route("/api/v1/markets/{id}/odds", get(market_odds))
        .route("/api/v1/markets/{id}/orders", post(place_order))
        .route("/api/v1/users/{id}/portfolio", get(portfolio))
        .with_state(app)
        .merge(monitor.router())
        .layer(monitor.http_layer());
    let (address, server) = support::serve(&options, router).await?;

    report::heading(&format!(
        "opinion_market: {} s of load on http://{address} ({} markets warmed)",
        options.duration.as_secs_f64(),
        warmed.loaded
    ));
    let started = SystemTime::now();
    // With `--external-load` no user of its own: only the degradation runs.
    let users = if options.external_load { 0 } else { 24 };
    let load = Load::new(options.duration, users).degraded_between(0.3, 0.65);
    let token = options.token.clone();
    let mut cleared = false;
    let mut last = Phase::Warmup;
    let stats = load
        .run(address, &degradation, traffic, |phase| {
            if phase != last {
                println!("  phase: {}", phase.as_str());
                last = phase;
            }
            if phase == Phase::Degraded && !cleared {
                cleared = true;
                let token = token.clone();
                tokio::spawn(async move {
                    let clear =
                        Request::post("/api/v1/performance/cache/clear", r#"{"tags": ["market"]}"#);
                    if let Ok((_, body)) = support::load::send(address, &clear, Some(&token)).await
                    {
                        println!("  cache/clear: {body}");
                    }
                });
            }
        })
        .await;
    // The recovery: the alert windows empty of the degraded requests.
    let waited = support::wait_for_recovery(
        &monitor,
        &["HighCpuUsage", "HighMemoryUsage", "HighDiskUsage"],
        Duration::from_secs(8),
    )
    .await;
    println!("  recovered {:.1} s after the load", waited.as_secs_f64());

    stats.print();
    let summary = monitor.summary();
    let p95_of = |metric: &str, function: Option<&str>| {
        summary
            .histograms
            .iter()
            .filter(|h| h.name == metric)
            .filter(|h| function.is_none_or(|f| h.labels.get("function").is_some_and(|v| v == f)))
            .map(|h| h.total.p95)
            .fold(None, |max: Option<f64>, p| {
                Some(max.map_or(p, |m| m.max(p)))
            })
    };
    let api_p95 = p95_of("http_server_request_duration_seconds", None).map(|s| s * 1e3);
    let db_p95 = p95_of("function_calls_duration_seconds", Some("query_db")).map(|s| s * 1e3);
    let error_percent = if stats.requests() > 0 {
        stats.error_ratio(None) * 100.0
    } else {
        server_error_ratio(&summary) * 100.0
    };
    let cache = monitor.cache_report().totals;
    let hit_percent = cache.hit_rate;
    let usage = monitor.system_usage();
    let cpu = usage.as_ref().map(|u| u.cpu_usage.average);
    let memory = usage.as_ref().map(|u| u.memory_usage.average);

    let mut scorecard = Scorecard::new();
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} ms"));
    let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} %"));
    scorecard
        .add(
            "API p95 (worst route)",
            "< 1000 ms",
            ms(api_p95),
            Status::lower_is_better(api_p95, 1000.0, 5000.0),
            "",
        )
        .add(
            "DB query p95",
            "< 500 ms",
            ms(db_p95),
            Status::lower_is_better(db_p95, 500.0, 2000.0),
            "",
        )
        .add(
            "error rate",
            "< 5 %",
            pct(Some(error_percent)),
            Status::lower_is_better(Some(error_percent), 5.0, 10.0),
            "",
        )
        .add(
            "cache hit rate",
            "> 70 %",
            pct(Some(hit_percent)),
            Status::higher_is_better(Some(hit_percent), 70.0, 50.0),
            "",
        )
        .add(
            "CPU (average)",
            "< 70 %",
            pct(cpu),
            Status::lower_is_better(cpu, 70.0, 90.0),
            "",
        )
        .add(
            "memory (average)",
            "< 80 %",
            pct(memory),
            Status::lower_is_better(memory, 80.0, 95.0),
            "",
        );
    scorecard.print("Scorecard: target vs current (whole run)");

    report::print_percentiles(
        &monitor,
        "Latency per endpoint (server side)",
        "http_server_request_duration_seconds",
        &["method", "route"],
        |_| Some(1000.0),
    );
    report::print_percentiles(
        &monitor,
        "Execution time per function (#[timed])",
        "function_calls_duration_seconds",
        &["function"],
        |function| (function == "query_db").then_some(500.0),
    );
    let orders: u64 = summary
        .counters
        .iter()
        .filter(|c| c.name == "opinion_market_orders_total")
        .map(|c| c.total)
        .sum();
    report::print_kpis(
        "KPIs",
        &[
            Kpi {
                name: "throughput".into(),
                unit: "req/s",
                baseline: 150.0,
                target: 100.0,
                critical: 50.0,
                current: Some(stats.rate()),
            },
            Kpi {
                name: "orders placed".into(),
                unit: "orders",
                baseline: 100.0,
                target: 50.0,
                critical: 10.0,
                current: Some(orders as f64),
            },
            Kpi {
                name: "API p95".into(),
                unit: "ms",
                baseline: 300.0,
                target: 1000.0,
                critical: 5000.0,
                current: api_p95,
            },
            Kpi {
                name: "error rate".into(),
                unit: "%",
                baseline: 0.5,
                target: 5.0,
                critical: 10.0,
                current: Some(error_percent),
            },
        ],
    );
    report::print_caches(&monitor, "Cache hit rate per cache", 70.0);
    report::print_alerts(&monitor, started);
    report::print_health(&monitor);

    support::finish(
        &options,
        "opinion_market",
        address,
        &[
            "/api/v1/markets/7",
            "/api/v1/markets/7/odds",
            "/api/v1/users/3/portfolio",
        ],
        server,
    )
    .await
}
