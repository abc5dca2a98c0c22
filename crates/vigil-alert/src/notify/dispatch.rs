//! [`Dispatcher`]: hands notifications to per-notifier queues without
//! waiting, and delivers them from background tasks with timeouts and
//! retries; every drop is counted and logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use metrics::{Unit, counter, describe_counter};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{NOTIFICATION_FAILURES_TOTAL, NOTIFICATIONS_TOTAL, Notifier, NotifyError};
use crate::Notification;

/// The sending side of a notifier's queue.
type Queue = mpsc::Sender<Arc<Notification>>;

/// The log message of a receiver that delivers again after drops.
const RECOVERED: &str = "alert notifications delivered again after a burst of drops";

/// Why a notification was dropped from a full queue, after its capacity.
const FULL: &str = "places of the queue are taken";

/// Why a notification was dropped when its notifier's task has stopped.
const STOPPED: &str = "the delivery task has stopped (its runtime shut down)";

/// While a burst of drops lasts, it is logged again this often.
const BURST_REMINDER: Duration = Duration::from_secs(300);

/// Registers the help text of the delivery metrics with the installed
/// `metrics` recorder. [`DispatcherBuilder::build`] calls it; call it again
/// if the recorder is installed later.
pub fn describe_metrics() {
    describe_counter!(
        NOTIFICATIONS_TOTAL,
        Unit::Count,
        "Alert notifications delivered, by receiver and notifier."
    );
    describe_counter!(
        NOTIFICATION_FAILURES_TOTAL,
        Unit::Count,
        "Alert notifications dropped, by receiver, notifier and reason \
         (queue_full, timeout, error, unknown_receiver)."
    );
}

