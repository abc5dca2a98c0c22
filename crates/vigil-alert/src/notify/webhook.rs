//! [`WebhookNotifier`]: notifications as JSON `POST`s over HTTP or HTTPS,
//! either vigil's own body, Alertmanager's `/api/v2/alerts` format (so
//! that a fleet can send vigil's alerts through a real Alertmanager), or a
//! body of the user's own shape filled in per alert. Its HTTP client
//! ([`json_client`], [`post`]) also serves the Slack notifier.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Certificate, Client, RequestBuilder, Url};
use serde::Serialize;

use super::error::error_chain;
use super::format::{Thresholds, masked_text};
use super::template::{Context, JsonTemplate};
use super::{Notifier, NotifyError};
use crate::alertmanager::API_PATH;
use crate::{AlertStatus, Labels, Notification};

/// Why a URL that parses cannot be posted to.
const NOT_HTTP: &str = "expected an absolute http:// or https:// URL";

/// How much of an error response body is kept for the log.
const MAX_ERROR_BODY: usize = 512;

/// What a [`WebhookNotifier`] posts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebhookFormat {
    /// The [`Notification`] itself as JSON (its serde form, shaped after
    /// Alertmanager's webhook body): `{"receiver", "group_key",
    /// "group_labels", "status", "alerts": [..], "common_labels",
    /// "common_annotations"}`.
    #[default]
    Notification,
    /// Alertmanager's `POST /api/v2/alerts` body: a JSON array of
    /// `{"labels", "annotations", "startsAt", "endsAt", "generatorURL"}`
    /// with RFC 3339 times. Resolved alerts carry their `endsAt` (never
    /// later than the time of sending), which resolves them in
    /// Alertmanager. A firing alert that carries an `ends_at` (the time
    /// until which it is valid, as the [Alertmanager
    /// sender](crate::alertmanager) sets it) is posted with it; other
    /// firing alerts carry none (Alertmanager then applies its
    /// `resolve_timeout`) unless [`WebhookBuilder::firing_ttl`] sets one.
    ///
    /// Notified once per group, an alert resolves in Alertmanager after
    /// `resolve_timeout` (5m by default) or its `firing_ttl` even while it
    /// still fires; to keep alerts active there, send them with the
    /// [Alertmanager sender](crate::alertmanager), which re-sends every
    /// active alert as Prometheus does.
    Alertmanager,
    /// A JSON body of the user's own shape, posted once per alert, with
    /// `{{placeholder}}`s in its strings filled in from the alert: set by
    /// [`WebhookBuilder::template`]; the placeholders are listed in the
    /// [module docs](super#placeholders).
    Template,
}

/// Posts notifications as JSON to an `http://` or `https://` URL.
///
/// One request per notification (per attempt; one per alert with a
/// [`template`](WebhookBuilder::template)), `Content-Type:
/// application/json`; any 2xx answer is success, anything else (redirects
/// included) a [`NotifyError::Status`] (retried for 5xx, 408 and 429), or
/// for a 429 or 503 with a `Retry-After` a [`NotifyError::Throttled`],
/// retried no sooner than it asks (up to the dispatcher's `max_backoff`).
/// Of an error's body only the first 512 bytes are read.
/// Connections are pooled and go straight to the receiver (the
/// `HTTP_PROXY`/`HTTPS_PROXY` environment is not read). HTTPS trusts the Mozilla root certificates and
/// those added with [`WebhookBuilder::root_certificate`]. A call does not
/// time out by itself; the [`Dispatcher`](super::Dispatcher) bounds each
/// attempt.
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::notify::{Notifier, WebhookFormat, WebhookNotifier};
///
/// // Into a real Alertmanager: the path defaults to /api/v2/alerts.
/// let alertmanager = WebhookNotifier::builder("https://alertmanager.example.com")
///     .alertmanager()
///     .generator_url("http://checkout:8080/metrics")
///     .firing_ttl(Duration::from_secs(3600))
///     .build()?;
/// assert_eq!(alertmanager.url(), "https://alertmanager.example.com/api/v2/alerts");
/// assert_eq!(alertmanager.name(), "alertmanager");
///
/// // Anything else: the notification as JSON.
/// let chat = WebhookNotifier::builder("http://chat-bridge.internal/hooks/alerts")
///     .header("Authorization", "Bearer s3cret")
///     .name("chat")
///     .build()?;
/// assert_eq!(chat.format(), WebhookFormat::Notification);
/// # Ok::<(), vigil_alert::notify::NotifyError>(())
/// ```
///
/// Its `Debug` output, like its errors and logs, shows the URL without
/// its user name, password and query values (`?token=***`), and header
/// names only: their values may hold credentials.
#[derive(Clone)]
pub struct WebhookNotifier {
    pub(crate) url: Url,
    format: WebhookFormat,
    generator_url: Option<String>,
    firing_ttl: Option<Duration>,
    pub(crate) name: String,
    /// Sent with every request; its `Debug` output hides their values.
    headers: HeaderMap,
    client: Client,
    template: Option<Arc<JsonTemplate>>,
    thresholds: Arc<Thresholds>,
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("url", &redacted(&self.url))
            .field("format", &self.format)
            .field("name", &self.name)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Posts vigil's notification JSON to `url`.
    pub fn new(url: &str) -> Result<Self, NotifyError> {
        Self::builder(url).build()
    }

