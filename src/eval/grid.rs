//! The evaluation grid: every focus × manifest (protocol point × seed) × head kind, each run
//! trained on its manifest's training images (its validation images judging), scored on its
//! test images. Images are embedded once per focus, through the embedding cache, whatever the
//! number of runs that use them (a fine-tune's runs take the tokens entering its first trained
//! block instead, also once per focus); a run already recorded is not run again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;

use super::localisation::{ground_truth, measure_localisation, with_ground_truth};
use super::metrics::Metrics;
use super::protocol::{HashedSet, Manifest, Resolved};
use super::records::{
    EvalError, EvalObserver, LocalisationRecord, MaskRecord, PredictionRecord, RunRecord,
};
use super::score::head_probabilities;
use crate::clip::ZeroShotClassifier;
use crate::clip::load::LoadedClip;
use crate::clip::model::l2_normalize;
use crate::dataset::Dataset;
use crate::explain::ExplainMethod;
use crate::focus::FocusMode;
use crate::heads::features::FeatureSet;
use crate::heads::head::HeadModel;
use crate::heads::head_file::HeadKind;
use crate::heads::train::cache::{EmbeddingCache, sha256_hex};
use crate::heads::train::coop::train_coop;
use crate::heads::train::finetune::{TokenSet, train_finetune};
use crate::heads::train::from_dataset::{
    FromDatasetError, HeadIdentity, assemble_head, default_templates, embedding_target, text_prior,
};
use crate::heads::train::recipes::train_kind;
use crate::heads::train::run::{Silent, TrainRun};
use crate::heads::train::settings::{HeadSettings, TextPrior};
use crate::heads::train::support::{Embedder, SupportMasks, embed_sample};
use crate::heads::train::training::Training;
use crate::pipeline::{Encoder, Pipeline};

/// Where the grid's masks come from.
pub enum EvalMasks<'a> {
    None,
    /// `<dir>/<image's path inside the set, extension .png>`.
    Folder(std::path::PathBuf),
    Sam2(&'a crate::pipeline::Segmenter),
    /// The set's own ground-truth masks (BUSI's): the oracle.
    GroundTruth,
}

impl EvalMasks<'_> {
    /// The masks an embedder of `focus` gets: none when the focus does not use a region.
    fn support(&self, set: &Dataset, focus: &FocusMode) -> SupportMasks<'_> {
        if !focus.needs_mask() {
            return SupportMasks::None;
        }
        match self {
            EvalMasks::None => SupportMasks::None,
            EvalMasks::Folder(dir) => SupportMasks::Folder(dir.clone()),
            EvalMasks::Sam2(segmenter) => SupportMasks::Sam2(segmenter),
            EvalMasks::GroundTruth => SupportMasks::GroundTruth(set.ground_truth_masks()),
        }
    }

    /// What runs record as their masks, and are identified by: the SAM 2 weights' hash and
    /// grid, a mask folder by its path, the ground truth (a head file records only "mask files"
    /// for a folder).
    pub fn describe(&self) -> String {
        match self {
            EvalMasks::None => "none".into(),
            EvalMasks::Folder(dir) => format!("mask files under {}", dir.display()),
            EvalMasks::Sam2(segmenter) => segmenter.identity.clone(),
            EvalMasks::GroundTruth => "ground-truth masks".into(),
        }
    }
}

