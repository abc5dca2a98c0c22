//! What makes any recorded key safe to expose: metric names and label keys
//! reduced to Prometheus's grammar, reserved label keys renamed, keys that
//! sanitize to the same name resolved, and label values escaped exactly as
//! the text format wants them. Applied when the registry is read, never on
//! the recording path.

use indexmap::IndexMap;
use indexmap::map::Entry;
use metrics::Key;

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
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends `text` escaped as a `# HELP` text: `\` as `\\`, a line feed as
/// `\n`.
pub(crate) fn escape_help(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
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
    if key.starts_with("__") || reserved == Some(key.as_str()) {
        reasons.push(Reason::ReservedLabel);
        format!("{RESERVED_PREFIX}{key}")
    } else {
        key
    }
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

#[cfg(test)]
mod tests {
    use metrics::Label;

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
    fn an_empty_name_is_refused() {
        let (series, reasons) = exposed(&key("", &[]), &[], None);
        assert_eq!(series, None);
        assert_eq!(reasons, [Reason::InvalidName]);
    }
}
