//! Prometheus exposition of the registry. One collection step reads the
//! registry into families (visible series only, one family per exposed
//! name, series sorted by labels), with every name and label made valid by
//! [`crate::sanitize`] and series whose exposed identity collides with
//! another's left out; each [`Format`] then writes them: the text format
//! 0.0.4 here, and the protobuf format (with native histograms) in
//! [`crate::protobuf`].

use std::collections::{BTreeMap, HashSet};
use std::fmt::{Display, Write as _};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use indexmap::IndexMap;
use metrics::{Key, Label, SharedString};
use metrics_util::MetricKind;
use vigil_histogram::{Rejection, Window};
use vigil_timing::{BUILD_INFO, CALLS_DURATION, CALLS_TOTAL};

use crate::protobuf::Protobuf;
use crate::recorder::{Settings, Shared};
use crate::sanitize::{self, Reason};
use crate::storage::{HistogramSeries, Reader};

/// The HELP text of the `build_info` series vigil adds.
const BUILD_INFO_HELP: &str = "The build of the running service (version, commit, branch), value 1, as autometrics exposes it.";

/// The name of the counter of values a histogram did not record as given,
/// by histogram (`metric`, its exposed name) and `reason`: `nan`,
/// `positive_infinity`, `negative_infinity`, `negative` (not recorded) or
/// `clamped` (recorded as the histogram's highest value); see
/// [`Rejection`](vigil_histogram::Rejection).
pub const VALUES_REJECTED_TOTAL: &str = "vigil_values_rejected_total";

/// The HELP text of [`VALUES_REJECTED_TOTAL`].
const VALUES_REJECTED_HELP: &str = "Values recorded into a histogram that were dropped (NaN, infinite, negative) or clamped to its highest value, by histogram and reason";

/// Values not recorded as given, per reason in [`Rejection::ALL`] order,
/// summed over the series of one exposed histogram name.
type RejectedValues = BTreeMap<String, [u64; Rejection::ALL.len()]>;

/// How an exposition format spells one series' labels.
pub(crate) trait SeriesLabels {
    /// What a name's series are sorted by, so consecutive scrapes (and diffs
    /// of them) read the same.
    type Order: Ord;

    /// A series' exposed labels: keys valid and unique, global labels
    /// first, values unescaped.
    fn of(labels: &[(String, String)]) -> Self;

    /// This series' sort key.
    fn order(&self) -> Self::Order;
}

/// One series' labels as the text format writes them between the braces
/// (`key="value",...`, values escaped); empty for none.
#[derive(Debug)]
pub(crate) struct TextLabels(String);

impl SeriesLabels for TextLabels {
    type Order = String;

    fn of(labels: &[(String, String)]) -> Self {
        let mut out = String::new();
        for (key, value) in labels {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            sanitize::escape_label_value(value, &mut out);
            out.push('"');
        }
        TextLabels(out)
    }

    fn order(&self) -> Self::Order {
        self.0.clone()
    }
}

/// An exposition format: called once per family, counters first, then
/// gauges, then histograms, each kind by name.
pub(crate) trait Format {
    /// How this format spells a series' labels.
    type Labels: SeriesLabels;

    /// Writes one counter family.
    fn counters(&mut self, name: &str, help: &str, series: &[(Self::Labels, u64)]);

    /// Writes one gauge family.
    fn gauges(&mut self, name: &str, help: &str, series: &[(Self::Labels, f64)]);

    /// Writes one histogram family.
    fn histograms(
        &mut self,
        name: &str,
        help: &str,
        series: &[(Self::Labels, Arc<HistogramSeries>)],
    );
}

/// One metric name's series, in the order Prometheus wants them grouped.
type ByName<L, T> = BTreeMap<String, Vec<(L, T)>>;

/// The visible series of the registry, one family per exposed name.
struct Families<L> {
    /// Counter families.
    counters: ByName<L, u64>,
    /// Gauge families.
    gauges: ByName<L, f64>,
    /// Histogram families.
    histograms: ByName<L, Arc<HistogramSeries>>,
}

/// One series read from the registry: its sort key, recorded key, exposed
/// labels and value.
type Entry<L, T> = (<L as SeriesLabels>::Order, Key, L, T);

/// Series read from the registry, by exposed name, before collisions are
/// resolved.
type Pending<L, T> = BTreeMap<String, Vec<Entry<L, T>>>;

/// Every change made to a recorded series on its way out, with its kind
/// and recorded key.
pub(crate) type Rejected = Vec<(MetricKind, Key, Reason)>;

/// What a registry read needs besides the series.
struct Reading<'a> {
    /// Global labels, first in every series.
    globals: &'a IndexMap<String, String>,
    /// Decides whether a histogram renders with buckets.
    settings: &'a Settings,
    /// Refusals and renames seen so far.
    rejected: Rejected,
    /// Reused for each series' reasons.
    reasons: Vec<Reason>,
}

