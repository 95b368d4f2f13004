//! Agreement between reviewers: per item, the share of verdicts that gave the most common
//! label; per queue, Fleiss' kappa, agreement corrected for what chance alone would give.
//!
//! Items may end with different numbers of verdicts (an item resolves early once a majority
//! agrees), so kappa uses the form of Fleiss' statistic for a varying number of raters per
//! item: each item's observed agreement `P_i = Σ_j n_ij (n_ij − 1) / (n_i (n_i − 1))` over
//! items with at least two verdicts, `P̄` their mean, `p_j` each label's share of all those
//! verdicts and `P_e = Σ p_j²`; `κ = (P̄ − P_e) / (1 − P_e)`. With the same number of raters per
//! item this is exactly Fleiss' kappa.

use std::collections::BTreeMap;

use super::item::Verdict;

/// The most common label and how many verdicts gave it (ties: the smallest label). Verdicts
/// without a label count for none.
pub fn modal_label(verdicts: &[Verdict]) -> (Option<String>, usize) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for label in verdicts.iter().filter_map(|v| v.label.as_deref()) {
        *counts.entry(label).or_default() += 1;
    }
    // `max_by_key` keeps the last of equal maxima; iterate in reverse so that is the smallest.
    counts
        .into_iter()
        .rev()
        .max_by_key(|(_, count)| *count)
        .map_or((None, 0), |(label, count)| (Some(label.to_owned()), count))
}

/// The share of an item's verdicts that gave its most common label; `None` below two labelled
/// verdicts (one reviewer agrees with no one).
pub fn item_agreement(verdicts: &[Verdict]) -> Option<f64> {
    let labelled = verdicts.iter().filter(|v| v.label.is_some()).count();
    if labelled < 2 {
        return None;
    }
    let (_, count) = modal_label(verdicts);
    Some(count as f64 / labelled as f64)
}

/// Agreement over a queue's items.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueAgreement {
    /// Items with at least two labelled verdicts (the others say nothing about agreement).
    pub num_items: usize,
    /// The mean of the items' [`item_agreement`].
    pub mean_agreement: Option<f64>,
    /// Fleiss' kappa; `None` with no item of two verdicts, or when every verdict gave one label
    /// (chance agreement is then 1 and kappa undefined).
    pub fleiss_kappa: Option<f64>,
}

/// Agreement over the verdicts of each item of a queue.
pub fn queue_agreement<'a>(items: impl IntoIterator<Item = &'a [Verdict]>) -> QueueAgreement {
    let mut label_totals: BTreeMap<String, f64> = BTreeMap::new();
    let mut observed = Vec::new();
    let mut shares = Vec::new();
    let mut total_verdicts = 0.0;
    for verdicts in items {
        let mut counts: BTreeMap<&str, f64> = BTreeMap::new();
        for label in verdicts.iter().filter_map(|v| v.label.as_deref()) {
            *counts.entry(label).or_default() += 1.0;
        }
        let n: f64 = counts.values().sum();
        if n < 2.0 {
            continue;
        }
        let pairs_agreeing: f64 = counts.values().map(|c| c * (c - 1.0)).sum();
        observed.push(pairs_agreeing / (n * (n - 1.0)));
        shares.extend(item_agreement(verdicts));
        for (label, count) in counts {
            *label_totals.entry(label.to_owned()).or_default() += count;
        }
        total_verdicts += n;
    }
    let mean = |values: &[f64]| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let fleiss_kappa = mean(&observed).and_then(|observed| {
        let chance: f64 = label_totals
            .values()
            .map(|count| (count / total_verdicts).powi(2))
            .sum();
        (chance < 1.0).then(|| (observed - chance) / (1.0 - chance))
    });
    QueueAgreement {
        num_items: observed.len(),
        mean_agreement: mean(&shares),
        fleiss_kappa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(labels: &[&str]) -> Vec<Verdict> {
        labels
            .iter()
            .enumerate()
            .map(|(i, label)| Verdict {
                reviewer: format!("r{i}"),
                label: Some((*label).to_owned()),
                at: jiff::Timestamp::UNIX_EPOCH,
            })
            .collect()
    }

    #[test]
    fn modal_label_breaks_ties_by_the_smallest_label() {
        assert_eq!(
            modal_label(&verdicts(&["b", "a", "b"])),
            (Some("b".into()), 2)
        );
        assert_eq!(modal_label(&verdicts(&["b", "a"])), (Some("a".into()), 1));
        assert_eq!(modal_label(&[]), (None, 0));
    }

    #[test]
    fn fleiss_kappa_matches_the_worked_example() {
        // Fleiss (1971) style check: the Wikipedia worked example, 10 items, 14 raters, 5
        // categories, kappa 0.210.
        let table: [[usize; 5]; 10] = [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ];
        let items: Vec<Vec<Verdict>> = table
            .iter()
            .map(|row| {
                let labels: Vec<&str> = row
                    .iter()
                    .zip(["c1", "c2", "c3", "c4", "c5"])
                    .flat_map(|(count, label)| std::iter::repeat_n(label, *count))
                    .collect();
                verdicts(&labels)
            })
            .collect();
        let agreement = queue_agreement(items.iter().map(Vec::as_slice));
        assert_eq!(agreement.num_items, 10);
        let kappa = agreement.fleiss_kappa.unwrap();
        assert!((kappa - 0.210).abs() < 0.001, "{kappa}");
    }

    #[test]
    fn perfect_and_chance_agreement() {
        let agreeing = [verdicts(&["a", "a"]), verdicts(&["b", "b"])];
        let result = queue_agreement(agreeing.iter().map(Vec::as_slice));
        assert_eq!(result.fleiss_kappa, Some(1.0));
        assert_eq!(result.mean_agreement, Some(1.0));
        // Every pair split: observed agreement 0, below chance.
        let split = [verdicts(&["a", "b"]), verdicts(&["b", "a"])];
        let result = queue_agreement(split.iter().map(Vec::as_slice));
        assert!(result.fleiss_kappa.unwrap() < 0.0);
        assert_eq!(result.mean_agreement, Some(0.5));
        // One label everywhere: kappa undefined; single verdicts say nothing.
        let same = [verdicts(&["a", "a"]), verdicts(&["a"])];
        let result = queue_agreement(same.iter().map(Vec::as_slice));
        assert_eq!(result.fleiss_kappa, None);
        assert_eq!(result.num_items, 1);
    }
}
