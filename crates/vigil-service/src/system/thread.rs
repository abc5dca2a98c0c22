//! [`SystemThread`]: a [`SystemCollector`] ticking on a background thread.

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics::Recorder;

use super::{SystemCollector, SystemHistory};

/// The name of the thread [`SystemThread::spawn`] starts.
pub const THREAD_NAME: &str = "vigil-system";

/// A [`SystemCollector`] run every `interval` on a thread named
/// `vigil-system`, each reading recorded and pushed into a shared
/// [`SystemHistory`]. [`stop`](SystemThread::stop), or dropping it, stops
/// the thread and waits for it (at once: the wait between ticks is
/// interrupted).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use vigil_service::system::{SystemHistory, SystemThread};
///
/// let history = Arc::new(Mutex::new(SystemHistory::new(240)));
/// let thread = SystemThread::spawn(Duration::from_secs(15), None, Arc::clone(&history))?;
/// // The first reading is taken before `spawn` returns.
/// assert_eq!(history.lock().unwrap().len(), 1);
/// thread.stop();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SystemThread {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl SystemThread {
    /// Takes a first reading now, then starts the thread taking one every
    /// `interval` (at least a millisecond). Readings are recorded into
    /// `recorder`, or into the global recorder when `None`.
    ///
    /// The first reading measures CPU usage over
    /// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms on Linux), so
    /// `spawn` takes that long; an `interval` shorter than that is
    /// stretched to it (see [`SystemCollector::collect`]).
    ///
    /// # Errors
    ///
    /// The operating system refused to start the thread.
    pub fn spawn(
        interval: Duration,
        recorder: Option<Arc<dyn Recorder + Send + Sync>>,
        history: Arc<Mutex<SystemHistory>>,
    ) -> io::Result<SystemThread> {
        let interval = interval.max(Duration::from_millis(1));
        let mut collector = SystemCollector::new();
        let tick = move |collector: &mut SystemCollector| {
            let sample = match &recorder {
                Some(recorder) => {
                    metrics::with_local_recorder(recorder.as_ref(), || collector.collect())
                }
                None => collector.collect(),
            };
            // A panic elsewhere while holding the lock leaves a history
            // that is still a valid ring.
            history
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sample);
        };
        tick(&mut collector);
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                // Ends on stop() (a message) and on drop (disconnected).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    tick(&mut collector);
                }
            })?;
        Ok(SystemThread {
            stop: Some(stop),
            handle: Some(handle),
        })
    }

    /// Stops the thread and waits for it to end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Whether the thread is still running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.handle
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            // Fails only if the thread is gone already.
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            // A panic of the collector ended the thread already; nothing
            // more to stop.
            let _ = handle.join();
        }
    }
}

impl Drop for SystemThread {
    fn drop(&mut self) {
        self.shut_down();
    }
}
