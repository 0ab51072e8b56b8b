//! Where a model's files come from: a folder natively, bytes handed over by a browser page.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value;

use super::loaded::LoadError;
use crate::weights::Checkpoint;

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
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(LoadError::Config {
                file: name.to_string(),
                detail: "the file is empty".into(),
            });
        }
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
