//! How bad an alert is: the four [`Severity`] levels, ordered, and the
//! `severity` label value each level is written with ([`SeverityLabels`]).

use std::fmt;
use std::str::FromStr;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::labels::{checked_map, serde_as_text};

/// How bad an alert is, from [`Low`](Severity::Low) to
/// [`Critical`](Severity::Critical).
///
/// Ordered (`Low < Medium < High < Critical`), so the highest severity whose
/// threshold holds wins. Written lowercase (`"medium"`); parsing is
/// case-insensitive and also accepts Prometheus' customary names
/// `info` (= `low`) and `warning` / `warn` (= `medium`). Alerts carry it as
/// the `severity` label, which routes, silences and inhibit rules match on:
/// by default the level's own name ([`as_str`](Self::as_str)), or the name
/// the configuration wrote (`warning`) — see [`SeverityLabels`]. The order
/// (which threshold wins, which alert inhibits which) always uses the level.
///
/// ```
/// use vigil_alert::Severity;
///
/// assert!(Severity::Critical > Severity::Medium);
/// assert_eq!("warning".parse::<Severity>()?, Severity::Medium);
/// assert_eq!(Severity::High.to_string(), "high");
/// assert_eq!(Severity::High.raised(), Severity::Critical);
/// assert_eq!(Severity::Critical.raised(), Severity::Critical);
/// # Ok::<(), vigil_alert::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth a look during working hours (`low`, also parsed from `info`).
    Low,
    /// Needs attention soon (`medium`, also parsed from `warning`).
    Medium,
    /// Needs attention now (`high`).
    High,
    /// Wake someone up (`critical`).
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The lowercase name used in labels and config: `low`, `medium`,
    /// `high`, `critical`.
    pub const fn as_str(self) -> &'static str {
        ["low", "medium", "high", "critical"][self as usize]
    }

    /// One step up, saturating at `Critical` (used by escalation).
    #[must_use]
    pub const fn raised(self) -> Severity {
        [Self::Medium, Self::High, Self::Critical, Self::Critical][self as usize]
    }

    /// One step down, saturating at `Low`.
    #[must_use]
    pub const fn lowered(self) -> Severity {
        Severity::ALL[self.index().saturating_sub(1)]
    }

    /// Position in [`Severity::ALL`] (0 for `Low` .. 3 for `Critical`).
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" | "info" => Ok(Severity::Low),
            "medium" | "warning" | "warn" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(Error::Parse {
                what: "severity",
                value: s.to_owned(),
                expected: "one of low (info), medium (warning), high, critical",
            }),
        }
    }
}

serde_as_text!(
    Severity,
    "a severity: low (info), medium (warning), high or critical"
);

/// The `severity` label value of each [`Severity`]: the level's own name
/// (`low`, `medium`, `high`, `critical`) unless it is named otherwise.
///
/// Alertmanager configurations conventionally route and inhibit on
/// `severity="info"`, `"warning"` and `"critical"`. A rule read from a config
/// file keeps the spelling its thresholds were written with
/// (`thresholds: {warning: "> 0.1"}` fires with `severity="warning"`); in
/// code, name a level with
/// [`RuleBuilder::severity_label`](crate::rule::RuleBuilder::severity_label)
/// for one rule or
/// [`EngineBuilder::severity_label`](crate::EngineBuilder::severity_label)
/// for every rule that does not name it itself. The name is what alerts,
/// notifications, `alerts_firing{severity}`, the history, routes, silences,
/// inhibit rules and exported Prometheus rules see.
///
/// A name must not be empty, must not belong to another level (`warning`
/// cannot name `low`, since it is read as `medium`), and two levels cannot
/// share one: [`Rule::validate`](crate::Rule::validate) reports these.
/// Serialized as a map of the named levels only: `{medium: warning}`.
///
/// ```
/// use vigil_alert::Severity;
/// use vigil_alert::severity::SeverityLabels;
///
/// let names = SeverityLabels::new()
///     .with(Severity::Low, "info")
///     .with(Severity::Medium, "warning");
/// assert_eq!(names.label(Severity::Medium), "warning");
/// assert_eq!(names.label(Severity::Critical), "critical"); // not named: its own name
/// assert_eq!(names.severity_of("warning"), Some(Severity::Medium));
/// assert!(names.problem().is_none());
/// assert!(SeverityLabels::new().with(Severity::Low, "warning").problem().is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeverityLabels {
    names: [Option<String>; 4],
}

