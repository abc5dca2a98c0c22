//! Prometheus's protobuf exposition: length-delimited
//! `io.prometheus.client.MetricFamily` messages, the format a scraper
//! negotiates to ingest native histograms. This module owns the messages
//! (hand-written `prost` structs mirroring `io/prometheus/client/metrics.proto`
//! of `prometheus/client_model`, so no `protoc` is needed to build), the
//! conversion of a cumulative HDR snapshot into a schema-8 native histogram,
//! and the [`Format`] that [`render::protobuf`] runs over the registry.
//!
//! [`render::protobuf`]: crate::render::protobuf

use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

use prost::Message as _;
use vigil_histogram::{Bucket as HdrBucket, Snapshot, Window};

use crate::registry::Settings;
use crate::render::{Format, Series, SeriesLabels};
use crate::storage::{HistogramSeries, Reader};

/// The Content-Type of the length-delimited `MetricFamily` exposition.
pub(crate) const CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The native histogram schema: each power of two is split into 2^8 = 256
/// buckets, so bucket `i` is `(2^((i-1)/256), 2^(i/256)]` (a relative width
/// of 0.27%), the finest Prometheus accepts.
pub(crate) const SCHEMA: i32 = 8;

/// Buckets per power of two at [`SCHEMA`].
const BUCKETS_PER_OCTAVE: i32 = 1 << SCHEMA;

/// Values at or below this go to the zero bucket: 2^-128, client_golang's
/// default (`DefNativeHistogramZeroThreshold`). Only a raw 0 lands there in
/// practice, since the smallest nonzero raw value is far above it.
pub(crate) const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

// The messages below mirror `io/prometheus/client/metrics.proto` (proto2:
// every scalar is `optional`, hence the `Option`s), field numbers and wire
// types included. Only what vigil writes is declared; a reader skips the
// rest (summaries, untyped, exemplars, created timestamps) as unknown.

/// `io.prometheus.client.LabelPair`.
#[rustfmt::skip]
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct LabelPair {
    #[prost(string, optional, tag = "1")] pub(crate) name: Option<String>, // The label name (sanitized as in text exposition).
    #[prost(string, optional, tag = "2")] pub(crate) value: Option<String>, // The label value, unescaped.
}

/// `io.prometheus.client.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum MetricType {
    /// Uses [`Metric::counter`].
    Counter = 0,
    /// Uses [`Metric::gauge`].
    Gauge = 1,
    /// Uses the `summary` field (not declared here).
    Summary = 2,
    /// Uses the `untyped` field (not declared here).
    Untyped = 3,
    /// Uses [`Metric::histogram`].
    Histogram = 4,
    /// Uses [`Metric::histogram`], for histograms that may go down.
    GaugeHistogram = 5,
}

/// `io.prometheus.client.Gauge`.
#[rustfmt::skip]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Gauge {
    #[prost(double, optional, tag = "1")] pub(crate) value: Option<f64>, // The current value.
}

/// `io.prometheus.client.Counter` (without exemplar and created timestamp).
#[rustfmt::skip]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Counter {
    #[prost(double, optional, tag = "1")] pub(crate) value: Option<f64>, // The total so far.
}

/// `io.prometheus.client.Bucket`: one classic `le` bucket.
#[rustfmt::skip]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Bucket {
    #[prost(uint64, optional, tag = "1")] pub(crate) cumulative_count: Option<u64>, // Values at or below `upper_bound`.
    #[prost(double, optional, tag = "2")] pub(crate) upper_bound: Option<f64>, // The inclusive upper bound (`le`).
}

/// `io.prometheus.client.BucketSpan`: `length` consecutive native buckets,
/// starting `offset` indices after the previous span ended (or at index
/// `offset`, for the first span).
#[rustfmt::skip]
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct BucketSpan {
    #[prost(sint32, optional, tag = "1")] pub(crate) offset: Option<i32>, // Gap to the previous span, or the first span's starting index.
    #[prost(uint32, optional, tag = "2")] pub(crate) length: Option<u32>, // Number of consecutive buckets.
}

