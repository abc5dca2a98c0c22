//! The system metrics thread of a monitor and the history it keeps.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use vigil_service::recommend::{DiskUsage, RecommendInputs, UsageWindow};
use vigil_service::system::{DEFAULT_CAPACITY, SystemHistory, SystemThread};

use super::{SystemUsage, Usage};

/// The `vigil-system` thread, recording into the monitor's recorder, and
/// the readings it keeps.
#[derive(Debug)]
pub(super) struct System {
    history: Arc<Mutex<SystemHistory>>,
    /// Held for its `Drop`, which stops the thread.
    _thread: Option<SystemThread>,
}

impl System {
    /// Takes a first reading and starts the thread taking one every
    /// `interval`.
    pub(super) fn start(interval: Duration, recorder: &crate::Recorder) -> Self {
        let history = Arc::new(Mutex::new(SystemHistory::new(DEFAULT_CAPACITY)));
        let recorder: Arc<dyn metrics::Recorder + Send + Sync> = Arc::new(recorder.clone());
        let thread = SystemThread::spawn(interval, Some(recorder), Arc::clone(&history));
        if let Err(error) = &thread {
            tracing::warn!("vigil could not start its system metrics thread: {error}");
        }
        Self {
            history,
            _thread: thread.ok(),
        }
    }

    fn history(&self) -> MutexGuard<'_, SystemHistory> {
        // A history is a valid ring whatever panicked while holding it.
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// CPU and memory over the history, in percent.
    pub(super) fn usage(&self) -> Option<SystemUsage> {
        let history = self.history();
        let at = history.latest()?.at;
        let percent = |w: UsageWindow| Usage {
            current: w.current * 100.0,
            average: w.average * 100.0,
            min: w.min * 100.0,
            max: w.max * 100.0,
            unit: "percent".to_owned(),
            timestamp: at,
        };
        Some(SystemUsage {
            cpu_usage: percent(history.cpu()?),
            memory_usage: percent(history.memory()?),
        })
    }

    /// The usage ratio of the fullest disk of the latest reading (the
    /// disks mounted then; a disk unmounted since an earlier reading does
    /// not count).
    pub(super) fn fullest_disk(&self) -> Option<f64> {
        let latest = self.history().latest()?;
        let ratios = latest.disks.iter().map(|d| d.ratio);
        ratios.filter(|r| r.is_finite()).reduce(f64::max)
    }

    /// The system part of the recommendations' inputs.
    pub(super) fn fill(&self, inputs: &mut RecommendInputs) {
        let history = self.history();
        inputs.cpu = history.cpu();
        inputs.memory = history.memory();
        let samples = history.samples();
        drop(history);
        inputs.memory_used = samples
            .iter()
            .map(|s| (s.at, s.memory_used_bytes as f64))
            .collect();
        let mut disks: Vec<DiskUsage> = Vec::new();
        for sample in &samples {
            for disk in &sample.disks {
                let point = (sample.at, disk.ratio);
                match disks.iter_mut().find(|d| d.mount == disk.mount) {
                    Some(usage) => usage.history.push(point),
                    None => disks.push(DiskUsage {
                        mount: disk.mount.clone(),
                        history: vec![point],
                    }),
                }
            }
        }
        inputs.disks = disks;
    }
}
