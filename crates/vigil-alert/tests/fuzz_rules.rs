//! Rule files from outside, YAML and TOML, through the loader
//! (`AlertConfig::from_str_as`): generated documents in the shape of a
//! rule file with hostile scalars, random edits of the fuzz corpus, and the
//! corpus itself (`fuzz/corpus/rules_yaml`, `fuzz/corpus/rules_toml`). The
//! loader never panics; an error names the file, says what is wrong and
//! points inside the text; a loaded config validates, builds an engine that
//! evaluates, and exports. The checks are the `cargo fuzz` targets' own
//! (`fuzz/src/rules.rs`).

#![cfg(all(
    feature = "config",
    feature = "routing",
    feature = "rulesets",
    feature = "prometheus"
))]

#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;
#[path = "../../../fuzz/src/rules.rs"]
mod rules;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use vigil_alert::config::Format;

/// Corpus files: their paths and contents.
type Files = Vec<(PathBuf, Vec<u8>)>;

/// The files of the fuzz corpus of `target`, read once.
fn corpus(target: &str) -> Files {
    static READ: OnceLock<Mutex<HashMap<String, Files>>> = OnceLock::new();
    let mut read = READ
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    read.entry(target.to_owned())
        .or_insert_with(|| read_corpus(target))
        .clone()
}

fn read_corpus(target: &str) -> Files {
    corpus::read(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        target,
    )
}

fn assert_checked(bytes: &[u8], format: Format, what: &str) {
    let started = Instant::now();
    if let Err(failure) = rules::check(bytes, format) {
        panic!(
            "{what} as {format:?}: {failure}\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{what} as {format:?} took {took:?} ({} bytes)",
        bytes.len()
    );
}

#[test]
fn every_corpus_file_loads_or_is_refused_with_a_located_message() {
    for (target, format) in [("rules_yaml", Format::Yaml), ("rules_toml", Format::Toml)] {
        for (path, bytes) in corpus(target) {
            assert_checked(&bytes, format, &path.display().to_string());
        }
    }
}

#[test]
fn each_format_survives_the_other_formats_corpus() {
    for (target, format) in [("rules_yaml", Format::Toml), ("rules_toml", Format::Yaml)] {
        for (path, bytes) in corpus(target) {
            assert_checked(&bytes, format, &path.display().to_string());
        }
    }
}

#[test]
fn the_corpus_holds_files_that_load_and_files_that_are_refused() {
    // The checks above see both outcomes, so neither branch goes unused.
    for (target, format) in [("rules_yaml", Format::Yaml), ("rules_toml", Format::Toml)] {
        let (loaded, refused): (Vec<_>, Vec<_>) =
            corpus(target).into_iter().partition(|(_, bytes)| {
                vigil_alert::AlertConfig::from_str_as(&String::from_utf8_lossy(bytes), "f", format)
                    .is_ok()
            });
        assert!(
            loaded.len() >= 5 && refused.len() >= 5,
            "{target}: {} loaded, {} refused",
            loaded.len(),
            refused.len()
        );
    }
}

/// A document tree, written out as YAML (flow style) or TOML (inline).
#[derive(Clone, Debug)]
enum Doc {
    Map(Vec<(String, Doc)>),
    List(Vec<Doc>),
    /// A quoted string.
    Text(String),
    /// A number, written as is in both formats.
    Number(String),
    Bool(bool),
}

fn quote(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

impl Doc {
    fn yaml(&self) -> String {
        match self {
            Doc::Map(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", quote(k), v.yaml()))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            Doc::List(items) => {
                let items: Vec<String> = items.iter().map(Doc::yaml).collect();
                format!("[{}]", items.join(", "))
            }
            Doc::Text(text) => quote(text),
            Doc::Number(number) => number.clone(),
            Doc::Bool(b) => b.to_string(),
        }
    }

    fn toml(&self) -> String {
        match self {
            Doc::Map(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{} = {}", quote(k), v.toml()))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            Doc::List(items) => {
                let items: Vec<String> = items.iter().map(Doc::toml).collect();
                format!("[{}]", items.join(", "))
            }
            Doc::Text(text) => quote(text),
            Doc::Number(number) => number.clone(),
            Doc::Bool(b) => b.to_string(),
        }
    }

    /// The top level: a map written as `key = value` lines in TOML.
    fn toml_document(&self) -> String {
        match self {
            Doc::Map(entries) => entries
                .iter()
                .map(|(k, v)| format!("{} = {}\n", quote(k), v.toml()))
                .collect(),
            other => format!("x = {}\n", other.toml()),
        }
    }
}

/// Keys of the rule file format, and a few that are not.
const KEYS: &[&str] = &[
    "rules",
    "name",
    "expr",
    "gauge",
    "rate",
    "ratio",
    "histogram",
    "metric",
    "matchers",
    "window",
    "stat",
    "numerator",
    "denominator",
    "ignoring",
    "thresholds",
    "critical",
    "warning",
    "medium",
    "low",
    "high",
    "op",
    "value",
    "stddevs",
    "quantile",
    "min_samples",
    "recover",
    "for",
    "keep_firing_for",
    "no_data",
    "labels",
    "annotations",
    "escalate",
    "after",
    "receiver",
    "aggregate",
    "by",
    "also",
    "condition",
    "routing",
    "routes",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "notifier",
    "inhibit_rules",
    "source_matchers",
    "target_matchers",
    "equal",
    "silences",
    "starts_at",
    "ends_at",
    "created_by",
    "comment",
    "rulesets",
    "service_targets",
    "slos",
    "objective",
    "only",
    "severity_labels",
    "raise_severity",
    "colour",
    "",
    "é",
];

/// Scalars that mean something somewhere in a rule file, and hostile ones.
const TEXTS: &[&str] = &[
    "> 0.9",
    ">= 1",
    "< 0.15",
    "<= 0",
    "> NaN",
    "> inf",
    "> -1e308",
    "==1",
    ">",
    "5m",
    "30s",
    "1h 30m",
    "0s",
    "500000000years",
    "18446744073709551616s",
    "1ns",
    "p95",
    "p99.9",
    "p0",
    "p100",
    "p-1",
    "mean",
    "max",
    "count",
    "sum",
    "per_series",
    "alerting",
    "keep_state",
    "result=\"error\"",
    "a=~\"((\"",
    "a!~\"x\"",
    "{{ $value }}",
    "{{ $labels.x",
    "99.9%",
    "101%",
    "0%",
    "2024-05-01T22:00:00Z",
    "2024-13-45T99:99:99Z",
    "pager",
    "...",
    "queue_depth",
    "9bad",
    "a-b",
    "",
    " ",
    "\n",
    "\u{0}",
    "é",
    "\u{1F600}",
];

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.5",
    "1e308",
    "-1e308",
    "1e-320",
    "99999999999999999999",
    "3",
];

fn scalar() -> impl Strategy<Value = Doc> {
    prop_oneof![
        4 => proptest::sample::select(TEXTS).prop_map(|t| Doc::Text(t.to_owned())),
        2 => proptest::sample::select(NUMBERS).prop_map(|n| Doc::Number(n.to_owned())),
        1 => any::<bool>().prop_map(Doc::Bool),
        1 => "\\PC{0,12}".prop_map(Doc::Text),
    ]
}

fn doc() -> impl Strategy<Value = Doc> {
    scalar().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            3 => proptest::collection::vec(
                (proptest::sample::select(KEYS).prop_map(str::to_owned), inner.clone()),
                0..6
            )
            .prop_map(Doc::Map),
            1 => proptest::collection::vec(inner, 0..4).prop_map(Doc::List),
        ]
    })
}

