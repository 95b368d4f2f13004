//! The fused CPU kernels of the BERT forward pass, as candle custom ops on packed batches.
//!
//! A packed batch is a `(num_tokens, width)` matrix holding the tokens of every sequence one after
//! the other, with no padding; `offsets` (length `num_sequences + 1`) says where each sequence
//! starts. Only attention needs to know the sequences; every other step works row by row.
//!
//! Why not candle's own ops: each of them makes a full pass over memory and allocates its result,
//! and its erf-GELU is scalar. Here bias, activation, residual and layer norm run in one pass, in
//! place, on rayon (the worker's own pool), and attention runs per sequence and head on exactly
//! the sequence's tokens.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, InplaceOp1, InplaceOp2, Layout, Result, Shape, bail,
};
use rayon::prelude::*;

/// Rows handed to one rayon task in the row-wise kernels.
const ROWS_PER_TASK: usize = 8;

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: expected f32 storage")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: expected a contiguous tensor"),
    }
}

fn contiguous_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: expected f32 storage")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => bail!("{op}: expected a contiguous tensor"),
    }
}

/// `(m, k) × (k, n)` through gemm on the current rayon pool's threads.
///
/// candle's own matmul picks its parallelism from `RAYON_NUM_THREADS` (or the number of cores),
/// not from the pool it runs in, so with one inference thread it still splits every product in
/// two; this one honours the embedder's thread setting (10 % faster at batch 1 on one thread).
pub(crate) struct MatMul;

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn cpu_fwd(
        &self,
        lhs: &CpuStorage,
        lhs_layout: &Layout,
        rhs: &CpuStorage,
        rhs_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k) = lhs_layout.shape().dims2()?;
        let (rhs_k, n) = rhs_layout.shape().dims2()?;
        if k != rhs_k {
            bail!("matmul: ({m}, {k}) × ({rhs_k}, {n})");
        }
        let lhs = contiguous(lhs, lhs_layout, self.name())?;
        let rhs = contiguous(rhs, rhs_layout, self.name())?;
        let mut dst = vec![0f32; m * n];
        let threads = rayon::current_num_threads();
        let parallelism = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: all three matrices are row-major and contiguous with the shapes checked above
        // (`lhs` m×k, `rhs` k×n, `dst` m×n), so every pointer/stride pair stays inside its slice;
        // `dst` does not alias the inputs; with `read_dst = false` gemm only writes `dst`.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.as_ptr(),
                1,
                k as isize,
                rhs.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        Ok((CpuStorage::F32(dst), Shape::from((m, n))))
    }
}

/// `x ← gelu(x + bias)` row by row, with the exact (erf) GELU of BERT.
pub(crate) struct BiasGelu<'a> {
    pub bias: &'a [f32],
}

impl InplaceOp1 for BiasGelu<'_> {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let data = contiguous_mut(storage, layout, self.name())?;
        let width = self.bias.len();
        if !data.len().is_multiple_of(width) {
            bail!("bias-gelu: {} values for rows of {width}", data.len());
        }
        data.par_chunks_mut(width * ROWS_PER_TASK).for_each(|rows| {
            for row in rows.chunks_exact_mut(width) {
                for (x, b) in row.iter_mut().zip(self.bias) {
                    *x = gelu_erf(*x + b);
                }
            }
        });
        Ok(())
    }
}

/// `x ← layer_norm(x + bias + residual) * gamma + beta` row by row.
pub(crate) struct BiasResidualLayerNorm<'a> {
    pub bias: &'a [f32],
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

impl InplaceOp2 for BiasResidualLayerNorm<'_> {
    fn name(&self) -> &'static str {
        "bias-residual-layer-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &mut CpuStorage,
        layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> Result<()> {
        let residual = contiguous(residual, residual_layout, self.name())?;
        let data = contiguous_mut(storage, layout, self.name())?;
        let width = self.bias.len();
        if !data.len().is_multiple_of(width) || residual.len() != data.len() {
            bail!(
                "bias-residual-layer-norm: {} and {} values for rows of {width}",
                data.len(),
                residual.len()
            );
        }
        data.par_chunks_mut(width * ROWS_PER_TASK)
            .zip(residual.par_chunks(width * ROWS_PER_TASK))
            .for_each(|(rows, residual_rows)| {
                for (row, residual_row) in rows
                    .chunks_exact_mut(width)
                    .zip(residual_rows.chunks_exact(width))
                {
                    for ((x, b), r) in row.iter_mut().zip(self.bias).zip(residual_row) {
                        *x += b + r;
                    }
                    layer_norm_row(row, self.gamma, self.beta, self.eps);
                }
            });
        Ok(())
    }
}

