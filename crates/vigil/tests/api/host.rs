//! A host service as a team writes it: `/markets/{id}` beside the
//! monitor's router, the monitor's middleware around both, served by axum
//! on a free loopback port on its own tokio runtime (so tests call it with
//! blocking clients). Shared by the API tests and the Prometheus test.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use vigil::alert::notify::TracingNotifier;
use vigil::alert::{Comparison, Engine, Rule, Severity};
use vigil::cache::sync::TaggedCache;
use vigil::{Monitor, MonitorBuilder, RouterOptions};

/// The API token of hosts started with one.
pub const TOKEN: &str = "pa55-W0rd-that-must-not-leak";

/// What the host is started with.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Whether the monitor has the API token [`TOKEN`].
    pub token: bool,
    /// Whether the readiness check `db` passes.
    pub db_up: bool,
    /// The limits `monitor.router_with` is given.
    pub router: RouterOptions,
    /// The tokio runtime's worker threads.
    pub workers: usize,
    /// Whether the monitor collects system metrics (every second).
    pub system_metrics: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            token: true,
            db_up: true,
            router: RouterOptions::default(),
            workers: 2,
            system_metrics: true,
        }
    }
}

/// A running host service.
pub struct Host {
    pub address: SocketAddr,
    pub monitor: Monitor,
    /// Registered as `markets`.
    pub markets: TaggedCache<u64, String>,
    /// Registered as `sessions`.
    pub sessions: TaggedCache<u64, String>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// The host's instrumented lookup: ids above 1000 do not exist.
#[vigil::timed]
fn find_market(id: u64) -> Result<String, String> {
    if id > 1000 {
        Err(format!("no market {id}"))
    } else {
        Ok(format!("market {id}"))
    }
}

/// Three rules: `QueueBacklog` (high) and `ReplicationLag` (critical) fire
/// once [`Host::fire_alerts`] set their gauges; `SlowDisk` (low) never.
fn engine() -> Engine {
    let rule = |name: &str, metric: &str, severity, limit| {
        Rule::builder(name)
            .gauge(metric)
            .threshold(severity, Comparison::Greater, limit)
            .annotation("summary", format!("{metric} above {limit}"))
            .build()
            .expect("a valid rule")
    };
    Engine::builder()
        .rule(rule("QueueBacklog", "queue_depth", Severity::High, 100.0))
        .rule(rule(
            "ReplicationLag",
            "replication_lag_seconds",
            Severity::Critical,
            30.0,
        ))
        .rule(rule("SlowDisk", "disk_latency_seconds", Severity::Low, 1.0))
        .build()
        .expect("a valid engine")
}

impl Host {
    pub fn start(options: Options) -> Self {
        Self::start_with(options, |builder| builder)
    }

    /// [`start`](Self::start), with `extra` adding to the monitor's
    /// builder (more caches, checks).
    pub fn start_with(
        options: Options,
        extra: impl FnOnce(MonitorBuilder) -> MonitorBuilder,
    ) -> Self {
        let markets: TaggedCache<u64, String> = TaggedCache::builder()
            .name("markets")
            .max_capacity(1_000)
            .build();
        let sessions: TaggedCache<u64, String> = TaggedCache::builder()
            .name("sessions")
            .max_capacity(500)
            .build();
        let db_up = options.db_up;
        let mut builder = Monitor::builder();
        if options.system_metrics {
            builder = builder.system_metrics(Duration::from_secs(1));
        }
        builder = builder
            .cache("markets", &markets)
            .cache("sessions", &sessions)
            .readiness_check("db", move || async move {
                if db_up {
                    Ok(())
                } else {
                    Err("connection refused".to_owned())
                }
            })
            .manual_alerts()
            .alerts(engine())
            .notifier("default", TracingNotifier::new());
        if options.token {
            builder = builder.api_token(TOKEN);
        }
        let monitor = extra(builder).build().expect("the monitor builds");

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.workers)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let recorder = monitor.recorder();
        let app = axum::Router::new()
            .route(
                "/markets/{id}",
                get(move |Path(id): Path<u64>| {
                    let recorder = recorder.clone();
                    async move {
                        match vigil::with_local_recorder(&recorder, || find_market(id)) {
                            Ok(market) => (StatusCode::OK, market),
                            Err(error) => (StatusCode::NOT_FOUND, error),
                        }
                    }
                }),
            )
            .merge(monitor.router_with(options.router))
            .layer(monitor.http_layer());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free loopback port");
        let address = listener.local_addr().expect("a bound address");
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            monitor,
            markets,
            sessions,
            runtime: Some(runtime),
        }
    }

    /// Sets the gauges of `QueueBacklog` and `ReplicationLag` above their
    /// limits and evaluates the rules.
    pub fn fire_alerts(&self) {
        vigil::with_local_recorder(&self.monitor.recorder(), || {
            vigil::metrics::gauge!("queue_depth").set(500.0);
            vigil::metrics::gauge!("replication_lag_seconds").set(120.0);
            vigil::metrics::gauge!("disk_latency_seconds").set(0.01);
        });
        self.monitor.evaluate_alerts(SystemTime::now());
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
