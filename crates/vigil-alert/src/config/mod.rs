//! Loading alert configuration from YAML or TOML: rules, routing,
//! inhibit rules, silences and ready-made rule sets, as one
//! [`AlertConfig`].
//!
//! The file format is documented in `docs/alert-rules.md`; in short:
//!
//! ```yaml
//! rules:
//!   - name: HighLatency
//!     expr:
//!       histogram: { metric: function_calls_duration_seconds, stat: p95, window: 5m }
//!     thresholds:
//!       warning: "> 0.2"                        # level `medium`, label severity="warning"
//!       critical: { op: ">", value: 1.0 }
//!     for: 5m
//!     labels: { team: web }
//!     annotations: { summary: "p95 of {{ $labels.function }} is {{ $value }}s" }
//! routing:
//!   receiver: team-email
//!   group_by: [alertname]
//!   routes:
//!     - matchers: ['severity="critical"']
//!       receiver: pager
//! ```
//!
//! Every error names the file, the item (rule, route, silence ...) and the
//! field, with the line and column when the parser knows them, e.g.
//! `rules.yml: rule "HighLatency": field "thresholds.critical.value":
//! invalid type: string "fast", expected a number, or a baseline such as
//! {stddevs: 3, window: 1h} (line 12, column 16)`. Unknown fields are
//! errors.
//!
//! `rules:` entries are [`Rule`]s in their serde form. The text is
//! deserialized once, through `serde_path_to_error` for the field path.
//! Before that, a linear scan refuses YAML documents whose `[`/`{` nest
//! more than [`MAX_NESTING`] levels deep (the YAML parser's cost grows with
//! the square of that depth; block nesting and TOML are bounded by their
//! parsers). After it, the checks that need several
//! fields refuse contradictory thresholds, durations over
//! [`MAX_DURATION`](crate::MAX_DURATION) and, with an
//! `evaluation_interval:`, windows that cannot work at that pace (see
//! [`Rule::validate`] and [`Rule::check_interval`]). An error names its
//! item by its `name` (or `receiver`), or by its index (`rules[3]`) when
//! it has none.
//!
//! ```
//! use vigil_alert::config::AlertConfig;
//!
//! let config = AlertConfig::from_yaml_str(
//!     r#"
//! rules:
//!   - name: QueueBacklog
//!     expr: { gauge: { metric: queue_depth } }
//!     thresholds: { high: "> 100" }
//!     for: 1m
//! "#,
//!     "rules.yml",
//! )?;
//! assert_eq!(config.rules()[0].name, "QueueBacklog");
//! let engine = config.into_engine()?;
//! assert_eq!(engine.rules().len(), 1);
//!
//! let err = AlertConfig::from_yaml_str(
//!     "rules:\n  - name: X\n    expr: { gauge: { metric: up } }\n    thresholds: { high: '> 1' }\n    for: 5 minutes please\n",
//!     "rules.yml",
//! )
//! .unwrap_err();
//! assert_eq!(err.field(), Some("for"));
//! assert_eq!(err.line(), Some(5));
//! assert!(err.to_string().starts_with(r#"rules.yml: rule "X": field "for": invalid duration"#));
//! # Ok::<(), vigil_alert::config::ConfigError>(())
//! ```

mod depth;
mod error;
mod file;

pub use depth::MAX_NESTING;
pub use error::{ConfigError, Item, Location, Problem};

use std::path::Path as FsPath;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use crate::severity::SeverityLabels;
use crate::{Engine, EngineBuilder, Rule};
#[cfg(feature = "routing")]
use crate::{InhibitRule, Routing, Silence};

/// Which text format a config is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// TOML (`.toml`).
    Toml,
}