impl SeverityLabels {
    /// No level named: every level is written with its own name.
    pub const fn new() -> Self {
        let names = [const { None }; 4];
        SeverityLabels { names }
    }

    /// Names `severity` `label` (replacing an earlier name); naming a level
    /// by its own name ([`Severity::as_str`]) removes its name.
    #[must_use]
    pub fn with(mut self, severity: Severity, label: impl Into<String>) -> Self {
        self.set(severity, label);
        self
    }

    /// Names `severity` `label` in place; see [`with`](Self::with).
    pub fn set(&mut self, severity: Severity, label: impl Into<String>) {
        let label = label.into();
        self.names[severity.index()] = (label != severity.as_str()).then_some(label);
    }

    /// The `severity` label value of `severity`: its name, else
    /// [`Severity::as_str`].
    pub fn label(&self, severity: Severity) -> &str {
        self.named(severity).unwrap_or(severity.as_str())
    }

    /// The name given to `severity`, if any.
    pub fn named(&self, severity: Severity) -> Option<&str> {
        self.names[severity.index()].as_deref()
    }

    /// Whether no level is named.
    pub fn is_empty(&self) -> bool {
        self.names.iter().all(Option::is_none)
    }

    /// The named levels and their names, lowest level first.
    pub fn iter(&self) -> impl Iterator<Item = (Severity, &str)> {
        Severity::ALL
            .into_iter()
            .filter_map(|s| self.named(s).map(|name| (s, name)))
    }

    /// These names, plus those of `defaults` for the levels these leave
    /// unnamed.
    #[must_use]
    pub fn or(&self, defaults: &SeverityLabels) -> SeverityLabels {
        let names = std::array::from_fn(|i| self.names[i].clone().or(defaults.names[i].clone()));
        SeverityLabels { names }
    }

    /// The level whose label value is `label`, if any.
    pub fn severity_of(&self, label: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| self.label(*s) == label)
    }

    /// What is wrong with the names, if anything: an empty name, a name
    /// that is read as another level, or a name shared by two levels.
    pub fn problem(&self) -> Option<String> {
        for (severity, name) in self.iter() {
            if name.trim().is_empty() {
                return Some(format!("the name of `{severity}` is empty"));
            }
            if let Ok(other) = name.parse::<Severity>()
                && other != severity
            {
                return Some(format!(
                    "`{name}` cannot name `{severity}`: it is read as `{other}`"
                ));
            }
        }
        let all = Severity::ALL;
        let mut pairs = all.into_iter().flat_map(|a| all.map(|b| (a, b)));
        let (a, b) = pairs.find(|(a, b)| a < b && self.label(*a) == self.label(*b))?;
        Some(format!(
            "`{a}` and `{b}` are both labelled `{}`",
            self.label(a)
        ))
    }
}

impl Serialize for SeverityLabels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for SeverityLabels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let what = ("label value, e.g. {medium: warning}", "names");
        let read = severity_map::<_, String>(d, what)?.into_iter();
        let names = read.fold(Self::new(), |names, (level, _, name)| {
            names.with(level, name)
        });
        names
            .problem()
            .map_or(Ok(names), |p| Err(de::Error::custom(p)))
    }
}