impl Reading<'_> {
    /// Files one series under its exposed name, or records why it cannot
    /// be exposed. `reserved` is the label key the exposition adds to this
    /// kind itself.
    fn add<L: SeriesLabels, T>(
        &mut self,
        families: &mut Pending<L, T>,
        kind: MetricKind,
        key: &Key,
        value: T,
    ) {
        let reserved = match kind {
            MetricKind::Histogram => sanitize::metric_name(key.name()).map(|name| {
                if self.settings.buckets_for(&name).is_some() {
                    "le"
                } else {
                    "quantile"
                }
            }),
            MetricKind::Counter | MetricKind::Gauge => None,
        };
        self.reasons.clear();
        let exposed = sanitize::expose(key, self.globals, reserved, &mut self.reasons);
        for &reason in &self.reasons {
            self.rejected.push((kind, key.clone(), reason));
        }
        if let Some(exposed) = exposed {
            let labels = L::of(&exposed.labels);
            families.entry(exposed.name).or_default().push((
                labels.order(),
                key.clone(),
                labels,
                value,
            ));
        }
    }

    /// Sorts each family's series by labels (registry order is hash
    /// order) and keeps, of series with the same exposed labels, the one
    /// whose recorded key sorts first; the others count as collisions.
    fn finish<L: SeriesLabels, T>(
        &mut self,
        kind: MetricKind,
        pending: Pending<L, T>,
    ) -> ByName<L, T> {
        pending
            .into_iter()
            .map(|(name, mut entries)| {
                entries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                let mut series: Vec<(L, T)> = Vec::with_capacity(entries.len());
                let mut previous: Option<L::Order> = None;
                for (order, key, labels, value) in entries {
                    if previous.as_ref() == Some(&order) {
                        self.rejected.push((kind, key, Reason::Collision));
                        continue;
                    }
                    previous = Some(order);
                    series.push((labels, value));
                }
                (name, series)
            })
            .collect()
    }
}

impl<L: SeriesLabels> Families<L> {
    /// One name is one metric family in Prometheus: a gauge or histogram
    /// registered under a counter's name (or one that sanitizes to it)
    /// would make the whole scrape invalid, so the first kind keeps it. A
    /// histogram also writes `name_sum`, `name_count` and `name_bucket`
    /// samples: it is left out when a counter or gauge has one of those
    /// names, so that no series is written twice.
    fn one_family_per_name(&mut self) {
        let mut taken: HashSet<String> = self.counters.keys().cloned().collect();
        let mut keep = |names: &[String], kind: &str| {
            let free = names.iter().all(|name| !taken.contains(name));
            if free {
                taken.extend(names.iter().cloned());
            } else {
                tracing::debug!(metric = %names[0], kind, "metric name already used by another kind; left out of the exposition");
            }
            free
        };
        self.gauges
            .retain(|name, _| keep(std::slice::from_ref(name), "gauge"));
        self.histograms.retain(|name, _| {
            let samples = ["", "_sum", "_count", "_bucket"].map(|suffix| format!("{name}{suffix}"));
            keep(&samples, "histogram")
        });
    }
}

impl Shared {
    /// The HELP text registered for an exposed name, if any.
    fn description(&self, name: &str) -> Option<SharedString> {
        let described = self
            .descriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        described.or_else(|| match name {
            BUILD_INFO => Some(BUILD_INFO_HELP.into()),
            VALUES_REJECTED_TOTAL => Some(VALUES_REJECTED_HELP.into()),
            _ => None,
        })
    }

