//! DICOM and wide-sample images: every fixture `scripts/reference/gen_dicom.py` wrote with
//! pydicom decodes to the 8-bit picture pydicom's transforms give (modality LUT, VOI LUT or
//! window with its function, min–max, MONOCHROME1, first frame); lossy JPEG within two levels of
//! Pillow's decode; bad files refused with a named error. A 16-bit TIFF is windowed like a
//! 16-bit PNG.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::io::Cursor;
use std::path::PathBuf;

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma};
use medfocus::imaging::{ImageError, decode_image};
use serde_json::Value;

fn fixtures() -> PathBuf {
    common::manifest().join("tests/fixtures/dicom")
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap()
}

#[test]
fn every_dicom_fixture_decodes_to_the_reference_picture() {
    let expected = expected();
    let images = expected["images"].as_object().unwrap();
    assert!(images.len() >= 9, "the generator wrote {}", images.len());
    for (name, facts) in images {
        let bytes = std::fs::read(fixtures().join(format!("{name}.dcm"))).unwrap();
        assert!(medfocus::imaging::is_dicom(&bytes), "{name}");
        let decoded = decode_image(&bytes).unwrap_or_else(|error| panic!("{name}: {error}"));
        let reference = image::open(fixtures().join(format!("{name}.png"))).unwrap();
        assert_eq!(
            (decoded.width, decoded.height),
            (reference.width(), reference.height()),
            "{name}"
        );
        assert_eq!(decoded.format, "DICOM");
        let (ours, theirs) = if reference.color().has_color() {
            (
                decoded.pixels.to_rgb8().into_raw(),
                reference.to_rgb8().into_raw(),
            )
        } else {
            assert_eq!(decoded.color.channels, 1, "{name}");
            (
                decoded.pixels.to_luma8().into_raw(),
                reference.to_luma8().into_raw(),
            )
        };
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        // Lossless codecs and native data: exact. JPEG baseline: decoders' IDCTs (and the
        // chroma upsampling) differ by a level or two.
        let allowed = if facts["lossy"].as_bool() == Some(true) {
            3
        } else {
            0
        };
        assert!(
            worst <= allowed,
            "{name}: a pixel differs by {worst} from pydicom's picture ({})",
            decoded.summary()
        );
        // The picture is not flat: windows and inversion did something visible.
        let (low, high) = (ours.iter().min().unwrap(), ours.iter().max().unwrap());
        assert!(high - low > 100, "{name}: {low}..{high}");
    }
}

#[test]
fn the_decoder_says_which_window_and_frame_it_used() {
    let summary = |name: &str| {
        decode_image(&std::fs::read(fixtures().join(format!("{name}.dcm"))).unwrap())
            .unwrap()
            .summary()
    };
    let ct = summary("ct-window");
    assert!(
        ct.contains("window centre 40 / width 400 (the first of the file's 2)"),
        "{ct}"
    );
    assert!(
        ct.contains("(MONOCHROME2); 12 bits stored in 16, signed"),
        "{ct}"
    );
    assert!(summary("mr-jpeg-lossless").contains("SIGMOID"));
    assert!(summary("ct-voi-lut").contains("VOI LUT \"square root\" (2048 entries)"));
    let xray = summary("xray-monochrome1");
    assert!(
        xray.contains("min–max window (no window in the file)"),
        "{xray}"
    );
    assert!(xray.contains("inverted"), "{xray}");
    let cine = summary("cine-3-frames");
    assert!(cine.contains("frame 1 of 3 used"), "{cine}");
    assert!(summary("us-jpeg-baseline").contains("8-bit values as stored"));
}

#[test]
fn bad_dicom_files_are_refused_with_what_is_wrong() {
    let expected = expected();
    for (name, phrase) in expected["refused"].as_object().unwrap() {
        let phrase = phrase.as_str().unwrap();
        let bytes = std::fs::read(fixtures().join(format!("{name}.dcm"))).unwrap();
        let error = match decode_image(&bytes) {
            Ok(decoded) => panic!("{name} decoded: {}", decoded.summary()),
            Err(error) => error,
        };
        let message = error.to_string();
        assert!(
            message.to_lowercase().contains(&phrase.to_lowercase()),
            "{name}: {message}"
        );
        assert!(
            message.contains("DICOM") || matches!(error, ImageError::TooLarge(_)),
            "{name}: {message}"
        );
    }
    // Only the magic and nothing after it.
    let mut magic_only = vec![0u8; 128];
    magic_only.extend_from_slice(b"DICM");
    let error = decode_image(&magic_only).unwrap_err();
    assert!(matches!(error, ImageError::Corrupt { .. }), "{error}");
}

#[test]
fn a_dicom_goes_through_the_pipeline_as_grey_pixels() {
    let bytes = std::fs::read(fixtures().join("ct-window.dcm")).unwrap();
    let pixels = medfocus::pipeline::decode(&bytes).unwrap();
    assert_eq!((pixels.width, pixels.height, pixels.channels), (64, 48, 1));
    let reference = image::open(fixtures().join("ct-window.png")).unwrap();
    assert_eq!(pixels.data, reference.to_luma8().into_raw());
}

#[test]
fn a_16_bit_tiff_is_windowed_over_its_values_like_a_16_bit_png() {
    // A 12-bit detector image (values 100..4000) stored in 16 bits.
    let image: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_fn(40, 30, |x, y| {
        Luma([100 + ((x * 30 + y) * 3900 / (39 * 30 + 29)) as u16])
    });
    let image = DynamicImage::ImageLuma16(image);
    let encode = |format| {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    };
    let tiff = encode(ImageFormat::Tiff);
    let decoded = decode_image(&tiff).unwrap();
    assert_eq!(
        (decoded.format.as_str(), decoded.color.bits_per_channel),
        ("TIFF", 16)
    );
    let from_tiff = medfocus::pipeline::decode(&tiff).unwrap();
    let from_png = medfocus::pipeline::decode(&encode(ImageFormat::Png)).unwrap();
    assert_eq!(from_tiff, from_png);
    assert_eq!(from_tiff.data.iter().min(), Some(&0));
    assert_eq!(from_tiff.data.iter().max(), Some(&255));
}
