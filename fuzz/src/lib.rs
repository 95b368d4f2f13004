//! The bodies of the fuzz targets: each feeds arbitrary bytes through the real decoders and
//! validators the server runs on what clients send, and checks what must hold of their
//! results. A panic (or a failed check) is a crash. The targets in `fuzz_targets/` are one line
//! each; the stable test `crates/server/tests/fuzz_corpus.rs` includes this file and replays
//! every committed corpus input and crash regression through the same functions, so they are
//! checked on every `cargo test` without a nightly toolchain.
//!
//! Only the functions of `feedloop-server` and `feedloop-core` the server itself calls are
//! used here: `otlp::decode` and `otlp::mapping::map_export` (OTLP/HTTP), `OneOrMany::parse`
//! and `extract::parse_json` (the JSON API's bodies), the wire types' conversions to the domain,
//! the PII redaction applied before storing, `query::parse_list_query` (list filters) and the
//! annotation range checks.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_ENCODING;
use bytes::Bytes;
use feedloop_core::feedback::{Annotation, Feedback, FeedbackValue};
use feedloop_core::filter::Cursor;
use feedloop_core::pii::{PiiMode, scrub};
use feedloop_core::privacy::redact::{
    OutputSeen, redact_annotation, redact_feedback, redact_trace_part,
};
use feedloop_server::extract::{OneOrMany, parse_json};
use feedloop_server::otlp::decode::{Encoding, decode, decompress};
use feedloop_server::otlp::mapping::map_export;
use feedloop_server::query::parse_list_query;
use feedloop_server::wire::{FeedbackBody, IngestBody, TraceBody};
use prost::Message;

/// A target's body: one input.
pub type Target = fn(&[u8]);

/// Every target by name (the folder of its corpus under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("otlp_protobuf", otlp_protobuf),
    ("otlp_json", otlp_json),
    ("feedback_body", feedback_body),
    ("trace_body", trace_body),
    ("ingest_body", ingest_body),
    ("filter", filter),
    ("annotation_ranges", annotation_ranges),
];

/// Largest decompressed OTLP body the harness allows (the server's default limit is larger;
/// a smaller one keeps each run fast and still reaches the limit check).
const GZIP_LIMIT: usize = 1 << 20;

/// An OTLP/HTTP protobuf body (gzip-compressed when it starts with gzip's magic bytes), decoded
/// and mapped as `POST /v1/traces` does.
pub fn otlp_protobuf(data: &[u8]) {
    let Some(body) = maybe_gunzip(data) else {
        return;
    };
    let Ok(request) = decode(&body, Encoding::Protobuf) else {
        return;
    };
    // What was decoded encodes to bytes that decode to the same message.
    let encoded = request.encode_to_vec();
    let again = decode(&encoded, Encoding::Protobuf).expect("a re-encoded request decodes");
    assert_eq!(
        again.encode_to_vec(),
        encoded,
        "protobuf re-encoding is stable"
    );
    check_mapping(request);
}

/// An OTLP/HTTP JSON body, decoded and mapped as `POST /v1/traces` does.
pub fn otlp_json(data: &[u8]) {
    let Some(body) = maybe_gunzip(data) else {
        return;
    };
    if let Ok(request) = decode(&body, Encoding::Json) {
        check_mapping(request);
    }
}

fn maybe_gunzip(data: &[u8]) -> Option<Bytes> {
    let mut headers = HeaderMap::new();
    if data.starts_with(&[0x1f, 0x8b]) {
        headers.insert(
            CONTENT_ENCODING,
            "gzip".parse().expect("a valid header value"),
        );
    }
    decompress(&headers, Bytes::copy_from_slice(data), GZIP_LIMIT).ok()
}

/// Mapping never fails, never loses a span without counting it, and only emits valid feedback.
fn check_mapping(
    request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) {
    let mapped = map_export(request);
    assert_eq!(mapped.traces.len(), mapped.spans_per_part.len());
    let num_stored: u64 = mapped.spans_per_part.iter().sum();
    assert_eq!(
        num_stored + mapped.rejected.num_spans,
        mapped.num_spans,
        "every span is stored or counted as rejected"
    );
    for (part, num_spans) in mapped.traces.iter().zip(&mapped.spans_per_part) {
        assert!(part.spans.len() as u64 == *num_spans || *num_spans == 0);
    }
    for feedback in &mapped.feedback {
        feedback.check().expect("mapped feedback is valid");
    }
    let _ = mapped.rejected.message();
    for mode in PiiMode::ALL {
        for mut part in mapped.traces.clone() {
            redact_trace_part(&mut part, mode);
        }
    }
}

/// A `POST /api/v1/feedback` body (one item or an array), converted and redacted as ingest does.
pub fn feedback_body(data: &[u8]) {
    let Ok(body) = OneOrMany::<FeedbackBody>::parse(data) else {
        return;
    };
    let items = match body {
        OneOrMany::One(item) => vec![item],
        OneOrMany::Many(items) => items,
    };
    for item in items {
        if let Ok(feedback) = item.into_feedback(|| "fb_fuzz".to_owned()) {
            redact_every_way(&feedback, None);
        }
    }
}

/// A `POST /api/v1/traces` body (one trace or an array), converted and redacted as ingest does.
pub fn trace_body(data: &[u8]) {
    let Ok(body) = OneOrMany::<TraceBody>::parse(data) else {
        return;
    };
    let items = match body {
        OneOrMany::One(item) => vec![item],
        OneOrMany::Many(items) => items,
    };
    for item in items {
        if let Ok(part) = item.into_part(|| "tr_fuzz".to_owned()) {
            for mode in PiiMode::ALL {
                redact_trace_part(&mut part.clone(), mode);
            }
        }
    }
}

