//! Lists of images: CoOp/Dassl split files and `path,label[,split]` CSVs, paths relative to an
//! images folder, bounded in size before they are read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::set::{Dataset, Layout, Sample, Skipped, SplitName, finish};
use super::{DatasetError, subfolders};
use crate::limits::{MAX_DATASET_CLASSES, MAX_LIST_BYTES};

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
        if entry.label >= MAX_DATASET_CLASSES {
            return Err(format_error(format!(
                "label {} of {}: labels are class numbers from 0 (at most {MAX_DATASET_CLASSES} classes)",
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
pub(super) fn open_split_file(path: &Path, images: Option<&Path>) -> Result<Dataset, DatasetError> {
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

/// One CSV row: (line number, path, label, split).
type CsvRow = (usize, String, String, Option<String>);

/// The rows of a `path,label[,split]` list without its header (a first row that names its
/// columns), blank lines skipped; none, a short row or an empty label is an error.
fn csv_rows(
    text: &str,
    format_error: impl Fn(String) -> DatasetError,
) -> Result<Vec<CsvRow>, DatasetError> {
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
    if rows.is_empty() {
        return Err(format_error(
            "no images listed (the file is empty, or has a header only)".into(),
        ));
    }
    if let Some((line, ..)) = rows.iter().find(|(_, _, label, _)| label.is_empty()) {
        // Not a class named "": a row cut short, or a field left out.
        return Err(format_error(format!("line {line}: the label is empty")));
    }
    Ok(rows)
}

/// `path,label[,split]`; a first line whose label is not a number is a header. Labels are class
/// numbers from 0 or class names (then sorted, as folders are).
pub(super) fn open_csv(path: &Path, images: Option<&Path>) -> Result<Dataset, DatasetError> {
    let text = read_list(path)?;
    let format_error = |detail: String| DatasetError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let rows = csv_rows(&text, format_error)?;
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
