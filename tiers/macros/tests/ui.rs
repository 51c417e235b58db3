//! The compile errors of `#[cached]` and `#[invalidates]` must name the mistake and point at it:
//! a key template naming no argument, a value type that is not serde, a missing cache, a
//! synchronous function, a TTL that cannot be read.

#[test]
fn compile_errors_explain_themselves() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
