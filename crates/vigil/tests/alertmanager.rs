//! A monitor sending its alerts to a real Alertmanager (Debian package
//! `prometheus-alertmanager`, binary `prometheus-alertmanager`) configured
//! with `resolve_timeout: 10s`: an alert that fires for 35 s stays active
//! there the whole time, under vigil's fingerprint, and resolves there
//! within 10 s of vigil resolving it.
//!
//! Without re-sending, it would not: an alert posted once without `endsAt`
//! resolves there after the 10 s resolve timeout, and one posted once with
//! the validity the monitor gives it (4 x 2 s) after 8 s.

#![cfg(feature = "alert-delivery")]

mod servers;

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use servers::alertmanager::Alertmanager;
use vigil::Monitor;
use vigil::alert::{AlertStatus, Comparison, Engine, Rule, Severity, State, labels};

/// An RFC 3339 UTC time as Alertmanager writes it
/// (`2024-01-02T03:04:05.678Z`, fraction optional).
fn time(value: &Value) -> SystemTime {
    let text = value.as_str().expect("a time string");
    let parse = || -> Option<SystemTime> {
        let (date, clock) = text.strip_suffix('Z')?.split_once('T')?;
        let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
        let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
        let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
        let mut hms = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
        let (h, min, sec) = (hms.next()??, hms.next()??, hms.next()??);
        // Days since 1970-01-01 of a proleptic Gregorian date.
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = u64::try_from(days * 86_400 + h * 3600 + min * 60 + sec).ok()?;
        let nanos = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<9}")[..9].parse::<u32>().ok()?
        };
        Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
    };
    parse().unwrap_or_else(|| panic!("not an RFC 3339 UTC time: {text}"))
}

#[test]
fn times_parse_as_alertmanager_writes_them() {
    let t = |text: &str| time(&Value::from(text));
    let epoch = SystemTime::UNIX_EPOCH;
    assert_eq!(t("1970-01-01T00:00:00Z"), epoch);
    assert_eq!(
        t("2023-11-14T22:13:20.5Z"),
        epoch + Duration::from_millis(1_700_000_000_500)
    );
    assert_eq!(
        t("2024-02-29T00:00:00.000000001Z"),
        epoch + Duration::new(1_709_164_800, 1)
    );
}

#[test]
fn a_firing_alert_stays_active_in_alertmanager_and_resolves_there_with_vigil() {
    const NAME: &str = "VigilStaysFiring";
    let am = Alertmanager::start_with_resolve_timeout("10s");
    let rule = Rule::builder(NAME)
        .gauge("queue_depth")
        .per_series()
        .threshold(Severity::High, Comparison::Greater, 100.0)
        .annotation("summary", "{{ $labels.queue }} is backed up")
        .build()
        .unwrap();
    let monitor = Monitor::builder()
        .manual_upkeep()
        .alert_interval(Duration::from_secs(1))
        .alerts(Engine::new([rule]).unwrap())
        .alertmanager(am.url(""))
        .alertmanager_resend_delay(Duration::from_secs(2))
        .build()
        .unwrap();
    let depth = |value: f64| {
        vigil::with_local_recorder(&monitor.recorder(), || {
            vigil::metrics::gauge!("queue_depth", "queue" => "emails").set(value);
        });
    };
    let instance = labels([("queue", "emails")]);
    let state = || {
        monitor
            .with_alerts(|engine| engine.state(NAME, &instance))
            .unwrap()
    };
    let ours = || {
        monitor
            .with_alerts(|engine| engine.alerts(SystemTime::now()))
            .unwrap()
            .into_iter()
            .find(|a| a.status == AlertStatus::Firing)
    };

    depth(500.0);
    let fired = Instant::now();
    let deadline = fired + Duration::from_secs(10);
    let alert = loop {
        if let [alert] = am.alerts(NAME).as_slice() {
            break alert.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the alert did not reach Alertmanager within 10 s (vigil: {:?}):\n{}",
            state(),
            am.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let vigils = ours().expect("vigil holds the firing alert");
    assert_eq!(
        alert["fingerprint"],
        vigils.fingerprint().as_str(),
        "{alert:#}"
    );
    assert_eq!(alert["labels"]["queue"], "emails");
    assert_eq!(
        alert["labels"]["severity"],
        vigils.labels["severity"].as_str()
    );
    assert_eq!(alert["annotations"]["summary"], "emails is backed up");
    let skew = time(&alert["startsAt"])
        .duration_since(vigils.starts_at)
        .unwrap_or_else(|e| e.duration());
    assert!(
        skew < Duration::from_millis(1),
        "startsAt is when vigil saw it fire: {alert:#}"
    );

    // 35 s of firing, well past the resolve timeout and one send's
    // validity: active at every look.
    let mut looks = 0;
    while fired.elapsed() < Duration::from_secs(35) {
        let listed = am.alerts(NAME);
        assert_eq!(
            listed.len(),
            1,
            "after {:?} of firing Alertmanager lists {listed:#?}",
            fired.elapsed()
        );
        assert_eq!(
            listed[0]["status"]["state"],
            "active",
            "after {:?}: {:#}",
            fired.elapsed(),
            listed[0]
        );
        assert_eq!(listed[0]["fingerprint"], alert["fingerprint"]);
        assert!(
            time(&listed[0]["endsAt"]) > SystemTime::now(),
            "{:#}",
            listed[0]
        );
        looks += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(looks >= 25, "only {looks} looks in 35 s");
    assert_eq!(state(), State::Firing);

    // vigil resolves it at its next evaluation; Alertmanager follows.
    depth(10.0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while state().is_alerting() {
        assert!(Instant::now() < deadline, "vigil did not resolve the alert");
        std::thread::sleep(Duration::from_millis(20));
    }
    let resolved = Instant::now();
    while !am.alerts(NAME).is_empty() {
        assert!(
            resolved.elapsed() < Duration::from_secs(10),
            "Alertmanager still lists the alert 10 s after vigil resolved it: {:#?}",
            am.alerts(NAME)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "fired for {:?}, {looks} looks all active; resolved in Alertmanager {:?} after vigil",
        resolved - fired,
        resolved.elapsed()
    );
}
