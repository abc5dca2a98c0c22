//! `EmailNotifier` against a small SMTP sink on a loopback port (greeting,
//! EHLO, STARTTLS or implicit TLS, AUTH PLAIN, MAIL FROM, RCPT TO, DATA,
//! QUIT): the envelope, the headers and the plain-text body it receives,
//! over plain SMTP and both TLS modes with a certificate the notifier is
//! told to trust (and refused without); a server that refuses the message
//! for good, and one that is not there.

#![cfg(feature = "email")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use support::notification;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use vigil_alert::notify::{EmailBuilder, EmailNotifier, Notifier, NotifyError, SmtpTls};
use vigil_alert::{AlertStatus, Comparison, Notification, Rule, Severity};

/// One SMTP transaction as the sink saw it.
#[derive(Clone, Debug, Default)]
struct Mail {
    /// The `AUTH` command's argument(s), if the client logged in.
    auth: Option<String>,
    /// `MAIL FROM:` address.
    from: String,
    /// `RCPT TO:` addresses.
    to: Vec<String>,
    /// The message (headers and body) with dot-stuffing undone.
    data: String,
}

impl Mail {
    /// The header `name`, unfolded.
    fn header(&self, name: &str) -> String {
        let (head, _) = self.data.split_once("\r\n\r\n").expect("a header block");
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        unfolded
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} header in {head}"))
    }

    fn body(&self) -> String {
        let (_, body) = self.data.split_once("\r\n\r\n").expect("a body");
        body.replace("\r\n", "\n")
    }
}

/// How the sink secures connections.
#[derive(Clone)]
enum SinkTls {
    /// Plain SMTP only.
    None,
    /// Offers `STARTTLS` with this certificate.
    StartTls(TlsAcceptor),
    /// TLS from the first byte.
    Implicit(TlsAcceptor),
}

/// An SMTP server on a free loopback port that accepts every message (or
/// refuses every recipient with `550` when `refuse` is set), recording
/// each transaction.
struct Sink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn start(refuse: bool) -> Sink {
        Sink::with_tls(refuse, SinkTls::None).await
    }

    async fn with_tls(refuse: bool, tls: SinkTls) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let mails = mails.clone();
            async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    tokio::spawn(connection(stream, refuse, tls.clone(), mails.clone()));
                }
            }
        });
        Sink { port, mails, task }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection, upgraded to TLS at once or on `STARTTLS` as the sink
/// is set up; a failed handshake ends it.
async fn connection(tcp: TcpStream, refuse: bool, tls: SinkTls, mails: Arc<Mutex<Vec<Mail>>>) {
    let mails = &mails;
    match tls {
        SinkTls::None => {
            session(BufReader::new(tcp), refuse, false, true, mails).await;
        }
        SinkTls::Implicit(acceptor) => {
            if let Ok(tls) = acceptor.accept(tcp).await {
                session(BufReader::new(tls), refuse, false, true, mails).await;
            }
        }
        SinkTls::StartTls(acceptor) => {
            if let Some(tcp) = session(BufReader::new(tcp), refuse, true, true, mails).await
                && let Ok(tls) = acceptor.accept(tcp.into_inner()).await
            {
                session(BufReader::new(tls), refuse, false, false, mails).await;
            }
        }
    }
}

