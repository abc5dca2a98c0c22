//! The performance API, the health probes and the HTTP middleware over real
//! HTTP: a host service (`/markets/{id}`, `monitor.router()`,
//! `monitor.http_layer()`) on a free port, called with a plain HTTP/1.1
//! client; every answer also checked against `docs/openapi.json`.

#![cfg(all(
    feature = "axum",
    feature = "cache",
    feature = "alert-routing",
    feature = "system-metrics"
))]

#[path = "api/client.rs"]
mod client;
#[path = "api/docs.rs"]
mod docs;
#[path = "api/host.rs"]
mod host;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/logs.rs"]
mod logs;
#[path = "api/openapi.rs"]
mod openapi;

use std::collections::BTreeSet;

use client::{Answer, Request};
use host::{Host, Options, TOKEN};
use proptest::prelude::{ProptestConfig, Strategy, any, prop_assert, prop_oneof, proptest};
use serde_json::Value;
use vigil::cache::EntryOptions;

const API: &str = "/api/v1/performance";

fn api(path: &str) -> String {
    format!("{API}/{path}")
}

/// `GET path` with the token.
fn get(host: &Host, path: &str) -> Answer {
    Request::get(path).bearer(TOKEN).send(host.address)
}

/// `POST cache/clear` with the token and a JSON body.
fn clear(host: &Host, body: &str) -> Answer {
    Request::post_json(&api("cache/clear"), body)
        .bearer(TOKEN)
        .send(host.address)
}

/// The `data` of a successful envelope, or a panic showing the answer.
fn data(answer: &Answer) -> Value {
    let json = answer.json();
    assert_eq!(answer.status, 200, "{json}");
    assert_eq!(json["status"], "success", "{json}");
    assert_eq!(
        json.as_object().map(|o| o.len()),
        Some(2),
        "only status and data: {json}"
    );
    json["data"].clone()
}

/// The `error` of an error envelope with `status`, or a panic showing the
/// answer.
fn error(answer: &Answer, status: u16) -> Value {
    let json = answer.json();
    assert_eq!(answer.status, status, "{json}");
    assert_eq!(json["status"], "error", "{json}");
    assert!(json["error"]["code"].is_string(), "{json}");
    assert!(json["error"]["message"].is_string(), "{json}");
    json["error"].clone()
}

/// Checks `answer` against the OpenAPI schema of `method template`.
fn conforms(spec: &openapi::OpenApi, method: &str, template: &str, answer: &Answer) {
    let schema = spec.response_schema(method, template, answer.status);
    if let Err(problems) = spec.check(schema, &answer.json()) {
        panic!(
            "{method} {template} {} does not match docs/openapi.json:\n{}\n{}",
            answer.status,
            problems.join("\n"),
            answer.text()
        );
    }
}

fn tagged(tags: &[&str]) -> EntryOptions {
    EntryOptions::default().tags(tags.iter().map(|tag| tag.to_string()))
}

/// 40 entries tagged `market` (ids 0..40) and 10 tagged `user` (40..50)
/// in `markets`.
fn fill_markets(host: &Host) {
    for id in 0..40 {
        host.markets
            .insert_with(id, format!("m{id}"), tagged(&["market"]));
    }
    for id in 40..50 {
        host.markets
            .insert_with(id, format!("u{id}"), tagged(&["user"]));
    }
}

/// 10 hits in 120 reads of `sessions`: below 50 %, a high-priority
/// recommendation.
fn cold_sessions(host: &Host) {
    host.sessions.insert(1, "ada".into());
    for i in 0..120 {
        let _ = host.sessions.get(&if i % 12 == 0 { 1 } else { 1000 + i });
    }
}

fn markets(host: &Host, ids: std::ops::Range<u64>) {
    for id in ids {
        let answer = Request::get(&format!("/markets/{id}")).send(host.address);
        assert_eq!(answer.status, if id > 1000 { 404 } else { 200 });
    }
}

