//! Benchmarks live in the `[[bench]]` targets of this package; this library
//! holds what several of them measure against.

use std::hint::black_box;

/// An empty function the compiler may not inline or remove.
#[inline(never)]
pub fn bare() -> u64 {
    black_box(1)
}

/// The floor of timing one call: what any timer must do. Two clock reads
/// (`quanta`) around the call and one record into an owned
/// `hdrhistogram::Histogram`.
pub struct Floor(hdrhistogram::Histogram<u64>);

impl Default for Floor {
    fn default() -> Self {
        Floor(hdrhistogram::Histogram::new(3).expect("3 significant figures are valid"))
    }
}

impl Floor {
    /// Times one call of [`bare`].
    #[inline]
    pub fn time_bare(&mut self) -> u64 {
        let start = quanta::Instant::now();
        let value = bare();
        let elapsed = quanta::Instant::now().duration_since(start);
        self.0
            .saturating_record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        value
    }
}
