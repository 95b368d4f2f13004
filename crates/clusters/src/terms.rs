//! A cluster's name: the terms that are frequent among its members' queries and rare among
//! the other problems' (document frequency in the cluster × inverse document frequency in the
//! background, which includes the cluster).

use std::collections::{BTreeMap, BTreeSet};

/// Terms a name has at most.
pub const NAME_TERMS: usize = 4;

/// Words that say nothing about a problem.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "but", "by", "can", "could", "did", "do", "does", "don't", "for", "from",
    "get", "got", "had", "has", "have", "how", "i", "i'm", "if", "in", "into", "is", "it", "it's",
    "its", "just", "me", "my", "need", "no", "not", "of", "on", "or", "our", "please", "so",
    "some", "than", "that", "the", "their", "them", "then", "there", "this", "to", "up", "us",
    "was", "we", "what", "when", "where", "which", "why", "will", "with", "would", "you", "your",
];

/// The distinct terms of a text: lower-case words of at least two letters, stop words out.
pub fn terms_of(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| w.chars().count() >= 2 && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// Document frequencies of terms over a set of texts.
#[derive(Debug, Clone, Default)]
pub struct Background {
    num_docs: usize,
    df: BTreeMap<String, usize>,
}

impl Background {
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut background = Self::default();
        for text in texts {
            background.num_docs += 1;
            for term in terms_of(text) {
                *background.df.entry(term).or_default() += 1;
            }
        }
        background
    }

    fn idf(&self, term: &str) -> f64 {
        let df = self.df.get(term).copied().unwrap_or(0);
        ((1 + self.num_docs) as f64 / (1 + df) as f64).ln() + 1.0
    }
}

/// The most distinctive terms of a cluster's texts, best first. A term must occur in at least
/// two texts (or the only one), so one odd query does not name a cluster.
pub fn distinctive_terms<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    background: &Background,
) -> Vec<String> {
    let mut df: BTreeMap<String, usize> = BTreeMap::new();
    let mut num_texts = 0;
    for text in texts {
        num_texts += 1;
        for term in terms_of(text) {
            *df.entry(term).or_default() += 1;
        }
    }
    let least = num_texts.min(2);
    let mut scored: Vec<(f64, String)> = df
        .into_iter()
        .filter(|&(_, count)| count >= least)
        .map(|(term, count)| {
            let share = count as f64 / num_texts as f64;
            (share * background.idf(&term), term)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(NAME_TERMS)
        .map(|(_, term)| term)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_drop_stop_words_punctuation_and_case() {
        let terms: Vec<_> = terms_of("Why was MY card declined? It's declined!")
            .into_iter()
            .collect();
        assert_eq!(terms, ["card", "declined"]);
    }

    #[test]
    fn the_name_prefers_what_sets_the_cluster_apart() {
        let cluster = [
            "my card was declined at the shop",
            "card declined when paying",
            "why is my card payment declined",
        ];
        let others = [
            "how do I top up my card",
            "card delivery is late",
            "where is my card",
            "exchange rate for my card payment",
        ];
        let background = Background::new(cluster.iter().chain(&others).copied());
        let name = distinctive_terms(cluster, &background);
        assert_eq!(name[0], "declined", "{name:?}");
        assert!(name.contains(&"card".to_owned()));
        assert!(
            !name.contains(&"shop".to_owned()),
            "a term of one query is no name: {name:?}"
        );
    }
}
