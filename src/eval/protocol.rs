//! Which images train, validate and test in one run, written down as a manifest: relative paths
//! with their content hashes, the protocol and the seed. The same data and seed give the same
//! manifest byte for byte; `--split manifest.json` reuses one exactly (on a moved, renamed or
//! re-ordered copy of the set too), and a file whose content changed is reported, not used.
//!
//! Two protocols: the paper's (a fraction of each class's training images) and the few-shot
//! standard (K images per class; validation min(K, 4) per class). The test images are always the
//! whole test split. A set without a test split (BUSI, a plain folder) is split once, stratified
//! and seeded by the *split seed* (not the run's seed, so every run tests on the same images).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, SplitName};
use crate::heads::rng::SplitMix64;

pub const MANIFEST_FORMAT: u32 = 1;
/// Of a set without its own test split: the share of each class that tests.
pub const TEST_SHARE: f64 = 0.2;
/// … and that validates, when it has no validation split either.
pub const VAL_SHARE: f64 = 0.1;
/// The few-shot standard's validation images per class: min(K, this).
pub const MAX_VAL_SHOTS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("{path}: {detail}")]
    Manifest { path: PathBuf, detail: String },
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Invalid(String),
}

/// How many training images a run gets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Protocol {
    /// This fraction of each class's training images (at least one), as the paper does.
    Fraction { fraction: f64 },
    /// K training images per class (all a class has, when it has fewer).
    Shots { shots: usize },
}

impl Protocol {
    pub fn fraction(fraction: f64) -> Result<Self, ProtocolError> {
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(ProtocolError::Invalid(format!(
                "fraction {fraction}: a share of the training images in (0, 1] (0.05 = 5 %)"
            )));
        }
        Ok(Protocol::Fraction { fraction })
    }

    pub fn shots(shots: usize) -> Result<Self, ProtocolError> {
        if shots == 0 {
            return Err(ProtocolError::Invalid(
                "0 shots: at least one training image per class".into(),
            ));
        }
        Ok(Protocol::Shots { shots })
    }

    /// The column heading in reports: `5%`, `16-shot`.
    pub fn label(&self) -> String {
        match self {
            Protocol::Fraction { fraction } => format!("{}%", trim_number(fraction * 100.0)),
            Protocol::Shots { shots } => format!("{shots}-shot"),
        }
    }

    /// The protocol a [`Protocol::label`] names (how `runs.jsonl` records it).
    pub fn from_label(label: &str) -> Option<Self> {
        if let Some(percent) = label.strip_suffix('%') {
            return Self::fraction(percent.parse::<f64>().ok()? / 100.0).ok();
        }
        Self::shots(label.strip_suffix("-shot")?.parse().ok()?).ok()
    }

    /// A file-name part: `fraction-0.05`, `shots-16`.
    pub fn slug(&self) -> String {
        match self {
            Protocol::Fraction { fraction } => format!("fraction-{}", trim_number(*fraction)),
            Protocol::Shots { shots } => format!("shots-{shots}"),
        }
    }

    /// Orders report columns: fractions, then shots, each ascending.
    pub fn order_key(&self) -> (u8, f64) {
        match self {
            Protocol::Fraction { fraction } => (0, *fraction),
            Protocol::Shots { shots } => (1, *shots as f64),
        }
    }
}

/// `0.05` → `0.05`, `5.0` → `5`, without float noise (`0.1 * 100` → `10`).
fn trim_number(value: f64) -> String {
    let text = format!("{:.6}", value);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One image of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Inside the set's root, `/`-separated.
    pub path: String,
    pub label: usize,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub protocol: Protocol,
    pub seed: u64,
    pub classes: Vec<String>,
    /// Where train/val/test come from: the set's own splits, or the seeded split made here.
    pub splits: String,
    /// What the protocol could not do exactly (a class with fewer than K images, …).
    pub notes: Vec<String>,
    pub train: Vec<Entry>,
    pub val: Vec<Entry>,
    pub test: Vec<Entry>,
}

/// A data set with every image's content hash (what manifests are checked by).
pub struct HashedSet {
    pub dataset: Dataset,
    pub sha256: Vec<String>,
}

