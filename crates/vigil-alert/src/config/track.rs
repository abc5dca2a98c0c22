//! Where in the document a deserialization error happened.
//!
//! Serde reports *what* went wrong; the formats report *where* as a line
//! and column (YAML) or a byte span (TOML), but neither hands out the field
//! path structurally. [`Tracked`] wraps any `Deserializer` and keeps a stack
//! of the map keys, sequence indices and enum variants it is inside; the
//! first error seen (the deepest) records that stack and, when it comes
//! from a visitor, its message before the format decorates it with a
//! position. The idea is `serde_path_to_error`'s, cut down to what the
//! config loader needs.
//!
//! It also remembers the string values of `name` and `receiver` keys as they
//! are read, so an error names its item (`rule "HighLatency"`) from the
//! same single pass instead of parsing the document again.
//!
//! Cost: one push and pop per map entry or sequence element, and one string
//! per map key. Config files are small and loaded once.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

/// One step into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A map key (or struct field, or enum variant).
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A path into a document: `rules[0].thresholds.critical.value`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Path(pub(crate) Vec<Segment>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// What the tracker learned about the first error.
#[derive(Debug, Default)]
pub(crate) struct Failure {
    /// Where it happened.
    pub(crate) path: Path,
    /// Its message, when it was raised by a visitor (before the format
    /// added a position to it).
    pub(crate) message: Option<String>,
}

/// The keys whose string values name their item (`rules[0].name`,
/// `routing.routes[1].receiver`), remembered as they are read so that an
/// error can name its item without reading the document again.
const NAMING_KEYS: [&str; 2] = ["name", "receiver"];

/// The naming values read, each with its full path.
#[derive(Debug, Default)]
pub(crate) struct Names(Vec<(Vec<Segment>, String)>);

impl Names {
    /// The value at `PARENTS[index].field`, if it was read.
    pub(crate) fn find(&self, parents: &[&str], index: usize, field: &str) -> Option<String> {
        let wanted = parents
            .iter()
            .map(|p| Segment::Key((*p).to_owned()))
            .chain([Segment::Index(index), Segment::Key(field.to_owned())]);
        self.0
            .iter()
            .find(|(path, _)| path.iter().cloned().eq(wanted.clone()))
            .map(|(_, value)| value.clone())
    }
}

/// The state shared by all wrappers of one deserialization.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    stack: RefCell<Vec<Segment>>,
    failure: RefCell<Option<Failure>>,
    names: RefCell<Names>,
}

impl Tracker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The first error's path and message, if any error was seen.
    pub(crate) fn into_failure(self) -> Option<Failure> {
        self.failure.into_inner()
    }

    /// The first error (if any) and the naming values read.
    pub(crate) fn into_parts(self) -> (Option<Failure>, Names) {
        (self.failure.into_inner(), self.names.into_inner())
    }

    /// Remembers a string read as the value of a naming key.
    fn saw_string(&self, value: &str) {
        let stack = self.stack.borrow();
        let naming =
            matches!(stack.last(), Some(Segment::Key(k)) if NAMING_KEYS.contains(&k.as_str()));
        if naming && stack.len() > 1 {
            self.names
                .borrow_mut()
                .0
                .push((stack.clone(), value.to_owned()));
        }
    }

    fn push(&self, segment: Segment) {
        self.stack.borrow_mut().push(segment);
    }

    fn pop(&self) {
        self.stack.borrow_mut().pop();
    }

    /// Records the first error: the current path plus `extra`.
    fn record(&self, extra: Option<&str>, message: Option<String>) {
        let mut failure = self.failure.borrow_mut();
        if failure.is_some() {
            return;
        }
        let mut path = self.stack.borrow().clone();
        if let Some(key) = extra {
            path.push(Segment::Key(key.to_owned()));
        }
        *failure = Some(Failure {
            path: Path(path),
            message,
        });
    }

    fn seen<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.record(None, None);
        }
        result
    }
}

/// Slot for the text of a map key or enum variant being read.
struct KeySlot {
    text: RefCell<Option<String>>,
    /// Whether an error while reading it belongs under it: yes for a map
    /// key (`unknown field` names the field), no for a variant name (an
    /// unknown variant is the value itself).
    append_on_error: bool,
}

impl KeySlot {
    fn new(append_on_error: bool) -> Self {
        KeySlot {
            text: RefCell::new(None),
            append_on_error,
        }
    }

    fn appended(&self) -> Option<String> {
        if self.append_on_error {
            self.text.borrow().clone()
        } else {
            None
        }
    }
}

/// A `Deserializer` that reports its path to a [`Tracker`].
pub(crate) struct Tracked<'a, D> {
    inner: D,
    tracker: &'a Tracker,
    key: Option<&'a KeySlot>,
}

