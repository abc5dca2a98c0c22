//! Every transition of the alert state machine, driven through the engine
//! with synthetic times: `for`, `keep_firing_for`, hysteresis, missing data,
//! flapping input and severity changes.

mod common;

use common::{l, moves, only, s, t};
use metrics::{Key, KeyName, Metadata, SharedString, Unit};
use proptest::prelude::*;
use vigil_alert::{
    Aggregation, Comparison, Engine, Labels, MemorySource, NoDataPolicy, Rule, RuleBuilder,
    Severity, State,
};

const CPU: &str = "cpu_usage_ratio";

fn cpu_rule() -> RuleBuilder {
    Rule::builder("HighCpu")
        .gauge(CPU)
        .threshold(Severity::High, Comparison::Greater, 0.9)
}

fn engine(rule: RuleBuilder) -> Engine {
    Engine::new([rule.build().unwrap()]).unwrap()
}

fn host() -> Labels {
    l([("host", "a")])
}

fn set(source: &mut MemorySource, v: f64) {
    source.set_gauge(CPU, [("host", "a")], v);
}

#[test]
fn inactive_to_pending_to_firing_after_for() {
    let mut e = engine(cpu_rule().for_duration(s(60)));
    let mut src = MemorySource::new();
    set(&mut src, 0.5);
    assert!(e.evaluate(t(0), &src).is_empty());
    set(&mut src, 0.95);
    let tr = e.evaluate(t(10), &src);
    let p = only(&tr);
    assert_eq!(
        (p.from, p.to, p.severity),
        (State::Inactive, State::Pending, Some(Severity::High))
    );
    assert_eq!(p.value, Some(0.95));
    assert_eq!(p.labels, l([("alertname", "HighCpu"), ("host", "a")]));
    assert!(e.evaluate(t(40), &src).is_empty(), "50s < for");
    let tr = e.evaluate(t(70), &src);
    assert_eq!(moves(&tr), [(State::Pending, State::Firing)]);
    assert_eq!(tr[0].at, t(70));
    assert_eq!(e.state("HighCpu", &host()), State::Firing);
}

#[test]
fn pending_returns_to_inactive_when_the_value_drops_before_for() {
    let mut e = engine(cpu_rule().for_duration(s(60)));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    assert_eq!(
        moves(&e.evaluate(t(0), &src)),
        [(State::Inactive, State::Pending)]
    );
    set(&mut src, 0.5);
    assert_eq!(
        moves(&e.evaluate(t(30), &src)),
        [(State::Pending, State::Inactive)]
    );
    // A new breach starts a new `for` period.
    set(&mut src, 0.95);
    assert_eq!(
        moves(&e.evaluate(t(40), &src)),
        [(State::Inactive, State::Pending)]
    );
    assert!(
        e.evaluate(t(90), &src).is_empty(),
        "only 50s into the new period"
    );
    assert_eq!(
        moves(&e.evaluate(t(100), &src)),
        [(State::Pending, State::Firing)]
    );
}

#[test]
fn zero_for_fires_on_the_first_breach_and_resolves_on_the_first_ok() {
    let mut e = engine(cpu_rule());
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    assert_eq!(
        moves(&e.evaluate(t(0), &src)),
        [(State::Inactive, State::Firing)]
    );
    set(&mut src, 0.2);
    let tr = e.evaluate(t(10), &src);
    assert_eq!(moves(&tr), [(State::Firing, State::Resolved)]);
    assert_eq!(
        tr[0].severity,
        Some(Severity::High),
        "resolved keeps its severity"
    );
    assert!(e.evaluate(t(20), &src).is_empty());
    set(&mut src, 0.95);
    assert_eq!(
        moves(&e.evaluate(t(30), &src)),
        [(State::Inactive, State::Firing)]
    );
}

#[test]
fn aggregated_instances_go_from_resolved_back_to_pending() {
    let mut e = engine(cpu_rule().aggregate(Aggregation::Max).for_duration(s(20)));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    e.evaluate(t(20), &src);
    set(&mut src, 0.1);
    assert_eq!(
        moves(&e.evaluate(t(30), &src)),
        [(State::Firing, State::Resolved)]
    );
    assert_eq!(e.state("HighCpu", &Labels::new()), State::Resolved);
    set(&mut src, 0.95);
    assert_eq!(
        moves(&e.evaluate(t(40), &src)),
        [(State::Resolved, State::Pending)]
    );
}

