//! Checks on the types a `static` cache holds: no `Self`, no `impl Trait`,
//! nothing borrowed but `'static`.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{GenericArgument, PathArguments, Type, TypeParamBound};

/// A type a `static` cache can name and keep: no `Self` (a `static` in a
/// method cannot name it), no `impl Trait`, nothing borrowed but `'static`.
pub(super) fn check_storable(ty: &Type, role: &str, note: &str) -> syn::Result<()> {
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
    find_ident(ty.to_token_stream(), "Self")
}

pub(super) fn find_impl_trait(ty: &Type) -> Option<Span> {
    find_ident(ty.to_token_stream(), "impl")
}

/// The first `name` (an identifier or keyword) in `tokens`, at any depth.
fn find_ident(tokens: TokenStream, name: &str) -> Option<Span> {
    tokens.into_iter().find_map(|t| match t {
        TokenTree::Ident(i) if i == name => Some(i.span()),
        TokenTree::Group(g) => find_ident(g.stream(), name),
        _ => None,
    })
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
pub(super) fn mentions_self_type(tokens: &TokenStream) -> bool {
    find_ident(tokens.clone(), "Self").is_some()
}
