//! Shared helpers for the integration tests: synthetic times and shorthands.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(feature = "config")]
use vigil_alert::config::{AlertConfig, ConfigError};
use vigil_alert::{Labels, Notification, State, Transition};

/// A synthetic wall-clock time `secs` seconds after an arbitrary origin.
pub fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// Seconds.
pub fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// (from, to) of each transition.
pub fn moves(transitions: &[Transition]) -> Vec<(State, State)> {
    transitions.iter().map(|t| (t.from, t.to)).collect()
}

/// The single transition's `to` state; panics unless there is exactly one.
pub fn only(transitions: &[Transition]) -> &Transition {
    assert_eq!(
        transitions.len(),
        1,
        "expected one transition, got {transitions:#?}"
    );
    &transitions[0]
}

/// Label set shorthand.
pub fn l<const N: usize>(pairs: [(&str, &str); N]) -> Labels {
    vigil_alert::labels(pairs)
}

/// For each notification: receiver and, per alert, (a chosen label, status).
pub fn summary(
    notifications: &[Notification],
    label: &str,
) -> Vec<(String, Vec<(String, String)>)> {
    notifications
        .iter()
        .map(|n| {
            (
                n.receiver.clone(),
                n.alerts
                    .iter()
                    .map(|a| {
                        (
                            a.labels.get(label).cloned().unwrap_or_default(),
                            format!("{:?}", a.status).to_lowercase(),
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The error loading `text` as a YAML rule file named `rules.yml` gives;
/// panics if it loads.
#[cfg(feature = "config")]
pub fn yaml_err(text: &str) -> ConfigError {
    match AlertConfig::from_yaml_str(text, "rules.yml") {
        Ok(c) => panic!(
            "expected an error, got {} rules from:\n{text}",
            c.rules().len()
        ),
        Err(e) => e,
    }
}

/// The error loading `text` as a TOML rule file named `rules.toml` gives;
/// panics if it loads.
#[cfg(feature = "config")]
pub fn toml_err(text: &str) -> ConfigError {
    match AlertConfig::from_toml_str(text, "rules.toml") {
        Ok(c) => panic!(
            "expected an error, got {} rules from:\n{text}",
            c.rules().len()
        ),
        Err(e) => e,
    }
}
