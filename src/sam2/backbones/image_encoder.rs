//! `sam2/modeling/backbones/image_encoder.py`: the FPN neck over Hiera's stages and the
//! `ImageEncoder` that drops the coarsest level (`scalp`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use super::hieradet::Hiera;
use crate::sam2::config::Sam2Config;
use crate::sam2::sam2_utils::conv1x1;
use crate::weights::{Weights, WeightsError};

/// `FpnNeck` with `fpn_interp_model="nearest"` and `fuse_type="sum"` (every published config).
#[derive(Module, Debug)]
pub struct FpnNeck {
    /// Lateral 1×1 convolutions, coarsest level first (`convs.{i}.conv`).
    pub convs: Vec<Linear>,
    #[module(skip)]
    pub fpn_top_down_levels: Vec<usize>,
}

impl FpnNeck {
    /// Stage outputs, finest first → the same number of `d_model`-wide maps, finest first.
    pub fn forward(&self, stages: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let n = self.convs.len() - 1;
        let mut out: Vec<Option<Tensor<4>>> = vec![None; stages.len()];
        let mut previous: Option<Tensor<4>> = None;
        for (level, stage) in stages.into_iter().enumerate().rev() {
            let lateral = self.convs[n - level].forward(stage);
            let fused = match previous.take() {
                Some(coarser) if self.fpn_top_down_levels.contains(&level) => {
                    lateral + upsample_nearest_2x(coarser)
                }
                _ => lateral,
            };
            out[level] = Some(fused.clone());
            previous = Some(fused);
        }
        out.into_iter().flatten().collect()
    }
}

/// `[b, h, w, c]` → `[b, 2h, 2w, c]`, each pixel repeated 2×2.
fn upsample_nearest_2x(x: Tensor<4>) -> Tensor<4> {
    let [batch, height, width, channels] = x.dims();
    x.reshape([batch, height, 1, width, 1, channels])
        .expand([batch, height, 2, width, 2, channels])
        .reshape([batch, height * 2, width * 2, channels])
}

#[derive(Module, Debug)]
pub struct ImageEncoder {
    pub trunk: Hiera,
    pub neck: FpnNeck,
    #[module(skip)]
    pub scalp: usize,
}

impl ImageEncoder {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        config: &Sam2Config,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let d_model = config.neck.d_model;
        let convs = config
            .neck
            .backbone_channel_list
            .iter()
            .enumerate()
            .map(|(index, &channels)| {
                conv1x1(
                    weights,
                    &format!("{name}.neck.convs.{index}.conv"),
                    channels,
                    d_model,
                    device,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            trunk: Hiera::load(weights, &format!("{name}.trunk"), &config.hiera, device)?,
            neck: FpnNeck {
                convs,
                fpn_top_down_levels: config.neck.fpn_top_down_levels.clone(),
            },
            scalp: config.scalp,
        })
    }

    /// `[b, 3, S, S]` → the FPN levels the heads use, finest first (`backbone_fpn`); the last
    /// one is `vision_features`.
    pub fn forward(&self, image: Tensor<4>) -> Vec<Tensor<4>> {
        let mut levels = self.neck.forward(self.trunk.forward(image));
        levels.truncate(levels.len() - self.scalp);
        levels
    }
}
