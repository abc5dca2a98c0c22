//! Captures what instrumented code records, with a fresh recorder per test.

#![allow(dead_code)]

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Polls `fut` to completion on this thread, without a runtime: for
/// futures that never wait on a waker (one that did would be polled in a
/// busy loop).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// A thread-local `DebuggingRecorder` for one test. Leaked so that no later
/// recorder in this process can share its address (vigil identifies
/// recorders by address).
pub struct Capture {
    recorder: &'static DebuggingRecorder,
    snapshotter: Snapshotter,
    /// Everything read so far: `DebuggingRecorder` snapshots drain the
    /// recorder (counters and gauges swap to 0, histograms are cleared), so
    /// values are accumulated here. Gauges are only moved by increments and
    /// decrements in vigil-timing, so adding the drained values is exact.
    seen: RefCell<Vec<Series>>,
}

impl Capture {
    pub fn new() -> Capture {
        let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
        Capture {
            snapshotter: recorder.snapshotter(),
            recorder,
            seen: RefCell::default(),
        }
    }

    /// Runs `f` with this capture as the thread's recorder.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder, f)
    }

    pub fn metrics(&self) -> Metrics {
        let mut seen = self.seen.borrow_mut();
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let (kind, key) = key.into_parts();
            let name = key.name().to_owned();
            let labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            match seen
                .iter_mut()
                .find(|(k, n, l, _)| *k == kind && *n == name && *l == labels)
            {
                Some((_, _, _, old)) => accumulate(old, Value::from(value)),
                None => seen.push((kind, name, labels, Value::from(value))),
            }
        }
        Metrics(seen.clone())
    }
}

/// A recorded value, accumulated over snapshots.
#[derive(Debug, Clone)]
pub enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>),
}

impl From<DebugValue> for Value {
    fn from(value: DebugValue) -> Value {
        match value {
            DebugValue::Counter(c) => Value::Counter(c),
            DebugValue::Gauge(g) => Value::Gauge(g.into_inner()),
            DebugValue::Histogram(h) => {
                Value::Histogram(h.into_iter().map(|x| x.into_inner()).collect())
            }
        }
    }
}

fn accumulate(old: &mut Value, new: Value) {
    match (old, new) {
        (Value::Counter(a), Value::Counter(b)) => *a += b,
        (Value::Gauge(a), Value::Gauge(b)) => *a += b,
        (Value::Histogram(a), Value::Histogram(b)) => a.extend(b),
        (old, new) => panic!("metric changed kind: {old:?} -> {new:?}"),
    }
}

type Series = (MetricKind, String, Vec<(String, String)>, Value);

/// One snapshot of everything recorded.
pub struct Metrics(Vec<Series>);

impl Metrics {
    fn matching<'a>(
        &'a self,
        kind: MetricKind,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.0.iter().filter(move |(k, n, l, _)| {
            *k == kind
                && n == name
                && labels
                    .iter()
                    .all(|(lk, lv)| l.iter().any(|(k, v)| k == lk && v == lv))
        })
    }

    /// Sum of the counters named `name` whose labels include `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(MetricKind::Counter, name, labels)
            .map(|(_, _, _, v)| match v {
                Value::Counter(c) => *c,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    /// The gauge named `name` with `labels`, if recorded.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(MetricKind::Gauge, name, labels)
            .map(|(_, _, _, v)| match v {
                Value::Gauge(g) => *g,
                other => panic!("{name} is not a gauge: {other:?}"),
            })
            .next()
    }

    /// All samples of the histograms named `name` with `labels`.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.matching(MetricKind::Histogram, name, labels)
            .flat_map(|(_, _, _, v)| match v {
                Value::Histogram(h) => h.clone(),
                other => panic!("{name} is not a histogram: {other:?}"),
            })
            .collect()
    }

    /// Label sets of every series named `name`.
    pub fn label_sets(&self, name: &str) -> Vec<Vec<(String, String)>> {
        self.0
            .iter()
            .filter(|(_, n, _, _)| n == name)
            .map(|(_, _, l, _)| l.clone())
            .collect()
    }
}
