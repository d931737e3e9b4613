//! Two threads on one cache (see `fuzz::concurrent`).

use fuzz::concurrent::{Input, run};
use fuzz::watchdog::guard;

#[test]
fn concurrent_smoke() {
    bolero::check!()
        .with_type::<Input>()
        .with_test_time(fuzz::test_time(fuzz::DEFAULT_TEST_SECS))
        .for_each(|i| guard("concurrent_smoke", i, || run(i)));
}
