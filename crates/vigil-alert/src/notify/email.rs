//! [`EmailNotifier`]: a plain-text email per notification over SMTP
//! (lettre on tokio, TLS by rustls).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::error::error_chain;
use super::format::{self, Thresholds};
use super::template::{Context, TextTemplate};
use super::{Notifier, NotifyError};
use crate::{AlertStatus, Notification};

/// The subject unless [`EmailBuilder::subject`] sets one:
/// `[firing:2] HighErrorRate (critical)`, or with resolved alerts among
/// them `[firing:1, resolved:2] HighErrorRate (critical)` (the first
/// alert's name and severity; firing alerts come first).
pub const DEFAULT_EMAIL_SUBJECT: &str = "[{{counts}}] {{alert}} ({{severity}})";

/// How the connection to the SMTP server is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SmtpTls {
    /// No TLS (port 25 by default): only for a relay on the same host or a
    /// trusted network, since alerts travel in clear. With
    /// [`credentials`](EmailBuilder::credentials) the host must be
    /// loopback (`localhost`, `127.0.0.1`, `::1`), as Go's `smtp.PlainAuth`
    /// (Alertmanager's) insists, else [`build`](EmailBuilder::build)
    /// fails.
    None,
    /// Plain connection upgraded with `STARTTLS`, which the server must
    /// offer (port 587 by default, "submission").
    #[default]
    StartTls,
    /// TLS from the first byte (port 465 by default, "submissions" /
    /// SMTPS).
    Implicit,
}

impl SmtpTls {
    /// The port used unless [`EmailBuilder::port`] sets one: 25, 587 or
    /// 465.
    pub const fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
        }
    }
}

/// Sends each notification as a plain-text email over SMTP.
///
/// One message per notification, to every recipient at once. The subject
/// is a template ([`DEFAULT_EMAIL_SUBJECT`] unless set) whose
/// [placeholders](super#placeholders) are filled in from the first alert
/// (firing alerts come first); the body lists every alert: its name and status, severity, summary, value,
/// threshold, labels, start (and end), and the [`link`](EmailBuilder::link)
/// if set.
///
/// TLS is rustls with the Mozilla roots (and those added with
/// [`root_certificate`](EmailBuilder::root_certificate)). Connecting,
/// greeting and each command time out after 60 s; the
/// [`Dispatcher`](super::Dispatcher) bounds the whole attempt. A failure is
/// a [`NotifyError::Smtp`], retried unless it would fail again (a 5xx
/// reply, or a failed TLS handshake such as an untrusted certificate).
///
/// Each message gets its own `Message-ID` in the sender's domain
/// (`<18c3a5f09b2e7d40.1f3a.0@example.com>`), which threads and
/// de-duplicates it in mail clients and keeps spam filters content.
///
/// ```
/// use vigil_alert::notify::{EmailNotifier, Notifier, SmtpTls};
/// # use vigil_alert::{Comparison, Rule, Severity};
/// # let rules = vec![Rule::builder("HighErrorRate").gauge("error_ratio")
/// #     .threshold(Severity::Critical, Comparison::Greater, 0.2).build().unwrap()];
///
/// let email = EmailNotifier::builder("smtp.example.com")
///     .tls(SmtpTls::StartTls) // the default, on port 587
///     .credentials("alerts@example.com", "app-password")
///     .from("vigil <alerts@example.com>")
///     .to("oncall@example.com")
///     .to("Platform team <platform@example.com>")
///     .subject("[{{severity}}] {{alert}} is {{status}}")
///     .link("http://checkout.internal:8080/status")
///     .rules(&rules)
///     .build()?;
/// assert_eq!(email.name(), "email");
/// assert_eq!(email.server(), "smtp.example.com:587");
/// assert!(!format!("{email:?}").contains("app-password"));
/// # Ok::<(), vigil_alert::notify::NotifyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: TextTemplate,
    link: Option<TextTemplate>,
    thresholds: Arc<Thresholds>,
    name: String,
}

impl EmailNotifier {
    /// Starts configuring a notifier sending through the SMTP server at
    /// `host`.
    pub fn builder(host: impl Into<String>) -> EmailBuilder {
        EmailBuilder {
            host: host.into(),
            ..EmailBuilder::default()
        }
    }

