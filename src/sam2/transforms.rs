//! `sam2/utils/transforms.py`: the predictor's image preprocessing (to a float tensor, resize to
//! S×S with antialiased bilinear — torchvision's `Resize` on tensors — and ImageNet
//! normalisation), prompt coordinates into the model's frame, and mask logits back to the
//! image's size (bilinear, `align_corners=False`).

use std::ops::Range;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::clip::preprocess::Pixels8;

pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// For each output index: first input index and normalised weights of PyTorch's antialiased
/// interpolation (`_upsample_bilinear2d_aa`, a port of Pillow's resampling, in floats).
fn antialias_weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let support = if scale >= 1.0 { scale } else { 1.0 };
    let inverse = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..output)
        .map(|out| {
            let center = scale * (out as f64 + 0.5);
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let weights: Vec<f64> = (min..max)
                .map(|j| {
                    let x = ((j as f64 - center + 0.5) * inverse).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let weights = weights
                .iter()
                .map(|w| {
                    if total != 0.0 {
                        (w / total) as f32
                    } else {
                        *w as f32
                    }
                })
                .collect();
            (min, weights)
        })
        .collect()
}

/// `ToTensor` → `Resize((size, size))` (antialiased bilinear, aspect ratio not kept) →
/// `Normalize(ImageNet)`: `[3, size, size]` planes, row-major.
pub fn preprocess(image: &Pixels8, size: usize) -> Vec<f32> {
    let rgb = image.to_rgb();
    let (width, height) = (rgb.width, rgb.height);
    let columns = antialias_weights(width, size);
    let rows = antialias_weights(height, size);
    let mut out = vec![0.0f32; 3 * size * size];
    let mut horizontal = vec![0.0f32; height * size];
    for channel in 0..3 {
        for y in 0..height {
            let row = &rgb.data[y * width * 3..(y + 1) * width * 3];
            for (x, (start, weights)) in columns.iter().enumerate() {
                let mut sum = 0.0f32;
                for (offset, weight) in weights.iter().enumerate() {
                    sum += f32::from(row[(start + offset) * 3 + channel]) / 255.0 * weight;
                }
                horizontal[y * size + x] = sum;
            }
        }
        let plane = &mut out[channel * size * size..(channel + 1) * size * size];
        for (y, (start, weights)) in rows.iter().enumerate() {
            for x in 0..size {
                let mut sum = 0.0f32;
                for (offset, weight) in weights.iter().enumerate() {
                    sum += horizontal[(start + offset) * size + x] * weight;
                }
                plane[y * size + x] = (sum - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel];
            }
        }
    }
    out
}

/// The preprocessed image as the encoder's `[1, 3, size, size]` input.
pub fn input_tensor(image: &Pixels8, size: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(preprocess(image, size), [1, 3, size, size]),
        device,
    )
}

/// Original-image pixels → the model's input frame (`transform_coords(normalize=True)`).
pub fn to_model_coords(point: [f32; 2], width: usize, height: usize, size: usize) -> [f32; 2] {
    [
        point[0] / width as f32 * size as f32,
        point[1] / height as f32 * size as f32,
    ]
}

/// The two taps of `F.interpolate(mode="bilinear", align_corners=False)` along one axis, per
/// output index: (low index, high index, low weight, high weight).
pub fn bilinear_taps(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|out| {
            let source = ((out as f32 + 0.5) * scale - 0.5).max(0.0);
            let low = (source as usize).min(input - 1);
            let high = (low + 1).min(input - 1);
            let fraction = source - low as f32;
            (low, high, 1.0 - fraction, fraction)
        })
        .collect()
}

