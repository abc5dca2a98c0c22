//! [`Remote`]: one cache's link to Redis, whatever its key and value types:
//! the connection (present only while it is up and resynchronised), the
//! circuit breaker, the counters, error logging, and running commands on
//! the tier's runtime with a timeout.
//!
//! Commands run on one small tokio runtime (two workers) shared by every
//! cache of the process (threads `vigil-cache-redis`), so the tier works the same from
//! the blocking cache, from any async runtime, and from a test runtime
//! with paused time.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::RedisError;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, watch};

use super::RedisOptions;
use crate::stats::L2Errors;

/// Every critical section here moves plain data: a poisoned lock is used
/// as is.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The runtime every tier's commands and background tasks run on; `None`
/// if its thread could not be started (the tier then stays down).
pub(crate) fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                // Two, so that one busy worker does not hold up every
                // cache's commands.
                .worker_threads(2)
                .thread_name("vigil-cache-redis")
                .enable_all()
                .build()
                .inspect_err(|error| {
                    tracing::error!(%error, "vigil-cache: cannot start the Redis level's runtime");
                })
                .ok()
        })
        .as_ref()
}

/// A random 64-bit number (std's per-process random hash keys).
pub(crate) fn random() -> u64 {
    RandomState::new().hash_one(std::process::id())
}

/// Kinds of Redis errors, the `kind` label of `cache_l2_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Connecting, subscribing or resynchronising failed.
    Connect,
    /// No answer within the command timeout.
    Timeout,
    /// The connection broke.
    Io,
    /// Redis answered with an error.
    Server,
    /// A value (or key) read from Redis did not decode.
    Decode,
}

impl ErrorKind {
    pub(crate) fn of(error: &RedisError) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_connection_refusal() {
            Self::Connect
        } else if error.is_io_error() || error.is_connection_dropped() {
            Self::Io
        } else {
            Self::Server
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Io => "io",
            Self::Server => "server",
            Self::Decode => "decode",
        }
    }
}

/// The circuit breaker: closed (every call goes to Redis), or open until an
/// instant, after which one call at a time probes.
struct Circuit {
    base: quanta::Instant,
    /// Nanoseconds after `base` until which Redis is skipped; 0 = closed.
    open_until: AtomicU64,
    probing: AtomicBool,
}

/// What the circuit lets a call do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admission {
    Go,
    Probe,
}

impl Circuit {
    fn new(base: quanta::Instant) -> Self {
        Self {
            base,
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    fn nanos(&self, now: quanta::Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn admit(&self, now: quanta::Instant) -> Option<Admission> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Some(Admission::Go);
        }
        if self.nanos(now) < until {
            return None;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Admission::Probe)
    }

    fn open(&self, now: quanta::Instant, interval: Duration) {
        let interval = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX / 2);
        // Never 0, which means closed.
        let until = self.nanos(now).saturating_add(interval).max(1);
        self.open_until.store(until, Ordering::Release);
        self.probing.store(false, Ordering::Release);
    }

    fn close(&self) {
        self.open_until.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
    }

    fn end_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }
}

/// Ends the circuit's probe when dropped, unless forgotten.
struct Probing<'a>(Option<&'a Circuit>);

impl Drop for Probing<'_> {
    fn drop(&mut self) {
        if let Some(circuit) = self.0 {
            circuit.end_probe();
        }
    }
}

/// How many keys and tags the queue of unsent invalidations holds at most:
/// above, it collapses to one `invalidate_all`.
pub(crate) const UNSENT_CAP: usize = 1024;

/// Invalidations that could not reach Redis, replayed once it is back.
#[derive(Default)]
pub(crate) struct Unsent {
    pub(crate) all: bool,
    pub(crate) tags: BTreeSet<String>,
    pub(crate) keys: BTreeSet<Vec<u8>>,
    /// Some were taken out to be replayed and are not sent yet.
    pub(crate) replaying: bool,
}

