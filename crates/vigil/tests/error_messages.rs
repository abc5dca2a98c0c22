//! `vigil::Error` prints the same one-line message with `{:?}` as with
//! `{}`, so `fn main() -> Result<(), vigil::Error>` (which Rust prints as
//! `Error: {err:?}`) and `.unwrap()` show the message, not a struct dump.

#![cfg(feature = "listener")]

use std::time::Duration;

use vigil::{Error, Monitor};

/// `Debug` is `Display`, on one line; returns the message.
fn same_message(err: &Error) -> String {
    let display = err.to_string();
    assert_eq!(format!("{err:?}"), display);
    assert_eq!(format!("{err:#?}"), display);
    assert!(!display.contains('\n'), "one line: {display}");
    display
}

#[test]
fn builder_errors_debug_as_their_message() {
    let setting = Monitor::builder()
        .window(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(matches!(setting, Error::Setting { .. }), "{setting}");
    assert_eq!(
        same_message(&setting),
        "invalid setting `window`: must be longer than zero"
    );

    let address = Monitor::builder()
        .listen("not an address")
        .build()
        .unwrap_err();
    assert!(matches!(address, Error::Address { .. }), "{address}");
    assert!(
        same_message(&address).starts_with("invalid address `not an address` for `listen`: "),
        "{address}"
    );

    let quantiles = Monitor::builder()
        .quantiles(&[0.5, 1.5])
        .build()
        .unwrap_err();
    assert_eq!(
        same_message(&quantiles),
        "invalid setting `quantiles`: 1.5 is not in 0.0..=1.0"
    );

    // What `fn main() -> Result<(), vigil::Error>` prints on failure.
    assert_eq!(
        format!("Error: {setting:?}"),
        "Error: invalid setting `window`: must be longer than zero"
    );
}

#[test]
fn a_listener_error_keeps_the_os_reason_on_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = taken.local_addr().unwrap();
    let err = Monitor::builder()
        .listen(address.to_string())
        .build()
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, Error::Listen { .. }), "{err}");
    let message = same_message(&err);
    assert!(
        message.starts_with(&format!("cannot serve /metrics on {address}: ")),
        "{message}"
    );
}

#[test]
fn a_refused_global_label_names_the_key_and_why() {
    let invalid = Monitor::builder()
        .global_label("service-name", "shop")
        .build()
        .unwrap_err();
    assert!(matches!(invalid, Error::Setting { .. }), "{invalid}");
    assert_eq!(
        same_message(&invalid),
        "invalid setting `global_label`: the key \"service-name\" is not a label name \
         ([a-zA-Z_][a-zA-Z0-9_]*); \"service_name\" would be"
    );
    let reserved = Monitor::builder()
        .global_label("__name__", "x")
        .build()
        .unwrap_err();
    assert_eq!(
        same_message(&reserved),
        "invalid setting `global_label`: the key \"__name__\" is reserved: names starting \
         with `__` are Prometheus's own"
    );
    let quantile = Monitor::builder()
        .global_label("quantile", "x")
        .build()
        .unwrap_err();
    assert_eq!(
        same_message(&quantile),
        "invalid setting `global_label`: the key \"quantile\" is reserved: histograms and \
         summaries add `quantile` to their samples"
    );
}

#[cfg(feature = "alert-routing")]
#[test]
fn a_rule_window_shorter_than_the_alert_interval_is_refused() {
    use vigil::alert::notify::ChannelNotifier;
    use vigil::alert::{Comparison, Engine, Rule, Severity};
    let rule = Rule::builder("ErrorsSpike")
        .rate("errors_total", Duration::from_secs(10))
        .threshold(Severity::High, Comparison::Greater, 5.0)
        .build()
        .unwrap();
    let engine = || Engine::builder().rule(rule.clone()).build().unwrap();
    let (notifier, _notifications) = ChannelNotifier::channel(1);
    let refused = Monitor::builder()
        .manual_upkeep()
        .alerts(engine())
        .notifier("default", notifier.clone())
        .alert_interval(Duration::from_secs(15))
        .build()
        .unwrap_err();
    assert!(matches!(refused, Error::Setting { .. }), "{refused}");
    let message = same_message(&refused);
    assert!(
        message.starts_with("invalid setting `alert_interval`: ")
            && message.contains("ErrorsSpike"),
        "{message}"
    );
    // The same rule at an interval its window can hold is accepted.
    Monitor::builder()
        .manual_upkeep()
        .alerts(engine())
        .notifier("default", notifier)
        .alert_interval(Duration::from_secs(5))
        .build()
        .unwrap();
}
