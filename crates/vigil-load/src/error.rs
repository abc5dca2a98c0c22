//! [`Error`]: what was wrong with a load test's settings, a KPI or a URL
//! target, and where.

/// Errors of this crate; each names the load test, KPI or URL concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No load was set.
    #[error("load test `{test}`: no load set; call users, stages, rate, rate_stages or step")]
    NoLoad {
        /// The load test's name.
        test: String,
    },
    /// Two settings each define the load.
    #[error("load test `{test}`: `{first}` and `{second}` both set the load; keep one")]
    ConflictingLoad {
        /// The load test's name.
        test: String,
        /// The first setting.
        first: &'static str,
        /// The second setting.
        second: &'static str,
    },
    /// A constant load (`users`, `rate`) without a `duration`.
    #[error("load test `{test}`: `{load}` needs a `duration`")]
    MissingDuration {
        /// The load test's name.
        test: String,
        /// The setting without one.
        load: &'static str,
    },
    /// A setting's value is out of range.
    #[error("load test `{test}`: {setting} = {value} is invalid: {reason}")]
    Invalid {
        /// The load test's name.
        test: String,
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        reason: &'static str,
    },
    /// `LoadTest::run` was called outside a tokio runtime.
    #[error(
        "load test `{test}`: run it inside a tokio runtime (it spawns its virtual users there)"
    )]
    NoRuntime {
        /// The load test's name.
        test: String,
    },
    /// A KPI without a statistic was asked to read one from a report.
    #[error("KPI `{kpi}` names no statistic to read from a report; build it with `Kpi::of`")]
    NoStat {
        /// The KPI's name.
        kpi: String,
    },
    /// A URL target's request could not be built.
    #[cfg(feature = "http")]
    #[error("HTTP target {url}: {source}")]
    Request {
        /// The URL, its password replaced by `***`.
        url: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// A URL target's URL does not parse.
    #[cfg(feature = "http")]
    #[error("HTTP target: invalid URL `{url}`: {reason}")]
    Url {
        /// The URL as given, any user and password replaced by `***`.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A URL target's header name or value is invalid.
    #[cfg(feature = "http")]
    #[error("HTTP target {url}: invalid header `{name}`: {reason}")]
    Header {
        /// The URL, its password replaced by `***`.
        url: String,
        /// The header's name as given.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// A URL target's body is a stream, which cannot be sent more than once.
    #[cfg(feature = "http")]
    #[error(
        "HTTP target {url}: the request body is a stream and cannot be repeated; give bytes or a string"
    )]
    StreamingBody {
        /// The URL, its password replaced by `***`.
        url: String,
    },
}
