//! `GET /status`: one self-contained HTML page (inline CSS and script, no
//! external asset) with the health score and its components, the
//! p50/p95/p99 of each function and route, the firing alerts by severity,
//! the recommendations, the caches' hit rates and the system gauges.
//!
//! The numbers of the first render are the performance API's own answers
//! (its handlers are called in process), so the page works without
//! JavaScript; the script then refreshes them from the JSON API every
//! 10 s. Every value is HTML-escaped (label values are user data) and each
//! figure carries its raw number in `data-value`.
//!
//! With an API token set, the page needs `Authorization: Bearer <token>`
//! like the API; without it the answer is a 401 carrying the page without
//! any number, whose field takes the token, keeps it in the tab's
//! `sessionStorage` and loads the numbers from the API. The token is never
//! read from the URL nor written into the page. A page served with its
//! numbers (a proxy added the header) hides the field and refreshes
//! without it.
//!
//! The script's URLs are relative (`api/v1/performance/..`, `status`), so
//! the page also works where the host mounts the router under a prefix
//! (`Router::new().nest("/ops", monitor.router())`).

use std::fmt::Write as _;

use axum::body::to_bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::envelope::ApiError;
use super::performance::{self, LevelFilter};
use crate::Monitor;
use crate::summary::MetricsSummary;

/// The histogram `Monitor::http_layer` records requests into.
const ROUTE_DURATION: &str = "http_server_request_duration_seconds";

/// `GET /status`: the page with the numbers, or (with a token set and not
/// presented) a 401 with the page without numbers.
pub(crate) async fn page(State(monitor): State<Monitor>, headers: HeaderMap) -> Response {
    let token_set = monitor.api_token().is_some();
    let allowed = monitor
        .api_token()
        .is_none_or(|token| presented(&headers).is_some_and(|candidate| token.matches(candidate)));
    let (status, body) = if allowed {
        match Snapshot::read(monitor).await {
            Ok(snapshot) => (StatusCode::OK, render(Some(&snapshot), token_set)),
            Err(error) => return error.into_response(),
        }
    } else {
        (StatusCode::UNAUTHORIZED, render(None, token_set))
    };
    let mut response = (status, body).into_response();
    let fixed = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in fixed {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The credential of `Authorization: Bearer <credential>` (scheme in any
/// case).
fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| value[7..].trim())
}

/// What the page shows: the API's `data` of each read, and the routes and
/// system gauges from the registry.
struct Snapshot {
    summary: Value,
    health: Value,
    alerts: Value,
    recommendations: Value,
    caches: Value,
    routes: Vec<Row>,
    gauges: Vec<Row>,
}

impl Snapshot {
    async fn read(monitor: Monitor) -> Result<Self, ApiError> {
        let all = || Ok(Query(LevelFilter::default()));
        let summary = data(performance::summary(State(monitor.clone())).await).await?;
        let health = data(performance::health(State(monitor.clone())).await).await?;
        let alerts = data(performance::alerts(State(monitor.clone()), all()).await).await?;
        let recommendations =
            data(performance::recommendations(State(monitor.clone()), all()).await).await?;
        let caches = data(performance::cache_stats(State(monitor.clone())).await).await?;
        let (routes, gauges) = performance::read(monitor, |monitor| {
            let registry = monitor.summary();
            (routes(&registry), gauges(&registry))
        })
        .await?;
        Ok(Self {
            summary,
            health,
            alerts,
            recommendations,
            caches,
            routes,
            gauges,
        })
    }
}

/// The `data` of an API answer.
async fn data(answer: Result<Response, ApiError>) -> Result<Value, ApiError> {
    let failed = |what: String| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("reading the status failed: {what}"),
        )
    };
    let body = to_bytes(answer?.into_body(), usize::MAX)
        .await
        .map_err(|error| failed(error.to_string()))?;
    let mut json: Value =
        serde_json::from_slice(&body).map_err(|error| failed(error.to_string()))?;
    Ok(json["data"].take())
}

/// One cell: its field name, the text shown and the raw number.
#[derive(Clone)]
struct Cell {
    field: &'static str,
    text: String,
    value: Option<f64>,
}

/// One table row, keyed (`data-key`) for the script and for tests.
#[derive(Clone)]
struct Row {
    key: String,
    cells: Vec<Cell>,
}

const DASH: &str = "\u{2014}";

