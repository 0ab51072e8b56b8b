//! The `medfocus` command line: argument parsing and printing, one file per subcommand; the
//! work is the library's (`medfocus::pipeline` for everything from an image to an answer).

mod classify;
mod devices;
mod eval;
mod inspect;
mod predict;
mod segment;
mod train;
mod weights;

use std::error::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use medfocus::device::{ChosenDevice, DeviceRequest};
use medfocus::fetch::sha256_file;
use medfocus::focus::FocusSettings;
use medfocus::heads::HeadKind;
use medfocus::heads::train::HeadSettings;
use medfocus::pipeline::{Prediction, Region, Segmenter};
use medfocus::sam2::automatic_mask_generator::GeneratorSettings;
use medfocus::sam2::{Sam2Config, Sam2Model, Sam2Predictor};

type CliResult = Result<ExitCode, Box<dyn Error>>;

#[derive(Parser)]
#[command(
    name = "medfocus",
    version,
    about = "Few-shot medical image classification, on your machine"
)]
struct Cli {
    /// Compute device: auto (a hardware GPU, else the CPU backend), cpu, or gpu (any wgpu
    /// adapter, even a software one).
    #[arg(long, global = true, default_value = "auto")]
    device: DeviceRequest,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters, show which device would be used and why.
    Devices {
        /// Also run a small computation on the chosen device and compare it with a reference.
        #[arg(long)]
        check: bool,
    },
    /// Decode images (files, or a folder with one sub-folder per class) and describe them.
    Inspect {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Zero-shot classification with a CLIP model folder (open_clip, BiomedCLIP or Hugging
    /// Face layout), optionally steered by a mask.
    Classify(classify::ClassifyArgs),
    /// Segment an image with SAM 2: from points, a box, or automatically; writes the mask
    /// and an overlay PNG.
    Segment(segment::SegmentArgs),
    /// Train a support head on a folder with one sub-folder of images per class; writes a
    /// head file (`.mfh`) that `predict` and the browser page use.
    Train(Box<train::TrainArgs>),
    /// Classify images with a trained head file.
    Predict(predict::PredictArgs),
    /// Evaluate heads × focus methods on a data set under the paper's protocol (fractions of the
    /// training split) or the K-shot one, over seeds; writes a report folder.
    Eval(Box<eval::EvalArgs>),
    /// Model weights: list the known models, or download one into the cache.
    Weights {
        #[command(subcommand)]
        action: weights::WeightsAction,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let mut out = io::stdout().lock();
    let result = match cli.command {
        Command::Devices { check } => devices::run(&mut out, cli.device, check),
        Command::Inspect { paths } => inspect::run(&mut out, &paths),
        Command::Classify(args) => classify::run(&mut out, cli.device, &args),
        Command::Segment(args) => segment::run(&mut out, cli.device, &args),
        Command::Train(args) => train::run(&mut out, cli.device, &args),
        Command::Predict(args) => predict::run(&mut out, cli.device, &args),
        Command::Eval(args) => eval::run(&mut out, cli.device, &args),
        Command::Weights { action } => weights::run(&mut out, action),
    };
    match result {
        Ok(code) => code,
        // `medfocus … | head` closing the pipe early is not a failure.
        Err(error)
            if error
                .downcast_ref::<io::Error>()
                .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Every focus method's knobs (classify, train).
#[derive(clap::Args)]
struct FocusArgs {
    /// Overlay opacity inside the mask (focus overlay).
    #[arg(long, default_value_t = FocusSettings::default().alpha)]
    alpha: f32,
    /// Blur σ in pixels (focus blur).
    #[arg(long, default_value_t = FocusSettings::default().sigma)]
    sigma: f32,
    /// Margin around the mask's box, as a fraction of its size (focus crop).
    #[arg(long, default_value_t = FocusSettings::default().margin)]
    margin: f32,
    /// Attention bias strength (focus attention); 0 is plain CLIP.
    #[arg(long, default_value_t = FocusSettings::default().strength)]
    strength: f32,
    /// Bias only the last N blocks (focus attention; default all).
    #[arg(long)]
    last_layers: Option<usize>,
    /// Bias every token's attention, not just the class token's (focus attention).
    #[arg(long)]
    all_tokens: bool,
}

impl FocusArgs {
    fn settings(&self) -> FocusSettings {
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

/// Every head kind's hyper-parameters (train, eval).
#[derive(clap::Args)]
struct HeadSettingsArgs {
    /// Fraction of each class held out to choose hyper-parameters and stop early.
    #[arg(long, default_value_t = 0.25)]
    holdout: f32,
    /// Epochs (gradient heads) or L-BFGS iterations (linear probes).
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    learning_rate: Option<f32>,
    /// Early stopping: epochs without a better held-out loss (0: off).
    #[arg(long, default_value_t = 20)]
    patience: usize,
    /// Decoupled weight decay (AdamW) for the gradient-trained heads.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Linear probe: inverse regularisation strength, as scikit-learn's C (default: searched).
    #[arg(long)]
    c: Option<f32>,
    /// Linear probe: the C values searched on the held-out images.
    #[arg(long, value_delimiter = ',', default_values_t = HeadSettings::new(HeadKind::LinearProbe).c_grid)]
    c_grid: Vec<f32>,
    /// LP+text: weight of the pull towards the text embeddings (default: searched).
    #[arg(long)]
    text_weight: Option<f32>,
    /// LP+text: the weights searched on the held-out images.
    #[arg(long, value_delimiter = ',', default_values_t = HeadSettings::new(HeadKind::LpText).text_weight_grid)]
    text_weight_grid: Vec<f32>,
    /// Tip-Adapter: the cache logits' weight α (default: searched). (Old name: --alpha-cache.)
    #[arg(long, alias = "alpha-cache")]
    tip_alpha: Option<f32>,
    /// Tip-Adapter: the affinity's sharpness β (default: searched). (Old name: --beta-cache.)
    #[arg(long, alias = "beta-cache")]
    tip_beta: Option<f32>,
    /// CoOp: learnt context tokens.
    #[arg(long, default_value_t = 4)]
    context_tokens: usize,
    /// Fine-tune: how many of the image tower's last blocks train.
    #[arg(long, default_value_t = 2)]
    finetune_blocks: usize,
    /// Fine-tune: λ in λ·contrastive + (1 − λ)·cross-entropy.
    #[arg(long, default_value_t = 0.5)]
    contrastive_weight: f32,
}

impl HeadSettingsArgs {
    fn settings(&self, kind: HeadKind) -> HeadSettings {
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
            ..HeadSettings::new(kind)
        }
    }
}

/// SAM 2 as the source of masks (train, predict, eval).
#[derive(clap::Args)]
struct Sam2Args {
    /// SAM 2 weights (`.pt` or burnpack): each image's region is the largest automatic mask
    /// that is not background.
    #[arg(long)]
    sam2: Option<PathBuf>,
    /// Config JSON for SAM 2 weights that are not a published model.
    #[arg(long)]
    sam2_config: Option<PathBuf>,
    /// Automatic-mask grid points per side (SAM 2; default 32, or what the head recorded).
    #[arg(long)]
    points_per_side: Option<usize>,
    /// Automatic masks: keep those whose predicted IoU exceeds this (SAM 2; default 0.8, or what
    /// the head recorded).
    #[arg(long)]
    pred_iou_thresh: Option<f32>,
    /// Automatic masks: keep those whose stability score reaches this (SAM 2; default 0.95, or
    /// what the head recorded).
    #[arg(long)]
    stability_thresh: Option<f32>,
}

impl Sam2Args {
    /// The segmenter, if `--sam2` was given, identified for the embedding cache and the head
    /// file by its weights' hash and grid.
    fn segmenter(&self, chosen: &ChosenDevice) -> Result<Option<Segmenter>, Box<dyn Error>> {
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
        Ok(Some(load_segmenter(
            path,
            self.sam2_config.as_deref(),
            settings,
            chosen,
        )?))
    }
}

fn read_sam2_config(path: Option<&Path>) -> Result<Option<Sam2Config>, String> {
    path.map(Sam2Config::read_file).transpose()
}

/// SAM 2 weights as a [`Segmenter`] running `settings` for automatic masks.
fn load_segmenter(
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

/// Each image's classes ranked by probability (or one JSON object per image); failures go to
/// stderr, and make the exit status a failure, after the other images are done.
fn print_results<E: std::fmt::Display>(
    out: &mut impl Write,
    classes: &[String],
    images: &[PathBuf],
    results: Vec<Result<Prediction, E>>,
    json: bool,
) -> CliResult {
    let width = classes
        .iter()
        .map(|class| class.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut failures = 0usize;
    for (path, result) in images.iter().zip(results) {
        if let Ok(Prediction {
            region:
                Some(Region {
                    warning: Some(warning),
                    ..
                }),
            ..
        }) = &result
        {
            eprintln!("{}: {warning}", path.display());
        }
        match result {
            Ok(prediction) if json => {
                let mut line = serde_json::json!({
                    "image": path.display().to_string(),
                    "classes": classes,
                    "probabilities": prediction.probabilities,
                });
                // What the image was focused on, when the focus uses a region.
                if let Some(region) = &prediction.region {
                    line["region"] = serde_json::json!({
                        "origin": region.origin.name(),
                        "coverage": region.coverage,
                    });
                }
                writeln!(out, "{line}")?;
            }
            Ok(prediction) => {
                writeln!(out, "\n{}", path.display())?;
                if let Some(region) = &prediction.region {
                    writeln!(
                        out,
                        "  region: {}, {:.1} % of the image",
                        region.origin.name(),
                        region.coverage * 100.0
                    )?;
                }
                let mut ranked: Vec<(usize, f32)> =
                    prediction.probabilities.into_iter().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
                for (rank, (class, probability)) in ranked.iter().enumerate() {
                    let marker = if rank == 0 { "→" } else { " " };
                    writeln!(
                        out,
                        "  {marker} {:<width$}  {:6.2} %",
                        classes[*class],
                        probability * 100.0
                    )?;
                }
            }
            Err(error) => {
                failures += 1;
                eprintln!("{}: error: {error}", path.display());
            }
        }
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A model folder's name, as a head file records it.
fn model_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}
