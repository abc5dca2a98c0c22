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

#![forbid(unsafe_code)]

mod attr;
mod expand;

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
/// | `crate = path` | where the timing API lives (default `::vigil::timing`; `vigil_timing` when depending on it directly) |
/// | `skip` | on a method inside a `#[timed]` impl block: leave it uninstrumented |
///
/// A `Result` return value is `ok` or `error` by variant (also through type
/// aliases such as `io::Result`); any other return type is `ok` unless
/// `ok_if` / `error_if` decide. A panic is recorded as an error and
/// propagates unchanged.
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
/// a non-async `-> !` function, whose body runs in place.
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
    let result =
        attr::parse_args(args.into()).and_then(|args| expand::timed(args, item.clone().into()));
    match result {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            // Keep the item so the only errors shown are about the attribute.
            let mut out: proc_macro2::TokenStream = item.into();
            out.extend(error.to_compile_error());
            out.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::attr::parse_args;
    use quote::quote;

    #[test]
    fn arguments_parse_with_their_values() {
        let args = parse_args(quote!(
            name = "x",
            labels(a = "1", b = "2"),
            slow = "1s 500ms",
            concurrency,
            crate = vigil_timing
        ))
        .unwrap();
        assert_eq!(args.name.unwrap().value(), "x");
        assert_eq!(args.labels.len(), 2);
        assert_eq!(args.slow, Some(std::time::Duration::from_millis(1500)));
        assert!(args.concurrency);
        assert!(args.krate.is_some());
    }

    #[test]
    fn raw_label_keys_are_named_without_the_prefix() {
        let args = parse_args(quote!(labels(r#type = "x", r#kind = "y"))).unwrap();
        let keys: Vec<_> = args.labels.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["type", "kind"]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        for bad in [
            quote!(nme = "x"),
            quote!(slow = "soon"),
            quote!(labels(result = "x")),
            quote!(ok_if = a, error_if = b),
            quote!(concurrency = true),
            quote!(name = ""),
            quote!(labels(r#result = "x")),
            quote!(labels(a = "1", r#a = "2")),
        ] {
            assert!(parse_args(bad.clone()).is_err(), "{bad}");
        }
    }
}
