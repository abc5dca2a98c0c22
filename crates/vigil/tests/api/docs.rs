//! The example answers of `docs/http-api.md` are real answers: each JSON
//! block after a `<!-- answer: NAME -->` marker must be what the scenario
//! below gets for NAME, value for value, except where a value depends on
//! the machine or the clock (timestamps, durations, percentiles, CPU and
//! memory readings), where only its JSON type must match. Run with
//! `VIGIL_BLESS_DOCS=1` to write the current answers into the document.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_json::Value;

use super::client::Request;
use super::host::{Host, Options};
use super::{api, clear, cold_sessions, fill_markets, get, tagged};

/// The document, from this crate's directory.
const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/http-api.md");

/// What opens a marker; `NAME -->` follows.
const MARK: &str = "<!-- answer: ";

/// Keys whose values differ between runs: compared by JSON type only.
const VOLATILE: [&str; 11] = [
    "timestamp",
    "created_at",
    "duration_seconds",
    "current",
    "average",
    "min",
    "max",
    "p50",
    "p95",
    "p99",
    "health_score",
];

/// Each marked block: the marker's name and where the block's JSON lies.
fn blocks(doc: &str) -> Vec<(String, Range<usize>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = doc[from..].find(MARK) {
        let start = from + at + MARK.len();
        let end = start + doc[start..].find(" -->").expect("a closed marker");
        let fence = "```json\n";
        let open = end
            + doc[end..]
                .find(fence)
                .expect("a JSON block after the marker")
            + fence.len();
        let close = open + doc[open..].find("```").expect("a closed block");
        found.push((doc[start..end].to_owned(), open..close));
        from = close;
    }
    found
}

