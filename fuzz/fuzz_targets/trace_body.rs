#![no_main]
//! Fuzz target `trace_body`: see `feedloop_fuzz::trace_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| feedloop_fuzz::trace_body(data));

feedloop_fuzz::fuzz_main!();
