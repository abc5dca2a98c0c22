//! The in-process notifiers: [`TracingNotifier`] (alerts as structured
//! `tracing` events), [`ChannelNotifier`] (notifications handed to the host
//! through a `tokio::sync::mpsc` channel) and [`FnNotifier`] (an async
//! closure, for one-off integrations that do not deserve a type).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tracing::Level;

use super::{Notifier, NotifyError};
use crate::{DisplayLabels, Notification};

/// Emits one structured [`tracing`] event per alert of a notification.
///
/// Events have target `vigil_alert::notify`, level `WARN` for firing and
/// `INFO` for resolved alerts (see [`with_levels`](Self::with_levels)), the
/// alert's `summary` annotation (or `alert firing` / `alert resolved`) as
/// message, and the fields `receiver`, `group_key`, `alertname`, `status`,
/// `severity`, `value` (when known), `starts_at`, `ends_at` (when resolved;
/// RFC 3339), `labels` and `annotations` (as `{name="value", ...}`).
///
/// ```
/// use vigil_alert::notify::{Notifier, TracingNotifier};
///
/// let notifier = TracingNotifier::new()
///     .with_levels(tracing::Level::ERROR, tracing::Level::INFO);
/// assert_eq!(notifier.name(), "tracing");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TracingNotifier {
    firing: Level,
    resolved: Level,
}

impl TracingNotifier {
    /// Firing alerts at `WARN`, resolved ones at `INFO`.
    pub const fn new() -> Self {
        TracingNotifier {
            firing: Level::WARN,
            resolved: Level::INFO,
        }
    }

    /// Sets the levels of firing and resolved alerts' events.
    #[must_use]
    pub const fn with_levels(mut self, firing: Level, resolved: Level) -> Self {
        self.firing = firing;
        self.resolved = resolved;
        self
    }
}

impl Default for TracingNotifier {
    fn default() -> Self {
        Self::new()
    }
}

/// `tracing::event!` needs its level as a constant: one arm per level.
macro_rules! alert_event {
    ($level:expr, $($fields:tt)*) => {
        match $level {
            Level::ERROR => tracing::event!(target: "vigil_alert::notify", Level::ERROR, $($fields)*),
            Level::WARN => tracing::event!(target: "vigil_alert::notify", Level::WARN, $($fields)*),
            Level::INFO => tracing::event!(target: "vigil_alert::notify", Level::INFO, $($fields)*),
            Level::DEBUG => tracing::event!(target: "vigil_alert::notify", Level::DEBUG, $($fields)*),
            _ => tracing::event!(target: "vigil_alert::notify", Level::TRACE, $($fields)*),
        }
    };
}

#[async_trait]
impl Notifier for TracingNotifier {
    fn name(&self) -> &str {
        "tracing"
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        for alert in &notification.alerts {
            let firing = alert.status == crate::AlertStatus::Firing;
            let level = if firing { self.firing } else { self.resolved };
            let status = if firing { "firing" } else { "resolved" };
            let summary = alert.annotations.get("summary");
            let message = summary.map_or_else(|| format!("alert {status}"), Clone::clone);
            let label = |name, or| alert.labels.get(name).map_or(or, String::as_str);
            let ends_at = alert.ends_at.map(crate::time::format_rfc3339);
            alert_event!(
                level,
                receiver = %notification.receiver,
                group_key = %notification.group_key,
                alertname = label("alertname", &alert.rule),
                status,
                severity = label("severity", alert.severity.as_str()),
                value = alert.value,
                starts_at = %crate::time::format_rfc3339(alert.starts_at),
                ends_at = ends_at.as_deref(),
                labels = %DisplayLabels(&alert.labels),
                annotations = %DisplayLabels(&alert.annotations),
                "{message}"
            );
        }
        Ok(())
    }
}