impl Unsent {
    pub(crate) fn is_empty(&self) -> bool {
        !self.all && self.tags.is_empty() && self.keys.is_empty()
    }

    /// Adds `other` (what a replay did not send) back.
    pub(crate) fn merge(&mut self, other: Self) {
        self.all |= other.all;
        self.tags.extend(other.tags);
        self.keys.extend(other.keys);
        self.bound();
    }

    /// Keeps the queue within [`UNSENT_CAP`]: above it, one
    /// `invalidate_all` stands for every queued key and tag.
    pub(crate) fn bound(&mut self) {
        if self.tags.len() + self.keys.len() > UNSENT_CAP {
            self.all = true;
            self.tags.clear();
            self.keys.clear();
        }
    }
}

/// One cache's link to Redis.
pub(crate) struct Remote {
    pub(crate) options: RedisOptions,
    /// The resolved prefix followed by `:`.
    pub(crate) prefix: String,
    /// `None` when the URL did not parse (the tier stays down).
    pub(crate) client: Option<redis::Client>,
    /// The cache's name, for logs.
    pub(crate) name: String,
    /// Tells this replica's messages from the others'.
    pub(crate) origin: u64,
    clock: quanta::Clock,
    /// Present while connected and resynchronised.
    conn: Mutex<Option<MultiplexedConnection>>,
    circuit: Circuit,
    /// Set by a command that found the connection broken: the link task
    /// reconnects.
    pub(crate) broken: Notify,
    /// Flips to true when the cache is dropped: the link task ends.
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) unsent: Mutex<Unsent>,
    /// How many resynchronisations have begun. A resynchronisation bumps
    /// it (under the write lock) before it reads the tags in use or the
    /// tags changed; a load keeps its value only if it is unchanged since
    /// the load began, checked under the read lock while its entry joins
    /// the tag index. So every entry the resynchronisation does not see
    /// was loaded after it began.
    pub(crate) resyncs: RwLock<u64>,
    /// Resynchronisations that read every tag in use (for tests).
    #[cfg(test)]
    pub(crate) full_resyncs: AtomicU64,
    /// While set, replays wait for a permit of it once they took the
    /// queue, before they send it (for tests).
    #[cfg(test)]
    pub(crate) replay_hold: Mutex<Option<std::sync::Arc<tokio::sync::Semaphore>>>,
    /// What this replica's invalidations on their way to Redis cover (see
    /// [`Remote::covers`]).
    in_flight: Mutex<InFlight>,
    /// What this replica's invalidations that reached Redis while reads
    /// were in flight covered, by their sequence numbers (see
    /// [`Reading::overtaken`]).
    recent: Mutex<Recent>,
    hits: AtomicU64,
    misses: AtomicU64,
    errors: [AtomicU64; 5],
    /// Whether the current burst of errors has been logged.
    failing: AtomicBool,
    /// Sequential command timeouts since the last answer.
    timeouts: AtomicU64,
    /// When (nanoseconds after the circuit's base) the last counted
    /// timeout happened: a command sent before it timed out in the same
    /// stall, and is not counted again.
    last_timeout: AtomicU64,
}

/// What an invalidation covers.
pub(crate) enum Covers {
    /// The key with this digest.
    Key(Vec<u8>),
    /// The entries carrying any of these tags.
    Tags(Vec<String>),
    /// Every entry.
    All,
}

/// How many of this replica's invalidations on their way to Redis cover
/// each key digest and tag, and every entry.
#[derive(Default)]
struct InFlight {
    all: usize,
    keys: HashMap<Vec<u8>, usize>,
    tags: HashMap<String, usize>,
}

