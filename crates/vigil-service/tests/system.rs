//! System and process metrics: one tick records every name with sane
//! values, the history ring keeps the newest readings, the thread stops.
#![cfg(feature = "system")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use vigil_service::system::{SystemCollector, SystemHistory, SystemSample, SystemThread};

/// Each name's values, with their labels as `key=value`.
type Values = BTreeMap<String, Vec<(Vec<String>, f64)>>;

/// One tick's reading, every name it records with its values, and the
/// names described.
fn collect_once() -> (SystemSample, Values, Vec<String>) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut collector = SystemCollector::new();
    let sample = metrics::with_local_recorder(&recorder, || collector.collect());
    let mut values = Values::new();
    let mut described = Vec::new();
    for (key, _unit, description, value) in snapshotter.snapshot().into_vec() {
        let name = key.key().name().to_owned();
        let labels = key
            .key()
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(x) => x.into_inner(),
            DebugValue::Histogram(_) => panic!("{name} is not a histogram"),
        };
        if description.is_some() {
            described.push(name.clone());
        }
        values.entry(name).or_default().push((labels, value));
    }
    (sample, values, described)
}

fn only(values: &Values, name: &str) -> f64 {
    match values.get(name).map(Vec::as_slice) {
        Some([(labels, value)]) if labels.is_empty() => *value,
        other => panic!("{name}: expected one unlabelled value, got {other:?}"),
    }
}

