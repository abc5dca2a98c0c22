//! [`Stats`]: what a running load test shares between its scheduler and
//! its requests: the latency histograms (overall and per stage), counts,
//! the error window, the in-flight gauge, the judgement of stress steps
//! and the stop signal.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
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
    /// Requests of this stage not yet recorded.
    in_flight: AtomicU64,
    /// The load moved past this stage: it gets no new requests.
    closed: AtomicBool,
    /// A stress step is judged once, when it is closed and its last
    /// request is recorded.
    judged: AtomicBool,
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
    /// From the intended start (corrected for coordinated omission).
    latency: Histogram,
    /// From the moment each request was actually sent (uncorrected).
    sent_latency: Histogram,
    /// How late each request was sent after its intended start.
    lateness: Histogram,
    pub(crate) stages: Vec<Stage>,
    requests: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    unfinished: AtomicU64,
    judge_steps: bool,
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
    /// A stress test: each step is held to the error-rate limit as a
    /// whole once its last request is recorded.
    pub(crate) judge_steps: bool,
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
            sent_latency: Histogram::new(),
            lateness: Histogram::new(),
            stages: (0..limits.stages)
                .map(|_| Stage {
                    latency: Histogram::new(),
                    requests: AtomicU64::new(0),
                    errors: AtomicU64::new(0),
                    in_flight: AtomicU64::new(0),
                    closed: AtomicBool::new(false),
                    judged: AtomicBool::new(false),
                })
                .collect(),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            unfinished: AtomicU64::new(0),
            judge_steps: limits.judge_steps,
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

    /// Requests not yet claimed of `max_requests` (`u64::MAX` without it).
    pub(crate) fn remaining(&self) -> u64 {
        self.max_requests.map_or(u64::MAX, |max| {
            max.saturating_sub(self.issued.load(Relaxed))
        })
    }

    /// A request of `stage` is about to be sent.
    pub(crate) fn begin(&self, stage: usize) {
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Relaxed);
        if let Some(s) = self.stages.get(stage) {
            s.in_flight.fetch_add(1, SeqCst);
        }
    }

    /// [`begin`](Stats::begin) a request in the current stage, and return
    /// it. Rechecked after counting it in flight, so a stage the scheduler
    /// closed meanwhile (and may have judged) gets no late request.
    pub(crate) fn begin_in_current_stage(&self) -> usize {
        loop {
            let stage = self.current_stage.load(SeqCst);
            self.begin(stage);
            if self.current_stage.load(SeqCst) == stage {
                return stage;
            }
            self.in_flight.fetch_sub(1, Relaxed);
            self.leave(stage);
        }
    }

    /// Send one request (after [`begin`](Stats::begin)) and record it in
    /// `stage`, its latency counted from `intended` (its scheduled start
    /// in an open loop). A target that panics fails that request only:
    /// the panic is caught (the panic hook still reports it) and counted
    /// as an error, and the virtual user goes on. A request abandoned
    /// after the grace period (its task aborted) is recorded when dropped:
    /// an error, unfinished, its latency up to the abort.
    pub(crate) async fn send(&self, target: &dyn Target, stage: usize, intended: Instant) {
        let sent = Instant::now();
        let mut pending = Pending {
            stats: self,
            stage,
            intended,
            sent,
            done: false,
        };
        let request = caught(target);
        let (outcome, timed_out) = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, request).await {
                Ok(outcome) => (outcome, false),
                Err(_) => (RequestOutcome::failed(), true),
            },
            None => (request.await, false),
        };
        pending.done = true;
        self.record(
            stage,
            intended,
            Some(sent),
            outcome,
            Ending::Completed { timed_out },
        );
    }

    /// Record one request. `sent` is `None` for one never sent.
    fn record(
        &self,
        stage: usize,
        intended: Instant,
        sent: Option<Instant>,
        outcome: RequestOutcome,
        ending: Ending,
    ) {
        let now = Instant::now();
        let latency = now.saturating_duration_since(intended);
        self.latency.record_duration(latency);
        if let Some(sent) = sent {
            self.sent_latency
                .record_duration(now.saturating_duration_since(sent));
            self.lateness
                .record_duration(sent.saturating_duration_since(intended));
        }
        self.requests.fetch_add(1, Relaxed);
        if let Some(s) = self.stages.get(stage) {
            s.latency.record_duration(latency);
            s.requests.fetch_add(1, Relaxed);
            s.errors.fetch_add(u64::from(outcome.error), Relaxed);
        }
        if outcome.error {
            self.errors.fetch_add(1, Relaxed);
        }
        match ending {
            Ending::Completed { timed_out: true } => {
                self.timeouts.fetch_add(1, Relaxed);
            }
            Ending::Completed { timed_out: false } => {}
            Ending::Unfinished => {
                self.unfinished.fetch_add(1, Relaxed);
            }
            Ending::Dropped => {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
        if let Some(status) = outcome.status {
            *lock(&self.statuses).entry(status).or_default() += 1;
        }
        if sent.is_some() {
            self.in_flight.fetch_sub(1, Relaxed);
            self.leave(stage);
        }
        // Once the load has ended there is nothing left to stop.
        if let Some(window) = &self.window
            && !self.ending()
        {
            let over = lock(window).record(now, outcome.error);
            if let Some(ratio) = over {
                let limit = self.limit;
                self.stop(StoppedBy::ErrorRate { ratio, limit }, stage);
            }
        }
    }

    /// A request of `stage` left the in-flight count.
    fn leave(&self, stage: usize) {
        if let Some(s) = self.stages.get(stage)
            && s.in_flight.fetch_sub(1, SeqCst) == 1
        {
            self.judge(stage);
        }
    }

    /// The load moved past `stage`: a stress step is judged as soon as
    /// its requests still in flight are recorded.
    pub(crate) fn close_stage(&self, stage: usize) {
        if let Some(s) = self.stages.get(stage) {
            s.closed.store(true, SeqCst);
            if s.in_flight.load(SeqCst) == 0 {
                self.judge(stage);
            }
        }
    }

    /// Stop a stress test if step `stage`, closed and with all its
    /// requests recorded, is above the error-rate limit as a whole.
    fn judge(&self, stage: usize) {
        let Some(s) = self.stages.get(stage) else {
            return;
        };
        if !self.judge_steps
            || !s.closed.load(SeqCst)
            || s.in_flight.load(SeqCst) != 0
            || s.judged.swap(true, SeqCst)
        {
            return;
        }
        let (requests, errors) = s.counts();
        let ratio = crate::bench::ratio(errors, requests);
        if ratio > self.limit {
            let limit = self.limit;
            self.stop(StoppedBy::ErrorRate { ratio, limit }, stage);
        }
    }

    /// An open-loop request due at `intended` that the in-flight cap kept
    /// from being sent until the load ended: an error, its latency up to
    /// now.
    pub(crate) fn drop_request(&self, stage: usize, intended: Instant) {
        self.record(
            stage,
            intended,
            None,
            RequestOutcome::failed(),
            Ending::Dropped,
        );
    }

    /// An open-loop request waits for a free slot under the in-flight cap.
    pub(crate) fn queue(&self) {
        self.queued.fetch_add(1, Relaxed);
    }

    /// Requests completed so far (recorded, neither abandoned nor dropped).
    pub(crate) fn completed(&self) -> u64 {
        self.requests
            .load(Relaxed)
            .saturating_sub(self.dropped.load(Relaxed))
            .saturating_sub(self.unfinished.load(Relaxed))
    }

    pub(crate) fn current_stage(&self) -> usize {
        self.current_stage.load(Relaxed)
    }

    pub(crate) fn set_stage(&self, stage: usize) {
        // SeqCst with `begin_in_current_stage` and `close_stage`: a request
        // counted in flight in a stage is seen by the stage's judgement.
        self.current_stage.store(stage, SeqCst);
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

    /// Sleep until `deadline` (none: never) or until the load ends,
    /// whichever is first.
    pub(crate) async fn sleep_until(&self, deadline: Option<Instant>) {
        self.before_end(deadline, std::future::pending::<()>())
            .await;
    }

    /// Await `future` unless `deadline` passes or the load ends first
    /// (then `None`).
    pub(crate) async fn before_end<F: Future>(
        &self,
        deadline: Option<Instant>,
        future: F,
    ) -> Option<F::Output> {
        let ended = self.ended.notified();
        let mut ended = std::pin::pin!(ended);
        // Registered before the check, so an `end` in between still wakes us.
        ended.as_mut().enable();
        if self.ending() {
            return None;
        }
        let mut future = std::pin::pin!(future);
        let mut timer = std::pin::pin!(deadline.map(tokio::time::sleep_until));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            let expired = timer
                .as_mut()
                .as_pin_mut()
                .is_some_and(|timer| timer.poll(cx).is_ready());
            if expired || ended.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }

    /// Wait until `at` without tokio's timer delay: the timer fires on
    /// the millisecond tick after its deadline, a millisecond or more
    /// late, which an open loop would add to every request's latency. So
    /// sleep until [`EARLY`] before `at`, then yield until the clock
    /// reaches it (a busy wait of about a millisecond per request). On a
    /// paused test clock, which stands still while tasks run, the last
    /// step is an ordinary sleep (exact there). Returns early if the load
    /// ends.
    pub(crate) async fn wait_until(&self, at: Instant) {
        if let Some(early) = at.checked_sub(EARLY)
            && early > Instant::now()
        {
            self.sleep_until(Some(early)).await;
        }
        let mut last = None;
        loop {
            let now = Instant::now();
            if now >= at || self.ending() {
                return;
            }
            if last == Some(now) {
                self.sleep_until(Some(at)).await;
                return;
            }
            last = Some(now);
            tokio::task::yield_now().await;
        }
    }

    /// The whole load's counts, in this order: requests, errors,
    /// timeouts, dropped, queued, unfinished, and the peak in flight.
    pub(crate) fn totals(&self) -> [u64; 7] {
        [
            &self.requests,
            &self.errors,
            &self.timeouts,
            &self.dropped,
            &self.queued,
            &self.unfinished,
            &self.peak_in_flight,
        ]
        .map(|count| count.load(Relaxed))
    }

    /// The whole load's latencies: from the intended start, from the send,
    /// and how late the requests were sent.
    pub(crate) fn summaries(&self) -> [Summary; 3] {
        [&self.latency, &self.sent_latency, &self.lateness]
            .map(|histogram| histogram.summary(Window::Cumulative))
    }

    /// How many responses had each status.
    pub(crate) fn statuses(&self) -> BTreeMap<u16, u64> {
        lock(&self.statuses).clone()
    }
}

/// How early [`Stats::wait_until`] leaves tokio's timer: more than its
/// usual delay (a millisecond tick, plus the wake-up).
const EARLY: Duration = Duration::from_millis(2);

/// How a recorded request ended.
enum Ending {
    Completed {
        timed_out: bool,
    },
    /// Sent, then abandoned when the grace period ran out.
    Unfinished,
    /// Never sent.
    Dropped,
}

/// A request in flight: recorded as unfinished if its task is aborted
/// (dropped) before it completes.
struct Pending<'a> {
    stats: &'a Stats,
    stage: usize,
    intended: Instant,
    sent: Instant,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.stats.record(
                self.stage,
                self.intended,
                Some(self.sent),
                RequestOutcome::failed(),
                Ending::Unfinished,
            );
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
