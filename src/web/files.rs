//! Model files streamed into the engine piece by piece (from the browser's storage, the network
//! or the user's disk), each SHA-256 hashed as it arrives: a checkpoint becomes tensors as its
//! bytes come in and is never held whole, and JavaScript never holds a whole file either. What
//! `loadClip`, `loadSam2` and `loadHead` take.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;

use super::js_error;
use super::memory::{WASM_MEMORY_LIMIT, check_room};
use crate::clip::load::MemoryFiles;
use crate::limits::MAX_FILE_NAME_CHARS;
use crate::weights::{Checkpoint, SafetensorsStream};

/// The files of one model as they arrive: `begin(name, size)`, `push(bytes)` as often as
/// needed, `end()` (→ the file's SHA-256), for each file.
#[wasm_bindgen(js_name = ModelFiles)]
pub struct WebModelFiles {
    label: String,
    files: BTreeMap<String, Vec<u8>>,
    checkpoints: BTreeMap<String, Checkpoint>,
    incoming: Option<Incoming>,
}

struct Incoming {
    name: String,
    size: u64,
    received: u64,
    hasher: Sha256,
    sink: Sink,
}

enum Sink {
    Bytes(Vec<u8>),
    Safetensors(SafetensorsStream),
}

#[wasm_bindgen(js_class = ModelFiles)]
impl WebModelFiles {
    /// `label`: where the files came from, for messages (a folder's name).
    #[wasm_bindgen(constructor)]
    pub fn new(label: String) -> WebModelFiles {
        WebModelFiles {
            label,
            files: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            incoming: None,
        }
    }

    /// Starts the file `name` of `size` bytes (its size as stored; checked before anything is
    /// allocated). A `.safetensors` file is parsed as it arrives, anything else kept as bytes.
    pub fn begin(&mut self, name: String, size: f64) -> Result<(), JsError> {
        if let Some(incoming) = &self.incoming {
            return Err(JsError::new(&format!(
                "{} is still arriving: end it before {name}",
                incoming.name
            )));
        }
        if name.is_empty() || name.chars().count() > MAX_FILE_NAME_CHARS {
            return Err(JsError::new(&format!(
                "a model file's name must have 1 to {MAX_FILE_NAME_CHARS} characters"
            )));
        }
        if self.files.contains_key(&name) || self.checkpoints.contains_key(&name) {
            return Err(JsError::new(&format!("{name} was given twice")));
        }
        if !(size.is_finite() && size >= 0.0 && size.fract() == 0.0) {
            return Err(JsError::new(&format!("{name}: {size} is not a file size")));
        }
        let size = size as u64;
        if size >= WASM_MEMORY_LIMIT {
            return Err(JsError::new(&format!(
                "{name} has {:.0} MB; a page's WebAssembly memory holds at most {:.0} MB in all",
                size as f64 / 1e6,
                WASM_MEMORY_LIMIT as f64 / 1e6
            )));
        }
        check_room(&name, size)?;
        let sink = if name.ends_with(".safetensors") {
            Sink::Safetensors(SafetensorsStream::new(name.clone(), size).map_err(js_error)?)
        } else {
            let mut bytes = Vec::new();
            bytes.try_reserve_exact(size as usize).map_err(|_| {
                JsError::new(&format!(
                    "out of memory: {name} needs {:.0} MB and the page's WebAssembly memory cannot grow by that much",
                    size as f64 / 1e6
                ))
            })?;
            Sink::Bytes(bytes)
        };
        self.incoming = Some(Incoming {
            name,
            size,
            received: 0,
            hasher: Sha256::new(),
            sink,
        });
        Ok(())
    }

