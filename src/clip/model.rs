//! A whole CLIP: both towers and the learnt temperature.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::bert::BertTextTower;
use super::config::{ClipConfig, TextConfig};
use super::text::{TextInputError, TextTransformer, TokenEmbeddings};
use super::vision::{LayerBias, VisionInputError, VisionTransformer};
use crate::weights::{Weights, WeightsError};

#[derive(Debug)]
pub enum TextTower {
    Clip(TextTransformer),
    Bert(BertTextTower),
}

impl TextTower {
    /// Token embeddings of tokenizer rows, before the transformer (CoOp edits them).
    pub fn embed_tokens(&self, tokens: &[Vec<u32>]) -> Result<TokenEmbeddings, TextInputError> {
        match self {
            TextTower::Clip(tower) => tower.embed_tokens(tokens),
            TextTower::Bert(tower) => tower.embed_tokens(tokens),
        }
    }

    /// Text embeddings `[batch, embed_dim]`, not normalised, from (edited) token embeddings.
    pub fn forward_embedded(&self, embedded: TokenEmbeddings) -> Tensor<2> {
        match self {
            TextTower::Clip(tower) => tower.forward_embedded(embedded),
            TextTower::Bert(tower) => tower.forward_embedded(embedded),
        }
    }

    /// A copy on `device` (an autodiff one) whose weights take no gradients: gradients flow
    /// through it to what feeds it.
    pub fn frozen_on(&self, device: &Device) -> TextTower {
        match self {
            TextTower::Clip(tower) => TextTower::Clip(tower.clone().fork(device).no_grad()),
            TextTower::Bert(tower) => TextTower::Bert(tower.clone().fork(device).no_grad()),
        }
    }
}

#[derive(Debug)]
pub struct ClipModel {
    pub config: ClipConfig,
    pub vision: VisionTransformer,
    pub text: TextTower,
    /// `exp(logit_scale)` as trained (100 for OpenAI's models).
    pub logit_scale: f32,
    /// The weights' identity, independent of file format ([`Weights::fingerprint`]).
    pub fingerprint: String,
}

/// Unit-length rows.
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x
        .clone()
        .powf_scalar(2.0)
        .sum_dim(1)
        .sqrt()
        .clamp_min(1e-12);
    x / norm
}

impl ClipModel {
    /// Builds the model from canonical tensors; every missing or misshapen one is reported
    /// together, named as the checkpoint names it.
    pub fn from_weights(
        config: ClipConfig,
        mut weights: Weights,
        model_name: &str,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let vision =
            VisionTransformer::load(&mut weights, &config.vision, config.embed_dim, device)?;
        let text = match &config.text {
            TextConfig::Clip(text) => TextTower::Clip(TextTransformer::load(
                &mut weights,
                text,
                config.embed_dim,
                device,
            )?),
            TextConfig::Bert(text) => TextTower::Bert(BertTextTower::load(
                &mut weights,
                text,
                config.embed_dim,
                device,
            )?),
        };
        let logit_scale = weights
            .take("logit_scale", &[])?
            .try_to_vec::<f32>()
            .ok()
            .and_then(|values| values.first().copied())
            .unwrap_or(0.0)
            .exp();
        let fingerprint = weights.fingerprint();
        weights.finish(model_name)?;
        Ok(Self {
            config,
            vision,
            text,
            logit_scale,
            fingerprint,
        })
    }

    pub fn device(&self) -> Device {
        self.vision.class_embedding.val().device()
    }

    pub fn image_size(&self) -> usize {
        self.vision.image_size
    }

    /// Image embeddings `[batch, embed_dim]`, not normalised.
    pub fn encode_image(&self, pixels: Tensor<4>) -> Result<Tensor<2>, VisionInputError> {
        self.vision.check_input(&pixels)?;
        Ok(self.vision.forward(pixels, None))
    }

    /// Image embeddings with an additive attention bias in chosen blocks (see `crate::focus`).
    pub fn encode_image_focused(
        &self,
        pixels: Tensor<4>,
        focus: &LayerBias,
    ) -> Result<Tensor<2>, VisionInputError> {
        self.vision.check_input(&pixels)?;
        Ok(self.vision.forward(pixels, Some(focus)))
    }

    /// Text embeddings `[batch, embed_dim]`, not normalised, from tokenizer rows.
    pub fn encode_text(&self, tokens: &[Vec<u32>]) -> Result<Tensor<2>, TextInputError> {
        match &self.text {
            TextTower::Clip(tower) => tower.forward(tokens),
            TextTower::Bert(tower) => tower.forward(tokens),
        }
    }
}
