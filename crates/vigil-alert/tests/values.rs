//! What rules read: per-series instances, aggregations, counter rates with
//! resets, ratios of rates (error rates) and histogram statistics, all
//! through `MemorySource`.

mod common;

use common::{l, moves, s, t};
use vigil_alert::{
    Aggregation, Comparison, Engine, HistogramStat, Labels, Matcher, MemorySource, Rule, Selector,
    Severity, State,
};

fn firing_labels(e: &Engine) -> Vec<Labels> {
    e.instances()
        .into_iter()
        .filter(|i| i.state == State::Firing)
        .map(|i| i.labels)
        .collect()
}

fn value_of(e: &Engine, rule: &str, labels: &Labels) -> Option<f64> {
    e.instances()
        .into_iter()
        .find(|i| i.rule == rule && labels.iter().all(|(k, v)| i.labels.get(k) == Some(v)))
        .and_then(|i| i.value)
}

#[test]
fn per_series_rules_have_one_instance_per_label_set() {
    let rule = Rule::builder("HighCpu")
        .gauge("cpu")
        .per_series()
        .threshold(Severity::High, Comparison::Greater, 0.9)
        .label("team", "infra")
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    src.set_gauge("cpu", [("host", "a")], 0.95);
    src.set_gauge("cpu", [("host", "b")], 0.10);
    src.set_gauge("cpu", [("host", "c")], 0.99);
    let tr = e.evaluate(t(0), &src);
    assert_eq!(tr.len(), 2);
    let mut hosts: Vec<_> = tr.iter().map(|t| t.labels["host"].clone()).collect();
    hosts.sort();
    assert_eq!(hosts, ["a", "c"]);
    assert_eq!(
        tr[0].labels.keys().collect::<Vec<_>>(),
        ["alertname", "host", "team"],
        "series labels + rule labels + alertname"
    );
    // Healthy series have no instance at all.
    assert_eq!(e.instances().len(), 2);
}

#[test]
fn matchers_select_series_with_all_four_operators() {
    let mut src = MemorySource::new();
    for (route, code) in [
        ("/api/a", "500"),
        ("/api/b", "200"),
        ("/web", "503"),
        ("/api/c", "404"),
    ] {
        src.set_gauge("errors", [("route", route), ("code", code)], 1.0);
    }
    let count = |matchers: Vec<Matcher>| {
        let mut b =
            Rule::builder("E")
                .gauge("errors")
                .threshold(Severity::Low, Comparison::Greater, 0.0);
        for m in matchers {
            b = b.matcher(m);
        }
        let mut e = Engine::new([b.build().unwrap()]).unwrap();
        e.evaluate(t(0), &src).len()
    };
    assert_eq!(count(vec![Matcher::equal("code", "500")]), 1);
    assert_eq!(count(vec![Matcher::not_equal("code", "200")]), 3);
    assert_eq!(count(vec![Matcher::regex("route", "/api/.*").unwrap()]), 3);
    assert_eq!(
        count(vec![
            Matcher::regex("route", "/api/.*").unwrap(),
            Matcher::not_regex("code", "2..|4..").unwrap()
        ]),
        1
    );
    assert_eq!(
        count(vec![Matcher::regex("route", "/api").unwrap()]),
        0,
        "anchored"
    );
}

#[test]
fn aggregations_reduce_all_series_to_one_instance() {
    let mut src = MemorySource::new();
    for (host, v) in [("a", 1.0), ("b", 2.0), ("c", 6.0)] {
        src.set_gauge("queue", [("host", host)], v);
    }
    for (op, want) in [
        (Aggregation::Sum, 9.0),
        (Aggregation::Max, 6.0),
        (Aggregation::Min, 1.0),
        (Aggregation::Avg, 3.0),
    ] {
        let rule = Rule::builder("Queue")
            .gauge("queue")
            .aggregate(op)
            .threshold(Severity::Low, Comparison::GreaterOrEqual, want)
            .build()
            .unwrap();
        let mut e = Engine::new([rule]).unwrap();
        let tr = e.evaluate(t(0), &src);
        assert_eq!(moves(&tr), [(State::Inactive, State::Firing)], "{op:?}");
        assert_eq!(tr[0].value, Some(want), "{op:?}");
        assert_eq!(
            tr[0].labels,
            l([("alertname", "Queue")]),
            "{op:?}: no series labels"
        );
        // Just above the aggregate: nothing fires.
        let rule = Rule::builder("Queue")
            .gauge("queue")
            .aggregate(op)
            .threshold(Severity::Low, Comparison::Greater, want)
            .build()
            .unwrap();
        let mut e = Engine::new([rule]).unwrap();
        assert!(e.evaluate(t(0), &src).is_empty(), "{op:?}");
    }
}

