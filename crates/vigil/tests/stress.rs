//! Load: every core records through `#[timed]`, `metrics` counters, gauges
//! and histograms and a [`TaggedCache`] while other threads render the text
//! and protobuf expositions, build JSON summaries, rotate windows and
//! evaluate alert rules. At the end every recorded call, increment,
//! observation and cache request is accounted for, no reader saw a counter
//! go down, and every histogram read in every render was consistent within
//! itself (`_count` = the `+Inf` bucket = the native buckets, and `_sum` =
//! `_count` for series that only ever record 1.0).
//!
//! Soak: a child process runs the same load and samples its resident set
//! from `/proc/self/statm`; after a warm-up it must stay flat.
//!
//! Durations (wall time, whole seconds) come from the environment:
//! `VIGIL_STRESS_SECONDS` (default 10) for the load test,
//! `VIGIL_SOAK_WARMUP_SECONDS` (default 3) and `VIGIL_SOAK_SECONDS`
//! (default 5) for the soak.

#![cfg(all(feature = "listener", feature = "alert-routing", feature = "cache"))]

mod proto;
mod servers;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prost::Message as _;
use proto::MetricFamily;
use vigil::alert::notify::TracingNotifier;
use vigil::alert::{Comparison, Engine, Rule, Severity, State};
use vigil::cache::EntryOptions;
use vigil::cache::sync::TaggedCache;
use vigil::histogram::Config;
use vigil::{Matcher, MetricsSummary, Monitor, timed};

/// Histograms with classic buckets; each thread records exactly 1.0 into
/// it, so `_sum` must equal `_count` in every read.
const BUCKETED: &str = "stress_bucketed_seconds";
/// The classic bounds of [`BUCKETED`] (and of `#[timed]` durations).
const BOUNDS: [f64; 3] = [0.5, 1.0, 2.0];
/// A histogram rendered as a summary; also records exactly 1.0.
const SUMMARY: &str = "stress_summary_seconds";
/// One counter series per recording thread.
const PER_THREAD: &str = "stress_thread_events_total";
/// One counter every recording thread increments.
const SHARED: &str = "stress_shared_events_total";
/// Incremented and decremented around each unit of work: 0 at the end.
const IN_FLIGHT: &str = "stress_in_flight";
/// The cache's name (and its `cache` label).
const CACHE: &str = "stress";
/// Distinct cache keys (more than the capacity, so entries are evicted).
const KEYS: u64 = 2048;
/// Tags spread over the keys.
const TAGS: u64 = 16;

/// What Prometheus sends when it prefers protobuf (native histograms).
const PROTOBUF_ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

/// A timed unit of work: every seventh call fails.
#[timed]
fn stress_op(n: u64) -> Result<u64, String> {
    if n.is_multiple_of(7) {
        Err(format!("{n} is a multiple of 7"))
    } else {
        Ok(n)
    }
}

/// Whole seconds from environment variable `name`, or `default`.
fn seconds_from_env(name: &str, default: u64) -> Duration {
    let seconds = match std::env::var(name) {
        Ok(value) => value
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number of seconds")),
        Err(_) => default,
    };
    Duration::from_secs(seconds)
}

/// The monitor under load: classic buckets for [`BUCKETED`] and
/// `#[timed]` durations, summaries for the rest, a short window and
/// history (so windows rotate during the run), the listener (for the protobuf
/// exposition), manual upkeep and alerts (driven by reader threads).
fn monitor() -> Monitor {
    let rules = [
        Rule::builder("StressEvents")
            .rate(SHARED, Duration::from_secs(2))
            .threshold(Severity::High, Comparison::Greater, 0.0)
            .build()
            .expect("a valid rate rule"),
        Rule::builder("StressLatency")
            .histogram_quantile(SUMMARY, 0.99, Duration::from_secs(2))
            .threshold(Severity::Medium, Comparison::Greater, 0.5)
            .build()
            .expect("a valid quantile rule"),
        Rule::builder("StressInFlight")
            .gauge(IN_FLIGHT)
            .threshold(Severity::Critical, Comparison::Greater, 1e12)
            .build()
            .expect("a valid gauge rule"),
    ];
    Monitor::builder()
        .listen("127.0.0.1:0")
        .global_label("service", "stress")
        .buckets(Matcher::Full(BUCKETED.into()), &BOUNDS)
        .buckets(
            Matcher::Full("function_calls_duration_seconds".into()),
            &BOUNDS,
        )
        // 2 s of history in 100 ms intervals: windows rotate all through
        // the run, and the ring is full before the soak's warm-up ends.
        .default_histogram(
            Config::new()
                .interval(Duration::from_millis(100))
                .intervals(20),
        )
        .window(Duration::from_secs(2))
        .manual_upkeep()
        .manual_alerts()
        .alerts(Engine::new(rules).expect("valid rules"))
        .notifier("default", TracingNotifier::new())
        .build()
        .expect("a valid monitor")
}