    /// The server, as `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The subject of the email for `notification`.
    pub fn subject(&self, notification: &Notification) -> String {
        let context = Context::new(notification, notification.alerts.first(), &self.thresholds);
        // A header is one line.
        let subject = self.subject.render(&context);
        subject.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The plain-text body of the email for `notification`.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use vigil_alert::{labels, Alert, AlertStatus, Labels, Notification, Severity};
    /// use vigil_alert::notify::EmailNotifier;
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
    /// let email = EmailNotifier::builder("localhost")
    ///     .from("vigil@example.com")
    ///     .to("ops@example.com")
    ///     .build()?;
    /// assert_eq!(email.subject(&notification), "[firing:1] DiskFull (critical)");
    /// let body = email.text(&notification);
    /// assert!(body.contains("DiskFull: firing (critical)\n  Summary:   / is 97% full\n  Value:     0.97\n"));
    /// # Ok::<(), vigil_alert::notify::NotifyError>(())
    /// ```
    pub fn text(&self, notification: &Notification) -> String {
        let mut text = format!("{}\n", format::headline(notification));
        let time = crate::time::format_rfc3339;
        for alert in &notification.alerts {
            let (rule, status) = (
                format::one_line(&alert.rule),
                format::status_word(alert.status),
            );
            let severity = format::one_line(format::severity_word(alert));
            text += &format!("\n{rule}: {status} ({severity})\n");
            let labels: Vec<String> = format::instance_labels(alert)
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let context = Context::new(notification, Some(alert), &self.thresholds);
            let link = (self.link.as_ref()).and_then(|link| link.render_link(&context));
            let ends_at = alert
                .ends_at
                .filter(|_| alert.status == AlertStatus::Resolved);
            let lines = [
                ("Summary:", format::summary(alert).map(str::to_owned)),
                ("Value:", Some(format::value_text(alert.value))),
                ("Threshold:", Some(self.thresholds.text(alert))),
                ("Labels:", (!labels.is_empty()).then(|| labels.join(", "))),
                ("Started:", Some(time(alert.starts_at))),
                ("Resolved:", ends_at.map(time)),
                ("Link:", link),
            ];
            for (name, value) in lines
                .iter()
                .filter_map(|(name, v)| Some((name, v.as_ref()?)))
            {
                text += &format!("  {name:<10} {}\n", format::one_line(value));
            }
        }
        text
    }

    /// The message for `notification`, with a new
    /// [`Message-ID`](message_id).
    fn message(&self, notification: &Notification) -> Result<Message, NotifyError> {
        let message = Message::builder()
            .from(self.from.clone())
            .message_id(Some(message_id(&self.from)))
            .subject(self.subject(notification));
        let message = self
            .to
            .iter()
            .fold(message, |message, to| message.to(to.clone()));
        (message.header(ContentType::TEXT_PLAIN))
            .body(self.text(notification))
            .map_err(|e| NotifyError::Encode {
                reason: e.to_string(),
            })
    }
}

/// A Message-ID (RFC 5322 section 3.6.4) unique to this message,
/// `<time.process.sequence@domain>` in the sender's domain: the time in
/// nanoseconds, the process id and a per-process sequence number, in hex.
/// (lettre's own would end in `@localhost` without its `hostname`
/// feature, which mail filters score as suspicious.)
fn message_id(from: &Mailbox) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let nanos = (SystemTime::now().duration_since(UNIX_EPOCH)).map_or(0, |d| d.as_nanos());
    let domain = from.email.domain();
    format!("<{nanos:x}.{:x}.{sequence:x}@{domain}>", std::process::id())
}

/// Whether an SMTP failure will happen again however often it is tried:
/// a 5xx reply, a message lettre cannot send, a TLS setup error, or a TLS
/// handshake the server failed (an untrusted or invalid certificate,
/// which lettre reports as a connection error: rustls' errors reach it as
/// I/O errors of kind `InvalidData`, which a plain TCP connect never
/// gives).
fn is_permanent(error: &lettre::transport::smtp::Error) -> bool {
    let handshake = || {
        std::iter::successors(std::error::Error::source(error), |e| e.source())
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .any(|e| e.kind() == std::io::ErrorKind::InvalidData)
    };
    error.is_permanent() || error.is_client() || error.is_tls() || handshake()
}

