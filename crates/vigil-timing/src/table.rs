//! Timers named at run time: [`TimerTable`], a bounded table of call sites
//! keyed by a name or label values known only at run time (one per AI
//! model, per query name).
//!
//! A [`CallSite`] is `&'static` and caches its `metrics` handles; the table
//! makes one per key on first use (its strings leaked, so it lives as long
//! as a `static` one) and finds it again on later calls. From there a call
//! is what a `#[timed]` call is: the same outcomes, caller tracking,
//! handles and cost, plus the lookup.
//!
//! The lookup is the hot path: one hash of the key (`std`'s SipHash with a
//! random seed, so keys chosen by a client cannot make them collide), then
//! an open-addressing probe over write-once slots: plain loads and
//! compares, no lock, no allocation, no reference count. A slot is never
//! replaced or freed, so a found site stays valid for good. Only the first
//! call of a key takes the cold path, which builds its site and fills a
//! slot under the table's lock (so racing threads never turn a key away
//! while there is room, nor fill the table beyond it).
//!
//! The table holds at most its capacity of keys
//! ([`TimerTable::DEFAULT_CAPACITY`] unless set): the series a table can
//! create are bounded whatever the keys. Calls with further keys are recorded on one shared overflow site
//! whose name (or label values) is [`TimerTable::OVERFLOW`], and counted
//! by [`TimerTable::overflowed`].

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::objectives::Objective;
use crate::{CallSite, Outcome, Timed, Timer, time_with};

/// A key of a [`TimerTable`]: the function name, or the values of the
/// table's labels in order.
///
/// Implemented for `str` and `String` (one value), arrays and slices of
/// `&str` (one value per label), and references to any of them.
pub trait TimerKey {
    /// Calls `f` with the key's values.
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R;
}

impl TimerKey for str {
    #[inline]
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        f(&[self])
    }
}

impl TimerKey for String {
    #[inline]
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        f(&[self.as_str()])
    }
}

impl TimerKey for [&str] {
    #[inline]
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        f(self)
    }
}

impl<const N: usize> TimerKey for [&str; N] {
    #[inline]
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        f(self)
    }
}

impl<K: TimerKey + ?Sized> TimerKey for &K {
    #[inline]
    fn with_values<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        (**self).with_values(f)
    }
}

/// What a table's key names.
#[derive(Clone, Copy, Debug)]
enum Naming {
    /// The `function` label.
    Function,
    /// The values of these labels, the function being fixed.
    Labels {
        function: &'static str,
        names: &'static [&'static str],
    },
}

/// What every site of a table takes besides its name.
#[derive(Clone, Copy, Debug)]
struct SiteOptions {
    labels: &'static [(&'static str, &'static str)],
    slow: Option<Duration>,
    concurrency: bool,
    objective: Option<&'static Objective>,
}

/// Call sites made at run time, one per key, bounded in number.
///
/// A table is declared like a [`CallSite`] (as a `static`, or kept for as
/// long as the program runs: the sites it makes are never freed) and keyed
/// either by the function name ([`by_function`](Self::by_function)) or by
/// the values of its own labels ([`by_labels`](Self::by_labels)). Each key
/// gets a site of its own on first use, with the table's static labels,
/// slow threshold, concurrency tracking and objective; timers, closures and
/// futures then run through it as through a `#[timed]` site, so a call of
/// a table's site made inside another instrumented call reports it as its
/// caller, and the other way round.
///
/// ```
/// use vigil_timing::{Outcome, TimerTable};
///
/// // `function_calls_total{function="infer", model="..", ..}`
/// static INFER: TimerTable = TimerTable::by_labels("infer", module_path!(), &["model"]);
/// // `function_calls_total{function="<query name>", ..}`
/// static QUERIES: TimerTable = TimerTable::by_function(module_path!()).with_capacity(200);
///
/// fn infer(model: &str, prompt: &str) -> Result<String, String> {
///     INFER.time_with(model, || Ok(prompt.to_uppercase()), Outcome::of_result)
/// }
///
/// assert_eq!(infer("small-v2", "hi"), Ok("HI".to_owned()));
/// let query = String::from("find_user");
/// let timer = QUERIES.start(&query); // records when dropped
/// drop(timer);
/// assert_eq!(QUERIES.site("find_user").name(), "find_user");
/// assert_eq!(INFER.site("small-v2").static_labels(), [("model", "small-v2")]);
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let rows = QUERIES.timed("list_orders", async { 3 }).await;
/// assert_eq!(rows, 3);
/// # });
/// assert_eq!(QUERIES.len(), 2);
/// ```
pub struct TimerTable {
    naming: Naming,
    module: &'static str,
    sites: SiteOptions,
    capacity: usize,
    /// Made on first use and never freed, so its sites are `'static`.
    state: OnceLock<&'static State>,
}

