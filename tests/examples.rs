//! The examples, run the way a user reads them: their observable results are checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../examples/custom_engine.rs"]
#[allow(dead_code)]
mod custom_engine;

#[test]
fn custom_engine_sees_writes_but_not_reads_or_excluded_tables() {
    let (seen, last) = custom_engine::run().expect("the example runs");
    // CREATE TABLE dose and INSERT INTO dose; the scratch table is excluded and SELECTs
    // are not audited by its policy.
    assert_eq!(last, 2);
    assert_eq!(
        seen,
        vec![1, 2],
        "the user's sink received every event, in order"
    );
}
