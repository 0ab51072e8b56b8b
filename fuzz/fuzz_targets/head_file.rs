//! Any bytes as a support-head file (a burnpack: burn's reader, then our header and tensors).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = medfocus::heads::HeadFile::from_bytes(data.to_vec());
});
