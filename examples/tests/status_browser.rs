//! `GET /status` in a real browser: Debian's Chromium, driven by
//! chromedriver over WebDriver, loads the page of a running
//! `opinion_market --serve`, takes the API token the page asks for, and
//! shows the JSON API's figures; when the example's degradation fires an
//! alert, the alert appears after the page's own refresh, without a
//! reload.
//!
//! The figures move while the load runs, so the test reads the API just
//! before the page loads its figures and just after: a counter the page
//! shows lies between the two reads, a percentile or the health score
//! close to them, and every shown text is its raw number formatted.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and the example built
//! (`cargo test -p vigil-examples` builds it; with `--test status_browser`
//! alone, `cargo build -p vigil-examples --example opinion_market` first).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// The example's bearer token for this run.
const TOKEN: &str = "status-browser-token";

/// The alerts of the machine rather than of the load: they may fire
/// before the degradation and are not the ones the test waits for.
const HOST_ALERTS: [&str; 3] = ["HighCpuUsage", "HighMemoryUsage", "HighDiskUsage"];

/// A child process killed (and reaped) when the test ends, however it
/// ends.
struct Running {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with stdout and stderr in `{dir}/{name}.log` and
    /// waits (at most 10 s) until it accepts connections on `port`;
    /// `missing` says what to do when the binary is missing.
    async fn serve(
        name: &'static str,
        command: &mut Command,
        dir: &Path,
        port: u16,
        missing: &str,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("the log file in the temporary directory");
        let err = out.try_clone().expect("a second handle on the log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name} ({error}): {missing}"));
        let mut running = Self { name, child, log };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            running.assert_running();
            assert!(
                Instant::now() < deadline,
                "{name} does not answer on port {port}:\n{}",
                running.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running
    }

    /// What the process printed so far.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test if the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.output());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `name` in one of the `PATH` directories.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The example binary `name`, in the `examples` directory beside this
/// test's own directory (where `cargo test -p vigil-examples` builds it).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let target = exe.ancestors().nth(2).expect("the target directory");
    target
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// The JSON API of the running example, read with its token.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// The `data` of `GET /api/v1/performance/{path}`.
    async fn data(&self, path: &str) -> Value {
        let url = format!("{}/api/v1/performance/{path}", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}"));
        assert!(response.status().is_success(), "GET {url}: {response:?}");
        let mut answer: Value = response
            .json()
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}"));
        answer["data"].take()
    }

    /// The summary, the cache figures, the health report and the alerts,
    /// read one after the other.
    async fn read(&self) -> Reading {
        Reading {
            summary: self.data("metrics/summary").await,
            caches: self.data("cache/stats").await,
            health: self.data("health").await,
            alerts: self.data("alerts").await,
        }
    }
}

/// One read of the API.
struct Reading {
    summary: Value,
    caches: Value,
    health: Value,
    alerts: Value,
}

impl Reading {
    /// The function `module::function` of the summary.
    fn function(&self, key: &str) -> Option<&Value> {
        self.summary["functions"]
            .as_array()?
            .iter()
            .find(|function| {
                let module = function["module"].as_str().unwrap_or_default();
                let name = function["function"].as_str().unwrap_or_default();
                format!("{module}::{name}") == key
            })
    }

    /// The firing alerts' names.
    fn alert_names(&self) -> BTreeSet<String> {
        alert_names(&self.alerts)
    }
}

fn alert_names(alerts: &Value) -> BTreeSet<String> {
    alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|alert| alert["name"].as_str().map(str::to_owned))
        .collect()
}

/// One shown cell: its text as the browser renders it and its
/// `data-value`.
#[derive(Debug)]
struct Shown {
    text: String,
    value: Option<f64>,
}

/// The page as the browser shows it: each table's rows by `data-key`,
/// each row's cells by `data-field`.
#[derive(Debug)]
struct Page {
    tables: BTreeMap<String, BTreeMap<String, BTreeMap<String, Shown>>>,
    score: Shown,
    refreshed: String,
    loaded: String,
    marker: Value,
}

