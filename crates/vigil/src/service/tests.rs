use vigil_timing::CALLS_DURATION;

use crate::Monitor;

#[test]
fn health_from_reads_the_summary_it_is_given() {
    let (clock, _mock) = quanta::Clock::mock();
    let monitor = Monitor::builder()
        .clock(clock)
        .manual_upkeep()
        .build()
        .unwrap();
    let record = |seconds: f64, times: usize| {
        crate::with_local_recorder(&monitor.recorder(), || {
            let histogram =
                metrics::histogram!(CALLS_DURATION, "function" => "checkout", "module" => "shop");
            for _ in 0..times {
                histogram.record(seconds);
            }
        });
    };
    let latency = |report: super::HealthReport| report.component("latency").unwrap().value;
    record(0.5, 1);
    let before = monitor.summary();
    let p95 = before.histograms[0].window.p95;
    record(30.0, 10);
    assert_eq!(latency(monitor.health_from(&before)), Some(p95));
    assert!(latency(monitor.health()).unwrap() > 20.0);
}