impl HashedSet {
    /// Hashes every image; one that cannot be read moves to the set's skipped list.
    pub fn new(mut dataset: Dataset, progress: &mut dyn FnMut(usize, usize)) -> Self {
        let total = dataset.samples.len();
        let mut kept = Vec::with_capacity(total);
        let mut sha256 = Vec::with_capacity(total);
        for (index, sample) in std::mem::take(&mut dataset.samples).into_iter().enumerate() {
            progress(index, total);
            match dataset.read(&sample) {
                Ok(bytes) => {
                    let hash = crate::heads::train::cache::sha256_hex(&bytes);
                    sha256.push(hash);
                    kept.push(sample);
                }
                Err(error) => dataset.skipped.push(crate::dataset::Skipped {
                    path: sample.path.clone(),
                    reason: format!("cannot be read: {error}"),
                }),
            }
        }
        progress(total, total);
        dataset.samples = kept;
        Self { dataset, sha256 }
    }

    fn entry(&self, index: usize) -> Entry {
        let sample = &self.dataset.samples[index];
        Entry {
            path: sample.relative.clone(),
            label: sample.class_index,
            sha256: self.sha256[index].clone(),
        }
    }
}

/// The images each part of a run may draw from (indices into the set's samples).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pools {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    pub description: String,
}

/// Indices of `members` grouped per class, in class order, each group in `members`' order.
fn per_class(set: &Dataset, members: &[usize]) -> Vec<Vec<usize>> {
    let mut groups = vec![Vec::new(); set.classes.len()];
    for &index in members {
        groups[set.samples[index].class_index].push(index);
    }
    groups
}

/// The set's own train/val/test, or — without a test split — a stratified split seeded by
/// `split_seed` (20 % test and, without a validation split, 10 % validation per class).
pub fn pools(set: &Dataset, split_seed: u64) -> Result<Pools, ProtocolError> {
    let in_split = |split: Option<SplitName>| -> Vec<usize> {
        (0..set.samples.len())
            .filter(|&i| set.samples[i].split == split)
            .collect()
    };
    if set.has_test_split() {
        let (train, val, test) = (
            in_split(Some(SplitName::Train)),
            in_split(Some(SplitName::Val)),
            in_split(Some(SplitName::Test)),
        );
        let unsplit = in_split(None);
        if train.is_empty() {
            return Err(ProtocolError::Data(
                "the set has a test split but no training split (train/ or Training/)".into(),
            ));
        }
        if !unsplit.is_empty() {
            return Err(ProtocolError::Data(format!(
                "{} images belong to no split although the set has splits (first: {})",
                unsplit.len(),
                set.samples[unsplit[0]].relative
            )));
        }
        return Ok(Pools {
            train,
            val,
            test,
            description: "the set's own train/val/test splits".into(),
        });
    }
    let given_val = in_split(Some(SplitName::Val));
    let rest: Vec<usize> = (0..set.samples.len())
        .filter(|&i| set.samples[i].split != Some(SplitName::Val))
        .collect();
    let make_val = given_val.is_empty();
    let (mut train, mut val, mut test) = (Vec::new(), given_val, Vec::new());
    for (class, mut members) in per_class(set, &rest).into_iter().enumerate() {
        let mut rng = SplitMix64::derive(split_seed, &format!("split {}", set.classes[class]));
        rng.shuffle(&mut members);
        let n = members.len();
        // Every class keeps a training image; the test share rounds, at least one when n ≥ 2.
        let n_test = ((n as f64 * TEST_SHARE).round() as usize)
            .max(usize::from(n >= 2))
            .min(n.saturating_sub(1));
        let n_val = if make_val {
            ((n as f64 * VAL_SHARE).round() as usize).min(n - n_test - usize::from(n > n_test))
        } else {
            0
        };
        test.extend_from_slice(&members[..n_test]);
        val.extend_from_slice(&members[n_test..n_test + n_val]);
        train.extend_from_slice(&members[n_test + n_val..]);
    }
    for part in [&mut train, &mut val, &mut test] {
        part.sort_unstable();
    }
    let description = format!(
        "no test split in the set: stratified per class, {}% test{}, seeded by split seed {split_seed}",
        trim_number(TEST_SHARE * 100.0),
        if make_val {
            format!(", {}% validation", trim_number(VAL_SHARE * 100.0))
        } else {
            ", the set's validation split".into()
        }
    );
    Ok(Pools {
        train,
        val,
        test,
        description,
    })
}