impl Format {
    /// The format a file name's extension names, if any.
    pub fn from_path(path: impl AsRef<FsPath>) -> Option<Format> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// Rules, routing, inhibit rules and silences: everything an
/// [`Engine`] is built from, loaded from a file or built in code.
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::config::AlertConfig;
/// use vigil_alert::{Comparison, Rule, Severity};
///
/// let config = AlertConfig::new().with_rule(
///     Rule::builder("DiskFull")
///         .gauge("system_disk_usage_ratio")
///         .threshold(Severity::Critical, Comparison::Greater, 0.95)
///         .build()?,
/// );
/// // Local routing (feature `routing`).
/// #[cfg(feature = "routing")]
/// let config = {
///     use vigil_alert::{Matcher, Route, Routing};
///     let pager = Route::new("pager").matcher(Matcher::equal("severity", "critical"));
///     config.with_routing(Routing::new("email").route(pager))
/// };
/// config.validate()?;
/// let engine = config.into_engine()?;
/// assert_eq!(engine.rules()[0].name, "DiskFull");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A config file is read into this type; its sections whose cargo feature
/// is off are refused with the feature's name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(not(all(feature = "routing", feature = "rulesets")), allow(dead_code))]
pub struct AlertConfig {
    /// The file the config came from (`"<code>"` when built in code), for
    /// error messages.
    #[serde(skip)]
    source: Option<String>,
    /// How often the engine will be evaluated, if known.
    #[serde(deserialize_with = "crate::time::duration::positive::option")]
    evaluation_interval: Option<Duration>,
    /// A file's names for the levels its rules leave unnamed, given to
    /// them when it is read.
    severity_labels: SeverityLabels,
    /// A file's `rulesets:`, expanded into `rules` when it is read.
    rulesets: file::Rulesets,
    rules: Vec<Rule>,
    /// The routing tree, if one was given (a merge keeps a given one).
    routing: file::Routing,
    inhibit_rules: file::InhibitRules,
    silences: file::Silences,
}

impl AlertConfig {
    /// An empty config: no rules, the default routing
    /// (`Routing::default`, feature `routing`), no inhibit rules, no
    /// silences.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses YAML text; `file` names it in errors.
    pub fn from_yaml_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        Self::from_str_as(text, file, Format::Yaml)
    }