/// `io.prometheus.client.Histogram`: the classic buckets (fields 1-3) and
/// the native histogram (fields 5-13); float counts, negative buckets,
/// exemplars and the created timestamp are not declared.
#[rustfmt::skip]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Histogram {
    #[prost(uint64, optional, tag = "1")] pub(crate) sample_count: Option<u64>, // Number of values.
    #[prost(double, optional, tag = "2")] pub(crate) sample_sum: Option<f64>, // Sum of the values.
    #[prost(message, repeated, tag = "3")] pub(crate) bucket: Vec<Bucket>, // Classic buckets, by increasing `upper_bound`; `+Inf` is implied.
    #[prost(sint32, optional, tag = "5")] pub(crate) schema: Option<i32>, // The native bucket schema ([`SCHEMA`]).
    #[prost(double, optional, tag = "6")] pub(crate) zero_threshold: Option<f64>, // Values with an absolute value at or below this are in the zero bucket.
    #[prost(uint64, optional, tag = "7")] pub(crate) zero_count: Option<u64>, // Count of the zero bucket.
    #[prost(message, repeated, tag = "12")] pub(crate) positive_span: Vec<BucketSpan>, // Spans of the positive buckets.
    #[prost(sint64, repeated, tag = "13")] pub(crate) positive_delta: Vec<i64>, // Count of each positive bucket, as the difference to the previous bucket's count (to 0 for the first).
}

/// `io.prometheus.client.Metric`: one series.
#[rustfmt::skip]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Metric {
    #[prost(message, repeated, tag = "1")] pub(crate) label: Vec<LabelPair>, // Global labels first, then the series' own.
    #[prost(message, optional, tag = "2")] pub(crate) gauge: Option<Gauge>, // Set in gauge families.
    #[prost(message, optional, tag = "3")] pub(crate) counter: Option<Counter>, // Set in counter families.
    #[prost(message, optional, tag = "7")] pub(crate) histogram: Option<Histogram>, // Set in histogram families.
}

/// `io.prometheus.client.MetricFamily`: every series of one name.
#[rustfmt::skip]
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct MetricFamily {
    #[prost(string, optional, tag = "1")] pub(crate) name: Option<String>, // The exposed (sanitized) name.
    #[prost(string, optional, tag = "2")] pub(crate) help: Option<String>, // The HELP text.
    #[prost(enumeration = "MetricType", optional, tag = "3")] pub(crate) r#type: Option<i32>, // The [`MetricType`].
    #[prost(message, repeated, tag = "4")] pub(crate) metric: Vec<Metric>, // The series.
}

/// One series' labels as protobuf label pairs.
#[derive(Debug)]
pub(crate) struct Labels(Vec<LabelPair>);

impl SeriesLabels for Labels {
    fn of<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        Labels(
            labels
                .map(|(name, value)| LabelPair {
                    name: Some(name.to_owned()),
                    value: Some(value.to_owned()),
                })
                .collect(),
        )
    }

    fn order(&self, other: &Self) -> Ordering {
        fn pair(pair: &LabelPair) -> (Option<&str>, Option<&str>) {
            (pair.name.as_deref(), pair.value.as_deref())
        }
        self.0.iter().map(pair).cmp(other.0.iter().map(pair))
    }
}

/// The protobuf exposition being written: families appended to `out`.
pub(crate) struct Protobuf<'a> {
    /// Decides which histograms also carry classic buckets.
    settings: &'a Settings,
    /// Length-delimited `MetricFamily` messages so far.
    out: Vec<u8>,
    /// Reused by every histogram read.
    reader: Reader,
}

impl<'a> Protobuf<'a> {
    /// An empty exposition for a registry with these settings.
    pub(crate) fn new(settings: &'a Settings) -> Self {
        Self {
            settings,
            out: Vec::new(),
            reader: Reader::default(),
        }
    }

    /// The encoded exposition.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// Appends one family with a varint length prefix.
    fn family(&mut self, name: &str, help: &str, kind: MetricType, metric: Vec<Metric>) {
        let family = MetricFamily {
            name: Some(name.to_owned()),
            help: Some(help.to_owned()),
            r#type: Some(kind as i32),
            metric,
        };
        family
            .encode_length_delimited(&mut self.out)
            .expect("a Vec<u8> grows as needed, so encoding into it cannot run out of room");
    }
}

