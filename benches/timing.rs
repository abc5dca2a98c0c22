//! The cost of timing one call, vigil against the peers a user would pick
//! instead, in one run with the same recorder installed
//! (`metrics-exporter-prometheus`, with its upkeep running as in a service).
//!
//! ```text
//! cargo bench --bench timing
//! python3 scripts/bench-report timing
//! ```
//!
//! `vigil_timer_table` times the same call through a `TimerTable` keyed by
//! a model name known at run time (100 keys, cycled): `vigil_timed` plus
//! the lookup of the key.
//!
//! The floor is what any timer must do: two clock reads and one histogram
//! record (`quanta` + an owned `hdrhistogram::Histogram`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::Registry;
use vigil_benches::{Floor, bare};

#[vigil::timed]
#[inline(never)]
fn with_timed() -> u64 {
    black_box(1)
}

/// A table of sites named at run time, one per model: the lookup of the
/// key, then what `#[timed]` does.
static MODELS: vigil::TimerTable =
    vigil::TimerTable::by_labels("infer", module_path!(), &["model"]);

#[inline(never)]
fn with_timer_table(model: &str) -> u64 {
    MODELS.time(model, bare)
}

#[tracing::instrument]
#[inline(never)]
fn with_tracing_instrument() -> u64 {
    black_box(1)
}

#[autometrics::autometrics]
#[inline(never)]
fn with_autometrics() -> u64 {
    black_box(1)
}

fn install_peers() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the bench installs the only recorder");
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            handle.run_upkeep();
        }
    });
    tracing::subscriber::set_global_default(Registry::default())
        .expect("the bench installs the only subscriber");
}

fn timing(c: &mut Criterion) {
    install_peers();
    let mut group = c.benchmark_group("timing");

    group.bench_function("bare", |b| b.iter(bare));

    let mut floor = Floor::default();
    group.bench_function("floor", |b| b.iter(|| floor.time_bare()));

    group.bench_function("vigil_timed", |b| b.iter(with_timed));

    // 100 models in the table, each call for one of them.
    let models: Vec<String> = (0..100).map(|i| format!("model-{i:03}")).collect();
    let mut next = models.iter().cycle();
    group.bench_function("vigil_timer_table", |b| {
        b.iter(|| with_timer_table(black_box(next.next().map_or("", String::as_str))))
    });

    group.bench_function("metrics_histogram_macro", |b| {
        b.iter(|| {
            let start = quanta::Instant::now();
            let value = bare();
            let elapsed = quanta::Instant::now().duration_since(start);
            metrics::histogram!("bench_manual_seconds").record(elapsed.as_secs_f64());
            value
        })
    });

    group.bench_function("tracing_instrument", |b| b.iter(with_tracing_instrument));

    group.bench_function("autometrics", |b| b.iter(with_autometrics));

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = timing
}
criterion_main!(benches);
