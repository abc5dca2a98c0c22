//! [`SlackNotifier`]: a message per notification to a Slack incoming
//! webhook, one coloured attachment per alert.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Client, Url};
use serde_json::{Map, Value, json};

use super::format::{self, Thresholds};
use super::template::{Context, TextTemplate};
use super::webhook::{encode, http_url, json_client, post, redacted};
use super::{Notifier, NotifyError};
use crate::{Alert, AlertStatus, Notification, Severity};

/// At most this many alerts get an attachment: each has 3 blocks, and
/// Slack takes at most 50 blocks per message (a long list helps nobody
/// anyway); the text says how many were left out.
const MAX_ALERTS: usize = 16;

/// Slack's limit on a section's text, in characters.
const MAX_SECTION_TEXT: usize = 3000;

/// Slack's limit on the text of a section's field (and the one kept for a
/// context element), in characters.
const MAX_FIELD_TEXT: usize = 2000;

/// The length kept for a message's top-level `text` (Slack truncates it
/// beyond 40,000 characters and advises at most 4,000).
const MAX_MESSAGE_TEXT: usize = 4000;

/// The length kept for a rule name in a title.
const MAX_RULE_TEXT: usize = 200;

/// The length kept for a link: a longer one is left out.
const MAX_LINK: usize = 2000;

/// Slack's reasons for refusing a message's blocks or attachments, upon
/// which it is sent again as text only.
const REFUSED_LAYOUT: [&str; 2] = ["invalid_blocks", "invalid_attachments"];

/// A webhook URL (parsed or not) and how errors, logs and `Debug` output
/// show it: its last path segment, the secret, masked.
#[derive(Clone, Default)]
struct Secret<T> {
    value: T,
    shown: String,
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Posts each notification to a [Slack incoming
/// webhook](https://api.slack.com/messaging/webhooks).
///
/// The message's `text` is a headline (`[FIRING:2] HighErrorRate for
/// oncall`); each alert (at most 16) is an attachment coloured by
/// severity (blue low, amber medium, orange high, red critical; green once
/// resolved) whose blocks show the rule name (linked to
/// [`link`](SlackBuilder::link) if set), its summary, severity, status,
/// value, threshold, the instance's labels and since when. Text from
/// alerts is escaped for Slack's `mrkdwn` (`&`, `<`, `>`), and the rule
/// name and labels are kept on one line (control characters written as
/// `\n`, `\u{1b}`).
///
/// Messages stay within Slack's documented limits: at most 16 alerts get
/// an attachment (48 blocks of the 50 a message may have; the headline
/// then says `(the first 16 of 40 shown)`), and texts longer than a
/// section's 3,000 or a field's 2,000 characters are cut with `…`.
///
/// Slack answers `200 ok`, or an error status with a reason
/// (`invalid_payload`, `channel_not_found`) kept in
/// [`NotifyError::Status`]; 4xx answers are not retried. If Slack refuses
/// the layout (`invalid_blocks`, `invalid_attachments`), the message is
/// sent again at once as text only: the headline and a line per alert.
/// The webhook URL is a credential: errors, logs and `Debug` show it with
/// its last path segment masked.
///
/// ```
/// use vigil_alert::notify::{Notifier, SlackNotifier};
/// # use vigil_alert::{Comparison, Rule, Severity};
/// # let rules = vec![Rule::builder("HighErrorRate").gauge("error_ratio")
/// #     .threshold(Severity::Critical, Comparison::Greater, 0.2).build().unwrap()];
///
/// let slack = SlackNotifier::builder("https://hooks.slack.com/services/T000/B000/XXXX")
///     .channel("#alerts")
///     .username("vigil")
///     .link("http://checkout.internal:8080/status")
///     .rules(&rules) // each alert's threshold, shown beside its value
///     .build()?;
/// assert_eq!(slack.name(), "slack");
/// assert!(!format!("{slack:?}").contains("XXXX"));
/// # Ok::<(), vigil_alert::notify::NotifyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SlackNotifier {
    url: Secret<Url>,
    /// The channel, user name and icon set, if any.
    sender: Map<String, Value>,
    link: Option<TextTemplate>,
    thresholds: Arc<Thresholds>,
    name: String,
    client: Client,
}

impl SlackNotifier {
    /// Posts to the incoming webhook at `url`, with the webhook's own
    /// channel and name.
    pub fn new(url: &str) -> Result<Self, NotifyError> {
        Self::builder(url).build()
    }

    /// Starts configuring a notifier posting to the incoming webhook at
    /// `url`.
    pub fn builder(url: impl Into<String>) -> SlackBuilder {
        let url = url.into();
        let shown = format::masked_text(&url, true);
        let url = Secret { value: url, shown };
        SlackBuilder {
            url,
            ..SlackBuilder::default()
        }
    }

