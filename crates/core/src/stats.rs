//! Small statistics shared by every part that reports a rate: the Wilson score interval of a
//! proportion, the two-proportion z-test, the standard normal distribution, and UTC time
//! buckets. Pure functions: callers pass counts and times.

use serde::{Deserialize, Serialize};

/// z for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A proportion with its 95 % Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proportion {
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// The rate `successes / trials` and its 95 % Wilson score interval: sound for small counts and
/// rates near 0 or 1, where the textbook normal interval is not. `None` without trials.
pub fn wilson(successes: u64, trials: u64) -> Option<Proportion> {
    if trials == 0 {
        return None;
    }
    let n = trials as f64;
    let p = successes.min(trials) as f64 / n;
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    Some(Proportion {
        rate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    })
}

/// The pooled two-proportion z-test of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ZTest {
    /// Positive when `b`'s rate is the higher one.
    pub z: f64,
    /// Two-sided p-value: the chance of a difference at least this large in either direction if
    /// both rates were the same.
    pub p_value: f64,
}

/// Tests whether `successes_b / trials_b` differs from `successes_a / trials_a` (pooled
/// standard error). `None` when a side has no trials. When both rates are 0 or both are 1 there
/// is no variance and no evidence of a difference: z = 0, p = 1.
pub fn two_proportion_z_test(
    successes_a: u64,
    trials_a: u64,
    successes_b: u64,
    trials_b: u64,
) -> Option<ZTest> {
    if trials_a == 0 || trials_b == 0 {
        return None;
    }
    let (n_a, n_b) = (trials_a as f64, trials_b as f64);
    let p_a = successes_a.min(trials_a) as f64 / n_a;
    let p_b = successes_b.min(trials_b) as f64 / n_b;
    let pooled = (successes_a.min(trials_a) + successes_b.min(trials_b)) as f64 / (n_a + n_b);
    let variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b);
    if variance <= 0.0 {
        return Some(ZTest {
            z: 0.0,
            p_value: 1.0,
        });
    }
    let z = (p_b - p_a) / variance.sqrt();
    Some(ZTest {
        z,
        p_value: (2.0 * normal_upper_tail(z.abs())).min(1.0),
    })
}

/// P(Z > z) for a standard normal Z.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the Chebyshev fit of Numerical Recipes (`erfcc`):
/// fractional error below 1.2e-7 everywhere, plenty for p-values.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 { value } else { 2.0 - value }
}

/// The width of a time bucket. Buckets are UTC; weeks start on Monday (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Hour,
    Day,
    Week,
}

const MICROS_PER_HOUR: i64 = 3_600_000_000;

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Hour, Self::Day, Self::Week]
            .into_iter()
            .find(|bucket| bucket.as_str() == s)
    }

    /// The bucket's length in microseconds.
    pub fn width_micros(self) -> i64 {
        match self {
            Self::Hour => MICROS_PER_HOUR,
            Self::Day => 24 * MICROS_PER_HOUR,
            Self::Week => 7 * 24 * MICROS_PER_HOUR,
        }
    }

    /// Where bucket boundaries fall, as an offset from the Unix epoch: 0 for hours and days;
    /// for weeks four days, since 1970-01-01 was a Thursday and 1970-01-05 a Monday.
    pub fn offset_micros(self) -> i64 {
        match self {
            Self::Hour | Self::Day => 0,
            Self::Week => 4 * 24 * MICROS_PER_HOUR,
        }
    }

    /// The start of the bucket that holds `micros` (microseconds since the epoch). The store
    /// computes the same expression in SQL; both floor, also before the epoch.
    pub fn start_of(self, micros: i64) -> i64 {
        let (width, offset) = (self.width_micros(), self.offset_micros());
        (micros - offset).div_euclid(width) * width + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), table I: 81/263 → 0.2553 to 0.3662.
        let interval = wilson(81, 263).unwrap();
        assert!((interval.rate - 0.30798).abs() < 1e-4);
        assert!((interval.low - 0.2553).abs() < 1e-4 && (interval.high - 0.3662).abs() < 1e-4);
        let interval = wilson(0, 10).unwrap();
        assert_eq!(interval.low, 0.0);
        assert!((interval.high - 0.2775).abs() < 1e-4);
        assert!(wilson(0, 0).is_none());
    }

    #[test]
    fn normal_tail_matches_tables() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper_tail(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_upper_tail(-1.0) - 0.841_344_75).abs() < 1e-6);
        assert!((normal_upper_tail(3.0) - 0.001_349_898).abs() < 1e-7);
    }

    #[test]
    fn z_test_matches_a_hand_computation() {
        // 10/100 against 20/100: pooled 0.15, se = sqrt(0.15 × 0.85 × 0.02) = 0.050498,
        // z = 0.1 / 0.050498 = 1.98030, two-sided p = 0.04767.
        let test = two_proportion_z_test(10, 100, 20, 100).unwrap();
        assert!((test.z - 1.980_295).abs() < 1e-5, "{test:?}");
        assert!((test.p_value - 0.047_67).abs() < 1e-4, "{test:?}");
        let reversed = two_proportion_z_test(20, 100, 10, 100).unwrap();
        assert!((reversed.z + test.z).abs() < 1e-12);
        assert_eq!(
            two_proportion_z_test(0, 50, 0, 80),
            Some(ZTest {
                z: 0.0,
                p_value: 1.0
            })
        );
        assert!(two_proportion_z_test(1, 0, 1, 2).is_none());
    }

    #[test]
    fn buckets_floor_to_utc_hours_days_and_monday_weeks() {
        // 2026-01-01T13:45:00Z is a Thursday.
        let thursday = 1_767_275_100 * 1_000_000;
        assert_eq!(Bucket::Hour.start_of(thursday), 1_767_272_400 * 1_000_000);
        assert_eq!(Bucket::Day.start_of(thursday), 1_767_225_600 * 1_000_000);
        // The Monday before: 2025-12-29T00:00:00Z.
        assert_eq!(Bucket::Week.start_of(thursday), 1_766_966_400 * 1_000_000);
        let monday = 1_766_966_400 * 1_000_000;
        assert_eq!(Bucket::Week.start_of(monday), monday);
        assert_eq!(
            Bucket::Week.start_of(monday - 1),
            monday - 7 * 86_400_000_000
        );
        assert_eq!(Bucket::parse("day"), Some(Bucket::Day));
        assert_eq!(Bucket::parse("month"), None);
    }
}
