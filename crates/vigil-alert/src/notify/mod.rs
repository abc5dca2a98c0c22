//! Delivering [`Notification`]s: the [`Notifier`] trait, its built-in
//! implementations, and the [`Dispatcher`] that runs them off the
//! evaluation path.
//!
//! The engine decides *what* to tell *whom*
//! ([`Engine::due_notifications`](crate::Engine::due_notifications));
//! this module owns *how* it gets there. A [`Notifier`] delivers one
//! notification somewhere:
//!
//! | notifier | delivers to |
//! |---|---|
//! | [`TracingNotifier`] | one structured `tracing` event per alert |
//! | [`ChannelNotifier`] | a `tokio::sync::mpsc` channel the host reads |
//! | `WebhookNotifier` (feature `delivery`) | an HTTP(S) `POST` of JSON: the notification, or Alertmanager's `/api/v2/alerts` body |
//! | `WebhookNotifier` with `WebhookBuilder::template` (feature `delivery`) | one `POST` per alert of a JSON body of your own shape, `{{placeholder}}`s filled in |
//! | `SlackNotifier` (feature `delivery`) | a Slack incoming webhook: a headline and one attachment per alert, coloured by severity |
//! | `EmailNotifier` (feature `email`) | a plain-text email over SMTP (STARTTLS, implicit TLS or plain) to several recipients |
//! | [`FnNotifier`] ([`notifier_fn`]) | an async closure |
//!
//! The human-facing notifiers (Slack, email, templates) show each alert's
//! threshold when given the rules (`.rules(engine.rules())` or the rules
//! the engine was built from): an [`Alert`](crate::Alert) carries its
//! value, not the limit it crossed.
//!
//! ```
//! # #[cfg(feature = "delivery")]
//! # {
//! use serde_json::json;
//! use vigil_alert::notify::{Dispatcher, SlackNotifier, WebhookNotifier};
//! # use vigil_alert::{Comparison, Rule, Severity};
//! # let rules = vec![Rule::builder("HighCpu").gauge("system_cpu_usage_ratio")
//! #     .threshold(Severity::Medium, Comparison::Greater, 0.8).build().unwrap()];
//!
//! let slack = SlackNotifier::builder("https://hooks.slack.com/services/T000/B000/XXXX")
//!     .channel("#alerts")
//!     .link("http://tta.internal:8080/status")
//!     .rules(&rules)
//!     .build()?;
//! let tta = WebhookNotifier::builder("http://tta.internal/api/alerts")
//!     .template(json!({
//!         "alert_type": "{{alert}}",
//!         "message": "{{summary}}",
//!         "severity": "{{severity}}",
//!         "timestamp": "{{timestamp}}",
//!         "service": "tta",
//!     }))
//!     .build()?;
//! # #[cfg(feature = "email")]
//! let email = vigil_alert::notify::EmailNotifier::builder("smtp.example.com")
//!     .credentials("alerts@example.com", "app-password")
//!     .from("vigil <alerts@example.com>")
//!     .to("oncall@example.com")
//!     .rules(&rules)
//!     .build()?;
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # let _entered = runtime.enter();
//! let builder = Dispatcher::builder().receiver("oncall", slack).receiver("oncall", tta);
//! # #[cfg(feature = "email")]
//! let builder = builder.receiver("oncall", email);
//! let dispatcher = builder.build()?;
//! # drop(dispatcher);
//! # }
//! # Ok::<(), vigil_alert::notify::NotifyError>(())
//! ```
//!
//! To keep alerts active in a real Alertmanager, send them with the
//! [Alertmanager sender](crate::alertmanager) instead of a notifier: it
//! re-sends every active alert as Prometheus does, where a notification is
//! sent once per group (and repeated only at `repeat_interval`).
//!
//! The [`Dispatcher`] maps receiver names (the routes' `receiver`) to
//! notifiers. Each notifier gets a bounded queue drained by its own task,
//! so [`Dispatcher::dispatch`] never waits: a slow or dead webhook costs a
//! dropped notification, never a late evaluation. Attempts are bounded by a
//! timeout and retried with jittered exponential backoff; a notification that cannot
//! be delivered is dropped, counted and logged.
//!
//! ```
//! use std::time::Duration;
//! use vigil_alert::notify::{ChannelNotifier, Dispatcher, TracingNotifier};
//! # use vigil_alert::{AlertStatus, Notification, Labels};
//! # fn notification() -> Notification {
//! #     Notification { receiver: "oncall".into(), group_key: "{}:{}".into(),
//! #         group_labels: Labels::new(), status: AlertStatus::Firing, alerts: vec![],
//! #         common_labels: Labels::new(), common_annotations: Labels::new() }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), vigil_alert::notify::NotifyError> {
//! let (to_host, mut from_alerts) = ChannelNotifier::channel(16);
//! let dispatcher = Dispatcher::builder()
//!     .receiver("oncall", TracingNotifier::new())
//!     .receiver("oncall", to_host)
//!     .timeout(Duration::from_secs(5))
//!     .build()?;
//!
//! // In the alert loop: `for n in engine.due_notifications(now) { .. }`
//! assert_eq!(dispatcher.dispatch(notification()), 2); // queued for both notifiers
//! assert_eq!(from_alerts.recv().await.unwrap().receiver, "oncall");
//! dispatcher.shutdown().await; // delivers what is still queued
//! # Ok(())
//! # }
//! ```
//!
//! # Placeholders
//! Templated webhook bodies, email subjects and the Slack and email links
//! may hold `{{placeholder}}`s (spaces inside the braces allowed),
//! filled in from an alert (for an email subject, the notification's
//! first one). An unknown placeholder fails the notifier's `build` with
//! [`NotifyError::UnknownPlaceholder`], naming it and where it is.
//!
//! Numbers written into text (`"at {{value}}"`, a subject) show four
//! significant digits (`0.9925`, `0.3`, `1235`); a JSON string that is
//! exactly one placeholder keeps the full number. A link's placeholders
//! are percent-encoded, except one the link starts with, which is written
//! as it is (`{{annotations.runbook_url}}`); an alert whose link is then
//! not an `http(s)` URL is shown without one.
//!
//! | placeholder | value |
//! |---|---|
//! | `alert` | the rule's name |
//! | `status` | `firing` or `resolved` |
//! | `severity` | the severity as the rule spells it (its `severity` label: `warning`, `critical`, ...) |
//! | `value` | the alert's value (number; `null` when the series was absent) |
//! | `threshold` | the fixed threshold crossed, from the rules given to the notifier or a numeric `threshold` annotation (number or `null`; `null` when rules sharing the alert's name and severity disagree) |
//! | `summary`, `description` | those annotations (`null` when absent) |
//! | `timestamp` | when the status began (resolved: `ends_at`, firing: `starts_at`), RFC 3339 UTC |
//! | `starts_at`, `ends_at` | RFC 3339 UTC (`ends_at` is `null` while firing) |
//! | `labels.NAME`, `annotations.NAME` | one label or annotation (`null` when absent) |
//! | `receiver`, `group_key` | the notification's |
//! | `count` | how many alerts the notification holds, firing and resolved (number) |
//! | `firing_count`, `resolved_count` | how many of them fire, how many resolved (numbers) |
//! | `counts` | `firing:1, resolved:2`, `firing:3` or `resolved:2` (what the default email subject starts with) |
//! | `fingerprint` | the alert's [fingerprint](crate::Alert::fingerprint) |
//!
//! # Metrics
//! - `alert_notifications_total{receiver, notifier}` (counter):
//!   notifications delivered.
//! - `alert_notification_failures_total{receiver, notifier, reason}`
//!   (counter): notifications dropped, by `reason`: `queue_full` (the
//!   notifier's queue was full when dispatched), `timeout` (the last attempt
//!   timed out), `error` (the last attempt failed), `unknown_receiver` (no
//!   notifier is registered for the receiver; `notifier="none"`).
//!
//! Each drop is also logged: the first of a burst per (receiver, reason) as
//! a `WARN` event, the rest summed up when the receiver delivers again (and
//! every five minutes while the burst lasts).

