//! Visual prompts: the mask drawn into the pixels before CLIP sees them. The overlay is the
//! MedFocusCLIP paper's; the others are the usual alternatives from the visual-prompting
//! literature (blur, crop, mask-out, grey-out).

use serde::{Deserialize, Serialize};

use super::mask::{Mask, MaskError};
use crate::clip::preprocess::{OPENAI_MEAN, Pixels8};
use crate::limits::{MAX_BLUR_SIGMA, MAX_CROP_MARGIN, within};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VisualPrompt {
    /// Tint inside the mask with one colour and outside with another: `(1 − a)·pixel + a·colour`,
    /// `a = alpha × weight` (inside) or `alpha × (1 − weight)` (outside).
    Overlay {
        inside: [u8; 3],
        inside_alpha: f32,
        outside: [u8; 3],
        outside_alpha: f32,
    },
    /// Gaussian blur (σ in pixels of the original image) outside the mask.
    BlurOutside { sigma: f32 },
    /// Crop to the mask's bounding box, grown by `margin` × its size on every side.
    CropToBox { margin: f32 },
    /// Keep the pixels inside, black outside (the image multiplied by the mask).
    BinaryMask,
    /// Keep the pixels inside, CLIP's mean grey outside (≈ 0 after normalisation).
    GreyOutside,
}

