//! Prometheus exposition of the registry. One collection step reads the
//! registry into families (visible series only, one family per exposed
//! name, series sorted by labels); each [`Format`] then writes them: the
//! text format 0.0.4 here, written with
//! `metrics_exporter_prometheus::formatting` so names, labels and escaping
//! match what Prometheus users already get from that exporter, and the
//! protobuf format (with native histograms) in [`crate::protobuf`].

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use indexmap::IndexMap;
use metrics::{Key, Label, SharedString};
use metrics_exporter_prometheus::LabelSet;
use metrics_exporter_prometheus::formatting::{
    sanitize_metric_name, write_help_line, write_metric_line, write_type_line,
};
use metrics_util::MetricKind;
use vigil_histogram::Window;
use vigil_timing::{BUILD_INFO, CALLS_DURATION, CALLS_TOTAL};

use crate::protobuf::Protobuf;
use crate::recorder::Shared;
use crate::storage::{HistogramSeries, Reader};

/// The HELP text of the `build_info` series vigil adds.
const BUILD_INFO_HELP: &str = "The build of the running service (version, commit, branch), value 1, as autometrics exposes it.";

/// How an exposition format spells one series' labels.
pub(crate) trait SeriesLabels {
    /// What a name's series are sorted by, so consecutive scrapes (and diffs
    /// of them) read the same.
    type Order: Ord;

    /// The labels of `key`, after the global labels.
    fn of(key: &Key, globals: &IndexMap<String, String>) -> Self;

    /// This series' sort key.
    fn order(&self) -> Self::Order;
}

impl SeriesLabels for LabelSet {
    type Order = Vec<String>;

    fn of(key: &Key, globals: &IndexMap<String, String>) -> Self {
        LabelSet::from_key_and_global(key, globals)
    }

