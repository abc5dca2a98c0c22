//! Recording into a histogram, vigil against the peers a user would pick
//! instead, from 1 and 2 threads, in one run; and `#[timed]` with vigil's
//! own registry installed against the floor.
//!
//! ```text
//! cargo bench --bench histogram
//! python3 scripts/bench-report histogram hdrhistogram_owned_1t
//! python3 scripts/bench-report timed_registry
//! ```
//!
//! Multi-threaded rows report the time per record *per thread* (each of
//! the N threads records `iters` values; the wall time is divided by
//! `iters`), so perfect scaling keeps the `_2t` row equal to the `_1t` row.

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use metrics::{Key, Recorder as _};
use metrics_exporter_prometheus::PrometheusBuilder;
use vigil_benches::{Floor, bare};

/// Latency-like values (1 us .. ~16 ms in ns) from a xorshift generator, so
/// records spread over buckets as real ones do.
struct Values(u64);

impl Values {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        1_000 + (self.0 & 0xFF_FFFF)
    }
}

/// Runs `record` on `threads` threads, `iters` times each, started together;
/// returns the wall time (per-thread time per record = result / iters).
fn run_threads<S: Sync>(
    threads: usize,
    iters: u64,
    state: &S,
    record: impl Fn(&S, u64) + Sync,
) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (barrier, record) = (&barrier, &record);
            scope.spawn(move || {
                let mut values = Values::new(0x9E37_79B9_7F4A_7C15 ^ thread as u64);
                barrier.wait();
                for _ in 0..iters {
                    record(state, values.next());
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every thread before returning.
        start
    })
    .elapsed()
}

fn metadata() -> metrics::Metadata<'static> {
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn histogram(c: &mut Criterion) {
    let mut group = c.benchmark_group("histogram");

    let mut owned = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)
        .expect("valid bounds");
    let mut values = Values::new(7);
    group.bench_function("hdrhistogram_owned_1t", |b| {
        b.iter(|| owned.saturating_record(black_box(values.next())))
    });

    let vigil = vigil::histogram::Histogram::new();
    // What a bucketed metric (`function_calls_duration_seconds`) records
    // into: counts at autometrics' 14 latency bounds kept exact.
    let vigil_exact = vigil::histogram::Config::new()
        .exact_bounds(&vigil::objectives::LATENCY_BUCKETS)
        .build()
        .expect("valid config");
    let mutex = Mutex::new(owned.clone());
    let sync: Mutex<hdrhistogram::sync::SyncHistogram<u64>> = Mutex::new(owned.clone().into_sync());
    let prometheus = PrometheusBuilder::new().build_recorder();
    let prometheus_handle =
        prometheus.register_histogram(&Key::from_name("bench_seconds"), &metadata());
    let prometheus_handle = &prometheus_handle;
    let monitor = vigil::Monitor::builder()
        .build()
        .expect("default settings are valid");
    let vigil_handle = monitor
        .recorder()
        .register_histogram(&Key::from_name("bench_seconds"), &metadata());

    for threads in [1, 2] {
        group.bench_function(format!("vigil_{threads}t"), |b| {
            b.iter_custom(|iters| run_threads(threads, iters, &vigil, |h, v| h.record(v)))
        });
        group.bench_function(format!("vigil_exact_bounds_{threads}t"), |b| {
            b.iter_custom(|iters| run_threads(threads, iters, &vigil_exact, |h, v| h.record(v)))
        });
        group.bench_function(format!("vigil_registry_handle_{threads}t"), |b| {
            b.iter_custom(|iters| {
                run_threads(threads, iters, &vigil_handle, |h, v| {
                    h.record(v as f64 * 1e-9)
                })
            })
        });
        group.bench_function(format!("mutex_hdrhistogram_{threads}t"), |b| {
            b.iter_custom(|iters| {
                run_threads(threads, iters, &mutex, |h, v| {
                    h.lock().expect("not poisoned").saturating_record(v);
                })
            })
        });
        group.bench_function(format!("hdrhistogram_sync_recorder_{threads}t"), |b| {
            b.iter_custom(|iters| {
                // One `Recorder` per thread, as hdrhistogram::sync intends.
                let recorders: Vec<_> = (0..threads)
                    .map(|_| Mutex::new(sync.lock().expect("not poisoned").recorder()))
                    .collect();
                let barrier = Barrier::new(threads + 1);
                let elapsed = std::thread::scope(|scope| {
                    for (thread, recorder) in recorders.iter().enumerate() {
                        let barrier = &barrier;
                        scope.spawn(move || {
                            let mut recorder = recorder.lock().expect("not poisoned");
                            let mut values = Values::new(0x9E37_79B9_7F4A_7C15 ^ thread as u64);
                            barrier.wait();
                            for _ in 0..iters {
                                recorder.saturating_record(values.next());
                            }
                        });
                    }
                    barrier.wait();
                    Instant::now()
                })
                .elapsed();
                drop(recorders);
                // Merge what was recorded so the next sample starts clean.
                sync.lock()
                    .expect("not poisoned")
                    .refresh_timeout(Duration::from_millis(10));
                elapsed
            })
        });
        group.bench_function(format!("prometheus_handle_{threads}t"), |b| {
            b.iter_custom(|iters| {
                let elapsed = run_threads(threads, iters, prometheus_handle, |h, v| {
                    h.record(v as f64 * 1e-9)
                });
                // Its samples pile up until drained; drain outside the timing
                // as its upkeep would.
                prometheus.handle().run_upkeep();
                elapsed
            })
        });
    }
    group.finish();
    drop(monitor);
}

#[vigil::timed]
#[inline(never)]
fn with_timed() -> u64 {
    black_box(1)
}

fn timed_registry(c: &mut Criterion) {
    let monitor = vigil::Monitor::builder()
        .install()
        .expect("the bench installs the only recorder");
    let mut group = c.benchmark_group("timed_registry");
    group.bench_function("bare", |b| b.iter(bare));
    let mut floor = Floor::default();
    group.bench_function("floor", |b| b.iter(|| floor.time_bare()));
    group.bench_function("vigil_timed", |b| b.iter(with_timed));
    group.finish();
    drop(monitor);
}

criterion_group!(benches, histogram, timed_registry);
criterion_main!(benches);
