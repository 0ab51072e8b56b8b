//! [`Dataset::open`]: which reader a labelled image set needs, by what it is. The layouts users
//! download sets in, each read into one [`Dataset`]:
//!
//! - folder-per-class trees ([`super::folders`]) (`glioma/*.jpg`), with or without split folders above the classes
//!   (`train/ val/ test/`, `Training/ Testing/`, `validation/`, any case), and one wrapper folder
//!   above it all (`Covid19-dataset/train/…`) descended into;
//! - BUSI's ground-truth masks beside the images (`benign (1)_mask.png`, `…_mask_1.png`): masks of
//!   that image, not images;
//! - CoOp/Dassl split files ([`super::lists`]) (`split_*.json`: `{"train"|"val"|"test": [[path, label, class name], …]}`),
//!   as BiomedCoOp ships them;
//! - a CSV of `path,label` (an optional third column `split`; a header line is recognised);
//! - MedMNIST(+) `.npz` archives (images held in memory, see [`super::npz`]).
//!
//! Files that cannot be used are listed in [`Dataset::skipped`] with the reason, never dropped
//! silently; list files are bounded in size before they are read.

use std::path::Path;

use super::DatasetError;
use super::folders::open_folders;
use super::lists::{open_csv, open_split_file};
use super::npz::open_npz;
use super::set::Dataset;

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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;
    use crate::dataset::folders::mask_owner;
    use crate::dataset::set::{Layout, SplitName};
    use crate::limits::MAX_LIST_BYTES;

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
