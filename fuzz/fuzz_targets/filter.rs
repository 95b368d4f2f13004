#![no_main]
//! Fuzz target `filter`: see `feedloop_fuzz::filter`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| feedloop_fuzz::filter(data));

feedloop_fuzz::fuzz_main!();
