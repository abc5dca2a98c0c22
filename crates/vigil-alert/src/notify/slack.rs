//! [`SlackNotifier`]: a message per notification to a Slack incoming
//! webhook, one coloured attachment per alert.

use std::borrow::Borrow;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Url;
use serde_json::{Value, json};

use super::format::{self, Thresholds};
use super::template::{Context, TextTemplate};
use super::webhook::{JsonClient, http_url};
use super::{Notifier, NotifyError};
use crate::{Alert, AlertStatus, Notification, Rule, Severity};

/// At most this many alerts get an attachment (Slack shows at most 100
/// attachments, and a long list helps nobody); the text says how many
/// were left out.
const MAX_ALERTS: usize = 20;

/// The colour bar of a resolved alert.
const RESOLVED_COLOR: &str = "#2eb886";

/// The colour bar of a firing alert of `severity`: blue, amber, orange,
/// red.
fn color(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "#439fe0",
        Severity::Medium => "#daa038",
        Severity::High => "#e8751a",
        Severity::Critical => "#a30200",
    }
}

/// Posts each notification to a [Slack incoming
/// webhook](https://api.slack.com/messaging/webhooks).
///
/// The message's `text` is a headline (`[FIRING:2] HighErrorRate for
/// oncall`); each alert (at most 20) is an attachment coloured by
/// severity (blue low, amber medium, orange high, red critical; green once
/// resolved) whose blocks show the rule name (linked to
/// [`link`](SlackBuilder::link) if set), its summary, severity, status,
/// value, threshold, the instance's labels and since when. Text from
/// alerts is escaped for Slack's `mrkdwn` (`&`, `<`, `>`).
///
/// Slack answers `200 ok`, or an error status with a reason
/// (`invalid_payload`, `channel_not_found`) kept in
/// [`NotifyError::Status`]; 4xx answers are not retried. The webhook URL
/// is a credential: errors, logs and `Debug` show it with its last path
/// segment masked.
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
#[derive(Clone)]
pub struct SlackNotifier {
    url: Url,
    shown_url: String,
    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
    link: Option<TextTemplate>,
    thresholds: Arc<Thresholds>,
    name: String,
    client: JsonClient,
}

impl std::fmt::Debug for SlackNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackNotifier")
            .field("url", &self.shown_url)
            .field("channel", &self.channel)
            .field("username", &self.username)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
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
        SlackBuilder {
            url: url.into(),
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
        let mut text = escape(&format::headline(notification));
        let count = notification.alerts.len();
        if count > MAX_ALERTS {
            text.push_str(&format!(" (the first {MAX_ALERTS} of {count} shown)"));
        }
        let attachments: Vec<Value> = (notification.alerts.iter().take(MAX_ALERTS))
            .map(|alert| self.attachment(notification, alert))
            .collect();
        let mut message = json!({ "text": text, "attachments": attachments });
        let optional = [
            ("channel", &self.channel),
            ("username", &self.username),
            ("icon_emoji", &self.icon_emoji),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                message[key] = Value::String(value.clone());
            }
        }
        message
    }

    /// One alert: a coloured attachment with a title, the figures and the
    /// instance.
    fn attachment(&self, notification: &Notification, alert: &Alert) -> Value {
        let status = format::status_word(alert.status);
        let severity = format::severity_word(alert);
        let rule = escape(&alert.rule);
        let context = Context {
            notification,
            alert: Some(alert),
            thresholds: &self.thresholds,
        };
        let mut title = match &self.link {
            Some(link) => format!("*<{}|{rule}>* {status}", escape(&link.render_url(&context))),
            None => format!("*{rule}* {status}"),
        };
        let summary = format::summary(alert);
        if let Some(summary) = summary {
            title = format!("{title}\n{}", escape(summary));
        }
        let threshold = self.thresholds.of(alert);
        let threshold = threshold.map_or_else(|| "n/a".to_owned(), |t| t.to_string());
        let field = |name: &str, value: &str| json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", escape(value))});
        let fields = [
            field("Severity", severity),
            field("Status", status),
            field("Value", &format::value_text(alert.value)),
            field("Threshold", &threshold),
        ];
        let mut context: Vec<String> = format::instance_labels(alert)
            .map(|(name, value)| format!("`{}={}`", escape(name), escape(value)))
            .collect();
        let since = crate::time::format_rfc3339(format::status_time(alert));
        context.push(format!("since {since}"));
        let color = match alert.status {
            AlertStatus::Firing => color(alert.severity),
            AlertStatus::Resolved => RESOLVED_COLOR,
        };
        let fallback = format!(
            "[{severity}] {} {status}: {}",
            alert.rule,
            summary.unwrap_or("")
        );
        json!({
            "color": color,
            "fallback": fallback.trim_end_matches([':', ' ']),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": title}},
                {"type": "section", "fields": fields},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context.join("  ")}]},
            ],
        })
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body =
            serde_json::to_vec(&self.message(notification)).map_err(|e| NotifyError::Encode {
                reason: e.to_string(),
            })?;
        self.client.post(&self.url, &self.shown_url, body).await
    }
}