/// Dice and IoU of SAM 2's region against the ground truth, for every needed image that has
/// ground-truth masks (the region cache makes this free after the embedding stage).
fn measure_masks(
    set: &HashedSet,
    needed: &BTreeSet<usize>,
    embedder: &Embedder,
    observer: &mut dyn EvalObserver,
) -> Vec<MaskRecord> {
    let masked = with_ground_truth(set, needed);
    let mut records = Vec::new();
    observer.stage("masks vs ground truth", masked.len());
    for (done, index) in masked.into_iter().enumerate() {
        observer.progress(done);
        let sample = &set.dataset.samples[index];
        let measured = set
            .dataset
            .read(sample)
            .and_then(|bytes| {
                embedder
                    .region(&sample.path, &bytes, Some(Path::new(&sample.relative)))
                    .map_err(|error| error.to_string())
            })
            .and_then(|(region, _)| {
                let region = region.ok_or_else(|| "no region".to_string())?;
                let truth = ground_truth(sample)?;
                let overlap = region.mask.overlap(&truth).ok_or_else(|| {
                    format!(
                        "SAM 2's region is {}×{}, the ground truth {}×{}",
                        region.mask.width, region.mask.height, truth.width, truth.height
                    )
                })?;
                Ok(MaskRecord {
                    path: sample.relative.clone(),
                    class_index: sample.class_index,
                    origin: region.origin.name().to_string(),
                    coverage: region.coverage,
                    truth_empty: truth.coverage() == 0.0,
                    dice: overlap.dice,
                    iou: overlap.iou,
                })
            });
        match measured {
            Ok(record) => records.push(record),
            Err(error) => observer.note(&format!(
                "{}: mask not measured: {error}",
                sample.path.display()
            )),
        }
    }
    records
}

pub struct EvalRequest<'a> {
    pub set: &'a HashedSet,
    /// Each manifest with its images found in `set`, and its file name.
    pub manifests: Vec<(Manifest, Resolved)>,
    pub clip: &'a LoadedClip,
    pub clip_name: String,
    /// Words the text prompts use per class (default: the class names).
    pub class_names: Option<Vec<String>>,
    pub templates: Vec<String>,
    pub heads: Vec<HeadKind>,
    pub focuses: Vec<FocusMode>,
    pub masks: EvalMasks<'a>,
    pub cache: Option<EmbeddingCache>,
    /// Hyper-parameters every run starts from (its kind and seed are set per run).
    pub settings: HeadSettings,
    pub device: Device,
    /// Runs already recorded (skipped).
    pub done: BTreeSet<String>,
    /// Explanation methods whose heat-maps are judged against the ground-truth masks, per
    /// focus (none: not measured).
    pub localisation: Vec<ExplainMethod>,
}

/// What the grid did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvalSummary {
    pub runs: usize,
    pub skipped_runs: usize,
    /// Images embedded (per focus method), and how many of those came from the cache.
    pub embedded: usize,
    pub from_cache: usize,
    /// SAM 2 automatic-mask passes (a region from the region cache needs none).
    pub segmented: usize,
    /// SAM 2's regions against the set's ground-truth masks (when it has them).
    pub masks: Vec<MaskRecord>,
    /// Where CLIP looked against the ground-truth masks, per focus and explanation method.
    pub localisation: Vec<LocalisationRecord>,
    pub unusable_images: Vec<String>,
}

/// The run's identity: everything that changes its result.
fn run_id(
    manifest_sha256: &str,
    settings: &HeadSettings,
    focus: &FocusMode,
    masks: &str,
    model_fingerprint: &str,
    prompt_classes: &[String],
    templates: &[String],
) -> String {
    let identity = json!({
        "manifest": manifest_sha256,
        "settings": settings,
        "focus": focus.key(),
        "masks": masks,
        "model": model_fingerprint,
        "classes": prompt_classes,
        "templates": templates,
    });
    sha256_hex(identity.to_string().as_bytes())
}

