//! The Lua scripts behind every Redis operation of the second level: each
//! operation is one round trip, and atomic, so a read checks the entry
//! against the current versions in the same step as it reads it.
//!
//! Keys under the prefix `P:` (ARGV[1] is `P:` in every script):
//! - `P:v:{digest}`: a hash per entry: `k` (the encoded key), `d` (the
//!   encoded value), `s` (the invalidation sequence number the value was
//!   loaded at) and one field `t:{tag}` per tag; or, after `invalidate(key)`, only `x` (the sequence
//!   number of the invalidation: a tombstone, refusing older loads);
//! - `P:seq`: the invalidation sequence, `INCR`ed by every invalidation and
//!   insert;
//! - `P:nseq`: `INCR`ed with `P:seq` by these scripts only: `seq - nseq`
//!   moves when a replica of an older version (which does not record its
//!   tags in `P:changed`) invalidates something;
//! - `P:tagv:{tag}`, `P:all`, `P:keyv`: the sequence number of the last
//!   invalidation of `tag`, of `invalidate_all`, and of any key;
//! - `P:boot`: a token set once per Redis dataset, to tell a Redis that
//!   lost its data from one that did not;
//! - `P:changed`: a sorted set of the tags invalidated, each scored by the
//!   number of its last invalidation (at most [`CHANGED_CAP`] of them, the
//!   latest), and `P:trimmed`: the highest number trimmed from it, so that
//!   a reconnecting replica reads only the tags changed since it was
//!   last in sync;
//! - channel `P:inval`: one message per invalidation,
//!   `{kind}|{origin}|{seq}|{payload}` with kind `t` (payload: the tag), `a`
//!   (none) or `k` (the key's digest).
//!
//! An entry loaded at `s` is current while no invalidation of any of its
//! tags, no `invalidate_all` and no write of its key has a number above
//! `s`: reads and load writes check exactly that.
//!
//! These scripts touch keys they compute from the prefix: they need a
//! standalone Redis (or a primary), not Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// KEYS[1] = entry; ARGV: prefix, encoded key. Returns `{0, seq}`
/// (absent, or another key's), `{2, seq}` (stale), or `{1, seq, data,
/// pttl, tag...}`.
pub(crate) static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = ARGV[1]
local seq = tonumber(redis.call('GET', p .. 'seq') or '0')
local h = redis.call('HGETALL', KEYS[1])
local data, s, tags, k = nil, 0, {}, nil
for i = 1, #h, 2 do
  local f = h[i]
  if f == 'd' then data = h[i + 1]
  elseif f == 'k' then k = h[i + 1]
  elseif f == 's' then s = tonumber(h[i + 1])
  elseif string.sub(f, 1, 2) == 't:' then tags[#tags + 1] = string.sub(f, 3) end
end
if not data or k ~= ARGV[2] then return {0, seq} end
if tonumber(redis.call('GET', p .. 'all') or '0') > s then return {2, seq} end
for _, t in ipairs(tags) do
  if tonumber(redis.call('GET', p .. 'tagv:' .. t) or '0') > s then return {2, seq} end
end
local r = {1, seq, data, redis.call('PTTL', KEYS[1])}
for _, t in ipairs(tags) do r[#r + 1] = t end
return r
",
    )
});

/// KEYS[1] = entry; ARGV: prefix, load sequence number (empty for an
/// insert), ttl in ms (0: none), data, origin, encoded key, key digest,
/// tag...
/// An insert takes a new sequence number and announces the key; a load
/// writes only if nothing it depends on moved since it began. Returns the
/// entry's sequence number if written (an insert's: the new one), else 0.
pub(crate) static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = ARGV[1]
local s
if ARGV[2] == '' then
  s = redis.call('INCR', p .. 'seq')
  redis.call('INCR', p .. 'nseq')
  redis.call('SET', p .. 'keyv', s)
  redis.call('PUBLISH', p .. 'inval', 'k|' .. ARGV[5] .. '|' .. s .. '|' .. ARGV[7])
