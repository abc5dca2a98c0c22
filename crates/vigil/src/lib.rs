//! vigil: instrumentation for Rust services behind one dependency.
//!
//! Time any function with one attribute; the calls, durations and outcomes
//! go through the [`metrics`](https://docs.rs/metrics) facade to whatever
//! recorder the service installed (metric names follow the autometrics
//! specification, so its dashboards and SLO rules work unchanged):
//!
//! ```
//! use vigil::timed;
//!
//! #[timed]
//! fn parse_port(input: &str) -> Result<u16, std::num::ParseIntError> {
//!     input.parse()
//! }
//!
//! #[timed(slow = "250ms", concurrency)]
//! async fn fetch_user(id: u64) -> Option<String> {
//!     Some(format!("user-{id}"))
//! }
//!
//! assert_eq!(parse_port("8080"), Ok(8080)); // function_calls_total{function="parse_port",result="ok"}
//! assert!(parse_port("http").is_err());     // ... result="error"
//!
//! // Blocks, closures and futures without the attribute:
//! let _timer = vigil::Timer::start(vigil::callsite!("warm_up"));
//! let n = vigil::time!("sum", || (1..=10).sum::<u32>());
//! assert_eq!(n, 55);
//! ```
//!
#![cfg_attr(
    feature = "listener",
    doc = r#"
One builder call installs vigil's registry as the `metrics` recorder and
serves it to Prometheus; every view (exposition, JSON summary, alerts)
reads that one registry:

```
let monitor = vigil::Monitor::builder()
    .global_label("service", "checkout")
    .listen("127.0.0.1:0") // GET /metrics; port 0 picks a free port
    .build()?;             // `.install()` makes it the global recorder
vigil::with_local_recorder(&monitor.recorder(), || {
    vigil::metrics::histogram!("db_query_seconds").record(0.004);
});
let p99 = monitor.summary().histograms[0].window.p99;
assert!((p99 - 0.004).abs() < 0.004 * 0.001);
assert!(monitor.render().contains("db_query_seconds_count{service=\"checkout\"} 1"));
# Ok::<(), vigil::Error>(())
```
"#
)]
//!
//! | module | crate | what it does |
//! |---|---|---|
//! | [`timing`] | `vigil-timing` | [`Timer`] guards, timed futures and closures, outcomes, caller tracking |
//! | [`timed`] | `vigil-macros` | the `#[timed]` attribute |
//! | [`histogram`] | `vigil-histogram` | concurrent HDR histograms: sliding windows, percentiles, merge, interchange |
//! | [`cache`] | `vigil-cache` | a tagged cache on `moka`: TTL, LRU/TinyLFU, invalidation by tag, statistics |
//! | [`Monitor`] | `vigil` | the registry: Prometheus exposition, `/metrics`, [`MetricsSummary`] |
//!
//! The metric names and labels are listed in [`timing`] and in
//! `docs/metrics.md`.
//!
//! ## Cargo features
//!
//! All but `axum`, `tracing-layer` and `load` are on by default. Without them
//! (`default-features = false`), vigil is `#[timed]`, [`Timer`],
//! [`time!`](macro@time), [`Timed`] and the [`timing`] module over any
//! `metrics` recorder, with nothing else to build: no registry, HTTP
//! server, async runtime, cache or alert engine.
//!
//! | feature | what it adds | what it pulls in |
//! |---|---|---|
//! | `registry` | [`Monitor`], `MonitorBuilder`, `Recorder`, the text exposition, `MetricsSummary`, the `histogram` module | `vigil-histogram`, `metrics-util`, `metrics-exporter-prometheus` (its matchers), `serde`, `serde_json` |
//! | `listener` | `GET /metrics` in text or protobuf (native histograms) (`MonitorBuilder::listen`), `MonitorBuilder::build_tasks`; implies `registry` | `hyper`, `hyper-util`, `tokio`, `ipnet`, `prost` |
//! | `cache` | the `cache` module and `#[cached]` | `vigil-cache` (`moka`) |
//! | `redis` (off by default) | the cache's second level in Redis, shared by replicas (`CacheBuilder::redis`, `#[cached(redis = ..)]`); implies `cache` | `redis` (tokio), `postcard` |
//! | `alerts` | alert rules evaluated against the registry (`MonitorBuilder::alerts`), the `alert` module; implies `registry` | `vigil-alert`'s core, `tokio` |
//! | `alert-config` | rule files in YAML and TOML (`alert::config`) | `serde_yaml_ng`, `toml` |
//! | `alert-delivery` | Alertmanager delivery (`MonitorBuilder::alertmanager`), webhook and Slack notifiers | `reqwest` with rustls |
//! | `alert-email` (off by default) | the email notifier (`alert::notify::EmailNotifier`, SMTP); implies `alert-delivery` | `lettre` with rustls |
//! | `alert-routing` | local routing, grouping, silences, inhibition, escalation, `MonitorBuilder::notifier` | none beyond `alerts` |
//! | `rulesets` | the ready-made rule sets (`alert::rulesets`) | none beyond `alerts` |
//! | `prometheus-rules` | export of the rules as a Prometheus rule file | `serde_yaml_ng` |
//! | `service` | the `service` module: `Monitor::health`, `recommendations`, `cache_report`, `clear_caches`, `readiness`, registered caches and readiness checks; implies `registry` | `vigil-service`, `tokio`, `subtle`, `jiff` |
//! | `system-metrics` | `system_*` and `process_*` metrics (`MonitorBuilder::system_metrics`), `Monitor::system_usage`; implies `service` | `sysinfo` |
//! | `axum` (off by default) | `Monitor::router` (the performance API, `/health*`) and `Monitor::http_layer`; implies `service` | `axum`, `tower`, `tower-http`, `http`, `tokio` |
//! | `tracing-layer` (off by default) | a `tracing_subscriber::Layer` recording span durations; implies `service` | `tracing-subscriber` |
//! | `load` (off by default) | the `load` module: load and stress tests, benchmarks, KPI comparison | `vigil-load`, `tokio`, `reqwest` with rustls |