/// Draws one run's images from the pools: the protocol's training images per class, the
/// validation images, the whole test pool. Within a seed, smaller draws are prefixes of larger
/// ones (5 % ⊂ 10 %, 1-shot ⊂ 2-shot): curves compare like with like.
pub fn draw(
    set: &HashedSet,
    pools: &Pools,
    protocol: Protocol,
    seed: u64,
) -> Result<Manifest, ProtocolError> {
    let data = &set.dataset;
    let mut notes = Vec::new();
    let mut train = Vec::new();
    let mut val = Vec::new();
    let val_groups = per_class(data, &pools.val);
    for (class, mut members) in per_class(data, &pools.train).into_iter().enumerate() {
        let name = &data.classes[class];
        if members.is_empty() {
            notes.push(format!("class {name} has no training images"));
            continue;
        }
        SplitMix64::derive(seed, &format!("train {name}")).shuffle(&mut members);
        let wanted = match protocol {
            Protocol::Fraction { fraction } => {
                ((members.len() as f64 * fraction).round() as usize).clamp(1, members.len())
            }
            Protocol::Shots { shots } => shots,
        };
        if wanted > members.len() {
            notes.push(format!(
                "class {name} has {} training images, fewer than {wanted}: all used",
                members.len()
            ));
        }
        let taken = wanted.min(members.len());
        train.extend_from_slice(&members[..taken]);
        // Validation: from the validation pool; a K-shot run without one takes it from the
        // training images it did not draw.
        let mut candidates = val_groups[class].clone();
        let from_train = candidates.is_empty() && matches!(protocol, Protocol::Shots { .. });
        if from_train {
            candidates = members[taken..].to_vec();
        } else {
            SplitMix64::derive(seed, &format!("val {name}")).shuffle(&mut candidates);
        }
        let val_wanted = match protocol {
            Protocol::Fraction { fraction } if !candidates.is_empty() => {
                ((candidates.len() as f64 * fraction).round() as usize).clamp(1, candidates.len())
            }
            Protocol::Fraction { .. } => 0,
            Protocol::Shots { shots } => shots.min(MAX_VAL_SHOTS),
        };
        let val_taken = val_wanted.min(candidates.len());
        if from_train && val_taken > 0 {
            notes.push(format!(
                "class {name}: no validation split; validation images drawn from its unused training images: {val_taken}"
            ));
        }
        if val_taken < val_wanted {
            notes.push(format!(
                "class {name}: validation images: {val_taken} of the {val_wanted} wanted (too few images)"
            ));
        }
        val.extend_from_slice(&candidates[..val_taken]);
    }
    if pools.test.is_empty() {
        return Err(ProtocolError::Data("no test images".into()));
    }
    let entries = |mut indices: Vec<usize>| -> Vec<Entry> {
        indices.sort_unstable();
        indices.into_iter().map(|i| set.entry(i)).collect()
    };
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        protocol,
        seed,
        classes: data.classes.clone(),
        splits: pools.description.clone(),
        notes,
        train: entries(train),
        val: entries(val),
        test: entries(pools.test.clone()),
    })
}

