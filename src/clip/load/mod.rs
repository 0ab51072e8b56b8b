//! Loading CLIP models from the files users download, unmodified. One loader per family holds
//! that family's config reading and key mapping:
//!
//! | family | files | loader |
//! |---|---|---|
//! | open_clip (OpenAI, LAION, …) | `open_clip_config.json` + `open_clip_model.safetensors` or `open_clip_pytorch_model.bin` | [`open_clip`] |
//! | BiomedCLIP (open_clip, timm ViT + PubMedBERT) | `open_clip_config.json` + `open_clip_pytorch_model.bin` + `text/vocab.txt` (+ `text/config.json`) | [`biomedclip`] |
//! | Hugging Face `CLIPModel` | `config.json` + `model.safetensors` (+ `preprocessor_config.json`) | [`hf_clip`] |

pub mod biomedclip;
pub mod hf_clip;
pub mod open_clip;

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::tensor::Device;
use serde_json::Value;

use super::config::ClipConfig;
use super::model::ClipModel;
use super::preprocess::PreprocessConfig;
use super::tokenizer::{TextTokenizer, VocabularyError};
use crate::weights::{Checkpoint, WeightsError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    OpenClip,
    BiomedClip,
    HfClip,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::OpenClip => "open_clip",
            Family::BiomedClip => "BiomedCLIP",
            Family::HfClip => "Hugging Face CLIPModel",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{location} is not a CLIP model folder: expected open_clip_config.json with open_clip_model.safetensors or \
         open_clip_pytorch_model.bin (open_clip, BiomedCLIP), or config.json with model.safetensors (Hugging Face)"
    )]
    NotAModel { location: String },
    #[error("{file} is missing from {location}{hint}")]
    MissingFile {
        location: String,
        file: String,
        hint: String,
    },
    #[error("cannot read {file}: {detail}")]
    Io { file: String, detail: String },
    #[error("{file}: {detail}")]
    Config { file: String, detail: String },
    #[error(
        "{file} asks for {feature}, which this port does not implement (loading it would compute something else)"
    )]
    Unsupported { file: String, feature: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{file}: {source}")]
    Vocabulary {
        file: String,
        source: VocabularyError,
    },
}

/// The files of one model, from a folder (native) or handed over as bytes (browser).
pub trait ModelFiles {
    /// Where the files are, for messages.
    fn location(&self) -> String;
    fn exists(&self, name: &str) -> bool;
    fn read(&self, name: &str) -> Result<Vec<u8>, LoadError>;
    fn checkpoint(&self, name: &str) -> Result<Checkpoint, LoadError>;

    /// Fails with a `MissingFile` naming `name` (and what it is, in `hint`) when it is absent.
    fn require(&self, name: &str, hint: &str) -> Result<(), LoadError> {
        if self.exists(name) {
            return Ok(());
        }
        Err(LoadError::MissingFile {
            location: self.location(),
            file: name.to_string(),
            hint: hint.to_string(),
        })
    }

    fn read_json(&self, name: &str) -> Result<Value, LoadError> {
        let bytes = self.read(name)?;
        serde_json::from_slice(&bytes).map_err(|error| LoadError::Config {
            file: name.to_string(),
            detail: error.to_string(),
        })
    }

    fn read_text(&self, name: &str) -> Result<String, LoadError> {
        String::from_utf8(self.read(name)?).map_err(|_| LoadError::Config {
            file: name.to_string(),
            detail: "not UTF-8 text".into(),
        })
    }
}

/// A model folder on disk.
#[cfg(not(target_arch = "wasm32"))]
pub struct DirFiles(pub std::path::PathBuf);

#[cfg(not(target_arch = "wasm32"))]
impl ModelFiles for DirFiles {
    fn location(&self) -> String {
        self.0.display().to_string()
    }

    fn exists(&self, name: &str) -> bool {
        self.0.join(name).is_file()
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, LoadError> {
        self.require(name, "")?;
        let path = self.0.join(name);
        std::fs::read(&path).map_err(|error| LoadError::Io {
            file: path.display().to_string(),
            detail: error.to_string(),
        })
    }

    fn checkpoint(&self, name: &str) -> Result<Checkpoint, LoadError> {
        Ok(Checkpoint::open(&self.0.join(name))?)
    }
}

/// Files held in memory by name (what a browser page has after the user picks them): bytes,
/// and checkpoints already parsed as they streamed in (see [`crate::weights::SafetensorsStream`]),
/// each handed out once.
#[derive(Default)]
pub struct MemoryFiles {
    pub label: String,
    pub files: BTreeMap<String, Vec<u8>>,
    pub checkpoints: RefCell<BTreeMap<String, Checkpoint>>,
}

impl ModelFiles for MemoryFiles {
    fn location(&self) -> String {
        self.label.clone()
    }