/// Collects the page's tables in one script run, so they are read from
/// one state of the DOM.
const READ_PAGE: &str = r#"
function shown(element) {
  var value = element.dataset.value;
  return {text: element.innerText, value: value == null ? null : Number(value)};
}
var tables = {};
document.querySelectorAll("table[id]").forEach(function (table) {
  var rows = {};
  table.querySelectorAll("tbody tr").forEach(function (row) {
    var cells = {};
    row.querySelectorAll("[data-field]").forEach(function (cell) {
      cells[cell.dataset.field] = shown(cell);
    });
    rows[row.dataset.key] = cells;
  });
  tables[table.id] = rows;
});
return {
  tables: tables,
  score: shown(document.getElementById("score")),
  refreshed: document.getElementById("refreshed").innerText,
  loaded: document.body.dataset.loaded,
  marker: window.vigilStatusTest || null
};
"#;

fn shown(value: &Value) -> Shown {
    Shown {
        text: value["text"].as_str().unwrap_or_default().to_owned(),
        value: value["value"].as_f64(),
    }
}

async fn read_page(browser: &Client) -> Page {
    let read = browser
        .execute(READ_PAGE, Vec::new())
        .await
        .expect("the page's tables are readable");
    let tables = read["tables"]
        .as_object()
        .expect("tables by id")
        .iter()
        .map(|(id, rows)| {
            let rows = rows
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, cells)| {
                    let cells = cells
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(field, cell)| (field.clone(), shown(cell)))
                        .collect();
                    (key.clone(), cells)
                })
                .collect();
            (id.clone(), rows)
        })
        .collect();
    Page {
        tables,
        score: shown(&read["score"]),
        refreshed: read["refreshed"].as_str().unwrap_or_default().to_owned(),
        loaded: read["loaded"].as_str().unwrap_or_default().to_owned(),
        marker: read["marker"].clone(),
    }
}

impl Page {
    fn rows(&self, table: &str) -> &BTreeMap<String, BTreeMap<String, Shown>> {
        self.tables
            .get(table)
            .unwrap_or_else(|| panic!("the page has no table {table}"))
    }

    fn cell(&self, table: &str, key: &str, field: &str) -> &Shown {
        self.rows(table)
            .get(key)
            .and_then(|row| row.get(field))
            .unwrap_or_else(|| panic!("no cell {field} in the row {key} of {table}: {self:#?}"))
    }

    /// The names in the firing alerts table.
    fn alert_names(&self) -> BTreeSet<String> {
        self.rows("alerts")
            .values()
            .map(|row| row.get("name").map_or_else(String::new, |n| n.text.clone()))
            .collect()
    }
}

/// The number a cell shows, read back from its text (`12.34 ms` in
/// seconds, `81.5 %`, `120`); `None` for the dash of a missing value.
/// Checks that the text is the cell's `data-value` formatted.
fn number(cell: &Shown, what: &str) -> Option<f64> {
    let text = cell.text.trim();
    if text == "\u{2014}" {
        assert_eq!(cell.value, None, "{what} shows a dash for a number");
        return None;
    }
    let (shown, raw) = if let Some(ms) = text.strip_suffix(" ms") {
        let raw = cell.value.map(|seconds| format!("{:.2}", seconds * 1000.0));
        (ms.parse::<f64>().map(|ms| ms / 1000.0), raw)
    } else if let Some(percent) = text.strip_suffix(" %") {
        (percent.parse::<f64>(), None)
    } else {
        (text.parse::<f64>(), None)
    };
    let shown = shown.unwrap_or_else(|_| panic!("{what} shows {text:?}, not a number"));
    let value = cell
        .value
        .unwrap_or_else(|| panic!("{what} shows {text:?} without its data-value"));
    if let Some(raw) = raw {
        assert_eq!(
            text.strip_suffix(" ms"),
            Some(raw.as_str()),
            "{what}: {value} s"
        );
    } else {
        let decimals = text
            .split_once('.')
            .map_or(0, |(_, d)| d.trim_end_matches(" %").len() as i32);
        assert!(
            (shown - value).abs() <= 0.5 * 10f64.powi(-decimals) + 1e-9,
            "{what} shows {text:?} for {value}"
        );
    }
    Some(shown)
}

/// Asserts `shown` lies between the API's `before` and `after` (either
/// order), widened by `slack`.
fn between(what: &str, shown: f64, before: f64, after: f64, slack: f64) {
    let (low, high) = (before.min(after), before.max(after));
    assert!(
        low - slack <= shown && shown <= high + slack,
        "{what}: the page shows {shown}, the API read {before} before and {after} after"
    );
}

