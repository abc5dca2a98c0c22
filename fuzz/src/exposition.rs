//! Metric names, label keys and label values recorded through vigil's
//! recorder, rendered as text and as protobuf: the text must follow the
//! Prometheus text format's grammar (checked here, in-process), the
//! protobuf must decode into families with valid names and labels, and
//! both must hold the same families with no series twice.
//!
//! Input: series separated by [`RECORD`] bytes, each made of fields
//! separated by [`FIELD`] bytes (neither byte occurs in UTF-8): the kind
//! and value (`c`, `g`, `h` or `b` followed by a number), the name, then
//! label keys and values in turn.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;

use prost::Message as _;
use vigil::metrics::{Label, counter, gauge, histogram};
use vigil::{Matcher, Monitor, MonitorBuilder};

/// Ends one series in an input.
pub const RECORD: u8 = 0xFF;
/// Ends one field of a series in an input.
pub const FIELD: u8 = 0xFE;
/// Series read from one input; the rest is ignored.
pub const MAX_SERIES: usize = 48;
/// Labels read per series.
pub const MAX_LABELS: usize = 8;

/// What a series records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `counter!(..).increment(value)`.
    Counter,
    /// `gauge!(..).set(value)`.
    Gauge,
    /// `histogram!(..).record(value)`, rendered as a summary.
    Summary,
    /// `histogram!(name + "_bucketed", ..).record(value)`, rendered with
    /// buckets.
    Bucketed,
}

/// One recorded series.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// What is recorded.
    pub kind: Kind,
    /// The value recorded (a counter adds it as a whole number).
    pub value: f64,
    /// The metric name as recorded.
    pub name: String,
    /// Label keys and values as recorded.
    pub labels: Vec<(String, String)>,
}

/// The series an input stands for.
pub fn decode(bytes: &[u8]) -> Vec<Series> {
    bytes
        .split(|&b| b == RECORD)
        .take(MAX_SERIES)
        .filter_map(|record| {
            let mut fields = record
                .split(|&b| b == FIELD)
                .map(|f| String::from_utf8_lossy(f).into_owned());
            let head = fields.next()?;
            let mut chars = head.chars();
            let kind = match chars.next()? {
                'c' => Kind::Counter,
                'g' => Kind::Gauge,
                'h' => Kind::Summary,
                'b' => Kind::Bucketed,
                _ => return None,
            };
            let value = chars.as_str().trim().parse().unwrap_or(1.0);
            let name = fields.next().unwrap_or_default();
            let mut labels = Vec::new();
            while labels.len() < MAX_LABELS {
                let Some(key) = fields.next() else { break };
                labels.push((key, fields.next().unwrap_or_default()));
            }
            Some(Series {
                kind,
                value,
                name,
                labels,
            })
        })
        .collect()
}

/// The input that stands for `series` (the inverse of [`decode`]).
pub fn encode(series: &[Series]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            bytes.push(RECORD);
        }
        let kind = match s.kind {
            Kind::Counter => 'c',
            Kind::Gauge => 'g',
            Kind::Summary => 'h',
            Kind::Bucketed => 'b',
        };
        bytes.extend_from_slice(format!("{kind}{}", s.value).as_bytes());
        bytes.push(FIELD);
        bytes.extend_from_slice(s.name.as_bytes());
        for (key, value) in &s.labels {
            bytes.push(FIELD);
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(FIELD);
            bytes.extend_from_slice(value.as_bytes());
        }
    }
    bytes
}

/// The monitor the series are recorded in: a global `service` label,
/// buckets for names ending in `_bucketed`, and optionally a listener on
/// a free loopback port (for the protobuf exposition).
pub fn builder(listen: bool) -> MonitorBuilder {
    let builder = Monitor::builder()
        .global_label("service", "fuzz")
        .buckets(Matcher::Suffix("_bucketed".into()), &[0.5, 1.0])
        .manual_upkeep();
    if listen {
        builder.listen("127.0.0.1:0")
    } else {
        builder
    }
}

/// Records `series` in `monitor`.
pub fn record(monitor: &Monitor, series: &[Series]) {
    vigil::with_local_recorder(&monitor.recorder(), || {
        for s in series {
            let labels: Vec<Label> = s
                .labels
                .iter()
                .map(|(k, v)| Label::new(k.clone(), v.clone()))
                .collect();
            match s.kind {
                Kind::Counter => counter!(s.name.clone(), labels).increment(s.value as u64),
                Kind::Gauge => gauge!(s.name.clone(), labels).set(s.value),
                Kind::Summary => histogram!(s.name.clone(), labels).record(s.value),
                Kind::Bucketed => {
                    histogram!(format!("{}_bucketed", s.name), labels).record(s.value);
                }
            }
        }
    });
}

