//! Prometheus exposition of the registry. One collection step reads the
//! registry into families (visible series only, one family per exposed
//! name, series sorted by labels), with every name and label made valid by
//! [`crate::sanitize`] and series whose exposed identity collides with
//! another's left out; each [`Format`] then writes them: the text format
//! 0.0.4 here, and the protobuf format (with native histograms) in
//! [`crate::protobuf`].

use std::cmp::Ordering as Order;
use std::collections::{BTreeMap, HashSet};
use std::fmt::{Display, Write as _};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use indexmap::IndexMap;
use metrics::{Key, Label};
use metrics_util::MetricKind;
use vigil_histogram::{Rejection, Window};
use vigil_timing::{BUILD_INFO, CALLS_DURATION, CALLS_TOTAL};

use crate::registry::{Settings, Shared};
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
pub(crate) type RejectedValues = BTreeMap<String, [u64; Rejection::ALL.len()]>;

/// How an exposition format spells one series' labels.
pub(crate) trait SeriesLabels {
    /// A series' exposed labels, from keys valid and unique, global labels
    /// first, values unescaped.
    fn of<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> Self;

    /// The order a name's series are sorted in, so consecutive scrapes
    /// (and diffs of them) read the same; `Equal` for the same labels.
    fn order(&self, other: &Self) -> Order;
}

/// One series' labels as the text format writes them between the braces
/// (`key="value",...`, values escaped); empty for none.
#[derive(Debug)]
pub(crate) struct TextLabels(String);

impl SeriesLabels for TextLabels {
    fn of<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
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

    fn order(&self, other: &Self) -> Order {
        self.0.cmp(&other.0)
    }
}

/// One visible series: its recorded key, exposed name, labels and value.
pub(crate) struct Series<L, T> {
    /// The exposed name, when it is not the recorded key's.
    renamed: Option<String>,
    /// The recorded key.
    key: Key,
    /// Added by the exposition itself, not read from the registry.
    added: bool,
    /// The exposed labels.
    pub(crate) labels: L,
    /// The value read.
    pub(crate) value: T,
}

impl<L, T> Series<L, T> {
    /// The exposed name.
    fn name(&self) -> &str {
        self.renamed.as_deref().unwrap_or_else(|| self.key.name())
    }
}

/// An exposition format: called once per family, counters first, then
/// gauges, then histograms, each kind by name.
pub(crate) trait Format {
    /// How this format spells a series' labels.
    type Labels: SeriesLabels;

    /// Writes one counter family.
    fn counters(&mut self, name: &str, help: &str, series: &[Series<Self::Labels, u64>]);

    /// Writes one gauge family.
    fn gauges(&mut self, name: &str, help: &str, series: &[Series<Self::Labels, f64>]);

    /// Writes one histogram family.
    fn histograms(
        &mut self,
        name: &str,
        help: &str,
        series: &[Series<Self::Labels, Arc<HistogramSeries>>],
    );
}

/// The visible series of one metric kind, sorted by exposed name, then
/// labels, in one list; a family is a run of series with the same name.
struct Kind<L, T> {
    /// Every series, sorted.
    series: Vec<Series<L, T>>,
    /// Each family's series in `series`, by name.
    families: Vec<Range<usize>>,
}

impl<L, T> Kind<L, T> {
    /// Each family's name and series, by name.
    fn families(&self) -> impl Iterator<Item = (&str, &[Series<L, T>])> {
        self.families.iter().map(|range| {
            let series = &self.series[range.clone()];
            (series[0].name(), series)
        })
    }

    /// Whether a family of this kind has `name`.
    fn has(&self, name: &str) -> bool {
        self.families
            .binary_search_by(|range| self.series[range.start].name().cmp(name))
            .is_ok()
    }
}

/// Whether a series read so far has the exposed name `name`.
fn read<L, T>(series: &[Series<L, T>], name: &str) -> bool {
    series.iter().any(|series| series.name() == name)
}