impl InFlight {
    fn count(&mut self, covers: &Covers, add: bool) {
        fn step<T: Eq + std::hash::Hash + Clone>(map: &mut HashMap<T, usize>, item: &T, add: bool) {
            if add {
                *map.entry(item.clone()).or_default() += 1;
            } else if let Some(count) = map.get_mut(item) {
                *count -= 1;
                if *count == 0 {
                    map.remove(item);
                }
            }
        }
        match covers {
            Covers::Key(digest) => step(&mut self.keys, digest, add),
            Covers::Tags(tags) => tags.iter().for_each(|tag| step(&mut self.tags, tag, add)),
            Covers::All if add => self.all += 1,
            Covers::All => self.all -= 1,
        }
    }
}

/// An invalidation (or insert) of this replica on its way to Redis, until
/// dropped.
pub(crate) struct Invalidation(std::sync::Arc<Remote>, Covers);

impl Invalidation {
    /// Redis has it, numbered `seq`: recorded for the reads in flight
    /// (which may have been answered before it), then no longer on its
    /// way. In that order, so a read that looks at both never misses it.
    pub(crate) fn sent(self, seq: u64) {
        self.0.reached(&self.1, seq);
    }
}

impl Drop for Invalidation {
    fn drop(&mut self) {
        lock(&self.0.in_flight).count(&self.1, false);
    }
}

/// The highest sequence numbers of this replica's invalidations that
/// reached Redis, by what they covered.
#[derive(Default)]
struct Done {
    all: u64,
    keys: HashMap<Vec<u8>, u64>,
    tags: HashMap<String, u64>,
}

/// How many keys and tags one epoch's [`Done`] remembers at most: above,
/// it remembers only the highest number, as an `invalidate_all` (reads in
/// flight answered below it are not taken: their loaders run).
const DONE_CAP: usize = 4096;

impl Done {
    fn record(&mut self, covers: &Covers, seq: u64) {
        if self.keys.len() + self.tags.len() >= DONE_CAP {
            let highest = self.keys.values().chain(self.tags.values()).copied();
            self.all = highest.fold(self.all.max(seq), u64::max);
            self.keys = HashMap::new();
            self.tags = HashMap::new();
            return;
        }
        fn raise<T: Eq + std::hash::Hash + Clone>(map: &mut HashMap<T, u64>, item: &T, seq: u64) {
            let held = map.entry(item.clone()).or_default();
            *held = (*held).max(seq);
        }
        match covers {
            Covers::Key(digest) => raise(&mut self.keys, digest, seq),
            Covers::Tags(tags) => tags.iter().for_each(|tag| raise(&mut self.tags, tag, seq)),
            Covers::All => self.all = self.all.max(seq),
        }
    }

    fn above(&self, seq: u64, digest: &[u8], tags: &[String]) -> bool {
        self.all > seq
            || self.keys.get(digest).is_some_and(|&done| done > seq)
            || tags
                .iter()
                .any(|tag| self.tags.get(tag).is_some_and(|&done| done > seq))
    }
}

/// The reads of Redis in flight and the invalidations of this replica
/// that reached Redis meanwhile, in two epochs: a read joins the current
/// epoch; an invalidation is recorded in the current epoch's [`Done`]
/// (not at all with no read in flight: a read sent after an invalidation
/// was answered is answered after it). The epoch moves on once the
/// previous one has no read left, dropping what was recorded two epochs
/// ago: every read still in flight began after that was recorded. So the
/// records last about as long as the reads that may need them.
#[derive(Default)]
struct Recent {
    epoch: usize,
    readers: [usize; 2],
    done: [Done; 2],
}

impl Recent {
    fn advance(&mut self) {
        if self.readers[(self.epoch + 1) % 2] == 0 {
            self.epoch += 1;
            self.done[self.epoch % 2] = Done::default();
        }
    }

    fn record(&mut self, covers: &Covers, seq: u64) {
        if self.readers.iter().any(|&n| n > 0) {
            self.done[self.epoch % 2].record(covers, seq);
        }
    }
}

/// A read of Redis in flight, from before it is sent until its answer has
/// been looked at (or it is given up).
pub(crate) struct Reading {
    remote: std::sync::Arc<Remote>,
    epoch: usize,
}

