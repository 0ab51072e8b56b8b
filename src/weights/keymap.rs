//! A family's key mapping and the tensors it hands out by canonical name: converted to f32,
//! shape-checked, problems collected into one error, and hashed into the model's fingerprint.

use std::collections::BTreeMap;

use burn::tensor::{DType, TensorData};
use sha2::{Digest, Sha256};

use super::checkpoint::Checkpoint;
use super::error::{Problem, WeightsError};
use crate::limits::max_model_values;

/// Where one canonical tensor lives in a family's checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Stored as is.
    Key(String),
    /// Stored as the transpose of what we use (open_clip keeps projections as `[in, out]`).
    Transposed(String),
    /// Stored as separate tensors to be stacked along the first axis (q, k, v → fused in-proj).
    Concat(Vec<String>),
    /// Stored with the same values in another shape (timm's `cls_token` is `[1, 1, width]`).
    Reshaped(String),
}

/// A family's key mapping: canonical name → place in its checkpoint.
pub trait KeyMap {
    fn source(&self, canonical: &str) -> Source;
}

/// Hands out a checkpoint's tensors by canonical name, converted to f32 and shape-checked.
pub struct Weights<'a> {
    checkpoint: Checkpoint,
    map: &'a dyn KeyMap,
    problems: Vec<Problem>,
    /// Hands out zeros of the requested shapes, so a model can be built from its config alone
    /// and then filled from a burnpack.
    skeleton: bool,
    /// Running hash of what was handed out (see [`Weights::fingerprint`]).
    fingerprint: Sha256,
    /// Values still to be handed out, [`max_model_values`] of what the checkpoint (or, for a
    /// skeleton, the file) holds: asking for more is where a wrong or hostile config would
    /// allocate without bound.
    budget: u64,
    /// What the checkpoint holds, for the message.
    held: u64,
}

impl<'a> Weights<'a> {
    pub fn new(checkpoint: Checkpoint, map: &'a dyn KeyMap) -> Self {
        let held = checkpoint.value_count();
        Self {
            checkpoint,
            map,
            problems: Vec::new(),
            skeleton: false,
            fingerprint: Sha256::new(),
            budget: max_model_values(held),
            held,
        }
    }