    /// Starts configuring a webhook posting to `url`.
    pub fn builder(url: impl Into<String>) -> WebhookBuilder {
        WebhookBuilder {
            url: url.into(),
            ..WebhookBuilder::default()
        }
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// What is posted.
    pub fn format(&self) -> WebhookFormat {
        self.format
    }

    /// The request body for `notification`, as it would be posted now (in
    /// the [`Template`](WebhookFormat::Template) format, which posts one
    /// body per alert, the JSON array of those bodies: see
    /// [`bodies`](Self::bodies)).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use vigil_alert::{labels, Alert, AlertStatus, Labels, Notification, Severity};
    /// use vigil_alert::notify::WebhookNotifier;
    ///
    /// let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let alert = Alert {
    ///     rule: "HighErrorRate".into(),
    ///     labels: labels([("alertname", "HighErrorRate"), ("severity", "critical")]),
    ///     annotations: labels([("summary", "checkout fails 30% of calls")]),
    ///     status: AlertStatus::Resolved,
    ///     severity: Severity::Critical,
    ///     value: Some(0.3),
    ///     starts_at: started,
    ///     ends_at: Some(started + Duration::from_secs(90)),
    ///     silenced: false,
    ///     inhibited: false,
    ///     escalated: false,
    /// };
    /// let notification = Notification {
    ///     receiver: "oncall".into(),
    ///     group_key: "{}:{}".into(),
    ///     group_labels: Labels::new(),
    ///     status: AlertStatus::Resolved,
    ///     common_labels: alert.labels.clone(),
    ///     common_annotations: alert.annotations.clone(),
    ///     alerts: vec![alert],
    /// };
    /// let webhook = WebhookNotifier::builder("http://am:9093").alertmanager().build()?;
    /// let body: serde_json::Value = serde_json::from_slice(&webhook.body(&notification)?).unwrap();
    /// assert_eq!(body[0]["labels"]["alertname"], "HighErrorRate");
    /// assert_eq!(body[0]["startsAt"], "2023-11-14T22:13:20Z");
    /// assert_eq!(body[0]["endsAt"], "2023-11-14T22:14:50Z");
    /// # Ok::<(), vigil_alert::notify::NotifyError>(())
    /// ```
    pub fn body(&self, notification: &Notification) -> Result<Vec<u8>, NotifyError> {
        match (&self.template, self.format) {
            (Some(template), _) => encode(&self.filled(template, notification).collect::<Vec<_>>()),
            (None, WebhookFormat::Alertmanager) => {
                encode(&self.alertmanager_alerts(notification, SystemTime::now()))
            }
            (None, _) => encode(notification),
        }
    }

    /// The request bodies for `notification`, one per request: one per
    /// alert in the [`Template`](WebhookFormat::Template) format, else the
    /// one [`body`](Self::body).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use serde_json::json;
    /// use vigil_alert::{labels, Alert, AlertStatus, Labels, Notification, Severity};
    /// use vigil_alert::notify::WebhookNotifier;
    ///
    /// let alert = Alert {
    ///     rule: "HighCpu".into(),
    ///     labels: labels([("alertname", "HighCpu"), ("severity", "warning")]),
    ///     annotations: labels([("summary", "CPU at 93.5%")]),
    ///     status: AlertStatus::Firing,
    ///     severity: Severity::Medium,
    ///     value: Some(93.5),
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
    /// let webhook = WebhookNotifier::builder("http://tta.internal/alerts")
    ///     .template(json!({
    ///         "alert_type": "{{alert}}",
    ///         "message": "{{summary}}",
    ///         "severity": "{{severity}}",
    ///         "value": "{{value}}",
    ///         "timestamp": "{{timestamp}}",
    ///         "service": "tta",
    ///     }))
    ///     .build()?;
    /// let bodies = webhook.bodies(&notification)?;
    /// let body: serde_json::Value = serde_json::from_slice(&bodies[0]).unwrap();
    /// assert_eq!(body, json!({
    ///     "alert_type": "HighCpu",
    ///     "message": "CPU at 93.5%",
    ///     "severity": "warning",
    ///     "value": 93.5,
    ///     "timestamp": "2024-05-01T22:00:00Z",
    ///     "service": "tta",
    /// }));
    /// # Ok::<(), vigil_alert::notify::NotifyError>(())
    /// ```
    pub fn bodies(&self, notification: &Notification) -> Result<Vec<Vec<u8>>, NotifyError> {
        match &self.template {
            Some(template) => (self.filled(template, notification))
                .map(|body| encode(&body))
                .collect(),
            None => Ok(vec![self.body(notification)?]),
        }
    }

    /// `template` filled in for each alert of `notification`.
    fn filled<'a>(
        &'a self,
        template: &'a JsonTemplate,
        notification: &'a Notification,
    ) -> impl Iterator<Item = serde_json::Value> + 'a {
        notification.alerts.iter().map(move |alert| {
            template.render(&Context::new(notification, Some(alert), &self.thresholds))
        })
    }
}

