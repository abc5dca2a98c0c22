//! The `#[timed]` attribute macro: the `#[instrument]` of metrics.
//!
//! Use it through the `vigil` facade as `vigil::timed`:
//!
//! ```
//! use vigil::timed;
//!
//! #[timed]
//! fn parse(input: &str) -> Result<u32, std::num::ParseIntError> {
//!     input.parse()
//! }
//!
//! #[timed(name = "load_user", labels(store = "postgres"), slow = "250ms", concurrency)]
//! async fn load(id: u64) -> Option<String> {
//!     Some(format!("user {id}"))
//! }
//!
//! assert_eq!(parse("42"), Ok(42)); // function_calls_total{function="parse",result="ok"}
//! assert!(parse("x").is_err());    // ... result="error"
//! ```
//!
//! See [`timed`] for the arguments and the metrics recorded.
//!
//! The `#[cached]` attribute memoizes a function in a tagged cache, as
//! `vigil::cached`; see [`cached`].

#![forbid(unsafe_code)]

mod attr;
mod cached_attr;
mod cached_expand;
mod expand;
mod forms;

use forms::Arguments as _;
use proc_macro::TokenStream;

/// Times every call of a function, method or every method of an `impl`
/// block, recording through the `metrics` facade:
///
/// - `function_calls_total{function, module, caller_function, caller_module, result}`
///   with `result` = `ok` | `error` (a panic counts as `error`);
/// - `function_calls_duration_seconds{function, module}` for every completed
///   or panicked call;
/// - `function_calls_concurrent{function, module}` with `concurrency`;
/// - `function_panics_total{function, module}` and
///   `function_cancellations_total{function, module}` (an `async fn` future
///   dropped before it completed).
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `name = "..."` | the `function` label (default: the function's name; `Type::method` in an `impl` block); not on an `impl` block itself |
/// | `labels(key = "value", ..)` | static labels added to every metric of this function (`r#type` is the key `type`) |
/// | `slow = "250ms"` | a `tracing` `WARN` event for calls slower than this (humantime syntax) |
/// | `concurrency` | track calls in flight |
/// | `ok_if = path` / `error_if = path` | a `fn(&T) -> bool` deciding the outcome from the return value |
/// | `objective = API_SLO` | an [`Objective`] (a `const` or `static`): its `objective_*` labels go on `function_calls_total` and `function_calls_duration_seconds`, as autometrics' `#[autometrics(objective = ..)]` sets them; on an `impl` block, for every method |
/// | `crate = path` | where the timing API lives (default `::vigil::timing`; `vigil_timing` when depending on it directly) |
/// | `skip` | on a method inside a `#[timed]` impl block: leave it uninstrumented |
///
/// A `Result` return value is `ok` or `error` by variant (also through type
/// aliases such as `io::Result`); any other return type, an opaque
/// `-> impl Trait` included, is `ok` unless `ok_if` / `error_if` decide. A
/// panic is recorded as an error and propagates unchanged.
///
/// Objectives are declared as in autometrics, so migrating is a change of
/// attribute name:
///
/// ```
/// use vigil::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
/// use vigil::timed;
///
/// const API_SLO: Objective = Objective::new("api")
///     .success_rate(ObjectivePercentile::P99_9)
///     .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);
///
/// #[timed(objective = API_SLO)]
/// fn get_user(id: u64) -> Result<String, String> {
///     Ok(format!("user {id}"))
/// }
///
/// struct Orders;
///
/// #[timed(objective = API_SLO)] // every method of the block
/// impl Orders {
///     fn list(&self) -> Vec<u64> { Vec::new() }
/// }
///
/// assert!(get_user(1).is_ok());
/// assert!(Orders.list().is_empty());
/// ```
///
/// A body that never returns is welcome, so a stub compiles as it would
/// without the attribute, with no new warning: the `todo`,
/// `unimplemented` and `panic` macros, `loop {}`, `process::exit(..)` or
/// any other tail of type `!`, in every form above. A panic from it is recorded as one.
///
/// ```
/// use vigil::timed;
///
/// #[timed]
/// fn not_yet(id: u64) -> Result<String, String> {
///     panic!("load user {id}: not written yet")
/// }
///
/// #[timed]
/// async fn not_yet_either() {
///     panic!("not written yet")
/// }
///
/// assert!(std::panic::catch_unwind(|| not_yet(1)).is_err());
/// # let _ = not_yet_either();
/// ```
///
/// The signature, visibility, doc comments, other attributes, `unsafe`,
/// `extern` ABI, generics and lifetimes are kept as written. It works on
/// free functions, `async fn`, methods (`self`, `&self`, `&mut self`),
/// generic functions, functions returning `impl Trait` or `!`, trait impl
/// methods (native `async fn` included), trait default methods and
/// `#[async_trait]` methods in either attribute order. On an `impl` block,
/// `const fn`s are left alone unless they carry a `#[timed]` of their own.
///
/// It is a compile error on a `const fn` (no clock at compile time) and on
/// a function with `#[track_caller]`: the body runs inside a closure or an
/// async block, where the caller's location would be lost. The exception is
/// a non-async `-> !` function, whose body runs in place. An argument of the
/// wrong form is an error naming the form expected (`slow = 250` asks for
/// `slow = "250ms"`).
///
/// [`Objective`]: https://docs.rs/vigil/latest/vigil/objectives/struct.Objective.html
///
/// ```
/// use vigil::timed;
///
/// struct Repo;
///
/// #[timed(labels(store = "memory"))]
/// impl Repo {
///     fn get(&self, id: u32) -> Option<u32> { Some(id) }   // "Repo::get"
///     #[timed(skip)]
///     fn len(&self) -> usize { 0 }                         // not timed
///     #[timed(ok_if = Vec::is_empty)]
///     fn errors(&mut self) -> Vec<String> { Vec::new() }   // "Repo::errors"
/// }
///
/// assert_eq!(Repo.get(3), Some(3));
/// ```
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    let result = attr::TimedArgs::parse(args.into())
        .and_then(|args| expand::timed(args, item.clone().into()));
    expanded_or_item(result, item)
}

