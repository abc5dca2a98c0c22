//! The second level: a Redis shared by every replica of a cache
//! ([`CacheBuilder::redis`](crate::CacheBuilder::redis)).
//!
//! A loading call that misses the local level reads Redis (one script: the
//! entry and the versions it depends on, checked in the same step), and
//! only on a miss there runs the loader, whose value is then written to
//! both levels. Inserts write both levels; invalidations (by key, tag or
//! all) go to Redis and to the local level (until one is in Redis, this
//! replica's loads do not take from Redis the entries it covers, nor
//! those a read answered before it got there: [`Reading`]), and every
//! other replica applies them when the message published with them
//! arrives. An insert counts as an invalidation of its key on its way,
//! and drops its local copy if another write of the key may have reached
//! Redis after it ([`Writing`]).
//! See `docs/cache.md` for the consistency model and the fault behaviour.
//!
//! The local hit path does not know this module exists: a hit never
//! touches Redis.

mod codec;
mod keys;
mod link;
mod options;
mod remote;
mod scripts;
#[cfg(all(test, feature = "sync", feature = "future"))]
mod tests;

use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::{Script, ScriptInvocation, Value};

pub(crate) use codec::{Codec, Postcard};
use futures_util::future::BoxFuture;
pub(crate) use keys::{KeyIndex, Writing, digest};
pub(crate) use link::{Local, LocalKey};
use options::MAX_DURATION;
pub use options::RedisOptions;
use remote::{Covers, ErrorKind, Invalidation, Reading, Remote, Unsent};
use scripts::{INVALIDATE_ALL, INVALIDATE_KEY, INVALIDATE_TAGS, READ, WRITE};

use crate::{CacheStats, EntryOptions};

/// A prepared call of `script`.
pub(crate) fn invocation<'a>(
    script: &'static Script,
    key: Option<&[u8]>,
    args: impl IntoIterator<Item = &'a [u8]>,
) -> ScriptInvocation<'static> {
    let mut invocation = script.prepare_invoke();
    if let Some(key) = key {
        invocation.key(key);
    }
    for arg in args {
        invocation.arg(arg);
    }
    invocation
}

/// A non-negative integer in a script's answer.
pub(crate) fn integer(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

/// Runs `future` to completion on the calling thread (the blocking cache's
/// way to wait for a command running on the tier's runtime). On a thread
/// of that runtime itself (an eviction listener called by the link task
/// that uses a blocking cache), the worker is handed over first, so the
/// command still has a thread to run on.
#[cfg(feature = "sync")]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let on_tier = remote::runtime().is_some_and(|runtime| {
        tokio::runtime::Handle::try_current()
            .is_ok_and(|current| current.id() == runtime.handle().id())
    });
    if on_tier {
        tokio::task::block_in_place(|| park_on(future))
    } else {
        park_on(future)
    }
}

#[cfg(feature = "sync")]
fn park_on<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// Runs `future` on the tier's runtime (nothing if it could not start).
#[cfg(feature = "future")]
pub(crate) fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    if let Some(runtime) = remote::runtime() {
        runtime.spawn(future);
    }
}

/// What a write's command came to (see [`Sending::ended`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Written {
    /// Redis has it.
    #[cfg_attr(
        not(feature = "future"),
        allow(dead_code, reason = "read by the async cache")
    )]
    pub(crate) reached: bool,
    /// The local copy must go: Redis may hold something else.
    pub(crate) stale: bool,
}

/// A write of the key with `digest` (and `tags`) on its way: its
/// registrations, to look at once its command is done.
struct Sending<K> {
    writing: Writing<K>,
    /// Registered before the command is sent: this replica's
    /// invalidations that reach Redis after it are remembered.
    reading: Reading,
    remote: Arc<Remote>,
    digest: Vec<u8>,
    tags: Vec<String>,
}

