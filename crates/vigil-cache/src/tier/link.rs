//! The link task of one cache: connects to Redis, subscribes to the
//! invalidation channel, replays the invalidations made while Redis was
//! unreachable, resynchronises the local level with the versions in Redis,
//! and then applies every other replica's invalidation as it is published,
//! until the connection is lost (then it starts over, once per retry
//! interval) or the cache is dropped.
//!
//! Resynchronisation: the task remembers the Redis dataset (its boot token)
//! and the last invalidation sequence number it applied. On reconnection
//! it reads the current number, the `invalidate_all` and key-write numbers
//! and the tags invalidated since that number (Redis keeps the latest
//! ones in a sorted set by number), in one script; if Redis no longer
//! holds them all (trimmed), and on the first connection, it reads the
//! version of every tag the local level holds instead (also if a replica
//! of an older version, which does not record its tags there, invalidated
//! something since: `seq - nseq` moved). A tag invalidated
//! since is invalidated locally; an `invalidate_all`, or a key
//! written or invalidated since, drops the whole local level (keys cannot
//! be listed cheaply). A new dataset (Redis lost its data: another boot
//! token, or a sequence number below the last one applied) drops the whole
//! local level too, since the invalidations it missed are gone with the
//! data. Loads in flight when it begins keep their values only for their
//! callers (see `Remote::resyncs`): they may carry a tag the local level
//! did not hold yet, invalidated while the replica was away. Only then are
//! commands let through again.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, Weak};

use futures_util::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubStream};
use redis::{AsyncConnectionConfig, Client, Msg, Value};
use tokio::sync::watch;

use super::keys::KeyIndex;
use super::remote::{Covers, ErrorKind, Remote, Unsent, lock, random};
use super::scripts::{INVALIDATE_ALL, INVALIDATE_KEY, INVALIDATE_TAGS, RESYNC, RESYNC_CHANGED};
use super::{integer, invocation};

/// What the link task needs from the local level of its cache (implemented
/// for both flavours in `handle`).
pub(crate) trait Local<K>: LocalKey<K> {
    /// Invalidates `tags` locally only.
    fn drop_tags(&self, tags: &[&str]);
    /// `invalidate_all`, locally only.
    fn drop_all(&self);
    /// The tags the local level holds entries with.
    fn tags_in_use(&self) -> Vec<String>;
}

/// The part of [`Local`] that differs between the flavours.
pub(crate) trait LocalKey<K>: Send + Sync + 'static {
    /// `invalidate(key)`, locally only.
    fn drop_key(self: Arc<Self>, key: K) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Why a connection's service ended.
enum Ended {
    Lost,
    Shutdown,
}

/// A failure of the link, with its kind for the counters.
type Failure = (ErrorKind, String);

fn failure(error: redis::RedisError) -> Failure {
    (ErrorKind::of(&error), error.to_string())
}

/// `future` within `limit`, as a link failure.
async fn within<T>(
    limit: std::time::Duration,
    future: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(failure),
        Err(_) => Err((ErrorKind::Timeout, format!("no answer within {limit:?}"))),
    }
}

/// Where the local level stands against Redis: the dataset's boot token,
/// the last sequence number applied, and `seq - nseq` at the last
/// resynchronisation (the sequence numbers taken by writers of a version
/// that does not count `P:nseq`: if it moved, such a writer invalidated
/// something, maybe without recording its tags in `P:changed`).
type Synced = Option<(Vec<u8>, u64, u64)>;

