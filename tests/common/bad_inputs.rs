//! The bad-input corpus (`tests/fixtures/bad-inputs/`, written by
//! `scripts/reference/gen_bad_inputs.py`) as the native and the browser tests read it, and which
//! loader should accept which file.

use serde::Deserialize;

/// One file of the corpus: `corpus.bin[offset..offset + length]`.
#[derive(Deserialize)]
pub struct Entry {
    pub name: String,
    pub format: String,
    pub case: String,
    pub offset: usize,
    pub length: usize,
}

impl Entry {
    pub fn bytes<'c>(&self, corpus: &'c [u8]) -> &'c [u8] {
        &corpus[self.offset..self.offset + self.length]
    }
}

/// `index.json`'s entries.
pub fn entries(index: &str) -> Vec<Entry> {
    serde_json::from_str(index).expect("the corpus index")
}

/// The loader each format is meant for (its valid seed loads there).
pub fn own_loader(format: &str) -> &'static str {
    match format {
        "png" | "jpeg" | "bmp" | "tiff" | "dicom" => "image",
        "safetensors" | "pytorch-zip" | "pytorch-legacy" => "checkpoint file",
        "sam2-burnpack" => "sam2 burnpack",
        "head" => "head",
        "npz" | "split-json" | "csv" => "data set",
        "clip-config" => "clip config",
        "sam2-config" => "sam2 config",
        "vocab" => "vocabulary",
        other => panic!("no loader for format {other}"),
    }
}

/// Whether `loader` should accept the file: its own format's valid seed, and a SafeTensors file
/// whose tensors are well formed but unusable as weights (NaN values, integers) in the loaders
/// that only read containers — the model that takes them refuses them by name
/// (`weights::Problem::{NotFinite, NotFloat}`).
pub fn accepts(loader: &str, entry: &Entry) -> bool {
    let container = loader.starts_with("safetensors") || loader == "checkpoint file";
    match (entry.format.as_str(), entry.case.as_str()) {
        ("safetensors", "valid" | "nan-and-inf" | "int64-weights") => container,
        (format, "valid") => loader == own_loader(format),
        _ => false,
    }
}