impl Reading {
    /// Whether an invalidation of this replica covering the key with
    /// `digest` or any of `tags` reached Redis after this read, answered
    /// at sequence number `seq`, did: its answer may hold what that
    /// invalidation removed, and the invalidation may have been applied
    /// locally before this read's load began (a cancelled call, a replay).
    pub(crate) fn overtaken(&self, seq: u64, digest: &[u8], tags: &[String]) -> bool {
        let recent = lock(&self.remote.recent);
        recent.done.iter().any(|done| done.above(seq, digest, tags))
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        let mut recent = lock(&self.remote.recent);
        recent.readers[self.epoch % 2] -= 1;
        recent.advance();
    }
}

/// What a command adds to the queue of unsent invalidations unless it
/// succeeds: queued when this is dropped still holding it; then the
/// command's [`Invalidation`], if any, stops counting as on its way.
struct Requeue<F: FnOnce(&mut Unsent)> {
    remote: std::sync::Arc<Remote>,
    add: Option<F>,
    own: Option<Invalidation>,
}

impl<F: FnOnce(&mut Unsent)> Drop for Requeue<F> {
    fn drop(&mut self) {
        if let Some(add) = self.add.take() {
            self.remote.queue(add);
        }
    }
}

/// After this many command timeouts in a row (sequential: each command
/// sent after the previous one timed out, with no answer between), the
/// connection counts as broken: the link task reconnects and
/// resynchronises. Commands in flight together during one stall count
/// once.
const TIMEOUTS_BEFORE_RECONNECT: u64 = 3;

/// A command the circuit let through, on its connection.
struct Pass {
    conn: MultiplexedConnection,
    admission: Admission,
}

impl Remote {
    pub(crate) fn new(options: RedisOptions, name: Option<&str>, clock: quanta::Clock) -> Self {
        let prefix = match &options.prefix {
            Some(prefix) => format!("{prefix}:"),
            // A cache without either has no Redis level (see `Tier::new`).
            None => format!("vigil:{}:", name.unwrap_or("unnamed")),
        };
        let name = name.unwrap_or("(unnamed)").to_owned();
        let core_client = redis::Client::open(options.url.as_str());
        let (shutdown, _) = watch::channel(false);
        let remote = Self {
            prefix,
            client: core_client.as_ref().ok().cloned(),
            name,
            origin: random(),
            circuit: Circuit::new(clock.now()),
            clock,
            conn: Mutex::new(None),
            broken: Notify::new(),
            shutdown,
            unsent: Mutex::new(Unsent::default()),
            resyncs: RwLock::new(0),
            in_flight: Mutex::default(),
            recent: Mutex::default(),
            #[cfg(test)]
            full_resyncs: AtomicU64::new(0),
            #[cfg(test)]
            replay_hold: Mutex::new(None),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: Default::default(),
            failing: AtomicBool::new(false),
            timeouts: AtomicU64::new(0),
            last_timeout: AtomicU64::new(0),
            options,
        };
        if let Err(error) = core_client {
            remote.failed(ErrorKind::Connect, &error);
        }
        remote
    }

    /// The entry key of an encoded key.
    pub(crate) fn entry_key(&self, key: &[u8]) -> Vec<u8> {
        let mut entry = Vec::with_capacity(self.prefix.len() + 2 + key.len());
        entry.extend_from_slice(self.prefix.as_bytes());
        entry.extend_from_slice(b"v:");
        entry.extend_from_slice(key);
        entry
    }

    pub(crate) fn channel(&self) -> String {
        format!("{}inval", self.prefix)
    }

    /// The connection, if it is up and the circuit lets a call through.
    fn admit(&self) -> Option<Pass> {
        let conn = lock(&self.conn).clone()?;
        let admission = self.circuit.admit(self.clock.now())?;
        Some(Pass { conn, admission })
    }

