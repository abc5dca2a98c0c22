//! Label sets and Prometheus-style label [`Matcher`]s.
//!
//! A series, an alert instance and an alert are each identified by a
//! [`Labels`] set. Rules select series, and routes, silences and inhibit
//! rules select alerts, with matchers written as in PromQL and Alertmanager:
//! `name="value"`, `name!="value"`, `name=~"regex"`, `name!~"regex"`.
//! Regexes are compiled once, when the matcher is built, and anchored at
//! both ends like Prometheus' (`=~"api"` matches `api`, not `api-v2`).
//! A label the set does not have matches as the empty string, again like
//! Prometheus: `team=""` selects series without a `team` label.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::str::FromStr;

use regex::Regex;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::{Error, Result};

/// A set of label names and values, sorted by name.
///
/// `BTreeMap` so that equal sets compare, hash and print the same regardless
/// of insertion order (the engine keys alert instances by them).
pub type Labels = BTreeMap<String, String>;

/// Builds a [`Labels`] set from pairs.
///
/// ```
/// use vigil_alert::labels;
///
/// let set = labels([("service", "checkout"), ("region", "eu")]);
/// assert_eq!(set["service"], "checkout");
/// assert_eq!(set.keys().collect::<Vec<_>>(), ["region", "service"]);
/// ```
pub fn labels<I, K, V>(pairs: I) -> Labels
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// Displays a label set as Prometheus writes it: `{a="x", b="y"}`.
///
/// ```
/// use vigil_alert::{labels, DisplayLabels};
///
/// let set = labels([("b", "y"), ("a", "say \"hi\"")]);
/// assert_eq!(DisplayLabels(&set).to_string(), r#"{a="say \"hi\"", b="y"}"#);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DisplayLabels<'a>(pub &'a Labels);

impl fmt::Display for DisplayLabels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pair = |(name, value): (&String, &String)| format!("{name}={}", quoted(value));
        let pairs: Vec<_> = self.0.iter().map(pair).collect();
        write!(f, "{{{}}}", pairs.join(", "))
    }
}

/// `value` in double quotes, escaped as a JSON string (which is how
/// Prometheus and Alertmanager quote label values).
fn quoted(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `name` cannot be a label name, if it cannot.
pub(crate) fn label_name_problem(name: &str) -> Option<String> {
    let rule = "use letters, digits and `_`, not starting with a digit";
    (!is_valid_label_name(name)).then(|| format!("{name:?} is not a valid label name: {rule}"))
}

/// How a [`Matcher`] compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`: the value equals the matcher's.
    Equal,
    /// `!=`: the value differs from the matcher's.
    NotEqual,
    /// `=~`: the whole value matches the regex.
    Regex,
    /// `!~`: the whole value does not match the regex.
    NotRegex,
}

impl MatchOp {
    /// The operator as written: `=`, `!=`, `=~`, `!~`.
    pub const fn as_str(self) -> &'static str {
        ["=", "!=", "=~", "!~"][self as usize]
    }

    /// Whether the operator takes a regular expression.
    pub const fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition on one label, as in PromQL selectors and Alertmanager
/// `matchers`: `name="value"`, `name!="value"`, `name=~"regex"`,
/// `name!~"regex"`.
///
/// Regexes are compiled when the matcher is built and anchored like
/// Prometheus' (`^(?:regex)$`). A missing label matches as `""`.
/// Serialized as its text form (`'result="error"'`), which is also what
/// [`FromStr`] parses; quotes around the value are optional there, as in
/// Alertmanager (`severity=critical`), and a quoted value is unescaped as a
/// JSON string.
///
/// ```
/// use vigil_alert::{labels, Matcher};
///
/// let errors: Matcher = r#"result="error""#.parse()?;
/// let api = Matcher::regex("route", "/api/.*")?;
/// let series = labels([("result", "error"), ("route", "/api/users")]);
/// assert!(errors.matches(&series) && api.matches(&series));
/// assert!(!Matcher::regex("route", "/api")?.matches(&series)); // anchored
/// assert!(Matcher::equal("team", "").matches(&series)); // missing = ""
/// assert_eq!(api.to_string(), r#"route=~"/api/.*""#);
/// # Ok::<(), vigil_alert::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    /// Compiled, anchored; `Some` exactly when `op.is_regex()`.
    regex: Option<Regex>,
}

