//! The ready-made alert rules read metrics vigil really records:
//! `vigil::alert::rulesets::EMITTED_BY_VIGIL` is the set of names the
//! recording crates declare, and the names the rule sets say come from
//! vigil appear in a scrape after a `#[timed]` call, a cache lookup and a
//! system metrics reading.
//! (`vigil-alert`'s `tests/ruleset_metrics.rs` checks that every metric a
//! rule set reads is one of these or one it documents as the host's.)

#![cfg(all(
    feature = "alert-routing",
    feature = "rulesets",
    feature = "cache",
    feature = "system-metrics"
))]

use std::collections::BTreeSet;

use vigil::alert::rulesets::{EMITTED_BY_VIGIL, ServiceTargets, SloBurnRate};
use vigil::cache::sync::TaggedCache;
use vigil::{Monitor, timed};

#[timed]
fn ruleset_metrics_lookup(fail: bool) -> Result<u32, String> {
    if fail { Err("not found".into()) } else { Ok(7) }
}

#[test]
fn the_emitted_list_is_the_set_of_names_the_recording_crates_declare() {
    let declared: BTreeSet<&str> = [
        vigil::timing::CALLS_TOTAL,
        vigil::timing::CALLS_DURATION,
        vigil::timing::CALLS_CONCURRENT,
        vigil::timing::PANICS_TOTAL,
        vigil::timing::CANCELLATIONS_TOTAL,
        vigil::timing::BUILD_INFO,
        vigil::cache::metric_names::REQUESTS_TOTAL,
        vigil::cache::metric_names::EVICTIONS_TOTAL,
        vigil::cache::metric_names::ENTRIES,
        vigil::cache::metric_names::WEIGHTED_SIZE,
        vigil::alert::engine::ALERTS_FIRING,
        vigil::alert::notify::NOTIFICATIONS_TOTAL,
        vigil::alert::notify::NOTIFICATION_FAILURES_TOTAL,
        vigil::SERIES_DROPPED_TOTAL,
        vigil::service::system::CPU_USAGE,
        vigil::service::system::MEMORY_USAGE,
        vigil::service::HEALTH_SCORE,
        vigil::service::HEALTH_STATUS,
    ]
    .into_iter()
    .collect();
    let listed: BTreeSet<&str> = EMITTED_BY_VIGIL.iter().copied().collect();
    assert_eq!(listed, declared);
    assert_eq!(listed.len(), EMITTED_BY_VIGIL.len(), "no name twice");
}

/// The metric families of a Prometheus text exposition (its `# TYPE`
/// lines), with their sample lines' names checked to belong to them.
fn families(text: &str) -> BTreeSet<String> {
    let families: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| families.contains(*base))
            .unwrap_or(name);
        assert!(families.contains(family), "{line}: no # TYPE for it");
    }
    families
}

#[test]
fn the_metrics_the_rule_sets_take_from_vigil_are_in_a_scrape() {
    // One reading is taken before `build` returns; the hour keeps it the only one.
    let monitor = Monitor::builder()
        .manual_upkeep()
        .system_metrics(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    let cache: TaggedCache<u32, u32> = TaggedCache::builder().name("ruleset_metrics_users").build();
    vigil::with_local_recorder(&monitor.recorder(), || {
        assert_eq!(ruleset_metrics_lookup(false), Ok(7));
        assert!(ruleset_metrics_lookup(true).is_err());
    });
    assert_eq!(cache.get(&1), None);
    cache.insert(1, 1);
    assert_eq!(cache.get(&1), Some(1));

    let text = monitor.render();
    let names = families(&text);
    let from_vigil = ServiceTargets::VIGIL_METRICS
        .iter()
        .chain(SloBurnRate::VIGIL_METRICS);
    for name in from_vigil {
        assert!(
            names.contains(*name),
            "the rule sets read {name} from vigil, but the scrape has no such metric:\n{text}"
        );
    }
    for name in ServiceTargets::HOST_METRICS {
        assert!(
            !names.contains(*name),
            "{name} is the host's, yet vigil recorded it:\n{text}"
        );
    }
}
