#![no_main]
//! Fuzz target `ingest_body`: see `feedloop_fuzz::ingest_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| feedloop_fuzz::ingest_body(data));

feedloop_fuzz::fuzz_main!();
