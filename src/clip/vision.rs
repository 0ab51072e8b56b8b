//! The ViT image tower (OpenAI/open_clip `VisionTransformer`, timm `VisionTransformer`).
//!
//! Canonical tensor names, under `visual.`: `patch_embed.weight` `[width, 3, p, p]` (+ `.bias`
//! for timm), `class_embedding` `[width]`, `positional_embedding` `[tokens, width]`, `ln_pre`,
//! `blocks.{i}.{ln_1, attn.in_proj, attn.out_proj, ln_2, mlp.fc1, mlp.fc2}`, `ln_post`, `proj`
//! (`[embed_dim, width]`, bias-free).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor};

use super::config::VisionConfig;
use super::transformer::{BlockShape, ResidualBlock, layer_norm, linear, parameter};
use crate::weights::{Weights, WeightsError, transposed_matrix};

/// An additive attention bias applied in chosen blocks of the image tower (see `crate::focus`).
#[derive(Clone, Debug)]
pub struct LayerBias {
    /// Broadcastable to `[batch, heads, tokens, tokens]`.
    pub bias: Tensor<4>,
    /// Which blocks receive it, by index.
    pub layers: Vec<usize>,
}

#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// The patch convolution (stride = kernel), applied as a matmul over flattened patches.
    pub patch_embed: Linear,
    pub class_embedding: Param<Tensor<1>>,
    pub positional_embedding: Param<Tensor<2>>,
    pub ln_pre: Option<LayerNorm>,
    pub blocks: Vec<ResidualBlock>,
    pub ln_post: LayerNorm,
    pub proj: Linear,
    pub patch_size: usize,
    pub image_size: usize,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the image tower takes {expected}×{expected} RGB images, got {found:?} (batch, channels, height, width)"
)]
pub struct VisionInputError {
    pub expected: usize,
    pub found: [usize; 4],
}

impl VisionTransformer {
    pub(crate) fn load(
        weights: &mut Weights,
        config: &VisionConfig,
        embed_dim: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let width = config.width;
        let patch = config.patch_size;
        let patch_inputs = 3 * patch * patch;
        // Flattening the conv kernel [width, 3, p, p] row-major gives the (channel, y, x) order
        // `patches()` produces.
        let kernel = weights.take("visual.patch_embed.weight", &[width, 3, patch, patch])?;
        let kernel = Tensor::<2>::from_data(transposed_matrix(kernel, width, patch_inputs), device);
        let bias = config
            .patch_bias
            .then(|| parameter(weights, "visual.patch_embed.bias", [width], device))
            .transpose()?;
        let shape = BlockShape {
            width,
            heads: config.heads,
            mlp_width: config.mlp_width,
            activation: config.activation,
            layer_norm_eps: config.layer_norm_eps,
        };
        Ok(Self {
            patch_embed: Linear {
                weight: Param::from_tensor(kernel),
                bias,
            },
            class_embedding: parameter(weights, "visual.class_embedding", [width], device)?,
            positional_embedding: parameter(
                weights,
                "visual.positional_embedding",
                [config.tokens(), width],
                device,
            )?,
            ln_pre: config
                .pre_norm
                .then(|| {
                    layer_norm(
                        weights,
                        "visual.ln_pre",
                        width,
                        config.layer_norm_eps,
                        device,
                    )
                })
                .transpose()?,
            blocks: (0..config.layers)
                .map(|index| {
                    ResidualBlock::load(weights, &format!("visual.blocks.{index}"), shape, device)
                })
                .collect::<Result<_, _>>()?,
            ln_post: layer_norm(
                weights,
                "visual.ln_post",
                width,
                config.layer_norm_eps,
                device,
            )?,
            proj: linear(weights, "visual.proj", width, embed_dim, false, device)?,
            patch_size: patch,
            image_size: config.image_size,
        })
    }

    pub fn layers(&self) -> usize {
        self.blocks.len()
    }

    /// Token width.
    pub fn width(&self) -> usize {
        self.class_embedding.val().dims()[0]
    }