/// Delivers notifications to the notifiers registered per receiver, off the
/// caller's path.
///
/// Every (receiver, notifier) pair has a bounded queue drained by its own
/// tokio task, so one slow notifier delays neither evaluation nor the
/// others. [`dispatch`](Self::dispatch) only tries to enqueue. Each attempt
/// runs under a timeout (and in its own task, so a panicking notifier
/// costs one notification, not its queue); retryable failures
/// ([`NotifyError::is_retryable`]) are tried again after
/// `initial_backoff`, doubling up to `max_backoff` and
/// [jittered](DispatcherBuilder::jitter) (backon's exponential backoff), up
/// to `max_attempts` attempts in all; a receiver asking for a longer wait
/// ([`NotifyError::Throttled`], its `Retry-After`) gets it, up to
/// `max_backoff`. Queued notifications wait while one is retried; when
/// the queue is full, new ones are dropped.
///
/// Every outcome is counted (see [the module docs](super#metrics)), and
/// drops are logged: the first of a burst per (receiver, reason) at `WARN`,
/// the rest summed up when the receiver delivers again or every five
/// minutes.
///
/// Dropping the dispatcher closes the queues: its tasks deliver what is
/// queued and end (unless the runtime shuts down first).
/// [`shutdown`](Self::shutdown) does the same and waits for them.
///
/// ```
/// use std::time::Duration;
/// use vigil_alert::notify::{notifier_fn, Dispatcher, TracingNotifier};
/// # use vigil_alert::{AlertStatus, Labels, Notification};
/// # fn group(receiver: &str) -> Notification {
/// #     Notification { receiver: receiver.into(), group_key: "{}:{}".into(),
/// #         group_labels: Labels::new(), status: AlertStatus::Firing, alerts: vec![],
/// #         common_labels: Labels::new(), common_annotations: Labels::new() }
/// # }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), vigil_alert::notify::NotifyError> {
/// let dispatcher = Dispatcher::builder()
///     .receiver("pager", TracingNotifier::new())
///     .receiver("audit", notifier_fn(|n| async move { println!("{}", n.group_key) }))
///     .queue_capacity(64)
///     .timeout(Duration::from_secs(5))
///     .initial_backoff(Duration::from_secs(1))
///     .max_backoff(Duration::from_secs(60))
///     .max_attempts(4)
///     .build()?;
///
/// assert_eq!(dispatcher.dispatch(group("audit")), 1);
/// // No notifier for "nobody": dropped and counted as `unknown_receiver`.
/// assert_eq!(dispatcher.dispatch(group("nobody")), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Dispatcher {
    /// Per receiver: each notifier's name and the sending side of its queue.
    receivers: HashMap<String, Vec<(String, Queue)>>,
    bursts: Arc<Bursts>,
    workers: Vec<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts configuring a dispatcher.
    pub fn builder() -> DispatcherBuilder {
        DispatcherBuilder::default()
    }

    /// Queues `notification` for every notifier of its receiver, without
    /// waiting; returns on how many queues it was placed.
    ///
    /// Never blocks: a full queue or an unknown receiver drops the
    /// notification for that notifier (counted as `queue_full` or
    /// `unknown_receiver`, and logged).
    pub fn dispatch(&self, notification: Notification) -> usize {
        let Some(queues) = self.receivers.get(&notification.receiver) else {
            let detail = "no notifier is registered for this receiver";
            (self.bursts).dropped(&notification, "none", "unknown_receiver", detail);
            return 0;
        };
        let notification = Arc::new(notification);
        let queued = |(notifier, queue): &&(String, Queue)| {
            let capacity = queue.max_capacity();
            let (reason, detail) = match queue.try_send(notification.clone()) {
                Ok(()) => return true,
                Err(TrySendError::Full(_)) => ("queue_full", format!("all {capacity} {FULL}")),
                // The worker is gone: only if the runtime shut down.
                Err(TrySendError::Closed(_)) => ("error", STOPPED.to_owned()),
            };
            (self.bursts).dropped(&notification, notifier, reason, &detail);
            false
        };
        queues.iter().filter(queued).count()
    }

    /// [`dispatch`](Self::dispatch)es each notification (e.g. the result of
    /// [`Engine::due_notifications`](crate::Engine::due_notifications));
    /// returns the total number of queue places taken.
    pub fn dispatch_all(&self, notifications: impl IntoIterator<Item = Notification>) -> usize {
        notifications.into_iter().map(|n| self.dispatch(n)).sum()
    }

    /// The receivers that have notifiers, e.g. to check a
    /// [`Routing`](crate::Routing) against them.
    pub fn receivers(&self) -> impl Iterator<Item = &str> {
        self.receivers.keys().map(String::as_str)
    }

    /// Closes the queues and waits until everything queued has been
    /// delivered or dropped (including retries: bound it with
    /// `tokio::time::timeout` if needed).
    pub async fn shutdown(self) {
        drop(self.receivers);
        for worker in self.workers {
            // A worker only ends early if the runtime is shutting down.
            let _ = worker.await;
        }
    }
}

/// Configures a [`Dispatcher`]: see [`Dispatcher::builder`].
#[derive(Debug)]
#[must_use]
pub struct DispatcherBuilder {
    notifiers: Vec<(String, Arc<dyn Notifier>)>,
    queue_capacity: usize,
    retry: Retry,
}

impl Default for DispatcherBuilder {
    fn default() -> Self {
        DispatcherBuilder {
            notifiers: Vec::new(),
            queue_capacity: 256,
            retry: Retry {
                timeout: Duration::from_secs(10),
                initial_backoff: Duration::from_millis(500),
                max_backoff: Duration::from_secs(30),
                max_attempts: 5,
                jitter: true,
            },
        }
    }
}