#![forbid(unsafe_code)]
// Doctests fail on any warning: an example that drops a future unawaited,
// or leaves a `Result` unused, does not compile. This covers the examples
// of the READMEs and `docs/` included below.
#![doc(test(attr(deny(warnings))))]

/// Timing: [`Timer`] guards, [`Timed`] futures, [`time()`] for closures,
/// [`Outcome`] and static [`CallSite`]s (the crate `vigil-timing`).
pub mod timing {
    #[doc(inline)]
    pub use vigil_timing::*;
}

#[cfg(feature = "registry")]
mod activity;
#[cfg(feature = "alerts")]
mod alerting;
#[cfg(feature = "axum")]
mod api;
#[cfg(feature = "registry")]
mod builder;
#[cfg(feature = "registry")]
mod error;
#[cfg(feature = "listener")]
mod http;
#[cfg(feature = "registry")]
mod monitor;
#[cfg(feature = "listener")]
mod protobuf;
#[cfg(feature = "registry")]
mod recorder;
#[cfg(feature = "registry")]
mod registry;
#[cfg(feature = "registry")]
mod render;
#[cfg(feature = "registry")]
mod sanitize;
#[cfg(feature = "alerts")]
mod source;
#[cfg(feature = "registry")]
mod storage;
#[cfg(feature = "registry")]
mod summary;
#[cfg(any(feature = "listener", feature = "alerts"))]
mod tasks;

/// The service layer: health score, recommendations, system metrics,
/// registered caches and readiness checks, read from the one registry
/// (the crate `vigil-service`, wired to the [`Monitor`]).
#[cfg(feature = "service")]
pub mod service;

/// Alerts: threshold [`Rule`](alert::Rule)s, the [`Engine`](alert::Engine)
/// state machine, grouping, silences, escalation, history, notifiers and
/// Prometheus rule export (the crate `vigil-alert`; what it holds depends
/// on the `alert-*` features).
#[cfg(feature = "alerts")]
pub mod alert {
    #[doc(inline)]
    pub use vigil_alert::*;
}

/// A tagged TTL/LRU/TinyLFU cache on `moka`: bulk invalidation by tag,
/// statistics, warming (the crate `vigil-cache`).
#[cfg(feature = "cache")]
pub mod cache {
    #[doc(inline)]
    pub use vigil_cache::*;
}

/// Load tests (closed and open loop, coordinated-omission correct),
/// stress steps, async benchmarks and KPI comparison with baselines (the
/// crate `vigil-load`).
#[cfg(feature = "load")]
pub mod load {
    #[doc(inline)]
    pub use vigil_load::*;
}

