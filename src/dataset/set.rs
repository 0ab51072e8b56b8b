//! A labelled image set as every reader ([`super::layout`], [`super::npz`]) gives it: the
//! samples with their classes, splits and ground-truth masks, and what was skipped.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::DatasetError;
use super::arrays::ArrayImages;

/// One of the three parts of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Train,
    Val,
    Test,
}

impl SplitName {
    pub const ALL: [SplitName; 3] = [SplitName::Train, SplitName::Val, SplitName::Test];

    pub fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Val => "val",
            SplitName::Test => "test",
        }
    }

    /// The split a folder or a CSV/JSON field names, in the spellings public sets use.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(SplitName::Train),
            "val" | "valid" | "validation" | "dev" => Some(SplitName::Val),
            "test" | "testing" => Some(SplitName::Test),
            _ => None,
        }
    }
}

/// How the set was laid out on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `<class>/<image>`.
    ClassFolders,
    /// `<split>/<class>/<image>`.
    SplitFolders,
    /// A CoOp/Dassl split file; paths relative to [`Dataset::root`].
    SplitFile(PathBuf),
    /// A `path,label[,split]` CSV; paths relative to [`Dataset::root`].
    Csv(PathBuf),
    /// A MedMNIST `.npz` archive; its images are in [`Dataset::arrays`].
    Npz(PathBuf),
}

impl Layout {
    pub fn describe(&self) -> String {
        match self {
            Layout::ClassFolders => "one folder per class".into(),
            Layout::SplitFolders => "split folders, one folder per class in each".into(),
            Layout::SplitFile(file) => format!("CoOp/Dassl split file {}", file.display()),
            Layout::Csv(file) => format!("CSV {}", file.display()),
            Layout::Npz(file) => format!("MedMNIST archive {}", file.display()),
        }
    }
}

/// One labelled image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub path: PathBuf,
    /// The path inside the set, `/`-separated: what manifests record (a moved copy still matches).
    pub relative: String,
    pub class_index: usize,
    /// The split the set itself puts it in, if it has splits.
    pub split: Option<SplitName>,
    /// Ground-truth masks of this image (BUSI: `<stem>_mask.png`, `<stem>_mask_1.png`, …).
    pub masks: Vec<PathBuf>,
    /// An archive's image (index into [`Dataset::arrays`]) rather than a file at `path`.
    pub array: Option<usize>,
}

/// A file that is not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

#[derive(Clone, Debug)]
pub struct Dataset {
    /// What relative paths are relative to.
    pub root: PathBuf,
    pub layout: Layout,
    /// Class names; a sample's `class_index` indexes this.
    pub classes: Vec<String>,
    /// Sorted by split, then path.
    pub samples: Vec<Sample>,
    pub skipped: Vec<Skipped>,
    /// The images of an archive (empty for sets of files).
    pub arrays: Arc<ArrayImages>,
}

impl Dataset {
    /// The encoded bytes of a sample: its file's, or an archive image as PNG.
    pub fn read(&self, sample: &Sample) -> Result<Vec<u8>, String> {
        match sample.array {
            Some(index) => self.arrays.png(index),
            None => fs::read(&sample.path).map_err(|error| error.to_string()),
        }
    }

    /// Whether the set says which images are for testing.
    pub fn has_test_split(&self) -> bool {
        self.samples
            .iter()
            .any(|sample| sample.split == Some(SplitName::Test))
    }

    /// Images per class in each split the set has (`None`: the set has no splits).
    pub fn counts(&self) -> BTreeMap<Option<SplitName>, Vec<usize>> {
        let mut counts = BTreeMap::new();
        for sample in &self.samples {
            counts
                .entry(sample.split)
                .or_insert_with(|| vec![0; self.classes.len()])[sample.class_index] += 1;
        }
        counts
    }

    /// The words the text prompts use per class: `given` (one per class, in class order), else
    /// the class names themselves (what `train` and `eval` take as `--class-names`).
    pub fn prompt_classes(&self, given: Option<&[String]>) -> Result<Vec<String>, String> {
        match given {
            Some(names) if names.len() != self.classes.len() => Err(format!(
                "{} class names given for {} classes ({})",
                names.len(),
                self.classes.len(),
                self.classes.join(", ")
            )),
            Some(names) => Ok(names.to_vec()),
            None => Ok(self.classes.clone()),
        }
    }

    /// The set with `classes` as its class list, in that order: what every site of a federated
    /// head shares, though one site may lack a class. Each of the set's own classes must be in
    /// the list; a listed class without images simply has none.
    pub fn with_classes(mut self, classes: &[String]) -> Result<Self, DatasetError> {
        let error = |detail: String| DatasetError::Format {
            path: self.root.clone(),
            detail,
        };
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = classes.iter().find(|name| !seen.insert(name.as_str())) {
            return Err(error(format!("class {twice} is listed twice")));
        }
        let mut index = Vec::with_capacity(self.classes.len());
        for name in &self.classes {
            let Some(position) = classes.iter().position(|listed| listed == name) else {
                return Err(error(format!(
                    "the set has class {name}, which the given classes ({}) lack",
                    classes.join(", ")
                )));
            };
            index.push(position);
        }
        for sample in &mut self.samples {
            sample.class_index = index[sample.class_index];
        }
        self.classes = classes.to_vec();
        Ok(self)
    }

    /// Each image's ground-truth masks (BUSI's `<name>_mask.png`), by image path: what
    /// `--masks gt` trains and evaluates with.
    pub fn ground_truth_masks(&self) -> BTreeMap<PathBuf, Vec<PathBuf>> {
        self.samples
            .iter()
            .filter(|sample| !sample.masks.is_empty())
            .map(|sample| (sample.path.clone(), sample.masks.clone()))
            .collect()
    }

    /// Images with at least one ground-truth mask.
    pub fn masked(&self) -> usize {
        self.samples
            .iter()
            .filter(|sample| !sample.masks.is_empty())
            .count()
    }
}

/// The set, its samples sorted by split then path (what every reader ends with).
pub(super) fn finish(
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