#[test]
fn aggregation_by_labels_keeps_one_instance_per_group() {
    let mut src = MemorySource::new();
    for (svc, host, v) in [("api", "a", 3.0), ("api", "b", 4.0), ("db", "c", 5.0)] {
        src.set_gauge("conns", [("service", svc), ("host", host)], v);
    }
    let rule = Rule::builder("Conns")
        .gauge("conns")
        .aggregate(Aggregation::Sum)
        .by(["service"])
        .threshold(Severity::Medium, Comparison::Greater, 6.0)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let tr = e.evaluate(t(0), &src);
    assert_eq!(tr.len(), 1);
    assert_eq!(
        tr[0].labels,
        l([("alertname", "Conns"), ("service", "api")])
    );
    assert_eq!(tr[0].value, Some(7.0));
}

#[test]
fn counter_rate_is_increase_over_elapsed_and_survives_a_reset() {
    let rule = Rule::builder("HighRequestRate")
        .rate("http_requests_total", s(120))
        .threshold(Severity::Medium, Comparison::Greater, 5.0)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    let job = [("job", "api")];
    let mut at = |secs: u64, total: f64| {
        src.set_counter("http_requests_total", job, total);
        let tr = e.evaluate(t(secs), &src);
        (moves(&tr), value_of(&e, "HighRequestRate", &l(job)))
    };
    assert_eq!(at(0, 1000.0), (vec![], None), "one sample: no rate yet");
    assert_eq!(at(60, 1120.0), (vec![], None), "2/s: healthy, no instance");
    // 600 more in 60 s: (120 + 600) / 120 s = 6/s.
    assert_eq!(
        at(120, 1720.0),
        (vec![(State::Inactive, State::Firing)], Some(6.0))
    );
    // The process restarts: the total drops to 60. Window now holds
    // 60s, 120s, 180s: increase = 600 + 60 = 660 over 120 s = 5.5/s.
    assert_eq!(at(180, 60.0), (vec![], Some(5.5)));
    // Without reset handling the drop would read as a negative rate and
    // resolve; with it, 240 s: increase 60 + 60 = 120 over 120 s = 1/s.
    let (m, _) = at(240, 120.0);
    assert_eq!(m, [(State::Firing, State::Resolved)]);
}

#[test]
fn counter_rate_per_series() {
    let rule = Rule::builder("Busy")
        .rate("calls_total", s(60))
        .threshold(Severity::Low, Comparison::Greater, 1.0)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    src.set_counter("calls_total", [("fn", "a")], 0.0);
    src.set_counter("calls_total", [("fn", "b")], 0.0);
    e.evaluate(t(0), &src);
    src.set_counter("calls_total", [("fn", "a")], 30.0); // 0.5/s
    src.set_counter("calls_total", [("fn", "b")], 120.0); // 2/s
    let tr = e.evaluate(t(60), &src);
    assert_eq!(tr.len(), 1);
    assert_eq!(tr[0].labels["fn"], "b");
    assert_eq!(tr[0].value, Some(2.0));
}

fn calls(src: &mut MemorySource, function: &str, ok: f64, err: f64) {
    src.set_counter(
        "function_calls_total",
        [("function", function), ("result", "ok")],
        ok,
    );
    src.set_counter(
        "function_calls_total",
        [("function", function), ("result", "error")],
        err,
    );
}

