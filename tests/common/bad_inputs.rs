//! The bad-input corpus (`tests/fixtures/bad-inputs/`, written by
//! `scripts/reference/gen_bad_inputs.py`) as the native and the browser tests read it, and which
//! loader should accept which file, and the loaders that read bytes (the browser has these;
//! the native test adds those that read paths).

use burn::tensor::Device;
use medfocus::clip::tokenizer::WordPieceTokenizer;
use medfocus::heads::HeadFile;
use medfocus::imaging::decode_image;
use medfocus::sam2::{Sam2Config, Sam2Model};
use medfocus::weights::{Checkpoint, SafetensorsStream};
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

/// A loader of a file's bytes, giving its error's text.
pub type ByteLoader = fn(&[u8], &Device) -> Result<(), String>;

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|error| format!("not UTF-8 text: {error}"))
}

/// Every loader that reads bytes: images and DICOM, SafeTensors whole and streamed in pieces (as
/// the page streams a model from its storage), SAM 2 burnpacks, head files, SAM 2 configs and
/// WordPiece vocabularies.
pub fn byte_loaders() -> Vec<(&'static str, ByteLoader)> {
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
            Sam2Config::from_json(utf8(bytes)?).map(drop)
        }),
        ("vocabulary", |bytes, _| {
            WordPieceTokenizer::from_vocab_text(utf8(bytes)?, 64)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
    ]
}