mod dispatch;
#[cfg(feature = "email")]
mod email;
mod error;
// Used by the notifiers behind `delivery` and `email`.
#[cfg_attr(not(any(feature = "delivery", feature = "email")), allow(dead_code))]
mod format;
mod in_process;
#[cfg(feature = "delivery")]
mod slack;
// JSON bodies are for webhooks only; email uses text templates.
#[cfg_attr(not(feature = "delivery"), allow(dead_code))]
mod template;
#[cfg(feature = "delivery")]
pub(crate) mod webhook;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::dispatch::{Dispatcher, DispatcherBuilder, describe_metrics};
#[cfg(feature = "email")]
pub use self::email::{DEFAULT_EMAIL_SUBJECT, EmailBuilder, EmailNotifier, SmtpTls};
pub use self::error::NotifyError;
pub use self::in_process::{
    ChannelNotifier, FnNotifier, IntoNotifyResult, TracingNotifier, notifier_fn,
};
#[cfg(feature = "delivery")]
pub use self::slack::{SlackBuilder, SlackNotifier};
#[cfg(feature = "delivery")]
pub use self::webhook::{WebhookBuilder, WebhookFormat, WebhookNotifier};
use crate::Notification;

/// Name of the counter of delivered notifications.
pub const NOTIFICATIONS_TOTAL: &str = "alert_notifications_total";
/// Name of the counter of dropped notifications.
pub const NOTIFICATION_FAILURES_TOTAL: &str = "alert_notification_failures_total";

