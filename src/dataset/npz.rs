//! MedMNIST(+) `.npz` files: NumPy archives with `train_images`, `train_labels`, `val_*`,
//! `test_*` (images `uint8 [N, H, W]` grey or `[N, H, W, 3]` RGB, any size 28–224; labels
//! `[N]` or `[N, 1]` integers). Every header is checked against the bytes it describes before
//! anything is allocated from it; a lying or cut-short archive is an error naming the array.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::DatasetError;
use super::arrays::ArrayImages;
use super::set::{Dataset, Layout, Sample, SplitName, finish};
use crate::limits::{MAX_DATASET_CLASSES, MAX_NPY_ARRAY_BYTES, MAX_NPY_HEADER_BYTES};

/// One `.npy` array: its shape, and its values as bytes (`item` bytes each, little-endian).
struct Array {
    shape: Vec<usize>,
    kind: char,
    item: usize,
    data: Vec<u8>,
}

/// Parses `{'descr': '|u1', 'fortran_order': False, 'shape': (10, 28, 28), }`.
fn parse_header(header: &str) -> Result<(char, usize, bool, Vec<usize>), String> {
    let field = |name: &str| -> Result<&str, String> {
        let key = format!("'{name}':");
        let start = header
            .find(&key)
            .ok_or_else(|| format!("the header has no {name}"))?
            + key.len();
        Ok(header[start..].trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|rest| rest.split('\'').next())
        .ok_or("descr is not a string")?;
    let mut chars = descr.chars();
    let order = chars.next().ok_or("empty descr")?;
    let kind = chars.next().ok_or("descr without a type")?;
    let item: usize = chars
        .as_str()
        .parse()
        .map_err(|_| format!("descr {descr:?}: unknown item size"))?;
    if order == '>' && item > 1 {
        return Err(format!("descr {descr:?}: big-endian arrays are not read"));
    }
    if !matches!(kind, 'u' | 'i' | 'b') || !matches!(item, 1 | 2 | 4 | 8) {
        return Err(format!(
            "descr {descr:?}: only integer images and labels are read (MedMNIST's uint8 / int64)"
        ));
    }
    let fortran = field("fortran_order")?.starts_with("True");
    let shape = field("shape")?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|rest| rest.split(')').next())
        .ok_or("shape is not a tuple")?;
    let shape = shape
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<usize>()
                .map_err(|_| format!("shape entry {part:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((kind, item, fortran, shape))
}

fn read_array(
    file: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
) -> Result<Option<Array>, String> {
    let entry_name = format!("{name}.npy");
    let mut entry = match file.by_name(&entry_name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(error) => return Err(format!("{entry_name}: {error}")),
    };
    let error = |detail: String| format!("{entry_name}: {detail}");
    let mut magic = [0u8; 8];
    entry
        .read_exact(&mut magic)
        .map_err(|e| error(format!("not a .npy array ({e})")))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(error("not a .npy array (no NUMPY magic)".into()));
    }
    let header_len = match magic[6] {
        1 => {
            let mut len = [0u8; 2];
            entry
                .read_exact(&mut len)
                .map_err(|e| error(e.to_string()))?;
            u16::from_le_bytes(len) as usize
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            entry
                .read_exact(&mut len)
                .map_err(|e| error(e.to_string()))?;
            u32::from_le_bytes(len) as usize
        }
        version => return Err(error(format!(".npy format version {version}"))),
    };
    if header_len > MAX_NPY_HEADER_BYTES {
        return Err(error(format!("a {header_len}-byte header")));
    }
    let mut header = vec![0u8; header_len];
    entry
        .read_exact(&mut header)
        .map_err(|e| error(format!("header cut short ({e})")))?;
    let header = String::from_utf8_lossy(&header);
    let (kind, item, fortran, shape) = parse_header(&header).map_err(error)?;
    if fortran && shape.len() > 1 {
        return Err(error("Fortran-ordered arrays are not read".into()));
    }
    let bytes = shape
        .iter()
        .try_fold(item as u64, |total, &dim| total.checked_mul(dim as u64))
        .filter(|&total| total <= MAX_NPY_ARRAY_BYTES)
        .ok_or_else(|| {
            error(format!(
                "shape {shape:?} of {item}-byte values is more than {MAX_NPY_ARRAY_BYTES} bytes"
            ))
        })?;
    // The header's claim is checked against the data itself: read at most one byte more.
    let mut data = Vec::new();
    (&mut entry)
        .take(bytes + 1)
        .read_to_end(&mut data)
        .map_err(|e| error(format!("data: {e}")))?;
    if data.len() as u64 != bytes {
        return Err(error(format!(
            "the header's shape {shape:?} needs {bytes} bytes, the array has {}{}",
            data.len(),
            if data.len() as u64 > bytes {
                " or more"
            } else {
                ""
            }
        )));
    }
    Ok(Some(Array {
        shape,
        kind,
        item,
        data,
    }))
}

impl Array {
    fn integers(&self) -> Vec<i64> {
        self.data
            .chunks_exact(self.item)
            .map(|bytes| {
                let mut full = [0u8; 8];
                full[..self.item].copy_from_slice(bytes);
                let value = u64::from_le_bytes(full);
                match self.kind {
                    // Sign-extend from the item's width.
                    'i' => {
                        let shift = 64 - 8 * self.item as u32;
                        ((value << shift) as i64) >> shift
                    }
                    _ => value as i64,
                }
            })
            .collect()
    }
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
