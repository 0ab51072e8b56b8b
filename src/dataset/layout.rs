//! The readers of labelled image sets in the layouts users download them in, each giving one
//! [`Dataset`] ([`Dataset::open`] picks the reader):
//!
//! - folder-per-class trees (`glioma/*.jpg`), with or without split folders above the classes
//!   (`train/ val/ test/`, `Training/ Testing/`, `validation/`, any case), and one wrapper folder
//!   above it all (`Covid19-dataset/train/…`) descended into;
//! - BUSI's ground-truth masks beside the images (`benign (1)_mask.png`, `…_mask_1.png`): masks of
//!   that image, not images;
//! - CoOp/Dassl split files (`split_*.json`: `{"train"|"val"|"test": [[path, label, class name], …]}`),
//!   as BiomedCoOp ships them;
//! - a CSV of `path,label` (an optional third column `split`; a header line is recognised);
//! - MedMNIST(+) `.npz` archives (images held in memory, see [`super::npz`]).
//!
//! Files that cannot be used are listed in [`Dataset::skipped`] with the reason, never dropped
//! silently; list files are bounded in size before they are read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::npz::{known_class_names, read_npz};
use super::set::{Dataset, Layout, MAX_CLASSES, MAX_LIST_BYTES, Sample, Skipped, SplitName};
use super::{DatasetError, is_image_path, read_dir_sorted, visible_name};
use std::sync::Arc;

