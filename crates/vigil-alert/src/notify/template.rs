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

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

use super::NotifyError;
use super::format::{self, Thresholds};
use crate::{Alert, Labels, Notification};

/// The placeholders a template may use, as error messages list them
/// (`labels.NAME` and `annotations.NAME` stand for any label or annotation).
pub(crate) const KNOWN: &str = "alert, status, severity, value, threshold, summary, description, \
     timestamp, starts_at, ends_at, receiver, fingerprint, group_key, count, firing_count, \
     resolved_count, counts, labels.NAME, annotations.NAME";

/// `{{ name }}`: the first `}}` after a `{{` closes it (spaces inside
/// allowed); a `{{` without a closing `}}` is text.
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\{\{(.*?)\}\}").expect("the placeholder pattern is valid"));

/// Whether `name` (trimmed) is a placeholder [`Context::fill`] knows.
fn is_known(name: &str) -> bool {
    let named = |prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty())
    };
    named("labels.") || named("annotations.") || KNOWN.split(", ").any(|known| known == name)
}

/// The name inside a placeholder match, trimmed.
fn name<'t>(placeholder: &Captures<'t>) -> &'t str {
    placeholder.get(1).map_or("", |name| name.as_str().trim())
}

/// What templates are filled from: a notification, the alert at hand (the
/// first one for a per-notification text such as a subject), and the
/// thresholds known for its rule.
pub(crate) struct Context<'a> {
    pub(crate) notification: &'a Notification,
    pub(crate) alert: Option<&'a Alert>,
    pub(crate) thresholds: &'a Thresholds,
}

impl<'a> Context<'a> {
    /// The facts of `alert` (if any) in `notification`.
    pub(crate) fn new(
        notification: &'a Notification,
        alert: Option<&'a Alert>,
        thresholds: &'a Thresholds,
    ) -> Self {
        Context {
            notification,
            alert,
            thresholds,
        }
    }

    /// The value of the placeholder `name` (a [known](is_known) one), with
    /// its JSON type: absent values (and numbers JSON cannot write) are
    /// `null`.
    fn fill(&self, name: &str) -> Value {
        let n = self.notification;
        match name {
            "receiver" => return n.receiver.as_str().into(),
            "group_key" => return n.group_key.as_str().into(),
            "count" => return n.alerts.len().into(),
            "firing_count" => return format::counts(n).0.into(),
            "resolved_count" => return format::counts(n).1.into(),
            "counts" => return format::counts_text(n).into(),
            _ => {}
        }
        let Some(alert) = self.alert else {
            return Value::Null;
        };
        let get = |map: &Labels, key: &str| Value::from(map.get(key).map(String::as_str));
        let time = |t| Value::from(crate::time::format_rfc3339(t));
        if let Some(label) = name.strip_prefix("labels.") {
            return get(&alert.labels, label);
        }
        if let Some(annotation) = name.strip_prefix("annotations.") {
            return get(&alert.annotations, annotation);
        }
        match name {
            "alert" => alert.rule.as_str().into(),
            "status" => format::status_word(alert.status).into(),
            "severity" => format::severity_word(alert).into(),
            "value" | "threshold" => self.number(name).into(),
            "summary" | "description" => get(&alert.annotations, name),
            "timestamp" => time(format::status_time(alert)),
            "starts_at" => time(alert.starts_at),
            "ends_at" => alert.ends_at.map_or(Value::Null, time),
            "fingerprint" => alert.fingerprint().into(),
            _ => Value::Null,
        }
    }

    /// The alert's value or threshold (`name`), if known.
    fn number(&self, name: &str) -> Option<f64> {
        let alert = self.alert?;
        match name {
            "value" => alert.value,
            "threshold" => self.thresholds.of(alert).map(|t| t.value),
            _ => None,
        }
    }

    /// The value of the placeholder `name` as text: the value and
    /// threshold by [`format::number_text`] (`+Inf`, `NaN` included),
    /// absent values as nothing.
    fn text(&self, name: &str) -> String {
        if let Some(number) = self.number(name) {
            return format::number_text(number);
        }
        match self.fill(name) {
            Value::String(text) => text,
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        }
    }
}

/// Text with `{{placeholder}}`s, every one of them known. Its `Debug`
/// output shows it [masked](format::masked_text): it may be a link.
#[derive(Clone, PartialEq)]
pub(crate) struct TextTemplate(String);

impl std::fmt::Debug for TextTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", format::masked_text(&self.0, true))
    }
}

impl TextTemplate {
    /// Checks `text`; an unknown placeholder is an error naming it and
    /// `path`, where the text is.
    pub(crate) fn parse(text: &str, path: &str) -> Result<Self, NotifyError> {
        match PLACEHOLDER
            .captures_iter(text)
            .map(|p| name(&p))
            .find(|n| !is_known(n))
        {
            Some(unknown) => Err(NotifyError::UnknownPlaceholder {
                placeholder: unknown.to_owned(),
                path: path.to_owned(),
            }),
            None => Ok(TextTemplate(text.to_owned())),
        }
    }

    /// A link setting (the Slack and email notifiers' `link`), parsed and
    /// [checked](Self::check_link).
    pub(crate) fn link(link: Option<&str>) -> Result<Option<Self>, NotifyError> {
        let parse = |link| {
            let link = TextTemplate::parse(link, "link")?;
            link.check_link("link").map(|()| link)
        };
        link.map(parse).transpose()
    }

