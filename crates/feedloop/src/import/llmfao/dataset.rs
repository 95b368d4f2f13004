//! The files of LLMFAO: `prompts.jsonl`, `results.jsonl` (the answers) and
//! `crowd-comparisons.csv` (the votes). Fields the mapping does not use are ignored.

use serde::Deserialize;

use crate::import::ImportError;
use crate::import::csv::{self, CsvRow};

/// One line of `prompts.jsonl`.
#[derive(Debug, Clone, Deserialize)]
pub struct Prompt {
    pub id: u64,
    pub text: String,
    /// code, knowledge, instruct, reflexion or creativity.
    #[serde(rename = "type")]
    pub prompt_type: String,
    pub slug: String,
}

/// One line of `results.jsonl`: a model's answer to a prompt, with call metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct Answer {
    pub id: u64,
    /// The model's id in `models.jsonl`.
    pub model: u64,
    /// The prompt's id in `prompts.jsonl`.
    pub prompt: u64,
    /// The answer text; 69 of the 1,133 answers are empty or blank.
    pub result: String,
    /// How long the call took, in milliseconds.
    pub duration: f64,
    /// A throughput figure from the source benchmark (probably tokens per second).
    pub rate: f64,
    /// The model's name at its provider.
    pub api_id: String,
    /// The model's display name.
    pub name: String,
    /// The provider (together, openrouter, openai, …).
    pub api: String,
    /// The organisation that made the model.
    pub org: String,
    /// The prompt's slug.
    pub slug: String,
}

/// One crowd vote: which of two answers to a prompt is better.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The vote's place among the data rows of the file (0-based, the header not counted).
    pub row: usize,
    /// The answer pair (several workers vote on each pair).
    pub pair_id: u64,
    pub prompt: u64,
    /// The model of the left answer.
    pub model_x: u64,
    /// The model of the right answer.
    pub model_y: u64,
    pub worker: u64,
    pub winner: Winner,
}

/// The answer a worker chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    Left,
    Right,
    Tie,
}

impl Winner {
    /// The rating of the left answer against the right one.
    pub fn rating_value(self) -> f64 {
        match self {
            Self::Left => 1.0,
            Self::Right => -1.0,
            Self::Tie => 0.0,
        }
    }
}

/// The columns a vote needs, in [`Vote`]'s order; the file may have others, in any order.
const VOTE_COLUMNS: [&str; 6] = ["id", "prompt", "model_x", "model_y", "worker", "winner"];

/// Parses `crowd-comparisons.csv`: a header row, then one vote per row.
pub fn parse_votes(text: &str) -> Result<Vec<Vote>, ImportError> {
    let rows = csv::parse(text)?;
    let Some((header, rows)) = rows.split_first() else {
        return Err(ImportError::Csv {
            line: 1,
            message: "the file is empty".into(),
        });
    };
    let mut columns = [0; VOTE_COLUMNS.len()];
    for (column, name) in columns.iter_mut().zip(VOTE_COLUMNS) {
        *column = header
            .fields
            .iter()
            .position(|field| field == name)
            .ok_or_else(|| ImportError::Csv {
                line: header.line,
                message: format!("the header has no column {name:?}"),
            })?;
    }
    rows.iter()
        .enumerate()
        .map(|(row, fields)| parse_vote(row, fields, &columns))
        .collect()
}

fn parse_vote(row: usize, csv_row: &CsvRow, columns: &[usize; 6]) -> Result<Vote, ImportError> {
    let error = |message: String| ImportError::Csv {
        line: csv_row.line,
        message,
    };
    let field = |index: usize| {
        csv_row
            .fields
            .get(columns[index])
            .map(String::as_str)
            .ok_or_else(|| error(format!("the row has no {} column", VOTE_COLUMNS[index])))
    };
    let number = |index: usize| {
        let text = field(index)?;
        text.parse::<u64>().map_err(|_| {
            error(format!(
                "{} must be a whole number, found {text:?}",
                VOTE_COLUMNS[index]
            ))
        })
    };
    let winner = match field(5)? {
        "left" => Winner::Left,
        "right" => Winner::Right,
        "tie" => Winner::Tie,
        other => {
            return Err(error(format!(
                "winner must be left, right or tie, found {other:?}"
            )));
        }
    };
    Ok(Vote {
        row,
        pair_id: number(0)?,
        prompt: number(1)?,
        model_x: number(2)?,
        model_y: number(3)?,
        worker: number(4)?,
        winner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_are_read_by_column_name() {
        let text = "winner,id,prompt,model_x,model_y,worker,left\ntie,0,8,97,98,58,\"A, B\"\nright,3,8,1,2,7,x\n";
        let votes = parse_votes(text).unwrap();
        assert_eq!(
            votes[1],
            Vote {
                row: 1,
                pair_id: 3,
                prompt: 8,
                model_x: 1,
                model_y: 2,
                worker: 7,
                winner: Winner::Right
            }
        );
        assert_eq!(votes[0].winner, Winner::Tie);
    }

    #[test]
    fn bad_rows_name_their_line() {
        let header = "id,prompt,model_x,model_y,worker,winner\n";
        let err =
            parse_votes(&format!("{header}0,8,97,98,58,tie\n0,8,97,98,5,draw\n")).unwrap_err();
        assert!(matches!(err, ImportError::Csv { line: 3, .. }), "{err}");
        let err = parse_votes(&format!("{header}0,8,x,98,58,tie\n")).unwrap_err();
        assert!(
            err.to_string().contains("model_x must be a whole number"),
            "{err}"
        );
        let err = parse_votes("id,prompt\n").unwrap_err();
        assert!(err.to_string().contains("no column \"model_x\""), "{err}");
    }
}