impl Matcher {
    /// A matcher with any operator; fails if a regex does not compile or the
    /// label name is not a valid Prometheus label name.
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Self> {
        let (name, value) = (name.into(), value.into());
        if let Some(reason) = label_name_problem(&name) {
            let matcher = format!("{name}{op}{}", quoted(&value));
            return Err(Error::InvalidMatcher { matcher, reason });
        }
        let regex = op.is_regex().then(|| Regex::new(&format!("^(?:{value})$")));
        let regex = regex.transpose().map_err(|e| Error::InvalidRegex {
            label: name.clone(),
            pattern: value.clone(),
            source: Box::new(e),
        })?;
        Ok(Matcher {
            regex,
            ..Matcher::plain(name, op, value)
        })
    }

    /// `name="value"`.
    ///
    /// Cannot fail on the value; a label name that is not valid in
    /// Prometheus (e.g. `a-b`) simply never matches a valid series.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher::plain(name.into(), MatchOp::Equal, value.into())
    }

    /// `name!="value"` (see [`Matcher::equal`] about the name).
    pub fn not_equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher::plain(name.into(), MatchOp::NotEqual, value.into())
    }

    /// A matcher without a regex.
    fn plain(name: String, op: MatchOp, value: String) -> Self {
        let regex = None;
        Matcher {
            name,
            op,
            value,
            regex,
        }
    }

    /// `name=~"regex"`, anchored at both ends.
    pub fn regex(name: impl Into<String>, pattern: impl Into<String>) -> Result<Self> {
        Matcher::new(name, MatchOp::Regex, pattern)
    }

    /// `name!~"regex"`, anchored at both ends.
    pub fn not_regex(name: impl Into<String>, pattern: impl Into<String>) -> Result<Self> {
        Matcher::new(name, MatchOp::NotRegex, pattern)
    }

    /// The label this matcher looks at.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator.
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or regex as given (unanchored).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value (`None` = label absent, which matches as `""`)
    /// satisfies this matcher.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        let found = (self.regex.as_ref()).map_or(value == self.value, |r| r.is_match(value));
        found == matches!(self.op, MatchOp::Equal | MatchOp::Regex)
    }

    /// Whether a label set satisfies this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).map(String::as_str))
    }

    /// Whether a label set, given as a lookup function, satisfies this
    /// matcher. Lets callers match a set plus extra labels (an alert's
    /// labels plus its `severity`) without building a new map.
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matches_value(lookup(&self.name))
    }

    /// What equality and hashing look at (the regex follows from them).
    fn key(&self) -> (&str, MatchOp, &str) {
        (&self.name, self.op, &self.value)
    }
}

/// Whether `labels` satisfies every matcher (true for no matchers).
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Matcher {}

impl Hash for Matcher {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op, quoted(&self.value))
    }
}

impl FromStr for Matcher {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidMatcher {
            matcher: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let (name, rest) = trimmed.split_at(trimmed.find(|c| !is_name(c)).unwrap_or(trimmed.len()));
        if name.is_empty() {
            return Err(invalid("expected a label name before the operator"));
        }
        use MatchOp::{Equal, NotEqual, NotRegex, Regex};
        let mut ops = [Regex, NotRegex, NotEqual, Equal].into_iter();
        let rest = rest.trim_start();
        let op = ops.find_map(|op| Some((op, rest.strip_prefix(op.as_str())?.trim())));
        let (op, value) =
            op.ok_or_else(|| invalid("expected an operator (=, !=, =~, !~) after the label name"))?;
        let quoted = "a value with quotes must be one string in `\"`, with JSON escapes";
        let value = match value.contains('"') {
            true => serde_json::from_str(value).map_err(|_| invalid(quoted))?,
            false => value.to_owned(),
        };
        Matcher::new(name, op, value)
    }
}

