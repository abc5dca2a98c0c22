//! HdrHistogram input from outside through `Snapshot::from_base64`:
//! histograms serialized by hdrhistogram (V2, plain and deflate) then
//! damaged (bytes flipped, header fields overwritten, truncated), random
//! base64 text, and the fuzz corpus (`fuzz/corpus/histogram_base64`).
//! Decoding never panics; an error has a message; a decoded snapshot reads
//! consistently and encodes to the same counts. The checks are the
//! `cargo fuzz` target's own (`fuzz/src/histogram.rs`).

#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/src/histogram.rs"]
mod histogram;

use std::path::PathBuf;

use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer, V2Serializer};
use proptest::prelude::*;

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    corpus::read(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        "histogram_base64",
    )
}

fn assert_checked(bytes: &[u8], what: &str) {
    if let Err(failure) = histogram::check(bytes) {
        panic!("{what}: {failure}\ninput: {}", histogram::text_of(bytes));
    }
}

#[test]
fn every_corpus_file_decodes_or_is_refused_with_a_message() {
    let mut decoded = 0;
    for (path, bytes) in corpus() {
        assert_checked(&bytes, &path.display().to_string());
        let t = std::time::Instant::now();
        let r = vigil_histogram::Snapshot::from_base64(&histogram::text_of(&bytes));
        eprintln!(
            "DBG {:?} {} {:?}",
            t.elapsed(),
            path.display(),
            r.as_ref().map(|s| s.count()).map_err(|e| e.to_string())
        );
        decoded += usize::from(r.is_ok());
    }
    // Both outcomes are exercised.
    assert!(decoded >= 5, "only {decoded} corpus files decode");
}

/// A histogram serialized by hdrhistogram: bounds, precision and values
/// drawn at random, V2 plain or deflate.
fn serialized() -> impl Strategy<Value = Vec<u8>> {
    (
        1..1_000u64,
        1..40u32,
        0..4u8,
        proptest::collection::vec(any::<u64>(), 0..40),
        any::<bool>(),
    )
        .prop_map(|(low, doublings, sigfig, values, deflate)| {
            let high = (low * 2) << doublings;
            let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(low, high, sigfig)
                .expect("valid bounds");
            for v in values {
                h.saturating_record(v % high);
            }
            let mut bytes = Vec::new();
            if deflate {
                V2DeflateSerializer::new()
                    .serialize(&h, &mut bytes)
                    .expect("serialized");
            } else {
                V2Serializer::new()
                    .serialize(&h, &mut bytes)
                    .expect("serialized");
            }
            bytes
        })
}

/// Damage: overwrite bytes (the first 40 are the header's cookie, length,
/// offset, precision, bounds and ratio), flip bits, truncate. Bytes 4..8
/// are left alone: in a plain V2 histogram they are the payload length,
/// which hdrhistogram's deserializer allocates before reading anything.
fn damage() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((0..64usize, any::<u8>(), 0..3u8), 0..6)
}