    /// After an upkeep tick, the registry's series that are not hidden,
    /// made valid, grouped and sorted; what had to be refused or renamed
    /// is counted in [`SERIES_REJECTED_TOTAL`](crate::SERIES_REJECTED_TOTAL).
    /// The histograms' rejected values are added as the counter
    /// [`VALUES_REJECTED_TOTAL`], one series per histogram name
    /// and reason seen so far.
    fn families<L: SeriesLabels>(&self) -> Families<L> {
        self.tick();
        let mut reading = Reading {
            globals: &self.settings.global_labels,
            settings: &self.settings,
            rejected: Vec::new(),
            reasons: Vec::new(),
        };
        let mut counters = BTreeMap::new();
        let mut gauges = BTreeMap::new();
        let mut histograms = BTreeMap::new();
        let mut rejected_values = RejectedValues::new();
        let activity = self.activity.lock().unwrap_or_else(PoisonError::into_inner);
        self.registry.visit_counters(|key, counter| {
            if !activity.is_hidden(MetricKind::Counter, counter) {
                let value = counter.load(Ordering::Relaxed);
                reading.add(&mut counters, MetricKind::Counter, key, value);
            }
        });
        self.registry.visit_gauges(|key, gauge| {
            if !activity.is_hidden(MetricKind::Gauge, gauge) {
                let value = crate::activity::gauge_value(gauge);
                reading.add(&mut gauges, MetricKind::Gauge, key, value);
            }
        });
        self.registry.visit_histograms(|key, series| {
            // Hidden (idle) series too: a count never goes down while its
            // series exists.
            add_rejected_values(&mut rejected_values, key, series);
            if !activity.is_hidden(MetricKind::Histogram, series) {
                let series = Arc::clone(series);
                reading.add(&mut histograms, MetricKind::Histogram, key, series);
            }
        });
        drop(activity);
        // autometrics' `build_info` gauge (value 1, one series:
        // [`vigil_timing::build_info`] and [`vigil_timing::service_name`])
        // when the registry has function metrics, for the `group_left
        // (version, commit)` joins of autometrics' dashboards; never next
        // to a metric the service registered under that name itself.
        let has_function_metrics =
            counters.contains_key(CALLS_TOTAL) || histograms.contains_key(CALLS_DURATION);
        let taken = counters.contains_key(BUILD_INFO)
            || gauges.contains_key(BUILD_INFO)
            || histograms.contains_key(BUILD_INFO);
        if has_function_metrics && !taken {
            let labels: Vec<Label> = vigil_timing::build_info()
                .labels()
                .iter()
                .map(|&(name, value)| Label::new(name, value.to_owned()))
                .collect();
            let key = Key::from_parts(BUILD_INFO, labels);
            reading.add(&mut gauges, MetricKind::Gauge, &key, 1.0);
        }
        // Through the same checks as any counter (global labels in front,
        // collisions with a counter the service registered under this
        // name resolved as for any two series); left out when a gauge or
        // histogram of the service has the name.
        if gauges.contains_key(VALUES_REJECTED_TOTAL)
            || histograms.contains_key(VALUES_REJECTED_TOTAL)
        {
            rejected_values.clear();
        }
        for (metric, counts) in rejected_values {
            for (reason, count) in Rejection::ALL.into_iter().zip(counts) {
                if count == 0 {
                    continue;
                }
                let labels = vec![
                    Label::new("metric", metric.clone()),
                    Label::new("reason", reason.as_str()),
                ];
                let key = Key::from_parts(VALUES_REJECTED_TOTAL, labels);
                reading.add(&mut counters, MetricKind::Counter, &key, count);
            }
        }
        let mut families = Families {
            counters: reading.finish(MetricKind::Counter, counters),
            gauges: reading.finish(MetricKind::Gauge, gauges),
            histograms: reading.finish(MetricKind::Histogram, histograms),
        };
        families.one_family_per_name();
        self.reject(reading.rejected);
        families
    }

    /// Runs `format` over every family of the registry; the HELP text is
    /// the description, or the name when there is none.
    fn expose<F: Format>(&self, format: &mut F) {
        let families = self.families::<F::Labels>();
        let help = |name: &str| self.description(name);
        for (name, series) in &families.counters {
            format.counters(name, help(name).as_deref().unwrap_or(name), series);
        }
        for (name, series) in &families.gauges {
            format.gauges(name, help(name).as_deref().unwrap_or(name), series);
        }
        for (name, series) in &families.histograms {
            format.histograms(name, help(name).as_deref().unwrap_or(name), series);
        }
    }

    /// The whole registry as Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut text = Text {
            shared: self,
            out: String::new(),
            reader: Reader::default(),
            values: Vec::new(),
            counts: Vec::new(),
        };
        self.expose(&mut text);
        text.out
    }

    /// The whole registry as length-delimited `io.prometheus.client`
    /// `MetricFamily` messages, every histogram a native histogram.
    pub(crate) fn render_protobuf(&self) -> Vec<u8> {
        let mut protobuf = Protobuf::new(&self.settings);
        self.expose(&mut protobuf);
        protobuf.into_bytes()
    }
}

/// Adds the values `series` did not record as given to its exposed name's
/// counts (a name that cannot be exposed has none).
fn add_rejected_values(into: &mut RejectedValues, key: &Key, series: &HistogramSeries) {
    let histogram = &series.0;
    let counts = Rejection::ALL.map(|reason| histogram.rejected_for(reason));
    if counts.iter().all(|&count| count == 0) {
        return;
    }
    let Some(name) = sanitize::metric_name(key.name()) else {
        return;
    };
    let total = into.entry(name).or_default();
    for (total, count) in total.iter_mut().zip(counts) {
        *total = total.wrapping_add(count);
    }
}

/// The text exposition being written.
struct Text<'a> {
    /// For the quantiles, buckets and window of histograms.
    shared: &'a Shared,
    /// The exposition so far.
    out: String,
    /// Reused by every histogram read.
    reader: Reader,
    /// Quantile values of one series, reused.
    values: Vec<f64>,
    /// `le` counts of one series, reused.
    counts: Vec<u64>,
}

