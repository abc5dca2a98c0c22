//! Placeholders (`{{alert}}`, `{{value}}`, `{{labels.route}}`, ...) in
//! user-written text and JSON: the templated webhook's body and the email
//! subject. Templates are checked when the notifier is built, so an
//! unknown placeholder is an error naming it and where it is, never a
//! body sent with a hole in it.
//!
//! A JSON template is any JSON value; its string leaves may hold
//! placeholders. A leaf that is exactly one placeholder takes the
//! placeholder's typed value (`"{{value}}"` becomes the number `93.5`, a
//! missing annotation `null`); anywhere else the value is written as text.
//! Bodies are built as JSON values and serialized, so substituted text is
//! always escaped correctly.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use super::NotifyError;
use super::format::{self, Thresholds};
use crate::{Alert, Notification};

/// The placeholders a template may use, as error messages list them.
pub(crate) const KNOWN: &str = "alert, status, severity, value, threshold, summary, description, \
     timestamp, starts_at, ends_at, receiver, fingerprint, group_key, count, firing_count, \
     resolved_count, counts, labels.NAME, annotations.NAME";

/// One placeholder: a fact of the alert or its notification.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Placeholder {
    /// The rule's name.
    Alert,
    /// `firing` / `resolved`.
    Status,
    /// The severity as the rule spells it.
    Severity,
    /// The value (a number, or null when the series was absent).
    Value,
    /// The fixed threshold crossed (a number, or null when unknown).
    Threshold,
    /// The `summary` annotation.
    Summary,
    /// The `description` annotation.
    Description,
    /// When the status began, RFC 3339.
    Timestamp,
    /// When the alert started firing, RFC 3339.
    StartsAt,
    /// When it resolved, RFC 3339 (null while firing).
    EndsAt,
    /// The notification's receiver.
    Receiver,
    /// The alert's fingerprint.
    Fingerprint,
    /// The notification's group key.
    GroupKey,
    /// How many alerts the notification holds, firing and resolved.
    Count,
    /// How many of them fire.
    FiringCount,
    /// How many of them resolved.
    ResolvedCount,
    /// `firing:1, resolved:2`: the alerts by status.
    Counts,
    /// One label (null when the alert has none by that name).
    Label(String),
    /// One annotation (null when the alert has none by that name).
    Annotation(String),
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        let named = |prefix: &str| {
            let rest = name.strip_prefix(prefix)?;
            (!rest.is_empty()).then(|| rest.to_owned())
        };
        if let Some(label) = named("labels.") {
            return Some(Placeholder::Label(label));
        }
        if let Some(annotation) = named("annotations.") {
            return Some(Placeholder::Annotation(annotation));
        }
        Some(match name {
            "alert" => Placeholder::Alert,
            "status" => Placeholder::Status,
            "severity" => Placeholder::Severity,
            "value" => Placeholder::Value,
            "threshold" => Placeholder::Threshold,
            "summary" => Placeholder::Summary,
            "description" => Placeholder::Description,
            "timestamp" => Placeholder::Timestamp,
            "starts_at" => Placeholder::StartsAt,
            "ends_at" => Placeholder::EndsAt,
            "receiver" => Placeholder::Receiver,
            "fingerprint" => Placeholder::Fingerprint,
            "group_key" => Placeholder::GroupKey,
            "count" => Placeholder::Count,
            "firing_count" => Placeholder::FiringCount,
            "resolved_count" => Placeholder::ResolvedCount,
            "counts" => Placeholder::Counts,
            _ => return None,
        })
    }
}

/// What templates are filled from: a notification, the alert at hand (the
/// first one for a per-notification text such as a subject), and the
/// thresholds known for its rule.
pub(crate) struct Context<'a> {
    pub(crate) notification: &'a Notification,
    pub(crate) alert: Option<&'a Alert>,
    pub(crate) thresholds: &'a Thresholds,
}

/// A placeholder's value.
enum Filled<'a> {
    Text(Cow<'a, str>),
    Number(f64),
    Integer(usize),
    Null,
}

impl Filled<'_> {
    fn into_json(self) -> Value {
        match self {
            Filled::Text(text) => Value::String(text.into_owned()),
            Filled::Number(n) => Number::from_f64(n).map_or(Value::Null, Value::Number),
            Filled::Integer(n) => Value::from(n),
            Filled::Null => Value::Null,
        }
    }

    fn write_to(&self, out: &mut String) {
        match self {
            Filled::Text(text) => out.push_str(text),
            Filled::Number(n) => out.push_str(&format::number_text(*n)),
            Filled::Integer(n) => {
                let _ = write!(out, "{n}");
            }
            Filled::Null => {}
        }
    }
}