fn text(field: &'static str, value: &Value) -> Cell {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Null => DASH.to_owned(),
        other => other.to_string(),
    };
    Cell {
        field,
        text,
        value: None,
    }
}

/// A number shown through `show`; a dash when absent.
fn number(field: &'static str, value: Option<f64>, show: fn(f64) -> String) -> Cell {
    Cell {
        field,
        text: value.map_or_else(|| DASH.to_owned(), show),
        value,
    }
}

fn millis(seconds: f64) -> String {
    format!("{:.2} ms", seconds * 1000.0)
}

fn percent(value: f64) -> String {
    format!("{value:.1} %")
}

fn ratio(value: f64) -> String {
    format!("{:.2} %", value * 100.0)
}

/// At most 4 decimals, without trailing zeros (as the script's
/// `String(Number(v.toFixed(4)))`).
fn plain(value: f64) -> String {
    let shown = format!("{value:.4}");
    let shown = shown.trim_end_matches('0').trim_end_matches('.');
    if shown == "-0" { "0" } else { shown }.to_owned()
}

fn labels(labels: impl IntoIterator<Item = (String, String)>) -> String {
    labels
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_labels(value: &Value) -> String {
    let pairs = value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            (name.clone(), value)
        });
    labels(pairs)
}

/// The `http_server_request_duration_seconds` series with requests in
/// the window, by route, method and status.
fn routes(summary: &MetricsSummary) -> Vec<Row> {
    let mut rows: Vec<Row> = summary
        .histograms
        .iter()
        .filter(|histogram| histogram.name == ROUTE_DURATION)
        .map(|histogram| {
            let label = |name: &str| histogram.labels.get(name).cloned().unwrap_or_default();
            let (route, method, status) = (label("route"), label("method"), label("status"));
            let key = format!("{method} {route} {status}");
            let window = &histogram.window;
            let seconds = |value: f64| Some(value).filter(|_| window.count > 0);
            Row {
                key,
                cells: vec![
                    text(
                        "route",
                        &Value::from(if route.is_empty() {
                            "(no route)".to_owned()
                        } else {
                            route
                        }),
                    ),
                    text("method", &Value::from(method)),
                    text("status", &Value::from(status)),
                    number("requests", Some(window.count as f64), plain),
                    number("p50", seconds(window.p50), millis),
                    number("p95", seconds(window.p95), millis),
                    number("p99", seconds(window.p99), millis),
                ],
            }
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// The `system_*` gauges.
fn gauges(summary: &MetricsSummary) -> Vec<Row> {
    summary
        .gauges
        .iter()
        .filter(|gauge| gauge.name.starts_with("system_"))
        .map(|gauge| {
            let shown = labels(gauge.labels.clone());
            Row {
                key: format!("{}{{{shown}}}", gauge.name),
                cells: vec![
                    text("gauge", &Value::from(gauge.name.clone())),
                    text("labels", &Value::from(shown)),
                    number("value", Some(gauge.value), plain),
                ],
            }
        })
        .collect()
}

fn f64_of(value: &Value, field: &str) -> Option<f64> {
    value[field].as_f64()
}

fn components(health: &Value) -> Vec<Row> {
    let items = health["components"].as_array().into_iter().flatten();
    items
        .map(|component| Row {
            key: component["name"].as_str().unwrap_or_default().to_owned(),
            cells: vec![
                text("name", &component["name"]),
                number("value", f64_of(component, "value"), plain),
                text("status", &component["status"]),
                number("penalty", f64_of(component, "penalty"), plain),
            ],
        })
        .collect()
}

fn functions(summary: &Value) -> Vec<Row> {
    let items = summary["functions"].as_array().into_iter().flatten();
    items
        .map(|function| Row {
            key: format!(
                "{}::{}",
                function["module"].as_str().unwrap_or_default(),
                function["function"].as_str().unwrap_or_default()
            ),
            cells: vec![
                text("function", &function["function"]),
                text("module", &function["module"]),
                number("calls", f64_of(function, "calls"), plain),
                number("errors", f64_of(function, "errors"), plain),
                number("error_rate", f64_of(function, "error_rate"), ratio),
                number("p50", f64_of(function, "p50"), millis),
                number("p95", f64_of(function, "p95"), millis),
                number("p99", f64_of(function, "p99"), millis),
            ],
        })
        .collect()
}

fn severities(alerts: &Value) -> Vec<Row> {
    ["critical", "high", "medium", "low"]
        .into_iter()
        .map(|severity| Row {
            key: severity.to_owned(),
            cells: vec![
                text("severity", &Value::from(severity)),
                number(
                    "firing",
                    alerts["severity_breakdown"][severity].as_f64(),
                    plain,
                ),
            ],
        })
        .collect()
}

fn alerts(alerts: &Value) -> Vec<Row> {
    let items = alerts["alerts"].as_array().into_iter().flatten();
    items
        .map(|alert| {
            let shown = json_labels(&alert["labels"]);
            Row {
                key: format!("{}{{{shown}}}", alert["name"].as_str().unwrap_or_default()),
                cells: vec![
                    text("severity", &alert["severity"]),
                    text("name", &alert["name"]),
                    text("labels", &Value::from(shown)),
                    number("current_value", f64_of(alert, "current_value"), plain),
                    number("threshold", f64_of(alert, "threshold"), plain),
                    text("message", &alert["message"]),
                    text("timestamp", &alert["timestamp"]),
                ],
            }
        })
        .collect()
}

fn recommendations(recommendations: &Value) -> Vec<Row> {
    let items = recommendations["recommendations"]
        .as_array()
        .into_iter()
        .flatten();
    items
        .map(|item| Row {
            key: item["title"].as_str().unwrap_or_default().to_owned(),
            cells: vec![
                text("priority", &item["priority"]),
                text("title", &item["title"]),
                text("category", &item["category"]),
                text("description", &item["description"]),
                text("implementation", &item["implementation"]),
            ],
        })
        .collect()
}

fn caches(caches: &Value) -> Vec<Row> {
    let row = |key: &str, figures: &Value| Row {
        key: key.to_owned(),
        cells: vec![
            text("cache", &Value::from(key)),
            number("hits", f64_of(figures, "hits"), plain),
            number("misses", f64_of(figures, "misses"), plain),
            number("hit_rate", f64_of(figures, "hit_rate"), percent),
            number("entry_count", f64_of(figures, "entry_count"), plain),
            number("utilization", f64_of(figures, "utilization"), percent),
        ],
    };
    let by_name = caches["caches"].as_object().into_iter().flatten();
    let mut rows: Vec<Row> = by_name.map(|(name, figures)| row(name, figures)).collect();
    rows.push(row("all caches", caches));
    rows
}

fn usage(summary: &Value) -> Vec<Row> {
    [("cpu", "cpu_usage"), ("memory", "memory_usage")]
        .into_iter()
        .map(|(key, field)| Row {
            key: key.to_owned(),
            cells: vec![
                text("resource", &Value::from(key)),
                number("current", summary[field]["current"].as_f64(), percent),
                number("average", summary[field]["average"].as_f64(), percent),
                number("max", summary[field]["max"].as_f64(), percent),
            ],
        })
        .collect()
}

/// `value` with `& < > " '` escaped, for text and attribute values.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// One section: a heading and a table whose first column heads its rows.
fn table(page: &mut String, id: &str, title: &str, columns: &[&str], rows: &[Row]) {
    let _ = write!(
        page,
        "<section aria-labelledby=\"{id}-h\"><h2 id=\"{id}-h\">{title}</h2>\
         <table id=\"{id}\"><thead><tr>"
    );
    for column in columns {
        let _ = write!(page, "<th scope=\"col\">{column}</th>");
    }
    page.push_str("</tr></thead><tbody>");
    for row in rows {
        let _ = write!(page, "<tr data-key=\"{}\">", escape(&row.key));
        for (index, cell) in row.cells.iter().enumerate() {
            let tag = if index == 0 { "th scope=\"row\"" } else { "td" };
            let _ = write!(page, "<{tag} data-field=\"{}\"", cell.field);
            if let Some(value) = cell.value {
                let _ = write!(page, " data-value=\"{value}\"");
            }
            let close = if index == 0 { "th" } else { "td" };
            let _ = write!(page, ">{}</{close}>", escape(&cell.text));
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table></section>");
}

/// The page; `None` renders it without numbers (the token is needed).
fn render(snapshot: Option<&Snapshot>, token_set: bool) -> String {
    let mut page = String::with_capacity(16 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Service status</title><style>{STYLE}</style></head>\
         <body data-token=\"{}\" data-loaded=\"{}\"><main><h1>Service status</h1>",
        if token_set { "required" } else { "none" },
        snapshot.is_some()
    );
    if token_set {
        page.push_str(
            "<form id=\"token-form\"><p id=\"token-note\">This page needs the monitor's API \
             token. It is kept in this tab only (sessionStorage) and sent as a bearer token \
             to the API.</p><label for=\"token\">API token</label> \
             <input id=\"token\" type=\"password\" autocomplete=\"off\" required \
             aria-describedby=\"token-note\"> \
             <button type=\"submit\">Use token</button></form>",
        );
    }
    let empty = Value::Null;
    let pick = |read: fn(&Snapshot) -> &Value| snapshot.map_or(&empty, read);
    let health = pick(|s| &s.health);
    let score = health["score"].as_f64();
    let _ = write!(
        page,
        "<p>Health score: <strong id=\"score\"{}>{}</strong> of 100, \
         <span id=\"health-status\">{}</span>. \
         <span id=\"refreshed\" role=\"status\" aria-live=\"polite\">{}</span></p>",
        score.map_or_else(String::new, |score| format!(" data-value=\"{score}\"")),
        score.map_or_else(|| DASH.to_owned(), plain),
        escape(health["status"].as_str().unwrap_or(DASH)),
        if snapshot.is_some() {
            "Rendered by the server."
        } else {
            "Enter the API token to load the figures."
        }
    );
    type Build = fn(&Snapshot) -> Vec<Row>;
    #[rustfmt::skip]
    let sections: [(&str, &str, &[&str], Build); 9] = [
        ("components", "Health components", &["Component", "Value", "Status", "Penalty"], |s| components(&s.health)),
        ("functions", "Functions", &["Function", "Module", "Calls", "Errors", "Error rate", "p50", "p95", "p99"], |s| functions(&s.summary)),
        ("routes", "Routes", &["Route", "Method", "Status", "Requests", "p50", "p95", "p99"], |s| s.routes.clone()),
        ("alert-counts", "Firing alerts by severity", &["Severity", "Firing"], |s| severities(&s.alerts)),
        ("alerts", "Firing alerts", &["Severity", "Alert", "Labels", "Value", "Threshold", "Message", "Since"], |s| alerts(&s.alerts)),
        ("recommendations", "Recommendations", &["Priority", "Title", "Category", "Description", "Implementation"], |s| recommendations(&s.recommendations)),
        ("caches", "Caches", &["Cache", "Hits", "Misses", "Hit rate", "Entries", "Utilization"], |s| caches(&s.caches)),
        ("usage", "CPU and memory", &["Resource", "Current", "Average", "Max"], |s| usage(&s.summary)),
        ("gauges", "System gauges", &["Gauge", "Labels", "Value"], |s| s.gauges.clone()),
    ];
    for (id, title, columns, build) in sections {
        let rows = snapshot.map_or_else(Vec::new, build);
        table(&mut page, id, title, columns, &rows);
    }
    let _ = write!(page, "</main><script>{SCRIPT}</script></body></html>");
    page
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem 2rem;color:#111;\
background:#fff}table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
th,td{border:1px solid #999;padding:.25rem .5rem;text-align:left}\
td[data-value]{text-align:right;font-variant-numeric:tabular-nums}\
thead th{background:#eee}#score{font-size:1.5rem}\
form{margin:1rem 0;padding:.5rem;border:1px solid #c60}";

/// Refreshes every table from the JSON API (and the routes and system
/// gauges, which the API does not answer, from this page) every 10 s,
/// with the token from `sessionStorage` when one is needed; a page that
/// came with its figures refreshes without one too (its request carried
/// the token, so a proxy adding the header adds it to the refresh's).
/// Every value is written as text, never as markup.
const SCRIPT: &str = r##"(function(){"use strict";
var API="api/v1/performance/",KEY="vigil-status-token",DASH="\u2014";
var body=document.body,note=document.getElementById("refreshed");
// Served with its figures: the request carried the token (a proxy adding
// the header adds it to the refresh's requests too).
var served=body.dataset.loaded==="true";
function token(){try{return sessionStorage.getItem(KEY)||"";}catch(e){return "";}}
function init(){var t=token();return t?{headers:{Authorization:"Bearer "+t}}:{};}
function get(path){return fetch(API+path,init()).then(function(r){
 if(r.status===401){throw new Error("the API token is missing or wrong");}
 if(!r.ok){throw new Error(path+": HTTP "+r.status);}
 return r.json();}).then(function(j){return j.data;});}
function show(f){return function(v){return v==null?DASH:f(v);};}
var ms=show(function(v){return (v*1000).toFixed(2)+" ms";});
var pct=show(function(v){return v.toFixed(1)+" %";});
var ratio=show(function(v){return (v*100).toFixed(2)+" %";});
var plain=show(function(v){return String(Number(v.toFixed(4)));});
function t(field,v){return {field:field,text:v==null?DASH:String(v)};}
function n(field,v,f){return {field:field,text:f(v),value:v};}
function labels(o){return Object.keys(o||{}).sort().map(function(k){return k+"="+o[k];}).join(", ");}
function fill(id,rows){var tb=document.querySelector("#"+id+" tbody");
 tb.replaceChildren.apply(tb,rows.map(function(r){var tr=document.createElement("tr");
  tr.dataset.key=r.key;r.cells.forEach(function(c,i){var d=document.createElement(i?"td":"th");
   if(!i){d.scope="row";}d.dataset.field=c.field;if(c.value!=null){d.dataset.value=String(c.value);}
   d.textContent=c.text;tr.appendChild(d);});return tr;}));}
function usage(s){return [["cpu","cpu_usage"],["memory","memory_usage"]].map(function(p){var u=s[p[1]]||{};
 return {key:p[0],cells:[t("resource",p[0]),n("current",u.current,pct),n("average",u.average,pct),n("max",u.max,pct)]};});}
function refresh(){Promise.all([get("metrics/summary"),get("health"),get("alerts"),get("recommendations"),get("cache/stats"),
 fetch("status",init()).then(function(r){if(!r.ok){throw new Error("status: HTTP "+r.status);}return r.text();})])
 .then(function(a){var s=a[0],h=a[1],al=a[2],rc=a[3],c=a[4];
  var page=new DOMParser().parseFromString(a[5],"text/html");
  var score=document.getElementById("score");score.textContent=plain(h.score);score.dataset.value=String(h.score);
  document.getElementById("health-status").textContent=h.status;
  fill("components",h.components.map(function(x){return {key:x.name,cells:[t("name",x.name),n("value",x.value,plain),t("status",x.status),n("penalty",x.penalty,plain)]};}));
  fill("functions",s.functions.map(function(x){return {key:x.module+"::"+x["function"],cells:[t("function",x["function"]),t("module",x.module),
   n("calls",x.calls,plain),n("errors",x.errors,plain),n("error_rate",x.error_rate,ratio),n("p50",x.p50,ms),n("p95",x.p95,ms),n("p99",x.p99,ms)]};}));
  fill("alert-counts",["critical","high","medium","low"].map(function(k){return {key:k,cells:[t("severity",k),n("firing",al.severity_breakdown[k],plain)]};}));
  fill("alerts",al.alerts.map(function(x){var l=labels(x.labels);return {key:x.name+"{"+l+"}",cells:[t("severity",x.severity),t("name",x.name),t("labels",l),
   n("current_value",x.current_value,plain),n("threshold",x.threshold,plain),t("message",x.message),t("timestamp",x.timestamp)]};}));
  fill("recommendations",rc.recommendations.map(function(x){return {key:x.title,cells:[t("priority",x.priority),t("title",x.title),
   t("category",x.category),t("description",x.description),t("implementation",x.implementation)]};}));
  function cache(k,x){return {key:k,cells:[t("cache",k),n("hits",x.hits,plain),n("misses",x.misses,plain),n("hit_rate",x.hit_rate,pct),
   n("entry_count",x.entry_count,plain),n("utilization",x.utilization,pct)]};}
  fill("caches",Object.keys(c.caches).sort().map(function(k){return cache(k,c.caches[k]);}).concat([cache("all caches",c)]));
  fill("usage",usage(s));
  ["routes","gauges"].forEach(function(id){var fresh=page.querySelector("#"+id+" tbody");
   if(fresh){document.querySelector("#"+id+" tbody").replaceWith(document.adoptNode(fresh));}});
  body.dataset.loaded="true";note.textContent="Refreshed at "+new Date().toLocaleTimeString()+".";})
 .catch(function(e){note.textContent="Refresh failed: "+e.message+".";});}
var form=document.getElementById("token-form");
if(form&&served){form.hidden=true;}
if(form){form.addEventListener("submit",function(e){e.preventDefault();var v=document.getElementById("token").value.trim();
 try{sessionStorage.setItem(KEY,v);}catch(x){}document.getElementById("token").value="";refresh();});}
function live(){return body.dataset.token!=="required"||served||token();}
if(live()){refresh();}
setInterval(function(){if(live()){refresh();}},10000);
})();"##;