/// The tagged cache under load: smaller than the key space, with a short
/// time to live, so entries are replaced, evicted and expire.
fn cache() -> TaggedCache<u64, u64> {
    TaggedCache::builder()
        .name(CACHE)
        .max_capacity(512)
        .default_ttl(Duration::from_millis(200))
        .build()
}

/// What one recording thread did, counted by the thread itself.
#[derive(Default, Debug, Clone, Copy)]
struct Recorded {
    /// `stress_op` calls that returned `Ok` / `Err`.
    ok: u64,
    error: u64,
    /// Observations of 1.0 into [`BUCKETED`] and into [`SUMMARY`].
    observations: u64,
    /// Increments of this thread's [`PER_THREAD`] series (and of [`SHARED`]).
    increments: u64,
    /// `get` calls answered with / without a value.
    get_hits: u64,
    get_misses: u64,
    /// `get_with` calls, and how many of them ran their loader.
    get_withs: u64,
    loads: u64,
    /// `insert_with` calls.
    inserts: u64,
    /// `invalidate_tag` calls, and the sum of what they returned.
    tag_invalidations: u64,
    invalidated: u64,
}

impl Recorded {
    fn add(&mut self, other: &Recorded) {
        self.ok += other.ok;
        self.error += other.error;
        self.observations += other.observations;
        self.increments += other.increments;
        self.get_hits += other.get_hits;
        self.get_misses += other.get_misses;
        self.get_withs += other.get_withs;
        self.loads += other.loads;
        self.inserts += other.inserts;
        self.tag_invalidations += other.tag_invalidations;
        self.invalidated += other.invalidated;
    }
}

/// A small xorshift generator: each thread its own, seeded by its index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One recording thread's loop until `stop`: a timed call, histogram
/// observations, counters, a gauge and a cache operation per iteration.
fn record(
    monitor: &Monitor,
    cache: &TaggedCache<u64, u64>,
    thread: usize,
    stop: &AtomicBool,
) -> Recorded {
    let mut done = Recorded::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (thread as u64 + 1));
    let thread_label = thread.to_string();
    vigil::with_local_recorder(&monitor.recorder(), || {
        while !stop.load(Ordering::Relaxed) {
            let n = rng.next();
            metrics::gauge!(IN_FLIGHT).increment(1.0);
            match stress_op(n) {
                Ok(_) => done.ok += 1,
                Err(_) => done.error += 1,
            }
            metrics::histogram!(BUCKETED, "thread" => thread_label.clone()).record(1.0);
            metrics::histogram!(SUMMARY).record(1.0);
            done.observations += 1;
            metrics::counter!(PER_THREAD, "thread" => thread_label.clone()).increment(1);
            metrics::counter!(SHARED).increment(1);
            done.increments += 1;

            let key = (n >> 8) % KEYS;
            match (n >> 40) % 64 {
                0..=29 => match cache.get(&key) {
                    Some(_) => done.get_hits += 1,
                    None => done.get_misses += 1,
                },
                30..=51 => {
                    done.get_withs += 1;
                    let mut loaded = false;
                    cache.get_with_options(key, || {
                        loaded = true;
                        (key, EntryOptions::default().tag(format!("t{}", key % TAGS)))
                    });
                    done.loads += u64::from(loaded);
                }
                52..=62 => {
                    let tag = format!("t{}", key % TAGS);
                    cache.insert_with(key, key, EntryOptions::default().tag(tag));
                    done.inserts += 1;
                }
                _ => {
                    done.tag_invalidations += 1;
                    done.invalidated += cache.invalidate_tag(&format!("t{}", key % TAGS));
                }
            }
            metrics::gauge!(IN_FLIGHT).decrement(1.0);
        }
    });
    done
}

