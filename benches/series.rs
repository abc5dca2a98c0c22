//! What the `scale` and `memory` benches both set up: `n` histogram series
//! of one name (`request_duration_seconds`, a summary on both sides; with
//! `VIGIL_BENCH_BUCKETS=1`, `function_calls_duration_seconds`, classic
//! buckets at autometrics' 14 bounds on both sides) with one `route` label,
//! in vigil's registry and in `metrics-exporter-prometheus`'s, recorded
//! from threads with latency-like values; and the process's resident
//! memory.

use std::sync::Barrier;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

/// True when `VIGIL_BENCH_BUCKETS=1` asks for bucketed histograms.
pub fn buckets() -> bool {
    std::env::var_os("VIGIL_BENCH_BUCKETS").is_some_and(|v| v == "1")
}

/// The histogram every series belongs to: a summary by default; with
/// [`buckets`], the `#[timed]` duration histogram, which vigil renders with
/// classic buckets (exact at each bound) by default.
pub fn name() -> &'static str {
    if buckets() {
        "function_calls_duration_seconds"
    } else {
        "request_duration_seconds"
    }
}

/// Values each recording thread records into each series.
pub const VALUES_PER_THREAD: usize = 20;

/// Series counts measured by default.
pub const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The series counts to measure: `VIGIL_BENCH_SIZES` (comma-separated,
/// e.g. `1000,10000`) or [`SIZES`].
pub fn sizes() -> Vec<usize> {
    match std::env::var("VIGIL_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .replace('_', "")
                    .parse()
                    .expect("VIGIL_BENCH_SIZES: series counts")
            })
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}

/// Rows whose estimated memory exceeds this many bytes are skipped unless
/// `VIGIL_BENCH_BIG=1` (the machine class has 24 GB).
pub const MEMORY_CAP: u64 = 8 << 30;

/// True when `VIGIL_BENCH_BIG=1` asks for rows past [`MEMORY_CAP`].
pub fn big_enabled() -> bool {
    std::env::var_os("VIGIL_BENCH_BIG").is_some_and(|v| v == "1")
}

/// Whether `side`'s row of `n` series runs, given the resident bytes per
/// series (after recording and one render) measured at a smaller size
/// (`None`: nothing measured yet, run); `Err` carries the reason it is
/// skipped, for the output.
pub fn fits(side: &str, n: usize, bytes_per_series: Option<u64>) -> Result<(), String> {
    let Some(per_series) = bytes_per_series else {
        return Ok(());
    };
    let estimate = per_series.saturating_mul(n as u64);
    if estimate <= MEMORY_CAP || big_enabled() {
        return Ok(());
    }
    Err(format!(
        "{side} with {n} series skipped: estimated {:.1} GiB ({} KiB resident per series \
         measured at a smaller size) exceeds {} GiB; set VIGIL_BENCH_BIG=1 to run it",
        estimate as f64 / f64::from(1 << 30),
        per_series / 1024,
        MEMORY_CAP >> 30,
    ))
}

/// Latency-like values in seconds, 0.5 ms to 200 ms, roughly lognormal
/// around 10 ms, from a deterministic xorshift generator.
pub struct Latencies(u64);

impl Latencies {
    /// A generator; different seeds give different sequences.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next value: `exp(ln(10 ms) + z)` with `z` roughly standard
    /// normal (a sum of four uniforms), clamped to 0.5 ms ..= 200 ms.
    pub fn next_seconds(&mut self) -> f64 {
        let sum: f64 = (0..4).map(|_| self.next_unit()).sum();
        let z = (sum - 2.0) * 3f64.sqrt();
        (0.010 * z.exp()).clamp(0.000_5, 0.2)
    }
}

/// The `route` label value of series `i`.
pub fn route(i: usize) -> String {
    format!("/api/v1/route/{i}")
}

/// Registers series `0..n` with the recorder currently in scope (run it
/// inside `with_local_recorder`), once each, as a call site would.
pub fn register(n: usize) -> Vec<metrics::Histogram> {
    (0..n)
        .map(|i| metrics::histogram!(name(), "route" => route(i)))
        .collect()
}

/// Records `per_thread` values into every series from each of `threads`
/// threads started together (each thread makes `per_thread` passes over
/// all series, as interleaved traffic would).
pub fn record(handles: &[metrics::Histogram], threads: usize, per_thread: usize) {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let barrier = &barrier;
            scope.spawn(move || {
                let mut values = Latencies::new(thread as u64 + 1);
                barrier.wait();
                for _ in 0..per_thread {
                    for handle in handles {
                        handle.record(values.next_seconds());
                    }
                }
            });
        }
    });
}

/// A vigil registry with no background threads (upkeep and alerts run only
/// when asked) and room for `limit` series per metric (`None`: vigil's
/// default limit).
pub fn vigil_monitor(limit: Option<usize>) -> vigil::Monitor {
    let builder = vigil::Monitor::builder().manual_upkeep().manual_alerts();
    let builder = match limit {
        Some(limit) => builder.max_series_per_metric(limit),
        None => builder,
    };
    builder.build().expect("valid settings")
}

/// `metrics-exporter-prometheus` as a user builds it without its exporter
/// (no listener, no upkeep thread): render with `handle().render()`.
/// With [`buckets`], the same bounds as vigil's (autometrics' setup).
pub fn peer() -> PrometheusRecorder {
    let builder = PrometheusBuilder::new();
    let builder = if buckets() {
        builder
            .set_buckets_for_metric(
                Matcher::Full(name().into()),
                &vigil::objectives::LATENCY_BUCKETS,
            )
            .expect("the bounds are not empty")
    } else {
        builder
    };
    builder.build_recorder()
}

/// Histogram series in a Prometheus text exposition of [`name`] (its
/// `_count` lines).
pub fn exposed_series(text: &str) -> usize {
    let prefix = format!("{}_count", name());
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .count()
}

/// This process's resident set size in bytes (`/proc/self/statm`), 0 where
/// it cannot be read.
pub fn rss_bytes() -> u64 {
    let resident_pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    resident_pages * page_size()
}

/// The page size from the auxiliary vector (`AT_PAGESZ`), 4096 if absent.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    const WORD: usize = std::mem::size_of::<usize>();
    let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
    auxv.chunks_exact(2 * WORD)
        .map(|pair| {
            let word =
                |bytes: &[u8]| usize::from_ne_bytes(bytes.try_into().expect("one word")) as u64;
            (word(&pair[..WORD]), word(&pair[WORD..]))
        })
        .find(|&(key, _)| key == AT_PAGESZ)
        .map_or(4096, |(_, value)| value)
}
