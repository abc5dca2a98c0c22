//! Memory follows the data: the buckets a histogram uses and the threads
//! that record into it at the same time, never the configured range times
//! the CPU count, and never the number of threads a process ever had.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use vigil_histogram::{Config, Histogram, Window};

/// Latency-like values (0.5 ms to ~200 ms, log-spread), deterministic.
fn latencies(seed: u64, n: usize) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let exponent = (x % 1_000) as f64 / 1_000.0 * 8.6; // 2^0 .. 2^8.6
            (500_000.0 * exponent.exp2()) as u64
        })
        .collect()
}

fn record_from_threads(histogram: &Histogram, threads: u64, values_per_thread: usize) {
    let barrier = Barrier::new(threads as usize);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait(); // every thread alive and recording at once
                for v in latencies(t + 1, values_per_thread) {
                    histogram.record(v);
                }
            });
        }
    });
}

#[test]
fn a_series_of_twenty_latencies_fits_the_budget() {
    let one = Histogram::new();
    record_from_threads(&one, 1, 20);
    let two = Histogram::new();
    record_from_threads(&two, 2, 20);
    // Reads and a rotation allocate the baseline and a ring entry too.
    for histogram in [&one, &two] {
        histogram.summary(Window::Last(Duration::from_secs(60)));
    }
    let (one, two) = (one.memory_bytes(), two.memory_bytes());
    eprintln!("memory per series: 1 thread {one} B, 2 threads {two} B");
    assert!(one <= 16 * 1024, "1 thread: {one} bytes");
    assert!(two <= 32 * 1024, "2 threads: {two} bytes");
}

#[test]
fn a_series_recorded_by_one_thread_does_not_grow_with_the_slot_count() {
    let sizes: Vec<usize> = [1, 2, 8, 64]
        .into_iter()
        .map(|slots| {
            let histogram = Arc::new(Config::new().shards(slots).build().unwrap());
            // Three threads in turn, each gone before the next starts: the
            // later ones take over the first one's shard.
            for seed in [7, 8, 9] {
                let histogram = Arc::clone(&histogram);
                std::thread::spawn(move || {
                    latencies(seed, 1_000)
                        .into_iter()
                        .for_each(|v| histogram.record(v));
                })
                .join()
                .unwrap();
            }
            histogram.memory_bytes()
        })
        .collect();
    assert!(sizes.iter().all(|&size| size == sizes[0]), "{sizes:?}");
}

#[test]
fn ten_thousand_short_lived_threads_cost_no_more_than_ten_and_lose_nothing() {
    let config = || Config::new().shards(16);
    let values = latencies(42, 5);

    // Ten threads recording at once: the reference.
    let ten = Arc::new(config().build().unwrap());
    let barrier = Arc::new(Barrier::new(10));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (ten, barrier, values) = (Arc::clone(&ten), Arc::clone(&barrier), values.clone());
            std::thread::spawn(move || {
                values.iter().for_each(|&v| ten.record(v));
                barrier.wait(); // all ten hold their shards at once
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());

    // Ten thousand threads, ten at a time, each gone before the next ten
    // start (`join` waits for the thread-local destructor that releases
    // its shard).
    let many = Arc::new(config().build().unwrap());
    for _ in 0..1_000 {
        let threads: Vec<_> = (0..10)
            .map(|_| {
                let (many, values) = (Arc::clone(&many), values.clone());
                std::thread::spawn(move || values.iter().for_each(|&v| many.record(v)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    }

    let snapshot = many.snapshot(Window::Cumulative);
    assert_eq!(snapshot.count(), 10_000 * values.len() as u64);
    let exact: u64 = values.iter().sum::<u64>() * 10_000;
    assert_eq!(snapshot.sum(), exact as f64 / 1e9);
    ten.snapshot(Window::Cumulative);
    assert!(
        many.memory_bytes() <= ten.memory_bytes(),
        "10 000 threads: {} bytes, 10 threads: {} bytes",
        many.memory_bytes(),
        ten.memory_bytes()
    );
}

#[test]
fn memory_follows_used_buckets_not_the_range() {
    let narrow = Histogram::new();
    narrow.record(1_000);
    let wide = Histogram::new();
    for v in latencies(3, 10_000) {
        wide.record(v);
    }
    // One bucket: a page and a group. Ten thousand spread values: more
    // pages, still a fraction of the dense 270 KB array.
    assert!(
        narrow.memory_bytes() < 4 * 1024,
        "{}",
        narrow.memory_bytes()
    );
    assert!(wide.memory_bytes() < 200 * 1024, "{}", wide.memory_bytes());
    assert!(wide.memory_bytes() > narrow.memory_bytes());
}

#[test]
fn an_empty_histogram_is_a_few_hundred_bytes() {
    let empty = Histogram::new().memory_bytes();
    eprintln!("empty histogram: {empty} B");
    assert!(empty < 1_024, "{empty} bytes");
}
