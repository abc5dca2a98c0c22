//! The file format around the rules: `rules:` entries are [`Rule`]s in
//! their own serde form; this adds what a file holds besides them
//! (evaluation interval, severity names, rule sets, routing, inhibit rules,
//! silences) and converts it to core values with the checks that need
//! several fields.

use std::time::Duration;

use serde::Deserialize;

#[cfg(feature = "rulesets")]
use super::Item;
use super::{AlertConfig, ConfigError};
use crate::Rule;
use crate::severity::SeverityLabels;

/// A whole config file.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(not(all(feature = "routing", feature = "rulesets")), allow(dead_code))]
pub(crate) struct FileDoc {
    #[serde(deserialize_with = "crate::time::duration::positive::option")]
    evaluation_interval: Option<Duration>,
    severity_labels: SeverityLabels,
    rulesets: Rulesets,
    rules: Vec<Rule>,
    routing: Routing,
    inhibit_rules: InhibitRules,
    silences: Silences,
}

/// Declares the type of each section a cargo feature reads: its own with
/// the feature on; with it off, an empty section or a refusal naming the
/// feature to turn on ([`off`]; an unknown-field error would list the
/// other fields instead).
macro_rules! sections {
    ($($name:ident($feature:literal, $index:literal): $on:ty;)*) => {$(
        #[cfg(feature = $feature)]
        type $name = $on;
        #[cfg(not(feature = $feature))]
        type $name = Option<off::Refused<$index>>;
    )*};
}

sections! {
    Rulesets("rulesets", 0): RulesetsSection;
    Routing("routing", 1): Option<crate::Routing>;
    InhibitRules("routing", 2): Vec<crate::InhibitRule>;
    Silences("routing", 3): Vec<crate::Silence>;
}

#[cfg(not(all(feature = "routing", feature = "rulesets")))]
mod off {
    //! Sections whose cargo feature is off: each refuses any value but
    //! `null` with the feature that reads it.

    use std::marker::PhantomData;

    use serde::de::DeserializeSeed;
    use serde::{Deserialize, Deserializer};

    use crate::labels::Refuse;

    /// The sections, each with the features (vigil-alert's, vigil's) that
    /// read it.
    const SECTIONS: [[&str; 3]; 4] = [
        ["rulesets", "rulesets", "rulesets"],
        ["routing", "routing", "alert-routing"],
        ["inhibit_rules", "routing", "alert-routing"],
        ["silences", "routing", "alert-routing"],
    ];

    /// A value given to `SECTIONS[S]` while its feature is off.
    pub(super) struct Refused<const S: usize>;

    impl<'de, const S: usize> Deserialize<'de> for Refused<S> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let [section, feature, vigil] = SECTIONS[S];
            let message =
                format!("`{section}:` needs vigil-alert's `{feature}` feature (vigil's `{vigil}`)");
            Refuse(message, PhantomData).deserialize(d)
        }
    }
}

impl FileDoc {
    /// Converts to core types and runs the checks that need several fields
    /// (those of rules too, naming each by its place in `rules:`).
    pub(crate) fn into_config(self, file: &str) -> Result<AlertConfig, ConfigError> {
        let interval = self.evaluation_interval;
        #[cfg_attr(not(feature = "rulesets"), allow(unused_mut))]
        let mut rules = Vec::new();
        #[cfg(feature = "rulesets")]
        rules.extend(self.rulesets.into_rules(file, interval)?);
        for (index, rule) in self.rules.iter().enumerate() {
            super::check_rule(file, index, rule, interval)?;
        }
        rules.extend(self.rules);
        // The file's names for the levels its rules (ready-made ones too)
        // leave unnamed. No clash is possible: a threshold's spelling is
        // read as its own level, and the file's names were checked not to
        // be read as another level.
        for rule in &mut rules {
            rule.severity_labels = rule.severity_labels.or(&self.severity_labels);
        }
        Ok(AlertConfig {
            source: Some(file.to_owned()),
            evaluation_interval: interval,
            rules,
            #[cfg(feature = "routing")]
            routing: self.routing,
            #[cfg(feature = "routing")]
            inhibit_rules: self.inhibit_rules,
            #[cfg(feature = "routing")]
            silences: self.silences,
        })
    }
}

/// `rulesets:`: the ready-made rules, with a file's settings.
#[cfg(feature = "rulesets")]
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RulesetsSection {
    service_targets: Option<crate::rulesets::ServiceTargets>,
    slos: Vec<crate::rulesets::SloBurnRate>,
}

#[cfg(feature = "rulesets")]
impl RulesetsSection {
    /// The rules, checked against the evaluation interval; an error names
    /// the rule set it comes from.
    fn into_rules(self, file: &str, interval: Option<Duration>) -> Result<Vec<Rule>, ConfigError> {
        let targets = self
            .service_targets
            .map(|t| (Item::ServiceTargets, t.rules()));
        let slos = self.slos.iter().enumerate().map(|(index, slo)| {
            let name = Some(slo.name.clone());
            (Item::Slo { index, name }, slo.rules())
        });
        let mut all = Vec::new();
        for (item, rules) in targets.into_iter().chain(slos) {
            let at_interval = |r: &Rule| interval.map_or(Ok(()), |i| r.check_interval(i));
            let rules = rules.and_then(|r| r.iter().try_for_each(at_interval).map(|()| r));
            let invalid =
                |e: crate::Error| ConfigError::invalid(file, Some(item), None, e.to_string(), None);
            all.extend(rules.map_err(invalid)?);
        }
        Ok(all)
    }
}
