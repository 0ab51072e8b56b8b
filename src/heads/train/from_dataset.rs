//! Train from a labelled data set — class folders, split folders, a split file, a CSV or an
//! archive, read by the same [`Dataset::open`] the evaluation uses, so a BUSI mask is a mask here
//! too, never a training image — on one of its splits: the journey `medfocus train` (and the
//! end-to-end tests) run, in the library so the front end stays thin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::Device;
use serde_json::json;

use super::cache::EmbeddingCache;
use super::finetune::train_finetune;
use super::recipes::train_kind;
use super::run::{Observer, TrainError, TrainRun};
use super::settings::HeadSettings;
use super::support::{
    EmbedError, Embedder, SupportEmbeddings, SupportMasks, Target, embed_support,
};
pub use super::support_set::{
    FINETUNE_TEMPLATE, HeadIdentity, SupportSetError, assemble_head, default_templates, text_prior,
};
use super::training::Training;
use crate::clip::load::LoadedClip;
use crate::clip::vision::VisionTransformer;
use crate::clip::zero_shot::ZeroShotError;
use crate::dataset::{Dataset, DatasetError, SplitName};
use crate::focus::FocusMode;
use crate::heads::features::{FeatureError, check_labels, class_counts};
use crate::heads::head_file::{HeadFile, HeadKind, HostTensor};

#[derive(Debug, thiserror::Error)]
pub enum FromDatasetError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Text(#[from] ZeroShotError),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Assemble(#[from] SupportSetError),
}

pub struct TrainRequest<'a> {
    /// The labelled images ([`Dataset::open`]).
    pub data: &'a Dataset,
    /// The split trained on; `None`: every image of the set, whatever its split.
    pub split: Option<SplitName>,
    pub clip: &'a LoadedClip,
    /// The CLIP model's name for the head file (its folder name).
    pub clip_name: String,
    /// Names the text prompts use, one per class in the set's order (default: the set's names).
    pub class_names: Option<Vec<String>>,
    /// Prompt templates (`{}` = class name); empty: the medical defaults.
    pub templates: Vec<String>,
    /// Focus method and settings; `masks` and `automatic` are filled in from `masks`.
    pub focus: FocusMode,
    pub masks: SupportMasks<'a>,
    pub cache: Option<EmbeddingCache>,
    pub settings: HeadSettings,
    /// Weights to start from (a head's trainable tensors by name: `train --init`), else the
    /// kind's own start.
    pub initial: Option<BTreeMap<String, HostTensor>>,
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
///
/// Not split: the training journey's steps in order, each a call, sharing the request, the support
/// embeddings and the run.
pub fn train_from_dataset(
    request: TrainRequest,
    observer: &mut dyn Observer,
) -> Result<TrainReport, FromDatasetError> {
    request
        .settings
        .check()
        .map_err(FromDatasetError::Invalid)?;
    let set = request.data;
    let samples = training_samples(set, request.split)?;
    let prompt_classes = set
        .prompt_classes(request.class_names.as_deref())
        .map_err(FromDatasetError::Invalid)?;
    let templates = templates(&request);
    let vision = &request.clip.model.vision;
    let target = embedding_target(&request.settings, vision)?;
    let focus = focus_with_masks(&request.focus, &request.masks);
    let embedder = Embedder::new(request.clip, focus.clone(), request.masks, request.cache)?
        .with_target(target)?;
    let support = embed_support(set, &samples, &embedder, &mut |done, total, _| {
        observer.embedding(done, total)
    })?;
    for line in support.skipped.iter().chain(&support.warnings) {
        observer.note(line);
    }
    // The federable heads train with a class absent here (a site of a federated head may lack
    // one); the others need an image of every class (Tip-Adapter's cache, the fine-tune's).
    let absent_allowed = matches!(
        request.settings.kind,
        HeadKind::LinearProbe | HeadKind::LpText | HeadKind::Coop
    );
    if !absent_allowed {
        check_labels(&set.classes, &support.labels)?;
    }
    let (text, embed_dim) =
        pollster::block_on(text_prior(request.clip, &prompt_classes, &templates))?;
    // The run's identity: everything that changes the result. A checkpoint of another run is
    // never silently continued.
    let identity = json!({
        "settings": request.settings,
        "model": request.clip.model.fingerprint,
        // `prompt`: the key format 1 heads' runs were identified by (their checkpoints resume).
        "prompt": focus,
        "classes": prompt_classes,
        "templates": templates,
        "images": support.images.iter().map(|(_, key)| key).collect::<Vec<_>>(),
        "labels": support.labels,
        "initial": request.initial.as_ref().map(initial_fingerprint),
    });
    let run_key = super::cache::sha256_hex(identity.to_string().as_bytes());
    let (mut run, resumed) =
        TrainRun::open(request.checkpoint.as_deref(), &run_key, request.fresh)?;
    if resumed {
        observer.note("resuming from the checkpoint");
    }
    let train_device = request.device.clone().autodiff();
    let features = || {
        if absent_allowed {
            support.features_allowing_absent_classes()
        } else {
            support.features()
        }
    };
    let mut trained = match request.settings.kind {
        HeadKind::Coop => super::coop::train_coop(
            request.clip,
            &features()?,
            &prompt_classes,
            Training::new(&request.settings, &mut run, observer, &train_device)
                .with_initial(request.initial.as_ref()),
        )?,
        HeadKind::Finetune => train_finetune(
            vision,
            &support.tokens(vision.width()),
            &text,
            Training::new(&request.settings, &mut run, observer, &train_device),
        )?,
        _ => train_kind(
            &features()?,
            &text,
            Training::new(&request.settings, &mut run, observer, &train_device)
                .with_initial(request.initial.as_ref()),
        )?,
    };
    trained.training["images"] = json!(support.images.len());
    trained.training["skipped"] = json!(support.skipped.len());
    trained.training["counts"] = json!(class_counts(&support.labels, set.classes.len()));
    let head = assemble_head(
        trained,
        HeadIdentity {
            kind: request.settings.kind,
            classes: set.classes.clone(),
            templates,
            clip: request.clip,
            clip_name: request.clip_name,
            embed_dim,
            focus,
        },
    )?;
    Ok(TrainReport {
        head,
        support,
        resumed,
    })
}

