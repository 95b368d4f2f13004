//! Preference pairs from rating contrasts: an answer people liked and one they did not, to
//! prompts that are near-identical (input vectors at least `threshold` similar). Each answer
//! is used once; a disliked answer takes the most similar liked one still free. The liked
//! answers go into a [`VectorIndex`], so pairing costs a search per disliked answer rather
//! than a comparison with every liked one.

use feedloop_vector::{IndexSettings, VectorIndex};

use crate::DatasetError;

/// How many near prompts are considered per disliked answer before giving up.
const CANDIDATES: usize = 8;

/// Pairs `disliked[i]` with `liked[j]`: returns `(i, j, similarity)`, each index at most once,
/// in the order of `disliked`.
pub fn pair(
    dimensions: usize,
    liked: &[Vec<f32>],
    disliked: &[Vec<f32>],
    threshold: f32,
) -> Result<Vec<(usize, usize, f32)>, DatasetError> {
    if liked.is_empty() || disliked.is_empty() {
        return Ok(Vec::new());
    }
    let index = VectorIndex::with_settings(
        dimensions,
        IndexSettings {
            exact_threshold: 2_000,
            ..IndexSettings::default()
        },
    )?;
    let keyed: Vec<(u64, Vec<f32>)> = liked
        .iter()
        .enumerate()
        .map(|(j, v)| (j as u64, v.clone()))
        .collect();
    index.upsert_many(&keyed)?;
    let mut pairs = Vec::new();
    for (i, vector) in disliked.iter().enumerate() {
        let best = index
            .search(vector, CANDIDATES)?
            .into_iter()
            .find(|n| n.similarity >= threshold && index.contains(n.key));
        if let Some(neighbour) = best {
            index.remove(neighbour.key)?;
            pairs.push((i, neighbour.key as usize, neighbour.similarity));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::dedup::normalised;

    #[test]
    fn each_answer_pairs_once_with_the_nearest_free_prompt() {
        let liked = vec![normalised(vec![1.0, 0.0]), normalised(vec![0.0, 1.0])];
        let disliked = vec![
            normalised(vec![1.0, 0.02]),
            normalised(vec![1.0, 0.01]),
            normalised(vec![-1.0, 0.0]),
        ];
        let pairs = pair(2, &liked, &disliked, 0.9).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].0, pairs[0].1), (0, 0));
    }
}
