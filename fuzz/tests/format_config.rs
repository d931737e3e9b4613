//! Arbitrary configurations and region sizes (see `fuzz::formatting`).

use fuzz::formatting::{Input, run};
use fuzz::watchdog::guard;

#[test]
fn format_config() {
    bolero::check!()
        .with_type::<Input>()
        .with_test_time(fuzz::test_time(fuzz::DEFAULT_TEST_SECS))
        .for_each(|i| guard("format_config", i, || run(i)));
}