impl<K: Send + Sync + 'static> Sending<K> {
    /// Waits for the write's command (`sent`), then tells whether the
    /// local copy must go: another write of the key may have reached
    /// Redis after it (see [`Writing::end`]); a resynchronisation began
    /// meanwhile (it may have missed one's announcement); or, if it did
    /// reach Redis, an invalidation of this replica covering it (the key,
    /// one of its tags, or all) reached Redis after it, or is still on
    /// its way or queued. (A write that failed is queued itself, as an
    /// invalidation: its value stays local.)
    fn ended(self, sent: BoxFuture<'static, Option<Value>>) -> BoxFuture<'static, Written> {
        Box::pin(async move {
            let seq = sent.await.as_ref().and_then(integer);
            let Self {
                writing,
                reading,
                remote,
                digest,
                tags,
            } = self;
            let resynced = writing.resyncs
                != *remote
                    .resyncs
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            let overtaken = seq.is_some_and(|seq| {
                remote.covers(&digest, &tags) || reading.overtaken(seq, &digest, &tags)
            });
            Written {
                reached: seq.is_some(),
                stale: writing.end(seq) | resynced | overtaken,
            }
        })
    }
}

/// What the builder keeps until `build`: the options and the codec, which
/// carries the serde bounds.
pub(crate) struct TierSpec<K, V> {
    pub(crate) options: RedisOptions,
    pub(crate) codec: Arc<dyn Codec<K, V>>,
}

impl<K, V> Clone for TierSpec<K, V> {
    fn clone(&self) -> Self {
        Self {
            options: self.options.clone(),
            codec: Arc::clone(&self.codec),
        }
    }
}

/// What a read of the second level found.
pub(crate) enum L2Read<V> {
    /// A current entry: its value, tags and remaining time to live.
    Hit(V, EntryOptions),
    /// No current entry (absent, stale or undecodable): a value loaded now
    /// may be written, checked against this sequence number.
    Miss(u64),
    /// Redis was not asked (down, circuit open) or did not answer.
    Unavailable,
}

/// A lead's load of a key, registered with the tier from before its read
/// of Redis until this is dropped, which its caller does once the value is
/// stored locally (or not kept): a key announcement from another replica
/// that arrives meanwhile finds the key in the [`KeyIndex`] and supersedes
/// the load, or, if its value is being stored, waits for the store and
/// then removes it. Also carries what to write back to Redis.
///
/// A load that spans the beginning of a resynchronisation (a reconnection)
/// is not kept locally: see [`commit`](Self::commit).
pub(crate) struct Ticket<K> {
    keys: Arc<KeyIndex<K>>,
    digest: String,
    id: u64,
    remote: Arc<Remote>,
    /// `Remote::resyncs` when the load began.
    resyncs: u64,
    /// The options and sequence number to write a loaded value back with
    /// (only after Redis answered the read with a miss).
    back: Option<(EntryOptions, u64)>,
}

impl<K> Ticket<K> {
    /// Runs `register` (which enters the loaded entry in the local tag
    /// index) unless a resynchronisation began since the load did: its
    /// value may predate an invalidation made while this replica was away
    /// of a tag the resynchronisation did not check, not being held
    /// locally yet. `None` then: the value is not kept.
    pub(crate) fn commit<T>(&self, register: impl FnOnce() -> Option<T>) -> Option<T> {
        let resyncs = self
            .remote
            .resyncs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *resyncs != self.resyncs {
            return None;
        }
        register()
    }

    /// What to write the loaded value back to Redis with, if anything; the
    /// load leaves the index.
    pub(crate) fn write_back(mut self) -> Option<(EntryOptions, u64)> {
        self.back.take()
    }
}

impl<K> Drop for Ticket<K> {
    fn drop(&mut self) {
        self.keys.unload(&self.digest, self.id);
    }
}

/// Crate-private points where a test holds a step of the Redis level, to
/// hit a race window deterministically.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct Hooks {
    /// Run once by the next lead of this cache after its load, before it
    /// stores the value.
    pub(crate) loaded: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// While set, this cache's commands that write Redis (inserts,
    /// invalidations) each wait for a permit of it before they are sent.
    pub(crate) hold: std::sync::Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    /// Run once by the next lead of this (async) cache that keeps its
    /// value, after its commit began, before it stores the value.
    #[cfg(feature = "future")]
    pub(crate) storing: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// While set, this cache's commands that write Redis panic.
    pub(crate) panic: std::sync::atomic::AtomicBool,
    /// Run once by the next read of Redis of this cache once its answer
    /// is in, before it is looked at.
    pub(crate) answered: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Run once by the next (async) insert of this cache once its Redis
    /// write is sent, before it stores the value locally.
    #[cfg(feature = "future")]
    pub(crate) inserting: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// One cache's second level.