/// Runs the grid; each finished run goes to `observer.finished` before the next starts.
///
/// Not split: the loop over focus methods; its steps are the functions below it, and what is left
/// is the order they run in and the summary they fill.
pub fn evaluate(
    request: EvalRequest,
    observer: &mut dyn EvalObserver,
) -> Result<EvalSummary, EvalError> {
    request.settings.check().map_err(EvalError::Invalid)?;
    let data = &request.set.dataset;
    let prompt_classes = data
        .prompt_classes(request.class_names.as_deref())
        .map_err(EvalError::Invalid)?;
    let templates = default_templates(&request.templates, HeadKind::ZeroShot);
    let (text, embed_dim) =
        pollster::block_on(text_prior(request.clip, &prompt_classes, &templates))
            .map_err(FromDatasetError::from)?;
    // The zero-shot classifier the localisation explains (the text prior every head starts from).
    let zero_shot = ZeroShotClassifier {
        classes: prompt_classes.clone(),
        class_embeddings: Tensor::<2>::from_data(
            TensorData::new(
                text.embeddings.clone(),
                [text.embeddings.len() / embed_dim.max(1), embed_dim],
            ),
            &request.clip.model.device(),
        ),
        logit_scale: text.scale,
    };
    let needed = needed_images(&request);
    let mut summary = EvalSummary::default();
    let train_device = request.device.clone().autodiff();

    for focus in &request.focuses {
        let mut focus = focus.clone();
        let support_masks = request.masks.support(data, &focus);
        focus.masks = support_masks.describe();
        if let SupportMasks::Sam2(segmenter) = &support_masks {
            focus.automatic = Some(segmenter.automatic.clone());
        }
        let masks_identity = if focus.needs_mask() {
            request.masks.describe()
        } else {
            focus.masks.clone()
        };
        // Which runs of this focus remain: embed only when some do.
        let pending = pending_runs(
            &request,
            &focus,
            &masks_identity,
            (&prompt_classes, &templates),
            &mut summary,
        );
        let measure = matches!(support_masks, SupportMasks::Sam2(_))
            && summary.masks.is_empty()
            && data.masked() > 0;
        let localise = !request.localisation.is_empty() && data.masked() > 0;
        if pending.is_empty() && !measure && !localise {
            continue;
        }
        let finetunes = pending
            .iter()
            .any(|run| run.settings.kind == HeadKind::Finetune);
        let embedder = Embedder::new(
            request.clip,
            focus.clone(),
            support_masks,
            request.cache.clone(),
        )?;
        if localise {
            let encoder = Encoder::new(request.clip, &focus)
                .map_err(|error| EvalError::Invalid(error.to_string()))?;
            summary.localisation.extend(measure_localisation(
                request.set,
                &needed,
                &embedder,
                &Pipeline::new(encoder, &zero_shot),
                &focus,
                &request.localisation,
                observer,
            ));
        }
        if pending.is_empty() {
            if measure {
                summary.masks = measure_masks(request.set, &needed, &embedder, observer);
            }
            continue;
        }
        let embeddings = embed_images(
            request.set,
            &needed,
            &embedder,
            &focus.method,
            observer,
            &mut summary,
        );
        if measure {
            summary.masks = measure_masks(request.set, &needed, &embedder, observer);
        }
        // A fine-tune trains the tower's last blocks: it takes the tokens entering them.
        let tokens = if finetunes {
            Some(token_embeddings(
                &request,
                &focus,
                &needed,
                observer,
                &mut summary,
            )?)
        } else {
            None
        };
        observer.stage(&format!("runs ({})", focus.method), pending.len());
        for (done, run) in pending.into_iter().enumerate() {
            let PendingRun {
                manifest,
                resolved,
                manifest_sha256,
                settings,
                id,
            } = run;
            observer.progress(done);
            let started = Instant::now();
            let result = one_run(
                &RunInputs {
                    request: &request,
                    resolved,
                    embeddings: &embeddings,
                    tokens: &tokens,
                    text: &text,
                    prompt_classes: &prompt_classes,
                    templates: &templates,
                    embed_dim,
                    focus: &focus,
                    train_device: &train_device,
                },
                &settings,
            );
            let (metrics, training, counts, predictions) = match result {
                Ok(outcome) => outcome,
                Err(error) => {
                    observer.note(&format!(
                        "{} {} seed {} {} ({}): not run: {error}",
                        manifest.protocol.label(),
                        settings.kind.name(),
                        manifest.seed,
                        focus.method,
                        manifest.file_name()
                    ));
                    continue;
                }
            };
            let (record, predictions) = records(
                RunRecord {
                    run: id,
                    manifest: manifest.file_name(),
                    manifest_sha256,
                    protocol: manifest.protocol.label(),
                    seed: manifest.seed,
                    head: settings.kind.name().to_string(),
                    focus: focus.method.clone(),
                    masks: masks_identity.clone(),
                    model: request.clip_name.clone(),
                    train_images: counts.0,
                    val_images: counts.1,
                    test_images: counts.2,
                    metrics,
                    training,
                    seconds: started.elapsed().as_secs_f64(),
                },
                predictions,
                data,
            );
            observer.finished(&record, &predictions)?;
            summary.runs += 1;
        }
    }
    Ok(summary)
}