    /// The message posted for `notification`, as JSON.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use vigil_alert::{labels, Alert, AlertStatus, Labels, Notification, Severity};
    /// use vigil_alert::notify::SlackNotifier;
    ///
    /// let alert = Alert {
    ///     rule: "DiskFull".into(),
    ///     labels: labels([("alertname", "DiskFull"), ("severity", "critical"), ("mount", "/")]),
    ///     annotations: labels([("summary", "/ is 97% full")]),
    ///     status: AlertStatus::Firing,
    ///     severity: Severity::Critical,
    ///     value: Some(0.97),
    ///     starts_at: UNIX_EPOCH + Duration::from_secs(1_714_600_800),
    ///     ends_at: None,
    ///     silenced: false,
    ///     inhibited: false,
    ///     escalated: false,
    /// };
    /// let notification = Notification {
    ///     receiver: "ops".into(),
    ///     group_key: "{}:{}".into(),
    ///     group_labels: Labels::new(),
    ///     status: AlertStatus::Firing,
    ///     common_labels: alert.labels.clone(),
    ///     common_annotations: alert.annotations.clone(),
    ///     alerts: vec![alert],
    /// };
    /// let slack = SlackNotifier::new("https://hooks.slack.com/services/T0/B0/X")?;
    /// let message = slack.message(&notification);
    /// assert_eq!(message["text"], "[FIRING:1] DiskFull for ops");
    /// assert_eq!(message["attachments"][0]["color"], "#a30200");
    /// # Ok::<(), vigil_alert::notify::NotifyError>(())
    /// ```
    pub fn message(&self, notification: &Notification) -> Value {
        let mut text = truncate(escape(&format::headline(notification)), MAX_SECTION_TEXT);
        let count = notification.alerts.len();
        if count > MAX_ALERTS {
            text.push_str(&format!(" (the first {MAX_ALERTS} of {count} shown)"));
        }
        let attachments = (notification.alerts.iter().take(MAX_ALERTS))
            .map(|alert| self.attachment(notification, alert))
            .collect();
        let mut message = self.sender.clone();
        message.insert("attachments".into(), attachments);
        message.insert("text".into(), text.into());
        message.into()
    }

    /// The message for `notification` as text only, sent when Slack
    /// refuses the blocks of [`message`](Self::message): the headline
    /// and a line per alert (`[critical] HighErrorRate firing: summary`),
    /// at most 4,000 characters.
    pub fn text_message(&self, notification: &Notification) -> Value {
        let mut lines = vec![format::headline(notification)];
        lines.extend(notification.alerts.iter().map(fallback));
        let text = truncate(escape(&lines.join("\n")), MAX_MESSAGE_TEXT);
        let mut message = self.sender.clone();
        message.insert("text".into(), text.into());
        message.into()
    }

    /// One alert: a coloured attachment with a title, the figures and the
    /// instance.
    fn attachment(&self, notification: &Notification, alert: &Alert) -> Value {
        let status = format::status_word(alert.status);
        let rule = truncate(escape(&format::one_line(&alert.rule)), MAX_RULE_TEXT);
        let context = Context::new(notification, Some(alert), &self.thresholds);
        let link = (self.link.as_ref())
            .and_then(|link| link.render_link(&context))
            .map(|link| escape(&link).replace('|', "%7C"))
            .filter(|link| link.chars().count() <= MAX_LINK);
        let mut title = match link {
            Some(link) => format!("*<{link}|{rule}>* {status}"),
            None => format!("*{rule}* {status}"),
        };
        if let Some(summary) = format::summary(alert) {
            let room = MAX_SECTION_TEXT.saturating_sub(title.chars().count() + 1);
            title = format!("{title}\n{}", truncate(escape(summary), room));
        }
        let field = |name: &str, value: &str| {
            let text = format!("*{name}*\n{}", escape(&format::one_line(value)));
            json!({"type": "mrkdwn", "text": truncate(text, MAX_FIELD_TEXT)})
        };
        let fields = [
            field("Severity", format::severity_word(alert)),
            field("Status", status),
            field("Value", &format::value_text(alert.value)),
            field("Threshold", &self.thresholds.text(alert)),
        ];
        let labels: Vec<String> = (format::instance_labels(alert))
            .map(|(name, value)| format!("`{name}={value}`"))
            .collect();
        let labels = escape(&format::one_line(&labels.join("  ")));
        let since = crate::time::format_rfc3339(format::status_time(alert));
        let since = format!("since {since}");
        let labels = truncate(labels, MAX_FIELD_TEXT - since.len() - 2);
        // Blue, amber, orange, red by severity; green once resolved.
        let color = match (alert.status, alert.severity) {
            (AlertStatus::Resolved, _) => "#2eb886",
            (_, Severity::Low) => "#439fe0",
            (_, Severity::Medium) => "#daa038",
            (_, Severity::High) => "#e8751a",
            (_, Severity::Critical) => "#a30200",
        };
        json!({
            "color": color,
            "fallback": truncate(fallback(alert), MAX_SECTION_TEXT),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": title}},
                {"type": "section", "fields": fields},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("{labels}  {since}").trim_start()}]},
            ],
        })
    }
}