/// Caches a function's results in a [`TaggedCache`] keyed by its
/// arguments: a call with arguments seen before returns the stored value
/// without running the body.
///
/// ```
/// use vigil::cached;
///
/// #[cached(ttl = "5m", tags = ["users", format!("user:{id}")])]
/// fn user_name(id: u64) -> Option<String> {
///     // an expensive look-up
///     Some(format!("user {id}"))
/// }
///
/// assert_eq!(user_name(7), Some("user 7".into())); // runs the body
/// assert_eq!(user_name(7), Some("user 7".into())); // from the cache
/// user_name_cache().invalidate_tag("user:7");      // drops it
/// assert_eq!(user_name_uncached(8), Some("user 8".into())); // never cached
/// ```
///
/// # Arguments
///
/// | argument | meaning |
/// |---|---|
/// | `ttl = "5m"` | how long an entry lives after it is inserted (humantime syntax); default: until evicted or invalidated |
/// | `max_capacity = 1000` | the most entries kept (default 10 000); beyond, moka's TinyLFU evicts |
/// | `tags = ["a", format!("user:{id}")]` | tags of every entry a call inserts, for [`invalidate_tag`]: expressions with the arguments (and `self`) in scope, each `impl Into<Tag>` (`&str`, `String`, ..), evaluated on a miss only, before the body; borrow the arguments (`name.as_str()`), the body still needs them. `tags = expr` takes any `IntoIterator` of them |
/// | `key = id` / `key = (id, region)` | key on these arguments only (the others, such as a `&Db`, are left out) |
/// | `key: Type = expr` | key on any expression, with its type (a `static` has to name it): `key: (u64, u32) = (self.id, page)`; evaluated on every call, with the arguments in scope (clone what it keeps) |
/// | `name = "..."` | the cache's name in its statistics and metrics (default: `module::path::fn`, or the `Self` type's path `::method`) |
/// | `cache_err = true` | cache `Err` results too (default `false`: only `Ok` values are cached; the `Err` type needs no `Clone` then) |
/// | `cache_none = true` | cache `None` too (default `false`: only `Some` values are cached) |
/// | `clock = expr` | the `quanta::Clock` the TTL is measured on (tests pass `quanta::Clock::mock()`) |
/// | `redis = "redis://host:6379/"` | a second level in Redis shared by every replica (any expression that converts into `RedisOptions`, evaluated when the cache is built; needs the `redis` feature, and `Serialize` keys and serde values): see `CacheBuilder::redis` and `docs/cache.md` |
/// | `crate = path` | where the cache API lives (default `::vigil::cache`; `vigil_cache` when depending on it directly) |
///
/// # What it generates
///
/// For `fn f(args) -> R`, three items with `f`'s visibility (associated
/// functions for a method, called as `Self::f_cache()`):
///
/// - `f(args) -> R`, the cached function, documented by `f`'s doc comment;
/// - `f_uncached(args) -> R`, the body as written, always run;
/// - `f_cache() -> &'static TaggedCache<K, V>`, the cache, for
///   `invalidate`, `invalidate_tag`, `stats`, `warm`, ...; it is built on
///   first use and lives for the whole program.
///
/// `async fn`s use [`vigil::cache::future::TaggedCache`] and are awaited;
/// other functions [`vigil::cache::sync::TaggedCache`].
///
/// # Keys and values
///
/// The key `K` is, by default, the arguments (without the receiver): one
/// argument is the key itself, several make a tuple, none `()`. Reference
/// arguments are keyed by an owned copy (`&str` → `String`, `&[T]` →
/// `Vec<T>`, `&Path` → `PathBuf`, `&OsStr` → `OsString`, `&CStr` →
/// `CString`, any other `&T` → a clone of the `T`), so
/// `f_cache().invalidate("x")` works for `fn f(name: &str)`. An argument
/// whose pattern is not a plain name (`(a, b): (u32, u32)`, `_`) is in the
/// key all the same, but cannot be named by `key` or `tags`. The key must
/// be `Hash + Eq + Clone + Send + Sync + 'static` and the value
/// `Clone + Send + Sync + 'static`; rustc names the missing bound. An
/// argument that cannot be copied into the key (a `&Db` handle that is not
/// `Clone`) is reported at the argument, with the way out: key on the
/// other arguments with `key = ..`.
///
/// The value `V` is the return type, cloned out of the cache on every hit
/// (wrap large values in an `Arc`): the `T` of `Result<T, E>` (also through
/// aliases such as `io::Result<T>`, recognised by the name `Result`) and of
/// `Option<T>` (by the name `Option`), unless `cache_err` / `cache_none`
/// ask to cache the whole value.
///
/// # Concurrency
///
/// Concurrent calls with the same key that miss run the body once; the
/// others wait for its value (moka's single loader). Calls with different
/// keys never wait on each other. When the body returns an uncached `Err`
/// or `None`, the caller that ran it gets it; a caller that was waiting
/// for that load runs the body itself instead of sharing another call's
/// error.
///
/// # Methods
///
/// On a method, the cache is per method, shared by every instance: the
/// receiver is not part of the key. Key on instance data with
/// `key: (u64, u32) = (self.id, page)`, and use `self` in tags the same
/// way. `self`, `&self`, `&mut self` and `self: Arc<Self>` receivers all
/// work. An associated function without a receiver is recognised by
/// `Self` in its signature or body; the cache's types cannot mention
/// `Self` (a `static` cannot), so write the type's name. The generated
/// associated functions are not members of a trait, so `#[cached]` does
/// not go in trait impls: cache an inherent method and call it there.
///
/// # With `#[timed]`
///
/// `#[timed]` and `#[cached]` compose in either order with the same
/// result: the timing wraps the body in `f_uncached` under the name `f`,
/// so it counts the calls that ran the body (misses and `f_uncached`
/// calls); the hits are in the cache's statistics. Other attributes of `f`
/// go on `f_uncached` with the body, except the doc comment; lint levels,
/// `#[must_use]`, `#[deprecated]`, `#[inline]`, `#[cold]` and `#[cfg]` go on
/// both.
///
/// # Compile errors
///
/// Generic functions (type or const parameters, `impl Trait` arguments:
/// one `static` serves every instantiation), `const fn`, a return type
/// that borrows (other than `&'static`), is `impl Trait`, mentions `Self`
/// or is `!`, a `&mut` argument in the key, `cache_err` on a function not
/// returning `Result` (`cache_none`: `Option`), unknown arguments, bad
/// durations and arguments of the wrong form, each naming the form
/// expected (`ttl = 30` asks for `ttl = "30s"`). A body that never returns
/// (the `todo` macro) is fine: the stub compiles, and a call panics and caches
/// nothing.
///
/// [`TaggedCache`]: https://docs.rs/vigil-cache
/// [`invalidate_tag`]: https://docs.rs/vigil-cache
/// [`vigil::cache::future::TaggedCache`]: https://docs.rs/vigil-cache
/// [`vigil::cache::sync::TaggedCache`]: https://docs.rs/vigil-cache
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let result = cached_attr::CachedArgs::parse(args.into())
        .and_then(|args| cached_expand::cached(args, item.clone().into()));
    expanded_or_item(result, item)
}

/// An attribute's expansion, or on an error the item unchanged followed by
/// the error, so that the only errors shown are about the attribute.
fn expanded_or_item(
    result: syn::Result<proc_macro2::TokenStream>,
    item: TokenStream,
) -> TokenStream {
    match result {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut out: proc_macro2::TokenStream = item.into();
            out.extend(error.to_compile_error());
            out.into()
        }
    }
}