/// `value` as JSON.
pub(crate) fn encode(value: &impl Serialize) -> Result<Vec<u8>, NotifyError> {
    serde_json::to_vec(value).map_err(|e| NotifyError::Encode {
        reason: e.to_string(),
    })
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    /// Posts the body, or in the [`Template`](WebhookFormat::Template)
    /// format one body per alert, in order, stopping at the first that
    /// fails (a retry posts them all again).
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let shown = redacted(&self.url);
        for body in self.bodies(notification)? {
            let request = self.client.post(self.url.clone());
            post(request.headers(self.headers.clone()).body(body), &shown).await?;
        }
        Ok(())
    }
}

/// `headers` checked, every value kept (a name may repeat) and marked
/// sensitive, so that `Debug` output hides it.
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, NotifyError> {
    let mut header_map = HeaderMap::new();
    for (name, value) in headers {
        let header = |e: String| NotifyError::InvalidConfig {
            field: "header",
            reason: format!("{name:?}: {e}"),
        };
        let key = HeaderName::from_bytes(name.as_bytes()).map_err(|e| header(e.to_string()))?;
        let mut value = HeaderValue::from_str(value).map_err(|e| header(e.to_string()))?;
        value.set_sensitive(true);
        header_map.append(key, value);
    }
    Ok(header_map)
}

/// An HTTP(S) client trusting the Mozilla roots and `root_certificates`
/// (PEM). It goes straight to the receiver, as Alertmanager's and
/// Prometheus' clients do unless a proxy is configured (`HTTP(S)_PROXY`
/// set for other traffic must not reroute alerts), and does not follow
/// redirects.
pub(crate) fn json_client(root_certificates: &[Vec<u8>]) -> Result<Client, NotifyError> {
    let client_error = |e: reqwest::Error| NotifyError::InvalidConfig {
        field: "root_certificate",
        reason: error_chain(&e),
    };
    let mut client = Client::builder()
        .user_agent(concat!("vigil-alert/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    for pem in root_certificates {
        for certificate in Certificate::from_pem_bundle(pem).map_err(client_error)? {
            client = client.add_root_certificate(certificate);
        }
    }
    client.build().map_err(client_error)
}

/// Sends `request` (a `POST` with its body, to a URL shown in errors as
/// `shown`) with `Content-Type: application/json` added to its headers;
/// any 2xx answer is success.
pub(crate) async fn post(request: RequestBuilder, shown: &str) -> Result<(), NotifyError> {
    let request = request.header(CONTENT_TYPE, "application/json");
    let response = request.send().await;
    let response = response.map_err(|e| NotifyError::Transport {
        url: shown.to_owned(),
        reason: error_chain(&e.without_url()),
    })?;
    let status = response.status();
    let retry_after = (response.headers().get(RETRY_AFTER))
        .filter(|_| matches!(status.as_u16(), 429 | 503))
        .and_then(|value| parse_retry_after(value.to_str().ok()?, jiff::Timestamp::now()));
    // Read the (short) body either way so the connection can be reused.
    let body = read_start(response, MAX_ERROR_BODY).await;
    if status.is_success() {
        return Ok(());
    }
    let (url, status) = (shown.to_owned(), status.as_u16());
    let body = String::from_utf8_lossy(&body).trim().to_owned();
    Err(match retry_after {
        Some(retry_after) => NotifyError::Throttled {
            url,
            status,
            body,
            retry_after,
        },
        None => NotifyError::Status { url, status, body },
    })
}

/// A `Retry-After` value: delay seconds, or an HTTP date (as of `now`;
/// one in the past asks for no wait).
fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = jiff::fmt::rfc2822::parse(value).ok()?;
    Some(Duration::try_from(now.duration_until(date.timestamp())).unwrap_or_default())
}

