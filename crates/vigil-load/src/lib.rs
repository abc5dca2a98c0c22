//! Load tests, stress tests, async benchmarks and comparison with
//! baselines, with latency in vigil's HDR histograms.
//!
//! - [`LoadTest`]: a [`Target`] (any closure returning a future of a
//!   `Result` or an HTTP status, or a URL with [`HttpTarget`]) under
//!   - a **closed loop** of virtual users: [`users`](LoadTest::users)
//!     with a [`ramp_up`](LoadTest::ramp_up), or
//!     [`stages`](LoadTest::stages) ramping linearly between user counts,
//!     each user sending a request, waiting for it and for the
//!     [`think_time`](LoadTest::think_time), and repeating;
//!   - an **open loop** at a target [`rate`](LoadTest::rate) (or
//!     [`rate_stages`](LoadTest::rate_stages)): requests start on the
//!     schedule whether or not earlier ones completed, and their latency
//!     counts from the *scheduled* start, so a stall shows in every
//!     request that waited for it (no coordinated omission);
//!   - a **stress test**, [`step`](LoadTest::step): users stepped up until
//!     the error rate crosses the limit (5 %), reporting the breaking
//!     point;
//!
//!   stopped by its duration, an
//!   [`error_rate_limit`](LoadTest::error_rate_limit) over a sliding
//!   window, or [`max_requests`](LoadTest::max_requests). The
//!   [`LoadReport`] has requests (every one the load owed: unfinished
//!   and dropped ones count as errors), errors, error ratio, throughput
//!   and sent rate, p50/p90/p95/p99/p99.9/max/mean/stddev (and, for an
//!   open loop, the latency from the actual send and the scheduler's
//!   lateness), a row per stage or step, and why it stopped, as a
//!   terminal table (`Display`) and JSON (`Serialize`).
//! - [`Bench`]: an async (or sync) call timed over many iterations, with
//!   warm-up: mean, median, p95, p99, min, max, stddev ([`BenchReport`];
//!   mean, extremes and stddev exact).
//! - [`Kpi`] and [`Comparison`]: measured values against baseline, target
//!   and critical levels, judged [`Verdict::Pass`], `Warn` or `Fail`;
//!   [`Stat`] reads them from either report.
//!
//! Time is tokio's (`tokio::time::Instant`, `sleep`): under
//! `#[tokio::test(start_paused = true)]` minutes of load run in
//! milliseconds, deterministically, as in this crate's tests.
//!
//! ```
//! use std::time::Duration;
//! use vigil_load::{Comparison, Kpi, LoadTest, Stat, Verdict};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), vigil_load::Error> {
//! // The service under test: 30 ms per request, one in fifty fails.
//! let calls = std::sync::atomic::AtomicU64::new(0);
//! let service = move || {
//!     let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!     async move {
//!         tokio::time::sleep(Duration::from_millis(30)).await;
//!         if n % 50 == 49 { Err("503 Service Unavailable") } else { Ok(()) }
//!     }
//! };
//!
//! // 10 users reached over 60 s, 300 s in all, stop above 5 % errors.
//! let report = LoadTest::new(service)
//!     .name("api")
//!     .users(10)
//!     .ramp_up(Duration::from_secs(60))
//!     .duration(Duration::from_secs(300))
//!     .think_time(Duration::from_millis(70))
//!     .error_rate_limit(0.05)
//!     .run()
//!     .await?;
//! println!("{report}");
//! assert!((report.error_ratio - 0.02).abs() < 0.001);
//! assert!((report.rate - 90.0).abs() < 1.0); // 10 users x 10 req/s, 5 on average while ramping
//!
//! let mut kpis = Comparison::new();
//! kpis.measure(Kpi::of("api p95", Stat::P95).baseline(50.0).target(40.0).critical(200.0), &report)?;
//! kpis.measure(Kpi::of("error rate", Stat::ErrorRate).target(1.0).critical(5.0), &report)?;
//! println!("{kpis}");
//! assert_eq!(kpis.verdict(), Verdict::Warn); // p95 passes; 2 % errors miss the 1 % target
//! # Ok(())
//! # }
//! ```
//!
//! # Cargo features
//! - `http` (default): [`HttpTarget`], URLs as targets over reqwest with
//!   rustls. A GET or POST with a body; a status of 400 or more is an
//!   error.
//!
//! `docs/load.md` in the repository covers writing a load test, closed
//! and open loops and coordinated omission, reading the report, and
//! comparing with baselines.
#![forbid(unsafe_code)]

// Before the other modules: they use its macro.
#[macro_use]
mod setters;

mod bench;
mod closed;
mod compare;
mod error;
mod format;
#[cfg(feature = "http")]
mod http;
mod load_test;
mod open;
mod profile;
mod report;
mod response;
mod run;
mod stats;
mod window;

pub use bench::{Bench, BenchReport};
pub use compare::{Comparison, Direction, Kpi, KpiResult, Measured, Stat, Verdict};
pub use error::Error;
#[cfg(feature = "http")]
pub use http::HttpTarget;
pub use load_test::{DEFAULT_STEP_ERROR_LIMIT, LoadTest};
pub use profile::StepLoad;
pub use report::{BreakingPoint, LoadReport, Mode, StageReport, StoppedBy};
pub use response::{RequestFuture, RequestOutcome, Response, Target};
/// Latency statistics in seconds, as every vigil histogram reports them.
pub use vigil_histogram::Summary;

/// The README's examples, run as doctests so they stay true.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// `docs/load.md`'s examples, run as doctests.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../../../docs/load.md")]
struct LoadGuideDoctests;
