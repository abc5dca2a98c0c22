//! The router's limits over real HTTP: the request timeout, the
//! concurrency cap, cache clearing off the request workers, and `/metrics`
//! negotiating its format like the listener.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigil::RouterOptions;
use vigil::cache::{CacheAdmin, CacheStats, Cleared};

use super::client::Request;
use super::host::{Host, Options, TOKEN};
use super::{api, clear, conforms, data, error, get, openapi};

/// A registered cache named `slow` whose clearing works synchronously
/// (as a large cache's does) until the test lets it finish: it reports
/// that it started, then waits for the release (10 s at most) and
/// answers one entry cleared.
#[derive(Clone, Debug)]
struct Stalling {
    started: Arc<Mutex<Sender<()>>>,
    release: Arc<Mutex<Receiver<()>>>,
}

impl Stalling {
    /// The cache, the receiver told when a clearing starts and the sender
    /// releasing it.
    fn new() -> (Self, Receiver<()>, Sender<()>) {
        let (started, on_start) = channel();
        let (release, on_release) = channel();
        let cache = Self {
            started: Arc::new(Mutex::new(started)),
            release: Arc::new(Mutex::new(on_release)),
        };
        (cache, on_start, release)
    }

    fn stall(&self) -> u64 {
        let _ = self.started.lock().expect("not poisoned").send(());
        let _ = self
            .release
            .lock()
            .expect("not poisoned")
            .recv_timeout(Duration::from_secs(10));
        1
    }
}

impl CacheAdmin for Stalling {
    fn name(&self) -> Option<&str> {
        Some("slow")
    }
    fn stats(&self) -> CacheStats {
        CacheStats::default()
    }
    fn entry_count(&self) -> u64 {
        0
    }
    fn weighted_size(&self) -> u64 {
        0
    }
    fn max_capacity(&self) -> Option<u64> {
        None
    }
    fn weighed(&self) -> bool {
        false
    }
    fn clear_tags<'a>(&'a self, _: &'a [String]) -> Cleared<'a> {
        Box::pin(async move { self.stall() })
    }
    fn clear_all(&self) -> Cleared<'_> {
        Box::pin(async move { self.stall() })
    }
    fn clone_admin(&self) -> Arc<dyn CacheAdmin> {
        Arc::new(self.clone())
    }
}

/// A host with the `slow` cache, `options` otherwise; the receiver is
/// told when a clearing starts, the sender releases it.
fn stalling_host(options: Options) -> (Host, Receiver<()>, Sender<()>) {
    let (cache, started, release) = Stalling::new();
    let host = Host::start_with(options, |builder| builder.cache("slow", &cache));
    (host, started, release)
}

/// Starts `POST cache/clear {"cache": "slow"}` on its own thread and
/// returns once the clearing runs.
fn clear_slow(host: &Host, started: &Receiver<()>) -> std::thread::JoinHandle<u64> {
    let address = host.address;
    let clearing = std::thread::spawn(move || {
        let answer = Request::post_json(&api("cache/clear"), r#"{"cache": "slow"}"#)
            .bearer(TOKEN)
            .send(address);
        data(&answer)["cleared"].as_u64().unwrap_or(0)
    });
    started
        .recv_timeout(Duration::from_secs(10))
        .expect("the clearing started");
    clearing
}

#[test]
fn clearing_a_cache_leaves_the_request_workers_free() {
    // One worker thread: were the clearing run on it, nothing else would
    // be answered until it finished.
    let (host, started, release) = stalling_host(Options {
        workers: 1,
        ..Options::default()
    });
    let clearing = clear_slow(&host, &started);
    let (answered, on_answer) = channel();
    let address = host.address;
    std::thread::spawn(move || {
        let _ = answered.send(Request::get("/health/live").send(address).status);
    });
    let live = on_answer.recv_timeout(Duration::from_secs(5));
    release.send(()).expect("the clearing waits");
    assert_eq!(
        live,
        Ok(200),
        "/health/live waited for a cache clearing to finish"
    );
    assert_eq!(clearing.join().expect("the clear answered"), 1);
}

#[test]
fn beyond_the_concurrency_cap_requests_are_503_at_once_and_the_probes_still_answer() {
    let (host, started, release) = stalling_host(Options {
        router: RouterOptions::default().max_concurrency(1),
        ..Options::default()
    });
    let clearing = clear_slow(&host, &started);
    let spec = openapi::OpenApi::load();
    for path in [api("metrics/summary"), "/metrics".to_owned()] {
        let refused = get(&host, &path);
        let failure = error(&refused, 503);
        assert_eq!(failure["code"], "overloaded", "{path}");
        assert_eq!(refused.header("retry-after"), Some("1"), "{path}");
        conforms(&spec, "GET", &path, &refused);
    }
    for probe in ["/health/live", "/health/ready"] {
        assert_eq!(Request::get(probe).send(host.address).status, 200);
    }
    release.send(()).expect("the clearing waits");
    assert_eq!(clearing.join().expect("the clear answered"), 1);
    // The permit is back.
    data(&get(&host, &api("metrics/summary")));
    assert_eq!(get(&host, "/metrics").status, 200);
}

#[test]
fn a_request_whose_body_never_arrives_is_408_after_the_timeout() {
    let host = Host::start(Options {
        router: RouterOptions::default().timeout(Duration::from_millis(300)),
        ..Options::default()
    });
    // Headers announcing a body that is never sent.
    let answer = Request::new("POST", &api("cache/clear"))
        .bearer(TOKEN)
        .header("Content-Type", "application/json")
        .header("Content-Length", "100")
        .send(host.address);
    let failure = error(&answer, 408);
    assert_eq!(failure["code"], "request_timeout");
    conforms(
        &openapi::OpenApi::load(),
        "POST",
        &api("cache/clear"),
        &answer,
    );
    assert_eq!(
        failure["message"], "the request took longer than 300ms",
        "{failure}"
    );
    // The router still serves.
    data(&get(&host, &api("health")));
}

#[test]
fn the_body_limit_is_the_routers_and_named_in_the_answer() {
    let host = Host::start(Options {
        router: RouterOptions::default().body_limit(100),
        ..Options::default()
    });
    let long = format!(r#"{{"tags": ["{}"]}}"#, "x".repeat(200));
    let failure = error(&clear(&host, &long), 413);
    assert_eq!(failure["code"], "payload_too_large");
    data(&clear(&host, r#"{"tags": ["x"]}"#));
}

#[test]
fn metrics_negotiates_protobuf_with_native_histograms_like_the_listener() {
    /// What Prometheus 2.42 sends with `--enable-feature=native-histograms`.
    const PROMETHEUS_NATIVE: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let host = Host::start(Options::default());
    assert_eq!(Request::get("/markets/1").send(host.address).status, 200);
    let native = Request::get("/metrics")
        .header("Accept", PROMETHEUS_NATIVE)
        .send(host.address);
    assert_eq!(native.status, 200);
    assert_eq!(
        native.header("content-type"),
        Some(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        )
    );
    assert_eq!(native.header("vary"), Some("Accept"));
    let name = b"http_server_requests_total";
    assert!(
        native.body.windows(name.len()).any(|window| window == name),
        "the protobuf exposition names the request counter"
    );
    assert!(!native.text().contains("# TYPE"), "not text");

    let text = Request::get("/metrics").send(host.address);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(text.header("vary"), Some("Accept"));
    assert!(
        text.text()
            .contains("# TYPE http_server_requests_total counter")
    );
}