/// Inconsistencies a reader saw, with the first few for the report.
#[derive(Default, Debug)]
struct Findings {
    /// Reads done (renders, summaries, ...).
    reads: u64,
    /// Every inconsistency seen.
    count: u64,
    /// The first few, described.
    examples: Vec<String>,
}

impl Findings {
    fn report(&mut self, what: String) {
        self.count += 1;
        if self.examples.len() < 5 {
            self.examples.push(what);
        }
    }

    /// Notes `value` for `series` and reports it if it is below the value
    /// seen last time.
    fn monotonic(&mut self, last: &mut HashMap<String, f64>, series: &str, value: f64, read: u64) {
        match last.insert(series.to_owned(), value) {
            Some(before) if value < before => self.report(format!(
                "read {read}: {series} went from {before} to {value}"
            )),
            _ => {}
        }
    }
}

/// One histogram series of a text render: its bucket counts in order,
/// `_sum` and `_count`.
#[derive(Default, Debug)]
struct TextHistogram {
    buckets: Vec<(String, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
}

/// Checks one text render: counters (and histogram `_count`s) never below
/// the last render's, `_count` equal to the `+Inf` bucket, buckets
/// cumulative, and `_sum` equal to `_count` for the series recording 1.0.
fn check_text(
    text: &str,
    read: u64,
    last: &mut HashMap<String, f64>,
    findings: &mut Findings,
) -> usize {
    let mut kinds: HashMap<&str, &str> = HashMap::new();
    let mut histograms: BTreeMap<String, TextHistogram> = BTreeMap::new();
    let mut samples = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            kinds.insert(name, kind);
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples += 1;
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let value: f64 = value.parse().expect("a sample value");
        let name = series.split('{').next().unwrap_or(series);
        if kinds.get(name) == Some(&"counter") {
            findings.monotonic(last, series, value, read);
            continue;
        }
        let Some((family, part)) = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let family = name.strip_suffix(suffix)?;
            matches!(kinds.get(family), Some(&"histogram" | &"summary"))
                .then_some((family, *suffix))
        }) else {
            continue;
        };
        let labels = &series[name.len()..];
        match part {
            "_bucket" => {
                // `le` is the last label: group the buckets without it.
                let (rest, le) = labels.rsplit_once("le=\"").expect("a bucket has le");
                let le = le.trim_end_matches("\"}").to_owned();
                let rest = rest.trim_end_matches([',', '{']);
                let key = if rest.is_empty() {
                    family.to_owned()
                } else {
                    format!("{family}{rest}}}")
                };
                histograms.entry(key).or_default().buckets.push((le, value));
            }
            "_sum" => {
                histograms
                    .entry(format!("{family}{labels}"))
                    .or_default()
                    .sum = Some(value)
            }
            _ => {
                findings.monotonic(last, series, value, read);
                histograms
                    .entry(format!("{family}{labels}"))
                    .or_default()
                    .count = Some(value);
            }
        }
    }
    for (series, histogram) in &histograms {
        check_histogram(read, series, histogram, findings);
    }
    samples
}

/// The checks of one histogram series of a text render.
fn check_histogram(read: u64, series: &str, histogram: &TextHistogram, findings: &mut Findings) {
    let (Some(sum), Some(count)) = (histogram.sum, histogram.count) else {
        findings.report(format!(
            "read {read}: {series} lacks _sum or _count: {histogram:?}"
        ));
        return;
    };
    if !histogram.buckets.is_empty() {
        if histogram
            .buckets
            .windows(2)
            .any(|pair| pair[1].1 < pair[0].1)
        {
            findings.report(format!(
                "read {read}: {series} buckets not cumulative: {:?}",
                histogram.buckets
            ));
        }
        match histogram.buckets.last() {
            Some((le, inf)) if le == "+Inf" && *inf == count => {}
            other => findings.report(format!(
                "read {read}: {series} _count {count} but last bucket {other:?}"
            )),
        }
    }
    let ones = series.starts_with(BUCKETED) || series.starts_with(SUMMARY);
    if ones && sum != count {
        findings.report(format!(
            "read {read}: {series} records only 1.0 but _sum {sum} != _count {count}"
        ));
    }
}

