//! vigil in one screen: install the monitor, time sync and async functions
//! with `#[timed]`, see failures, cancellations and slow calls, then print
//! a percentile table and the Prometheus exposition.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::time::Duration;

use vigil::{Monitor, timed};

/// A fast synchronous function.
#[timed]
fn parse_order_id(raw: &str) -> Result<u64, std::num::ParseIntError> {
    raw.trim_start_matches("order-").parse()
}

/// An async function that fails for some inputs.
#[timed(labels(backend = "inventory"), concurrency)]
async fn reserve_stock(order: u64) -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if order.is_multiple_of(5) {
        return Err(format!("order {order}: out of stock"));
    }
    Ok(())
}

/// A slow call: anything over 20 ms is logged as a warning.
#[timed(slow = "20ms")]
async fn charge_card(order: u64) -> Result<(), String> {
    let delay = if order == 7 { 30 } else { 1 };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    Ok(())
}

/// The request handler: callers of the functions above report it as
/// `caller_function="handle_order"`.
#[timed]
async fn handle_order(raw: &str) -> Result<u64, String> {
    let order = parse_order_id(raw).map_err(|e| e.to_string())?;
    reserve_stock(order).await?;
    charge_card(order).await?;
    Ok(order)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    // One builder call: vigil's registry becomes the global `metrics`
    // recorder. Add `.listen("127.0.0.1:9000")` to serve GET /metrics.
    let monitor = Monitor::builder()
        .global_label("service", "quickstart")
        .install()
        .expect("no other metrics recorder is installed in this example");

    for raw in ["order-1", "order-5", "order-7", "order-x", "order-12"] {
        match handle_order(raw).await {
            Ok(order) => eprintln!("{raw}: ok ({order})"),
            Err(e) => eprintln!("{raw}: failed: {e}"),
        }
    }

    // A request abandoned by its client: recorded as cancelled, and the
    // in-flight gauge of `reserve_stock` returns to 0.
    let abandoned = tokio::time::timeout(Duration::from_micros(100), handle_order("order-3")).await;
    eprintln!(
        "order-3: {}",
        if abandoned.is_err() {
            "cancelled"
        } else {
            "ok"
        }
    );

    println!(
        "{:<44} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "function", "calls", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for histogram in &monitor.summary().histograms {
        let s = &histogram.total;
        let ms = |seconds: f64| seconds * 1e3;
        println!(
            "{:<44} {:>5} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            histogram
                .labels
                .get("function")
                .map_or(histogram.name.as_str(), String::as_str),
            s.count,
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max),
        );
    }
    println!();
    println!("{}", monitor.render());
}
