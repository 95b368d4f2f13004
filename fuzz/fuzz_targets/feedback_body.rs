#![no_main]
//! Fuzz target `feedback_body`: see `feedloop_fuzz::feedback_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| feedloop_fuzz::feedback_body(data));

feedloop_fuzz::fuzz_main!();
