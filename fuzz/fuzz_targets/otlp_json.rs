#![no_main]
//! Fuzz target `otlp_json`: see `feedloop_fuzz::otlp_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| feedloop_fuzz::otlp_json(data));

feedloop_fuzz::fuzz_main!();
