//! `GET /status` over real HTTP, on the host service of the API tests: the
//! figures the page renders (read from its `data-key`, `data-field` and
//! `data-value` attributes) are the JSON API's, label values are escaped,
//! the page loads nothing from elsewhere, and the token guards it as it
//! guards the API.

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

use std::collections::BTreeMap;

use client::{Answer, Request};
use host::{Host, Options, TOKEN};
use serde_json::Value;
use vigil::cache::sync::TaggedCache;

const API: &str = "/api/v1/performance";

/// A label value written to break out of an attribute and a text node.
const HOSTILE: &str = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>&amp;";

/// One rendered row: each cell's text and raw number, by field.
#[derive(Debug, Default)]
struct Row {
    text: BTreeMap<String, String>,
    value: BTreeMap<String, f64>,
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text between `start` and the next `end` after `from`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = from + text[from..].find(end)?;
    Some(&text[from..to])
}

/// The rows of the table `id`, by `data-key`, in page order.
fn table(page: &str, id: &str) -> Vec<(String, Row)> {
    let table = between(page, &format!("<table id=\"{id}\">"), "</table>")
        .unwrap_or_else(|| panic!("no table {id} in {page}"));
    let body = between(table, "<tbody>", "</tbody>").expect("a tbody");
    body.split("<tr data-key=\"")
        .skip(1)
        .map(|row| {
            let key = unescape(&row[..row.find('"').expect("a closed key")]);
            let mut parsed = Row::default();
            for cell in row.split(" data-field=\"").skip(1) {
                let field = cell[..cell.find('"').expect("a closed field")].to_owned();
                if let Some(value) = between(cell, "data-value=\"", "\"") {
                    let value = value.parse().expect("a number in data-value");
                    parsed.value.insert(field.clone(), value);
                }
                let text = between(cell, ">", "</t").expect("a closed cell");
                parsed.text.insert(field, unescape(text));
            }
            (key, parsed)
        })
        .collect()
}

fn status(host: &Host, token: Option<&str>) -> Answer {
    let request = Request::get("/status");
    match token {
        Some(token) => request.bearer(token),
        None => request,
    }
    .send(host.address)
}

/// The `data` of `GET /api/v1/performance/<path>` with the token.
fn api(host: &Host, path: &str) -> Value {
    let answer = Request::get(&format!("{API}/{path}"))
        .bearer(TOKEN)
        .send(host.address);
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"].clone()
}

/// Requests to `/markets/{id}` (ids over 1000 fail), cache reads, and the
/// alerts fired.
fn traffic(host: &Host) {
    for id in (0..20).chain(2000..2005) {
        let answer = Request::get(&format!("/markets/{id}")).send(host.address);
        assert_eq!(answer.status, if id > 1000 { 404 } else { 200 });
    }
    for id in 0..10 {
        host.markets.insert(id, format!("m{id}"));
    }
    for id in 0..40 {
        let _ = host.markets.get(&id);
    }
    host.fire_alerts();
}

fn quiet() -> Options {
    Options {
        system_metrics: false,
        ..Options::default()
    }
}

#[test]
fn the_page_shows_the_json_apis_numbers() {
    let host = Host::start(quiet());
    traffic(&host);
    let answer = status(&host, Some(TOKEN));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = answer.text();
    let (summary, health, alerts) = (
        api(&host, "metrics/summary"),
        api(&host, "health"),
        api(&host, "alerts"),
    );
    let caches = api(&host, "cache/stats");

    let score = between(&page, "<strong id=\"score\" data-value=\"", "\"").expect("a score");
    assert_eq!(score.parse::<f64>().ok(), health["score"].as_f64());
    let components = table(&page, "components");
    assert_eq!(
        components.len(),
        health["components"].as_array().unwrap().len()
    );
    for (component, (key, row)) in health["components"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&components)
    {
        assert_eq!(component["name"], key.as_str());
        assert_eq!(
            row.value.get("penalty").copied(),
            component["penalty"].as_f64()
        );
        assert_eq!(row.value.get("value").copied(), component["value"].as_f64());
        assert_eq!(component["status"], row.text["status"].as_str());
    }

    let functions = table(&page, "functions");
    let listed = summary["functions"].as_array().unwrap();
    assert!(!listed.is_empty(), "{summary}");
    assert_eq!(functions.len(), listed.len());
    for (function, (key, row)) in listed.iter().zip(&functions) {
        assert_eq!(
            key,
            &format!(
                "{}::{}",
                function["module"].as_str().unwrap(),
                function["function"].as_str().unwrap()
            )
        );
        for field in ["calls", "errors", "error_rate", "p50", "p95", "p99"] {
            assert_eq!(
                row.value.get(field).copied(),
                function[field].as_f64(),
                "{key} {field}"
            );
        }
    }
    let find_market = functions
        .iter()
        .find(|(_, row)| row.text["function"] == "find_market")
        .expect("find_market's row");
    assert_eq!(find_market.1.value["calls"], 25.0);
    assert_eq!(find_market.1.value["errors"], 5.0);

    let routes: BTreeMap<String, Row> = table(&page, "routes").into_iter().collect();
    assert_eq!(routes["GET /markets/{id} 200"].value["requests"], 20.0);
    assert_eq!(routes["GET /markets/{id} 404"].value["requests"], 5.0);
    for field in ["p50", "p95", "p99"] {
        assert!(routes["GET /markets/{id} 200"].value[field] > 0.0);
    }

    let counts = table(&page, "alert-counts");
    for (severity, row) in &counts {
        assert_eq!(
            row.value.get("firing").copied(),
            alerts["severity_breakdown"][severity].as_f64(),
            "{severity}"
        );
    }
    let firing = table(&page, "alerts");
    let names: Vec<&str> = firing
        .iter()
        .map(|(_, row)| row.text["name"].as_str())
        .collect();
    let api_names: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, api_names);
    assert_eq!(
        names,
        ["ReplicationLag", "QueueBacklog"],
        "most severe first"
    );
    assert_eq!(firing[0].1.value["current_value"], 120.0);
    assert_eq!(firing[0].1.value["threshold"], 30.0);

    let cache_rows: BTreeMap<String, Row> = table(&page, "caches").into_iter().collect();
    assert_eq!(
        cache_rows["markets"].value.get("hit_rate").copied(),
        caches["caches"]["markets"]["hit_rate"].as_f64()
    );
    assert_eq!(cache_rows["markets"].value["hits"], 10.0);
    assert_eq!(
        cache_rows["all caches"].value.get("hit_rate").copied(),
        caches["hit_rate"].as_f64()
    );
    let recommendations = api(&host, "recommendations");
    assert_eq!(
        table(&page, "recommendations").len() as u64,
        recommendations["count"].as_u64().unwrap()
    );
}

