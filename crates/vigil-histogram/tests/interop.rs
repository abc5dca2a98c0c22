//! HdrHistogram interchange: V2 compressed base64 both ways, histograms
//! encoded by hdrhistogram itself and by the Java implementation, and
//! interval logs read back with hdrhistogram's parser.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{
    Deserializer, Serializer as _, V2DeflateSerializer, V2Serializer,
};
use vigil_histogram::{Config, Histogram, IntervalLog, Snapshot, Window};

fn sample_histogram() -> Histogram {
    let histogram = Histogram::new();
    for i in 0..10_000u64 {
        histogram.record(1_000 + i * i * 37 % 5_000_000_000);
    }
    histogram.record(0);
    histogram
}

fn assert_same_counts(a: &hdrhistogram::Histogram<u64>, b: &hdrhistogram::Histogram<u64>) {
    assert_eq!(a.len(), b.len());
    assert_eq!(
        (a.low(), a.high(), a.sigfig()),
        (b.low(), b.high(), b.sigfig())
    );
    assert_eq!(a.distinct_values(), b.distinct_values());
    for (x, y) in a.iter_all().zip(b.iter_all()) {
        assert_eq!(x.value_iterated_to(), y.value_iterated_to());
        assert_eq!(x.count_at_value(), y.count_at_value());
    }
}

fn decode(encoded: &str) -> hdrhistogram::Histogram<u64> {
    let bytes = STANDARD.decode(encoded).unwrap();
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap()
}

#[test]
fn to_base64_is_read_by_hdrhistogram_deserializer_with_identical_counts() {
    let snapshot = sample_histogram().snapshot(Window::Cumulative);
    let encoded = snapshot.to_base64().unwrap();
    // The V2 compressed cookie, 0x1c849314, is "HISTF" in base64.
    assert!(encoded.starts_with("HISTF"), "{encoded}");
    assert_same_counts(&decode(&encoded), snapshot.histogram());
}

#[test]
fn from_base64_round_trips() {
    let snapshot = sample_histogram().snapshot(Window::Cumulative);
    let decoded = Snapshot::from_base64(&snapshot.to_base64().unwrap()).unwrap();
    assert_same_counts(decoded.histogram(), snapshot.histogram());
    assert_eq!(decoded.scale(), 1e9);
    assert_eq!(decoded.window(), Duration::ZERO);
    assert_eq!(decoded.summary().p99, snapshot.summary().p99);
    // The sum does not travel; it is estimated from the buckets.
    assert!((decoded.sum() - snapshot.sum()).abs() <= snapshot.sum() * 1e-3);
}

#[test]
fn reads_what_hdrhistogram_serializers_write() {
    let mut reference =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2).unwrap();
    for v in [1, 2, 999, 1_000_000, 59_999_999_999] {
        reference.record_n(v, v % 7 + 1).unwrap();
    }
    for compressed in [true, false] {
        let mut bytes = Vec::new();
        if compressed {
            V2DeflateSerializer::new()
                .serialize(&reference, &mut bytes)
                .unwrap();
        } else {
            V2Serializer::new()
                .serialize(&reference, &mut bytes)
                .unwrap();
        }
        let snapshot = Snapshot::from_base64(&STANDARD.encode(&bytes)).unwrap();
        assert_same_counts(snapshot.histogram(), &reference);
    }
}

#[test]
fn reads_a_histogram_written_by_java_hdrhistogram() {
    // First interval of hdrhistogram's tests/data/tagged-Log.logV2.hlog,
    // written by jHiccup (Java HdrHistogram); the log gives its max as
    // 2.769 ms.
    let java = "HISTFAAAAEV42pNpmSzMwMCgyAABTBDKT4GBgdnNYMcCBvsPEBEJISEuATEZMQ4uASkhIR4nrxg9v2lMaxhvMekILGZkKmcCAEf2CsI=";
    let snapshot = Snapshot::from_base64(java).unwrap();
    assert!(snapshot.count() > 0);
    assert!(
        (snapshot.max() * 1e3 - 2.769).abs() < 2.769 * 1e-3,
        "max {}",
        snapshot.max()
    );
    // And it merges with our own snapshots when the range allows.
    let mut ours = Config::new()
        .range(1, u64::MAX / 4)
        .build()
        .unwrap()
        .snapshot(Window::Cumulative);
    ours.merge(&snapshot).unwrap();
    assert_eq!(ours.count(), snapshot.count());
}

#[test]
fn interval_log_reads_back_with_hdrhistogram_iterator() {
    let (clock, mock) = quanta::Clock::mock();
    let histogram = Config::new().clock(clock).build().unwrap();
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut log = IntervalLog::new(Vec::new(), start).unwrap();

    let mut written = Vec::new();
    for (i, values) in [[1_000u64, 2_000, 3_000].as_slice(), &[50_000_000; 7]]
        .iter()
        .enumerate()
    {
        values.iter().for_each(|&v| histogram.record(v));
        mock.increment(Duration::from_secs(10));
        histogram.upkeep();
        // The interval just completed: the last 10 s minus the (empty) live part.
        let snapshot = histogram.snapshot(Window::Last(Duration::from_secs(20)));
        let offset = Duration::from_secs(10 * i as u64);
        log.write(&snapshot, offset, (i == 1).then_some("slow"))
            .unwrap();
        written.push((snapshot, offset));
    }
    let text = log.into_inner();

    let mut entries = IntervalLogIterator::new(&text).map(Result::unwrap);
    assert_eq!(
        entries.next(),
        Some(LogEntry::StartTime(Duration::from_secs(1_700_000_000)))
    );
    assert_eq!(
        entries.next(),
        Some(LogEntry::BaseTime(Duration::from_secs(1_700_000_000)))
    );
    let intervals: Vec<_> = entries
        .map(|entry| match entry {
            LogEntry::Interval(interval) => interval,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(intervals.len(), 2);
    for (interval, (snapshot, offset)) in intervals.iter().zip(&written) {
        assert_eq!(interval.start_timestamp(), *offset);
        assert_eq!(interval.duration(), Duration::from_secs(10));
        assert_eq!(interval.max(), snapshot.histogram().max() as f64);
        assert_same_counts(&decode(interval.encoded_histogram()), snapshot.histogram());
    }
    assert_eq!(intervals[0].tag(), None);
    assert_eq!(intervals[1].tag().map(|t| t.as_str()), Some("slow"));
    assert_eq!(decode(intervals[0].encoded_histogram()).len(), 3);
    assert_eq!(decode(intervals[1].encoded_histogram()).len(), 7);
}
