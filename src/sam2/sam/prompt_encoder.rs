//! `sam2/modeling/sam/prompt_encoder.py`: points (boxes arrive as two corner points with labels
//! 2 and 3, as SAM 2's predictor sends them) and low-resolution mask prompts become the sparse
//! and dense embeddings of the mask decoder.

use burn::module::{Module, Param};
use burn::nn::LayerNorm;
use burn::tensor::{Device, Tensor, TensorData};

use crate::clip::transformer::parameter;
use crate::kernels::gelu;
use crate::sam2::config::Sam2Config;
use crate::sam2::position_encoding::PositionEmbeddingRandom;
use crate::sam2::sam2_utils::{PatchConv, conv1x1, layer_norm_2d, stacked_rows};
use crate::weights::{Weights, WeightsError};

/// Point labels as SAM 2 numbers them.
pub const LABEL_PADDING: i32 = -1;
pub const LABEL_BACKGROUND: i32 = 0;
pub const LABEL_FOREGROUND: i32 = 1;
pub const LABEL_BOX_TOP_LEFT: i32 = 2;
pub const LABEL_BOX_BOTTOM_RIGHT: i32 = 3;

/// `mask_downscaling`: two 2×2/2 convolutions with LayerNorm2d + GELU, then a 1×1 to the
/// embedding width.
#[derive(Module, Debug)]
pub struct MaskDownscaling {
    pub conv0: PatchConv,
    pub norm1: LayerNorm,
    pub conv3: PatchConv,
    pub norm4: LayerNorm,
    pub conv6: burn::nn::Linear,
}

impl MaskDownscaling {
    /// `[b, 4e, 4e, 1]` mask logits → `[b, e, e, embed_dim]`.
    pub fn forward(&self, mask: Tensor<4>) -> Tensor<4> {
        let x = gelu(self.norm1.forward(self.conv0.forward(mask)));
        let x = gelu(self.norm4.forward(self.conv3.forward(x)));
        self.conv6.forward(x)
    }
}

#[derive(Module, Debug)]
pub struct PromptEncoder {
    pub pe_layer: PositionEmbeddingRandom,
    /// Rows: padding ("not a point"), background, foreground, box corner 1, box corner 2 —
    /// `not_a_point_embed` and `point_embeddings.{0..3}`, stacked so that a one-hot matmul picks
    /// them (no gather, no data-dependent branches: it runs the same on every backend).
    pub label_embeddings: Param<Tensor<2>>,
    pub no_mask_embed: Param<Tensor<2>>,
    pub mask_downscaling: MaskDownscaling,
    #[module(skip)]
    pub embed_dim: usize,
    #[module(skip)]
    pub image_size: usize,
    #[module(skip)]
    pub embedding_size: usize,
}

impl PromptEncoder {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        config: &Sam2Config,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let dim = config.neck.d_model;
        let chans = config.decoder.mask_in_chans;
        let mut labels = vec![(format!("{name}.not_a_point_embed.weight"), 1)];
        labels.extend((0..4).map(|index| (format!("{name}.point_embeddings.{index}.weight"), 1)));
        let label_embeddings = stacked_rows(weights, &labels, dim, device)?;
        let downscaling = format!("{name}.mask_downscaling");
        Ok(Self {
            pe_layer: PositionEmbeddingRandom::load(
                weights,
                &format!("{name}.pe_layer"),
                dim,
                device,
            )?,
            label_embeddings,
            no_mask_embed: parameter(
                weights,
                &format!("{name}.no_mask_embed.weight"),
                [1, dim],
                device,
            )?,
            mask_downscaling: MaskDownscaling {
                conv0: PatchConv::load(
                    weights,
                    &format!("{downscaling}.0"),
                    1,
                    chans / 4,
                    2,
                    device,
                )?,
                norm1: layer_norm_2d(weights, &format!("{downscaling}.1"), chans / 4, device)?,
                conv3: PatchConv::load(
                    weights,
                    &format!("{downscaling}.3"),
                    chans / 4,
                    chans,
                    2,
                    device,
                )?,
                norm4: layer_norm_2d(weights, &format!("{downscaling}.4"), chans, device)?,
                conv6: conv1x1(weights, &format!("{downscaling}.6"), chans, dim, device)?,
            },
            embed_dim: dim,
            image_size: config.image_size,
            embedding_size: config.embedding_size(),
        })
    }

    /// `get_dense_pe`: `[e, e, embed_dim]`.
    pub fn dense_pe(&self) -> Tensor<3> {
        self.pe_layer
            .dense(self.embedding_size, &self.label_embeddings.device())
    }

    /// Sparse embeddings `[b, n + 1, embed_dim]` for `b` prompts of `n` points each, in
    /// input-image pixels (`coords`: `b·n` (x, y) pairs). A padding point is appended, as SAM 2
    /// does whenever no separate box is given (its predictor never gives one).
    pub fn embed_points(&self, coords: &[[f32; 2]], labels: &[i32], batch: usize) -> Tensor<3> {
        let device = self.label_embeddings.device();
        let per_prompt = coords.len() / batch.max(1);
        let tokens = per_prompt + 1;
        let mut normalised = Vec::with_capacity(batch * tokens * 2);
        let mut one_hot = vec![0.0f32; batch * tokens * 5];
        let mut keep = Vec::with_capacity(batch * tokens);
        for prompt in 0..batch {
            for slot in 0..tokens {
                let (point, label) = if slot < per_prompt {
                    let index = prompt * per_prompt + slot;
                    (coords[index], labels[index])
                } else {
                    ([0.0, 0.0], LABEL_PADDING)
                };
                // +0.5: to the pixel's centre.
                normalised.push((point[0] + 0.5) / self.image_size as f32);
                normalised.push((point[1] + 0.5) / self.image_size as f32);
                let row = (label.clamp(LABEL_PADDING, LABEL_BOX_BOTTOM_RIGHT) + 1) as usize;
                one_hot[(prompt * tokens + slot) * 5 + row] = 1.0;
                keep.push(if label == LABEL_PADDING { 0.0 } else { 1.0 });
            }
        }
        let positions = self.pe_layer.encode(Tensor::from_data(
            TensorData::new(normalised, [batch * tokens, 2]),
            &device,
        ));
        let keep = Tensor::<2>::from_data(TensorData::new(keep, [batch * tokens, 1]), &device);
        let one_hot =
            Tensor::<2>::from_data(TensorData::new(one_hot, [batch * tokens, 5]), &device);
        let embedded = positions * keep + one_hot.matmul(self.label_embeddings.val());
        embedded.reshape([batch, tokens, self.embed_dim])
    }

    /// Dense embeddings: the downscaled mask prompts `[b, e, e, embed_dim]`, or `no_mask_embed`
    /// everywhere, `[1, e, e, embed_dim]`.
    pub fn embed_masks(&self, masks: Option<Tensor<4>>) -> Tensor<4> {
        match masks {
            Some(masks) => self.mask_downscaling.forward(masks),
            // One `[1, e, e, c]` for every prompt: the decoder broadcasts it (and the image
            // embedding) over the batch instead of copying both per prompt.
            None => {
                let size = self.embedding_size;
                self.no_mask_embed
                    .val()
                    .reshape([1, 1, 1, self.embed_dim])
                    .expand([1, size, size, self.embed_dim])
            }
        }
    }
}
