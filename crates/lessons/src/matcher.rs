//! Which lessons apply to a query. A lesson's neighbourhood is not a fixed radius around its
//! examples: it is where its examples outnumber everything else feedloop knows. The evidence is
//! every example query of every active lesson (labelled with its lesson) and the traffic that
//! went well (traces with a positive rating, unlabelled). For a query, the `k` nearest pieces
//! of evidence vote, each with weight `exp(sharpness × similarity)`; a lesson applies when its
//! share of the vote reaches `min_vote` and its nearest example is at least as similar as the
//! lesson's threshold (or the floor).
//!
//! So a lesson between two busy neighbourhoods is held to its own side by the positive traffic
//! around it, and one with many examples covers more ground than one with a single example:
//! the boundary is calibrated per lesson by the data, not by one global threshold.

/// How votes are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchSettings {
    /// Pieces of evidence that vote.
    pub k: usize,
    /// How much more a closer piece of evidence counts: weight = exp(sharpness × similarity).
    pub sharpness: f32,
    /// Least share of the vote for a lesson to apply.
    pub min_vote: f32,
    /// Least similarity of a lesson's nearest example to the query, for lessons without a
    /// threshold of their own.
    pub min_similarity: f32,
}

impl Default for MatchSettings {
    fn default() -> Self {
        // Tuned on Banking77 (see the loop test): neighbouring intents overlap, so a lesson
        // needs a clear majority of the seven nearest cases.
        Self {
            k: 7,
            sharpness: 20.0,
            min_vote: 0.7,
            min_similarity: 0.4,
        }
    }
}

/// What a piece of evidence says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// Example `example` of lesson `lesson` (indexes into the caller's lists).
    Example { lesson: u32, example: u32 },
    /// A trace that went well.
    Contrast,
}

/// Vectors with labels, searched exhaustively: a project's evidence is thousands of vectors,
/// where a dot product per vector takes well under a millisecond.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    dimensions: usize,
    vectors: Vec<f32>,
    labels: Vec<Label>,
}

/// A lesson that applies, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub lesson: u32,
    /// The lesson's share of the vote, 0..=1.
    pub vote: f32,
    /// Similarity of the lesson's nearest example.
    pub similarity: f32,
    /// Which example that was.
    pub example: u32,
    /// Of the `k` voters: the lesson's examples, and traces that went well.
    pub supporting: u32,
    pub contrast: u32,
}

impl Evidence {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Adds one L2-normalised vector; a vector of the wrong length is skipped.
    pub fn push(&mut self, vector: &[f32], label: Label) {
        if vector.len() == self.dimensions {
            self.vectors.extend_from_slice(vector);
            self.labels.push(label);
        }
    }

    /// The lessons that apply to `query`, best vote first. `threshold` gives a lesson's own
    /// least similarity (`None`: the settings' floor) or says it is out of the running (its
    /// metadata filter failed), in which case its examples do not vote either.
    pub fn matches(
        &self,
        query: &[f32],
        settings: &MatchSettings,
        threshold: impl Fn(u32) -> Option<Option<f32>>,
    ) -> Vec<Match> {
        if query.len() != self.dimensions || self.dimensions == 0 {
            return Vec::new();
        }
        let voters = self.nearest(query, settings.k.max(1), &threshold);
        let total: f32 = voters
            .iter()
            .map(|(similarity, _)| weight(settings, *similarity))
            .sum();
        let contrast = voters
            .iter()
            .filter(|(_, label)| *label == Label::Contrast)
            .count() as u32;
        let mut matches: Vec<Match> = Vec::new();
        for &(similarity, label) in &voters {
            let Label::Example { lesson, example } = label else {
                continue;
            };
            let share = weight(settings, similarity) / total;
            match matches.iter_mut().find(|m| m.lesson == lesson) {
                Some(found) => {
                    found.vote += share;
                    found.supporting += 1;
                    if similarity > found.similarity {
                        found.similarity = similarity;
                        found.example = example;
                    }
                }
                None => matches.push(Match {
                    lesson,
                    vote: share,
                    similarity,
                    example,
                    supporting: 1,
                    contrast,
                }),
            }
        }
        matches.retain(|m| {
            let least = threshold(m.lesson)
                .flatten()
                .unwrap_or(settings.min_similarity);
            m.vote >= settings.min_vote && m.similarity >= least
        });
        matches.sort_by(|a, b| b.vote.total_cmp(&a.vote));
        matches
    }

    /// The `k` most similar pieces of evidence that may vote, most similar first.
    fn nearest(
        &self,
        query: &[f32],
        k: usize,
        threshold: &impl Fn(u32) -> Option<Option<f32>>,
    ) -> Vec<(f32, Label)> {
        let mut best: Vec<(f32, Label)> = Vec::with_capacity(k + 1);
        for (vector, &label) in self.vectors.chunks_exact(self.dimensions).zip(&self.labels) {
            let similarity = dot(query, vector);
            if best.len() == k && similarity <= best[k - 1].0 {
                continue;
            }
            if let Label::Example { lesson, .. } = label
                && threshold(lesson).is_none()
            {
                continue;
            }
            let at = best.partition_point(|(s, _)| *s >= similarity);
            best.insert(at, (similarity, label));
            best.truncate(k);
        }
        best
    }
}

fn weight(settings: &MatchSettings, similarity: f32) -> f32 {
    (settings.sharpness * similarity).exp()
}

/// The dot product: cosine similarity for L2-normalised vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes let the compiler vectorise without fast-math.
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle: f32) -> Vec<f32> {
        vec![angle.cos(), angle.sin()]
    }

    fn example(lesson: u32, example: u32) -> Label {
        Label::Example { lesson, example }
    }

    fn open(_: u32) -> Option<Option<f32>> {
        Some(None)
    }

    #[test]
    fn a_lesson_applies_where_its_examples_outvote_the_traffic_around_it() {
        let mut evidence = Evidence::new(2);
        for (i, angle) in [0.0f32, 0.05, 0.1].into_iter().enumerate() {
            evidence.push(&unit(angle), example(0, i as u32));
        }
        for angle in [0.5f32, 0.55, 0.6, 0.65] {
            evidence.push(&unit(angle), Label::Contrast);
        }
        let settings = MatchSettings {
            k: 3,
            ..MatchSettings::default()
        };
        let near = evidence.matches(&unit(0.04), &settings, open);
        assert_eq!(near.len(), 1);
        assert_eq!((near[0].lesson, near[0].example), (0, 1));
        assert!(near[0].vote > 0.99 && near[0].supporting == 3);
        // Closer to the examples than to nothing, but among traffic that went well.
        assert!(evidence.matches(&unit(0.5), &settings, open).is_empty());
    }

    #[test]
    fn thresholds_and_filters_hold_a_lesson_back() {
        let mut evidence = Evidence::new(2);
        evidence.push(&unit(0.0), example(0, 0));
        evidence.push(&unit(1.4), example(1, 0));
        let settings = MatchSettings::default();
        // Alone in the evidence, a lesson wins every vote; its threshold still bounds it.
        let query = unit(0.3);
        assert_eq!(evidence.matches(&query, &settings, open)[0].lesson, 0);
        let strict = |lesson: u32| Some((lesson == 0).then_some(0.99));
        assert!(evidence.matches(&query, &settings, strict).is_empty());
        // A lesson whose filter fails neither applies nor votes.
        let only_1 = |lesson: u32| (lesson == 1).then_some(None);
        assert!(
            evidence
                .matches(&query, &settings, only_1)
                .iter()
                .all(|m| m.lesson == 1)
        );
    }

    #[test]
    fn the_dot_product_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.05).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }
}