    /// Parses TOML text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        Self::from_str_as(text, file, Format::Toml)
    }

    /// Parses text in the given format; `file` names it in errors.
    pub fn from_str_as(text: &str, file: &str, format: Format) -> Result<Self, ConfigError> {
        let doc = match format {
            Format::Yaml => parse_yaml(text, file)?,
            Format::Toml => parse_toml(text, file)?,
        };
        doc.loaded(file)
    }

    /// Reads and parses a file, YAML or TOML by its extension.
    pub fn load(path: impl AsRef<FsPath>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let format = Format::from_path(path)
            .ok_or_else(|| ConfigError::UnknownFormat { file: file.clone() })?;
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_str_as(&text, &file, format)
    }

    crate::notify::setters! {
        /// Adds a rule.
        #[must_use]
        with_rule(rule: Rule) => push rules(rule);

        /// Adds rules (e.g. a rule set of `rulesets`, feature `rulesets`).
        #[must_use]
        with_rules(rules: impl IntoIterator<Item = Rule>) => extend rules(rules);

        /// Sets the routing tree.
        #[cfg(feature = "routing")]
        #[must_use]
        with_routing(routing: Routing) => routing = Some(routing);

        /// Adds an inhibit rule.
        #[cfg(feature = "routing")]
        #[must_use]
        with_inhibit_rule(rule: InhibitRule) => push inhibit_rules(rule);

        /// Adds a silence.
        #[cfg(feature = "routing")]
        #[must_use]
        with_silence(silence: Silence) => push silences(silence);

        /// Sets how often the engine will be evaluated (a file's top-level
        /// `evaluation_interval:`); [`validate`](Self::validate) then refuses
        /// windows that cannot work at that pace and
        /// [`into_engine`](Self::into_engine) passes it to
        /// [`EngineBuilder::evaluation_interval`](crate::EngineBuilder::evaluation_interval).
        #[must_use]
        with_evaluation_interval(interval: Duration) => evaluation_interval = Some(interval);
    }

    /// The evaluation interval, if one was given.
    pub fn evaluation_interval(&self) -> Option<Duration> {
        self.evaluation_interval
    }

    /// Appends another config: its rules, inhibit rules and silences are
    /// added; its routing and evaluation interval replace this one's if it
    /// has them.
    #[must_use]
    pub fn merge(mut self, other: AlertConfig) -> Self {
        if other.evaluation_interval.is_some() {
            self.evaluation_interval = other.evaluation_interval;
        }
        self.rules.extend(other.rules);
        #[cfg(feature = "routing")]
        {
            self.routing = other.routing.or(self.routing);
            self.inhibit_rules.extend(other.inhibit_rules);
            self.silences.extend(other.silences);
        }
        self
    }

    /// The rules, in file order (rule sets first).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The routing tree ([`Routing::default`] if none was given).
    #[cfg(feature = "routing")]
    pub fn routing(&self) -> &Routing {
        static DEFAULT: LazyLock<Routing> = LazyLock::new(Routing::default);
        self.routing.as_ref().unwrap_or(&DEFAULT)
    }

    /// The inhibit rules.
    #[cfg(feature = "routing")]
    pub fn inhibit_rules(&self) -> &[InhibitRule] {
        &self.inhibit_rules
    }

    /// The silences.
    #[cfg(feature = "routing")]
    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// Everything, as owned core values.
    #[cfg(feature = "routing")]
    pub fn into_parts(self) -> (Vec<Rule>, Routing, Vec<InhibitRule>, Vec<Silence>) {
        let routing = self.routing.unwrap_or_default();
        (self.rules, routing, self.inhibit_rules, self.silences)
    }

    fn file(&self) -> &str {
        self.source.as_deref().unwrap_or("<code>")
    }

    /// Checks what [`into_engine`](Self::into_engine) would check, without
    /// building an engine (useful for configs built in code).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let file = self.file();
        let interval = self.evaluation_interval.and_then(crate::time::not_positive);
        if let Some(message) = interval {
            let field = Some("evaluation_interval".to_owned());
            return Err(ConfigError::invalid(file, None, field, message, None));
        }
        for (index, rule) in self.rules.iter().enumerate() {
            check_rule(file, index, rule, self.evaluation_interval)?;
        }
        self.validate_routing()
    }

    /// Checks the routing tree and the silences.
    fn validate_routing(&self) -> Result<(), ConfigError> {
        #[cfg(feature = "routing")]
        {
            let file = self.file();
            let routing = self.routing.as_ref().map_or(Ok(()), Routing::validate);
            routing.map_err(|e| ConfigError::from_core(file, Some(Item::Routing), e))?;
            let mut silences = self.silences.iter().enumerate();
            let problem = silences.find_map(|(index, s)| Some((index, s.problem()?)));
            if let Some((index, (field, message))) = problem {
                let (item, field) = (Some(Item::Silence { index }), Some(field.to_owned()));
                return Err(ConfigError::invalid(file, item, field, message, None));
            }
        }
        Ok(())
    }

    /// Builds an [`Engine`] with the rules, routing and inhibit rules, and
    /// adds the silences.
    pub fn into_engine(self) -> Result<Engine, ConfigError> {
        self.validate()?;
        let file = self.file().to_owned();
        let builder = Engine::builder().rules(self.rules);
        let interval = self.evaluation_interval.into_iter();
        let builder = interval.fold(builder, EngineBuilder::evaluation_interval);
        #[cfg(feature = "routing")]
        let builder = (self.inhibit_rules.into_iter()).fold(
            builder.routing(self.routing.unwrap_or_default()),
            EngineBuilder::inhibit_rule,
        );
        #[cfg_attr(not(feature = "routing"), allow(unused_mut))]
        let mut engine = builder
            .build()
            .map_err(|e| ConfigError::from_core(&file, None, e))?;
        #[cfg(feature = "routing")]
        for (index, silence) in self.silences.into_iter().enumerate() {
            engine
                .add_silence(silence)
                .map_err(|e| ConfigError::from_core(&file, Some(Item::Silence { index }), e))?;
        }
        Ok(engine)
    }
}

/// Checks a rule, at the evaluation interval if there is one; an error
/// names it by its place and name.
fn check_rule(
    file: &str,
    index: usize,
    rule: &Rule,
    interval: Option<Duration>,
) -> Result<(), ConfigError> {
    let at_interval = || interval.map_or(Ok(()), |i| rule.check_interval(i));
    let checked = rule.validate().and_then(|()| at_interval());
    checked.map_err(|e| {
        let name = Some(rule.name.clone());
        ConfigError::from_core(file, Some(Item::Rule { index, name }), e)
    })
}