/// Whether `host` is this machine: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let sent = self.transport.send(self.message(notification)?).await;
        sent.map(drop).map_err(|e| NotifyError::Smtp {
            server: self.server.clone(),
            reason: error_chain(&e),
            permanent: is_permanent(&e),
        })
    }
}

/// Configures an [`EmailNotifier`]: see [`EmailNotifier::builder`].
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct EmailBuilder {
    host: String,
    port: Option<u16>,
    tls: SmtpTls,
    /// Kept out of `Debug` output by lettre.
    credentials: Option<Credentials>,
    from: Option<String>,
    to: Vec<String>,
    subject: Option<String>,
    shared: format::Shared,
}

impl EmailBuilder {
    crate::notify::setters! {
        /// The server's port (default: [`SmtpTls::default_port`] of the TLS
        /// mode).
        port(port: u16) => port = Some(port);

        /// How the connection is secured (default [`SmtpTls::StartTls`]).
        tls(tls: SmtpTls) => tls = tls;

        /// Logs in with this user name and password (`AUTH PLAIN` or
        /// `LOGIN`, as the server offers). Kept out of `Debug` output.
        /// Refused by [`build`](Self::build) with [`SmtpTls::None`] unless
        /// the host is loopback: the password would travel in clear.
        credentials(user: impl Into<String>, password: impl Into<String>) =>
            credentials = Some(Credentials::new(user.into(), password.into()));

        /// The sender: an address (`alerts@example.com`) or a mailbox
        /// (`vigil <alerts@example.com>`). Required; checked by
        /// [`build`](Self::build).
        from(mailbox: impl Into<String>) => from = Some(mailbox.into());

        /// Adds a recipient, written as for [`from`](Self::from); at least
        /// one is required.
        to(mailbox: impl Into<String>) => push to(mailbox.into());

        /// The subject template (default [`DEFAULT_EMAIL_SUBJECT`]), its
        /// [placeholders](super#placeholders) filled in from the
        /// notification's first alert; an unknown one fails
        /// [`build`](Self::build).
        subject(template: impl Into<String>) => subject = Some(template.into());
    }
    super::notifier_setters!("`email`", shared);

    /// Checks the addresses, the subject template and the certificates and
    /// builds the notifier. Connects to nothing: the server is first
    /// contacted by a notification.
    pub fn build(self) -> Result<EmailNotifier, NotifyError> {
        self.checked().map_err(|e| e.in_builder("EmailBuilder"))
    }

    /// [`build`](Self::build), its errors not yet naming the builder.
    fn checked(self) -> Result<EmailNotifier, NotifyError> {
        let invalid =
            |field: &'static str, reason: String| NotifyError::InvalidConfig { field, reason };
        let host = self.host.trim();
        let missing = |field, missing: bool, reason: &str| {
            NotifyError::check([(field, missing.then(|| reason.to_owned()))])
        };
        let mailbox = |field: &'static str, text: &str| {
            (text.trim().parse::<Mailbox>()).map_err(|e| invalid(field, format!("{text:?}: {e}")))
        };
        missing("host", host.is_empty(), "no SMTP server given")?;
        missing("from", self.from.is_none(), NO_SENDER)?;
        let from = mailbox("from", self.from.as_deref().unwrap_or_default())?;
        missing("to", self.to.is_empty(), "no recipient: add one with `to`")?;
        let to = (self.to.iter())
            .map(|text| mailbox("to", text))
            .collect::<Result<Vec<_>, _>>()?;
        let subject = self.subject.as_deref().unwrap_or(DEFAULT_EMAIL_SUBJECT);
        let subject = TextTemplate::parse(subject, "subject")?;
        let link = TextTemplate::link(self.shared.link.as_deref())?;
        let port = self.port.unwrap_or(self.tls.default_port());
        let mut transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port);
        if self.tls != SmtpTls::None {
            let mut parameters = TlsParameters::builder(host.to_owned());
            for pem in &self.shared.root_certificates {
                let certificate = Certificate::from_pem(pem)
                    .map_err(|e| invalid("root_certificate", error_chain(&e)))?;
                parameters = parameters.add_root_certificate(certificate);
            }
            let parameters = parameters
                .build_rustls()
                .map_err(|e| invalid("tls", error_chain(&e)))?;
            transport = transport.tls(match self.tls {
                SmtpTls::Implicit => Tls::Wrapper(parameters),
                _ => Tls::Required(parameters),
            });
        }
        let in_clear = self.credentials.is_some() && self.tls == SmtpTls::None;
        let reason = format!("credentials would travel in clear to {host}: {CLEAR_ADVICE}");
        missing("credentials", in_clear && !is_loopback(host), &reason)?;
        if let Some(credentials) = self.credentials {
            transport = transport.credentials(credentials);
        }
        Ok(EmailNotifier {
            transport: transport.build(),
            server: format!("{host}:{port}"),
            from,
            to,
            subject,
            link,
            thresholds: Arc::new(self.shared.thresholds),
            name: self.shared.name.unwrap_or_else(|| "email".to_owned()),
        })
    }
}