#[test]
fn keep_firing_for_recovers_then_resolves() {
    let mut e = engine(cpu_rule().keep_firing_for(s(60)));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    set(&mut src, 0.5);
    assert_eq!(
        moves(&e.evaluate(t(10), &src)),
        [(State::Firing, State::Recovering)]
    );
    assert!(e.evaluate(t(40), &src).is_empty());
    assert_eq!(e.state("HighCpu", &host()), State::Recovering);
    assert_eq!(
        moves(&e.evaluate(t(70), &src)),
        [(State::Recovering, State::Resolved)]
    );
}

#[test]
fn a_breach_while_recovering_fires_again_and_restarts_keep_firing_for() {
    let mut e = engine(cpu_rule().keep_firing_for(s(60)));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    set(&mut src, 0.5);
    e.evaluate(t(10), &src);
    set(&mut src, 0.99);
    assert_eq!(
        moves(&e.evaluate(t(40), &src)),
        [(State::Recovering, State::Firing)]
    );
    set(&mut src, 0.5);
    assert_eq!(
        moves(&e.evaluate(t(50), &src)),
        [(State::Firing, State::Recovering)]
    );
    assert!(
        e.evaluate(t(100), &src).is_empty(),
        "50s after the second recovery"
    );
    assert_eq!(
        moves(&e.evaluate(t(110), &src)),
        [(State::Recovering, State::Resolved)]
    );
}

#[test]
fn hysteresis_fires_above_80_and_resolves_only_below_70() {
    let mut e = engine(
        Rule::builder("DiskFull")
            .gauge("disk")
            .threshold(Severity::Medium, Comparison::Greater, 80.0)
            .recover_below(70.0),
    );
    let mut src = MemorySource::new();
    let mut at = |secs, v: f64| {
        src.set_gauge("disk", Labels::new(), v);
        moves(&e.evaluate(t(secs), &src))
    };
    assert_eq!(at(0, 75.0), []);
    assert_eq!(at(10, 85.0), [(State::Inactive, State::Firing)]);
    assert_eq!(at(20, 78.0), [], "between 70 and 80: still firing");
    assert_eq!(at(30, 71.0), []);
    assert_eq!(at(40, 69.0), [(State::Firing, State::Resolved)]);
    assert_eq!(at(50, 75.0), [], "75 does not fire again");
}

#[test]
fn hysteresis_with_keep_firing_for_goes_back_to_firing_when_the_value_rises_into_the_band() {
    let mut e = engine(cpu_rule().recover_below(0.7).keep_firing_for(s(60)));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    set(&mut src, 0.6);
    assert_eq!(
        moves(&e.evaluate(t(10), &src)),
        [(State::Firing, State::Recovering)]
    );
    set(&mut src, 0.8); // not recovered, not breaching
    assert_eq!(
        moves(&e.evaluate(t(20), &src)),
        [(State::Recovering, State::Firing)]
    );
}

#[test]
fn hysteresis_works_for_low_value_rules() {
    let mut e = engine(
        Rule::builder("LowFreeMemory")
            .gauge("free")
            .threshold(Severity::High, Comparison::Less, 10.0)
            .recover_above(20.0),
    );
    let mut src = MemorySource::new();
    let mut at = |secs, v: f64| {
        src.set_gauge("free", Labels::new(), v);
        moves(&e.evaluate(t(secs), &src))
    };
    assert_eq!(at(0, 5.0), [(State::Inactive, State::Firing)]);
    assert_eq!(at(10, 15.0), []);
    assert_eq!(at(20, 25.0), [(State::Firing, State::Resolved)]);
}

