//! A registry at scale, vigil against `metrics-exporter-prometheus` in one
//! run: `n` = 1 000, 10 000 and 100 000 series of one histogram
//! (`request_duration_seconds{route}`), each recorded from 2 threads with
//! 20 latency-like values per thread, then the reads a host makes:
//!
//! - `scale_render_{n}`: the Prometheus text exposition (vigil
//!   `Monitor::render`, the peer `PrometheusHandle::render`);
//! - `scale_summary_{n}`: vigil's JSON `Monitor::summary` (vigil only: the
//!   peer has no structured summary, so there is no peer row);
//! - `scale_upkeep_{n}`: one upkeep pass (vigil `Monitor::upkeep`, the
//!   peer `PrometheusHandle::run_upkeep`).
//!
//! Before every measured call each series gets one fresh value (recorded
//! outside the timing, both sides alike), so a read always finds the
//! writes made since the last one, as a scrape does; the peer cannot serve
//! an already drained state.
//!
//! ```text
//! cargo bench --bench scale
//! cargo bench --bench scale -- --quick            # a rougher, shorter run
//! VIGIL_BENCH_SIZES=1000 cargo bench --bench scale -- scale_render
//! python3 scripts/bench-report scale_render_1000 prometheus
//! ```
//!
//! `VIGIL_BENCH_SIZES` (comma-separated) picks the series counts; a
//! criterion filter alone still builds every registry. The run ends with
//! a table of vigil / peer ratios for the groups it measured. A side whose
//! estimated memory (resident bytes per series after recording and one
//! render, measured at a smaller size, times `n`) exceeds 8 GiB is skipped
//! at that size unless `VIGIL_BENCH_BIG=1`; the output says so.

mod series;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode};
use series::{Latencies, VALUES_PER_THREAD};

/// Records one fresh value into every series from the calling thread.
fn touch(handles: &[metrics::Histogram], values: &mut Latencies) {
    for handle in handles {
        handle.record(values.next_seconds());
    }
}

/// Few, flat samples: one call takes milliseconds to seconds here (a
/// sample is at least one call, so a slow row takes longer than
/// `measurement_time`; criterion says so).
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.sample_size(if n <= 1_000 { 20 } else { 10 });
    group.measurement_time(Duration::from_secs(5));
}

/// Builds one side's registry (`make`), registers `n` series with it
/// (`register`) and records into them from 2 threads, then renders once
/// (`render`), timed here and checked to expose every series. Skipped when
/// the resident bytes per series measured at a smaller size
/// (`per_series`, updated here) predict more than the memory cap.
fn build<R>(
    side: &str,
    n: usize,
    per_series: &mut Option<u64>,
    make: impl FnOnce() -> R,
    register: impl FnOnce(&R) -> Vec<metrics::Histogram>,
    render: impl Fn(&R) -> String,
) -> Option<(R, Vec<metrics::Histogram>)> {
    if let Err(reason) = series::fits(side, n, *per_series) {
        println!("scale {n}: {reason}");
        return None;
    }
    let before = series::rss_bytes();
    let registry = make();
    let handles = register(&registry);
    series::record(&handles, 2, VALUES_PER_THREAD);
    // The first read after the bulk writes, once (criterion measures the
    // reads after it).
    let start = Instant::now();
    let text = render(&registry);
    let first = start.elapsed();
    assert_eq!(
        series::exposed_series(&text),
        n,
        "{side} exposes every series"
    );
    drop(text);
    let resident = series::rss_bytes().saturating_sub(before) / n as u64;
    // Memory freed by a smaller size may be reused here, so keep the
    // largest estimate.
    *per_series = Some(resident.max(per_series.unwrap_or(0)));
    println!(
        "scale {n}: {side}: first render after recording {first:.1?}, {} KiB resident per series",
        resident / 1024
    );
    Some((registry, handles))
}

