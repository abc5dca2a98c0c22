//! Prometheus text exposition of the registry, written with
//! `metrics_exporter_prometheus::formatting` so names, labels and escaping
//! match what Prometheus users already get from that exporter.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use metrics_exporter_prometheus::LabelSet;
use metrics_exporter_prometheus::formatting::{
    sanitize_metric_name, write_help_line, write_metric_line, write_type_line,
};
use metrics_util::MetricKind;
use vigil_histogram::{Snapshot, Window};

use crate::recorder::Shared;

/// The cumulative `_sum` and `_count` lines of a summary or histogram.
fn write_sum_and_count(out: &mut String, name: &str, labels: &LabelSet, total: &Snapshot) {
    write_metric_line::<&str, f64>(out, name, Some("sum"), labels, None, total.sum(), None);
    write_metric_line::<&str, u64>(out, name, Some("count"), labels, None, total.count(), None);
}

/// One metric name's series, in the order Prometheus wants them grouped.
type ByName<T> = BTreeMap<String, Vec<(LabelSet, T)>>;

impl Shared {
    fn help(&self, buffer: &mut String, name: &str, suffix: Option<&'static str>) {
        let descriptions = self
            .descriptions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match descriptions.get(name) {
            Some(description) => write_help_line(buffer, name, None, suffix, description),
            None => write_help_line(buffer, name, None, suffix, name),
        }
    }

    /// The whole registry as Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self) -> String {
        self.tick();
        let globals = &self.settings.global_labels;
        let activity = self.activity.lock().unwrap_or_else(PoisonError::into_inner);

        let mut counters: ByName<u64> = BTreeMap::new();
        self.registry.visit_counters(|key, counter| {
            if activity.is_hidden(MetricKind::Counter, key) {
                return;
            }
            counters
                .entry(sanitize_metric_name(key.name()))
                .or_default()
                .push((
                    LabelSet::from_key_and_global(key, globals),
                    counter.load(Ordering::Relaxed),
                ));
        });
        let mut gauges: ByName<f64> = BTreeMap::new();
        self.registry.visit_gauges(|key, gauge| {
            if activity.is_hidden(MetricKind::Gauge, key) {
                return;
            }
            gauges
                .entry(sanitize_metric_name(key.name()))
                .or_default()
                .push((
                    LabelSet::from_key_and_global(key, globals),
                    crate::activity::gauge_value(gauge),
                ));
        });
        let mut histograms: ByName<_> = BTreeMap::new();
        self.registry.visit_histograms(|key, series| {
            if activity.is_hidden(MetricKind::Histogram, key) {
                return;
            }
            histograms
                .entry(sanitize_metric_name(key.name()))
                .or_default()
                .push((
                    LabelSet::from_key_and_global(key, globals),
                    std::sync::Arc::clone(series),
                ));
        });
        drop(activity);

        // Registry order is hash order; sort each name's series by labels so
        // consecutive scrapes (and diffs of them) read the same.
        let order = |labels: &LabelSet| labels.to_strings().collect::<Vec<_>>();
        for series in counters.values_mut() {
            series.sort_by_cached_key(|(labels, _)| order(labels));
        }
        for series in gauges.values_mut() {
            series.sort_by_cached_key(|(labels, _)| order(labels));
        }
        for series in histograms.values_mut() {
            series.sort_by_cached_key(|(labels, _)| order(labels));
        }

        // One name is one metric family in Prometheus: a gauge or histogram
        // registered under a counter's name (or one that sanitizes to it)
        // would make the whole scrape invalid, so the first kind keeps it.
        let mut taken: std::collections::HashSet<String> = counters.keys().cloned().collect();
        let mut keep = |name: &String, kind: &str| {
            let free = taken.insert(name.clone());
            if !free {
                tracing::debug!(metric = %name, kind, "metric name already used by another kind; left out of the exposition");
            }
            free
        };
        gauges.retain(|name, _| keep(name, "gauge"));
        histograms.retain(|name, _| keep(name, "histogram"));

        let mut out = String::new();
        for (name, series) in &counters {
            self.help(&mut out, name, None);
            write_type_line(&mut out, name, None, None, "counter");
            for (labels, value) in series {
                write_metric_line::<&str, u64>(&mut out, name, None, labels, None, *value, None);
            }
            out.push('\n');
        }
        for (name, series) in &gauges {
            self.help(&mut out, name, None);
            write_type_line(&mut out, name, None, None, "gauge");
            for (labels, value) in series {
                write_metric_line::<&str, f64>(&mut out, name, None, labels, None, *value, None);
            }
            out.push('\n');
        }
        for (name, series) in &histograms {
            self.help(&mut out, name, None);
            match self.settings.buckets_for(name) {
                Some(bounds) => {
                    write_type_line(&mut out, name, None, None, "histogram");
                    for (labels, series) in series {
                        let total = series.0.snapshot(Window::Cumulative);
                        for bound in bounds {
                            write_metric_line(
                                &mut out,
                                name,
                                Some("bucket"),
                                labels,
                                Some(("le", bound)),
                                total.count_le(*bound),
                                None,
                            );
                        }
                        write_metric_line(
                            &mut out,
                            name,
                            Some("bucket"),
                            labels,
                            Some(("le", "+Inf")),
                            total.count(),
                            None,
                        );
                        write_sum_and_count(&mut out, name, labels, &total);
                    }
                }
                None => {
                    write_type_line(&mut out, name, None, None, "summary");
                    for (labels, series) in series {
                        // Quantiles over the sliding window; `_sum` and
                        // `_count` cumulative, as Prometheus summaries are.
                        let recent = series.0.snapshot(self.window());
                        for quantile in &self.settings.quantiles {
                            write_metric_line(
                                &mut out,
                                name,
                                None,
                                labels,
                                Some(("quantile", quantile)),
                                recent.quantile(*quantile),
                                None,
                            );
                        }
                        let total = series.0.snapshot(Window::Cumulative);
                        write_sum_and_count(&mut out, name, labels, &total);
                    }
                }
            }
            out.push('\n');
        }
        out
    }
}
