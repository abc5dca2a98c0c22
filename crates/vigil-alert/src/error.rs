//! The crate's one error type: what was wrong, and where.

use std::fmt;

#[cfg(feature = "routing")]
use crate::SilenceId;

/// Everything that can go wrong in `vigil-alert`.
///
/// Evaluation never fails: a missing series is [`State::NoData`](crate::State::NoData),
/// a bad value is ignored. Errors come from building rules, matchers, routes
/// and silences, and from parsing their text forms.
///
/// `Debug` prints the same one-line message as `Display` (as `anyhow` does),
/// so an error returned from `main` reads as a message:
///
/// ```
/// use vigil_alert::{Comparison, Rule, Severity};
///
/// let err = Rule::builder("bad name")
///     .gauge("up")
///     .threshold(Severity::High, Comparison::Less, 1.0)
///     .build()
///     .unwrap_err();
/// let message = r#"invalid rule `bad name`: `name` "bad name" is not a valid alert name ([a-zA-Z_:][a-zA-Z0-9_:]*)"#;
/// assert_eq!(err.to_string(), message);
/// assert_eq!(format!("{err:?}"), message);
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A label matcher's text is not `name OP value` with `OP` one of
    /// `=`, `!=`, `=~`, `!~`.
    #[error("invalid label matcher {matcher:?}: {reason}")]
    InvalidMatcher {
        /// The matcher as given.
        matcher: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `=~` or `!~` matcher's value is not a valid regular expression.
    #[error("invalid regex in matcher for label `{label}`: {pattern:?}: {}", regex_reason(.source))]
    InvalidRegex {
        /// The label the matcher selects on.
        label: String,
        /// The pattern as given (before anchoring).
        pattern: String,
        /// The regex crate's explanation.
        #[source]
        source: Box<regex::Error>,
    },
    /// A [`Rule`](crate::Rule) field holds a value the engine cannot evaluate.
    #[error("invalid rule `{rule}`: `{field}` {reason}")]
    InvalidRule {
        /// The rule's name.
        rule: String,
        /// The field (or builder method) whose value is wrong.
        field: &'static str,
        /// Why it is wrong, with the offending value.
        reason: String,
    },
    /// A route of the `Routing` tree (feature `routing`) is unusable.
    #[error("invalid route to receiver `{receiver}`: `{field}` {reason}")]
    InvalidRoute {
        /// The route's receiver.
        receiver: String,
        /// The field whose value is wrong.
        field: &'static str,
        /// Why it is wrong.
        reason: String,
    },
    /// A `Silence` (feature `routing`) cannot be added.
    #[error("invalid silence: {reason}")]
    InvalidSilence {
        /// Why, with the values involved.
        reason: String,
    },
    /// No silence with this id exists (it was never added or was pruned).
    #[cfg(feature = "routing")]
    #[error("unknown silence id {id}")]
    UnknownSilence {
        /// The id asked for.
        id: SilenceId,
    },
    /// The default severity names given to the engine
    /// ([`EngineBuilder::severity_label`](crate::EngineBuilder::severity_label))
    /// are unusable.
    #[error("invalid severity labels: {reason}")]
    InvalidSeverityLabels {
        /// What is wrong, with the names involved.
        reason: String,
    },
    /// An [`EngineBuilder`](crate::EngineBuilder) setting is unusable, or a
    /// rule cannot work at the engine's
    /// [evaluation interval](crate::EngineBuilder::evaluation_interval).
    #[error("invalid engine setting `{setting}`: {reason}")]
    InvalidSetting {
        /// The builder method whose value is wrong.
        setting: &'static str,
        /// Why, with the value.
        reason: String,
    },
    /// A text value could not be parsed as the named type.
    #[error("invalid {what} {value:?}: expected {expected}")]
    Parse {
        /// The type being parsed (`severity`, `comparison`, ...).
        what: &'static str,
        /// The text as given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

impl fmt::Debug for Error {
    /// The `Display` message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The regex crate's explanation on one line: its syntax errors draw the
/// pattern with a caret over several lines and end with `error: REASON`.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once("error: ") {
        Some((_, reason)) => reason.trim().to_owned(),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