#[test]
fn the_page_is_accessible_and_self_contained() {
    let host = Host::start(Options::default());
    traffic(&host);
    let page = status(&host, Some(TOKEN)).text();
    assert!(
        page.starts_with("<!DOCTYPE html><html lang=\"en\">"),
        "{page}"
    );
    assert_eq!(page.matches("<h1>").count(), 1);
    for table_id in [
        "components",
        "functions",
        "routes",
        "alerts",
        "caches",
        "gauges",
    ] {
        assert!(
            page.contains(&format!("<table id=\"{table_id}\">")),
            "{table_id}"
        );
    }
    assert!(page.matches("<h2 ").count() >= 9);
    assert!(page.contains("<th scope=\"col\">p95</th>"));
    assert!(page.contains("<th scope=\"row\""));
    assert!(page.contains("<label for=\"token\">"));
    let gauges: BTreeMap<String, Row> = table(&page, "gauges").into_iter().collect();
    assert!(
        gauges
            .keys()
            .any(|key| key.starts_with("system_cpu_usage_ratio")),
        "{gauges:?}"
    );
    for external in [
        "://", "src=", "href=", "url(", "@import", "<link", "<iframe",
    ] {
        assert!(!page.contains(external), "{external} in the page");
    }
    assert_eq!(page.matches("<script").count(), 1, "one inline script");
    // Relative URLs: the page works where the host mounts the router, e.g.
    // `Router::new().nest("/ops", monitor.router())` serves /ops/status,
    // whose script then reads /ops/api/v1/performance/.
    for absolute in ["\"/api/", "fetch(\"/"] {
        assert!(!page.contains(absolute), "{absolute} in the page's script");
    }
    assert!(!page.contains(TOKEN), "the token is never in the page");
}

#[test]
fn label_values_are_escaped() {
    let hostile: TaggedCache<u64, String> = TaggedCache::builder()
        .name(HOSTILE)
        .max_capacity(10)
        .build();
    let cache = hostile.clone();
    let host = Host::start_with(quiet(), move |builder| builder.cache(HOSTILE, &cache));
    let _ = hostile.get(&1);
    vigil::with_local_recorder(&host.monitor.recorder(), || {
        vigil::metrics::gauge!("queue_depth", "shard" => HOSTILE).set(900.0);
    });
    host.monitor.evaluate_alerts(std::time::SystemTime::now());
    let page = status(&host, Some(TOKEN)).text();
    assert!(!page.contains(HOSTILE));
    assert!(!page.contains("<img"));
    assert_eq!(page.matches("<script").count(), 1, "only the page's script");
    let caches: BTreeMap<String, Row> = table(&page, "caches").into_iter().collect();
    assert!(caches.contains_key(HOSTILE), "{:?}", caches.keys());
    assert_eq!(caches[HOSTILE].text["cache"], HOSTILE);
    let firing = table(&page, "alerts");
    let labels = &firing
        .iter()
        .find(|(_, row)| row.text["name"] == "QueueBacklog")
        .expect("the alert with the hostile label")
        .1
        .text["labels"];
    assert!(labels.contains(&format!("shard={HOSTILE}")), "{labels}");
}

#[test]
fn with_a_token_set_the_page_needs_it_and_shows_no_number_without() {
    let host = Host::start(quiet());
    traffic(&host);
    for token in [None, Some("wrong")] {
        let answer = status(&host, token);
        assert_eq!(answer.status, 401);
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        let page = answer.text();
        assert!(page.contains("<label for=\"token\">API token</label>"));
        assert!(
            !page.contains("data-value=\""),
            "no figure without the token"
        );
        assert!(table(&page, "functions").is_empty());
        assert!(!page.contains("QueueBacklog"));
        assert!(!page.contains(TOKEN));
    }
    let in_query = Request::get(&format!("/status?token={TOKEN}")).send(host.address);
    assert_eq!(in_query.status, 401, "the token is not read from the URL");
}

#[test]
fn without_a_token_the_page_is_public_and_has_no_token_field() {
    let host = Host::start(Options {
        token: false,
        ..quiet()
    });
    traffic(&host);
    let answer = status(&host, None);
    assert_eq!(answer.status, 200);
    let page = answer.text();
    assert!(!page.contains("<label for=\"token\">"));
    assert_eq!(table(&page, "functions").len(), 1);
    assert_eq!(
        answer
            .header("content-security-policy")
            .map(|csp| csp.contains("connect-src 'self'")),
        Some(true)
    );
}