/// The count the page shows in `(table, row, field)`, which only grows,
/// lies between the API's `earlier` and `latest` figures (objects with
/// `field`; missing is 0).
fn count_between(
    page: &Page,
    (table, key, field): (&str, &str, &str),
    earlier: &Value,
    latest: &Value,
) -> f64 {
    let what = format!("{field} of the row {key} of {table}");
    let shown = number(page.cell(table, key, field), &what).expect("a count");
    let figure = |figures: &Value| figures[field].as_f64().unwrap_or(0.0);
    between(&what, shown, figure(earlier), figure(latest), 0.0);
    shown
}

/// The numbers of the first page load against two API reads around it.
fn check_figures(page: &Page, before: &Reading, after: &Reading) {
    // Health score, 4 decimals at most.
    let score = number(&page.score, "the health score").expect("a health score");
    let score_of = |reading: &Reading| reading.health["score"].as_f64().expect("a score");
    between(
        "the health score",
        score,
        score_of(before),
        score_of(after),
        1e-4,
    );

    // Functions: calls and errors only grow, so they lie between the
    // reads. The database query's p95 (one lognormal latency, so a
    // stable percentile, unlike the cached loads' mix of hits and misses)
    // moves a little within its window.
    let functions = page.rows("functions");
    assert!(!functions.is_empty(), "no function rows: {page:#?}");
    for key in functions.keys() {
        let latest = after
            .function(key)
            .unwrap_or_else(|| panic!("the page shows {key}, the API does not"));
        let earlier = before.function(key).unwrap_or(&Value::Null);
        for field in ["calls", "errors"] {
            count_between(page, ("functions", key, field), earlier, latest);
        }
    }
    let key = functions
        .keys()
        .find(|key| key.ends_with("::query_db"))
        .unwrap_or_else(|| panic!("no query_db row: {page:#?}"))
        .clone();
    let what = format!("p95 of {key}");
    let p95 = number(page.cell("functions", &key, "p95"), &what).expect("a p95");
    let p95_of = |reading: &Reading| {
        reading
            .function(&key)
            .and_then(|f| f["p95"].as_f64())
            .unwrap_or(p95)
    };
    let (first, last) = (p95_of(before), p95_of(after));
    between(&what, p95, first, last, 0.25 * first.max(last) + 5e-6);
    println!("{what}: the page {p95}, the API {first} before and {last} after");
    for field in ["p50", "p99"] {
        number(
            page.cell("functions", &key, field),
            &format!("{field} of {key}"),
        );
    }

    // Caches: hits and misses between the reads, and the hit rate the
    // page shows is the one of the hits and misses it shows.
    let mut rows: Vec<(String, &Value, &Value)> =
        vec![("all caches".to_owned(), &before.caches, &after.caches)];
    for (name, figures) in after.caches["caches"].as_object().into_iter().flatten() {
        rows.push((name.clone(), &before.caches["caches"][name], figures));
    }
    assert!(rows.len() > 1, "the example registers its market cache");
    for (key, earlier, latest) in rows {
        let count = |field| count_between(page, ("caches", &key, field), earlier, latest);
        let (hits, misses) = (count("hits"), count("misses"));
        let what = format!("hit rate of the cache row {key}");
        let rate = number(page.cell("caches", &key, "hit_rate"), &what).expect("a hit rate");
        let expected = 100.0 * hits / (hits + misses).max(1.0);
        assert!(
            (rate - expected).abs() <= 0.05 + 1e-9,
            "{what}: {rate} % shown for {hits} hits and {misses} misses"
        );
    }

    // Alerts: what the page lists, the API listed too, and the counts by
    // severity are the page's own rows.
    let names = page.alert_names();
    let api_names: BTreeSet<String> = before
        .alert_names()
        .union(&after.alert_names())
        .cloned()
        .collect();
    assert!(
        names.is_subset(&api_names),
        "the page lists alerts {names:?}, the API {api_names:?}"
    );
    check_alert_counts(page);
}

/// The firing count shown for each severity is the number of alert rows
/// of that severity.
fn check_alert_counts(page: &Page) {
    for severity in ["critical", "high", "medium", "low"] {
        let rows = page
            .rows("alerts")
            .values()
            .filter(|row| row.get("severity").is_some_and(|s| s.text == severity))
            .count();
        let what = format!("firing {severity} alerts");
        let shown = number(page.cell("alert-counts", severity, "firing"), &what);
        assert_eq!(shown, Some(rows as f64), "{what}: {page:#?}");
    }
}

