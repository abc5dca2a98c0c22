//! `#[cached(crate = vigil_cache)]`: the macro works for users of the
//! `vigil-cache` crate alone, in every flavour it generates.

use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_macros::cached;

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(crate = vigil_cache, ttl = "1m", tags = ["double"])]
fn double(x: u32) -> u32 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[cached(crate = vigil_cache)]
fn checked(x: &str) -> Result<u32, std::num::ParseIntError> {
    x.parse()
}

#[cached(crate = vigil_cache, key = id)]
async fn load(_pool: &str, id: u64) -> Option<String> {
    Some(format!("{id}"))
}

struct Repo;

impl Repo {
    #[cached(crate = ::vigil_cache, max_capacity = 10)]
    fn get(&self, id: u64) -> u64 {
        id
    }
}

#[test]
fn the_sub_crate_path_is_used_for_every_flavour() {
    assert_eq!(double(2), 4);
    assert_eq!(double(2), 4);
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    let _: &'static vigil_cache::sync::TaggedCache<u32, u32> = double_cache();
    assert_eq!(double_cache().invalidate_tag("double"), 1);

    assert_eq!(checked("5"), Ok(5));
    assert!(checked("x").is_err());
    assert_eq!(checked_cache().get("5"), Some(5));

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(load("pool", 3)).as_deref(), Some("3"));
    let _: &'static vigil_cache::future::TaggedCache<u64, String> = load_cache();

    assert_eq!(Repo.get(1), 1);
    assert_eq!(Repo::get_cache().stats().capacity, Some(10));
}
