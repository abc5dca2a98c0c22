//! [`Stats`]: what a running load test shares between its scheduler and
//! its requests: the latency histograms (overall and per stage), counts,
//! the error window, the in-flight gauge and the stop signal.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use vigil_histogram::{Histogram, Summary, Window};

use crate::report::StoppedBy;
use crate::response::{RequestOutcome, Target};
use crate::window::ErrorWindow;

pub(crate) struct Stage {
    latency: Histogram,
    requests: AtomicU64,
    errors: AtomicU64,
}

impl Stage {
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.requests.load(Relaxed), self.errors.load(Relaxed))
    }

    pub(crate) fn latency(&self) -> Summary {
        self.latency.summary(Window::Cumulative)
    }
}

pub(crate) struct Stats {
    latency: Histogram,
    pub(crate) stages: Vec<Stage>,
    requests: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    dropped: AtomicU64,
    issued: AtomicU64,
    max_requests: Option<u64>,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
    window: Option<Mutex<ErrorWindow>>,
    limit: f64,
    current_stage: AtomicUsize,
    /// The first stop condition met, with the stage it was met in.
    stopped: Mutex<Option<(StoppedBy, usize)>>,
    /// Set when the load ends, for whatever reason: no new requests.
    ending: AtomicBool,
    /// Wakes the scheduler and the virtual users waiting on a timer when
    /// the load ends.
    ended: Notify,
    timeout: Option<Duration>,
}

/// What [`Stats`] is built from.
pub(crate) struct Limits {
    pub(crate) stages: usize,
    pub(crate) max_requests: Option<u64>,
    pub(crate) error_limit: Option<f64>,
    pub(crate) error_window: Duration,
    pub(crate) error_window_min_requests: u64,
    pub(crate) timeout: Option<Duration>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a whole update; a panic cannot leave one
    // half done, so poisoning is ignored.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stats {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            latency: Histogram::new(),
            stages: (0..limits.stages)
                .map(|_| Stage {
                    latency: Histogram::new(),
                    requests: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                })
                .collect(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            max_requests: limits.max_requests,
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
            statuses: Mutex::new(BTreeMap::new()),
            window: limits.error_limit.map(|limit| {
                Mutex::new(ErrorWindow::new(
                    limit,
                    limits.error_window,
                    limits.error_window_min_requests,
                ))
            }),
            limit: limits.error_limit.unwrap_or(1.0),
            current_stage: AtomicUsize::new(0),
            stopped: Mutex::new(None),
            ending: AtomicBool::new(false),
            ended: Notify::new(),
            timeout: limits.timeout,
        }
    }

    /// Claim one request of `max_requests`: the last one claimed stops
    /// the load (it is still sent); false once they are all claimed.
    pub(crate) fn reserve(&self) -> bool {
        let issued = self.issued.fetch_add(1, Relaxed) + 1;
        match self.max_requests {
            Some(max) if issued > max => {
                self.issued.fetch_sub(1, Relaxed);
                false
            }
            Some(max) if issued == max => {
                self.stop(StoppedBy::MaxRequests, self.current_stage());
                true
            }
            _ => true,
        }
    }

    /// A request is about to be sent.
    pub(crate) fn begin(&self) {
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Relaxed);
    }

    /// Send one request (after [`begin`](Stats::begin)) and record it in
    /// `stage`, its latency counted from `start`.
    /// A target that panics fails that request only: the panic is caught
    /// (the panic hook still reports it) and counted as an error, and the
    /// virtual user goes on.
    pub(crate) async fn send(&self, target: &dyn Target, stage: usize, start: Instant) {
        let request = caught(target);
        let (outcome, timed_out) = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, request).await {
                Ok(outcome) => (outcome, false),
                Err(_) => (RequestOutcome::failed(), true),
            },
            None => (request.await, false),
        };
        self.finish(stage, start, outcome, timed_out);
    }

    fn finish(&self, stage: usize, start: Instant, outcome: RequestOutcome, timed_out: bool) {
        let now = Instant::now();
        let latency = now.saturating_duration_since(start);
        self.latency.record_duration(latency);
        self.requests.fetch_add(1, Relaxed);
        if let Some(s) = self.stages.get(stage) {
            s.latency.record_duration(latency);
            s.requests.fetch_add(1, Relaxed);
            s.errors.fetch_add(u64::from(outcome.error), Relaxed);
        }
        if outcome.error {
            self.errors.fetch_add(1, Relaxed);
        }
        if timed_out {
            self.timeouts.fetch_add(1, Relaxed);
        }
        if let Some(status) = outcome.status {
            *lock(&self.statuses).entry(status).or_default() += 1;
        }
        self.in_flight.fetch_sub(1, Relaxed);
        if let Some(window) = &self.window {
            let over = lock(window).record(now, outcome.error);
            if let Some(ratio) = over {
                let limit = self.limit;
                self.stop(StoppedBy::ErrorRate { ratio, limit }, stage);
            }
        }
    }

    pub(crate) fn drop_request(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    pub(crate) fn current_stage(&self) -> usize {
        self.current_stage.load(Relaxed)
    }

    pub(crate) fn set_stage(&self, stage: usize) {
        self.current_stage.store(stage, Relaxed);
    }

    pub(crate) fn error_limit(&self) -> f64 {
        self.limit
    }

    /// Stop the load for `reason` (met in `stage`), unless it already
    /// stopped for another.
    pub(crate) fn stop(&self, reason: StoppedBy, stage: usize) {
        let mut stopped = lock(&self.stopped);
        if stopped.is_none() {
            *stopped = Some((reason, stage));
        }
        drop(stopped);
        self.end();
    }

    pub(crate) fn stopped(&self) -> Option<(StoppedBy, usize)> {
        *lock(&self.stopped)
    }

    /// No new requests from now on; wake whoever waits on a timer.
    pub(crate) fn end(&self) {
        self.ending.store(true, Relaxed);
        self.ended.notify_waiters();
    }

    pub(crate) fn ending(&self) -> bool {
        self.ending.load(Relaxed)
    }

    /// Sleep until `deadline` or until the load ends, whichever is first.
    pub(crate) async fn sleep_until(&self, deadline: Instant) {
        let ended = self.ended.notified();
        let mut ended = std::pin::pin!(ended);
        // Registered before the check, so an `end` in between still wakes us.
        ended.as_mut().enable();
        if self.ending() {
            return;
        }
        let _ = tokio::time::timeout_at(deadline, ended).await;
    }

    pub(crate) fn totals(&self) -> Totals {
        Totals {
            requests: self.requests.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            peak_in_flight: self.peak_in_flight.load(Relaxed),
            statuses: lock(&self.statuses).clone(),
            latency: self.latency.summary(Window::Cumulative),
        }
    }
}

/// `target`'s next request, with panics (while starting or polling it)
/// turned into a failed outcome.
fn caught(target: &dyn Target) -> impl Future<Output = RequestOutcome> + Send + 'static {
    let mut request = catch_unwind(AssertUnwindSafe(|| target.request())).ok();
    std::future::poll_fn(move |cx| {
        let Some(future) = request.as_mut() else {
            return Poll::Ready(RequestOutcome::failed());
        };
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                request = None;
                Poll::Ready(RequestOutcome::failed())
            }
        }
    })
}

pub(crate) struct Totals {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) dropped: u64,
    pub(crate) peak_in_flight: u64,
    pub(crate) statuses: BTreeMap<u16, u64>,
    pub(crate) latency: Summary,
}