impl Context<'_> {
    fn fill(&self, placeholder: &Placeholder) -> Filled<'_> {
        let n = self.notification;
        let text = |s: &str| Filled::Text(Cow::Owned(s.to_owned()));
        let optional = |s: Option<&String>| s.map_or(Filled::Null, |s| text(s));
        match placeholder {
            Placeholder::Receiver => return text(&n.receiver),
            Placeholder::GroupKey => return text(&n.group_key),
            Placeholder::Count => return Filled::Integer(n.alerts.len()),
            Placeholder::FiringCount => return Filled::Integer(format::counts(n).0),
            Placeholder::ResolvedCount => return Filled::Integer(format::counts(n).1),
            Placeholder::Counts => return text(&format::counts_text(n)),
            _ => {}
        }
        let Some(alert) = self.alert else {
            return Filled::Null;
        };
        let time = |t| Filled::Text(Cow::Owned(crate::time::format_rfc3339(t)));
        match placeholder {
            Placeholder::Alert => text(&alert.rule),
            Placeholder::Status => text(format::status_word(alert.status)),
            Placeholder::Severity => text(format::severity_word(alert)),
            Placeholder::Value => alert.value.map_or(Filled::Null, Filled::Number),
            Placeholder::Threshold => {
                (self.thresholds.of(alert)).map_or(Filled::Null, |t| Filled::Number(t.value))
            }
            Placeholder::Summary => optional(alert.annotations.get("summary")),
            Placeholder::Description => optional(alert.annotations.get("description")),
            Placeholder::Timestamp => time(format::status_time(alert)),
            Placeholder::StartsAt => time(alert.starts_at),
            Placeholder::EndsAt => alert.ends_at.map_or(Filled::Null, time),
            Placeholder::Fingerprint => text(&alert.fingerprint()),
            Placeholder::Label(name) => optional(alert.labels.get(name)),
            Placeholder::Annotation(name) => optional(alert.annotations.get(name)),
            // Filled from the notification above.
            Placeholder::Receiver
            | Placeholder::GroupKey
            | Placeholder::Count
            | Placeholder::FiringCount
            | Placeholder::ResolvedCount
            | Placeholder::Counts => Filled::Null,
        }
    }
}

/// A piece of a text template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Placeholder(Placeholder),
}

/// Text with `{{placeholder}}`s (spaces inside the braces allowed); a
/// `{{` without a closing `}}` is text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TextTemplate(Vec<Piece>);

impl TextTemplate {
    /// Parses `text`; an unknown placeholder is an error naming it and
    /// `path`, where the text is.
    pub(crate) fn parse(text: &str, path: &str) -> Result<Self, NotifyError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open + 2..].find("}}") else {
                break;
            };
            let name = rest[open + 2..open + 2 + close].trim();
            let placeholder =
                Placeholder::parse(name).ok_or_else(|| NotifyError::UnknownPlaceholder {
                    placeholder: name.to_owned(),
                    path: path.to_owned(),
                })?;
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            pieces.push(Piece::Placeholder(placeholder));
            rest = &rest[open + 2 + close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(TextTemplate(pieces))
    }

    /// Whether the text has no placeholder.
    fn is_plain(&self) -> bool {
        self.0.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// The text with every placeholder written out (absent values as
    /// nothing).
    pub(crate) fn render(&self, context: &Context<'_>) -> String {
        self.render_with(context, false)
    }

    /// Checks a link (the Slack and email notifiers' `link`, named
    /// `field` in errors) when its notifier is built: one that starts
    /// with text must be an absolute `http://` or `https://` URL with its
    /// placeholders filled in; one that starts with a placeholder
    /// (`{{annotations.runbook_url}}`) is checked per alert by
    /// [`render_link`](Self::render_link).
    pub(crate) fn check_link(&self, field: &'static str) -> Result<(), NotifyError> {
        if let Some(Piece::Placeholder(_)) = self.0.first() {
            return Ok(());
        }
        let sample: String = (self.0.iter())
            .map(|piece| match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Placeholder(_) => "x",
            })
            .collect();
        match is_http_url(&sample) {
            true => Ok(()),
            false => Err(NotifyError::InvalidConfig {
                field,
                reason: format!(
                    "expected an absolute http:// or https:// URL, or one starting with a \
                     placeholder, got {:?}",
                    format::masked_text(&sample, true)
                ),
            }),
        }
    }

    /// The link for the context's alert: a leading placeholder written
    /// as it is (it supplies the scheme and host, as
    /// `{{annotations.runbook_url}}` does), every other one
    /// percent-encoded (all but RFC 3986's unreserved characters) so a
    /// label value cannot change the URL's structure. `None` unless the
    /// result is an absolute `http://` or `https://` URL (an alert
    /// without the annotation gets no link).
    pub(crate) fn render_link(&self, context: &Context<'_>) -> Option<String> {
        let link = self.render_with(context, true);
        is_http_url(&link).then_some(link)
    }

    fn render_with(&self, context: &Context<'_>, url: bool) -> String {
        let mut out = String::new();
        for (i, piece) in self.0.iter().enumerate() {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Placeholder(p) if url && i > 0 => {
                    let mut value = String::new();
                    context.fill(p).write_to(&mut value);
                    for byte in value.bytes() {
                        match byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                            true => out.push(char::from(byte)),
                            false => {
                                let _ = write!(out, "%{byte:02X}");
                            }
                        }
                    }
                }
                Piece::Placeholder(p) => context.fill(p).write_to(&mut out),
            }
        }
        out
    }

    /// As JSON: a lone placeholder keeps its type, anything else is text.
    fn render_json(&self, context: &Context<'_>) -> Value {
        match self.0.as_slice() {
            [Piece::Placeholder(p)] => context.fill(p).into_json(),
            _ => Value::String(self.render(context)),
        }
    }
}