#[test]
fn the_summary_has_system_usage_cache_totals_health_and_functions() {
    let host = Host::start(Options::default());
    markets(&host, 1..21);
    markets(&host, 2000..2005);
    host.markets
        .insert_with(1, "eu".into(), tagged(&["market"]));
    assert!(host.markets.get(&1).is_some());
    assert!(host.markets.get(&2).is_none());

    let summary = data(&get(&host, &api("metrics/summary")));
    for usage in ["cpu_usage", "memory_usage"] {
        let usage = &summary[usage];
        for field in ["current", "average", "min", "max"] {
            let value = usage[field].as_f64().unwrap_or(-1.0);
            assert!((0.0..=100.0).contains(&value), "{field}: {usage}");
        }
        assert_eq!(usage["unit"], "percent");
        assert!(
            usage["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{usage}"
        );
    }
    let cache = &summary["cache"];
    assert_eq!(cache["hits"], 1, "{cache}");
    assert_eq!(cache["misses"], 1, "{cache}");
    assert_eq!(cache["hit_rate"].as_f64(), Some(50.0), "{cache}");
    assert_eq!(cache["entry_count"], 1, "{cache}");
    for field in ["total_size", "utilization"] {
        assert!(cache[field].is_number(), "{field}: {cache}");
    }
    let score = summary["health_score"].as_f64().expect("a health score");
    assert!((0.0..=100.0).contains(&score));

    let functions = summary["functions"].as_array().expect("functions");
    let find_market = functions
        .iter()
        .find(|f| f["function"] == "find_market")
        .unwrap_or_else(|| panic!("find_market in {functions:?}"));
    assert_eq!(find_market["calls"], 25, "{find_market}");
    assert_eq!(find_market["errors"], 5, "{find_market}");
    assert_eq!(
        find_market["error_rate"].as_f64(),
        Some(0.2),
        "{find_market}"
    );
    for p in ["p50", "p95", "p99"] {
        assert!(
            find_market[p].as_f64().is_some_and(|s| s >= 0.0),
            "{p}: {find_market}"
        );
    }
}

#[test]
fn alerts_filter_by_severity_beside_a_breakdown_of_all_firing_alerts() {
    let host = Host::start(Options::default());
    let none = data(&get(&host, &api("alerts")));
    assert_eq!(none["count"], 0);
    assert_eq!(
        none["severity_breakdown"],
        serde_json::json!({"low": 0, "medium": 0, "high": 0, "critical": 0})
    );

    host.fire_alerts();
    let all = data(&get(&host, &api("alerts")));
    assert_eq!(all["count"], 2, "{all}");
    assert_eq!(
        all["severity_breakdown"],
        serde_json::json!({"low": 0, "medium": 0, "high": 1, "critical": 1})
    );
    let names: BTreeSet<&str> = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|alert| alert["name"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["QueueBacklog", "ReplicationLag"]));

    let high = data(&get(&host, &api("alerts?severity=high")));
    assert_eq!(high["count"], 1, "{high}");
    let alert = &high["alerts"][0];
    assert_eq!(alert["name"], "QueueBacklog");
    assert_eq!(alert["metric_name"], "queue_depth");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["threshold"].as_f64(), Some(100.0));
    assert_eq!(alert["current_value"].as_f64(), Some(500.0));
    assert!(alert["labels"].is_object() && alert["message"].is_string());
    assert!(alert["timestamp"].is_string());
    assert_eq!(high["severity_breakdown"], all["severity_breakdown"]);

    let low = data(&get(&host, &api("alerts?severity=low")));
    assert_eq!(
        (low["count"].clone(), low["alerts"].clone()),
        (0.into(), serde_json::json!([]))
    );

    let history = data(&get(&host, &api("alerts/history")));
    let events = history["events"].as_array().expect("events");
    assert_eq!(history["count"], events.len());
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "ReplicationLag" && e["to"] == "firing"),
        "{history}"
    );
}

