//! Issue 16: the bad-input corpus (`tests/fixtures/bad-inputs/`, as `tests/bad_inputs.rs` reads
//! it natively) through every loader the browser has: decoding images and DICOM, SafeTensors
//! read whole and streamed in pieces, SAM 2 burnpacks, head files, SAM 2 configs and WordPiece
//! vocabularies. Every file must give a named error — in wasm a panic aborts the module, so a
//! panic here fails the whole run — except the valid seeds in their own loader.

use burn::tensor::Device;
use wasm_bindgen_test::*;

use crate::common::bad_inputs::{Entry, accepts, byte_loaders, entries};

const CORPUS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bad-inputs/corpus.bin"
));
const INDEX: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bad-inputs/index.json"
));

#[wasm_bindgen_test]
fn every_bad_input_is_a_named_error_in_the_browser() {
    let index: Vec<Entry> = entries(INDEX);
    assert!(index.len() > 150, "{} files", index.len());
    // Burnpacks are read on the CPU backend here: what is checked is reading, not computing.
    let device = Device::flex();
    let mut failures = Vec::new();
    let mut named = 0;
    for entry in &index {
        let bytes = entry.bytes(CORPUS);
        for (loader, load) in byte_loaders() {
            let what = format!("{} ({}) through {loader}", entry.name, entry.case);
            match (load(bytes, &device), accepts(loader, entry)) {
                (Ok(()), true) => {}
                (Ok(()), false) => failures.push(format!("{what}: accepted")),
                (Err(error), true) => failures.push(format!("{what}: refused: {error}")),
                (Err(error), false) if error.trim().is_empty() => {
                    failures.push(format!("{what}: an empty error"))
                }
                (Err(_), false) => named += 1,
            }
        }
    }
    web_sys::console::log_1(
        &format!(
            "bad inputs in the browser: {} files × {} loaders, {named} named errors",
            index.len(),
            byte_loaders().len()
        )
        .into(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
