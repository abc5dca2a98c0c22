//! The service layer of vigil: what a service's performance dashboard and
//! on-call tooling read besides its own metrics.
//!
//! - [`health`]: a 0-100 health score from latency, errors, CPU, memory,
//!   disk, cache hit ratio and firing alerts, each component's part shown
//!   ([`health::assess`]);
//! - [`recommend`]: recommendations backed by evidence (metric, labels,
//!   value, target) ([`recommend::recommend`]);
//! - `system` (feature `system`): CPU, memory, disk, network, load and the
//!   standard process metrics, recorded through the `metrics` facade;
//! - `http` (feature `http`): a tower middleware recording requests by
//!   matched route template;
//! - `trace` (feature `tracing`): a `tracing_subscriber::Layer` recording
//!   span durations.
//!
//! Everything records through the [`metrics`](https://docs.rs/metrics)
//! facade or works on plain inputs, so the crate depends on no other vigil
//! crate; `vigil` wires it to its registry. The score formula and the
//! recommendation rules are described in `docs/health.md`.
//!
//! ```
//! use std::time::SystemTime;
//! use vigil_service::health::{HealthInputs, HealthStatus, HealthTargets, assess};
//! use vigil_service::recommend::{CacheUsage, Priority, RecommendInputs, recommend};
//!
//! let targets = HealthTargets::default();
//! let health = assess(
//!     &HealthInputs {
//!         p95_seconds: Some(3.0), // halfway from 1 s to 5 s: 12.5 of 25 points
//!         cache_hit_ratio: Some(0.4),
//!         cache_requests: 1_000, // below the critical 50 %: all 10 points
//!         ..HealthInputs::default()
//!     },
//!     &targets,
//! );
//! assert_eq!(health.score, 77.5);
//! assert_eq!(health.status, HealthStatus::Degraded);
//!
//! let advice = recommend(
//!     &RecommendInputs {
//!         caches: vec![CacheUsage { name: "markets".into(), hits: 400, misses: 600 }],
//!         ..RecommendInputs::default()
//!     },
//!     &targets,
//!     SystemTime::now(),
//! );
//! assert_eq!(advice[0].priority, Priority::High);
//! assert_eq!(advice[0].evidence[0].labels["cache"], "markets");
//! ```

#![forbid(unsafe_code)]

pub mod health;
#[cfg(feature = "http")]
pub mod http;
pub mod recommend;
#[cfg(feature = "system")]
pub mod system;
#[cfg(feature = "tracing")]
pub mod trace;

pub mod time;

/// The README's examples are doctests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