impl TimerTable {
    /// The value of the `function` label (or of every label of a
    /// [`by_labels`](Self::by_labels) table) of the site that records the
    /// calls with keys beyond the table's capacity.
    pub const OVERFLOW: &'static str = "vigil_overflow";

    /// How many keys a table holds unless
    /// [`with_capacity`](Self::with_capacity) says otherwise.
    pub const DEFAULT_CAPACITY: usize = 1_000;

    /// A table whose key is the `function` label of its sites, in `module`
    /// (pass `module_path!()`).
    #[must_use]
    pub const fn by_function(module: &'static str) -> TimerTable {
        TimerTable::with_naming(Naming::Function, module)
    }

    /// A table of sites of `function` in `module`, whose key is the values
    /// of the labels `names`, in that order. The names must not be one of
    /// the labels the function metrics set themselves (`function`,
    /// `module`, `service_name`, `caller_function`, `caller_module`,
    /// `result`, `objective_*`) nor one of the static
    /// [`labels`](Self::labels), nor appear twice.
    ///
    /// # Panics
    ///
    /// On such a name: in a `static`, the program does not compile.
    ///
    /// ```compile_fail
    /// use vigil_timing::TimerTable;
    ///
    /// // `result` is the outcome label of `function_calls_total`.
    /// static BAD: TimerTable = TimerTable::by_labels("infer", module_path!(), &["result"]);
    /// ```
    #[must_use]
    pub const fn by_labels(
        function: &'static str,
        module: &'static str,
        names: &'static [&'static str],
    ) -> TimerTable {
        let mut i = 0;
        while i < names.len() {
            assert!(
                !is_reserved(names[i]),
                "TimerTable::by_labels: a key label is one the function metrics set themselves \
                 (function, module, service_name, caller_function, caller_module, result, \
                 objective_*)"
            );
            assert!(
                !contains(names, i + 1, names[i]),
                "TimerTable::by_labels: a key label appears twice"
            );
            i += 1;
        }
        TimerTable::with_naming(Naming::Labels { function, names }, module)
    }

    const fn with_naming(naming: Naming, module: &'static str) -> TimerTable {
        TimerTable {
            naming,
            module,
            sites: SiteOptions {
                labels: &[],
                slow: None,
                concurrency: false,
                objective: None,
            },
            capacity: TimerTable::DEFAULT_CAPACITY,
            state: OnceLock::new(),
        }
    }

    /// Holds at most `capacity` keys (default [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)); calls
    /// with further keys are recorded on the [`OVERFLOW`](Self::OVERFLOW)
    /// site.
    #[must_use]
    pub const fn with_capacity(mut self, capacity: usize) -> TimerTable {
        self.capacity = capacity;
        self
    }

    /// Static labels added to every metric of every site
    /// ([`CallSite::labels`]).
    ///
    /// # Panics
    ///
    /// When a name is also a key label of a [`by_labels`](Self::by_labels)
    /// table (in a `static`, the program does not compile).
    #[must_use]
    pub const fn labels(mut self, labels: &'static [(&'static str, &'static str)]) -> TimerTable {
        if let Naming::Labels { names, .. } = self.naming {
            let mut i = 0;
            while i < labels.len() {
                assert!(
                    !contains(names, 0, labels[i].0),
                    "TimerTable::labels: a static label is also a key label of the table"
                );
                i += 1;
            }
        }
        self.sites.labels = labels;
        self
    }

    /// A slow-call threshold for every site ([`CallSite::slow`]).
    #[must_use]
    pub const fn slow(mut self, threshold: Duration) -> TimerTable {
        self.sites.slow = Some(threshold);
        self
    }

    /// Tracks calls in flight on every site
    /// ([`CallSite::track_concurrency`]).
    #[must_use]
    pub const fn track_concurrency(mut self) -> TimerTable {
        self.sites.concurrency = true;
        self
    }

    /// Counts every site's calls towards `objective`
    /// ([`CallSite::objective`]).
    #[must_use]
    pub const fn objective(mut self, objective: &'static Objective) -> TimerTable {
        self.sites.objective = Some(objective);
        self
    }

    /// How many keys the table holds at most.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many keys the table holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state
            .get()
            .map_or(0, |state| state.len.load(Ordering::Relaxed))
    }

    /// Whether the table holds no key yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many lookups found the table full (or got a key with the wrong
    /// number of values) and went to the [`OVERFLOW`](Self::OVERFLOW) site.
    #[must_use]
    pub fn overflowed(&self) -> u64 {
        self.state
            .get()
            .map_or(0, |state| state.overflowed.load(Ordering::Relaxed))
    }

    /// The site of `key`, made now if the table has none for it yet.
    ///
    /// A key must have one value per label of a
    /// [`by_labels`](Self::by_labels) table, one for a
    /// [`by_function`](Self::by_function) one; a key with another number of
    /// values gets the [`OVERFLOW`](Self::OVERFLOW) site, as does a new key
    /// once the table is full.
    #[inline]
    pub fn site(&self, key: impl TimerKey) -> &'static CallSite {
        let state = self.state();
        key.with_values(|values| {
            state
                .find(values)
                .unwrap_or_else(|| self.add(state, values))
        })
    }

    /// Starts timing a call of `key`'s site ([`Timer::start`]).
    #[inline]
    pub fn start(&self, key: impl TimerKey) -> Timer {
        Timer::start(self.site(key))
    }

    /// Runs `f` as one call of `key`'s site ([`time`](crate::time())):
    /// `Ok` when it returns, `Panic` when it panics.
    #[inline]
    pub fn time<T>(&self, key: impl TimerKey, f: impl FnOnce() -> T) -> T {
        time_with(self.site(key), f, Outcome::always_ok)
    }

    /// Runs `f` as one call of `key`'s site, the outcome decided from its
    /// value by `classify` ([`time_with`]), e.g. [`Outcome::of_result`].
    #[inline]
    pub fn time_with<T>(
        &self,
        key: impl TimerKey,
        f: impl FnOnce() -> T,
        classify: impl FnOnce(&T) -> Outcome,
    ) -> T {
        time_with(self.site(key), f, classify)
    }

    /// Times `future` as one call of `key`'s site
    /// ([`TimedExt::timed`](crate::TimedExt::timed)); the site is looked up
    /// now, not at the first poll.
    #[inline]
    pub fn timed<F: Future>(
        &self,
        key: impl TimerKey,
        future: F,
    ) -> Timed<F, fn(&F::Output) -> Outcome> {
        Timed::new(self.site(key), future, Outcome::always_ok::<F::Output>)
    }

    /// Times `future` as one call of `key`'s site, classifying its output
    /// with `classify` ([`TimedExt::timed_with`](crate::TimedExt::timed_with)).
    #[inline]
    pub fn timed_with<F, C>(&self, key: impl TimerKey, future: F, classify: C) -> Timed<F, C>
    where
        F: Future,
        C: FnOnce(&F::Output) -> Outcome,
    {
        Timed::new(self.site(key), future, classify)
    }

    #[inline]
    fn state(&self) -> &'static State {
        self.state
            .get_or_init(|| Box::leak(Box::new(State::new(self))))
    }

    /// How many values a key has.
    fn arity(&self) -> usize {
        match self.naming {
            Naming::Function => 1,
            Naming::Labels { names, .. } => names.len(),
        }
    }

    /// The site of `values`, made and put in a free slot: the cold path,
    /// once per key (and once per lookup of a new key when the table is
    /// full, without the lock then: a full table stays full).
    #[cold]
    #[inline(never)]
    fn add(&self, state: &'static State, values: &[&str]) -> &'static CallSite {
        if values.len() != self.arity() || state.len.load(Ordering::Acquire) >= self.capacity {
            return state.overflow();
        }
        // Slots are filled under the lock only, so whether a key gets one
        // does not depend on which thread got there first.
        let _adding = state.adding.lock().unwrap_or_else(PoisonError::into_inner);
        let hash = state.hasher.hash_one(values);
        let mask = state.slots.len() - 1;
        let mut index = slot_index(hash, mask);
        for _ in 0..state.slots.len() {
            let slot = &state.slots[index];
            match slot.get() {
                Some(entry) if entry.is(hash, values) => return &entry.site,
                Some(_) => index = (index + 1) & mask,
                None if state.len.load(Ordering::Acquire) >= self.capacity => break,
                None => {
                    let entry = self.entry(hash, values);
                    // Free, and only filled under the lock we hold.
                    let _ = slot.set(entry);
                    state.len.fetch_add(1, Ordering::Release);
                    return &entry.site;
                }
            }
        }
        state.overflow()
    }

    /// A new site for `values`, its strings leaked.
    fn entry(&self, hash: u64, values: &[&str]) -> &'static Entry {
        let key: &'static [&'static str] = Box::leak(values.iter().map(|v| leak(v)).collect());
        let site = match self.naming {
            Naming::Function => CallSite::new(key[0], self.module).labels(self.sites.labels),
            Naming::Labels { function, names } => {
                CallSite::new(function, self.module).labels(self.site_labels(names, key))
            }
        };
        Box::leak(Box::new(Entry {
            hash,
            key,
            site: self.configure(site),
        }))
    }

    /// `names` paired with `values`, then the static labels.
    fn site_labels(
        &self,
        names: &'static [&'static str],
        values: &[&'static str],
    ) -> &'static [(&'static str, &'static str)] {
        let labels: Vec<_> = names
            .iter()
            .copied()
            .zip(values.iter().copied())
            .chain(self.sites.labels.iter().copied())
            .collect();
        labels.leak()
    }

    /// `site` with the table's slow threshold, concurrency tracking and
    /// objective.
    const fn configure(&self, mut site: CallSite) -> CallSite {
        if let Some(threshold) = self.sites.slow {
            site = site.slow(threshold);
        }
        if self.sites.concurrency {
            site = site.track_concurrency();
        }
        if let Some(objective) = self.sites.objective {
            site = site.objective(objective);
        }
        site
    }
}

