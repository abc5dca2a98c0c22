//! Compile errors of `#[timed]` and `#[cached]` (`cached_*.rs`): each points
//! at the offending token.

#[test]
fn misuse_is_a_compile_error_at_the_offending_token() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
}
