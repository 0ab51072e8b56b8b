//! Issue 16: the bad-input corpus (`tests/fixtures/bad-inputs/`, as `tests/bad_inputs.rs` reads
//! it natively) through every loader the browser has: decoding images and DICOM, SafeTensors
//! read whole and streamed in pieces, SAM 2 burnpacks, head files, SAM 2 configs and WordPiece
//! vocabularies. Every file must give a named error — in wasm a panic aborts the module, so a
//! panic here fails the whole run — except the valid seeds in their own loader.

use burn::tensor::Device;
use medfocus::clip::tokenizer::WordPieceTokenizer;
use medfocus::heads::HeadFile;
use medfocus::imaging::decode_image;
use medfocus::sam2::{Sam2Config, Sam2Model};
use medfocus::weights::{Checkpoint, SafetensorsStream};
use wasm_bindgen_test::*;

use crate::common::bad_inputs::{Entry, accepts, entries};

const CORPUS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bad-inputs/corpus.bin"
));
const INDEX: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bad-inputs/index.json"
));

type Loader = fn(&[u8], &Device) -> Result<(), String>;

fn text(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|error| format!("not UTF-8 text: {error}"))
}

fn loaders() -> Vec<(&'static str, Loader)> {
    vec![
        ("image", |bytes, _| {
            decode_image(bytes).map(drop).map_err(|e| e.to_string())
        }),
        ("safetensors", |bytes, _| {
            Checkpoint::from_safetensors_bytes("file", bytes.to_vec())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("safetensors streamed", |bytes, _| {
            // As the page streams a model from its storage: pieces of 7 bytes.
            let mut stream =
                SafetensorsStream::new("file", bytes.len() as u64).map_err(|e| e.to_string())?;
            for piece in bytes.chunks(7) {
                stream.push(piece).map_err(|e| e.to_string())?;
            }
            stream.finish().map(drop).map_err(|e| e.to_string())
        }),
        ("sam2 burnpack", |bytes, device| {
            Sam2Model::from_burnpack(bytes.to_vec(), device)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("head", |bytes, _| {
            HeadFile::from_bytes(bytes.to_vec())
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ("sam2 config", |bytes, _| {
            Sam2Config::from_json(text(bytes)?).map(drop)
        }),
        ("vocabulary", |bytes, _| {
            WordPieceTokenizer::from_vocab_text(text(bytes)?, 64)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
    ]
}

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
        for (loader, load) in loaders() {
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
            loaders().len()
        )
        .into(),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
