//! The key of a cached function: its type, the expression that builds
//! it from the arguments, and the owned copy of each argument in it.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Type};

use super::types::check_storable;
use super::{Param, strip};
use crate::cached_attr::CachedArgs;

/// The key type and the expression building it.
pub(super) fn key_of(
    args: &CachedArgs,
    params: &[Param],
) -> syn::Result<(TokenStream, TokenStream)> {
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

pub(super) fn owned(param: &Param) -> syn::Result<(TokenStream, TokenStream)> {
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
pub(super) const KEY_PART: &str = "__VigilKeyPart";

pub(super) fn key_part_trait() -> TokenStream {
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