/// The focus as a head file records it: the method and settings, where its masks come from, and
/// SAM 2's automatic-mask settings when SAM 2 makes them.
pub fn focus_with_masks(focus: &FocusMode, masks: &SupportMasks) -> FocusMode {
    let mut focus = focus.clone();
    focus.masks = masks.describe();
    if let SupportMasks::Sam2(segmenter) = masks
        && focus.needs_mask()
    {
        focus.automatic = Some(segmenter.automatic.clone());
    }
    focus
}

/// The starting weights' identity for the run key: every value's bits, hashed.
fn initial_fingerprint(initial: &BTreeMap<String, HostTensor>) -> String {
    let mut bytes = Vec::new();
    for (name, tensor) in initial {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        for &size in &tensor.shape {
            bytes.extend_from_slice(&(size as u64).to_le_bytes());
        }
        for value in &tensor.values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    super::cache::sha256_hex(&bytes)
}

/// The samples trained on (indices into `set.samples`): those of `split`, or every one.
pub fn training_samples(
    set: &Dataset,
    split: Option<SplitName>,
) -> Result<Vec<usize>, FromDatasetError> {
    let chosen: Vec<usize> = (0..set.samples.len())
        .filter(|&index| split.is_none() || set.samples[index].split == split)
        .collect();
    if chosen.is_empty() {
        let splits: std::collections::BTreeSet<&str> = set
            .samples
            .iter()
            .filter_map(|sample| sample.split.map(SplitName::name))
            .collect();
        let has = if splits.is_empty() {
            "it has no splits (train on all of it)".to_string()
        } else {
            format!(
                "it has {}",
                splits.into_iter().collect::<Vec<_>>().join(", ")
            )
        };
        return Err(FromDatasetError::Invalid(format!(
            "{} has no images in the {} split: {has}",
            set.root.display(),
            split.map_or("chosen", SplitName::name)
        )));
    }
    Ok(chosen)
}

/// The prompt templates: the given ones, else the paper's for a fine-tune, else the medical
/// defaults.
fn templates(request: &TrainRequest) -> Vec<String> {
    default_templates(&request.templates, request.settings.kind)
}

/// What each support image becomes: its embedding, or for a fine-tune the tokens entering the
/// first trained block.
pub fn embedding_target(
    settings: &HeadSettings,
    vision: &VisionTransformer,
) -> Result<Target, FromDatasetError> {
    if settings.kind != HeadKind::Finetune {
        return Ok(Target::Embedding);
    }
    let blocks = settings.finetune_blocks;
    if blocks == 0 || blocks > vision.layers() {
        return Err(FromDatasetError::Invalid(format!(
            "--finetune-blocks {blocks}: this image tower has {} blocks",
            vision.layers()
        )));
    }
    Ok(Target::TokensBefore(vision.layers() - blocks))
}