/// Normalises one row in place: mean 0, variance 1 (two passes, for accuracy), then scale and
/// shift.
pub(crate) fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let variance = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    let scale = 1.0 / (variance + eps).sqrt();
    for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *x = (*x - mean) * scale * g + b;
    }
}

/// Multi-head self-attention over a packed `(num_tokens, 3 * hidden)` matrix of query, key and
/// value projections (biases not yet added), each sequence attending only to its own tokens.
/// Produces the `(num_tokens, hidden)` context.
pub(crate) struct PackedAttention<'a> {
    pub qkv_bias: &'a [f32],
    pub offsets: &'a [usize],
    pub num_heads: usize,
    pub head_dim: usize,
}

impl CustomOp1 for PackedAttention<'_> {
    fn name(&self) -> &'static str {
        "packed-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = contiguous(storage, layout, self.name())?;
        let hidden = self.num_heads * self.head_dim;
        let num_tokens = self.offsets.last().copied().unwrap_or(0);
        if qkv.len() != num_tokens * 3 * hidden || self.qkv_bias.len() != 3 * hidden {
            bail!(
                "packed-attention: {} values for {num_tokens} tokens of width {}",
                qkv.len(),
                3 * hidden
            );
        }
        let tasks: Vec<(usize, usize)> = (0..self.offsets.len().saturating_sub(1))
            .flat_map(|sequence| (0..self.num_heads).map(move |head| (sequence, head)))
            .collect();
        // Each task returns its head's context rows; they are scattered into place afterwards,
        // which keeps the parallel part free of shared writes.
        let contexts: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(sequence, head)| {
                let start = self.offsets[sequence];
                let end = self.offsets[sequence + 1];
                self.attend(qkv, start, end, head)
            })
            .collect();
        let mut out = vec![0f32; num_tokens * hidden];
        for (&(sequence, head), context) in tasks.iter().zip(&contexts) {
            let start = self.offsets[sequence];
            for (i, row) in context.chunks_exact(self.head_dim).enumerate() {
                let at = (start + i) * hidden + head * self.head_dim;
                out[at..at + self.head_dim].copy_from_slice(row);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((num_tokens, hidden))))
    }
}

impl PackedAttention<'_> {
    /// Attention of one head over tokens `start..end`: `(end - start, head_dim)` context rows.
    fn attend(&self, qkv: &[f32], start: usize, end: usize, head: usize) -> Vec<f32> {
        let len = end - start;
        let dim = self.head_dim;
        let hidden = self.num_heads * dim;
        let width = 3 * hidden;
        let scale = 1.0 / (dim as f32).sqrt();
        let q_at = head * dim;
        let k_at = hidden + head * dim;
        let v_at = 2 * hidden + head * dim;

        // Gather this head's queries (scaled), keys (transposed, so a score row is a sum of
        // contiguous axpys) and values, biases added.
        let mut queries = vec![0f32; len * dim];
        let mut keys_t = vec![0f32; dim * len];
        let mut values = vec![0f32; len * dim];
        for t in 0..len {
            let row = &qkv[(start + t) * width..(start + t + 1) * width];
            for d in 0..dim {
                queries[t * dim + d] = (row[q_at + d] + self.qkv_bias[q_at + d]) * scale;
                keys_t[d * len + t] = row[k_at + d] + self.qkv_bias[k_at + d];
                values[t * dim + d] = row[v_at + d] + self.qkv_bias[v_at + d];
            }
        }

        let mut context = vec![0f32; len * dim];
        let mut scores = vec![0f32; len];
        for i in 0..len {
            scores.fill(0.0);
            let query = &queries[i * dim..(i + 1) * dim];
            for (d, q) in query.iter().enumerate() {
                let key_row = &keys_t[d * len..(d + 1) * len];
                for (s, k) in scores.iter_mut().zip(key_row) {
                    *s += q * k;
                }
            }
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let norm = 1.0 / sum;
            let out = &mut context[i * dim..(i + 1) * dim];
            for (j, p) in scores.iter().enumerate() {
                let p = p * norm;
                for (o, v) in out.iter_mut().zip(&values[j * dim..(j + 1) * dim]) {
                    *o += p * v;
                }
            }
        }
        context
    }
}

