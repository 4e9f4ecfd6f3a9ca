//! Every accepted form of the attributes compiles; every rejected form fails with the error on
//! the offending token. Refresh the `.stderr` files with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("pass/*.rs");
    cases.compile_fail("fail/*.rs");
}