/// Records the input in a new monitor with a listener, renders both
/// formats and checks them: the text exposition, or what is wrong with it.
pub fn check(bytes: &[u8]) -> Result<String, String> {
    let monitor = builder(true)
        .build()
        .map_err(|e| format!("a monitor: {e}"))?;
    record(&monitor, &decode(bytes));
    // The first render registers what it had to change (counted in
    // vigil_series_rejected_total); from then on renders are stable.
    monitor.render();
    let text = monitor.render();
    let families = check_text(&text).map_err(|e| format!("{e}\n{text}"))?;
    let again = monitor.render();
    if again != text {
        return Err(format!("two renders differ:\n{text}\n---\n{again}"));
    }
    let address = monitor.listen_address().ok_or("no listener address")?;
    let protobuf = fetch_protobuf(address)?;
    let decoded = check_protobuf(&protobuf).map_err(|e| format!("{e}\ntext:\n{text}"))?;
    let names: BTreeSet<&String> = families.keys().collect();
    let decoded_names: BTreeSet<&String> = decoded.iter().collect();
    if names != decoded_names {
        return Err(format!(
            "text families {names:?} but protobuf families {decoded_names:?}\n{text}"
        ));
    }
    Ok(text)
}

/// The protobuf exposition served at `address`.
pub fn fetch_protobuf(address: SocketAddr) -> Result<Vec<u8>, String> {
    let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
    let (status, head, body) = crate::listener::get(address, "/metrics", Some(accept))?;
    if status != 200 || !head.contains("application/vnd.google.protobuf") {
        return Err(format!("the protobuf request got {status}: {head}"));
    }
    Ok(body)
}

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, and not reserved (`__`).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// A sample value: a float as Go's `ParseFloat` reads it, or an infinity
/// or NaN as the text format writes them.
fn valid_value(value: &str) -> bool {
    matches!(value, "+Inf" | "-Inf" | "NaN")
        || (!value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            && value.parse::<f64>().is_ok())
}

/// A family as the text declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Family {
    /// `counter`, `gauge`, `summary`, `histogram` or `untyped`.
    pub kind: String,
    /// Samples of the family.
    pub samples: usize,
}

/// Checks exposition text against the text format 0.0.4 grammar and the
/// rules Prometheus's parser enforces: valid names and label names, label
/// values quoted with only `\\`, `\"` and `\n` escapes, one `TYPE` and one
/// `HELP` per family before its samples, samples of a family together, no
/// series twice, `le` on buckets and `quantile` on summary quantiles.
/// Returns the families by name.
pub fn check_text(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut helps = HashSet::new();
    let mut series = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the exposition does not end with a line feed".to_owned());
    }
    for (number, line) in text.lines().enumerate() {
        let at = |what: String| format!("line {}: {what}: {line:?}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start_matches(' ').splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !valid_metric_name(name) {
                        return Err(at(format!("TYPE of an invalid name {name:?}")));
                    }
                    if !matches!(
                        kind,
                        "counter" | "gauge" | "summary" | "histogram" | "untyped"
                    ) {
                        return Err(at(format!("unknown type {kind:?}")));
                    }
                    if families.contains_key(name) {
                        return Err(at(format!(
                            "a second TYPE or a TYPE after samples of {name}"
                        )));
                    }
                    if let Some(previous) = current.replace(name.to_owned()) {
                        finished.insert(previous);
                    }
                    families.insert(
                        name.to_owned(),
                        Family {
                            kind: kind.to_owned(),
                            samples: 0,
                        },
                    );
                }
                (Some("TYPE"), _, _) => return Err(at("an incomplete TYPE line".to_owned())),
                (Some("HELP"), Some(name), help) => {
                    if !valid_metric_name(name) {
                        return Err(at(format!("HELP of an invalid name {name:?}")));
                    }
                    if !helps.insert(name.to_owned()) {
                        return Err(at(format!("a second HELP for {name}")));
                    }
                    check_escapes(help.unwrap_or(""), false).map_err(at)?;
                }
                _ => {}
            }
            continue;
        }
        let (name, labels, value) = split_sample(line).map_err(at)?;
        if !valid_metric_name(name) {
            return Err(at(format!("invalid metric name {name:?}")));
        }
        if !valid_value(value) {
            return Err(at(format!("invalid value {value:?}")));
        }
        let family_name = family_of(name, current.as_deref(), &families);
        if finished.contains(&family_name) {
            return Err(at(format!(
                "a sample of {family_name} apart from its family"
            )));
        }
        if current.as_deref() != Some(family_name.as_str())
            && let Some(previous) = current.replace(family_name.clone())
        {
            finished.insert(previous);
        }
        let family = families.entry(family_name.clone()).or_insert(Family {
            kind: "untyped".to_owned(),
            samples: 0,
        });
        family.samples += 1;
        let mut keys = BTreeSet::new();
        for (key, _) in &labels {
            if !valid_label_name(key) {
                return Err(at(format!("invalid label name {key:?}")));
            }
            if !keys.insert(key.as_str()) {
                return Err(at(format!("label {key} twice")));
            }
        }
        let suffix = &name[family_name.len()..];
        match (family.kind.as_str(), suffix) {
            ("histogram", "_bucket") if !keys.contains("le") => {
                return Err(at("a bucket without le".to_owned()));
            }
            ("summary", "") if !keys.contains("quantile") => {
                return Err(at("a summary quantile without quantile".to_owned()));
            }
            _ => {}
        }
        let mut identity: Vec<(String, String)> = labels;
        identity.sort();
        if !series.insert((name.to_owned(), identity)) {
            return Err(at("a series twice".to_owned()));
        }
    }
    Ok(families)
}