    /// The text with every placeholder written out (absent values as
    /// nothing).
    #[cfg(feature = "email")]
    pub(crate) fn render(&self, context: &Context<'_>) -> String {
        render_text(&self.0, context, false)
    }

    /// Checks a link (named `field` in errors) when its notifier is built:
    /// one that starts with text must be an absolute `http://` or
    /// `https://` URL with its placeholders filled in; one that starts
    /// with a placeholder (`{{annotations.runbook_url}}`) is checked per
    /// alert by [`render_link`](Self::render_link).
    pub(crate) fn check_link(&self, field: &'static str) -> Result<(), NotifyError> {
        let sample = PLACEHOLDER.replace_all(&self.0, "x");
        if PLACEHOLDER.find(&self.0).is_some_and(|p| p.start() == 0) || is_http_url(&sample) {
            return Ok(());
        }
        Err(NotifyError::InvalidConfig {
            field,
            reason: format!(
                "expected an absolute http:// or https:// URL, or one starting with a \
                 placeholder, got {:?}",
                format::masked_text(&sample, true)
            ),
        })
    }

    /// The link for the context's alert: a leading placeholder written
    /// as it is (it supplies the scheme and host, as
    /// `{{annotations.runbook_url}}` does), every other one
    /// percent-encoded (all but RFC 3986's unreserved characters) so a
    /// label value cannot change the URL's structure. `None` unless the
    /// result is an absolute `http://` or `https://` URL (an alert
    /// without the annotation gets no link).
    pub(crate) fn render_link(&self, context: &Context<'_>) -> Option<String> {
        let link = render_text(&self.0, context, true);
        is_http_url(&link).then_some(link)
    }
}

/// `text` with its placeholders filled in from `context`; for a link
/// (`url`), all but a leading one percent-encoded.
fn render_text(text: &str, context: &Context<'_>, url: bool) -> String {
    let fill = |placeholder: &Captures<'_>| {
        let value = context.text(name(placeholder));
        let leading = placeholder.get(0).is_some_and(|p| p.start() == 0);
        match url && !leading {
            true => value.bytes().map(percent_encoded).collect(),
            false => value,
        }
    };
    PLACEHOLDER.replace_all(text, fill).into_owned()
}

/// A byte of a URL component: itself if RFC 3986 leaves it unreserved,
/// else `%XX`.
fn percent_encoded(byte: u8) -> String {
    match byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
        true => char::from(byte).to_string(),
        false => format!("%{byte:02X}"),
    }
}

/// Whether `text` is an absolute `http://` or `https://` URL with a host
/// and without whitespace or control characters.
fn is_http_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(rest) = ["http://", "https://"]
        .iter()
        .find_map(|s| lower.strip_prefix(s))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    let clean = !text.contains(|c: char| c.is_whitespace() || c.is_control());
    !host.is_empty() && !host.starts_with(':') && clean
}

/// A JSON body with placeholders in its string leaves, checked once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct JsonTemplate(Value);

impl JsonTemplate {
    /// Checks `template`; an unknown placeholder is an error naming it
    /// and its JSON path (`$.details.tags[0]`).
    pub(crate) fn compile(template: &Value) -> Result<Self, NotifyError> {
        check(template, "$").map(|()| JsonTemplate(template.clone()))
    }

    /// The body for `context`'s alert.
    pub(crate) fn render(&self, context: &Context<'_>) -> Value {
        render(&self.0, context)
    }
}

/// Checks the placeholders in the strings of `value`, found at `path`.
fn check(value: &Value, path: &str) -> Result<(), NotifyError> {
    match value {
        Value::String(text) => TextTemplate::parse(text, path).map(drop),
        Value::Array(items) => (items.iter().enumerate())
            .try_for_each(|(i, item)| check(item, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            let plain =
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            match plain {
                true => check(item, &format!("{path}.{key}")),
                false => check(item, &format!("{path}[{key:?}]")),
            }
        }),
        _ => Ok(()),
    }
}

/// `value` with its strings filled in: a string that is exactly one
/// placeholder becomes its typed value, any other is text.
fn render(value: &Value, context: &Context<'_>) -> Value {
    match value {
        Value::String(text) => match PLACEHOLDER.captures(text) {
            Some(lone) if lone.get(0).is_some_and(|p| p.len() == text.len()) => {
                context.fill(name(&lone))
            }
            _ => render_text(text, context, false).into(),
        },
        Value::Array(items) => items.iter().map(|item| render(item, context)).collect(),
        Value::Object(fields) => (fields.iter())
            .map(|(key, item)| (key.clone(), render(item, context)))
            .collect(),
        other => other.clone(),
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
    fn non_finite_numbers_are_text_in_text_and_null_alone() {
        let mut n = notification();
        n.alerts[0]
            .annotations
            .insert("threshold".into(), "-inf".into());
        let thresholds = Thresholds::default();
        for (value, text) in [(f64::INFINITY, "+Inf"), (f64::NAN, "NaN")] {
            n.alerts[0].value = Some(value);
            let context = Context::new(&n, n.alerts.first(), &thresholds);
            let template = json!({"v": "{{value}}", "t": "{{value}} > {{threshold}}"});
            let body = JsonTemplate::compile(&template).unwrap().render(&context);
            assert_eq!(body, json!({"v": null, "t": format!("{text} > -Inf")}));
            let subject = TextTemplate::parse("at {{ value }}", "subject").unwrap();
            assert_eq!(
                render_text(&subject.0, &context, false),
                format!("at {text}")
            );
        }
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