    fn order(&self) -> Self::Order {
        self.to_strings().collect()
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

/// Files one series under its exposed name.
fn add<L: SeriesLabels, T>(
    families: &mut ByName<L, T>,
    key: &Key,
    globals: &IndexMap<String, String>,
    value: T,
) {
    families
        .entry(sanitize_metric_name(key.name()))
        .or_default()
        .push((L::of(key, globals), value));
}

/// Sorts each family's series by labels (registry order is hash order).
fn sort<L: SeriesLabels, T>(families: &mut ByName<L, T>) {
    for series in families.values_mut() {
        series.sort_by_cached_key(|(labels, _)| labels.order());
    }
}

impl<L: SeriesLabels> Families<L> {
    /// Adds autometrics' `build_info` gauge (value 1, one series:
    /// [`vigil_timing::build_info`] and [`vigil_timing::service_name`]) when
    /// the registry has function metrics, for the `group_left (version,
    /// commit)` joins of autometrics' dashboards; never next to a metric
    /// the service registered under that name itself.
    fn add_build_info(&mut self, globals: &IndexMap<String, String>) {
        let has_function_metrics =
            self.counters.contains_key(CALLS_TOTAL) || self.histograms.contains_key(CALLS_DURATION);
        let taken = self.counters.contains_key(BUILD_INFO)
            || self.gauges.contains_key(BUILD_INFO)
            || self.histograms.contains_key(BUILD_INFO);
        if !has_function_metrics || taken {
            return;
        }
        let labels: Vec<Label> = vigil_timing::build_info()
            .labels()
            .iter()
            .map(|&(name, value)| Label::new(name, value.to_owned()))
            .collect();
        add(
            &mut self.gauges,
            &Key::from_parts(BUILD_INFO, labels),
            globals,
            1.0,
        );
    }

    /// One name is one metric family in Prometheus: a gauge or histogram
    /// registered under a counter's name (or one that sanitizes to it)
    /// would make the whole scrape invalid, so the first kind keeps it.
    fn one_family_per_name(&mut self) {
        let mut taken: HashSet<String> = self.counters.keys().cloned().collect();
        let mut keep = |name: &String, kind: &str| {
            let free = taken.insert(name.clone());
            if !free {
                tracing::debug!(metric = %name, kind, "metric name already used by another kind; left out of the exposition");
            }
            free
        };
        self.gauges.retain(|name, _| keep(name, "gauge"));
        self.histograms.retain(|name, _| keep(name, "histogram"));
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
        described.or_else(|| (name == BUILD_INFO).then(|| BUILD_INFO_HELP.into()))
    }

    /// After an upkeep tick, the registry's series that are not hidden,
    /// grouped and sorted.
    fn families<L: SeriesLabels>(&self) -> Families<L> {
        self.tick();
        let globals = &self.settings.global_labels;
        let mut families = Families {
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            histograms: BTreeMap::new(),
        };
        let activity = self.activity.lock().unwrap_or_else(PoisonError::into_inner);
        self.registry.visit_counters(|key, counter| {
            if !activity.is_hidden(MetricKind::Counter, counter) {
                let value = counter.load(Ordering::Relaxed);
                add(&mut families.counters, key, globals, value);
            }
        });
        self.registry.visit_gauges(|key, gauge| {
            if !activity.is_hidden(MetricKind::Gauge, gauge) {
                let value = crate::activity::gauge_value(gauge);
                add(&mut families.gauges, key, globals, value);
            }
        });
        self.registry.visit_histograms(|key, series| {
            if !activity.is_hidden(MetricKind::Histogram, series) {
                add(&mut families.histograms, key, globals, Arc::clone(series));
            }
        });
        drop(activity);
        families.add_build_info(globals);
        sort(&mut families.counters);
        sort(&mut families.gauges);
        sort(&mut families.histograms);
        families.one_family_per_name();
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

impl Text<'_> {
    /// The `# HELP` and `# TYPE` lines that open a family.
    fn head(&mut self, name: &str, help: &str, kind: &str) {
        write_help_line(&mut self.out, name, None, None, help);
        write_type_line(&mut self.out, name, None, None, kind);
    }

    /// The cumulative `_sum` and `_count` lines of a summary or histogram.
    fn sum_and_count(&mut self, name: &str, labels: &LabelSet, (count, sum): (u64, f64)) {
        let out = &mut self.out;
        write_metric_line::<&str, f64>(out, name, Some("sum"), labels, None, sum, None);
        write_metric_line::<&str, u64>(out, name, Some("count"), labels, None, count, None);
    }
}

impl Format for Text<'_> {
    type Labels = LabelSet;

    fn counters(&mut self, name: &str, help: &str, series: &[(LabelSet, u64)]) {
        self.head(name, help, "counter");
        for (labels, value) in series {
            write_metric_line::<&str, u64>(&mut self.out, name, None, labels, None, *value, None);
        }
        self.out.push('\n');
    }

    fn gauges(&mut self, name: &str, help: &str, series: &[(LabelSet, f64)]) {
        self.head(name, help, "gauge");
        for (labels, value) in series {
            write_metric_line::<&str, f64>(&mut self.out, name, None, labels, None, *value, None);
        }
        self.out.push('\n');
    }

    fn histograms(&mut self, name: &str, help: &str, series: &[(LabelSet, Arc<HistogramSeries>)]) {
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
                        write_metric_line(
                            &mut self.out,
                            name,
                            Some("bucket"),
                            labels,
                            Some(("le", bound)),
                            *count,
                            None,
                        );
                    }
                    write_metric_line(
                        &mut self.out,
                        name,
                        Some("bucket"),
                        labels,
                        Some(("le", "+Inf")),
                        totals.0,
                        None,
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
                        write_metric_line(
                            &mut self.out,
                            name,
                            None,
                            labels,
                            Some(("quantile", quantile)),
                            *value,
                            None,
                        );
                    }
                    self.sum_and_count(name, labels, series.0.totals());
                }
            }
        }
        self.out.push('\n');
    }
}
