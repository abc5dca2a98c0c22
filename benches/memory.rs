//! What a histogram series costs in memory, vigil against
//! `metrics-exporter-prometheus`: `n` = 1 000, 10 000 and 100 000 series of
//! `request_duration_seconds{route}`, each recorded from 2 threads with 20
//! values per thread (and from 1 thread with 20 values), then rendered
//! once. Reported per series: live heap bytes (a counting global
//! allocator) and resident memory (`/proc/self/statm`), both as the
//! increase over the empty registry, after recording and after the first
//! render (the peer drains its raw samples into summaries on render).
//!
//! Then a label explosion: 1 000 000 distinct `route` values on one
//! histogram, one value each, with vigil's default series limit (1 000):
//! the memory added, and `vigil_series_dropped_total` from the exposition
//! (999 000 expected). The peer, which has no limit, runs the same for
//! comparison.
//!
//! ```text
//! cargo bench --bench memory
//! VIGIL_BENCH_SIZES=1000,10000 cargo bench --bench memory  # other sizes
//! VIGIL_BENCH_BIG=1 cargo bench --bench memory   # rows over 8 GiB too
//! ```
//!
//! Every measurement runs in its own child process (this binary re-run
//! with `--child ...`), so neither side's allocations, freed-but-kept heap
//! or thread arenas pollute the other's resident memory. A side whose
//! estimated resident memory (bytes per series after recording and one
//! render, measured at a smaller size, times `n`) exceeds 8 GiB is skipped
//! at that size unless `VIGIL_BENCH_BIG=1`; the notes under the tables say
//! which. `--test` runs every case once with 100 series and the explosion
//! with 2 000 routes (a smoke test).

// The counting allocator implements `GlobalAlloc`, an unsafe trait.
#![allow(unsafe_code)]

mod series;

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use series::VALUES_PER_THREAD;

/// Wraps the system allocator and counts the bytes currently allocated.
struct Counting;

/// Bytes allocated and not yet freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and only counts sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size, Relaxed);
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes and resident bytes at one moment.
#[derive(Clone, Copy)]
struct Usage {
    live: i64,
    rss: i64,
}

impl Usage {
    fn now() -> Usage {
        Usage {
            live: LIVE.load(Relaxed) as i64,
            rss: series::rss_bytes() as i64,
        }
    }

    /// What was added since `before`.
    fn since(self, before: Usage) -> Usage {
        Usage {
            live: self.live - before.live,
            rss: self.rss - before.rss,
        }
    }
}

/// The two recorders measured.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Vigil,
    Prometheus,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Vigil => "vigil",
            Side::Prometheus => "prometheus",
        }
    }

    fn parse(name: &str) -> Side {
        match name {
            "vigil" => Side::Vigil,
            "prometheus" => Side::Prometheus,
            other => panic!("unknown side {other:?}"),
        }
    }
}

/// What one child reports.
#[derive(Clone, Copy)]
struct Report {
    /// Added by registering and recording.
    recorded: Usage,
    /// Added by registering, recording and one render (its text dropped).
    rendered: Usage,
    /// Series in the exposition.
    exposed: usize,
    /// `vigil_series_dropped_total` in the exposition (0 when absent).
    dropped: u64,
    /// Wall time of registering and recording, in milliseconds.
    record_ms: u64,
}

impl Report {
    fn line(&self) -> String {
        format!(
            "REPORT {} {} {} {} {} {} {}",
            self.recorded.live,
            self.recorded.rss,
            self.rendered.live,
            self.rendered.rss,
            self.exposed,
            self.dropped,
            self.record_ms
        )
    }

    fn parse(output: &str) -> Option<Report> {
        let line = output.lines().find_map(|l| l.strip_prefix("REPORT "))?;
        let fields: Vec<i64> = line
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [live1, rss1, live2, rss2, exposed, dropped, record_ms] = fields[..] else {
            return None;
        };
        Some(Report {
            recorded: Usage {
                live: live1,
                rss: rss1,
            },
            rendered: Usage {
                live: live2,
                rss: rss2,
            },
            exposed: exposed as usize,
            dropped: dropped as u64,
            record_ms: record_ms as u64,
        })
    }
}