/// Every image some manifest uses (train, validation or test): what each focus embeds.
fn needed_images(request: &EvalRequest) -> BTreeSet<usize> {
    request
        .manifests
        .iter()
        .flat_map(|(_, resolved)| {
            resolved
                .train
                .iter()
                .chain(&resolved.val)
                .chain(&resolved.test)
        })
        .copied()
        .collect()
}

/// One run still to do: a head kind on a manifest, under the focus being evaluated.
struct PendingRun<'r> {
    manifest: &'r Manifest,
    resolved: &'r Resolved,
    manifest_sha256: String,
    settings: HeadSettings,
    id: String,
}

/// The runs of `focus` not recorded yet (the recorded ones are counted in `summary`).
fn pending_runs<'r>(
    request: &'r EvalRequest,
    focus: &FocusMode,
    masks_identity: &str,
    (prompt_classes, templates): (&[String], &[String]),
    summary: &mut EvalSummary,
) -> Vec<PendingRun<'r>> {
    let mut pending = Vec::new();
    for (manifest, resolved) in &request.manifests {
        let manifest_sha256 = manifest.sha256();
        for &kind in &request.heads {
            let settings = HeadSettings {
                kind,
                seed: manifest.seed,
                ..request.settings.clone()
            };
            let id = run_id(
                &manifest_sha256,
                &settings,
                focus,
                masks_identity,
                &request.clip.model.fingerprint,
                prompt_classes,
                templates,
            );
            if request.done.contains(&id) {
                summary.skipped_runs += 1;
            } else {
                pending.push(PendingRun {
                    manifest,
                    resolved,
                    manifest_sha256: manifest_sha256.clone(),
                    settings,
                    id,
                });
            }
        }
    }
    pending
}

/// The tokens entering the fine-tune's first trained block, per needed image; `Err` says why
/// there are none (the fine-tune's runs then fail with it, the others go on).
fn token_embeddings(
    request: &EvalRequest,
    focus: &FocusMode,
    needed: &BTreeSet<usize>,
    observer: &mut dyn EvalObserver,
    summary: &mut EvalSummary,
) -> Result<Result<BTreeMap<usize, Vec<f32>>, String>, EvalError> {
    let target = embedding_target(
        &HeadSettings {
            kind: HeadKind::Finetune,
            ..request.settings.clone()
        },
        &request.clip.model.vision,
    )?;
    let embedder = Embedder::new(
        request.clip,
        focus.clone(),
        request.masks.support(&request.set.dataset, focus),
        request.cache.clone(),
    )?;
    Ok(match embedder.with_target(target) {
        Ok(token_embedder) => Ok(embed_images(
            request.set,
            needed,
            &token_embedder,
            &format!("{}, tokens for the fine-tune", focus.method),
            observer,
            summary,
        )),
        Err(error) => Err(error.to_string()),
    })
}

/// A finished run's line and its test images' predictions, as the report folder records them.
fn records(
    record: RunRecord,
    predictions: Vec<(usize, Vec<f64>)>,
    data: &Dataset,
) -> (RunRecord, Vec<PredictionRecord>) {
    let predictions = predictions
        .into_iter()
        .map(|(sample, probabilities)| PredictionRecord {
            run: record.run.clone(),
            path: data.samples[sample].relative.clone(),
            truth: data.samples[sample].class_index,
            probabilities,
            masks: record.masks.clone(),
        })
        .collect();
    (record, predictions)
}

