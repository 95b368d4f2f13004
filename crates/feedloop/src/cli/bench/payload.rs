//! Request bodies for the load generator. The client shares the machine with the server it
//! measures, so bodies are built by concatenating pre-built text into a string, not by building
//! `serde_json::Value`s: a record costs a few small formats and one slice copy.
//!
//! Every id carries the run id, so two runs never collide and the stored count can be checked
//! against what the server acknowledged.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write;
use std::sync::Arc;

/// Common English words, separated by spaces; the corpus strings them into sentences.
const WORDS: &str = "\
    the a to and of in is you that it for your on with can this be are as if account card \
    payment order refund password settings open select then check make sure will should after \
    before when email address phone number app menu screen button tap click page new change \
    reset update delivery date invoice plan subscription cancel team support help question \
    answer step first next finally usually within days hours minutes bank transfer limit \
    security code message receive send we our please note also may need want how what why where \
    there any more than about from by or not have has do does get use see time policy return \
    item price shipping country region document";

/// Feedback comments (no characters that need escaping in JSON).
const COMMENTS: &[&str] = &[
    "this did not answer my question",
    "great, exactly what I needed",
    "the steps are out of date, the menu looks different now",
    "too long, I just wanted the number",
    "wrong country, I am in Canada",
    "helpful but it missed the fee for international transfers",
    "it made up a setting that does not exist",
    "thanks!",
];

const SIGNALS: &[&str] = &["copy", "regenerate", "dwell", "share", "rephrase"];
const SOURCES: &[&str] = &["web", "web", "ios", "android"];
const APP_VERSIONS: &[&str] = &["2.4.1", "2.4.2", "2.5.0-beta.3"];
const TAGS: &[&str] = &[
    "support",
    "billing",
    "search",
    "onboarding",
    "mobile",
    "beta",
    "faq",
];
const MODELS: &[(&str, &str, &str)] = &[
    ("gpt-4o-mini", "openai", "2024-07-18"),
    ("claude-3-5-haiku", "anthropic", "20241022"),
    ("llama-3.1-8b-instruct", "local", "q4_k_m"),
];
const ENVIRONMENTS: &[&str] = &["prod", "prod", "prod", "staging"];

/// The corpus is at least this long, so that slices rarely repeat.
const MIN_CORPUS_BYTES: usize = 256 * 1024;

/// A long run of English-like ASCII text; texts are slices of it. It holds nothing that JSON
/// would escape, so slices go into bodies as they are.
#[derive(Debug)]
pub struct Corpus {
    text: String,
}

impl Corpus {
    /// A corpus from `seed`, long enough for slices of `longest_slice` bytes.
    pub fn new(seed: u64, longest_slice: usize) -> Self {
        let target = MIN_CORPUS_BYTES.max(longest_slice.saturating_mul(4));
        let words: Vec<&str> = WORDS.split_whitespace().collect();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut text = String::with_capacity(target + 64);
        while text.len() < target {
            let num_words = rng.random_range(6..20);
            for index in 0..num_words {
                let word = words[rng.random_range(0..words.len())];
                if index == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        text.push(first.to_ascii_uppercase());
                        text.push_str(chars.as_str());
                    }
                } else {
                    text.push(' ');
                    text.push_str(word);
                    if index + 1 < num_words && rng.random_ratio(1, 12) {
                        text.push(',');
                    }
                }
            }
            text.push_str(". ");
        }
        Self { text }
    }

    /// A slice of `len` bytes (at most the corpus length) at a random place.
    pub fn slice(&self, rng: &mut impl Rng, len: usize) -> &str {
        let len = len.min(self.text.len());
        let start = rng.random_range(0..=self.text.len() - len);
        // The corpus is ASCII, so every byte offset is a char boundary.
        &self.text[start..start + len]
    }
}

/// Builds the bodies of one connection (or of the open-loop scheduler). Ids are
/// `{kind}-{run}-{worker}-{n}`: unique within a run, and runs differ.
#[derive(Debug)]
pub struct Generator {
    corpus: Arc<Corpus>,
    rng: SmallRng,
    run_id: String,
    worker: usize,
    num_made: u64,
    text_bytes: usize,
    session: u64,
    session_traces_left: u32,
}