/// The total of a native histogram's delta-encoded bucket counts.
fn delta_total(deltas: &[i64]) -> i64 {
    let mut count = 0i64;
    deltas
        .iter()
        .map(|delta| {
            count += delta;
            count
        })
        .sum()
}

/// Fetches and checks one protobuf exposition: counters and sample counts
/// never below the last one's, native buckets (with the zero bucket)
/// adding up to the sample count, classic buckets cumulative and within
/// it, and the sum equal to the count for the series recording 1.0.
fn check_protobuf(
    target: SocketAddr,
    read: u64,
    last: &mut HashMap<String, f64>,
    findings: &mut Findings,
) {
    let answer = servers::http_get_accepting(target, "/metrics", Some(PROTOBUF_ACCEPT))
        .expect("the listener answers");
    assert_eq!(answer.status, 200);
    let mut body = &answer.body[..];
    while !body.is_empty() {
        let family =
            MetricFamily::decode_length_delimited(&mut body).expect("a length-delimited family");
        for metric in &family.metric {
            let labels: Vec<String> = metric
                .label
                .iter()
                .map(|pair| format!("{}={:?}", pair.name, pair.value))
                .collect();
            let series = format!("{}{{{}}}", family.name, labels.join(","));
            if let Some(counter) = &metric.counter {
                findings.monotonic(last, &series, counter.value, read);
            }
            let Some(histogram) = &metric.histogram else {
                continue;
            };
            let count = histogram.sample_count;
            findings.monotonic(last, &format!("{series}:count"), count as f64, read);
            let native = i128::from(histogram.zero_count)
                + i128::from(delta_total(&histogram.positive_delta))
                + i128::from(delta_total(&histogram.negative_delta));
            if native != i128::from(count) {
                findings.report(format!(
                    "protobuf read {read}: {series} native buckets hold {native}, sample_count {count}"
                ));
            }
            let classic: Vec<u64> = histogram
                .bucket
                .iter()
                .map(|b| b.cumulative_count)
                .collect();
            if classic.windows(2).any(|pair| pair[1] < pair[0])
                || classic.last().is_some_and(|&last| last > count)
            {
                findings.report(format!(
                    "protobuf read {read}: {series} classic buckets {classic:?} with sample_count {count}"
                ));
            }
            let ones = family.name == BUCKETED || family.name == SUMMARY;
            if ones && histogram.sample_sum != count as f64 {
                findings.report(format!(
                    "protobuf read {read}: {series} records only 1.0 but sample_sum {} != sample_count {count}",
                    histogram.sample_sum
                ));
            }
        }
    }
}

/// Checks one JSON summary: it reads back as it was written, counter
/// totals and histogram counts never go down, and the histograms recording
/// 1.0 have `sum == count`.
fn check_summary(
    summary: &MetricsSummary,
    read: u64,
    last: &mut HashMap<String, f64>,
    findings: &mut Findings,
) {
    let json = serde_json::to_string(summary).expect("a summary serializes");
    match serde_json::from_str::<MetricsSummary>(&json) {
        Ok(back) => {
            let written = serde_json::to_value(summary).expect("a summary serializes");
            let read_back = serde_json::to_value(&back).expect("a summary serializes");
            if !same_json(&written, &read_back) {
                findings.report(format!("summary {read} reads back differently: {json}"));
            }
        }
        Err(error) => findings.report(format!("summary {read} does not read back: {error}")),
    }
    for counter in &summary.counters {
        let series = format!("{}{:?}", counter.name, counter.labels);
        findings.monotonic(last, &series, counter.total as f64, read);
    }
    for histogram in &summary.histograms {
        let series = format!("{}{:?}", histogram.name, histogram.labels);
        let total = &histogram.total;
        findings.monotonic(last, &series, total.count as f64, read);
        let ones = histogram.name == BUCKETED || histogram.name == SUMMARY;
        if ones && total.sum != total.count as f64 {
            findings.report(format!(
                "summary {read}: {series} records only 1.0 but sum {} != count {}",
                total.sum, total.count
            ));
        }
    }
}

