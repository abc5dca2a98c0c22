//! Reads agree with themselves while other threads record: threads record
//! exactly 1.0 (seconds) without pause, and every read's sum equals its
//! count, its buckets add up to its count, and the counts at exact bounds
//! are 0 below 1.0 and the count from 1.0 up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vigil_histogram::{Config, Window};

#[test]
fn reads_agree_with_themselves_while_threads_record() {
    // Two shards owned, the third thread and later share one with
    // `fetch_add`: both kinds of writer are checked.
    let histogram = Config::new()
        .exact_bounds(&[0.5, 1.0, 2.0])
        .shards(2)
        .build()
        .unwrap();
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_millis(1_500);
    let mut wrong = Vec::new();
    let mut reads = 0u32;
    let recorded: u64 = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (histogram, stop) = (&histogram, &stop);
                s.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        histogram.record_f64(1.0);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut bounds = Vec::new();
        while Instant::now() < deadline {
            reads += 1;
            let (count, sum) = histogram.bound_counts(&mut bounds);
            if sum != count as f64 || bounds != [0, count, count] {
                wrong.push(format!("bound_counts: {count} {sum} {bounds:?}"));
            }
            let (count, sum) = histogram.totals();
            if sum != count as f64 {
                wrong.push(format!("totals: {count} {sum}"));
            }
            for window in [Window::Cumulative, Window::Last(Duration::from_secs(60))] {
                let snapshot = histogram.snapshot(window);
                let buckets: u64 = snapshot.buckets().map(|b| b.count).sum();
                if snapshot.sum() != snapshot.count() as f64 || buckets != snapshot.count() {
                    wrong.push(format!(
                        "{window:?}: count {} sum {} buckets {buckets}",
                        snapshot.count(),
                        snapshot.sum()
                    ));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    });
    assert!(
        wrong.is_empty(),
        "{} of {reads} reads disagreed: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(reads >= 20, "only {reads} reads");
    assert_eq!(histogram.totals(), (recorded, recorded as f64));
    assert_eq!(histogram.snapshot(Window::Cumulative).count(), recorded);
}