/// The visible series of the registry, one family per exposed name.
struct Families<L> {
    /// Counter families.
    counters: Kind<L, u64>,
    /// Gauge families.
    gauges: Kind<L, f64>,
    /// Histogram families.
    histograms: Kind<L, Arc<HistogramSeries>>,
}

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
    /// Whether the series now added are the exposition's own.
    added: bool,
}

impl Reading<'_> {
    /// Adds one series under its exposed name, or records why it cannot
    /// be exposed. The label key the exposition adds to a histogram itself
    /// (`le` or `quantile`) is reserved.
    fn add<L: SeriesLabels, T>(
        &mut self,
        series: &mut Vec<Series<L, T>>,
        kind: MetricKind,
        key: &Key,
        value: T,
    ) {
        let reserved = match kind {
            MetricKind::Histogram => {
                let buckets = if sanitize::valid_metric_name(key.name()) {
                    Some(self.settings.buckets_for(key.name()).is_some())
                } else {
                    sanitize::metric_name(key.name())
                        .map(|name| self.settings.buckets_for(&name).is_some())
                };
                buckets.map(|buckets| if buckets { "le" } else { "quantile" })
            }
            MetricKind::Counter | MetricKind::Gauge => None,
        };
        // Registration stores keys as exposed: most are read as they are,
        // with no copy but the key's.
        if sanitize::exposed_as_recorded(key, self.globals, reserved) {
            let globals = self
                .globals
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()));
            let own = key.labels().map(|label| (label.key(), label.value()));
            series.push(Series {
                renamed: None,
                key: key.clone(),
                added: self.added,
                labels: L::of(globals.chain(own)),
                value,
            });
            return;
        }
        self.reasons.clear();
        let exposed = sanitize::expose(key, self.globals, reserved, &mut self.reasons);
        for &reason in &self.reasons {
            self.rejected.push((kind, key.clone(), reason));
        }
        if let Some(exposed) = exposed {
            let labels = exposed
                .labels
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()));
            series.push(Series {
                renamed: (exposed.name != key.name()).then_some(exposed.name),
                key: key.clone(),
                added: self.added,
                labels: L::of(labels),
                value,
            });
        }
    }

    /// Sorts the series by name and labels (registry order is hash order)
    /// and keeps, of series with the same exposed name and labels, the one
    /// whose recorded key sorts first; the others count as collisions.
    fn finish<L: SeriesLabels, T>(
        &mut self,
        kind: MetricKind,
        mut series: Vec<Series<L, T>>,
    ) -> Kind<L, T> {
        // A total order (registry keys are unique, and so are the added
        // ones; a registered series comes before an added one with its
        // key), so sorting in place decides as a stable sort would.
        series.sort_unstable_by(|a, b| {
            a.name()
                .cmp(b.name())
                .then_with(|| a.labels.order(&b.labels))
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.added.cmp(&b.added))
        });
        let rejected = &mut self.rejected;
        series.dedup_by(|later, kept| {
            let same = later.name() == kept.name() && later.labels.order(&kept.labels).is_eq();
            if same {
                rejected.push((kind, later.key.clone(), Reason::Collision));
            }
            same
        });
        let mut families = Vec::new();
        let mut start = 0;
        for end in 1..=series.len() {
            if end == series.len() || series[end].name() != series[start].name() {
                families.push(start..end);
                start = end;
            }
        }
        Kind { series, families }
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
        let Families {
            counters,
            gauges,
            histograms,
        } = self;
        gauges.families.retain(|range| {
            let name = gauges.series[range.start].name();
            let free = !counters.has(name);
            if !free {
                tracing::debug!(metric = %name, kind = "gauge", "metric name already used by another kind; left out of the exposition");
            }
            free
        });
        let mut taken: HashSet<String> = HashSet::new();
        histograms.families.retain(|range| {
            let name = histograms.series[range.start].name();
            let samples = ["", "_sum", "_count", "_bucket"].map(|suffix| format!("{name}{suffix}"));
            let free = samples.iter().all(|sample| {
                !counters.has(sample) && !gauges.has(sample) && !taken.contains(sample)
            });
            if free {
                taken.extend(samples);
            } else {
                tracing::debug!(metric = %name, kind = "histogram", "metric name already used by another kind; left out of the exposition");
            }
            free
        });
    }
}

