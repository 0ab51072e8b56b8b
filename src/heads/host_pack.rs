//! f32 tensors on the host in a burnpack with a kind tag and JSON metadata: the one writer and
//! reader behind head files (`.mfh`) and training checkpoints. Nothing here is model specific.

use std::collections::BTreeMap;

use burn::store::burn_pack::{Bytes, DType, Shape, Tensor as PackTensor, Writer};

use crate::weights::burnpack::{BurnpackRefusal, open_burnpack};

/// Metadata key of the kind tag that tells a head file from a checkpoint or a model export.
pub const META_KIND: &str = "medfocus.kind";

/// One f32 tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, values: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Self { shape, values }
    }
}

/// A pack's metadata (key → value) and its tensors by name.
pub type Unpacked = (BTreeMap<String, String>, BTreeMap<String, HostTensor>);

/// Why a pack could not be read: not a pack of this kind at all, or damaged inside.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnpackError {
    #[error("{0}")]
    Foreign(String),
    #[error("{0}")]
    Damaged(String),
}

/// A writer of `tensors` (little-endian f32) tagged `kind`, with `metadata` beside the tag.
pub fn pack<'a>(
    kind: &str,
    metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
    tensors: &BTreeMap<String, HostTensor>,
) -> Writer {
    let tensors = tensors
        .iter()
        .map(|(name, tensor)| {
            let bytes: Vec<u8> = tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            PackTensor::new(
                name.clone(),
                DType::F32,
                Shape::from(tensor.shape.clone()),
                None,
                Bytes::from_bytes_vec(bytes),
            )
        })
        .collect();
    metadata.into_iter().fold(
        Writer::new(tensors).with_metadata(META_KIND, kind),
        |writer, (key, value)| writer.with_metadata(key, value),
    )
}

/// The metadata and f32 tensors of a pack tagged `kind`; `foreign` says what a pack of another
/// kind is, in the caller's words. Every tensor must be f32 with as many values as its shape.
pub fn unpack(bytes: Vec<u8>, kind: &str, foreign: &str) -> Result<Unpacked, UnpackError> {
    let reader = open_burnpack(bytes).map_err(|refusal| match refusal {
        BurnpackRefusal::Damaged(detail) => {
            UnpackError::Damaged(format!("cut short or corrupt ({detail})"))
        }
        BurnpackRefusal::Foreign(detail) => UnpackError::Foreign(detail),
    })?;
    if reader.metadata().get(META_KIND).map(String::as_str) != Some(kind) {
        return Err(UnpackError::Foreign(foreign.to_string()));
    }
    let metadata = reader
        .metadata()
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let mut tensors = BTreeMap::new();
    for tensor in reader
        .into_tensors()
        .map_err(|error| UnpackError::Damaged(format!("{error}")))?
    {
        let (name, dtype, shape, _, bytes) = tensor
            .into_parts()
            .map_err(|error| UnpackError::Damaged(format!("{error}")))?;
        if dtype != DType::F32 {
            return Err(UnpackError::Damaged(format!(
                "tensor {name} is {dtype:?}, expected f32"
            )));
        }
        let shape: Vec<usize> = shape.iter().copied().collect();
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        if values.len() != shape.iter().product::<usize>() {
            return Err(UnpackError::Damaged(format!(
                "tensor {name}: {} values for shape {shape:?}",
                values.len()
            )));
        }
        tensors.insert(name, HostTensor { shape, values });
    }
    Ok((metadata, tensors))
}