impl<'a, D> Tracked<'a, D> {
    pub(crate) fn new(inner: D, tracker: &'a Tracker) -> Self {
        Tracked {
            inner,
            tracker,
            key: None,
        }
    }
}

/// A `Visitor` that reports errors (and, for keys, the key text).
struct TrackedVisitor<'a, V> {
    inner: V,
    tracker: &'a Tracker,
    key: Option<&'a KeySlot>,
}

impl<'a, V> TrackedVisitor<'a, V> {
    /// Splits off the inner visitor, keeping what reporting needs.
    fn split(self) -> (V, Catch<'a>) {
        (
            self.inner,
            Catch {
                tracker: self.tracker,
                key: self.key,
            },
        )
    }
}

/// Records a visitor's error (with the key being read, if any).
struct Catch<'a> {
    tracker: &'a Tracker,
    key: Option<&'a KeySlot>,
}

impl Catch<'_> {
    fn caught<T, E: de::Error>(&self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result {
            let key = self.key.and_then(KeySlot::appended);
            self.tracker.record(key.as_deref(), Some(e.to_string()));
        }
        result
    }

    fn remember_key(&self, text: impl FnOnce() -> String) {
        if let Some(slot) = self.key {
            *slot.text.borrow_mut() = Some(text());
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                let tracker = self.tracker;
                let visitor = TrackedVisitor { inner: visitor, tracker, key: self.key };
                tracker.seen(self.inner.$method(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tracked<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let tracker = self.tracker;
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: self.key,
        };
        tracker.seen(self.inner.deserialize_unit_struct(name, visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let tracker = self.tracker;
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: self.key,
        };
        tracker.seen(self.inner.deserialize_newtype_struct(name, visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let tracker = self.tracker;
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: self.key,
        };
        tracker.seen(self.inner.deserialize_tuple(len, visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let tracker = self.tracker;
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: self.key,
        };
        tracker.seen(self.inner.deserialize_tuple_struct(name, len, visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let tracker = self.tracker;
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: self.key,
        };
        tracker.seen(self.inner.deserialize_struct(name, fields, visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let tracker = self.tracker;
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: self.key,
        };
        tracker.seen(self.inner.deserialize_enum(name, variants, visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                let (inner, catch) = self.split();
                catch.remember_key(|| v.to_string());
                let result = inner.$method(v);
                catch.caught(result)
            }
        )*
    };
}

macro_rules! forward_visit_str {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                let (inner, catch) = self.split();
                if catch.key.is_none() {
                    catch.tracker.saw_string(&v);
                }
                catch.remember_key(|| v.to_string());
                let result = inner.$method(v);
                catch.caught(result)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for TrackedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
    );

    forward_visit_str!(
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
    );

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        let (inner, catch) = self.split();
        let result = inner.visit_bytes(v);
        catch.caught(result)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        let (inner, catch) = self.split();
        let result = inner.visit_borrowed_bytes(v);
        catch.caught(result)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        let (inner, catch) = self.split();
        let result = inner.visit_byte_buf(v);
        catch.caught(result)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        let (inner, catch) = self.split();
        let result = inner.visit_none();
        catch.caught(result)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        let (inner, catch) = self.split();
        let result = inner.visit_unit();
        catch.caught(result)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let d = Tracked::new(d, self.tracker);
        let result = self.inner.visit_some(d);
        self.tracker.seen(result)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let d = Tracked::new(d, self.tracker);
        let result = self.inner.visit_newtype_struct(d);
        self.tracker.seen(result)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let seq = TrackedSeq {
            inner: seq,
            tracker: self.tracker,
            index: 0,
        };
        let (inner, catch) = self.split();
        let result = inner.visit_seq(seq);
        catch.caught(result)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let map = TrackedMap {
            inner: map,
            tracker: self.tracker,
            key: KeySlot::new(true),
        };
        let (inner, catch) = self.split();
        let result = inner.visit_map(map);
        catch.caught(result)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let data = TrackedEnum {
            inner: data,
            tracker: self.tracker,
        };
        let (inner, catch) = self.split();
        let result = inner.visit_enum(data);
        catch.caught(result)
    }
}

/// A seed whose deserializer is tracked (optionally capturing a key).
struct TrackedSeed<'a, S> {
    inner: S,
    tracker: &'a Tracker,
    key: Option<&'a KeySlot>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for TrackedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let tracker = self.tracker;
        let result = self.inner.deserialize(Tracked {
            inner: d,
            tracker,
            key: self.key,
        });
        tracker.seen(result)
    }
}

struct TrackedSeq<'a, A> {
    inner: A,
    tracker: &'a Tracker,
    index: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for TrackedSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let tracker = self.tracker;
        tracker.push(Segment::Index(self.index));
        let result = self.inner.next_element_seed(TrackedSeed {
            inner: seed,
            tracker,
            key: None,
        });
        let result = tracker.seen(result);
        tracker.pop();
        self.index += 1;
        result
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct TrackedMap<'a, A> {
    inner: A,
    tracker: &'a Tracker,
    /// The key of the entry being read.
    key: KeySlot,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TrackedMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        *self.key.text.borrow_mut() = None;
        let result = self.inner.next_key_seed(TrackedSeed {
            inner: seed,
            tracker: self.tracker,
            key: Some(&self.key),
        });
        if result.is_err() {
            let key = self.key.appended();
            self.tracker.record(key.as_deref(), None);
        }
        result
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let tracker = self.tracker;
        let key = self
            .key
            .text
            .borrow_mut()
            .take()
            .unwrap_or_else(|| "?".to_owned());
        tracker.push(Segment::Key(key));
        let result = self.inner.next_value_seed(TrackedSeed {
            inner: seed,
            tracker,
            key: None,
        });
        let result = tracker.seen(result);
        tracker.pop();
        result
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct TrackedEnum<'a, A> {
    inner: A,
    tracker: &'a Tracker,
}

impl<'a, 'de, A: EnumAccess<'de>> EnumAccess<'de> for TrackedEnum<'a, A> {
    type Error = A::Error;
    type Variant = TrackedVariant<'a, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let tracker = self.tracker;
        let slot = KeySlot::new(false);
        let result = self.inner.variant_seed(TrackedSeed {
            inner: seed,
            tracker,
            key: Some(&slot),
        });
        let name = slot.text.into_inner();
        match result {
            Ok((value, variant)) => Ok((
                value,
                TrackedVariant {
                    inner: variant,
                    tracker,
                    name: name.unwrap_or_else(|| "?".to_owned()),
                },
            )),
            Err(e) => {
                tracker.record(None, None);
                Err(e)
            }
        }
    }
}

