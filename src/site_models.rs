//! Models a site serves to its own page: a folder (`models/` by default) holding each model's
//! files in the form the browser reads (SafeTensors CLIP, a SAM 2 burnpack, a head file) and
//! `manifest.json` listing them with sizes and SHA-256. `medfocus weights export-web` writes
//! it, `scripts/serve.sh` serves it at `/models/`, and the page downloads what it lists into the
//! browser's storage, checking every byte against the manifest.
//!
//! Every export is proven before it is listed: the CLIP files are loaded back exactly as the
//! page will get them (SafeTensors only) and must give the same weights fingerprint as the
//! source; a SAM 2 burnpack and a head file are read back.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clip::load::{DirFiles, LoadError, ModelFiles, load_clip, open_clip};
use crate::device::{self, DeviceRequest};
use crate::fetch::sha256_file;
use crate::heads::HeadFile;
use crate::sam2::Sam2Model;
use crate::sam2::config::Sam2Config;
use crate::sam2::quantize::{Int8Granularity, quantize_int8};
use crate::weights::{Checkpoint, write_safetensors};

pub const MANIFEST_FILE: &str = "manifest.json";
/// What `format` says in every manifest, so that the page can tell it from other JSON.
pub const MANIFEST_FORMAT: &str = "medfocus-site-models";
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SiteModelsError {
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{path} is not a site models manifest: {detail}")]
    Manifest { path: String, detail: String },
    #[error("CLIP model {folder}: {source}")]
    Clip { folder: String, source: LoadError },
    #[error(
        "the exported CLIP files in {folder} load with other weights than the source (fingerprint {exported} vs {source_fingerprint}): not listed"
    )]
    ClipChanged {
        folder: String,
        exported: String,
        source_fingerprint: String,
    },
    #[error("SAM 2 {path}: {detail}")]
    Sam2 { path: String, detail: String },
    #[error("head {path}: {detail}")]
    Head { path: String, detail: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SiteModelsError + '_ {
    move |error| SiteModelsError::Io {
        path: path.display().to_string(),
        detail: error.to_string(),
    }
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteManifest {
    pub format: String,
    pub version: u32,
    /// At most one model per kind: the page holds one of each.
    pub models: Vec<SiteModel>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteModel {
    /// `clip`, `sam2` or `head`.
    pub kind: String,
    /// The model's name: a CLIP folder's name (what heads record as their CLIP model), a SAM 2
    /// config's name with its weights, a head file's name.
    pub label: String,
    pub description: String,
    pub files: Vec<SiteFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteFile {
    /// The name the loader knows it by (`open_clip_config.json`, …).
    pub name: String,
    /// Where it is, relative to the manifest (`clip/open_clip_config.json`).
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

impl SiteManifest {
    pub fn empty() -> Self {
        Self {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            models: Vec::new(),
        }
    }

    /// The manifest in `folder`, or an empty one when there is none yet.
    pub fn read_or_empty(folder: &Path) -> Result<Self, SiteModelsError> {
        let path = folder.join(MANIFEST_FILE);
        if !path.exists() {
            return Ok(Self::empty());
        }
        let bad = |detail: String| SiteModelsError::Manifest {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let manifest: Self = serde_json::from_str(&text).map_err(|error| bad(error.to_string()))?;
        if manifest.format != MANIFEST_FORMAT || manifest.version != MANIFEST_VERSION {
            return Err(bad(format!(
                "format {} version {} (this version writes {MANIFEST_FORMAT} {MANIFEST_VERSION})",
                manifest.format, manifest.version
            )));
        }
        Ok(manifest)
    }

    /// Lists `model`, replacing the model of its kind.
    pub fn put(&mut self, model: SiteModel) {
        self.models.retain(|listed| listed.kind != model.kind);
        self.models.push(model);
        self.models.sort_by_key(|model| match model.kind.as_str() {
            "clip" => 0,
            "sam2" => 1,
            _ => 2,
        });
    }

    /// Written atomically: a page never reads half a manifest.
    pub fn write(&self, folder: &Path) -> Result<(), SiteModelsError> {
        let path = folder.join(MANIFEST_FILE);
        let part = folder.join(format!("{MANIFEST_FILE}.part"));
        let text = serde_json::to_string_pretty(self).map_err(|error| SiteModelsError::Io {
            path: path.display().to_string(),
            detail: error.to_string(),
        })?;
        std::fs::write(&part, text + "\n").map_err(io(&part))?;
        std::fs::rename(&part, &path).map_err(io(&path))
    }
}

/// Where a model of `kind` is written before [`commit`] puts it in place: a failed export (or
/// one of several) leaves what the manifest lists untouched.
fn staging(site: &Path, kind: &str) -> PathBuf {
    site.join(format!("{kind}.part"))
}

/// An empty staging folder for `kind`.
fn fresh_folder(site: &Path, kind: &str) -> Result<PathBuf, SiteModelsError> {
    let folder = staging(site, kind);
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
    }
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    Ok(folder)
}

fn listed(site: &Path, kind: &str, name: &str) -> Result<SiteFile, SiteModelsError> {
    let path = staging(site, kind).join(name);
    Ok(SiteFile {
        name: name.to_string(),
        path: format!("{kind}/{name}"),
        size: std::fs::metadata(&path).map_err(io(&path))?.len(),
        sha256: sha256_file(&path).map_err(|error| SiteModelsError::Io {
            path: path.display().to_string(),
            detail: error.to_string(),
        })?,
    })
}

/// Puts the exported models in place (each kind's earlier files go, so none is left unlisted)
/// and lists them in the manifest, written last.
pub fn commit(
    site: &Path,
    manifest: &mut SiteManifest,
    models: Vec<SiteModel>,
) -> Result<(), SiteModelsError> {
    for model in models {
        let folder = site.join(&model.kind);
        if folder.exists() {
            std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
        }
        std::fs::rename(staging(site, &model.kind), &folder).map_err(io(&folder))?;
        manifest.put(model);
    }
    manifest.write(site)
}

/// A model folder that notes which files the loader read: exactly those are exported.
struct ReadFiles {
    folder: DirFiles,
    read: RefCell<BTreeSet<String>>,
}

impl ModelFiles for ReadFiles {
    fn location(&self) -> String {
        self.folder.location()
    }

    fn exists(&self, name: &str) -> bool {
        self.folder.exists(name)
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, LoadError> {
        self.read.borrow_mut().insert(name.to_string());
        self.folder.read(name)
    }

    fn checkpoint(&self, name: &str) -> Result<Checkpoint, LoadError> {
        self.read.borrow_mut().insert(name.to_string());
        self.folder.checkpoint(name)
    }
}

/// Exports the CLIP model in `source` to `site/clip/`: the files its loader reads, a PyTorch
/// pickle converted to SafeTensors (the only checkpoint form the browser reads).
pub fn export_clip(source: &Path, site: &Path) -> Result<SiteModel, SiteModelsError> {
    let folder_name = source.display().to_string();
    let clip_error = |source: LoadError| SiteModelsError::Clip {
        folder: folder_name.clone(),
        source,
    };
    let device = device::cpu_device(DeviceRequest::Cpu, "export".into()).device;
    let files = ReadFiles {
        folder: DirFiles(source.to_path_buf()),
        read: RefCell::new(BTreeSet::new()),
    };
    let loaded = load_clip(&files, &device).map_err(clip_error)?;
    let fingerprint = loaded.model.fingerprint.clone();
    let family = loaded.family;
    drop(loaded);
    let target = fresh_folder(site, "clip")?;
    let mut names = Vec::new();
    for name in files.read.into_inner() {
        let from = source.join(&name);
        if name == open_clip::PYTORCH_FILE {
            let checkpoint = Checkpoint::open(&from).map_err(|error| clip_error(error.into()))?;
            write_safetensors(&checkpoint, &target.join(open_clip::SAFETENSORS_FILE))
                .map_err(|error| clip_error(error.into()))?;
            names.push(open_clip::SAFETENSORS_FILE.to_string());
        } else {
            let to = target.join(&name);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::copy(&from, &to).map_err(io(&from))?;
            names.push(name);
        }
    }
    // Loaded back as the page loads it: SafeTensors only, and the same weights.
    let exported =
        load_clip(&DirFiles(target.clone()), &device).map_err(|source| SiteModelsError::Clip {
            folder: target.display().to_string(),
            source,
        })?;
    if exported.model.fingerprint != fingerprint {
        return Err(SiteModelsError::ClipChanged {
            folder: target.display().to_string(),
            exported: exported.model.fingerprint.clone(),
            source_fingerprint: fingerprint,
        });
    }
    let label = source
        .canonicalize()
        .unwrap_or_else(|_| source.to_path_buf())
        .file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_else(|| "clip".into());
    Ok(SiteModel {
        kind: "clip".into(),
        description: format!("{family} CLIP model {label}"),
        label,
        files: names
            .iter()
            .map(|name| listed(site, "clip", name))
            .collect::<Result<_, _>>()?,
    })
}

/// How SAM 2's weights are stored for the page: `f32`, or int8 (`tensor`, `block-N`).
pub fn parse_sam2_weights(text: &str) -> Result<Option<Int8Granularity>, String> {
    if text == "f32" {
        return Ok(None);
    }
    Int8Granularity::parse(text).map(Some).ok_or_else(|| {
        format!("SAM 2 weights {text}: use `f32`, `tensor` or `block-N` (N from 1 to 255)")
    })
}

/// Exports a SAM 2 checkpoint (Meta's `.pt`, a SafeTensors copy, or a burnpack) to
/// `site/sam2/` as a burnpack with `weights` (int8 by default: a quarter of the download).
pub fn export_sam2(
    checkpoint: &Path,
    config: Option<&Sam2Config>,
    weights: Option<Int8Granularity>,
    site: &Path,
) -> Result<SiteModel, SiteModelsError> {
    let bad = |detail: String| SiteModelsError::Sam2 {
        path: checkpoint.display().to_string(),
        detail,
    };
    let device = device::cpu_device(DeviceRequest::Cpu, "export".into()).device;
    let (model, stored) = Sam2Model::load_file(checkpoint, config, &device)
        .map_err(|error| bad(error.to_string()))?;
    let (model, label) = match weights {
        Some(granularity) if stored == "f32" => {
            (quantize_int8(model, granularity), granularity.label())
        }
        Some(granularity) if stored != granularity.label() => {
            return Err(bad(format!(
                "its weights are already {stored}; export it from the f32 checkpoint for {}",
                granularity.label()
            )));
        }
        None if stored != "f32" => {
            return Err(bad(format!(
                "its weights are {stored}; f32 needs the f32 checkpoint"
            )));
        }
        _ => (model, stored),
    };
    let bytes = model
        .to_burnpack(&label)
        .map_err(|error| bad(error.to_string()))?;
    let name = format!("{}.{label}.bpk", model.config.name);
    let description = format!("SAM 2 {} ({label} weights)", model.config.name);
    drop(model);
    // Read back as the page reads it.
    Sam2Model::from_burnpack(bytes.clone(), &device)
        .map_err(|error| bad(format!("the burnpack written does not read back: {error}")))?;
    let target = fresh_folder(site, "sam2")?;
    std::fs::write(target.join(&name), &bytes).map_err(io(&target))?;
    Ok(SiteModel {
        kind: "sam2".into(),
        label: name.trim_end_matches(".bpk").to_string(),
        description,
        files: vec![listed(site, "sam2", &name)?],
    })
}

/// Exports a head file (from `medfocus train`) to `site/head/`.
pub fn export_head(path: &Path, site: &Path) -> Result<SiteModel, SiteModelsError> {
    let head = HeadFile::read(path).map_err(|error| SiteModelsError::Head {
        path: path.display().to_string(),
        detail: error.to_string(),
    })?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_else(|| "head.mfh".into());
    let target = fresh_folder(site, "head")?;
    std::fs::copy(path, target.join(&name)).map_err(io(path))?;
    Ok(SiteModel {
        kind: "head".into(),
        label: name.clone(),
        description: format!(
            "{} head for {} (CLIP model {})",
            head.header.kind.name(),
            head.header.classes.join(", "),
            head.header.clip.name
        ),
        files: vec![listed(site, "head", &name)?],
    })
}
