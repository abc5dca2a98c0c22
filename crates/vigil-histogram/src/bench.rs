//! [`bench`]: time a closure many times and summarize, for quick
//! measurements in tests and examples (criterion remains the tool for
//! benchmarks that gate changes).

use std::hint::black_box;
use std::time::Duration;

use crate::{Config, Snapshot, Summary};

/// Call `f` `iterations` times, timing each call with the TSC-backed
/// `quanta` clock, and summarize the call times in seconds. Results go
/// through `black_box` so the calls are not optimized away; each timing
/// includes one clock read (about 10-15 ns).
///
/// ```
/// let summary = vigil_histogram::bench(1_000, || (0..100u64).sum::<u64>());
/// assert_eq!(summary.count, 1_000);
/// assert!(summary.p50 < 0.001);
/// ```
pub fn bench<R>(iterations: u64, mut f: impl FnMut() -> R) -> Summary {
    let config = Config::new();
    let clock = quanta::Clock::new();
    let mut histogram = config
        .layout()
        .expect("the default config is valid")
        .empty_histogram();
    let mut sum = 0u128;
    let began = clock.now();
    for _ in 0..iterations {
        let start = clock.raw();
        black_box(f());
        let end = clock.raw();
        let nanos = clock.delta_as_nanos(start, end);
        histogram.saturating_record(nanos);
        sum += u128::from(nanos.min(config.highest));
    }
    let window: Duration = clock.now().saturating_duration_since(began);
    Snapshot::from_hdr(histogram, sum, config.scale, window)
        .expect("a histogram of the default config has a supported layout")
        .summary()
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_iterations_give_an_empty_summary() {
        let summary = super::bench(0, || ());
        assert_eq!(summary.count, 0);
        assert_eq!(summary.p99, 0.0);
    }
}
