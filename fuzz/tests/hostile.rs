//! Hostile regions: arbitrary bytes and damaged images (see `fuzz::hostile`).

use fuzz::hostile::{BytesInput, ImageInput, run_bytes, run_image};
use fuzz::watchdog::guard;

#[test]
fn hostile_bytes() {
    bolero::check!()
        .with_type::<BytesInput>()
        .with_test_time(fuzz::test_time(fuzz::DEFAULT_TEST_SECS))
        .for_each(|i| guard("hostile_bytes", i, || run_bytes(i)));
}

#[test]
fn hostile_image() {
    bolero::check!()
        .with_type::<ImageInput>()
        .with_test_time(fuzz::test_time(fuzz::DEFAULT_TEST_SECS))
        .for_each(|i| guard("hostile_image", i, || run_image(i)));
}