impl Format for Protobuf<'_> {
    type Labels = Labels;

    fn counters(&mut self, name: &str, help: &str, series: &[Series<Labels, u64>]) {
        let metric = metrics(series, |total| Metric {
            counter: Some(Counter {
                value: Some(total as f64),
            }),
            ..Metric::default()
        });
        self.family(name, help, MetricType::Counter, metric);
    }

    fn gauges(&mut self, name: &str, help: &str, series: &[Series<Labels, f64>]) {
        let metric = metrics(series, |value| Metric {
            gauge: Some(Gauge { value: Some(value) }),
            ..Metric::default()
        });
        self.family(name, help, MetricType::Gauge, metric);
    }

    fn histograms(
        &mut self,
        name: &str,
        help: &str,
        series: &[Series<Labels, Arc<HistogramSeries>>],
    ) {
        let bounds = self.settings.buckets_for(name);
        let reader = &mut self.reader;
        let metric = series
            .iter()
            .map(
                |Series {
                     labels,
                     value: series,
                     ..
                 }| Metric {
                    label: labels.0.clone(),
                    histogram: Some(histogram(
                        reader.read(series, Window::Cumulative),
                        bounds.as_deref(),
                    )),
                    ..Metric::default()
                },
            )
            .collect();
        self.family(name, help, MetricType::Histogram, metric);
    }
}

/// One message per counter or gauge series: its labels, and what `value`
/// makes of its value.
fn metrics<T: Copy>(series: &[Series<Labels, T>], value: impl Fn(T) -> Metric) -> Vec<Metric> {
    let metric = |series: &Series<Labels, T>| Metric {
        label: series.labels.0.clone(),
        ..value(series.value)
    };
    series.iter().map(metric).collect()
}

/// A cumulative snapshot as a native histogram, plus the classic buckets
/// when the name has `bounds` (cumulative HDR counts, as the text format
/// writes them; `+Inf` is implied by `sample_count`).
fn histogram(total: &Snapshot, bounds: Option<&[f64]>) -> Histogram {
    let native = NativeBuckets::from_hdr(total.buckets(), total.scale());
    Histogram {
        sample_count: Some(total.count()),
        sample_sum: Some(total.sum()),
        bucket: bounds.map_or_else(Vec::new, |bounds| {
            let mut counts = vec![0; bounds.len()];
            total.counts_le(bounds, &mut counts);
            bounds
                .iter()
                .zip(counts)
                .map(|(bound, count)| Bucket {
                    cumulative_count: Some(count),
                    upper_bound: Some(*bound),
                })
                .collect()
        }),
        schema: Some(SCHEMA),
        zero_threshold: Some(ZERO_THRESHOLD),
        zero_count: Some(native.zero_count),
        positive_span: native.spans,
        positive_delta: native.deltas,
    }
}

/// The upper bounds of the 256 buckets of the octave `[0.5, 1)`:
/// `2^(j/256 - 1)`, the same table client_golang and Prometheus index into
/// (there as decimal literals).
static OCTAVE_BOUNDS: LazyLock<[f64; BUCKETS_PER_OCTAVE as usize]> = LazyLock::new(|| {
    std::array::from_fn(|j| (j as f64 / f64::from(BUCKETS_PER_OCTAVE) - 1.0).exp2())
});

/// `value = fraction * 2^exponent` with `fraction` in `[0.5, 1)`, exactly
/// (C's `frexp`), for a finite positive `value`.
fn frexp(value: f64) -> (f64, i32) {
    const EXPONENT_MASK: u64 = 0x7ff << 52;
    let bits = value.to_bits();
    let biased = ((bits & EXPONENT_MASK) >> 52) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first (exact, a power of
        // two).
        let (fraction, exponent) = frexp(value * 2f64.powi(64));
        return (fraction, exponent - 64);
    }
    // Keep the mantissa, set the exponent of [0.5, 1).
    let fraction = f64::from_bits((bits & !EXPONENT_MASK) | (1022 << 52));
    (fraction, biased - 1022)
}

/// The index of the schema-8 bucket `(2^((i-1)/256), 2^(i/256)]` holding a
/// finite positive `value`: `ceil(log2(value) * 256)`, computed as
/// client_golang does (split off the power of two exactly, then search the
/// octave's bounds) so powers of two and other boundaries land in the bucket
/// they close, without `log2` rounding.
fn native_index(value: f64) -> i32 {
    let (fraction, exponent) = frexp(value);
    // First j with bound[j] >= fraction; 256 means the octave's top bucket,
    // whose upper bound is the next power of two.
    let j = OCTAVE_BOUNDS.partition_point(|bound| *bound < fraction) as i32;
    j + (exponent - 1) * BUCKETS_PER_OCTAVE
}

/// The native buckets of one histogram: the zero bucket, and the positive
/// buckets as spans and delta-encoded counts.
#[derive(Debug, Default, PartialEq, Eq)]
struct NativeBuckets {
    /// Values at or below [`ZERO_THRESHOLD`].
    zero_count: u64,
    /// Where the positive buckets are.
    spans: Vec<BucketSpan>,
    /// Their counts, each as the difference to the one before.
    deltas: Vec<i64>,
}