/// Builds the error for a failed deserialization: the item the path
/// points into (named from `doc`, the text read as a plain value), and
/// the field path within it.
fn deserialize_error(
    file: &str,
    path: &serde_path_to_error::Path,
    message: String,
    location: Option<Location>,
    doc: Option<serde_json::Value>,
) -> ConfigError {
    static ITEM: LazyLock<Regex> = LazyLock::new(|| {
        let lists = r"(rules|routing\.routes|inhibit_rules|silences|rulesets\.slos)\[(\d+)\]";
        let item = format!(r"^(?:{lists}|routing|rulesets\.service_targets)(?:\.|$)");
        Regex::new(&item).expect("a valid regex")
    });
    let path = path.to_string();
    let Some(found) = ITEM.captures(&path) else {
        let field = (path != ".").then_some(path);
        return ConfigError::invalid(file, None, field, message, location);
    };
    let (list, index) = (found.get(1).map(|l| l.as_str()), found.get(2));
    let index = index.and_then(|i| i.as_str().parse().ok()).unwrap_or(0);
    let named = |key: &str| {
        let pointer = format!("/{}/{index}/{key}", list?.replace('.', "/"));
        Some(doc.as_ref()?.pointer(&pointer)?.as_str()?.to_owned())
    };
    let (name, receiver) = (named("name"), named("receiver"));
    let item = match list {
        Some("rules") => Item::Rule { index, name },
        Some("routing.routes") => Item::Route { index, receiver },
        Some("inhibit_rules") => Item::InhibitRule { index },
        Some("silences") => Item::Silence { index },
        Some(_) => Item::Slo { index, name },
        None if path.starts_with("routing") => Item::Routing,
        None => Item::ServiceTargets,
    };
    let field = Some(path[found[0].len()..].to_owned()).filter(|f| !f.is_empty());
    ConfigError::invalid(file, Some(item), field, message, location)
}

/// The line and column of a byte offset in `text` (a parser's, so on a
/// character boundary).
fn location_at(text: &str, offset: usize) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Location { line, column }
}

/// Parses YAML: the `[`/`{` nesting is checked by a linear scan first (the
/// parser is quadratic in its depth), then the document is
/// deserialized once; on an error, the items' names are read from it as a
/// plain value.
fn parse_yaml(text: &str, file: &str) -> Result<AlertConfig, ConfigError> {
    // A document of nothing but comments and blank lines is an empty config.
    let blank = |l: &str| matches!(l.trim(), "" | "---" | "...") || l.trim().starts_with('#');
    if text.lines().all(blank) {
        return Ok(AlertConfig::default());
    }
    if let Some(offset) = depth::yaml_too_deep(text) {
        let message = format!(
            "lists and maps are nested more than {MAX_NESTING} levels deep; a config needs only a few"
        );
        let location = Some(location_at(text, offset));
        return Err(ConfigError::invalid(file, None, None, message, location));
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let location = e.inner().location().map(|l| Location {
            line: l.line(),
            column: l.column(),
        });
        // serde_yaml_ng writes the path and the position into its message;
        // the error carries both separately.
        let (inner, path) = (e.inner().to_string(), e.path().to_string());
        let message = inner.rsplit_once(" at line ").map_or(&*inner, |(m, _)| m);
        let unprefixed = message
            .split_once(": ")
            .filter(|(at, _)| path.starts_with(at));
        let message = unprefixed.map_or(message, |(_, rest)| rest).to_owned();
        let doc = serde_yaml_ng::from_str(text).ok();
        deserialize_error(file, e.path(), message, location, doc)
    })
}

/// Parses TOML (the `toml` crate bounds the nesting itself); on an error,
/// item names are read from the text as a plain value.
fn parse_toml(text: &str, file: &str) -> Result<AlertConfig, ConfigError> {
    let location = |span: Option<std::ops::Range<usize>>| span.map(|s| location_at(text, s.start));
    let clean = |m: &str| m.trim().replace('\n', "; ");
    let de = toml::Deserializer::parse(text).map_err(|e| {
        ConfigError::invalid(file, None, None, clean(e.message()), location(e.span()))
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let (message, at) = (clean(e.inner().message()), location(e.inner().span()));
        deserialize_error(file, e.path(), message, at, toml::from_str(text).ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_documents_are_empty_configs() {
        let c = AlertConfig::from_yaml_str("# nothing yet\n\n", "a.yml").unwrap();
        assert!(c.rules().is_empty());
        let c = AlertConfig::from_toml_str("", "a.toml").unwrap();
        assert!(c.rules().is_empty());
    }

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(Format::from_path("a/rules.YML"), Some(Format::Yaml));
        assert_eq!(Format::from_path("rules.yaml"), Some(Format::Yaml));
        assert_eq!(Format::from_path("rules.toml"), Some(Format::Toml));
        assert_eq!(Format::from_path("rules.json"), None);
        assert_eq!(Format::from_path("rules"), None);
    }
}
