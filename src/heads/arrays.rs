//! A head's trainable weights as NumPy arrays (an `.npz`, one float32 `.npy` per tensor), out
//! and back in exactly: what a federated client sends and a server averages (issue 34). Only
//! heads whose weights say nothing image by image are federable — the linear probe and LP+text
//! (`linear.weight` `[classes, dim]`, `linear.bias` `[classes]`) and CoOp (its context vectors,
//! `coop.context` `[tokens, width]`). Tip-Adapter(-F) is refused by name: its cache keys are the
//! training images' embeddings, which must not leave a site.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use burn::tensor::{Device, Tensor, TensorData};

use super::head::{HeadError, check_clip};
use super::head_file::{
    COOP_CONTEXT, HeadFile, HeadFileError, HeadKind, HostTensor, LINEAR_BIAS, LINEAR_WEIGHT, TEXT,
};
use super::train::coop::CoopPrompts;
use super::train::run::host_values;
use crate::clip::LoadedClip;
use crate::limits::MAX_HEAD_ARRAY_BYTES;
use crate::npy;

/// More entries than any federable head has: an archive past it is not a head's arrays.
const MAX_ENTRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ArraysError {
    #[error("a {kind} head is not federated: {why}")]
    NotFederable {
        kind: &'static str,
        why: &'static str,
    },
    #[error("the arrays file: {0}")]
    Archive(String),
    #[error("{path}: {detail}")]
    File { path: String, detail: String },
    #[error("the arrays file lacks {0}.npy")]
    Missing(String),
    #[error("the arrays file holds {0}.npy, which this head does not have")]
    Unexpected(String),
    #[error("{name}: shape {found:?}, this head's is {expected:?}")]
    Shape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{0}: a value is NaN or infinite")]
    NotFinite(String),
    #[error(
        "a CoOp head's class texts are its context through CLIP's text tower: give the CLIP model it was trained on (--model)"
    )]
    NeedsModel,
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    OtherModel(#[from] HeadError),
    #[error(transparent)]
    Head(#[from] HeadFileError),
}

/// The tensors of `kind` that are its trainable weights, in the order written; an error naming
/// why for a head that is not federated.
pub fn federated_tensors(kind: HeadKind) -> Result<&'static [&'static str], ArraysError> {
    let refuse = |why| {
        Err(ArraysError::NotFederable {
            kind: kind.name(),
            why,
        })
    };
    match kind {
        HeadKind::LinearProbe | HeadKind::LpText => Ok(&[LINEAR_WEIGHT, LINEAR_BIAS]),
        HeadKind::Coop => Ok(&[COOP_CONTEXT]),
        HeadKind::TipAdapter | HeadKind::TipAdapterF => refuse(
            "its cache keys are the training images' embeddings, which must not leave a site",
        ),
        HeadKind::ZeroShot => {
            refuse("it has no trained weights (its class texts are the prompts')")
        }
        HeadKind::Finetune => refuse(
            "its weights are whole blocks of the image tower (millions of values), not a head",
        ),
    }
}

/// The head's trainable weights as an `.npz` (stored, not compressed): `numpy.load` gives each
/// tensor under its name, float32, with the head's shape and bit-identical values.
pub fn write_npz(head: &HeadFile) -> Result<Vec<u8>, ArraysError> {
    let names = federated_tensors(head.header.kind)?;
    let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let error = |error: &dyn std::fmt::Display| ArraysError::Archive(error.to_string());
    for &name in names {
        let tensor = head
            .tensors
            .get(name)
            .ok_or_else(|| HeadFileError::Damaged(format!("tensor {name} is missing")))?;
        archive
            .start_file(format!("{name}.npy"), options)
            .map_err(|e| error(&e))?;
        archive
            .write_all(&npy::write_f32(&tensor.shape, &tensor.values))
            .map_err(|e| error(&e))?;
    }
    Ok(archive.finish().map_err(|e| error(&e))?.into_inner())
}

/// [`read_npz`] of a file, its size bounded before it is read: a head's weights are a few small
/// arrays (at most four of [`MAX_HEAD_ARRAY_BYTES`] in all).
pub fn read_npz_file(path: &std::path::Path) -> Result<BTreeMap<String, HostTensor>, ArraysError> {
    let error = |detail: String| ArraysError::File {
        path: path.display().to_string(),
        detail,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| error(e.to_string()))?
        .len();
    let limit = 4 * MAX_HEAD_ARRAY_BYTES;
    if size > limit {
        return Err(error(format!(
            "{size} bytes; a head's weights are at most {limit}"
        )));
    }
    read_npz(&std::fs::read(path).map_err(|e| error(e.to_string()))?)
}