impl DispatcherBuilder {
    crate::notify::setters! {
        /// Adds a notifier for `receiver` (a route's `receiver` name). Call
        /// again to give a receiver several notifiers; each gets its own queue.
        receiver(receiver: impl Into<String>, notifier: impl Notifier + 'static) =>
            push notifiers((receiver.into(), Arc::new(notifier)));

        /// How many notifications each notifier's queue holds (default 256;
        /// at least 1).
        queue_capacity(capacity: usize) => queue_capacity = capacity;

        /// How long one attempt may take before it is abandoned (default 10 s,
        /// at most [`MAX_DURATION`](crate::MAX_DURATION)).
        timeout(timeout: Duration) => retry.timeout = timeout;

        /// The wait before the first retry (default 500 ms); doubled after
        /// each failed retry up to [`max_backoff`](Self::max_backoff), and
        /// [jittered](Self::jitter).
        initial_backoff(backoff: Duration) => retry.initial_backoff = backoff;

        /// The longest wait between attempts (default 30 s, at most
        /// [`MAX_DURATION`](crate::MAX_DURATION)), also for a receiver's
        /// `Retry-After`.
        max_backoff(backoff: Duration) => retry.max_backoff = backoff;

        /// Attempts per notification, the first included (default 5; 1 means
        /// no retries).
        max_attempts(attempts: u32) => retry.max_attempts = attempts;

        /// Whether waits are jittered (default `true`): each is drawn from
        /// between its scheduled length and twice that (at most
        /// `max_backoff`), so that notifiers failing together do not retry in
        /// lockstep. Without jitter the waits are exactly `initial_backoff`,
        /// doubling up to `max_backoff`.
        jitter(jitter: bool) => retry.jitter = jitter;
    }

    /// The same settings without any notifier.
    #[cfg(feature = "delivery")]
    pub(crate) fn without_notifiers(mut self) -> Self {
        self.notifiers.clear();
        self
    }

    /// Checks the settings and starts one delivery task per notifier on the
    /// current tokio runtime (to use another runtime, call it inside
    /// `Handle::enter`). Fails outside a runtime ([`NotifyError::NoRuntime`])
    /// or with an out-of-range setting.
    pub fn build(self) -> Result<Dispatcher, NotifyError> {
        self.checked()
            .map_err(|e| e.in_builder("DispatcherBuilder"))
    }

    /// [`build`](Self::build), its errors not yet naming the builder.
    fn checked(self) -> Result<Dispatcher, NotifyError> {
        self.validate()?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        describe_metrics();
        let bursts = Arc::new(Bursts::default());
        let mut receivers: HashMap<_, Vec<_>> = HashMap::new();
        let mut workers = Vec::with_capacity(self.notifiers.len());
        for (receiver, notifier) in self.notifiers {
            let (sender, queue) = mpsc::channel(self.queue_capacity);
            let entry = receivers.entry(receiver.clone()).or_default();
            entry.push((notifier.name().to_owned(), sender));
            let worker = Worker {
                receiver,
                notifier,
                retry: self.retry,
                bursts: bursts.clone(),
            };
            workers.push(handle.spawn(worker.run(queue)));
        }
        Ok(Dispatcher {
            receivers,
            bursts,
            workers,
        })
    }

    fn validate(&self) -> Result<(), NotifyError> {
        let (r, capacity) = (&self.retry, self.queue_capacity);
        let (too_long, max_permits) = (crate::time::too_long, tokio::sync::Semaphore::MAX_PERMITS);
        let below_1 =
            |got, max| (got == 0 || got > max).then(|| format!("must be at least 1 (got {got})"));
        let (initial, max) = (r.initial_backoff, r.max_backoff);
        let above_max =
            (initial > max).then(|| format!("{initial:?} is more than max_backoff {max:?}"));
        NotifyError::check([
            ("queue_capacity", below_1(capacity, max_permits)),
            ("max_attempts", below_1(r.max_attempts as usize, usize::MAX)),
            ("timeout", crate::time::not_positive(r.timeout)),
            ("initial_backoff", too_long(initial)),
            ("max_backoff", too_long(max)),
            ("initial_backoff", above_max),
        ])
    }
}

/// Attempt timeout and backoff schedule.
#[derive(Clone, Copy, Debug)]
struct Retry {
    timeout: Duration,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_attempts: u32,
    jitter: bool,
}

impl Retry {
    /// The waits between attempts: `initial_backoff`, doubling up to
    /// `max_backoff`; with jitter, each is drawn from between that wait and
    /// twice it (at most `max_backoff`).
    fn backoffs(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
        let max = self.max_backoff;
        let mut schedule = ExponentialBuilder::new()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(max)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        if self.jitter {
            schedule = schedule.with_jitter();
        }
        schedule.build().map(move |wait| wait.min(max))
    }

