//! An axum service with vigil's service layer: system metrics, a bearer
//! token for the performance API, a cache registered by name, a readiness
//! check, the ready-made alert rules, `monitor.router()` merged into the
//! app and `monitor.http_layer()` around it. A short simulated load
//! follows, then the URLs to try.
//!
//! ```text
//! cargo run --example service              # runs the load, prints, exits
//! cargo run --example service -- --serve   # keeps serving until Ctrl-C
//! ```
//!
//! The token is `VIGIL_API_TOKEN` from the environment, `demo-token`
//! without it; `PORT` picks the port (a free one without it).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil::alert::Engine;
use vigil::alert::notify::TracingNotifier;
use vigil::alert::rulesets::ServiceTargets;
use vigil::cache::EntryOptions;
use vigil::cache::sync::TaggedCache;
use vigil::{Monitor, timed};

/// A market as the (simulated) database returns it.
#[derive(Clone, Debug)]
struct Market {
    id: u64,
    region: &'static str,
}

/// The database read behind `/markets/{id}`: a few milliseconds, and every
/// 17th market fails.
#[timed]
async fn load_market(id: u64) -> Result<Market, String> {
    tokio::time::sleep(Duration::from_millis(2 + id % 5)).await;
    if id.is_multiple_of(17) {
        return Err(format!("market {id}: the database timed out"));
    }
    let region = if id.is_multiple_of(2) { "eu" } else { "us" };
    Ok(Market { id, region })
}

/// `GET /markets/{id}`: cache-aside over `load_market`, entries tagged
/// `market` and by region so `POST /api/v1/performance/cache/clear` can
/// drop them.
#[timed]
async fn show_market(
    State(markets): State<TaggedCache<u64, Market>>,
    Path(id): Path<u64>,
) -> Result<String, (StatusCode, String)> {
    let market = match markets.get(&id) {
        Some(market) => market,
        None => {
            let market = load_market(id)
                .await
                .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
            let options = EntryOptions::default()
                .ttl(Duration::from_secs(60))
                .tags(["market".to_owned(), format!("region:{}", market.region)]);
            markets.insert_with(id, market.clone(), options);
            market
        }
    };
    Ok(format!("market {} ({})\n", market.id, market.region))
}

/// `GET path` over HTTP/1.0 with an optional bearer token: (status, body).
async fn fetch(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n{authorization}\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve = std::env::args().any(|arg| arg == "--serve");
    // The token is printed in the curl lines below only when it is the
    // demo's own; one from the environment stays out of the output.
    let (token, shown) = match std::env::var("VIGIL_API_TOKEN") {
        Ok(token) => (token, "$VIGIL_API_TOKEN".to_owned()),
        Err(_) => ("demo-token".to_owned(), "demo-token".to_owned()),
    };
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);

    let markets: TaggedCache<u64, Market> = TaggedCache::builder()
        .name("markets")
        .max_capacity(10_000)
        .build();
    let engine = Engine::builder()
        .rules(ServiceTargets::new().rules()?)
        .build()?;
    let monitor = Monitor::builder()
        .global_label("service", "markets")
        .system_metrics(Duration::from_secs(15))
        .api_token(token.clone())
        .cache("markets", &markets)
        .readiness_check("db", || async {
            // A real service pings its database here.
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        })
        .alerts(engine)
        // Firing alerts are logged; `.alertmanager(url)` sends them on.
        .notifier("default", TracingNotifier::new())
        .install()?;

    let app = Router::new()
        .route("/markets/{id}", get(show_market))
        .with_state(markets)
        .merge(monitor.router())
        .layer(monitor.http_layer());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // A short load: 200 requests over 60 markets (so the cache warms up),
    // a few failing ones, and some unmatched paths.
    for i in 0..200u64 {
        let path = match i % 50 {
            49 => format!("/no/such/page/{i}"),
            _ => format!("/markets/{}", (i * 7) % 60 + 1),
        };
        fetch(address, &path, None).await?;
    }

    let base = format!("http://{address}");
    println!("markets service on {base}");
    println!("  {base}/markets/42");
    println!("  {base}/metrics");
    println!("  {base}/health  {base}/health/live  {base}/health/ready");
    for route in [
        "metrics/summary",
        "alerts?severity=high",
        "alerts/history",
        "recommendations?priority=high",
        "cache/stats",
        "health",
    ] {
        println!("  curl -H \"Authorization: Bearer {shown}\" {base}/api/v1/performance/{route}");
    }
    println!(
        "  curl -H \"Authorization: Bearer {shown}\" -H 'Content-Type: application/json' \
         -d '{{\"tags\": [\"region:eu\"]}}' {base}/api/v1/performance/cache/clear"
    );

    let (status, summary) =
        fetch(address, "/api/v1/performance/metrics/summary", Some(&token)).await?;
    println!("\nGET /api/v1/performance/metrics/summary -> {status}");
    let summary: serde_json::Value = serde_json::from_str(&summary)?;
    let data = &summary["data"];
    println!("  health score {}", data["health_score"]);
    println!("  cache {}", data["cache"]);
    for function in data["functions"].as_array().into_iter().flatten() {
        println!(
            "  {:<12} calls {:>4}  error rate {:.3}  p95 {} s",
            function["function"].as_str().unwrap_or_default(),
            function["calls"],
            function["error_rate"].as_f64().unwrap_or_default(),
            function["p95"],
        );
    }
    let exposition = monitor.render();
    let requests: Vec<&str> = exposition
        .lines()
        .filter(|line| line.starts_with("http_server_requests_total{"))
        .collect();
    println!("\n{}", requests.join("\n"));

    if serve {
        println!("\nserving on {base}; Ctrl-C stops");
        server.await??;
    } else {
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("\n(run with `-- --serve` to keep serving)");
    }
    Ok(())
}