/// Where `documented` and `real` differ, by path.
fn differences(documented: &Value, real: &Value, path: &str, problems: &mut Vec<String>) {
    let key = path.rsplit('.').next().unwrap_or_default();
    if VOLATILE.contains(&key) {
        let kind = |value: &Value| std::mem::discriminant(value);
        if kind(documented) != kind(real) {
            problems.push(format!("{path}: {documented} where the answer has {real}"));
        }
        return;
    }
    match (documented, real) {
        (Value::Object(documented), Value::Object(real)) => {
            let keys = |map: &serde_json::Map<String, Value>| -> Vec<String> {
                let mut keys: Vec<String> = map.keys().cloned().collect();
                keys.sort();
                keys
            };
            if keys(documented) != keys(real) {
                problems.push(format!(
                    "{path}: fields {:?} where the answer has {:?}",
                    keys(documented),
                    keys(real)
                ));
                return;
            }
            for (name, value) in documented {
                differences(value, &real[name], &format!("{path}.{name}"), problems);
            }
        }
        (Value::Array(documented), Value::Array(real)) if documented.len() == real.len() => {
            for (index, (documented, real)) in documented.iter().zip(real).enumerate() {
                differences(documented, real, &format!("{path}[{index}]"), problems);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        _ if documented == real => {}
        _ => problems.push(format!("{path}: {documented} where the answer has {real}")),
    }
}

/// Writes the compact JSON `text` at `indent`, in its own field order: a
/// value whose compact form fits in 80 columns on one line, others with
/// one member per line.
fn layout(text: &str, indent: usize, out: &mut String) {
    let text = text.trim();
    let open = text.as_bytes().first().copied();
    if indent + text.len() <= 80 || !matches!(open, Some(b'{' | b'[')) {
        out.push_str(&text.replace(",\"", ", \"").replace("\":", "\": "));
        return;
    }
    let inner = &text[1..text.len() - 1];
    let pad = " ".repeat(indent + 2);
    out.push_str(&text[..1]);
    out.push('\n');
    let members = split_members(inner);
    for (index, member) in members.iter().enumerate() {
        out.push_str(&pad);
        match (open, member.find("\":")) {
            (Some(b'{'), Some(colon)) => {
                out.push_str(&member[..colon + 2]);
                out.push(' ');
                layout(&member[colon + 2..], indent + 2, out);
            }
            _ => layout(member, indent + 2, out),
        }
        if index + 1 < members.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(indent));
    out.push_str(&text[text.len() - 1..]);
}

/// The top-level members of an object's or array's inside (compact JSON).
fn split_members(inner: &str) -> Vec<&str> {
    let (mut members, mut depth, mut start) = (Vec::new(), 0i32, 0);
    let (mut in_string, mut escaped) = (false, false);
    for (at, byte) in inner.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => {
                members.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        members.push(&inner[start..]);
    }
    members
}

/// The answers the document shows, by marker name: their raw bodies.
fn real_answers() -> BTreeMap<&'static str, String> {
    let mut answers = BTreeMap::new();

    // The summary needs the system history: a host collecting system
    // metrics, whose readings are the machine's (compared by type only).
    let busy = Host::start(Options::default());
    for id in (1..21).chain(2000..2005) {
        let _ = Request::get(&format!("/markets/{id}")).send(busy.address);
    }
    busy.markets
        .insert_with(1, "eu".into(), tagged(&["market"]));
    let _ = busy.markets.get(&1);
    let _ = busy.markets.get(&2);
    answers.insert("summary", get(&busy, &api("metrics/summary")).text());
    drop(busy);

    // Everything else from a host whose inputs are all set here: the
    // system gauges recorded by hand instead of read from the machine, a
    // failing readiness check.
    let host = Host::start(Options {
        system_metrics: false,
        db_up: false,
        ..Options::default()
    });
    vigil::with_local_recorder(&host.monitor.recorder(), || {
        vigil::metrics::gauge!("system_cpu_usage_ratio").set(0.35);
        vigil::metrics::gauge!("system_memory_usage_ratio").set(0.62);
        vigil::metrics::gauge!("system_disk_usage_ratio", "mount" => "/").set(0.48);
    });
    fill_markets(&host);
    for id in 0..60 {
        let _ = host.markets.get(&id);
    }
    cold_sessions(&host);
    host.fire_alerts();
    answers.insert("alerts", get(&host, &api("alerts?severity=high")).text());
    answers.insert(
        "invalid_parameter",
        get(&host, &api("alerts?severity=urgent")).text(),
    );
    answers.insert(
        "recommendations",
        get(&host, &api("recommendations")).text(),
    );
    answers.insert("cache_stats", get(&host, &api("cache/stats")).text());
    answers.insert("health", get(&host, &api("health")).text());
    answers.insert(
        "live",
        Request::get("/health/live").send(host.address).text(),
    );
    answers.insert(
        "not_ready",
        Request::get("/health/ready").send(host.address).text(),
    );
    answers.insert(
        "cache_clear",
        clear(&host, r#"{"tags": ["market"]}"#).text(),
    );
    answers
}

#[test]
fn the_examples_in_http_api_md_are_real_answers() {
    let answers = real_answers();
    let doc = std::fs::read_to_string(DOC).expect("docs/http-api.md");
    let blocks = blocks(&doc);
    let marked: Vec<&str> = blocks.iter().map(|(name, _)| name.as_str()).collect();
    let mut names: Vec<&str> = answers.keys().copied().collect();
    names.sort_unstable();
    let mut sorted = marked.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, names, "every answer is shown once in {DOC}");

    if std::env::var_os("VIGIL_BLESS_DOCS").is_some() {
        let mut blessed = doc.clone();
        for (name, range) in blocks.iter().rev() {
            let mut pretty = String::new();
            layout(&answers[name.as_str()], 0, &mut pretty);
            blessed.replace_range(range.clone(), &format!("{pretty}\n"));
        }
        std::fs::write(DOC, blessed).expect("docs/http-api.md is written");
        return;
    }
    let mut problems = Vec::new();
    for (name, range) in &blocks {
        let documented: Value = serde_json::from_str(&doc[range.clone()])
            .unwrap_or_else(|e| panic!("the `{name}` block is not JSON: {e}"));
        let real: Value = serde_json::from_str(&answers[name.as_str()]).expect("a JSON answer");
        differences(&documented, &real, name, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "docs/http-api.md shows answers the API does not give (run with \
         VIGIL_BLESS_DOCS=1 to write the real ones):\n{}",
        problems.join("\n")
    );
}