/// One line for `alert` where only text is shown (notifications, the
/// text-only message): `[critical] HighErrorRate firing: summary`.
fn fallback(alert: &Alert) -> String {
    let status = format::status_word(alert.status);
    let severity = format::severity_word(alert);
    let summary = format::summary(alert).unwrap_or("");
    let line = format!("[{severity}] {} {status}: {summary}", alert.rule);
    format::one_line(line.trim_end_matches([':', ' '])).into_owned()
}

/// `text` cut to at most `max` characters, ending in `…` if cut, and
/// never inside an `&amp;`-style escape.
fn truncate(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = cut.rfind('&')
        && !cut[amp..].contains(';')
    {
        cut.truncate(amp);
    }
    cut.push('…');
    cut
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let post = async |message| {
            let request = self.client.post(self.url.value.clone());
            post(request.body(encode(&message)?), &self.url.shown).await
        };
        match post(self.message(notification)).await {
            Err(NotifyError::Status {
                status: 400, body, ..
            }) if REFUSED_LAYOUT.iter().any(|reason| body.contains(reason)) => {
                tracing::warn!(notifier = %self.name, reason = %body,
                    "Slack refused the message's layout; sending it as text only");
                post(self.text_message(notification)).await
            }
            outcome => outcome,
        }
    }
}

/// Configures a [`SlackNotifier`]: see [`SlackNotifier::builder`]. Its
/// `Debug` output masks the webhook URL's secret, as the notifier's does.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct SlackBuilder {
    url: Secret<String>,
    sender: Map<String, Value>,
    shared: format::Shared,
}

impl SlackBuilder {
    crate::notify::setters! {
        /// Posts to this channel (`#alerts`) instead of the webhook's own;
        /// honoured by legacy webhooks, ignored by those of Slack apps,
        /// which always post where they were installed.
        channel(channel: impl Into<String>) => extend sender([("channel".into(), Value::String(channel.into()))]);

        /// The sender name shown (legacy webhooks; see [`channel`](Self::channel)).
        username(username: impl Into<String>) => extend sender([("username".into(), Value::String(username.into()))]);

        /// The sender icon, an emoji code such as `:rotating_light:`
        /// (legacy webhooks; see [`channel`](Self::channel)).
        icon_emoji(emoji: impl Into<String>) => extend sender([("icon_emoji".into(), Value::String(emoji.into()))]);
    }
    super::notifier_setters!("`slack`", shared);

    /// Checks the URL (absolute `http://` or `https://`) and certificates
    /// and builds the notifier. Needs no runtime.
    pub fn build(self) -> Result<SlackNotifier, NotifyError> {
        self.checked().map_err(|e| e.in_builder("SlackBuilder"))
    }

    /// [`build`](Self::build), its errors not yet naming the builder.
    fn checked(self) -> Result<SlackNotifier, NotifyError> {
        let url = http_url(&self.url.value)?;
        let link = TextTemplate::link(self.shared.link.as_deref())?;
        Ok(SlackNotifier {
            url: Secret {
                shown: masked(&url),
                value: url,
            },
            client: json_client(&self.shared.root_certificates)?,
            sender: self.sender,
            link,
            thresholds: Arc::new(self.shared.thresholds),
            name: self.shared.name.unwrap_or_else(|| "slack".to_owned()),
        })
    }
}

/// Text for Slack's `mrkdwn`: `&`, `<` and `>` escaped, as Slack asks, so
/// that alert text cannot form links or mentions.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `url` as errors and logs show it: an incoming webhook's path ends in
/// its secret, so the last path segment, any credentials and the query
/// are masked.
fn masked(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    format::masked_text(&redacted(&shown), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_part_of_the_url_is_masked() {
        let url = Url::parse("https://hooks.slack.com/services/T0/B0/s3cret?x=1").unwrap();
        assert_eq!(masked(&url), "https://hooks.slack.com/services/T0/B0/***");
        let root = Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(masked(&root), "http://127.0.0.1:9/");
    }

    #[test]
    fn mrkdwn_control_characters_are_escaped() {
        assert_eq!(escape("<!here> & co"), "&lt;!here&gt; &amp; co");
    }

    #[test]
    fn a_link_must_be_a_url() {
        let err = SlackNotifier::builder("https://hooks.slack.com/services/T0/B0/X")
            .link("dashboard")
            .root_certificate("-----BEGIN CERTIFICATE-----\njunk\n-----END CERTIFICATE-----\n")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, NotifyError::InvalidConfig { field: "link", .. }),
            "{err}"
        );
    }
}
