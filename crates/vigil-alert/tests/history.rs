//! The bounded, queryable, serializable history, and the `alerts_firing`
//! gauge.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{l, t};
use metrics::{
    Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use vigil_alert::{
    Comparison, Engine, History, HistoryQuery, Matcher, MemorySource, Rule, Severity, State,
};

fn rules() -> Vec<Rule> {
    let cpu = Rule::builder("HighCpu")
        .gauge("cpu")
        .threshold(Severity::High, Comparison::Greater, 0.9)
        .build()
        .unwrap();
    let disk = Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Medium, Comparison::Greater, 0.8)
        .threshold(Severity::Critical, Comparison::Greater, 0.95)
        .build()
        .unwrap();
    vec![cpu, disk]
}

#[test]
fn history_is_queryable_by_rule_labels_and_time() {
    let mut e = Engine::new(rules()).unwrap();
    let mut src = MemorySource::new();
    src.set_gauge("cpu", [("host", "a")], 0.95);
    src.set_gauge("disk", [("host", "a")], 0.85);
    e.evaluate(t(0), &src);
    src.set_gauge("disk", [("host", "a")], 0.99);
    src.set_gauge("cpu", [("host", "b")], 0.99);
    e.evaluate(t(60), &src);
    src.clear();
    e.evaluate(t(120), &src);

    let h = e.history();
    assert_eq!(h.len(), 7);
    assert_eq!(h.by_rule("DiskFull").count(), 3);
    assert_eq!(h.since(t(60)).count(), 5);
    assert_eq!(h.with_labels(&l([("host", "b")])).count(), 2);
    let q = HistoryQuery::new()
        .rule("DiskFull")
        .matcher(Matcher::equal("severity", "critical"))
        .since(t(30));
    let hits: Vec<_> = h.query(&q).map(|t| (t.from, t.to, t.at)).collect();
    assert_eq!(
        hits,
        [
            (State::Firing, State::Firing, t(60)),
            (State::Firing, State::NoData, t(120))
        ]
    );
}

#[test]
fn history_is_bounded_and_serializable() {
    let mut e = Engine::builder()
        .rules(rules())
        .history_capacity(3)
        .build()
        .unwrap();
    let mut src = MemorySource::new();
    for i in 0..10u64 {
        src.set_gauge("cpu", [("host", "a")], if i % 2 == 0 { 0.95 } else { 0.1 });
        e.evaluate(t(i * 10), &src);
    }
    let h = e.history();
    assert_eq!((h.len(), h.capacity()), (3, 3));
    assert_eq!(h.iter().next().unwrap().at, t(70));
    let json = serde_json::to_string(h).unwrap();
    assert!(
        json.contains(r#""from":"inactive","to":"firing""#),
        "{json}"
    );
    let back: History = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, h);
    #[cfg(any(feature = "config", feature = "prometheus"))]
    {
        let yaml = serde_yaml_ng::to_string(h).unwrap();
        assert_eq!(&serde_yaml_ng::from_str::<History>(&yaml).unwrap(), h);
    }
}

#[test]
fn instance_snapshots_serialize() {
    let mut e = Engine::new(rules()).unwrap();
    let mut src = MemorySource::new();
    src.set_gauge("disk", [("host", "a")], 0.99);
    e.evaluate(t(0), &src);
    let json = serde_json::to_value(e.instances()).unwrap();
    assert_eq!(json[0]["state"], "firing");
    assert_eq!(json[0]["severity"], "critical");
    assert_eq!(json[0]["labels"]["alertname"], "DiskFull");
}

/// Records gauges into a map, to check what the engine exports.
#[derive(Default, Clone)]
struct Gauges(Arc<Mutex<BTreeMap<String, f64>>>);

struct Slot(String, Gauges);

impl GaugeFn for Slot {
    fn increment(&self, value: f64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self.1.0.lock().unwrap().entry(self.0.clone()).or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.1.0.lock().unwrap().insert(self.0.clone(), value);
    }
}

impl Recorder for Gauges {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut name = key.name().to_owned();
        for label in key.labels() {
            name.push_str(&format!(" {}={}", label.key(), label.value()));
        }
        Gauge::from_arc(Arc::new(Slot(name, self.clone())))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn alerts_firing_counts_alerting_instances_per_rule_and_severity() {
    let recorder = Gauges::default();
    let mut e = Engine::new(rules()).unwrap();
    let mut src = MemorySource::new();
    let mut eval = |secs, src: &MemorySource| {
        metrics::with_local_recorder(&recorder, || e.evaluate(t(secs), src));
        recorder.0.lock().unwrap().clone()
    };
    let none = eval(0, &src);
    assert!(
        none.is_empty(),
        "nothing exported before anything fires: {none:?}"
    );
    src.set_gauge("cpu", [("host", "a")], 0.95);
    src.set_gauge("cpu", [("host", "b")], 0.95);
    src.set_gauge("disk", [("host", "a")], 0.99);
    let g = eval(10, &src);
    assert_eq!(g["alerts_firing alert=HighCpu severity=high"], 2.0);
    assert_eq!(g["alerts_firing alert=DiskFull severity=critical"], 1.0);
    src.set_gauge("disk", [("host", "a")], 0.85);
    src.set_gauge("cpu", [("host", "b")], 0.1);
    let g = eval(20, &src);
    assert_eq!(g["alerts_firing alert=HighCpu severity=high"], 1.0);
    assert_eq!(g["alerts_firing alert=DiskFull severity=critical"], 0.0);
    assert_eq!(g["alerts_firing alert=DiskFull severity=medium"], 1.0);
    src.clear();
    let g = eval(30, &src);
    assert!(g.values().all(|v| *v == 0.0), "{g:?}");
}
