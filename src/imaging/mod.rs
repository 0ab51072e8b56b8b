//! Decoding the user's images, the same code natively and inside wasm.
//!
//! Medical images arrive as JPEG/PNG exports (chest X-rays are usually 8- or 16-bit grayscale,
//! MRI slices often RGB with grey content). Decoding is bounded so that a hostile or broken file
//! gives an error instead of exhausting the browser tab's memory. DICOM files (`dicom`) are
//! windowed to 8 bits as a viewer shows them.

mod decoded;
mod dicom;
pub mod window;

pub use decoded::{ColorInfo, DecodedImage, ImageError};
pub use dicom::is_dicom;

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

use crate::limits::{MAX_DECODED_BYTES, MAX_SIDE};
use decoded::{check_size, is_grey};

/// Decode an image from its file bytes (format sniffed from the content, not a file name).
pub fn decode_image(bytes: &[u8]) -> Result<DecodedImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if is_dicom(bytes) {
        return dicom::decode_dicom(bytes);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|error| ImageError::UnknownFormat(error.to_string()))?;
    let format = reader.format().ok_or_else(|| {
        ImageError::UnknownFormat(format!("unrecognised header {}", hex_prefix(bytes)))
    })?;
    // The header's size first: the decoder's own limits bound each side and its buffer, not
    // the pixel count that the pipeline's full-size copies grow with.
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|error| decode_error(format, error))?;
    check_size(width, height)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);

    let format_name = format_name(format);
    let pixels = reader
        .decode()
        .map_err(|error| decode_error(format, error))?;
    // The JPEG decoder pads a cut-off scan with grey instead of failing; a silently half-grey
    // scan is worse than an error in a medical tool, so require the end-of-image marker.
    if format == ImageFormat::Jpeg && !jpeg_has_end_after_last_scan(bytes) {
        return Err(ImageError::Corrupt {
            format: format_name,
            detail: "the image data ends before the end-of-image marker (file cut short?)".into(),
        });
    }
    // The PNG decoder stops after the image data and never reads the end chunk: require it, so
    // that a file cut anywhere is an error, as for JPEG.
    if format == ImageFormat::Png && !png_has_end(bytes) {
        return Err(ImageError::Corrupt {
            format: format_name,
            detail: "the file ends before its IEND chunk (file cut short?)".into(),
        });
    }
    if pixels.width() == 0 || pixels.height() == 0 {
        return Err(ImageError::Corrupt {
            format: format_name,
            detail: "zero width or height".into(),
        });
    }
    let color = pixels.color();
    let channels = color.channel_count();
    Ok(DecodedImage {
        format: format_name,
        width: pixels.width(),
        height: pixels.height(),
        color: ColorInfo {
            channels,
            bits_per_channel: (color.bits_per_pixel() / u16::from(channels)) as u8,
            has_alpha: color.has_alpha(),
            layout: format!("{color:?}"),
        },
        grayscale_content: is_grey(&pixels),
        pixels,
        notes: Vec::new(),
    })
}

/// Whether an end-of-image marker (FF D9) follows the start of the last scan (FF DA). Inside
/// entropy-coded data every FF byte is stuffed (FF 00) or a restart marker, so an FF D9 there is
/// impossible; an EXIF thumbnail's own markers come before the main image's scans.
fn jpeg_has_end_after_last_scan(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|pair| pair == [0xFF, marker]);
    matches!((last(0xDA), last(0xD9)), (Some(scan), Some(end)) if end > scan)
}

/// Whether a whole IEND chunk (length 0, type, CRC) is present.
fn png_has_end(bytes: &[u8]) -> bool {
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    bytes.windows(IEND.len()).rev().any(|window| window == IEND)
}

fn decode_error(format: ImageFormat, error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Limits(limit) => ImageError::TooLarge(limit.to_string()),
        image::ImageError::Unsupported(detail) => ImageError::UnknownFormat(detail.to_string()),
        other => ImageError::Corrupt {
            format: format_name(format),
            detail: other.to_string(),
        },
    }
}

