//! Any bytes as a CoOp/Dassl split file and as a `path,label` CSV.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("medfocus-fuzz-lists-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    for name in ["split.json", "list.csv"] {
        let path = dir.join(name);
        if std::fs::write(&path, data).is_ok() {
            let _ = medfocus::dataset::Dataset::open(&path, None);
        }
    }
});
