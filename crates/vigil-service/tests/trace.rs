//! `SpanLayer`: span durations from creation to close, by span name and
//! target, timed by an injected clock.
#![cfg(feature = "tracing")]

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use quanta::Clock;
use tracing_subscriber::layer::SubscriberExt;
use vigil_service::trace::{SPAN_DURATION, SpanLayer};

/// Every histogram recorded, by its labels as `key=value`.
fn histograms(snapshotter: &Snapshotter) -> Vec<(Vec<String>, Vec<f64>)> {
    let mut out: Vec<(Vec<String>, Vec<f64>)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, description, value)| {
            assert_eq!(key.key().name(), SPAN_DURATION);
            assert_eq!(unit, Some(metrics::Unit::Seconds));
            assert!(description.is_some());
            let labels = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let DebugValue::Histogram(values) = value else {
                panic!("{SPAN_DURATION} is a histogram");
            };
            (labels, values.into_iter().map(|v| v.into_inner()).collect())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tracing::instrument]
fn instrumented(clock: &quanta::Mock) {
    clock.increment(Duration::from_millis(30));
}

#[test]
fn spans_record_the_time_from_creation_to_close_by_name_and_target() {
    let recorder = Arc::new(DebuggingRecorder::new());
    let snapshotter = recorder.snapshotter();
    let (clock, mock) = Clock::mock();
    let layer = SpanLayer::new().with_recorder(recorder).with_clock(clock);
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let outer = tracing::info_span!(target: "app::db", "query");
        mock.increment(Duration::from_millis(100));
        // Time outside the span between creation and close counts too.
        outer.in_scope(|| mock.increment(Duration::from_millis(150)));
        mock.increment(Duration::from_millis(250));
        let copy = outer.clone();
        drop(outer);
        // Closed when its last handle goes.
        mock.increment(Duration::from_millis(500));
        drop(copy);
        instrumented(&mock);
        instrumented(&mock);
    });
    let target = module_path!();
    assert_eq!(
        histograms(&snapshotter),
        vec![
            (
                vec!["span=instrumented".to_owned(), format!("target={target}")],
                vec![0.03, 0.03]
            ),
            (
                vec!["span=query".to_owned(), "target=app::db".to_owned()],
                vec![1.0]
            ),
        ]
    );
}

#[test]
fn a_layer_without_its_own_recorder_records_into_the_current_one() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let (clock, mock) = Clock::mock();
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new().with_clock(clock));
    metrics::with_local_recorder(&recorder, || {
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("tick");
            mock.increment(Duration::from_secs(2));
            drop(span);
        });
    });
    let recorded = histograms(&snapshotter);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].1, vec![2.0]);
}

#[test]
fn each_current_recorder_gets_its_own_handles_for_a_callsite() {
    let (first, second) = (DebuggingRecorder::new(), DebuggingRecorder::new());
    let (first_snapshotter, second_snapshotter) = (first.snapshotter(), second.snapshotter());
    let (clock, mock) = Clock::mock();
    let subscriber = tracing_subscriber::registry().with(SpanLayer::new().with_clock(clock));
    tracing::subscriber::with_default(subscriber, || {
        // One callsite, its handle resolved in each recorder and cached
        // under both: every span lands in the recorder current at its close.
        let span = || tracing::info_span!("tick");
        for (recorder, seconds) in [(&first, 1), (&second, 2), (&first, 3), (&second, 4)] {
            metrics::with_local_recorder(recorder, || {
                let span = span();
                mock.increment(Duration::from_secs(seconds));
                drop(span);
            });
        }
    });
    let values = |snapshotter| {
        let recorded = histograms(snapshotter);
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        recorded[0].1.clone()
    };
    assert_eq!(values(&first_snapshotter), vec![1.0, 3.0]);
    assert_eq!(values(&second_snapshotter), vec![2.0, 4.0]);
}
