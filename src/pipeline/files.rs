//! The pipeline over files, natively: read, then block on the async chain.

use std::path::{Path, PathBuf};

use super::{MaskSource, Pipeline, PipelineError, Prediction, decode};
use crate::clip::preprocess::Pixels8;

/// A file's bytes; the error names the file.
pub fn read(path: &Path) -> Result<Vec<u8>, PipelineError> {
    std::fs::read(path).map_err(|error| PipelineError::Read(format!("{}: {error}", path.display())))
}

/// A file decoded to pixels; the error names the file.
pub fn read_pixels(path: &Path) -> Result<Pixels8, PipelineError> {
    let bytes = read(path)?;
    decode(&bytes).map_err(|error| PipelineError::Read(format!("{}: {error}", path.display())))
}

/// Classifies each file (per file: the prediction or why not; the caller names the file), the
/// region from `source`.
pub fn classify_files(
    pipeline: &Pipeline,
    files: &[PathBuf],
    source: &MaskSource,
) -> Vec<Result<Prediction, PipelineError>> {
    files
        .iter()
        .map(|path| {
            let bytes =
                std::fs::read(path).map_err(|error| PipelineError::Read(error.to_string()))?;
            pollster::block_on(pipeline.classify(&decode(&bytes)?, source))
        })
        .collect()
}

/// Writes `bytes` at `path` through a scratch file (named by the process) and a rename,
/// creating the folder: a killed run never leaves half a file, and two runs never share a
/// scratch file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let scratch = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&scratch, bytes)?;
    std::fs::rename(&scratch, path)
}
