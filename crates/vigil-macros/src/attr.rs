//! Parsing `#[timed(..)]` arguments, with spans for every error.

use std::time::Duration;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::{Expr, Ident, LitStr, Path, Token};

use crate::forms::{self, Arguments};

/// Labels the macro sets itself; a static label may not reuse them.
const RESERVED_LABELS: [&str; 5] = [
    "function",
    "module",
    "caller_function",
    "caller_module",
    "result",
];

/// The arguments of one `#[timed(..)]`.
#[derive(Default, Clone)]
pub(crate) struct TimedArgs {
    pub(crate) name: Option<LitStr>,
    /// Where `name` was given, for the error when it is on an `impl` block.
    pub(crate) name_span: Option<Span>,
    /// Keys without an `r#` prefix: `labels(r#type = "x")` is label `type`.
    pub(crate) labels: Vec<(Ident, LitStr)>,
    pub(crate) slow: Option<Duration>,
    pub(crate) concurrency: bool,
    pub(crate) classify: Option<Classify>,
    pub(crate) krate: Option<Path>,
    pub(crate) skip: bool,
    /// An `Objective` (a `const` or `static`), referenced from the call site.
    pub(crate) objective: Option<Expr>,
}

/// A user function deciding the outcome from the return value.
#[derive(Clone)]
pub(crate) enum Classify {
    OkIf(Path),
    ErrorIf(Path),
}

impl Arguments for TimedArgs {
    fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let path = &meta.path;
        if path.is_ident("name") {
            let name = forms::string(&meta, "name", "load_user")?;
            if name.value().is_empty() {
                return Err(syn::Error::new(name.span(), "`name` must not be empty"));
            }
            self.name = Some(name);
            self.name_span = Some(path.segments[0].ident.span());
        } else if path.is_ident("labels") {
            meta.parse_nested_meta(|label| {
                let Some(key) = label.path.get_ident().map(Ident::unraw) else {
                    return Err(label.error("a label key is a plain identifier: `key = \"value\"`"));
                };
                let key_name = key.to_string();
                if RESERVED_LABELS.contains(&key_name.as_str()) {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("label `{key_name}` is set by #[timed] itself"),
                    ));
                }
                if self.labels.iter().any(|(k, _)| *k == key) {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("label `{key_name}` is given twice"),
                    ));
                }
                let value = forms::string(&label, &key_name, "value")?;
                self.labels.push((key, value));
                Ok(())
            })?;
        } else if path.is_ident("slow") {
            self.slow = Some(forms::duration(&meta, "slow", "250ms")?.0);
        } else if path.is_ident("concurrency") {
            self.concurrency = true;
        } else if path.is_ident("ok_if") || path.is_ident("error_if") {
            let span = path.segments[0].ident.span();
            let name = path.segments[0].ident.to_string();
            let func = forms::path(
                &meta,
                &forms::Form {
                    name: &name,
                    what: "the path of a `fn(&T) -> bool` taking the return value",
                    example: "Option::is_some",
                },
            )?;
            if self.classify.is_some() {
                return Err(syn::Error::new(
                    span,
                    "give one of `ok_if` and `error_if`, not both",
                ));
            }
            self.classify = Some(if path.is_ident("ok_if") {
                Classify::OkIf(func)
            } else {
                Classify::ErrorIf(func)
            });
        } else if path.is_ident("crate") {
            self.krate = Some(forms::path(
                &meta,
                &forms::Form {
                    name: "crate",
                    what: "the path of the crate with the timing API",
                    example: "vigil_timing",
                },
            )?);
        } else if path.is_ident("skip") {
            self.skip = true;
        } else if path.is_ident("objective") {
            self.objective = Some(forms::expression(
                &meta,
                &forms::Form {
                    name: "objective",
                    what: "an `Objective` constant, declared as \
                           `const API_SLO: Objective = Objective::new(\"api\")..;`",
                    example: "API_SLO",
                },
            )?);
        } else {
            let shown = quote::ToTokens::to_token_stream(path)
                .to_string()
                .replace(' ', "");
            return Err(meta.error(format!(
                "unknown #[timed] argument `{shown}`; expected one of: name, labels, slow, \
                 concurrency, ok_if, error_if, objective, crate, skip"
            )));
        }
        // Reject a stray value after a flag (`concurrency = true`).
        if meta.input.peek(Token![=]) {
            return Err(meta.error("this argument takes no value"));
        }
        Ok(())
    }
}

impl TimedArgs {
    /// These arguments with `over`'s set ones taking precedence (a method's
    /// own `#[timed(..)]` inside a `#[timed]` impl block).
    pub(crate) fn overridden_by(&self, over: TimedArgs) -> TimedArgs {
        let mut labels = self.labels.clone();
        for (key, value) in over.labels {
            labels.retain(|(k, _)| *k != key);
            labels.push((key, value));
        }
        TimedArgs {
            name: over.name,
            name_span: over.name_span,
            labels,
            slow: over.slow.or(self.slow),
            concurrency: over.concurrency || self.concurrency,
            classify: over.classify.or_else(|| self.classify.clone()),
            krate: over.krate.or_else(|| self.krate.clone()),
            skip: over.skip,
            objective: over.objective.or_else(|| self.objective.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::TimedArgs;
    use crate::forms::Arguments as _;

    #[test]
    fn arguments_parse_with_their_values() {
        let args = TimedArgs::parse(quote!(
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
        let args = TimedArgs::parse(quote!(labels(r#type = "x", r#kind = "y"))).unwrap();
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
            assert!(TimedArgs::parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