/// Just enough SMTP for a client to deliver a message: greets (if
/// `greet`), offers `STARTTLS` (if `offer_tls`) and returns the stream
/// when the client asks for it.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: BufReader<S>,
    refuse: bool,
    offer_tls: bool,
    greet: bool,
    mails: &Mutex<Vec<Mail>>,
) -> Option<BufReader<S>> {
    let mut mail = Mail::default();
    if greet {
        stream.write_all(b"220 sink.test ESMTP\r\n").await.ok()?;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            match offer_tls {
                true => b"250-sink.test\r\n250 STARTTLS\r\n",
                false => b"250-sink.test\r\n250 AUTH PLAIN LOGIN\r\n",
            }
        } else if upper == "STARTTLS" && offer_tls {
            stream.write_all(b"220 2.0.0 ready\r\n").await.ok()?;
            return Some(stream);
        } else if let Some(auth) = upper.strip_prefix("AUTH ") {
            mail.auth = Some(line[line.len() - auth.len()..].to_owned());
            b"235 2.7.0 authenticated\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = address(line);
            b"250 2.1.0 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            if refuse {
                b"550 5.1.1 no such mailbox\r\n"
            } else {
                mail.to.push(address(line));
                b"250 2.1.5 ok\r\n"
            }
        } else if upper == "DATA" {
            stream
                .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                .await
                .ok()?;
            let mut data = String::new();
            loop {
                data.clear();
                if stream.read_line(&mut data).await.ok()? == 0 {
                    return None;
                }
                if data == ".\r\n" {
                    break;
                }
                mail.data.push_str(data.strip_prefix('.').unwrap_or(&data));
            }
            // The last CRLF is the terminator's.
            mail.data.truncate(mail.data.len().saturating_sub(2));
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            b"250 2.0.0 queued\r\n"
        } else if upper == "QUIT" {
            let _ = stream.write_all(b"221 2.0.0 bye\r\n").await;
            return None;
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 2.0.0 ok\r\n"
        } else {
            b"502 5.5.2 not implemented\r\n"
        };
        stream.write_all(reply).await.ok()?;
    }
}

/// A TLS acceptor with a self-signed certificate for `127.0.0.1`, and the
/// certificate's PEM for the client to trust.
fn self_signed() -> (TlsAcceptor, String) {
    use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};

    let certificate = rcgen::generate_simple_self_signed(["127.0.0.1".to_owned()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(certificate.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.cert.der().clone()], key)
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), certificate.cert.pem())
}

/// The address between `<` and `>`.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}

/// A firing critical alert and a resolved one, at fixed times.
/// A notifier sending plain SMTP from `alerts@example.com` to
/// `oncall@example.com` through `sink`.
fn plain(sink: &Sink) -> EmailBuilder {
    EmailNotifier::builder("127.0.0.1")
        .port(sink.port)
        .tls(SmtpTls::None)
        .from("alerts@example.com")
        .to("oncall@example.com")
}

fn two_alerts() -> Notification {
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs);
    let mut n = notification("oncall", AlertStatus::Firing);
    n.alerts[0].starts_at = at(0);
    let mut resolved = n.alerts[0].clone();
    resolved.labels.insert("function".into(), "refund".into());
    resolved.annotations.clear();
    resolved.status = AlertStatus::Resolved;
    resolved.ends_at = Some(at(90));
    n.alerts.push(resolved);
    n
}

#[tokio::test]
async fn sends_one_plain_text_email_to_every_recipient() {
    let sink = Sink::start(false).await;
    let rule = Rule::builder("HighErrorRate")
        .gauge("error_ratio")
        .threshold(Severity::Critical, Comparison::Greater, 0.2)
        .build()
        .unwrap();
    let email = EmailNotifier::builder("127.0.0.1")
        .port(sink.port)
        .tls(SmtpTls::None)
        .credentials("alerts", "s3cret")
        .from("vigil <alerts@example.com>")
        .to("oncall@example.com")
        .to("Platform team <platform@example.com>")
        .link("http://checkout.internal/status?function={{labels.function}}")
        .rules([&rule])
        .build()
        .unwrap();
    let sent = two_alerts();

    email.notify(&sent).await.unwrap();

    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    // AUTH PLAIN with "\0alerts\0s3cret" in base64.
    assert_eq!(mail.auth.as_deref(), Some("PLAIN AGFsZXJ0cwBzM2NyZXQ="));
    assert_eq!(mail.from, "alerts@example.com");
    assert_eq!(mail.to, ["oncall@example.com", "platform@example.com"]);
    assert_eq!(mail.header("From"), "vigil <alerts@example.com>");
    assert_eq!(
        mail.header("To"),
        "oncall@example.com, \"Platform team\" <platform@example.com>"
    );
    assert_eq!(
        mail.header("Subject"),
        "[firing:1, resolved:1] HighErrorRate (critical)"
    );
    assert!(mail.header("Content-Type").starts_with("text/plain"));
    let id = mail.header("Message-ID");
    assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
    assert_eq!(
        mail.body(),
        "[FIRING:1, RESOLVED:1] HighErrorRate for oncall\n\
         \n\
         HighErrorRate: firing (critical)\n\
         \x20 Summary:   checkout fails 0.3 of calls\n\
         \x20 Value:     0.3\n\
         \x20 Threshold: > 0.2\n\
         \x20 Labels:    function=checkout\n\
         \x20 Started:   2023-11-14T22:13:20Z\n\
         \x20 Link:      http://checkout.internal/status?function=checkout\n\
         \n\
         HighErrorRate: resolved (critical)\n\
         \x20 Value:     0.3\n\
         \x20 Threshold: > 0.2\n\
         \x20 Labels:    function=refund\n\
         \x20 Started:   2023-11-14T22:13:20Z\n\
         \x20 Resolved:  2023-11-14T22:14:50Z\n\
         \x20 Link:      http://checkout.internal/status?function=refund\n"
    );
}

