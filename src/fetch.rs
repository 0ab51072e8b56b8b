//! Downloading published model weights (native only): the files a model folder needs, from the
//! Hugging Face hub (or a mirror), resumable, checked by SHA-256, into a cache folder laid out
//! the way `crate::clip::load` reads it.
//!
//! Integrity: weight files are Git-LFS objects, and the hub declares each one's SHA-256 in the
//! `X-Linked-ETag` header of the (un-redirected) resolve URL. The download is hashed as it is
//! written and must equal that value (or a checksum pinned in the registry, which wins); a
//! mismatch deletes the file. Small text files (configs, vocabularies) are not LFS objects and
//! carry no SHA-256 on the hub; their hash is recorded next to them (`.sha256`) on download.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub const DEFAULT_HUB: &str = "https://huggingface.co";

/// One file of a model folder.
#[derive(Clone, Debug)]
pub struct RemoteFile {
    pub repo: &'static str,
    pub path: &'static str,
    /// Where it goes inside the model folder.
    pub local: &'static str,
    /// A checksum known in advance, checked instead of the hub's declaration.
    pub sha256: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct ModelEntry {
    pub name: &'static str,
    pub description: &'static str,
    pub files: Vec<RemoteFile>,
}

const fn file(repo: &'static str, path: &'static str, local: &'static str) -> RemoteFile {
    RemoteFile {
        repo,
        path,
        local,
        sha256: None,
    }
}

/// The models `medfocus weights fetch` knows.
///
/// Not split: a table: one entry per model `weights fetch` knows.
pub fn registry() -> Vec<ModelEntry> {
    let open_clip = |name, description, repo| ModelEntry {
        name,
        description,
        files: vec![
            file(repo, "open_clip_config.json", "open_clip_config.json"),
            file(
                repo,
                "open_clip_model.safetensors",
                "open_clip_model.safetensors",
            ),
        ],
    };
    // Meta's SAM 2.1 checkpoints as published on the hub (`.pt`, LFS: the hub declares their
    // SHA-256); `medfocus segment --model <folder>/<file>` reads them as they are.
    let sam2 = |name, description, repo, file_name| ModelEntry {
        name,
        description,
        files: vec![file(repo, file_name, file_name)],
    };
    vec![
        ModelEntry {
            name: "biomedclip",
            description: "BiomedCLIP ViT-B/16 + PubMedBERT (Microsoft), the medical CLIP",
            files: vec![
                file(
                    "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
                    "open_clip_config.json",
                    "open_clip_config.json",
                ),
                file(
                    "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
                    "open_clip_pytorch_model.bin",
                    "open_clip_pytorch_model.bin",
                ),
                file(
                    "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
                    "vocab.txt",
                    "text/vocab.txt",
                ),
                file(
                    "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
                    "config.json",
                    "text/config.json",
                ),
            ],
        },
        open_clip(
            "openai-vit-b-16",
            "OpenAI CLIP ViT-B/16 (open_clip layout)",
            "timm/vit_base_patch16_clip_224.openai",
        ),
        open_clip(
            "openai-vit-b-32",
            "OpenAI CLIP ViT-B/32 (open_clip layout)",
            "timm/vit_base_patch32_clip_224.openai",
        ),
        open_clip(
            "openai-vit-l-14",
            "OpenAI CLIP ViT-L/14 (open_clip layout)",
            "timm/vit_large_patch14_clip_224.openai",
        ),
        ModelEntry {
            name: "hf-openai-vit-b-16",
            description: "OpenAI CLIP ViT-B/16 (Hugging Face transformers layout)",
            files: vec![
                file("openai/clip-vit-base-patch16", "config.json", "config.json"),
                file(
                    "openai/clip-vit-base-patch16",
                    "model.safetensors",
                    "model.safetensors",
                ),
                file(
                    "openai/clip-vit-base-patch16",
                    "preprocessor_config.json",
                    "preprocessor_config.json",
                ),
            ],
        },
        sam2(
            "sam2.1-hiera-tiny",
            "SAM 2.1 Hiera tiny (Meta), 39 M parameters, for `segment`",
            "facebook/sam2.1-hiera-tiny",
            "sam2.1_hiera_tiny.pt",
        ),
        sam2(
            "sam2.1-hiera-small",
            "SAM 2.1 Hiera small (Meta), 46 M parameters",
            "facebook/sam2.1-hiera-small",
            "sam2.1_hiera_small.pt",
        ),
        sam2(
            "sam2.1-hiera-base-plus",
            "SAM 2.1 Hiera base+ (Meta), 81 M parameters",
            "facebook/sam2.1-hiera-base-plus",
            "sam2.1_hiera_base_plus.pt",
        ),
        sam2(
            "sam2.1-hiera-large",
            "SAM 2.1 Hiera large (Meta), 224 M parameters",
            "facebook/sam2.1-hiera-large",
            "sam2.1_hiera_large.pt",
        ),
    ]
}

pub fn find_model(name: &str) -> Option<ModelEntry> {
    registry().into_iter().find(|entry| entry.name == name)
}

/// `$MEDFOCUS_CACHE`, else `$XDG_CACHE_HOME/medfocus/models`, else `~/.cache/medfocus/models`.
pub fn default_cache_dir() -> PathBuf {
    crate::cache_paths::cache_path("MEDFOCUS_CACHE", "models")
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("unknown model `{name}`; known: {known}")]
    UnknownModel { name: String, known: String },
    #[error(
        "cannot reach {url}: {detail}. The model hub is not reachable from this machine; download on one that \
         can (or point --hub-url at a mirror) and copy the folder here"
    )]
    Unreachable { url: String, detail: String },
    #[error("{url} answered HTTP {status}")]
    Http { url: String, status: u16 },
    #[error("{file}: SHA-256 is {actual}, expected {expected}; the download was deleted")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{file}: the server sent {received} bytes, {expected} were announced; run the command again to resume"
    )]
    Incomplete {
        file: String,
        received: u64,
        expected: u64,
    },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reports progress; the CLI draws a bar, tests count calls.