/// HDR percentiles: the concurrent, windowed [`Histogram`](histogram::Histogram),
/// [`Snapshot`](histogram::Snapshot), [`Summary`],
/// interchange and the [`bench`](histogram::bench) helper (the crate
/// `vigil-histogram`).
#[cfg(feature = "registry")]
pub mod histogram {
    #[doc(inline)]
    pub use vigil_histogram::*;
}

#[cfg(feature = "axum")]
pub use api::RouterOptions;
#[cfg(feature = "registry")]
pub use builder::{DEFAULT_BUCKETS, DEFAULT_MAX_SERIES, DEFAULT_QUANTILES, MonitorBuilder};
#[cfg(feature = "registry")]
pub use error::Error;
#[cfg(feature = "registry")]
pub use monitor::Monitor;
#[cfg(feature = "registry")]
pub use recorder::Recorder;
#[cfg(feature = "registry")]
pub use registry::{OVERFLOW_LABEL, SERIES_DROPPED_TOTAL};
#[cfg(feature = "registry")]
pub use render::VALUES_REJECTED_TOTAL;
#[cfg(feature = "registry")]
pub use sanitize::SERIES_REJECTED_TOTAL;
#[cfg(feature = "registry")]
pub use summary::{CounterSummary, GaugeSummary, HistogramSummary, Labels, MetricsSummary};
#[cfg(any(feature = "listener", feature = "alerts"))]
pub use tasks::{Task, Tasks};
#[cfg(feature = "registry")]
#[doc(inline)]
pub use vigil_histogram::{Summary, Window};

/// Name matchers for per-metric settings (re-exported from
/// `metrics-exporter-prometheus`): `Full`, `Prefix` or `Suffix`.
#[cfg(feature = "registry")]
pub use metrics_exporter_prometheus::Matcher;

/// The `metrics` facade vigil records through, re-exported so one
/// dependency is enough for `metrics::counter!` and friends.
pub use metrics;

#[cfg(feature = "cache")]
#[doc(inline)]
pub use vigil_macros::cached;
#[doc(inline)]
pub use vigil_macros::timed;
#[doc(inline)]
pub use vigil_timing::{BuildInfo, build_info, objectives, service_name};
#[doc(inline)]
pub use vigil_timing::{
    CallSite, Outcome, Timed, TimedExt, Timer, TimerKey, TimerTable, callsite, current_call_site,
    time, time_with, with_local_recorder,
};

/// Every Rust code block of the workspace README, the crate READMEs and
/// `docs/`, compiled and run as doctests of this crate (which depends on
/// every other), under the `deny(warnings)` above. Blocks in another
/// language carry its tag (`text`, `yaml`, `toml`, `json`, `sh`), which
/// rustdoc skips; an untagged block is Rust to rustdoc. They use every
/// feature, so they run when all are on (the default).
#[cfg(all(
    doctest,
    feature = "listener",
    feature = "cache",
    feature = "system-metrics",
    feature = "alert-config",
    feature = "alert-delivery",
    feature = "alert-routing",
    feature = "rulesets",
    feature = "prometheus-rules"
))]
mod markdown_examples {
    #[doc = include_str!("../../../README.md")]
    struct WorkspaceReadme;
    #[doc = include_str!("../../../docs/alert-rules.md")]
    struct AlertRules;
    #[doc = include_str!("../../../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../../../docs/metrics.md")]
    struct Metrics;
    #[cfg(feature = "service")]
    #[doc = include_str!("../../../docs/health.md")]
    struct Health;
    #[doc = include_str!("../README.md")]
    struct VigilReadme;
    #[doc = include_str!("../../vigil-cache/README.md")]
    struct CacheReadme;
    #[cfg(feature = "redis")]
    #[doc = include_str!("../../../docs/cache.md")]
    struct CacheLevels;
    #[doc = include_str!("../../vigil-histogram/README.md")]
    struct HistogramReadme;
    #[doc = include_str!("../../vigil-macros/README.md")]
    struct MacrosReadme;
    #[doc = include_str!("../../vigil-timing/README.md")]
    struct TimingReadme;
    // vigil-alert's README runs as that crate's doctest (its examples
    // use vigil-alert's own features in `cfg`s).
}

/// `docs/http-api.md`'s Rust blocks, which need the opt-in `axum` feature.
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "cache",
    feature = "system-metrics"
))]
#[doc = include_str!("../../../docs/http-api.md")]
struct HttpApi;