/// The link task (see the module documentation).
pub(crate) async fn run<K>(remote: Arc<Remote>, keys: Arc<KeyIndex<K>>, local: Weak<dyn Local<K>>)
where
    K: Clone + PartialEq + Send + 'static,
{
    let Some(client) = remote.client.clone() else {
        return;
    };
    let mut shutdown = remote.shutdown.subscribe();
    let mut synced: Synced = None;
    let mut pause = false;
    loop {
        if pause {
            tokio::select! {
                () = tokio::time::sleep(remote.options.retry_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
        pause = true;
        if *shutdown.borrow() {
            return;
        }
        let linked = tokio::select! {
            linked = connect(&remote, &client) => linked,
            _ = shutdown.changed() => return,
        };
        let (conn, messages) = match linked {
            Ok(linked) => linked,
            Err((kind, error)) => {
                remote.failed(kind, &error);
                continue;
            }
        };
        let limit = remote.options.connect_timeout;
        // A fresh token per attempt: one reused across reconnects would be
        // taken for the old dataset if this replica is the first to reach
        // a Redis that lost its data.
        let token = format!("{:016x}", random()).into_bytes();
        let resynced = tokio::time::timeout(
            limit,
            resync(&remote, conn.clone(), &local, &mut synced, &token),
        )
        .await
        .unwrap_or_else(|_| Err((ErrorKind::Timeout, format!("no resync within {limit:?}"))));
        match resynced {
            Ok(true) => {}
            Ok(false) => return,
            Err((kind, error)) => {
                remote.failed(kind, &error);
                continue;
            }
        }
        // A stale "broken" of the previous connection must not end this
        // one at once.
        let _ = remote.broken.notified().now_or_never();
        remote.connected(conn.clone());
        let ended = serve(
            &remote,
            &keys,
            &local,
            conn,
            messages,
            &mut synced,
            &mut shutdown,
        )
        .await;
        remote.disconnected();
        match ended {
            Ended::Shutdown => return,
            Ended::Lost => {
                remote.failed(ErrorKind::Io, &"connection to Redis lost");
                // Try again at once (a restarted Redis is back quickly),
                // then once per interval.
                pause = false;
            }
        }
    }
}

async fn connect(
    remote: &Remote,
    client: &Client,
) -> Result<(MultiplexedConnection, PubSubStream), Failure> {
    let limit = remote.options.connect_timeout;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(limit))
        .set_response_timeout(Some(remote.options.command_timeout));
    let conn = within(
        limit,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await?;
    let mut pubsub = within(limit, client.get_async_pubsub()).await?;
    within(limit, pubsub.subscribe(remote.channel())).await?;
    Ok((conn, pubsub.into_on_message()))
}

/// Invalidations taken out of the queue to be replayed: whatever was not
/// sent when this is dropped (a failure, or the replay cancelled by the
/// resynchronisation's timeout) goes back into the queue.
struct Sending<'a> {
    remote: &'a Remote,
    unsent: Unsent,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        let left = std::mem::take(&mut self.unsent);
        let mut queue = lock(&self.remote.unsent);
        queue.merge(left);
        queue.replaying = false;
    }
}

/// Replays the invalidations that could not reach Redis; what was not sent
/// (on failure or cancellation) stays queued. Each one sent leaves the
/// queue, so a long replay cut short still makes progress.
pub(crate) async fn flush(
    remote: &Remote,
    conn: &mut MultiplexedConnection,
) -> Result<(), Failure> {
    let mut sending = {
        let mut queue = lock(&remote.unsent);
        if queue.is_empty() || queue.replaying {
            return Ok(());
        }
        let unsent = std::mem::take(&mut *queue);
        // Set on the queue left behind, not on what is taken from it.
        queue.replaying = true;
        Sending { remote, unsent }
    };
    #[cfg(test)]
    {
        let hold = lock(&remote.replay_hold).clone();
        if let Some(hold) = hold {
            let _ = hold.acquire().await;
        }
    }
    replay(remote, conn, &mut sending.unsent).await
}

/// Sends `unsent`, removing each invalidation from it once Redis has it.
/// Any error, a server error included (`LOADING`, `READONLY`, `OOM`, ...
/// are transient), stops the replay and keeps what was not sent: dropping
/// an invalidation would leave stale values current. Durations are
/// clamped, so Redis does not refuse these commands for their arguments.
async fn replay(
    remote: &Remote,
    conn: &mut MultiplexedConnection,
    unsent: &mut Unsent,
) -> Result<(), Failure> {
    let origin = remote.origin.to_string();
    let prefix = remote.prefix.as_bytes();
    let limit = remote.options.connect_timeout;
    if unsent.all {
        let all = invocation(&INVALIDATE_ALL, None, [prefix, origin.as_bytes()]);
        let seq = within(limit, all.invoke_async::<Value>(conn)).await?;
        reached(remote, &Covers::All, &seq);
        unsent.all = false;
    }
    if !unsent.tags.is_empty() {
        let args = [prefix, origin.as_bytes()]
            .into_iter()
            .chain(unsent.tags.iter().map(String::as_bytes));
        let tags = invocation(&INVALIDATE_TAGS, None, args);
        let seq = within(limit, tags.invoke_async::<Value>(conn)).await?;
        let tags = std::mem::take(&mut unsent.tags);
        reached(remote, &Covers::Tags(tags.into_iter().collect()), &seq);
    }
    let tombstone = remote.options.tombstone_ttl.as_millis().max(1).to_string();
    while let Some(key) = unsent.keys.first() {
        let args = [
            prefix,
            origin.as_bytes(),
            key.as_slice(),
            tombstone.as_bytes(),
        ];
        let entry = remote.entry_key(key);
        let invalidate = invocation(&INVALIDATE_KEY, Some(&entry), args);
        let seq = within(limit, invalidate.invoke_async::<Value>(conn)).await?;
        if let Some(key) = unsent.keys.pop_first() {
            reached(remote, &Covers::Key(key), &seq);
        }
    }
    Ok(())
}

/// Records a replayed invalidation that Redis answered with `seq` for the
/// reads in flight (see `Reading::overtaken`), before it leaves the queue.
fn reached(remote: &Remote, covers: &Covers, seq: &Value) {
    if let Some(seq) = integer(seq) {
        remote.reached(covers, seq);
    }
}

/// Replays what is unsent, then brings the local level up to date with
/// Redis (see the module documentation). `Ok(false)` if the cache is gone.
async fn resync<K: 'static>(
    remote: &Remote,
    mut conn: MultiplexedConnection,
    local: &Weak<dyn Local<K>>,
    synced: &mut Synced,
    token: &[u8],
) -> Result<bool, Failure> {
    flush(remote, &mut conn).await?;
    let Some(local) = local.upgrade() else {
        return Ok(false);
    };
    // From here on, loads in flight do not keep their values; every entry
    // registered before is in the tag index when it is read below.
    *remote
        .resyncs
        .write()
        .unwrap_or_else(PoisonError::into_inner) += 1;
    if let Some((known, applied, gap)) = synced.as_ref() {
        // Only the tags changed since this replica was last in sync, if
        // Redis still knows them all.
        let applied_text = applied.to_string();
        let args = [remote.prefix.as_bytes(), token, applied_text.as_bytes()];
        let answer: Vec<Value> = invocation(&RESYNC_CHANGED, None, args)
            .invoke_async(&mut conn)
            .await
            .map_err(failure)?;
        let (boot, seq, all, keys, nseq) = counters(&answer)?;
        if boot == *known
            && seq >= *applied
            && seq.saturating_sub(nseq) == *gap
            && answer.get(5).and_then(integer) == Some(1)
        {
            if all > *applied || keys > *applied {
                local.drop_all();
            } else {
                // Only the tags the local level holds: a load in flight,
                // which could carry another, is not kept (see above), and
                // an unknown tag would take a slot in the tag index.
                let changed: HashSet<String> = answer[6..].iter().filter_map(text).collect();
                if !changed.is_empty() {
                    let in_use = local.tags_in_use();
                    let moved: Vec<&str> = in_use
                        .iter()
                        .filter(|tag| changed.contains(*tag))
                        .map(String::as_str)
                        .collect();
                    if !moved.is_empty() {
                        local.drop_tags(&moved);
                    }
                }
            }
            *synced = Some((boot, seq, seq.saturating_sub(nseq)));
            return Ok(true);
        }
    }
    #[cfg(test)]
    remote
        .full_resyncs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tags = local.tags_in_use();
    let args = [remote.prefix.as_bytes(), token]
        .into_iter()
        .chain(tags.iter().map(String::as_bytes));
    let answer: Vec<Value> = invocation(&RESYNC, None, args)
        .invoke_async(&mut conn)
        .await
        .map_err(failure)?;
    let (boot, seq, all, keys, nseq) = counters(&answer)?;
    let number = |i: usize| answer.get(i).and_then(integer).unwrap_or(0);
    let (since, lost) = match synced {
        // The same dataset, not rolled back.
        Some((known, applied, _)) if *known == boot && seq >= *applied => (*applied, false),
        // Redis lost its data (a new dataset, or its sequence went back):
        // what it invalidated before is not in it any more.
        Some(_) => (0, true),
        None => (0, false),
    };
    if lost || all > since || keys > since {
        local.drop_all();
    } else {
        let moved: Vec<&str> = tags
            .iter()
            .enumerate()
            .filter(|&(i, _)| number(5 + i) > since)
            .map(|(_, tag)| tag.as_str())
            .collect();
        if !moved.is_empty() {
            local.drop_tags(&moved);
        }
    }
    *synced = Some((boot, seq, seq.saturating_sub(nseq)));
    Ok(true)
}

