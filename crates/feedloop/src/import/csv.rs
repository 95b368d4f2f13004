//! A small CSV reader for the datasets' comma-separated files (RFC 4180: fields may be quoted
//! with `"`, a quote inside a quoted field is doubled, a quoted field may span lines; `\n` or
//! `\r\n` ends a row). Not a crate: the files are small and simple, and this is all they need.

use super::ImportError;

/// One row of a CSV file and the line it starts on (1-based, the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Splits `text` into rows of fields. Empty lines are skipped; text after a closing quote, or a
/// quote left open at the end, is an error naming the line.
pub fn parse(text: &str) -> Result<Vec<CsvRow>, ImportError> {
    let mut rows = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut in_quotes = false;
    let mut after_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    in_quotes = false;
                    after_quotes = true;
                }
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                after_quotes = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                push_row(&mut rows, row_line, std::mem::take(&mut fields));
                after_quotes = false;
                line += 1;
                row_line = line;
            }
            _ if after_quotes => {
                return Err(ImportError::Csv {
                    line,
                    message: format!("unexpected {c:?} after a closing quote"),
                });
            }
            '"' if field.is_empty() => in_quotes = true,
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(ImportError::Csv {
            line: row_line,
            message: "a quoted field is not closed".into(),
        });
    }
    if !field.is_empty() || !fields.is_empty() || after_quotes {
        fields.push(field);
        push_row(&mut rows, row_line, fields);
    }
    Ok(rows)
}

/// Keeps a row unless it came from an empty line.
fn push_row(rows: &mut Vec<CsvRow>, line: usize, fields: Vec<String>) {
    if !(fields.len() == 1 && fields[0].is_empty()) {
        rows.push(CsvRow { line, fields });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|row| row.fields)
            .collect()
    }

    #[test]
    fn plain_rows_split_on_commas_with_or_without_a_final_newline() {
        assert_eq!(
            fields("a,b\r\n1,\n\n2,3"),
            [["a", "b"], ["1", ""], ["2", "3"]]
        );
    }

    #[test]
    fn quoted_fields_keep_commas_doubled_quotes_and_newlines() {
        let rows =
            parse("id,name\n1,\"Llama 2, \"\"Chat\"\"\"\n2,\"two\nlines\",\"\"\n3,x\n").unwrap();
        assert_eq!(rows[1].fields, ["1", "Llama 2, \"Chat\""]);
        assert_eq!(rows[2].fields, ["2", "two\nlines", ""]);
        assert_eq!((rows[2].line, rows[3].line), (3, 5));
    }

    #[test]
    fn broken_quoting_names_the_line() {
        let err = parse("a\n\"x\"y\n").unwrap_err();
        assert!(matches!(err, ImportError::Csv { line: 2, .. }), "{err}");
        let err = parse("a\n\"open\n").unwrap_err();
        assert!(matches!(err, ImportError::Csv { line: 2, .. }), "{err}");
    }
}