/// Whether two JSON documents are equal, numbers within a relative 1e-12
/// (serde_json's default float parser may miss the last bit of a decimal
/// it wrote).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// What the readers saw, by reader.
#[derive(Debug, Default)]
struct Readers {
    text: Findings,
    protobuf: Findings,
    summary: Findings,
    upkeeps: u64,
    evaluations: u64,
    /// The rules that started firing in some evaluation.
    fired: BTreeSet<String>,
}

/// Runs the load for `duration`: one recording thread per core and five
/// readers. Returns what the recorders did and what the readers saw.
fn run_load(
    monitor: &Monitor,
    cache: &TaggedCache<u64, u64>,
    duration: Duration,
    tick: &mut dyn FnMut(),
) -> (Recorded, Readers) {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let stop = AtomicBool::new(false);
    let readers = Mutex::new(Readers::default());
    let start = Barrier::new(cores + 6);
    let target = monitor.listen_address().expect("the monitor listens");
    let mut recorded = Recorded::default();
    std::thread::scope(|scope| {
        let recorders: Vec<_> = (0..cores)
            .map(|thread| {
                let (stop, start) = (&stop, &start);
                scope.spawn(move || {
                    start.wait();
                    record(monitor, cache, thread, stop)
                })
            })
            .collect();
        let (stop, start, readers) = (&stop, &start, &readers);
        scope.spawn(move || {
            start.wait();
            let (mut findings, mut last) = (Findings::default(), HashMap::new());
            while !stop.load(Ordering::Relaxed) {
                findings.reads += 1;
                let text = monitor.render();
                check_text(&text, findings.reads, &mut last, &mut findings);
            }
            readers.lock().unwrap().text = findings;
        });
        scope.spawn(move || {
            start.wait();
            let (mut findings, mut last) = (Findings::default(), HashMap::new());
            while !stop.load(Ordering::Relaxed) {
                findings.reads += 1;
                check_protobuf(target, findings.reads, &mut last, &mut findings);
            }
            readers.lock().unwrap().protobuf = findings;
        });
        scope.spawn(move || {
            start.wait();
            let (mut findings, mut last) = (Findings::default(), HashMap::new());
            vigil::with_local_recorder(&monitor.recorder(), || {
                while !stop.load(Ordering::Relaxed) {
                    findings.reads += 1;
                    cache.publish_metrics();
                    let summary = monitor.summary();
                    check_summary(&summary, findings.reads, &mut last, &mut findings);
                }
            });
            readers.lock().unwrap().summary = findings;
        });
        scope.spawn(move || {
            start.wait();
            let mut upkeeps = 0;
            while !stop.load(Ordering::Relaxed) {
                monitor.upkeep();
                upkeeps += 1;
            }
            readers.lock().unwrap().upkeeps = upkeeps;
        });
        scope.spawn(move || {
            start.wait();
            let (mut evaluations, mut fired) = (0, BTreeSet::new());
            while !stop.load(Ordering::Relaxed) {
                for transition in monitor.evaluate_alerts(SystemTime::now()) {
                    if transition.to == State::Firing {
                        fired.insert(transition.rule);
                    }
                }
                evaluations += 1;
            }
            let mut readers = readers.lock().unwrap();
            readers.evaluations = evaluations;
            readers.fired = fired;
        });
        start.wait();
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            tick();
            std::thread::sleep(Duration::from_millis(100).min(deadline - Instant::now()));
        }
        stop.store(true, Ordering::Relaxed);
        for recorder in recorders {
            recorded.add(&recorder.join().expect("a recording thread finishes"));
        }
    });
    (recorded, readers.into_inner().unwrap())
}

