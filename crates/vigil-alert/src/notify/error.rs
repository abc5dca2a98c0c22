//! [`NotifyError`]: why a notifier could not be built or an attempt to
//! deliver failed.

use std::time::Duration;

/// Why a notifier or dispatcher could not be built, or why one attempt to
/// deliver a notification failed.
///
/// Delivery errors say whether trying again can help
/// ([`is_retryable`](NotifyError::is_retryable)); the [`Dispatcher`](super::Dispatcher)
/// retries only those.
///
/// ```
/// use vigil_alert::notify::NotifyError;
///
/// let rejected = NotifyError::Status {
///     url: "http://alertmanager:9093/api/v2/alerts".into(),
///     status: 400,
///     body: "start time must be before end time".into(),
/// };
/// assert!(!rejected.is_retryable()); // the same body would be rejected again
/// assert!(NotifyError::other("connection reset").is_retryable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A webhook URL cannot be used.
    #[error("invalid webhook URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, masked as it may hold secrets: user info and
        /// query values as `***`, and the last path segment (a Slack
        /// webhook's secret) as `***`.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A builder setting is out of range or invalid (e.g. a
    /// [`DispatcherBuilder`](super::DispatcherBuilder) timeout, or a
    /// webhook header that is not valid HTTP).
    #[error("invalid setting `{field}`: {reason}")]
    InvalidConfig {
        /// The builder method whose value is wrong.
        field: &'static str,
        /// Why, with the value given, ending with the builder it was
        /// given to (`(SlackBuilder)`).
        reason: String,
    },
    /// A template (a templated webhook's body, an email subject) uses a
    /// placeholder that does not exist.
    #[error(
        "unknown placeholder `{{{{{placeholder}}}}}` at {path} (known: {known})",
        known = super::template::KNOWN
    )]
    UnknownPlaceholder {
        /// The name between the braces, as written.
        placeholder: String,
        /// Where it is: a JSON path (`$.details.message`) in a body
        /// template, or the builder setting (`subject`).
        path: String,
    },
    /// [`DispatcherBuilder::build`](super::DispatcherBuilder::build) was
    /// called outside a tokio runtime, so it has nowhere to run its tasks.
    #[error(
        "the notification dispatcher needs a tokio runtime: build it inside one (e.g. under `Handle::enter`)"
    )]
    NoRuntime,
    /// The notification could not be encoded (e.g. a time outside what
    /// RFC 3339 can write).
    #[error("cannot encode the notification: {reason}")]
    Encode {
        /// What could not be encoded.
        reason: String,
    },
    /// The webhook answered with a non-2xx status.
    #[error("webhook {url} answered {status}: {body}")]
    Status {
        /// Where the request went.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body (at most 512 bytes), for the log.
        body: String,
    },
    /// The webhook answered `429 Too Many Requests` or `503 Service
    /// Unavailable` with a `Retry-After`: the
    /// [`Dispatcher`](super::Dispatcher) waits at least that long (at most
    /// its `max_backoff`) before trying again.
    #[error("webhook {url} answered {status}, asking to retry after {retry_after:?}: {body}")]
    Throttled {
        /// Where the request went.
        url: String,
        /// The HTTP status code (429 or 503).
        status: u16,
        /// The start of the response body (at most 512 bytes), for the log.
        body: String,
        /// The wait the `Retry-After` header asks for (seconds, or until
        /// its HTTP date).
        retry_after: Duration,
    },
    /// The request did not get a response: connection refused or reset,
    /// DNS failure, malformed response.
    #[error("webhook {url} unreachable: {reason}")]
    Transport {
        /// Where the request went.
        url: String,
        /// The error and its causes, outermost first.
        reason: String,
    },
    /// The SMTP server could not be reached, or refused the message.
    #[error("SMTP server {server}: {reason}")]
    Smtp {
        /// `host:port`.
        server: String,
        /// The error and its causes, outermost first (with the server's
        /// reply, if it sent one).
        reason: String,
        /// Whether the server refused for good (a 5xx reply, an address
        /// lettre cannot send to, or a failed TLS setup or handshake such
        /// as an untrusted certificate): sending the same message again
        /// would fail again.
        permanent: bool,
    },
    /// The attempt did not finish within the dispatcher's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The channel's receiver was dropped: nobody reads notifications any
    /// more.
    #[error("the notification channel is closed")]
    ChannelClosed,
    /// Any other failure, e.g. from a closure notifier.
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl NotifyError {
    /// Wraps any error (or message) as [`NotifyError::Other`].
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        NotifyError::Other(error.into())
    }

    /// This error, if an [`InvalidConfig`](NotifyError::InvalidConfig),
    /// saying which builder the setting was given to.
    pub(crate) fn in_builder(self, builder: &str) -> Self {
        match self {
            NotifyError::InvalidConfig { field, reason } => NotifyError::InvalidConfig {
                field,
                reason: format!("{reason} ({builder})"),
            },
            other => other,
        }
    }

    /// The first failed check of a builder's settings, as
    /// [`NotifyError::InvalidConfig`]: each is a field and, if its value is
    /// out of range, why.
    pub(crate) fn check(
        checks: impl IntoIterator<Item = (&'static str, Option<String>)>,
    ) -> Result<(), Self> {
        match checks.into_iter().find_map(|(field, e)| Some((field, e?))) {
            Some((field, reason)) => Err(NotifyError::InvalidConfig { field, reason }),
            None => Ok(()),
        }
    }

    /// How long the receiver asked to wait before the next attempt (its
    /// `Retry-After`), if it did.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil_alert::notify::NotifyError;
    ///
    /// let throttled = NotifyError::Throttled {
    ///     url: "http://chat/hook".into(),
    ///     status: 429,
    ///     body: String::new(),
    ///     retry_after: Duration::from_secs(30),
    /// };
    /// assert_eq!(throttled.retry_after(), Some(Duration::from_secs(30)));
    /// assert!(throttled.is_retryable());
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            NotifyError::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether trying the same notification again may succeed.
    ///
    /// False for configuration errors, encoding errors, a closed channel,
    /// HTTP answers other than 5xx, `408 Request Timeout` and
    /// `429 Too Many Requests` (a redirect, which is not followed, or a
    /// 4xx), and permanent SMTP failures; true otherwise.
    pub fn is_retryable(&self) -> bool {
        match self {
            NotifyError::Status { status, .. } => matches!(status, 408 | 429 | 500..),
            NotifyError::Smtp { permanent, .. } => !permanent,
            NotifyError::Transport { .. }
            | NotifyError::Throttled { .. }
            | NotifyError::Timeout(_)
            | NotifyError::Other(_) => true,
            _ => false,
        }
    }
}

/// An error and its sources, outermost first: the outer messages are
/// terse (`error sending request`); the causes say what happened.
#[cfg(any(feature = "delivery", feature = "email"))]
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    for cause in std::iter::successors(error.source(), |e| e.source()) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> NotifyError {
        NotifyError::Status {
            url: "http://x/".into(),
            status,
            body: String::new(),
        }
    }

    #[test]
    fn client_errors_and_redirects_are_final_except_timeouts_and_throttling() {
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(status(408).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(404).is_retryable());
        // Redirects are not followed: the same request would get the same.
        assert!(!status(301).is_retryable());
        assert!(!status(308).is_retryable());
        assert!(!NotifyError::ChannelClosed.is_retryable());
        assert!(NotifyError::Timeout(Duration::from_secs(1)).is_retryable());
    }
}
