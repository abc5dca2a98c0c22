//! Parsing `#[cached(..)]` arguments, with spans for every error.
//!
//! Only what can be judged from the arguments alone is checked here; what
//! depends on the function (`cache_err` on a function that returns no
//! `Result`, a key type that cannot be inferred) is checked in
//! `cached_expand.rs`.

use std::time::Duration;

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Expr, LitStr, Path, Token, Type};

use crate::forms::{self, Arguments};

/// Entries a cache holds when `max_capacity` is not given.
pub(crate) const DEFAULT_MAX_CAPACITY: u64 = 10_000;

/// The arguments of one `#[cached(..)]`.
#[derive(Default)]
pub(crate) struct CachedArgs {
    pub(crate) ttl: Option<Duration>,
    pub(crate) tags: Option<Tags>,
    pub(crate) max_capacity: Option<u64>,
    pub(crate) key: Option<Key>,
    pub(crate) name: Option<LitStr>,
    pub(crate) cache_err: Option<Flag>,
    pub(crate) cache_none: Option<Flag>,
    pub(crate) clock: Option<Expr>,
    pub(crate) redis: Option<Expr>,
    pub(crate) krate: Option<Path>,
}

/// `key = expr` or `key: Type = expr`.
pub(crate) struct Key {
    pub(crate) ty: Option<Type>,
    pub(crate) expr: Expr,
}

/// The tags every entry a call inserts carries.
pub(crate) enum Tags {
    /// `tags = ["users", format!("user:{id}")]`: each element on its own
    /// (`&str` and `String` may be mixed).
    List(Vec<Expr>),
    /// `tags = expr`: any `IntoIterator` of `Into<Tag>` items.
    Iter(Expr),
}

/// `cache_err`, `cache_err = true` or `cache_err = false`, with where it
/// was written for the error when it does not apply.
#[derive(Clone, Copy)]
pub(crate) struct Flag {
    pub(crate) value: bool,
    pub(crate) span: Span,
}

const EXPECTED: &str =
    "ttl, tags, max_capacity, key, name, cache_err, cache_none, clock, redis, crate";

impl Arguments for CachedArgs {
    fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let path = &meta.path;
        let Some(ident) = path.get_ident().map(ToString::to_string) else {
            return Err(unknown(&meta));
        };
        let span = path.segments[0].ident.span();
        let twice = || syn::Error::new(span, format!("`{ident}` is given twice"));
        match ident.as_str() {
            "ttl" => once(&mut self.ttl, twice, || parse_ttl(&meta)),
            "tags" => once(&mut self.tags, twice, || {
                if !meta.input.peek(Token![=]) {
                    return Err(meta
                        .error("expected the tags: `tags = [\"users\", format!(\"user:{id}\")]`"));
                }
                parse_tags(meta.value()?)
            }),
            "max_capacity" => once(&mut self.max_capacity, twice, || {
                let (max, lit) = forms::positive_integer(&meta, "max_capacity", "10_000")?;
                if max == 0 {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`max_capacity` must be at least 1: a cache of 0 entries keeps nothing",
                    ));
                }
                Ok(max)
            }),
            "key" => once(&mut self.key, twice, || {
                if !meta.input.peek(Token![:]) && !meta.input.peek(Token![=]) {
                    return Err(meta.error(
                        "expected the key: `key = id`, `key = (id, page)` (arguments) or \
                         `key: Type = expr` (any expression)",
                    ));
                }
                parse_key(meta.input)
            }),
            "name" => once(&mut self.name, twice, || {
                let name = forms::string(&meta, "name", "users")?;
                if name.value().is_empty() {
                    return Err(syn::Error::new(name.span(), "`name` must not be empty"));
                }
                Ok(name)
            }),
            "cache_err" | "cache_none" => {
                let slot = if ident == "cache_err" {
                    &mut self.cache_err
                } else {
                    &mut self.cache_none
                };
                // A bare `cache_err` means `cache_err = true`.
                once(slot, twice, || {
                    let value = forms::flag(&meta, &ident)?;
                    Ok(Flag { value, span })
                })
            }
            "clock" => once(&mut self.clock, twice, || {
                forms::expression(
                    &meta,
                    &forms::Form {
                        name: "clock",
                        what: "the `quanta::Clock` the TTL is measured on",
                        example: "CLOCK.clone()",
                    },
                )
            }),
            "redis" => once(&mut self.redis, twice, || {
                forms::value(
                    &meta,
                    &forms::Form {
                        name: "redis",
                        what: "the Redis URL (or `RedisOptions`) of the cache's second level",
                        example: "\"redis://127.0.0.1:6379/\"",
                    },
                )
            }),
            "crate" => once(&mut self.krate, twice, || {
                forms::path(
                    &meta,
                    &forms::Form {
                        name: "crate",
                        what: "the path of the crate with the cache API",
                        example: "vigil_cache",
                    },
                )
            }),
            _ => Err(unknown(&meta)),
        }
    }
}