/// The boot token, sequence number, `invalidate_all` and key-write
/// numbers and `nseq` that begin both resynchronisation scripts' answers.
fn counters(answer: &[Value]) -> Result<(Vec<u8>, u64, u64, u64, u64), Failure> {
    let boot = match answer.first() {
        Some(Value::BulkString(boot)) => boot.clone(),
        _ => return Err((ErrorKind::Server, "unexpected resync answer".into())),
    };
    let number = |i: usize| answer.get(i).and_then(integer).unwrap_or(0);
    Ok((boot, number(1), number(2), number(3), number(4)))
}

/// A tag in a script's answer.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    }
}

/// Applies the published invalidations until the connection is lost or
/// the cache is dropped; replays unsent invalidations once per interval.
async fn serve<K: Clone + PartialEq + 'static>(
    remote: &Remote,
    keys: &KeyIndex<K>,
    local: &Weak<dyn Local<K>>,
    mut conn: MultiplexedConnection,
    mut messages: PubSubStream,
    synced: &mut Synced,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    // The first tick is at once: it replays what was queued during the
    // resynchronisation.
    let mut tick = tokio::time::interval(remote.options.retry_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            message = messages.next() => match message {
                None => return Ended::Lost,
                Some(message) => {
                    if !apply(remote, keys, local, &message, synced).await {
                        return Ended::Shutdown;
                    }
                }
            },
            () = remote.broken.notified() => return Ended::Lost,
            _ = shutdown.changed() => return Ended::Shutdown,
            _ = tick.tick() => {
                if let Err((kind, error)) = flush(remote, &mut conn).await {
                    remote.failed(kind, &error);
                    // Reads skip the Redis entries that queued
                    // invalidations cover: a connection that cannot carry
                    // them is replaced.
                    if matches!(kind, ErrorKind::Io | ErrorKind::Connect | ErrorKind::Timeout) {
                        return Ended::Lost;
                    }
                }
            }
        }
    }
}

