//! How bad an alert is: the four [`Severity`] levels, ordered.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// How bad an alert is, from [`Low`](Severity::Low) to
/// [`Critical`](Severity::Critical).
///
/// Ordered (`Low < Medium < High < Critical`), so the highest severity whose
/// threshold holds wins. Written lowercase (`"medium"`); parsing is
/// case-insensitive and also accepts Prometheus' customary names
/// `info` (= `low`) and `warning` / `warn` (= `medium`). Alerts carry it as
/// the `severity` label, which routes, silences and inhibit rules match on.
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
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name used in labels and config: `low`, `medium`,
    /// `high`, `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One step up, saturating at `Critical` (used by escalation).
    #[must_use]
    pub const fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }

    /// One step down, saturating at `Low`.
    #[must_use]
    pub const fn lowered(self) -> Severity {
        match self {
            Severity::Low | Severity::Medium => Severity::Low,
            Severity::High => Severity::Medium,
            Severity::Critical => Severity::High,
        }
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
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "low" | "info" => Severity::Low,
            "medium" | "warning" | "warn" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => {
                return Err(Error::Parse {
                    what: "severity",
                    value: s.to_owned(),
                    expected: "one of low (info), medium (warning), high, critical",
                });
            }
        })
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
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
}
