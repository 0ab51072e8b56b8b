//! Pixel-wise attention focus (the FALIP idea): the mask, carried through the same resize and
//! centre crop as the image and pooled to the ViT's patch grid, becomes an additive bias on the
//! attention logits — `strength × (weight − 1)` for each patch key, 0 for the class-token key —
//! so patches outside the mask are attended `e^strength` times less. No pixel is changed.
//! With strength 0 the bias is all zeros and the output equals plain CLIP exactly.

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::mask::{Mask, MaskError};
use crate::clip::LayerBias;
use crate::clip::preprocess::{PreprocessConfig, crop_geometry};

/// Which queries receive the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasedQueries {
    /// Only the class token's attention (what the embedding is read from).
    ClassToken,
    /// Every token's attention.
    AllTokens,
}

/// Which blocks of the image tower receive the bias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasedLayers {
    All,
    /// The last `n` blocks.
    Last(usize),
    /// Blocks by index (0 = first).
    List(Vec<usize>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionFocus {
    pub strength: f32,
    pub queries: BiasedQueries,
    pub layers: BiasedLayers,
}

impl Default for AttentionFocus {
    fn default() -> Self {
        Self {
            strength: 2.0,
            queries: BiasedQueries::ClassToken,
            layers: BiasedLayers::All,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FocusError {
    #[error(transparent)]
    Mask(#[from] MaskError),
    #[error("strength must be a finite number ≥ 0, got {0}")]
    Strength(f32),
    #[error("layer {layer} does not exist: the image tower has {layers} blocks")]
    Layer { layer: usize, layers: usize },
}

impl BiasedLayers {
    pub fn resolve(&self, layers: usize) -> Result<Vec<usize>, FocusError> {
        match self {
            BiasedLayers::All => Ok((0..layers).collect()),
            BiasedLayers::Last(n) => Ok((layers.saturating_sub(*n)..layers).collect()),
            BiasedLayers::List(list) => {
                if let Some(&layer) = list.iter().find(|&&layer| layer >= layers) {
                    return Err(FocusError::Layer { layer, layers });
                }
                Ok(list.clone())
            }
        }
    }
}

/// The mask's weight in each patch of the model input, row-major over the `grid`×`grid` patches:
/// the mean of the mask pixels whose centres fall in the patch once the preprocessing's resize
/// and centre crop are undone (the nearest pixel when a patch is smaller than one).
pub fn patch_weights(mask: &Mask, preprocess: &PreprocessConfig, grid: usize) -> Vec<f32> {
    if mask.width == 0 || mask.height == 0 || mask.weights.len() != mask.width * mask.height {
        return vec![0.0; grid * grid];
    }
    let size = preprocess.image_size as f64;
    let (width, height) = (mask.width as f64, mask.height as f64);
    let ([resized_width, resized_height], [left, top]) =
        crop_geometry(mask.width, mask.height, preprocess);
    let (resized_width, resized_height) = (resized_width as f64, resized_height as f64);
    let (left, top) = (left as f64, top as f64);
    let (scale_x, scale_y) = (width / resized_width, height / resized_height);
    let patch = size / grid as f64;
    let mut out = Vec::with_capacity(grid * grid);
    for row in 0..grid {
        for column in 0..grid {
            let x0 = (left + column as f64 * patch) * scale_x;
            let x1 = (left + (column + 1) as f64 * patch) * scale_x;
            let y0 = (top + row as f64 * patch) * scale_y;
            let y1 = (top + (row + 1) as f64 * patch) * scale_y;
            // Pixel centres c + 0.5 within [x0, x1).
            let first_x = (x0 - 0.5).ceil().max(0.0) as usize;
            let last_x = ((x1 - 0.5).ceil().min(width) as usize).max(first_x);
            let first_y = (y0 - 0.5).ceil().max(0.0) as usize;
            let last_y = ((y1 - 0.5).ceil().min(height) as usize).max(first_y);
            let mut sum = 0.0f64;
            let mut count = 0usize;
            for y in first_y..last_y {
                for x in first_x..last_x {
                    sum += f64::from(mask.weights[y * mask.width + x]);
                    count += 1;
                }
            }
            let weight = if count > 0 {
                sum / count as f64
            } else {
                let x = (((x0 + x1) / 2.0) as usize).min(mask.width - 1);
                let y = (((y0 + y1) / 2.0) as usize).min(mask.height - 1);
                f64::from(mask.weights[y * mask.width + x])
            };
            out.push(weight as f32);
        }
    }
    out
}

/// The bias for one image: logits bias per key (`tokens` = 1 + grid²).
pub fn key_bias(weights: &[f32], strength: f32) -> Vec<f32> {
    std::iter::once(0.0)
        .chain(weights.iter().map(|&w| strength * (w - 1.0)))
        .collect()
}

impl AttentionFocus {
    /// The image tower's bias for a batch of masks' patch weights (one `Vec` per image).
    pub fn layer_bias(
        &self,
        patch_weights: &[Vec<f32>],
        layers: usize,
        device: &Device,
    ) -> Result<LayerBias, FocusError> {
        if !(self.strength.is_finite() && self.strength >= 0.0) {
            return Err(FocusError::Strength(self.strength));
        }
        let layers = self.layers.resolve(layers)?;
        let batch = patch_weights.len();
        let tokens = patch_weights.first().map(|w| w.len() + 1).unwrap_or(1);
        let keys: Vec<Vec<f32>> = patch_weights
            .iter()
            .map(|w| key_bias(w, self.strength))
            .collect();
        let bias = match self.queries {
            BiasedQueries::AllTokens => {
                let values: Vec<f32> = keys.into_iter().flatten().collect();
                Tensor::<4>::from_data(TensorData::new(values, [batch, 1, 1, tokens]), device)
            }
            BiasedQueries::ClassToken => {
                let mut values = vec![0.0f32; batch * tokens * tokens];
                for (image, key) in keys.iter().enumerate() {
                    values[image * tokens * tokens..image * tokens * tokens + tokens]
                        .copy_from_slice(key);
                }
                Tensor::<4>::from_data(TensorData::new(values, [batch, 1, tokens, tokens]), device)
            }
        };
        Ok(LayerBias { bias, layers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::preprocess::ResizeMode;

    #[test]
    fn pools_a_half_mask_onto_the_grid() {
        // 8×4 image, left half inside; shortest side 4 → 4, resized 8×4, centre crop 4×4 from x=2.
        let mask = Mask::rectangle(8, 4, 0, 0, 4, 4);
        let weights = patch_weights(&mask, &PreprocessConfig::openai(4), 2);
        assert_eq!(weights, vec![1.0, 0.0, 1.0, 0.0]);
        let squash = PreprocessConfig {
            resize_mode: ResizeMode::Squash,
            ..PreprocessConfig::openai(4)
        };
        assert_eq!(patch_weights(&mask, &squash, 2), vec![1.0, 0.0, 1.0, 0.0]);
        let quarter = patch_weights(
            &Mask::rectangle(8, 8, 0, 0, 2, 2),
            &PreprocessConfig::openai(8),
            2,
        );
        assert_eq!(quarter, vec![0.25, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn bias_spares_the_class_key_and_the_inside() {
        assert_eq!(key_bias(&[1.0, 0.0, 0.5], 2.0), vec![0.0, 0.0, -2.0, -1.0]);
        assert!(key_bias(&[1.0, 0.0], 0.0).iter().all(|&b| b == 0.0));
    }

    #[test]
    fn layer_choices_are_checked() {
        assert_eq!(BiasedLayers::Last(2).resolve(12).unwrap(), vec![10, 11]);
        assert_eq!(
            BiasedLayers::List(vec![12]).resolve(12),
            Err(FocusError::Layer {
                layer: 12,
                layers: 12
            })
        );
    }
}