pub(crate) struct Tier<K, V> {
    codec: Arc<dyn Codec<K, V>>,
    remote: Arc<Remote>,
    keys: Arc<KeyIndex<K>>,
    default_ttl: Option<Duration>,
    #[cfg(test)]
    pub(crate) hooks: Hooks,
}

impl<K, V> Drop for Tier<K, V> {
    fn drop(&mut self) {
        self.remote.shutdown.send_replace(true);
    }
}

impl<K, V> Tier<K, V>
where
    K: Hash + Clone + PartialEq + Send + Sync + 'static,
    V: 'static,
{
    pub(crate) fn new(
        spec: TierSpec<K, V>,
        name: Option<&str>,
        clock: quanta::Clock,
        default_ttl: Option<Duration>,
    ) -> Option<Self> {
        if name.is_none() && spec.options.prefix.is_none() {
            // Two unrelated unnamed caches would share their entries.
            tracing::error!(
                url = %spec.options.url,
                "vigil-cache: the Redis level of an unnamed cache needs a prefix \
                 (RedisOptions::prefix) or a name (CacheBuilder::name); it is disabled"
            );
            return None;
        }
        Some(Self {
            codec: spec.codec,
            remote: Arc::new(Remote::new(spec.options, name, clock)),
            keys: Arc::new(KeyIndex::new()),
            default_ttl,
            #[cfg(test)]
            hooks: Hooks::default(),
        })
    }

    /// The index of local keys by digest, for the eviction listener.
    pub(crate) fn keys(&self) -> Arc<KeyIndex<K>> {
        Arc::clone(&self.keys)
    }

    /// Entry `id` under `key` was stored in the local level.
    pub(crate) fn stored(&self, key: &K, id: u64) {
        self.keys.stored(digest(key), key, id);
    }

    /// Starts the link task, which connects in the background and applies
    /// the other replicas' invalidations to `local`.
    pub(crate) fn start(&self, local: Weak<dyn Local<K>>) {
        if let Some(runtime) = remote::runtime() {
            runtime.spawn(link::run(
                Arc::clone(&self.remote),
                Arc::clone(&self.keys),
                local,
            ));
        }
    }

    /// What the lead of a load of `key` stores: on a hit in Redis, that
    /// entry (`init` does not run); otherwise `init`'s result. The ticket
    /// registers the load until it is dropped (see [`Ticket`]) and holds
    /// the options and sequence number to write a loaded value back with
    /// (only after a miss there: after no answer, nothing is written).
    pub(crate) async fn load<E>(
        &self,
        key: &K,
        init: impl Future<Output = Result<(V, EntryOptions), E>>,
    ) -> (Result<(V, EntryOptions), E>, Ticket<K>) {
        let resyncs = *self
            .remote
            .resyncs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let digest = digest(key);
        let id = self.keys.load(&digest, key);
        let mut ticket = Ticket {
            keys: Arc::clone(&self.keys),
            digest,
            id,
            remote: Arc::clone(&self.remote),
            resyncs,
            back: None,
        };
        let loaded = match self.read(key).await {
            L2Read::Hit(value, options) => Ok((value, options)),
            L2Read::Miss(seq) => {
                let loaded = init.await;
                if let Ok((_, options)) = &loaded {
                    ticket.back = Some((options.clone(), seq));
                }
                loaded
            }
            L2Read::Unavailable => init.await,
        };
        (loaded, ticket)
    }

    /// Runs the hook a test set for the moment after a load, if any.
    #[cfg(test)]
    pub(crate) fn loaded_hook(&self) {
        let hook = remote::lock(&self.hooks.loaded).take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Runs the hook a test set for the moment before a kept load is
    /// stored, if any.
    #[cfg(all(test, feature = "future"))]
    pub(crate) fn storing_hook(&self) {
        let hook = remote::lock(&self.hooks.storing).take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Runs the hook a test set for the moment after an insert's Redis
    /// write is sent, if any.
    #[cfg(all(test, feature = "future"))]
    pub(crate) fn inserting_hook(&self) {
        let hook = remote::lock(&self.hooks.inserting).take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Reads `key`'s entry, checked against the current versions.
    async fn read(&self, key: &K) -> L2Read<V> {
        let reading = self.remote.reading();
        // An invalidation of this replica of the key (or of all) that has
        // not reached Redis: Redis may hold what it invalidated. (Checked
        // again with the entry's tags once it is read, with those that
        // reached Redis after the read.)
        let digest = digest(key);
        if self.remote.covers(digest.as_bytes(), &[]) {
            return L2Read::Unavailable;
        }
        let Some(encoded) = self.codec.key(key) else {
            return L2Read::Unavailable;
        };
        let entry = self.remote.entry_key(digest.as_bytes());
        let prefix = self.remote.prefix.clone();
        let answer = self
            .remote
            .run(move |mut conn| async move {
                let args = [prefix.as_bytes(), encoded.as_slice()];
                let read = invocation(&READ, Some(&entry), args);
                read.invoke_async::<Vec<Value>>(&mut conn).await
            })
            .await;
        #[cfg(test)]
        {
            let hook = remote::lock(&self.hooks.answered).take();
            if let Some(hook) = hook {
                hook();
            }
        }
        match answer {
            Some(answer) => self.found(answer, digest.as_bytes(), &reading),
            None => L2Read::Unavailable,
        }
    }

    /// Interprets `READ`'s answer for the key with `digest`, counting an
    /// l2 hit or miss; `Unavailable` if an invalidation of this replica
    /// covering the key or one of the entry's tags has not reached Redis
    /// yet, or reached it after this read did.
    fn found(&self, answer: Vec<Value>, digest: &[u8], reading: &Reading) -> L2Read<V> {
        let tags: Vec<String> = answer
            .get(4..)
            .unwrap_or_default()
            .iter()
            .filter_map(|tag| match tag {
                Value::BulkString(tag) => Some(String::from_utf8_lossy(tag).into_owned()),
                _ => None,
            })
            .collect();
        let seq = answer.get(1).and_then(integer).unwrap_or(0);
        // In this order: an invalidation is recorded as having reached
        // Redis before it stops counting as on its way.
        if self.remote.covers(digest, &tags) || reading.overtaken(seq, digest, &tags) {
            return L2Read::Unavailable;
        }
        let hit = match (answer.first().and_then(integer), answer.get(2)) {
            (Some(1), Some(Value::BulkString(data))) => match self.codec.decode_value(data) {
                Some(value) => Some(value),
                None => {
                    self.remote
                        .failed(ErrorKind::Decode, &"undecodable value (another version's?)");
                    None
                }
            },
            _ => None,
        };
        let ttl = match answer.get(3) {
            Some(Value::Int(ms)) => Some(*ms),
            _ => None,
        };
        match (hit, ttl) {
            // -2: gone since; 0: expiring now.
            (Some(value), Some(ttl)) if ttl == -1 || ttl > 0 => {
                self.remote.hit();
                let mut options = EntryOptions::default().tags(tags);
                // The copy lives no longer than Redis's entry, nor than
                // this cache's own default time to live.
                let left = u64::try_from(ttl).ok().map(Duration::from_millis);
                let ttl = match (left, self.default_ttl) {
                    (Some(left), Some(default)) => Some(left.min(default)),
                    (left, default) => left.or(default),
                };
                if let Some(ttl) = ttl {
                    options = options.ttl(ttl);
                }
                L2Read::Hit(value, options)
            }
            _ => {
                self.remote.miss();
                L2Read::Miss(seq)
            }
        }
    }

    /// The time to live in Redis of an entry written with `options`, in
    /// milliseconds (0: none).
    fn ttl_ms(&self, options: &EntryOptions) -> String {
        options
            .ttl_value()
            .or(self.default_ttl)
            .map_or(0, |ttl| ttl.min(MAX_DURATION).as_millis().max(1))
            .to_string()
    }

    /// Writes a value loaded after a read that answered `Miss(seq)`: only if
    /// nothing it depends on moved in Redis since.
    pub(crate) async fn write_loaded(&self, key: &K, value: &V, options: &EntryOptions, seq: u64) {
        if let Some((entry, args)) = self.write_args(key, value, options, Some(seq)) {
            // A loaded value that does not reach Redis is simply not
            // shared.
            self.run_script(&WRITE, Some(entry), args, None, |_| {})
                .await;
        }
    }

    /// Registers a write of `key` by this replica, before its local store
    /// (see [`Writing`]).
    pub(crate) fn writing<Q: Hash + ?Sized>(&self, key: &Q) -> Writing<K> {
        let resyncs = *self
            .remote
            .resyncs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Writing::begin(&self.keys, digest(key), resyncs)
    }

    /// Writes an inserted value and announces the key to the other
    /// replicas (which drop their copy); if Redis cannot be reached, the
    /// announcement is sent once it can. The command is sent (or queued)
    /// by this call, so a caller cancelled later loses neither; the
    /// future waits for it, and tells whether it reached Redis and
    /// whether the local copy must go (see [`Sending::ended`]).
    /// Until the write is in Redis, this replica's loads do not read the
    /// key there.
    pub(crate) fn write_inserted(
        &self,
        key: &K,
        value: &V,
        options: &EntryOptions,
        writing: Writing<K>,
    ) -> BoxFuture<'static, Written> {
        let Some((entry, args)) = self.write_args(key, value, options, None) else {
            // Not kept in Redis, but an insert still replaces the key on
            // every replica: Redis's entry and the other copies are gone.
            return self.invalidate_digest(digest(key), writing);
        };
        let digest = digest(key).into_bytes();
        let tags = options
            .tag_values()
            .iter()
            .map(|tag| tag.as_str().to_owned());
        let sending = self.sending(writing, digest.clone(), tags.collect());
        let own = self.remote.invalidation(Covers::Key(digest.clone()));
        // An insert that does not reach Redis is announced later.
        let announce = move |unsent: &mut Unsent| {
            unsent.keys.insert(digest);
        };
        let sent = self.run_script(&WRITE, Some(entry), args, Some(own), announce);
        sending.ended(sent)
    }

    /// The registrations of a write about to be sent (see [`Sending`]).
    fn sending(&self, writing: Writing<K>, digest: Vec<u8>, tags: Vec<String>) -> Sending<K> {
        Sending {
            writing,
            reading: self.remote.reading(),
            remote: Arc::clone(&self.remote),
            digest,
            tags,
        }
    }

    /// The entry key and the arguments of `WRITE` (`seq`: the load's
    /// sequence number; `None` for an insert); `None` if the key or the
    /// value does not encode.
    fn write_args(
        &self,
        key: &K,
        value: &V,
        options: &EntryOptions,
        seq: Option<u64>,
    ) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
        let (Some(encoded), Some(data)) = (self.codec.key(key), self.codec.value(value)) else {
            return None;
        };
        let digest = digest(key);
        let entry = self.remote.entry_key(digest.as_bytes());
        let seq = seq.map(|seq| seq.to_string()).unwrap_or_default();
        let mut args = vec![
            self.remote.prefix.clone().into_bytes(),
            seq.into_bytes(),
            self.ttl_ms(options).into_bytes(),
            data,
            self.remote.origin.to_string().into_bytes(),
            encoded,
            digest.into_bytes(),
        ];
        args.extend(options.tag_values().iter().map(|tag| tag.as_str().into()));
        Some((entry, args))
    }

    /// Invalidates `key` in Redis and on every replica (a tombstone refuses
    /// older loads of it for the tombstone's time to live). The command is
    /// sent (or queued) by this call; the future waits for it, and tells
    /// what it came to (see [`Sending::ended`]).
    pub(crate) fn invalidate_key<Q: Hash + ?Sized>(&self, key: &Q) -> BoxFuture<'static, Written> {
        // An insert of the key by this replica meanwhile learns of it.
        self.invalidate_digest(digest(key), self.writing(key))
    }

    /// [`invalidate_key`](Self::invalidate_key) of the key with `digest`,
    /// registered as `writing`.
    fn invalidate_digest(
        &self,
        digest: String,
        writing: Writing<K>,
    ) -> BoxFuture<'static, Written> {
        let digest = digest.into_bytes();
        let own = self.remote.invalidation(Covers::Key(digest.clone()));
        let entry = self.remote.entry_key(&digest);
        let tombstone = self.remote.options.tombstone_ttl.as_millis().max(1);
        let args = vec![
            self.remote.prefix.clone().into_bytes(),
            self.remote.origin.to_string().into_bytes(),
            digest.clone(),
            tombstone.to_string().into_bytes(),
        ];
        let sending = self.sending(writing, digest.clone(), Vec::new());
        let queued = move |unsent: &mut Unsent| {
            unsent.keys.insert(digest);
        };
        let sent = self.run_script(&INVALIDATE_KEY, Some(entry), args, Some(own), queued);
        sending.ended(sent)
    }

    /// Bumps the versions of `tags` in Redis and announces them; sent (or
    /// queued) by this call.
    pub(crate) fn invalidate_tags(&self, tags: &[&str]) -> BoxFuture<'static, ()> {
        if tags.is_empty() {
            return Box::pin(std::future::ready(()));
        }
        let owned: Vec<String> = tags.iter().map(|&tag| tag.to_owned()).collect();
        let own = self.remote.invalidation(Covers::Tags(owned.clone()));
        let mut args = self.prefix_and_origin();
        args.extend(tags.iter().map(|tag| tag.as_bytes().to_vec()));
        let sent = self.run_script(&INVALIDATE_TAGS, None, args, Some(own), move |unsent| {
            unsent.tags.extend(owned);
        });
        Box::pin(async move {
            sent.await;
        })
    }

    /// `invalidate_all` in Redis, announced to every replica; sent (or
    /// queued) by this call.
    pub(crate) fn invalidate_all(&self) -> BoxFuture<'static, ()> {
        let own = self.remote.invalidation(Covers::All);
        let args = self.prefix_and_origin();
        let sent = self.run_script(&INVALIDATE_ALL, None, args, Some(own), move |unsent| {
            unsent.all = true;
        });
        Box::pin(async move {
            sent.await;
        })
    }

    /// The first two arguments of the invalidation scripts.
    fn prefix_and_origin(&self) -> Vec<Vec<u8>> {
        vec![
            self.remote.prefix.clone().into_bytes(),
            self.remote.origin.to_string().into_bytes(),
        ]
    }

    /// Runs `script` (on `key`, with `args`) in Redis; if it is not let
    /// through or fails, queues what `queue` adds for replay (`queue` is
    /// dropped otherwise, once the command is done). `own` is the
    /// command's invalidation, recorded with the sequence number the
    /// script answers. The command is spawned by this call (see
    /// [`Remote::run_or_queue`]); the future answers with the script's
    /// answer, if any.
    fn run_script(
        &self,
        script: &'static Script,
        key: Option<Vec<u8>>,
        args: Vec<Vec<u8>>,
        own: Option<Invalidation>,
        queue: impl FnOnce(&mut Unsent) + Send + 'static,
    ) -> BoxFuture<'static, Option<Value>> {
        #[cfg(test)]
        let hold = remote::lock(&self.hooks.hold).clone();
        #[cfg(test)]
        let panic = self.hooks.panic.load(std::sync::atomic::Ordering::Relaxed);
        let command = move |mut conn| async move {
            #[cfg(test)]
            if let Some(hold) = hold {
                let _ = hold.acquire().await;
            }
            #[cfg(test)]
            assert!(!panic, "a command panics (test hook)");
            let args = args.iter().map(Vec::as_slice);
            let invocation = invocation(script, key.as_deref(), args);
            invocation.invoke_async::<Value>(&mut conn).await
        };
        self.remote.run_or_queue(command, own, queue)
    }
}