/// Whether `text` is an absolute `http://` or `https://` URL with a host
/// and without whitespace or control characters.
fn is_http_url(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    let rest = match (
        lower.strip_prefix("http://"),
        lower.strip_prefix("https://"),
    ) {
        (Some(_), _) => &text[7..],
        (None, Some(_)) => &text[8..],
        (None, None) => return false,
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    !host.is_empty()
        && !host.starts_with(':')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A compiled JSON template.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    /// A value without placeholders.
    Fixed(Value),
    /// A string leaf with placeholders.
    Text(TextTemplate),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// A JSON body with placeholders in its string leaves, checked once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonTemplate(Node);

impl JsonTemplate {
    /// Compiles `template`; an unknown placeholder is an error naming it
    /// and its JSON path (`$.details.tags[0]`).
    pub(crate) fn compile(template: &Value) -> Result<Self, NotifyError> {
        compile(template, "$").map(JsonTemplate)
    }

    /// The body for `context`'s alert.
    pub(crate) fn render(&self, context: &Context<'_>) -> Value {
        render(&self.0, context)
    }
}

fn compile(value: &Value, path: &str) -> Result<Node, NotifyError> {
    Ok(match value {
        Value::String(text) => {
            let template = TextTemplate::parse(text, path)?;
            match template.is_plain() {
                true => Node::Fixed(value.clone()),
                false => Node::Text(template),
            }
        }
        Value::Array(items) => Node::Array(
            (items.iter().enumerate())
                .map(|(i, item)| compile(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => {
            let field = |(key, item): (&String, &Value)| {
                let plain =
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                let path = match plain {
                    true => format!("{path}.{key}"),
                    false => format!("{path}[{key:?}]"),
                };
                Ok((key.clone(), compile(item, &path)?))
            };
            Node::Object(fields.iter().map(field).collect::<Result<_, _>>()?)
        }
        _ => Node::Fixed(value.clone()),
    })
}

fn render(node: &Node, context: &Context<'_>) -> Value {
    match node {
        Node::Fixed(value) => value.clone(),
        Node::Text(template) => template.render_json(context),
        Node::Array(items) => Value::Array(items.iter().map(|i| render(i, context)).collect()),
        Node::Object(fields) => {
            let fields = fields.iter().map(|(k, v)| (k.clone(), render(v, context)));
            Value::Object(fields.collect::<Map<_, _>>())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;
    use crate::{AlertStatus, Labels, Severity, labels};

    fn notification() -> Notification {
        let alert = Alert {
            rule: "CpuHigh".into(),
            labels: labels([("alertname", "CpuHigh"), ("severity", "warning")]),
            annotations: labels([("summary", "CPU at 93.5%")]),
            status: AlertStatus::Firing,
            severity: Severity::Medium,
            value: Some(93.5),
            starts_at: UNIX_EPOCH + Duration::from_secs(1_714_600_800),
            ends_at: None,
            silenced: false,
            inhibited: false,
            escalated: false,
        };
        Notification {
            receiver: "ops".into(),
            group_key: "{}:{}".into(),
            group_labels: Labels::new(),
            status: AlertStatus::Firing,
            alerts: vec![alert],
            common_labels: Labels::new(),
            common_annotations: Labels::new(),
        }
    }

    fn rendered(template: Value) -> Value {
        let n = notification();
        let thresholds = Thresholds::default();
        let context = Context {
            notification: &n,
            alert: n.alerts.first(),
            thresholds: &thresholds,
        };
        JsonTemplate::compile(&template).unwrap().render(&context)
    }

    #[test]
    fn lone_placeholders_keep_their_type_and_others_become_text() {
        let body = rendered(json!({
            "v": "{{value}}", "spaced": "{{ value }}", "text": "at {{value}}",
            "missing": "{{threshold}}", "missing_text": "[{{threshold}}]",
            "n": 3, "list": ["{{count}}", true, null],
            "time": "{{timestamp}}", "open": "{{ not closed",
        }));
        assert_eq!(
            body,
            json!({
                "v": 93.5, "spaced": 93.5, "text": "at 93.5",
                "missing": null, "missing_text": "[]",
                "n": 3, "list": [1, true, null],
                "time": "2024-05-01T22:00:00Z", "open": "{{ not closed",
            })
        );
    }

    #[test]
    fn urls_get_their_placeholders_percent_encoded() {
        let mut n = notification();
        n.alerts[0].labels.insert("route".into(), "/a b&c=ü".into());
        let thresholds = Thresholds::default();
        let context = Context {
            notification: &n,
            alert: n.alerts.first(),
            thresholds: &thresholds,
        };
        let link =
            TextTemplate::parse("http://g/d?r={{labels.route}}&a={{alert}}", "link").unwrap();
        assert_eq!(
            link.render_link(&context).unwrap(),
            "http://g/d?r=%2Fa%20b%26c%3D%C3%BC&a=CpuHigh"
        );
    }

    #[test]
    fn a_link_may_come_whole_from_an_annotation() {
        let mut n = notification();
        let runbook = "https://wiki.internal/runbooks/cpu?team=ops&x=1";
        (n.alerts[0].annotations).insert("runbook_url".into(), runbook.into());
        let thresholds = Thresholds::default();
        let template = "{{annotations.runbook_url}}";
        let link = TextTemplate::parse(template, "link").unwrap();
        link.check_link("link").unwrap();
        let context = |n: &Notification| {
            let link = link.clone();
            let context = Context {
                notification: n,
                alert: n.alerts.first(),
                thresholds: &thresholds,
            };
            link.render_link(&context)
        };
        assert_eq!(context(&n).as_deref(), Some(runbook));
        // Not a URL, or absent: no link.
        for value in ["javascript:alert(1)", "see the wiki", ""] {
            (n.alerts[0].annotations).insert("runbook_url".into(), value.into());
            assert_eq!(context(&n), None, "{value}");
        }
        // A placeholder after text is still encoded; text must be a URL.
        let base = TextTemplate::parse("{{annotations.base}}/d?f={{alert}}", "link").unwrap();
        base.check_link("link").unwrap();
        for bad in ["dashboard", "http://", "ftp://h/{{alert}}", "{{alert}"] {
            let template = TextTemplate::parse(bad, "link").unwrap();
            assert!(template.check_link("link").is_err(), "{bad}");
        }
        let ok = TextTemplate::parse("http://{{labels.host}}:3000/d", "link").unwrap();
        ok.check_link("link").unwrap();
    }

    #[test]
    fn text_shows_four_significant_digits_and_json_keeps_the_number() {
        let mut n = notification();
        n.alerts[0].value = Some(0.1 + 0.2);
        let thresholds = Thresholds::default();
        let context = Context {
            notification: &n,
            alert: n.alerts.first(),
            thresholds: &thresholds,
        };
        let template = JsonTemplate::compile(&json!({"v": "{{value}}", "t": "at {{value}}"}));
        let body = template.unwrap().render(&context);
        assert_eq!(body, json!({"v": 0.30000000000000004, "t": "at 0.3"}));
    }

    #[test]
    fn counts_tell_firing_from_resolved() {
        let mut n = notification();
        let mut resolved = n.alerts[0].clone();
        resolved.status = AlertStatus::Resolved;
        n.alerts.extend([resolved.clone(), resolved]);
        let thresholds = Thresholds::default();
        let context = Context {
            notification: &n,
            alert: n.alerts.first(),
            thresholds: &thresholds,
        };
        let template = json!({
            "count": "{{count}}", "firing": "{{firing_count}}",
            "resolved": "{{resolved_count}}", "counts": "[{{counts}}]",
        });
        let body = JsonTemplate::compile(&template).unwrap().render(&context);
        assert_eq!(
            body,
            json!({"count": 3, "firing": 1, "resolved": 2, "counts": "[firing:1, resolved:2]"})
        );
    }

    #[test]
    fn unknown_placeholders_name_themselves_and_their_path() {
        let template = json!({"a": [{"b c": "x {{ $value }}"}]});
        let err = JsonTemplate::compile(&template).unwrap_err();
        assert!(
            matches!(&err, NotifyError::UnknownPlaceholder { placeholder, path }
                if placeholder == "$value" && path == r#"$.a[0]["b c"]"#),
            "{err}"
        );
        for bad in ["{{labels.}}", "{{}}", "{{nope}}"] {
            assert!(TextTemplate::parse(bad, "subject").is_err(), "{bad}");
        }
    }
}