impl NativeBuckets {
    /// Re-buckets nonzero HDR buckets (in value order, raw units, `scale`
    /// raw per unit): each goes whole to the native bucket holding its
    /// midpoint, so a value moves by at most half an HDR bucket (0.05% at 3
    /// significant figures) before the native bucketing.
    fn from_hdr(buckets: impl IntoIterator<Item = HdrBucket>, scale: f64) -> Self {
        let mut zero_count = 0;
        let mut counts: Vec<(i32, u64)> = Vec::new();
        for bucket in buckets {
            let midpoint = (bucket.low as f64 + bucket.high as f64) / 2.0 / scale;
            if midpoint.is_nan() || midpoint <= ZERO_THRESHOLD {
                zero_count += bucket.count;
                continue;
            }
            let index = native_index(midpoint.min(f64::MAX));
            // Midpoints rise with the HDR buckets, so indices never go back;
            // several HDR buckets share a native one where HDR is finer.
            match counts.last_mut() {
                Some((last, count)) if *last == index => *count += bucket.count,
                _ => {
                    debug_assert!(counts.last().is_none_or(|(last, _)| *last < index));
                    counts.push((index, bucket.count));
                }
            }
        }
        let (spans, deltas) = spans_and_deltas(&counts);
        Self {
            zero_count,
            spans,
            deltas,
        }
    }
}