/// After an upkeep tick, the registry's series that are not hidden,
/// made valid, grouped and sorted; what had to be refused or renamed
/// is counted in [`SERIES_REJECTED_TOTAL`](crate::SERIES_REJECTED_TOTAL).
/// The histograms' rejected values are added as the counter
/// [`VALUES_REJECTED_TOTAL`], one series per histogram name
/// and reason seen so far.
fn families<L: SeriesLabels>(shared: &Shared) -> Families<L> {
    shared.tick();
    let mut reading = Reading {
        globals: &shared.settings.global_labels,
        settings: &shared.settings,
        rejected: Vec::new(),
        reasons: Vec::new(),
        added: false,
    };
    let mut counters = Vec::new();
    let mut gauges = Vec::new();
    let mut histograms = Vec::new();
    let activity = shared
        .activity
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    // Under the activity lock, which every expiry holds: each count is
    // either still in its series or already in here, never in both.
    let mut rejected_values = shared
        .expired_rejections
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    shared.registry.visit_counters(|key, counter| {
        if !activity.is_hidden(MetricKind::Counter, counter) {
            let value = counter.load(Ordering::Relaxed);
            reading.add(&mut counters, MetricKind::Counter, key, value);
        }
    });
    shared.registry.visit_gauges(|key, gauge| {
        if !activity.is_hidden(MetricKind::Gauge, gauge) {
            let value = crate::storage::gauge_value(gauge);
            reading.add(&mut gauges, MetricKind::Gauge, key, value);
        }
    });
    shared.registry.visit_histograms(|key, series| {
        // Hidden (idle) series too, and expired ones above: a count
        // never goes down.
        add_rejected_values(&mut rejected_values, key, series);
        if !activity.is_hidden(MetricKind::Histogram, series) {
            let series = Arc::clone(series);
            reading.add(&mut histograms, MetricKind::Histogram, key, series);
        }
    });
    drop(activity);
    reading.added = true;
    // autometrics' `build_info` gauge (value 1, one series:
    // [`vigil_timing::build_info`] and [`vigil_timing::service_name`])
    // when the registry has function metrics, for the `group_left
    // (version, commit)` joins of autometrics' dashboards; never next
    // to a metric the service registered under that name itshared.
    let has_function_metrics = read(&counters, CALLS_TOTAL) || read(&histograms, CALLS_DURATION);
    let taken =
        read(&counters, BUILD_INFO) || read(&gauges, BUILD_INFO) || read(&histograms, BUILD_INFO);
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
    if read(&gauges, VALUES_REJECTED_TOTAL) || read(&histograms, VALUES_REJECTED_TOTAL) {
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
    shared.reject(reading.rejected);
    families
}

/// Runs `format` over every family of the registry; the HELP text is
/// the description, or the name when there is none.
fn expose<F: Format>(shared: &Shared, format: &mut F) {
    let families = families::<F::Labels>(shared);
    let descriptions = shared
        .descriptions
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    // Each kind's families come by name: one walk of the descriptions
    // sorted by name finds every family's.
    let mut described: Vec<(&str, &str)> = descriptions
        .iter()
        .map(|(name, help)| (name.as_str(), &**help))
        .collect();
    described.sort_unstable();
    let mut helps = Helps {
        described: &described,
        next: 0,
    };
    for (name, series) in families.counters.families() {
        format.counters(name, helps.of(name), series);
    }
    helps.next = 0;
    for (name, series) in families.gauges.families() {
        format.gauges(name, helps.of(name), series);
    }
    helps.next = 0;
    for (name, series) in families.histograms.families() {
        format.histograms(name, helps.of(name), series);
    }
}

/// The whole registry as Prometheus text exposition (format 0.0.4).
pub(crate) fn text(shared: &Shared) -> String {
    let mut text = Text {
        shared,
        out: String::new(),
        reader: Reader::default(),
        values: Vec::new(),
        counts: Vec::new(),
    };
    expose(shared, &mut text);
    text.out
}

/// The whole registry as length-delimited `io.prometheus.client`
/// `MetricFamily` messages, every histogram a native histogram.
#[cfg(feature = "listener")]
pub(crate) fn protobuf(shared: &Shared) -> Vec<u8> {
    let mut protobuf = crate::protobuf::Protobuf::new(&shared.settings);
    expose(shared, &mut protobuf);
    protobuf.into_bytes()
}

/// The HELP texts of exposed names asked for in increasing order.
struct Helps<'a> {
    /// The descriptions, by name.
    described: &'a [(&'a str, &'a str)],
    /// The first description not passed yet.
    next: usize,
}