/// Sends each notification into a bounded [`mpsc`] channel the host reads.
///
/// A full channel makes the attempt wait (until the dispatcher's timeout);
/// a dropped receiver fails it with [`NotifyError::ChannelClosed`], which is
/// not retried.
///
/// ```
/// use vigil_alert::notify::{ChannelNotifier, Notifier};
/// # use vigil_alert::{AlertStatus, Labels, Notification};
/// # let notification = Notification { receiver: "ops".into(), group_key: "{}:{}".into(),
/// #     group_labels: Labels::new(), status: AlertStatus::Firing, alerts: vec![],
/// #     common_labels: Labels::new(), common_annotations: Labels::new() };
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (notifier, mut notifications) = ChannelNotifier::channel(64);
/// notifier.notify(&notification).await?;
/// assert_eq!(notifications.recv().await, Some(notification));
/// # Ok::<(), vigil_alert::notify::NotifyError>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct ChannelNotifier {
    sender: mpsc::Sender<Notification>,
}

impl ChannelNotifier {
    /// Sends into `sender`.
    pub fn new(sender: mpsc::Sender<Notification>) -> Self {
        ChannelNotifier { sender }
    }

    /// A notifier and the receiving end of a new channel holding up to
    /// `capacity` notifications (at least 1).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<Notification>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (ChannelNotifier { sender }, receiver)
    }
}

#[async_trait]
impl Notifier for ChannelNotifier {
    fn name(&self) -> &str {
        "channel"
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        self.sender
            .send(notification.clone())
            .await
            .map_err(|_| NotifyError::ChannelClosed)
    }
}

/// Wraps an async closure as a [`Notifier`]: see [`notifier_fn`].
#[derive(Clone)]
pub struct FnNotifier<F> {
    f: F,
    name: Cow<'static, str>,
}

/// A notifier that calls `f` with (a clone of) each notification.
///
/// The closure's future may output `()` (always succeeds) or
/// `Result<(), E>` for any error type `E` convertible into
/// `Box<dyn Error + Send + Sync>` (a [`NotifyError`] keeps its
/// [retryability](NotifyError::is_retryable); anything else is
/// [`NotifyError::Other`] and retried). Its metrics label is `fn` unless
/// renamed with [`FnNotifier::named`].
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vigil_alert::notify::{notifier_fn, Notifier};
/// # use vigil_alert::{AlertStatus, Labels, Notification};
/// # let notification = Notification { receiver: "ops".into(), group_key: "{}:{}".into(),
/// #     group_labels: Labels::new(), status: AlertStatus::Firing, alerts: vec![],
/// #     common_labels: Labels::new(), common_annotations: Labels::new() };
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let notifier = notifier_fn(move |n| {
///     let log = log.clone();
///     async move { log.lock().unwrap().push(n.group_key) }
/// })
/// .named("audit");
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// notifier.notify(&notification).await?;
/// # Ok::<(), vigil_alert::notify::NotifyError>(())
/// # }).unwrap();
/// assert_eq!(*seen.lock().unwrap(), ["{}:{}"]);
/// assert_eq!(notifier.name(), "audit");
/// ```
pub fn notifier_fn<F, Fut>(f: F) -> FnNotifier<F>
where
    F: Fn(Notification) -> Fut + Send + Sync,
    Fut: Future + Send,
    Fut::Output: IntoNotifyResult,
{
    FnNotifier {
        f,
        name: Cow::Borrowed("fn"),
    }
}

impl<F> FnNotifier<F> {
    super::setters! {
        /// Sets the name used as the metrics' `notifier` label and in logs.
        #[must_use]
        named(name: impl Into<Cow<'static, str>>) => name = name.into();
    }
}

impl<F> fmt::Debug for FnNotifier<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnNotifier")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<F, Fut> Notifier for FnNotifier<F>
where
    F: Fn(Notification) -> Fut + Send + Sync,
    Fut: Future + Send,
    Fut::Output: IntoNotifyResult,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        (self.f)(notification.clone()).await.into_notify_result()
    }
}

/// What a [`notifier_fn`] closure's future may return: `()` or
/// `Result<(), E>`.
pub trait IntoNotifyResult {
    /// Converts into the outcome of one delivery attempt.
    fn into_notify_result(self) -> Result<(), NotifyError>;
}

impl IntoNotifyResult for () {
    fn into_notify_result(self) -> Result<(), NotifyError> {
        Ok(())
    }
}

impl<E> IntoNotifyResult for Result<(), E>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn into_notify_result(self) -> Result<(), NotifyError> {
        self.map_err(|e| match e.into().downcast::<NotifyError>() {
            Ok(notify) => *notify,
            Err(other) => NotifyError::Other(other),
        })
    }
}