impl Generator {
    /// `seed` makes the content reproducible (not the ids: they carry the run id).
    pub fn new(
        corpus: Arc<Corpus>,
        run_id: &str,
        worker: usize,
        seed: u64,
        text_bytes: usize,
    ) -> Self {
        let mix = seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            corpus,
            rng: SmallRng::seed_from_u64(mix),
            run_id: run_id.to_owned(),
            worker,
            num_made: 0,
            text_bytes,
            session: 0,
            session_traces_left: 0,
        }
    }

    /// One feedback object.
    pub fn feedback(&mut self) -> Vec<u8> {
        let mut out = String::with_capacity(320);
        self.push_feedback(&mut out);
        out.into_bytes()
    }

    /// A JSON array of `num` feedback objects.
    pub fn feedback_batch(&mut self, num: usize) -> Vec<u8> {
        let mut out = String::with_capacity(num * 260 + 2);
        out.push('[');
        for index in 0..num {
            if index > 0 {
                out.push(',');
            }
            self.push_feedback(&mut out);
        }
        out.push(']');
        out.into_bytes()
    }

    /// A JSON array of `num` complete traces, all started at `started_at` (RFC 3339).
    pub fn trace_batch(&mut self, num: usize, started_at: &str) -> Vec<u8> {
        let mut out = String::with_capacity(num * (self.text_bytes + 700) + 2);
        out.push('[');
        for index in 0..num {
            if index > 0 {
                out.push(',');
            }
            self.push_trace(&mut out, started_at);
        }
        out.push(']');
        out.into_bytes()
    }

    fn next_id(&mut self) -> u64 {
        self.num_made += 1;
        self.num_made
    }

    /// Mostly thumbs ratings, some comments, some implicit signals; about a trace that may
    /// never arrive (feedback may come before its trace, or without one).
    fn push_feedback(&mut self, out: &mut String) {
        let id = self.next_id();
        let (run, worker) = (&self.run_id, self.worker);
        let trace = self.rng.random_range(0..1_000_000u32);
        let user = self.rng.random_range(0..50_000u32);
        let _ = write!(
            out,
            r#"{{"id":"fb-{run}-{worker}-{id}","trace_id":"tr-{run}-r{trace}","session_id":"se-{run}-u{user}","author":"user-{user}","#
        );
        let roll = self.rng.random_range(0..100u32);
        if roll < 70 {
            let value = u32::from(self.rng.random_ratio(3, 4));
            let _ = write!(out, r#""kind":"rating","rating":{{"value":{value}}},"#);
        } else if roll < 85 {
            let comment = COMMENTS[self.rng.random_range(0..COMMENTS.len())];
            let _ = write!(out, r#""kind":"comment","comment":"{comment}","#);
        } else {
            let signal = SIGNALS[self.rng.random_range(0..SIGNALS.len())];
            let value = self.rng.random_range(1..30_000u32);
            let _ = write!(
                out,
                r#""kind":"signal","signal":{{"type":"{signal}","value":{value}}},"#
            );
        }
        let version = APP_VERSIONS[self.rng.random_range(0..APP_VERSIONS.len())];
        let source = SOURCES[self.rng.random_range(0..SOURCES.len())];
        let _ = write!(
            out,
            r#""metadata":{{"app_version":"{version}","source":"{source}"}}}}"#
        );
    }

    /// A finished interaction: input, an output of `text_bytes`, model, usage, tags, metadata.
    /// Traces of one generator come in sessions of one to eight.
    fn push_trace(&mut self, out: &mut String, started_at: &str) {
        let id = self.next_id();
        if self.session_traces_left == 0 {
            self.session = id;
            self.session_traces_left = self.rng.random_range(1..=8);
        }
        self.session_traces_left -= 1;
        let (run, worker, session) = (&self.run_id, self.worker, self.session);
        let user = self.rng.random_range(0..50_000u32);
        let environment = ENVIRONMENTS[self.rng.random_range(0..ENVIRONMENTS.len())];
        let _ = write!(
            out,
            r#"{{"id":"tr-{run}-{worker}-{id}","session_id":"se-{run}-{worker}-{session}","user_id":"user-{user}","environment":"{environment}","input":""#
        );
        let input_len = self.rng.random_range(100..=200);
        out.push_str(self.corpus.slice(&mut self.rng, input_len));
        out.push_str(r#"?","output":""#);
        out.push_str(self.corpus.slice(&mut self.rng, self.text_bytes));
        let (model, provider, version) = MODELS[self.rng.random_range(0..MODELS.len())];
        let latency_ms = self.rng.random_range(150..4_000u32);
        let (input_tokens, output_tokens) = (input_len / 4 + 60, self.text_bytes / 4);
        let _ = write!(
            out,
            r#"","model":{{"name":"{model}","provider":"{provider}","version":"{version}"}},"latency_ms":{latency_ms},"usage":{{"input_tokens":{input_tokens},"output_tokens":{output_tokens}}},"status":"ok","tags":["#
        );
        let first_tag = self.rng.random_range(0..TAGS.len());
        let num_tags = self.rng.random_range(1..=3).min(TAGS.len() - first_tag);
        for (index, tag) in TAGS[first_tag..first_tag + num_tags].iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, r#""{tag}""#);
        }
        let version = APP_VERSIONS[self.rng.random_range(0..APP_VERSIONS.len())];
        let variant = if self.rng.random_ratio(1, 2) {
            "a"
        } else {
            "b"
        };
        let _ = write!(
            out,
            r#"],"metadata":{{"app_version":"{version}","prompt_variant":"{variant}","region":"eu-west-1"}},"started_at":"{started_at}"}}"#
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedloop_server::wire::{FeedbackBody, TraceBody};

    fn generator(text_bytes: usize) -> Generator {
        Generator::new(
            Arc::new(Corpus::new(7, text_bytes)),
            "run1",
            3,
            7,
            text_bytes,
        )
    }

    #[test]
    fn feedback_batches_parse_and_validate_with_unique_ids() {
        let body = generator(1024).feedback_batch(500);
        let items: Vec<FeedbackBody> = serde_json::from_slice(&body).unwrap();
        assert_eq!(items.len(), 500);
        let mut ids = std::collections::HashSet::new();
        for item in items {
            let feedback = item.into_feedback(|| unreachable!()).unwrap();
            assert!(ids.insert(feedback.id.into_string()));
        }
        let single: FeedbackBody = serde_json::from_slice(&generator(8).feedback()).unwrap();
        single.into_feedback(|| unreachable!()).unwrap();
    }

    #[test]
    fn trace_batches_parse_and_validate_with_outputs_of_the_asked_size() {
        let body = generator(1024).trace_batch(50, "2026-01-01T00:00:00Z");
        let items: Vec<TraceBody> = serde_json::from_slice(&body).unwrap();
        assert_eq!(items.len(), 50);
        for item in items {
            assert_eq!(item.output.as_deref().map(str::len), Some(1024));
            let input_len = item.input.as_deref().map_or(0, str::len);
            assert!((101..=201).contains(&input_len), "{input_len}");
            item.into_part(|| unreachable!()).unwrap();
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_content() {
        assert_eq!(
            generator(64).feedback_batch(20),
            generator(64).feedback_batch(20)
        );
    }
}
