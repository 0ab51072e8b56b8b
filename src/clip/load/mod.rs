//! Loading CLIP models from the files users download, unmodified. One loader per family holds
//! that family's config reading and key mapping:
//!
//! | family | files | loader |
//! |---|---|---|
//! | open_clip (OpenAI, LAION, …) | `open_clip_config.json` + `open_clip_model.safetensors` or `open_clip_pytorch_model.bin` | [`open_clip`] |
//! | BiomedCLIP (open_clip, timm ViT + PubMedBERT) | `open_clip_config.json` + `open_clip_pytorch_model.bin` + `text/vocab.txt` (+ `text/config.json`) | [`biomedclip`] |
//! | Hugging Face `CLIPModel` | `config.json` + `model.safetensors` (+ `preprocessor_config.json`) | [`hf_clip`] |
//!
//! What the loaders share sits below them: the files ([`files`]), the result and its error
//! ([`loaded`]), the config reader ([`json`]); this module only picks the family.

pub mod biomedclip;
pub mod files;
pub mod hf_clip;
mod json;
pub mod loaded;
pub mod open_clip;

use burn::tensor::Device;

#[cfg(not(target_arch = "wasm32"))]
pub use files::DirFiles;
pub use files::{MemoryFiles, ModelFiles};
pub use loaded::{Family, LoadError, LoadedClip};

#[cfg(not(target_arch = "wasm32"))]
use crate::weights::Checkpoint;

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
