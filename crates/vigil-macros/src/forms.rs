//! Values of `#[timed(..)]` and `#[cached(..)]` arguments: each parser
//! reads the value after `name =` and, when it has another form, fails with
//! an error at the value that shows the form expected.

use std::time::Duration;

use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, discouraged::Speculative};
use syn::{Expr, Lit, LitBool, LitInt, LitStr, Path, Token};

/// The arguments of one attribute, read one `name = value` at a time.
pub(crate) trait Arguments: Default {
    /// Reads one argument; used with `syn::meta::parser`.
    fn parse_one(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()>;

    /// Parses the whole argument list of one attribute.
    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Self> {
        let mut args = Self::default();
        syn::parse::Parser::parse2(syn::meta::parser(|meta| args.parse_one(meta)), tokens)?;
        Ok(args)
    }
}

/// The input after `=`; without one, an error showing `name = example`.
fn after_eq<'a>(
    meta: &ParseNestedMeta<'a>,
    name: &str,
    example: &str,
) -> syn::Result<ParseStream<'a>> {
    if meta.input.peek(Token![=]) {
        meta.value()
    } else {
        Err(meta.error(format!("expected a value: `{name} = {example}`")))
    }
}

/// The value as an expression, or an error at the next token naming the
/// form (what follows `=` is not an expression at all).
fn any_expr(input: ParseStream<'_>, expected: &str) -> syn::Result<Expr> {
    let span = input.span();
    input
        .parse::<Expr>()
        .map_err(|_| syn::Error::new(span, format!("expected {expected}")))
}

/// The error at a value `found` that does not have the form `expected`.
fn unexpected(found: &Expr, expected: &str) -> syn::Error {
    syn::Error::new_spanned(found, format!("expected {expected}"))
}

/// The value as a literal that `pick` accepts, or an error at the value
/// naming the form `expected`.
fn literal<T>(
    input: ParseStream<'_>,
    expected: &str,
    pick: impl FnOnce(&Lit) -> Option<T>,
) -> syn::Result<T> {
    let value = any_expr(input, expected)?;
    let picked = match &value {
        Expr::Lit(syn::ExprLit { lit, .. }) => pick(lit),
        _ => None,
    };
    picked.ok_or_else(|| unexpected(&value, expected))
}

/// `name = "..."`.
pub(crate) fn string(meta: &ParseNestedMeta<'_>, name: &str, example: &str) -> syn::Result<LitStr> {
    let shown = format!("\"{example}\"");
    let input = after_eq(meta, name, &shown)?;
    let expected = format!("a string literal: `{name} = {shown}`");
    literal(input, &expected, |lit| match lit {
        Lit::Str(lit) => Some(lit.clone()),
        _ => None,
    })
}

/// `name = "250ms"`, in humantime syntax. `example` is a duration such as
/// `"30s"`; its unit is the one suggested for a bare number (`ttl = 30` ->
/// `ttl = "30s"`).
pub(crate) fn duration(
    meta: &ParseNestedMeta<'_>,
    name: &str,
    example: &str,
) -> syn::Result<(Duration, LitStr)> {
    let unit = example.trim_start_matches(|c: char| c.is_ascii_digit());
    let example = format!("\"{example}\"");
    let input = after_eq(meta, name, &example)?;
    let expected = format!("a duration string such as {example}");
    let lit = match any_expr(input, &expected)? {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => lit,
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            // `30` or `30s` (an integer with a suffix): quote it, with a unit.
            let digits = int.base10_digits();
            let suffix = match int.suffix() {
                "" => unit,
                suffix => suffix,
            };
            return Err(syn::Error::new(
                int.span(),
                format!(
                    "expected {expected}: a duration is a string with its unit, \
                     `{name} = \"{digits}{suffix}\"`"
                ),
            ));
        }
        other => {
            return Err(syn::Error::new_spanned(
                &other,
                format!(
                    "expected {expected} (a string literal, read when the macro expands; \
                     units: ms, s, m, h, d)"
                ),
            ));
        }
    };
    let parsed = humantime::parse_duration(&lit.value()).map_err(|e| {
        syn::Error::new(
            lit.span(),
            format!(
                "invalid duration {:?}: {e}; expected a duration string such as {example} \
                 (units: ms, s, m, h, d; combined as \"1h 30m\")",
                lit.value()
            ),
        )
    })?;
    Ok((parsed, lit))
}

/// `name = 1000`: a positive integer literal.
pub(crate) fn positive_integer(
    meta: &ParseNestedMeta<'_>,
    name: &str,
    example: &str,
) -> syn::Result<(u64, LitInt)> {
    let input = after_eq(meta, name, example)?;
    let expected = format!("a positive integer such as `{name} = {example}`");
    match any_expr(input, &expected)? {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let value = int.base10_parse::<u64>().map_err(|_| {
                syn::Error::new(
                    int.span(),
                    format!("expected {expected} (at most 2^64 - 1)"),
                )
            })?;
            Ok((value, int))
        }
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().trim().replace('_', "").parse::<u64>().is_ok() => Err(syn::Error::new(
            lit.span(),
            format!(
                "expected {expected}, without quotes: `{name} = {}`",
                lit.value().trim()
            ),
        )),
        other => Err(unexpected(&other, &expected)),
    }
}