#[test]
fn error_ratio_per_series_pairs_by_labels_ignoring_result() {
    let rule = Rule::builder("HighErrorRate")
        .error_ratio("function_calls_total", "result", "error", s(300))
        .threshold(Severity::High, Comparison::Greater, 0.1)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    calls(&mut src, "checkout", 0.0, 0.0);
    calls(&mut src, "search", 0.0, 0.0);
    assert!(e.evaluate(t(0), &src).is_empty());
    calls(&mut src, "checkout", 75.0, 25.0); // 25 % errors
    calls(&mut src, "search", 99.0, 1.0); // 1 %
    let tr = e.evaluate(t(60), &src);
    assert_eq!(tr.len(), 1, "{tr:#?}");
    assert_eq!(
        tr[0].labels,
        l([("alertname", "HighErrorRate"), ("function", "checkout")])
    );
    assert_eq!(tr[0].value, Some(0.25));
}

#[test]
fn error_ratio_summed_is_the_overall_error_rate() {
    let rule = Rule::builder("HighErrorRate")
        .error_ratio("function_calls_total", "result", "error", s(300))
        .aggregate(Aggregation::Sum)
        .threshold(Severity::High, Comparison::Greater, 0.1)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    calls(&mut src, "checkout", 0.0, 0.0);
    calls(&mut src, "search", 0.0, 0.0);
    e.evaluate(t(0), &src);
    calls(&mut src, "checkout", 75.0, 25.0);
    calls(&mut src, "search", 99.0, 1.0);
    // (25 + 1) / (100 + 100) = 13 %
    let tr = e.evaluate(t(60), &src);
    assert_eq!(moves(&tr), [(State::Inactive, State::Firing)]);
    assert_eq!(tr[0].value, Some(0.13));
    assert_eq!(tr[0].labels, l([("alertname", "HighErrorRate")]));
}

#[test]
fn error_ratio_max_aggregates_the_per_series_ratios() {
    let rule = Rule::builder("WorstErrorRate")
        .error_ratio("function_calls_total", "result", "error", s(300))
        .aggregate(Aggregation::Max)
        .threshold(Severity::High, Comparison::Greater, 0.2)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    calls(&mut src, "checkout", 0.0, 0.0);
    calls(&mut src, "search", 0.0, 0.0);
    e.evaluate(t(0), &src);
    calls(&mut src, "checkout", 75.0, 25.0);
    calls(&mut src, "search", 99.0, 1.0);
    assert_eq!(e.evaluate(t(60), &src)[0].value, Some(0.25));
}

#[test]
fn ratio_without_error_series_is_zero_and_without_traffic_is_no_data() {
    let rule = Rule::builder("HighErrorRate")
        .ratio(
            Selector::new("calls_total").matcher(Matcher::equal("result", "error")),
            Selector::new("calls_total"),
            s(300),
        )
        .ignoring(["result"])
        .aggregate(Aggregation::Max)
        .threshold(Severity::High, Comparison::GreaterOrEqual, 0.0)
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    src.set_counter("calls_total", [("result", "ok")], 0.0);
    e.evaluate(t(0), &src);
    src.set_counter("calls_total", [("result", "ok")], 100.0);
    let tr = e.evaluate(t(60), &src);
    assert_eq!(tr[0].value, Some(0.0), "no error series yet: ratio 0");
    // Once the window (5 min) holds no call at all, 0/0 is no data.
    assert!(
        e.evaluate(t(300), &src).is_empty(),
        "window still holds t=0..60"
    );
    let tr = e.evaluate(t(360), &src);
    assert_eq!(moves(&tr), [(State::Firing, State::NoData)]);
}

