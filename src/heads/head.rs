//! A trained head ready to predict: the `.mfh` tensors on a device and the one formula every
//! kind shares (see the module docs of [`crate::heads`]).

use std::collections::BTreeMap;

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::head_file::{
    CACHE_KEYS, CACHE_VALUES, HeadFile, HeadHeader, HostTensor, LINEAR_BIAS, LINEAR_WEIGHT, TEXT,
    TipAdapterScalars, VISION_BLOCKS,
};
use super::tip_adapter::cache_logits;
use super::vision_blocks::substitute;
use crate::clip::model::{ClipModel, l2_normalize};
use crate::clip::vision::VisionTransformer;
use crate::device::read_floats;
use crate::focus::UnknownMethod;

/// Refuses a CLIP other than the one the head (`header`) was trained on: its embeddings would
/// mean nothing to the head's weights.
pub fn check_clip(header: &HeadHeader, model: &ClipModel) -> Result<(), HeadError> {
    if model.fingerprint != header.clip.fingerprint {
        let short = |text: &str| text.chars().take(12).collect::<String>();
        return Err(HeadError::OtherModel {
            trained_name: header.clip.name.clone(),
            trained: short(&header.clip.fingerprint),
            loaded: short(&model.fingerprint),
        });
    }
    Ok(())
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HeadError {
    #[error(
        "this head was trained on CLIP model `{trained_name}` (fingerprint {trained}…), but the loaded model is {loaded}… — load the model it was trained with"
    )]
    OtherModel {
        trained_name: String,
        trained: String,
        loaded: String,
    },
    #[error("this head's focus method: {0}")]
    Focus(#[from] UnknownMethod),
    #[error("image embeddings have width {found}; this head takes {expected}")]
    Width { expected: usize, found: usize },
    #[error("reading results back from the device failed: {0}")]
    Readback(String),
    #[error("this head's fine-tuned image blocks do not fit the loaded model: {0}")]
    Blocks(String),
}

#[derive(Debug, Clone)]
pub struct HeadModel {
    pub header: HeadHeader,
    text: Option<Tensor<2>>,
    linear: Option<(Tensor<2>, Tensor<1>)>,
    cache: Option<(Tensor<2>, Tensor<2>, TipAdapterScalars)>,
    /// Fine-tuned image-tower blocks by index, their parameters by path (`finetune`).
    vision_blocks: BTreeMap<usize, BTreeMap<String, HostTensor>>,
}

pub(crate) fn device_tensor<const D: usize>(tensor: &HostTensor, device: &Device) -> Tensor<D> {
    Tensor::from_data(
        TensorData::new(tensor.values.clone(), tensor.shape.clone()),
        device,
    )
}

impl HeadModel {
    /// The file's tensors on `device` ([`HeadFile::check`] has vouched for their shapes).
    pub fn new(file: &HeadFile, device: &Device) -> Self {
        let get = |name: &str| file.tensors.get(name);
        let header = file.header.clone();
        let text = (header.text_scale != 0.0)
            .then(|| get(TEXT).map(|t| device_tensor::<2>(t, device)))
            .flatten();
        let linear = get(LINEAR_WEIGHT)
            .zip(get(LINEAR_BIAS))
            .map(|(w, b)| (device_tensor::<2>(w, device), device_tensor::<1>(b, device)));
        let cache = get(CACHE_KEYS)
            .zip(get(CACHE_VALUES))
            .zip(header.cache)
            .map(|((k, v), scalars)| {
                (
                    device_tensor::<2>(k, device),
                    device_tensor::<2>(v, device),
                    scalars,
                )
            });
        let mut vision_blocks: BTreeMap<usize, BTreeMap<String, HostTensor>> = BTreeMap::new();
        for (name, tensor) in &file.tensors {
            let Some(rest) = name.strip_prefix(VISION_BLOCKS) else {
                continue;
            };
            if let Some((index, path)) = rest.split_once('.')
                && let Ok(index) = index.parse::<usize>()
            {
                vision_blocks
                    .entry(index)
                    .or_default()
                    .insert(path.to_string(), tensor.clone());
            }
        }
        Self {
            header,
            text,
            linear,
            cache,
            vision_blocks,
        }
    }

    /// For a head that fine-tuned image-tower blocks: a copy of `vision` with them in place
    /// (`None` for every other head: the tower is used as it is).
    pub fn adapt_vision(
        &self,
        vision: &VisionTransformer,
    ) -> Result<Option<VisionTransformer>, HeadError> {
        if self.vision_blocks.is_empty() {
            return Ok(None);
        }
        let device = vision.class_embedding.val().device();
        let mut adapted = vision.clone();
        for (&index, params) in &self.vision_blocks {
            let block = adapted.blocks.get(index).cloned().ok_or_else(|| {
                HeadError::Blocks(format!(
                    "block {index}, but the tower has {}",
                    vision.blocks.len()
                ))
            })?;
            let mut wrong = Vec::new();
            let (block, missing) = substitute(block, &mut |path, dims| {
                let tensor = params.get(path)?;
                if tensor.shape != dims {
                    wrong.push(format!("{path} {:?} vs {dims:?}", tensor.shape));
                    return None;
                }
                let columns = dims.last().copied().unwrap_or(1);
                let rows = tensor.values.len() / columns.max(1);
                Some(device_tensor::<2>(
                    &HostTensor::new(vec![rows, columns], tensor.values.clone()),
                    &device,
                ))
            });
            if !missing.is_empty() || !wrong.is_empty() {
                return Err(HeadError::Blocks(format!(
                    "block {index}: missing {missing:?}, misshapen {wrong:?}"
                )));
            }
            adapted.blocks[index] = block;
        }
        Ok(Some(adapted))
    }

    pub fn classes(&self) -> &[String] {
        &self.header.classes
    }

    /// Refuses a CLIP other than the one the head was trained on.
    pub fn check_clip(&self, model: &ClipModel) -> Result<(), HeadError> {
        check_clip(&self.header, model)
    }

    /// Logits `[images, classes]` for image embeddings `[images, dim]` (normalised here).
    pub fn logits(&self, embeddings: Tensor<2>) -> Result<Tensor<2>, HeadError> {
        let [rows, width] = embeddings.dims();
        if width != self.header.clip.embed_dim {
            return Err(HeadError::Width {
                expected: self.header.clip.embed_dim,
                found: width,
            });
        }
        let features = l2_normalize(embeddings);
        let device = features.device();
        let mut logits = Tensor::<2>::zeros([rows, self.header.classes.len()], &device);
        if let Some(text) = &self.text {
            logits =
                logits + features.clone().matmul(text.clone().transpose()) * self.header.text_scale;
        }
        if let Some((weight, bias)) = &self.linear {
            logits = logits
                + features.clone().matmul(weight.clone().transpose())
                + bias.clone().unsqueeze_dim::<2>(0);
        }
        if let Some((keys, values, scalars)) = &self.cache {
            logits = logits + cache_logits(features, keys.clone(), values.clone(), *scalars);
        }
        Ok(logits)
    }

    /// Class probabilities as rows, read back asynchronously (the browser cannot block).
    pub async fn read_probabilities(
        &self,
        embeddings: Tensor<2>,
    ) -> Result<Vec<Vec<f32>>, HeadError> {
        let classes = self.header.classes.len();
        let values = read_floats(softmax(self.logits(embeddings)?, 1))
            .await
            .map_err(|error| HeadError::Readback(error.0))?;
        Ok(values.chunks(classes).map(<[f32]>::to_vec).collect())
    }
}