/// Spans and deltas of nonzero `(index, count)` buckets in increasing index
/// order. As in client_golang, a gap of one or two empty buckets stays
/// inside the span (as zero counts: cheaper than a new span); a longer gap
/// starts a new span.
fn spans_and_deltas(counts: &[(i32, u64)]) -> (Vec<BucketSpan>, Vec<i64>) {
    let mut spans: Vec<BucketSpan> = Vec::new();
    let mut deltas = Vec::with_capacity(counts.len());
    let mut previous = 0i64;
    let mut next_index = 0i32;
    let mut append = |spans: &mut Vec<BucketSpan>, count: i64| {
        if let Some(span) = spans.last_mut() {
            span.length = Some(span.length.unwrap_or(0) + 1);
        }
        deltas.push(count - previous);
        previous = count;
    };
    for (n, &(index, count)) in counts.iter().enumerate() {
        let gap = index - next_index;
        if n == 0 || gap > 2 {
            spans.push(BucketSpan {
                offset: Some(gap),
                length: Some(0),
            });
        } else {
            for _ in 0..gap {
                append(&mut spans, 0);
            }
        }
        append(&mut spans, i64::try_from(count).unwrap_or(i64::MAX));
        next_index = index + 1;
    }
    (spans, deltas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan {
            offset: Some(offset),
            length: Some(length),
        }
    }

    fn hdr(low: u64, high: u64, count: u64) -> HdrBucket {
        HdrBucket { low, high, count }
    }

    /// The upper bound of native bucket `index`, from the definition.
    fn upper(index: i32) -> f64 {
        (f64::from(index) / 256.0).exp2()
    }

    #[test]
    fn frexp_splits_exactly() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(3.0), (0.75, 2));
        assert_eq!(frexp(f64::MIN_POSITIVE), (0.5, -1021));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
        assert_eq!(frexp(f64::MAX).1, 1024);
    }

    #[test]
    fn powers_of_two_close_their_bucket() {
        // Bucket i is (2^((i-1)/256), 2^(i/256)]: 2^k is the top of 256k.
        for k in -40..40 {
            let value = f64::from(k).exp2();
            assert_eq!(native_index(value), 256 * k, "2^{k}");
            assert_eq!(
                native_index(value * (1.0 + 1e-12)),
                256 * k + 1,
                "just above 2^{k}"
            );
            assert_eq!(
                native_index(value * (1.0 - 1e-12)),
                256 * k,
                "just below 2^{k}"
            );
        }
        assert_eq!(native_index(ZERO_THRESHOLD), -128 * 256);
    }

    #[test]
    fn values_just_inside_a_bound_land_in_the_bucket_it_closes() {
        // Bounds computed from the definition are within an ulp of the
        // table's; 1e-9 relative is far outside that, so each side is clear.
        for index in -600..600 {
            let bound = upper(index);
            assert_eq!(native_index(bound * (1.0 - 1e-9)), index, "below {bound}");
            assert_eq!(
                native_index(bound * (1.0 + 1e-9)),
                index + 1,
                "above {bound}"
            );
        }
    }

    #[test]
    fn index_matches_log2_away_from_boundaries() {
        let mut value = 1e-9_f64;
        while value < 1e4 {
            let exact = (value.log2() * 256.0).ceil() as i32;
            assert_eq!(native_index(value), exact, "{value}");
            value *= 1.0137;
        }
    }

    #[test]
    fn raw_zero_goes_to_the_zero_bucket() {
        let native =
            NativeBuckets::from_hdr([hdr(0, 0, 7), hdr(1_000_000_000, 1_000_000_000, 2)], 1e9);
        assert_eq!(native.zero_count, 7);
        assert_eq!(native.spans, vec![span(0, 1)]); // 1 s closes bucket 0
        assert_eq!(native.deltas, vec![2]);
    }

    #[test]
    fn hdr_buckets_go_to_the_bucket_of_their_midpoint() {
        // 1.000 s ..= 1.001 s has its midpoint in bucket 1 (1, 1.0027].
        let native = NativeBuckets::from_hdr([hdr(1_000_000_000, 1_001_000_000, 3)], 1e9);
        assert_eq!(native.spans, vec![span(1, 1)]);
        // Two HDR buckets inside one native bucket add up.
        let native = NativeBuckets::from_hdr(
            [
                hdr(1_000_000_001, 1_000_500_000, 3),
                hdr(1_000_500_001, 1_001_000_000, 4),
            ],
            1e9,
        );
        assert_eq!(native.spans, vec![span(1, 1)]);
        assert_eq!(native.deltas, vec![7]);
    }

    #[test]
    fn small_gaps_stay_in_the_span_and_large_ones_start_a_new_one() {
        let (spans, deltas) = spans_and_deltas(&[(-5, 2), (-4, 5), (-1, 1), (3, 4), (4, 4)]);
        // -5, -4, then a gap of 2 (-3, -2) kept as zeros, then -1; then a
        // gap of 3 (0, 1, 2): a new span at offset 3 from -1's successor.
        assert_eq!(spans, vec![span(-5, 5), span(3, 2)]);
        assert_eq!(deltas, vec![2, 3, -5, 0, 1, 3, 0]);
    }

    #[test]
    fn deltas_decode_back_to_counts() {
        let counts = [(10, 5), (11, 1), (12, 9), (14, 9), (100, 1), (103, 2)];
        let (spans, deltas) = spans_and_deltas(&counts);
        // Decode as Prometheus does and compare with the input.
        let mut decoded = Vec::new();
        let (mut index, mut count, mut delta) = (0i32, 0i64, deltas.iter());
        for span in &spans {
            index += span.offset.unwrap();
            for _ in 0..span.length.unwrap() {
                count += delta.next().unwrap();
                if count != 0 {
                    decoded.push((index, count as u64));
                }
                index += 1;
            }
        }
        assert_eq!(decoded, counts);
        // 101 and 102 are a gap of two: kept as zeros in the second span.
        assert_eq!(spans, vec![span(10, 5), span(85, 4)]);
    }

    #[test]
    fn no_buckets_no_spans() {
        assert_eq!(NativeBuckets::from_hdr([], 1e9), NativeBuckets::default());
    }

    #[test]
    fn length_delimited_families_decode() {
        let family = MetricFamily {
            name: Some("x_seconds".into()),
            help: Some("help".into()),
            r#type: Some(MetricType::Histogram as i32),
            metric: vec![Metric {
                histogram: Some(Histogram {
                    schema: Some(SCHEMA),
                    positive_span: vec![span(-3, 1)],
                    positive_delta: vec![-2],
                    ..Histogram::default()
                }),
                ..Metric::default()
            }],
        };
        let mut bytes = Vec::new();
        family.encode_length_delimited(&mut bytes).unwrap();
        family.encode_length_delimited(&mut bytes).unwrap();
        let mut reader = bytes.as_slice();
        for _ in 0..2 {
            assert_eq!(
                MetricFamily::decode_length_delimited(&mut reader).unwrap(),
                family
            );
        }
        assert!(reader.is_empty());
        // Field 5 (schema) is a zigzag sint32: tag 0x28, 8 -> 16.
        let histogram = family.metric[0].histogram.as_ref().unwrap().encode_to_vec();
        assert!(histogram.windows(2).any(|pair| pair == [0x28, 16]));
    }
}