/// Why a builder without [`from`](EmailBuilder::from) cannot build.
const NO_SENDER: &str = "no sender: set `from` to the address alerts come from";

/// How to send credentials that may not go in clear.
const CLEAR_ADVICE: &str = "use SmtpTls::StartTls or SmtpTls::Implicit, or a relay on localhost";

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> EmailBuilder {
        EmailNotifier::builder("smtp.example.com")
            .from("vigil@example.com")
            .to("ops@example.com")
    }

    #[test]
    fn ports_follow_the_tls_mode_unless_set() {
        let server = |b: EmailBuilder| b.build().unwrap().server().to_owned();
        assert_eq!(server(builder()), "smtp.example.com:587");
        assert_eq!(server(builder().tls(SmtpTls::None)), "smtp.example.com:25");
        assert_eq!(
            server(builder().tls(SmtpTls::Implicit)),
            "smtp.example.com:465"
        );
        assert_eq!(server(builder().port(2525)), "smtp.example.com:2525");
    }

    #[test]
    fn credentials_in_clear_only_go_to_this_machine() {
        let clear = |host: &str| {
            EmailNotifier::builder(host)
                .from("vigil@example.com")
                .to("ops@example.com")
                .tls(SmtpTls::None)
                .credentials("alerts", "s3cret")
                .build()
        };
        let err = clear("smtp.example.com").unwrap_err();
        assert!(
            matches!(&err, NotifyError::InvalidConfig { field: "credentials", reason }
                if reason.contains("smtp.example.com")),
            "{err}"
        );
        assert!(!err.to_string().contains("s3cret"));
        for host in ["localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"] {
            assert!(clear(host).is_ok(), "{host}");
        }
        let tls = builder().credentials("alerts", "s3cret").build();
        assert!(tls.is_ok());
        assert!(
            builder().tls(SmtpTls::None).build().is_ok(),
            "no credentials"
        );
    }

    #[test]
    fn message_ids_are_unique_and_in_the_senders_domain() {
        let from: Mailbox = "vigil <alerts@example.com>".parse().unwrap();
        let (a, b) = (message_id(&from), message_id(&from));
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
        }
    }

    #[test]
    fn addresses_and_the_subject_are_checked_when_built() {
        let field = |b: EmailBuilder| match b.build() {
            Err(NotifyError::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid setting, got {other:?}"),
        };
        assert_eq!(field(builder().to("not an address")), "to");
        assert_eq!(field(builder().from("@")), "from");
        assert_eq!(field(EmailNotifier::builder("h").to("a@b.c")), "from");
        assert_eq!(field(EmailNotifier::builder("h").from("a@b.c")), "to");
        assert_eq!(field(EmailNotifier::builder(" ").from("a@b.c")), "host");
        let err = builder()
            .subject("{{alert}} {{sevrity}}")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::UnknownPlaceholder { placeholder, path }
                if placeholder == "sevrity" && path == "subject"),
            "{err}"
        );
    }

    #[test]
    fn settings_are_checked_in_order() {
        let bad_from = EmailNotifier::builder("h").from("not an address").build();
        assert!(
            matches!(&bad_from, Err(NotifyError::InvalidConfig { field: "from", reason })
                if reason.contains("not an address")),
            "{bad_from:?}"
        );
        let err = (builder().tls(SmtpTls::None).credentials("alerts", "s3cret"))
            .subject("{{sevrity}}")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, NotifyError::UnknownPlaceholder { placeholder, .. }
                if placeholder == "sevrity"),
            "{err}"
        );
    }
}