#[test]
fn severity_changes_up_and_down_are_transitions() {
    let mut e = engine(
        Rule::builder("DiskFull")
            .gauge("disk")
            .threshold(Severity::Medium, Comparison::Greater, 80.0)
            .threshold(Severity::Critical, Comparison::Greater, 95.0)
            .recover_below(70.0),
    );
    let mut src = MemorySource::new();
    let mut at = |secs, v: f64| {
        src.set_gauge("disk", Labels::new(), v);
        e.evaluate(t(secs), &src)
            .iter()
            .map(|t| (t.from, t.to, t.from_severity, t.severity))
            .collect::<Vec<_>>()
    };
    use Severity::{Critical, Medium};
    use State::{Firing, Inactive, Resolved};
    assert_eq!(at(0, 85.0), [(Inactive, Firing, None, Some(Medium))]);
    assert_eq!(
        at(10, 97.0),
        [(Firing, Firing, Some(Medium), Some(Critical))]
    );
    assert_eq!(at(20, 96.0), []);
    assert_eq!(
        at(30, 90.0),
        [(Firing, Firing, Some(Critical), Some(Medium))]
    );
    assert_eq!(at(40, 75.0), [], "hysteresis keeps the current severity");
    assert_eq!(
        at(50, 97.0),
        [(Firing, Firing, Some(Medium), Some(Critical))]
    );
    assert_eq!(
        at(60, 60.0),
        [(Firing, Resolved, Some(Critical), Some(Critical))]
    );
    assert!(
        e.history()
            .iter()
            .filter(|t| t.is_severity_change())
            .count()
            == 3
    );
}

#[test]
fn severity_can_change_while_pending_and_fires_at_the_latest() {
    let mut e = engine(
        Rule::builder("Lag")
            .gauge("lag")
            .threshold(Severity::Low, Comparison::Greater, 10.0)
            .threshold(Severity::High, Comparison::Greater, 100.0)
            .for_duration(s(30)),
    );
    let mut src = MemorySource::new();
    src.set_gauge("lag", Labels::new(), 50.0);
    assert_eq!(only(&e.evaluate(t(0), &src)).severity, Some(Severity::Low));
    src.set_gauge("lag", Labels::new(), 500.0);
    let tr = e.evaluate(t(10), &src);
    assert_eq!(
        (tr[0].from, tr[0].to, tr[0].severity),
        (State::Pending, State::Pending, Some(Severity::High))
    );
    let tr = e.evaluate(t(30), &src);
    assert_eq!(
        (tr[0].to, tr[0].severity),
        (State::Firing, Some(Severity::High))
    );
}

#[test]
fn no_data_ok_resolves_a_firing_instance_and_rests_in_no_data() {
    let mut e = engine(cpu_rule().aggregate(Aggregation::Max));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    src.clear();
    assert_eq!(
        moves(&e.evaluate(t(10), &src)),
        [(State::Firing, State::NoData)]
    );
    assert!(e.evaluate(t(20), &src).is_empty());
    set(&mut src, 0.5);
    assert_eq!(
        moves(&e.evaluate(t(30), &src)),
        [(State::NoData, State::Inactive)]
    );
}

#[test]
fn no_data_ok_honours_keep_firing_for() {
    let mut e = engine(cpu_rule().keep_firing_for(s(30)).no_data(NoDataPolicy::Ok));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    src.clear();
    assert_eq!(
        moves(&e.evaluate(t(10), &src)),
        [(State::Firing, State::Recovering)]
    );
    assert_eq!(
        moves(&e.evaluate(t(40), &src)),
        [(State::Recovering, State::NoData)]
    );
    // Per-series instances at rest are forgotten.
    assert_eq!(e.state("HighCpu", &host()), State::Inactive);
    assert!(e.instances().is_empty());
}

#[test]
fn no_data_ok_turns_a_pending_instance_into_no_data() {
    let mut e = engine(cpu_rule().for_duration(s(60)));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    src.clear();
    assert_eq!(
        moves(&e.evaluate(t(10), &src)),
        [(State::Pending, State::NoData)]
    );
}