/// chromedriver's own commands beyond WebDriver's, on the session of
/// `browser`: `POST /session/{id}/{command}` with `body`, its `value`.
async fn chromedriver(port: u16, browser: &Client, command: &str, body: Value) -> Value {
    let session = browser
        .session_id()
        .await
        .ok()
        .flatten()
        .expect("a WebDriver session");
    let url = format!("http://127.0.0.1:{port}/session/{session}/{command}");
    let mut answer: Value = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|error| panic!("POST {url}: {error}"))
        .json()
        .await
        .unwrap_or_else(|error| panic!("POST {url}: {error}"));
    answer["value"].take()
}

/// Chromium's console messages so far, as `(source, message)`.
async fn console(port: u16, browser: &Client) -> Vec<(String, String)> {
    let log = chromedriver(port, browser, "se/log", json!({"type": "browser"})).await;
    log.as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let text = |field: &str| entry[field].as_str().unwrap_or_default().to_owned();
            (text("source"), text("message"))
        })
        .collect()
}

/// Polls `read` (every 100 ms, at most `within`) until `done` holds for
/// the page; returns the page that satisfied it.
async fn wait_for_page(
    browser: &Client,
    within: Duration,
    what: &str,
    done: impl Fn(&Page) -> bool,
) -> Page {
    let deadline = Instant::now() + within;
    loop {
        let page = read_page(browser).await;
        if done(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; the page shows {page:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything the browser is asked, with the example already answering.
async fn drive(browser: Client, api: Api, chromedriver_port: u16) {
    let base = api.base.clone();
    browser
        .goto(&format!("{base}/status"))
        .await
        .expect("the browser opens /status");
    assert_eq!(browser.title().await.expect("a title"), "Service status");

    // With a token set the page comes without figures and asks for it.
    let asked = read_page(&browser).await;
    assert_eq!(asked.loaded, "false", "figures without a token: {asked:#?}");
    assert!(asked.rows("functions").is_empty(), "{asked:#?}");
    browser
        .execute("window.vigilStatusTest = 'same document';", Vec::new())
        .await
        .expect("the marker is set");

    let before = api.read().await;
    assert!(
        before
            .alert_names()
            .iter()
            .all(|name| HOST_ALERTS.contains(&name.as_str())),
        "the degradation's alerts fire already: the page is not read before the degradation \
         ({:?})",
        before.alert_names()
    );
    let field = browser
        .find(Locator::Id("token"))
        .await
        .expect("the token field");
    assert!(
        field.is_displayed().await.expect("the field's visibility"),
        "the page asks for the token"
    );
    field.send_keys(TOKEN).await.expect("the token is typed");
    browser
        .find(Locator::Css("#token-form button[type=submit]"))
        .await
        .expect("the token form's button")
        .click()
        .await
        .expect("the token is submitted");
    let first = wait_for_page(
        &browser,
        Duration::from_secs(10),
        "the first refresh",
        |page| page.loaded == "true" || page.refreshed.starts_with("Refresh failed"),
    )
    .await;
    let after = api.read().await;
    assert!(
        first.refreshed.starts_with("Refreshed at "),
        "the refresh failed: {}",
        first.refreshed
    );
    let stored = browser
        .execute(
            "return sessionStorage.getItem('vigil-status-token');",
            Vec::new(),
        )
        .await
        .expect("sessionStorage is readable");
    assert_eq!(stored, json!(TOKEN), "the token is kept in the tab");
    check_figures(&first, &before, &after);
    println!(
        "first refresh: {}; score {} (API {} before, {} after); alerts {:?}",
        first.refreshed,
        first.score.text,
        before.health["score"],
        after.health["score"],
        first.alert_names()
    );

    // The degradation fires the latency, error-rate and cache alerts; the
    // page's next refresh (every 10 s) shows them without a reload.
    let known = first.alert_names();
    let fired = wait_for_page(
        &browser,
        Duration::from_secs(30),
        "a firing alert of the degradation on the page",
        |page| !page.alert_names().is_subset(&known),
    )
    .await;
    let firing = api.data("alerts").await;
    println!(
        "{}; alerts {:?}, the API's {:?}",
        fired.refreshed,
        fired.alert_names(),
        alert_names(&firing)
    );
    let api_names = alert_names(&firing);
    let appeared: BTreeSet<String> = fired.alert_names().difference(&known).cloned().collect();
    assert!(
        appeared.iter().any(|name| api_names.contains(name)),
        "the page shows {appeared:?} firing, the API {api_names:?}"
    );
    assert_eq!(
        fired.marker,
        json!("same document"),
        "the page was reloaded instead of refreshed"
    );
    assert_ne!(fired.refreshed, first.refreshed, "{fired:#?}");
    check_alert_counts(&fired);
    let url = browser.current_url().await.expect("the page's URL");
    assert_eq!(url.as_str(), format!("{base}/status"));

    // No script error in the console (the 401 of the first load and a
    // missing favicon are network messages, not script errors).
    let messages = console(chromedriver_port, &browser).await;
    println!("console: {messages:#?}");
    let errors: Vec<(String, String)> = messages
        .into_iter()
        .filter(|(source, _)| source != "network")
        .collect();
    assert!(errors.is_empty(), "console messages: {errors:#?}");

    // Behind a proxy that adds the token, the page comes with its figures
    // and refreshes itself without asking for the token.
    browser
        .execute("sessionStorage.clear();", Vec::new())
        .await
        .expect("sessionStorage is cleared");
    for (cmd, params) in [
        ("Network.enable", json!({})),
        (
            "Network.setExtraHTTPHeaders",
            json!({"headers": {"Authorization": format!("Bearer {TOKEN}")}}),
        ),
    ] {
        let body = json!({"cmd": cmd, "params": params});
        chromedriver(chromedriver_port, &browser, "goog/cdp/execute", body).await;
    }
    browser
        .goto(&format!("{base}/status"))
        .await
        .expect("the browser opens /status again");
    let proxied = wait_for_page(
        &browser,
        Duration::from_secs(10),
        "the refresh of the page served with its figures",
        |page| page.refreshed.starts_with("Refresh"),
    )
    .await;
    assert_eq!(proxied.loaded, "true", "{proxied:#?}");
    assert!(
        proxied.refreshed.starts_with("Refreshed at "),
        "{}",
        proxied.refreshed
    );
    assert!(!proxied.rows("functions").is_empty(), "{proxied:#?}");
    let form = browser
        .find(Locator::Id("token-form"))
        .await
        .expect("the token form");
    assert!(
        !form.is_displayed().await.expect("the form's visibility"),
        "the page served with its figures asks for the token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_chromium_shows_the_api_figures_and_a_firing_alert() {
    let chromium =
        on_path("chromium").expect("chromium is missing: install the Debian package chromium");
    let temp = tempfile::tempdir().expect("a temporary directory");

    // The browser first: Chromium starts while the example has not begun
    // its load, so the page is read before the degradation.
    let driver_port = free_port();
    let chromedriver = Running::serve(
        "chromedriver",
        Command::new("chromedriver").arg(format!("--port={driver_port}")),
        temp.path(),
        driver_port,
        "install the Debian package chromium-driver",
    )
    .await;
    let profile = temp.path().join("profile");
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    let browser = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .unwrap_or_else(|error| panic!("no Chromium session: {error}\n{}", chromedriver.output()));

    // The example: 20 s of load, degraded from 6 s to 13 s, then serving.
    let port = free_port();
    let mut service = Running::serve(
        "opinion_market",
        Command::new(example("opinion_market"))
            .args(["--serve", "--duration", "20"])
            .env("PORT", port.to_string())
            .env("VIGIL_API_TOKEN", TOKEN),
        temp.path(),
        port,
        "`cargo test -p vigil-examples` builds it",
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let api = Api {
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client"),
        base: base.clone(),
    };

    // The checks run on their own task, so the browser session is closed
    // (and Chromium quits) whether they pass or not.
    let checks = tokio::spawn(drive(browser.clone(), api, driver_port)).await;
    let _ = browser.close().await;
    if let Err(failure) = checks {
        eprintln!("opinion_market printed:\n{}", service.output());
        std::panic::resume_unwind(failure.into_panic());
    }
    service.assert_running();
    assert!(
        service.output().contains(&base),
        "--serve prints its URL {base}:\n{}",
        service.output()
    );
}
