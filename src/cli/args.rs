//! What several subcommands share: argument groups (focus, head settings, SAM 2), the SAM 2
//! loader they drive, and a model folder's name.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medfocus::dataset::Dataset;
use medfocus::device::ChosenDevice;
use medfocus::explain::{self, ExplainMethod, ExplainRequest};
use medfocus::fetch::sha256_file;
use medfocus::focus::FocusSettings;
use medfocus::heads::HeadKind;
use medfocus::heads::train::cache::{EmbeddingCache, default_dir};
use medfocus::heads::train::support::SupportMasks;
use medfocus::heads::train::{HeadSettings, Optimizer};
use medfocus::pipeline::{Classifier, Segmenter};
use medfocus::sam2::automatic_mask_generator::GeneratorSettings;
use medfocus::sam2::{Sam2Config, Sam2Model, Sam2Predictor};

/// What every subcommand returns: its exit status, or the error `main` prints.
pub(crate) type CliResult = Result<ExitCode, Box<dyn Error>>;

/// Every focus method's knobs (classify, train).
#[derive(clap::Args)]
pub(crate) struct FocusArgs {
    /// Overlay opacity inside the mask (focus overlay).
    #[arg(long, default_value_t = FocusSettings::default().alpha)]
    pub(crate) alpha: f32,
    /// Blur σ in pixels (focus blur).
    #[arg(long, default_value_t = FocusSettings::default().sigma)]
    pub(crate) sigma: f32,
    /// Margin around the mask's box, as a fraction of its size (focus crop).
    #[arg(long, default_value_t = FocusSettings::default().margin)]
    pub(crate) margin: f32,
    /// Attention bias strength (focus attention); 0 is plain CLIP.
    #[arg(long, default_value_t = FocusSettings::default().strength)]
    pub(crate) strength: f32,
    /// Bias only the last N blocks (focus attention; default all).
    #[arg(long)]
    pub(crate) last_layers: Option<usize>,
    /// Bias every token's attention, not just the class token's (focus attention).
    #[arg(long)]
    pub(crate) all_tokens: bool,
}

impl FocusArgs {
    pub(crate) fn settings(&self) -> FocusSettings {
        FocusSettings {
            alpha: self.alpha,
            sigma: self.sigma,
            margin: self.margin,
            strength: self.strength,
            last_layers: self.last_layers,
            all_tokens: self.all_tokens,
        }
    }
}

/// Where the model looked (classify, predict).
#[derive(clap::Args)]
pub(crate) struct ExplainArgs {
    /// Explain each prediction: writes the heat-map (`<image>.<method>.heatmap.png`) and the
    /// heat-map over the image (`<image>.<method>.blended.png`) into DIR, and prints the map.
    #[arg(long, value_name = "DIR")]
    pub(crate) explain: Option<PathBuf>,
    /// `relevancy`: gradient-weighted attention relevancy (Chefer et al.); `dense`: MaskCLIP's
    /// dense features (one forward pass, no gradients).
    #[arg(long, default_value = "relevancy", requires = "explain",
          value_parser = clap::builder::PossibleValuesParser::new(explain::METHODS))]
    pub(crate) explain_method: String,
    /// The class whose score is explained (default: the predicted one).
    #[arg(long, requires = "explain")]
    pub(crate) explain_class: Option<String>,
    /// Relevancy: the first image-tower block whose attention is propagated (0 = all blocks;
    /// default: the last block alone, as Chefer's CLIP notebook does).
    #[arg(long, requires = "explain")]
    pub(crate) explain_start_block: Option<usize>,
    /// Opacity of the heat-map over the image, in [0, 1].
    #[arg(long, default_value_t = 0.5, requires = "explain")]
    pub(crate) explain_opacity: f32,
}

impl ExplainArgs {
    /// The request, checked against the classifier's classes; `None` without `--explain`.
    pub(crate) fn request(
        &self,
        classifier: &dyn Classifier,
    ) -> Result<Option<(ExplainRequest, &Path)>, Box<dyn Error>> {
        let Some(dir) = &self.explain else {
            return Ok(None);
        };
        if !(0.0..=1.0).contains(&self.explain_opacity) {
            return Err(format!(
                "--explain-opacity must be in [0, 1], got {}",
                self.explain_opacity
            )
            .into());
        }
        let mut request = ExplainRequest::new(ExplainMethod::from_name(&self.explain_method)?);
        request.class = self
            .explain_class
            .as_deref()
            .map(|name| explain::class_index(classifier, name))
            .transpose()?;
        request.start_block = self.explain_start_block;
        Ok(Some((request, dir.as_path())))
    }
}