impl<'a> Helps<'a> {
    /// The HELP text of `name` (not below the name asked for before): its
    /// description, or the name when there is none.
    fn of<'b>(&mut self, name: &'b str) -> &'b str
    where
        'a: 'b,
    {
        while self
            .described
            .get(self.next)
            .is_some_and(|&(described, _)| described < name)
        {
            self.next += 1;
        }
        match self.described.get(self.next) {
            Some(&(described, help)) if described == name => help,
            _ => match name {
                BUILD_INFO => BUILD_INFO_HELP,
                VALUES_REJECTED_TOTAL => VALUES_REJECTED_HELP,
                _ => name,
            },
        }
    }
}

/// Adds the values `series` did not record as given to its exposed name's
/// counts (a name that cannot be exposed has none).
pub(crate) fn add_rejected_values(into: &mut RejectedValues, key: &Key, series: &HistogramSeries) {
    add_rejected_values_within(into, key, series, usize::MAX);
}

/// [`add_rejected_values`] into a map that holds at most `names` metric
/// names: the counts of a name beyond them go to the empty name's entry
/// (exposed as `metric=""`), so the counts kept for histograms that
/// expired take bounded memory however many names come and go.
pub(crate) fn add_rejected_values_within(
    into: &mut RejectedValues,
    key: &Key,
    series: &HistogramSeries,
    names: usize,
) {
    let histogram = &series.0;
    let counts = Rejection::ALL.map(|reason| histogram.rejected_for(reason));
    if counts.iter().all(|&count| count == 0) {
        return;
    }
    let Some(mut name) = sanitize::metric_name(key.name()) else {
        return;
    };
    if into.len() >= names && !into.contains_key(&name) {
        name = String::new();
    }
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
        // Digits from the last, without the formatting machinery: most
        // samples of a large exposition are counters.
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = *self;
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
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

    fn counters(&mut self, name: &str, help: &str, series: &[Series<TextLabels, u64>]) {
        self.head(name, help, "counter");
        for Series { labels, value, .. } in series {
            write_line(&mut self.out, name, None, labels, None, value);
        }
        self.out.push('\n');
    }

    fn gauges(&mut self, name: &str, help: &str, series: &[Series<TextLabels, f64>]) {
        self.head(name, help, "gauge");
        for Series { labels, value, .. } in series {
            write_line(&mut self.out, name, None, labels, None, value);
        }
        self.out.push('\n');
    }

    fn histograms(
        &mut self,
        name: &str,
        help: &str,
        series: &[Series<TextLabels, Arc<HistogramSeries>>],
    ) {
        let settings = &self.shared.settings;
        match settings.buckets_for(name) {
            Some(bounds) => {
                self.head(name, help, "histogram");
                self.counts.resize(bounds.len(), 0);
                for Series {
                    labels,
                    value: series,
                    ..
                } in series
                {
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
                    let bucket = |out: &mut String, le: &dyn Display, count: &u64| {
                        write_line(out, name, Some("bucket"), labels, Some(("le", le)), count);
                    };
                    for (bound, count) in bounds.iter().zip(&self.counts) {
                        bucket(&mut self.out, bound, count);
                    }
                    bucket(&mut self.out, &"+Inf", &totals.0);
                    self.sum_and_count(name, labels, totals);
                }
            }
            None => {
                self.head(name, help, "summary");
                let quantiles = &settings.quantiles;
                self.values.resize(quantiles.len(), 0.0);
                for Series {
                    labels,
                    value: series,
                    ..
                } in series
                {
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