/// Reads a map keyed by severity: each level, the key as written (trimmed)
/// and the value. An unknown or repeated level is refused at its value,
/// so that the error names the key. `what` says what the values are, and
/// what a repeated level would have two of.
pub(crate) fn severity_map<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
    d: D,
    what: (&str, &str),
) -> Result<Vec<(Severity, String, V)>, D::Error> {
    let expecting = format!("a map from severity to {}", what.0);
    let read = checked_map(d, expecting, |key, seen: &[(Severity, String, V)]| {
        let level = key.parse::<Severity>().map_err(|_| format!(
            "unknown severity `{key}`, expected one of `low`, `medium` (or `warning`), `high`, `critical`"
        ))?;
        if !seen.iter().any(|(other, ..)| *other == level) {
            return Ok(level);
        }
        let alias = match key.trim().eq_ignore_ascii_case(level.as_str()) {
            true => String::new(),
            false => format!(" (`{key}` is another name for `{level}`)"),
        };
        Err(format!("severity `{level}` has two {}{alias}", what.1))
    })?;
    let trimmed = |(level, key, v): (_, String, _)| (level, key.trim().to_owned(), v);
    Ok(read.into_iter().map(trimmed).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_low_to_critical() {
        assert!(Severity::Low < Severity::Medium);
        assert!(Severity::Medium < Severity::High);
        assert!(Severity::High < Severity::Critical);
        assert_eq!(Severity::ALL.iter().max(), Some(&Severity::Critical));
    }

    #[test]
    fn parsing_accepts_aliases_and_any_case() {
        for (text, want) in [
            ("LOW", Severity::Low),
            ("info", Severity::Low),
            ("Warning", Severity::Medium),
            ("warn", Severity::Medium),
            (" high ", Severity::High),
            ("critical", Severity::Critical),
        ] {
            assert_eq!(text.parse::<Severity>().unwrap(), want, "{text}");
        }
        assert!("page".parse::<Severity>().is_err());
    }

    #[test]
    fn display_round_trips_through_from_str() {
        for s in Severity::ALL {
            assert_eq!(s.to_string().parse::<Severity>().unwrap(), s);
        }
    }

    #[test]
    fn serde_writes_lowercase_and_reads_warning() {
        assert_eq!(
            serde_json::to_string(&Severity::Medium).unwrap(),
            "\"medium\""
        );
        let s: Severity = serde_json::from_str("\"warning\"").unwrap();
        assert_eq!(s, Severity::Medium);
        assert!(serde_json::from_str::<Severity>("\"nope\"").is_err());
    }

    #[test]
    fn raised_and_lowered_saturate() {
        assert_eq!(Severity::Low.raised(), Severity::Medium);
        assert_eq!(Severity::Critical.raised(), Severity::Critical);
        assert_eq!(Severity::Low.lowered(), Severity::Low);
        assert_eq!(Severity::Critical.lowered(), Severity::High);
    }

    #[test]
    fn labels_default_to_the_level_name_and_keep_given_names() {
        let names = SeverityLabels::new()
            .with(Severity::Medium, "warning")
            .with(Severity::High, "high");
        assert_eq!(names.label(Severity::Medium), "warning");
        assert_eq!(names.label(Severity::High), "high");
        assert_eq!(names.named(Severity::High), None, "own name is no name");
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            [(Severity::Medium, "warning")]
        );
        assert_eq!(names.severity_of("warning"), Some(Severity::Medium));
        assert_eq!(names.severity_of("medium"), None);
        assert!(SeverityLabels::new().is_empty());
        assert!(!names.is_empty());
    }

    #[test]
    fn or_fills_unnamed_levels_only() {
        let rule = SeverityLabels::new().with(Severity::Medium, "warn");
        let defaults = SeverityLabels::new()
            .with(Severity::Medium, "warning")
            .with(Severity::Low, "info");
        let merged = rule.or(&defaults);
        assert_eq!(merged.label(Severity::Medium), "warn");
        assert_eq!(merged.label(Severity::Low), "info");
        assert_eq!(merged.label(Severity::Critical), "critical");
    }

    #[test]
    fn problems_name_the_levels() {
        let p = |names: SeverityLabels| names.problem().unwrap_or_default();
        assert!(p(SeverityLabels::new().with(Severity::Low, " ")).contains("empty"));
        assert_eq!(
            p(SeverityLabels::new().with(Severity::Low, "warning")),
            "`warning` cannot name `low`: it is read as `medium`"
        );
        assert_eq!(
            p(SeverityLabels::new()
                .with(Severity::High, "page")
                .with(Severity::Critical, "page")),
            "`high` and `critical` are both labelled `page`"
        );
        assert_eq!(
            SeverityLabels::new()
                .with(Severity::Low, "info")
                .with(Severity::Medium, "Warning")
                .with(Severity::High, "page")
                .problem(),
            None
        );
    }

    #[test]
    fn labels_serialize_as_a_map_of_named_levels() {
        let names = SeverityLabels::new().with(Severity::Medium, "warning");
        assert_eq!(
            serde_json::to_string(&names).unwrap(),
            r#"{"medium":"warning"}"#
        );
        let back: SeverityLabels = serde_json::from_str(r#"{"warning":"warning"}"#).unwrap();
        assert_eq!(back, names);
        assert!(serde_json::from_str::<SeverityLabels>(r#"{"urgent":"x"}"#).is_err());
    }
}