fn scale(c: &mut Criterion) {
    // Resident bytes per series at the sizes measured so far.
    let (mut peer_per_series, mut vigil_per_series) = (None, None);
    for n in series::sizes() {
        let peer = build(
            "prometheus",
            n,
            &mut peer_per_series,
            series::peer,
            |recorder| metrics::with_local_recorder(recorder, || series::register(n)),
            |recorder| recorder.handle().render(),
        )
        .map(|(recorder, handles)| (recorder.handle(), handles));
        let vigil = build(
            "vigil",
            n,
            &mut vigil_per_series,
            || series::vigil_monitor(Some(usize::MAX)),
            |monitor| vigil::with_local_recorder(&monitor.recorder(), || series::register(n)),
            vigil::Monitor::render,
        );
        if peer.is_none() && vigil.is_none() {
            continue;
        }

        let mut values = Latencies::new(n as u64);
        let mut group = c.benchmark_group(format!("scale_render_{n}"));
        configure(&mut group, n);
        if let Some((monitor, handles)) = &vigil {
            group.bench_function("vigil", |b| {
                b.iter_batched(
                    || touch(handles, &mut values),
                    |()| monitor.render(),
                    BatchSize::PerIteration,
                )
            });
        }
        if let Some((handle, handles)) = &peer {
            group.bench_function("prometheus", |b| {
                b.iter_batched(
                    || touch(handles, &mut values),
                    |()| handle.render(),
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();

        if let Some((monitor, handles)) = &vigil {
            // No peer row: metrics-exporter-prometheus has no structured
            // summary.
            let mut group = c.benchmark_group(format!("scale_summary_{n}"));
            configure(&mut group, n);
            group.bench_function("vigil", |b| {
                b.iter_batched(
                    || touch(handles, &mut values),
                    |()| monitor.summary(),
                    BatchSize::PerIteration,
                )
            });
            group.finish();
        }

        let mut group = c.benchmark_group(format!("scale_upkeep_{n}"));
        configure(&mut group, n);
        if let Some((monitor, handles)) = &vigil {
            group.bench_function("vigil", |b| {
                b.iter_batched(
                    || touch(handles, &mut values),
                    |()| monitor.upkeep(),
                    BatchSize::PerIteration,
                )
            });
        }
        if let Some((handle, handles)) = &peer {
            group.bench_function("prometheus", |b| {
                b.iter_batched(
                    || touch(handles, &mut values),
                    |()| handle.run_upkeep(),
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }
}

/// Where criterion writes its estimates (as criterion finds it, minus
/// asking `cargo metadata`: the bench binary lives in
/// `target/<profile>/deps/`).
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// The median (ns) criterion wrote for `group/function` during this run
/// (files older than `since` are from earlier runs and ignored).
fn median(group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()?
        .join(group)
        .join(function)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let estimates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn format_ns(ns: Option<f64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) if ns >= 1e9 => format!("{:.2} s", ns / 1e9),
        Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.1} us", ns / 1e3),
    }
}

/// Prints the medians measured in this run as a Markdown table with the
/// vigil / peer ratio.
fn print_ratios(since: SystemTime) {
    let mut rows = Vec::new();
    for n in series::sizes() {
        for read in ["render", "summary", "upkeep"] {
            let group = format!("scale_{read}_{n}");
            let vigil = median(&group, "vigil", since);
            let peer = median(&group, "prometheus", since);
            if vigil.is_none() && peer.is_none() {
                continue;
            }
            let ratio = match (vigil, peer) {
                (Some(vigil), Some(peer)) => format!("{:.2}", vigil / peer),
                _ if read == "summary" => "no peer row".into(),
                _ => "-".into(),
            };
            rows.push(format!(
                "| `{group}` | {} | {} | {ratio} |",
                format_ns(vigil),
                format_ns(peer)
            ));
        }
    }
    if rows.is_empty() {
        return;
    }
    println!();
    println!("| group (median) | vigil | prometheus | vigil / prometheus |");
    println!("|---|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
}

fn main() {
    let since = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    scale(&mut criterion);
    criterion.final_summary();
    print_ratios(since);
}
