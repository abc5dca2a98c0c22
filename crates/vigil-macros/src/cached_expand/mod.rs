//! Code generation for `#[cached]`.
//!
//! One function becomes three items with the same visibility:
//!
//! - `f`, the cached function: it builds the key, asks the cache, and on a
//!   miss runs the body through the single loader of `vigil-cache` (the
//!   `get_with` family), so concurrent misses on one key run it once, and a
//!   write or invalidation made while it runs is never overwritten by its
//!   result;
//! - `f_uncached`, the function as written (the body and its other
//!   attributes);
//! - `f_cache()`, the accessor of the cache, a `static` `OnceLock` inside it.
//!
//! A method's accessor and uncached twin are associated functions, reached
//! as `Self::..`; the macro tells a method from a free function by its
//! receiver, or by `Self` in its signature or body.
//!
//! Hot path (a hit): build the key (a clone of each keyed argument), one
//! `OnceLock` load, one cache read, a clone of the value. Tags and entry
//! options are only built on a miss, inside the loader.

mod attrs;
mod key;
mod types;

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, GenericParam, Item, ItemFn, Pat, PatIdent, PathArguments,
    ReturnType, Signature, Type,
};

use crate::cached_attr::{CachedArgs, DEFAULT_MAX_CAPACITY, Tags};
use crate::expand::misplaced;
use attrs::Attrs;
use key::{KEY_PART, key_of, key_part_trait};
use types::{check_storable, find_impl_trait, mentions_self_type};

/// The panic message of a broken invariant of the generated code: the
/// arguments move into the loader or, when it never ran, back to the caller.
const ARGS_TAKEN_ONCE: &str = "#[cached]: the arguments are taken once, by the loader or by the caller whose loader did not run";

/// Expands `#[cached(args)]` on `item`.
pub(crate) fn cached(args: CachedArgs, item: TokenStream) -> syn::Result<TokenStream> {
    let item: Item = syn::parse2(item.clone()).map_err(|_| not_a_fn(&item))?;
    match item {
        Item::Fn(f) => expand_fn(&args, f),
        Item::Impl(imp) => Err(syn::Error::new(
            imp.impl_token.span,
            "#[cached] applies to one function or method, not to an `impl` block: \
             put it on each method to cache",
        )),
        other => Err(not_a_fn(&other.into_token_stream())),
    }
}

fn not_a_fn(item: &TokenStream) -> syn::Error {
    misplaced(item, "#[cached] applies to functions and methods")
}

/// An argument of the cached function other than the receiver.
struct Param {
    /// The name it is bound to in the generated function: the written one
    /// for a plain `name: T` (or `mut name: T`), else `__vigil_argN`; also
    /// for `_name`, which the body does not use but the key does (lints
    /// about using it would point at the user's code).
    ident: Ident,
    /// The name written, for `key = name`.
    written: Option<Ident>,
    ty: Type,
}

/// How the return value meets the cache.
enum Mode {
    /// The whole return value is cached.
    Value,
    /// `Result<V, E>` with `cache_err = false`: only `Ok` values are cached.
    Ok,
    /// `Option<V>` with `cache_none = false`: only `Some` values are cached.
    Some,
}