pub trait Progress {
    fn start(&mut self, file: &str, total: Option<u64>, already: u64);
    fn advance(&mut self, bytes: u64);
    fn finish(&mut self, file: &str, status: FileStatus);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileStatus {
    AlreadyPresent,
    Downloaded,
    Resumed,
}

pub struct Fetcher {
    hub: String,
    agent: ureq::Agent,
    probe: ureq::Agent,
}

/// What the hub says about a file before it is downloaded.
#[derive(Debug, Default)]
struct Declared {
    sha256: Option<String>,
    size: Option<u64>,
}

/// `weights.bin` → `weights.bin.part`: the download and its hash live next to the file.
fn beside(target: &Path, suffix: &str) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A file's SHA-256 (hex), read in a stream: the file is never held in memory.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path).map_err(io_error(path))?;
    io::copy(&mut file, &mut hasher).map_err(io_error(path))?;
    Ok(format!("{:x}", hasher.finalize()))
}

impl Fetcher {
    pub fn new(hub: &str) -> Self {
        let config = |redirects: u32| {
            ureq::Agent::config_builder()
                .max_redirects(redirects)
                .max_redirects_will_error(false)
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(15)))
                .user_agent(concat!("medfocus/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Self {
            hub: hub.trim_end_matches('/').to_string(),
            agent: config(10).into(),
            probe: config(0).into(),
        }
    }

    fn url(&self, remote: &RemoteFile) -> String {
        format!("{}/{}/resolve/main/{}", self.hub, remote.repo, remote.path)
    }

    fn unreachable(url: &str, error: ureq::Error) -> FetchError {
        FetchError::Unreachable {
            url: url.to_string(),
            detail: error.to_string(),
        }
    }