/// The first `limit` bytes of `response`'s body, read chunk by chunk: a
/// large (or endless) body is never held whole, and the rest is left
/// unread (the connection is then closed, not reused). A body that fails
/// midway is kept up to the failure.
async fn read_start(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        let Ok(Some(chunk)) = response.chunk().await else {
            break;
        };
        let take = chunk.len().min(limit - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    body
}

/// `text` as an absolute `http://` or `https://` URL; if it is not one,
/// the error shows it [masked](masked_text).
pub(crate) fn http_url(text: &str) -> Result<Url, NotifyError> {
    let invalid = |reason: String| NotifyError::InvalidUrl {
        url: masked_text(text, true),
        reason,
    };
    // An http(s) URL without a host does not parse.
    let url = Url::parse(text.trim()).map_err(|e| invalid(e.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err(invalid(NOT_HTTP.to_owned())),
    }
}

/// Configures a [`WebhookNotifier`]: see [`WebhookNotifier::builder`].
///
/// Its `Debug` output shows the URL [masked](WebhookNotifier) and header
/// names only.
#[derive(Clone, Default)]
#[must_use]
pub struct WebhookBuilder {
    pub(crate) url: String,
    format: WebhookFormat,
    headers: Vec<(String, String)>,
    pub(crate) generator_url: Option<String>,
    firing_ttl: Option<Duration>,
    name: Option<String>,
    pub(crate) root_certificates: Vec<Vec<u8>>,
    template: Option<serde_json::Value>,
    thresholds: Thresholds,
}

impl std::fmt::Debug for WebhookBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("WebhookBuilder")
            .field("url", &masked_text(&self.url, false))
            .field("format", &self.format)
            .field("headers", &headers)
            .finish_non_exhaustive()
    }
}

impl WebhookBuilder {
    crate::notify::setters! {
        /// Sets what is posted (default [`WebhookFormat::Notification`]).
        format(format: WebhookFormat) => format = format;

        /// Adds a request header (e.g. `Authorization`); checked by
        /// [`build`](Self::build).
        header(name: impl Into<String>, value: impl Into<String>) => push headers((name.into(), value.into()));

        /// Alertmanager format: the `generatorURL` of every alert, the link
        /// Alertmanager shows as the alert's source (e.g. the host's `/metrics`
        /// or dashboard). Omitted when unset.
        generator_url(url: impl Into<String>) => generator_url = Some(url.into());

        /// Alertmanager format: firing alerts carry `endsAt = now + ttl`, so
        /// Alertmanager resolves them by itself if vigil stops re-sending (set
        /// it above the route's `repeat_interval`). Unset, firing alerts carry
        /// no `endsAt` and Alertmanager applies its `resolve_timeout` (5m by
        /// default). At most [`MAX_DURATION`](crate::MAX_DURATION).
        firing_ttl(ttl: Duration) => firing_ttl = Some(ttl);
    }
    super::notifier_setters!("`webhook`, or `alertmanager` in that format");

    /// Posts Alertmanager's `/api/v2/alerts` format
    /// ([`WebhookFormat::Alertmanager`]). The URL is Alertmanager's base
    /// URL (with its `--web.route-prefix`, if any), to which
    /// `/api/v2/alerts` is appended unless it already ends so.
    pub fn alertmanager(self) -> Self {
        self.format(WebhookFormat::Alertmanager)
    }