    /// Counts the outcome of a command that `admit` let through: a probe
    /// that succeeds closes the circuit; a failure opens it.
    fn settle<T>(
        &self,
        probe: bool,
        sent: quanta::Instant,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        match result {
            Ok(Ok(value)) => {
                self.timeouts.store(0, Ordering::Relaxed);
                if probe {
                    self.circuit.close();
                    self.recovered();
                }
                Some(value)
            }
            Ok(Err(error)) => {
                let kind = ErrorKind::of(&error);
                self.failed(kind, &error);
                match kind {
                    ErrorKind::Io | ErrorKind::Connect => self.broken.notify_one(),
                    ErrorKind::Timeout => self.timed_out(sent),
                    ErrorKind::Server | ErrorKind::Decode => {}
                }
                None
            }
            Err(_) => {
                self.timed_out(sent);
                let timeout = self.options.command_timeout;
                self.failed(
                    ErrorKind::Timeout,
                    &format_args!("no answer within {timeout:?}"),
                );
                None
            }
        }
    }

    /// Counts a timeout of a command sent at `sent`, unless it was sent
    /// before the last counted timeout (the same stall); after
    /// [`TIMEOUTS_BEFORE_RECONNECT`] in a row, the link task is told the
    /// connection is broken.
    fn timed_out(&self, sent: quanta::Instant) {
        let sent = self.circuit.nanos(sent);
        let now = self.circuit.nanos(self.clock.now()).max(1);
        let last = self.last_timeout.load(Ordering::Acquire);
        if sent < last
            || self
                .last_timeout
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        if self.timeouts.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_BEFORE_RECONNECT {
            self.timeouts.store(0, Ordering::Relaxed);
            self.broken.notify_one();
        }
    }

    /// Runs `command` on the tier's runtime with the command timeout, if
    /// the circuit lets it through; `None` if it did not, or the command
    /// failed (counted and logged).
    pub(crate) async fn run<T, F, Fut>(self: &std::sync::Arc<Self>, command: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(MultiplexedConnection) -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let task = self.task(command)?;
        runtime()?.spawn(task).await.ok().flatten()
    }

    /// [`run`](Self::run) of a script that answers with the sequence
    /// number it took, and if the command was not let through or failed,
    /// queues what `add` adds for replay (`add` is dropped otherwise,
    /// after the command). `own` is the command's own invalidation, if it
    /// has one: once the command is done, recorded with that number (see
    /// [`Invalidation::sent`]), or dropped after `add` is queued. The
    /// command is spawned (or queued) by this call, not when the future it
    /// returns is first polled; the queueing happens in the spawned task: a
    /// caller cancelled at any point loses neither.
    pub(crate) fn run_or_queue<F, Fut>(
        self: &std::sync::Arc<Self>,
        command: F,
        own: Option<Invalidation>,
        add: impl FnOnce(&mut Unsent) + Send + 'static,
    ) -> BoxFuture<'static, Option<redis::Value>>
    where
        F: FnOnce(MultiplexedConnection) -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<redis::Value>> + Send + 'static,
    {
        let (Some(task), Some(runtime)) = (self.task(command), runtime()) else {
            self.queue(add);
            return Box::pin(std::future::ready(None));
        };
        let mut queue = Requeue {
            remote: std::sync::Arc::clone(self),
            add: Some(add),
            own,
        };
        let task = async move {
            let done = task.await;
            if let Some(answer) = &done {
                // Sent: nothing to queue.
                drop(queue.add.take());
                if let (Some(own), Some(seq)) = (queue.own.take(), super::integer(answer)) {
                    own.sent(seq);
                }
            }
            // Otherwise `queue` queues it, also if the command panicked
            // (or the task was dropped with the runtime).
            drop(queue);
            done
        };
        let spawned = runtime.spawn(task);
        Box::pin(async move { spawned.await.ok().flatten() })
    }

