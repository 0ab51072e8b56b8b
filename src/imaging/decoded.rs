//! What decoding gives, and its limits: the types the format readers ([`super::dicom`], the
//! `image` crate's in [`super::decode_image`]) share.

use image::DynamicImage;
use serde::Serialize;

/// Largest side we accept; whole-slide pathology images need tiling, which we do not do.
pub const MAX_SIDE: u32 = 16_384;
/// Largest decoded buffer we allow (the wasm heap is 4 GiB at most, shared with the models).
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

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
