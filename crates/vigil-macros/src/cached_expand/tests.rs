//! Unit tests of the `#[cached]` expansion.

use super::*;
use crate::forms::Arguments as _;

fn expand(args: TokenStream, item: TokenStream) -> syn::Result<String> {
    cached(CachedArgs::parse(args)?, item).map(|t| t.to_string())
}

fn error(args: TokenStream, item: TokenStream) -> String {
    match expand(args, item) {
        Ok(out) => panic!("expected an error, got {out}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn keys_are_owned_and_tuples_only_for_several_arguments() {
    // (arguments, item, the cache type)
    let cases = [
        (
            quote!(),
            quote!(
                fn f(name: &str) -> u32 {
                    1
                }
            ),
            "TaggedCache < :: std :: string :: String , u32 >",
        ),
        (
            quote!(),
            quote!(
                fn f(a: u32, b: &[u8]) -> u32 {
                    1
                }
            ),
            "TaggedCache < (u32 , :: std :: vec :: Vec < u8 > ,) , u32 >",
        ),
        (
            quote!(),
            quote!(
                fn f() -> u32 {
                    1
                }
            ),
            "TaggedCache < () , u32 >",
        ),
        (
            quote!(key = b),
            quote!(
                fn f(a: &Db, b: &std::path::Path) -> u32 {
                    1
                }
            ),
            "TaggedCache < :: std :: path :: PathBuf , u32 >",
        ),
        (
            quote!(),
            quote!(
                fn f(a: &Db, b: &dyn Named) -> u32 {
                    1
                }
            ),
            "TaggedCache < (Db , < dyn Named as :: std :: borrow :: ToOwned > :: Owned ,) , u32 >",
        ),
        (
            quote!(key = (b,)),
            quote!(
                fn f(a: &Db, b: u8) -> u32 {
                    1
                }
            ),
            "TaggedCache < (u8 ,) , u32 >",
        ),
    ];
    for (args, item, cache) in cases {
        let out = expand(args, item).unwrap();
        assert!(out.contains(cache), "{out}");
    }
    // Every argument in the key is copied through the trait that names
    // `key = ..` when it cannot be.
    let out = expand(
        quote!(),
        quote!(
            fn f(a: &Db, b: &dyn Named) -> u32 {
                1
            }
        ),
    )
    .unwrap();
    assert_eq!(
        out.matches("as __VigilKeyPart < _ >> :: __vigil_key_part")
            .count(),
        2,
        "{out}"
    );
}

#[test]
fn values_unwrap_results_and_options_unless_asked_to_cache_all() {
    // (arguments, item, what the expansion holds: the cache type, the loader)
    let cases = [
        (
            quote!(),
            quote!(
                fn f(a: u8) -> io::Result<String> {
                    unreachable!()
                }
            ),
            ["TaggedCache < u8 , String >", "try_get_with_options"],
        ),
        (
            quote!(cache_err = true),
            quote!(
                fn f(a: u8) -> Result<u8, E> {
                    unreachable!()
                }
            ),
            [
                "TaggedCache < u8 , Result < u8 , E > >",
                ". get_with_options",
            ],
        ),
        (
            quote!(),
            quote!(
                async fn f(a: u8) -> Option<u8> {
                    None
                }
            ),
            [
                "future :: TaggedCache < u8 , u8 >",
                "optionally_get_with_options",
            ],
        ),
        (
            quote!(cache_none),
            quote!(
                fn f(a: u8) -> Option<u8> {
                    None
                }
            ),
            ["TaggedCache < u8 , Option < u8 > >", ". get_with_options"],
        ),
    ];
    for (args, item, holds) in cases {
        let out = expand(args, item).unwrap();
        assert!(holds.iter().all(|part| out.contains(part)), "{out}");
    }
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
    // (arguments, item, what the error says)
    let cases = [
        (
            quote!(),
            quote!(
                fn f<T: Hash>(t: T) -> u8 {
                    1
                }
            ),
            "generic",
        ),
        (
            quote!(),
            quote!(
                fn f(t: impl Hash) -> u8 {
                    1
                }
            ),
            "generic",
        ),
        (
            quote!(),
            quote!(
                const fn f() -> u8 {
                    1
                }
            ),
            "const fn",
        ),
        (
            quote!(cache_err),
            quote!(
                fn f() -> u8 {
                    1
                }
            ),
            "`cache_err` applies",
        ),
        (
            quote!(cache_none),
            quote!(
                fn f() -> Result<u8, E> {
                    Ok(1)
                }
            ),
            "`cache_none` applies",
        ),
        (
            quote!(),
            quote!(
                fn f(a: &str) -> &str {
                    a
                }
            ),
            "borrows",
        ),
        (
            quote!(),
            quote!(
                fn f(a: Cow<'a, str>) -> u8 {
                    1
                }
            ),
            "borrows",
        ),
        (
            quote!(),
            quote!(
                fn f(a: &mut Vec<u8>) -> u8 {
                    1
                }
            ),
            "&mut",
        ),
        (
            quote!(),
            quote!(
                fn f(&self) -> Self {
                    unreachable!()
                }
            ),
            "`Self`",
        ),
        (
            quote!(),
            quote!(
                fn f() -> impl Display {
                    1
                }
            ),
            "impl Trait",
        ),
        (
            quote!(),
            quote!(
                fn f() -> ! {
                    loop {}
                }
            ),
            "never returns",
        ),
        (
            quote!(key = self.id),
            quote!(
                fn f(&self) -> u8 {
                    1
                }
            ),
            "cannot infer",
        ),
        (
            quote!(key = self),
            quote!(
                fn f(&self) -> u8 {
                    1
                }
            ),
            "`self` cannot",
        ),
        (
            quote!(key = x),
            quote!(
                fn f(a: u8) -> u8 {
                    1
                }
            ),
            "not an argument",
        ),
        (
            quote!(),
            quote!(
                struct S;
            ),
            "functions and methods",
        ),
        (quote!(), quote!(impl S {}), "impl"),
    ];
    for (args, item, says) in cases {
        let message = error(args.clone(), item.clone());
        assert!(
            message.contains(says),
            "#[cached({args})] {item}: {message}"
        );
    }
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
