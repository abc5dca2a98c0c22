//! The file format around the rules: `rules:` entries are [`Rule`]s in
//! their own serde form; this adds what a file holds besides them
//! (evaluation interval, severity names, rule sets, routing, inhibit rules,
//! silences) and converts it to core values with the checks that need
//! several fields.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{AlertConfig, ConfigError};
use crate::Rule;
#[cfg(any(feature = "routing", feature = "rulesets"))]
use crate::labels::from_text;
use crate::severity::SeverityLabels;

/// A duration as rule files write it ([`crate::time::duration`]).
#[cfg(any(feature = "routing", feature = "rulesets"))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dur(pub(crate) Duration);

#[cfg(any(feature = "routing", feature = "rulesets"))]
impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::time::duration::deserialize(d).map(Dur)
    }
}

/// A duration longer than zero.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PositiveDur(pub(crate) Duration);

impl<'de> Deserialize<'de> for PositiveDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::time::duration::positive::deserialize(d).map(PositiveDur)
    }
}

/// A non-empty string (receiver and SLO names).
#[cfg(any(feature = "routing", feature = "rulesets"))]
#[derive(Clone, Debug)]
pub(crate) struct Name(pub(crate) String);

#[cfg(any(feature = "routing", feature = "rulesets"))]
impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d, "a non-empty name", |v| match v.trim() {
            "" => Err("must not be empty".to_owned()),
            _ => Ok(Name(v.to_owned())),
        })
    }
}

/// `builder`, with `set` applied to `value` if one was given.
pub(crate) fn set<B, V>(builder: B, value: Option<V>, set: impl FnOnce(B, V) -> B) -> B {
    match value {
        Some(value) => set(builder, value),
        None => builder,
    }
}

/// A whole config file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileDoc {
    #[serde(default)]
    evaluation_interval: Option<PositiveDur>,
    #[serde(default)]
    severity_labels: SeverityLabels,
    #[cfg(feature = "rulesets")]
    #[serde(default)]
    rulesets: rulesets::RulesetsFile,
    #[serde(default)]
    rules: Vec<Rule>,
    #[cfg(feature = "routing")]
    #[serde(default, deserialize_with = "routing::top")]
    routing: Option<routing::RoutingFile>,
    #[cfg(feature = "routing")]
    #[serde(default)]
    inhibit_rules: Vec<crate::InhibitRule>,
    #[cfg(feature = "routing")]
    #[serde(default)]
    silences: Vec<crate::Silence>,
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
            routing: self.routing.map(routing::RoutingFile::into_routing),
            #[cfg(feature = "routing")]
            inhibit_rules: self.inhibit_rules,
            #[cfg(feature = "routing")]
            silences: self.silences,
        })
    }
}

#[cfg(feature = "routing")]
pub(crate) mod routing {
    //! `routing:`, `inhibit_rules:` and `silences:`.

    use serde::{Deserialize, Deserializer};

    use super::{Dur, Name, PositiveDur, set};
    use crate::labels::{from_text, is_valid_label_name};
    use crate::{Matcher, Route, Routing};

    /// A `group_by` entry: a label name, or `...` for all labels.
    struct GroupLabel(String);

    impl<'de> Deserialize<'de> for GroupLabel {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            from_text(d, "a label name or \"...\"", |v| {
                if v == "..." || is_valid_label_name(v) {
                    Ok(GroupLabel(v.to_owned()))
                } else {
                    Err(format!(
                        "{v:?} is not a valid label name: use letters, digits and `_`, not starting with a digit"
                    ))
                }
            })
        }
    }

    /// `routing:`, and each of its `routes:` (the top-level route takes
    /// every alert; routes do not nest).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct RoutingFile {
        #[serde(default)]
        matchers: Vec<Matcher>,
        #[serde(alias = "notifier")]
        receiver: Name,
        group_by: Option<Vec<GroupLabel>>,
        group_wait: Option<Dur>,
        group_interval: Option<PositiveDur>,
        repeat_interval: Option<PositiveDur>,
        #[serde(default)]
        routes: Vec<RoutingFile>,
    }

    /// `routing:`, refusing matchers at the top and nested routes.
    pub(crate) fn top<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RoutingFile>, D::Error> {
        let routing = RoutingFile::deserialize(d)?;
        if !routing.matchers.is_empty() {
            return Err(serde::de::Error::custom(
                "the top-level route takes every alert: give `matchers` to its `routes`",
            ));
        }
        if routing.routes.iter().any(|r| !r.routes.is_empty()) {
            return Err(serde::de::Error::custom("routes do not nest"));
        }
        Ok(Some(routing))
    }

    /// Sets the timers and grouping a route or the routing gives.
    macro_rules! timers {
        ($target:expr, $file:expr) => {{
            let t = set($target, $file.group_by, |t, g| {
                t.group_by(g.into_iter().map(|l| l.0))
            });
            let t = set(t, $file.group_wait, |t, d| t.group_wait(d.0));
            let t = set(t, $file.group_interval, |t, d| t.group_interval(d.0));
            set(t, $file.repeat_interval, |t, d| t.repeat_interval(d.0))
        }};
    }

    impl RoutingFile {
        pub(crate) fn into_routing(self) -> Routing {
            let mut routing = timers!(Routing::new(self.receiver.0), self);
            for r in self.routes {
                let route = r
                    .matchers
                    .into_iter()
                    .fold(Route::new(r.receiver.0), Route::matcher);
                routing = routing.route(timers!(route, r));
            }
            routing
        }
    }
}

