//! HdrHistogram V2 interchange of a [`Snapshot`]: base64 text as in
//! HdrHistogram interval logs (the `serialization` feature).

use std::borrow::Cow;
use std::io::{self, Read as _};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::serialization::{
    DeserializeError, Deserializer, Serializer as _, V2DeflateSerializer,
};

use crate::{Error, Snapshot};

/// Default scale of decoded snapshots: nanoseconds per second.
const NANOS_PER_SECOND: f64 = 1e9;

impl Snapshot {
    /// Encode as an HdrHistogram V2 compressed (deflate) histogram in
    /// standard base64, the format of HdrHistogram interval logs (starts with
    /// `HISTF`), readable by `hdrhistogram::serialization::Deserializer` and
    /// every other HdrHistogram implementation. Carries counts, not the
    /// exact sum or the window.
    ///
    /// ```
    /// use vigil_histogram::{Histogram, Snapshot, Window};
    ///
    /// let histogram = Histogram::new();
    /// histogram.record(42_000);
    /// let encoded = histogram.snapshot(Window::Cumulative).to_base64()?;
    /// assert!(encoded.starts_with("HISTF"));
    /// let decoded = Snapshot::from_base64(&encoded)?;
    /// assert_eq!(decoded.count(), 1);
    /// assert_eq!(decoded.histogram().count_at(42_000), 1);
    /// # Ok::<(), vigil_histogram::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Encode`] if hdrhistogram's serializer fails.
    pub fn to_base64(&self) -> Result<String, Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(self.histogram(), &mut bytes)
            .map_err(Error::Encode)?;
        Ok(STANDARD.encode(bytes))
    }

    /// Decode a base64 HdrHistogram (V2, compressed or not), e.g. one
    /// interval of an HdrHistogram log. The result has scale `1e9`
    /// (nanoseconds to seconds; change it with [`Snapshot::with_scale`]), a
    /// zero window, and a sum estimated from the buckets.
    ///
    /// # Errors
    /// [`Error::Base64`] for text that is not standard base64,
    /// [`Error::Decode`] for bytes that are not an HdrHistogram.
    pub fn from_base64(encoded: &str) -> Result<Snapshot, Error> {
        let bytes = STANDARD.decode(encoded.trim())?;
        let plain = checked_v2(&bytes).map_err(Error::Decode)?;
        let histogram: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut plain.as_ref())
            .map_err(Error::Decode)?;
        let sum = (histogram.mean() * histogram.len() as f64).round() as u128;
        Snapshot::from_hdr(histogram, sum, NANOS_PER_SECOND, Duration::ZERO)
    }
}

/// The bytes of a V2 histogram for hdrhistogram's deserializer, checked
/// for what it trusts: it allocates the payload length the header states
/// before reading the payload (a few bytes could claim 4 GiB), and negates
/// a zero run without checking (a run of `i64::MIN` overflows, a panic in
/// a build with overflow checks). A compressed histogram is inflated here,
/// at most to what deflate can expand its bytes to.
fn checked_v2(bytes: &[u8]) -> Result<Cow<'_, [u8]>, DeserializeError> {
    const V2_COOKIE: u32 = 0x1c84_9313;
    const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
    const V2_HEADER_LEN: usize = 40;
    const MAX_DEFLATE_RATIO: u64 = 1032;
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
    };
    let truncated = || DeserializeError::IoError(io::ErrorKind::UnexpectedEof.into());
    let plain = match word(bytes, 0) {
        Some(V2_COMPRESSED_COOKIE) => {
            let length = word(bytes, 4).ok_or_else(truncated)? as usize;
            let compressed = bytes.get(8..).unwrap_or_default();
            let compressed = &compressed[..length.min(compressed.len())];
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(compressed)
                .take(compressed.len() as u64 * MAX_DEFLATE_RATIO + V2_HEADER_LEN as u64)
                .read_to_end(&mut inflated)?;
            Cow::Owned(inflated)
        }
        _ => Cow::Borrowed(bytes),
    };
    if word(&plain, 0) == Some(V2_COOKIE) {
        let stated = word(&plain, 4).ok_or_else(truncated)? as usize;
        let payload = plain.get(V2_HEADER_LEN..).unwrap_or_default();
        if stated > payload.len() {
            return Err(truncated());
        }
        // hdrhistogram's varints: 7 bits a byte for 8 bytes, then a 9th
        // byte of 8 bits; u64::MAX is the zigzag form of i64::MIN.
        let mut at = 0;
        while at < stated {
            let (mut value, mut shift) = (0_u64, 0);
            while let Some(&byte) = payload[..stated].get(at) {
                at += 1;
                if shift == 56 {
                    value |= u64::from(byte) << 56;
                    break;
                }
                value |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            if value == u64::MAX {
                return Err(DeserializeError::UsizeTypeTooSmall);
            }
        }
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_base64_reports_what_is_wrong() {
        assert!(matches!(
            Snapshot::from_base64("not base64!"),
            Err(Error::Base64(_))
        ));
        assert!(matches!(
            Snapshot::from_base64("AAAAAAAA"),
            Err(Error::Decode(_))
        ));
    }
}
