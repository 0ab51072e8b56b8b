//! Train from a folder of labelled images, predict files with a head: the steps the CLI (and
//! the end-to-end tests) run, in the library so the front end stays thin.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde_json::json;

use super::cache::EmbeddingCache;
use super::embed::{EmbedError, Embedder, MaskSource, SupportEmbeddings, Target, embed_support};
use super::features::{FeatureError, class_counts};
use super::finetune::train_finetune;
use super::head::{HeadError, HeadModel};
use super::head_file::{ClipIdentity, FORMAT_VERSION, HeadFile, HeadHeader, HeadKind, PromptMode};
use super::train::{Observer, TrainError, TrainRun, host_values};
use super::trainer::{HeadSettings, TextPrior, train_head};
use crate::clip::load::LoadedClip;
use crate::clip::zero_shot::{MEDICAL_TEMPLATES, ZeroShotClassifier, ZeroShotError};
use crate::dataset::{ClassFolders, DatasetError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Text(#[from] ZeroShotError),
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error("{0}")]
    Invalid(String),
}

/// The prompt the paper fine-tunes against.
pub const FINETUNE_TEMPLATE: &str = "This is a photo of {}.";

pub struct TrainRequest<'a> {
    pub data: &'a Path,
    pub clip: &'a LoadedClip,
    /// The CLIP model's name for the head file (its folder name).
    pub clip_name: String,
    /// Names the text prompts use, one per class folder in sorted order (default: folder names).
    pub class_names: Option<Vec<String>>,
    /// Prompt templates (`{}` = class name); empty: the medical defaults.
    pub templates: Vec<String>,
    /// Focus method and settings; `masks` is filled in from `mask_source`.
    pub prompt: PromptMode,
    pub mask_source: MaskSource,
    pub cache: Option<EmbeddingCache>,
    pub settings: HeadSettings,
    /// Checkpoint file (resumed when it belongs to this run); None: no checkpoints.
    pub checkpoint: Option<PathBuf>,
    /// Discard a checkpoint of another run instead of refusing.
    pub fresh: bool,
    pub device: Device,
}

pub struct TrainReport {
    pub head: HeadFile,
    pub support: SupportEmbeddings,
    pub resumed: bool,
}

