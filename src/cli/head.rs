//! `medfocus head`: a head's trainable weights as NumPy arrays, out and back in exactly — what a
//! federated client sends and a server averages (`heads::arrays`); a head from the class prompts
//! alone (a federated server's start, `heads::train::from_prompts`); a head's figures on a data
//! set (`eval::score`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use medfocus::clip::load::load_clip_dir;
use medfocus::dataset::{Dataset, SplitName};
use medfocus::device::{self, DeviceRequest};
use medfocus::eval::score::{ScoreRequest, score_head};
use medfocus::focus::{self, FocusMode};
use medfocus::heads::arrays::{federated_tensors, read_npz_file, with_arrays, write_npz};
use medfocus::heads::train::from_dataset::focus_with_masks;
use medfocus::heads::train::from_prompts::{PromptsRequest, head_from_prompts};
use medfocus::heads::train::support::SupportMasks;
use medfocus::heads::{HeadFile, HeadKind};
use medfocus::pipeline::files::write_atomic;

use super::args::{
    CacheArgs, CliResult, FocusArgs, MaskArgs, MaskChoice, Sam2Args, model_name, support_masks,
};

#[derive(Subcommand)]
pub enum HeadAction {
    /// Write a head's trainable weights as an .npz of float32 arrays, one per tensor
    /// (`numpy.load(path)["linear.weight"]`): linear probe and LP+text (`linear.weight`,
    /// `linear.bias`), CoOp (`coop.context`). Tip-Adapter(-F) is refused: its cache keys are the
    /// training images' embeddings.
    ExportArrays {
        /// The head file.
        #[arg(long)]
        head: PathBuf,
        /// The .npz to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a copy of a head with its trainable weights taken from an .npz (the same names and
    /// shapes `export-arrays` writes); everything else — classes, CLIP model, focus — stays.
    ImportArrays {
        /// The head file whose weights are replaced.
        #[arg(long)]
        head: PathBuf,
        /// The .npz of new weights.
        #[arg(long)]
        arrays: PathBuf,
        /// The CLIP model folder the head was trained with: a CoOp head's class texts are
        /// recomputed from the new context through its text tower.
        #[arg(long)]
        model: Option<PathBuf>,
        /// The head file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write an untrained head from the class prompts alone (no image): a linear probe or LP+text
    /// holding the zero-shot prior as its weights (it answers as zero-shot until trained), CoOp
    /// with its seeded context, or the zero-shot head. A federated run starts from it.
    FromPrompts(Box<FromPromptsArgs>),
    /// Score a head on a data set's images (a split of it): accuracy, balanced accuracy,
    /// macro-F1, AUROC and the rest of the evaluation's figures. Each image is embedded as the
    /// head was trained (its focus, through the embedding cache).
    Score(Box<ScoreArgs>),
}

#[derive(clap::Args)]
pub struct FromPromptsArgs {
    /// Head kind: zero-shot, linear-probe, lp-text or coop.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["zero-shot", "linear-probe", "lp-text", "coop"]))]
    kind: String,
    /// CLIP model folder (see `medfocus weights`).
    #[arg(long)]
    model: PathBuf,
    /// The class names, comma-separated, in the head's order (as a data set's folder names).
    #[arg(long, value_delimiter = ',', required = true)]
    classes: Vec<String>,
    /// The words the text prompts use for each class, comma-separated (default: the names).
    #[arg(long, value_delimiter = ',')]
    class_names: Option<Vec<String>>,
    /// Prompt templates with `{}` for the class name, separated by `|` (default: medical templates).
    #[arg(long, value_delimiter = '|')]
    templates: Vec<String>,
    /// How the heads trained from this one focus (as `train --focus`), recorded for `predict`.
    #[arg(long, default_value = "none", value_parser = clap::builder::PossibleValuesParser::new(focus::METHODS))]
    focus: String,
    #[command(flatten)]
    focus_settings: FocusArgs,
    #[command(flatten)]
    masks: MaskArgs,
    #[command(flatten)]
    sam2: Sam2Args,
    /// CoOp: learnt context tokens.
    #[arg(long, default_value_t = 4)]
    context_tokens: usize,
    /// CoOp: the seed of its starting context.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The head file to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct ScoreArgs {
    /// The head file.
    #[arg(long)]
    head: PathBuf,
    /// The CLIP model folder the head was trained with.
    #[arg(long)]
    model: PathBuf,
    /// The labelled images, in any layout `train --data` reads; their classes must be among the
    /// head's.
    #[arg(long)]
    data: PathBuf,
    /// The folder a split file's or CSV's paths are relative to (default: found beside it).
    #[arg(long)]
    images: Option<PathBuf>,
    /// The split scored: train, val, test, or all. Default: test when the set has one, else all.
    #[arg(long, value_parser = ["train", "val", "test", "all"])]
    split: Option<String>,
    #[command(flatten)]
    masks: MaskArgs,
    #[command(flatten)]
    sam2: Sam2Args,
    #[command(flatten)]
    cache: CacheArgs,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(out: &mut impl Write, request: DeviceRequest, action: HeadAction) -> CliResult {
    match action {
        HeadAction::FromPrompts(args) => return from_prompts(out, request, &args),
        HeadAction::Score(args) => return score(out, request, &args),
        HeadAction::ExportArrays { head, out: path } => {
            let file = HeadFile::read(&head)?;
            write_atomic(&path, &write_npz(&file)?)?;
            let names = federated_tensors(file.header.kind)?;
            let shapes: Vec<String> = names
                .iter()
                .map(|name| format!("{name} {:?}", file.tensors[*name].shape))
                .collect();
            writeln!(out, "{}: {}", path.display(), shapes.join(", "))?;
        }
        HeadAction::ImportArrays {
            head,
            arrays,
            model,
            out: path,
        } => {
            let file = HeadFile::read(&head)?;
            let arrays = read_npz_file(&arrays)?;
            let clip = match &model {
                Some(folder) => Some(load_clip_dir(folder, &burn::tensor::Device::flex())?),
                None => None,
            };
            let updated = with_arrays(&file, arrays, clip.as_ref())?;
            updated.write(&path)?;
            writeln!(out, "{}", path.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn from_prompts(out: &mut impl Write, request: DeviceRequest, args: &FromPromptsArgs) -> CliResult {
    let kind = HeadKind::parse(&args.kind).ok_or_else(|| format!("unknown head {}", args.kind))?;
    let source = args.masks.choice(&args.sam2)?;
    let chosen = device::choose_device_blocking(request)?;
    let clip = load_clip_dir(&args.model, &chosen.device)?;
    let segmenter = source.segmenter(&args.sam2, &chosen)?;
    // No images here: the masks are only described, as the heads trained from this one will be.
    let masks = match (source, &segmenter) {
        (MaskChoice::Folder(dir), _) => SupportMasks::Folder(dir),
        (MaskChoice::GroundTruth, _) => SupportMasks::GroundTruth(Default::default()),
        (MaskChoice::Sam2, Some(segmenter)) => SupportMasks::Sam2(segmenter),
        _ => SupportMasks::None,
    };
    let focus = FocusMode::new(&args.focus, args.focus_settings.settings());
    let head = head_from_prompts(PromptsRequest {
        kind,
        clip: &clip,
        clip_name: model_name(&args.model),
        classes: args.classes.clone(),
        class_names: args.class_names.clone(),
        templates: args.templates.clone(),
        focus: focus_with_masks(&focus, &masks),
        seed: args.seed,
        context_tokens: args.context_tokens,
    })?;
    head.write(&args.out)?;
    writeln!(
        out,
        "{} head for {} classes ({}) from the prompts alone: wrote {}",
        kind.name(),
        head.header.classes.len(),
        head.header.classes.join(", "),
        args.out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn score(out: &mut impl Write, request: DeviceRequest, args: &ScoreArgs) -> CliResult {
    let head = HeadFile::read(&args.head)?;
    let source = args.masks.choice(&args.sam2)?;
    let set =
        Dataset::open(&args.data, args.images.as_deref())?.with_classes(&head.header.classes)?;
    source.check_set(&set, &args.data)?;
    let split = match args.split.as_deref() {
        None if set.has_test_split() => Some(SplitName::Test),
        None | Some("all") => None,
        Some(name) => SplitName::parse(name),
    };
    let chosen = device::choose_device_blocking(request)?;
    let clip = load_clip_dir(&args.model, &chosen.device)?;
    let segmenter = source.segmenter(&args.sam2, &chosen)?;
    let cache = args.cache.embedding_cache();
    let scored = score_head(
        ScoreRequest {
            data: &set,
            split,
            clip: &clip,
            head: &head,
            masks: support_masks(source, &set, &segmenter),
            cache,
            device: chosen.device.clone(),
        },
        &mut |_, _| {},
    )?;
    for line in &scored.skipped {
        eprintln!("skipped {line}");
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&scored)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let metrics = &scored.metrics;
    writeln!(
        out,
        "{} images ({} split): accuracy {:.3}, balanced accuracy {:.3}, macro-F1 {:.3}, AUROC {}",
        scored.images,
        split.map_or("every", SplitName::name),
        metrics.accuracy,
        metrics.balanced_accuracy,
        metrics.macro_f1,
        metrics.auroc.map_or(
            "undefined (one class present)".to_string(),
            |auroc| format!("{auroc:.3}")
        )
    )?;
    Ok(ExitCode::SUCCESS)
}
