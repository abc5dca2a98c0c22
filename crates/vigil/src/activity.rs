//! Cold-path tracking of every series between upkeep ticks: when it last
//! changed (for idle expiry) and samples over the summary window (for
//! counter rates and gauge min/max/mean). Runs on the upkeep tick and on
//! reads, never on the recording path.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use metrics::Key;
use metrics::atomics::AtomicU64;
use metrics_util::MetricKind;
use quanta::Instant;
use vigil_histogram::Window;

use crate::recorder::Shared;
use crate::storage::{GaugeCell, HistogramSeries};

/// What the registry knows about one series beyond its value.
#[derive(Debug)]
pub(crate) struct Track {
    /// The counter value, gauge bits or histogram count seen last.
    observed: u64,
    changed_at: Instant,
    /// Idle past the timeout but still held by a handle: kept (a handle
    /// may record again) but left out of every read-out until it changes.
    pub(crate) hidden: bool,
    /// (when, value) samples no older than the summary window.
    pub(crate) samples: VecDeque<(Instant, f64)>,
}

/// The time and settings of one upkeep tick.
#[derive(Clone, Copy, Debug)]
struct Tick {
    now: Instant,
    window: Duration,
    idle_timeout: Option<Duration>,
}

/// A series' identity for tracking: its kind and the address of its
/// storage, which the registry keeps for the series' whole life (and the
/// track is removed in the same step that deletes the series). Cheaper on
/// every tick and read than hashing and cloning the `Key`.
type SeriesId = (MetricKind, usize);

fn id<T>(kind: MetricKind, handle: &Arc<T>) -> SeriesId {
    (kind, Arc::as_ptr(handle).cast::<()>() as usize)
}

/// Tracks per series.
#[derive(Debug)]
pub(crate) struct Activity {
    tracks: HashMap<SeriesId, Track>,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            tracks: HashMap::new(),
        }
    }

    /// Whether the series behind `handle` is hidden (idle but held).
    pub(crate) fn is_hidden<T>(&self, kind: MetricKind, handle: &Arc<T>) -> bool {
        self.track(kind, handle).is_some_and(|track| track.hidden)
    }

    /// The track of the series behind `handle`, once a tick has seen it.
    pub(crate) fn track<T>(&self, kind: MetricKind, handle: &Arc<T>) -> Option<&Track> {
        self.tracks.get(&id(kind, handle))
    }

    /// Notes the value of one series at the tick; returns whether the
    /// registry keeps it. A series idle past the timeout that nobody but the
    /// registry holds is dropped (its name goes to `expired`); one still held
    /// is hidden instead.
    #[allow(clippy::too_many_arguments)] // one call per metric kind, all alike
    fn keep<T>(
        &mut self,
        tick: &Tick,
        kind: MetricKind,
        key: &Key,
        handle: &Arc<T>,
        observed: u64,
        sample: f64,
        held_elsewhere: bool,
        expired: &mut Vec<String>,
    ) -> bool {
        let Tick {
            now,
            window,
            idle_timeout,
        } = *tick;
        let track = self
            .tracks
            .entry(id(kind, handle))
            .or_insert_with(|| Track {
                observed,
                changed_at: now,
                hidden: false,
                samples: VecDeque::new(),
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
                .any(|label| label.key() == crate::recorder::OVERFLOW_LABEL);
            if !overflow {
                expired.push(key.name().to_owned());
            }
            false
        }
    }
}

pub(crate) fn gauge_value(gauge: &GaugeCell) -> f64 {
    gauge.value()
}

impl Shared {
    /// One upkeep tick: rotates histogram windows, samples counters and
    /// gauges for rates and window statistics, and expires idle series.
    pub(crate) fn tick(&self) {
        let tick = Tick {
            now: self.settings.clock.now(),
            window: self.settings.window,
            idle_timeout: self.settings.idle_timeout,
        };
        let mut activity = self
            .activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);

        // `retain_*` holds each registry shard's write lock while it decides,
        // so no registration can clone a handle between the "held by nobody
        // else" check and the deletion: a deleted series is one nobody can
        // record into any more, and no recorded value is lost.
        let mut expired = Vec::new();
        self.registry
            .retain_counters(|key, counter: &Arc<AtomicU64>| {
                let value = counter.load(Ordering::Relaxed);
                let held = Arc::strong_count(counter) > 1;
                activity.keep(
                    &tick,
                    MetricKind::Counter,
                    key,
                    counter,
                    value,
                    value as f64,
                    held,
                    &mut expired,
                )
            });
        self.release(MetricKind::Counter, expired.drain(..));

        self.registry.retain_gauges(|key, gauge: &Arc<GaugeCell>| {
            let held = Arc::strong_count(gauge) > 1;
            activity.keep(
                &tick,
                MetricKind::Gauge,
                key,
                gauge,
                gauge.writes(),
                gauge.value(),
                held,
                &mut expired,
            )
        });
        self.release(MetricKind::Gauge, expired.drain(..));

        self.registry
            .retain_histograms(|key, series: &Arc<HistogramSeries>| {
                series.0.upkeep();
                let count = series.0.count();
                let held = Arc::strong_count(series) > 1;
                activity.keep(
                    &tick,
                    MetricKind::Histogram,
                    key,
                    series,
                    count,
                    count as f64,
                    held,
                    &mut expired,
                )
            });
        self.release(MetricKind::Histogram, expired.drain(..));
    }

    /// The window every windowed read-out covers.
    pub(crate) fn window(&self) -> Window {
        Window::Last(self.settings.window)
    }
}
