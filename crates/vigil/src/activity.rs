//! Cold-path tracking of every series between upkeep ticks: when it last
//! changed (for idle expiry) and samples over the summary window (for
//! counter rates and gauge min/max/mean). Runs on the upkeep tick and on
//! reads, never on the recording path.
//!
//! A counter counts from 0 at its registration: the tick that first sees
//! a counter series gives it a sample of 0 at the earliest time it can have
//! been registered, the previous tick (which had not seen it), or the start
//! of the window if that is later. So the increase a young series made
//! before its first tick (a burst in its first second) is part of its rate,
//! in the JSON summary and for the alert rules, instead of being taken as
//! its starting value.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use metrics::Key;
use metrics_util::MetricKind;
use quanta::Instant;

use metrics_util::registry::Generation;

/// What the registry knows about one series beyond its value.
#[derive(Debug)]
pub(crate) struct Track {
    /// The counter value, gauge write count or histogram count seen last.
    observed: Observed,
    changed_at: Instant,
    /// Idle past the timeout but still held by a handle: kept (a handle
    /// may record again) but left out of every read-out until it changes.
    pub(crate) hidden: bool,
    /// (when, value) samples no older than the summary window; for a
    /// counter, starting with (its registration, 0) while that is inside
    /// the window.
    pub(crate) samples: VecDeque<(Instant, f64)>,
    /// When the series was registered, as far as the ticks tell: the
    /// previous tick, which had not seen it (or the tick that first saw
    /// it, if there was none before), no earlier than the window's start.
    #[cfg_attr(not(feature = "alerts"), allow(dead_code))] // read by the alert source
    pub(crate) registered_at: Instant,
}

/// What tells that a series changed between two ticks: a counter's value,
/// a histogram's count (both only grow, but for `absolute`), a gauge's
/// write count (its value may be set to what it was).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// A counter's value or a histogram's count.
    Count(u64),
    /// A gauge's writes.
    Writes(Generation),
}

/// The time and settings of one upkeep tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tick {
    pub(crate) now: Instant,
    /// When the tick before this one ran, if one did.
    pub(crate) previous: Option<Instant>,
    pub(crate) window: Duration,
    pub(crate) idle_timeout: Option<Duration>,
}

/// A series' identity for tracking: its kind and the address of its
/// storage, which the registry keeps for the series' whole life (and the
/// track is removed in the same step that deletes the series). Cheaper on
/// every tick and read than hashing and cloning the `Key`.
type SeriesId = (MetricKind, usize);

fn id<T>(kind: MetricKind, handle: &Arc<T>) -> SeriesId {
    (kind, Arc::as_ptr(handle).cast::<()>() as usize)
}

/// Hashes a [`SeriesId`] with a multiply and a rotation per word instead
/// of SipHash: the addresses are the registry's own, not chosen by a
/// client, and every read of the registry looks each series up.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // splitmix64's finalizer: the table indexes by the low bits, which
        // the multiplications alone leave as aligned as the addresses.
        let mut hash = self.0;
        hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        hash ^ (hash >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn write_isize(&mut self, word: isize) {
        self.write_u64(word as u64);
    }
}

/// Builds [`IdHasher`]s.
type IdHash = std::hash::BuildHasherDefault<IdHasher>;

/// The shortest time a counter rate is taken over: a series read in the
/// instant it was registered (or less than this after) reports its increase
/// per this much time, never a division by zero or by a few microseconds.
/// The default upkeep interval, the resolution of the samples.
pub(crate) const RATE_RESOLUTION: Duration = Duration::from_secs(1);

/// Tracks per series.
#[derive(Debug)]
pub(crate) struct Activity {
    tracks: HashMap<SeriesId, Track, IdHash>,
    /// When the previous tick ran.
    pub(crate) last_tick: Option<Instant>,
}

impl Activity {
    /// Tracks for a registry created at `started`: no series is older,
    /// so the first tick places the series it finds after it, as if it
    /// were a tick that saw none.
    pub(crate) fn new(started: Instant) -> Self {
        Self {
            tracks: HashMap::default(),
            last_tick: Some(started),
        }
    }

