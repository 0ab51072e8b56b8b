//! Folder trees: one folder per class, with or without split folders above the classes, one
//! wrapper folder descended into, and BUSI's ground-truth masks beside their images.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::set::{Dataset, Layout, Sample, Skipped, SplitName, finish};
use super::{DatasetError, is_image_path, read_dir_sorted, subfolders, visible_name};
use crate::limits::MAX_DATASET_CLASSES;

/// Not split: its steps (look inside a wrapper folder, find split folders, collect each class's
/// images and masks, number the classes) hand each other the skipped list and the folder trees.
pub(super) fn open_folders(root: &Path) -> Result<Dataset, DatasetError> {
    let mut root = root.to_path_buf();
    // A lone wrapper folder (the zip's top folder) with no files beside it: look inside.
    loop {
        let folders = subfolders(&root)?;
        let files = read_dir_sorted(&root)?
            .into_iter()
            .filter(|path| path.is_file() && visible_name(path).is_some())
            .count();
        match folders.as_slice() {
            [(_, only)] if files == 0 && !subfolders(only)?.is_empty() => root = only.clone(),
            _ => break,
        }
    }
    let folders = subfolders(&root)?;
    let splits: Vec<(SplitName, PathBuf)> = folders
        .iter()
        .filter_map(|(name, path)| Some((SplitName::parse(name)?, path.clone())))
        .collect();
    let mut skipped = Vec::new();
    // Class folders, per split (`None`: no split folders).
    let mut trees: Vec<(Option<SplitName>, String, PathBuf)> = Vec::new();
    let layout = if !splits.is_empty() {
        for (name, path) in &folders {
            if SplitName::parse(name).is_none() {
                skipped.push(Skipped {
                    path: path.clone(),
                    reason:
                        "a folder beside the split folders that is not a split (train, val, test)"
                            .into(),
                });
            }
        }
        let mut seen = BTreeSet::new();
        for (split, dir) in &splits {
            if !seen.insert(*split) {
                return Err(DatasetError::Format {
                    path: dir.clone(),
                    detail: format!("a second {} folder", split.name()),
                });
            }
            for (class, path) in subfolders(dir)? {
                trees.push((Some(*split), class, path));
            }
        }
        Layout::SplitFolders
    } else {
        for (class, path) in folders {
            trees.push((None, class, path));
        }
        Layout::ClassFolders
    };

    let mut per_class: Vec<(Option<SplitName>, String, Vec<(PathBuf, Vec<PathBuf>)>)> = Vec::new();
    for (split, class, dir) in trees {
        let images = class_folder_images(&dir, &mut skipped)?;
        per_class.push((split, class, images));
    }
    let classes: Vec<String> = per_class
        .iter()
        .filter(|(_, _, images)| !images.is_empty())
        .map(|(_, class, _)| class.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if classes.is_empty() {
        return Err(DatasetError::NoClasses(root));
    }
    check_class_count(&root, classes.len())?;
    let mut samples = Vec::new();
    for (split, class, images) in per_class {
        let Ok(class_index) = classes.binary_search(&class) else {
            continue; // a class folder without images
        };
        for (path, masks) in images {
            samples.push(Sample {
                relative: relative_to(&root, &path),
                path,
                class_index,
                split,
                masks,
                array: None,
            });
        }
    }
    Ok(finish(root, layout, classes, samples, skipped))
}

/// The stem of the image a BUSI-style mask file belongs to: `x_mask` and `x_mask_2` → `x`.
pub(super) fn mask_owner(stem: &str) -> Option<&str> {
    let lower = stem.to_ascii_lowercase();
    let cut = lower.rfind("_mask")?;
    let tail = &lower[cut + "_mask".len()..];
    let numbered = tail
        .strip_prefix('_')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    (tail.is_empty() || numbered).then(|| &stem[..cut])
}

/// The images of one class folder, each with its ground-truth masks; everything else skipped
/// with its reason.
fn class_folder_images(
    dir: &Path,
    skipped: &mut Vec<Skipped>,
) -> Result<Vec<(PathBuf, Vec<PathBuf>)>, DatasetError> {
    let mut images: BTreeMap<String, (PathBuf, Vec<PathBuf>)> = BTreeMap::new();
    let mut masks: Vec<(String, PathBuf)> = Vec::new();
    for path in read_dir_sorted(dir)? {
        if visible_name(&path).is_none() {
            continue; // hidden (.DS_Store, ._x.jpg): not the user's data
        }
        if path.is_dir() {
            skipped.push(Skipped {
                path,
                reason:
                    "a folder inside a class folder (images are read from the class folder itself)"
                        .into(),
            });
            continue;
        }
        if !is_image_path(&path) {
            skipped.push(Skipped {
                path,
                reason: "not an image file (by its extension)".into(),
            });
            continue;
        }
        let stem = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        match mask_owner(&stem) {
            Some(owner) => masks.push((owner.to_string(), path)),
            None => {
                images.insert(stem, (path, Vec::new()));
            }
        }
    }
    for (owner, path) in masks {
        match images.get_mut(&owner) {
            Some((_, owned)) => owned.push(path),
            None => skipped.push(Skipped {
                path,
                reason: format!("a mask (name ends in _mask) without its image {owner}.*"),
            }),
        }
    }
    let mut images: Vec<_> = images.into_values().collect();
    images.sort();
    Ok(images)
}

/// More class folders than [`MAX_DATASET_CLASSES`] is refused.
fn check_class_count(path: &Path, classes: usize) -> Result<(), DatasetError> {
    if classes > MAX_DATASET_CLASSES {
        return Err(DatasetError::Format {
            path: path.to_path_buf(),
            detail: format!("{classes} classes; at most {MAX_DATASET_CLASSES} are read"),
        });
    }
    Ok(())
}

/// `/`-joined path of `path` inside `root` (file names as they are; non-UTF-8 lossily).
fn relative_to(root: &Path, path: &Path) -> String {
    let inside = path.strip_prefix(root).unwrap_or(path);
    inside
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
