//! RFC 3339 times (on `jiff`) for the JSON forms of this crate's types.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;

/// `t` as RFC 3339 in UTC (`2024-05-01T22:00:00Z`, fractional seconds only
/// when there are some), clamped to the years RFC 3339 can write.
pub(crate) fn format_rfc3339(t: SystemTime) -> String {
    let ts = Timestamp::try_from(t).unwrap_or(if t > UNIX_EPOCH {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    });
    ts.to_string()
}

/// Serde for `SystemTime` as an RFC 3339 string.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_rfc3339(*t))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        let ts: Timestamp = text.trim().parse().map_err(|e| {
            de::Error::custom(format!(
                "invalid time {text:?}: {e} (write RFC 3339, e.g. \"2024-05-01T22:00:00Z\")"
            ))
        })?;
        SystemTime::try_from(ts)
            .map_err(|e| de::Error::custom(format!("invalid time {text:?}: {e}")))
    }
}
