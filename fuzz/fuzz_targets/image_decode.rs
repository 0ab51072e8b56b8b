//! Any bytes as an image file (PNG, JPEG, BMP, TIFF, WebP, DICOM: sniffed from the content).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = medfocus::imaging::decode_image(data);
});