/// Builds `side`'s empty registry, then runs `record` against it (with the
/// recorder in scope, returning the handles to keep) and renders once.
fn measure(side: Side, limit: Option<usize>, record: impl FnOnce() -> Vec<metrics::Histogram>) {
    let peer = series::peer();
    let handle = peer.handle();
    let monitor = series::vigil_monitor(limit);
    let recorder = monitor.recorder();
    let render = || match side {
        Side::Vigil => monitor.render(),
        Side::Prometheus => handle.render(),
    };
    // Build the other side's registry too and keep it, empty, so both
    // children carry the same fixed overhead before the baseline.
    let before = Usage::now();
    let start = Instant::now();
    let handles = match side {
        Side::Vigil => vigil::with_local_recorder(&recorder, record),
        Side::Prometheus => metrics::with_local_recorder(&peer, record),
    };
    let record_ms = start.elapsed().as_millis() as u64;
    let recorded = Usage::now().since(before);
    let text = render();
    let exposed = series::exposed_series(&text);
    let dropped = sample_value(&text, vigil::SERIES_DROPPED_TOTAL).unwrap_or(0.0) as u64;
    drop(text);
    let rendered = Usage::now().since(before);
    let report = Report {
        recorded,
        rendered,
        exposed,
        dropped,
        record_ms,
    };
    println!("{}", report.line());
    drop(handles);
}

/// A child: `series <side> <n> <threads>` or `explosion <side> <routes>`.
fn child(args: &[String]) {
    match args {
        [case, side, n, threads] if case == "series" => {
            let n: usize = n.parse().expect("a series count");
            let threads: usize = threads.parse().expect("a thread count");
            measure(Side::parse(side), Some(usize::MAX), || {
                let handles = series::register(n);
                series::record(&handles, threads, VALUES_PER_THREAD);
                handles
            });
        }
        [case, side, routes] if case == "explosion" => {
            let routes: usize = routes.parse().expect("a route count");
            // vigil keeps its default series limit here.
            measure(Side::parse(side), None, || {
                let mut values = series::Latencies::new(7);
                for i in 0..routes {
                    metrics::histogram!(series::name(), "route" => series::route(i))
                        .record(values.next_seconds());
                }
                Vec::new()
            });
        }
        _ => panic!("unknown child arguments {args:?}"),
    }
}

/// The value of a sample line `name ...` or `name{..} ...` in an
/// exposition.
fn sample_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

/// Runs one child and returns its report (`None` if it failed, with the
/// reason on stderr).
fn run_child(args: &[String]) -> Option<Report> {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let output = Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("the bench binary runs");
    if !output.status.success() {
        eprintln!("memory: child {args:?} failed: {}", output.status);
        return None;
    }
    let report = Report::parse(&String::from_utf8_lossy(&output.stdout));
    if report.is_none() {
        eprintln!("memory: child {args:?} reported nothing");
    }
    report
}

/// `1.5 KiB`, `3.2 MiB`, `812 B` (negative values keep their sign).
fn bytes(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= f64::from(1 << 30) {
        format!("{:.2} GiB", value / f64::from(1 << 30))
    } else if magnitude >= f64::from(1 << 20) {
        format!("{:.1} MiB", value / f64::from(1 << 20))
    } else if magnitude >= 1024.0 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{value:.0} B")
    }
}

fn ratio(vigil: Option<i64>, peer: Option<i64>) -> String {
    match (vigil, peer) {
        (Some(vigil), Some(peer)) if peer > 0 => {
            let ratio = vigil as f64 / peer as f64;
            match ratio {
                10.0.. => format!("{ratio:.0}"),
                1.0.. => format!("{ratio:.2}"),
                _ => format!("{ratio:.3}"),
            }
        }
        _ => "-".into(),
    }
}

/// One series count and thread count, both sides (`None`: skipped or
/// failed, as the notes say).
struct Row {
    n: usize,
    threads: usize,
    vigil: Option<Report>,
    peer: Option<Report>,
}

/// Prints the per-series table for one state (after record or render).
fn print_table(title: &str, rows: &[Row], usage: impl Fn(&Report) -> Usage) {
    println!();
    println!("{title}");
    println!();
    println!(
        "| series | threads x values | vigil heap/series | peer heap/series | vigil/peer \
         | vigil RSS/series | peer RSS/series | vigil/peer |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let per_series =
            |report: &Report, field: fn(Usage) -> i64| field(usage(report)) / row.n as i64;
        let heap = |report: &Report| per_series(report, |u| u.live);
        let rss = |report: &Report| per_series(report, |u| u.rss);
        let (vigil, peer) = (row.vigil.as_ref(), row.peer.as_ref());
        let cell = |value: Option<i64>| value.map_or("skipped".into(), |v| bytes(v as f64));
        println!(
            "| {} | {} x {} | {} | {} | {} | {} | {} | {} |",
            row.n,
            row.threads,
            VALUES_PER_THREAD,
            cell(vigil.map(heap)),
            cell(peer.map(heap)),
            ratio(vigil.map(heap), peer.map(heap)),
            cell(vigil.map(rss)),
            cell(peer.map(rss)),
            ratio(vigil.map(rss), peer.map(rss)),
        );
    }
}

