//! Concurrent HDR histograms with sliding windows, percentiles, merge and
//! HdrHistogram interchange.
//!
//! A [`Histogram`] records raw `u64` values (nanoseconds by default) from any
//! number of threads without locks or locked instructions, keeps a ring of
//! interval histograms for sliding [`Window`]s plus a cumulative total, and
//! reads out as a [`Snapshot`] (the nonzero buckets, the exact sum, and an
//! `hdrhistogram::Histogram<u64>` on demand) or a serde [`Summary`] in units
//! (seconds by default).
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
//! # #[cfg(feature = "serialization")] {
//! let encoded = latency.snapshot(Window::Cumulative).to_base64()?;
//! assert!(encoded.starts_with("HISTF"));
//! # }
//! # Ok::<(), vigil_histogram::Error>(())
//! ```
//!
//! # Hot path
//! [`Histogram::record`] finds the bucket with HdrHistogram's index formula
//! (a leading-zero count and two shifts), finds the calling thread's shard
//! (a thread-local id compared with the owner of the histogram's first
//! slot) and adds with a relaxed load and store: the shard is owned by the
//! thread, so no locked instruction is needed. No lock, no syscall, no
//! clock read; an allocation only when a value lands in a page of 16
//! buckets the shard has not used yet. Out-of-range values are clamped and
//! counted; bad floats are counted and dropped, per [`Rejection`] reason;
//! nothing panics.
//!
//! # Consistent reads
//! A read sees each shard between two of its records, never part-way
//! through one: a snapshot's count is its buckets' sum and its sum is that
//! of the same values, and [`Histogram::totals`] and
//! [`Histogram::bound_counts`] agree with themselves, while other threads
//! keep recording. Each record is bracketed by two sequence counters the
//! owning thread bumps with plain stores (a sequence lock that never makes
//! the writer wait); a reader that finds a record in progress reads the
//! shard again. A writer that records without pause for the whole length
//! of 16 reads gets a bracketed read instead: count and buckets still
//! agree, and the sum lies between the sums before and after (exact when
//! the values recorded meanwhile were equal). The overflow shard that
//! threads beyond the slot count share is written with `fetch_add` by
//! several threads, so it has two halves instead: a reader flips the half
//! writers use, waits for the records in flight and reads the other one
//! (prometheus client_golang's hot/cold scheme). Loom models check both.
//!
//! # Threads and shards
//! A thread claims a free shard of a histogram (one compare-exchange) on
//! its first record into it. A histogram holds as many shards as threads
//! recorded into it while the others were alive, at most one per CPU (up
//! to 64, see [`Config::shards`]); past that, threads share one overflow
//! shard with `fetch_add` (two halves of pages, see above). When a thread exits its shards are released, counts and
//! all, and the next thread that records takes one over: 10,000
//! short-lived threads cost what 10 do, and lose no value
//! (`tests/memory.rs`).
//!
//! # Windows
//! Shards are never drained: reads and [`Histogram::upkeep`] sum the
//! shards' pages (relaxed loads, so writers keep writing) and a rotation
//! stores the difference to the previous rotation's sum as a sparse
//! completed interval. `Window::Cumulative` is the sum itself;
//! `Window::Last(d)` = what came since the last rotation plus the
//! `ceil(d / interval) - 1` most recent completed intervals. A value is
//! counted in exactly one interval whatever the interleaving (a loom model
//! checks it).
//!
//! # Memory
//! Follows the data: the buckets a histogram used and the threads that
//! recorded into it at once, never the configured range times the CPU
//! count. For the defaults (1 ns ..= 1 h, 3 significant figures: 33,792
//! buckets):
//!
//! | part | bytes |
//! |---|---|
//! | an empty `Histogram` (config, lock, slots, ring head) | 576 |
//! | a shard before its first value: header + 33 group pointers | 392 |
//! | a group of 1,024 buckets, on the first value in it | 520 |
//! | a page of 16 buckets, on the first value in it | 128 |
//! | slot table, once a third thread records while two hold slots | 16 per CPU |
//! | rotation baseline and ring entries (sparse) | 16 per nonzero bucket |
//!
//! Twenty latency-like values (0.5-200 ms) hold 8.1 kB from one thread,
//! 10.4 kB from two ([`Histogram::memory_bytes`], `tests/memory.rs`). A
//! shard with every bucket used is [`Config::shard_bytes`] (287,888 bytes);
//! the ring's worst case, every bucket in every one of 90 intervals, is
//! 48.7 MB; a narrower range, fewer figures or fewer intervals bound both.
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
//! Fleets merge these offline with HdrHistogram's own tools. They are
//! behind the `serialization` feature (default), which brings `base64`,
//! `flate2` and hdrhistogram's own `serialization`.
// `unsafe` lives in `sync.rs` only (the lazily allocated page pointer),
// with its SAFETY arguments and loom tests.
#![deny(unsafe_code)]

// Before the other modules: they use its macro.
#[macro_use]
mod setters;

mod bench;
mod bounds;
mod buckets;
mod config;
mod error;
mod histogram;
#[cfg(feature = "serialization")]
mod interchange;
mod layout;
#[cfg(feature = "serialization")]
mod log;
pub mod non_finite;
mod overflow;
mod reject;
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
#[cfg(feature = "serialization")]
pub use log::IntervalLog;
pub use reject::Rejection;
pub use snapshot::{Bucket, Snapshot};
pub use summary::Summary;
pub use window::Window;

/// The README's example, run as a doctest so it stays true.
#[cfg(all(doctest, feature = "serialization"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
