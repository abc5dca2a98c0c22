//! Times and durations: the one RFC 3339 implementation (on `jiff`), the
//! duration limit, and the serde forms used by rules and config files.
//!
//! Durations serialize as humantime strings (`"5m"`, `"1h 30m"`) through
//! `humantime_serde`; [`duration`] is the checked form rule files use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// The longest duration a rule, route, silence or engine setting may hold:
/// one year (365.25 days, what `1y` means in a config file). Anything
/// longer (`for: 500000000years`) is refused as a mistake rather than
/// kept as an alert that can never fire or a timer that never ends.
pub const MAX_DURATION: Duration = Duration::from_secs(31_557_600);

/// Why `d` is too long to be a duration in a config, if it is.
pub(crate) fn too_long(d: Duration) -> Option<String> {
    let shown = humantime::format_duration(d);
    let message = format!("{shown} is longer than one year, the longest duration allowed");
    (d > MAX_DURATION).then_some(message)
}

/// Why `d` cannot be a window, interval or delay, if it cannot: it is
/// zero, or too long.
pub(crate) fn not_positive(d: Duration) -> Option<String> {
    let zero = d.is_zero().then(|| "must be longer than zero".to_owned());
    zero.or_else(|| too_long(d))
}

/// `now - since`, or zero if the clock went backwards.
pub(crate) fn elapsed(now: SystemTime, since: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or(Duration::ZERO)
}

/// `t` as RFC 3339 in UTC (`2024-05-01T22:00:00Z`, fractional seconds only
/// when there are some), clamped to the years RFC 3339 can write.
pub(crate) fn format_rfc3339(t: SystemTime) -> String {
    let clamped = if t > UNIX_EPOCH {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    };
    Timestamp::try_from(t).unwrap_or(clamped).to_string()
}

/// Reads an RFC 3339 time with an offset (`Z`, `+02:00`); one without an
/// offset (a TOML local date-time) is UTC.
pub(crate) fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    let t = text.trim();
    let utc = |dt: jiff::civil::DateTime| jiff::tz::TimeZone::UTC.to_timestamp(dt);
    let ts = t
        .parse::<Timestamp>()
        .or_else(|e| t.parse().map_or(Err(e), utc));
    let ts = ts.map_err(|e| {
        format!("invalid time {text:?}: {e} (write RFC 3339, e.g. \"2024-05-01T22:00:00Z\")")
    })?;
    SystemTime::try_from(ts).map_err(|e| format!("invalid time {text:?}: {e}"))
}

/// Serde for `SystemTime` as an RFC 3339 string; also reads a TOML
/// date-time.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_rfc3339(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let expecting = "a time such as \"2024-05-01T22:00:00Z\"";
        crate::labels::from_text(d, expecting, super::parse_rfc3339)
    }
}

/// [`rfc3339`] for `Option<SystemTime>`.
pub(crate) mod rfc3339_option {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Time(#[serde(with = "super::rfc3339")] SystemTime);

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        t.map(Time).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<Time>::deserialize(d)?.map(|t| t.0))
    }
}

/// Serde for a rule file's `Duration`: a humantime string of at most
/// [`MAX_DURATION`], checked where it is read so that errors have its
/// position. A bare number is refused: it has no unit.
pub(crate) mod duration {
    use std::time::Duration;

    use serde::Deserializer;

    pub(crate) use humantime_serde::serialize;

    /// Reads a duration; with `positive`, refuses zero.
    fn read<'de, D: Deserializer<'de>>(d: D, positive: bool) -> Result<Duration, D::Error> {
        let expecting =
            "a duration with a unit, such as \"30s\" or \"5m\" (a bare number has none)";
        crate::labels::from_text(d, expecting, |v| {
            let d = humantime::parse_duration(v.trim()).map_err(|e| {
                format!("invalid duration {v:?}: {e} (write e.g. \"30s\", \"5m\", \"1h 30m\")")
            })?;
            if positive && d.is_zero() {
                return Err("must be longer than zero".to_owned());
            }
            let too_long = format!("{v:?} is longer than one year, the longest duration allowed");
            (d <= super::MAX_DURATION).then_some(d).ok_or(too_long)
        })
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        read(d, false)
    }

    /// [`read`] for `Option<Duration>`.
    #[cfg(any(feature = "config", feature = "routing", feature = "rulesets"))]
    fn read_option<'de, D, const POSITIVE: bool>(d: D) -> Result<Option<Duration>, D::Error>
    where
        D: Deserializer<'de>,
    {
        use serde::Deserialize;

        struct Checked<const P: bool>(Duration);
        impl<'de, const P: bool> Deserialize<'de> for Checked<P> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                read(d, P).map(Checked)
            }
        }
        Ok(Option::<Checked<POSITIVE>>::deserialize(d)?.map(|c| c.0))
    }

    /// [`duration`](self) for `Option<Duration>`.
    #[cfg(any(feature = "routing", feature = "rulesets"))]
    pub(crate) mod option {
        use std::time::Duration;

        use serde::Deserializer;

        #[cfg(feature = "routing")]
        pub(crate) use humantime_serde::option::serialize;

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            super::read_option::<D, false>(d)
        }
    }

    /// A duration longer than zero (windows, intervals).
    pub(crate) mod positive {
        use std::time::Duration;

        use serde::Deserializer;

        pub(crate) use humantime_serde::serialize;

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            super::read(d, true)
        }

        /// [`positive`](self) for `Option<Duration>`.
        #[cfg(any(feature = "config", feature = "rulesets"))]
        pub(crate) fn option<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            super::read_option::<D, true>(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_reads_offsets() {
        let t = UNIX_EPOCH + Duration::from_secs(1_714_600_800);
        assert_eq!(format_rfc3339(t), "2024-05-01T22:00:00Z");
        assert_eq!(parse_rfc3339("2024-05-01T22:00:00Z"), Ok(t));
        assert_eq!(parse_rfc3339("2024-05-02T00:00:00+02:00"), Ok(t));
        assert_eq!(parse_rfc3339("2024-05-01T22:00:00"), Ok(t));
        assert!(parse_rfc3339("2024-05-01T€é€").is_err());
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert!(format_rfc3339(far).starts_with("9999-12-"));
    }
}
