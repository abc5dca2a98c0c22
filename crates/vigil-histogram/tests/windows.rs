//! Sliding windows under a mock clock: a window holds exactly what was
//! recorded inside it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use vigil_histogram::{Config, Histogram, Snapshot, Window};

const INTERVAL: Duration = Duration::from_secs(10);

fn mocked(intervals: usize) -> (Histogram, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let histogram = Config::new()
        .interval(INTERVAL)
        .intervals(intervals)
        .clock(clock)
        .build()
        .unwrap();
    (histogram, mock)
}

fn assert_holds(snapshot: &Snapshot, values: &[u64]) {
    let mut reference =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
    values.iter().for_each(|&v| reference.record(v).unwrap());
    assert_eq!(snapshot.count(), values.len() as u64);
    for (ours, theirs) in snapshot.histogram().iter_all().zip(reference.iter_all()) {
        assert_eq!(
            ours.count_at_value(),
            theirs.count_at_value(),
            "at {}",
            theirs.value_iterated_to()
        );
    }
    let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
    assert_eq!(snapshot.sum(), sum as f64 / 1e9);
}

#[test]
fn each_window_holds_only_the_batches_recorded_inside_it() {
    let (histogram, mock) = mocked(3);
    let batches: [&[u64]; 5] = [
        &[1_000; 4],
        &[2_000; 3],
        &[3_000, 3_001],
        &[4_000],
        &[5_000; 5],
    ];
    for (i, batch) in batches.iter().enumerate() {
        if i > 0 {
            mock.increment(INTERVAL);
            histogram.upkeep();
        }
        batch.iter().for_each(|&v| histogram.record(v));
    }
    mock.increment(Duration::from_secs(4)); // 4 s into the current interval
    let last = |secs| histogram.snapshot(Window::Last(Duration::from_secs(secs)));

    assert_holds(&last(1), batches[4]);
    assert_holds(&last(10), batches[4]);
    assert_eq!(last(10).window(), Duration::from_secs(4));
    assert_holds(&last(11), &[batches[3], batches[4]].concat());
    assert_holds(&last(20), &[batches[3], batches[4]].concat());
    assert_eq!(last(20).window(), Duration::from_secs(14));
    assert_holds(&last(30), &[batches[2], batches[3], batches[4]].concat());
    // The ring keeps 3 completed intervals: batch 0 has left every Last window.
    assert_holds(&last(3_600), &batches[1..].concat());
    assert_eq!(last(3_600).window(), Duration::from_secs(34));
    let cumulative = histogram.snapshot(Window::Cumulative);
    assert_holds(&cumulative, &batches.concat());
    assert_eq!(cumulative.window(), Duration::from_secs(44));
}

#[test]
fn a_read_rotates_like_upkeep() {
    let (histogram, mock) = mocked(5);
    histogram.record(7);
    mock.increment(INTERVAL);
    assert_eq!(histogram.snapshot(Window::Last(INTERVAL)).count(), 0);
    assert_eq!(histogram.snapshot(Window::Last(2 * INTERVAL)).count(), 1);
}

/// What a test does, in order.
#[derive(Clone, Debug)]
enum Op {
    Record(u64, usize),
    Advance(Duration),
    Upkeep,
    Read(Duration),
    ReadCumulative,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (1u64..10_000_000_000, 1usize..20).prop_map(|(v, n)| Op::Record(v, n)),
        3 => (0u64..35_000).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
        2 => Just(Op::Upkeep),
        2 => (0u64..100_000).prop_map(|ms| Op::Read(Duration::from_millis(ms))),
        1 => Just(Op::ReadCumulative),
    ];
    prop::collection::vec(op, 1..60)
}

/// The specified behaviour, written plainly: a ring of completed intervals
/// (each a list of values), the live list, and rotation that pushes
/// `passed - 1` empty intervals then the live one.
struct Model {
    capacity: usize,
    ring: VecDeque<Vec<u64>>,
    live: Vec<u64>,
    all: Vec<u64>,
    start: Duration,
    now: Duration,
}

impl Model {
    fn rotate(&mut self) {
        let passed = (self.now - self.start).as_nanos() / INTERVAL.as_nanos();
        if passed == 0 {
            return;
        }
        for _ in 0..(passed - 1).min(self.capacity as u128) {
            self.push(Vec::new());
        }
        let live = std::mem::take(&mut self.live);
        self.push(live);
        self.start += INTERVAL * passed as u32;
    }

    fn push(&mut self, interval: Vec<u64>) {
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(interval);
    }

    fn last(&mut self, d: Duration) -> (Vec<u64>, Duration) {
        self.rotate();
        let wanted = d.as_nanos().div_ceil(INTERVAL.as_nanos());
        let completed = (wanted.saturating_sub(1) as usize).min(self.ring.len());
        let mut values = self.live.clone();
        for interval in self.ring.iter().rev().take(completed) {
            values.extend(interval);
        }
        (values, self.now - self.start + INTERVAL * completed as u32)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn windows_match_a_plain_model(ops in ops(), capacity in 1usize..6) {
        let (histogram, mock) = mocked(capacity);
        let mut model = Model {
            capacity,
            ring: VecDeque::new(),
            live: Vec::new(),
            all: Vec::new(),
            start: Duration::ZERO,
            now: Duration::ZERO,
        };
        for op in ops {
            match op {
                Op::Record(value, n) => {
                    (0..n).for_each(|_| histogram.record(value));
                    model.live.extend(std::iter::repeat_n(value, n));
                    model.all.extend(std::iter::repeat_n(value, n));
                }
                Op::Advance(d) => {
                    mock.increment(d);
                    model.now += d;
                }
                Op::Upkeep => {
                    histogram.upkeep();
                    model.rotate();
                }
                Op::Read(d) => {
                    let snapshot = histogram.snapshot(Window::Last(d));
                    let (values, window) = model.last(d);
                    assert_holds(&snapshot, &values);
                    prop_assert_eq!(snapshot.window(), window);
                }
                Op::ReadCumulative => {
                    let snapshot = histogram.snapshot(Window::Cumulative);
                    model.rotate();
                    assert_holds(&snapshot, &model.all);
                    prop_assert_eq!(snapshot.window(), model.now);
                }
            }
        }
    }
}