    pub fn heads(&self) -> usize {
        self.blocks
            .first()
            .map(|block| block.attn.heads)
            .unwrap_or(1)
    }

    /// Side of the patch grid.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    pub fn check_input(&self, pixels: &Tensor<4>) -> Result<(), VisionInputError> {
        let dims = pixels.dims();
        if dims[1] != 3 || dims[2] != self.image_size || dims[3] != self.image_size {
            return Err(VisionInputError {
                expected: self.image_size,
                found: dims,
            });
        }
        Ok(())
    }

    /// `[batch, 3, H, W]` → `[batch, patches, 3·p·p]`, patches in row-major grid order.
    fn patches(&self, pixels: Tensor<4>) -> Tensor<3> {
        let [batch, channels, height, width] = pixels.dims();
        let patch = self.patch_size;
        let (rows, cols) = (height / patch, width / patch);
        pixels
            .reshape([batch, channels, rows, patch, cols, patch])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([batch, rows * cols, channels * patch * patch])
    }

    /// Class token + patch tokens with positions, before the blocks.
    fn embed(&self, pixels: Tensor<4>) -> Tensor<3> {
        let batch = pixels.dims()[0];
        let tokens = self.patch_embed.forward(self.patches(pixels));
        let width = tokens.dims()[2];
        let class = self
            .class_embedding
            .val()
            .reshape([1, 1, width])
            .repeat_dim(0, batch);
        let x = Tensor::cat(vec![class, tokens], 1);
        let x = x + self.positional_embedding.val().unsqueeze_dim::<3>(0);
        match &self.ln_pre {
            Some(norm) => norm.forward(x),
            None => x,
        }
    }

    /// All tokens after the last block (before `ln_post`), with an optional focus bias.
    pub fn forward_tokens(&self, pixels: Tensor<4>, focus: Option<&LayerBias>) -> Tensor<3> {
        self.forward_tokens_until(pixels, focus, self.blocks.len())
    }

    /// The tokens entering block `blocks` (after the first `blocks` blocks).
    pub fn forward_tokens_until(
        &self,
        pixels: Tensor<4>,
        focus: Option<&LayerBias>,
        blocks: usize,
    ) -> Tensor<3> {
        let mut x = self.embed(pixels);
        for (index, block) in self.blocks.iter().enumerate().take(blocks) {
            x = block.forward(x, block_bias(focus, index));
        }
        x
    }

    /// Image embeddings `[batch, embed_dim]` (not normalised), as `encode_image` returns them.
    pub fn forward(&self, pixels: Tensor<4>, focus: Option<&LayerBias>) -> Tensor<2> {
        self.pool(self.forward_tokens(pixels, focus))
    }

    /// Embeddings from the tokens entering some block, through `blocks` (the tower's remaining
    /// blocks, or fine-tuned copies of them) and the class-token head.
    pub fn finish(&self, tokens: Tensor<3>, blocks: &[ResidualBlock]) -> Tensor<2> {
        let mut x = tokens;
        for block in blocks {
            x = block.forward(x, None);
        }
        self.pool(x)
    }

    /// `ln_post` and the projection of the class token: the image embeddings `[batch,
    /// embed_dim]` from the tokens after the last block.
    pub fn pool(&self, x: Tensor<3>) -> Tensor<2> {
        let [batch, _, width] = x.dims();
        let class_token = x.narrow(1, 0, 1).reshape([batch, width]);
        self.proj.forward(self.ln_post.forward(class_token))
    }

    /// `ln_post` and the projection of every patch token: `[batch, patches, embed_dim]`, in the
    /// space of the image embedding (dense features, as MaskCLIP reads them).
    pub fn pool_patches(&self, x: Tensor<3>) -> Tensor<3> {
        let tokens = x.dims()[1];
        self.proj
            .forward(self.ln_post.forward(x.narrow(1, 1, tokens - 1)))
    }
}

/// The focus bias block `index` receives, if any.
pub fn block_bias(focus: Option<&LayerBias>, index: usize) -> Option<Tensor<4>> {
    focus
        .filter(|focus| focus.layers.contains(&index))
        .map(|focus| focus.bias.clone())
}