/// The value of the one sample of `text` whose line starts with `prefix`
/// and contains every one of `parts`, summed over matching lines.
fn sample(text: &str, prefix: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(prefix) && parts.iter().all(|part| line.contains(part)))
        .map(|line| {
            let (_, value) = line.rsplit_once(' ').expect("a sample line");
            value.parse::<f64>().expect("a sample value")
        })
        .sum()
}

#[test]
fn counts_are_exact_and_every_read_is_consistent_under_load() {
    let duration = seconds_from_env("VIGIL_STRESS_SECONDS", 10);
    let monitor = monitor();
    let cache = cache();
    let (done, readers) = run_load(&monitor, &cache, duration, &mut || {});
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    eprintln!(
        "{cores} recording threads for {duration:?}: {done:?}\n{} text renders, {} protobuf \
         renders, {} summaries, {} upkeeps, {} alert evaluations",
        readers.text.reads,
        readers.protobuf.reads,
        readers.summary.reads,
        readers.upkeeps,
        readers.evaluations
    );

    // Every reader read, and saw nothing inconsistent.
    let mut inconsistent = String::new();
    for (name, findings) in [
        ("text", &readers.text),
        ("protobuf", &readers.protobuf),
        ("summary", &readers.summary),
    ] {
        assert!(
            findings.reads > 1,
            "the {name} reader read {} times",
            findings.reads
        );
        if findings.count > 0 {
            inconsistent += &format!(
                "{} of {} {name} reads were inconsistent; first: {:#?}\n",
                findings.count, findings.reads, findings.examples
            );
        }
    }
    assert!(inconsistent.is_empty(), "{inconsistent}");
    assert!(
        readers.upkeeps > 1 && readers.evaluations > 1,
        "{readers:?}"
    );
    assert!(done.ok > 0 && done.error > 0 && done.loads > 0, "{done:?}");

    // Every call, observation and increment is in the exposition.
    let text = monitor.render();
    let calls = |result: &str| {
        sample(
            &text,
            "function_calls_total{",
            &["function=\"stress_op\"", &format!("result=\"{result}\"")],
        )
    };
    assert_eq!(calls("ok"), done.ok as f64, "{text}");
    assert_eq!(calls("error"), done.error as f64, "{text}");
    let durations = |suffix: &str| {
        sample(
            &text,
            &format!("function_calls_duration_seconds_{suffix}"),
            &["function=\"stress_op\""],
        )
    };
    assert_eq!(durations("count{"), (done.ok + done.error) as f64);
    assert_eq!(
        sample(
            &text,
            "function_calls_duration_seconds_bucket{",
            &["function=\"stress_op\"", "le=\"+Inf\""]
        ),
        (done.ok + done.error) as f64
    );
    let observations = done.observations as f64;
    assert_eq!(
        sample(&text, &format!("{BUCKETED}_count{{"), &[]),
        observations
    );
    assert_eq!(
        sample(&text, &format!("{BUCKETED}_sum{{"), &[]),
        observations
    );
    assert_eq!(
        sample(&text, &format!("{BUCKETED}_bucket{{"), &["le=\"0.5\""]),
        0.0
    );
    assert_eq!(
        sample(&text, &format!("{BUCKETED}_bucket{{"), &["le=\"2\""]),
        observations
    );
    assert_eq!(
        sample(&text, &format!("{SUMMARY}_count{{"), &[]),
        observations
    );
    assert_eq!(
        sample(&text, &format!("{SUMMARY}_sum{{"), &[]),
        observations
    );
    assert_eq!(
        sample(&text, &format!("{SHARED}{{"), &[]),
        done.increments as f64
    );
    assert_eq!(
        sample(&text, &format!("{PER_THREAD}{{"), &[]),
        done.increments as f64
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with(PER_THREAD)).count(),
        cores,
        "one series per recording thread"
    );
    assert_eq!(sample(&text, &format!("{IN_FLIGHT}{{"), &[]), 0.0);
    let summary = monitor.summary();
    let bucketed: u64 = summary
        .histograms
        .iter()
        .filter(|h| h.name == BUCKETED)
        .map(|h| h.total.count)
        .sum();
    assert_eq!(bucketed, done.observations);

    // The cache's statistics reconcile with what the threads did.
    cache.run_pending_tasks();
    let stats = cache.stats();
    assert_eq!(
        stats.hits + stats.misses,
        done.get_hits + done.get_misses + done.get_withs,
        "{stats:?} {done:?}"
    );
    assert_eq!(
        stats.misses,
        done.get_misses + done.loads,
        "{stats:?} {done:?}"
    );
    // Every insert is stored; a load is stored unless a write or an
    // invalidation of its key or tag began while it ran.
    assert!(
        (done.inserts..=done.inserts + done.loads).contains(&stats.inserts),
        "{stats:?} {done:?}"
    );
    assert_eq!(
        stats.tag_invalidations, done.invalidated,
        "{stats:?} {done:?}"
    );
    let ended = stats.evictions.size
        + stats.evictions.expired
        + stats.evictions.replaced
        + stats.invalidations
        + stats.tag_invalidations;
    assert_eq!(stats.inserts - ended, stats.entry_count, "{stats:?}");
    assert!(stats.entry_count <= 512, "{stats:?}");
    vigil::with_local_recorder(&monitor.recorder(), || cache.publish_metrics());
    let text = monitor.render();
    let requests = |result: &str| {
        sample(
            &text,
            "cache_requests_total{",
            &["cache=\"stress\"", &format!("result=\"{result}\"")],
        )
    };
    assert_eq!(requests("hit"), stats.hits as f64);
    assert_eq!(requests("miss"), stats.misses as f64);

    // The rules read the registry under load: events flow, and every
    // observation is 1.0 (above 0.5); nothing is ever 10^12 in flight.
    assert_eq!(
        readers.fired,
        BTreeSet::from(["StressEvents".to_owned(), "StressLatency".to_owned()]),
        "the rules that fired"
    );
}