#[test]
fn level_filters_read_any_case_and_the_severity_aliases() {
    let host = Host::start(Options::default());
    host.fire_alerts();
    for value in ["HIGH", "High", " high "] {
        let path = api(&format!("alerts?severity={}", value.replace(' ', "%20")));
        let high = data(&get(&host, &path));
        assert_eq!(high["count"], 1, "{value}: {high}");
        assert_eq!(high["alerts"][0]["severity"], "high");
    }
    // `warning` and `warn` are medium, `info` low (as in rule files).
    for (alias, level) in [("warning", "medium"), ("WARN", "medium"), ("info", "low")] {
        let answer = data(&get(&host, &api(&format!("alerts?severity={alias}"))));
        assert_eq!(answer["count"], 0, "{alias}: {answer}");
        let plain = data(&get(&host, &api(&format!("alerts?severity={level}"))));
        assert_eq!(answer, plain, "{alias} reads as {level}");
    }
    let critical = data(&get(&host, &api("alerts?severity=Critical")));
    assert_eq!(critical["alerts"][0]["name"], "ReplicationLag");

    cold_sessions(&host);
    let high = data(&get(&host, &api("recommendations?priority=high")));
    assert!(high["count"].as_u64() >= Some(1), "{high}");
    let titles = |answer: &Value| -> Vec<Value> {
        let list = answer["recommendations"].as_array().expect("a list");
        list.iter().map(|r| r["title"].clone()).collect()
    };
    let upper = data(&get(&host, &api("recommendations?priority=HIGH")));
    assert_eq!(upper["count"], high["count"]);
    assert_eq!(titles(&upper), titles(&high));
    // `warning` is a severity, not a priority.
    let refused = error(&get(&host, &api("recommendations?priority=warning")), 400);
    assert_eq!(
        refused["message"],
        "invalid priority `warning`: expected one of low, medium, high, critical"
    );
}

#[test]
fn recommendations_filter_by_priority_and_name_the_cold_cache() {
    let host = Host::start(Options::default());
    cold_sessions(&host);

    let all = data(&get(&host, &api("recommendations")));
    let recommendations = all["recommendations"].as_array().expect("recommendations");
    assert_eq!(all["count"], recommendations.len());
    let breakdown = &all["priority_breakdown"];
    let total: u64 = ["low", "medium", "high", "critical"]
        .iter()
        .map(|p| breakdown[p].as_u64().expect("a count per priority"))
        .sum();
    assert_eq!(total, recommendations.len() as u64, "{all}");
    let cache = recommendations
        .iter()
        .find(|r| r["category"] == "cache")
        .unwrap_or_else(|| panic!("a cache recommendation in {all}"));
    assert_eq!(cache["priority"], "high", "{cache}");
    assert!(cache.to_string().contains("sessions"), "{cache}");
    for field in [
        "title",
        "description",
        "impact",
        "effort",
        "implementation",
        "created_at",
    ] {
        assert!(cache[field].is_string(), "{field}: {cache}");
    }
    assert!(!cache["evidence"].as_array().expect("evidence").is_empty());

    let high = data(&get(&host, &api("recommendations?priority=high")));
    let high_list = high["recommendations"].as_array().unwrap();
    assert_eq!(high["count"], high_list.len());
    assert_eq!(high_list.len() as u64, breakdown["high"].as_u64().unwrap());
    assert!(high_list.iter().all(|r| r["priority"] == "high"), "{high}");
    assert_eq!(high["priority_breakdown"], *breakdown);
}

#[test]
fn cache_stats_total_every_cache_and_show_each() {
    let host = Host::start(Options::default());
    for id in 0..30 {
        host.markets
            .insert_with(id, format!("m{id}"), tagged(&["market"]));
    }
    for id in 0..5 {
        host.sessions.insert(id, format!("s{id}"));
    }
    let _ = host.markets.get(&0);
    let _ = host.sessions.get(&99);

    let stats = data(&get(&host, &api("cache/stats")));
    assert_eq!(stats["entry_count"], 35, "{stats}");
    assert_eq!(
        (stats["hits"].clone(), stats["misses"].clone()),
        (1.into(), 1.into())
    );
    assert!(
        stats["evictions"].is_u64() && stats.get("max_size").is_some(),
        "{stats}"
    );
    let caches = stats["caches"].as_object().expect("caches by name");
    assert_eq!(caches.keys().collect::<Vec<_>>(), ["markets", "sessions"]);
    assert_eq!(caches["markets"]["entry_count"], 30);
    assert_eq!(caches["markets"]["max_size"], 1000);
    assert_eq!(caches["sessions"]["entry_count"], 5);
    assert_eq!(caches["sessions"]["hit_rate"].as_f64(), Some(0.0));
    assert_eq!(caches["markets"]["hit_rate"].as_f64(), Some(100.0));
}