impl<K, V> Tier<K, V> {
    /// How many resynchronisations read the version of every tag in use.
    #[cfg(test)]
    pub(crate) fn full_resyncs(&self) -> u64 {
        self.remote
            .full_resyncs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether no invalidation or insert of this replica is on its way to
    /// Redis, and (if `queued`) none is queued either.
    #[cfg(test)]
    pub(crate) fn settled(&self, queued: bool) -> bool {
        self.remote.settled(queued)
    }

    /// Whether a replay of the queue is under way.
    #[cfg(all(test, feature = "sync", feature = "future"))]
    pub(crate) fn replaying(&self) -> bool {
        remote::lock(&self.remote.unsent).replaying
    }

    /// While `hold` is set, replays wait for a permit of it before they
    /// send what they took from the queue.
    #[cfg(all(test, feature = "sync", feature = "future"))]
    pub(crate) fn hold_replays(&self, hold: Option<Arc<tokio::sync::Semaphore>>) {
        *remote::lock(&self.remote.replay_hold) = hold;
    }

    /// Whether the tier is connected and resynchronised.
    pub(crate) fn is_connected(&self) -> bool {
        self.remote.is_connected()
    }

    /// Adds the second level's figures to `stats`.
    pub(crate) fn fill(&self, stats: &mut CacheStats) {
        let errors = self.remote.error_counts();
        stats.l2_enabled = true;
        stats.l2_hits = self.remote.hits();
        stats.l2_misses = self.remote.misses();
        stats.l2_errors = errors.total();
        stats.l2_error_kinds = errors;
    }
}
