//! `CacheAdmin`: both flavours seen through one object-safe trait, with
//! exact counts for clearing by tags and clearing everything.

use std::sync::Arc;

use vigil_cache::{CacheAdmin, EntryOptions, future, sync};

fn tags(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| (*t).to_owned()).collect()
}

fn tagged(tags: &[&'static str]) -> EntryOptions {
    EntryOptions::default().tags(tags.iter().copied())
}

#[tokio::test]
async fn sync_cache_clears_entries_with_any_tag_once_each() {
    let cache: sync::TaggedCache<u32, u32> = sync::TaggedCache::builder()
        .name("markets")
        .max_capacity(100)
        .build();
    cache.insert_with(1, 1, tagged(&["market"]));
    cache.insert_with(2, 2, tagged(&["market", "eu"]));
    cache.insert_with(3, 3, tagged(&["eu"]));
    cache.insert_with(4, 4, tagged(&["us"]));
    cache.insert(5, 5);
    let admin: Arc<dyn CacheAdmin> = cache.clone_admin();
    assert_eq!(admin.name(), Some("markets"));
    assert_eq!(admin.entry_count(), 5);
    assert_eq!(admin.max_capacity(), Some(100));
    assert!(!admin.weighed());

    assert_eq!(admin.clear_tags(&tags(&["market", "eu"])).await, 3);
    assert_eq!(
        admin.clear_tags(&tags(&["market"])).await,
        0,
        "already gone"
    );
    assert_eq!(admin.entry_count(), 2);
    assert_eq!(cache.get(&2), None);
    assert_eq!(cache.get(&4), Some(4));

    assert_eq!(admin.clear_all().await, 2);
    assert_eq!(admin.clear_all().await, 0);
    assert_eq!(cache.entry_count(), 0);
    let stats = admin.stats();
    assert_eq!((stats.tag_invalidations, stats.invalidations), (3, 2));
}

#[tokio::test]
async fn future_cache_is_seen_the_same_way() {
    let cache: future::TaggedCache<String, String> =
        future::TaggedCache::builder().name("pages").build();
    for i in 0..40 {
        cache
            .insert_with(format!("p{i}"), "x".into(), tagged(&["market"]))
            .await;
    }
    cache.insert("home".into(), "y".into()).await;
    let admin = cache.clone_admin();
    assert_eq!(admin.name(), Some("pages"));
    assert_eq!(admin.max_capacity(), None);
    assert_eq!(admin.entry_count(), 41);
    assert_eq!(admin.clear_tags(&tags(&["market"])).await, 40);
    assert_eq!(cache.get("p3").await, None);
    assert_eq!(admin.clear_all().await, 1);
    assert_eq!(cache.get("home").await, None);
}

#[test]
fn a_weigher_makes_sizes_weights() {
    let cache: sync::TaggedCache<u32, Vec<u8>> = sync::TaggedCache::builder()
        .max_capacity(1_000)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .build();
    cache.insert(1, vec![0; 100]);
    cache.insert(2, vec![0; 50]);
    cache.run_pending_tasks();
    let admin: &dyn CacheAdmin = &cache;
    assert!(admin.weighed());
    assert_eq!(admin.weighted_size(), 150);
    assert_eq!(admin.entry_count(), 2);
    assert_eq!(admin.max_capacity(), Some(1_000));
}

#[test]
fn invalidate_all_returns_the_live_entries_it_hid() {
    let cache: sync::TaggedCache<u32, u32> = sync::TaggedCache::new(100);
    cache.insert_with(1, 1, tagged(&["a"]));
    cache.insert_with(2, 2, tagged(&["a", "b"]));
    cache.insert(3, 3);
    cache.invalidate(&3);
    assert_eq!(cache.invalidate_all(), 2);
    assert_eq!(cache.invalidate_all(), 0);
    cache.insert(4, 4);
    assert_eq!(cache.invalidate_all(), 1);
}

#[test]
fn caches_of_different_types_sit_together() {
    let a: sync::TaggedCache<u32, u32> = sync::TaggedCache::new(10);
    let b: future::TaggedCache<String, Vec<u8>> = future::TaggedCache::new(10);
    a.insert(1, 1);
    let all: Vec<Arc<dyn CacheAdmin>> = vec![a.clone_admin(), b.clone_admin()];
    assert_eq!(all.iter().map(|c| c.entry_count()).sum::<u64>(), 1);
    assert!(format!("{:?}", all[0]).contains("TaggedCache"));
}