/// `name`, `name = true` or `name = false`.
pub(crate) fn flag(meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<bool> {
    if !meta.input.peek(Token![=]) {
        return Ok(true);
    }
    let input = meta.value()?;
    let expected = format!("`true` or `false`: `{name} = true`, or `{name}` alone");
    literal(input, &expected, |lit| match lit {
        Lit::Bool(LitBool { value, .. }) => Some(*value),
        _ => None,
    })
}

/// A value's form, for the errors of [`path`], [`expression`] and
/// [`value`]: "expected {what}: `{name} = {example}`".
pub(crate) struct Form<'a> {
    /// The argument's name.
    pub(crate) name: &'a str,
    /// What the value is (or names).
    pub(crate) what: &'a str,
    /// A value of the form.
    pub(crate) example: &'a str,
}

impl Form<'_> {
    /// The form expected, as errors show it.
    fn expected(&self) -> String {
        format!("{}: `{} = {}`", self.what, self.name, self.example)
    }

    /// The input after `name =`, and the form expected.
    fn after_eq<'a>(&self, meta: &ParseNestedMeta<'a>) -> syn::Result<(ParseStream<'a>, String)> {
        Ok((after_eq(meta, self.name, self.example)?, self.expected()))
    }
}

/// `name = some::path`.
pub(crate) fn path(meta: &ParseNestedMeta<'_>, form: &Form<'_>) -> syn::Result<Path> {
    let (input, expected) = form.after_eq(meta)?;
    // A type-style path first (`Vec<u8>::is_empty`), as a path is parsed
    // everywhere else; it must be the whole value.
    let fork = input.fork();
    if let Ok(path) = fork.parse::<Path>()
        && (fork.is_empty() || fork.peek(Token![,]))
    {
        input.advance_to(&fork);
        return Ok(path);
    }
    let other = any_expr(input, &expected)?;
    let extra = match &other {
        Expr::Closure(_) => " (a closure is not accepted: name a function)",
        Expr::Lit(_) => " (a path, not a literal)",
        _ => "",
    };
    Err(syn::Error::new_spanned(
        &other,
        format!("expected {expected}{extra}"),
    ))
}

/// `name = EXPR`, any expression but a literal or a closure, which are
/// never what `form` is.
pub(crate) fn expression(meta: &ParseNestedMeta<'_>, form: &Form<'_>) -> syn::Result<Expr> {
    match value(meta, form)? {
        other @ Expr::Lit(_) => Err(unexpected(&other, &form.expected())),
        expr => Ok(expr),
    }
}

/// `name = expr`: any expression but a closure, literals included (a URL
/// is typically a string literal).
pub(crate) fn value(meta: &ParseNestedMeta<'_>, form: &Form<'_>) -> syn::Result<Expr> {
    let (input, expected) = form.after_eq(meta)?;
    match any_expr(input, &expected)? {
        other @ Expr::Closure(_) => Err(unexpected(&other, &expected)),
        expr => Ok(expr),
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// The first error of parsing `tokens` with `f` on each argument.
    fn error(
        tokens: proc_macro2::TokenStream,
        f: impl Fn(&syn::meta::ParseNestedMeta<'_>) -> syn::Result<()>,
    ) -> String {
        let parser = syn::meta::parser(|meta| f(&meta));
        match syn::parse::Parser::parse2(parser, tokens.clone()) {
            Ok(()) => panic!("{tokens} parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn durations_name_the_string_form_and_the_unit() {
        let ttl = |m: &syn::meta::ParseNestedMeta<'_>| super::duration(m, "ttl", "30s").map(drop);
        assert_eq!(
            error(quote!(ttl = 30), ttl),
            "expected a duration string such as \"30s\": a duration is a string with its \
             unit, `ttl = \"30s\"`"
        );
        assert!(error(quote!(ttl = 5m), ttl).ends_with("`ttl = \"5m\"`"));
        let slow =
            |m: &syn::meta::ParseNestedMeta<'_>| super::duration(m, "slow", "250ms").map(drop);
        assert!(error(quote!(slow = 250), slow).ends_with("`slow = \"250ms\"`"));
        assert!(
            error(quote!(ttl = FIVE_MINUTES), ttl)
                .starts_with("expected a duration string such as \"30s\" (a string literal")
        );
        assert!(error(quote!(ttl), ttl).contains("`ttl = \"30s\"`"));
        assert!(error(quote!(ttl = "soon"), ttl).starts_with("invalid duration \"soon\""));
    }

    #[test]
    fn other_forms_are_named() {
        let cap = |m: &syn::meta::ParseNestedMeta<'_>| {
            super::positive_integer(m, "max_capacity", "10_000").map(drop)
        };
        assert!(error(quote!(max_capacity = "1000"), cap).ends_with("`max_capacity = 1000`"));
        assert!(error(quote!(max_capacity = -1), cap).starts_with("expected a positive integer"));
        let flag = |m: &syn::meta::ParseNestedMeta<'_>| super::flag(m, "cache_err").map(drop);
        assert!(error(quote!(cache_err = "yes"), flag).starts_with("expected `true` or `false`"));
        let name =
            |m: &syn::meta::ParseNestedMeta<'_>| super::string(m, "name", "load_user").map(drop);
        assert_eq!(
            error(quote!(name = load_user), name),
            "expected a string literal: `name = \"load_user\"`"
        );
        let ok_if = |m: &syn::meta::ParseNestedMeta<'_>| {
            let form = super::Form {
                name: "ok_if",
                what: "a function",
                example: "Option::is_some",
            };
            super::path(m, &form).map(drop)
        };
        assert!(error(quote!(ok_if = |v| v.is_some()), ok_if).contains("name a function"));
        assert!(error(quote!(ok_if = "is_some"), ok_if).contains("not a literal"));
    }
}