#[test]
fn one_collect_records_every_metric_with_sane_values() {
    let (sample, values, described) = collect_once();
    for name in [
        "system_cpu_usage_ratio",
        "system_memory_usage_ratio",
        "system_swap_usage_ratio",
    ] {
        let ratio = only(&values, name);
        assert!((0.0..=1.0).contains(&ratio), "{name} = {ratio}");
    }
    assert!(only(&values, "system_memory_used_bytes") > 0.0);
    for name in ["system_load1", "system_load5", "system_load15"] {
        assert!(only(&values, name) >= 0.0, "{name}");
    }
    assert!(only(&values, "process_resident_memory_bytes") > 0.0);
    assert!(
        only(&values, "process_virtual_memory_bytes")
            >= only(&values, "process_resident_memory_bytes")
    );
    assert!(only(&values, "process_cpu_seconds_total") >= 0.0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = only(&values, "process_start_time_seconds");
    assert!(
        started > 1.0e9 && started <= now,
        "start time {started} vs now {now}"
    );

    #[cfg(target_os = "linux")]
    {
        assert!(
            only(&values, "process_open_fds") >= 3.0,
            "stdin, stdout, stderr at least"
        );
        // The test harness runs this test on a thread of its own.
        assert!(only(&values, "process_threads") >= 2.0);
        let disks = &values["system_disk_usage_ratio"];
        assert!(!disks.is_empty(), "a Linux host has a root file system");
        for (labels, ratio) in disks {
            assert!(
                labels.len() == 1 && labels[0].starts_with("mount=/"),
                "{labels:?}"
            );
            assert!((0.0..=1.0).contains(ratio), "{labels:?} = {ratio}");
        }
        for name in [
            "system_network_received_bytes_total",
            "system_network_transmitted_bytes_total",
        ] {
            let interfaces = &values[name];
            assert!(
                interfaces
                    .iter()
                    .any(|(labels, _)| labels == &["interface=lo"]),
                "{name}: {interfaces:?}"
            );
            assert!(interfaces.len() <= 64);
        }
    }

    // Every recorded name is described.
    for name in values.keys() {
        assert!(described.contains(name), "{name} has no description");
    }
    assert!((0.0..=1.0).contains(&sample.cpu_ratio));
    assert_eq!(
        sample.memory_used_bytes as f64,
        only(&values, "system_memory_used_bytes")
    );
    assert!(sample.memory_total_bytes >= sample.memory_used_bytes);
    assert!(sample.process_resident_bytes > 0);
    assert_eq!(sample.load[0], only(&values, "system_load1"));
    for disk in &sample.disks {
        assert!(
            disk.total_bytes > 0 && disk.used_bytes <= disk.total_bytes,
            "{disk:?}"
        );
    }
}

#[test]
fn a_collect_sooner_than_the_cpu_interval_waits_for_it() {
    // CPU usage is the change between two readings; closer than this
    // they read 0 or a spike, which would stay in the history.
    let interval = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
    let recorder = DebuggingRecorder::new();
    let created = Instant::now();
    let mut collector = SystemCollector::new();
    let first = metrics::with_local_recorder(&recorder, || collector.collect());
    assert!(
        created.elapsed() >= interval,
        "the first reading comes {interval:?} after the one new() takes at least"
    );
    assert!((0.0..=1.0).contains(&first.cpu_ratio));
    metrics::with_local_recorder(&recorder, || collector.collect());
    assert!(
        created.elapsed() >= interval * 2,
        "and every later one {interval:?} after the one before"
    );
}

fn sample(seconds: u64, cpu_ratio: f64, memory_ratio: f64) -> SystemSample {
    SystemSample {
        at: UNIX_EPOCH + Duration::from_secs(seconds),
        cpu_ratio,
        memory_used_bytes: (memory_ratio * 1000.0) as u64,
        memory_total_bytes: 1000,
        memory_ratio,
        swap_ratio: 0.0,
        disks: Vec::new(),
        load: [0.0; 3],
        process_resident_bytes: 1,
    }
}

#[test]
fn history_keeps_the_newest_readings_oldest_first() {
    let mut history = SystemHistory::new(3);
    assert!(history.is_empty());
    assert_eq!(history.latest(), None);
    for second in 1..=5 {
        history.push(sample(second, 0.1, 0.5));
    }
    assert_eq!(history.len(), 3);
    assert_eq!(history.capacity(), 3);
    let seconds: Vec<u64> = history
        .samples()
        .iter()
        .map(|s| s.at.duration_since(UNIX_EPOCH).unwrap().as_secs())
        .collect();
    assert_eq!(seconds, [3, 4, 5]);
    assert_eq!(
        history.latest().map(|s| s.at),
        Some(UNIX_EPOCH + Duration::from_secs(5))
    );
    assert_eq!(
        SystemHistory::new(0).capacity(),
        1,
        "a history holds one reading at least"
    );
}

#[test]
fn thread_takes_a_reading_before_spawn_returns_and_stops_on_drop() {
    let recorder = Arc::new(DebuggingRecorder::new());
    let snapshotter = recorder.snapshotter();
    let history = Arc::new(Mutex::new(SystemHistory::new(4)));
    // An interval far longer than the test: only the first reading is taken.
    let thread = SystemThread::spawn(
        Duration::from_secs(3600),
        Some(recorder),
        Arc::clone(&history),
    )
    .unwrap();
    assert_eq!(history.lock().unwrap().len(), 1);
    let names: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, ..)| key.key().name().to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "system_memory_usage_ratio"),
        "{names:?}"
    );
    assert!(thread.is_running());
    let dropped = Instant::now();
    drop(thread);
    // Dropping interrupts the hour-long wait and joins the thread.
    assert!(dropped.elapsed() < Duration::from_secs(60));
    assert_eq!(history.lock().unwrap().len(), 1);
    assert_eq!(
        Arc::strong_count(&history),
        1,
        "the thread is gone with its handle on the history"
    );
}

#[test]
fn history_windows_summarise_the_readings_held() {
    let mut history = SystemHistory::new(4);
    assert_eq!(history.cpu(), None);
    assert_eq!(history.memory(), None);
    // The first reading falls out of the ring.
    for (second, cpu, memory) in [
        (1, 0.9, 0.9),
        (2, 0.2, 0.5),
        (3, 0.6, 0.25),
        (4, 0.4, 0.75),
        (5, 0.8, 0.5),
    ] {
        history.push(sample(second, cpu, memory));
    }
    let cpu = history.cpu().unwrap();
    assert_eq!(
        (cpu.current, cpu.min, cpu.max, cpu.samples),
        (0.8, 0.2, 0.8, 4)
    );
    assert!((cpu.average - 0.5).abs() < 1e-12, "{cpu:?}");
    let memory = history.memory().unwrap();
    assert_eq!(
        (memory.current, memory.min, memory.max, memory.samples),
        (0.5, 0.25, 0.75, 4)
    );
    assert!((memory.average - 0.5).abs() < 1e-12, "{memory:?}");
}
