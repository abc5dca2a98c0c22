//! Inhibition: which alerts other firing alerts mute.
//!
//! A firing alert mutes the alerts of lower severity of the same instance
//! (same `alertname` and otherwise the same labels), and each
//! [`InhibitRule`] mutes alerts matching its `target_matchers` while an
//! alert matching its `source_matchers` with the same `equal` labels fires.

use std::collections::HashMap;

use super::InhibitRule;
use crate::{Alert, Severity};

/// What inhibition reads of an alert.
pub(crate) trait Inhibitable {
    /// The fingerprint of its labels without `severity`, and its severity.
    fn key(&self) -> (u64, Severity);
    /// The value of one of its labels (`severity` included).
    fn label(&self, name: &str) -> Option<&str>;
}

/// An active alert with the fingerprint of its labels without `severity`.
impl Inhibitable for (u64, Alert) {
    fn key(&self) -> (u64, Severity) {
        (self.0, self.1.severity)
    }

    fn label(&self, name: &str) -> Option<&str> {
        self.1.labels.get(name).map(String::as_str)
    }
}

/// The firing alerts that may mute others, indexed once per use.
pub(crate) struct Inhibition<'a, T> {
    rules: &'a [InhibitRule],
    /// Highest firing severity per instance.
    top: HashMap<u64, Severity>,
    /// Firing alerts, for inhibit rules.
    sources: Vec<&'a T>,
}

impl<'a, T: Inhibitable> Inhibition<'a, T> {
    /// Indexes the `firing` alerts.
    pub(crate) fn new(rules: &'a [InhibitRule], firing: impl IntoIterator<Item = &'a T>) -> Self {
        let mut top: HashMap<u64, Severity> = HashMap::new();
        let mut sources = Vec::new();
        for alert in firing {
            let (base, severity) = alert.key();
            let slot = top.entry(base).or_insert(severity);
            *slot = (*slot).max(severity);
            if !rules.is_empty() {
                sources.push(alert);
            }
        }
        Inhibition {
            rules,
            top,
            sources,
        }
    }

    /// Whether the firing alerts mute `target`.
    pub(crate) fn mutes(&self, target: &T) -> bool {
        let (base, severity) = target.key();
        if self.top.get(&base).is_some_and(|&s| s > severity) {
            return true;
        }
        self.rules.iter().any(|rule| {
            rule.target_matchers
                .iter()
                .all(|m| m.matches_with(|n| target.label(n)))
                && self.sources.iter().any(|source| {
                    source.key() != (base, severity)
                        && rule
                            .source_matchers
                            .iter()
                            .all(|m| m.matches_with(|n| source.label(n)))
                        && rule
                            .equal
                            .iter()
                            .all(|l| source.label(l).unwrap_or("") == target.label(l).unwrap_or(""))
                })
        })
    }
}