#[test]
fn no_data_alerting_fires_after_for_when_nothing_matches() {
    let mut e = engine(
        cpu_rule()
            .aggregate(Aggregation::Max)
            .no_data(NoDataPolicy::Alerting)
            .for_duration(s(60)),
    );
    let src = MemorySource::new(); // the metric was never recorded
    let tr = e.evaluate(t(0), &src);
    assert_eq!(moves(&tr), [(State::Inactive, State::NoData)]);
    assert_eq!((tr[0].value, tr[0].severity), (None, Some(Severity::High)));
    assert!(e.evaluate(t(30), &src).is_empty());
    let tr = e.evaluate(t(60), &src);
    assert_eq!(moves(&tr), [(State::NoData, State::Firing)]);
    let mut src = src;
    set(&mut src, 0.1);
    assert_eq!(
        moves(&e.evaluate(t(70), &src)),
        [(State::Firing, State::Resolved)]
    );
}

#[test]
fn no_data_alerting_notices_a_vanished_series() {
    let mut e = engine(cpu_rule().no_data(NoDataPolicy::Alerting));
    let mut src = MemorySource::new();
    src.set_gauge(CPU, [("host", "a")], 0.1);
    src.set_gauge(CPU, [("host", "b")], 0.1);
    assert!(e.evaluate(t(0), &src).is_empty());
    src.remove(CPU, [("host", "b")]);
    let tr = e.evaluate(t(10), &src);
    assert_eq!(moves(&tr), [(State::Inactive, State::Firing)]);
    assert_eq!(tr[0].labels["host"], "b");
}

#[test]
fn no_data_alerting_keeps_a_firing_instance_firing() {
    let mut e = engine(cpu_rule().no_data(NoDataPolicy::Alerting));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    src.clear();
    assert!(e.evaluate(t(10), &src).is_empty());
    assert_eq!(e.state("HighCpu", &host()), State::Firing);
}

#[test]
fn no_data_keep_state_changes_nothing_until_data_returns() {
    let mut e = engine(
        cpu_rule()
            .no_data(NoDataPolicy::KeepState)
            .for_duration(s(60)),
    );
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    e.evaluate(t(60), &src);
    assert_eq!(e.state("HighCpu", &host()), State::Firing);
    src.clear();
    for secs in [70, 600, 6000] {
        assert!(e.evaluate(t(secs), &src).is_empty());
    }
    assert_eq!(e.state("HighCpu", &host()), State::Firing);
    set(&mut src, 0.1);
    assert_eq!(
        moves(&e.evaluate(t(6010), &src)),
        [(State::Firing, State::Resolved)]
    );
}

#[test]
fn a_nan_value_counts_as_missing() {
    let mut e = engine(cpu_rule().aggregate(Aggregation::Max));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    e.evaluate(t(0), &src);
    set(&mut src, f64::NAN);
    assert_eq!(
        moves(&e.evaluate(t(10), &src)),
        [(State::Firing, State::NoData)]
    );
}

#[test]
fn flapping_faster_than_for_never_fires() {
    let mut e = engine(cpu_rule().for_duration(s(60)));
    let mut src = MemorySource::new();
    for i in 0..100u64 {
        set(&mut src, if i % 2 == 0 { 0.95 } else { 0.5 });
        for tr in e.evaluate(t(i * 15), &src) {
            assert_ne!(tr.to, State::Firing, "fired at tick {i}");
        }
    }
    assert_eq!(
        e.history()
            .iter()
            .filter(|t| t.to == State::Pending)
            .count(),
        50
    );
}

/// The reference model: fires once the value has been above the threshold
/// at every tick for `for`, resolves on the first tick below.
fn model(above: &[bool], tick: u64, for_secs: u64) -> Vec<bool> {
    let mut firing = false;
    let mut since: Option<u64> = None;
    above
        .iter()
        .enumerate()
        .map(|(i, &up)| {
            let now = i as u64 * tick;
            if !up {
                firing = false;
                since = None;
            } else if !firing {
                let start = *since.get_or_insert(now);
                firing = now - start >= for_secs;
            }
            firing
        })
        .collect()
}

