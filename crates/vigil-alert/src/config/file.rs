//! The file format around the rules: a file is read into an
//! [`AlertConfig`] (`rules:` entries are [`Rule`]s in their own serde
//! form); this declares its sections that cargo features read, expands
//! `rulesets:` and runs the checks that need several fields.

use super::{AlertConfig, ConfigError};

/// Declares the type of each section a cargo feature reads: its own with
/// the feature on; with it off, an empty section or a refusal naming the
/// feature to turn on ([`off`]; an unknown-field error would list the
/// other fields instead).
macro_rules! sections {
    ($($name:ident($feature:literal, $index:literal): $on:ty;)*) => {$(
        #[cfg(feature = $feature)]
        pub(super) type $name = $on;
        #[cfg(not(feature = $feature))]
        pub(super) type $name = Option<off::Refused<$index>>;
    )*};
}

sections! {
    Rulesets("rulesets", 0): rulesets::RulesetsSection;
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
    #[derive(Clone, Debug)]
    pub(crate) struct Refused<const S: usize>;

    impl<'de, const S: usize> Deserialize<'de> for Refused<S> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let [section, feature, vigil] = SECTIONS[S];
            let message =
                format!("`{section}:` needs vigil-alert's `{feature}` feature (vigil's `{vigil}`)");
            Refuse(message, PhantomData).deserialize(d)
        }
    }
}

impl AlertConfig {
    /// The config read from `file`, its rule sets expanded before its
    /// rules, after the checks that need several fields (those of rules
    /// too, naming each by its place in `rules:`, and of the routing tree
    /// and silences).
    pub(super) fn loaded(mut self, file: &str) -> Result<AlertConfig, ConfigError> {
        let interval = self.evaluation_interval;
        #[cfg(feature = "rulesets")]
        let sets = std::mem::take(&mut self.rulesets).into_rules(file, interval)?;
        for (index, rule) in self.rules.iter().enumerate() {
            super::check_rule(file, index, rule, interval)?;
        }
        #[cfg(feature = "rulesets")]
        self.rules.splice(..0, sets);
        // The file's names for the levels its rules (ready-made ones too)
        // leave unnamed. No clash is possible: a threshold's spelling is
        // read as its own level, and the file's names were checked not to
        // be read as another level.
        for rule in &mut self.rules {
            rule.severity_labels = rule.severity_labels.or(&self.severity_labels);
        }
        self.source = Some(file.to_owned());
        self.validate_routing().map(|()| self)
    }
}

#[cfg(feature = "rulesets")]
mod rulesets {
    //! `rulesets:`: the ready-made rules, with a file's settings.

    use std::time::Duration;

    use serde::Deserialize;

    use crate::Rule;
    use crate::config::{ConfigError, Item};
    use crate::rulesets::{ServiceTargets, SloBurnRate};

    /// `rulesets:`.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    pub(crate) struct RulesetsSection {
        service_targets: Option<ServiceTargets>,
        slos: Vec<SloBurnRate>,
    }

    impl RulesetsSection {
        /// The rules, checked against the evaluation interval; an error names
        /// the rule set it comes from.
        pub(crate) fn into_rules(
            self,
            file: &str,
            interval: Option<Duration>,
        ) -> Result<Vec<Rule>, ConfigError> {
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
                let invalid = |e: crate::Error| {
                    ConfigError::invalid(file, Some(item), None, e.to_string(), None)
                };
                all.extend(rules.map_err(invalid)?);
            }
            Ok(all)
        }
    }
}
