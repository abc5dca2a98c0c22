//! What is wrong with a config, and where: [`ConfigError`].

use std::fmt;

/// Which item of a config an error is about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// An entry of `rules:` (index from 0, and its name if it has one).
    Rule {
        /// Position in `rules:`.
        index: usize,
        /// The rule's `name`, if it could be read.
        name: Option<String>,
    },
    /// The `routing:` block itself.
    Routing,
    /// An entry of `routing.routes:`.
    Route {
        /// Position in `routes:`.
        index: usize,
        /// The route's `receiver`, if it could be read.
        receiver: Option<String>,
    },
    /// An entry of `inhibit_rules:`.
    InhibitRule {
        /// Position in `inhibit_rules:`.
        index: usize,
    },
    /// An entry of `silences:`.
    Silence {
        /// Position in `silences:`.
        index: usize,
    },
    /// `rulesets.service_targets`.
    ServiceTargets,
    /// An entry of `rulesets.slos:`.
    Slo {
        /// Position in `slos:`.
        index: usize,
        /// The SLO's `name`, if it could be read.
        name: Option<String>,
    },
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = |name: &Option<String>, what: &str, at: String| match name {
            Some(name) => format!("{what} {name:?}"),
            None => at,
        };
        let text = match self {
            Item::Rule { index, name } => named(name, "rule", format!("rules[{index}]")),
            Item::Routing => "routing".to_owned(),
            Item::Route { index, receiver } => {
                let receiver = receiver.as_ref().map(|r| format!(" (receiver {r:?})"));
                format!("routing.routes[{index}]{}", receiver.unwrap_or_default())
            }
            Item::InhibitRule { index } => format!("inhibit_rules[{index}]"),
            Item::Silence { index } => format!("silences[{index}]"),
            Item::ServiceTargets => "rulesets.service_targets".to_owned(),
            Item::Slo { index, name } => named(name, "slo", format!("rulesets.slos[{index}]")),
        };
        f.write_str(&text)
    }
}

/// A line and column in a config file, both counting from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The line, from 1.
    pub line: usize,
    /// The column (in characters), from 1.
    pub column: usize,
}

/// What is wrong with a config, and where.
///
/// Displayed as `FILE: ITEM: field "PATH": MESSAGE (line L, column C)`,
/// leaving out what is not known. `Debug` prints the same line (as `anyhow`
/// does), so `fn main() -> Result<(), ConfigError>` ends with
/// `Error: rules.yml: rule "X": field "for": ...`, not a struct dump; the
/// parts are in [`file`](Self::file), [`item`](Self::item),
/// [`field`](Self::field) and [`location`](Self::location).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the file: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file name does not say which format it is in.
    #[error("{file}: unknown config format: expected a name ending in .yaml, .yml or .toml")]
    UnknownFormat {
        /// The path as given.
        file: String,
    },
    /// The text is not valid YAML or TOML, does not fit the schema, or
    /// holds a value the engine cannot use.
    #[error("{0}")]
    Invalid(Box<Problem>),
}

impl fmt::Debug for ConfigError {
    /// The `Display` message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What is wrong in a config and where: the details of
/// [`ConfigError::Invalid`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file name as given (for text, the name passed along with it).
    pub file: String,
    /// The rule, route, silence ... the problem is in, if any.
    pub item: Option<Item>,
    /// The field's path within the item (or within the file, when there
    /// is no item), e.g. `thresholds.critical.value`.
    pub field: Option<String>,
    /// What is wrong, with the offending value.
    pub message: String,
    /// Where, when the parser knows.
    pub location: Option<Location>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(item) = &self.item {
            write!(f, "{item}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field {field:?}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(l) = &self.location {
            write!(f, " (line {}, column {})", l.line, l.column)?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// An [`Invalid`](ConfigError::Invalid) error.
    pub(crate) fn invalid(
        file: &str,
        item: Option<Item>,
        field: Option<String>,
        message: String,
        location: Option<Location>,
    ) -> ConfigError {
        ConfigError::Invalid(Box::new(Problem {
            file: file.to_owned(),
            item,
            field,
            message,
            location,
        }))
    }

    /// The file the error is about.
    pub fn file(&self) -> &str {
        match self {
            ConfigError::Read { file, .. } | ConfigError::UnknownFormat { file } => file,
            ConfigError::Invalid(p) => &p.file,
        }
    }

    /// What is wrong and where, for schema and validation errors.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ConfigError::Invalid(p) => Some(p),
            _ => None,
        }
    }

    /// The item (rule, route, ...) the error is about, if any.
    pub fn item(&self) -> Option<&Item> {
        self.problem().and_then(|p| p.item.as_ref())
    }

    /// The field path within the item, e.g. `thresholds.critical.value`.
    pub fn field(&self) -> Option<&str> {
        self.problem().and_then(|p| p.field.as_deref())
    }

    /// Where in the file, when the parser knows.
    pub fn location(&self) -> Option<Location> {
        self.problem().and_then(|p| p.location)
    }

    /// The line (from 1), when the parser knows.
    pub fn line(&self) -> Option<usize> {
        self.location().map(|l| l.line)
    }

    /// The column (from 1), when the parser knows.
    pub fn column(&self) -> Option<usize> {
        self.location().map(|l| l.column)
    }

    pub(crate) fn from_core(file: &str, item: Option<Item>, error: crate::Error) -> ConfigError {
        let (field, message) = match error {
            crate::Error::InvalidRule { field, reason, .. } => (Some(field.to_owned()), reason),
            crate::Error::InvalidRoute {
                field,
                reason,
                receiver,
            } => (
                Some(field.to_owned()),
                format!("{reason} (route to receiver {receiver:?})"),
            ),
            other => (None, other.to_string()),
        };
        ConfigError::invalid(file, item, field, message, None)
    }
}
