//! The crate's one error type: what went wrong, and where.

#[cfg(feature = "serialization")]
use hdrhistogram::serialization::{DeserializeError, V2DeflateSerializeError};

/// Everything that can go wrong in `vigil-histogram`.
///
/// Recording never fails (bad values are counted, see
/// [`Histogram::rejected`](crate::Histogram::rejected)); errors come from
/// configuration, interchange and I/O.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`Config`](crate::Config) field holds a value that cannot be built.
    #[error("invalid histogram config: `{field}` {reason}")]
    InvalidConfig {
        /// The builder method whose value is wrong (`range`, `significant_figures`, ...).
        field: &'static str,
        /// Why it is wrong, with the offending value.
        reason: String,
    },
    #[cfg(feature = "serialization")]
    /// Serializing a histogram to HdrHistogram's V2 compressed format failed.
    #[error("cannot encode histogram as HdrHistogram V2 compressed: {0}")]
    Encode(#[source] V2DeflateSerializeError),
    #[cfg(feature = "serialization")]
    /// The text given to [`Snapshot::from_base64`](crate::Snapshot::from_base64)
    /// is not standard base64.
    #[error("cannot decode HdrHistogram base64 text: {0}")]
    Base64(#[from] base64::DecodeError),
    #[cfg(feature = "serialization")]
    /// The bytes are not a histogram in a format HdrHistogram can read.
    #[error("cannot decode HdrHistogram V2 histogram: {0}")]
    Decode(#[source] DeserializeError),
    /// A decoded histogram's bounds are outside what vigil's layout
    /// supports.
    #[error("unsupported histogram layout: {reason}")]
    Layout {
        /// The bounds and precision found.
        reason: String,
    },
    /// Two snapshots could not be merged.
    #[error("cannot merge snapshots: {reason}")]
    Merge {
        /// Why, with the values involved.
        reason: String,
    },
    #[cfg(feature = "serialization")]
    /// An interval log tag contains a character the log format forbids
    /// (`,`, space, `\r` or `\n`).
    #[error("invalid interval log tag {tag:?}: it must not contain ',', ' ', '\\r' or '\\n'")]
    InvalidTag {
        /// The tag as given.
        tag: String,
    },
    #[cfg(feature = "serialization")]
    /// Writing an interval log failed.
    #[error("cannot write interval log: {0}")]
    Io(#[from] std::io::Error),
}