/// Test images' embeddings through a fine-tune's blocks: its tokens, the head's blocks swapped
/// into a copy of the tower, the tower's head; a few images at a time (a ViT-B/16 image is
/// 197 × 768 tokens).
fn fine_tuned_embeddings(
    model: &HeadModel,
    vision: &crate::clip::vision::VisionTransformer,
    settings: &HeadSettings,
    test: &[usize],
    gather: &dyn Fn(&[usize]) -> Vec<f32>,
    dim: usize,
    inputs: &RunInputs,
) -> Result<Tensor<2>, EvalError> {
    const BATCH: usize = 16;
    let device = &inputs.request.device;
    let scoring = |error: String| EvalError::Scoring(error);
    let tuned = model
        .adapt_vision(vision)
        .map_err(|error| scoring(error.to_string()))?
        .ok_or_else(|| scoring("the fine-tune's head carries no image blocks".into()))?;
    let first_block = tuned.layers() - settings.finetune_blocks;
    let width = tuned.width();
    let mut rows = Vec::with_capacity(test.len() * inputs.embed_dim);
    for batch in test.chunks(BATCH) {
        let tokens = Tensor::<3>::from_data(
            TensorData::new(gather(batch), [batch.len(), dim / width, width]),
            device,
        );
        let embedded = l2_normalize(tuned.finish(tokens, &tuned.blocks[first_block..]));
        rows.extend(
            embedded
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|error| scoring(format!("{error:?}")))?,
        );
    }
    Ok(Tensor::<2>::from_data(
        TensorData::new(rows, [test.len(), inputs.embed_dim]),
        device,
    ))
}

/// Every needed image's embedding under one focus; an image that fails is named once and left
/// out of every run.
fn embed_images(
    set: &HashedSet,
    needed: &BTreeSet<usize>,
    embedder: &Embedder,
    method: &str,
    observer: &mut dyn EvalObserver,
    summary: &mut EvalSummary,
) -> BTreeMap<usize, Vec<f32>> {
    let mut embeddings = BTreeMap::new();
    observer.stage(&format!("embedding ({method})"), needed.len());
    for (done, &index) in needed.iter().enumerate() {
        observer.progress(done);
        let sample = &set.dataset.samples[index];
        match embed_sample(&set.dataset, sample, embedder) {
            Ok(embedded) => {
                summary.embedded += 1;
                summary.from_cache += usize::from(embedded.from_cache);
                summary.segmented += usize::from(embedded.segmented);
                if let Some(warning) = embedded.warning {
                    observer.note(&format!("{}: {warning}", sample.path.display()));
                }
                embeddings.insert(index, embedded.values);
            }
            Err(error) => {
                let line = error.to_string();
                observer.note(&line);
                if !summary.unusable_images.contains(&line) {
                    summary.unusable_images.push(line);
                }
            }
        }
    }
    observer.progress(needed.len());
    embeddings
}

struct RunInputs<'r, 'a> {
    request: &'r EvalRequest<'a>,
    resolved: &'r Resolved,
    embeddings: &'r BTreeMap<usize, Vec<f32>>,
    /// The fine-tune's inputs (the tokens entering its first block, or why there are none);
    /// `None` when no run of this focus is a fine-tune.
    tokens: &'r Option<Result<BTreeMap<usize, Vec<f32>>, String>>,
    text: &'r TextPrior,
    prompt_classes: &'r [String],
    templates: &'r [String],
    embed_dim: usize,
    focus: &'r FocusMode,
    train_device: &'r Device,
}

type RunOutcome = (
    Metrics,
    serde_json::Value,
    (usize, usize, usize),
    Vec<(usize, Vec<f64>)>,
);

