//! `#[timed]`, `Timer`, `time!` and `Timed` with vigil's default features
//! off, recording into a recorder of the client's own.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use vigil::metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use vigil::{TimedExt, Timer, callsite, time, timed};

/// Every counter increment and histogram record, by metric name.
#[derive(Clone, Default)]
struct Tally(Arc<Mutex<Vec<(String, Arc<AtomicU64>)>>>);

impl Tally {
    fn handle(&self, key: &Key) -> Arc<AtomicU64> {
        let mut seen = self.0.lock().unwrap();
        let cell = Arc::new(AtomicU64::new(0));
        seen.push((key.name().to_owned(), Arc::clone(&cell)));
        cell
    }

    fn total(&self, name: &str) -> u64 {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(seen, _)| seen == name)
            .map(|(_, cell)| cell.load(Ordering::Relaxed))
            .sum()
    }
}

struct Count(Arc<AtomicU64>);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl HistogramFn for Count {
    fn record(&self, _: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder for Tally {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Count(self.handle(key))))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Count(self.handle(key))))
    }
}

#[timed]
fn parse_port(input: &str) -> Result<u16, std::num::ParseIntError> {
    input.parse()
}

#[timed]
async fn double(n: u64) -> u64 {
    n * 2
}

/// Polls a future that never waits to its end.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

fn main() {
    let tally = Tally::default();
    vigil::with_local_recorder(&tally, || {
        assert_eq!(parse_port("8080"), Ok(8080));
        assert!(parse_port("http").is_err());
        assert_eq!(ready(double(21)), 42);
        drop(Timer::start(callsite!("warm_up")));
        assert_eq!(time!("sum", || (1..=10).sum::<u32>()), 55);
        assert_eq!(ready(async { 7 }.timed(callsite!("seven"))), 7);
    });
    let calls = tally.total(vigil::timing::CALLS_TOTAL);
    let durations = tally.total(vigil::timing::CALLS_DURATION);
    assert_eq!(calls, 6, "function_calls_total");
    assert_eq!(durations, 6, "function_calls_duration_seconds");
    println!("vigil without default features: {calls} calls timed");
}