impl VisualPrompt {
    /// The paper's overlay: red inside at 35 %, nothing outside.
    pub fn paper_overlay() -> Self {
        VisualPrompt::Overlay {
            inside: [255, 0, 0],
            inside_alpha: 0.35,
            outside: [0, 0, 0],
            outside_alpha: 0.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PromptError {
    #[error(transparent)]
    Mask(#[from] MaskError),
    #[error("{0}")]
    Parameter(String),
}

fn blend(pixel: u8, colour: u8, alpha: f32) -> f32 {
    (1.0 - alpha) * f32::from(pixel) + alpha * f32::from(colour)
}

fn to_u8(value: f32) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

/// Separable Gaussian blur with clamped edges, one channel plane at a time: two f32 planes
/// (8 bytes a pixel) instead of three f32 copies of the whole RGB image (36 bytes a pixel, 2.4 GB
/// for an 8192² image). `each_plane(channel, blurred)` receives each blurred plane in turn.
fn gaussian_blur(image: &Pixels8, sigma: f32, mut each_plane: impl FnMut(usize, &[f32])) {
    let radius = (3.0 * sigma).ceil().max(1.0) as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|x| (-(x * x) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / total).collect();
    let (width, height, channels) = (image.width as isize, image.height as isize, image.channels);
    let pass = |input: &[f32], output: &mut [f32], horizontal: bool| {
        for y in 0..height {
            for x in 0..width {
                let mut acc = 0.0;
                for (offset, weight) in (-radius..=radius).zip(&kernel) {
                    let (sx, sy) = if horizontal {
                        ((x + offset).clamp(0, width - 1), y)
                    } else {
                        (x, (y + offset).clamp(0, height - 1))
                    };
                    acc += weight * input[(sy * width + sx) as usize];
                }
                output[(y * width + x) as usize] = acc;
            }
        }
    };
    let pixels = image.width * image.height;
    let mut plane = vec![0.0f32; pixels];
    let mut across = vec![0.0f32; pixels];
    for channel in 0..channels {
        for (value, pixel) in plane.iter_mut().zip(image.data.chunks_exact(channels)) {
            *value = f32::from(pixel[channel]);
        }
        pass(&plane, &mut across, true);
        pass(&across, &mut plane, false);
        each_plane(channel, &plane);
    }
}

/// The part of the image [`VisualPrompt::CropToBox`] keeps, `[left, top, right, bottom]` in
/// pixels (right and bottom exclusive): the mask's bounding box grown by `margin` × its size.
pub fn crop_box(mask: &Mask, margin: f32) -> Result<[usize; 4], PromptError> {
    within("crop margin", margin, 0.0, MAX_CROP_MARGIN).map_err(PromptError::Parameter)?;
    let (left, top, right, bottom) = mask.bounding_box()?;
    let grow_x = ((right - left) as f32 * margin).round() as usize;
    let grow_y = ((bottom - top) as f32 * margin).round() as usize;
    Ok([
        left.saturating_sub(grow_x),
        top.saturating_sub(grow_y),
        right.saturating_add(grow_x).min(mask.width),
        bottom.saturating_add(grow_y).min(mask.height),
    ])
}

/// Draws `prompt` into `image` (8-bit RGB or grey) using `mask` (same size). Grey images are
/// promoted to RGB first, since a tint needs colour.
///
/// Not split: one match arm per visual prompt, each a few lines of pixel arithmetic.
pub fn apply(image: &Pixels8, mask: &Mask, prompt: &VisualPrompt) -> Result<Pixels8, PromptError> {
    mask.check_matches(image.width, image.height)?;
    let rgb = image.to_rgb();
    let weights = &mask.weights;
    let mut out = rgb.clone();
    match prompt {
        VisualPrompt::Overlay {
            inside,
            inside_alpha,
            outside,
            outside_alpha,
        } => {
            for alpha in [inside_alpha, outside_alpha] {
                if !(0.0..=1.0).contains(alpha) {
                    return Err(PromptError::Parameter(format!(
                        "overlay alpha {alpha} is outside [0, 1]"
                    )));
                }
            }
            for (index, pixel) in out.data.chunks_exact_mut(3).enumerate() {
                let w = weights[index];
                for channel in 0..3 {
                    let tinted = blend(pixel[channel], inside[channel], inside_alpha * w);
                    pixel[channel] = to_u8(blend(
                        to_u8(tinted),
                        outside[channel],
                        outside_alpha * (1.0 - w),
                    ));
                }
            }
        }
        VisualPrompt::BlurOutside { sigma } => {
            within("blur sigma", *sigma, 0.0, MAX_BLUR_SIGMA).map_err(PromptError::Parameter)?;
            if *sigma <= 0.0 {
                return Err(PromptError::Parameter(format!(
                    "blur sigma must be positive, got {sigma}"
                )));
            }
            gaussian_blur(&rgb, *sigma, |channel, blurred| {
                for (pixel, (&w, &blurred)) in out
                    .data
                    .chunks_exact_mut(3)
                    .zip(weights.iter().zip(blurred))
                {
                    let value = &mut pixel[channel];
                    *value = to_u8(w * f32::from(*value) + (1.0 - w) * blurred);
                }
            });
        }
        VisualPrompt::CropToBox { margin } => {
            let [left, top, right, bottom] = crop_box(mask, *margin)?;
            let mut data = Vec::with_capacity((right - left) * (bottom - top) * 3);
            for row in top..bottom {
                data.extend_from_slice(
                    &rgb.data[(row * rgb.width + left) * 3..(row * rgb.width + right) * 3],
                );
            }
            out = Pixels8 {
                width: right - left,
                height: bottom - top,
                channels: 3,
                data,
            };
        }
        VisualPrompt::BinaryMask | VisualPrompt::GreyOutside => {
            let fill: [f32; 3] = if matches!(prompt, VisualPrompt::GreyOutside) {
                OPENAI_MEAN.map(|mean| mean * 255.0)
            } else {
                [0.0; 3]
            };
            for (index, pixel) in out.data.chunks_exact_mut(3).enumerate() {
                let w = weights[index];
                for channel in 0..3 {
                    pixel[channel] =
                        to_u8(w * f32::from(pixel[channel]) + (1.0 - w) * fill[channel]);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Pixels8 {
        Pixels8 {
            width: 4,
            height: 2,
            channels: 1,
            data: vec![10, 20, 30, 40, 50, 60, 70, 80],
        }
    }

    fn left_half() -> Mask {
        Mask::rectangle(4, 2, 0, 0, 2, 2)
    }

    #[test]
    fn overlay_tints_only_inside() {
        let prompt = VisualPrompt::Overlay {
            inside: [255, 0, 0],
            inside_alpha: 0.5,
            outside: [0, 0, 0],
            outside_alpha: 0.0,
        };
        let out = apply(&image(), &left_half(), &prompt).unwrap();
        assert_eq!(&out.data[0..3], &[133, 5, 5]);
        assert_eq!(&out.data[6..9], &[30, 30, 30]);
    }

    #[test]
    fn mask_out_variants_fill_outside() {
        let black = apply(&image(), &left_half(), &VisualPrompt::BinaryMask).unwrap();
        assert_eq!(&black.data[0..3], &[10, 10, 10]);
        assert_eq!(&black.data[9..12], &[0, 0, 0]);
        let grey = apply(&image(), &left_half(), &VisualPrompt::GreyOutside).unwrap();
        assert_eq!(&grey.data[9..12], &[123, 117, 104]);
    }

    #[test]
    fn crop_keeps_the_box_and_margin() {
        let mask = Mask::rectangle(4, 2, 1, 0, 3, 1);
        let out = apply(&image(), &mask, &VisualPrompt::CropToBox { margin: 0.0 }).unwrap();
        assert_eq!((out.width, out.height), (2, 1));
        assert_eq!(out.data, vec![20, 20, 20, 30, 30, 30]);
        let empty = Mask::rectangle(4, 2, 0, 0, 0, 0);
        assert!(matches!(
            apply(&image(), &empty, &VisualPrompt::CropToBox { margin: 0.1 }),
            Err(PromptError::Mask(_))
        ));
    }

    #[test]
    fn blur_leaves_inside_and_smooths_outside() {
        let out = apply(
            &image(),
            &left_half(),
            &VisualPrompt::BlurOutside { sigma: 1.0 },
        )
        .unwrap();
        assert_eq!(out.data[0], 10);
        assert_ne!(out.data[3 * 3], 40);
    }

    #[test]
    fn wrong_sized_mask_is_refused() {
        let mask = Mask::rectangle(3, 2, 0, 0, 1, 1);
        assert!(matches!(
            apply(&image(), &mask, &VisualPrompt::BinaryMask),
            Err(PromptError::Mask(MaskError::SizeMismatch { .. }))
        ));
    }

    /// Issue 16: σ = 10³⁰ overflowed the kernel's length and σ = 10⁴ meant hours of work; a huge
    /// margin overflowed `right + grow_x`. Each is now an error naming the value and the limit,
    /// and the largest allowed values still work.
    #[test]
    fn blur_and_crop_sizes_past_their_limits_are_named_errors() {
        let blur = |sigma| apply(&image(), &left_half(), &VisualPrompt::BlurOutside { sigma });
        for sigma in [1e30, 1e4, f32::INFINITY, MAX_BLUR_SIGMA * 1.01] {
            match blur(sigma) {
                Err(PromptError::Parameter(message)) => {
                    assert!(
                        message.contains("blur sigma") && message.contains("64"),
                        "{message}"
                    )
                }
                other => panic!("σ = {sigma}: {other:?}"),
            }
        }
        assert!(blur(MAX_BLUR_SIGMA).is_ok());
        let crop = |margin| apply(&image(), &left_half(), &VisualPrompt::CropToBox { margin });
        for margin in [1e30, f32::MAX, f32::NAN, -1.0, MAX_CROP_MARGIN + 0.5] {
            match crop(margin) {
                Err(PromptError::Parameter(message)) => {
                    assert!(
                        message.contains("crop margin") && message.contains("10"),
                        "{message}"
                    )
                }
                other => panic!("margin = {margin}: {other:?}"),
            }
        }
        let widest = crop(MAX_CROP_MARGIN).expect("the largest margin crops");
        assert_eq!(
            (widest.width, widest.height),
            (4, 2),
            "clipped to the image"
        );
    }
}
