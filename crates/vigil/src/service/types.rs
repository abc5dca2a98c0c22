//! The serde types the monitor's service methods return: the shapes of the
//! performance API's answers (field names are part of the contract).

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// CPU and memory use over the system history (`Monitor::system_usage`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemUsage {
    /// CPU use of the whole machine.
    pub cpu_usage: Usage,
    /// Memory use of the whole machine (used over total).
    pub memory_usage: Usage,
}

/// One resource's use over the history kept by `system_metrics`, in
/// percent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// The latest reading.
    pub current: f64,
    /// The mean of the readings kept.
    pub average: f64,
    /// The lowest reading kept.
    pub min: f64,
    /// The highest reading kept.
    pub max: f64,
    /// Always `"percent"`.
    pub unit: String,
    /// When the latest reading was taken (RFC 3339 in UTC in JSON).
    #[serde(with = "vigil_service::time::rfc3339")]
    pub timestamp: SystemTime,
}

/// The registered caches' figures (`Monitor::cache_report`): the totals of
/// every cache (serialized inline) and each cache by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheReport {
    /// Every registered cache together.
    #[serde(flatten)]
    pub totals: CacheTotals,
    /// Each registered cache, by the name it was registered under.
    pub caches: BTreeMap<String, CacheTotals>,
}

/// The figures of one cache, or of several together.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheTotals {
    /// Reads that found a live entry.
    pub hits: u64,
    /// Reads that found none.
    pub misses: u64,
    /// `hits` over all reads, in percent (0 without reads).
    pub hit_rate: f64,
    /// The weight held where a weigher gives one (bytes, typically),
    /// else the number of entries.
    pub total_size: u64,
    /// The live entries.
    pub entry_count: u64,
    /// `total_size` over `max_size`, in percent (0 when unbounded).
    pub utilization: f64,
    /// Entries evicted for size or expired.
    pub evictions: u64,
    /// The capacity (weight, or entries without a weigher); `None` when
    /// unbounded (for totals: when any cache is).
    pub max_size: Option<u64>,
    /// Reads of the Redis level (after a local miss) that found a current
    /// entry; present only for a cache with a Redis level (for totals:
    /// when any cache has one), as are the other `l2_` fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_hits: Option<u64>,
    /// Reads of the Redis level that found none (the loader ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_misses: Option<u64>,
    /// `l2_hits` over the Redis level's reads, in percent (0 without reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_hit_rate: Option<f64>,
    /// Failed Redis operations and undecodable values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_errors: Option<u64>,
}

/// The outcome of the readiness checks (`Monitor::readiness`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether every check passed (true without checks).
    pub ready: bool,
    /// Each check, in registration order.
    pub checks: Vec<CheckResult>,
}

/// The outcome of one readiness check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The name it was registered under.
    pub name: String,
    /// Whether it passed within the timeout.
    pub ok: bool,
    /// Its error, or that it timed out.
    pub error: Option<String>,
    /// How long it ran, in seconds.
    pub duration_seconds: f64,
}

/// A firing alert (`Monitor::active_alerts`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    /// The rule's name.
    pub name: String,
    /// The metric the rule's expression reads (the first one, for an
    /// expression over several).
    pub metric_name: String,
    /// The alert's labels.
    pub labels: BTreeMap<String, String>,
    /// The rule's fixed limit for the alert's severity. `None` when that
    /// limit is a baseline (computed from the rule's own history): the
    /// alert engine does not publish the value it computed, so it cannot
    /// be shown; `None` too when the rule has no threshold for that
    /// severity.
    pub threshold: Option<f64>,
    /// The latest value read (`None` when the series is absent).
    pub current_value: Option<f64>,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// The `summary` or `description` annotation, or the rule's name.
    pub message: String,
    /// When it started firing (RFC 3339 in UTC in JSON).
    #[serde(with = "vigil_service::time::rfc3339")]
    pub timestamp: SystemTime,
}

/// One change of state of an alert (`Monitor::alert_history`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The rule's name.
    pub name: String,
    /// The instance's labels.
    pub labels: BTreeMap<String, String>,
    /// The state before (`inactive`, `pending`, `firing`, ...).
    pub from: String,
    /// The state after.
    pub to: String,
    /// `low`, `medium`, `high` or `critical`, if the instance has one.
    pub severity: Option<String>,
    /// The value read then (`None` when absent).
    pub value: Option<f64>,
    /// When it happened (RFC 3339 in UTC in JSON).
    #[serde(with = "vigil_service::time::rfc3339")]
    pub timestamp: SystemTime,
}

/// The bearer token of the performance API. Never printed: `Debug` shows
/// `ApiToken(***)`.
///
/// ```
/// let token = vigil::service::ApiToken::new("s3cret");
/// assert_eq!(format!("{token:?}"), "ApiToken(***)");
/// assert!(token.matches("s3cret"));
/// assert!(!token.matches("s3cre"));
/// ```
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Whether `candidate` is the token, compared in constant time.
    ///
    /// The time depends on the lengths only, not on the bytes: a caller
    /// timing its attempts can learn the token's length (a candidate of
    /// another length is refused sooner), never its content. Use a long
    /// random token (32 bytes or more); its length then tells nothing
    /// useful.
    pub fn matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_bytes().ct_eq(candidate.as_bytes()))
    }

    /// Why no `Authorization: Bearer` header can carry the token, if none
    /// can: it is empty or only whitespace, has whitespace around it
    /// (which the header's value loses), or has a character other than
    /// visible ASCII, space and tab. Never shows the token.
    pub(crate) fn unusable(&self) -> Option<&'static str> {
        let token = self.0.as_str();
        if token.trim().is_empty() {
            Some("the token is empty or only whitespace")
        } else if token.trim() != token {
            Some(
                "the token has whitespace around it (a newline read from a file?), which an \
                 Authorization header cannot carry: trim it",
            )
        } else if !token
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            Some(
                "the token has a character other than visible ASCII, space and tab, which an \
                 Authorization header cannot carry",
            )
        } else {
            None
        }
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}
