//! Any bytes as a MedMNIST `.npz` archive (read from a file, as the reader takes a path).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("medfocus-fuzz-{}.npz", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = medfocus::dataset::Dataset::open(&path, None);
    }
});
