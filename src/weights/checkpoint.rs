//! A checkpoint held in memory: its tensors by their key in the file.

use std::collections::BTreeMap;
use std::fmt;

use burn::tensor::TensorData;

/// All tensors of one checkpoint by their key in the file, in the dtype stored ([`Weights`]
/// hands them out as f32).
pub struct Checkpoint {
    pub(super) source_name: String,
    pub(super) tensors: BTreeMap<String, TensorData>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("source_name", &self.source_name)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Checkpoint {
    /// A checkpoint made of tensors already in memory (tests, converters).
    pub fn from_tensors(
        source_name: impl Into<String>,
        tensors: BTreeMap<String, TensorData>,
    ) -> Self {
        Self {
            source_name: source_name.into(),
            tensors,
        }
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&TensorData> {
        self.tensors.get(key)
    }

    /// How many values its tensors hold together (what a model built from it may take).
    pub fn value_count(&self) -> u64 {
        self.tensors
            .values()
            .map(|data| data.shape().iter().map(|&dim| dim as u64).product::<u64>())
            .fold(0, u64::saturating_add)
    }

    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.tensors.get(key).map(|data| data.shape().as_slice())
    }

    /// How many blocks `prefix.{i}.…` the checkpoint holds (0 if none).
    pub fn count_indexed(&self, prefix: &str) -> usize {
        let prefix = format!("{prefix}.");
        self.keys()
            .filter_map(|key| key.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .map(|index| index + 1)
            .max()
            .unwrap_or(0)
    }

    /// Drops `prefix` from every key when all keys have it (Meta's SAM 2 checkpoints are
    /// `{"model": state_dict}`, read as `model.…`).
    pub fn strip_common_prefix(&mut self, prefix: &str) {
        if !self.tensors.is_empty() && self.tensors.keys().all(|key| key.starts_with(prefix)) {
            self.tensors = strip_prefix(std::mem::take(&mut self.tensors), prefix);
        }
    }

    /// Keys nobody took (after building a model: what it ignored).
    pub fn remaining_keys(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<TensorData> {
        self.tensors.remove(key)
    }
}

pub(super) fn strip_prefix(
    tensors: BTreeMap<String, TensorData>,
    prefix: &str,
) -> BTreeMap<String, TensorData> {
    tensors
        .into_iter()
        .map(|(key, data)| {
            (
                key.strip_prefix(prefix).map(str::to_string).unwrap_or(key),
                data,
            )
        })
        .collect()
}