/// Every head kind's hyper-parameters (train, eval).
#[derive(clap::Args)]
pub(crate) struct HeadSettingsArgs {
    /// Fraction of each class held out to choose hyper-parameters and stop early.
    #[arg(long, default_value_t = 0.25)]
    pub(crate) holdout: f32,
    /// Epochs (gradient heads) or L-BFGS iterations (linear probes).
    #[arg(long)]
    pub(crate) epochs: Option<usize>,
    #[arg(long)]
    pub(crate) learning_rate: Option<f32>,
    /// Early stopping: epochs without a better held-out loss (0: off).
    #[arg(long, default_value_t = 20)]
    pub(crate) patience: usize,
    /// Decoupled weight decay (AdamW) for the gradient-trained heads.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) weight_decay: f32,
    /// Linear probe: inverse regularisation strength, as scikit-learn's C (default: searched).
    #[arg(long)]
    pub(crate) c: Option<f32>,
    /// Linear probe: the C values searched on the held-out images.
    #[arg(long, value_delimiter = ',', default_values_t = HeadSettings::new(HeadKind::LinearProbe).c_grid)]
    pub(crate) c_grid: Vec<f32>,
    /// LP+text: weight of the pull towards the text embeddings (default: searched).
    #[arg(long)]
    pub(crate) text_weight: Option<f32>,
    /// LP+text: the weights searched on the held-out images.
    #[arg(long, value_delimiter = ',', default_values_t = HeadSettings::new(HeadKind::LpText).text_weight_grid)]
    pub(crate) text_weight_grid: Vec<f32>,
    /// Tip-Adapter: the cache logits' weight α (default: searched). (Old name: --alpha-cache.)
    #[arg(long, alias = "alpha-cache")]
    pub(crate) tip_alpha: Option<f32>,
    /// Tip-Adapter: the affinity's sharpness β (default: searched). (Old name: --beta-cache.)
    #[arg(long, alias = "beta-cache")]
    pub(crate) tip_beta: Option<f32>,
    /// CoOp: learnt context tokens.
    #[arg(long, default_value_t = 4)]
    pub(crate) context_tokens: usize,
    /// Fine-tune: how many of the image tower's last blocks train.
    #[arg(long, default_value_t = 2)]
    pub(crate) finetune_blocks: usize,
    /// Fine-tune: λ in λ·contrastive + (1 − λ)·cross-entropy.
    #[arg(long, default_value_t = 0.5)]
    pub(crate) contrastive_weight: f32,
    /// How the weights are stepped: lbfgs (the probes' default: to the convex optimum), adam
    /// (every other head's default), or gradient-descent (plain full-batch steps). A probe under
    /// adam or gradient-descent trains with a fixed per-image penalty (--penalty, LP+text's
    /// --text-weight) and no search: what each round of federated training runs.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Optimizer::NAMES))]
    pub(crate) optimizer: Option<String>,
    /// Linear probe under adam or gradient-descent: λ in `mean cross-entropy + λ‖W‖²`, the same
    /// for any number of images (default 0.001; or from --c on this set's size).
    #[arg(long)]
    pub(crate) penalty: Option<f32>,
    /// Keep the learning rate constant over the epochs instead of decaying it (cosine): epochs
    /// split over federated rounds then add up to the same training.
    #[arg(long)]
    pub(crate) constant_learning_rate: bool,
    /// Train the softmax over only the classes these images have: a federated site lacking a
    /// class leaves that class to the sites that have it instead of learning it never occurs
    /// (FedRS's restricted softmax). Linear probe, LP+text, CoOp.
    #[arg(long)]
    pub(crate) present_classes_only: bool,
    /// FedProx's μ: adds `μ/2·‖θ − θ₀‖²` around the starting weights (--init); probes and CoOp.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) proximal_mu: f32,
}

impl HeadSettingsArgs {
    pub(crate) fn settings(&self, kind: HeadKind) -> HeadSettings {
        HeadSettings {
            holdout: self.holdout,
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            patience: self.patience,
            weight_decay: self.weight_decay,
            c: self.c,
            c_grid: self.c_grid.clone(),
            text_weight: self.text_weight,
            text_weight_grid: self.text_weight_grid.clone(),
            tip_alpha: self.tip_alpha,
            tip_beta: self.tip_beta,
            context_tokens: self.context_tokens,
            finetune_blocks: self.finetune_blocks,
            contrastive_weight: self.contrastive_weight,
            optimizer: self.optimizer.as_deref().and_then(Optimizer::parse),
            penalty: self.penalty,
            constant_learning_rate: self.constant_learning_rate,
            present_classes_only: self.present_classes_only,
            proximal_mu: self.proximal_mu,
            ..HeadSettings::new(kind)
        }
    }
}

