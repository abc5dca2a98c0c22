//! The cost per span of `SpanLayer`: a `#[tracing::instrument]` function
//! called through a `tracing_subscriber` registry with the layer (recording
//! into vigil's registry, as `Monitor::span_layer` does; and into
//! metrics-exporter-prometheus's recorder) against the bare registry, in
//! one run.
//!
//! ```text
//! cargo bench -p vigil-benches --bench span
//! python3 scripts/bench-report span bare_registry
//! ```
//!
//! The difference is what the layer adds per span: two clock reads, the
//! registry extension holding the start, the cached handle's lookup and
//! one histogram record.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;
use vigil_service::trace::SpanLayer;

#[tracing::instrument]
#[inline(never)]
fn instrumented() -> u64 {
    black_box(1)
}

fn span(c: &mut Criterion) {
    let mut group = c.benchmark_group("span");

    let bare = Dispatch::new(tracing_subscriber::registry());
    tracing::dispatcher::with_default(&bare, || {
        group.bench_function("bare_registry", |b| b.iter(instrumented));
    });

    let monitor = vigil::Monitor::builder()
        .manual_upkeep()
        .build()
        .expect("a monitor with defaults builds");
    let layered = Dispatch::new(
        tracing_subscriber::registry()
            .with(SpanLayer::new().with_recorder(Arc::new(monitor.recorder()))),
    );
    tracing::dispatcher::with_default(&layered, || {
        group.bench_function("span_layer", |b| b.iter(instrumented));
    });
    assert!(monitor.render().contains("tracing_span_duration_seconds"));

    let recorder = Arc::new(PrometheusBuilder::new().build_recorder());
    let layered = Dispatch::new(
        tracing_subscriber::registry().with(SpanLayer::new().with_recorder(recorder)),
    );
    tracing::dispatcher::with_default(&layered, || {
        group.bench_function("span_layer_prometheus", |b| b.iter(instrumented));
    });

    group.finish();
}

criterion_group!(benches, span);
criterion_main!(benches);