/// Interpolates `x` along `dim` (1 or 2 of a `[n, h, w]` tensor) to `output` samples with two
/// gathered taps, giving only the output indices in `range` (a band of rows, say).
fn interpolate_axis(x: Tensor<3>, dim: usize, output: usize, range: Range<usize>) -> Tensor<3> {
    let input = x.dims()[dim];
    let device = x.device();
    let taps = &bilinear_taps(input, output)[range];
    let length = taps.len();
    let index = |pick: fn(&(usize, usize, f32, f32)) -> usize| {
        let values: Vec<i32> = taps.iter().map(|tap| pick(tap) as i32).collect();
        Tensor::<1, Int>::from_data(TensorData::new(values, [length]), &device)
    };
    let weight = |pick: fn(&(usize, usize, f32, f32)) -> f32| {
        let values: Vec<f32> = taps.iter().map(pick).collect();
        let shape = if dim == 1 {
            [1, length, 1]
        } else {
            [1, 1, length]
        };
        Tensor::<3>::from_data(TensorData::new(values, shape), &device)
    };
    x.clone().select(dim, index(|tap| tap.0)) * weight(|tap| tap.2)
        + x.select(dim, index(|tap| tap.1)) * weight(|tap| tap.3)
}

/// The most bytes of full-size mask logits made at once: WebGPU's default storage-buffer limit
/// is 128 MiB, and one f32 mask of a 32-megapixel image alone is 128 MiB. Mask logits are
/// brought to the image's size in bands of rows under this (the interpolation gives each row
/// from two rows of the low-resolution logits, so a band is computed exactly as the whole).
pub const MAX_FULL_SIZE_BYTES: usize = 64 << 20;

/// `postprocess_masks` in pieces, step 1: `[n, l, l]` logits → `[n, l, width]` (columns first,
/// as PyTorch's kernel combines them).
pub fn upscale_columns(low_res: Tensor<3>, width: usize) -> Tensor<3> {
    interpolate_axis(low_res, 2, width, 0..width)
}

/// Step 2: rows `rows` of the `[n, height, width]` result from [`upscale_columns`]'s output.
pub fn upscale_rows(wide: Tensor<3>, height: usize, rows: Range<usize>) -> Tensor<3> {
    interpolate_axis(wide, 1, height, rows)
}

/// Bands of rows covering `0..height` such that `masks` f32 masks of `width` columns take at
/// most `max_bytes` a band (at least one row, whatever the width).
pub fn row_bands(
    masks: usize,
    width: usize,
    height: usize,
    max_bytes: usize,
) -> impl Iterator<Item = Range<usize>> {
    let rows = (max_bytes / (masks.max(1) * width.max(1) * 4)).max(1);
    (0..height)
        .step_by(rows)
        .map(move |start| start..(start + rows).min(height))
}

/// `postprocess_masks`: `[b, m, l, l]` logits → `[b, m, height, width]`, in one piece. Tests
/// compare the bands against it; anything sized by a user's image reads masks in bands instead
/// ([`crate::sam2::predictor::Prediction::read_inside`]).
pub fn upscale_masks(low_res: Tensor<4>, width: usize, height: usize) -> Tensor<4> {
    let [batch, masks, low_h, low_w] = low_res.dims();
    let flat = low_res.reshape([batch * masks, low_h, low_w]);
    upscale_rows(upscale_columns(flat, width), height, 0..height)
        .reshape([batch, masks, height, width])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antialias_weights_are_plain_bilinear_when_upsampling() {
        // 2 → 4: centres at 0.25, 0.75, 1.25, 1.75 in input pixels.
        let weights = antialias_weights(2, 4);
        assert_eq!(weights[0], (0, vec![1.0]));
        assert_eq!(weights[1].0, 0);
        assert!((weights[1].1[0] - 0.75).abs() < 1e-6 && (weights[1].1[1] - 0.25).abs() < 1e-6);
        assert_eq!(weights[3].0, 1);
    }

    #[test]
    fn bilinear_taps_match_pytorch_and_upscaling_is_exact_at_the_same_size() {
        // 2 → 4: sources −0.25 (clamped to 0), 0.25, 0.75, 1.25 (high tap clamped).
        let taps = bilinear_taps(2, 4);
        assert_eq!(taps[0], (0, 1, 1.0, 0.0));
        assert_eq!(taps[1], (0, 1, 0.75, 0.25));
        assert_eq!(taps[3], (1, 1, 0.75, 0.25));
        let device = Device::flex();
        let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [1, 1, 3, 4]), &device);
        let same = upscale_masks(x.clone(), 4, 3)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(same, values);
        let up = upscale_masks(x, 8, 6);
        assert_eq!(up.dims(), [1, 1, 6, 8]);
    }
}
