//! [`FnNotifier`]: an async closure as a notifier, for one-off
//! integrations that do not deserve a type.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use async_trait::async_trait;

use super::{Notifier, NotifyError};
use crate::Notification;

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
    /// Sets the name used as the metrics' `notifier` label and in logs.
    #[must_use]
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
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
