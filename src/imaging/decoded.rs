//! What decoding gives, and its limits: the types the format readers ([`super::dicom`], the
//! `image` crate's in [`super::decode_image`]) share.

use image::DynamicImage;
use serde::Serialize;

use crate::limits::{MAX_IMAGE_PIXELS, MAX_SIDE};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("not a supported image format (DICOM, JPEG, PNG, BMP, TIFF, WebP): {0}")]
    UnknownFormat(String),
    #[error("the {format} image is corrupt or truncated: {detail}")]
    Corrupt { format: String, detail: String },
    #[error("this {format} file cannot be read here: {detail}")]
    Unsupported { format: String, detail: String },
    #[error("the image is too large to process here: {0}")]
    TooLarge(String),
}

/// An image's size checked against [`MAX_SIDE`] and [`MAX_IMAGE_PIXELS`], from its header,
/// before a pixel is decoded.
pub(super) fn check_size(width: u32, height: u32) -> Result<(), ImageError> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageError::TooLarge(format!(
            "{width}×{height} pixels (at most {MAX_SIDE} a side)"
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(ImageError::TooLarge(format!(
            "{width}×{height} pixels is {:.1} megapixels; at most {:.1} ({MAX_IMAGE_PIXELS} pixels) \
             are processed",
            pixels as f64 / 1e6,
            MAX_IMAGE_PIXELS as f64 / 1e6
        )));
    }
    Ok(())
}

/// How the pixels are stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColorInfo {
    pub channels: u8,
    pub bits_per_channel: u8,
    pub has_alpha: bool,
    /// The decoder's name for the layout, e.g. `L8`, `Rgb8`, `L16`; for DICOM the photometric
    /// interpretation (`MONOCHROME2`, `YBR_FULL_422`).
    pub layout: String,
}

/// A decoded image with what the user should know about it.
#[derive(Clone, Debug)]
pub struct DecodedImage {
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub color: ColorInfo,
    /// True when every pixel has equal colour channels: a grayscale scan stored as RGB.
    pub grayscale_content: bool,
    pub pixels: DynamicImage,
    /// What the decoder chose that the user should know (DICOM: the window used, the frame of a
    /// multi-frame file).
    pub notes: Vec<String>,
}

impl DecodedImage {
    /// 8-bit RGBA, row-major: what a browser canvas (`ImageData`) takes.
    pub fn to_rgba8(&self) -> Vec<u8> {
        self.pixels.to_rgba8().into_raw()
    }

    /// One line for the CLI and the page.
    pub fn summary(&self) -> String {
        format!(
            "{} {}×{} px, {} channel{} of {} bit ({}){}",
            self.format,
            self.width,
            self.height,
            self.color.channels,
            if self.color.channels == 1 { "" } else { "s" },
            self.color.bits_per_channel,
            self.color.layout,
            if self.grayscale_content && self.color.channels > 1 {
                ", grey content"
            } else {
                ""
            },
        ) + &self
            .notes
            .iter()
            .map(|note| format!("; {note}"))
            .collect::<String>()
    }
}

/// Whether every pixel has equal colour channels.
pub(super) fn is_grey(pixels: &DynamicImage) -> bool {
    if !pixels.color().has_color() {
        return true;
    }
    pixels
        .to_rgb8()
        .pixels()
        .all(|pixel| pixel[0] == pixel[1] && pixel[1] == pixel[2])
}
