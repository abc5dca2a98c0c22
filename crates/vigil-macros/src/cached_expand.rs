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

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, GenericParam, Item, ItemFn, Meta, Pat, PatIdent,
    PathArguments, ReturnType, Signature, Type, TypeParamBound,
};

use crate::cached_attr::{CachedArgs, DEFAULT_MAX_CAPACITY, Flag, Tags};
use crate::expand::is_timed_attr;

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
    let first = item
        .clone()
        .into_iter()
        .find(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == '#'));
    let span = first.map_or_else(Span::call_site, |t| t.span());
    syn::Error::new(span, "#[cached] applies to functions and methods")
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
    let not_result = |flag: Option<Flag>, what: &str, fix: &str| match flag {
        Some(flag) => Err(syn::Error::new(
            flag.span,
            format!("`{what}` applies to functions returning `{fix}`"),
        )),
        None => Ok(()),
    };
    let ty = match &sig.output {
        ReturnType::Default => {
            not_result(args.cache_err, "cache_err", "Result")?;
            not_result(args.cache_none, "cache_none", "Option")?;
            return Ok((Mode::Value, quote!(())));
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    if matches!(strip(ty), Type::Never(_)) {
        return Err(syn::Error::new(
            ty.span(),
            "#[cached] has nothing to cache in a function that never returns",
        ));
    }
    let (mode, value) = match wrapped(ty) {
        Some(("Result", ok)) => {
            not_result(args.cache_none, "cache_none", "Option")?;
            if args.cache_err.is_some_and(|f| f.value) {
                (Mode::Value, ty)
            } else {
                (Mode::Ok, ok)
            }
        }
        Some(("Option", some)) => {
            not_result(args.cache_err, "cache_err", "Result")?;
            if args.cache_none.is_some_and(|f| f.value) {
                (Mode::Value, ty)
            } else {
                (Mode::Some, some)
            }
        }
        _ => {
            not_result(args.cache_err, "cache_err", "Result")?;
            not_result(args.cache_none, "cache_none", "Option")?;
            (Mode::Value, ty)
        }
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

/// The key type and the expression building it.
fn key_of(args: &CachedArgs, params: &[Param]) -> syn::Result<(TokenStream, TokenStream)> {
    let Some(key) = &args.key else {
        let all: Vec<&Param> = params.iter().collect();
        return owned_key(&all, "");
    };
    if let Some(ty) = &key.ty {
        check_storable(ty, "key", "")?;
        let expr = &key.expr;
        return Ok((ty.to_token_stream(), expr.to_token_stream()));
    }
    let cannot_infer = |span: Span| {
        syn::Error::new(
            span,
            "cannot infer the key's type from this expression: write it as \
             `key: Type = expr`, e.g. `key: (u64, String) = (self.id, name.to_owned())` \
             (an argument or a tuple of arguments needs no type)",
        )
    };
    let param_named = |expr: &Expr| -> syn::Result<&Param> {
        let Expr::Path(path) = strip_expr(expr) else {
            return Err(cannot_infer(expr.span()));
        };
        let Some(ident) = path.path.get_ident() else {
            return Err(cannot_infer(expr.span()));
        };
        if ident == "self" {
            return Err(syn::Error::new(
                ident.span(),
                "`self` cannot be a key by itself; key on what identifies it, with the \
                 key's type: `key: u64 = self.id`",
            ));
        }
        params
            .iter()
            .find(|p| p.written.as_ref() == Some(ident))
            .ok_or_else(|| {
                syn::Error::new(
                    ident.span(),
                    format!(
                        "`{ident}` is not an argument of this function; give the key's type \
                     to key on any expression: `key: Type = expr`"
                    ),
                )
            })
    };
    match strip_expr(&key.expr) {
        Expr::Tuple(tuple) => {
            let chosen = tuple
                .elems
                .iter()
                .map(param_named)
                .collect::<syn::Result<Vec<_>>>()?;
            // `(id,)` is a 1-tuple as written.
            let one_tuple = if chosen.len() == 1 { "," } else { "" };
            owned_key(&chosen, one_tuple)
        }
        expr => {
            let param = param_named(expr)?;
            owned_key(&[param], "")
        }
    }
}

fn strip_expr(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip_expr(&p.expr),
        Expr::Group(g) => strip_expr(&g.expr),
        other => other,
    }
}

/// The key made of these arguments, owned: one argument is the key
/// itself, several a tuple, none `()`. `&str` becomes `String`, `&[T]`
/// `Vec<T>`, `&Path` `PathBuf` (`&OsStr`, `&CStr` alike), `&T` `T` for
/// any other named `T` (a clone) and `T::Owned` for the rest.
fn owned_key(params: &[&Param], one_tuple: &str) -> syn::Result<(TokenStream, TokenStream)> {
    let mut types = Vec::new();
    let mut values = Vec::new();
    for param in params {
        let (ty, value) = owned(param)?;
        types.push(ty);
        values.push(value);
    }
    Ok(match (types.as_slice(), one_tuple) {
        ([ty], "") => (ty.clone(), values.remove(0)),
        _ => (quote!((#(#types,)*)), quote!((#(#values,)*))),
    })
}

fn owned(param: &Param) -> syn::Result<(TokenStream, TokenStream)> {
    let ident = &param.ident;
    match strip(&param.ty) {
        Type::Reference(reference) => {
            if let Some(mutability) = &reference.mutability {
                return Err(syn::Error::new(
                    mutability.span(),
                    "a `&mut` argument cannot be part of a cache key (a cached call \
                     would skip its changes); choose the key without it: \
                     `key = ..` naming the other arguments, or `key: Type = expr`",
                ));
            }
            check_storable(
                &reference.elem,
                "key",
                " (a reference argument is keyed by an owned copy)",
            )?;
            let ty = match strip(&reference.elem) {
                Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
                    quote!(::std::string::String)
                }
                Type::Slice(slice) => {
                    let elem = &slice.elem;
                    quote!(::std::vec::Vec<#elem>)
                }
                Type::Path(path) if path.qself.is_none() => match owned_std_unsized(&path.path) {
                    Some(owned) => owned,
                    // A `Clone` type, copied: the way `&Db` is reported as
                    // not `Clone` at the argument, with `key = ..`.
                    None => reference.elem.to_token_stream(),
                },
                elem => quote!(<#elem as ::std::borrow::ToOwned>::Owned),
            };
            Ok((ty, key_part(param, &reference.elem, quote!(#ident))))
        }
        ty => {
            check_storable(ty, "key", "")?;
            Ok((ty.to_token_stream(), key_part(param, ty, quote!(&#ident))))
        }
    }
}

/// The owned form of the unsized types of `std` a reference argument may
/// point to (`str` and slices aside): `Path`, `OsStr`, `CStr`.
fn owned_std_unsized(path: &syn::Path) -> Option<TokenStream> {
    let last = path.segments.last()?;
    if !last.arguments.is_none() {
        return None;
    }
    let owned = match last.ident.to_string().as_str() {
        "Path" => quote!(::std::path::PathBuf),
        "OsStr" => quote!(::std::ffi::OsString),
        "CStr" => quote!(::std::ffi::CString),
        _ => return None,
    };
    Some(owned)
}

/// The owned copy of an argument in the key, through [`KEY_PART`] so that
/// an argument that has none is reported at the argument, with the way to
/// leave it out of the key.
fn key_part(param: &Param, ty: &Type, borrowed: TokenStream) -> TokenStream {
    let span = param
        .written
        .as_ref()
        .map_or_else(|| param.ty.span(), Ident::span);
    // The type named in the path, not inferred from the argument: the
    // bound is then the path's, and rustc does not suggest borrowing the
    // argument (a `&Db` would be `Clone`, and no use as a key).
    let ty = respan(ty.to_token_stream(), span);
    quote_spanned!(span=> <#ty as __VigilKeyPart<_>>::__vigil_key_part(#borrowed))
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

/// The trait every argument in the key goes through to be copied: a
/// missing `Clone` (`ToOwned` for a reference) is reported as an argument
/// that cannot be in the key, pointing at `key = ..`, not as a bound of the
/// cache or with a suggestion to borrow.
const KEY_PART: &str = "__VigilKeyPart";

fn key_part_trait() -> TokenStream {
    quote! {
        #[diagnostic::on_unimplemented(
            message = "`{Self}` cannot be part of the cache key: it is not `Clone`, so the cache cannot keep a copy of it",
            label = "this argument is in the cache key",
            note = "by default the key is every argument; key on the ones that identify the result with `key = ..` (`key = id`, `key = (id, page)`), or on any expression with `key: Type = expr`"
        )]
        trait __VigilKeyPart<O> {
            fn __vigil_key_part(&self) -> O;
        }
        // The owned type as a parameter, not an associated type: a missing
        // `ToOwned` is then this trait's error, with the message above.
        impl<T, O> __VigilKeyPart<O> for T
        where
            T: ?::core::marker::Sized + ::std::borrow::ToOwned<Owned = O>,
        {
            #[inline(always)]
            fn __vigil_key_part(&self) -> O {
                ::std::borrow::ToOwned::to_owned(self)
            }
        }
    }
}

/// A type a `static` cache can name and keep: no `Self` (a `static` in a
/// method cannot name it), no `impl Trait`, nothing borrowed but `'static`.
fn check_storable(ty: &Type, role: &str, note: &str) -> syn::Result<()> {
    if let Some(span) = find_self_type(ty) {
        return Err(syn::Error::new(
            span,
            format!(
                "the cache's {role} type cannot mention `Self`: the cache is a `static`, which \
                 cannot name it; write the type's name"
            ),
        ));
    }
    if let Some(span) = find_impl_trait(ty) {
        return Err(syn::Error::new(
            span,
            format!(
                "the cache's {role} type cannot be `impl Trait`: the cache is a `static` of a \
                 named type"
            ),
        ));
    }
    if let Some(span) = find_borrow(ty) {
        let fix = if role == "key" {
            "choose an owned key with `key: Type = expr`"
        } else {
            "return an owned value (or `&'static`)"
        };
        return Err(syn::Error::new(
            span,
            format!(
                "the cache's {role} type borrows{note}: a cache keeps its entries beyond the \
                 call; {fix}"
            ),
        ));
    }
    Ok(())
}

fn find_self_type(ty: &Type) -> Option<Span> {
    fn in_tokens(tokens: TokenStream) -> Option<Span> {
        tokens.into_iter().find_map(|t| match t {
            TokenTree::Ident(i) if i == "Self" => Some(i.span()),
            TokenTree::Group(g) => in_tokens(g.stream()),
            _ => None,
        })
    }
    in_tokens(ty.to_token_stream())
}

fn find_impl_trait(ty: &Type) -> Option<Span> {
    fn in_tokens(tokens: TokenStream) -> Option<Span> {
        tokens.into_iter().find_map(|t| match t {
            TokenTree::Ident(i) if i == "impl" => Some(i.span()),
            TokenTree::Group(g) => in_tokens(g.stream()),
            _ => None,
        })
    }
    in_tokens(ty.to_token_stream())
}

/// The first reference or lifetime other than `'static` in `ty`, outside
/// function signatures (`fn(&str)`, `Box<dyn Fn(&str)>` own nothing).
fn find_borrow(ty: &Type) -> Option<Span> {
    let non_static =
        |lifetime: &syn::Lifetime| (lifetime.ident != "static").then(|| lifetime.span());
    let in_path = |path: &syn::Path| {
        path.segments
            .iter()
            .find_map(|segment| match &segment.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                    GenericArgument::Lifetime(lifetime) => non_static(lifetime),
                    GenericArgument::Type(ty) => find_borrow(ty),
                    GenericArgument::AssocType(assoc) => find_borrow(&assoc.ty),
                    _ => None,
                }),
                _ => None,
            })
    };
    match ty {
        Type::Reference(reference) => match &reference.lifetime {
            Some(lifetime) if lifetime.ident == "static" => find_borrow(&reference.elem),
            Some(lifetime) => Some(lifetime.span()),
            None => Some(reference.and_token.span),
        },
        Type::Path(path) => path
            .qself
            .as_ref()
            .and_then(|q| find_borrow(&q.ty))
            .or_else(|| in_path(&path.path)),
        Type::TraitObject(object) => object.bounds.iter().find_map(|bound| match bound {
            TypeParamBound::Lifetime(lifetime) => non_static(lifetime),
            TypeParamBound::Trait(bound) => in_path(&bound.path),
            _ => None,
        }),
        Type::Array(array) => find_borrow(&array.elem),
        Type::Slice(slice) => find_borrow(&slice.elem),
        Type::Paren(paren) => find_borrow(&paren.elem),
        Type::Group(group) => find_borrow(&group.elem),
        Type::Ptr(ptr) => find_borrow(&ptr.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(find_borrow),
        _ => None,
    }
}

/// Whether tokens mention the `Self` type, which only an associated item
/// can (a nested item inside the body could too; a false "method" then
/// fails to compile rather than misbehaves).
fn mentions_self_type(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == "Self",
        TokenTree::Group(g) => mentions_self_type(&g.stream()),
        _ => false,
    })
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

/// The function's attributes, shared out among the generated items.
struct Attrs {
    /// On the cached function: its doc comment, lint levels, `must_use`,
    /// `deprecated`, `inline`, `cold`, `cfg`.
    cached: Vec<Attribute>,
    /// On the uncached function: everything but the doc comment, so
    /// attribute macros (`#[timed]`, `#[tracing::instrument]`) wrap the
    /// body once, where it runs.
    uncached: Vec<Attribute>,
    /// On every generated item: `cfg` and `doc(hidden)`.
    everywhere: Vec<Attribute>,
}

impl Attrs {
    fn split(attrs: &[Attribute], fn_name: &str) -> syn::Result<Self> {
        const BOTH: [&str; 9] = [
            "allow",
            "warn",
            "deny",
            "forbid",
            "must_use",
            "deprecated",
            "inline",
            "cold",
            "cfg",
        ];
        let mut split = Attrs {
            cached: Vec::new(),
            uncached: Vec::new(),
            everywhere: Vec::new(),
        };
        for attr in attrs {
            let path = attr.path();
            if path.is_ident("doc") {
                if is_doc_hidden(attr) {
                    split.everywhere.push(attr.clone());
                    split.uncached.push(attr.clone());
                }
                split.cached.push(attr.clone());
            } else if path.is_ident("cfg") {
                split.everywhere.push(attr.clone());
                split.cached.push(attr.clone());
                split.uncached.push(attr.clone());
            } else if BOTH.iter().any(|name| path.is_ident(name)) {
                split.cached.push(attr.clone());
                split.uncached.push(attr.clone());
            } else if is_timed_attr(attr) {
                split.uncached.push(timed_named(attr, fn_name)?);
            } else {
                split.uncached.push(attr.clone());
            }
        }
        Ok(split)
    }
}

fn is_doc_hidden(attr: &Attribute) -> bool {
    matches!(&attr.meta, Meta::List(list) if list.tokens.to_string() == "hidden")
}

/// `#[timed]` moved onto `f_uncached` keeps timing under the name `f`, the
/// name it has in either attribute order (`#[timed]` above `#[cached]` has
/// already wrapped the body when `#[cached]` sees it).
fn timed_named(attr: &Attribute, fn_name: &str) -> syn::Result<Attribute> {
    let named = match &attr.meta {
        Meta::Path(path) => quote!(#path(name = #fn_name)),
        Meta::List(list) => {
            // A malformed `#[timed(..)]` is left for #[timed] to report.
            match crate::attr::parse_args(list.tokens.clone()) {
                Ok(args) if args.name.is_none() => {
                    let path = &list.path;
                    let tokens = &list.tokens;
                    let comma = (!list.tokens.is_empty()
                        && !list.tokens.to_string().trim_end().ends_with(','))
                    .then(|| quote!(,));
                    quote!(#path(#tokens #comma name = #fn_name))
                }
                _ => return Ok(attr.clone()),
            }
        }
        Meta::NameValue(_) => return Ok(attr.clone()),
    };
    Ok(Attribute {
        meta: syn::parse2(named)?,
        ..attr.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cached_attr::parse_args;

    fn expand(args: TokenStream, item: TokenStream) -> syn::Result<String> {
        cached(parse_args(args)?, item).map(|t| t.to_string())
    }

    fn error(args: TokenStream, item: TokenStream) -> String {
        match expand(args, item) {
            Ok(out) => panic!("expected an error, got {out}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn keys_are_owned_and_tuples_only_for_several_arguments() {
        let out = expand(
            quote!(),
            quote!(
                fn f(name: &str) -> u32 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("TaggedCache < :: std :: string :: String , u32 >"),
            "{out}"
        );
        let out = expand(
            quote!(),
            quote!(
                fn f(a: u32, b: &[u8]) -> u32 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("TaggedCache < (u32 , :: std :: vec :: Vec < u8 > ,) , u32 >"),
            "{out}"
        );
        let out = expand(
            quote!(),
            quote!(
                fn f() -> u32 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(out.contains("TaggedCache < () , u32 >"), "{out}");
        let out = expand(
            quote!(key = b),
            quote!(
                fn f(a: &Db, b: &std::path::Path) -> u32 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("TaggedCache < :: std :: path :: PathBuf , u32 >"),
            "{out}"
        );
        let out = expand(
            quote!(),
            quote!(
                fn f(a: &Db, b: &dyn Named) -> u32 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("TaggedCache < (Db , < dyn Named as :: std :: borrow :: ToOwned > :: Owned ,) , u32 >"),
            "{out}"
        );
        // Every argument in the key is copied through the trait that names
        // `key = ..` when it cannot be.
        assert_eq!(
            out.matches("as __VigilKeyPart < _ >> :: __vigil_key_part")
                .count(),
            2,
            "{out}"
        );
        let out = expand(
            quote!(key = (b,)),
            quote!(
                fn f(a: &Db, b: u8) -> u32 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(out.contains("TaggedCache < (u8 ,) , u32 >"), "{out}");
    }

    #[test]
    fn values_unwrap_results_and_options_unless_asked_to_cache_all() {
        let out = expand(
            quote!(),
            quote!(
                fn f(a: u8) -> io::Result<String> {
                    unreachable!()
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("TaggedCache < u8 , String >") && out.contains("try_get_with_options"),
            "{out}"
        );
        let out = expand(
            quote!(cache_err = true),
            quote!(
                fn f(a: u8) -> Result<u8, E> {
                    unreachable!()
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("TaggedCache < u8 , Result < u8 , E > >")
                && out.contains(". get_with_options"),
            "{out}"
        );
        let out = expand(
            quote!(),
            quote!(
                async fn f(a: u8) -> Option<u8> {
                    None
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("future :: TaggedCache < u8 , u8 >")
                && out.contains("optionally_get_with_options"),
            "{out}"
        );
        let out = expand(
            quote!(cache_none),
            quote!(
                fn f(a: u8) -> Option<u8> {
                    None
                }
            ),
        )
        .unwrap();
        assert!(out.contains("TaggedCache < u8 , Option < u8 > >"), "{out}");
    }

    #[test]
    fn methods_reach_their_items_through_self_and_leave_self_out_of_the_key() {
        let out = expand(
            quote!(tags = [self.region]),
            quote!(
                fn f(&self, id: u64) -> u8 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("Self :: f_cache ()")
                && out.contains("Self :: f_uncached (__vigil_self , id)"),
            "{out}"
        );
        assert!(out.contains("TaggedCache < u64 , u8 >"), "{out}");
        assert!(out.contains(". tag (__vigil_self . region)"), "{out}");
        assert!(out.contains("fn f_cache ()"), "{out}");
        let out = expand(
            quote!(),
            quote!(
                fn f(id: u64) -> u8 {
                    Self::X
                }
            ),
        )
        .unwrap();
        assert!(out.contains("Self :: f_cache ()"), "{out}");
        let out = expand(
            quote!(),
            quote!(
                fn f(id: u64) -> u8 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(
            out.contains("= f_cache ()") || out.contains("f_cache () . get_with_options"),
            "{out}"
        );
    }

    #[test]
    fn timed_moves_to_the_uncached_function_under_the_original_name() {
        let out = expand(
            quote!(),
            quote!(
                #[vigil::timed(slow = "1s")]
                #[inline]
                fn load(id: u64) -> u8 {
                    1
                }
            ),
        )
        .unwrap();
        let uncached = out.find("fn load_uncached").unwrap();
        let timed = out
            .find("# [vigil :: timed (slow = \"1s\" , name = \"load\")]")
            .unwrap();
        assert!(
            timed < uncached && out.matches("timed").count() == 1,
            "{out}"
        );
        assert_eq!(out.matches("# [inline]").count(), 2, "{out}");
        let out = expand(
            quote!(),
            quote!(
                #[timed(name = "x")]
                fn load(id: u64) -> u8 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(out.contains("# [timed (name = \"x\")]"), "{out}");
        let out = expand(
            quote!(),
            quote!(
                #[timed]
                fn load(id: u64) -> u8 {
                    1
                }
            ),
        )
        .unwrap();
        assert!(out.contains("# [timed (name = \"load\")]"), "{out}");
    }

    #[test]
    fn misuse_is_explained() {
        assert!(
            error(
                quote!(),
                quote!(
                    fn f<T: Hash>(t: T) -> u8 {
                        1
                    }
                )
            )
            .contains("generic")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    fn f(t: impl Hash) -> u8 {
                        1
                    }
                )
            )
            .contains("generic")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    const fn f() -> u8 {
                        1
                    }
                )
            )
            .contains("const fn")
        );
        assert!(
            error(
                quote!(cache_err),
                quote!(
                    fn f() -> u8 {
                        1
                    }
                )
            )
            .contains("`cache_err` applies")
        );
        assert!(
            error(
                quote!(cache_none),
                quote!(
                    fn f() -> Result<u8, E> {
                        Ok(1)
                    }
                )
            )
            .contains("`cache_none` applies")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    fn f(a: &str) -> &str {
                        a
                    }
                )
            )
            .contains("borrows")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    fn f(a: Cow<'a, str>) -> u8 {
                        1
                    }
                )
            )
            .contains("borrows")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    fn f(a: &mut Vec<u8>) -> u8 {
                        1
                    }
                )
            )
            .contains("&mut")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    fn f(&self) -> Self {
                        unreachable!()
                    }
                )
            )
            .contains("`Self`")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    fn f() -> impl Display {
                        1
                    }
                )
            )
            .contains("impl Trait")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    fn f() -> ! {
                        loop {}
                    }
                )
            )
            .contains("never returns")
        );
        assert!(
            error(
                quote!(key = self.id),
                quote!(
                    fn f(&self) -> u8 {
                        1
                    }
                )
            )
            .contains("cannot infer")
        );
        assert!(
            error(
                quote!(key = self),
                quote!(
                    fn f(&self) -> u8 {
                        1
                    }
                )
            )
            .contains("`self` cannot")
        );
        assert!(
            error(
                quote!(key = x),
                quote!(
                    fn f(a: u8) -> u8 {
                        1
                    }
                )
            )
            .contains("not an argument")
        );
        assert!(
            error(
                quote!(),
                quote!(
                    struct S;
                )
            )
            .contains("functions and methods")
        );
        assert!(error(quote!(), quote!(impl S {})).contains("impl"));
        // 'static borrows and function pointers are fine.
        assert!(
            expand(
                quote!(),
                quote!(
                    fn f(a: u8) -> &'static str {
                        ""
                    }
                )
            )
            .is_ok()
        );
        assert!(
            expand(
                quote!(),
                quote!(
                    fn f(a: fn(&str) -> u8) -> Box<dyn Fn(&str) + Send> {
                        unreachable!()
                    }
                )
            )
            .is_ok()
        );
        // A `&mut` argument is fine when the key leaves it out.
        assert!(
            expand(
                quote!(key = a),
                quote!(
                    fn f(a: u8, buf: &mut Vec<u8>) -> u8 {
                        1
                    }
                )
            )
            .is_ok()
        );
    }
}