proptest! {
    #[test]
    fn firing_matches_the_reference_model(above in prop::collection::vec(any::<bool>(), 1..200)) {
        let (tick, for_secs) = (10, 30);
        let mut e = engine(cpu_rule().for_duration(s(for_secs)));
        let mut src = MemorySource::new();
        let want = model(&above, tick, for_secs);
        for (i, up) in above.iter().enumerate() {
            set(&mut src, if *up { 0.95 } else { 0.5 });
            e.evaluate(t(i as u64 * tick), &src);
            let firing = e.state("HighCpu", &host()) == State::Firing;
            prop_assert_eq!(firing, want[i], "tick {}", i);
        }
    }

    #[test]
    fn runs_shorter_than_for_never_fire(runs in prop::collection::vec((1u64..=6, 1u64..=3), 1..40)) {
        // 10 s ticks, `for` = 60 s: a run of at most 6 breaching ticks spans
        // at most 50 s.
        let mut e = engine(cpu_rule().for_duration(s(60)));
        let mut src = MemorySource::new();
        let mut tick = 0;
        for (up, down) in runs {
            for (n, v) in [(up, 0.95), (down, 0.5)] {
                for _ in 0..n {
                    set(&mut src, v);
                    let fired = e.evaluate(t(tick * 10), &src).iter().any(|t| t.to == State::Firing);
                    prop_assert!(!fired, "fired at tick {}", tick);
                    tick += 1;
                }
            }
        }
    }
}

/// `Engine::alerts` lists one firing alert per alerting instance, at its
/// severity and with its annotations, and drops it once it resolves.
#[test]
fn active_alerts_are_the_alerting_instances() {
    let mut e = engine(cpu_rule().annotation("summary", "{{ $labels.host }} at {{ $value }}"));
    let mut src = MemorySource::new();
    set(&mut src, 0.95);
    src.set_gauge(CPU, [("host", "b")], 0.5);
    e.evaluate(t(0), &src);
    let alerts = e.alerts(t(30));
    let [alert] = alerts.as_slice() else {
        panic!("one alert expected: {alerts:#?}");
    };
    let want = l([
        ("alertname", "HighCpu"),
        ("host", "a"),
        ("severity", "high"),
    ]);
    assert_eq!(alert.labels, want);
    assert_eq!(alert.annotations["summary"], "a at 0.95");
    assert_eq!(alert.status, vigil_alert::AlertStatus::Firing);
    assert_eq!(
        (alert.starts_at, alert.ends_at, alert.value),
        (t(0), None, Some(0.95))
    );
    assert!(!alert.silenced && !alert.inhibited && !alert.escalated);
    set(&mut src, 0.5);
    e.evaluate(t(60), &src);
    assert!(e.alerts(t(60)).is_empty());
}

/// Counts the `alerts_firing` gauges an evaluation touches.
#[derive(Default)]
struct Touched(std::sync::atomic::AtomicUsize);

impl metrics::Recorder for Touched {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> metrics::Counter {
        metrics::Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// `alerts_firing` follows counts kept as instances change: an
/// evaluation that changes no count touches no gauge, and one that does
/// touches only the gauges whose count changed.
#[test]
fn only_changed_alerting_counts_touch_their_gauges() {
    let rule = Rule::builder("HighCpu")
        .gauge(CPU)
        .threshold(Severity::High, Comparison::Greater, 0.9)
        .threshold(Severity::Critical, Comparison::Greater, 0.99);
    let mut e = Engine::new([rule.build().unwrap()]).unwrap();
    let mut src = MemorySource::new();
    let mut touched = |secs, src: &MemorySource| {
        let recorder = Touched::default();
        metrics::with_local_recorder(&recorder, || e.evaluate(t(secs), src));
        recorder.0.into_inner()
    };
    src.set_gauge(CPU, [("host", "a")], 0.95);
    src.set_gauge(CPU, [("host", "b")], 0.95);
    assert_eq!(touched(0, &src), 1, "high: 2");
    assert_eq!(touched(15, &src), 0);
    src.set_gauge(CPU, [("host", "b")], 0.999);
    assert_eq!(touched(30, &src), 2, "high: 1, critical: 1");
    src.set_gauge(CPU, [("host", "c")], 0.5);
    src.set_gauge(CPU, [("host", "a")], 0.96);
    assert_eq!(touched(45, &src), 0);
    src.set_gauge(CPU, [("host", "a")], 0.5);
    assert_eq!(touched(60, &src), 1, "high: 0");
}
