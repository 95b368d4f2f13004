//! LLMFAO (dustalov/llmfao): answers of real LLMs to fixed prompts (`results.jsonl`, with
//! `prompts.jsonl`) and crowd votes on pairs of answers (`crowd-comparisons.csv`).
//!
//! Each answer becomes trace `llmfao-r{id}`: the prompt's text as input, the answer as output
//! (kept as it is, also when empty), the model as `{name, provider: api, version: api_id}`, the
//! call's duration as `latency_ms`, `metadata` `{org, slug, prompt_type, rate}`, environment
//! `test` and tag `llmfao`. Each vote becomes a rating of the left answer's trace against the
//! right one's on -1..1 (+1 left better, -1 right better, 0 tie), from source `reviewer`, author
//! `worker-{worker}`, with `metadata.pair_id`. A vote row has no id of its own; its feedback id
//! `llmfao-pair{pair}-worker{worker}-row{row}` combines the pair, the worker and the row's place
//! in the file. (Pair and worker alone are unique in the published file; the row number keeps
//! ids apart should a worker ever vote twice on a pair. The committed fixture keeps the file's
//! first rows, so its ids are those of a full import.) Votes join answers on (prompt, model),
//! as upstream documents; a vote or answer that does not join is an error.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use feedloop_core::feedback::{FeedbackKind, Source};
use feedloop_core::trace::{Environment, ModelInfo};
use feedloop_server::wire::{FeedbackBody, Record, TraceBody};
use serde_json::{Map, json};

use super::{ImportError, jsonl, preference, trace_id};

mod dataset;

pub use dataset::{Answer, Prompt, Vote, Winner, parse_votes};

/// Reads `prompts.jsonl`, `results.jsonl` and `crowd-comparisons.csv` from `dir` and maps them
/// (see [`map`]).
pub fn read_llmfao(dir: impl AsRef<Path>) -> anyhow::Result<Vec<Record>> {
    let dir = dir.as_ref();
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let prompts: Vec<Prompt> =
        jsonl::parse_lines(&read("prompts.jsonl")?).context("in prompts.jsonl")?;
    let answers: Vec<Answer> =
        jsonl::parse_lines(&read("results.jsonl")?).context("in results.jsonl")?;
    let votes = parse_votes(&read("crowd-comparisons.csv")?).context("in crowd-comparisons.csv")?;
    Ok(map(&prompts, &answers, &votes)?)
}

/// Maps answers to traces, then votes to ratings, each in file order.
pub fn map(
    prompts: &[Prompt],
    answers: &[Answer],
    votes: &[Vote],
) -> Result<Vec<Record>, ImportError> {
    let prompts: HashMap<u64, &Prompt> = prompts.iter().map(|p| (p.id, p)).collect();
    let mut out = Vec::with_capacity(answers.len() + votes.len());
    for answer in answers {
        let prompt = prompts
            .get(&answer.prompt)
            .ok_or(ImportError::UnknownPrompt {
                result: answer.id,
                prompt: answer.prompt,
            })?;
        out.push(Record::Trace(trace(answer, prompt)));
    }

    let answer_ids: HashMap<(u64, u64), u64> = answers
        .iter()
        .map(|a| ((a.prompt, a.model), a.id))
        .collect();
    let trace_of = |vote: &Vote, model: u64| {
        answer_ids
            .get(&(vote.prompt, model))
            .map(|id| trace_name(*id))
            .ok_or(ImportError::UnknownResult {
                row: vote.row,
                prompt: vote.prompt,
                model,
            })
    };
    for vote in votes {
        let left = trace_of(vote, vote.model_x)?;
        let right = trace_id(&trace_of(vote, vote.model_y)?)?;
        out.push(Record::Feedback(FeedbackBody {
            id: Some(format!(
                "llmfao-pair{}-worker{}-row{}",
                vote.pair_id, vote.worker, vote.row
            )),
            trace_id: left,
            source: Some(Source::Reviewer),
            author: Some(format!("worker-{}", vote.worker)),
            metadata: Map::from_iter([("pair_id".into(), json!(vote.pair_id))]),
            kind: Some(FeedbackKind::Rating),
            rating: Some(preference(vote.winner.rating_value(), right)),
            ..FeedbackBody::default()
        }));
    }
    Ok(out)
}

fn trace_name(answer_id: u64) -> String {
    format!("llmfao-r{answer_id}")
}

