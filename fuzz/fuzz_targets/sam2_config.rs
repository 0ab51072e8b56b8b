//! Any text as a SAM 2 config (JSON, then its sizes checked).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = medfocus::sam2::Sam2Config::from_json(text);
    }
});
