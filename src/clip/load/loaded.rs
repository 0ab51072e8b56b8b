//! What loading gives — the model with its tokenizer and preprocessing — and how it fails;
//! every family's loader builds through [`build`].

use burn::tensor::Device;

use crate::clip::config::ClipConfig;
use crate::clip::model::ClipModel;
use crate::clip::preprocess::PreprocessConfig;
use crate::clip::tokenizer::{TextTokenizer, VocabularyError};
use crate::weights::{Checkpoint, WeightsError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    OpenClip,
    BiomedClip,
    HfClip,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::OpenClip => "open_clip",
            Family::BiomedClip => "BiomedCLIP",
            Family::HfClip => "Hugging Face CLIPModel",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{location} is not a CLIP model folder: expected open_clip_config.json with open_clip_model.safetensors or \
         open_clip_pytorch_model.bin (open_clip, BiomedCLIP), or config.json with model.safetensors (Hugging Face)"
    )]
    NotAModel { location: String },
    #[error("{file} is missing from {location}{hint}")]
    MissingFile {
        location: String,
        file: String,
        hint: String,
    },
    #[error("cannot read {file}: {detail}")]
    Io { file: String, detail: String },
    #[error("{file}: {detail}")]
    Config { file: String, detail: String },
    #[error(
        "{file} asks for {feature}, which this port does not implement (loading it would compute something else)"
    )]
    Unsupported { file: String, feature: String },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{file}: {source}")]
    Vocabulary {
        file: String,
        source: VocabularyError,
    },
}

/// A loaded model with the tokenizer and preprocessing it was trained with.
#[derive(Debug)]
pub struct LoadedClip {
    pub family: Family,
    pub model: ClipModel,
    pub tokenizer: TextTokenizer,
    pub preprocess: PreprocessConfig,
}

/// Builds the model from a family's checkpoint and key map.
pub(crate) fn build(
    config: ClipConfig,
    checkpoint: Checkpoint,
    map: &dyn crate::weights::KeyMap,
    name: &str,
    device: &Device,
) -> Result<ClipModel, LoadError> {
    if let Some(problem) = config.inconsistency() {
        return Err(LoadError::Config {
            file: format!("the {name} config"),
            detail: problem,
        });
    }
    let weights = crate::weights::Weights::new(checkpoint, map);
    Ok(ClipModel::from_weights(config, weights, name, device)?)
}