/// Embeds the support set (through the cache), trains the head, returns the head file.
pub fn train_from_folders(
    request: TrainRequest,
    observer: &mut dyn Observer,
) -> Result<TrainReport, PipelineError> {
    request.settings.check().map_err(PipelineError::Invalid)?;
    let folders = ClassFolders::open(request.data)?;
    let prompt_classes = match &request.class_names {
        Some(names) if names.len() != folders.classes.len() => {
            return Err(PipelineError::Invalid(format!(
                "{} class names given for {} class folders ({})",
                names.len(),
                folders.classes.len(),
                folders.classes.join(", ")
            )));
        }
        Some(names) => names.clone(),
        None => folders.classes.clone(),
    };
    let templates: Vec<String> = match (request.templates.is_empty(), request.settings.kind) {
        (false, _) => request.templates.clone(),
        // The paper's prompt.
        (true, HeadKind::Finetune) => vec![FINETUNE_TEMPLATE.to_string()],
        (true, _) => MEDICAL_TEMPLATES.iter().map(|t| t.to_string()).collect(),
    };
    let vision = &request.clip.model.vision;
    let target = match request.settings.kind {
        HeadKind::Finetune => {
            let blocks = request.settings.finetune_blocks;
            if blocks == 0 || blocks > vision.layers() {
                return Err(PipelineError::Invalid(format!(
                    "--finetune-blocks {blocks}: this image tower has {} blocks",
                    vision.layers()
                )));
            }
            Target::TokensBefore(vision.layers() - blocks)
        }
        _ => Target::Embedding,
    };
    let mut prompt = request.prompt.clone();
    prompt.masks = request.mask_source.describe();
    let embedder = Embedder::new(
        request.clip,
        prompt.clone(),
        request.mask_source,
        request.cache,
        request.device.clone(),
    )?
    .with_target(target)?;
    let support = embed_support(&folders, &embedder, &mut |done, total, _| {
        observer.embedding(done, total)
    })?;
    for line in support.skipped.iter().chain(&support.warnings) {
        observer.note(line);
    }
    let zero_shot = ZeroShotClassifier::new(request.clip, &prompt_classes, &templates)?;
    let text = TextPrior {
        embeddings: host_values(zero_shot.class_embeddings.clone())?,
        scale: zero_shot.logit_scale,
    };
    // The run's identity: everything that changes the result. A checkpoint of another run is
    // never silently continued.
    let identity = json!({
        "settings": request.settings,
        "model": request.clip.model.fingerprint,
        "prompt": prompt,
        "classes": prompt_classes,
        "templates": templates,
        "images": support.images.iter().map(|(_, key)| key).collect::<Vec<_>>(),
        "labels": support.labels,
    });
    let run_key = super::cache::sha256_hex(identity.to_string().as_bytes());
    let (mut run, resumed) =
        TrainRun::open(request.checkpoint.as_deref(), &run_key, request.fresh)?;
    if resumed {
        observer.note("resuming from the checkpoint");
    }
    let train_device = request.device.clone().autodiff();
    let trained = match request.settings.kind {
        HeadKind::Coop => super::coop::train_coop(
            request.clip,
            &support.features()?,
            &prompt_classes,
            &request.settings,
            &mut run,
            observer,
            &train_device,
        )?,
        HeadKind::Finetune => train_finetune(
            vision,
            &support.tokens(vision.width()),
            &text,
            &request.settings,
            &mut run,
            observer,
            &train_device,
        )?,
        _ => train_head(
            &support.features()?,
            &text,
            &request.settings,
            &mut run,
            observer,
            &train_device,
        )?,
    };
    let mut training = trained.training;
    training["images"] = json!(support.images.len());
    training["skipped"] = json!(support.skipped.len());
    training["counts"] = json!(class_counts(&support.labels, folders.classes.len()));
    let head = HeadFile {
        header: HeadHeader {
            format: FORMAT_VERSION,
            kind: request.settings.kind,
            classes: folders.classes.clone(),
            templates,
            clip: ClipIdentity {
                name: request.clip_name,
                family: request.clip.family.to_string(),
                fingerprint: request.clip.model.fingerprint.clone(),
                embed_dim: zero_shot.class_embeddings.dims()[1],
            },
            prompt,
            preprocess: request.clip.preprocess.clone(),
            text_scale: trained.text_scale,
            cache: trained.cache,
            training,
        },
        tensors: trained.tensors,
    };
    head.check().map_err(|error| {
        PipelineError::Invalid(format!("the trained head failed its own check: {error}"))
    })?;
    Ok(TrainReport {
        head,
        support,
        resumed,
    })
}

/// Class probabilities for image files with a trained head (per file: the probabilities or why
/// not). Masks come from `mask_source` when the head's prompt mode needs one.
pub fn predict_files(
    head: &HeadModel,
    clip: &LoadedClip,
    mask_source: MaskSource,
    cache: Option<EmbeddingCache>,
    files: &[PathBuf],
    device: &Device,
) -> Result<Vec<Result<Vec<f32>, PipelineError>>, PipelineError> {
    head.check_clip(&clip.model)?;
    let mut embedder = Embedder::new(
        clip,
        head.header.prompt.clone(),
        mask_source,
        cache,
        device.clone(),
    )?;
    if let Some(vision) = head.adapt_vision(&clip.model.vision)? {
        embedder = embedder.with_vision(vision);
    }
    Ok(files
        .iter()
        .map(|path| -> Result<Vec<f32>, PipelineError> {
            let bytes = std::fs::read(path).map_err(|error| EmbedError::Image {
                path: path.display().to_string(),
                detail: error.to_string(),
            })?;
            let embedded = embedder.embed(path, &bytes, None)?;
            let tensor = burn::tensor::Tensor::<2>::from_data(
                burn::tensor::TensorData::new(embedded.values.clone(), [1, embedded.values.len()]),
                device,
            );
            Ok(pollster::block_on(head.read_probabilities(tensor))?.remove(0))
        })
        .collect())
}
