//! Names, label keys and label values from outside, recorded through the
//! recorder and rendered as text and protobuf: generated hostile series,
//! random bytes in the fuzz input format, and the fuzz corpus
//! (`fuzz/corpus/exposition`). The text follows the text format's grammar
//! (checked in-process on every case, and by `promtool check metrics`,
//! Debian package `prometheus`, on a sample), the protobuf decodes into
//! valid, unique families, and both formats hold the same families. The
//! checks are the `cargo fuzz` target's own (`fuzz/src/exposition.rs`).

#![cfg(feature = "listener")]

#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/src/exposition.rs"]
mod exposition;
#[path = "../../../fuzz/src/listener.rs"]
#[allow(dead_code)]
mod listener;
mod servers;

use std::path::PathBuf;
use std::sync::Mutex;

use exposition::{Kind, Series};
use proptest::prelude::*;

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    corpus::read(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        "exposition",
    )
}

/// Fails unless promtool parses `text`; its lint findings (naming advice)
/// are not parse errors.
fn assert_promtool_parses(text: &str, what: &str) {
    let (code, findings) = servers::promtool_metrics(text);
    assert!(
        matches!(code, Some(0 | 3)) && !findings.contains("error"),
        "promtool refused the exposition of {what} ({code:?}): {findings}\n{text}"
    );
}

fn checked(bytes: &[u8], what: &str) -> String {
    exposition::check(bytes).unwrap_or_else(|failure| panic!("{what}: {failure}"))
}

#[test]
fn every_corpus_file_renders_a_valid_exposition_that_promtool_accepts() {
    for (path, bytes) in corpus() {
        let what = path.display().to_string();
        let text = checked(&bytes, &what);
        assert_promtool_parses(&text, &what);
    }
}

#[test]
fn the_grammar_check_refuses_what_prometheus_refuses() {
    // The in-process check must be able to fail: each of these breaks one
    // rule of the text format.
    for (bad, why) in [
        ("a-b 1\n", "invalid metric name"),
        ("x{a-b=\"1\"} 1\n", "invalid label name"),
        ("x{__a=\"1\"} 1\n", "invalid label name"),
        ("x{a=\"1\",a=\"2\"} 1\n", "label a twice"),
        ("x{a=\"\\x\"} 1\n", "invalid escape"),
        ("x{a=\"1} 1\n", "unterminated"),
        ("x 1\nx 2\n", "a series twice"),
        (
            "x{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 1\n",
            "a series twice",
        ),
        ("# TYPE x counter\n# TYPE x counter\n", "a second TYPE"),
        ("x 1\n# TYPE x counter\n", "a second TYPE"),
        ("# TYPE h histogram\nh_bucket 1\n", "a bucket without le"),
        (
            "# TYPE s summary\ns 1\n",
            "a summary quantile without quantile",
        ),
        ("x one\n", "invalid value"),
        ("x 1", "line feed"),
        ("x 1\ny 1\nx{a=\"1\"} 1\n", "apart from its family"),
        ("# HELP x a\\tb\n", "invalid escape in HELP"),
    ] {
        let error = exposition::check_text(bad).expect_err(bad);
        assert!(error.contains(why), "{bad:?}: {error}");
    }
    let good = "# HELP x A \\\\ and a \\n\n# TYPE x counter\nx{a=\"q\\\"\\n\\\\\"} 1\nx 2 1700000000\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum NaN\nh_count 1\n";
    let families = exposition::check_text(good).expect("a valid exposition");
    assert_eq!(families.len(), 2);
    assert_eq!(families["x"].samples, 2);
    assert_eq!(families["h"].kind, "histogram");
}

/// Names, keys and values from characters the grammar treats differently.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(vec!['a', 'b', '_', ':', '1', '-', '.', ' ', '"', '\\', '\n', '{', '}', '=', ',', '#', 'é', '\u{0}', '\t']),
            1 => any::<char>(),
        ],
        0..6,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => text(),
        1 => proptest::sample::select(vec!["le", "quantile", "service", "__name__", "__x", "a_b", "a-b"]).prop_map(str::to_owned),
    ]
}

fn series() -> impl Strategy<Value = Series> {
    (
        proptest::sample::select(vec![Kind::Counter, Kind::Gauge, Kind::Summary, Kind::Bucketed]),
        prop_oneof![
            Just(1.0),
            Just(0.25),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-1.0),
            Just(1e300),
            any::<f64>()
        ],
        prop_oneof![
            3 => text(),
            1 => proptest::sample::select(vec!["x_sum", "x_count", "x_bucket", "x", "x_bucketed_bucket", "vigil_series_rejected_total"]).prop_map(str::to_owned),
        ],
        proptest::collection::vec((key(), text()), 0..4),
    )
        .prop_map(|(kind, value, name, labels)| Series { kind, value, name, labels })
}

/// Expositions kept for promtool: every 16th case.
static SAMPLED: Mutex<(usize, Vec<String>)> = Mutex::new((0, Vec::new()));

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_series_render_valid_expositions(recorded in proptest::collection::vec(series(), 1..16)) {
        let bytes = exposition::encode(&recorded);
        prop_assert_eq!(exposition::decode(&bytes).len(), recorded.len());
        let text = checked(&bytes, &format!("{recorded:?}"));
        let mut sampled = SAMPLED.lock().unwrap_or_else(|e| e.into_inner());
        sampled.0 += 1;
        if sampled.0.is_multiple_of(16) {
            sampled.1.push(text);
        }
        if sampled.1.len() == 4 {
            for text in std::mem::take(&mut sampled.1) {
                assert_promtool_parses(&text, "generated series");
            }
        }
    }

    #[test]
    fn random_input_renders_valid_expositions(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(exposition::RECORD),
                Just(exposition::FIELD),
                Just(b'c'), Just(b'g'), Just(b'h'), Just(b'b'),
                any::<u8>(),
            ],
            0..96,
        ),
    ) {
        checked(&bytes, &format!("{bytes:?}"));
    }
}