#[tokio::test]
async fn the_subject_template_is_filled_from_the_first_alert() {
    let sink = Sink::start(false).await;
    let email = plain(&sink)
        .subject("{{severity}}: {{alert}} on {{labels.function}} is {{status}} ({{count}} for {{receiver}})")
        .build()
        .unwrap();

    email.notify(&two_alerts()).await.unwrap();

    let mail = &sink.mails()[0];
    assert_eq!(mail.auth, None, "no credentials, no AUTH");
    assert_eq!(
        mail.header("Subject"),
        "critical: HighErrorRate on checkout is firing (2 for oncall)"
    );
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_smtp_error() {
    let sink = Sink::start(true).await;
    let email = EmailNotifier::builder("127.0.0.1")
        .port(sink.port)
        .tls(SmtpTls::None)
        .from("alerts@example.com")
        .to("nobody@example.com")
        .build()
        .unwrap();

    let err = email.notify(&two_alerts()).await.unwrap_err();

    assert!(
        matches!(&err, NotifyError::Smtp { permanent: true, reason, server }
            if reason.contains("no such mailbox") && *server == format!("127.0.0.1:{}", sink.port)),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(sink.mails().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_error() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    for tls in [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Implicit] {
        let email = EmailNotifier::builder("127.0.0.1")
            .port(port)
            .tls(tls)
            .from("alerts@example.com")
            .to("oncall@example.com")
            .build()
            .unwrap();

        let err = email
            .notify(&notification("oncall", AlertStatus::Firing))
            .await
            .unwrap_err();

        assert!(
            matches!(&err, NotifyError::Smtp { permanent: false, reason, .. } if reason.contains("refused")),
            "{tls:?}: {err}"
        );
        assert!(err.is_retryable(), "{tls:?}");
    }
}

#[tokio::test]
async fn delivers_over_starttls_and_implicit_tls_to_a_trusted_server() {
    for implicit in [false, true] {
        let (acceptor, pem) = self_signed();
        let (sink_tls, tls) = match implicit {
            false => (SinkTls::StartTls(acceptor), SmtpTls::StartTls),
            true => (SinkTls::Implicit(acceptor), SmtpTls::Implicit),
        };
        let sink = Sink::with_tls(false, sink_tls).await;
        let builder = EmailNotifier::builder("127.0.0.1")
            .port(sink.port)
            .tls(tls)
            .credentials("alerts", "s3cret")
            .from("alerts@example.com")
            .to("oncall@example.com");

        // Not among the trusted roots: the handshake fails, nothing is sent.
        let untrusted = builder.clone().build().unwrap();
        let err = untrusted.notify(&two_alerts()).await.unwrap_err();
        assert!(
            matches!(&err, NotifyError::Smtp { reason, .. } if reason.contains("certificate")),
            "{tls:?}: {err}"
        );
        // Trying again would meet the same certificate.
        assert!(!err.is_retryable(), "{tls:?}: {err}");
        assert!(sink.mails().is_empty());

        let trusted = builder.root_certificate(pem).build().unwrap();
        trusted.notify(&two_alerts()).await.unwrap();
        let mails = sink.mails();
        assert_eq!(mails.len(), 1, "{tls:?}");
        assert_eq!(mails[0].to, ["oncall@example.com"]);
        assert_eq!(mails[0].auth.as_deref(), Some("PLAIN AGFsZXJ0cwBzM2NyZXQ="));
        assert_eq!(
            mails[0].header("Subject"),
            "[firing:1, resolved:1] HighErrorRate (critical)"
        );
    }
}

#[tokio::test]
async fn every_email_has_its_own_message_id() {
    let sink = Sink::start(false).await;
    let email = plain(&sink)
        .from("vigil <alerts@alerts.example.org>")
        .build()
        .unwrap();

    email.notify(&two_alerts()).await.unwrap();
    email.notify(&two_alerts()).await.unwrap();

    let ids: Vec<String> = sink
        .mails()
        .iter()
        .map(|m| m.header("Message-ID"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        assert!(
            id.starts_with('<') && id.ends_with("@alerts.example.org>"),
            "{id}"
        );
    }
}

#[tokio::test]
async fn newlines_in_labels_and_names_cannot_forge_lines_of_the_body() {
    let sink = Sink::start(false).await;
    let email = plain(&sink).build().unwrap();
    let mut n = notification("oncall", AlertStatus::Firing);
    let alert = &mut n.alerts[0];
    alert.rule = "Forged\n  Value:     0".into();
    let forged = "checkout\n  Threshold: none\r\n";
    alert.labels.insert("function".into(), forged.into());
    let summary = "all fine\n\nOther: resolved (info)";
    alert.annotations.insert("summary".into(), summary.into());

    email.notify(&n).await.unwrap();

    let body = sink.mails()[0].body();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 8, "{body}");
    assert!(
        lines[2].starts_with("Forged\\n  Value:     0: firing"),
        "{body}"
    );
    assert!(
        lines[3].ends_with("all fine\\n\\nOther: resolved (info)"),
        "{body}"
    );
    assert!(
        body.contains("function=checkout\\n  Threshold: none\\r\\n"),
        "{body}"
    );
}

#[tokio::test]
async fn values_and_thresholds_show_four_significant_digits() {
    let sink = Sink::start(false).await;
    let rule = Rule::builder("HighErrorRate")
        .gauge("error_ratio")
        .threshold(Severity::Critical, Comparison::Greater, 0.1 + 0.2)
        .build()
        .unwrap();
    let email = plain(&sink).rules([&rule]).build().unwrap();
    let mut n = notification("oncall", AlertStatus::Firing);
    n.alerts[0].value = Some(0.9925186920166016);

    email.notify(&n).await.unwrap();

    let body = sink.mails()[0].body();
    assert!(body.contains("  Value:     0.9925\n"), "{body}");
    assert!(body.contains("  Threshold: > 0.3\n"), "{body}");
}

#[test]
fn debug_output_masks_the_link_and_leaves_certificates_out() {
    let (_, pem) = self_signed();
    let builder = EmailNotifier::builder("smtp.example.com")
        .credentials("alerts", "pa55word")
        .from("vigil@example.com")
        .to("ops@example.com")
        .link("http://grafana/d/cpu?auth_token=s3cret")
        .root_certificate(pem.clone());
    let email = builder.clone().build().unwrap();
    let base64 = pem.lines().nth(1).unwrap();
    for debug in [format!("{builder:?}"), format!("{email:?}")] {
        assert!(debug.contains("auth_token=***"), "{debug}");
        for secret in ["s3cret", "pa55word", base64, "45, 45, 45, 45, 45"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
