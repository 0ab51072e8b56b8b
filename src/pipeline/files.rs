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
