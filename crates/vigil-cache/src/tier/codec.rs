//! How keys and values are written to Redis.
//!
//! Entries are named by a digest of the key (see `keys`) and hold the
//! [postcard] encoding of the key (a compact, stable serde format: varint
//! integers, length-prefixed strings), which reads compare with theirs.
//! Values are a 9-byte header and the postcard encoding:
//!
//! | bytes | what |
//! |---|---|
//! | 0 | format version, [`FORMAT`] (1) |
//! | 1..9 | fingerprint: FNV-1a of the value type's name (`std::any::type_name`, which is not guaranteed stable across compiler versions: a toolchain upgrade may turn old values into misses) and the configured schema, little endian |
//! | 9.. | `postcard::to_allocvec(&value)` |
//!
//! A value whose format, fingerprint or body does not decode (or leaves
//! bytes over) is a miss
//! (counted in `l2_errors`, kind `decode`), never a panic: replicas of two
//! versions of a service can share a Redis during a deploy.
//!
//! postcard was chosen over bincode (unmaintained since 2025) and
//! MessagePack (self-describing, so larger): its wire format is specified
//! and frozen for 1.x, it is maintained, and it allocates only the output.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The value format's version byte.
pub(crate) const FORMAT: u8 = 1;
const HEADER: usize = 9;

/// Encodes and decodes one cache's keys and values; object-safe, so the
/// serde bounds stay on `CacheBuilder::redis`.
pub(crate) trait Codec<K, V>: Send + Sync + 'static {
    fn key(&self, key: &K) -> Option<Vec<u8>>;
    fn value(&self, value: &V) -> Option<Vec<u8>>;
    fn decode_value(&self, bytes: &[u8]) -> Option<V>;
}

/// The postcard codec with the versioned header.
pub(crate) struct Postcard<K, V> {
    fingerprint: [u8; 8],
    types: PhantomData<fn() -> (K, V)>,
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike `Hash`).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // Separates ("ab", "c") from ("a", "bc").
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl<K, V> Postcard<K, V> {
    pub(crate) fn new(schema: &str) -> Self {
        let name = std::any::type_name::<V>();
        Self {
            fingerprint: fnv1a(&[name.as_bytes(), schema.as_bytes()]).to_le_bytes(),
            types: PhantomData,
        }
    }
}

impl<K, V> Codec<K, V> for Postcard<K, V>
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn key(&self, key: &K) -> Option<Vec<u8>> {
        postcard::to_allocvec(key).ok()
    }

    fn value(&self, value: &V) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT);
        out.extend_from_slice(&self.fingerprint);
        postcard::to_extend(value, out).ok()
    }

    fn decode_value(&self, bytes: &[u8]) -> Option<V> {
        let (header, body) = bytes.split_at_checked(HEADER)?;
        if header[0] != FORMAT || header[1..] != self.fingerprint {
            return None;
        }
        // Every byte must belong to the value: a value of another layout
        // that happens to decode from a prefix of the body is refused.
        match postcard::take_from_bytes(body) {
            Ok((value, [])) => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Row {
        id: u64,
        name: String,
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Other {
        id: u64,
        name: String,
    }

    #[test]
    fn values_round_trip_with_a_versioned_header() {
        let codec = Postcard::<String, Row>::new("");
        let row = Row {
            id: 7,
            name: "Ada".into(),
        };
        let bytes = codec.value(&row).unwrap();
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(bytes.len(), HEADER + 1 + 1 + 3, "postcard is compact");
        assert_eq!(codec.decode_value(&bytes), Some(row));
    }

    #[test]
    fn a_value_of_another_type_or_schema_or_format_is_refused() {
        let row = Postcard::<u32, Row>::new("");
        let bytes = row
            .value(&Row {
                id: 1,
                name: "a".into(),
            })
            .unwrap();
        // Same layout, other type: postcard alone would decode it.
        assert_eq!(Postcard::<u32, Other>::new("").decode_value(&bytes), None);
        assert_eq!(Postcard::<u32, Row>::new("v2").decode_value(&bytes), None);
        let mut future = bytes.clone();
        future[0] = FORMAT + 1;
        assert_eq!(row.decode_value(&future), None);
        assert_eq!(row.decode_value(&bytes[..HEADER + 1]), None, "truncated");
        assert_eq!(row.decode_value(&[]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(row.decode_value(&longer), None, "bytes left over");
    }

    #[test]
    fn keys_encode_compactly() {
        let codec = Postcard::<(String, u32), ()>::new("");
        let bytes = codec.key(&("user".to_string(), 42)).unwrap();
        assert_eq!(bytes, [4, b'u', b's', b'e', b'r', 42]);
    }
}