/// Delivers [`Notification`]s somewhere: a log, a channel, a webhook.
///
/// Object safe, so receivers hold `Arc<dyn Notifier>`. One call is one
/// attempt: retrying, timeouts and queueing belong to the [`Dispatcher`],
/// so `notify` may simply await its I/O (it is cancelled when the attempt
/// times out). Return [`NotifyError`] for a failed attempt; see
/// [`NotifyError::is_retryable`] for which ones are tried again.
///
/// ```
/// use async_trait::async_trait;
/// use vigil_alert::Notification;
/// use vigil_alert::notify::{Notifier, NotifyError};
///
/// /// Prints each alert's summary.
/// struct Stdout;
///
/// #[async_trait]
/// impl Notifier for Stdout {
///     fn name(&self) -> &str {
///         "stdout"
///     }
///
///     async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
///         for alert in &notification.alerts {
///             let summary = alert.annotations.get("summary").map_or("", String::as_str);
///             println!("[{:?}] {}: {summary}", alert.status, alert.rule);
///         }
///         Ok(())
///     }
/// }
///
/// let notifier: std::sync::Arc<dyn Notifier> = std::sync::Arc::new(Stdout);
/// assert_eq!(notifier.name(), "stdout");
/// ```
#[async_trait]
pub trait Notifier: Send + Sync {
    /// A short name for the `notifier` label of the delivery metrics and
    /// for logs (`"webhook"`, `"tracing"`, ...). Defaults to `"custom"`.
    fn name(&self) -> &str {
        "custom"
    }

    /// Makes one attempt to deliver `notification`.
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}

impl std::fmt::Debug for dyn Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A shared notifier is a notifier.
#[async_trait]
impl<N: Notifier + ?Sized> Notifier for Arc<N> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        (**self).notify(notification).await
    }
}

/// Builder methods that each set a field (`name(arg: T) => field = value;`)
/// or add to one through a method of it (`=> push field(value);`,
/// `=> extend field(values);`), documented by the doc comments above them.
macro_rules! setters {
    () => {};
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),+) => $add:ident $($field:ident).+ ($value:expr); $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),+) -> Self {
            self.$($field).+.$add($value);
            self
        }
        $crate::notify::setters!($($rest)*);
    };
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),+) => $($field:ident).+ = $value:expr; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),+) -> Self {
            self.$($field).+ = $value;
            self
        }
        $crate::notify::setters!($($rest)*);
    };
}
pub(crate) use setters;

/// The builder methods every notifier that reaches out (webhook, Slack,
/// email) has, on its fields `name`, `root_certificates` and `thresholds`,
/// or with `$shared`, on those of its [`Shared`](format::Shared) field
/// of that name, which adds `link`. `$default` is its default name as the
/// docs say it.
#[cfg(any(feature = "delivery", feature = "email"))]
macro_rules! notifier_setters {
    ($default:literal $(, $shared:ident)?) => {
        $crate::notify::setters! {
            #[doc = concat!("The name used as the metrics' `notifier` label and in logs (default ", $default, ").")]
            name(name: impl Into<String>) => $($shared.)? name = Some(name.into());

            /// Trusts the certificates in `pem` (PEM-encoded, one or more) as
            /// roots, next to the Mozilla roots: for a receiver (or a proxy in
            /// front of it) with a private CA or a self-signed certificate.
            /// Checked by `build`.
            root_certificate(pem: impl Into<Vec<u8>>) => push $($shared.)? root_certificates(pem.into());

            /// Takes each alert's threshold from these rules (the fixed
            /// threshold of the alert's rule and severity; without one, a
            /// numeric `threshold` annotation): shown beside its value by the
            /// Slack and email notifiers, a template's `{{threshold}}`. Can be
            /// called more than once.
            rules(rules: impl IntoIterator<Item = impl std::borrow::Borrow<$crate::Rule>>) =>
                add $($shared.)? thresholds(rules);

            $(
            /// Links each alert to this URL (Slack: its name; email: a line
            /// listed with it): a dashboard or the host's status page
            /// (`http://host:8080/status`). It may hold
            /// [placeholders](super#placeholders), filled in per alert and
            /// percent-encoded
            /// (`http://grafana/d/checkout?var-function={{labels.function}}`),
            /// except one it starts with, which is written as it is
            /// (`{{annotations.runbook_url}}`); an alert whose link is then
            /// not an `http(s)` URL gets none. A link starting with text must
            /// be an `http://` or `https://` URL, checked by `build`.
            link(url: impl Into<String>) => $shared.link = Some(url.into());
            )?
        }
    };
}
#[cfg(any(feature = "delivery", feature = "email"))]
pub(crate) use notifier_setters;