    /// The wait before the next attempt after `error`: the scheduled
    /// `wait`, or longer if the receiver asked for it (`Retry-After`), up
    /// to `max_backoff`.
    fn wait_after(&self, error: &NotifyError, wait: Duration) -> Duration {
        match error.retry_after() {
            Some(asked) => wait.max(asked.min(self.max_backoff)),
            None => wait,
        }
    }
}

/// Drains one notifier's queue.
struct Worker {
    receiver: String,
    notifier: Arc<dyn Notifier>,
    retry: Retry,
    bursts: Arc<Bursts>,
}

impl Worker {
    async fn run(self, mut queue: mpsc::Receiver<Arc<Notification>>) {
        let (receiver, name) = (&self.receiver, self.notifier.name());
        while let Some(notification) = queue.recv().await {
            let attempts = AtomicU32::new(0);
            let outcome = (|| {
                attempts.fetch_add(1, Ordering::Relaxed);
                self.attempt(notification.clone())
            })
            .retry(self.retry.backoffs())
            .sleep(tokio::time::sleep)
            .when(NotifyError::is_retryable)
            .adjust(|error, wait| wait.map(|wait| self.retry.wait_after(error, wait)))
            .notify(|error, retry_in| {
                let (group_key, attempt) =
                    (&notification.group_key, attempts.load(Ordering::Relaxed));
                tracing::debug!(%receiver, notifier = name, %group_key, attempt, %error, ?retry_in,
                    "alert notification attempt failed; retrying");
            })
            .await;
            let Err(error) = outcome else {
                let labels = [("receiver", receiver.clone()), ("notifier", name.into())];
                counter!(NOTIFICATIONS_TOTAL, &labels).increment(1);
                self.bursts.delivered(receiver);
                continue;
            };
            let reason = match error {
                NotifyError::Timeout(_) => "timeout",
                _ => "error",
            };
            let detail = format!("{error} (attempt {})", attempts.load(Ordering::Relaxed));
            (self.bursts).dropped(&notification, name, reason, &detail);
        }
    }

    /// One attempt, in its own task so that a panic in the notifier is one
    /// failed attempt, and aborted when it times out.
    async fn attempt(&self, notification: Arc<Notification>) -> Result<(), NotifyError> {
        let notifier = self.notifier.clone();
        let mut task = tokio::spawn(async move { notifier.notify(&notification).await });
        match tokio::time::timeout(self.retry.timeout, &mut task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) if e.is_panic() => Err(NotifyError::other("the notifier panicked")),
            Ok(Err(_)) => Err(NotifyError::other("the notifier was cancelled")),
            Err(_) => {
                task.abort();
                Err(NotifyError::Timeout(self.retry.timeout))
            }
        }
    }
}

