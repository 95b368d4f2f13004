//! Whether a lesson helps: the negative-feedback rate of traces that got it against traces held
//! out from it, with a 95 % confidence interval for the difference (Newcombe's hybrid score
//! interval, built from two Wilson intervals: sound for small counts and rates near 0 or 1,
//! where the textbook normal interval is not).

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Whether a request is in the hold-out: a hash of the seed and the unit (a session id, or
/// the injection id when there is no session), read as a number in 0..1, below `fraction`.
pub fn in_holdout(seed: u64, unit: &str, fraction: f64) -> bool {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(unit.as_bytes())
        .finalize();
    let bits = u64::from_le_bytes(digest[..8].try_into().expect("a digest has 8 bytes"));
    let unit = (bits >> 11) as f64 / ((1u64 << 53) as f64);
    unit < fraction
}

/// A rate with its Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rate {
    pub negative: u64,
    pub traces: u64,
    /// `None` without traces.
    pub rate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl Rate {
    pub fn new(negative: u64, traces: u64) -> Self {
        let (rate, low, high) = match wilson(negative, traces) {
            Some((p, l, h)) => (Some(p), Some(l), Some(h)),
            None => (None, None, None),
        };
        Self {
            negative,
            traces,
            rate,
            low,
            high,
        }
    }
}

/// The difference treated − hold-out of negative-feedback rates: below zero, the lesson
/// reduces negative feedback; the interval excluding zero says the data shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Difference {
    pub difference: f64,
    pub low: f64,
    pub high: f64,
}

/// Newcombe's interval for `treated.rate − holdout.rate`; `None` when either has no traces.
pub fn difference(treated: &Rate, holdout: &Rate) -> Option<Difference> {
    let (p1, l1, u1) = wilson(treated.negative, treated.traces)?;
    let (p2, l2, u2) = wilson(holdout.negative, holdout.traces)?;
    let d = p1 - p2;
    Some(Difference {
        difference: d,
        low: d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        high: d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    })
}

/// The rate and its 95 % Wilson score interval (see [`feedloop_core::stats::wilson`]).
fn wilson(successes: u64, trials: u64) -> Option<(f64, f64, f64)> {
    feedloop_core::stats::wilson(successes, trials).map(|p| (p.rate, p.low, p.high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newcombe_matches_published_values() {
        // Newcombe (1998b), example (a): 56/70 − 48/80 → 0.0524 to 0.3339 (method 10).
        let d = difference(&Rate::new(56, 70), &Rate::new(48, 80)).unwrap();
        assert!((d.difference - 0.2).abs() < 1e-9);
        assert!((d.low - 0.0524).abs() < 1e-3 && (d.high - 0.3339).abs() < 1e-3);
        assert!(difference(&Rate::new(1, 2), &Rate::new(0, 0)).is_none());
    }

    #[test]
    fn the_holdout_takes_its_share_and_is_stable() {
        let held = (0..20_000)
            .filter(|i| in_holdout(7, &format!("session-{i}"), 0.1))
            .count();
        assert!((1_800..=2_200).contains(&held), "{held}");
        assert_eq!(in_holdout(7, "a", 0.5), in_holdout(7, "a", 0.5));
        assert!(!in_holdout(7, "a", 0.0));
        assert!(in_holdout(7, "a", 1.0));
    }
}
