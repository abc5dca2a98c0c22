//! Inhibition: which alerts other firing alerts mute.
//!
//! A firing alert mutes the alerts of lower severity of the same instance
//! (same `alertname` and otherwise the same labels), and each
//! [`InhibitRule`] mutes alerts matching its `target_matchers` while an
//! alert matching its `source_matchers` with the same `equal` labels fires.

use std::collections::HashMap;

use super::InhibitRule;
use crate::Severity;
use crate::alert::Active;

/// The firing alerts that may mute others, indexed once per use.
pub(crate) struct Inhibition<'a> {
    rules: &'a [InhibitRule],
    /// Highest firing severity per instance.
    top: HashMap<u64, Severity>,
    /// Firing alerts, for inhibit rules.
    sources: Vec<&'a Active>,
}

impl<'a> Inhibition<'a> {
    /// Indexes the `firing` alerts.
    pub(crate) fn new(
        rules: &'a [InhibitRule],
        firing: impl IntoIterator<Item = &'a Active>,
    ) -> Self {
        let mut top: HashMap<u64, Severity> = HashMap::new();
        let mut sources = Vec::new();
        for alert in firing {
            let (base, severity) = (alert.base, alert.alert.severity);
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
    pub(crate) fn mutes(&self, target: &Active) -> bool {
        let (base, severity) = (target.base, target.alert.severity);
        if self.top.get(&base).is_some_and(|&s| s > severity) {
            return true;
        }
        self.rules.iter().any(|rule| {
            rule.target_matchers
                .iter()
                .all(|m| m.matches_with(|n| target.label(n)))
                && self.sources.iter().any(|source| {
                    (source.base, source.alert.severity) != (base, severity)
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