/// A `POST /api/v1/ingest` body: traces and feedback, annotations placed against the output of
/// a trace in the same batch as the server does.
pub fn ingest_body(data: &[u8]) {
    let Ok(body) = parse_json::<IngestBody>(data) else {
        return;
    };
    let parts: Vec<_> = body
        .traces
        .into_iter()
        .filter_map(|trace| trace.into_part(|| "tr_fuzz".to_owned()).ok())
        .collect();
    for mode in PiiMode::ALL {
        for part in &parts {
            redact_trace_part(&mut part.clone(), mode);
        }
    }
    for item in body.feedback {
        if let Ok(feedback) = item.into_feedback(|| "fb_fuzz".to_owned()) {
            let output = parts
                .iter()
                .find(|part| part.id == feedback.trace_id)
                .and_then(|part| part.output.as_deref());
            redact_every_way(&feedback, output);
        }
    }
}

fn redact_every_way(feedback: &Feedback, original: Option<&str>) {
    for mode in PiiMode::ALL {
        let seen = [
            original.map(OutputSeen::Original),
            original.map(OutputSeen::Stored),
            Some(OutputSeen::Unknown),
        ];
        for seen in seen.into_iter().flatten() {
            let mut redacted = feedback.clone();
            redact_feedback(&mut redacted, mode, seen);
            if let FeedbackValue::Annotation(annotation) = &redacted.value {
                annotation
                    .check()
                    .expect("a redacted valid annotation is still a valid range");
            }
        }
    }
}

/// A list query string (`GET /api/v1/traces?…`, `GET /api/v1/feedback?…`).
pub fn filter(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = parse_list_query(Some(text)) else {
        return;
    };
    if let Some(cursor) = query.page.after {
        assert_eq!(
            Cursor::decode("cursor", &cursor.encode()).ok(),
            Some(cursor),
            "a cursor round-trips"
        );
    }
    if let (Some(from), Some(to)) = (query.filter.from, query.filter.to) {
        assert!(from <= to);
    }
}

/// An inline annotation against an output, checked and placed through redaction.
///
/// Input: byte 0 picks the PII mode, byte 1 what is known of the output (the original, the
/// stored redacted one, nothing), bytes 2..10 and 10..18 are the range's start and end
/// (little-endian), the rest is UTF-8 text: the output, then after a NUL the quote; without
/// a NUL the quote is the output's text at the range.
pub fn annotation_ranges(data: &[u8]) {
    let [mode, seen, rest @ ..] = data else {
        return;
    };
    let (Some(start), Some(end)) = (read_u64(rest, 0), read_u64(rest, 8)) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&rest[16..]) else {
        return;
    };
    let mode = PiiMode::ALL[usize::from(*mode) % PiiMode::ALL.len()];
    let (output, quote) = match text.split_once('\0') {
        Some((output, quote)) => (output, quote.to_owned()),
        None => (
            text,
            text.chars()
                .skip(usize::try_from(start).unwrap_or(usize::MAX))
                .take(usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX))
                .collect(),
        ),
    };
    let annotation = Annotation {
        start,
        end,
        quote,
        comment: None,
        tags: vec![],
        categories: vec![],
    };
    // The server checks the range on its own first (feedback validation); nothing else
    // reaches redaction or the store.
    if annotation.check().is_err() {
        return;
    }
    let matches_output = annotation.check_against(output).is_ok();
    let (stored, _) = scrub(output, mode);
    let seen = match seen % 3 {
        0 => OutputSeen::Original(output),
        1 => OutputSeen::Stored(&stored),
        _ => OutputSeen::Unknown,
    };
    let mut redacted = annotation.clone();
    redact_annotation(&mut redacted, mode, seen, &mut Default::default());
    redacted
        .check()
        .expect("a redacted valid annotation is still a valid range");
    if matches_output && matches!(seen, OutputSeen::Original(_)) {
        // The rule of `feedloop_core::privacy::redact`: an annotation that marked the original
        // marks the redacted output, which is what the store checks it against.
        let stored_output = if mode == PiiMode::Off {
            output
        } else {
            &stored
        };
        redacted
            .check_against(stored_output)
            .expect("an annotation of the original marks the redacted output");
    }
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// The process entry of a fuzz target: libFuzzer's driver, run on the target's body. It is
/// defined in each target itself because a dependency's build (numkong's CPU feature probes)
/// leaves static libraries with a `main` of their own on the link line, which the linker would
/// otherwise pick instead of libFuzzer's: the binary then did nothing and exited 0.
#[macro_export]
macro_rules! fuzz_main {
    () => {
        unsafe extern "C" {
            fn LLVMFuzzerRunDriver(
                argc: *mut std::ffi::c_int,
                argv: *mut *mut *mut std::ffi::c_char,
                callback: extern "C" fn(*const u8, usize) -> std::ffi::c_int,
            ) -> std::ffi::c_int;
        }

        extern "C" fn test_one_input(data: *const u8, size: usize) -> std::ffi::c_int {
            // SAFETY: libFuzzer passes a buffer of `size` bytes.
            unsafe { libfuzzer_sys::test_input_wrap(data, size) }
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn main(
            mut argc: std::ffi::c_int,
            mut argv: *mut *mut std::ffi::c_char,
        ) -> std::ffi::c_int {
            // SAFETY: argc and argv are the process's, as the C runtime passed them.
            unsafe { LLVMFuzzerRunDriver(&mut argc, &mut argv, test_one_input) }
        }
    };
}