fn format_name(format: ImageFormat) -> String {
    format
        .extensions_str()
        .first()
        .map_or_else(|| format!("{format:?}"), |ext| ext.to_uppercase())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use image::DynamicImage;

    use super::*;

    fn png_bytes(image: &DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn decodes_grayscale_png_and_reports_layout() {
        let image = DynamicImage::ImageLuma8(image::GrayImage::from_fn(7, 5, |x, y| {
            image::Luma([(x * 30 + y) as u8])
        }));
        let decoded = decode_image(&png_bytes(&image)).unwrap();
        assert_eq!((decoded.width, decoded.height), (7, 5));
        assert_eq!(decoded.format, "PNG");
        assert_eq!(decoded.color.channels, 1);
        assert_eq!(decoded.color.bits_per_channel, 8);
        assert!(decoded.grayscale_content);
        let rgba = decoded.to_rgba8();
        assert_eq!(rgba.len(), 7 * 5 * 4);
        // Pixel (3, 2): grey 92 replicated, opaque.
        let offset = (2 * 7 + 3) * 4;
        assert_eq!(&rgba[offset..offset + 4], &[92, 92, 92, 255]);
    }

    #[test]
    fn a_jpeg_cut_inside_its_scan_is_refused() {
        let image = DynamicImage::ImageLuma8(image::GrayImage::from_fn(64, 64, |x, y| {
            image::Luma([((x * y) % 251) as u8])
        }));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        let whole = decode_image(&bytes).unwrap();
        assert_eq!((whole.width, whole.height), (64, 64));
        let error = decode_image(&bytes[..bytes.len() - 40]).unwrap_err();
        assert!(error.to_string().contains("end-of-image"), "{error}");
    }

    #[test]
    fn rgb_with_colour_is_not_grey() {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(4, 4, |x, _| {
            image::Rgb([x as u8 * 10, 0, 0])
        }));
        let decoded = decode_image(&png_bytes(&image)).unwrap();
        assert_eq!(decoded.color.channels, 3);
        assert!(!decoded.grayscale_content);
        assert!(decoded.summary().contains("4×4"));
    }

    #[test]
    fn empty_garbage_and_truncated_inputs_are_clear_errors() {
        assert!(matches!(decode_image(&[]), Err(ImageError::Empty)));
        let garbage = decode_image(b"definitely not an image").unwrap_err();
        assert!(matches!(garbage, ImageError::UnknownFormat(_)), "{garbage}");

        let image = DynamicImage::ImageRgb8(image::RgbImage::new(64, 64));
        let bytes = png_bytes(&image);
        let truncated = decode_image(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(
            matches!(truncated, ImageError::Corrupt { .. }),
            "{truncated}"
        );
        assert!(truncated.to_string().contains("PNG"), "{truncated}");
    }

    /// An 8192² grey PNG is 64 MB decoded, well inside the decoder's own limits; the pipeline's
    /// full-size copies of it (a blur's f32 planes: 2.4 GB) are not, so it is refused from its
    /// header. Made as a PNG of one colour, which compresses to a few hundred kilobytes.
    #[test]
    fn an_image_with_more_pixels_than_the_limit_is_refused_from_its_header() {
        let side = 8192;
        let image = DynamicImage::ImageLuma8(image::GrayImage::new(side, side));
        let bytes = png_bytes(&image);
        let error = decode_image(&bytes).unwrap_err();
        assert!(matches!(error, ImageError::TooLarge(_)), "{error}");
        assert!(
            error
                .to_string()
                .contains("8192×8192 pixels is 67.1 megapixels; at most 33.6"),
            "{error}"
        );
        // Just under the limit still decodes.
        let image = DynamicImage::ImageLuma8(image::GrayImage::new(5792, 5792));
        assert_eq!(decode_image(&png_bytes(&image)).unwrap().width, 5792);
    }

    #[test]
    fn oversized_dimensions_are_refused_before_allocating() {
        // A well-formed 24-bit BMP header that claims 20000×20000 pixels (over MAX_SIDE), with no pixel data.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"BM");
        bytes.extend_from_slice(&(54u32).to_le_bytes()); // file size
        bytes.extend_from_slice(&0u32.to_le_bytes()); // reserved
        bytes.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
        bytes.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER size
        bytes.extend_from_slice(&20_000i32.to_le_bytes());
        bytes.extend_from_slice(&20_000i32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes()); // planes
        bytes.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
        bytes.extend_from_slice(&[0u8; 24]); // no compression, sizes, resolution, palette
        let error = decode_image(&bytes).unwrap_err();
        assert!(matches!(error, ImageError::TooLarge(_)), "{error}");
    }
}
