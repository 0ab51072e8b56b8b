//! MedMNIST(+) `.npz` files: NumPy archives with `train_images`, `train_labels`, `val_*`,
//! `test_*` (images `uint8 [N, H, W]` grey or `[N, H, W, 3]` RGB, any size 28–224; labels
//! `[N]` or `[N, 1]` integers). Every header is checked against the bytes it describes before
//! anything is allocated from it; a lying or cut-short archive is an error naming the array.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::DatasetError;
use super::arrays::ArrayImages;
use super::set::{Dataset, Layout, Sample, SplitName, finish};
use crate::limits::{MAX_DATASET_CLASSES, MAX_NPY_ARRAY_BYTES};
use crate::npy::{self, NpyArray};

/// The `.npy` array `name` of the archive (`None` when absent); images and labels are integers.
fn read_array(
    file: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
) -> Result<Option<NpyArray>, String> {
    let entry_name = format!("{name}.npy");
    let entry = match file.by_name(&entry_name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(error) => return Err(format!("{entry_name}: {error}")),
    };
    let array = npy::read(entry, MAX_NPY_ARRAY_BYTES)
        .map_err(|detail| format!("{entry_name}: {detail}"))?;
    if array.kind == 'f' {
        return Err(format!(
            "{entry_name}: only integer images and labels are read (MedMNIST's uint8 / int64)"
        ));
    }
    Ok(Some(array))
}

/// Per split: the images and their labels.
pub struct NpzSet {
    pub images: ArrayImages,
    /// (split, label, index into `images`).
    pub entries: Vec<(SplitName, usize, usize)>,
}

/// Not split: one pass over the archive's entries, each array checked against its header before it
/// is read; the checks share the archive and the running totals.
pub fn read_npz(path: &Path) -> Result<NpzSet, DatasetError> {
    let format_error = |detail: String| DatasetError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|error| format_error(format!("not a NumPy .npz archive: {error}")))?;
    let mut images = ArrayImages::default();
    let mut entries = Vec::new();
    for (split, prefix) in [
        (SplitName::Train, "train"),
        (SplitName::Val, "val"),
        (SplitName::Test, "test"),
    ] {
        let pictures =
            read_array(&mut archive, &format!("{prefix}_images")).map_err(format_error)?;
        let labels = read_array(&mut archive, &format!("{prefix}_labels")).map_err(format_error)?;
        let (pictures, labels) = match (pictures, labels) {
            (None, None) => continue,
            (Some(pictures), Some(labels)) => (pictures, labels),
            _ => {
                return Err(format_error(format!(
                    "{prefix}_images and {prefix}_labels must come together"
                )));
            }
        };
        let (count, height, width, channels) = match pictures.shape.as_slice() {
            [n, h, w] => (*n, *h, *w, 1),
            [n, h, w, 3] => (*n, *h, *w, 3),
            [n, h, w, 1] => (*n, *h, *w, 1),
            other => {
                return Err(format_error(format!(
                    "{prefix}_images has shape {other:?}: expected [N, H, W] or [N, H, W, 3]"
                )));
            }
        };
        if pictures.item != 1 || pictures.kind != 'u' {
            return Err(format_error(format!(
                "{prefix}_images: expected uint8 pixels"
            )));
        }
        if height == 0 || width == 0 || height > 4096 || width > 4096 {
            return Err(format_error(format!(
                "{prefix}_images: {width}×{height} pixels"
            )));
        }
        if !images.images.is_empty()
            && (images.width, images.height, images.channels) != (width, height, channels)
        {
            return Err(format_error(format!(
                "{prefix}_images are {width}×{height}×{channels}, the other splits {}×{}×{}",
                images.width, images.height, images.channels
            )));
        }
        let label_values = labels.integers();
        let per_image = match labels.shape.as_slice() {
            [n] if *n == count => 1,
            [n, 1] if *n == count => 1,
            [n, k] if *n == count => *k,
            other => {
                return Err(format_error(format!(
                    "{prefix}_labels has shape {other:?} for {count} images"
                )));
            }
        };
        if per_image != 1 {
            return Err(format_error(format!(
                "{prefix}_labels has {per_image} labels per image (multi-label sets such as ChestMNIST are not single-class classification)"
            )));
        }
        (images.width, images.height, images.channels) = (width, height, channels);
        let size = width * height * channels;
        for (index, (pixels, &label)) in pictures
            .data
            .chunks_exact(size)
            .zip(&label_values)
            .enumerate()
        {
            let label = usize::try_from(label)
                .ok()
                .filter(|&label| label < MAX_DATASET_CLASSES)
                .ok_or_else(|| {
                    format_error(format!(
                        "{prefix}_labels[{index}] = {label}: not a class number"
                    ))
                })?;
            entries.push((split, label, images.images.len()));
            images.images.push(pixels.to_vec());
        }
    }
    if entries.is_empty() {
        return Err(format_error(
            "no train_images/train_labels (or val_/test_) arrays: not a MedMNIST archive".into(),
        ));
    }
    Ok(NpzSet { images, entries })
}

/// Class names of the MedMNIST sets whose labels we know for sure, by file name
/// (`pneumoniamnist.npz`, `breastmnist_224.npz`); others are numbered.
pub fn known_class_names(path: &Path) -> Option<Vec<String>> {
    let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
    let set = stem.split('_').next()?;
    let names: &[&str] = match set {
        "pneumoniamnist" => &["normal", "pneumonia"],
        "breastmnist" => &["malignant", "normal, benign"],
        _ => return None,
    };
    Some(names.iter().map(|name| name.to_string()).collect())
}

/// A MedMNIST archive as a data set: its images held in memory, named `<split>/<n>.png`.
pub(super) fn open_npz(path: &Path) -> Result<Dataset, DatasetError> {
    let archive = read_npz(path)?;
    let count = archive
        .entries
        .iter()
        .map(|(_, label, _)| label + 1)
        .max()
        .unwrap_or(0);
    let classes = known_class_names(path)
        .filter(|names| names.len() == count)
        .unwrap_or_else(|| (0..count).map(|label| label.to_string()).collect());
    let mut per_split = BTreeMap::<SplitName, usize>::new();
    let samples = archive
        .entries
        .iter()
        .map(|&(split, label, index)| {
            let number = per_split.entry(split).or_default();
            let relative = format!("{}/{:06}.png", split.name(), *number);
            *number += 1;
            Sample {
                path: path.join(&relative),
                relative,
                class_index: label,
                split: Some(split),
                masks: Vec::new(),
                array: Some(index),
            }
        })
        .collect();
    let mut set = finish(
        path.to_path_buf(),
        Layout::Npz(path.to_path_buf()),
        classes,
        samples,
        Vec::new(),
    );
    set.arrays = Arc::new(archive.images);
    Ok(set)
}
