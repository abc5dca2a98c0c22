//! A cache-aside read path with tags: rows cached per user and per market,
//! `#[cached]` on a function, invalidation by tag after a write, and the
//! statistics and metrics every named cache reports.
//!
//! ```text
//! cargo run --example cache
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vigil::cache::EntryOptions;
use vigil::cache::sync::TaggedCache;
use vigil::{Monitor, cached};

/// Database reads, counted so the output shows what the cache saved.
static DB_READS: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
struct Order {
    id: u64,
    user: u64,
    market: &'static str,
    total_cents: u64,
}

fn load_order_from_db(id: u64) -> Order {
    DB_READS.fetch_add(1, Ordering::Relaxed);
    Order {
        id,
        user: id % 3,
        market: if id.is_multiple_of(2) { "eu" } else { "us" },
        total_cents: id * 100,
    }
}

/// Cache-aside: look in the cache, load on a miss (one loader per key, even
/// under concurrent misses), tag the entry with what it depends on.
fn order(cache: &TaggedCache<u64, Order>, id: u64) -> Order {
    cache.get_with_options(id, || {
        let order = load_order_from_db(id);
        let tags = [
            format!("user:{}", order.user),
            format!("market:{}", order.market),
        ];
        (
            order,
            EntryOptions::default()
                .ttl(Duration::from_secs(300))
                .tags(tags),
        )
    })
}

/// A computed value cached by the macro, tagged by its argument.
#[cached(ttl = "1m", tags = ["reports", format!("market:{market}")])]
fn market_report(market: &str) -> String {
    DB_READS.fetch_add(1, Ordering::Relaxed);
    format!("{market}: 42 orders")
}

fn main() {
    let monitor = Monitor::builder()
        .manual_upkeep()
        .install()
        .expect("no other metrics recorder is installed in this example");

    let orders: TaggedCache<u64, Order> = TaggedCache::builder()
        .name("orders")
        .max_capacity(10_000)
        .default_ttl(Duration::from_secs(600))
        .build();

    for round in 0..3 {
        for id in 1..=6 {
            let o = order(&orders, id);
            if round == 0 {
                println!(
                    "order {} of user {} in {}: {} cents",
                    o.id, o.user, o.market, o.total_cents
                );
            }
        }
        let _ = market_report("eu");
        let _ = market_report("us");
    }
    println!(
        "database reads after 3 rounds: {}",
        DB_READS.load(Ordering::Relaxed)
    );

    // User 1 changed their orders: drop everything that depends on them.
    let dropped = orders.invalidate_tag("user:1");
    println!("invalidate_tag(\"user:1\") dropped {dropped} orders");
    // The EU market closed for the day: orders and reports tagged with it go.
    let dropped =
        orders.invalidate_tag("market:eu") + market_report_cache().invalidate_tag("market:eu");
    println!("invalidate_tag(\"market:eu\") dropped {dropped} entries");

    for id in 1..=6 {
        let _ = order(&orders, id);
    }
    let _ = market_report("eu");
    println!(
        "database reads after invalidation and one more round: {}",
        DB_READS.load(Ordering::Relaxed)
    );

    println!(
        "\norders: {}",
        serde_json::to_string_pretty(&orders.stats()).expect("stats serialize")
    );
    println!(
        "market_report: {}",
        serde_json::to_string_pretty(&market_report_cache().stats()).expect("stats serialize")
    );

    println!("\nwhat /metrics shows:");
    for line in monitor.render().lines().filter(|l| l.starts_with("cache_")) {
        println!("{line}");
    }
}