/// The family a sample named `name` belongs to: the current summary's or
/// histogram's when it is one of its sample names, otherwise its own.
fn family_of(name: &str, current: Option<&str>, families: &BTreeMap<String, Family>) -> String {
    if let Some(current) = current {
        let kind = families.get(current).map(|f| f.kind.as_str());
        let suffixes: &[&str] = match kind {
            Some("summary") => &["", "_sum", "_count"],
            Some("histogram") => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        if let Some(suffix) = name.strip_prefix(current)
            && suffixes.contains(&suffix)
        {
            return current.to_owned();
        }
    }
    name.to_owned()
}

/// A sample line's name, labels (values unescaped) and value.
type Sample<'a> = (&'a str, Vec<(String, String)>, &'a str);

/// Splits `name{labels} value [timestamp]`, unescaping label values.
fn split_sample(line: &str) -> Result<Sample<'_>, String> {
    let name_end = line.find(['{', ' ']).ok_or("a sample without a value")?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("a label without =")?;
            let key = &rest[..eq];
            let quoted = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("a label value without a quote")?;
            let (value, after) = unquote(quoted)?;
            labels.push((key.to_owned(), value));
            rest = after.strip_prefix(',').unwrap_or(after);
            if !after.starts_with(',') && !after.starts_with('}') {
                return Err("labels not separated by commas".to_owned());
            }
        }
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut parts = rest.split(' ');
    let value = parts.next().unwrap_or("");
    if let Some(timestamp) = parts.next()
        && timestamp.parse::<i64>().is_err()
    {
        return Err(format!("invalid timestamp {timestamp:?}"));
    }
    if parts.next().is_some() {
        return Err("more than a value and a timestamp".to_owned());
    }
    Ok((name, labels, value))
}

/// Reads a quoted label value up to its closing quote: the value and what
/// follows the quote.
fn unquote(quoted: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &quoted[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("invalid escape \\{:?}", other.map(|(_, c)| c))),
            },
            '\n' => return Err("a raw line feed in a label value".to_owned()),
            c => value.push(c),
        }
    }
    Err("an unterminated label value".to_owned())
}

/// HELP text allows only `\\` and `\n` escapes.
fn check_escapes(help: &str, quotes: bool) -> Result<(), String> {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if quotes => {}
                other => return Err(format!("invalid escape in HELP: \\{other:?}")),
            }
        }
    }
    Ok(())
}

// Decoding copies of the messages of `io/prometheus/client/metrics.proto`
// (only the fields checked here; the field numbers are the proto's).

/// `LabelPair`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// The label name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The label value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `Metric`: one series (its value fields are not checked here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// The series' labels.
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
}

/// `MetricFamily`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricFamily {
    /// The family name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// COUNTER = 0, GAUGE = 1, SUMMARY = 2, UNTYPED = 3, HISTOGRAM = 4.
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    /// The series.
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
}

/// Decodes a length-delimited protobuf exposition and checks every family:
/// a valid, unique name, a known type, valid and unique label names per
/// series, no series twice. Returns the family names in order.
pub fn check_protobuf(mut body: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut seen = HashSet::new();
    while !body.is_empty() {
        let family = MetricFamily::decode_length_delimited(&mut body)
            .map_err(|e| format!("not a MetricFamily: {e}"))?;
        if !valid_metric_name(&family.name) {
            return Err(format!(
                "protobuf family with invalid name {:?}",
                family.name
            ));
        }
        if !seen.insert(family.name.clone()) {
            return Err(format!("protobuf family {} twice", family.name));
        }
        if !(0..=4).contains(&family.r#type) {
            return Err(format!(
                "protobuf family {} of type {}",
                family.name, family.r#type
            ));
        }
        let mut series = HashSet::new();
        for metric in &family.metric {
            let mut keys = BTreeSet::new();
            for pair in &metric.label {
                if !valid_label_name(&pair.name) || !keys.insert(pair.name.as_str()) {
                    return Err(format!(
                        "protobuf family {}: invalid or repeated label name {:?}",
                        family.name, pair.name
                    ));
                }
            }
            let mut identity: Vec<(&str, &str)> = metric
                .label
                .iter()
                .map(|p| (p.name.as_str(), p.value.as_str()))
                .collect();
            identity.sort_unstable();
            if !series.insert(identity) {
                return Err(format!("protobuf family {}: a series twice", family.name));
            }
        }
        names.push(family.name);
    }
    Ok(names)
}
