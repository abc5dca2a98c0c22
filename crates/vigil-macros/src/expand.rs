//! Code generation for `#[timed]`.
//!
//! What is generated does not depend on the edition's fallback of `!`
//! (`()` before 2024): a body that never returns compiles with no warning
//! in either edition.
//!
//! ```edition2021
//! #![deny(warnings)]
//! use vigil::timed;
//!
//! #[timed] fn unit() { panic!("stub") }
//! #[timed] fn never() -> ! { panic!("stub") }
//! #[timed] fn value() -> Result<u32, String> { panic!("stub") }
//! #[timed] async fn async_unit() { panic!("stub") }
//! #[timed] async fn async_never() -> ! { panic!("stub") }
//! #[timed] async fn async_value(s: &str) -> &str { s }
//!
//! assert!(std::panic::catch_unwind(unit).is_err());
//! assert!(std::panic::catch_unwind(|| value()).is_err());
//! # let _ = (never as fn() -> !, async_unit(), async_never(), async_value(""));
//! ```

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, Block, Expr, GenericArgument, ImplItem, ImplItemFn, Item, ItemImpl, Path,
    PathArguments, ReturnType, Signature, Stmt, Token, Type, TypeParamBound, Visibility,
};

use crate::attr::{Classify, TimedArgs};
use crate::forms::Arguments as _;

/// Expands `#[timed(args)]` on `item`.
pub(crate) fn timed(args: TimedArgs, item: TokenStream) -> syn::Result<TokenStream> {
    let item: Item = syn::parse2(item.clone()).map_err(|_| not_a_fn(&item))?;
    match item {
        Item::Fn(f) => {
            if args.skip {
                return Ok(f.into_token_stream());
            }
            let name = default_name(&args, None, &f.sig);
            Ok(expand_fn(&args, name, &f.attrs, &f.vis, &f.sig, &f.block)?)
        }
        Item::Impl(imp) => expand_impl(&args, imp),
        other => Err(not_a_fn(&other.into_token_stream())),
    }
}

fn not_a_fn(item: &TokenStream) -> syn::Error {
    misplaced(
        item,
        "#[timed] applies to functions, methods and `impl` blocks",
    )
}

/// The error of an attribute put on an item it does not apply to, at the
/// item's first token after its attributes' `#`s.
pub(crate) fn misplaced(item: &TokenStream, message: &str) -> syn::Error {
    let first = item
        .clone()
        .into_iter()
        .find(|t| !matches!(t, TokenTree::Punct(p) if p.as_char() == '#'));
    let span = first.map_or_else(proc_macro2::Span::call_site, |t| t.span());
    syn::Error::new(span, message)
}

fn default_name(args: &TimedArgs, owner: Option<&str>, sig: &Signature) -> String {
    match (&args.name, owner) {
        (Some(name), _) => name.value(),
        (None, Some(owner)) => format!("{owner}::{}", sig.ident),
        (None, None) => sig.ident.to_string(),
    }
}

/// Every method of the block, named `Type::method`; a method's own
/// `#[timed(..)]` overrides the block's arguments, `#[timed(skip)]` opts out
/// and `const fn`s without a `#[timed]` of their own are left alone.
fn expand_impl(args: &TimedArgs, mut imp: ItemImpl) -> syn::Result<TokenStream> {
    if let Some(span) = args.name_span {
        // One name for every method would merge their series into one.
        return Err(syn::Error::new(
            span,
            "`name` applies to one function; put it on the method",
        ));
    }
    let owner = type_name(&imp.self_ty);
    for item in &mut imp.items {
        let ImplItem::Fn(method) = item else { continue };
        let mut method_args = args.clone();
        let mut own = None;
        let mut kept = Vec::with_capacity(method.attrs.len());
        for attr in method.attrs.drain(..) {
            if is_timed_attr(&attr) {
                own = Some(attr_args(&attr)?);
            } else {
                kept.push(attr);
            }
        }
        method.attrs = kept;
        let explicit = own.is_some();
        if let Some(own) = own {
            method_args = args.overridden_by(own);
        }
        // A `const fn` is only skipped when the block alone asks for it; an
        // explicit `#[timed]` on one gets the same error as a free `const fn`.
        if method_args.skip || (!explicit && method.sig.constness.is_some()) {
            continue;
        }
        if !explicit {
            reject_track_caller(
                &method.attrs,
                &method.sig,
                ", or put #[timed(skip)] on the method",
            )?;
        }
        let name = default_name(&method_args, Some(&owner), &method.sig);
        let expanded = expand_fn(
            &method_args,
            name,
            &method.attrs,
            &method.vis,
            &method.sig,
            &method.block,
        )?;
        let defaultness = method.defaultness;
        let mut parsed: ImplItemFn = syn::parse2(expanded)?;
        parsed.defaultness = defaultness;
        *method = parsed;
    }
    Ok(imp.into_token_stream())
}