/// Configures a [`SlackNotifier`]: see [`SlackNotifier::builder`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct SlackBuilder {
    url: String,
    channel: Option<String>,
    username: Option<String>,
    icon_emoji: Option<String>,
    link: Option<String>,
    thresholds: Thresholds,
    name: Option<String>,
    root_certificates: Vec<Vec<u8>>,
}

impl SlackBuilder {
    crate::notify::setters! {
        /// Posts to this channel (`#alerts`) instead of the webhook's own;
        /// honoured by legacy webhooks, ignored by those of Slack apps,
        /// which always post where they were installed.
        channel(channel: impl Into<String>) => channel = Some(channel.into());

        /// The sender name shown (legacy webhooks; see [`channel`](Self::channel)).
        username(username: impl Into<String>) => username = Some(username.into());

        /// The sender icon, an emoji code such as `:rotating_light:`
        /// (legacy webhooks; see [`channel`](Self::channel)).
        icon_emoji(emoji: impl Into<String>) => icon_emoji = Some(emoji.into());

        /// Links each alert's name to this URL: a dashboard or the host's
        /// status page (`http://host:8080/status`). It may hold
        /// [placeholders](super#placeholders), filled in per alert and
        /// percent-encoded (`http://grafana/d/checkout?var-function={{labels.function}}`).
        link(url: impl Into<String>) => link = Some(url.into());

        /// The name used as the metrics' `notifier` label and in logs
        /// (default `slack`).
        name(name: impl Into<String>) => name = Some(name.into());

        /// Trusts the certificates in `pem` as roots for an `https://` URL,
        /// next to the Mozilla roots (for a proxy in front of Slack with a
        /// private CA).
        root_certificate(pem: impl Into<Vec<u8>>) => push root_certificates(pem.into());

        /// Shows each alert's threshold from these rules (the fixed threshold
        /// of the alert's rule and severity); without one, a numeric
        /// `threshold` annotation is shown. Can be called more than once.
        rules(rules: impl IntoIterator<Item = impl Borrow<Rule>>) => add thresholds(rules);
    }

    /// Checks the URL (absolute `http://` or `https://`) and certificates
    /// and builds the notifier. Needs no runtime.
    pub fn build(self) -> Result<SlackNotifier, NotifyError> {
        let url = http_url(&self.url)?;
        let link = match &self.link {
            Some(link) => {
                http_url(link).map_err(|e| NotifyError::InvalidConfig {
                    field: "link",
                    reason: e.to_string(),
                })?;
                Some(TextTemplate::parse(link, "link")?)
            }
            None => None,
        };
        Ok(SlackNotifier {
            shown_url: masked(&url),
            url,
            client: JsonClient::new(&[], &self.root_certificates)?,
            channel: self.channel,
            username: self.username,
            icon_emoji: self.icon_emoji,
            link,
            thresholds: Arc::new(self.thresholds),
            name: self.name.unwrap_or_else(|| "slack".to_owned()),
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
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    let path = url.path().trim_end_matches('/');
    if let Some((head, last)) = path.rsplit_once('/')
        && !last.is_empty()
    {
        shown.set_path(&format!("{head}/***"));
    }
    shown.into()
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
            .build()
            .unwrap_err();
        assert!(
            matches!(err, NotifyError::InvalidConfig { field: "link", .. }),
            "{err}"
        );
    }
}
