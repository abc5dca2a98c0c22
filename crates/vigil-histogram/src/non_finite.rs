//! Serde for `f64` fields that may hold NaN or an infinity: finite values
//! as JSON numbers, the others as the strings `"NaN"`, `"+Inf"` and
//! `"-Inf"`, as Prometheus's HTTP API writes sample values, so that a
//! document reads back to the numbers it was written from. (`serde_json`
//! alone writes them as `null`, which reads back as an error.)
//!
//! Use it with `#[serde(with = "vigil_histogram::non_finite")]`; every
//! `f64` of [`Summary`](crate::Summary) and of `vigil`'s JSON summary does.
//!
//! Reading accepts a number, one of those strings (also `"Inf"`, `"inf"`,
//! `"+inf"`, `"-inf"`, `"nan"` and `"Infinity"` spellings, ignoring case),
//! and `null` as NaN, what documents written before read back as.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Sample {
//!     #[serde(with = "vigil_histogram::non_finite")]
//!     value: f64,
//! }
//!
//! let json = serde_json::to_string(&Sample { value: f64::NEG_INFINITY }).unwrap();
//! assert_eq!(json, r#"{"value":"-Inf"}"#);
//! let back: Sample = serde_json::from_str(&json).unwrap();
//! assert_eq!(back.value, f64::NEG_INFINITY);
//! let finite: Sample = serde_json::from_str(r#"{"value":0.25}"#).unwrap();
//! assert_eq!(finite.value, 0.25);
//! let nan: Sample = serde_json::from_str(r#"{"value":"NaN"}"#).unwrap();
//! assert!(nan.value.is_nan());
//! ```

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

/// How a non-finite `value` is written: `"NaN"`, `"+Inf"` or `"-Inf"`;
/// `None` for a finite one.
pub fn label(value: f64) -> Option<&'static str> {
    if value.is_nan() {
        Some("NaN")
    } else if value == f64::INFINITY {
        Some("+Inf")
    } else if value == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// Reads a non-finite value's spelling (see the module docs); `None` for
/// anything else.
pub fn parse(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Writes `value`: a number when finite, else its [`label`].
///
/// # Errors
/// Whatever the serializer returns.
pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    match label(*value) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.serialize_f64(*value),
    }
}

/// Reads a number, a non-finite value's spelling or `null` (NaN).
///
/// # Errors
/// Anything else: another string (naming it and the accepted spellings),
/// a map, a sequence or a boolean.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    deserializer.deserialize_any(FloatVisitor)
}

struct FloatVisitor;

impl<'de> Visitor<'de> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a number, "NaN", "+Inf" or "-Inf""#)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
        Ok(value as f64)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<f64, E> {
        parse(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }

    fn visit_none<E: de::Error>(self) -> Result<f64, E> {
        Ok(f64::NAN)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<f64, D::Error> {
        deserializer.deserialize_any(self)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct One {
        #[serde(with = "super")]
        value: f64,
    }

    fn read(json: &str) -> Result<f64, serde_json::Error> {
        serde_json::from_str::<One>(json).map(|one| one.value)
    }

    #[test]
    fn every_spelling_reads_back() {
        for (json, expected) in [
            (r#"{"value":"+Inf"}"#, f64::INFINITY),
            (r#"{"value":"Inf"}"#, f64::INFINITY),
            (r#"{"value":"infinity"}"#, f64::INFINITY),
            (r#"{"value":"-Inf"}"#, f64::NEG_INFINITY),
            (r#"{"value":-3}"#, -3.0),
            (r#"{"value":18446744073709551615}"#, u64::MAX as f64),
            (r#"{"value":1e-310}"#, 1e-310),
        ] {
            assert_eq!(read(json).unwrap(), expected, "{json}");
        }
        for json in [
            r#"{"value":"NaN"}"#,
            r#"{"value":"nan"}"#,
            r#"{"value":null}"#,
        ] {
            assert!(read(json).unwrap().is_nan(), "{json}");
        }
    }

    #[test]
    fn other_strings_are_refused_with_the_accepted_spellings() {
        let error = read(r#"{"value":"fast"}"#).unwrap_err().to_string();
        assert!(
            error.contains(
                r#"invalid value: string "fast", expected a number, "NaN", "+Inf" or "-Inf""#
            ),
            "{error}"
        );
        assert!(read(r#"{"value":true}"#).is_err());
        assert!(read(r#"{"value":[1.0]}"#).is_err());
    }

    #[test]
    fn non_finite_values_are_written_as_prometheus_spells_them() {
        let written = |value| serde_json::to_string(&One { value }).unwrap();
        assert_eq!(written(f64::NAN), r#"{"value":"NaN"}"#);
        assert_eq!(written(f64::INFINITY), r#"{"value":"+Inf"}"#);
        assert_eq!(written(f64::NEG_INFINITY), r#"{"value":"-Inf"}"#);
        assert_eq!(written(-0.0), r#"{"value":-0.0}"#);
        assert_eq!(written(0.1), r#"{"value":0.1}"#);
    }
}