/// SAM 2 as the source of masks (train, predict, eval).
#[derive(clap::Args)]
pub(crate) struct Sam2Args {
    /// SAM 2 weights (`.pt` or burnpack): each image's region is the largest automatic mask
    /// that is not background.
    #[arg(long)]
    pub(crate) sam2: Option<PathBuf>,
    /// Config JSON for SAM 2 weights that are not a published model.
    #[arg(long)]
    pub(crate) sam2_config: Option<PathBuf>,
    /// Automatic-mask grid points per side (SAM 2; default 32, or what the head recorded).
    #[arg(long)]
    pub(crate) points_per_side: Option<usize>,
    /// Automatic masks: keep those whose predicted IoU exceeds this (SAM 2; default 0.8, or what
    /// the head recorded).
    #[arg(long)]
    pub(crate) pred_iou_thresh: Option<f32>,
    /// Automatic masks: keep those whose stability score reaches this (SAM 2; default 0.95, or
    /// what the head recorded).
    #[arg(long)]
    pub(crate) stability_thresh: Option<f32>,
}

impl Sam2Args {
    /// The segmenter, if `--sam2` was given, identified for the embedding cache and the head
    /// file by its weights' hash and grid.
    pub(crate) fn segmenter(
        &self,
        chosen: &ChosenDevice,
    ) -> Result<Option<Segmenter>, Box<dyn Error>> {
        let Some(path) = &self.sam2 else {
            return Ok(None);
        };
        let defaults = GeneratorSettings::default();
        for (flag, value) in [
            ("--pred-iou-thresh", self.pred_iou_thresh),
            ("--stability-thresh", self.stability_thresh),
        ] {
            if let Some(value) = value
                && !(0.0..=1.0).contains(&value)
            {
                return Err(format!("{flag} {value} is outside [0, 1]").into());
            }
        }
        let settings = GeneratorSettings {
            points_per_side: self.points_per_side.unwrap_or(defaults.points_per_side),
            pred_iou_thresh: self.pred_iou_thresh.unwrap_or(defaults.pred_iou_thresh),
            stability_score_thresh: self
                .stability_thresh
                .unwrap_or(defaults.stability_score_thresh),
            ..defaults
        };
        settings.check()?;
        Ok(Some(load_segmenter(
            path,
            self.sam2_config.as_deref(),
            settings,
            chosen,
        )?))
    }
}

pub(crate) fn read_sam2_config(path: Option<&Path>) -> Result<Option<Sam2Config>, String> {
    path.map(Sam2Config::read_file).transpose()
}

/// SAM 2 weights as a [`Segmenter`] running `settings` for automatic masks.
pub(crate) fn load_segmenter(
    path: &Path,
    config: Option<&Path>,
    settings: GeneratorSettings,
    chosen: &ChosenDevice,
) -> Result<Segmenter, Box<dyn Error>> {
    let config = read_sam2_config(config)?;
    // Streamed: the weights (156 MB for SAM 2.1 tiny) are not held twice while the model loads.
    let hash = sha256_file(path)?;
    let (model, _) = Sam2Model::load_file(path, config.as_ref(), &chosen.device)?;
    // The identity keys cached embeddings and names the masks in head files: everything that
    // changes which mask is found is in it (thresholds only when not the defaults, so that
    // earlier caches stay valid).
    let defaults = GeneratorSettings::default();
    let mut identity = format!(
        "sam2 {hash} ({}), automatic {}×{} grid, largest region",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        settings.points_per_side,
        settings.points_per_side
    );
    if settings.pred_iou_thresh != defaults.pred_iou_thresh
        || settings.stability_score_thresh != defaults.stability_score_thresh
    {
        identity.push_str(&format!(
            ", IoU > {}, stability ≥ {}",
            settings.pred_iou_thresh, settings.stability_score_thresh
        ));
    }
    Ok(Segmenter::new(
        Sam2Predictor::new(model),
        settings,
        identity,
    ))
}

/// A model folder's name, as a head file records it.
pub(crate) fn model_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}