    /// The next piece of the file begun last.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let incoming = self
            .incoming
            .as_mut()
            .ok_or_else(|| JsError::new("no file begun"))?;
        let received = incoming.received + bytes.len() as u64;
        if received > incoming.size {
            let error = format!(
                "{} grew while it was read (more than its {} bytes arrived)",
                incoming.name, incoming.size
            );
            self.incoming = None;
            return Err(JsError::new(&error));
        }
        incoming.received = received;
        incoming.hasher.update(bytes);
        let pushed = match &mut incoming.sink {
            Sink::Bytes(kept) => {
                kept.extend_from_slice(bytes);
                Ok(())
            }
            Sink::Safetensors(stream) => stream.push(bytes).map_err(js_error),
        };
        if pushed.is_err() {
            // A damaged file is given up at once: nothing of it stays held.
            self.incoming = None;
        }
        pushed
    }

    /// Ends the file begun last; answers its SHA-256 (lower-case hex).
    pub fn end(&mut self) -> Result<String, JsError> {
        let incoming = self
            .incoming
            .take()
            .ok_or_else(|| JsError::new("no file begun"))?;
        if incoming.received != incoming.size {
            return Err(JsError::new(&format!(
                "{} is truncated: {} of its {} bytes arrived",
                incoming.name, incoming.received, incoming.size
            )));
        }
        let sha256 = format!("{:x}", incoming.hasher.finalize());
        match incoming.sink {
            Sink::Bytes(bytes) => {
                self.files.insert(incoming.name, bytes);
            }
            Sink::Safetensors(stream) => {
                let checkpoint = stream.finish().map_err(js_error)?;
                self.checkpoints.insert(incoming.name, checkpoint);
            }
        }
        Ok(sha256)
    }

    /// The names of the files that arrived in full.
    #[wasm_bindgen(getter)]
    pub fn names(&self) -> Vec<String> {
        self.files
            .keys()
            .chain(self.checkpoints.keys())
            .cloned()
            .collect()
    }
}

impl WebModelFiles {
    /// Files already whole in memory (the Rust-side tests and `loadClip`'s object form).
    pub fn from_whole(label: &str, files: Vec<(String, Vec<u8>)>) -> Result<Self, JsError> {
        let mut streamed = Self::new(label.to_string());
        for (name, bytes) in files {
            streamed.begin(name, bytes.len() as f64)?;
            streamed.push(&bytes)?;
            streamed.end()?;
        }
        Ok(streamed)
    }

    /// Everything that arrived, as the library's in-memory model files.
    pub(super) fn into_memory_files(self) -> Result<MemoryFiles, JsError> {
        if let Some(incoming) = self.incoming {
            return Err(JsError::new(&format!(
                "{} did not finish arriving",
                incoming.name
            )));
        }
        Ok(MemoryFiles {
            label: self.label,
            files: self.files,
            checkpoints: self.checkpoints.into(),
        })
    }

    /// The one file that `what` is (a SAM 2 burnpack, a head file): its name and bytes.
    pub(super) fn into_single(self, what: &str) -> Result<(String, Vec<u8>), JsError> {
        let files = self.into_memory_files()?;
        if let Some(name) = files.checkpoints.borrow().keys().next() {
            return Err(JsError::new(&format!(
                "{name} is a SafeTensors checkpoint, not {what}"
            )));
        }
        let mut whole = files.files;
        match (whole.pop_first(), whole.len()) {
            (Some(file), 0) => Ok(file),
            (None, _) => Err(JsError::new(&format!("no file given for {what}"))),
            (Some(_), more) => Err(JsError::new(&format!(
                "{what} is one file, not {}",
                more + 1
            ))),
        }
    }
}

/// An incremental SHA-256 (the Web Crypto API hashes whole buffers only): the page checks a
/// model it downloads as the bytes go to storage, never holding the file whole.
#[wasm_bindgen(js_name = Sha256)]
pub struct WebSha256(Sha256);

#[wasm_bindgen(js_class = Sha256)]
impl WebSha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> WebSha256 {
        WebSha256(Sha256::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest (lower-case hex); the hasher is used up.
    pub fn finish(self) -> String {
        format!("{:x}", self.0.finalize())
    }
}

impl Default for WebSha256 {
    fn default() -> Self {
        Self::new()
    }
}