/// Applies one message; false if the cache is gone.
async fn apply<K: Clone + PartialEq + 'static>(
    remote: &Remote,
    keys: &KeyIndex<K>,
    local: &Weak<dyn Local<K>>,
    message: &Msg,
    synced: &mut Synced,
) -> bool {
    let mut parts = message.get_payload_bytes().splitn(4, |&byte| byte == b'|');
    let (Some(kind), Some(origin), Some(seq), Some(payload)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return true;
    };
    let number = |bytes: &[u8]| std::str::from_utf8(bytes).ok()?.parse::<u64>().ok();
    let seq = number(seq);
    if let (Some((_, applied, _)), Some(seq)) = (synced.as_mut(), seq) {
        *applied = (*applied).max(seq);
    }
    if kind == b"k"
        && let (Ok(digest), Some(seq)) = (std::str::from_utf8(payload), seq)
    {
        // Also this replica's own: see `Writing`.
        keys.announced(digest, seq);
    }
    if number(origin) == Some(remote.origin) {
        // Applied locally already, by the call that published it.
        return true;
    }
    let Some(local) = local.upgrade() else {
        return false;
    };
    match kind {
        b"t" => local.drop_tags(&[&String::from_utf8_lossy(payload)]),
        b"a" => local.drop_all(),
        b"k" => {
            let Ok(digest) = std::str::from_utf8(payload) else {
                return true;
            };
            // A key held locally is dropped; a load of it in flight is
            // superseded (its value is not kept), or, if it is storing its
            // value, waited for and then dropped.
            for key in keys.keys(digest) {
                Arc::clone(&local).drop_key(key).await;
            }
        }
        _ => {}
    }
    true
}
