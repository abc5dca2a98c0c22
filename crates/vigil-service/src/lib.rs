//! The service layer of vigil: what a service's performance dashboard and
//! on-call tooling read besides its own metrics.
//!
//! - [`health`]: a 0-100 health score from latency, errors, CPU, memory,
//!   disk, cache hit ratio and firing alerts, each component's part shown;
//! - [`recommend`]: recommendations backed by evidence (metric, labels,
//!   value, target);
//! - `system` (feature `system`): CPU, memory, disk, network, load and the
//!   standard process metrics, recorded through the `metrics` facade;
//! - `http` (feature `http`): a tower middleware recording requests by
//!   matched route template;
//! - `trace` (feature `tracing`): a `tracing_subscriber::Layer` recording
//!   span durations.
//!
//! Everything records through the [`metrics`](https://docs.rs/metrics)
//! facade or works on plain inputs, so the crate depends on no other vigil
//! crate; `vigil` wires it to its registry.

pub mod health;
#[cfg(feature = "http")]
pub mod http;
pub mod recommend;
#[cfg(feature = "system")]
pub mod system;
#[cfg(feature = "tracing")]
pub mod trace;

mod time;
