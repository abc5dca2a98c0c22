//! Export to the `metrics` facade: names, labels, values, descriptions.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use vigil_cache::sync::TaggedCache;
use vigil_cache::{EntryOptions, metric_names};

type Labels = Vec<(String, String)>;

/// (name, labels sorted, value) for every series of `cache`.
fn series(recorder: &DebuggingRecorder, cache: &str) -> Vec<(String, Labels, DebugValue)> {
    let mut out: Vec<_> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            labels
                .iter()
                .any(|(k, v)| k == "cache" && v == cache)
                .then(|| (key.name().to_string(), labels, value))
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut labels: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    labels
}

fn populate(cache: &TaggedCache<u32, u32>) {
    cache.insert_with(1, 1, EntryOptions::default().tag("t"));
    cache.insert_with(2, 2, EntryOptions::default().tag("t"));
    cache.insert(3, 3);
    cache.insert(3, 30);
    cache.get(&1);
    cache.get(&3);
    cache.get(&4);
    cache.invalidate_tag("t");
    cache.invalidate(&3);
    cache.insert(5, 5);
    cache.run_pending_tasks();
}

#[test]
fn a_cache_publishes_its_counters_and_gauges_under_its_name() {
    let recorder = DebuggingRecorder::new();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder().name("published").build();
    populate(&cache);
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    let c = |n| DebugValue::Counter(n);
    let g = |v: f64| DebugValue::Gauge(v.into());
    assert_eq!(
        series(&recorder, "published"),
        vec![
            (
                "cache_entries".into(),
                labels(&[("cache", "published")]),
                g(1.0)
            ),
            (
                "cache_evictions_total".into(),
                labels(&[("cache", "published"), ("cause", "expired")]),
                c(0)
            ),
            (
                "cache_evictions_total".into(),
                labels(&[("cache", "published"), ("cause", "explicit")]),
                c(3)
            ),
            (
                "cache_evictions_total".into(),
                labels(&[("cache", "published"), ("cause", "replaced")]),
                c(1)
            ),
            (
                "cache_evictions_total".into(),
                labels(&[("cache", "published"), ("cause", "size")]),
                c(0)
            ),
            (
                "cache_requests_total".into(),
                labels(&[("cache", "published"), ("result", "hit")]),
                c(2)
            ),
            (
                "cache_requests_total".into(),
                labels(&[("cache", "published"), ("result", "miss")]),
                c(1)
            ),
            (
                "cache_weighted_size".into(),
                labels(&[("cache", "published")]),
                g(1.0)
            ),
        ]
    );
}

#[test]
fn publish_metrics_covers_every_live_named_cache_and_describes_them() {
    let recorder = DebuggingRecorder::new();
    let a: TaggedCache<u32, u32> = TaggedCache::builder().name("registry-a").build();
    let b: vigil_cache::future::TaggedCache<u32, u32> = vigil_cache::future::TaggedCache::builder()
        .name("registry-b")
        .build();
    let dropped: TaggedCache<u32, u32> = TaggedCache::builder().name("registry-dropped").build();
    let unnamed: TaggedCache<u32, u32> = TaggedCache::new(10);
    a.get(&1);
    dropped.get(&1);
    unnamed.get(&1);
    drop(dropped);
    metrics::with_local_recorder(&recorder, vigil_cache::publish_metrics);

    let a_series = series(&recorder, "registry-a");
    assert_eq!(a_series.len(), 8);
    assert!(a_series.contains(&(
        metric_names::REQUESTS_TOTAL.into(),
        labels(&[("cache", "registry-a"), ("result", "miss")]),
        DebugValue::Counter(1)
    )));
    assert_eq!(series(&recorder, "registry-b").len(), 8);
    assert!(series(&recorder, "registry-dropped").is_empty());
    drop(b);

    let described: Vec<(String, bool)> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, help, _)| (key.key().name().to_string(), help.is_some()))
        .collect();
    for name in [
        metric_names::REQUESTS_TOTAL,
        metric_names::EVICTIONS_TOTAL,
        metric_names::ENTRIES,
        metric_names::WEIGHTED_SIZE,
    ] {
        assert!(
            described.iter().any(|(n, has_help)| n == name && *has_help),
            "{name} is described"
        );
    }
}

#[test]
fn counters_are_published_as_running_totals() {
    let recorder = DebuggingRecorder::new();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder().name("totals").build();
    cache.get(&1);
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    cache.get(&1);
    cache.get(&1);
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    let misses = series(&recorder, "totals")
        .into_iter()
        .find(|(name, labels, _)| {
            name == "cache_requests_total" && labels.iter().any(|(_, v)| v == "miss")
        })
        .map(|(_, _, value)| value);
    assert_eq!(misses, Some(DebugValue::Counter(3)));
}

/// The `cache_entries` gauge `cache` publishes. (Through the cache's own
/// `publish_metrics`: the global one would hold every live cache for a
/// moment, racing with the test above that drops one.)
fn entries_gauge(cache: &TaggedCache<u32, u32>) -> Option<DebugValue> {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || cache.publish_metrics());
    let name = cache.name().expect("a named cache");
    series(&recorder, name)
        .into_iter()
        .find(|(series, _, _)| series == metric_names::ENTRIES)
        .map(|(_, _, value)| value)
}

#[test]
fn the_entries_gauge_drops_right_after_a_tag_invalidation_and_at_expiry() {
    let (clock, mock) = quanta::Clock::mock();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder()
        .name("entries-gauge")
        .default_ttl(std::time::Duration::from_secs(60))
        .clock(clock)
        .build();
    let gauge = |v: f64| Some(DebugValue::Gauge(v.into()));
    for key in 0..5 {
        cache.insert_with(key, key, EntryOptions::default().tag("user:42"));
    }
    assert_eq!(entries_gauge(&cache), gauge(5.0));
    assert_eq!(cache.invalidate_tag("user:42"), 5);
    // No removal has run yet (they are queued; moka has not been told).
    assert_eq!(entries_gauge(&cache), gauge(0.0));
    assert_eq!(cache.entry_count(), 0);

    for key in 10..13 {
        cache.insert(key, key);
    }
    assert_eq!(entries_gauge(&cache), gauge(3.0));
    mock.increment(std::time::Duration::from_secs(59));
    assert_eq!(entries_gauge(&cache), gauge(3.0));
    mock.increment(std::time::Duration::from_secs(1));
    // Past the time to live on the cache's clock; moka, on real time, still
    // holds them.
    assert_eq!(entries_gauge(&cache), gauge(0.0));
    assert_eq!(cache.entry_count(), 0);
}
