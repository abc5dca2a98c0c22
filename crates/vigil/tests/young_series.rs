//! Rates of series younger than the window: a counter counts from 0 at its
//! registration, in the JSON summary and in the alert rules that read the
//! registry, so a burst in a series' first second is seen by both.

#![cfg(feature = "registry")]

use std::time::Duration;

use quanta::{Clock, Mock};
use vigil::{CounterSummary, Monitor, MonitorBuilder, timed};

#[timed]
fn checkout(fail: bool) -> Result<(), String> {
    if fail {
        Err("card declined".into())
    } else {
        Ok(())
    }
}

fn mock_monitor(builder: MonitorBuilder) -> (Monitor, std::sync::Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let monitor = builder.manual_upkeep().clock(clock).build().unwrap();
    (monitor, mock)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// `n` failed and `n` successful calls of `checkout`.
fn burst(monitor: &Monitor, n: usize) {
    vigil::with_local_recorder(&monitor.recorder(), || {
        for _ in 0..n {
            let _ = checkout(true);
            let _ = checkout(false);
        }
    });
}

/// The counter series `name` having `labels`, as the JSON summary shows it.
fn counter(monitor: &Monitor, name: &str, labels: &[(&str, &str)]) -> CounterSummary {
    let summary = monitor.summary();
    summary
        .counters
        .iter()
        .find(|c| {
            c.name == name
                && labels
                    .iter()
                    .all(|(k, v)| c.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .cloned()
        .unwrap_or_else(|| panic!("no {name}{labels:?} in {summary:?}"))
}

fn rate(monitor: &Monitor, name: &str, result: &str) -> f64 {
    counter(monitor, name, &[("result", result)]).rate
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

#[test]
fn a_burst_in_the_first_second_has_a_rate_counted_from_registration() {
    let (monitor, mock) = mock_monitor(Monitor::builder().window(Duration::from_secs(60)));
    monitor.upkeep(); // the upkeep thread's tick before the first call
    mock.increment(millis(200));
    burst(&monitor, 10);
    mock.increment(millis(300));
    // 10 errors since the tick at 0 that had not seen the series: 10 over
    // 0.5 s, read with the elapsed time taken as at least 1 s.
    let errors = rate(&monitor, "function_calls_total", "error");
    assert!(close(errors, 10.0), "{errors}");
    mock.increment(Duration::from_millis(3_500));
    let errors = rate(&monitor, "function_calls_total", "error");
    assert!(
        close(errors, 10.0 / 4.0),
        "10 over the 4 s since registration: {errors}"
    );
    assert!(close(rate(&monitor, "function_calls_total", "ok"), 2.5));

    // Once the registration is older than the window, the rate is the
    // increase over the window: nothing new, so 0.
    for _ in 0..7 {
        mock.increment(Duration::from_secs(10));
        monitor.upkeep();
    }
    let errors = rate(&monitor, "function_calls_total", "error");
    assert!(close(errors, 0.0), "{errors}");
    burst(&monitor, 30);
    mock.increment(Duration::from_secs(10));
    monitor.upkeep();
    // 30 more within the last 10 s, read over the samples in the 60 s window.
    let errors = rate(&monitor, "function_calls_total", "error");
    assert!(close(errors, 30.0 / 60.0), "{errors}");
}

#[test]
fn a_series_read_at_its_registration_instant_reports_its_increase_per_second() {
    let (monitor, mock) = mock_monitor(Monitor::builder());
    // No tick before: registered, incremented and read at the same instant.
    vigil::with_local_recorder(&monitor.recorder(), || {
        vigil::metrics::counter!("jobs_total").increment(7);
    });
    let jobs = counter(&monitor, "jobs_total", &[]);
    assert!(close(jobs.rate, 7.0), "7 over at least 1 s: {jobs:?}");
    assert!(jobs.rate.is_finite());
    mock.increment(Duration::from_secs(2));
    let jobs = counter(&monitor, "jobs_total", &[]);
    assert!(close(jobs.rate, 3.5), "7 over 2 s: {jobs:?}");
}

/// The same rates as the alert rules read them.
#[cfg(feature = "alert-routing")]
mod alerts {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use quanta::Mock;
    use vigil::Monitor;
    use vigil::alert::notify::TracingNotifier;
    use vigil::alert::{Aggregation, Comparison, Engine, InstanceStatus, Rule, Severity, State};

    use super::{burst, close, millis, mock_monitor};

    fn error_ratio_rule() -> Rule {
        Rule::builder("HighErrorRate")
            .error_ratio(
                "function_calls_total",
                "result",
                "error",
                Duration::from_secs(300),
            )
            .aggregate(Aggregation::Sum)
            .by(["function"])
            .threshold(Severity::Critical, Comparison::Greater, 0.05)
            .build()
            .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn instance(monitor: &Monitor, rule: &str) -> Option<InstanceStatus> {
        monitor
            .with_alerts(|engine| engine.instances())
            .unwrap()
            .into_iter()
            .find(|i| i.rule == rule)
    }

    fn alerting_monitor(rule: Rule) -> (Monitor, std::sync::Arc<Mock>) {
        let engine = Engine::builder().rule(rule).build().unwrap();
        mock_monitor(
            Monitor::builder()
                .manual_alerts()
                .alerts(engine)
                .notifier("default", TracingNotifier::new()),
        )
    }

    #[test]
    fn an_error_ratio_rule_fires_on_a_burst_in_a_series_first_second() {
        let (monitor, mock) = alerting_monitor(error_ratio_rule());
        // The alert loop evaluates once when it starts, before any call.
        assert!(monitor.evaluate_alerts(at(0)).is_empty());
        mock.increment(millis(300));
        burst(&monitor, 10); // 50% errors, all within the first second
        mock.increment(Duration::from_millis(14_700));
        monitor.evaluate_alerts(at(15));
        mock.increment(Duration::from_secs(15));
        monitor.evaluate_alerts(at(30));
        let alert = instance(&monitor, "HighErrorRate").expect("an instance for checkout");
        assert_eq!(alert.state, State::Firing, "{alert:?}");
        assert_eq!(alert.severity, Some(Severity::Critical), "{alert:?}");
        let ratio = alert.value.unwrap();
        assert!(close(ratio, 0.5), "{ratio}");
    }

    #[test]
    fn a_burst_before_the_first_evaluation_is_seen_too() {
        let (monitor, mock) = alerting_monitor(error_ratio_rule());
        mock.increment(millis(200));
        burst(&monitor, 4);
        mock.increment(millis(800));
        monitor.evaluate_alerts(at(0));
        mock.increment(Duration::from_secs(15));
        monitor.evaluate_alerts(at(15));
        let alert = instance(&monitor, "HighErrorRate").expect("an instance for checkout");
        assert_eq!(alert.state, State::Firing, "{alert:?}");
    }

    #[test]
    fn a_series_older_than_the_window_is_not_read_as_a_new_burst() {
        // A rule on a counter that has been counting for six minutes, longer
        // than the rule's 5-minute window, when the rules are first evaluated:
        // its total is history, not a burst.
        let rule = Rule::builder("Busy")
            .rate("jobs_total", Duration::from_secs(300))
            .threshold(Severity::Medium, Comparison::Greater, 1.0)
            .build()
            .unwrap();
        let (monitor, mock) = alerting_monitor(rule);
        vigil::with_local_recorder(&monitor.recorder(), || {
            vigil::metrics::counter!("jobs_total").increment(1_000);
        });
        for _ in 0..36 {
            mock.increment(Duration::from_secs(10));
            monitor.upkeep();
        }
        monitor.evaluate_alerts(at(0));
        mock.increment(Duration::from_secs(15));
        monitor.evaluate_alerts(at(15));
        let alert = instance(&monitor, "Busy");
        assert!(
            alert.as_ref().is_none_or(|a| a.state == State::Inactive),
            "no increase since the first evaluation: {alert:?}"
        );
        // A later increase is read as usual.
        vigil::with_local_recorder(&monitor.recorder(), || {
            vigil::metrics::counter!("jobs_total").increment(300);
        });
        mock.increment(Duration::from_secs(15));
        monitor.evaluate_alerts(at(30));
        let alert = instance(&monitor, "Busy").expect("an instance for jobs_total");
        assert_eq!(alert.state, State::Firing, "300 over 30 s: {alert:?}");
        assert!(close(alert.value.unwrap(), 10.0), "{alert:?}");
    }
}
