//! The last readings of a [`SystemThread`](super::SystemThread), in a
//! bounded ring.

use std::collections::VecDeque;

use super::SystemSample;
use crate::recommend::UsageWindow;

/// The last `capacity` [`SystemSample`]s, oldest first; pushing into a full
/// history drops the oldest.
///
/// ```
/// use std::time::SystemTime;
/// use vigil_service::system::{SystemHistory, SystemSample};
///
/// let sample = |cpu_ratio| SystemSample {
///     at: SystemTime::now(),
///     cpu_ratio,
///     memory_used_bytes: 1,
///     memory_total_bytes: 4,
///     memory_ratio: 0.25,
///     swap_ratio: 0.0,
///     disks: Vec::new(),
///     load: [0.0; 3],
///     process_resident_bytes: 1,
/// };
/// let mut history = SystemHistory::new(2);
/// for cpu in [0.1, 0.2, 0.6] {
///     history.push(sample(cpu));
/// }
/// assert_eq!(history.len(), 2);
/// assert_eq!(history.latest().map(|s| s.cpu_ratio), Some(0.6));
/// ```
#[derive(Clone, Debug)]
pub struct SystemHistory {
    capacity: usize,
    samples: VecDeque<SystemSample>,
}

impl SystemHistory {
    /// An empty history keeping at most `capacity` readings (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> SystemHistory {
        let capacity = capacity.max(1);
        SystemHistory {
            capacity,
            samples: VecDeque::with_capacity(capacity),
        }
    }

    /// How many readings it keeps at most.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many readings it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether it holds no reading.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Adds the newest reading, dropping the oldest when full.
    pub fn push(&mut self, sample: SystemSample) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The readings held, oldest first.
    #[must_use]
    pub fn samples(&self) -> Vec<SystemSample> {
        self.samples.iter().cloned().collect()
    }

    /// The newest reading.
    #[must_use]
    pub fn latest(&self) -> Option<SystemSample> {
        self.samples.back().cloned()
    }

    /// CPU usage over the readings held (ratios); `None` when empty.
    #[must_use]
    pub fn cpu(&self) -> Option<UsageWindow> {
        self.window(|sample| sample.cpu_ratio)
    }

    /// Memory usage over the readings held (ratios); `None` when empty.
    #[must_use]
    pub fn memory(&self) -> Option<UsageWindow> {
        self.window(|sample| sample.memory_ratio)
    }

    fn window(&self, ratio: impl Fn(&SystemSample) -> f64) -> Option<UsageWindow> {
        let current = ratio(self.samples.back()?);
        let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for value in self.samples.iter().map(ratio) {
            sum += value;
            min = min.min(value);
            max = max.max(value);
        }
        Some(UsageWindow {
            current,
            average: sum / self.samples.len() as f64,
            min,
            max,
            samples: self.samples.len(),
        })
    }
}

impl Default for SystemHistory {
    /// An hour of readings taken every 15 seconds.
    fn default() -> Self {
        SystemHistory::new(DEFAULT_CAPACITY)
    }
}

/// [`SystemHistory::default`]'s capacity: an hour at 15-second ticks.
pub const DEFAULT_CAPACITY: usize = 240;
