#![no_main]
//! Fuzz target `otlp_protobuf`: see `feedloop_fuzz::otlp_protobuf`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| feedloop_fuzz::otlp_protobuf(data));

feedloop_fuzz::fuzz_main!();