fn trace(answer: &Answer, prompt: &Prompt) -> TraceBody {
    TraceBody {
        id: Some(trace_name(answer.id)),
        environment: Some(Environment::Test),
        input: Some(prompt.text.clone()),
        output: Some(answer.result.clone()),
        model: Some(ModelInfo {
            name: Some(answer.name.clone()),
            provider: Some(answer.api.clone()),
            version: Some(answer.api_id.clone()),
        }),
        latency_ms: Some(answer.duration),
        tags: vec!["llmfao".into()],
        metadata: Map::from_iter([
            ("org".into(), json!(answer.org)),
            ("slug".into(), json!(answer.slug)),
            ("prompt_type".into(), json!(prompt.prompt_type)),
            ("rate".into(), json!(answer.rate)),
        ]),
        ..TraceBody::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn prompts() -> Vec<Prompt> {
        jsonl::parse_lines(
            r#"{"id":8,"text":"Argue for and against kubernetes in a haiku.","type":"reflexion","slug":"k8s","stop":null,"note":null}"#,
        )
        .unwrap()
    }

    fn answers() -> Vec<Answer> {
        jsonl::parse_lines(concat!(
            r#"{"id":0,"model":97,"result":"For Kubernetes, a plea,","duration":6837.0,"rate":11.55,"prompt":8,"api_id":"jondurbin/airoboros-l2-70b-2.1","name":"Airoboros L2 70B","api":"openrouter","type":"chat","org":"Jon Durbin","slug":"k8s"}"#,
            "\n",
            r#"{"id":5,"model":98,"result":"","duration":512.5,"rate":0.0,"prompt":8,"api_id":"mancer/weaver","name":"Weaver 12k","api":"openrouter","type":"chat","org":"Mancer","slug":"k8s"}"#,
        ))
        .unwrap()
    }

    fn votes() -> Vec<Vote> {
        parse_votes(
            "id,prompt,model_x,model_y,worker,winner,left,right\n\
             0,8,97,98,58,tie,Airoboros L2 70B,Weaver 12k\n\
             0,8,97,98,14,right,Airoboros L2 70B,Weaver 12k\n\
             1,8,98,97,14,left,Weaver 12k,Airoboros L2 70B\n",
        )
        .unwrap()
    }

    fn to_json(records: &[Record]) -> Vec<Value> {
        records
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect()
    }

    #[test]
    fn answers_become_traces_and_votes_ratings_exactly() {
        let records = to_json(&map(&prompts(), &answers(), &votes()).unwrap());
        assert_eq!(records.len(), 5);
        assert_eq!(
            records[0],
            json!({"type": "trace", "id": "llmfao-r0", "environment": "test",
                "input": "Argue for and against kubernetes in a haiku.",
                "output": "For Kubernetes, a plea,",
                "model": {"name": "Airoboros L2 70B", "provider": "openrouter",
                    "version": "jondurbin/airoboros-l2-70b-2.1"},
                "latency_ms": 6837.0, "tags": ["llmfao"],
                "metadata": {"org": "Jon Durbin", "slug": "k8s", "prompt_type": "reflexion", "rate": 11.55}})
        );
        assert_eq!(records[1]["output"], "");
        assert_eq!(
            records[2],
            json!({"type": "feedback", "id": "llmfao-pair0-worker58-row0", "trace_id": "llmfao-r0",
                "source": "reviewer", "author": "worker-58", "metadata": {"pair_id": 0},
                "kind": "rating",
                "rating": {"value": 0.0, "min": -1.0, "max": 1.0, "compared_to": "llmfao-r5"}})
        );
    }

    #[test]
    fn the_winner_sets_the_sign_of_the_left_answers_rating() {
        let records = to_json(&map(&prompts(), &answers(), &votes()).unwrap());
        let rating = |i: usize| {
            let r = &records[i];
            (
                r["trace_id"].clone(),
                r["rating"]["compared_to"].clone(),
                r["rating"]["value"].clone(),
            )
        };
        assert_eq!(
            rating(3),
            (json!("llmfao-r0"), json!("llmfao-r5"), json!(-1.0))
        );
        assert_eq!(
            rating(4),
            (json!("llmfao-r5"), json!("llmfao-r0"), json!(1.0))
        );
        assert_eq!(records[4]["id"], "llmfao-pair1-worker14-row2");
    }

    #[test]
    fn a_vote_without_an_answer_is_an_error() {
        let mut votes = votes();
        votes[1].model_y = 99;
        let err = map(&prompts(), &answers(), &votes).unwrap_err();
        assert!(
            matches!(
                err,
                ImportError::UnknownResult {
                    row: 1,
                    prompt: 8,
                    model: 99
                }
            ),
            "{err}"
        );
        let err = map(&[], &answers(), &[]).unwrap_err();
        assert!(
            matches!(
                err,
                ImportError::UnknownPrompt {
                    result: 0,
                    prompt: 8
                }
            ),
            "{err}"
        );
    }
}
