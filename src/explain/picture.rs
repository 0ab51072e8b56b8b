//! Heat-maps as pictures: a colour scale, the map alone (transparent where the tower saw
//! nothing) and the map blended over the image.

use super::HeatMap;
use crate::clip::preprocess::Pixels8;

/// A turbo-like scale (Google's Turbo, sampled at eleven points and interpolated): dark blue
/// for 0 through green to dark red for 1, readable on grey medical images.
const SCALE: [[u8; 3]; 11] = [
    [48, 18, 59],
    [68, 84, 196],
    [68, 144, 254],
    [31, 200, 222],
    [41, 239, 162],
    [125, 255, 86],
    [193, 243, 52],
    [241, 202, 58],
    [254, 146, 42],
    [234, 79, 13],
    [122, 4, 3],
];

/// The colour of a value in [0, 1] (clamped).
pub fn colour(value: f32) -> [u8; 3] {
    let position = value.clamp(0.0, 1.0) * (SCALE.len() - 1) as f32;
    let low = (position.floor() as usize).min(SCALE.len() - 2);
    let fraction = position - low as f32;
    let mut out = [0u8; 3];
    for (channel, slot) in out.iter_mut().enumerate() {
        let a = f32::from(SCALE[low][channel]);
        let b = f32::from(SCALE[low + 1][channel]);
        *slot = (a + (b - a) * fraction).round() as u8;
    }
    out
}

/// The heat-map alone as RGBA pixels: coloured where the tower saw the image, transparent
/// elsewhere.
pub fn heat_rgba(heat: &HeatMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(heat.values.len() * 4);
    for &value in &heat.values {
        if value.is_nan() {
            out.extend_from_slice(&[0, 0, 0, 0]);
        } else {
            out.extend_from_slice(&colour(value));
            out.push(255);
        }
    }
    out
}

/// The heat-map over `image` (same size) at `opacity` as RGB pixels; what the tower did not
/// see is shown darkened, so nobody reads a heat-map into it.
pub fn blended_rgb(image: &Pixels8, heat: &HeatMap, opacity: f32) -> Vec<u8> {
    let rgb = image.to_rgb();
    let opacity = opacity.clamp(0.0, 1.0);
    let mut out = Vec::with_capacity(rgb.data.len());
    for (pixel, &value) in rgb.data.chunks_exact(3).zip(&heat.values) {
        if value.is_nan() {
            out.extend(pixel.iter().map(|&channel| channel / 3));
        } else {
            let tint = colour(value);
            out.extend(pixel.iter().zip(tint).map(|(&channel, tint)| {
                ((1.0 - opacity) * f32::from(channel) + opacity * f32::from(tint)).round() as u8
            }));
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
#[error("encoding the heat-map PNG failed: {0}")]
pub struct PngError(String);

/// PNG bytes of 8-bit pixels (`channels` 3 or 4).
pub fn png(
    width: usize,
    height: usize,
    channels: usize,
    pixels: &[u8],
) -> Result<Vec<u8>, PngError> {
    use image::ImageEncoder;
    let colour = if channels == 4 {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(pixels, width as u32, height as u32, colour)
        .map_err(|error| PngError(error.to_string()))?;
    Ok(bytes)
}

/// The heat-map alone and blended over the image, as PNG files' bytes.
pub fn heat_pngs(
    image: &Pixels8,
    heat: &HeatMap,
    opacity: f32,
) -> Result<(Vec<u8>, Vec<u8>), PngError> {
    Ok((
        png(heat.width, heat.height, 4, &heat_rgba(heat))?,
        png(
            heat.width,
            heat.height,
            3,
            &blended_rgb(image, heat, opacity),
        )?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_runs_from_dark_blue_to_dark_red_and_clamps() {
        assert_eq!(colour(0.0), SCALE[0]);
        assert_eq!(colour(1.0), SCALE[10]);
        assert_eq!(colour(-3.0), SCALE[0]);
        assert_eq!(colour(f32::INFINITY), SCALE[10]);
        assert_eq!(colour(0.05), [58, 51, 128]);
    }

    #[test]
    fn unseen_pixels_are_transparent_and_darkened() {
        let heat = HeatMap {
            width: 2,
            height: 1,
            values: vec![1.0, f32::NAN],
        };
        let image = Pixels8 {
            width: 2,
            height: 1,
            channels: 3,
            data: vec![90, 90, 90, 90, 90, 90],
        };
        assert_eq!(heat_rgba(&heat), vec![122, 4, 3, 255, 0, 0, 0, 0]);
        let blended = blended_rgb(&image, &heat, 0.5);
        assert_eq!(blended, vec![106, 47, 47, 30, 30, 30]);
        let (alone, over) = heat_pngs(&image, &heat, 0.5).unwrap();
        let decoded = image::load_from_memory(&alone).unwrap().to_rgba8();
        assert_eq!(decoded.as_raw(), &heat_rgba(&heat));
        assert_eq!(
            image::load_from_memory(&over).unwrap().to_rgb8().as_raw(),
            &blended
        );
    }
}
