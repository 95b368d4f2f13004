//! A deterministic embedder that needs no model: feature hashing of lowercase word tokens.
//!
//! It is **not meaning-preserving**: "card arrived" and "my card came" share one word and so look
//! only a little alike, while synonyms look unrelated. Texts with the same words get the same
//! vector, so it serves tests and deployments that choose it explicitly to run without a model;
//! it is never a silent fallback.

use crate::l2_normalize;

/// Feature hashing into a fixed number of dimensions, then L2 normalisation.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dimensions: usize,
    model_id: String,
}

impl HashEmbedder {
    /// An embedder writing `dimensions`-long vectors (at least 1: checked by `from_config`).
    pub fn new(dimensions: usize) -> Self {
        HashEmbedder {
            dimensions,
            model_id: format!("hash-{dimensions}"),
        }
    }

    /// `hash-<dimensions>`.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One vector per text. A text without words gets the zero vector.
    pub fn embed(&self, texts: &[String]) -> Vec<Vec<f32>> {
        texts.iter().map(|text| self.embed_one(text)).collect()
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0f32; self.dimensions];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
        {
            let hash = fnv1a(word.chars().flat_map(char::to_lowercase));
            // The low bits pick the dimension, one high bit the sign, so collisions cancel out
            // on average instead of piling up.
            let index = (hash % self.dimensions as u64) as usize;
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            vector[index] += sign;
        }
        l2_normalize(&mut vector);
        vector
    }
}

/// 64-bit FNV-1a over the UTF-8 bytes of `chars`: stable across platforms and releases, unlike
/// std's `DefaultHasher`.
fn fnv1a(chars: impl Iterator<Item = char>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut buffer = [0u8; 4];
    for c in chars {
        for byte in c.encode_utf8(&mut buffer).bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn same_words_same_vector_whatever_the_case_and_punctuation() {
        let embedder = HashEmbedder::new(64);
        let vectors = embedder.embed(&["My card, please!".into(), "my CARD please".into()]);
        assert_eq!(vectors[0], vectors[1]);
        assert!((dot(&vectors[0], &vectors[0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn vectors_are_stable_across_releases() {
        // Stored vectors must stay valid: the hash and the layout may never change.
        let vector = HashEmbedder::new(8).embed(&["card".into()]).remove(0);
        let nonzero: Vec<_> = vector
            .iter()
            .enumerate()
            .filter(|(_, v)| **v != 0.0)
            .collect();
        assert_eq!(nonzero.len(), 1);
        assert_eq!(fnv1a("card".chars()), 0xb561_4e90_e87b_455f);
        // 0xb561_4e90_e87b_455f % 8 == 7, high bit set: negative.
        assert_eq!(vector[7], -1.0);
    }

    #[test]
    fn empty_text_is_the_zero_vector() {
        let vector = HashEmbedder::new(16).embed(&["  ...  ".into()]).remove(0);
        assert!(vector.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn model_id_names_the_dimensions() {
        assert_eq!(HashEmbedder::new(384).model_id(), "hash-384");
    }
}
