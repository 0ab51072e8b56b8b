//! Any bytes after a DICOM preamble and magic, so that every input reaches the DICOM reader.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = vec![0u8; 128];
    file.extend_from_slice(b"DICM");
    file.extend_from_slice(data);
    let _ = medfocus::imaging::decode_image(&file);
});