    /// Whether the series behind `handle` is hidden (idle but held).
    pub(crate) fn is_hidden<T>(&self, kind: MetricKind, handle: &Arc<T>) -> bool {
        self.track(kind, handle).is_some_and(|track| track.hidden)
    }

    /// The track of the series behind `handle` once a tick has seen it,
    /// unless the series is hidden.
    pub(crate) fn visible<T>(&self, kind: MetricKind, handle: &Arc<T>) -> Option<&Track> {
        self.track(kind, handle).filter(|track| !track.hidden)
    }

    /// The track of the series behind `handle`, once a tick has seen it.
    pub(crate) fn track<T>(&self, kind: MetricKind, handle: &Arc<T>) -> Option<&Track> {
        self.tracks.get(&id(kind, handle))
    }

    /// How long before `now` the series behind `handle` was registered
    /// at 0, as far as the ticks tell ([`Track::registered_at`]); for a
    /// series registered since the last tick, the time since that tick.
    /// The alert source hands this to the rules' engine, which counts a
    /// young counter's rate from its registration, as the summary does.
    #[cfg(feature = "alerts")]
    pub(crate) fn registered_age<T>(
        &self,
        kind: MetricKind,
        handle: &Arc<T>,
        now: Instant,
    ) -> Duration {
        let since = self
            .track(kind, handle)
            .map(|track| track.registered_at)
            .or(self.last_tick)
            .unwrap_or(now);
        now.saturating_duration_since(since)
    }

    /// Notes the value of one series at the tick; returns whether the
    /// registry keeps it. A series idle past the timeout that nobody but the
    /// registry holds is dropped (its name goes to `expired`); one still held
    /// is hidden instead.
    #[allow(clippy::too_many_arguments)] // one call per metric kind, all alike
    pub(crate) fn keep<T>(
        &mut self,
        tick: &Tick,
        kind: MetricKind,
        key: &Key,
        handle: &Arc<T>,
        observed: Observed,
        sample: f64,
        held_elsewhere: bool,
        expired: &mut Vec<String>,
    ) -> bool {
        let Tick {
            now,
            window,
            idle_timeout,
            ..
        } = *tick;
        let track = self.tracks.entry(id(kind, handle)).or_insert_with(|| {
            // Registered after the previous tick (which had not seen it) and
            // at or before this one; no earlier than the window's start.
            let registered_at = tick.previous.map_or(now, |previous| {
                now - window.min(now.saturating_duration_since(previous))
            });
            // This tick's sample, and a counter's registration at 0.
            let mut samples = VecDeque::with_capacity(2);
            if kind == MetricKind::Counter {
                samples.push_back((registered_at, 0.0));
            }
            Track {
                observed,
                changed_at: now,
                hidden: false,
                samples,
                registered_at,
            }
        });
        if track.observed != observed {
            track.observed = observed;
            track.changed_at = now;
            track.hidden = false;
        }
        track.samples.push_back((now, sample));
        while track
            .samples
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > window)
        {
            track.samples.pop_front();
        }
        let Some(timeout) = idle_timeout else {
            return true;
        };
        if now.saturating_duration_since(track.changed_at) < timeout {
            return true;
        }
        if held_elsewhere {
            track.hidden = true;
            true
        } else {
            self.tracks.remove(&id(kind, handle));
            // The overflow series never took a slot under the limit.
            let overflow = key
                .labels()
                .any(|label| label.key() == crate::registry::OVERFLOW_LABEL);
            if !overflow {
                expired.push(key.name().to_owned());
            }
            false
        }
    }
}

impl Track {
    /// A counter's increase per second over the window at `now`, its total
    /// being `total`: from the oldest sample in the window, which is its
    /// registration at 0 while that is inside the window (so a series
    /// registered at `t0` that reached `N` at `t` has rate `N / (t - t0)`).
    /// The elapsed time is taken as at least [`RATE_RESOLUTION`] (or the
    /// window, if shorter): a series read in its first second reports its
    /// increase per second, never a division by zero.
    pub(crate) fn rate(&self, total: f64, now: Instant, window: Duration) -> f64 {
        let Some(&(at, first)) = self.samples.front() else {
            return 0.0;
        };
        let elapsed = now
            .saturating_duration_since(at)
            .max(RATE_RESOLUTION.min(window));
        (total - first) / elapsed.as_secs_f64()
    }
}
