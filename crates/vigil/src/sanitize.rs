//! What makes any recorded key safe to expose: metric names and label keys
//! reduced to Prometheus's grammar, reserved label keys renamed, keys that
//! sanitize to the same name resolved, and label values escaped exactly as
//! the text format wants them. Applied when a series is registered (the
//! registry stores the key as exposed: [`register`]), and again when the
//! registry is read, as a safety net; never on the recording path.

use indexmap::IndexMap;
use indexmap::map::Entry;
use metrics::{Key, Label};

/// The name of the counter of series and labels refused or renamed on
/// their way to the exposition, by `reason`.
pub const SERIES_REJECTED_TOTAL: &str = "vigil_series_rejected_total";

/// The prefix a reserved label key gets (`quantile` becomes
/// `label_quantile`, `__name__` becomes `label___name__`).
pub(crate) const RESERVED_PREFIX: &str = "label_";

/// Why a series, or one of its labels, did not reach the exposition as it
/// was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// The metric name is empty: the series is left out.
    InvalidName,
    /// A label key is empty: the label is left out.
    InvalidLabel,
    /// A label key is reserved (`__`-prefixed, `le` on a histogram with
    /// buckets, `quantile` on a summary): it is renamed with
    /// [`RESERVED_PREFIX`].
    ReservedLabel,
    /// Two label keys of a series sanitize to the same name: the one whose
    /// recorded key sorts first is kept.
    DuplicateLabel,
    /// Two series have the same sanitized name and labels: the one whose
    /// recorded key sorts first is kept.
    Collision,
}

impl Reason {
    /// The value of the `reason` label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidName => "invalid_name",
            Reason::InvalidLabel => "invalid_label",
            Reason::ReservedLabel => "reserved_label",
            Reason::DuplicateLabel => "duplicate_label",
            Reason::Collision => "collision",
        }
    }
}

/// `raw` with every character outside `[a-zA-Z0-9_]` (plus `:` when
/// `colon`) replaced by `_`, and `_` put in front of a leading digit;
/// `None` when empty.
fn sanitize(raw: &str, colon: bool) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(raw.len() + 1);
    if raw.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(raw.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
            c
        } else {
            '_'
        }
    }));
    Some(out)
}

/// Whether `raw` is already in the grammar [`sanitize`] produces: not
/// empty, no leading digit, only `[a-zA-Z0-9_]` (and `:` when `colon`).
fn valid(raw: &str, colon: bool) -> bool {
    !raw.is_empty()
        && !raw.starts_with(|c: char| c.is_ascii_digit())
        && raw
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':'))
}

/// Whether `raw` is a metric name in Prometheus's grammar, which
/// [`metric_name`] returns unchanged.
pub(crate) fn valid_metric_name(raw: &str) -> bool {
    valid(raw, true)
}

/// Whether `raw` is a label key in Prometheus's grammar, which
/// [`label_key`] returns unchanged (reserved names are not checked).
pub(crate) fn valid_label_key(raw: &str) -> bool {
    valid(raw, false)
}

/// Whether `key` is a label key that the exposition reserves: `__`-prefixed
/// (Prometheus's own), or `reserved`, the key the exposition of the
/// series' kind adds itself (`le` or `quantile`).
pub(crate) fn is_reserved(key: &str, reserved: Option<&str>) -> bool {
    key.starts_with("__") || reserved == Some(key)
}

/// A metric name in Prometheus's grammar (`[a-zA-Z_:][a-zA-Z0-9_:]*`), or
/// `None` for an empty name.
pub(crate) fn metric_name(raw: &str) -> Option<String> {
    sanitize(raw, true)
}

/// A label key in Prometheus's grammar (`[a-zA-Z_][a-zA-Z0-9_]*`), or
/// `None` for an empty key.
pub(crate) fn label_key(raw: &str) -> Option<String> {
    sanitize(raw, false)
}

/// Appends `value` escaped as a text-format label value: `\` as `\\`, `"`
/// as `\"`, a line feed as `\n`; everything else as is.
pub(crate) fn escape_label_value(value: &str, out: &mut String) {
    escape(value, true, out);
}

