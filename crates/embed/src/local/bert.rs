//! The BERT encoder of all-MiniLM-L6-v2, run on packed batches: the tokens of all sequences one
//! after the other, no padding. Tensors are candle's; matrix products (gemm, on the worker's
//! threads) and everything else run as the custom ops of `kernels.rs`. Output: the mean of each sequence's token states (mean pooling
//! with sentence-transformers' semantics, since a packed sequence has no padding to mask).
//!
//! Why not `candle_transformers::models::bert::BertModel`: it pads every batch to its longest
//! sequence, runs a dozen unfused element-wise passes per layer and a scalar erf, which measured
//! 0.5–0.8× PyTorch once batched. The maths here are the same (checked against
//! sentence-transformers by `tests/integration/minilm.rs`).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::kernels::{BiasGelu, BiasResidualLayerNorm, MatMul, PackedAttention, layer_norm_row};
use crate::EmbedError;

/// The fields of `config.json` the encoder uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

struct Layer {
    /// `(hidden, 3 * hidden)`: query, key and value projections side by side.
    qkv_weight: Tensor,
    qkv_bias: Vec<f32>,
    attention_output_weight: Tensor,
    attention_output_bias: Vec<f32>,
    attention_norm_gamma: Vec<f32>,
    attention_norm_beta: Vec<f32>,
    intermediate_weight: Tensor,
    intermediate_bias: Vec<f32>,
    output_weight: Tensor,
    output_bias: Vec<f32>,
    output_norm_gamma: Vec<f32>,
    output_norm_beta: Vec<f32>,
}

/// The loaded encoder.
pub(crate) struct Bert {
    config: BertConfig,
    word_embeddings: Vec<f32>,
    position_embeddings: Vec<f32>,
    /// Row 0 of the token type embeddings: every token is of type 0.
    token_type_embedding: Vec<f32>,
    embedding_norm_gamma: Vec<f32>,
    embedding_norm_beta: Vec<f32>,
    layers: Vec<Layer>,
}

struct Weights<'a> {
    tensors: HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor, EmbedError> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| EmbedError::invalid_model(self.path, format!("no tensor {name}")))?;
        if tensor.dims() != shape {
            return Err(EmbedError::invalid_model(
                self.path,
                format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    tensor.dims()
                ),
            ));
        }
        tensor
            .to_dtype(DType::F32)
            .map_err(|err| EmbedError::invalid_model(self.path, err))
    }

    fn vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        self.tensor(name, shape)?
            .flatten_all()
            .and_then(|tensor| tensor.to_vec1::<f32>())
            .map_err(|err| EmbedError::invalid_model(self.path, err))
    }

    /// A linear layer's `(out, in)` weight as the `(in, out)` right-hand side of a product.
    fn rhs(&self, name: &str, out: usize, input: usize) -> Result<Tensor, EmbedError> {
        self.tensor(name, &[out, input])?
            .t()
            .and_then(|tensor| tensor.contiguous())
            .map_err(|err| EmbedError::invalid_model(self.path, err))
    }
}