    fn exists(&self, name: &str) -> bool {
        self.files.contains_key(name) || self.checkpoints.borrow().contains_key(name)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, LoadError> {
        match self.files.get(name) {
            Some(bytes) => Ok(bytes.clone()),
            None if self.checkpoints.borrow().contains_key(name) => Err(LoadError::Config {
                file: name.to_string(),
                detail: "a checkpoint, read as a configuration".into(),
            }),
            None => Err(LoadError::MissingFile {
                location: self.location(),
                file: name.to_string(),
                hint: String::new(),
            }),
        }
    }

    fn checkpoint(&self, name: &str) -> Result<Checkpoint, LoadError> {
        if let Some(checkpoint) = self.checkpoints.borrow_mut().remove(name) {
            return Ok(checkpoint);
        }
        let bytes = self.read(name)?;
        if !name.ends_with(".safetensors") {
            return Err(LoadError::Unsupported {
                file: name.to_string(),
                feature: "a PyTorch pickle in memory (use the model's .safetensors file here)"
                    .into(),
            });
        }
        Ok(Checkpoint::from_safetensors_bytes(name, bytes)?)
    }
}

/// A loaded model with the tokenizer and preprocessing it was trained with.
#[derive(Debug)]
pub struct LoadedClip {
    pub family: Family,
    pub model: ClipModel,
    pub tokenizer: TextTokenizer,
    pub preprocess: PreprocessConfig,
}

/// Finds the family from the files present and loads the model on `device`.
pub fn load_clip(files: &dyn ModelFiles, device: &Device) -> Result<LoadedClip, LoadError> {
    if files.exists(open_clip::CONFIG_FILE) {
        let config = files.read_json(open_clip::CONFIG_FILE)?;
        if biomedclip::is_biomedclip_layout(&config) {
            biomedclip::load(files, &config, device)
        } else {
            open_clip::load(files, &config, device)
        }
    } else if files.exists(hf_clip::CONFIG_FILE) {
        hf_clip::load(files, device)
    } else {
        Err(LoadError::NotAModel {
            location: files.location(),
        })
    }
}

/// Native convenience: load from a folder.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_clip_dir(dir: &std::path::Path, device: &Device) -> Result<LoadedClip, LoadError> {
    load_clip(&DirFiles(dir.to_path_buf()), device)
}

/// Reading helpers for the families' JSON configs.
pub(crate) struct Json<'a> {
    pub file: &'a str,
    pub value: &'a Value,
}

impl<'a> Json<'a> {
    pub fn new(file: &'a str, value: &'a Value) -> Self {
        Self { file, value }
    }

    pub fn child(&self, key: &str) -> Json<'a> {
        static NULL: Value = Value::Null;
        Json {
            file: self.file,
            value: self.value.get(key).unwrap_or(&NULL),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.value.get(key).is_some_and(|value| !value.is_null())
    }

    fn bad(&self, key: &str, expected: &str) -> LoadError {
        LoadError::Config {
            file: self.file.to_string(),
            detail: format!("`{key}` should be {expected}"),
        }
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            // open_clip allows `image_size: [h, w]`; this port takes square inputs.
            Some(Value::Array(items)) if items.len() == 2 && items[0] == items[1] => items[0]
                .as_u64()
                .map(|value| value as usize)
                .ok_or_else(|| self.bad(key, "a positive integer")),
            Some(value) => value
                .as_u64()
                .map(|value| value as usize)
                .ok_or_else(|| self.bad(key, "a positive integer")),
        }
    }

    pub fn usize(&self, key: &str) -> Result<usize, LoadError> {
        if !self.has(key) {
            return Err(LoadError::Config {
                file: self.file.to_string(),
                detail: format!("`{key}` is missing"),
            });
        }
        self.usize_or(key, 0)
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value.as_f64().ok_or_else(|| self.bad(key, "a number")),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| self.bad(key, "true or false")),
        }
    }

    pub fn str_or(&self, key: &str, default: &'a str) -> Result<&'a str, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value.as_str().ok_or_else(|| self.bad(key, "a string")),
        }
    }

    pub fn triple_or(&self, key: &str, default: [f32; 3]) -> Result<[f32; 3], LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Array(items)) if items.len() == 3 => {
                let mut out = [0.0f32; 3];
                for (slot, item) in out.iter_mut().zip(items) {
                    *slot = item
                        .as_f64()
                        .ok_or_else(|| self.bad(key, "three numbers"))?
                        as f32;
                }
                Ok(out)
            }
            Some(_) => Err(self.bad(key, "three numbers")),
        }
    }

    pub fn unsupported(&self, feature: impl Into<String>) -> LoadError {
        LoadError::Unsupported {
            file: self.file.to_string(),
            feature: feature.into(),
        }
    }
}

/// Builds the model from a family's checkpoint and key map.
pub(crate) fn build(
    config: ClipConfig,
    checkpoint: Checkpoint,
    map: &dyn crate::weights::KeyMap,
    name: &str,
    device: &Device,
) -> Result<ClipModel, LoadError> {
    if let Some(problem) = config.inconsistency() {
        return Err(LoadError::Config {
            file: format!("the {name} config"),
            detail: problem,
        });
    }
    let weights = crate::weights::Weights::new(checkpoint, map);
    Ok(ClipModel::from_weights(config, weights, name, device)?)
}

/// Gives an open_clip-layout folder that has only the PyTorch pickle (BiomedCLIP publishes only
/// that) the SafeTensors file the browser needs. Returns the file written, or None when the folder
/// already has one (or has no pickle).
#[cfg(not(target_arch = "wasm32"))]
pub fn add_safetensors(dir: &std::path::Path) -> Result<Option<std::path::PathBuf>, LoadError> {
    let pickle = dir.join(open_clip::PYTORCH_FILE);
    let target = dir.join(open_clip::SAFETENSORS_FILE);
    if target.is_file() || !pickle.is_file() {
        return Ok(None);
    }
    let checkpoint = Checkpoint::open(&pickle)?;
    crate::weights::write_safetensors(&checkpoint, &target)?;
    Ok(Some(target))
}

/// The checkpoint file of an open_clip-layout folder: SafeTensors preferred.
pub(crate) fn open_clip_checkpoint(files: &dyn ModelFiles) -> Result<Checkpoint, LoadError> {
    for name in [open_clip::SAFETENSORS_FILE, open_clip::PYTORCH_FILE] {
        if files.exists(name) {
            return files.checkpoint(name);
        }
    }
    Err(LoadError::MissingFile {
        location: files.location(),
        file: format!(
            "{} (or {})",
            open_clip::SAFETENSORS_FILE,
            open_clip::PYTORCH_FILE
        ),
        hint: String::new(),
    })
}
