//! Silences: mute matching alerts in local routing for a time range, as in Alertmanager.
//!
//! A [`Silence`] holds label matchers and a `[starts_at, ends_at)` range.
//! While active it mutes every alert whose labels (including `alertname`
//! and `severity`) match all its matchers: the alert's instance still
//! changes state and its transitions are recorded (flagged `silenced`), but
//! no notification carries it. Silences are added and expired at runtime
//! through [`Engine::add_silence`](crate::Engine::add_silence) and
//! [`Engine::expire_silence`](crate::Engine::expire_silence).

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{Engine, Error, Matcher, Result};

/// How long expired silences stay listed (Alertmanager keeps 5 days).
pub const DEFAULT_SILENCE_RETENTION: Duration = Duration::from_secs(5 * 24 * 60 * 60);

/// Identifies a silence within one engine (assigned by
/// [`Engine::add_silence`](crate::Engine::add_silence), counting from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SilenceId(pub u64);

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a silence is in its time range (Alertmanager's silence states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Starts in the future.
    Pending,
    /// Mutes matching alerts now.
    Active,
    /// Ended.
    Expired,
}

/// Mutes alerts matching all `matchers` from `starts_at` until `ends_at`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use vigil_alert::{Matcher, Silence, SilenceState};
///
/// let start = UNIX_EPOCH + Duration::from_secs(1_000);
/// let maintenance = Silence::new(start, start + Duration::from_secs(3_600))
///     .matcher(Matcher::equal("service", "db"))
///     .created_by("ops")
///     .comment("planned failover");
/// assert_eq!(maintenance.state(start), SilenceState::Active);
/// ```
#[must_use]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Conditions on the alert's labels, all of which must hold. A silence
    /// without matchers is rejected (it would mute everything).
    pub matchers: Vec<Matcher>,
    /// When it starts muting.
    #[serde(with = "crate::time::rfc3339")]
    pub starts_at: SystemTime,
    /// When it stops muting (exclusive).
    #[serde(with = "crate::time::rfc3339")]
    pub ends_at: SystemTime,
    /// Who created it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl Silence {
    /// A silence from `starts_at` until `ends_at`; add matchers next.
    pub fn new(starts_at: SystemTime, ends_at: SystemTime) -> Self {
        Silence {
            matchers: Vec::new(),
            starts_at,
            ends_at,
            created_by: String::new(),
            comment: String::new(),
        }
    }

    crate::notify::setters! {
        /// Adds a label matcher.
        matcher(matcher: Matcher) => push matchers(matcher);

        /// Records who created it.
        created_by(who: impl Into<String>) => created_by = who.into();

        /// Records why.
        comment(comment: impl Into<String>) => comment = comment.into();
    }

    /// What makes the silence unusable, if anything: the field and why (no
    /// matchers, an end not after the start, or longer than
    /// [`MAX_DURATION`](crate::MAX_DURATION)). The one check of a silence,
    /// for [`Engine::add_silence`](crate::Engine::add_silence) and rule
    /// files alike.
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        if self.matchers.is_empty() {
            return Some(("matchers", "a silence needs at least one matcher".into()));
        }
        let starts = crate::time::format_rfc3339(self.starts_at);
        let reason = match self.ends_at.duration_since(self.starts_at) {
            Ok(length) if length > crate::time::MAX_DURATION => {
                let length = humantime::format_duration(length);
                format!("it lasts {length}, longer than one year, the longest a silence may last")
            }
            Ok(length) if !length.is_zero() => return None,
            _ => format!("must be after starts_at ({starts})"),
        };
        Some(("ends_at", reason))
    }

    /// Pending, active or expired at `now`.
    pub fn state(&self, now: SystemTime) -> SilenceState {
        match now {
            now if now < self.starts_at => SilenceState::Pending,
            now if now < self.ends_at => SilenceState::Active,
            _ => SilenceState::Expired,
        }
    }

    /// Whether it is active at `now`.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.state(now) == SilenceState::Active
    }

    /// Whether it mutes an alert with these labels at `now`; `lookup` gives
    /// a label's value (see [`Matcher::matches_with`]).
    pub fn mutes<'a>(&self, now: SystemTime, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.is_active(now) && self.matchers.iter().all(|m| m.matches_with(&lookup))
    }
}

/// Silences: only with the `routing` feature.
impl Engine {
    /// Adds a silence and returns its id.
    ///
    /// Fails if it has no matchers (it would mute everything), ends
    /// before it starts, or lasts longer than
    /// [`MAX_DURATION`](crate::MAX_DURATION).
    pub fn add_silence(&mut self, silence: Silence) -> Result<SilenceId> {
        if let Some((_, reason)) = silence.problem() {
            return Err(Error::InvalidSilence { reason });
        }
        let local = &mut self.local;
        local.last_silence += 1;
        local
            .silences
            .insert(SilenceId(local.last_silence), silence);
        Ok(SilenceId(local.last_silence))
    }

    /// Ends a silence at `now` (a pending one never starts). Expiring an
    /// expired silence changes nothing.
    pub fn expire_silence(&mut self, id: SilenceId, now: SystemTime) -> Result<()> {
        let silence = self.local.silences.get_mut(&id);
        let silence = silence.ok_or(Error::UnknownSilence { id })?;
        // An expired one keeps its range; an active one ends now; a
        // pending one starts and ends now.
        silence.ends_at = silence.ends_at.min(now);
        silence.starts_at = silence.starts_at.min(silence.ends_at);
        Ok(())
    }

    /// A silence by id.
    pub fn silence(&self, id: SilenceId) -> Option<&Silence> {
        self.local.silences.get(&id)
    }

    /// All silences (pending, active, and expired within the retention), by id.
    pub fn silences(&self) -> impl Iterator<Item = (SilenceId, &Silence)> {
        self.local.silences.iter().map(|(id, s)| (*id, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn state_follows_the_time_range() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        let s = Silence::new(t(10), t(20)).matcher(Matcher::equal("a", "b"));
        assert_eq!(s.state(t(9)), SilenceState::Pending);
        assert_eq!(s.state(t(10)), SilenceState::Active);
        assert_eq!(s.state(t(19)), SilenceState::Active);
        assert_eq!(s.state(t(20)), SilenceState::Expired);
        let l = labels([("a", "b")]);
        assert!(s.mutes(t(15), |n| l.get(n).map(String::as_str)));
        assert!(!s.mutes(t(25), |n| l.get(n).map(String::as_str)));
    }

    #[test]
    fn serde_uses_alertmanager_names() {
        let t = UNIX_EPOCH + Duration::from_secs(60);
        let s = Silence::new(t, t + Duration::from_secs(60))
            .matcher(Matcher::equal("alertname", "X"))
            .created_by("me");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"matchers":["alertname=\"X\""],"starts_at":"1970-01-01T00:01:00Z","ends_at":"1970-01-01T00:02:00Z","created_by":"me"}"#
        );
        assert_eq!(serde_json::from_str::<Silence>(&json).unwrap(), s);
    }
}
