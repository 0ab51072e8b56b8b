//! CLIP's causal text transformer.
//!
//! Canonical tensor names, under `text.`: `token_embedding.weight` `[vocab, width]`,
//! `positional_embedding` `[context, width]`, `blocks.{i}.…` (as in the image tower),
//! `ln_final`, `proj` (`[embed_dim, width]`, bias-free).

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::ClipTextConfig;
use super::transformer::{
    BlockShape, ResidualBlock, embedding, layer_norm, linear, parameter, tensor_from,
};
use crate::weights::{Weights, WeightsError};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TextInputError {
    #[error("no texts to encode")]
    Empty,
    #[error(
        "text {index} has {found} tokens; this model takes exactly {expected} (pad or truncate first)"
    )]
    Length {
        index: usize,
        expected: usize,
        found: usize,
    },
    #[error("text {index} holds token id {id}, outside this model's vocabulary of {vocab_size}")]
    OutOfVocabulary {
        index: usize,
        id: u32,
        vocab_size: usize,
    },
}

#[derive(Module, Debug)]
pub struct TextTransformer {
    pub token_embedding: Embedding,
    pub positional_embedding: Param<Tensor<2>>,
    pub blocks: Vec<ResidualBlock>,
    pub ln_final: LayerNorm,
    pub proj: Linear,
    pub context_length: usize,
    pub vocab_size: usize,
    pub eot_token_id: u32,
}

/// Validates a batch of token rows, all of one length, every id inside the vocabulary.
pub(crate) fn check_tokens(
    tokens: &[Vec<u32>],
    context_length: usize,
    vocab_size: usize,
) -> Result<(), TextInputError> {
    if tokens.is_empty() {
        return Err(TextInputError::Empty);
    }
    for (index, row) in tokens.iter().enumerate() {
        if row.len() != context_length {
            return Err(TextInputError::Length {
                index,
                expected: context_length,
                found: row.len(),
            });
        }
        if let Some(&id) = row.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(TextInputError::OutOfVocabulary {
                index,
                id,
                vocab_size,
            });
        }
    }
    Ok(())
}

pub(crate) fn token_tensor(tokens: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let (rows, cols) = (tokens.len(), tokens[0].len());
    let ids: Vec<i64> = tokens.iter().flatten().map(|&id| i64::from(id)).collect();
    Tensor::from_data(TensorData::new(ids, [rows, cols]), device)
}

/// Rows of one-hot weights that pick one token per text: `[batch, 1, tokens]`.
pub(crate) fn one_hot_rows(positions: &[usize], tokens: usize, device: &Device) -> Tensor<3> {
    let mut values = vec![0.0f32; positions.len() * tokens];
    for (row, &position) in positions.iter().enumerate() {
        values[row * tokens + position] = 1.0;
    }
    tensor_from(values, [positions.len(), 1, tokens], device)
}

impl TextTransformer {
    pub(crate) fn load(
        weights: &mut Weights,
        config: &ClipTextConfig,
        embed_dim: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let shape = BlockShape {
            width: config.width,
            heads: config.heads,
            mlp_width: config.mlp_width,
            activation: config.activation,
            layer_norm_eps: config.layer_norm_eps,
        };
        Ok(Self {
            token_embedding: embedding(
                weights,
                "text.token_embedding",
                config.vocab_size,
                config.width,
                device,
            )?,
            positional_embedding: parameter(
                weights,
                "text.positional_embedding",
                [config.context_length, config.width],
                device,
            )?,
            blocks: (0..config.layers)
                .map(|index| {
                    ResidualBlock::load(weights, &format!("text.blocks.{index}"), shape, device)
                })
                .collect::<Result<_, _>>()?,
            ln_final: layer_norm(
                weights,
                "text.ln_final",
                config.width,
                config.layer_norm_eps,
                device,
            )?,
            proj: linear(weights, "text.proj", config.width, embed_dim, false, device)?,
            context_length: config.context_length,
            vocab_size: config.vocab_size,
            eot_token_id: config.eot_token_id,
        })
    }

    /// Where each text is pooled: its first end-of-text token, else (a row cut without one) the
    /// highest id, which is what open_clip's `argmax` pooling picks.
    fn pool_positions(&self, tokens: &[Vec<u32>]) -> Vec<usize> {
        tokens
            .iter()
            .map(|row| {
                row.iter()
                    .position(|&id| id == self.eot_token_id)
                    .unwrap_or_else(|| {
                        let max = row.iter().copied().max().unwrap_or(0);
                        row.iter().position(|&id| id == max).unwrap_or(0)
                    })
            })
            .collect()
    }

    /// Text embeddings `[batch, embed_dim]` (not normalised) for rows of exactly
    /// `context_length` token ids.
    pub fn forward(&self, tokens: &[Vec<u32>]) -> Result<Tensor<2>, TextInputError> {
        Ok(self.forward_embedded(self.embed_tokens(tokens)?))
    }

    /// The token embeddings of checked rows, cut after the last pooled position: causal
    /// attention means the pooled token never sees what follows it, so the padding after it is
    /// not computed at all (same result, a fraction of the work).
    pub fn embed_tokens(&self, tokens: &[Vec<u32>]) -> Result<TokenEmbeddings, TextInputError> {
        check_tokens(tokens, self.context_length, self.vocab_size)?;
        let device = self.positional_embedding.val().device();
        let positions = self.pool_positions(tokens);
        let length = positions.iter().max().map_or(1, |&last| last + 1);
        let used: Vec<Vec<u32>> = tokens.iter().map(|row| row[..length].to_vec()).collect();
        Ok(TokenEmbeddings {
            words: self.token_embedding.forward(token_tensor(&used, &device)),
            tokens: used,
        })
    }

    /// The rest of the tower from token embeddings (which CoOp edits before this).
    pub fn forward_embedded(&self, embedded: TokenEmbeddings) -> Tensor<2> {
        let TokenEmbeddings { words, tokens } = embedded;
        let device = words.device();
        let positions = self.pool_positions(&tokens);
        let length = words.dims()[1];
        let mut x = words
            + self
                .positional_embedding
                .val()
                .narrow(0, 0, length)
                .unsqueeze_dim::<3>(0);
        let causal = causal_mask(length, &device);
        for block in &self.blocks {
            x = block.forward(x, Some(causal.clone()));
        }
        let x = self.ln_final.forward(x);
        let width = x.dims()[2];
        let pooled = one_hot_rows(&positions, length, &device).matmul(x);
        self.proj.forward(pooled.reshape([tokens.len(), width]))
    }
}

/// Token embeddings `[batch, length, width]` with the token rows they came from (cut to
/// `length`), between a text tower's embedding table and its transformer.
#[derive(Clone, Debug)]
pub struct TokenEmbeddings {
    pub words: Tensor<3>,
    pub tokens: Vec<Vec<u32>>,
}

/// `[1, 1, n, n]`: 0 on and below the diagonal, −∞ above (a token sees only what precedes it).
pub(crate) fn causal_mask(n: usize, device: &Device) -> Tensor<4> {
    let values = (0..n * n)
        .map(|index| {
            if index % n > index / n {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    tensor_from(values, [1, 1, n, n], device)
}
