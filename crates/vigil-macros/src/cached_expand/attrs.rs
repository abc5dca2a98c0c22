//! The cached function's attributes, shared out among the generated items.

use quote::quote;
use syn::{Attribute, Meta};

use crate::expand::is_timed_attr;
use crate::forms::Arguments as _;

/// The function's attributes, shared out among the generated items.
pub(super) struct Attrs {
    /// On the cached function: its doc comment, lint levels, `must_use`,
    /// `deprecated`, `inline`, `cold`, `cfg`.
    pub(super) cached: Vec<Attribute>,
    /// On the uncached function: everything but the doc comment, so
    /// attribute macros (`#[timed]`, `#[tracing::instrument]`) wrap the
    /// body once, where it runs.
    pub(super) uncached: Vec<Attribute>,
    /// On every generated item: `cfg` and `doc(hidden)`.
    pub(super) everywhere: Vec<Attribute>,
}

impl Attrs {
    pub(super) fn split(attrs: &[Attribute], fn_name: &str) -> syn::Result<Self> {
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
            match crate::attr::TimedArgs::parse(list.tokens.clone()) {
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
