//! Image preprocessing exactly as open_clip's eval transform does it: torchvision `Resize`
//! (shortest side, bicubic, through Pillow), `CenterCrop`, RGB, `ToTensor`, `Normalize`.
//!
//! Pillow's resampling is reproduced to the bit: separable two-pass convolution (horizontal
//! first, 8-bit intermediate), antialiasing support widened by the scale factor, bicubic with
//! a = −0.5, and 22-bit fixed-point coefficients with Pillow's rounding.

use image::DynamicImage;
use serde::{Deserialize, Serialize};

use burn::tensor::{Device, Tensor, TensorData};

use crate::imaging::window::window_min_max;

/// CLIP's normalisation constants (OpenAI; BiomedCLIP uses the same).
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_1];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Shortest side to the target, then centre crop (open_clip's default).
    Shortest,
    /// Both sides to the target, aspect ratio ignored.
    Squash,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    pub image_size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub resize_mode: ResizeMode,
}

impl PreprocessConfig {
    pub fn openai(image_size: usize) -> Self {
        Self {
            image_size,
            mean: OPENAI_MEAN,
            std: OPENAI_STD,
            resize_mode: ResizeMode::Shortest,
        }
    }
}

/// 8-bit pixels, 1 (grey) or 3 (RGB) interleaved channels.
#[derive(Clone, Debug, PartialEq)]
pub struct Pixels8 {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Pixels8 {
    /// Grey stays grey (Pillow resizes mode `L` images before converting to RGB; the result is
    /// the same either way, at a third of the work). Everything else becomes 8-bit RGB; alpha is
    /// dropped, as `convert("RGB")` does. Images with more than 8 bits per sample (16-bit PNG or
    /// TIFF, float TIFF) are windowed to 8 bits over the range of values present (min–max, what
    /// a viewer shows without window tags): a 12-bit X-ray stored in 16 bits spans 0–4095, and a
    /// plain conversion (÷257, or Pillow's clip at 255) would leave it almost black or white.
    pub fn from_image(image: &DynamicImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let pixels = |channels, data| Self {
            width,
            height,
            channels,
            data,
        };
        // Colour channels of an alpha image (alpha is dropped).
        fn colour<T: Copy>(samples: &[T]) -> impl Iterator<Item = T> + Clone + '_ {
            samples.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]])
        }
        match image {
            DynamicImage::ImageLuma8(grey) => pixels(1, grey.as_raw().clone()),
            DynamicImage::ImageLumaA8(_) => pixels(1, image.to_luma8().into_raw()),
            DynamicImage::ImageLuma16(grey) => pixels(
                1,
                window_min_max(grey.as_raw().iter().map(|&v| f64::from(v))),
            ),
            DynamicImage::ImageLumaA16(grey) => pixels(
                1,
                window_min_max(grey.as_raw().chunks_exact(2).map(|p| f64::from(p[0]))),
            ),
            DynamicImage::ImageRgb16(rgb) => pixels(
                3,
                window_min_max(rgb.as_raw().iter().map(|&v| f64::from(v))),
            ),
            DynamicImage::ImageRgba16(rgba) => {
                pixels(3, window_min_max(colour(rgba.as_raw()).map(f64::from)))
            }
            DynamicImage::ImageRgb32F(rgb) => pixels(
                3,
                window_min_max(rgb.as_raw().iter().map(|&v| f64::from(v))),
            ),
            DynamicImage::ImageRgba32F(rgba) => {
                pixels(3, window_min_max(colour(rgba.as_raw()).map(f64::from)))
            }
            _ => pixels(3, image.to_rgb8().into_raw()),
        }
    }

    pub fn to_rgb(&self) -> Pixels8 {
        if self.channels == 3 {
            return self.clone();
        }
        let data = self
            .data
            .iter()
            .flat_map(|&value| [value, value, value])
            .collect();
        Pixels8 {
            width: self.width,
            height: self.height,
            channels: 3,
            data,
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each output index in `outputs`: first input index and fixed-point weights (Pillow's
/// `precompute_coeffs` + `normalize_coeffs_8bpc`).
fn coefficients(
    in_size: usize,
    out_size: usize,
    outputs: std::ops::Range<usize>,
) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 2.0 * filter_scale;
    outputs
        .map(|out| {
            let center = (out as f64 + 0.5) * scale;
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (min..max)
                .map(|x| bicubic((x as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    (if scaled < 0.0 {
                        scaled - 0.5
                    } else {
                        scaled + 0.5
                    }) as i32
                })
                .collect();
            (min, fixed)
        })
        .collect()
}

fn clip8(accumulator: i64) -> u8 {
    (accumulator >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `Image.resize(size, BICUBIC)` for 8-bit grey or RGB.
pub fn resize_bicubic(image: &Pixels8, out_width: usize, out_height: usize) -> Pixels8 {
    resize_window(
        image,
        [out_width, out_height],
        [0, 0, out_width, out_height],
    )
}

/// The window `[left, top, width, height]` of Pillow's resize of `image` to `out` = `[width,
/// height]`. Each output pixel depends only on its own coefficients, so computing just the
/// window gives Pillow's pixels exactly, and a very elongated image (resized to thousands of
/// pixels along its long side before the crop) costs no more than its crop.
fn resize_window(image: &Pixels8, out: [usize; 2], window: [usize; 4]) -> Pixels8 {
    let channels = image.channels;
    let [left, top, width, height] = window;
    let rounding = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass over every input row, only the window's columns.
    let row_in = image.width * channels;
    let mut horizontal = vec![0u8; width * image.height * channels];
    if out[0] != image.width {
        let coeffs = coefficients(image.width, out[0], left..left + width);
        for row in 0..image.height {
            let line = &image.data[row * row_in..(row + 1) * row_in];
            for (column, (min, weights)) in coeffs.iter().enumerate() {
                for channel in 0..channels {
                    let mut acc = rounding;
                    for (offset, &weight) in weights.iter().enumerate() {
                        acc += i64::from(line[(min + offset) * channels + channel])
                            * i64::from(weight);
                    }
                    horizontal[(row * width + column) * channels + channel] = clip8(acc);
                }
            }
        }
    } else {
        for row in 0..image.height {
            let start = row * row_in + left * channels;
            horizontal[row * width * channels..(row + 1) * width * channels]
                .copy_from_slice(&image.data[start..start + width * channels]);
        }
    }
    // Vertical pass, only the window's rows.
    let stride = width * channels;
    if out[1] == image.height {
        let data = horizontal[top * stride..(top + height) * stride].to_vec();
        return Pixels8 {
            width,
            height,
            channels,
            data,
        };
    }
    let coeffs = coefficients(image.height, out[1], top..top + height);
    let mut data = vec![0u8; height * stride];
    for (row, (min, weights)) in coeffs.iter().enumerate() {
        for column in 0..stride {
            let mut acc = rounding;
            for (offset, &weight) in weights.iter().enumerate() {
                acc += i64::from(horizontal[(min + offset) * stride + column]) * i64::from(weight);
            }
            data[row * stride + column] = clip8(acc);
        }
    }
    Pixels8 {
        width,
        height,
        channels,
        data,
    }
}

/// Python's `round()` for the half-way case: to even.
fn round_half_even(value: f64) -> usize {
    let floor = value.floor();
    let rounded = if value - floor == 0.5 {
        if floor as i64 % 2 == 0 {
            floor
        } else {
            floor + 1.0
        }
    } else {
        value.round()
    };
    rounded.max(0.0) as usize
}

/// The geometric part: resize (and crop) to `size`×`size`, 8-bit RGB. This is what the
/// reference pipeline holds just before `ToTensor`.
pub fn resize_and_crop(image: &Pixels8, config: &PreprocessConfig) -> Pixels8 {
    let size = config.image_size;
    let (resized, [left, top]) = crop_geometry(image.width, image.height, config);
    resize_window(image, resized, [left, top, size, size]).to_rgb()
}

/// Where a `width`×`height` image goes in the transform: the size it is resized to
/// (torchvision's shortest-side rule, or squashed), and the top-left corner of the
/// `image_size`×`image_size` centre crop in the resized image (Python's half-to-even rounding).
/// Anything that must line up with the model input (a mask pooled to patches) uses this too.
pub fn crop_geometry(
    width: usize,
    height: usize,
    config: &PreprocessConfig,
) -> ([usize; 2], [usize; 2]) {
    let size = config.image_size;
    let resized = match config.resize_mode {
        ResizeMode::Squash => [size, size],
        ResizeMode::Shortest => {
            let (short, long) = if width <= height {
                (width, height)
            } else {
                (height, width)
            };
            let new_long = (size as f64 * long as f64 / short as f64) as usize;
            if width <= height {
                [size, new_long]
            } else {
                [new_long, size]
            }
        }
    };
    let left = round_half_even((resized[0] as f64 - size as f64) / 2.0);
    let top = round_half_even((resized[1] as f64 - size as f64) / 2.0);
    (resized, [left, top])
}

/// `[3, size, size]` floats, `(x/255 − mean) / std`.
pub fn normalize(rgb: &Pixels8, config: &PreprocessConfig) -> Vec<f32> {
    let plane = rgb.width * rgb.height;
    let mut out = vec![0.0f32; 3 * plane];
    for (index, pixel) in rgb.data.chunks_exact(3).enumerate() {
        for channel in 0..3 {
            out[channel * plane + index] =
                (f32::from(pixel[channel]) / 255.0 - config.mean[channel]) / config.std[channel];
        }
    }
    out
}

/// The whole eval transform: image → `[3, size, size]` model input.
pub fn preprocess(image: &Pixels8, config: &PreprocessConfig) -> Vec<f32> {
    normalize(&resize_and_crop(image, config), config)
}

/// A batch of preprocessed images as one `[batch, 3, size, size]` tensor.
pub fn batch_tensor(images: &[Vec<f32>], image_size: usize, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = images.iter().flatten().copied().collect();
    Tensor::from_data(
        TensorData::new(values, [images.len(), 3, image_size, image_size]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::window::window;

    #[test]
    fn a_12_bit_xray_in_a_16_bit_png_is_windowed_not_left_black() {
        // 12-bit values 1000..=4095 in a 16-bit grey PNG, as X-ray exports store them.
        let (width, height) = (64u32, 8u32);
        let values: Vec<u16> = (0..width * height)
            .map(|i| 1000 + ((i * 3095) / (width * height - 1)) as u16)
            .collect();
        let png =
            image::ImageBuffer::<image::Luma<u16>, _>::from_raw(width, height, values).unwrap();
        let mut bytes = Vec::new();
        DynamicImage::ImageLuma16(png)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        let decoded = crate::imaging::decode_image(&bytes).unwrap();
        let pixels = Pixels8::from_image(&decoded.pixels);
        assert_eq!(pixels.channels, 1);
        assert_eq!(*pixels.data.iter().min().unwrap(), 0);
        assert_eq!(*pixels.data.iter().max().unwrap(), 255);
        // Monotonic and spread over the whole range (÷257 would give 3..15).
        assert!(pixels.data.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(
            pixels
                .data
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 200
        );
        // Float and constant images: no NaN, no division by zero.
        assert_eq!(window_min_max([5.0f64, 5.0].into_iter()), [0, 0]);
        assert_eq!(
            window_min_max([0.0f64, f64::NAN, 2.0].into_iter()),
            [0, 0, 255]
        );
        assert_eq!(
            window([-10.0f64, 50.0, 200.0].into_iter(), 0.0, 100.0),
            [0, 128, 255]
        );
    }

    #[test]
    fn identity_size_is_untouched_and_constant_stays_constant() {
        let image = Pixels8 {
            width: 4,
            height: 4,
            channels: 1,
            data: vec![77; 16],
        };
        assert_eq!(resize_bicubic(&image, 4, 4), image);
        let down = resize_bicubic(&image, 3, 2);
        assert!(down.data.iter().all(|&value| value == 77));
        let up = resize_bicubic(&image, 9, 7);
        assert!(up.data.iter().all(|&value| value == 77));
    }

    #[test]
    fn a_very_elongated_image_costs_only_its_crop() {
        // 2×20000 → shortest side 224 means a 224×2 240 000 resize before the crop; only the
        // 224×224 window is computed.
        let image = Pixels8 {
            width: 2,
            height: 20_000,
            channels: 1,
            data: vec![200; 40_000],
        };
        let out = resize_and_crop(&image, &PreprocessConfig::openai(224));
        assert_eq!((out.width, out.height, out.channels), (224, 224, 3));
        assert!(out.data.iter().all(|&value| value == 200));
    }

    #[test]
    fn crop_offsets_round_like_python() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(3.2), 3);
    }

    #[test]
    fn normalises_with_clip_constants() {
        let rgb = Pixels8 {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![255, 0, 128],
        };
        let out = normalize(&rgb, &PreprocessConfig::openai(1));
        assert!((out[0] - (1.0 - OPENAI_MEAN[0]) / OPENAI_STD[0]).abs() < 1e-6);
        assert!((out[1] + OPENAI_MEAN[1] / OPENAI_STD[1]).abs() < 1e-6);
    }
}