/// This process's resident set in KiB, from `/proc/self/statm`.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm is readable");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("statm's second field is the resident page count");
    // Linux pages are 4 KiB on the machines vigil is tested on.
    pages * 4
}

/// How far the resident set may grow after the warm-up.
const RSS_GROWTH_LIMIT_KIB: u64 = 8 * 1024;

/// Set in the child process that runs the soak.
const SOAK_CHILD: &str = "VIGIL_STRESS_SOAK_CHILD";

/// The soak: in a child process (the other test of this binary would
/// disturb the reading), the load above for a warm-up, then for a measured
/// period in which the resident set must not grow by more than
/// [`RSS_GROWTH_LIMIT_KIB`].
#[test]
fn resident_memory_is_flat_after_warm_up() {
    if std::env::var_os(SOAK_CHILD).is_some() {
        soak();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "resident_memory_is_flat_after_warm_up",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SOAK_CHILD, "1")
        .output()
        .expect("the test binary runs again");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{report}");
    assert!(output.status.success(), "the soak failed:\n{report}");
    assert!(report.contains("rss growth after warm-up"), "{report}");
}

/// The soak's body, in the child process.
fn soak() {
    let warm_up = seconds_from_env("VIGIL_SOAK_WARMUP_SECONDS", 3);
    let measured = seconds_from_env("VIGIL_SOAK_SECONDS", 5);
    let monitor = monitor();
    let cache = cache();
    let started = Instant::now();
    let mut baseline = None;
    let mut samples = Vec::new();
    let mut tick = || {
        let rss = rss_kib();
        if started.elapsed() >= warm_up {
            let base = *baseline.get_or_insert(rss);
            samples.push(rss.saturating_sub(base));
        }
    };
    let (done, _) = run_load(&monitor, &cache, warm_up + measured, &mut tick);
    let growth = samples.iter().copied().max().unwrap_or(0);
    eprintln!(
        "rss after warm-up {} KiB, rss growth after warm-up: {growth} KiB (samples {samples:?}); \
         {} calls",
        baseline.unwrap_or(0),
        done.ok + done.error
    );
    assert!(
        samples.len() > 5,
        "too few samples after the warm-up: {samples:?}"
    );
    assert!(
        growth <= RSS_GROWTH_LIMIT_KIB,
        "resident set grew by {growth} KiB after the warm-up (limit {RSS_GROWTH_LIMIT_KIB} KiB): {samples:?}"
    );
}
