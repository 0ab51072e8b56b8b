//! Labelled images as users download them, read by one reader for every journey
//! ([`Dataset::open`]: `train`, `eval`, `inspect`): class folders, split folders, CoOp/Dassl split
//! files, CSV lists, MedMNIST archives, BUSI's ground-truth masks. This module holds the file
//! rules the readers share (what counts as an image, hidden files); [`set`] the result.

use std::fs;
use std::path::{Path, PathBuf};

pub mod arrays;
pub mod folders;
pub mod layout;
pub mod lists;
pub mod npz;
pub mod set;

pub use set::{Dataset, Layout, Sample, Skipped, SplitName};

/// File extensions we try to decode; anything else in a class folder is ignored, except DICOM
/// files named without an extension (see [`is_image_path`]).
pub const IMAGE_EXTENSIONS: [&str; 11] = [
    "jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "jfif", "dcm", "dicom", "dic",
];

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read the data folder {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} has no class sub-folders containing images")]
    NoClasses(PathBuf),
    #[error("{path}: {detail}")]
    Format { path: PathBuf, detail: String },
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let unreadable = |source| DatasetError::Unreadable {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = fs::read_dir(dir)
        .map_err(unreadable)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    paths.sort();
    Ok(paths)
}

/// The visible sub-folders of `dir` by name, sorted.
fn subfolders(dir: &Path) -> Result<Vec<(String, PathBuf)>, DatasetError> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|path| path.is_dir())
        .filter_map(|path| Some((visible_name(&path)?, path)))
        .collect())
}

fn visible_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_string())
}

/// The file's extension, lower case, when it is one of [`IMAGE_EXTENSIONS`].
fn image_extension(path: &Path) -> Option<String> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    IMAGE_EXTENSIONS
        .contains(&extension.as_str())
        .then_some(extension)
}

/// Whether the file is an image we read: an image extension (case-insensitive), or a DICOM
/// file as scanners and PACS exports name them: no extension (`IM000123`) or a UID whose last
/// part looks like one (`1.2.840.113619.2.55.3.1234`), recognised by the `DICM` magic.
pub fn is_image_path(path: &Path) -> bool {
    if image_extension(path).is_some() {
        return true;
    }
    let named_like_dicom = path
        .extension()
        .and_then(|ext| ext.to_str())
        .is_none_or(|ext| ext.bytes().all(|byte| byte.is_ascii_digit()));
    named_like_dicom && starts_like_dicom(path)
}

/// The format an image file is counted under: its extension (lower case), or `dicom` for a
/// DICOM file named without one (or by a UID).
pub fn format_label(path: &Path) -> String {
    if let Some(extension) = image_extension(path) {
        return extension;
    }
    if starts_like_dicom(path) {
        return "dicom".into();
    }
    path.extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

fn starts_like_dicom(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 132];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .is_ok_and(|()| crate::imaging::is_dicom(&head))
}

/// Image files under `path` (itself, or recursively in a folder), sorted, appended to `files`.
pub fn collect_images(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), DatasetError> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| DatasetError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                collect_images(&entry, files)?;
            } else if is_image_path(&entry) {
                files.push(entry);
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("medfocus-dataset-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn classes_sorted_hidden_and_non_images_skipped() {
        let root = scratch("layout");
        for (class, files) in [
            ("b_class", vec!["2.JPG", "1.png", "notes.txt"]),
            ("a_class", vec!["x.jpeg"]),
            (".hidden", vec!["y.jpg"]),
            ("empty", vec!["readme.md"]),
        ] {
            fs::create_dir_all(root.join(class)).unwrap();
            for file in files {
                fs::write(root.join(class).join(file), b"").unwrap();
            }
        }
        fs::write(root.join("stray.jpg"), b"").unwrap();
        let set = Dataset::open(&root, None).unwrap();
        assert_eq!(set.classes, ["a_class", "b_class"]);
        assert_eq!(set.counts()[&None], [1, 2]);
        let names: Vec<_> = set
            .samples
            .iter()
            .map(|sample| sample.path.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["x.jpeg", "1.png", "2.JPG"]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn dicom_files_count_as_images_with_or_without_an_extension() {
        let root = scratch("dicom");
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM");
        for name in ["IM000001", "1.2.840.113619.2.55", "scan.DCM"] {
            fs::write(root.join(name), &dicom).unwrap();
        }
        fs::write(root.join("README"), b"not an image").unwrap();
        fs::write(root.join("notes.txt"), &dicom).unwrap();
        let mut files = Vec::new();
        collect_images(&root, &mut files).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|path| path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["1.2.840.113619.2.55", "IM000001", "scan.DCM"]);
        let formats: Vec<String> = files.iter().map(|path| format_label(path)).collect();
        assert_eq!(formats, ["dicom", "dicom", "dcm"]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn missing_or_classless_folders_are_errors() {
        let root = scratch("empty");
        assert!(matches!(
            Dataset::open(&root, None),
            Err(DatasetError::NoClasses(_))
        ));
        let missing = root.join("nope");
        let error = Dataset::open(&missing, None).unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
        fs::remove_dir_all(root).unwrap();
    }
}