    /// Posts `template` once per alert ([`WebhookFormat::Template`]), with
    /// the `{{placeholder}}`s in its strings filled in from the alert.
    ///
    /// The template is any JSON value. A string that is exactly one
    /// placeholder becomes the placeholder's value with its JSON type
    /// (`"{{value}}"` becomes `93.5`, an absent value `null`); placeholders
    /// inside longer strings are written as text (absent values as
    /// nothing). Keys and non-string values are posted as written. Spaces
    /// inside the braces are allowed (`{{ alert }}`).
    ///
    /// The placeholders are listed in the [module docs](super#placeholders).
    ///
    /// An unknown placeholder fails [`build`](Self::build) with
    /// [`NotifyError::UnknownPlaceholder`], naming it and its JSON path.
    /// Bodies are built as JSON and then serialized, so label values with
    /// quotes or newlines are escaped. A notification is one request per
    /// alert, in order; if one fails, a retry posts them all again.
    pub fn template(mut self, template: serde_json::Value) -> Self {
        self.template = Some(template);
        self.format(WebhookFormat::Template)
    }

    /// Checks the URL, headers and certificates and builds the notifier.
    /// Needs no runtime; requests run on the runtime of whoever awaits
    /// them.
    pub fn build(self) -> Result<WebhookNotifier, NotifyError> {
        self.checked().map_err(|e| e.in_builder("WebhookBuilder"))
    }

    /// [`build`](Self::build), its errors not yet naming the builder.
    fn checked(self) -> Result<WebhookNotifier, NotifyError> {
        let mut url = http_url(&self.url)?;
        let base = url.path().trim_end_matches('/').to_owned();
        if self.format == WebhookFormat::Alertmanager && !base.ends_with(API_PATH) {
            url.set_path(&format!("{base}{API_PATH}"));
        }
        let headers = header_map(&self.headers)?;
        let client = json_client(&self.root_certificates)?;
        let ttl = self.firing_ttl.and_then(crate::time::too_long);
        // Some(None): the template format without a template.
        let template = (self.format == WebhookFormat::Template).then_some(self.template.as_ref());
        let no_template = (template == Some(None))
            .then(|| "the template format needs a body: set it with `template`".to_owned());
        NotifyError::check([("firing_ttl", ttl), ("template", no_template)])?;
        let template = template.flatten().map(JsonTemplate::compile).transpose()?;
        let name = match self.format {
            WebhookFormat::Alertmanager => "alertmanager",
            _ => "webhook",
        };
        Ok(WebhookNotifier {
            url,
            format: self.format,
            generator_url: self.generator_url,
            firing_ttl: self.firing_ttl,
            name: self.name.unwrap_or_else(|| name.to_owned()),
            headers,
            client,
            template: template.map(Arc::new),
            thresholds: Arc::new(self.thresholds),
        })
    }
}

/// One alert in Alertmanager's `POST /api/v2/alerts` body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: &'a Labels,
    annotations: &'a Labels,
    #[serde(with = "crate::time::rfc3339")]
    starts_at: SystemTime,
    #[serde(
        with = "crate::time::rfc3339_option",
        skip_serializing_if = "Option::is_none"
    )]
    ends_at: Option<SystemTime>,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    generator_url: Option<&'a str>,
}

impl WebhookNotifier {
    /// The Alertmanager body for `notification`, sent at `now`.
    ///
    /// Alertmanager rejects an alert whose `endsAt` precedes its `startsAt`,
    /// and keeps one whose `endsAt` is in the future active, so times are
    /// clamped: `startsAt <= now`, a resolved alert's `startsAt <= endsAt <=
    /// now`, and a firing alert's `endsAt` (its own, else `now + firing_ttl`)
    /// is not before its `startsAt`.
    fn alertmanager_alerts<'a>(
        &'a self,
        notification: &'a Notification,
        now: SystemTime,
    ) -> Vec<PostableAlert<'a>> {
        let alert = |alert: &'a crate::Alert| {
            let starts_at = alert.starts_at.min(now);
            let ends_at = match alert.status {
                AlertStatus::Resolved => Some(alert.ends_at.unwrap_or(now).clamp(starts_at, now)),
                AlertStatus::Firing => (alert.ends_at)
                    .or_else(|| self.firing_ttl.and_then(|ttl| now.checked_add(ttl)))
                    .map(|valid_until| valid_until.max(starts_at)),
            };
            PostableAlert {
                labels: &alert.labels,
                annotations: &alert.annotations,
                starts_at,
                ends_at,
                generator_url: self.generator_url.as_deref(),
            }
        };
        notification.alerts.iter().map(alert).collect()
    }
}

/// `url` without its user name and password (sent as basic
/// authentication) and with its query values masked (`?key=***&token=***`,
/// API keys as Google Chat's webhooks carry them), as errors, logs and
/// metric labels show it.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    // Only URLs that cannot have credentials refuse these.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    masked_text(shown.as_str(), false)
}

#[cfg(test)]
mod tests;