/// `#[timed]`, `#[vigil::timed]` or `#[vigil_macros::timed]` (optionally
/// `::`-rooted): only these are this macro; another crate's `timed` stays.
pub(crate) fn is_timed_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match names.as_slice() {
        [timed] => path.leading_colon.is_none() && timed == "timed",
        [krate, timed] => (krate == "vigil" || krate == "vigil_macros") && timed == "timed",
        _ => false,
    }
}

/// `#[track_caller]` would silently report the closure or async block the
/// body runs in, not the caller: refuse it rather than break it. A sync
/// `-> !` body runs in place, so there it keeps working.
fn reject_track_caller(attrs: &[Attribute], sig: &Signature, fix: &str) -> syn::Result<()> {
    if sig.asyncness.is_none() && returns_never(sig) {
        return Ok(());
    }
    // rustc applies `cfg_attr` before calling the macro, so a plain look
    // also finds `#[cfg_attr(.., track_caller)]`.
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("track_caller")) else {
        return Ok(());
    };
    let inside = if sig.asyncness.is_some() {
        "an async block"
    } else {
        "a closure"
    };
    Err(syn::Error::new_spanned(
        &attr.meta,
        format!(
            "#[timed] cannot preserve #[track_caller]: the body runs inside {inside}; \
             remove one of the two{fix}"
        ),
    ))
}

fn attr_args(attr: &Attribute) -> syn::Result<TimedArgs> {
    match &attr.meta {
        syn::Meta::Path(_) => Ok(TimedArgs::default()),
        syn::Meta::List(list) => TimedArgs::parse(list.tokens.clone()),
        syn::Meta::NameValue(nv) => Err(syn::Error::new(nv.span(), "use #[timed] or #[timed(..)]")),
    }
}

/// `Foo` for `Foo<T>`, `a::Foo`, `&Foo`; the written type otherwise.
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or_else(|| ty.to_token_stream().to_string(), |s| s.ident.to_string()),
        Type::Reference(r) => type_name(&r.elem),
        Type::Paren(p) => type_name(&p.elem),
        Type::Group(g) => type_name(&g.elem),
        other => other.to_token_stream().to_string().replace(' ', ""),
    }
}