/// A rule file's shape: top-level sections holding generated trees, and
/// rules that mostly have a name, an expression and thresholds.
fn rule_file() -> impl Strategy<Value = Doc> {
    let rule = (
        proptest::sample::select(TEXTS),
        doc(),
        doc(),
        proptest::collection::vec(
            (
                proptest::sample::select(KEYS).prop_map(str::to_owned),
                doc(),
            ),
            0..3,
        ),
    )
        .prop_map(|(name, expr, thresholds, extra)| {
            let mut entries = vec![
                ("name".to_owned(), Doc::Text(name.to_owned())),
                ("expr".to_owned(), expr),
                ("thresholds".to_owned(), thresholds),
            ];
            entries.extend(extra);
            Doc::Map(entries)
        });
    (
        proptest::collection::vec(rule, 0..3),
        proptest::collection::vec(
            (
                proptest::sample::select(KEYS).prop_map(str::to_owned),
                doc(),
            ),
            0..3,
        ),
    )
        .prop_map(|(rules, sections)| {
            let mut entries = vec![("rules".to_owned(), Doc::List(rules))];
            entries.extend(sections);
            Doc::Map(entries)
        })
}

/// Random edits of a corpus file: deletions, insertions and copies of
/// byte ranges.
fn edits() -> impl Strategy<Value = Vec<(u8, usize, usize, Vec<u8>)>> {
    proptest::collection::vec(
        (
            0..3u8,
            any::<usize>(),
            0..64usize,
            proptest::collection::vec(any::<u8>(), 0..8),
        ),
        1..6,
    )
}

fn apply(mut bytes: Vec<u8>, edits: &[(u8, usize, usize, Vec<u8>)]) -> Vec<u8> {
    for (kind, at, len, insert) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            at % (bytes.len() + 1)
        };
        let end = (at + len).min(bytes.len());
        match kind {
            0 => {
                bytes.drain(at..end);
            }
            1 => {
                bytes.splice(at..at, insert.iter().copied());
            }
            _ => {
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_rule_files_load_or_are_refused_with_a_located_message(file in rule_file()) {
        assert_checked(file.yaml().as_bytes(), Format::Yaml, "a generated YAML file");
        assert_checked(file.toml_document().as_bytes(), Format::Toml, "a generated TOML file");
    }

    #[test]
    fn edited_corpus_files_load_or_are_refused_with_a_located_message(
        pick in any::<prop::sample::Index>(),
        edits in edits(),
    ) {
        for (target, format) in [("rules_yaml", Format::Yaml), ("rules_toml", Format::Toml)] {
            let files = corpus(target);
            let (path, bytes) = &files[pick.index(files.len())];
            let edited = apply(bytes.clone(), &edits);
            assert_checked(&edited, format, &format!("an edit of {}", path.display()));
        }
    }
}
