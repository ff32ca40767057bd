//! Every `eslock-macros` diagnostic, and the forms that must compile.
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test -p eslock-ui-tests`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.compile_fail("fail/*.rs");
}
