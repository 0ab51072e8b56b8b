//! A BERT encoder as CLIP text tower (BiomedCLIP's PubMedBERT through open_clip's
//! `HFTextEncoder`): post-norm blocks, padding mask, CLS pooling, then a projection.
//!
//! Canonical tensor names, under `text.`: `bert.embeddings.{word, position, token_type}.weight`,
//! `bert.embeddings.ln`, `bert.layers.{i}.{attn.in_proj, attn.out_proj, ln_attn, mlp.fc1,
//! mlp.fc2, ln_mlp}`, and `proj.weight` (linear) or `proj.fc1.weight`/`proj.fc2.weight` (MLP).

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Tensor};

use super::config::{Activation, BertTextConfig, TextProjection};
use super::text::{TextInputError, TokenEmbeddings, check_tokens, token_tensor};
use super::transformer::{Attention, Mlp, embedding, layer_norm, linear, parameter, tensor_from};
use crate::kernels::gelu;
use crate::weights::{Weights, WeightsError};

/// Added to the attention logits of padding keys; large enough that softmax gives them 0.
const PADDING_BIAS: f32 = -1.0e9;

#[derive(Module, Debug)]
pub struct BertLayer {
    pub attn: Attention,
    pub ln_attn: LayerNorm,
    pub mlp: Mlp,
    pub ln_mlp: LayerNorm,
}

impl BertLayer {
    fn forward(&self, x: Tensor<3>, padding: Tensor<4>) -> Tensor<3> {
        let x = self
            .ln_attn
            .forward(x.clone() + self.attn.forward(x, Some(padding)));
        self.ln_mlp.forward(x.clone() + self.mlp.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct BertTextTower {
    pub word_embeddings: Embedding,
    pub position_embeddings: Param<Tensor<2>>,
    /// Row 0 of the token-type table: every CLIP text is one segment.
    pub token_type_embedding: Param<Tensor<1>>,
    pub embeddings_ln: LayerNorm,
    pub layers: Vec<BertLayer>,
    /// Linear projection, or the first layer of the MLP projection.
    pub proj_in: Linear,
    /// Second layer of the MLP projection (GELU between).
    pub proj_out: Option<Linear>,
    pub context_length: usize,
    pub vocab_size: usize,
    pub pad_token_id: u32,
}

impl BertTextTower {
    /// Not split: one `take` per checkpoint tensor in the reference module's order, so it reads
    /// against the key map line by line.
    pub(crate) fn load(
        weights: &mut Weights,
        config: &BertTextConfig,
        embed_dim: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let hidden = config.hidden_size;
        let eps = config.layer_norm_eps;
        let token_types = weights.take(
            "text.bert.embeddings.token_type.weight",
            &[config.type_vocab_size, hidden],
        )?;
        let token_type = Tensor::<2>::from_data(token_types, device)
            .narrow(0, 0, 1)
            .reshape([hidden]);
        let layers = (0..config.layers)
            .map(|index| {
                let name = format!("text.bert.layers.{index}");
                Ok(BertLayer {
                    attn: Attention::load(
                        weights,
                        &format!("{name}.attn"),
                        hidden,
                        config.heads,
                        device,
                    )?,
                    ln_attn: layer_norm(weights, &format!("{name}.ln_attn"), hidden, eps, device)?,
                    mlp: Mlp::load(
                        weights,
                        &format!("{name}.mlp"),
                        hidden,
                        config.intermediate_size,
                        Activation::Gelu,
                        device,
                    )?,
                    ln_mlp: layer_norm(weights, &format!("{name}.ln_mlp"), hidden, eps, device)?,
                })
            })
            .collect::<Result<_, WeightsError>>()?;
        let (proj_in, proj_out) = match config.projection {
            TextProjection::Linear => (
                linear(weights, "text.proj", hidden, embed_dim, false, device)?,
                None,
            ),
            TextProjection::Mlp {
                hidden: proj_hidden,
            } => (
                linear(weights, "text.proj.fc1", hidden, proj_hidden, false, device)?,
                Some(linear(
                    weights,
                    "text.proj.fc2",
                    proj_hidden,
                    embed_dim,
                    false,
                    device,
                )?),
            ),
        };
        Ok(Self {
            word_embeddings: embedding(
                weights,
                "text.bert.embeddings.word",
                config.vocab_size,
                hidden,
                device,
            )?,
            position_embeddings: parameter(
                weights,
                "text.bert.embeddings.position.weight",
                [config.max_position_embeddings, hidden],
                device,
            )?,
            token_type_embedding: Param::from_tensor(token_type),
            embeddings_ln: layer_norm(weights, "text.bert.embeddings.ln", hidden, eps, device)?,
            layers,
            proj_in,
            proj_out,
            context_length: config.context_length,
            vocab_size: config.vocab_size,
            pad_token_id: config.pad_token_id,
        })
    }

    /// Text embeddings `[batch, embed_dim]` (not normalised) for rows of exactly
    /// `context_length` ids, `[PAD]`-padded.
    pub fn forward(&self, tokens: &[Vec<u32>]) -> Result<Tensor<2>, TextInputError> {
        Ok(self.forward_embedded(self.embed_tokens(tokens)?))
    }

    /// Word embeddings of checked rows, cut after the longest text: padding is masked out of
    /// every attention, so trailing padding changes nothing for the real tokens.
    pub fn embed_tokens(&self, tokens: &[Vec<u32>]) -> Result<TokenEmbeddings, TextInputError> {
        check_tokens(tokens, self.context_length, self.vocab_size)?;
        let device = self.token_type_embedding.val().device();
        let length = tokens
            .iter()
            .map(|row| {
                row.iter()
                    .rposition(|&id| id != self.pad_token_id)
                    .map_or(1, |last| last + 1)
            })
            .max()
            .unwrap_or(1);
        let used: Vec<Vec<u32>> = tokens.iter().map(|row| row[..length].to_vec()).collect();
        Ok(TokenEmbeddings {
            words: self.word_embeddings.forward(token_tensor(&used, &device)),
            tokens: used,
        })
    }

    /// The rest of the tower from word embeddings (which CoOp edits before this).
    pub fn forward_embedded(&self, embedded: TokenEmbeddings) -> Tensor<2> {
        let TokenEmbeddings { words, tokens } = embedded;
        let device = words.device();
        let tokens = tokens.as_slice();
        let batch = tokens.len();
        let length = words.dims()[1];
        let positions = self
            .position_embeddings
            .val()
            .narrow(0, 0, length)
            .unsqueeze_dim::<3>(0);
        let hidden = self.token_type_embedding.val().dims()[0];
        let token_type = self.token_type_embedding.val().reshape([1, 1, hidden]);
        let x = words + positions + token_type;
        let mut x = self.embeddings_ln.forward(x);
        let padding: Vec<f32> = tokens
            .iter()
            .flatten()
            .map(|&id| {
                if id == self.pad_token_id {
                    PADDING_BIAS
                } else {
                    0.0
                }
            })
            .collect();
        let padding = tensor_from(padding, [batch, 1, 1, length], &device);
        for layer in &self.layers {
            x = layer.forward(x, padding.clone());
        }
        let width = x.dims()[2];
        let cls = x.narrow(1, 0, 1).reshape([batch, width]);
        let projected = self.proj_in.forward(cls);
        match &self.proj_out {
            Some(out) => out.forward(gelu(projected)),
            None => projected,
        }
    }
}
