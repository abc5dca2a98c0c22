//! Errors of the facade.

use std::fmt;

/// What went wrong while building or installing a [`Monitor`](crate::Monitor).
///
/// `Debug` prints the same one-line message as `Display`, so an error
/// returned from `main` (which Rust prints with `{:?}` after `Error: `)
/// reads as a message, not as a struct:
///
/// ```
/// let err = vigil::Monitor::builder()
///     .max_series_per_metric(0)
///     .build()
///     .unwrap_err();
/// assert_eq!(
///     format!("Error: {err:?}"), // what `fn main() -> Result<(), vigil::Error>` prints
///     "Error: invalid setting `max_series_per_metric`: must be at least 1"
/// );
/// assert_eq!(format!("{err:?}"), err.to_string());
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A histogram configuration given to the builder is invalid.
    #[error("invalid histogram configuration for {metrics}: {source}")]
    Histogram {
        /// Which metrics the configuration was for.
        metrics: String,
        /// What the histogram crate rejected.
        #[source]
        source: vigil_histogram::Error,
    },
    /// A builder setting is out of range.
    #[error("invalid setting `{setting}`: {reason}")]
    Setting {
        /// The builder method.
        setting: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// The listen address or an allowed address does not parse.
    #[error("invalid address `{address}` for `{setting}`: {reason}")]
    Address {
        /// The builder method.
        setting: &'static str,
        /// The address as given.
        address: String,
        /// The parser's message.
        reason: String,
    },
    /// The HTTP listener could not bind or start.
    #[error("cannot serve /metrics on {address}: {source}")]
    Listen {
        /// The address it tried.
        address: std::net::SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// vigil could not start the thread or the tokio runtime that runs its
    /// listener and alert loop.
    #[error("cannot start vigil's background thread: {source}")]
    Runtime {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `build_tasks` was called outside a tokio runtime: the listener's
    /// socket and the alert delivery tasks register with the runtime the
    /// tasks will run on.
    #[error(
        "`build_tasks` must be called inside the tokio runtime that will run the tasks; use `build` to run them on vigil's own thread"
    )]
    NoRuntime,
    /// Another `metrics` recorder is already installed globally; use
    /// [`MonitorBuilder::build`](crate::MonitorBuilder::build) and layer it,
    /// or install vigil first.
    #[error("a global metrics recorder is already installed")]
    AlreadyInstalled,

    /// The alert routing (routes, the default receiver or escalations)
    /// names receivers that no [`notifier`](crate::MonitorBuilder::notifier)
    /// serves.
    #[error(
        "the alert routing names receivers without a notifier: {}; notifiers are registered for: {}. \
         Add `notifier(receiver, ..)` for each, or send the alerts only to Alertmanager with `alertmanager(url)`",
        names(unknown),
        if known.is_empty() { "none".to_owned() } else { names(known) }
    )]
    UnknownReceivers {
        /// Receivers named by the routing that have no notifier.
        unknown: Vec<String>,
        /// Receivers that have notifiers.
        known: Vec<String>,
    },
    /// A cache named in a request (such as `Monitor::clear_caches`) is not
    /// registered with `MonitorBuilder::cache`.
    #[error(
        "no cache is registered as {name:?}; registered caches: {}",
        if known.is_empty() { "none".to_owned() } else { names(known) }
    )]
    UnknownCache {
        /// The name asked for.
        name: String,
        /// The names registered.
        known: Vec<String>,
    },
}

fn names(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Debug for Error {
    /// The `Display` message, as `anyhow` prints errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