else
  s = tonumber(ARGV[2])
  if s > tonumber(redis.call('GET', p .. 'seq') or '0') then return 0 end
  local held = redis.call('HMGET', KEYS[1], 's', 'x')
  if (held[1] and tonumber(held[1]) > s) or (held[2] and tonumber(held[2]) > s) then return 0 end
  if tonumber(redis.call('GET', p .. 'all') or '0') > s then return 0 end
  for i = 8, #ARGV do
    if tonumber(redis.call('GET', p .. 'tagv:' .. ARGV[i]) or '0') > s then return 0 end
  end
end
redis.call('DEL', KEYS[1])
local fields = {'d', ARGV[4], 's', s, 'k', ARGV[6]}
for i = 8, #ARGV do
  fields[#fields + 1] = 't:' .. ARGV[i]
  fields[#fields + 1] = '1'
end
redis.call('HSET', KEYS[1], unpack(fields))
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return s
",
    )
});

/// How many tags `P:changed` holds at most: above, the tags changed
/// longest ago leave it, and `P:trimmed` records the last number removed.
pub(crate) const CHANGED_CAP: usize = 100_000;

/// ARGV: prefix, origin, tag... Returns the new sequence number.
pub(crate) static INVALIDATE_TAGS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
local p = ARGV[1]
local n = redis.call('INCR', p .. 'seq')
redis.call('INCR', p .. 'nseq')
for i = 3, #ARGV do
  redis.call('SET', p .. 'tagv:' .. ARGV[i], n)
  redis.call('ZADD', p .. 'changed', n, ARGV[i])
  redis.call('PUBLISH', p .. 'inval', 't|' .. ARGV[2] .. '|' .. n .. '|' .. ARGV[i])
end
local over = redis.call('ZCARD', p .. 'changed') - {CHANGED_CAP}
if over > 0 then
  local old = redis.call('ZRANGE', p .. 'changed', 0, over - 1, 'WITHSCORES')
  redis.call('SET', p .. 'trimmed', old[#old])
  redis.call('ZREMRANGEBYRANK', p .. 'changed', 0, over - 1)
end
return n
"
    ))
});

/// ARGV: prefix, origin. Returns the new sequence number.
pub(crate) static INVALIDATE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = ARGV[1]
local n = redis.call('INCR', p .. 'seq')
redis.call('INCR', p .. 'nseq')
redis.call('SET', p .. 'all', n)
redis.call('PUBLISH', p .. 'inval', 'a|' .. ARGV[2] .. '|' .. n .. '|')
return n
",
    )
});

/// KEYS[1] = entry; ARGV: prefix, origin, key digest, tombstone ttl in
/// ms. Returns the new sequence number.
pub(crate) static INVALIDATE_KEY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = ARGV[1]
local n = redis.call('INCR', p .. 'seq')
redis.call('INCR', p .. 'nseq')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', n)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', p .. 'keyv', n)
redis.call('PUBLISH', p .. 'inval', 'k|' .. ARGV[2] .. '|' .. n .. '|' .. ARGV[3])
return n
",
    )
});

/// ARGV: prefix, a candidate boot token, tag... Returns `{boot token, seq,
/// all, keyv, nseq, version of each tag...}`.
pub(crate) static RESYNC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = ARGV[1]
redis.call('SET', p .. 'boot', ARGV[2], 'NX')
local num = function(k) return tonumber(redis.call('GET', p .. k) or '0') end
local r = {redis.call('GET', p .. 'boot'), num('seq'), num('all'), num('keyv'), num('nseq')}
for i = 3, #ARGV do r[#r + 1] = num('tagv:' .. ARGV[i]) end
return r
",
    )
});

/// ARGV: prefix, a candidate boot token, the last sequence number the
/// replica applied. Returns `{boot token, seq, all, keyv, nseq}`, followed, if
/// `P:changed` still holds every tag invalidated after that number, by
/// `1` and those tags.
pub(crate) static RESYNC_CHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = ARGV[1]
redis.call('SET', p .. 'boot', ARGV[2], 'NX')
local num = function(k) return tonumber(redis.call('GET', p .. k) or '0') end
local since = tonumber(ARGV[3])
local r = {redis.call('GET', p .. 'boot'), num('seq'), num('all'), num('keyv'), num('nseq')}
if num('trimmed') > since then return r end
r[6] = 1
for _, t in ipairs(redis.call('ZRANGEBYSCORE', p .. 'changed', '(' .. ARGV[3], '+inf')) do
  r[#r + 1] = t
end
return r
",
    )
});