struct TrackedVariant<'a, A> {
    inner: A,
    tracker: &'a Tracker,
    name: String,
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for TrackedVariant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        let tracker = self.tracker;
        tracker.push(Segment::Key(self.name));
        let result = tracker.seen(self.inner.unit_variant());
        tracker.pop();
        result
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let tracker = self.tracker;
        tracker.push(Segment::Key(self.name));
        let result = self.inner.newtype_variant_seed(TrackedSeed {
            inner: seed,
            tracker,
            key: None,
        });
        let result = tracker.seen(result);
        tracker.pop();
        result
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let tracker = self.tracker;
        tracker.push(Segment::Key(self.name));
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: None,
        };
        let result = tracker.seen(self.inner.tuple_variant(len, visitor));
        tracker.pop();
        result
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let tracker = self.tracker;
        tracker.push(Segment::Key(self.name));
        let visitor = TrackedVisitor {
            inner: visitor,
            tracker,
            key: None,
        };
        let result = tracker.seen(self.inner.struct_variant(fields, visitor));
        tracker.pop();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        values: BTreeMap<String, Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Inner {
        Number { value: f64 },
    }
    // serde_yaml_ng reads enum variants from YAML tags (`!number {..}`),
    // TOML from one-key tables.

    fn yaml_failure(text: &str) -> Failure {
        let tracker = Tracker::new();
        let de = serde_yaml_ng::Deserializer::from_str(text);
        Doc::deserialize(Tracked::new(de, &tracker)).unwrap_err();
        tracker.into_failure().unwrap()
    }

    fn toml_failure(text: &str) -> Failure {
        let tracker = Tracker::new();
        let de = toml::Deserializer::parse(text).unwrap();
        Doc::deserialize(Tracked::new(de, &tracker)).unwrap_err();
        tracker.into_failure().unwrap()
    }

    #[test]
    fn yaml_paths_reach_into_maps_sequences_and_variants() {
        let f = yaml_failure(
            "items:\n  - name: a\n    values: {x: !number {value: 1}}\n  - name: b\n    values:\n      y: !number {value: abc}\n",
        );
        assert_eq!(f.path.to_string(), "items[1].values.y.number.value");
    }

    #[test]
    fn unknown_keys_are_part_of_the_path() {
        let f = yaml_failure("items:\n  - name: a\n    valuez: {}\n");
        assert_eq!(f.path.to_string(), "items[0].valuez");
        assert!(f.message.unwrap().contains("unknown field `valuez`"));
        let f = yaml_failure("items:\n  - name: a\n    values: {x: !numbr {}}\n");
        assert_eq!(f.path.to_string(), "items[0].values.x");
    }

    #[test]
    fn toml_paths_match_yaml_paths() {
        let f = toml_failure("[[items]]\nname = \"a\"\n[items.values.x.number]\nvalue = \"abc\"\n");
        assert_eq!(f.path.to_string(), "items[0].values.x.number.value");
        let f = toml_failure("[[items]]\nname = \"a\"\n");
        assert_eq!(f.path.to_string(), "items[0]");
        assert!(f.message.unwrap().contains("missing field `values`"));
    }
}
