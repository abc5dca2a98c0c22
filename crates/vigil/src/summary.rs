//! The JSON read-out of the registry for a host's HTTP API: every series
//! with its labels, counters with totals and rates, gauges with window
//! statistics, histograms as [`Summary`]s. Field names are part of the
//! public contract (see `docs/metrics.md`). Non-finite numbers (a gauge
//! set to NaN, say) are written `"NaN"`, `"+Inf"` and `"-Inf"`, so every
//! summary reads back ([`vigil_histogram::non_finite`]).

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use metrics::Key;
use metrics_util::MetricKind;
use serde::{Deserialize, Serialize};
use vigil_histogram::{Rejection, Summary, Window};

use crate::registry::Shared;
use crate::storage::Reader;

/// Labels of one series, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// Every series in the registry at one moment.
///
/// ```
/// let monitor = vigil::Monitor::builder().build()?;
/// vigil::with_local_recorder(&monitor.recorder(), || {
///     vigil::metrics::counter!("requests_total", "route" => "/").increment(2);
///     vigil::metrics::histogram!("request_seconds").record(0.25);
/// });
/// let summary = monitor.summary();
/// assert_eq!(summary.counters[0].total, 2);
/// assert_eq!(summary.histograms[0].window.count, 1);
/// let json = serde_json::to_string(&summary).unwrap();
/// assert!(json.contains(r#""route":"/""#));
/// let back: vigil::MetricsSummary = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.counters, summary.counters);
/// # Ok::<(), vigil::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSummary {
    /// The length of the window that rates, gauge statistics and histogram
    /// `window` summaries cover, in seconds.
    #[serde(with = "vigil_histogram::non_finite")]
    pub window_seconds: f64,
    /// Labels added to every series in the Prometheus exposition.
    pub global_labels: Labels,
    /// Counters, sorted by name then labels.
    pub counters: Vec<CounterSummary>,
    /// Gauges, sorted by name then labels.
    pub gauges: Vec<GaugeSummary>,
    /// Histograms, sorted by name then labels.
    pub histograms: Vec<HistogramSummary>,
}

/// One counter series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CounterSummary {
    /// The metric name.
    pub name: String,
    /// The series' labels.
    pub labels: Labels,
    /// The total since the series was created.
    pub total: u64,
    /// Increase per second over the window. A series younger than the
    /// window counts from 0 at its registration (`total / elapsed` since
    /// then), with the elapsed time taken as at least one second: a burst
    /// of `n` in a series' first second reads as `n` per second.
    #[serde(with = "vigil_histogram::non_finite")]
    pub rate: f64,
}

/// One gauge series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaugeSummary {
    /// The metric name.
    pub name: String,
    /// The series' labels.
    pub labels: Labels,
    /// The current value.
    #[serde(with = "vigil_histogram::non_finite")]
    pub value: f64,
    /// The lowest value sampled over the window (samples are taken at each
    /// upkeep tick and at each read).
    #[serde(with = "vigil_histogram::non_finite")]
    pub min: f64,
    /// The highest value sampled over the window.
    #[serde(with = "vigil_histogram::non_finite")]
    pub max: f64,
    /// The mean of the values sampled over the window.
    #[serde(with = "vigil_histogram::non_finite")]
    pub mean: f64,
}

/// One histogram series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramSummary {
    /// The metric name.
    pub name: String,
    /// The series' labels.
    pub labels: Labels,
    /// The values recorded over the window.
    pub window: Summary,
    /// Every value recorded since the series was created.
    pub total: Summary,
    /// Values this series did not record as given, since it was created,
    /// by reason ([`Rejection::as_str`]: `nan`, `positive_infinity`,
    /// `negative_infinity`, `negative`, `clamped`); reasons with none are
    /// left out, and so is the field when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected: BTreeMap<String, u64>,
}

/// The labels of a recorded key.
pub(crate) fn labels_of(key: &Key) -> Labels {
    key.labels()
        .map(|label| (label.key().to_owned(), label.value().to_owned()))
        .collect()
}

/// Every visible series of `shared`, after an upkeep tick.
pub(crate) fn of(shared: &Shared) -> MetricsSummary {
    shared.tick();
    let activity = shared
        .activity
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let now = shared.settings.clock.now();

    let mut counters = Vec::new();
    shared.registry.visit_counters(|key, counter| {
        let Some(track) = activity.visible(MetricKind::Counter, counter) else {
            return;
        };
        let total = counter.load(Ordering::Relaxed);
        let rate = track.rate(total as f64, now, shared.settings.window);
        counters.push(CounterSummary {
            name: key.name().to_owned(),
            labels: labels_of(key),
            total,
            rate,
        });
    });

    let mut gauges = Vec::new();
    shared.registry.visit_gauges(|key, gauge| {
        let Some(track) = activity.visible(MetricKind::Gauge, gauge) else {
            return;
        };
        let value = crate::storage::gauge_value(gauge);
        let (mut min, mut max, mut sum, mut n) = (value, value, 0.0, 0usize);
        for (_, sample) in &track.samples {
            min = min.min(*sample);
            max = max.max(*sample);
            sum += sample;
            n += 1;
        }
        let mean = if n == 0 { value } else { sum / n as f64 };
        gauges.push(GaugeSummary {
            name: key.name().to_owned(),
            labels: labels_of(key),
            value,
            min,
            max,
            mean,
        });
    });

    let mut histograms = Vec::new();
    let mut reader = Reader::default();
    shared.registry.visit_histograms(|key, series| {
        if activity.is_hidden(MetricKind::Histogram, series) {
            return;
        }
        // One read of the live shards for both windows.
        let (window, total) = match reader.read_all(series, &[shared.window(), Window::Cumulative])
        {
            [recent, all] => (recent.summary(), all.summary()),
            _ => return, // one snapshot per window, always
        };
        let rejected = Rejection::ALL
            .into_iter()
            .map(|reason| (reason.as_str().to_owned(), series.0.rejected_for(reason)))
            .filter(|&(_, count)| count != 0)
            .collect();
        histograms.push(HistogramSummary {
            name: key.name().to_owned(),
            labels: labels_of(key),
            window,
            total,
            rejected,
        });
    });
    drop(activity);

    counters.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    gauges.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    histograms.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
    MetricsSummary {
        window_seconds: shared.settings.window.as_secs_f64(),
        global_labels: shared
            .settings
            .global_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        counters,
        gauges,
        histograms,
    }
}