fn expand_fn(args: &CachedArgs, f: ItemFn) -> syn::Result<TokenStream> {
    let sig = &f.sig;
    check_signature(sig)?;
    let associated = sig.receiver().is_some()
        || mentions_self_type(&sig.to_token_stream())
        || mentions_self_type(&f.block.to_token_stream());
    let params = params(sig)?;
    let (mode, value_ty) = value_of(args, sig)?;
    let (key_ty, key_expr) = key_of(args, &params)?;

    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::vigil::cache), ToTokens::to_token_stream);
    let asyncness = sig.asyncness.is_some();
    let flavor = if asyncness {
        quote!(future)
    } else {
        quote!(sync)
    };
    let cache_ty = quote!(#krate::#flavor::TaggedCache<#key_ty, #value_ty>);

    let fn_name = &sig.ident;
    let shown_name = fn_name.to_string().trim_start_matches("r#").to_owned();
    let cache_fn = format_ident!("{}_cache", fn_name);
    let uncached_fn = format_ident!("{}_uncached", fn_name);
    let via_self = |ident: &Ident| {
        if associated {
            quote!(Self::#ident)
        } else {
            quote!(#ident)
        }
    };
    let cache_path = via_self(&cache_fn);
    let uncached_path = via_self(&uncached_fn);

    let attrs = Attrs::split(&f.attrs, &shown_name)?;
    let vis = &f.vis;

    // ---- the accessor ----
    let name = match &args.name {
        Some(name) => name.to_token_stream(),
        None if associated => {
            let suffix = format!("::{shown_name}");
            quote!(::std::format!("{}{}", ::core::any::type_name::<Self>(), #suffix))
        }
        None => {
            let suffix = format!("::{shown_name}");
            quote!(::core::concat!(::core::module_path!(), #suffix))
        }
    };
    let max_capacity =
        proc_macro2::Literal::u64_suffixed(args.max_capacity.unwrap_or(DEFAULT_MAX_CAPACITY));
    let ttl = args.ttl.map(|ttl| {
        let nanos = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        quote!(.default_ttl(::core::time::Duration::from_nanos(#nanos)))
    });
    let clock = args.clock.as_ref().map(|clock| quote!(.clock(#clock)));
    // Spanned at the argument: a key or value type without serde, or a
    // cache crate without its `redis` feature, is reported there.
    let redis = args.redis.as_ref().map(|redis| {
        let span = syn::spanned::Spanned::span(redis);
        quote_spanned!(span=> .redis(#redis))
    });
    let accessor_doc = format!(
        " The cache behind `{shown_name}`: for invalidation (by key or tag), statistics and \
         warming. Generated by `#[cached]`."
    );
    let accessor_attrs = &attrs.everywhere;
    let accessor = quote! {
        #[doc = #accessor_doc]
        #(#accessor_attrs)*
        #vis fn #cache_fn() -> &'static #cache_ty {
            static __VIGIL_CACHE: ::std::sync::OnceLock<#cache_ty> = ::std::sync::OnceLock::new();
            __VIGIL_CACHE.get_or_init(|| {
                #krate::#flavor::TaggedCache::<#key_ty, #value_ty>::builder()
                    .name(#name)
                    .max_capacity(#max_capacity)
                    #ttl
                    #clock
                    #redis
                    .build()
            })
        }
    };

    // ---- the uncached function: the one written, renamed ----
    let uncached_doc = format!(
        " `{shown_name}` without its cache: always runs the body, and neither reads nor \
         fills the cache. Generated by `#[cached]`."
    );
    // Spanned at the user's `unsafe`: clippy's `missing_safety_doc` reads
    // only doc comments written in the source.
    let uncached_safety = sig.unsafety.map(|unsafety| {
        let span = unsafety.span;
        let lines = ["", " # Safety", "", &format!(" As for `{shown_name}`.")]
            .map(|line| syn::LitStr::new(line, span));
        quote_spanned!(span=> #(#[doc = #lines])*)
    });
    let mut uncached_sig = sig.clone();
    uncached_sig.ident = uncached_fn.clone();
    let uncached_attrs = &attrs.uncached;
    let block = &f.block;
    let uncached = quote! {
        #[doc = #uncached_doc]
        #uncached_safety
        #(#uncached_attrs)*
        #vis #uncached_sig #block
    };

    // ---- the cached function ----
    let receiver = sig.receiver().is_some();
    let mut slot_values: Vec<TokenStream> = Vec::new();
    let mut slot_pattern: Vec<TokenStream> = Vec::new();
    if receiver {
        slot_values.push(quote!(self));
        slot_pattern.push(quote!(__vigil_self));
    }
    for param in &params {
        let ident = &param.ident;
        slot_values.push(quote!(#ident));
        slot_pattern.push(quote!(#ident));
    }
    let mut call = quote!(#uncached_path(#(#slot_pattern),*));
    if asyncness {
        call = quote!(#call.await);
    }
    if sig.unsafety.is_some() {
        call = quote!(unsafe { #call });
    }
    let options = entry_options(args, &krate, receiver);
    let take = quote! {
        let (#(#slot_pattern,)*) = __vigil_args.take().expect(#ARGS_TAKEN_ONCE);
    };
    // The loader: a closure, or an async block for an `async fn`; neither
    // `move`, so what it leaves behind (the arguments when it did not run,
    // the error when it failed) stays readable here.
    let loader = |body: TokenStream| {
        let body = quote! {
            #take
            let __vigil_options = #options;
            #body
        };
        if asyncness {
            quote!(async { #body })
        } else {
            quote!(|| { #body })
        }
    };
    let dot_await = asyncness.then(|| quote!(.await));
    let lookup = match mode {
        Mode::Value => {
            let loader = loader(quote!((#call, __vigil_options)));
            quote! {
                #cache_path().get_with_options(__vigil_key, #loader) #dot_await
            }
        }
        Mode::Ok => {
            // The cache shares one error among the callers waiting on a
            // load as an `Arc`, while this function returns its own `E`.
            // The loader keeps its `E` here and hands the cache a `()`; a
            // caller that only waited on another's failed load has no `E`
            // of its own, so it runs the body for it.
            let loader = loader(quote! {
                (#call)
                    .map(|__vigil_value| (__vigil_value, __vigil_options))
                    .map_err(|__vigil_e| {
                        __vigil_error = ::core::option::Option::Some(__vigil_e);
                    })
            });
            quote! {
                let mut __vigil_error = ::core::option::Option::None;
                let __vigil_found = #cache_path().try_get_with_options(__vigil_key, #loader) #dot_await;
                match __vigil_found {
                    ::core::result::Result::Ok(__vigil_value) => ::core::result::Result::Ok(__vigil_value),
                    ::core::result::Result::Err(_) => match __vigil_error {
                        ::core::option::Option::Some(__vigil_e) => ::core::result::Result::Err(__vigil_e),
                        ::core::option::Option::None => {
                            #take
                            #call
                        }
                    },
                }
            }
        }
        Mode::Some => {
            // A `None` from the cache is ours when our loader ran (it took
            // the arguments), or another caller's we waited on: then run
            // the body for this call.
            let loader = loader(quote! {
                (#call).map(|__vigil_value| (__vigil_value, __vigil_options))
            });
            quote! {
                let __vigil_found = #cache_path().optionally_get_with_options(__vigil_key, #loader) #dot_await;
                match __vigil_found {
                    ::core::option::Option::Some(__vigil_value) => ::core::option::Option::Some(__vigil_value),
                    ::core::option::Option::None => match __vigil_args.take() {
                        ::core::option::Option::Some((#(#slot_pattern,)*)) => #call,
                        ::core::option::Option::None => ::core::option::Option::None,
                    },
                }
            }
        }
    };

    let mut wrapper_sig = sig.clone();
    for (input, param) in wrapper_sig
        .inputs
        .iter_mut()
        .filter(|input| matches!(input, FnArg::Typed(_)))
        .zip(&params)
    {
        if let FnArg::Typed(typed) = input {
            *typed.pat = Pat::Ident(PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident: param.ident.clone(),
                subpat: None,
            });
        }
    }
    if let Some(FnArg::Receiver(receiver)) = wrapper_sig.inputs.first_mut() {
        // `mut self`: the cached function only hands `self` on.
        if receiver.reference.is_none() {
            receiver.mutability = None;
        }
    }
    let wrapper_attrs = &attrs.cached;
    let allow_unused_unsafe = sig
        .unsafety
        .is_some()
        .then(|| quote!(#[allow(unused_unsafe)]));
    // A deprecated function's uncached twin is deprecated too; calling it
    // is the cached function's job, not a use to warn about.
    let allow_deprecated = f
        .attrs
        .iter()
        .any(|a| a.path().is_ident("deprecated"))
        .then(|| quote!(#[allow(deprecated)]));
    let key_part_trait = key_expr.to_string().contains(KEY_PART).then(key_part_trait);
    let wrapper = quote! {
        #(#wrapper_attrs)*
        #allow_unused_unsafe
        #allow_deprecated
        #vis #wrapper_sig {
            #key_part_trait
            let __vigil_key: #key_ty = #key_expr;
            let mut __vigil_args = ::core::option::Option::Some((#(#slot_values,)*));
            #lookup
        }
    };

    Ok(quote! {
        #wrapper
        #uncached
        #accessor
    })
}

/// What a `static` cache cannot hold: `const fn` (a cache is no constant),
/// type and const parameters (one `static` for every instantiation) and
/// C variadics.
fn check_signature(sig: &Signature) -> syn::Result<()> {
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "#[cached] cannot cache a `const fn`: the cache lives at run time",
        ));
    }
    if let Some(param) = sig
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, GenericParam::Lifetime(_)))
    {
        return Err(syn::Error::new(
            param.span(),
            "#[cached] cannot cache a generic function: its cache is one `static`, \
             which cannot depend on type or const parameters; cache a non-generic \
             function that the generic one calls",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new(
            variadic.span(),
            "#[cached] cannot cache a variadic function",
        ));
    }
    Ok(())
}

fn params(sig: &Signature) -> syn::Result<Vec<Param>> {
    let mut params = Vec::new();
    for (index, input) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(typed) = input else { continue };
        if let Some(span) = find_impl_trait(&typed.ty) {
            return Err(syn::Error::new(
                span,
                "#[cached] cannot cache a generic function: `impl Trait` in an argument is a \
                 type parameter, and the cache is one `static` for every type",
            ));
        }
        let written = match &*typed.pat {
            Pat::Ident(PatIdent {
                by_ref: None,
                subpat: None,
                ident,
                ..
            }) => Some(ident.clone()),
            _ => None,
        };
        let ident = match &written {
            Some(ident) if !ident.to_string().starts_with('_') => ident.clone(),
            _ => format_ident!("__vigil_arg{}", index),
        };
        params.push(Param {
            ident,
            written,
            ty: (*typed.ty).clone(),
        });
    }
    Ok(params)
}

/// The cached value type and how the return value is cached.
fn value_of(args: &CachedArgs, sig: &Signature) -> syn::Result<(Mode, TokenStream)> {
    let ty = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(&**ty),
    };
    if let Some(ty) = ty
        && matches!(strip(ty), Type::Never(_))
    {
        return Err(syn::Error::new(
            ty.span(),
            "#[cached] has nothing to cache in a function that never returns",
        ));
    }
    let wrapper = ty.and_then(wrapped);
    // Each flag applies to the functions returning one wrapper.
    let flags = [
        (args.cache_err, "cache_err", "Result"),
        (args.cache_none, "cache_none", "Option"),
    ];
    for (flag, what, fix) in flags {
        if let Some(flag) = flag
            && wrapper.is_none_or(|(kind, _)| kind != fix)
        {
            return Err(syn::Error::new(
                flag.span,
                format!("`{what}` applies to functions returning `{fix}`"),
            ));
        }
    }
    let Some(ty) = ty else {
        return Ok((Mode::Value, quote!(())));
    };
    let (mode, value) = match wrapper {
        Some((kind, inner)) => {
            let (cache_all, mode) = if kind == "Result" {
                (args.cache_err, Mode::Ok)
            } else {
                (args.cache_none, Mode::Some)
            };
            if cache_all.is_some_and(|f| f.value) {
                (Mode::Value, ty)
            } else {
                (mode, inner)
            }
        }
        None => (Mode::Value, ty),
    };
    check_storable(value, "return", "")?;
    Ok((mode, value.to_token_stream()))
}

/// `("Result", T)` for `Result<T, E>` and aliases such as `io::Result<T>`,
/// `("Option", T)` for `Option<T>`: recognised by name, as `#[timed]` does.
fn wrapped(ty: &Type) -> Option<(&'static str, &Type)> {
    let Type::Path(path) = strip(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let kind = if last.ident == "Result" {
        "Result"
    } else if last.ident == "Option" {
        "Option"
    } else {
        return None;
    };
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) => Some((kind, inner)),
        _ => None,
    }
}

fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => strip(&p.elem),
        Type::Group(g) => strip(&g.elem),
        other => other,
    }
}

/// `EntryOptions` with the tags; `self` in a tag expression is renamed to
/// the receiver as the loader rebinds it.
fn entry_options(args: &CachedArgs, krate: &TokenStream, receiver: bool) -> TokenStream {
    let rename = |expr: &Expr| {
        let tokens = expr.to_token_stream();
        if receiver {
            rename_self(tokens)
        } else {
            tokens
        }
    };
    match &args.tags {
        None => quote!(#krate::EntryOptions::default()),
        Some(Tags::List(tags)) => {
            let tags = tags.iter().map(rename);
            quote!(#krate::EntryOptions::default() #(.tag(#tags))*)
        }
        Some(Tags::Iter(tags)) => {
            let tags = rename(tags);
            quote!(#krate::EntryOptions::default().tags(#tags))
        }
    }
}

fn rename_self(tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .map(|t| match t {
            TokenTree::Ident(i) if i == "self" => {
                TokenTree::Ident(Ident::new("__vigil_self", i.span()))
            }
            TokenTree::Group(g) => {
                let mut renamed = proc_macro2::Group::new(g.delimiter(), rename_self(g.stream()));
                renamed.set_span(g.span());
                TokenTree::Group(renamed)
            }
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests;
