//! JSON Lines: one JSON value per line, both for the datasets' own `.jsonl` files and for the
//! feedloop import files the importers produce.

use std::io::{self, Write};

use feedloop_server::wire::Record;
use serde::de::DeserializeOwned;

use super::ImportError;

/// Parses every non-blank line of `text` as a `T`; an error names the line (1-based).
pub fn parse_lines<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, ImportError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| ImportError::Json {
                line: index + 1,
                source,
            })
        })
        .collect()
}

/// Writes `records` as a feedloop JSONL import file: one record per line, each ending in `\n`.
pub fn write_records(records: &[Record], mut out: impl Write) -> io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut out, record)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn blank_lines_are_skipped_and_errors_name_their_line() {
        let values: Vec<Value> = parse_lines("{\"a\":1}\n\n[2]\n").unwrap();
        assert_eq!(
            values,
            [serde_json::json!({"a": 1}), serde_json::json!([2])]
        );
        let err = parse_lines::<Value>("1\n\n{oops\n").unwrap_err();
        assert!(matches!(err, ImportError::Json { line: 3, .. }), "{err}");
    }

    #[test]
    fn written_records_read_back_line_by_line() {
        let text = "{\"type\":\"feedback\",\"id\":\"f\",\"trace_id\":\"t\",\"kind\":\"comment\",\"comment\":\"ok\"}\n\
                    {\"type\":\"trace\",\"id\":\"t\",\"output\":\"line one\\nline two\"}\n";
        let records: Vec<Record> = parse_lines(text).unwrap();
        let mut written = Vec::new();
        write_records(&records, &mut written).unwrap();
        assert_eq!(String::from_utf8(written).unwrap(), text);
    }
}