fn expand_fn(
    args: &TimedArgs,
    name: String,
    attrs: &[Attribute],
    vis: &Visibility,
    sig: &Signature,
    block: &Block,
) -> syn::Result<TokenStream> {
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            "#[timed] cannot instrument a `const fn`: reading the clock is not possible at compile time",
        ));
    }
    reject_track_caller(attrs, sig, "")?;
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::vigil::timing), ToTokens::to_token_stream);
    let site = call_site(args, &krate, &name);
    let never = returns_never(sig);
    // The value the body evaluates to has the declared return type, written
    // out where the body's value is bound: it drives inference in the body
    // (`?`, `.into()`, `collect()`), and a body of type `!` (a panic,
    // `loop {}`) coerces to it as it does in the function itself, so the
    // outcome probe below always sees a known type. `impl Trait` parts
    // become `_` (a `let` cannot name them); a return type that is opaque
    // as a whole has nothing to write.
    let ret_ty = match &sig.output {
        ReturnType::Default => Some(Type::Tuple(syn::TypeTuple {
            paren_token: syn::token::Paren::default(),
            elems: syn::punctuated::Punctuated::new(),
        })),
        ReturnType::Type(_, ty) if !never => let_type(ty),
        ReturnType::Type(..) => None,
    };
    let annotated = |ident: &syn::Ident| match &ret_ty {
        Some(ty) => quote!(#ident: #ty),
        None => quote!(#ident),
    };
    // An opaque return value (`-> impl Trait`) is `ok` unless a classifier
    // decides: the signature does not make it a `Result`, and the probe
    // could not tell a body that never returns from one returning a
    // `Result` (it would force the unknown type to be one).
    let opaque = !never && ret_ty.is_none();

    let statements = &block.stmts;
    let body = if never && sig.asyncness.is_none() {
        // The body cannot return, so it needs no closure to catch `return`
        // (and `#[track_caller]` keeps working): it ends in a panic, recorded
        // when the timer drops while unwinding, or in leaving the process,
        // which records nothing. Its statements go in this block as they
        // were in the function's (its braces as a block tail would be
        // `unused_braces`).
        quote! {{
            #site
            let __vigil_timer = #krate::Timer::start(&__VIGIL_SITE);
            #(#statements)*
        }}
    } else if sig.asyncness.is_some() {
        // The body's statements are the async block's, as they were the
        // function's: its braces as a block tail would be `unused_braces`,
        // and with no statement after the body, nothing is unreachable after
        // a body of type `!`. A `return` that never runs states the block's
        // output type before the body is checked: `?` and `return` in the
        // body convert to it, and a body of type `!` coerces to it.
        let output = if never {
            // `!` cannot be written in a `let`; `Infallible` can, and the
            // body's `!` coerces to it whatever the edition's fallback.
            Some(quote!(::core::convert::Infallible))
        } else {
            ret_ty.as_ref().map(ToTokens::to_token_stream)
        };
        let declared = output.map(|output| {
            quote! {
                #[allow(
                    unknown_lints,
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::empty_loop,
                    clippy::let_unit_value,
                    clippy::let_with_type_underscore,
                    clippy::needless_return,
                    clippy::never_loop
                )]
                if false {
                    let __vigil_ret: #output = loop {};
                    return __vigil_ret;
                }
            }
        });
        let future = quote! {
            async move {
                #declared
                #(#statements)*
            }
        };
        if never {
            // The classifier is never called; the output is uninhabited.
            quote! {{
                #site
                match #krate::Timed::new(&__VIGIL_SITE, #future, |_| #krate::Outcome::Ok).await {}
            }}
        } else {
            let classify = classifier(args, &krate, opaque);
            quote! {{
                #site
                #krate::Timed::new(&__VIGIL_SITE, #future, #classify).await
            }}
        }
    } else if let Some((before, future)) = async_trait_body(block) {
        // `#[async_trait]` already turned the method into
        // `fn(..) -> Pin<Box<dyn Future<Output = T>>> { Box::pin(async move {..}) }`:
        // time the future it builds, its output typed as `T` for the probe
        // (the async block alone may leave it to be inferred later).
        let classify = match async_trait_output(sig) {
            Some(output) if args.classify.is_none() => {
                let outcome = outcome_of(args, &krate, &quote!(__vigil_value));
                quote!(|__vigil_value: &#output| #outcome)
            }
            _ => classifier(args, &krate, false),
        };
        quote! {{
            #site
            #(#before)*
            ::std::boxed::Box::pin(#krate::Timed::new(&__VIGIL_SITE, #future, #classify))
        }}
    } else {
        let value = format_ident!("__vigil_value");
        let binding = annotated(&value);
        let outcome = if opaque && args.classify.is_none() {
            quote!(#krate::Outcome::Ok)
        } else {
            outcome_of(args, &krate, &quote!(&#value))
        };
        let call = if opaque {
            // The body's type is inferred, `!` when it never returns; the
            // closure is bound first so that allowing a diverging call
            // covers this call only, not the body.
            quote! {
                let __vigil_body = move || #block;
                #[allow(clippy::diverging_sub_expression)]
                let #binding = #krate::__private::call_once(__vigil_body);
            }
        } else {
            quote! {
                #[allow(clippy::redundant_closure_call)]
                let #binding = #krate::__private::call_once(move || #block);
            }
        };
        quote! {{
            #site
            let __vigil_timer = #krate::Timer::start(&__VIGIL_SITE);
            #call
            __vigil_timer.finish(#outcome);
            #value
        }}
    };

    // Inner attributes of the body (`#![allow(..)]`) stay inside it,
    // covering all of it.
    let (inner, outer): (Vec<&Attribute>, Vec<&Attribute>) = attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Inner(_)));
    let body = if inner.is_empty() {
        body
    } else {
        quote!({ #(#inner)* #body })
    };
    Ok(quote! {
        #(#outer)*
        #vis #sig
        #body
    })
}

/// The `static` call site, declared inside the function body.
fn call_site(args: &TimedArgs, krate: &TokenStream, name: &str) -> TokenStream {
    let labels = (!args.labels.is_empty()).then(|| {
        let pairs = args.labels.iter().map(|(k, v)| {
            let k = k.to_string();
            quote!((#k, #v))
        });
        quote!(.labels(&[#(#pairs),*]))
    });
    let slow = args.slow.map(|d| {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        quote!(.slow(#krate::__private::Duration::from_nanos(#nanos)))
    });
    let concurrency = args.concurrency.then(|| quote!(.track_concurrency()));
    // `&CONST` in a `static`'s initializer is `'static`; spanned at the
    // user's expression so a wrong type is reported there.
    let objective = args
        .objective
        .as_ref()
        .map(|objective| quote_spanned!(objective.span()=> .objective(&#objective)));
    quote! {
        static __VIGIL_SITE: #krate::CallSite =
            #krate::CallSite::new(#name, ::core::module_path!())
                #labels #slow #concurrency #objective;
    }
}

/// The outcome of the return value behind `value` (a `&T` expression).
fn outcome_of(args: &TimedArgs, krate: &TokenStream, value: &TokenStream) -> TokenStream {
    match &args.classify {
        // Spanned at the user's function so a type mismatch points there.
        Some(Classify::OkIf(f)) => {
            let call = quote_spanned!(f.span()=> (#f)(#value));
            quote!(#krate::Outcome::from_ok(#call))
        }
        Some(Classify::ErrorIf(f)) => {
            let call = quote_spanned!(f.span()=> (#f)(#value));
            quote!(#krate::Outcome::from_ok(!#call))
        }
        None => quote! {{
            #[allow(unused_imports)]
            use #krate::__private::{AnyOutcome as _, ResultOutcome as _};
            (&#krate::__private::Probe(#value)).vigil_outcome()
        }},
    }
}

/// The classifier of a future's output; `opaque`: an `impl Trait` output,
/// `ok` unless `ok_if` / `error_if` decide.
fn classifier(args: &TimedArgs, krate: &TokenStream, opaque: bool) -> TokenStream {
    if opaque && args.classify.is_none() {
        return quote!(|_| #krate::Outcome::Ok);
    }
    let outcome = outcome_of(args, krate, &quote!(__vigil_value));
    quote!(|__vigil_value| #outcome)
}

/// `T` of the `Pin<Box<dyn Future<Output = T> + ..>>` an `#[async_trait]`
/// method returns.
fn async_trait_output(sig: &Signature) -> Option<&Type> {
    let ReturnType::Type(_, ty) = &sig.output else {
        return None;
    };
    let boxed = only_type_argument(ty, "Pin")?;
    let Type::TraitObject(object) = only_type_argument(boxed, "Box")? else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let last = bound.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

/// `T` in `Name<T>` (any path ending in `Name`).
fn only_type_argument<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) => Some(inner),
        _ => None,
    }
}

fn returns_never(sig: &Signature) -> bool {
    matches!(&sig.output, ReturnType::Type(_, ty) if is_never(ty))
}

/// Whether a type is `!` (through parentheses).
fn is_never(ty: &Type) -> bool {
    match ty {
        Type::Never(_) => true,
        Type::Paren(p) => is_never(&p.elem),
        Type::Group(g) => is_never(&g.elem),
        _ => false,
    }
}

/// The return type as a `let` can write it: `impl Trait` anywhere in it
/// replaced by `_` (`Result<impl Display, E>` -> `Result<_, E>`); `None`
/// when nothing of it is left to state or it cannot be seen (a macro).
fn let_type(ty: &Type) -> Option<Type> {
    let mut ty = ty.clone();
    if !infer_impl_trait(&mut ty) || matches!(ty, Type::Infer(_)) {
        return None;
    }
    Some(ty)
}

/// Replaces every `impl Trait` in `ty` by `_`; `false` if `ty` holds tokens
/// that may hide one (a type macro).
fn infer_impl_trait(ty: &mut Type) -> bool {
    match ty {
        Type::ImplTrait(_) => {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: Token![_](ty.span()),
            });
            true
        }
        Type::Array(a) => infer_impl_trait(&mut a.elem),
        Type::Group(g) => infer_impl_trait(&mut g.elem),
        Type::Paren(p) => infer_impl_trait(&mut p.elem),
        Type::Ptr(p) => infer_impl_trait(&mut p.elem),
        Type::Reference(r) => infer_impl_trait(&mut r.elem),
        Type::Slice(s) => infer_impl_trait(&mut s.elem),
        Type::Tuple(t) => t.elems.iter_mut().all(infer_impl_trait),
        Type::Path(p) => {
            p.qself.as_mut().is_none_or(|q| infer_impl_trait(&mut q.ty))
                && infer_impl_trait_in_path(&mut p.path)
        }
        Type::TraitObject(t) => t.bounds.iter_mut().all(|b| match b {
            TypeParamBound::Trait(b) => infer_impl_trait_in_path(&mut b.path),
            _ => true,
        }),
        Type::BareFn(_) | Type::Infer(_) | Type::Never(_) => true,
        other => !mentions_impl(&other.to_token_stream()),
    }
}

fn infer_impl_trait_in_path(path: &mut Path) -> bool {
    path.segments.iter_mut().all(|s| match &mut s.arguments {
        PathArguments::None => true,
        PathArguments::AngleBracketed(a) => a.args.iter_mut().all(|arg| match arg {
            GenericArgument::Type(t) => infer_impl_trait(t),
            GenericArgument::AssocType(a) => infer_impl_trait(&mut a.ty),
            _ => true,
        }),
        PathArguments::Parenthesized(p) => {
            p.inputs.iter_mut().all(infer_impl_trait)
                && match &mut p.output {
                    ReturnType::Default => true,
                    ReturnType::Type(_, t) => infer_impl_trait(t),
                }
        }
    })
}

/// Whether tokens mention `impl Trait`, which a `let` cannot name.
fn mentions_impl(tokens: &TokenStream) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == "impl",
        TokenTree::Group(g) => mentions_impl(&g.stream()),
        _ => false,
    })
}

/// Splits a body ending in `Box::pin(async move { .. })` (what
/// `#[async_trait]` generates) into the statements before it and the async
/// block.
fn async_trait_body(block: &Block) -> Option<(&[Stmt], &Expr)> {
    let (last, before) = block.stmts.split_last()?;
    let Stmt::Expr(Expr::Call(call), None) = last else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let segments: Vec<_> = func
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match &call.args[0] {
        future @ Expr::Async(_) => Some((before, future)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impl_trait_is_found_in_nested_types() {
        assert!(mentions_impl(&quote!(Box<impl Iterator<Item = u8>>)));
        assert!(!mentions_impl(&quote!(Result<Vec<u8>, Error>)));
    }

    #[test]
    fn impl_trait_in_return_types_becomes_inferred_in_the_let() {
        let shown = |ty: Type| let_type(&ty).map(|t| t.to_token_stream().to_string());
        assert_eq!(
            shown(syn::parse_quote!(Result<impl Display, E>)).as_deref(),
            Some("Result < _ , E >")
        );
        assert_eq!(
            shown(syn::parse_quote!((Vec<impl Debug>, &'a [impl Clone]))).as_deref(),
            Some("(Vec < _ > , & 'a [_])")
        );
        assert_eq!(shown(syn::parse_quote!(impl Iterator<Item = u8>)), None);
        assert_eq!(shown(syn::parse_quote!(ty_macro!(impl X))), None);
        assert_eq!(
            shown(syn::parse_quote!(Option<u8>)).as_deref(),
            Some("Option < u8 >")
        );
        assert!(is_never(&syn::parse_quote!(!)));
        assert!(is_never(&syn::parse_quote!((!))));
        assert!(!is_never(&syn::parse_quote!(fn() -> !)));
    }

    #[test]
    fn only_this_crates_timed_paths_are_timed_attributes() {
        let attr = |a: Attribute| is_timed_attr(&a);
        assert!(attr(syn::parse_quote!(#[timed])));
        assert!(attr(syn::parse_quote!(#[timed(skip)])));
        assert!(attr(syn::parse_quote!(#[vigil::timed])));
        assert!(attr(syn::parse_quote!(#[::vigil::timed(name = "x")])));
        assert!(attr(syn::parse_quote!(#[vigil_macros::timed])));
        assert!(attr(syn::parse_quote!(#[::vigil_macros::timed])));
        assert!(!attr(syn::parse_quote!(#[other::timed])));
        assert!(!attr(syn::parse_quote!(#[vigil::timing::timed])));
        assert!(!attr(syn::parse_quote!(#[::timed])));
        assert!(!attr(syn::parse_quote!(#[untimed])));
    }

    #[test]
    fn async_trait_bodies_are_recognised() {
        let block: Block = syn::parse_quote!({ Box::pin(async move { 1 }) });
        assert!(async_trait_body(&block).is_some());
        let block: Block = syn::parse_quote!({ Box::new(async move { 1 }) });
        assert!(async_trait_body(&block).is_none());
    }

    #[test]
    fn methods_are_named_after_the_self_type() {
        assert_eq!(type_name(&syn::parse_quote!(Repo<T>)), "Repo");
        assert_eq!(type_name(&syn::parse_quote!(crate::db::Repo)), "Repo");
        assert_eq!(type_name(&syn::parse_quote!(&'a Repo)), "Repo");
    }
}