    /// Marks an invalidation of this replica covering `covers` as on its
    /// way to Redis until the guard is dropped (see
    /// [`covers`](Self::covers)).
    pub(crate) fn invalidation(self: &std::sync::Arc<Self>, covers: Covers) -> Invalidation {
        lock(&self.in_flight).count(&covers, true);
        Invalidation(std::sync::Arc::clone(self), covers)
    }

    /// An invalidation of this replica covering `covers` reached Redis,
    /// numbered `seq` (see [`Reading::overtaken`]).
    pub(crate) fn reached(&self, covers: &Covers, seq: u64) {
        lock(&self.recent).record(covers, seq);
    }

    /// Whether nothing of this replica is on its way to Redis, and (if
    /// `queued`) nothing is queued either.
    #[cfg(test)]
    pub(crate) fn settled(&self, queued: bool) -> bool {
        let in_flight = lock(&self.in_flight);
        let idle = in_flight.all == 0 && in_flight.keys.is_empty() && in_flight.tags.is_empty();
        let unsent = lock(&self.unsent);
        idle && (!queued || (unsent.is_empty() && !unsent.replaying))
    }

    /// Registers a read of Redis about to be sent (see [`Reading`]).
    pub(crate) fn reading(self: &std::sync::Arc<Self>) -> Reading {
        let mut recent = lock(&self.recent);
        recent.advance();
        let epoch = recent.epoch;
        recent.readers[epoch % 2] += 1;
        Reading {
            remote: std::sync::Arc::clone(self),
            epoch,
        }
    }

    /// Whether an invalidation of this replica that has not reached Redis
    /// yet covers the key with `digest` or an entry carrying any of `tags`:
    /// one on its way (its command is running; if it fails, it is queued
    /// before it stops counting as on its way, hence this order), or one
    /// queued for replay (all of them while a replay is under way). Its
    /// local half may be applied already (a cancelled call), so Redis may
    /// still hold what it covers: this replica's loads do not take such
    /// an entry from Redis. Other keys are read as usual.
    pub(crate) fn covers(&self, digest: &[u8], tags: &[String]) -> bool {
        {
            let in_flight = lock(&self.in_flight);
            if in_flight.all > 0
                || in_flight.keys.contains_key(digest)
                || tags.iter().any(|tag| in_flight.tags.contains_key(tag))
            {
                return true;
            }
        }
        let unsent = lock(&self.unsent);
        unsent.replaying
            || unsent.all
            || unsent.keys.contains(digest)
            || tags.iter().any(|tag| unsent.tags.contains(tag))
    }