impl Dataset {
    /// Reads the set at `path`: a folder, a `.json` split file or a `.csv` list. `images` is the
    /// folder a list's paths are relative to (default: the list's folder, or the sub-folder of it
    /// in which the first listed file exists).
    pub fn open(path: &Path, images: Option<&Path>) -> Result<Self, DatasetError> {
        let extension = path
            .extension()
            .and_then(|ext| ext.to_str())
            .map(str::to_ascii_lowercase);
        if path.is_dir() {
            return open_folders(path);
        }
        if !path.exists() {
            return Err(DatasetError::Unreadable {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        match extension.as_deref() {
            Some("json") => open_split_file(path, images),
            Some("csv") => open_csv(path, images),
            Some("npz") => open_npz(path),
            _ => Err(DatasetError::Format {
                path: path.to_path_buf(),
                detail: "not a data set: give a folder (one sub-folder per class, optionally inside train/val/test folders), a CoOp/Dassl split_*.json, a path,label CSV or a MedMNIST .npz".into(),
            }),
        }
    }
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

fn subfolders(dir: &Path) -> Result<Vec<(String, PathBuf)>, DatasetError> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|path| path.is_dir())
        .filter_map(|path| Some((visible_name(&path)?, path)))
        .collect())
}

/// Not split: its steps (look inside a wrapper folder, find split folders, collect each class's
/// images and masks, number the classes) hand each other the skipped list and the folder trees.
fn open_folders(root: &Path) -> Result<Dataset, DatasetError> {
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

fn finish(
    root: PathBuf,
    layout: Layout,
    classes: Vec<String>,
    mut samples: Vec<Sample>,
    skipped: Vec<Skipped>,
) -> Dataset {
    samples.sort_by(|a, b| (a.split, &a.relative).cmp(&(b.split, &b.relative)));
    Dataset {
        root,
        layout,
        classes,
        samples,
        skipped,
        arrays: Arc::default(),
    }
}

fn open_npz(path: &Path) -> Result<Dataset, DatasetError> {
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

fn check_class_count(path: &Path, classes: usize) -> Result<(), DatasetError> {
    if classes > MAX_CLASSES {
        return Err(DatasetError::Format {
            path: path.to_path_buf(),
            detail: format!("{classes} classes; at most {MAX_CLASSES} are read"),
        });
    }
    Ok(())
}

/// The stem of the image a BUSI-style mask file belongs to: `x_mask` and `x_mask_2` → `x`.
fn mask_owner(stem: &str) -> Option<&str> {
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

fn read_list(path: &Path) -> Result<String, DatasetError> {
    let unreadable = |source| DatasetError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_LIST_BYTES {
        return Err(DatasetError::Format {
            path: path.to_path_buf(),
            detail: format!("{size} bytes; a list of images is at most {MAX_LIST_BYTES} bytes"),
        });
    }
    let bytes = fs::read(path).map_err(unreadable)?;
    String::from_utf8(bytes).map_err(|_| DatasetError::Format {
        path: path.to_path_buf(),
        detail: "not UTF-8 text".into(),
    })
}

/// The folder a list's relative paths start from: `images` if given, else the list's folder or
/// the first sub-folder of it (`images/`, `<set name>/`, …) in which `first` exists.
fn list_root(list: &Path, images: Option<&Path>, first: Option<&str>) -> PathBuf {
    if let Some(images) = images {
        return images.to_path_buf();
    }
    let base = list
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let Some(first) = first else { return base };
    if base.join(first).is_file() {
        return base;
    }
    subfolders(&base)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, dir)| dir)
        .find(|dir| dir.join(first).is_file())
        .unwrap_or(base)
}

/// One listed image: (relative path, label, class name, split).
struct Listed {
    relative: String,
    label: usize,
    class: Option<String>,
    split: Option<SplitName>,
}

/// Classes from listed labels (and names, when the list has them): label `i` is class `i`.
fn classes_from(list: &Path, entries: &[Listed]) -> Result<Vec<String>, DatasetError> {
    let format_error = |detail: String| DatasetError::Format {
        path: list.to_path_buf(),
        detail,
    };
    let mut names: BTreeMap<usize, String> = BTreeMap::new();
    for entry in entries {
        if entry.label >= MAX_CLASSES {
            return Err(format_error(format!(
                "label {} of {}: labels are class numbers from 0 (at most {MAX_CLASSES} classes)",
                entry.label, entry.relative
            )));
        }
        let name = entry
            .class
            .clone()
            .unwrap_or_else(|| entry.label.to_string());
        match names.get(&entry.label) {
            Some(known) if *known != name => {
                return Err(format_error(format!(
                    "label {} is named both {known:?} and {name:?}",
                    entry.label
                )));
            }
            Some(_) => {}
            None => {
                names.insert(entry.label, name);
            }
        }
    }
    let count = names.keys().next_back().map_or(0, |last| last + 1);
    if count == 0 {
        return Err(DatasetError::NoClasses(list.to_path_buf()));
    }
    (0..count)
        .map(|label| {
            names.remove(&label).ok_or_else(|| {
                format_error(format!(
                    "no image has label {label}, though labels go up to {}",
                    count - 1
                ))
            })
        })
        .collect()
}

fn listed_samples(
    list: &Path,
    layout: Layout,
    images: Option<&Path>,
    entries: Vec<Listed>,
) -> Result<Dataset, DatasetError> {
    let classes = classes_from(list, &entries)?;
    let root = list_root(list, images, entries.first().map(|e| e.relative.as_str()));
    let mut skipped = Vec::new();
    let mut samples = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in entries {
        let path = root.join(&entry.relative);
        if !seen.insert(entry.relative.clone()) {
            skipped.push(Skipped {
                path,
                reason: "listed twice (the first entry is used)".into(),
            });
        } else if !path.is_file() {
            skipped.push(Skipped {
                path,
                reason: format!("listed in {} but not found", list.display()),
            });
        } else {
            samples.push(Sample {
                path,
                relative: entry.relative,
                class_index: entry.label,
                split: entry.split,
                masks: Vec::new(),
                array: None,
            });
        }
    }
    if samples.is_empty() {
        return Err(DatasetError::Format {
            path: list.to_path_buf(),
            detail: format!(
                "none of the listed images exists under {} (give the images' folder with --images)",
                root.display()
            ),
        });
    }
    Ok(finish(root, layout, classes, samples, skipped))
}

/// A listed path must stay inside the set: no absolute paths, no `..`.
fn check_relative(list: &Path, relative: &str) -> Result<String, DatasetError> {
    let normalised = relative.trim().replace('\\', "/");
    let escapes = normalised.starts_with('/')
        || normalised.split('/').any(|part| part == "..")
        || Path::new(&normalised).is_absolute();
    if normalised.is_empty() || escapes {
        return Err(DatasetError::Format {
            path: list.to_path_buf(),
            detail: format!(
                "{relative:?}: listed paths are relative to the images' folder and stay inside it"
            ),
        });
    }
    Ok(normalised)
}

/// CoOp/Dassl's `{"train": [[path, label, class name], …], "val": …, "test": …}`.
fn open_split_file(path: &Path, images: Option<&Path>) -> Result<Dataset, DatasetError> {
    let text = read_list(path)?;
    let format_error = |detail: String| DatasetError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| format_error(format!("not JSON: {error}")))?;
    let object = value.as_object().ok_or_else(|| {
        format_error(
            "expected an object {\"train\": [...], \"val\": [...], \"test\": [...]}".into(),
        )
    })?;
    let mut entries = Vec::new();
    for (key, list) in object {
        let split = SplitName::parse(key)
            .ok_or_else(|| format_error(format!("{key:?} is not a split (train, val, test)")))?;
        let list = list.as_array().ok_or_else(|| {
            format_error(format!(
                "{key}: expected a list of [path, label, class name]"
            ))
        })?;
        for (index, item) in list.iter().enumerate() {
            let bad = || {
                format_error(format!(
                    "{key}[{index}]: expected [path, label, class name], found {item}"
                ))
            };
            let fields = item.as_array().ok_or_else(bad)?;
            let (Some(relative), Some(label)) = (
                fields.first().and_then(|v| v.as_str()),
                fields.get(1).and_then(|v| v.as_u64()),
            ) else {
                return Err(bad());
            };
            let class = match fields.get(2) {
                None => None,
                Some(name) => Some(name.as_str().ok_or_else(bad)?.to_string()),
            };
            entries.push(Listed {
                relative: check_relative(path, relative)?,
                label: usize::try_from(label).unwrap_or(usize::MAX),
                class,
                split: Some(split),
            });
        }
    }
    listed_samples(path, Layout::SplitFile(path.to_path_buf()), images, entries)
}

/// `path,label[,split]`; a first line whose label is not a number is a header. Labels are class
/// numbers from 0 or class names (then sorted, as folders are).
fn open_csv(path: &Path, images: Option<&Path>) -> Result<Dataset, DatasetError> {
    let text = read_list(path)?;
    let format_error = |detail: String| DatasetError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record =
            record.map_err(|error| format_error(format!("line {}: {error}", index + 1)))?;
        if record.iter().all(|field| field.is_empty()) {
            continue;
        }
        if record.len() < 2 {
            return Err(format_error(format!(
                "line {}: expected path,label[,split], found {} field",
                index + 1,
                record.len()
            )));
        }
        rows.push((
            index + 1,
            record[0].to_string(),
            record[1].to_string(),
            record.get(2).map(str::to_string),
        ));
    }
    // A header: the first row names its columns (its label is no class of the rows below).
    let header = rows.first().is_some_and(|(_, path, label, _)| {
        matches!(
            path.to_ascii_lowercase().as_str(),
            "path" | "file" | "filename" | "image" | "image_path"
        ) || (label.eq_ignore_ascii_case("label") || label.eq_ignore_ascii_case("class"))
    });
    if header {
        rows.remove(0);
    }
    let numeric = rows
        .iter()
        .all(|(_, _, label, _)| label.parse::<usize>().is_ok());
    let names: Vec<String> = if numeric {
        Vec::new()
    } else {
        rows.iter()
            .map(|(_, _, label, _)| label.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let mut entries = Vec::new();
    for (line, relative, label, split) in rows {
        let (label, class) = if numeric {
            (label.parse::<usize>().unwrap_or(usize::MAX), None)
        } else {
            let index = names.binary_search(&label).unwrap_or(usize::MAX);
            (index, Some(label))
        };
        let split = match split.as_deref() {
            None | Some("") => None,
            Some(name) => Some(SplitName::parse(name).ok_or_else(|| {
                format_error(format!(
                    "line {line}: split {name:?} is not train, val or test"
                ))
            })?),
        };
        entries.push(Listed {
            relative: check_relative(path, &relative)?,
            label,
            class,
            split,
        });
    }
    listed_samples(path, Layout::Csv(path.to_path_buf()), images, entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("medfocus-layout-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn touch(root: &Path, relative: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"x").unwrap();
    }

    #[test]
    fn mask_names_are_recognised() {
        assert_eq!(mask_owner("benign (1)_mask"), Some("benign (1)"));
        assert_eq!(mask_owner("benign (1)_mask_1"), Some("benign (1)"));
        assert_eq!(mask_owner("x_MASK_12"), Some("x"));
        assert_eq!(mask_owner("masked"), None);
        assert_eq!(mask_owner("x_mask_"), None);
        assert_eq!(mask_owner("x_masks"), None);
    }

    #[test]
    fn split_folders_in_any_case_inside_a_wrapper_folder() {
        let root = scratch("splits");
        touch(&root, "Brain/Training/glioma/a.jpg");
        touch(&root, "Brain/Training/glioma/b.jpg");
        touch(&root, "Brain/Training/notumor/c.jpg");
        touch(&root, "Brain/Testing/glioma/d.jpg");
        touch(&root, "Brain/VALIDATION/notumor/e.jpg");
        touch(&root, "Brain/Training/glioma/notes.txt");
        let set = Dataset::open(&root, None).unwrap();
        assert_eq!(set.layout, Layout::SplitFolders);
        assert_eq!(set.root, root.join("Brain"));
        assert_eq!(set.classes, ["glioma", "notumor"]);
        let counts = set.counts();
        assert_eq!(counts[&Some(SplitName::Train)], [2, 1]);
        assert_eq!(counts[&Some(SplitName::Val)], [0, 1]);
        assert_eq!(counts[&Some(SplitName::Test)], [1, 0]);
        assert_eq!(set.samples[0].relative, "Training/glioma/a.jpg");
        assert_eq!(set.skipped.len(), 1, "{:?}", set.skipped);
        assert!(set.skipped[0].reason.contains("not an image"));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn busi_masks_belong_to_their_images() {
        let root = scratch("busi");
        for file in [
            "benign/benign (1).png",
            "benign/benign (1)_mask.png",
            "benign/benign (1)_mask_1.png",
            "benign/benign (2).png",
            "malignant/malignant (1).png",
            "malignant/malignant (1)_mask.png",
            "normal/normal (9)_mask.png",
            "normal/normal (1).png",
        ] {
            touch(&root, file);
        }
        let set = Dataset::open(&root, None).unwrap();
        assert_eq!(set.layout, Layout::ClassFolders);
        assert_eq!(set.classes, ["benign", "malignant", "normal"]);
        assert_eq!(set.samples.len(), 4);
        assert_eq!(set.samples[0].masks.len(), 2);
        assert!(set.samples[1].masks.is_empty());
        assert_eq!(set.masked(), 2);
        assert_eq!(set.skipped.len(), 1);
        assert!(
            set.skipped[0].reason.contains("without its image"),
            "{}",
            set.skipped[0]
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn split_file_paths_resolve_inside_a_sub_folder() {
        let root = scratch("split-json");
        touch(&root, "BTMRI/glioma/a.jpg");
        touch(&root, "BTMRI/glioma/b.jpg");
        touch(&root, "BTMRI/pituitary/c.jpg");
        let file = root.join("split_BTMRI.json");
        fs::write(
            &file,
            r#"{"train": [["glioma/a.jpg", 0, "glioma tumor"], ["pituitary/c.jpg", 1, "pituitary tumor"]],
                "val": [], "test": [["glioma/b.jpg", 0, "glioma tumor"], ["glioma/gone.jpg", 0, "glioma tumor"]]}"#,
        )
        .unwrap();
        let set = Dataset::open(&file, None).unwrap();
        assert_eq!(set.root, root.join("BTMRI"));
        assert_eq!(set.classes, ["glioma tumor", "pituitary tumor"]);
        assert_eq!(set.samples.len(), 3);
        assert_eq!(set.skipped.len(), 1);
        assert!(set.skipped[0].reason.contains("not found"));
        assert!(set.has_test_split());

        for (bad, says) in [
            (r#"{"train": [["../x.jpg", 0, "a"]]}"#, "stay inside"),
            (
                r#"{"train": [["a.jpg", 0, "a"], ["b.jpg", 0, "b"]]}"#,
                "named both",
            ),
            (r#"{"train": [["a.jpg", 1, "a"]]}"#, "no image has label 0"),
            (r#"{"holdout": []}"#, "not a split"),
            (r#"{"train": [["a.jpg"]]}"#, "expected [path, label"),
            (r#"{"train": [["a.jpg", 99999999999, "a"]]}"#, "at most"),
            ("[1, 2", "not JSON"),
        ] {
            fs::write(&file, bad).unwrap();
            let error = Dataset::open(&file, None).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn csv_with_header_names_and_splits() {
        let root = scratch("csv");
        touch(&root, "img/1.png");
        touch(&root, "img/2.png");
        touch(&root, "img/3.png");
        let file = root.join("labels.csv");
        fs::write(
            &file,
            "path,label,split\nimg/1.png,pneumonia,train\n\"img/2.png\",normal,TEST\nimg/3.png,normal,train\n",
        )
        .unwrap();
        let set = Dataset::open(&file, None).unwrap();
        assert_eq!(set.classes, ["normal", "pneumonia"]);
        assert_eq!(set.counts()[&Some(SplitName::Train)], [1, 1]);
        assert_eq!(set.counts()[&Some(SplitName::Test)], [1, 0]);

        fs::write(&file, "img/1.png,1\nimg/2.png,0\n").unwrap();
        let set = Dataset::open(&file, None).unwrap();
        assert_eq!(set.classes, ["0", "1"]);
        assert_eq!(set.counts()[&None], [1, 1]);

        for (bad, says) in [
            ("img/1.png\n", "expected path,label"),
            ("img/1.png,0,holdout\n", "not train, val or test"),
            ("/etc/passwd,0\n", "stay inside"),
            ("nothing.png,0\n", "none of the listed images"),
        ] {
            fs::write(&file, bad).unwrap();
            let error = Dataset::open(&file, None).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn oversized_lists_are_refused_before_reading() {
        let root = scratch("huge");
        let file = root.join("split.json");
        let handle = fs::File::create(&file).unwrap();
        handle.set_len(MAX_LIST_BYTES + 1).unwrap();
        let error = Dataset::open(&file, None).unwrap_err().to_string();
        assert!(error.contains("at most"), "{error}");
        fs::remove_dir_all(root).unwrap();
    }
}