/// Appends `text` escaped as a `# HELP` text: `\` as `\\`, a line feed as
/// `\n`.
pub(crate) fn escape_help(text: &str, out: &mut String) {
    escape(text, false, out);
}

/// Appends `text` with `\`, a line feed and, if `quote`, `"` escaped;
/// copied whole when there is nothing to escape.
fn escape(text: &str, quote: bool, out: &mut String) {
    let special = |byte: u8| byte == b'\\' || byte == b'\n' || (quote && byte == b'"');
    if !text.bytes().any(special) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Where a label of the exposed set came from.
enum Origin<'a> {
    /// A global label with this configured name.
    Global(&'a str),
    /// A series label with this recorded key.
    Series(&'a str),
}

/// A series' name and labels as exposed: global labels first, then the
/// series' own in recorded order; every key valid and unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exposed {
    /// The sanitized metric name.
    pub(crate) name: String,
    /// The labels, keys sanitized and unique, values unescaped.
    pub(crate) labels: Vec<(String, String)>,
}

/// A label key with reserved names renamed; `reserved` is the kind's own
/// reserved key (`le` or `quantile`), if any.
fn unreserved(key: String, reserved: Option<&str>, reasons: &mut Vec<Reason>) -> String {
    if is_reserved(&key, reserved) {
        reasons.push(Reason::ReservedLabel);
        format!("{RESERVED_PREFIX}{key}")
    } else {
        key
    }
}

/// Whether [`expose`] leaves `key` as recorded, with `globals` in front
/// of its labels: registration stores keys as exposed, so with valid
/// global labels that no series label names there is nothing to merge or
/// rename. Checked without an allocation.
pub(crate) fn exposed_as_recorded(
    key: &Key,
    globals: &IndexMap<String, String>,
    reserved: Option<&str>,
) -> bool {
    is_exposed(key, reserved)
        && globals.keys().all(|global| {
            valid_label_key(global)
                && !is_reserved(global, reserved)
                && key.labels().all(|label| label.key() != global)
        })
}

/// How `key` is exposed, with `globals` in front of its labels (a series
/// label of the same name as a global one replaces it in place), and
/// `reserved` the label key the kind's exposition adds itself (`le` for a
/// histogram with buckets, `quantile` for a summary). Every change made is
/// pushed to `reasons`; `None` when the series cannot be exposed at all.
pub(crate) fn expose(
    key: &Key,
    globals: &IndexMap<String, String>,
    reserved: Option<&str>,
    reasons: &mut Vec<Reason>,
) -> Option<Exposed> {
    if exposed_as_recorded(key, globals, reserved) {
        let labels = globals
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .chain(
                key.labels()
                    .map(|label| (label.key().to_owned(), label.value().to_owned())),
            )
            .collect();
        return Some(Exposed {
            name: key.name().to_owned(),
            labels,
        });
    }
    let Some(name) = metric_name(key.name()) else {
        reasons.push(Reason::InvalidName);
        return None;
    };
    let mut merged: IndexMap<String, (Origin<'_>, &str)> = IndexMap::new();
    // Global labels are validated by the builder; sanitized here as well
    // so that nothing reaches the exposition unchecked, without a reason
    // counted for every series.
    let mut ignored = Vec::new();
    for (global, value) in globals {
        if let Some(sanitized) = label_key(global) {
            let sanitized = unreserved(sanitized, reserved, &mut ignored);
            merged
                .entry(sanitized)
                .or_insert((Origin::Global(global), value));
        }
    }
    for label in key.labels() {
        let raw = label.key();
        let Some(sanitized) = label_key(raw) else {
            reasons.push(Reason::InvalidLabel);
            continue;
        };
        let sanitized = unreserved(sanitized, reserved, reasons);
        match merged.entry(sanitized) {
            Entry::Vacant(vacant) => {
                vacant.insert((Origin::Series(raw), label.value()));
            }
            Entry::Occupied(mut occupied) => {
                let replace = match occupied.get().0 {
                    // A series label overrides the global label it names.
                    Origin::Global(global) => {
                        if global == raw {
                            true
                        } else {
                            reasons.push(Reason::DuplicateLabel);
                            false
                        }
                    }
                    Origin::Series(first) => {
                        if first != raw {
                            reasons.push(Reason::DuplicateLabel);
                        }
                        raw < first
                    }
                };
                if replace {
                    *occupied.get_mut() = (Origin::Series(raw), label.value());
                }
            }
        }
    }
    let labels = merged
        .into_iter()
        .map(|(key, (_, value))| (key, value.to_owned()))
        .collect();
    Some(Exposed { name, labels })
}

/// What a recorded key is stored as in the registry.
#[derive(Debug, PartialEq)]
pub(crate) enum Registered {
    /// Already as exposed: stored under the recorded key itself.
    AsRecorded,
    /// Stored under this key: the recorded one with its name or labels
    /// changed as [`expose`] changes them (without global labels).
    Renamed(Key),
    /// Not stored at all: the metric name is empty.
    Refused,
}

/// `key` brought to the exposition's grammar when its series is
/// registered, so that reading it back through [`expose`] changes nothing:
/// the same renames, with `reserved` as for [`expose`]. Every change made
/// is pushed to `reasons`. A key already in the grammar is checked without
/// an allocation.
/// A recorded `vigil_overflow` label ([`OVERFLOW_LABEL`](crate::OVERFLOW_LABEL))
/// is renamed `label_vigil_overflow`: that key marks the registry's own
/// overflow series, which the series budget does not count.
pub(crate) fn register(key: &Key, reserved: Option<&str>, reasons: &mut Vec<Reason>) -> Registered {
    let overflow = key
        .labels()
        .any(|label| label.key() == crate::OVERFLOW_LABEL);
    if !overflow && is_exposed(key, reserved) {
        return Registered::AsRecorded;
    }
    match expose(key, &IndexMap::new(), reserved, reasons) {
        None => Registered::Refused,
        Some(Exposed { name, labels }) => {
            let labels: Vec<Label> = labels
                .into_iter()
                .map(|(key, value)| {
                    if key == crate::OVERFLOW_LABEL {
                        reasons.push(Reason::ReservedLabel);
                        Label::new(format!("{RESERVED_PREFIX}{key}"), value)
                    } else {
                        Label::new(key, value)
                    }
                })
                .collect();
            Registered::Renamed(Key::from_parts(name, labels))
        }
    }
}

/// Whether [`expose`] (without global labels) would leave `key` as it is:
/// a valid name, and label keys valid, unreserved and unique.
fn is_exposed(key: &Key, reserved: Option<&str>) -> bool {
    if !valid_metric_name(key.name()) {
        return false;
    }
    let labels = key.labels().as_slice();
    labels.iter().enumerate().all(|(i, label)| {
        let label = label.key();
        valid_label_key(label)
            && !is_reserved(label, reserved)
            && !labels[..i].iter().any(|earlier| earlier.key() == label)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, labels: &[(&str, &str)]) -> Key {
        Key::from_parts(
            name.to_owned(),
            labels
                .iter()
                .map(|&(k, v)| Label::new(k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>(),
        )
    }

    fn exposed(
        key: &Key,
        globals: &[(&str, &str)],
        reserved: Option<&str>,
    ) -> (Option<Exposed>, Vec<Reason>) {
        let globals = globals
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut reasons = Vec::new();
        (expose(key, &globals, reserved, &mut reasons), reasons)
    }

    fn pairs(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn names_and_keys_follow_the_grammar() {
        assert_eq!(metric_name("a-b.c:d").as_deref(), Some("a_b_c:d"));
        assert_eq!(metric_name("1xé").as_deref(), Some("_1x_"));
        assert_eq!(metric_name(""), None);
        assert_eq!(label_key("a:b").as_deref(), Some("a_b"));
        assert_eq!(label_key("9").as_deref(), Some("_9"));
        assert_eq!(label_key(""), None);
    }

    #[test]
    fn values_escape_backslashes_quotes_and_line_feeds() {
        let mut out = String::new();
        escape_label_value("a\\b", &mut out);
        out.push('|');
        escape_label_value("a\\\\b", &mut out);
        out.push('|');
        escape_label_value("\\\"\n", &mut out);
        assert_eq!(out, r#"a\\b|a\\\\b|\\\"\n"#);
    }

    #[test]
    fn reserved_keys_are_renamed() {
        let (series, reasons) = exposed(
            &key("h", &[("quantile", "x"), ("__name__", "y"), ("le", "z")]),
            &[],
            Some("quantile"),
        );
        assert_eq!(
            series.unwrap().labels,
            pairs(&[
                ("label_quantile", "x"),
                ("label___name__", "y"),
                ("le", "z")
            ])
        );
        assert_eq!(reasons, [Reason::ReservedLabel, Reason::ReservedLabel]);
    }

    #[test]
    fn duplicate_keys_keep_the_first_recorded_key_in_sorted_order() {
        for labels in [[("a.b", "2"), ("a-b", "1")], [("a-b", "1"), ("a.b", "2")]] {
            let (series, reasons) = exposed(&key("c", &labels), &[], None);
            assert_eq!(series.unwrap().labels, pairs(&[("a_b", "1")]));
            assert_eq!(reasons, [Reason::DuplicateLabel]);
        }
    }

    #[test]
    fn series_labels_replace_globals_of_their_name_only() {
        let globals = [("service", "shop"), ("region", "eu")];
        let (series, reasons) = exposed(
            &key("c", &[("region", "us"), ("service.", "x"), ("", "v")]),
            &globals,
            None,
        );
        let series = series.unwrap();
        assert_eq!(
            series.labels,
            pairs(&[("service", "shop"), ("region", "us"), ("service_", "x")])
        );
        assert_eq!(reasons, [Reason::InvalidLabel]);
        let (_, reasons) = exposed(&key("c", &[("service-", "x")]), &[("service_", "a")], None);
        assert_eq!(reasons, [Reason::DuplicateLabel]);
    }

    #[test]
    fn validity_agrees_with_sanitizing() {
        for raw in ["a", "a_b:c", "_1", "1a", "a-b", "", "é", "a b", "__x", "A9"] {
            assert_eq!(
                valid_metric_name(raw),
                metric_name(raw).as_deref() == Some(raw),
                "{raw:?}"
            );
            assert_eq!(
                valid_label_key(raw),
                label_key(raw).as_deref() == Some(raw),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn registration_stores_what_the_exposition_shows() {
        let mut reasons = Vec::new();
        let plain = key("jobs_total", &[("queue", "a-b")]);
        assert_eq!(register(&plain, None, &mut reasons), Registered::AsRecorded);
        assert_eq!(reasons, []);
        let hostile = key(
            "1h-seconds",
            &[("quantile", "x"), ("a.b", "2"), ("a-b", "1"), ("", "v")],
        );
        let Registered::Renamed(stored) = register(&hostile, Some("quantile"), &mut reasons) else {
            panic!("renamed");
        };
        assert_eq!(stored.name(), "_1h_seconds");
        let labels: Vec<(&str, &str)> = stored.labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(labels, [("label_quantile", "x"), ("a_b", "1")]);
        assert_eq!(
            reasons,
            [
                Reason::ReservedLabel,
                Reason::DuplicateLabel,
                Reason::InvalidLabel
            ]
        );
        // Reading the stored key back changes nothing more.
        let mut again = Vec::new();
        assert_eq!(
            register(&stored, Some("quantile"), &mut again),
            Registered::AsRecorded
        );
        let exposed = expose(&stored, &IndexMap::new(), Some("quantile"), &mut again);
        assert_eq!(exposed.map(|e| e.labels.len()), Some(2));
        assert_eq!(again, []);
        // Duplicate keys that are identical are one label too many.
        let twice = key("c", &[("k", "1"), ("k", "1")]);
        assert!(matches!(
            register(&twice, None, &mut again),
            Registered::Renamed(_)
        ));
        assert_eq!(
            register(&key("", &[]), None, &mut reasons),
            Registered::Refused
        );
    }

    #[test]
    fn an_empty_name_is_refused() {
        let (series, reasons) = exposed(&key("", &[]), &[], None);
        assert_eq!(series, None);
        assert_eq!(reasons, [Reason::InvalidName]);
    }
}
