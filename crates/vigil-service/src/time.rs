//! Serde for `SystemTime` as an RFC 3339 string in UTC
//! (`2025-12-02T00:00:00Z`), through `jiff`'s `Timestamp`: the form of
//! every time in the recommendations and in `vigil`'s performance API.

/// `#[serde(with = "vigil_service::time::rfc3339")]` on a `SystemTime`.
///
/// ```
/// use std::time::{Duration, SystemTime};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Event {
///     #[serde(with = "vigil_service::time::rfc3339")]
///     at: SystemTime,
/// }
///
/// let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_633_600);
/// let json = serde_json::to_string(&Event { at }).unwrap();
/// assert_eq!(json, r#"{"at":"2025-12-02T00:00:00Z"}"#);
/// assert_eq!(serde_json::from_str::<Event>(&json).unwrap().at, at);
/// ```
pub mod rfc3339 {
    use std::time::SystemTime;

    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

    /// Writes `t` as RFC 3339 in UTC; fails for a time outside the years
    /// -9999 to 9999.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        Timestamp::try_from(*t)
            .map_err(ser::Error::custom)?
            .serialize(s)
    }

    /// Reads an RFC 3339 time with any offset.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        SystemTime::try_from(Timestamp::deserialize(d)?).map_err(de::Error::custom)
    }
}
