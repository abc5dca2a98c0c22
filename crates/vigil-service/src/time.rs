//! Serde for `SystemTime` as an RFC 3339 string in UTC
//! (`2025-12-02T00:00:00Z`), through `jiff`'s `Timestamp`.

/// `#[serde(with = "crate::time::rfc3339")]`.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        Timestamp::try_from(*t)
            .map_err(ser::Error::custom)?
            .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        SystemTime::try_from(Timestamp::deserialize(d)?).map_err(de::Error::custom)
    }
}