/// Runs `side` with `n` series recorded from `threads` threads in a child,
/// unless the resident bytes per series measured at a smaller size
/// (`per_series`, updated here) predict more than the memory cap; reasons
/// for skipped or failed rows go to `notes`.
fn run_series(
    side: Side,
    n: usize,
    threads: usize,
    per_series: &mut Option<u64>,
    notes: &mut Vec<String>,
) -> Option<Report> {
    if let Err(reason) = series::fits(side.name(), n, *per_series) {
        notes.push(format!("{reason} ({threads} thread(s))"));
        return None;
    }
    eprintln!(
        "memory: {} with {n} series, {threads} thread(s)",
        side.name()
    );
    let args = [
        "series".to_string(),
        side.name().into(),
        n.to_string(),
        threads.to_string(),
    ];
    let Some(report) = run_child(&args) else {
        notes.push(format!(
            "{} with {n} series, {threads} thread(s) failed",
            side.name()
        ));
        return None;
    };
    assert_eq!(report.exposed, n, "{} exposes every series", side.name());
    let resident = report.rendered.rss.max(0) as u64 / n as u64;
    *per_series = Some(resident.max(per_series.unwrap_or(0)));
    Some(report)
}

fn parent(test: bool) {
    let sizes = if test { vec![100] } else { series::sizes() };
    let routes: usize = if test { 2_000 } else { 1_000_000 };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for threads in [2, 1] {
        // Resident bytes per series at the sizes measured so far.
        let (mut peer_per_series, mut vigil_per_series) = (None, None);
        for &n in &sizes {
            let peer = run_series(
                Side::Prometheus,
                n,
                threads,
                &mut peer_per_series,
                &mut notes,
            );
            let vigil = run_series(Side::Vigil, n, threads, &mut vigil_per_series, &mut notes);
            rows.push(Row {
                n,
                threads,
                vigil,
                peer,
            });
        }
    }

    println!();
    println!(
        "Memory per histogram series{}: `request_duration_seconds{{route}}`, the increase \
         over the empty registry divided by the series count; peer = \
         metrics-exporter-prometheus 0.18; ratios vigil / peer.",
        if test { " (smoke test)" } else { "" }
    );
    print_table("After recording, before any read:", &rows, |r: &Report| {
        r.recorded
    });
    print_table(
        "After recording and one render (the text dropped):",
        &rows,
        |r: &Report| r.rendered,
    );
    for note in &notes {
        println!();
        println!("Note: {note}.");
    }

    eprintln!("memory: label explosion, {routes} routes");
    let explosion =
        |side: Side| run_child(&["explosion".into(), side.name().into(), routes.to_string()]);
    let vigil = explosion(Side::Vigil);
    let peer = explosion(Side::Prometheus);
    println!();
    println!(
        "Label explosion: {routes} distinct `route` values on one histogram, one value each \
         (vigil with its default limit of 1 000 series per metric; the peer has no limit):"
    );
    println!();
    println!(
        "| side | heap added | RSS added | heap after render | RSS after render \
         | exposed series | `vigil_series_dropped_total` | record time |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (side, report) in [(Side::Vigil, vigil), (Side::Prometheus, peer)] {
        match report {
            Some(r) => println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} ms |",
                side.name(),
                bytes(r.recorded.live as f64),
                bytes(r.recorded.rss as f64),
                bytes(r.rendered.live as f64),
                bytes(r.rendered.rss as f64),
                r.exposed,
                if side == Side::Vigil {
                    r.dropped.to_string()
                } else {
                    "-".into()
                },
                r.record_ms,
            ),
            None => println!("| {} | failed | | | | | | |", side.name()),
        }
    }
    if let Some(r) = vigil {
        let expected = routes.saturating_sub(1_000) as u64;
        assert_eq!(
            r.dropped, expected,
            "vigil_series_dropped_total counts every label set past the limit"
        );
        println!();
        println!(
            "vigil_series_dropped_total = {} (expected {expected}).",
            r.dropped
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        child(&args[at + 1..]);
        return;
    }
    // `cargo bench -- FILTER` passes the filter to every bench target:
    // run only when it names this one.
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !"memory".contains(filter.as_str())
    {
        return;
    }
    parent(args.iter().any(|a| a == "--test"));
}
