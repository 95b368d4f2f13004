//! i8 vectors: how unit vectors are quantised, and the dot products that list scans and list
//! assignment run on them.
//!
//! A unit vector is scaled so that its largest component is ±127 and rounded; the factor that
//! undoes the scaling (`largest / 127`) is kept beside it, so `dot_i8(a, b) × factor_a ×
//! factor_b` estimates the f32 dot product. On 384-d embeddings the estimate is off by about
//! 0.001, far below the gaps that separate a query's neighbours from the rest; what it does
//! reorder (near ties) the f32 re-rank puts back.

/// Quantises the unit vector `vector` onto the end of `out`; returns the factor that turns its
/// i8 dot products back into f32 ones (0 for an all-zero vector).
pub(crate) fn quantise_into(vector: &[f32], out: &mut Vec<i8>) -> f32 {
    let largest = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if largest <= 0.0 {
        out.extend(std::iter::repeat_n(0, vector.len()));
        return 0.0;
    }
    let scale = 127.0 / largest;
    out.extend(
        vector
            .iter()
            .map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8),
    );
    largest / 127.0
}

/// The i8 forms of `rows` (unit vectors of one length), row-major, and their factors.
pub(crate) fn quantise_rows<'a>(rows: impl Iterator<Item = &'a [f32]>) -> (Vec<i8>, Vec<f32>) {
    let mut codes = Vec::new();
    let factors = rows.map(|row| quantise_into(row, &mut codes)).collect();
    (codes, factors)
}

/// The i8 form of `vector` and its factor (see [`quantise_into`]).
pub(crate) fn quantise(vector: &[f32]) -> (Vec<i8>, f32) {
    let mut out = Vec::with_capacity(vector.len());
    let factor = quantise_into(vector, &mut out);
    (out, factor)
}

/// Replaces `out` with the dot products of `query` and each `query.len()`-long row of `rows`.
///
/// The loop is plain Rust that the compiler vectorises (sign-extend to i16, multiply-add pairs
/// into i32); on x86-64 it is compiled a second time for AVX2 and that copy is used when the
/// CPU has it (twice the width of the SSE2 baseline).
pub(crate) fn dots(query: &[i8], rows: &[i8], out: &mut Vec<i32>) {
    out.clear();
    if query.is_empty() {
        return;
    }
    out.reserve(rows.len() / query.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { dots_avx2(query, rows, out) };
        return;
    }
    dots_portable(query, rows, out);
}

/// The instruction set [`dots`] runs on here: "avx2" or "baseline".
pub(crate) fn acceleration() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return "avx2";
    }
    "baseline"
}

#[inline(always)]
fn dots_portable(query: &[i8], rows: &[i8], out: &mut Vec<i32>) {
    out.extend(rows.chunks_exact(query.len()).map(|row| dot(query, row)));
}

#[inline(always)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dots_avx2(query: &[i8], rows: &[i8], out: &mut Vec<i32>) {
    dots_portable(query, rows, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantise_fills_the_i8_range_and_keeps_direction() {
        let (codes, factor) = quantise(&[0.6, -0.8, 0.0, 0.004]);
        assert_eq!(codes, vec![95, -127, 0, 1]);
        assert!((factor - 0.8 / 127.0).abs() < 1e-9);
        assert_eq!(quantise(&[0.0, 0.0]), (vec![0, 0], 0.0));
    }

    #[test]
    fn dots_match_a_plain_loop_and_estimate_f32_dot_products() {
        let a: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..2 * 384).map(|i| (i as f32 * 0.11).cos()).collect();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let a: Vec<f32> = a.iter().map(|x| x / norm(&a)).collect();
        let rows: Vec<f32> = b
            .chunks(384)
            .flat_map(|row| row.iter().map(|x| x / norm(row)).collect::<Vec<_>>())
            .collect();
        let (qa, fa) = quantise(&a);
        let (codes, factors) = quantise_rows(rows.chunks(384));
        let mut out = vec![7];
        dots(&qa, &codes, &mut out);
        assert_eq!(out.len(), 2);
        for (i, row) in codes.chunks(384).enumerate() {
            let plain: i32 = qa
                .iter()
                .zip(row)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum();
            assert_eq!(out[i], plain);
            let exact: f32 = a.iter().zip(&rows[i * 384..]).map(|(x, y)| x * y).sum();
            let estimate = out[i] as f32 * fa * factors[i];
            assert!((estimate - exact).abs() < 0.01, "{estimate} vs {exact}");
        }
    }
}
