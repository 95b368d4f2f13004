//! The export formats and how one item (or one pair) becomes one line of each.
//!
//! - `openai`: OpenAI chat fine-tuning, `{"messages":[system?, user, assistant]}` with the ideal
//!   output as the assistant's answer;
//! - `sft`: supervised fine-tuning `{"messages":[...]}` with the whole conversation as stored
//!   (system prompt, earlier turns, the query, the ideal output);
//! - `preference`: `{"prompt","chosen","rejected"}` for DPO;
//! - `csv`: one row per item with the columns of [`CSV_HEADER`].
//!
//! Each line holds exactly its format's fields: ids and provenance go to the manifest.

use feedloop_core::dataset::DatasetItem;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The columns of the CSV format.
pub const CSV_HEADER: [&str; 8] = [
    "id",
    "input",
    "system_prompt",
    "ideal_output",
    "rejected_output",
    "source",
    "categories",
    "trace_id",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Openai,
    Sft,
    Preference,
    Csv,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 4] = [Self::Openai, Self::Sft, Self::Preference, Self::Csv];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Sft => "sft",
            Self::Preference => "preference",
            Self::Csv => "csv",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The file extension of an export in this format.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Openai | Self::Sft | Self::Preference => "jsonl",
        }
    }

    /// The line that starts each file (the CSV header), if the format has one.
    pub fn header(self) -> Option<String> {
        match self {
            Self::Csv => Some(csv_row(CSV_HEADER.iter().copied())),
            Self::Openai | Self::Sft | Self::Preference => None,
        }
    }

    /// The line of one item, or `None` when the item has nothing this format can use (no ideal
    /// output for a chat format; no pair for preferences, which pairs by contrast instead).
    pub fn line(self, item: &DatasetItem) -> Option<String> {
        match self {
            Self::Openai => {
                let ideal = item.ideal_output.as_deref()?;
                let mut messages = Vec::with_capacity(3);
                if let Some(system) = &item.context.system_prompt {
                    messages.push(json!({"role": "system", "content": system}));
                }
                messages.push(json!({"role": "user", "content": item.input}));
                messages.push(json!({"role": "assistant", "content": ideal}));
                Some(json!({ "messages": messages }).to_string())
            }
            Self::Sft => {
                let ideal = item.ideal_output.as_deref()?;
                Some(json!({ "messages": conversation(item, ideal) }).to_string())
            }
            Self::Preference => Some(preference_line(
                &item.input,
                item.ideal_output.as_deref()?,
                item.rejected_output.as_deref()?,
            )),
            Self::Csv => Some(csv_row([
                item.id.as_str(),
                &item.input,
                item.context.system_prompt.as_deref().unwrap_or(""),
                item.ideal_output.as_deref().unwrap_or(""),
                item.rejected_output.as_deref().unwrap_or(""),
                item.source.as_str(),
                &item.categories.join(";"),
                item.provenance.trace_id.as_ref().map_or("", |t| t.as_str()),
            ])),
        }
    }
}

/// A DPO pair.
pub fn preference_line(prompt: &str, chosen: &str, rejected: &str) -> String {
    json!({"prompt": prompt, "chosen": chosen, "rejected": rejected}).to_string()
}

/// System prompt, the earlier turns as stored (without a last user turn that repeats the
/// input, and without system messages when the system prompt is set), the input, the ideal
/// output.
fn conversation(item: &DatasetItem, ideal: &str) -> Vec<serde_json::Value> {
    let mut messages = Vec::with_capacity(item.context.messages.len() + 3);
    if let Some(system) = &item.context.system_prompt {
        messages.push(json!({"role": "system", "content": system}));
    }
    let mut earlier = item.context.messages.as_slice();
    if let Some((last, rest)) = earlier.split_last()
        && last.role == "user"
        && last.content == item.input
    {
        earlier = rest;
    }
    for message in earlier {
        if message.role == "system" && item.context.system_prompt.is_some() {
            continue;
        }
        messages.push(json!({"role": message.role, "content": message.content}));
    }
    messages.push(json!({"role": "user", "content": item.input}));
    messages.push(json!({"role": "assistant", "content": ideal}));
    messages
}

/// One CSV record without its line end (fields with commas, quotes or line breaks quoted).
fn csv_row<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer
        .write_record(fields)
        .expect("writing to memory cannot fail");
    let bytes = writer.into_inner().expect("flushing to memory cannot fail");
    let mut row = String::from_utf8(bytes).expect("csv of strings is utf-8");
    row.pop();
    row
}
