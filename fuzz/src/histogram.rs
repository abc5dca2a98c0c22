//! HdrHistogram interchange input through vigil-histogram's
//! `Snapshot::from_base64`: whatever the text, decoding returns a snapshot
//! or an error with a message, and a decoded snapshot answers every read,
//! encodes again and decodes to the same counts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use vigil_histogram::Snapshot;

/// Marks an input whose remaining bytes are the base64 text itself; any
/// other input is a serialized histogram, base64-encoded before decoding
/// (so the fuzzer works on the bytes the deserializer reads).
pub const TEXT: u8 = b'T';

/// The base64 text an input stands for.
pub fn text_of(bytes: &[u8]) -> String {
    match bytes.split_first() {
        Some((&TEXT, rest)) => String::from_utf8_lossy(rest).into_owned(),
        _ => STANDARD.encode(bytes),
    }
}

/// Decodes the input and checks the snapshot; `Err` says which
/// expectation failed.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let text = text_of(bytes);
    match Snapshot::from_base64(&text) {
        Err(error) if error.to_string().trim().is_empty() => {
            Err("decoding failed without a message".to_owned())
        }
        Err(_) => Ok(()),
        Ok(snapshot) => check_snapshot(&snapshot),
    }
}

fn check_snapshot(snapshot: &Snapshot) -> Result<(), String> {
    let count = snapshot.count();
    if count != snapshot.histogram().len() {
        return Err(format!(
            "count {count} but the histogram holds {}",
            snapshot.histogram().len()
        ));
    }
    let summary = snapshot.summary();
    if summary.count != count {
        return Err(format!("summary count {} but count {count}", summary.count));
    }
    for read in [
        snapshot.min(),
        snapshot.max(),
        snapshot.mean(),
        snapshot.stddev(),
        snapshot.sum(),
    ] {
        if read.is_nan() {
            return Err(format!("a NaN read from a snapshot of {count} values"));
        }
    }
    let mut last = f64::NEG_INFINITY;
    for q in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
        let value = snapshot.quantile(q);
        if value.is_nan() || value < last {
            return Err(format!("quantile({q}) = {value} after {last}"));
        }
        last = value;
    }
    for q in [-1.0, 2.0, f64::NAN, f64::INFINITY] {
        snapshot.quantile(q);
    }
    if snapshot.count_le(f64::INFINITY) != count {
        return Err(format!(
            "count_le(+Inf) = {} but count {count}",
            snapshot.count_le(f64::INFINITY)
        ));
    }
    let in_buckets = snapshot
        .buckets()
        .fold(0u64, |total, bucket| total.saturating_add(bucket.count));
    if in_buckets != count {
        return Err(format!("buckets hold {in_buckets} but count {count}"));
    }
    let mut merged = snapshot.clone();
    if merged.merge(snapshot).is_ok() && merged.count() != count.saturating_mul(2) {
        return Err(format!(
            "merged with itself: {} values, not twice {count}",
            merged.count()
        ));
    }
    match snapshot.to_base64() {
        Err(error) if error.to_string().trim().is_empty() => {
            Err("encoding failed without a message".to_owned())
        }
        Err(_) => Ok(()),
        Ok(encoded) => {
            let again = Snapshot::from_base64(&encoded)
                .map_err(|error| format!("its own encoding does not decode: {error}"))?;
            if again.count() != count {
                return Err(format!(
                    "re-encoded: {} values instead of {count}",
                    again.count()
                ));
            }
            let differs = snapshot
                .histogram()
                .iter_recorded()
                .find(|v| again.histogram().count_at(v.value_iterated_to()) != v.count_at_value());
            match differs {
                Some(v) => Err(format!(
                    "re-encoded: value {} counted {} times instead of {}",
                    v.value_iterated_to(),
                    again.histogram().count_at(v.value_iterated_to()),
                    v.count_at_value()
                )),
                None => Ok(()),
            }
        }
    }
}