impl std::fmt::Debug for TimerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // One line: a table is mostly its counts.
        write!(
            f,
            "TimerTable {{ naming: {:?}, module: {:?}, keys: {}/{}, overflowed: {} }}",
            self.naming,
            self.module,
            self.len(),
            self.capacity,
            self.overflowed()
        )
    }
}

/// A table's slots and counts, made on first use.
struct State {
    hasher: RandomState,
    /// A power of two at least twice the capacity: probes stay short and
    /// always reach a free slot.
    slots: Box<[OnceLock<&'static Entry>]>,
    /// Keys held; only grows, under `adding`.
    len: AtomicUsize,
    /// Held while a slot is filled.
    adding: Mutex<()>,
    overflow: CallSite,
    overflowed: AtomicU64,
}

impl State {
    fn new(table: &TimerTable) -> State {
        let slots = table.capacity.saturating_mul(2).max(1).next_power_of_two();
        let overflow = match table.naming {
            Naming::Function => {
                CallSite::new(TimerTable::OVERFLOW, table.module).labels(table.sites.labels)
            }
            Naming::Labels { function, names } => CallSite::new(function, table.module)
                .labels(table.site_labels(names, &vec![TimerTable::OVERFLOW; names.len()])),
        };
        State {
            hasher: RandomState::new(),
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            adding: Mutex::new(()),
            overflow: table.configure(overflow),
            overflowed: AtomicU64::new(0),
        }
    }

