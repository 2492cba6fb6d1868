//! Arbitrary bytes through decode → prepare → decide → render; the
//! invariants live in `tests/fuzz_clean.rs`, shared with the stable smoke test.
#![no_main]

#[path = "../../tests/fuzz_clean.rs"]
mod fuzz_clean;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_clean::check(data));
