#![no_main]
//! Fuzz target `annotation_ranges`: see `feedloop_fuzz::annotation_ranges`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| feedloop_fuzz::annotation_ranges(data));

feedloop_fuzz::fuzz_main!();