impl Bert {
    /// Loads `config.json` and `model.safetensors` from `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let config_text = std::fs::read_to_string(&config_path)
            .map_err(|err| EmbedError::io("cannot read", &config_path, err))?;
        let config: BertConfig = serde_json::from_str(&config_text)
            .map_err(|err| EmbedError::invalid_model(&config_path, err))?;
        if config.hidden_act != "gelu"
            || config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(EmbedError::invalid_model(
                &config_path,
                "not a BERT encoder with gelu activation and whole attention heads",
            ));
        }

        let weights_path = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu)
            .map_err(|err| EmbedError::invalid_model(&weights_path, err))?;
        // Some exports prefix every name with `bert.`.
        let tensors = tensors
            .into_iter()
            .map(|(name, tensor)| {
                (
                    name.strip_prefix("bert.")
                        .map(str::to_owned)
                        .unwrap_or(name),
                    tensor,
                )
            })
            .collect();
        let weights = Weights {
            tensors,
            path: &weights_path,
        };

        let hidden = config.hidden_size;
        let inter = config.intermediate_size;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let name = |suffix: &str| format!("encoder.layer.{index}.{suffix}");
            let qkv_weight = Tensor::cat(
                &[
                    weights.rhs(&name("attention.self.query.weight"), hidden, hidden)?,
                    weights.rhs(&name("attention.self.key.weight"), hidden, hidden)?,
                    weights.rhs(&name("attention.self.value.weight"), hidden, hidden)?,
                ],
                1,
            )
            .and_then(|tensor| tensor.contiguous())
            .map_err(|err| EmbedError::invalid_model(&weights_path, err))?;
            let mut qkv_bias = weights.vec(&name("attention.self.query.bias"), &[hidden])?;
            qkv_bias.extend(weights.vec(&name("attention.self.key.bias"), &[hidden])?);
            qkv_bias.extend(weights.vec(&name("attention.self.value.bias"), &[hidden])?);
            layers.push(Layer {
                qkv_weight,
                qkv_bias,
                attention_output_weight: weights.rhs(
                    &name("attention.output.dense.weight"),
                    hidden,
                    hidden,
                )?,
                attention_output_bias: weights
                    .vec(&name("attention.output.dense.bias"), &[hidden])?,
                attention_norm_gamma: weights
                    .vec(&name("attention.output.LayerNorm.weight"), &[hidden])?,
                attention_norm_beta: weights
                    .vec(&name("attention.output.LayerNorm.bias"), &[hidden])?,
                intermediate_weight: weights.rhs(
                    &name("intermediate.dense.weight"),
                    inter,
                    hidden,
                )?,
                intermediate_bias: weights.vec(&name("intermediate.dense.bias"), &[inter])?,
                output_weight: weights.rhs(&name("output.dense.weight"), hidden, inter)?,
                output_bias: weights.vec(&name("output.dense.bias"), &[hidden])?,
                output_norm_gamma: weights.vec(&name("output.LayerNorm.weight"), &[hidden])?,
                output_norm_beta: weights.vec(&name("output.LayerNorm.bias"), &[hidden])?,
            });
        }
        let token_types = weights.vec("embeddings.token_type_embeddings.weight", &[2, hidden]);
        let token_types = match token_types {
            Ok(values) => values,
            // A model with a single token type.
            Err(_) => weights.vec("embeddings.token_type_embeddings.weight", &[1, hidden])?,
        };
        Ok(Bert {
            word_embeddings: weights.vec(
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, hidden],
            )?,
            position_embeddings: weights.vec(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, hidden],
            )?,
            token_type_embedding: token_types[..hidden].to_vec(),
            embedding_norm_gamma: weights.vec("embeddings.LayerNorm.weight", &[hidden])?,
            embedding_norm_beta: weights.vec("embeddings.LayerNorm.bias", &[hidden])?,
            layers,
            config,
        })
    }

    pub(crate) fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    pub(crate) fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// The mean-pooled (not yet normalised) vector of each sequence of token ids. Every sequence
    /// must be non-empty, no longer than the position table, with ids inside the vocabulary.
    pub(crate) fn forward(&self, sequences: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let hidden = self.config.hidden_size;
        let eps = self.config.layer_norm_eps as f32;
        let mut offsets = Vec::with_capacity(sequences.len() + 1);
        offsets.push(0usize);
        for sequence in sequences {
            if sequence.is_empty() || sequence.len() > self.config.max_position_embeddings {
                candle_core::bail!("sequence of {} tokens", sequence.len());
            }
            offsets.push(offsets[offsets.len() - 1] + sequence.len());
        }
        let num_tokens = offsets[offsets.len() - 1];

        // Embeddings: word + position + token type 0, then layer norm.
        let mut embedded = vec![0f32; num_tokens * hidden];
        let mut rows = embedded.chunks_exact_mut(hidden);
        for sequence in sequences {
            for (position, &id) in sequence.iter().enumerate() {
                let id = id as usize;
                if id >= self.config.vocab_size {
                    candle_core::bail!("token id {id} outside the vocabulary");
                }
                let Some(row) = rows.next() else {
                    candle_core::bail!("more tokens than counted");
                };
                let word = &self.word_embeddings[id * hidden..(id + 1) * hidden];
                let pos = &self.position_embeddings[position * hidden..(position + 1) * hidden];
                for (((x, w), p), t) in row
                    .iter_mut()
                    .zip(word)
                    .zip(pos)
                    .zip(&self.token_type_embedding)
                {
                    *x = w + p + t;
                }
                layer_norm_row(
                    row,
                    &self.embedding_norm_gamma,
                    &self.embedding_norm_beta,
                    eps,
                );
            }
        }
        let mut states = Tensor::from_vec(embedded, (num_tokens, hidden), &Device::Cpu)?;

        let num_heads = self.config.num_attention_heads;
        for layer in &self.layers {
            let qkv = states.apply_op2_no_bwd(&layer.qkv_weight, &MatMul)?;
            let context = qkv.apply_op1_no_bwd(&PackedAttention {
                qkv_bias: &layer.qkv_bias,
                offsets: &offsets,
                num_heads,
                head_dim: hidden / num_heads,
            })?;
            drop(qkv);
            let attended = context.apply_op2_no_bwd(&layer.attention_output_weight, &MatMul)?;
            attended.inplace_op2(
                &states,
                &BiasResidualLayerNorm {
                    bias: &layer.attention_output_bias,
                    gamma: &layer.attention_norm_gamma,
                    beta: &layer.attention_norm_beta,
                    eps,
                },
            )?;
            let intermediate = attended.apply_op2_no_bwd(&layer.intermediate_weight, &MatMul)?;
            intermediate.inplace_op1(&BiasGelu {
                bias: &layer.intermediate_bias,
            })?;
            let output = intermediate.apply_op2_no_bwd(&layer.output_weight, &MatMul)?;
            output.inplace_op2(
                &attended,
                &BiasResidualLayerNorm {
                    bias: &layer.output_bias,
                    gamma: &layer.output_norm_gamma,
                    beta: &layer.output_norm_beta,
                    eps,
                },
            )?;
            states = output;
        }

        let states = states.flatten_all()?.to_vec1::<f32>()?;
        Ok(offsets
            .windows(2)
            .map(|window| {
                let mut mean = vec![0f32; hidden];
                for row in states[window[0] * hidden..window[1] * hidden].chunks_exact(hidden) {
                    for (m, x) in mean.iter_mut().zip(row) {
                        *m += x;
                    }
                }
                let count = (window[1] - window[0]) as f32;
                mean.iter_mut().for_each(|m| *m /= count);
                mean
            })
            .collect())
    }
}