/// Stores in `slot` what `parse` reads, or fails with `twice` if the
/// argument was given already.
fn once<T>(
    slot: &mut Option<T>,
    twice: impl FnOnce() -> syn::Error,
    parse: impl FnOnce() -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(twice());
    }
    *slot = Some(parse()?);
    Ok(())
}

fn unknown(meta: &ParseNestedMeta<'_>) -> syn::Error {
    let shown = quote::ToTokens::to_token_stream(&meta.path)
        .to_string()
        .replace(' ', "");
    meta.error(format!(
        "unknown #[cached] argument `{shown}`; expected one of: {EXPECTED}"
    ))
}

fn parse_ttl(meta: &ParseNestedMeta<'_>) -> syn::Result<Duration> {
    let (ttl, lit) = forms::duration(meta, "ttl", "30s")?;
    if ttl.is_zero() {
        return Err(syn::Error::new(
            lit.span(),
            "`ttl` must be longer than zero: entries would expire as they are inserted",
        ));
    }
    Ok(ttl)
}

/// `= [a, b]`, `= expr`; the closure form other caches use is refused with
/// the form this one takes, since the arguments are simply in scope.
fn parse_tags(input: ParseStream<'_>) -> syn::Result<Tags> {
    match input.parse::<Expr>()? {
        Expr::Array(array) => Ok(Tags::List(array.elems.into_iter().collect())),
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(tag),
            ..
        }) => Err(syn::Error::new(
            tag.span(),
            format!(
                "expected a list of tags, even for one: `tags = [{:?}]`",
                tag.value()
            ),
        )),
        Expr::Closure(closure) => Err(syn::Error::new(
            closure.or1_token.span(),
            "`tags` takes the tags themselves, not a closure: the function's arguments are \
             in scope, e.g. `tags = [\"users\", format!(\"user:{id}\")]`",
        )),
        other => Ok(Tags::Iter(other)),
    }
}

/// `= expr` or `: Type = expr`.
fn parse_key(input: ParseStream<'_>) -> syn::Result<Key> {
    let ty = if input.peek(Token![:]) {
        input.parse::<Token![:]>()?;
        Some(input.parse::<Type>()?)
    } else {
        None
    };
    input.parse::<Token![=]>()?;
    let expr: Expr = input.parse()?;
    Ok(Key { ty, expr })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{ToTokens, quote};

    #[test]
    fn arguments_parse_with_their_values() {
        let args = CachedArgs::parse(quote!(
            ttl = "1m 30s",
            tags = ["a", format!("b:{id}")],
            max_capacity = 500,
            key: (u64, String) = (self.id, name.clone()),
            name = "users",
            cache_err = true,
            cache_none,
            clock = clock(),
            redis = "redis://127.0.0.1:6379/",
            crate = vigil_cache
        ))
        .unwrap();
        assert_eq!(args.ttl, Some(Duration::from_secs(90)));
        assert!(matches!(args.tags, Some(Tags::List(ref tags)) if tags.len() == 2));
        assert_eq!(args.max_capacity, Some(500));
        let key = args.key.unwrap();
        assert_eq!(
            key.ty.unwrap().to_token_stream().to_string(),
            "(u64 , String)"
        );
        assert_eq!(args.name.unwrap().value(), "users");
        assert!(args.cache_err.unwrap().value);
        assert!(args.cache_none.unwrap().value);
        assert!(args.clock.is_some());
        assert!(args.redis.is_some());
        assert!(args.krate.is_some());
    }

    #[test]
    fn untyped_keys_and_tag_iterators_parse() {
        let args =
            CachedArgs::parse(quote!(key = id, tags = tags_of(&id), cache_err = false)).unwrap();
        let key = args.key.unwrap();
        assert!(key.ty.is_none());
        assert_eq!(key.expr.to_token_stream().to_string(), "id");
        assert!(matches!(args.tags, Some(Tags::Iter(_))));
        assert!(!args.cache_err.unwrap().value);
    }

    #[test]
    fn bad_arguments_are_errors() {
        for bad in [
            quote!(tll = "5m"),
            quote!(ttl = "soon"),
            quote!(ttl = "0s"),
            quote!(ttl = 5),
            quote!(max_capacity = 0),
            quote!(max_capacity = -1),
            quote!(name = ""),
            quote!(ttl = "1s", ttl = "2s"),
            quote!(cache_err = "yes"),
            quote!(tags = |id| [id]),
            quote!(tags = "users"),
            quote!(tags),
            quote!(key),
            quote!(vigil::ttl = "1s"),
            quote!(redis),
            quote!(redis = |url| url),
            quote!(redis = "a", redis = "b"),
        ] {
            assert!(CachedArgs::parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