#[test]
fn histogram_statistics_come_from_the_source() {
    let p95 = Rule::builder("SlowRequests")
        .histogram_quantile("http_request_duration_seconds", 0.95, s(300))
        .matcher(Matcher::regex("route", "/api/.*").unwrap())
        .threshold(Severity::High, Comparison::Greater, 0.2)
        .recover_below(0.15)
        .build()
        .unwrap();
    let mean = Rule::builder("SlowOnAverage")
        .histogram_mean("http_request_duration_seconds", s(300))
        .aggregate(Aggregation::Max)
        .threshold(Severity::Low, Comparison::Greater, 0.1)
        .build()
        .unwrap();
    let max = Rule::builder("VerySlowRequest")
        .histogram_max("http_request_duration_seconds", s(300))
        .threshold(Severity::Medium, Comparison::Greater, 5.0)
        .build()
        .unwrap();
    let mut e = Engine::new([p95, mean, max]).unwrap();
    let mut src = MemorySource::new();
    let h = "http_request_duration_seconds";
    src.set_histogram(
        h,
        [("route", "/api/users")],
        HistogramStat::Quantile(0.95),
        0.25,
    );
    src.set_histogram(h, [("route", "/api/users")], HistogramStat::Mean, 0.05);
    src.set_histogram(h, [("route", "/api/users")], HistogramStat::Max, 7.0);
    src.set_histogram(
        h,
        [("route", "/static")],
        HistogramStat::Quantile(0.95),
        0.9,
    );
    src.set_histogram(h, [("route", "/static")], HistogramStat::Mean, 0.2);
    let tr = e.evaluate(t(0), &src);
    let fired: Vec<_> = tr.iter().map(|t| (t.rule.as_str(), t.value)).collect();
    assert_eq!(
        fired,
        [
            ("SlowRequests", Some(0.25)),
            ("SlowOnAverage", Some(0.2)),
            ("VerySlowRequest", Some(7.0))
        ]
    );
    assert_eq!(
        tr[0].labels["route"], "/api/users",
        "/static is not matched"
    );
    src.set_histogram(
        h,
        [("route", "/api/users")],
        HistogramStat::Quantile(0.95),
        0.17,
    );
    assert!(
        e.evaluate(t(10), &src)
            .iter()
            .all(|t| t.rule != "SlowRequests")
    );
    src.set_histogram(
        h,
        [("route", "/api/users")],
        HistogramStat::Quantile(0.95),
        0.1,
    );
    let tr = e.evaluate(t(20), &src);
    assert_eq!(moves(&tr), [(State::Firing, State::Resolved)]);
    assert_eq!(firing_labels(&e).len(), 2);
}

#[test]
fn rules_with_the_same_name_share_alertname_but_keep_their_own_state() {
    let warn = Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Medium, Comparison::Greater, 80.0)
        .build()
        .unwrap();
    let crit = Rule::builder("DiskFull")
        .gauge("disk")
        .threshold(Severity::Critical, Comparison::Greater, 95.0)
        .build()
        .unwrap();
    let mut e = Engine::new([warn, crit]).unwrap();
    let mut src = MemorySource::new();
    src.set_gauge("disk", [("mount", "/")], 97.0);
    let tr = e.evaluate(t(0), &src);
    let sev: Vec<_> = tr.iter().map(|t| t.severity).collect();
    assert_eq!(sev, [Some(Severity::Medium), Some(Severity::Critical)]);
}

#[test]
fn also_conditions_need_a_value_of_their_own_for_the_same_series() {
    // CPU above 90 % and being throttled more than once a second (over 2m).
    let rule = Rule::builder("Throttled")
        .gauge("cpu")
        .threshold(Severity::High, Comparison::Greater, 0.9)
        .also(
            vigil_alert::rule::Expr::Rate {
                metric: "throttled_total".into(),
                matchers: vec![],
                window: s(120),
            },
            Comparison::Greater,
            1.0,
        )
        .build()
        .unwrap();
    let mut e = Engine::new([rule]).unwrap();
    let mut src = MemorySource::new();
    let (a, b) = (l([("host", "a")]), l([("host", "b")]));
    src.set_gauge("cpu", [("host", "a")], 0.95);
    src.set_gauge("cpu", [("host", "b")], 0.95);
    src.set_counter("throttled_total", [("host", "a")], 0.0);
    // a's rate needs a second sample; b has no throttling series at all.
    assert!(e.evaluate(t(0), &src).is_empty());
    src.set_counter("throttled_total", [("host", "a")], 600.0);
    assert_eq!(
        moves(&e.evaluate(t(60), &src)),
        [(State::Inactive, State::Firing)]
    );
    assert_eq!(
        firing_labels(&e),
        [l([("alertname", "Throttled"), ("host", "a")])]
    );
    // `$value` is the rule's own value, not the `also` one.
    assert_eq!(value_of(&e, "Throttled", &a), Some(0.95));
    assert_eq!(e.state("Throttled", &b), State::Inactive);
    // Throttling stops: once the 2m window holds no increase, it resolves
    // although the CPU is still hot.
    assert!(e.evaluate(t(120), &src).is_empty()); // 600 over 0..120: 5/s
    assert_eq!(
        moves(&e.evaluate(t(180), &src)), // nothing over 60..180
        [(State::Firing, State::Resolved)]
    );
}
