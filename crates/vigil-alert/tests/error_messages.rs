//! Errors print the same one-line message with `{:?}` as with `{}`: an
//! error returned from `main` (which Rust prints as `Error: {err:?}`) or
//! unwrapped reads as a message naming the file, item and field, not as a
//! struct dump.

#![cfg(all(feature = "config", feature = "routing"))]

use std::fmt::{Debug, Display};
use std::time::{Duration, UNIX_EPOCH};

use vigil_alert::config::AlertConfig;
use vigil_alert::{
    Comparison, ConfigError, Engine, Error, Matcher, Route, Routing, Rule, Severity, Silence,
};

/// `Debug` is `Display`, on one line; returns the message.
fn same_message(err: &(impl Debug + Display)) -> String {
    let display = err.to_string();
    assert_eq!(format!("{err:?}"), display);
    assert_eq!(format!("{err:#?}"), display);
    assert!(!display.contains('\n'), "one line: {display}");
    display
}

#[test]
fn core_errors_debug_as_their_message() {
    let matcher = "severity ~ 'x'".parse::<Matcher>().unwrap_err();
    assert!(matches!(matcher, Error::InvalidMatcher { .. }));
    let regex = Matcher::regex("route", "(").unwrap_err();
    assert!(matches!(regex, Error::InvalidRegex { .. }));
    let rule = Rule::builder("QueueBacklog")
        .gauge("queue_depth")
        .threshold(Severity::High, Comparison::Greater, f64::NAN)
        .build()
        .unwrap_err();
    let route = Engine::builder()
        .routing(Routing::new("email").route(Route::new("")))
        .build()
        .unwrap_err();
    assert!(matches!(route, Error::InvalidRoute { .. }), "{route}");
    let mut engine = Engine::new([]).unwrap();
    let silence = engine
        .add_silence(Silence::new(
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_secs(60),
        ))
        .unwrap_err();
    let parse = "urgent".parse::<Severity>().unwrap_err();
    let names = Engine::builder()
        .severity_label(Severity::Low, "")
        .build()
        .unwrap_err();

    assert!(same_message(&matcher).starts_with("invalid label matcher \"severity ~ 'x'\": "));
    assert_eq!(
        same_message(&regex),
        "invalid regex in matcher for label `route`: \"(\": unclosed group"
    );
    assert_eq!(
        same_message(&rule),
        "invalid rule `QueueBacklog`: `thresholds` high limit is NaN"
    );
    assert!(same_message(&route).starts_with("invalid route to receiver ``"));
    assert_eq!(
        same_message(&silence),
        "invalid silence: a silence needs at least one matcher"
    );
    assert_eq!(
        same_message(&parse),
        "invalid severity \"urgent\": expected one of low (info), medium (warning), high, critical"
    );
    assert_eq!(
        same_message(&names),
        "invalid severity labels: the name of `low` is empty"
    );
    // What `fn main() -> Result<(), vigil_alert::Error>` prints on failure.
    assert_eq!(
        format!("Error: {rule:?}"),
        "Error: invalid rule `QueueBacklog`: `thresholds` high limit is NaN"
    );
}

#[test]
fn config_errors_debug_as_file_item_and_field() {
    let invalid = AlertConfig::from_yaml_str(
        "rules:\n  - name: X\n    expr: { gauge: { metric: up } }\n    thresholds: { high: '> 1' }\n    for: 5 minutes please\n",
        "rules.yml",
    )
    .unwrap_err();
    let read = AlertConfig::load("/nonexistent/vigil/rules.yml").unwrap_err();
    let format = AlertConfig::load("rules.json").unwrap_err();
    assert!(matches!(invalid, ConfigError::Invalid(_)));
    assert!(matches!(read, ConfigError::Read { .. }));
    assert!(matches!(format, ConfigError::UnknownFormat { .. }));

    let message = same_message(&invalid);
    assert!(
        message.starts_with(r#"rules.yml: rule "X": field "for": invalid duration"#),
        "{message}"
    );
    assert!(message.ends_with("(line 5, column 10)"), "{message}");
    assert!(
        same_message(&read).starts_with("/nonexistent/vigil/rules.yml: cannot read the file: "),
        "{read}"
    );
    assert_eq!(
        same_message(&format),
        "rules.json: unknown config format: expected a name ending in .yaml, .yml or .toml"
    );
    // What `fn main() -> Result<(), ConfigError>` prints on failure: the
    // message, not `Invalid(Problem { file: .. })`.
    let printed = format!("Error: {invalid:?}");
    assert!(
        printed.starts_with(r#"Error: rules.yml: rule "X": field "for": "#),
        "{printed}"
    );
    assert!(!printed.contains("Problem"), "{printed}");
}
