//! Explanations over files, natively: read, explain, write each image's two pictures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::request::{ExplainError, ExplainRequest};
use super::{Explained, explain, picture};
use crate::pipeline::files::{read_pixels, write_atomic};
use crate::pipeline::{MaskSource, Pipeline};

/// One image's prediction and explanation, and where its pictures were written.
#[derive(Clone, Debug)]
pub struct WrittenExplanation {
    pub explained: Explained,
    /// The heat-map alone (RGBA, transparent where the tower saw nothing).
    pub heatmap: PathBuf,
    /// The heat-map blended over the image.
    pub blended: PathBuf,
}

/// Explains each file and writes `<name>.<method>.heatmap.png` and `<name>.<method>.blended.png`
/// into `dir` (`<name>` is the file's stem, numbered when two files share one). Per file: the
/// result or why not (the caller names the file).
pub fn explain_files(
    pipeline: &Pipeline,
    files: &[PathBuf],
    source: &MaskSource,
    request: &ExplainRequest,
    dir: &Path,
    opacity: f32,
) -> Vec<Result<WrittenExplanation, ExplainError>> {
    let names = picture_names(files);
    files
        .iter()
        .zip(names)
        .map(|(path, name)| {
            let pixels = read_pixels(path)?;
            let explained = pollster::block_on(explain(pipeline, &pixels, source, request))?;
            let heat = &explained.explanation.heat;
            let (heat_png, blended_png) = picture::heat_pngs(&pixels, heat, opacity)
                .map_err(|error| ExplainError::Write(error.to_string()))?;
            let method = request.method.name();
            let heatmap = dir.join(format!("{name}.{method}.heatmap.png"));
            let blended = dir.join(format!("{name}.{method}.blended.png"));
            for (target, bytes) in [(&heatmap, heat_png), (&blended, blended_png)] {
                write_atomic(target, &bytes).map_err(|error| {
                    ExplainError::Write(format!("{}: {error}", target.display()))
                })?;
            }
            Ok(WrittenExplanation {
                explained,
                heatmap,
                blended,
            })
        })
        .collect()
}

/// Each file's stem, or `<n>-<stem>` (1-based position) for stems two files share.
fn picture_names(files: &[PathBuf]) -> Vec<String> {
    let stem = |path: &PathBuf| {
        path.file_stem().map_or_else(
            || "image".to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        )
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for path in files {
        *counts.entry(stem(path)).or_default() += 1;
    }
    files
        .iter()
        .enumerate()
        .map(|(index, path)| {
            let stem = stem(path);
            if counts[&stem] > 1 {
                format!("{}-{stem}", index + 1)
            } else {
                stem
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_two_files_share_are_numbered() {
        let files = [
            PathBuf::from("a/scan.png"),
            PathBuf::from("b/scan.jpg"),
            PathBuf::from("c/other.png"),
        ];
        assert_eq!(picture_names(&files), vec!["1-scan", "2-scan", "other"]);
    }
}