#[cfg(feature = "rulesets")]
pub(crate) mod rulesets {
    //! `rulesets:`: the ready-made rules, with a file's settings.

    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    use super::{Dur, Name, PositiveDur, set};
    use crate::config::{ConfigError, Item};
    use crate::labels::from_text;
    use crate::rulesets::{ServiceTargets, SloBurnRate, Target};
    use crate::{Matcher, Rule, Selector};

    /// `rulesets.service_targets:`.
    #[derive(Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ServiceTargetsFile {
        window: Option<PositiveDur>,
        #[serde(rename = "for")]
        for_duration: Option<Dur>,
        latency_p95: Option<PositiveDur>,
        only: Option<Vec<TargetName>>,
    }

    /// A [`Target`] by its name in files.
    struct TargetName(Target);

    impl<'de> Deserialize<'de> for TargetName {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            const NAMES: [(&str, Target); 5] = [
                ("latency", Target::Latency),
                ("error_rate", Target::ErrorRate),
                ("cpu", Target::Cpu),
                ("memory", Target::Memory),
                ("cache_hit_ratio", Target::CacheHitRatio),
            ];
            from_text(d, "a service target", |v| {
                NAMES.iter().find(|(n, _)| *n == v).map(|&(_, t)| TargetName(t)).ok_or_else(|| {
                    format!("unknown variant `{v}`, expected one of `latency`, `error_rate`, `cpu`, `memory`, `cache_hit_ratio`")
                })
            })
        }
    }

    /// A success-rate objective: a number between 0 and 1 (`0.999`) or a
    /// percentage string (`"99.9%"`).
    struct Objective(f64);

    impl<'de> Deserialize<'de> for Objective {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Written {
                Number(f64),
                Text(String),
            }
            let value = match Written::deserialize(d)? {
                Written::Number(v) => Some(v),
                Written::Text(t) => t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .map(|p| p / 100.0),
            };
            match value {
                Some(v) if v > 0.0 && v < 1.0 => Ok(Objective(v)),
                _ => Err(serde::de::Error::custom(
                    "objective must be between 0 and 1 (e.g. 0.999 or \"99.9%\")",
                )),
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
        by: Vec<String>,
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
                let fail = |e: crate::Error| {
                    ConfigError::invalid(file, Some(item.clone()), None, e.to_string(), None)
                };
                let rules = rules.map_err(fail)?;
                let at_interval = |r: &Rule| interval.map_or(Ok(()), |i| r.check_interval(i));
                rules.iter().try_for_each(at_interval).map_err(fail)?;
                Ok::<_, ConfigError>(rules)
            };
            let mut rules = Vec::new();
            if let Some(st) = self.service_targets {
                let t = set(ServiceTargets::new(), st.window, |t, w| t.window(w.0));
                let t = set(t, st.for_duration, |t, d| t.for_duration(d.0));
                let t = set(t, st.latency_p95, |t, d| t.latency_p95(d.0));
                let t = set(t, st.only, |t, only| t.only(only.into_iter().map(|n| n.0)));
                rules.extend(checked(Item::ServiceTargets, t.rules())?);
            }
            for (index, slo) in self.slos.into_iter().enumerate() {
                let name = Some(slo.name.0.clone());
                let s = SloBurnRate::new(slo.name.0, slo.objective.0).by(slo.by);
                let s = set(s, slo.errors, SloBurnRate::errors);
                let s = set(s, slo.total, SloBurnRate::total);
                let s = slo.matchers.into_iter().fold(s, SloBurnRate::matcher);
                rules.extend(checked(Item::Slo { index, name }, s.rules())?);
            }
            Ok(rules)
        }
    }
}
