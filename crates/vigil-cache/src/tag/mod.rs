//! Tags and the tag index: per-tag version numbers for O(1) logical
//! invalidation, and per-tag generations with an exact count of their live
//! entries, so that an invalidation counts what it hides in O(1) too.
//!
//! Every tag in use owns a slot in a table that only grows (chunks are
//! allocated once and never move, so a slot is reached without a lock).
//! Each entry stores, inline, one [`Stamp`] per tag: the slot index and the
//! slot's version at insert. `invalidate_tag` bumps the version, so every
//! older entry with the tag fails the one-atomic-load check on its next read
//! (the scheme of Symfony's `TagAwareAdapter`); reads never evaluate
//! predicates and touch no reference count.
//!
//! A slot's [`Generation`] holds what belongs to its current version: the
//! number of live entries whose only tag it is (kept exact on insert,
//! removal, eviction and expiry, under the slot's lock, which the version
//! bump also holds), the keys of those entries (for physical removal), and
//! the entries that carry other tags as well. An invalidation swaps the
//! generation out whole under that lock: the count it returns and the keys
//! it queues for removal take no work per entry. A removal or expiry
//! reported for an entry of an older generation finds the version changed
//! and leaves the current generation alone.
//!
//! An entry with several distinct tags dies with the first of them that is
//! invalidated, so the others must stop counting it: it shares one `taken`
//! flag between its memberships, and whoever sets it first (an invalidation
//! walking its generation's entries with several tags, a removal, an
//! expiry, `invalidate_all`) is the one that counts its end. Invalidating a
//! tag therefore costs O(1) plus O(entries of that tag that carry other tags
//! too).
//!
//! A slot whose generation is empty is returned to a free list by the next
//! sweep (amortized over new tags, and run by `run_pending_tasks`) and
//! reused by a later new tag. Versions only grow, across reuse too, so an
//! entry stamped for the slot's previous tag (necessarily invalidated, or
//! it would still be a member) never matches again.

mod index;
mod stamp;

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) use index::{Invalidation, TagIndex};
pub(crate) use stamp::{Stamp, Stamps};

/// A label attached to cache entries so that a whole group can be dropped at
/// once with `invalidate_tag` (for example `"user:42"` or `"market"`).
///
/// Cloning is cheap (a reference count bump).
///
/// ```
/// use vigil_cache::Tag;
///
/// let tag = Tag::from("user:42");
/// assert_eq!(tag.as_str(), "user:42");
/// assert_eq!(tag.to_string(), "user:42");
/// assert_eq!(tag, Tag::from(String::from("user:42")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Arc<str>);

impl Tag {
    /// The tag's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tag").field(&&*self.0).finish()
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Tag {
    fn from(tag: &str) -> Self {
        Self(Arc::from(tag))
    }
}

impl From<String> for Tag {
    fn from(tag: String) -> Self {
        Self(Arc::from(tag))
    }
}

impl From<&String> for Tag {
    fn from(tag: &String) -> Self {
        Self(Arc::from(tag.as_str()))
    }
}

impl From<Arc<str>> for Tag {
    fn from(tag: Arc<str>) -> Self {
        Self(tag)
    }
}

impl From<&Tag> for Tag {
    fn from(tag: &Tag) -> Self {
        tag.clone()
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Tag {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for Tag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Tag::from)
    }
}
