//! `sam2/modeling/backbones/hieradet.py`: Hiera, the hierarchical ViT of SAM 2's image encoder.
//! Tensors are channels-last (`[batch, height, width, channels]`), as in Meta's code.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::clip::transformer::{layer_norm, linear, parameter};
use crate::sam2::config::{HieraBlockShape, HieraConfig};
use crate::sam2::sam2_utils::{
    Mlp, MlpActivation, MlpShape, max_pool_2x2, scaled_dot_product_attention,
};
use crate::weights::{Weights, WeightsError};

/// `PatchEmbed`: a 7×7 convolution with stride 4 and padding 3.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
}

impl PatchEmbed {
    fn load(
        weights: &mut Weights,
        name: &str,
        embed_dim: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            weight: parameter(
                weights,
                &format!("{name}.proj.weight"),
                [embed_dim, 3, 7, 7],
                device,
            )?,
            bias: parameter(weights, &format!("{name}.proj.bias"), [embed_dim], device)?,
        })
    }

    /// `[b, 3, H, W]` → `[b, H/4, W/4, embed_dim]`.
    pub fn forward(&self, image: Tensor<4>) -> Tensor<4> {
        let options = ConvOptions::new([4, 4], [3, 3], [1, 1], 1);
        conv2d(image, self.weight.val(), Some(self.bias.val()), options).permute([0, 2, 3, 1])
    }
}

/// `MultiScaleAttention`: fused q/k/v; queries optionally max-pooled 2×2.
#[derive(Module, Debug)]
pub struct MultiScaleAttention {
    pub qkv: Linear,
    pub proj: Linear,
    #[module(skip)]
    pub heads: usize,
    #[module(skip)]
    pub q_pool: bool,
}