/// Where masks come from (train and eval alike).
#[derive(clap::Args)]
pub(crate) struct MaskArgs {
    /// Where masks come from for a focus other than none: `sam2` (SAM 2's automatic masks; the
    /// default when --sam2 is given), `gt` or `oracle` (the set's own ground-truth masks, such as
    /// BUSI's `<name>_mask.png`: the upper bound of focus), or a folder of mask images laid out
    /// like the set (`<folder>/<path inside the set>.png`, e.g. `masks/<class>/<image name>.png`;
    /// white = region; `./gt` for a folder named gt).
    #[arg(long)]
    pub(crate) masks: Option<String>,
}

impl MaskArgs {
    pub(crate) fn choice(&self, sam2: &Sam2Args) -> Result<MaskChoice, String> {
        MaskChoice::parse(self.masks.as_deref(), sam2.sam2.is_some())
    }
}

/// The embedding cache (train, eval, head score).
#[derive(clap::Args)]
pub(crate) struct CacheArgs {
    /// Embedding cache folder (default: $MEDFOCUS_EMBEDDINGS or ~/.cache/medfocus/embeddings).
    #[arg(long)]
    pub(crate) cache: Option<PathBuf>,
    /// Compute every embedding afresh and store none.
    #[arg(long)]
    pub(crate) no_cache: bool,
}

impl CacheArgs {
    /// The cache these flags ask for; `None` with `--no-cache`.
    pub(crate) fn embedding_cache(&self) -> Option<EmbeddingCache> {
        (!self.no_cache)
            .then(|| EmbeddingCache::new(self.cache.clone().unwrap_or_else(default_dir)))
    }
}

impl MaskChoice {
    /// SAM 2 loaded (`--sam2` and its settings) when the masks are SAM 2's, else none.
    pub(crate) fn segmenter(
        &self,
        sam2: &Sam2Args,
        chosen: &ChosenDevice,
    ) -> Result<Option<Segmenter>, Box<dyn Error>> {
        match self {
            MaskChoice::Sam2 => sam2.segmenter(chosen),
            _ => Ok(None),
        }
    }
}

/// Where each image's mask comes from, for the embedder: `choice` with the SAM 2 segmenter
/// (loaded by the caller when `choice` is SAM 2).
pub(crate) fn support_masks<'a>(
    choice: MaskChoice,
    set: &Dataset,
    segmenter: &'a Option<Segmenter>,
) -> SupportMasks<'a> {
    match (choice, segmenter) {
        (MaskChoice::Folder(dir), _) => SupportMasks::Folder(dir),
        (MaskChoice::GroundTruth, _) => SupportMasks::GroundTruth(set.ground_truth_masks()),
        (MaskChoice::Sam2, Some(segmenter)) => SupportMasks::Sam2(segmenter),
        _ => SupportMasks::None,
    }
}

/// `--masks` (train and eval alike), read with `--sam2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MaskChoice {
    None,
    Sam2,
    GroundTruth,
    Folder(PathBuf),
}

impl MaskChoice {
    /// Refuses `--masks gt` for a set (read from `data`) without ground-truth masks.
    pub(crate) fn check_set(&self, set: &Dataset, data: &Path) -> Result<(), String> {
        if *self == MaskChoice::GroundTruth && set.masked() == 0 {
            return Err(format!(
                "--masks gt: {} has no ground-truth masks (<image name>_mask.png beside the images)",
                data.display()
            ));
        }
        Ok(())
    }

    pub(crate) fn parse(masks: Option<&str>, have_sam2: bool) -> Result<Self, String> {
        match (masks, have_sam2) {
            (None, false) => Ok(MaskChoice::None),
            (None | Some("sam2"), true) => Ok(MaskChoice::Sam2),
            (Some("sam2"), false) => {
                Err("--masks sam2 needs SAM 2 weights: --sam2 <weights>".into())
            }
            (Some("gt" | "oracle"), false) => Ok(MaskChoice::GroundTruth),
            (Some(_), true) => Err(
                "--masks and --sam2: give one mask source (--masks sam2 with --sam2 weights)"
                    .into(),
            ),
            (Some(dir), false) => {
                let dir = PathBuf::from(dir);
                if dir.is_dir() {
                    Ok(MaskChoice::Folder(dir))
                } else {
                    Err(format!(
                        "--masks {}: not sam2, gt or a folder",
                        dir.display()
                    ))
                }
            }
        }
    }
}