    /// Zeros for every tensor: the model's shape from its config, to be filled afterwards from
    /// `source_name`, a file that holds `held` values (a config asking for more is refused
    /// before it is allocated, as in [`Weights::new`]).
    pub fn skeleton(map: &'a dyn KeyMap, source_name: &str, held: u64) -> Self {
        Self {
            checkpoint: Checkpoint::from_tensors(source_name, BTreeMap::new()),
            map,
            problems: Vec::new(),
            skeleton: true,
            fingerprint: Sha256::new(),
            budget: max_model_values(held),
            held,
        }
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The tensor for `canonical`, with the shape the model needs. On a problem it is recorded
    /// and zeros are returned, so building continues and every problem is found in one pass.
    /// The one error is a config that asks for far more values than the checkpoint holds (see
    /// [`max_model_values`]): building stops there, before anything of that size is allocated.
    pub fn take(
        &mut self,
        canonical: &str,
        expected: &[usize],
    ) -> Result<TensorData, WeightsError> {
        let values = expected
            .iter()
            .try_fold(1u64, |product, &dim| product.checked_mul(dim as u64));
        match values {
            Some(values) if values <= self.budget => self.budget -= values,
            _ => {
                return Err(WeightsError::Oversized {
                    source_name: self.checkpoint.source_name.clone(),
                    held: self.held,
                    key: self.checkpoint_key(canonical),
                    expected: expected.to_vec(),
                });
            }
        }
        if self.skeleton {
            return Ok(TensorData::zeros::<f32, _>(expected.to_vec()));
        }
        Ok(match self.resolve(canonical, expected) {
            Ok(data) => {
                self.add_to_fingerprint(canonical, &data);
                data
            }
            Err(problem) => {
                self.problems.push(problem);
                TensorData::zeros::<f32, _>(expected.to_vec())
            }
        })
    }

    /// Like [`Weights::take`] for a tensor a family may or may not have (a bias, say).
    pub fn take_optional(
        &mut self,
        canonical: &str,
        expected: &[usize],
    ) -> Result<Option<TensorData>, WeightsError> {
        let present = match self.map.source(canonical) {
            Source::Key(key) | Source::Transposed(key) | Source::Reshaped(key) => {
                self.checkpoint.contains(&key)
            }
            Source::Concat(keys) => keys.iter().all(|key| self.checkpoint.contains(key)),
        };
        present.then(|| self.take(canonical, expected)).transpose()
    }

    /// The checkpoint's own name for `canonical` (the first of a concatenation's parts).
    fn checkpoint_key(&self, canonical: &str) -> String {
        match self.map.source(canonical) {
            Source::Key(key) | Source::Transposed(key) | Source::Reshaped(key) => key,
            Source::Concat(keys) => keys.first().cloned().unwrap_or_else(|| canonical.into()),
        }
    }

    fn resolve(&mut self, canonical: &str, expected: &[usize]) -> Result<TensorData, Problem> {
        match self.map.source(canonical) {
            Source::Key(key) => self.fetch(&key, expected),
            Source::Reshaped(key) => {
                let numel = |shape: &[usize]| shape.iter().product::<usize>();
                let found = self.checkpoint.shape(&key).map(<[usize]>::to_vec);
                match found {
                    Some(found) if numel(&found) == numel(expected) => {
                        let data = self.fetch(&key, &found)?;
                        Ok(TensorData::new(
                            data.try_to_vec::<f32>().unwrap_or_default(),
                            expected.to_vec(),
                        ))
                    }
                    _ => self.fetch(&key, expected),
                }
            }
            Source::Transposed(key) => {
                let transposed_shape: Vec<usize> = expected.iter().rev().copied().collect();
                let data = self.fetch(&key, &transposed_shape)?;
                Ok(transpose_2d(data))
            }
            Source::Concat(keys) => {
                let parts = keys.len();
                let mut part_shape = expected.to_vec();
                if parts == 0 || part_shape.is_empty() || part_shape[0] % parts != 0 {
                    return Err(Problem::Missing {
                        key: canonical.to_string(),
                        expected: expected.to_vec(),
                    });
                }
                part_shape[0] /= parts;
                let mut values = Vec::new();
                let mut failure = None;
                for key in &keys {
                    match self.fetch(key, &part_shape) {
                        Ok(data) => values.extend(data.try_to_vec::<f32>().unwrap_or_default()),
                        Err(problem) if failure.is_none() => failure = Some(problem),
                        Err(problem) => self.problems.push(problem),
                    }
                }
                match failure {
                    Some(problem) => Err(problem),
                    None => Ok(TensorData::new(values, expected.to_vec())),
                }
            }
        }
    }

    fn fetch(&mut self, key: &str, expected: &[usize]) -> Result<TensorData, Problem> {
        let Some(data) = self.checkpoint.remove(key) else {
            return Err(Problem::Missing {
                key: key.to_string(),
                expected: expected.to_vec(),
            });
        };
        if data.shape().as_slice() != expected {
            return Err(Problem::Shape {
                key: key.to_string(),
                expected: expected.to_vec(),
                found: data.shape().to_vec(),
            });
        }
        let data = match data.dtype() {
            DType::F32 => data,
            DType::F16 | DType::BF16 | DType::F64 => data.convert_dtype(DType::F32),
            other => {
                return Err(Problem::NotFloat {
                    key: key.to_string(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        // A NaN or infinite weight makes every answer NaN, silently: a damaged or hostile file.
        let not_finite = data.as_slice::<f32>().map_or(0, |values| {
            values.iter().filter(|value| !value.is_finite()).count()
        });
        if not_finite > 0 {
            return Err(Problem::NotFinite {
                key: key.to_string(),
                count: not_finite,
            });
        }
        Ok(data)
    }

    /// Identifies the model by its values, whatever file format or key layout carried them
    /// (the pickle natively and the SafeTensors in a browser give the same fingerprint): SHA-256
    /// over each tensor's canonical name, shape and up to 4096 evenly spaced values, in the order
    /// the loader took them. Sampling keeps it cheap on a 600 MB model; two different trainings
    /// differ in every tensor, so a sample tells them apart. Trained heads and the embedding
    /// cache record it to refuse features from another model.
    pub fn fingerprint(&self) -> String {
        format!("{:x}", self.fingerprint.clone().finalize())
    }

    fn add_to_fingerprint(&mut self, canonical: &str, data: &TensorData) {
        const SAMPLES: usize = 4096;
        self.fingerprint.update(canonical.as_bytes());
        for &dim in data.shape().iter() {
            self.fingerprint.update((dim as u64).to_le_bytes());
        }
        if let Ok(values) = data.as_slice::<f32>() {
            let stride = values.len().div_ceil(SAMPLES).max(1);
            for value in values.iter().step_by(stride) {
                self.fingerprint.update(value.to_le_bytes());
            }
        }
    }

    /// Ends loading: any problem found while building becomes one error naming them all.
    pub fn finish(self, model: &str) -> Result<(), WeightsError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(WeightsError::Mismatch {
                source_name: self.checkpoint.source_name,
                model: model.to_string(),
                problems: self.problems,
            })
        }
    }
}

fn transpose_2d(data: TensorData) -> TensorData {
    let [rows, cols] = [data.shape()[0], data.shape()[1]];
    transposed_matrix(data, rows, cols)
}

/// `data` read row-major as a `[rows, cols]` matrix (a conv kernel `[out, in, kh, kw]` is
/// `[out, in·kh·kw]`), returned as its transpose `[cols, rows]`, laid out contiguously.
///
/// Why on the host: PyTorch stores a linear layer's weight `[out, in]` and burn's `Linear` wants
/// `[in, out]`. Kept as a transposed *view*, every forward pays for it — burn's linear reshapes
/// the weight to the input's rank, and a reshape of a non-contiguous tensor copies it, so each
/// call copied the whole matrix (a fifth of the ViT-B/16 image tower's time on flex). One copy
/// at load instead.
pub(crate) fn transposed_matrix(data: TensorData, rows: usize, cols: usize) -> TensorData {
    let values = data
        .convert_dtype(DType::F32)
        .try_to_vec::<f32>()
        .unwrap_or_default();
    debug_assert_eq!(values.len(), rows * cols);
    let mut out = vec![0.0f32; rows * cols];
    for (row, chunk) in values.chunks_exact(cols.max(1)).enumerate().take(rows) {
        for (col, &value) in chunk.iter().enumerate() {
            out[col * rows + row] = value;
        }
    }
    TensorData::new(out, [cols, rows])
}
