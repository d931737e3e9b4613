//! Differential fuzzing against a hashbrown model (see `fuzz::differential`).

use fuzz::differential::{Family, Input, run};
use fuzz::watchdog::guard;

#[test]
fn differential() {
    bolero::check!()
        .with_type::<Input>()
        .with_test_time(fuzz::test_time(fuzz::DEFAULT_TEST_SECS))
        .for_each(|i| guard("differential", i, || run(i, Family::All)));
}

#[test]
fn differential_colliding() {
    bolero::check!()
        .with_type::<Input>()
        .with_test_time(fuzz::test_time(fuzz::DEFAULT_TEST_SECS))
        .for_each(|i| guard("differential_colliding", i, || run(i, Family::Colliding)));
}