    fn task<T, F, Fut>(
        self: &std::sync::Arc<Self>,
        command: F,
    ) -> Option<impl Future<Output = Option<T>> + Send + 'static>
    where
        T: Send + 'static,
        F: FnOnce(MultiplexedConnection) -> Fut + Send + 'static,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let pass = self.admit()?;
        let remote = std::sync::Arc::clone(self);
        let probe = pass.admission == Admission::Probe;
        Some(async move {
            // A probe that does not succeed (it fails, panics, or its task
            // is dropped) lets the next one through.
            let probing = Probing(probe.then_some(&remote.circuit));
            let timeout = remote.options.command_timeout;
            let sent = remote.clock.now();
            let result = tokio::time::timeout(timeout, command(pass.conn)).await;
            let settled = remote.settle(probe, sent, result);
            if settled.is_some() {
                std::mem::forget(probing);
            }
            settled
        })
    }

    /// Counts and logs (once per burst) a failure, and opens the circuit.
    pub(crate) fn failed(&self, kind: ErrorKind, error: &dyn std::fmt::Display) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
        if kind == ErrorKind::Decode {
            // Not a fault of Redis: another version's value, a miss.
            tracing::debug!(cache = %self.name, %error, "vigil-cache: undecodable value in Redis");
            return;
        }
        self.circuit
            .open(self.clock.now(), self.options.retry_interval);
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                cache = %self.name,
                kind = kind.label(),
                %error,
                "vigil-cache: Redis level failing; reads fall back to the local level and the loader \
                 (further errors are counted in cache_l2_errors_total, not logged, until it recovers)"
            );
        }
    }

    /// Ends a burst of errors (logged if one was).
    pub(crate) fn recovered(&self) {
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!(
                cache = %self.name,
                errors = self.error_counts().total(),
                "vigil-cache: Redis level recovered"
            );
        }
    }

    /// The link task connected and resynchronised: commands may use `conn`.
    pub(crate) fn connected(&self, conn: MultiplexedConnection) {
        // A new connection starts with no timeouts against it.
        self.timeouts.store(0, Ordering::Relaxed);
        *lock(&self.conn) = Some(conn);
        self.circuit.close();
        self.recovered();
    }

    /// The link task lost the connection.
    pub(crate) fn disconnected(&self) {
        lock(&self.conn).take();
    }

    /// Queues invalidations that could not reach Redis (bounded, see
    /// [`Unsent::bound`]).
    pub(crate) fn queue(&self, add: impl FnOnce(&mut Unsent)) {
        let mut unsent = lock(&self.unsent);
        add(&mut unsent);
        unsent.bound();
    }

    pub(crate) fn is_connected(&self) -> bool {
        lock(&self.conn).is_some()
    }

    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub(crate) fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    pub(crate) fn error_counts(&self) -> L2Errors {
        let count = |kind: ErrorKind| self.errors[kind as usize].load(Ordering::Relaxed);
        L2Errors {
            connect: count(ErrorKind::Connect),
            timeout: count(ErrorKind::Timeout),
            io: count(ErrorKind::Io),
            server: count(ErrorKind::Server),
            decode: count(ErrorKind::Decode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remote of a Redis that is not there.
    fn unreachable_remote() -> std::sync::Arc<Remote> {
        let options = RedisOptions::new("redis://127.0.0.1:1/");
        std::sync::Arc::new(Remote::new(options, Some("c"), quanta::Clock::new()))
    }

    #[test]
    fn the_circuit_skips_redis_for_an_interval_then_lets_one_probe_through() {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(1));
        let circuit = Circuit::new(clock.now());
        assert_eq!(circuit.admit(clock.now()), Some(Admission::Go));
        circuit.open(clock.now(), Duration::from_secs(1));
        assert_eq!(circuit.admit(clock.now()), None);
        mock.increment(Duration::from_millis(999));
        assert_eq!(circuit.admit(clock.now()), None);
        mock.increment(Duration::from_millis(1));
        assert_eq!(circuit.admit(clock.now()), Some(Admission::Probe));
        assert_eq!(circuit.admit(clock.now()), None, "one probe at a time");
        // The probe fails: another interval.
        circuit.open(clock.now(), Duration::from_secs(1));
        assert_eq!(circuit.admit(clock.now()), None);
        mock.increment(Duration::from_secs(1));
        assert_eq!(circuit.admit(clock.now()), Some(Admission::Probe));
        circuit.close();
        assert_eq!(circuit.admit(clock.now()), Some(Admission::Go));
    }

    #[test]
    fn errors_are_counted_by_kind_and_open_the_circuit() {
        let (clock, _mock) = quanta::Clock::mock();
        let remote = Remote::new(RedisOptions::new("redis://127.0.0.1:1/"), Some("c"), clock);
        remote.failed(ErrorKind::Decode, &"bad value");
        assert!(
            remote.circuit.admit(remote.clock.now()).is_some(),
            "not Redis's fault"
        );
        remote.failed(ErrorKind::Timeout, &"slow");
        let errors = remote.error_counts();
        assert_eq!((errors.timeout, errors.decode, errors.total()), (1, 1, 2));
        assert!(remote.circuit.admit(remote.clock.now()).is_none());
        assert_eq!(remote.prefix, "vigil:c:");
    }

    #[test]
    fn timeouts_of_commands_in_flight_together_count_once_sequential_ones_reconnect() {
        use futures_util::FutureExt;
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(1));
        let remote = Remote::new(RedisOptions::new("redis://127.0.0.1:1/"), Some("c"), clock);
        let broken = |remote: &Remote| remote.broken.notified().now_or_never().is_some();
        // One stall: five commands sent together all time out.
        let sent = remote.clock.now();
        mock.increment(Duration::from_millis(50));
        for _ in 0..5 {
            remote.timed_out(sent);
        }
        assert!(!broken(&remote), "one stall is one timeout");
        // Two more commands, each sent after the previous timeout.
        for _ in 0..2 {
            mock.increment(Duration::from_millis(1));
            let sent = remote.clock.now();
            mock.increment(Duration::from_millis(50));
            remote.timed_out(sent);
        }
        assert!(broken(&remote), "three in a row");
    }

    #[test]
    fn a_command_that_cannot_be_sent_queues_its_invalidation() {
        let remote = unreachable_remote();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let done = runtime.block_on(remote.run_or_queue(
            |_conn| async { Ok(redis::Value::Int(1)) },
            None,
            |unsent| unsent.all = true,
        ));
        assert_eq!(done, None);
        assert!(lock(&remote.unsent).all);
    }

    #[test]
    fn own_invalidations_are_remembered_while_reads_that_began_before_them_are_in_flight() {
        let remote = unreachable_remote();
        let tags = |names: &[&str]| names.iter().map(|&tag| tag.to_owned()).collect::<Vec<_>>();
        // No read in flight: nothing to remember.
        remote.reached(&Covers::All, 3);
        let first = remote.reading();
        assert!(!first.overtaken(1, b"k", &[]));
        remote.reached(&Covers::Key(b"k".to_vec()), 5);
        remote.reached(&Covers::Tags(tags(&["t"])), 6);
        assert!(first.overtaken(4, b"k", &[]), "a read answered at 4");
        assert!(!first.overtaken(5, b"k", &[]), "answered after it");
        assert!(!first.overtaken(4, b"other", &[]));
        assert!(first.overtaken(5, b"other", &tags(&["u", "t"])));
        assert!(!first.overtaken(6, b"other", &tags(&["t"])));
        // A read that began later needs only what reached Redis after it
        // began, kept until it is done.
        let second = remote.reading();
        remote.reached(&Covers::Key(b"k2".to_vec()), 7);
        assert!(first.overtaken(6, b"k2", &[]));
        drop(first);
        assert!(
            second.overtaken(6, b"k2", &[]),
            "the second read is in flight"
        );
        drop(second);
        let fourth = remote.reading();
        assert!(!fourth.overtaken(0, b"k", &tags(&["t"])), "forgotten");
        assert!(!fourth.overtaken(0, b"k2", &[]), "forgotten");
        remote.reached(&Covers::All, 9);
        assert!(fourth.overtaken(8, b"any", &[]));
        // Too many keys to remember: the highest number stands for all.
        for n in 0..DONE_CAP as u64 + 1 {
            remote.reached(&Covers::Key(n.to_be_bytes().to_vec()), 10 + n);
        }
        assert!(fourth.overtaken(9 + DONE_CAP as u64, b"any", &[]));
        assert!(!fourth.overtaken(10 + DONE_CAP as u64, b"any", &[]));
        drop(fourth);
        let recent = lock(&remote.recent);
        assert_eq!(recent.readers, [0, 0]);
        assert!(recent.done.iter().all(|done| done.keys.len() < DONE_CAP));
    }

    #[test]
    fn a_url_that_does_not_parse_is_a_connect_error_not_a_panic() {
        let remote = Remote::new(RedisOptions::new("not a url"), None, quanta::Clock::new());
        assert!(remote.client.is_none());
        assert_eq!(remote.error_counts().connect, 1);
        assert!(remote.admit().is_none());
    }
}