/// The exact GELU, `x/2 · (1 + erf(x/√2))`.
#[inline(always)]
pub(crate) fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf in f32 as a rational polynomial (the approximation of Eigen and XLA): max absolute error
/// about 4e-7 on the whole line, branch-free, so loops over it vectorise. Beyond ±4, erf is ±1
/// in f32.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2.mul_add(-2.726_142_3e-10, 2.770_681_4e-8);
    p = x2.mul_add(p, -2.101_024e-6);
    p = x2.mul_add(p, -5.692_506_4e-5);
    p = x2.mul_add(p, -7.349_906_3e-4);
    p = x2.mul_add(p, -2.954_6e-3);
    p = x2.mul_add(p, -1.609_603_3e-2);
    p *= x;
    let mut q = x2.mul_add(-1.456_607_2e-5, -2.133_740_6e-4);
    q = x2.mul_add(q, -1.682_827e-3);
    q = x2.mul_add(q, -7.373_329e-3);
    q = x2.mul_add(q, -1.426_474e-2);
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn erf_matches_known_values() {
        // erf values to 7 decimals.
        for (x, expected) in [
            (0.0, 0.0),
            (0.1, 0.112_462_9),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (-1.5, -0.966_105_1),
            (2.5, 0.999_593),
            (7.0, 1.0),
        ] {
            assert!((erf(x) - expected).abs() < 1e-6, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn matmul_equals_candle_matmul() {
        let lhs: Vec<f32> = (0..5 * 7).map(|i| (i % 11) as f32 - 5.0).collect();
        let rhs: Vec<f32> = (0..7 * 3).map(|i| (i % 5) as f32 * 0.5).collect();
        let lhs = Tensor::from_vec(lhs, (5, 7), &Device::Cpu).unwrap();
        let rhs = Tensor::from_vec(rhs, (7, 3), &Device::Cpu).unwrap();
        let ours = lhs.apply_op2_no_bwd(&rhs, &MatMul).unwrap();
        let theirs = lhs.matmul(&rhs).unwrap();
        let difference = (ours - theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(difference < 1e-5, "{difference}");
    }

    #[test]
    fn layer_norm_row_normalises() {
        let mut row = vec![1.0, 2.0, 3.0, 4.0];
        layer_norm_row(&mut row, &[1.0; 4], &[0.5; 4], 1e-12);
        let mean: f32 = row.iter().sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6);
        assert!((row[3] - row[0] - 2.0 * 1.5 / 1.118_034).abs() < 1e-5);
    }

    /// Attention computed the plain way, one sequence at a time.
    fn naive_attention(qkv: &[f32], len: usize, heads: usize, dim: usize) -> Vec<f32> {
        let hidden = heads * dim;
        let mut out = vec![0f32; len * hidden];
        for h in 0..heads {
            for i in 0..len {
                let q = |d: usize| qkv[i * 3 * hidden + h * dim + d];
                let scores: Vec<f32> = (0..len)
                    .map(|j| {
                        (0..dim)
                            .map(|d| q(d) * qkv[j * 3 * hidden + hidden + h * dim + d])
                            .sum::<f32>()
                            / (dim as f32).sqrt()
                    })
                    .collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                for d in 0..dim {
                    out[i * hidden + h * dim + d] = (0..len)
                        .map(|j| exps[j] / sum * qkv[j * 3 * hidden + 2 * hidden + h * dim + d])
                        .sum();
                }
            }
        }
        out
    }

    #[test]
    fn packed_attention_equals_attention_per_sequence() {
        let (heads, dim) = (2, 4);
        let hidden = heads * dim;
        let lengths = [3usize, 1, 5];
        let total: usize = lengths.iter().sum();
        let qkv: Vec<f32> = (0..total * 3 * hidden)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let offsets = [0, 3, 4, 9];
        let tensor = Tensor::from_vec(qkv.clone(), (total, 3 * hidden), &Device::Cpu).unwrap();
        let bias = vec![0f32; 3 * hidden];
        let out = tensor
            .apply_op1_no_bwd(&PackedAttention {
                qkv_bias: &bias,
                offsets: &offsets,
                num_heads: heads,
                head_dim: dim,
            })
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (s, &len) in lengths.iter().enumerate() {
            let start = offsets[s];
            let expected = naive_attention(
                &qkv[start * 3 * hidden..(start + len) * 3 * hidden],
                len,
                heads,
                dim,
            );
            let actual = &out[start * hidden..(start + len) * hidden];
            for (a, e) in actual.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-5, "sequence {s}: {a} vs {e}");
            }
        }
    }
}