    /// The site of `values` if a slot holds it: the hot path. One hash,
    /// then per probed slot one load and a compare of hashes (and of the
    /// values when they match).
    #[inline]
    fn find(&self, values: &[&str]) -> Option<&'static CallSite> {
        let hash = self.hasher.hash_one(values);
        let mask = self.slots.len() - 1;
        let mut index = slot_index(hash, mask);
        for _ in 0..self.slots.len() {
            let entry = self.slots[index].get()?;
            if entry.is(hash, values) {
                return Some(&entry.site);
            }
            index = (index + 1) & mask;
        }
        None
    }

    fn overflow(&'static self) -> &'static CallSite {
        self.overflowed.fetch_add(1, Ordering::Relaxed);
        &self.overflow
    }
}

/// One key and its site.
struct Entry {
    hash: u64,
    key: &'static [&'static str],
    site: CallSite,
}

impl Entry {
    #[inline]
    fn is(&self, hash: u64, values: &[&str]) -> bool {
        self.hash == hash && self.key == values
    }
}

/// The first slot to probe for `hash`.
#[inline]
fn slot_index(hash: u64, mask: usize) -> usize {
    // The low bits of SipHash are as good as any.
    (hash as usize) & mask
}

/// The labels the function metrics set themselves, which a table's key
/// labels must not take: `function`, `module`, `service_name`,
/// `caller_function`, `caller_module`, `result`, `objective_*`.
const fn is_reserved(name: &str) -> bool {
    const RESERVED: [&str; 6] = [
        "function",
        "module",
        crate::build_info::SERVICE_NAME,
        "caller_function",
        "caller_module",
        "result",
    ];
    contains(&RESERVED, 0, name) || starts_with(name.as_bytes(), b"objective_")
}

/// Whether `names[from..]` holds `name` (a `const` search).
const fn contains(names: &[&str], from: usize, name: &str) -> bool {
    let mut i = from;
    while i < names.len() {
        if bytes_eq(names[i].as_bytes(), name.as_bytes()) {
            return true;
        }
        i += 1;
    }
    false
}

const fn starts_with(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && bytes_eq(text.split_at(prefix.len()).0, prefix)
}

const fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

fn leak(value: &str) -> &'static str {
    Box::leak(Box::from(value))
}
