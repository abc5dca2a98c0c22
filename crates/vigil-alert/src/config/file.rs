//! The file format around the rules: `rules:` entries are [`Rule`]s in
//! their own serde form; this adds what a file holds besides them
//! (evaluation interval, severity names, rule sets, routing, inhibit rules,
//! silences) and converts it to core values with the checks that need
//! several fields.

use std::time::Duration;

use serde::Deserialize;

use super::{AlertConfig, ConfigError};
use crate::Rule;
use crate::severity::SeverityLabels;

/// A duration longer than zero.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct PositiveDur(
    #[serde(with = "crate::time::duration::positive")] pub(crate) Duration,
);

/// A whole config file.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(not(all(feature = "routing", feature = "rulesets")), allow(dead_code))]
pub(crate) struct FileDoc {
    evaluation_interval: Option<PositiveDur>,
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
    Rulesets("rulesets", 0): rulesets::RulesetsFile;
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
        let interval = self.evaluation_interval.map(|d| d.0);
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

#[cfg(feature = "rulesets")]
pub(crate) mod rulesets {
    //! `rulesets:`: the ready-made rules, with a file's settings.

    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Unexpected, Visitor};
    use serde::{Deserialize, Deserializer};

    use super::PositiveDur;
    use crate::config::{ConfigError, Item};
    use crate::labels::{LabelName, from_text};
    use crate::rulesets::{ServiceTargets, SloBurnRate, Target};
    use crate::{Matcher, Rule, Selector};

    /// A non-empty SLO name.
    struct Name(String);

    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            from_text(d, "a non-empty name", |v| match v.trim() {
                "" => Err("must not be empty".to_owned()),
                _ => Ok(Name(v.to_owned())),
            })
        }
    }

    /// `rulesets.service_targets:`.
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ServiceTargetsFile {
        window: Option<PositiveDur>,
        #[serde(rename = "for", default, with = "crate::time::duration::option")]
        for_duration: Option<Duration>,
        latency_p95: Option<PositiveDur>,
        only: Option<Vec<Target>>,
    }

    /// A success-rate objective: a number between 0 and 1 (`0.999`) or a
    /// percentage string (`"99.9%"`), checked inside the value's own visit
    /// so that an error points at the value.
    struct Objective(f64);

    impl<'de> Deserialize<'de> for Objective {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Objective(0.0))
        }
    }

    impl Visitor<'_> for Objective {
        type Value = Objective;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number between 0 and 1 (e.g. 0.999) or a percentage (\"99.9%\")")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Objective, E> {
            let valid = (v > 0.0 && v < 1.0).then_some(Objective(v));
            valid.ok_or_else(|| E::invalid_value(Unexpected::Float(v), &self))
        }
        fn visit_str<E: de::Error>(self, t: &str) -> Result<Objective, E> {
            match t.trim().strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
                Some(Ok(p)) => self.visit_f64(p / 100.0),
                _ => Err(E::invalid_value(Unexpected::Str(t), &self)),
            }
        }
    }

    /// One entry of `rulesets.slos:`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SloFile {
        name: Name,
        objective: Objective,
        #[serde(default)]
        matchers: Vec<Matcher>,
        #[serde(default)]
        by: Vec<LabelName>,
        errors: Option<Selector>,
        total: Option<Selector>,
    }

    /// `rulesets:`.
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RulesetsFile {
        service_targets: Option<ServiceTargetsFile>,
        #[serde(default)]
        slos: Vec<SloFile>,
    }

    impl RulesetsFile {
        /// The rules, checked against the evaluation interval.
        pub(crate) fn into_rules(
            self,
            file: &str,
            interval: Option<Duration>,
        ) -> Result<Vec<Rule>, ConfigError> {
            let checked = |item: Item, rules: crate::Result<Vec<Rule>>| {
                let at_interval = |r: &Rule| interval.map_or(Ok(()), |i| r.check_interval(i));
                let rules = rules.and_then(|r| r.iter().try_for_each(at_interval).map(|()| r));
                rules.map_err(|e| ConfigError::invalid(file, Some(item), None, e.to_string(), None))
            };
            let mut rules = Vec::new();
            if let Some(st) = self.service_targets {
                let t = (st.window.into_iter()).fold(ServiceTargets::new(), |t, w| t.window(w.0));
                let t = st
                    .for_duration
                    .into_iter()
                    .fold(t, ServiceTargets::for_duration);
                let t = st
                    .latency_p95
                    .into_iter()
                    .fold(t, |t, d| t.latency_p95(d.0));
                let t = st.only.into_iter().fold(t, ServiceTargets::only);
                rules.extend(checked(Item::ServiceTargets, t.rules())?);
            }
            for (index, slo) in self.slos.into_iter().enumerate() {
                let name = Some(slo.name.0.clone());
                let s = SloBurnRate::new(slo.name.0, slo.objective.0);
                let s = s.by(slo.by.into_iter().map(|l| l.0));
                let s = slo.errors.into_iter().fold(s, SloBurnRate::errors);
                let s = slo.total.into_iter().fold(s, SloBurnRate::total);
                let s = slo.matchers.into_iter().fold(s, SloBurnRate::matcher);
                rules.extend(checked(Item::Slo { index, name }, s.rules())?);
            }
            Ok(rules)
        }
    }
}
