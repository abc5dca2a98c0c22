//! End to end: `opinion_market --serve --external-load` scraped by a real
//! Prometheus (native histograms) and sending its alerts to a real
//! Alertmanager, driven by `vigil::load` in an open loop. What the load
//! generator measured must be what Prometheus stored:
//!
//! - requests and 5xx answers: equal, exactly (every request the load
//!   generator counts completed, so the server counted it too);
//! - the request rate over the last 8 s of the load: within 15 % (scrape
//!   timing: a 1 s scrape interval moves an 8 s window's edges by up to a
//!   second);
//! - the p95 latency over the whole run: within 10 % plus 5 ms (the native
//!   histogram's bucket width, plus what the client adds to the server's
//!   time: the loopback round trip and the wait from the scheduled start);
//!
//! and the degradation's error-rate alert must reach Alertmanager while
//! the database fails and leave it (resolved) after the recovery.
//!
//! Needs Debian's `prometheus` and `prometheus-alertmanager` packages
//! (scripts/test installs them); fails naming them when they are missing.

#[path = "../../crates/vigil/tests/servers/mod.rs"]
mod servers;

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use servers::alertmanager::Alertmanager;
use servers::{Prometheus, free_port};
use vigil::load::{LoadTest, RequestOutcome};

/// How long the example's schedule runs: degraded from 30 % to 65 %.
const DURATION: Duration = Duration::from_secs(16);
/// The open loop's rate.
const RATE: f64 = 40.0;
/// The service's own routes (vigil's, `/metrics` and `/status` excluded).
const ROUTES: &str = r#"route=~"/api/v1/(markets|users)/.*""#;
/// The alert the database's failures fire.
const ALERT: &str = "HighErrorRate";

/// The example binary `name`, built by `cargo test -p vigil-examples`
/// next to this test.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the target directory");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The example's process, killed when the test ends.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a thread watching Alertmanager saw of [`ALERT`]: when it was
/// first and last listed as active.
#[derive(Default, Debug)]
struct Seen {
    first: Option<Instant>,
    last: Option<Instant>,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_load_generator_measured_is_what_prometheus_stored() {
    let port = free_port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
    let am = Arc::new(Alertmanager::start());
    // Prometheus first, so it scrapes from the service's first second.
    let prometheus = Prometheus::start_with(&[address], &["--enable-feature=native-histograms"]);

    let child = Command::new(example("opinion_market"))
        .args(["--serve", "--external-load", "--duration"])
        .arg(DURATION.as_secs().to_string())
        .env("PORT", port.to_string())
        .env("ALERTMANAGER_URL", am.url(""))
        .env("VIGIL_API_TOKEN", "end-to-end")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("opinion_market starts");
    let _service = Service(child);
    let started = Instant::now();
    while TcpStream::connect(address).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "opinion_market did not listen on {address} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Watch Alertmanager while the load runs.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (am, seen, done) = (Arc::clone(&am), Arc::clone(&seen), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let active = am
                    .alerts(ALERT)
                    .iter()
                    .any(|alert| alert["status"]["state"] == "active");
                if active {
                    let mut seen = seen.lock().expect("not poisoned");
                    seen.first.get_or_insert_with(Instant::now);
                    seen.last = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // The load: market pages, odds and portfolios in turn, open loop.
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let target = move || {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let path = match n % 4 {
            0 | 1 => format!("/api/v1/markets/{}", n % 60 + 1),
            2 => format!("/api/v1/markets/{}/odds", n % 90 + 1),
            _ => format!("/api/v1/users/{}/portfolio", n % 500),
        };
        let request = client.get(format!("http://{address}{path}")).send();
        async move {
            match request.await {
                Ok(response) => RequestOutcome::status(response.status().as_u16()),
                Err(_) => RequestOutcome::failed(),
            }
        }
    };
    let load_started = now_unix();
    let report = LoadTest::new(target)
        .name("opinion_market")
        .rate(RATE)
        .duration(DURATION)
        .timeout(Duration::from_secs(10))
        .grace(Duration::from_secs(10))
        .run()
        .await
        .expect("the load runs");
    let load_ended = load_started + report.duration.as_secs_f64();
    eprintln!("{report}");
    assert_eq!(report.unfinished, 0, "every request completed: {report}");
    assert_eq!(report.timeouts, 0, "no request timed out: {report}");
    assert_eq!(
        report.statuses.values().sum::<u64>(),
        report.requests,
        "every request got an answer: {report}"
    );
    assert!(
        report.errors > 0,
        "the degradation failed requests: {report}"
    );

    // Counts: exact, once Prometheus scraped after the last request.
    let requests = format!("sum(http_server_requests_total{{{ROUTES}}})");
    prometheus.wait_for("up to date with the load", |p| {
        p.query_one(&requests) == Some(report.requests as f64)
    });
    let errors = prometheus
        .query_one(&format!(
            r#"sum(http_server_requests_total{{{ROUTES},status=~"5.."}})"#
        ))
        .expect("5xx answers are stored");
    assert_eq!(errors, report.errors as f64, "5xx answers");

    // Rate over the load's last 8 s.
    let rate = prometheus
        .query_one_at(
            &format!("sum(rate(http_server_requests_total{{{ROUTES}}}[8s]))"),
            Some(load_ended),
        )
        .expect("a rate");
    assert!(
        (rate - report.rate).abs() <= 0.15 * report.rate,
        "Prometheus's rate {rate:.1}/s, the load generator's {:.1}/s",
        report.rate
    );

    // p95 of the whole run, from the native histograms.
    let p95 = prometheus
        .query_one(&format!(
            "histogram_quantile(0.95, sum(http_server_request_duration_seconds{{{ROUTES}}}))"
        ))
        .expect("a p95 from the native histograms");
    let measured = report.latency(0.95).as_secs_f64();
    assert!(
        (p95 - measured).abs() <= 0.10 * measured + 0.005,
        "Prometheus's p95 {:.1} ms, the load generator's {:.1} ms",
        p95 * 1e3,
        measured * 1e3
    );

    // The alert: active in Alertmanager during the degradation, then
    // resolved (no longer listed).
    let resolved = am.wait_for(ALERT, "the error-rate alert resolved", |alerts| {
        alerts.is_empty()
    });
    done.store(true, Ordering::Relaxed);
    watcher.join().expect("the watcher ends");
    let seen = seen.lock().expect("not poisoned");
    let (Some(first), Some(last)) = (seen.first, seen.last) else {
        panic!("{ALERT} never reached Alertmanager; it lists {resolved:?}");
    };
    eprintln!(
        "{requests} = {}, 5xx = {errors}, rate {rate:.1}/s vs {:.1}/s, p95 {:.1} ms vs {:.1} ms; \
         {ALERT} active in Alertmanager from {:.1} s to {:.1} s of the load",
        report.requests,
        report.rate,
        p95 * 1e3,
        measured * 1e3,
        (first - started).as_secs_f64(),
        (last - started).as_secs_f64()
    );
}