serde_as_text!(Matcher, "a label matcher such as 'result=\"error\"'");

/// Serde as text for a type written by `Display` and read by `FromStr`
/// (its error reported at the string's position); `$expecting` names it
/// when another kind of value is found.
macro_rules! serde_as_text {
    ($type:ty, $expecting:expr) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                $crate::labels::from_text(d, $expecting, |v| {
                    v.parse().map_err(|e: $crate::Error| e.to_string())
                })
            }
        }
    };
}
pub(crate) use serde_as_text;

/// Reads a map whose keys are checked as they are read: `check` turns a
/// key (given the entries so far) into what is kept with it, or says why
/// it is refused; a refused key's error is raised at its value, so that it
/// is reported under the key. `expecting` names the map for another kind
/// of value.
pub(crate) fn checked_map<'de, D, K, V, F>(
    d: D,
    expecting: String,
    check: F,
) -> Result<Vec<(K, String, V)>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
    F: FnMut(&str, &[(K, String, V)]) -> Result<K, String>,
{
    struct Checked<K, V, F>(String, F, PhantomData<(K, V)>);
    impl<'de, K, V: Deserialize<'de>, F> Visitor<'de> for Checked<K, V, F>
    where
        F: FnMut(&str, &[(K, String, V)]) -> Result<K, String>,
    {
        type Value = Vec<(K, String, V)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                match (self.1)(&key, &out) {
                    Ok(kept) => out.push((kept, key, map.next_value()?)),
                    Err(problem) => return map.next_value_seed(Refuse(problem, PhantomData)),
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Checked(expecting, check, PhantomData))
}

/// Refuses a string, a list or a map with its message, raised while the
/// value is read so that the error has its position; another kind of
/// value is refused as not being what the message asks for.
pub(crate) struct Refuse<T>(pub(crate) String, pub(crate) PhantomData<T>);

impl<'de, T> DeserializeSeed<'de> for Refuse<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T> Visitor<'de> for Refuse<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
        Err(E::custom(self.0))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        Err(de::Error::custom(self.0))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        Err(de::Error::custom(self.0))
    }
}

/// Reads a string through `parse` inside the visitor, so that an error
/// carries the string's position (and is named `expecting` for another
/// type of value). A TOML date-time, which the `toml` crate hands over as
/// a map with one private key, is read as its text.
pub(crate) fn from_text<'de, D, T, F>(
    d: D,
    expecting: &'static str,
    parse: F,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct Text<F>(&'static str, F);
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for Text<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.1)(v).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            match map.next_entry::<String, String>()? {
                Some((key, text)) if key == "$__toml_private_datetime" => self.visit_str(&text),
                _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
            }
        }
    }
    d.deserialize_str(Text(expecting, parse))
}

/// A label name read from a file, checked where it is written; with
/// `ALL`, `...` (all labels, in `group_by`) too.
#[cfg(any(feature = "routing", feature = "rulesets"))]
struct LabelName<const ALL: bool>(String);

#[cfg(any(feature = "routing", feature = "rulesets"))]
impl<'de, const ALL: bool> Deserialize<'de> for LabelName<ALL> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = if ALL {
            "a label name or \"...\""
        } else {
            "a label name"
        };
        from_text(d, expecting, |v| match label_name_problem(v) {
            Some(problem) if !(ALL && v == "...") => Err(problem),
            _ => Ok(LabelName(v.to_owned())),
        })
    }
}

/// Serde for a list of label names, each checked where it is written (an
/// invalid name in an inhibit rule's `equal` would be missing from every
/// alert, and so always "equal").
#[cfg(any(feature = "routing", feature = "rulesets"))]
pub(crate) fn label_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<LabelName<false>>::deserialize(d)?;
    Ok(names.into_iter().map(|l| l.0).collect())
}

