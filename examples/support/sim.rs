//! Simulated dependencies: a small seeded PRNG, log-normal latencies given
//! by their median and p99, failure rates, and a switch that degrades them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// SplitMix64: small, fast and reproducible from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

/// Seeds handed out by [`Rng::next_seeded`], in order of the calls.
static SEEDS: AtomicU64 = AtomicU64::new(0x005E_ED0F_7161);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator with the next seed of a process-wide sequence, for
    /// request handlers that need randomness of their own.
    pub fn next_seeded() -> Self {
        Self(SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// One of `items` by weight: `(weight, item)` pairs.
    pub fn weighted<'a, T>(&mut self, items: &'a [(u32, T)]) -> &'a T {
        let total: u64 = items.iter().map(|(w, _)| u64::from(*w)).sum();
        let mut roll = self.below(total);
        for (weight, item) in items {
            if roll < u64::from(*weight) {
                return item;
            }
            roll -= u64::from(*weight);
        }
        &items[items.len() - 1].1
    }

    /// A standard normal deviate (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A log-normal latency distribution, the usual shape of service times: a
/// median and a long right tail up to the p99.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    median: f64,
    sigma: f64,
}

/// The standard normal's 99th percentile.
const Z99: f64 = 2.326_347_874;

impl Latency {
    /// The distribution with this median and p99 (p99 >= median).
    pub fn new(median: Duration, p99: Duration) -> Self {
        let median = median.as_secs_f64().max(1e-6);
        let ratio = (p99.as_secs_f64() / median).max(1.0);
        Self {
            median,
            sigma: ratio.ln() / Z99,
        }
    }

    /// [`new`](Self::new) in milliseconds.
    pub fn ms(median: f64, p99: f64) -> Self {
        Self::new(
            Duration::from_secs_f64(median / 1e3),
            Duration::from_secs_f64(p99 / 1e3),
        )
    }

    /// The same shape `factor` times slower.
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            median: self.median * factor,
            sigma: self.sigma,
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        Duration::from_secs_f64(self.median * (self.sigma * rng.normal()).exp())
    }
}

/// A switch the load driver turns on during its degradation phase; the
/// simulated dependencies read it.
#[derive(Clone, Debug, Default)]
pub struct Degradation(Arc<AtomicBool>);

impl Degradation {
    /// A switch, off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the degradation is on.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Turns it on or off.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

/// A slow dependency (a database, a model provider, a search index): a
/// latency distribution, a failure rate, and how both change while the
/// [`Degradation`] is on.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// Its name, in error messages.
    pub name: &'static str,
    latency: Latency,
    failure_rate: f64,
    degraded_latency: f64,
    degraded_failure_rate: f64,
    degradation: Degradation,
}

impl Dependency {
    /// A dependency answering with `latency` and failing at `failure_rate`
    /// (0 to 1); unaffected by the degradation until
    /// [`degrades`](Self::degrades).
    pub fn new(name: &'static str, latency: Latency, failure_rate: f64) -> Self {
        Self {
            name,
            latency,
            failure_rate,
            degraded_latency: 1.0,
            degraded_failure_rate: failure_rate,
            degradation: Degradation::new(),
        }
    }

    /// While `degradation` is on: `latency_factor` times slower, failing at
    /// `failure_rate`.
    pub fn degrades(
        mut self,
        degradation: &Degradation,
        latency_factor: f64,
        failure_rate: f64,
    ) -> Self {
        self.degradation = degradation.clone();
        self.degraded_latency = latency_factor;
        self.degraded_failure_rate = failure_rate;
        self
    }

    /// One call: waits a drawn latency, then fails or succeeds.
    pub async fn call(&self) -> Result<(), String> {
        let (latency, failure_rate, rng) = self.draw();
        tokio::time::sleep(latency).await;
        let mut rng = rng;
        if rng.chance(failure_rate) {
            return Err(format!("{}: timed out", self.name));
        }
        Ok(())
    }

    /// [`call`](Self::call) blocking the thread (for `#[timed]` sync code
    /// run on a blocking task).
    pub fn call_blocking(&self) -> Result<(), String> {
        let (latency, failure_rate, mut rng) = self.draw();
        std::thread::sleep(latency);
        if rng.chance(failure_rate) {
            return Err(format!("{}: timed out", self.name));
        }
        Ok(())
    }

    fn draw(&self) -> (Duration, f64, Rng) {
        let mut rng = Rng::next_seeded();
        let (latency, failure_rate) = if self.degradation.is_on() {
            (
                self.latency.scaled(self.degraded_latency),
                self.degraded_failure_rate,
            )
        } else {
            (self.latency, self.failure_rate)
        };
        (latency.sample(&mut rng), failure_rate, rng)
    }
}