/// A sample value as the text format spells it (`+Inf`, `-Inf`, `NaN`
/// for the non-finite ones).
trait Sample {
    /// Appends the value.
    fn write(&self, out: &mut String);
}

impl Sample for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Sample for f64 {
    fn write(&self, out: &mut String) {
        if self.is_nan() {
            out.push_str("NaN");
        } else if self.is_infinite() {
            out.push_str(if *self > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            let _ = write!(out, "{self}");
        }
    }
}

/// Appends one sample line: `name[_suffix]{labels[,extra]} value`.
fn write_line(
    out: &mut String,
    name: &str,
    suffix: Option<&str>,
    labels: &TextLabels,
    extra: Option<(&str, &dyn Display)>,
    value: &dyn Sample,
) {
    out.push_str(name);
    if let Some(suffix) = suffix {
        out.push('_');
        out.push_str(suffix);
    }
    if !labels.0.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(&labels.0);
        if let Some((key, extra)) = extra {
            if !labels.0.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{extra}\"");
        }
        out.push('}');
    }
    out.push(' ');
    value.write(out);
    out.push('\n');
}

impl Text<'_> {
    /// The `# HELP` and `# TYPE` lines that open a family.
    fn head(&mut self, name: &str, help: &str, kind: &str) {
        let out = &mut self.out;
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        sanitize::escape_help(help, out);
        let _ = writeln!(out, "\n# TYPE {name} {kind}");
    }

    /// The cumulative `_sum` and `_count` lines of a summary or histogram.
    fn sum_and_count(&mut self, name: &str, labels: &TextLabels, (count, sum): (u64, f64)) {
        let out = &mut self.out;
        write_line(out, name, Some("sum"), labels, None, &sum);
        write_line(out, name, Some("count"), labels, None, &count);
    }
}

impl Format for Text<'_> {
    type Labels = TextLabels;

    fn counters(&mut self, name: &str, help: &str, series: &[(TextLabels, u64)]) {
        self.head(name, help, "counter");
        for (labels, value) in series {
            write_line(&mut self.out, name, None, labels, None, value);
        }
        self.out.push('\n');
    }

    fn gauges(&mut self, name: &str, help: &str, series: &[(TextLabels, f64)]) {
        self.head(name, help, "gauge");
        for (labels, value) in series {
            write_line(&mut self.out, name, None, labels, None, value);
        }
        self.out.push('\n');
    }

    fn histograms(
        &mut self,
        name: &str,
        help: &str,
        series: &[(TextLabels, Arc<HistogramSeries>)],
    ) {
        let settings = &self.shared.settings;
        match settings.buckets_for(name) {
            Some(bounds) => {
                self.head(name, help, "histogram");
                self.counts.resize(bounds.len(), 0);
                for (labels, series) in series {
                    let totals = if series.0.exact_bounds() == &bounds[..] {
                        // The shards' bound counters: a few words per
                        // shard, no walk of the buckets.
                        series.0.bound_counts(&mut self.counts)
                    } else {
                        // One walk of the cumulative buckets for every bound.
                        let total = self.reader.read(series, Window::Cumulative);
                        self.counts.resize(bounds.len(), 0);
                        total.counts_le(&bounds, &mut self.counts);
                        (total.count(), total.sum())
                    };
                    for (bound, count) in bounds.iter().zip(&self.counts) {
                        let le: &dyn Display = bound;
                        write_line(
                            &mut self.out,
                            name,
                            Some("bucket"),
                            labels,
                            Some(("le", le)),
                            count,
                        );
                    }
                    let le: &dyn Display = &"+Inf";
                    write_line(
                        &mut self.out,
                        name,
                        Some("bucket"),
                        labels,
                        Some(("le", le)),
                        &totals.0,
                    );
                    self.sum_and_count(name, labels, totals);
                }
            }
            None => {
                self.head(name, help, "summary");
                let quantiles = &settings.quantiles;
                self.values.resize(quantiles.len(), 0.0);
                for (labels, series) in series {
                    // Quantiles over the sliding window, all in one walk;
                    // `_sum` and `_count` cumulative, as Prometheus
                    // summaries are, from the shards' totals (no walk).
                    let recent = self.reader.read(series, self.shared.window());
                    recent.quantiles(quantiles, &mut self.values);
                    for (quantile, value) in quantiles.iter().zip(&self.values) {
                        let quantile: &dyn Display = quantile;
                        write_line(
                            &mut self.out,
                            name,
                            None,
                            labels,
                            Some(("quantile", quantile)),
                            value,
                        );
                    }
                    self.sum_and_count(name, labels, series.0.totals());
                }
            }
        }
        self.out.push('\n');
    }
}
