//! [`TracingNotifier`]: alerts as structured `tracing` events, for hosts
//! whose logs are their alert channel (or as a second, local record).

use async_trait::async_trait;
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
            let message = match alert.annotations.get("summary") {
                Some(summary) => summary.as_str(),
                None if firing => "alert firing",
                None => "alert resolved",
            };
            let alertname = alert
                .labels
                .get("alertname")
                .map_or(alert.rule.as_str(), String::as_str);
            let ends_at = alert.ends_at.map(crate::time::format_rfc3339);
            alert_event!(
                level,
                receiver = %notification.receiver,
                group_key = %notification.group_key,
                alertname,
                status = if firing { "firing" } else { "resolved" },
                severity = alert
                    .labels
                    .get("severity")
                    .map_or(alert.severity.as_str(), String::as_str),
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
