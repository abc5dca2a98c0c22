//! [`ChannelNotifier`]: notifications handed to the host through a
//! `tokio::sync::mpsc` channel, for hosts that route alerts themselves.

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{Notifier, NotifyError};
use crate::Notification;

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