impl MultiScaleAttention {
    /// `[b, h, w, dim]` → `[b, h', w', dim_out]` (`h' = h/2` when pooling).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, height, width, _] = x.dims();
        let qkv = self.qkv.forward(x);
        let dim_out = qkv.dims()[3] / 3;
        let head_dim = dim_out / self.heads;
        let tokens = height * width;
        let part = |index: usize| qkv.clone().narrow(3, index * dim_out, dim_out);
        let (mut query, key, value) = (part(0), part(1), part(2));
        let (mut height, mut width) = (height, width);
        if self.q_pool {
            query = max_pool_2x2(query);
            [_, height, width, _] = query.dims();
        }
        let heads = |t: Tensor<4>, tokens: usize| {
            t.reshape([batch, tokens, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let context = scaled_dot_product_attention(
            heads(query, height * width),
            heads(key, tokens),
            heads(value, tokens),
        );
        let context = context
            .swap_dims(1, 2)
            .reshape([batch, height, width, dim_out]);
        self.proj.forward(context)
    }
}

/// Zero-pads `[b, h, w, c]` to multiples of `window` and cuts it into windows,
/// `[b · windows, window, window, c]`; also returns the padded size.
fn window_partition(x: Tensor<4>, window: usize) -> (Tensor<4>, [usize; 2]) {
    let [batch, height, width, channels] = x.dims();
    let pad_h = (window - height % window) % window;
    let pad_w = (window - width % window) % window;
    let device = x.device();
    let mut x = x;
    if pad_h > 0 {
        x = Tensor::cat(
            vec![x, Tensor::zeros([batch, pad_h, width, channels], &device)],
            1,
        );
    }
    if pad_w > 0 {
        let padded_height = height + pad_h;
        x = Tensor::cat(
            vec![
                x,
                Tensor::zeros([batch, padded_height, pad_w, channels], &device),
            ],
            2,
        );
    }
    let (hp, wp) = (height + pad_h, width + pad_w);
    let windows = x
        .reshape([batch, hp / window, window, wp / window, window, channels])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([
            batch * (hp / window) * (wp / window),
            window,
            window,
            channels,
        ]);
    (windows, [hp, wp])
}

/// Inverse of [`window_partition`], dropping the padding.
fn window_unpartition(
    windows: Tensor<4>,
    window: usize,
    padded: [usize; 2],
    size: [usize; 2],
) -> Tensor<4> {
    let [hp, wp] = padded;
    let channels = windows.dims()[3];
    let batch = windows.dims()[0] / (hp * wp / window / window);
    windows
        .reshape([batch, hp / window, wp / window, window, window, channels])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([batch, hp, wp, channels])
        .narrow(1, 0, size[0])
        .narrow(2, 0, size[1])
}

/// `MultiScaleBlock`: windowed (or global) attention with optional query pooling, then the MLP.
#[derive(Module, Debug)]
pub struct MultiScaleBlock {
    pub norm1: LayerNorm,
    pub attn: MultiScaleAttention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    /// Projects the shortcut where the width changes.
    pub proj: Option<Linear>,
    #[module(skip)]
    pub window: usize,
    #[module(skip)]
    pub q_pool: bool,
}

impl MultiScaleBlock {
    fn load(
        weights: &mut Weights,
        name: &str,
        shape: HieraBlockShape,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let (dim, dim_out) = (shape.dim, shape.dim_out);
        Ok(Self {
            norm1: layer_norm(weights, &format!("{name}.norm1"), dim, 1e-6, device)?,
            attn: MultiScaleAttention {
                qkv: linear(
                    weights,
                    &format!("{name}.attn.qkv"),
                    dim,
                    dim_out * 3,
                    true,
                    device,
                )?,
                proj: linear(
                    weights,
                    &format!("{name}.attn.proj"),
                    dim_out,
                    dim_out,
                    true,
                    device,
                )?,
                heads: shape.heads,
                q_pool: shape.q_pool,
            },
            norm2: layer_norm(weights, &format!("{name}.norm2"), dim_out, 1e-6, device)?,
            mlp: Mlp::load(
                weights,
                &format!("{name}.mlp"),
                MlpShape {
                    input: dim_out,
                    hidden: dim_out * 4,
                    output: dim_out,
                    layers: 2,
                    activation: MlpActivation::Gelu,
                    sigmoid_output: false,
                },
                device,
            )?,
            proj: (dim != dim_out)
                .then(|| linear(weights, &format!("{name}.proj"), dim, dim_out, true, device))
                .transpose()?,
            window: shape.window,
            q_pool: shape.q_pool,
        })
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let normed = self.norm1.forward(x.clone());
        let mut shortcut = x;
        if let Some(proj) = &self.proj {
            shortcut = proj.forward(normed.clone());
            if self.q_pool {
                shortcut = max_pool_2x2(shortcut);
            }
        }
        let [_, height, width, _] = normed.dims();
        let mut size = [height, width];
        let mut padded = size;
        let mut attended = normed;
        if self.window > 0 {
            let (windows, padded_size) = window_partition(attended, self.window);
            attended = windows;
            padded = padded_size;
        }
        attended = self.attn.forward(attended);
        let mut window = self.window;
        if self.q_pool {
            // The windows shrank with the queries; their padded grid follows the pooled size.
            window = self.window / 2;
            let [_, h, w, _] = shortcut.dims();
            size = [h, w];
            if window > 0 {
                padded = [
                    h + (window - h % window) % window,
                    w + (window - w % window) % window,
                ];
            }
        }
        if self.window > 0 {
            attended = window_unpartition(attended, window, padded, size);
        }
        let x = shortcut + attended;
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

/// `F.interpolate(mode="bicubic", align_corners=False)` along one axis as an `[out, in]`
/// matrix: PyTorch's cubic convolution (A = −0.75) with edge-clamped taps.
pub(crate) fn bicubic_matrix(input: usize, output: usize) -> Vec<f32> {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let scale = input as f64 / output as f64;
    let mut matrix = vec![0.0f32; output * input];
    for out in 0..output {
        let source = (out as f64 + 0.5) * scale - 0.5;
        let floor = source.floor();
        let t = source - floor;
        let taps = [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)];
        for (offset, weight) in taps.iter().enumerate() {
            let index = (floor as i64 - 1 + offset as i64).clamp(0, input as i64 - 1) as usize;
            matrix[out * input + index] += *weight as f32;
        }
    }
    matrix
}

/// Hiera: patch embedding, position embedding (a bicubically resized background plus a tiled
/// window embedding), blocks; returns every stage's output, finest first.
#[derive(Module, Debug)]
pub struct Hiera {
    pub patch_embed: PatchEmbed,
    /// `[1, C, bh, bw]`.
    pub pos_embed: Param<Tensor<4>>,
    /// `[1, C, window, window]`.
    pub pos_embed_window: Param<Tensor<4>>,
    pub blocks: Vec<MultiScaleBlock>,
    #[module(skip)]
    pub stage_ends: Vec<usize>,
}

impl Hiera {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        config: &HieraConfig,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let dim = config.embed_dim;
        let [bh, bw] = config.window_pos_embed_bkg_spatial_size;
        let window = config.window_spec[0];
        Ok(Self {
            patch_embed: PatchEmbed::load(weights, &format!("{name}.patch_embed"), dim, device)?,
            pos_embed: parameter(
                weights,
                &format!("{name}.pos_embed"),
                [1, dim, bh, bw],
                device,
            )?,
            pos_embed_window: parameter(
                weights,
                &format!("{name}.pos_embed_window"),
                [1, dim, window, window],
                device,
            )?,
            blocks: config
                .blocks()
                .into_iter()
                .enumerate()
                .map(|(index, shape)| {
                    MultiScaleBlock::load(weights, &format!("{name}.blocks.{index}"), shape, device)
                })
                .collect::<Result<_, _>>()?,
            stage_ends: config.stage_ends(),
        })
    }

    /// `_get_pos_embed`: `[1, h, w, C]`.
    fn position_embedding(&self, height: usize, width: usize) -> Tensor<4> {
        let [_, channels, bh, bw] = self.pos_embed.dims();
        let device = self.pos_embed.device();
        let rows = Tensor::<2>::from_data(
            TensorData::new(bicubic_matrix(bh, height), [height, bh]),
            &device,
        );
        let cols = Tensor::<2>::from_data(
            TensorData::new(bicubic_matrix(bw, width), [width, bw]),
            &device,
        );
        let background = self
            .pos_embed
            .val()
            .reshape([channels, bh, bw])
            .matmul(cols.transpose().unsqueeze::<3>())
            .swap_dims(1, 2)
            .matmul(rows.transpose().unsqueeze::<3>())
            .swap_dims(1, 2);
        let window = self.pos_embed_window.dims()[2];
        let tiled = self
            .pos_embed_window
            .val()
            .reshape([channels, window, window])
            .repeat(&[1, height / window, width / window]);
        (background + tiled).permute([1, 2, 0]).unsqueeze::<4>()
    }

    /// `[b, 3, H, W]` → per stage `[b, h, w, C]`, finest first.
    pub fn forward(&self, image: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = self.patch_embed.forward(image);
        let [_, height, width, _] = x.dims();
        x = x + self.position_embedding(height, width);
        let mut outputs = Vec::with_capacity(self.stage_ends.len());
        for (index, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if self.stage_ends.contains(&index) {
                outputs.push(x.clone());
            }
        }
        outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_rows_sum_to_one_and_identity_at_same_size() {
        let same = bicubic_matrix(5, 5);
        for row in 0..5 {
            for col in 0..5 {
                let expected = if row == col { 1.0 } else { 0.0 };
                assert!((same[row * 5 + col] - expected).abs() < 1e-6);
            }
        }
        let up = bicubic_matrix(7, 64);
        for row in up.chunks(7) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn window_partition_round_trips_with_padding() {
        let device = Device::flex();
        let values: Vec<f32> = (0..2 * 5 * 7 * 3).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [2, 5, 7, 3]), &device);
        let (windows, padded) = window_partition(x, 3);
        assert_eq!(padded, [6, 9]);
        assert_eq!(windows.dims(), [2 * 2 * 3, 3, 3, 3]);
        let back = window_unpartition(windows, 3, padded, [5, 7]);
        assert_eq!(back.into_data().try_to_vec::<f32>().unwrap(), values);
    }
}