#[test]
fn cache_clear_removes_exactly_what_the_body_names() {
    let host = Host::start(Options::default());
    fill_markets(&host);
    for id in 0..7 {
        host.sessions
            .insert_with(id, format!("s{id}"), tagged(&["market", "session"]));
    }
    for id in 7..10 {
        host.sessions
            .insert_with(id, format!("s{id}"), tagged(&["session"]));
    }

    // An empty tag list names no entry: refused, not read as "the whole
    // cache".
    let empty = error(&clear(&host, r#"{"cache": "sessions", "tags": []}"#), 400);
    assert_eq!(empty["code"], "invalid_body");
    assert!(
        empty["message"]
            .as_str()
            .unwrap()
            .contains("`tags` is empty"),
        "{empty}"
    );
    assert_eq!(host.sessions.entry_count(), 10, "nothing cleared");

    // Tags in one cache: 3 of the sessions carry none of them.
    let answer = clear(&host, r#"{"cache": "sessions", "tags": ["market"]}"#);
    let cleared = data(&answer);
    assert_eq!(cleared["cleared"], 7);
    assert_eq!(
        cleared["message"],
        r#"Cleared 7 cache entries with tags: ["market"] from cache "sessions""#
    );

    let answer = clear(&host, r#"{"tags": ["market"]}"#);
    let cleared = data(&answer);
    assert_eq!(cleared["cleared"], 40);
    assert_eq!(
        cleared["message"],
        r#"Cleared 40 cache entries with tags: ["market"]"#
    );
    assert_eq!(cleared["tags"], serde_json::json!(["market"]));
    assert_eq!(data(&clear(&host, r#"{"tags": ["market"]}"#))["cleared"], 0);

    let cleared = data(&clear(&host, r#"{"cache": "markets"}"#));
    assert_eq!(cleared["cleared"], 10);
    assert_eq!(
        cleared["message"],
        r#"Cleared 10 cache entries from cache "markets""#
    );
    assert_eq!(host.markets.entry_count(), 0);
    assert_eq!(host.sessions.entry_count(), 3);

    let unknown = error(&clear(&host, r#"{"cache": "orders"}"#), 404);
    assert_eq!(unknown["code"], "unknown_cache");
    let message = unknown["message"].as_str().unwrap();
    assert!(
        message.contains("orders") && message.contains("markets"),
        "{message}"
    );
}

#[test]
fn unknown_filter_values_and_malformed_bodies_are_400_with_the_reason() {
    let host = Host::start(Options::default());
    let severity = error(&get(&host, &api("alerts?severity=urgent")), 400);
    assert_eq!(severity["code"], "invalid_parameter");
    assert_eq!(
        severity["message"],
        "invalid severity `urgent`: expected one of low, medium, high, critical"
    );
    let priority = error(&get(&host, &api("recommendations?priority=asap")), 400);
    assert!(priority["message"].as_str().unwrap().contains("`asap`"));

    for (body, reason) in [
        ("{\"tags\": [\"market\"", "EOF"),
        ("[1, 2]", "invalid type"),
        ("42", "expected struct"),
        (r#"{"tags": "market"}"#, "invalid type"),
        (r#"{"tag": ["market"]}"#, "unknown field `tag`"),
        ("{}", "give `tags`"),
        (r#"{"tags": []}"#, "give `tags`"),
        ("", "EOF"),
    ] {
        let failure = error(&clear(&host, body), 400);
        let message = failure["message"].as_str().unwrap();
        assert!(message.contains(reason), "{body}: {message}");
    }
    let text = Request::new("POST", &api("cache/clear"))
        .bearer(TOKEN)
        .header("Content-Type", "text/plain")
        .body(b"tags=market".to_vec())
        .send(host.address);
    assert_eq!(error(&text, 415)["code"], "unsupported_media_type");

    let huge = format!(r#"{{"tags": ["{}"]}}"#, "x".repeat(70 * 1024));
    assert_eq!(
        error(&clear(&host, &huge), 413)["code"],
        "payload_too_large"
    );
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_in_the_envelope() {
    let host = Host::start(Options::default());
    for path in [
        API.to_owned(),
        api(""),
        api("nothing"),
        api("alerts/nothing/else"),
        api("%FF"),
    ] {
        let failure = error(&get(&host, &path), 404);
        assert_eq!(failure["code"], "not_found", "{path}");
    }
    let wrong = Request::post_json(&api("alerts"), "{}")
        .bearer(TOKEN)
        .send(host.address);
    let failure = error(&wrong, 405);
    assert_eq!(failure["code"], "method_not_allowed");
    assert!(
        wrong
            .header("allow")
            .is_some_and(|allow| allow.contains("GET"))
    );
    let wrong = get(&host, &api("cache/clear"));
    let failure = error(&wrong, 405);
    assert!(
        failure["message"].as_str().unwrap().contains("Allow"),
        "{failure}"
    );
    assert_eq!(wrong.header("allow"), Some("POST"));
    // Outside the prefix the host's own fallback answers.
    assert_eq!(get(&host, "/nowhere").status, 404);
}

#[test]
fn with_a_token_every_api_route_needs_the_bearer_token() {
    let host = Host::start(Options::default());
    let routes = [
        ("GET", "metrics/summary"),
        ("GET", "alerts"),
        ("GET", "alerts/history"),
        ("GET", "recommendations"),
        ("GET", "cache/stats"),
        ("POST", "cache/clear"),
        ("GET", "health"),
        ("GET", "unknown"),
        ("GET", ""),
        ("POST", ""),
    ];
    for (method, route) in routes {
        let path = api(route);
        let base = || {
            Request::new(method, &path)
                .header("Content-Type", "application/json")
                .body(br#"{"tags": ["market"]}"#.to_vec())
        };
        for request in [
            base(),
            base().bearer("wrong"),
            base().bearer(&TOKEN[..TOKEN.len() - 1]),
            base().bearer(&format!("{TOKEN}x")),
            base().header("Authorization", format!("Basic {TOKEN}")),
            base().header("Authorization", TOKEN),
        ] {
            let answer = request.send(host.address);
            let failure = error(&answer, 401);
            assert_eq!(failure["code"], "unauthorized", "{method} {path}");
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
            assert!(!answer.text().contains(TOKEN), "{method} {path}");
        }
        let answer = base().bearer(TOKEN).send(host.address);
        assert!(answer.status != 401, "{method} {path}: {}", answer.text());
        let lower = base()
            .header("Authorization", format!("bearer {TOKEN}"))
            .send(host.address);
        assert_eq!(lower.status, answer.status, "{method} {path}");
    }
    for open in ["/metrics", "/health", "/health/live", "/health/ready"] {
        assert_eq!(Request::get(open).send(host.address).status, 200, "{open}");
    }
}

#[test]
fn without_a_token_reads_answer_and_cache_clear_is_403() {
    let host = Host::start(Options {
        token: false,
        ..Options::default()
    });
    host.markets
        .insert_with(1, "eu".into(), tagged(&["market"]));
    for route in [
        "metrics/summary",
        "alerts",
        "alerts/history",
        "recommendations",
        "cache/stats",
        "health",
    ] {
        data(&Request::get(&api(route)).send(host.address));
    }
    let refused =
        Request::post_json(&api("cache/clear"), r#"{"tags": ["market"]}"#).send(host.address);
    let failure = error(&refused, 403);
    assert_eq!(failure["code"], "forbidden");
    assert!(
        failure["message"].as_str().unwrap().contains("api_token"),
        "{failure}"
    );
    assert_eq!(host.markets.entry_count(), 1, "nothing cleared");
    // Even a bearer token does not open mutations when none is set.
    let refused = Request::post_json(&api("cache/clear"), r#"{"tags": ["market"]}"#)
        .bearer("anything")
        .send(host.address);
    error(&refused, 403);
}

#[test]
fn the_token_appears_in_no_debug_output_log_or_error() {
    logs::capture();
    let builder = vigil::Monitor::builder().api_token(TOKEN);
    assert!(!format!("{builder:?}").contains(TOKEN));
    assert!(!format!("{builder:#?}").contains(TOKEN));
    let host = Host::start(Options::default());
    assert!(!format!("{:?}", host.monitor).contains(TOKEN));
    assert!(!format!("{:#?}", host.monitor).contains(TOKEN));
    let answers = [
        Request::get(&api("alerts"))
            .bearer("wrong")
            .send(host.address),
        get(&host, &api("alerts?severity=urgent")),
        clear(&host, "{"),
        clear(&host, r#"{"cache": "nope"}"#),
        get(&host, &api("nothing")),
        get(&host, "/metrics"),
        get(&host, "/health"),
    ];
    for answer in answers {
        assert!(!answer.text().contains(TOKEN), "{}", answer.text());
        assert!(answer.headers.iter().all(|(_, v)| !v.contains(TOKEN)));
    }
    // Alerts notified through the tracing notifier, a failing readiness
    // check: the service logs, and never the token.
    host.fire_alerts();
    let down = Host::start(Options {
        db_up: false,
        ..Options::default()
    });
    assert_eq!(Request::get("/health").send(down.address).status, 503);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !logs::logged().contains("QueueBacklog") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let logged = logs::logged();
    assert!(
        logged.contains("QueueBacklog"),
        "the alerts were logged:\n{logged}"
    );
    assert!(!logged.contains(TOKEN), "{logged}");
}

#[test]
fn health_probes_report_liveness_and_the_failing_readiness_checks() {
    let up = Host::start(Options::default());
    let live = Request::get("/health/live").send(up.address);
    assert_eq!(
        (live.status, live.json()["status"].clone()),
        (200, "ok".into())
    );
    for path in ["/health/ready", "/health"] {
        let ready = Request::get(path).send(up.address);
        let json = ready.json();
        assert_eq!(ready.status, 200, "{json}");
        assert_eq!(
            (json["ready"].clone(), json["live"].clone()),
            (true.into(), true.into())
        );
        assert_eq!(json["checks"][0]["name"], "db");
        assert_eq!(json["checks"][0]["ok"], true);
    }

    let down = Host::start(Options {
        db_up: false,
        ..Options::default()
    });
    assert_eq!(Request::get("/health/live").send(down.address).status, 200);
    for path in ["/health/ready", "/health"] {
        let ready = Request::get(path).send(down.address);
        let json = ready.json();
        assert_eq!(ready.status, 503, "{json}");
        assert_eq!(json["status"], "unavailable");
        assert_eq!(json["ready"], false);
        assert_eq!(json["failing"], serde_json::json!(["db"]));
        assert_eq!(json["checks"][0]["error"], "connection refused");
    }
}

#[test]
fn api_health_has_the_score_status_components_and_active_alerts() {
    let host = Host::start(Options::default());
    host.fire_alerts();
    let health = data(&get(&host, &api("health")));
    let score = health["score"].as_f64().expect("a score");
    assert!((0.0..=100.0).contains(&score));
    assert!(["healthy", "degraded", "unhealthy"].contains(&health["status"].as_str().unwrap()));
    let components: BTreeSet<&str> = health["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        components.contains("alerts") && components.contains("cpu"),
        "{health}"
    );
    assert_eq!(
        health["active_alerts"].as_array().map(Vec::len),
        Some(2),
        "{health}"
    );
}

#[test]
fn the_middleware_records_route_templates_and_unmatched_requests_as_empty() {
    let host = Host::start(Options::default());
    markets(&host, 1..8);
    markets(&host, 5000..5002);
    for path in ["/random/a", "/random/b", "/wp-admin.php", "/markets"] {
        assert_eq!(Request::get(path).send(host.address).status, 404);
    }
    let exposition = Request::get("/metrics").send(host.address);
    assert_eq!(
        exposition.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = exposition.text();
    let count = |route: &str, status: &str| {
        text.lines()
            .find(|line| {
                line.starts_with("http_server_requests_total{")
                    && line.contains(&format!("route=\"{route}\""))
                    && line.contains(&format!("status=\"{status}\""))
                    && line.contains("method=\"GET\"")
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no series for {route} {status} in\n{text}"))
    };
    assert_eq!(count("/markets/{id}", "200"), 7.0);
    assert_eq!(count("/markets/{id}", "404"), 2.0);
    assert_eq!(count("", "404"), 4.0);
    assert!(
        !text.contains("/markets/1\"") && !text.contains("/random"),
        "raw paths"
    );
    assert!(text.contains("http_server_request_duration_seconds"));
}

#[test]
fn system_and_process_metrics_are_in_the_exposition() {
    let host = Host::start(Options::default());
    let text = Request::get("/metrics").send(host.address).text();
    for name in [
        "system_cpu_usage_ratio",
        "system_memory_used_bytes",
        "system_memory_usage_ratio",
        "system_swap_usage_ratio",
        "system_disk_usage_ratio{",
        "system_load1",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(name)),
            "{name} missing from\n{text}"
        );
    }
}

#[test]
fn real_answers_match_the_openapi_document() {
    let spec = openapi::OpenApi::load();
    assert_eq!(
        spec.document()["openapi"].as_str().map(|v| &v[..4]),
        Some("3.1.")
    );
    let host = Host::start(Options::default());
    host.fire_alerts();
    markets(&host, 1..3);
    host.markets
        .insert_with(1, "eu".into(), tagged(&["market"]));
    let _ = host.markets.get(&1);

    let checks: Vec<(&str, String, Answer)> = vec![
        (
            "GET",
            api("metrics/summary"),
            get(&host, &api("metrics/summary")),
        ),
        ("GET", api("alerts"), get(&host, &api("alerts"))),
        (
            "GET",
            api("alerts"),
            get(&host, &api("alerts?severity=urgent")),
        ),
        (
            "GET",
            api("alerts"),
            Request::get(&api("alerts")).send(host.address),
        ),
        (
            "GET",
            api("alerts/history"),
            get(&host, &api("alerts/history")),
        ),
        (
            "GET",
            api("recommendations"),
            get(&host, &api("recommendations")),
        ),
        (
            "GET",
            api("recommendations"),
            get(&host, &api("recommendations?priority=x")),
        ),
        ("GET", api("cache/stats"), get(&host, &api("cache/stats"))),
        (
            "POST",
            api("cache/clear"),
            clear(&host, r#"{"tags": ["market"]}"#),
        ),
        (
            "POST",
            api("cache/clear"),
            clear(&host, r#"{"cache": "nope"}"#),
        ),
        ("POST", api("cache/clear"), clear(&host, "{")),
        (
            "POST",
            api("cache/clear"),
            clear(&host, &"x".repeat(70_000)),
        ),
        ("POST", api("alerts"), {
            let path = api("alerts");
            Request::post_json(&path, "{}")
                .bearer(TOKEN)
                .send(host.address)
        }),
        ("GET", api("health"), get(&host, &api("health"))),
        (
            "GET",
            "/health".to_owned(),
            Request::get("/health").send(host.address),
        ),
        (
            "GET",
            "/health/live".to_owned(),
            Request::get("/health/live").send(host.address),
        ),
        (
            "GET",
            "/health/ready".to_owned(),
            Request::get("/health/ready").send(host.address),
        ),
    ];
    let mut checked = BTreeSet::new();
    for (method, template, answer) in &checks {
        conforms(&spec, method, template, answer);
        checked.insert(template.clone());
    }
    for path in spec.document()["paths"].as_object().expect("paths").keys() {
        assert!(
            checked.contains(path) || path == "/metrics" || path == "/status",
            "{path} is documented but no answer was checked against it"
        );
    }
    // The status page is HTML: its answers with and without the token
    // carry a documented status and content type.
    for page in [
        Request::get("/status").bearer(TOKEN).send(host.address),
        Request::get("/status").send(host.address),
    ] {
        let response =
            &spec.document()["paths"]["/status"]["get"]["responses"][page.status.to_string()];
        let content_type = page.header("content-type").unwrap_or_default();
        assert!(
            response["content"].get(content_type).is_some(),
            "GET /status {} {content_type} is not in docs/openapi.json",
            page.status
        );
    }
    let text = Request::get("/metrics").send(host.address);
    let documented = &spec.document()["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
    assert!(
        documented
            .get(text.header("content-type").unwrap())
            .is_some()
    );

    let down = Host::start(Options {
        db_up: false,
        ..Options::default()
    });
    for probe in ["/health", "/health/ready"] {
        let answer = Request::get(probe).send(down.address);
        assert_eq!(answer.status, 503);
        conforms(&spec, "GET", probe, &answer);
    }
}

#[test]
fn no_input_makes_the_api_fail_or_panic() {
    let host = Host::start(Options::default());
    let long = "a".repeat(10_000);
    let paths = [
        api("alerts?severity=%00%FF"),
        api("alerts?severity=high&severity=low"),
        api("alerts?severity[]=x"),
        api("recommendations?priority=%E2%82%AC"),
        api(&format!("{long}/{long}")),
        api("..%2F..%2Fetc%2Fpasswd"),
        api("cache/stats?x=1&&&=="),
        api("metrics/summary/"),
    ];
    for path in &paths {
        let answer = get(&host, path);
        assert!(
            answer.status < 500,
            "{path}: {} {}",
            answer.status,
            answer.text()
        );
    }
    let bodies: [&[u8]; 6] = [
        b"\xff\xfe\x00",
        b"null",
        b"{\"tags\": [null]}",
        b"{\"cache\": 1}",
        b"{\"tags\": [\"a\"], \"cache\": \"markets\", \"cache\": \"x\"}",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]",
    ];
    for body in bodies {
        let answer = Request::new("POST", &api("cache/clear"))
            .bearer(TOKEN)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send(host.address);
        assert!(
            answer.status < 500,
            "{body:?}: {} {}",
            answer.status,
            answer.text()
        );
        assert_eq!(answer.json()["status"], "error");
    }
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS", "FOO"] {
        let answer = Request::new(method, &api("cache/clear"))
            .bearer(TOKEN)
            .send(host.address);
        assert!(answer.status < 500, "{method}: {}", answer.status);
    }
    // Still serving.
    data(&get(&host, &api("health")));
}

/// One host for the property test's many cases.
fn shared_host() -> &'static Host {
    static HOST: std::sync::OnceLock<Host> = std::sync::OnceLock::new();
    HOST.get_or_init(|| Host::start(Options::default()))
}

fn percent_encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any filter value, query string or body: an envelope, never a 5xx.
    #[test]
    fn any_query_or_body_gets_an_envelope_and_never_a_server_error(
        value in proptest::collection::vec(any::<u8>(), 0..24),
        query in proptest::collection::vec(any::<u8>(), 0..24),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..120),
            "[\\[\\]{}\",:a-z0-9 ]{0,80}".prop_map(String::into_bytes),
        ],
    ) {
        let host = shared_host();
        let value = percent_encoded(&value);
        let query = percent_encoded(&query);
        for path in [
            api(&format!("alerts?severity={value}")),
            api(&format!("recommendations?priority={value}")),
            api(&format!("alerts?{query}")),
        ] {
            let answer = get(host, &path);
            prop_assert!(answer.status == 200 || answer.status == 400, "{path}: {}", answer.status);
            let json = answer.json();
            prop_assert!(json["status"] == "success" || json["error"]["code"].is_string());
        }
        let answer = Request::new("POST", &api("cache/clear"))
            .bearer(TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send(host.address);
        prop_assert!(answer.status < 500, "{} {}", answer.status, answer.text());
        let json = answer.json();
        prop_assert!(json["status"] == "success" || json["error"]["code"].is_string());
    }
}
