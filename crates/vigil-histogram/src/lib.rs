//! Concurrent HDR histograms with sliding windows, percentiles, merge and
//! HdrHistogram interchange.
//!
//! A [`Histogram`] records raw `u64` values (nanoseconds by default) from any
//! number of threads without locks, keeps a ring of interval histograms for
//! sliding [`Window`]s plus a cumulative total, and reads out as a
//! [`Snapshot`] (an `hdrhistogram::Histogram<u64>` plus the exact sum) or a
//! serde [`Summary`] in units (seconds by default).
//!
//! ```
//! use std::time::Duration;
//! use vigil_histogram::{Config, Window};
//!
//! let (clock, mock) = quanta::Clock::mock(); // quanta::Clock::new() in production
//! let latency = Config::new().clock(clock).build()?;
//!
//! for micros in 1..=1_000 {
//!     latency.record_duration(Duration::from_micros(micros)); // hot path
//! }
//! latency.record_f64(0.25); // seconds, e.g. from the `metrics` facade
//!
//! let summary = latency.summary(Window::Last(Duration::from_secs(60)));
//! assert_eq!(summary.count, 1_001);
//! assert!((summary.p50 - 0.000_501).abs() < 0.000_501 * 0.001); // within 3 significant figures
//! assert!((summary.max - 0.25).abs() < 0.25 * 0.001);
//!
//! // Ten minutes later (a timer calls `upkeep` every interval) the values
//! // have left the one-minute window, but stay in the cumulative total.
//! for _ in 0..60 {
//!     mock.increment(Duration::from_secs(10));
//!     latency.upkeep();
//! }
//! assert_eq!(latency.summary(Window::Last(Duration::from_secs(60))).count, 0);
//! assert_eq!(latency.summary(Window::Cumulative).count, 1_001);
//!
//! // Interchange with any HdrHistogram implementation.
//! let encoded = latency.snapshot(Window::Cumulative).to_base64()?;
//! assert!(encoded.starts_with("HISTF"));
//! # Ok::<(), vigil_histogram::Error>(())
//! ```
//!
//! # Hot path
//! [`Histogram::record`] finds the bucket with HdrHistogram's index formula
//! (a leading-zero count and two shifts) and does two relaxed `fetch_add`s
//! on the calling thread's shard: one per CPU (at most 64), picked once per
//! thread, so threads do not share cache lines. No lock, no allocation
//! (except a shard's first record), no syscall, no clock read.
//! Out-of-range values are clamped and counted; bad floats are counted and
//! dropped; nothing panics.
//!
//! # Windows
//! Reads and [`Histogram::upkeep`] rotate the ring when an interval ended,
//! draining the shards (`swap(0)` per bucket, so no value is lost or counted
//! twice while writers keep writing) into a sparse completed interval and
//! into the cumulative histogram. `Window::Last(d)` = the current partial
//! interval plus the `ceil(d / interval) - 1` most recent completed ones.
//!
//! # Memory
//! Fixed by the config, never by the recording rate. For the defaults
//! (1 ns ..= 1 h, 3 significant figures: 33,792 buckets):
//!
//! | part | bytes |
//! |---|---|
//! | one shard ([`Config::shard_bytes`]), allocated per CPU slot on first use from a thread mapped to it | 270,344 |
//! | slot table (128 bytes per CPU slot, at most 64) + the `Histogram` struct | 128 × CPUs + 512 |
//! | cumulative `hdrhistogram::Histogram<u64>`, allocated on the first rotation with data | 270,336 |
//! | ring: 90 sparse intervals, 16 bytes per nonzero bucket | ~16 × distinct buckets per interval × 90 |
//!
//! So a histogram written from 2 CPUs holds about 0.8 MB plus its ring
//! (typical latency data touches a few hundred buckets per interval: a few
//! kB per interval). Lower precision shrinks everything tenfold per figure:
//! at 2 significant figures a shard is 36,872 bytes. The ring's worst case,
//! every bucket nonzero in every interval, is 16 × 33,792 × 90 = 48.7 MB;
//! a narrower range, fewer figures or fewer intervals bound it.
//! [`Histogram::memory_bytes`] reports the current figure.
//!
//! # Coordinated omission
//! A load generator that waits for each response under-reports stalls: it
//! takes one slow sample where an open-loop client would have seen many.
//! [`Config::expected_interval`] adds the missing samples at record time.
//! For a generator expecting one request per 1 ms that sees 150-250 us
//! latencies for 10 s and one 1 s stall, p99 is 0.249 ms uncorrected
//! (10,000 samples) and 0.891 s corrected (10,999 samples; the median stays
//! at 0.2 ms), from `tests/coordinated_omission.rs`.
//!
//! # Interchange
//! [`Snapshot::to_base64`] / [`Snapshot::from_base64`] speak HdrHistogram's
//! V2 compressed format; [`IntervalLog`] writes HdrHistogram interval logs.
//! Fleets merge these offline with HdrHistogram's own tools.
// `unsafe` lives in `sync.rs` only (the lazily allocated page pointer),
// with its SAFETY arguments and loom tests.
#![deny(unsafe_code)]

mod bench;
mod buckets;
mod config;
mod error;
mod histogram;
mod layout;
mod log;
mod shard;
mod slots;
mod snapshot;
mod summary;
#[allow(unsafe_code)]
mod sync;
mod window;

pub use bench::bench;
pub use config::Config;
pub use error::Error;
pub use histogram::Histogram;
pub use log::IntervalLog;
pub use snapshot::{Bucket, Snapshot};
pub use summary::Summary;
pub use window::Window;

/// The README's example, run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
