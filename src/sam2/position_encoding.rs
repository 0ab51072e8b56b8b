//! `sam2/modeling/position_encoding.py`: the neck's sine encoding and the prompt encoder's
//! random-Fourier encoding.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::{Weights, WeightsError};

/// `PositionEmbeddingSine(num_pos_feats, normalize=True, scale=2π, temperature=10000)` for an
/// `height × width` map, as `[num_pos_feats, height, width]` (y features first, then x). It
/// depends only on the map's size; the image predictor does not use it (the video memory does),
/// it is here so the neck's outputs are complete.
pub fn sine_position_encoding(num_pos_feats: usize, height: usize, width: usize) -> Vec<f32> {
    let half = num_pos_feats / 2;
    let scale = 2.0 * std::f32::consts::PI;
    let eps = 1e-6f32;
    let dim_t: Vec<f32> = (0..half)
        .map(|i| 10000f32.powf(2.0 * (i / 2) as f32 / half as f32))
        .collect();
    let mut out = vec![0.0f32; num_pos_feats * height * width];
    for y in 0..height {
        for x in 0..width {
            let y_embed = (y + 1) as f32 / (height as f32 + eps) * scale;
            let x_embed = (x + 1) as f32 / (width as f32 + eps) * scale;
            for (i, &dim) in dim_t.iter().enumerate() {
                let wave = |embed: f32| {
                    let phase = embed / dim;
                    if i % 2 == 0 { phase.sin() } else { phase.cos() }
                };
                out[(i * height + y) * width + x] = wave(y_embed);
                out[((half + i) * height + y) * width + x] = wave(x_embed);
            }
        }
    }
    out
}

/// `PositionEmbeddingRandom`: `[sin, cos](2π · (2c − 1) · G)` for coordinates `c` in [0, 1].
#[derive(Module, Debug)]
pub struct PositionEmbeddingRandom {
    /// `positional_encoding_gaussian_matrix`, `[2, embed_dim / 2]`.
    pub positional_encoding_gaussian_matrix: Param<Tensor<2>>,
}

impl PositionEmbeddingRandom {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        embed_dim: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let matrix = weights.take(
            &format!("{name}.positional_encoding_gaussian_matrix"),
            &[2, embed_dim / 2],
        )?;
        Ok(Self {
            positional_encoding_gaussian_matrix: Param::from_tensor(Tensor::from_data(
                matrix, device,
            )),
        })
    }

    /// `coords`: `[n, 2]` (x, y) normalised to [0, 1] → `[n, embed_dim]`.
    pub fn encode(&self, coords: Tensor<2>) -> Tensor<2> {
        let turns = (coords * 2.0 - 1.0).matmul(self.positional_encoding_gaussian_matrix.val());
        // sin(2π·t) = sin(2π·(t − round t)): reduced first, the arguments stay in [−π, π],
        // where GPU sin/cos implementations are accurate (WGSL promises little outside it).
        let angles = (turns.clone() - turns.round()) * (2.0 * std::f64::consts::PI);
        Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
    }

    /// The dense encoding of an `size × size` grid at pixel centres, `[size, size, embed_dim]`.
    pub fn dense(&self, size: usize, device: &Device) -> Tensor<3> {
        let mut coords = Vec::with_capacity(size * size * 2);
        for y in 0..size {
            for x in 0..size {
                coords.push((x as f32 + 0.5) / size as f32);
                coords.push((y as f32 + 0.5) / size as f32);
            }
        }
        let coords = Tensor::<2>::from_data(TensorData::new(coords, [size * size, 2]), device);
        let encoded = self.encode(coords);
        let width = encoded.dims()[1];
        encoded.reshape([size, size, width])
    }
}