/// A manifest resolved against a set: indices into its samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl Manifest {
    /// The canonical bytes (what is written, and what its hash is of).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn sha256(&self) -> String {
        crate::heads::train::cache::sha256_hex(&self.to_bytes())
    }

    /// `<out>/manifests/<protocol>-seed-<seed>.json`
    pub fn file_name(&self) -> String {
        format!("{}-seed-{}.json", self.protocol.slug(), self.seed)
    }

    pub fn read(path: &Path) -> Result<Self, ProtocolError> {
        let error = |detail: String| ProtocolError::Manifest {
            path: path.to_path_buf(),
            detail,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| error(e.to_string()))?
            .len();
        if size > crate::limits::MAX_LIST_BYTES {
            return Err(error(format!("{size} bytes: not a manifest")));
        }
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| error(format!("not a MedFocus manifest: {e}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(error(format!(
                "manifest format {} (this MedFocus reads format {MANIFEST_FORMAT})",
                manifest.format
            )));
        }
        Ok(manifest)
    }

    /// Finds every listed image in `set`: by path, else by content (a renamed file). A file
    /// whose content or class changed, or that is gone, fails the whole manifest: a run on other
    /// images than the manifest says would not be the run it records.
    pub fn resolve(&self, set: &HashedSet) -> Result<Resolved, ProtocolError> {
        let data = &set.dataset;
        if self.classes != data.classes {
            return Err(ProtocolError::Data(format!(
                "the manifest's classes ({}) are not the set's ({})",
                self.classes.join(", "),
                data.classes.join(", ")
            )));
        }
        let by_path: BTreeMap<&str, usize> = data
            .samples
            .iter()
            .enumerate()
            .map(|(i, sample)| (sample.relative.as_str(), i))
            .collect();
        let mut by_hash: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, hash) in set.sha256.iter().enumerate().rev() {
            by_hash.entry(hash.as_str()).or_default().push(i);
        }
        let mut problems = Vec::new();
        let mut find = |entry: &Entry| -> Option<usize> {
            if let Some(&i) = by_path.get(entry.path.as_str()) {
                if set.sha256[i] != entry.sha256 {
                    problems.push(format!("{}: its content changed (hash)", entry.path));
                    return None;
                }
                if data.samples[i].class_index != entry.label {
                    problems.push(format!(
                        "{}: now in class {}, the manifest says {}",
                        entry.path,
                        data.classes[data.samples[i].class_index],
                        self.classes.get(entry.label).map_or("?", |s| s.as_str())
                    ));
                    return None;
                }
                return Some(i);
            }
            match by_hash
                .get_mut(entry.sha256.as_str())
                .and_then(|list| list.pop())
            {
                Some(i) => Some(i),
                None => {
                    problems.push(format!(
                        "{}: not in the set (by path or content)",
                        entry.path
                    ));
                    None
                }
            }
        };
        let mut part =
            |entries: &[Entry]| -> Vec<usize> { entries.iter().filter_map(&mut find).collect() };
        let resolved = Resolved {
            train: part(&self.train),
            val: part(&self.val),
            test: part(&self.test),
        };
        if !problems.is_empty() {
            let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
            return Err(ProtocolError::Data(format!(
                "{} of the manifest's images do not match the set: {}{}",
                problems.len(),
                shown.join("; "),
                if problems.len() > shown.len() {
                    "; …"
                } else {
                    ""
                }
            )));
        }
        Ok(resolved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("medfocus-protocol-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `classes` × `per_class` distinct files (content = their own name).
    fn make_set(root: &Path, classes: &[(&str, usize)]) {
        for (class, count) in classes {
            fs::create_dir_all(root.join(class)).unwrap();
            for i in 0..*count {
                fs::write(
                    root.join(class).join(format!("{i:03}.png")),
                    format!("{class}/{i}"),
                )
                .unwrap();
            }
        }
    }

    fn open(root: &Path) -> HashedSet {
        HashedSet::new(Dataset::open(root, None).unwrap(), &mut |_, _| {})
    }

    fn class_counts(set: &HashedSet, entries: &[Entry]) -> Vec<usize> {
        let mut counts = vec![0; set.dataset.classes.len()];
        for entry in entries {
            counts[entry.label] += 1;
        }
        counts
    }

    #[test]
    fn labels_and_slugs() {
        assert_eq!(Protocol::fraction(0.05).unwrap().label(), "5%");
        assert_eq!(Protocol::fraction(0.1).unwrap().slug(), "fraction-0.1");
        assert_eq!(Protocol::shots(16).unwrap().label(), "16-shot");
        for protocol in [
            Protocol::fraction(0.05).unwrap(),
            Protocol::shots(4).unwrap(),
        ] {
            assert_eq!(Protocol::from_label(&protocol.label()), Some(protocol));
        }
        assert_eq!(Protocol::from_label("all"), None);
        assert!(Protocol::fraction(0.0).is_err());
        assert!(Protocol::fraction(1.5).is_err());
        assert!(Protocol::shots(0).is_err());
    }

    #[test]
    fn stratification_is_exact_and_draws_are_nested_and_reproducible() {
        let root = scratch("strata");
        make_set(&root, &[("a", 50), ("b", 20), ("c", 7)]);
        let set = open(&root);
        let pools = pools(&set.dataset, 0).unwrap();
        // 20 % test per class (rounded), 10 % validation, the rest trains.
        assert_eq!(
            class_counts(
                &set,
                &pools.test.iter().map(|&i| set.entry(i)).collect::<Vec<_>>()
            ),
            [10, 4, 1]
        );
        assert_eq!(pools.val.len(), 5 + 2 + 1);
        assert_eq!(pools.train.len(), 35 + 14 + 5);

        let five = draw(&set, &pools, Protocol::fraction(0.1).unwrap(), 1).unwrap();
        assert_eq!(class_counts(&set, &five.train), [4, 1, 1]); // round(3.5)=4, round(1.4)=1, at least 1
        let twenty = draw(&set, &pools, Protocol::fraction(0.2).unwrap(), 1).unwrap();
        for entry in &five.train {
            assert!(twenty.train.contains(entry), "10 % ⊂ 20 %");
        }
        let four = draw(&set, &pools, Protocol::shots(4).unwrap(), 2).unwrap();
        assert_eq!(class_counts(&set, &four.train), [4, 4, 4]);
        assert_eq!(class_counts(&set, &four.val), [4, 2, 1]); // min(K, 4) capped by the pool
        assert!(
            four.notes.iter().any(|n| n.contains("2 of the 4 wanted")),
            "{:?}",
            four.notes
        );
        let eight = draw(&set, &pools, Protocol::shots(8).unwrap(), 2).unwrap();
        assert!(eight.notes.iter().any(|n| n.contains("fewer than 8")));
        // Same seed: the same bytes; another seed: other images.
        let again = draw(&set, &pools, Protocol::shots(4).unwrap(), 2).unwrap();
        assert_eq!(four.to_bytes(), again.to_bytes());
        let other = draw(&set, &pools, Protocol::shots(4).unwrap(), 3).unwrap();
        assert_ne!(four.train, other.train);
        assert_eq!(four.test, other.test, "every seed tests on the same images");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_manifest_resolves_on_a_moved_copy_and_refuses_a_changed_file() {
        let root = scratch("reuse");
        let original = root.join("original");
        make_set(&original, &[("a", 12), ("b", 12)]);
        let set = open(&original);
        let manifest = draw(
            &set,
            &pools(&set.dataset, 0).unwrap(),
            Protocol::shots(2).unwrap(),
            1,
        )
        .unwrap();
        let file = root.join("m.json");
        fs::write(&file, manifest.to_bytes()).unwrap();
        let manifest = Manifest::read(&file).unwrap();
        let paths = |set: &HashedSet, indices: &[usize]| -> Vec<String> {
            indices.iter().map(|&i| set.sha256[i].clone()).collect()
        };
        let expected = manifest.resolve(&set).unwrap();

        // A copy under another root, one listed file renamed: the same images by content.
        let copy = root.join("copy");
        make_set(&copy, &[("a", 12), ("b", 12)]);
        let renamed = &manifest.train[0].path;
        fs::rename(
            copy.join(renamed),
            copy.join(renamed).with_file_name("renamed.png"),
        )
        .unwrap();
        let copied = open(&copy);
        let resolved = manifest.resolve(&copied).unwrap();
        assert_eq!(
            paths(&copied, &resolved.train),
            paths(&set, &expected.train)
        );
        assert_eq!(paths(&copied, &resolved.test), paths(&set, &expected.test));

        // A listed file edited: named in the error.
        let edited = &manifest.test[0].path;
        fs::write(copy.join(edited), b"edited").unwrap();
        let error = manifest.resolve(&open(&copy)).unwrap_err().to_string();
        assert!(
            error.contains(edited.as_str()) && error.contains("changed"),
            "{error}"
        );

        // Not a manifest / a newer format.
        fs::write(&file, b"{\"format\": 99}").unwrap();
        assert!(
            Manifest::read(&file)
                .unwrap_err()
                .to_string()
                .contains("manifest")
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_set_with_its_own_splits_is_used_as_it_is() {
        let root = scratch("own-splits");
        make_set(&root.join("train"), &[("a", 6), ("b", 6)]);
        make_set(&root.join("test"), &[("a", 3), ("b", 2)]);
        let set = open(&root);
        let pools = pools(&set.dataset, 0).unwrap();
        assert_eq!(
            (pools.train.len(), pools.val.len(), pools.test.len()),
            (12, 0, 5)
        );
        let manifest = draw(&set, &pools, Protocol::shots(2).unwrap(), 1).unwrap();
        assert_eq!(manifest.test.len(), 5);
        // No validation split: K-shot validation comes from the unused training images.
        assert_eq!(manifest.val.len(), 4);
        assert!(manifest.val.iter().all(|e| e.path.starts_with("train/")));
        assert!(manifest.val.iter().all(|e| !manifest.train.contains(e)));
        fs::remove_dir_all(root).unwrap();
    }
}