fn apply(mut bytes: Vec<u8>, damage: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, kind) in damage {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        match kind {
            0 => bytes[at] = byte,
            1 => bytes[at] ^= 1 << (byte % 8),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn serialized_histograms_decode_with_the_same_counts(bytes in serialized()) {
        assert_checked(&bytes, "a histogram serialized by hdrhistogram");
        let text = histogram::text_of(&bytes);
        let snapshot = vigil_histogram::Snapshot::from_base64(&text).expect("an intact histogram decodes");
        let mut original = hdrhistogram::serialization::Deserializer::new();
        let original: hdrhistogram::Histogram<u64> =
            original.deserialize(&mut bytes.as_slice()).expect("hdrhistogram reads its own output");
        prop_assert_eq!(snapshot.count(), original.len());
    }

    #[test]
    fn damaged_histograms_decode_or_are_refused_with_a_message(
        bytes in serialized(),
        damage in damage(),
    ) {
        assert_checked(&apply(bytes, &damage), "a damaged histogram");
    }

    #[test]
    fn arbitrary_text_decodes_or_is_refused_with_a_message(
        text in "(HISTF|HISTEwAAAA|)[A-Za-z0-9+/=\\s]{0,120}",
    ) {
        let mut bytes = vec![histogram::TEXT];
        bytes.extend_from_slice(text.as_bytes());
        assert_checked(&bytes, "base64 text");
    }

    #[test]
    fn damaged_corpus_files_decode_or_are_refused_with_a_message(
        pick in any::<prop::sample::Index>(),
        damage in damage(),
    ) {
        let files = corpus();
        let (path, bytes) = &files[pick.index(files.len())];
        assert_checked(&apply(bytes.clone(), &damage), &format!("damaged {}", path.display()));
    }
}

/// Found by the `histogram_base64` fuzz target: hdrhistogram's
/// deserializer allocates the payload length a V2 header states (here
/// 4 GiB - 1, plain and inside a compressed histogram) before reading it.
#[test]
fn a_payload_length_beyond_the_input_is_refused_without_allocating_it() {
    for text in [
        "HISTE/////8AAAAAAAAAAwAAAAAAAAABAAADRjC4oAA/8AAAAAAAAA==",
        "HISTFAAAACB4nJNpmSz8HwgYIIAZSjMCmW4GOxYw2H+ACAAA168IRw==",
    ] {
        let started = std::time::Instant::now();
        let error = vigil_histogram::Snapshot::from_base64(text).expect_err(text);
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_millis(100),
            "{text}: refused after {took:?}"
        );
        assert!(
            error.to_string().starts_with("cannot decode HdrHistogram"),
            "{error}"
        );
    }
}

/// Found by the `histogram_base64` fuzz target: a run of `i64::MIN` zeros
/// overflows hdrhistogram's negation (a panic with overflow checks, as in
/// `cargo test`).
#[test]
fn a_zero_run_of_i64_min_is_refused_without_a_panic() {
    let text = "HISTEwAAAAoAAAAAAAAAAwAAAAAAAAABAAADRjC4oAA/8AAAAAAAAAL///////////8=";
    let error = vigil_histogram::Snapshot::from_base64(text).expect_err(text);
    assert!(
        error.to_string().starts_with("cannot decode HdrHistogram"),
        "{error}"
    );
}

/// Found by the `histogram_base64` fuzz target: with more than 2^53
/// values, `q * count` as a float can round past the count, and
/// `quantile(1.0)` read 0.
#[test]
fn the_top_quantile_of_more_than_2_pow_53_values_is_the_max() {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)
        .expect("valid bounds");
    h.record(5).expect("recorded");
    h.record_n(1_000_000, (1 << 53) + 2).expect("recorded");
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(&h, &mut bytes)
        .expect("serialized");
    assert_checked(&bytes, "2^53 + 3 values");
    let snapshot =
        vigil_histogram::Snapshot::from_base64(&histogram::text_of(&bytes)).expect("decoded");
    assert_eq!(snapshot.quantile(1.0), snapshot.max());
    assert!(snapshot.quantile(1.0) > 0.0);
}

/// Found by the `histogram_base64` fuzz target: merging snapshots whose
/// sums add past `u128` overflowed (a panic with overflow checks).
#[test]
fn merged_sums_beyond_u128_saturate() {
    let text = "HISTEwAAAGEAAAAAAAAAAwAQAACTEwAAAGEDRjW4oAA/8AAAAAAAAAB6AwAQ8AAmAP8chJMAAADGFCmaEch0M9ixgMH+AywAuAgICAgICAgICAgI6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urqCAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAigABv+QBcgngAAAABUSFRIU1RGQRyEkxNBU1RBAAAAAAAAAAAAAEFBMgAmAMYpmhHIdDLYsYDB/gMAAwAAAAAAAP//LAC4oAAb/v4DRICRjf/pOOYf/wBrfwA=";
    let snapshot = vigil_histogram::Snapshot::from_base64(text).expect("decoded");
    let mut merged = snapshot.clone();
    merged.merge(&snapshot).expect("merged");
    assert_eq!(merged.count(), snapshot.count().saturating_mul(2));
}