/// Serde for a route's `group_by`, each entry checked where it is written.
#[cfg(feature = "routing")]
pub(crate) fn group_by<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(group_by_option(d)?.unwrap_or_default())
}

/// [`group_by`] for an optional `group_by`.
#[cfg(feature = "routing")]
pub(crate) fn group_by_option<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let labels = Option::<Vec<LabelName<true>>>::deserialize(d)?;
    Ok(labels.map(|l| l.into_iter().map(|l| l.0).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Labels {
        labels([("job", "api"), ("code", "503"), ("route", "/users")])
    }

    /// Each operator matches like PromQL: regexes anchored at both ends,
    /// missing labels as the empty string.
    #[test]
    fn matchers_match_like_promql() {
        let s = set();
        let cases = [
            (r#"job="api""#, true),
            (r#"job="ap""#, false),
            (r#"job!="web""#, true),
            (r#"job!="api""#, false),
            (r#"code=~"5..""#, true),
            (r#"code=~"4..""#, false),
            (r#"code!~"2..|3..""#, true),
            (r#"code!~"5.*""#, false),
            (r#"code=~"5""#, false),
            (r#"code=~"03""#, false),
            (r#"code=~"5|503""#, true),
            (r#"code!~"5""#, true),
            (r#"team="""#, true),
            (r#"team!="""#, false),
            (r#"job!="""#, true),
            (r#"team=~".*""#, true),
            (r#"team=~".+""#, false),
        ];
        for (text, matches) in cases {
            let m: Matcher = text.parse().unwrap();
            assert_eq!(m.matches(&s), matches, "{text}");
        }
    }

    #[test]
    fn parses_all_operators_with_and_without_quotes() {
        for (text, name, op, value) in [
            (r#"result="error""#, "result", MatchOp::Equal, "error"),
            (r#"result != "ok""#, "result", MatchOp::NotEqual, "ok"),
            (r#"code=~"5..""#, "code", MatchOp::Regex, "5.."),
            (r#"code!~"2..""#, "code", MatchOp::NotRegex, "2.."),
            ("severity=critical", "severity", MatchOp::Equal, "critical"),
            (" team = db ", "team", MatchOp::Equal, "db"),
            (
                r#"msg="a \"b\" \\ c""#,
                "msg",
                MatchOp::Equal,
                r#"a "b" \ c"#,
            ),
            (r#"empty="""#, "empty", MatchOp::Equal, ""),
        ] {
            let m: Matcher = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((m.name(), m.op(), m.value()), (name, op, value), "{text}");
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        for text in [r#"a="x""#, r#"a!="x y""#, r#"a=~"x|\"y\"""#, r#"a!~"\\d+""#] {
            let m: Matcher = text.parse().unwrap();
            let again: Matcher = m.to_string().parse().unwrap();
            assert_eq!(m, again, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_matchers() {
        for text in [
            "",
            "job",
            "=x",
            r#"job="unterminated"#,
            r#"job=~"(""#,
            r#"job=a"b"#,
            r#"1job="x""#,
            r#"job="x" extra"#,
        ] {
            assert!(text.parse::<Matcher>().is_err(), "{text:?} should fail");
        }
    }

    #[test]
    fn serde_uses_the_text_form() {
        let m = Matcher::regex("code", "5..").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#""code=~\"5..\"""#);
        let back: Matcher = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert!(back.matches(&set()));
    }

    #[test]
    fn matches_with_sees_extra_labels() {
        let s = set();
        let m = Matcher::equal("severity", "high");
        let lookup = |name: &str| match name {
            "severity" => Some("high"),
            other => s.get(other).map(String::as_str),
        };
        assert!(m.matches_with(lookup));
        assert!(Matcher::equal("job", "api").matches_with(lookup));
    }
}