    /// HEAD without following the redirect to the CDN: the hub's own answer carries the LFS hash.
    fn declared(&self, url: &str) -> Result<Declared, FetchError> {
        let response = self
            .probe
            .head(url)
            .call()
            .map_err(|error| Self::unreachable(url, error))?;
        let status = response.status().as_u16();
        if status >= 400 {
            return Err(FetchError::Http {
                url: url.to_string(),
                status,
            });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.trim_matches('"').to_string())
        };
        let sha256 = header("x-linked-etag").filter(|etag| is_sha256(etag));
        // A redirect's own Content-Length is its (empty) body's, not the file's.
        let direct_length = (200..300)
            .contains(&status)
            .then(|| header("content-length"))
            .flatten();
        let size = header("x-linked-size")
            .or(direct_length)
            .and_then(|size| size.parse().ok());
        Ok(Declared { sha256, size })
    }

    /// Fetches every file of `entry` into `dir`; files already complete and verified are kept.
    pub fn fetch(
        &self,
        entry: &ModelEntry,
        dir: &Path,
        progress: &mut dyn Progress,
    ) -> Result<Vec<FileStatus>, FetchError> {
        entry
            .files
            .iter()
            .map(|remote| self.fetch_file(remote, dir, progress))
            .collect()
    }

    /// Not split: one download's states in order (already there, resume, fetch, check, rename into
    /// place), sharing the part file and its hash sidecar.
    pub fn fetch_file(
        &self,
        remote: &RemoteFile,
        dir: &Path,
        progress: &mut dyn Progress,
    ) -> Result<FileStatus, FetchError> {
        let url = self.url(remote);
        let target = dir.join(remote.local);
        let part = beside(&target, ".part");
        let sidecar = beside(&target, ".sha256");
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        // A file is only ever renamed into place after its check, with its hash beside it: if
        // both still agree it is complete, and no network is needed.
        if target.is_file() {
            let recorded = fs::read_to_string(&sidecar)
                .ok()
                .map(|text| text.trim().to_string());
            let pinned = remote.sha256.map(str::to_string);
            if let Some(wanted) = pinned.or(recorded)
                && sha256_file(&target)? == wanted
            {
                progress.finish(remote.local, FileStatus::AlreadyPresent);
                return Ok(FileStatus::AlreadyPresent);
            }
        }
        let declared = self.declared(&url)?;
        let expected = remote
            .sha256
            .map(str::to_string)
            .or(declared.sha256.clone());

        let already = fs::metadata(&part).map(|meta| meta.len()).unwrap_or(0);
        let mut request = self.agent.get(&url);
        if already > 0 {
            request = request.header("Range", format!("bytes={already}-"));
        }
        let mut response = request
            .call()
            .map_err(|error| Self::unreachable(&url, error))?;
        let status = response.status().as_u16();
        let resumed = status == 206;
        if status == 416 && already > 0 {
            // The part file is already whole (or longer than the file): start again.
            fs::remove_file(&part).map_err(io_error(&part))?;
            return self.fetch_file(remote, dir, progress);
        }
        if !(200..300).contains(&status) {
            return Err(FetchError::Http { url, status });
        }
        let mut hasher = Sha256::new();
        let mut out = if resumed {
            let mut existing = File::open(&part).map_err(io_error(&part))?;
            io::copy(&mut existing, &mut hasher).map_err(io_error(&part))?;
            OpenOptions::new()
                .append(true)
                .open(&part)
                .map_err(io_error(&part))?
        } else {
            File::create(&part).map_err(io_error(&part))?
        };
        let start = if resumed { already } else { 0 };
        progress.start(remote.local, declared.size, start);
        let mut reader = response.body_mut().as_reader();
        let mut buffer = vec![0u8; 1 << 16];
        let mut received = start;
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|error| FetchError::Unreachable {
                    url: url.clone(),
                    detail: format!(
                        "connection lost after {received} bytes ({error}); run again to resume"
                    ),
                })?;
            if read == 0 {
                break;
            }
            out.write_all(&buffer[..read]).map_err(io_error(&part))?;
            hasher.update(&buffer[..read]);
            received += read as u64;
            progress.advance(read as u64);
        }
        out.sync_all().map_err(io_error(&part))?;
        drop(out);
        if let Some(size) = declared.size
            && received < size
        {
            return Err(FetchError::Incomplete {
                file: remote.local.to_string(),
                received,
                expected: size,
            });
        }
        let actual = format!("{:x}", hasher.finalize());
        if let Some(expected) = expected
            && !expected.eq_ignore_ascii_case(&actual)
        {
            let _ = fs::remove_file(&part);
            return Err(FetchError::Checksum {
                file: remote.local.to_string(),
                expected,
                actual,
            });
        }
        fs::rename(&part, &target).map_err(io_error(&target))?;
        fs::write(&sidecar, format!("{actual}\n")).map_err(io_error(&sidecar))?;
        let status = if resumed {
            FileStatus::Resumed
        } else {
            FileStatus::Downloaded
        };
        progress.finish(remote.local, status);
        Ok(status)
    }
}

/// A progress sink that reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &str, _: Option<u64>, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self, _: &str, _: FileStatus) {}
}