/// Reads an `.npz` of a head's weights: every entry a float32 `.npy` array, by name.
pub fn read_npz(bytes: &[u8]) -> Result<BTreeMap<String, HostTensor>, ArraysError> {
    let error = |detail: String| ArraysError::Archive(detail);
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| error(format!("not an .npz (zip) archive: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(error(format!(
            "{} entries; a head's weights are at most {MAX_ENTRIES}",
            archive.len()
        )));
    }
    let mut arrays = BTreeMap::new();
    for index in 0..archive.len() {
        let entry = archive
            .by_index(index)
            .map_err(|e| error(format!("entry {index}: {e}")))?;
        let file_name = entry
            .name()
            .map_err(|e| error(format!("entry {index}: {e}")))?
            .to_string();
        let Some(name) = file_name.strip_suffix(".npy") else {
            return Err(error(format!("{file_name} is not a .npy array")));
        };
        let name = name.to_string();
        // At most one byte past what the header claims is read, and the claim is bounded.
        let array = npy::read(entry, MAX_HEAD_ARRAY_BYTES)
            .map_err(|e| error(format!("{file_name}: {e}")))?;
        let values = array
            .f32s()
            .map_err(|e| error(format!("{file_name}: {e}")))?;
        arrays.insert(name, HostTensor::new(array.shape, values));
    }
    Ok(arrays)
}

/// `head` with its trainable weights replaced by `arrays` (exactly these names and shapes, all
/// finite); its identity, classes, focus and training log stay. A CoOp head's class texts are
/// recomputed from the new context through `clip`'s text tower (the model it was trained on).
pub fn with_arrays(
    head: &HeadFile,
    mut arrays: BTreeMap<String, HostTensor>,
    clip: Option<&LoadedClip>,
) -> Result<HeadFile, ArraysError> {
    let names = federated_tensors(head.header.kind)?;
    if let Some(extra) = arrays.keys().find(|name| !names.contains(&name.as_str())) {
        return Err(ArraysError::Unexpected(extra.clone()));
    }
    let mut updated = head.clone();
    for &name in names {
        let array = arrays
            .remove(name)
            .ok_or_else(|| ArraysError::Missing(name.to_string()))?;
        let expected = &head
            .tensors
            .get(name)
            .ok_or_else(|| HeadFileError::Damaged(format!("tensor {name} is missing")))?
            .shape;
        if &array.shape != expected {
            return Err(ArraysError::Shape {
                name: name.to_string(),
                found: array.shape,
                expected: expected.clone(),
            });
        }
        if array.values.iter().any(|value| !value.is_finite()) {
            return Err(ArraysError::NotFinite(name.to_string()));
        }
        updated.tensors.insert(name.to_string(), array);
    }
    if head.header.kind == HeadKind::Coop {
        let clip = clip.ok_or(ArraysError::NeedsModel)?;
        let text = coop_class_texts(&updated, clip)?;
        updated.tensors.insert(TEXT.to_string(), text);
    }
    updated.check()?;
    Ok(updated)
}

/// A CoOp head's class texts `[classes, embed_dim]` for its context, through `clip`.
fn coop_class_texts(head: &HeadFile, clip: &LoadedClip) -> Result<HostTensor, ArraysError> {
    check_clip(&head.header, &clip.model)?;
    let context = &head.tensors[COOP_CONTEXT];
    let [tokens, width] = context.shape[..] else {
        return Err(HeadFileError::Damaged(format!("{COOP_CONTEXT} is not 2-D")).into());
    };
    // The words the prompts used for the classes, as training recorded them.
    let names: Vec<String> = match head.header.training["class_names"].as_array() {
        Some(names) => names
            .iter()
            .filter_map(|name| name.as_str().map(str::to_string))
            .collect(),
        None => head.header.classes.clone(),
    };
    let device = Device::flex();
    let prompts = CoopPrompts::new(clip, &names, tokens, &device)
        .map_err(|error| ArraysError::Model(error.to_string()))?;
    if prompts.width() != width {
        return Err(ArraysError::Shape {
            name: COOP_CONTEXT.to_string(),
            found: vec![tokens, width],
            expected: vec![tokens, prompts.width()],
        });
    }
    let context = Tensor::<2>::from_data(
        TensorData::new(context.values.clone(), [tokens, width]),
        &device,
    );
    let text = prompts.class_embeddings(context);
    let [classes, dim] = text.dims();
    let values = host_values(text).map_err(|error| ArraysError::Model(error.to_string()))?;
    Ok(HostTensor::new(vec![classes, dim], values))
}

#[cfg(test)]
mod tests;