/// Drops per (receiver, reason) since the receiver last delivered: how
/// many, since when, and when last logged. A dead receiver logs its first
/// drop, a reminder every [`BURST_REMINDER`], and a summary once it
/// delivers again, instead of once per notification.
#[derive(Debug, Default)]
struct Bursts(Mutex<HashMap<(String, &'static str), Burst>>);

/// Drops so far, when the first was, when last logged.
type Burst = (u64, Instant, Instant);

impl Bursts {
    /// Counts and logs one dropped notification.
    fn dropped(&self, n: &Notification, notifier: &str, reason: &'static str, detail: &str) {
        let receiver = n.receiver.as_str();
        counter!(NOTIFICATION_FAILURES_TOTAL, "receiver" => receiver.to_owned(),
            "notifier" => notifier.to_owned(), "reason" => reason)
        .increment(1);
        let now = Instant::now();
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = open.entry((receiver.to_owned(), reason));
        let (dropped, started, logged) = entry.or_insert((0, now, now));
        *dropped += 1;
        let message = match *dropped {
            1 => {
                "alert notification dropped; further drops for this receiver and reason \
                  are summed up when it delivers again"
            }
            _ if now.duration_since(*logged) >= BURST_REMINDER => {
                "alert notifications are still being dropped"
            }
            _ => return,
        };
        *logged = now;
        let (dropped, since, group_key) = (*dropped, now - *started, &n.group_key);
        tracing::warn!(receiver, notifier, reason, dropped, ?since, %group_key, error = detail, "{message}");
    }

    /// Closes the receiver's bursts, if any, logging what they dropped.
    fn delivered(&self, receiver: &str) {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|(r, reason), (dropped, started, _)| {
            let (ended, lasted) = (r == receiver, started.elapsed());
            if ended {
                tracing::info!(receiver, reason, dropped, ?lasted, "{RECOVERED}");
            }
            !ended
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter_within_bounds() {
        let mut retry = Retry {
            timeout: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            max_attempts: 6,
            jitter: false,
        };
        let exact: Vec<u128> = retry.backoffs().map(|d| d.as_millis()).collect();
        assert_eq!(exact, [100, 200, 400, 500, 500]);
        retry.jitter = true;
        for _ in 0..100 {
            let jittered: Vec<Duration> = retry.backoffs().collect();
            assert_eq!(jittered.len(), exact.len());
            for (wait, scheduled) in jittered.iter().zip(&exact) {
                let ms = wait.as_millis();
                assert!(*scheduled <= ms && ms <= (2 * scheduled).min(500), "{ms}");
            }
        }
        retry.max_attempts = 1;
        assert_eq!(retry.backoffs().count(), 0);
    }

    #[test]
    fn out_of_range_settings_name_the_field() {
        let field = |builder: DispatcherBuilder| match builder.validate() {
            Err(NotifyError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert_eq!(
            field(Dispatcher::builder().queue_capacity(0)),
            "queue_capacity"
        );
        assert_eq!(field(Dispatcher::builder().max_attempts(0)), "max_attempts");
        assert_eq!(
            field(Dispatcher::builder().timeout(Duration::ZERO)),
            "timeout"
        );
        assert_eq!(
            field(
                Dispatcher::builder()
                    .initial_backoff(Duration::from_secs(10))
                    .max_backoff(Duration::from_secs(1))
            ),
            "initial_backoff"
        );
        assert!(Dispatcher::builder().validate().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_is_waited_for_up_to_the_maximum_backoff() {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let notifier = {
            let attempts = attempts.clone();
            super::super::notifier_fn(move |_: Notification| {
                let mut attempts = attempts.lock().unwrap();
                attempts.push(Instant::now());
                let retry_after = Duration::from_secs(match attempts.len() {
                    1 => 10,
                    _ => 600,
                });
                std::future::ready(Err::<(), _>(NotifyError::Throttled {
                    url: "http://hook/".into(),
                    status: 429,
                    body: String::new(),
                    retry_after,
                }))
            })
        };
        let dispatcher = Dispatcher::builder()
            .receiver("ops", notifier)
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_secs(60))
            .jitter(false)
            .max_attempts(3)
            .build()
            .unwrap();
        let notification = Notification {
            receiver: "ops".into(),
            group_key: String::new(),
            group_labels: crate::Labels::new(),
            status: crate::AlertStatus::Firing,
            alerts: Vec::new(),
            common_labels: crate::Labels::new(),
            common_annotations: crate::Labels::new(),
        };
        dispatcher.dispatch(notification);
        dispatcher.shutdown().await;
        let attempts = attempts.lock().unwrap();
        let waits: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
        // 10 s asked (not the 100 ms scheduled); 600 s asked, 60 s at most.
        assert_eq!(waits, [Duration::from_secs(10), Duration::from_secs(60)]);
    }

    #[test]
    fn building_outside_a_runtime_is_an_error() {
        assert!(matches!(
            Dispatcher::builder().build(),
            Err(NotifyError::NoRuntime)
        ));
    }
}