/// Trains one head on one manifest's images and scores its test images.
///
/// Not split: one run from its rows to its metrics; every step reads the same gathered rows, labels
/// and device.
fn one_run(inputs: &RunInputs, settings: &HeadSettings) -> Result<RunOutcome, EvalError> {
    let data = &inputs.request.set.dataset;
    let classes = data.classes.len();
    let finetune = settings.kind == HeadKind::Finetune;
    // Each image's input to the head: its embedding, or for a fine-tune its tokens.
    let inputs_of = if finetune {
        match inputs.tokens {
            Some(Ok(tokens)) => tokens,
            Some(Err(why)) => return Err(EvalError::Invalid(why.clone())),
            None => {
                return Err(EvalError::Invalid(
                    "a fine-tune run without the fine-tune's tokens".into(),
                ));
            }
        }
    } else {
        inputs.embeddings
    };
    let usable = |indices: &[usize]| -> Vec<usize> {
        indices
            .iter()
            .copied()
            .filter(|index| inputs_of.contains_key(index))
            .collect()
    };
    let (train, val, test) = (
        usable(&inputs.resolved.train),
        usable(&inputs.resolved.val),
        usable(&inputs.resolved.test),
    );
    if test.is_empty() {
        return Err(EvalError::Invalid("no usable test image".into()));
    }
    let rows: Vec<usize> = train.iter().chain(&val).copied().collect();
    let dim = inputs_of[&rows.first().copied().unwrap_or(test[0])].len();
    let gather = |indices: &[usize]| -> Vec<f32> {
        let mut values = Vec::with_capacity(indices.len() * dim);
        for index in indices {
            values.extend_from_slice(&inputs_of[index]);
        }
        values
    };
    let labels: Vec<usize> = rows
        .iter()
        .map(|&index| data.samples[index].class_index)
        .collect();
    let validation: Vec<usize> = (train.len()..rows.len()).collect();
    // A class must train: a validation image alone cannot stand in for it.
    let trained_labels: BTreeSet<usize> = train
        .iter()
        .map(|&index| data.samples[index].class_index)
        .collect();
    if trained_labels.len() < classes {
        return Err(EvalError::Invalid(
            "some class has no usable training image".into(),
        ));
    }
    let (mut run, _) = TrainRun::open(None, "eval", false)?;
    let mut silent = Silent;
    let training = Training::new(settings, &mut run, &mut silent, inputs.train_device)
        .with_validation(Some(&validation));
    let vision = &inputs.request.clip.model.vision;
    let width = vision.width();
    let trained = match settings.kind {
        HeadKind::Finetune => {
            let support = TokenSet {
                classes: data.classes.clone(),
                tokens: dim / width.max(1),
                width,
                values: gather(&rows),
                labels,
            };
            train_finetune(vision, &support, inputs.text, training)?
        }
        kind => {
            let support = FeatureSet::new(data.classes.clone(), dim, gather(&rows), labels)?;
            if kind == HeadKind::Coop {
                train_coop(
                    inputs.request.clip,
                    &support,
                    inputs.prompt_classes,
                    training,
                )?
            } else {
                train_kind(&support, inputs.text, training)?
            }
        }
    };
    let head = assemble_head(
        trained,
        HeadIdentity {
            kind: settings.kind,
            classes: data.classes.clone(),
            templates: inputs.templates.to_vec(),
            clip: inputs.request.clip,
            clip_name: inputs.request.clip_name.clone(),
            embed_dim: inputs.embed_dim,
            focus: inputs.focus.clone(),
        },
    )
    .map_err(FromDatasetError::from)?;
    let model = HeadModel::new(&head, &inputs.request.device);
    let embeddings = if finetune {
        fine_tuned_embeddings(&model, vision, settings, &test, &gather, dim, inputs)?
    } else {
        Tensor::<2>::from_data(
            TensorData::new(gather(&test), [test.len(), dim]),
            &inputs.request.device,
        )
    };
    let probabilities = head_probabilities(&model, embeddings)?;
    let truth: Vec<usize> = test
        .iter()
        .map(|&index| data.samples[index].class_index)
        .collect();
    let metrics = Metrics::compute(&probabilities, &truth, classes)?;
    let predictions = test
        .iter()
        .zip(probabilities.chunks(classes))
        .map(|(&index, row)| (index, row.to_vec()))
        .collect();
    Ok((
        metrics,
        head.header.training,
        (train.len(), val.len(), test.len()),
        predictions,
    ))
}
