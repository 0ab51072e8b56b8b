//! `medfocus train`: a support head from a labelled data set (the layouts `eval` reads), with
//! progress bars.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medfocus::clip::LoadedClip;
use medfocus::clip::load::load_clip_dir;
use medfocus::dataset::{Dataset, SplitName};
use medfocus::device::{self, DeviceRequest};
use medfocus::focus;
use medfocus::focus::FocusMode;
use medfocus::heads::arrays::{federated_tensors, read_npz_file};
use medfocus::heads::head::check_clip;
use medfocus::heads::head_file::HostTensor;
use medfocus::heads::train::{
    EpochReport, HeadSettings, Observer, TrainRequest, train_from_dataset,
};
use medfocus::heads::{HeadFile, HeadKind};

use super::args::{
    CacheArgs, CliResult, FocusArgs, HeadSettingsArgs, MaskArgs, Sam2Args, model_name,
    support_masks,
};

#[derive(clap::Args)]
pub struct TrainArgs {
    /// The labelled images, in any layout `eval --data` reads: one sub-folder per class
    /// (`data/glioma/*.jpg`), split folders above the classes (`train/`, `val/`, `test/`), a
    /// CoOp/Dassl `split_*.json`, a `path,label[,split]` CSV or a MedMNIST `.npz`. BUSI's
    /// `<name>_mask.png` files are that image's masks (`--masks gt`), never training images.
    #[arg(long)]
    data: PathBuf,
    /// The folder a split file's or CSV's paths are relative to (default: found beside it).
    #[arg(long)]
    images: Option<PathBuf>,
    /// The split to train on: train, val, test, or all (every image, whatever its split).
    /// Default: train when the set has splits, else every image.
    #[arg(long, value_parser = ["train", "val", "test", "all"])]
    train_on: Option<String>,
    /// CLIP model folder (see `medfocus weights`).
    #[arg(long)]
    model: PathBuf,
    /// Head kind.
    #[arg(long, default_value = "tip-adapter-f", value_parser = clap::builder::PossibleValuesParser::new(HeadKind::NAMES))]
    head: String,
    /// How the mask steers CLIP (as `classify --focus`); anything but `none` needs --masks or
    /// --sam2. (`--prompt` is the old name, accepted for one release.)
    #[arg(long, alias = "prompt", default_value = "none", value_parser = clap::builder::PossibleValuesParser::new(focus::METHODS))]
    focus: String,
    #[command(flatten)]
    focus_settings: FocusArgs,
    #[command(flatten)]
    masks: MaskArgs,
    #[command(flatten)]
    sam2: Sam2Args,
    /// The class list, comma-separated, in the head's order, when it is not the set's own: a
    /// federated site may lack a class the others have (default: the set's classes, sorted).
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
    /// Start from these weights instead of the kind's own start: a head file (its trainable
    /// tensors; same classes and CLIP model) or an .npz from `medfocus head export-arrays`.
    #[arg(long)]
    init: Option<PathBuf>,
    /// The words the text prompts use for each class, comma-separated, in the set's class order
    /// (sorted names; default: the names themselves).
    #[arg(long, value_delimiter = ',')]
    class_names: Option<Vec<String>>,
    /// Prompt templates with `{}` for the class name, separated by `|` (default: medical templates).
    #[arg(long, value_delimiter = '|')]
    templates: Vec<String>,
    /// The head file to write.
    #[arg(long)]
    out: PathBuf,
    /// Training checkpoint (default: `<out>.ckpt`); a run killed midway resumes from it.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Ignore (and replace) a checkpoint left by a different run.
    #[arg(long)]
    fresh: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    hyper: HeadSettingsArgs,
    #[command(flatten)]
    cache: CacheArgs,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    fn settings(&self, kind: HeadKind) -> HeadSettings {
        HeadSettings {
            seed: self.seed,
            ..self.hyper.settings(kind)
        }
    }
}

pub fn run(out: &mut impl Write, request: DeviceRequest, args: &TrainArgs) -> CliResult {
    let kind = HeadKind::parse(&args.head).ok_or_else(|| format!("unknown head {}", args.head))?;
    let source = args.masks.choice(&args.sam2)?;
    let mut set = Dataset::open(&args.data, args.images.as_deref())?;
    if let Some(classes) = &args.classes {
        set = set.with_classes(classes)?;
    }
    let split = match args.train_on.as_deref() {
        None if set.samples.iter().any(|sample| sample.split.is_some()) => Some(SplitName::Train),
        None | Some("all") => None,
        Some(name) => SplitName::parse(name),
    };
    source.check_set(&set, &args.data)?;
    let chosen = device::choose_device_blocking(request)?;
    let clip = load_clip_dir(&args.model, &chosen.device)?;
    let initial = match &args.init {
        Some(path) => Some(starting_weights(path, kind, &set.classes, &clip)?),
        None => None,
    };
    let segmenter = source.segmenter(&args.sam2, &chosen)?;
    let masks = support_masks(source, &set, &segmenter);
    let checkpoint = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| args.out.with_extension("mfh.ckpt"));
    let started = std::time::Instant::now();
    let report = train_from_dataset(
        TrainRequest {
            data: &set,
            split,
            clip: &clip,
            clip_name: model_name(&args.model),
            class_names: args.class_names.clone(),
            templates: args.templates.clone(),
            focus: FocusMode::new(&args.focus, args.focus_settings.settings()),
            masks,
            cache: args.cache.embedding_cache(),
            settings: args.settings(kind),
            initial,
            checkpoint: Some(checkpoint.clone()),
            fresh: args.fresh,
            device: chosen.device.clone(),
        },
        &mut TrainBars::default(),
    )?;
    report.head.write(&args.out)?;
    let _ = std::fs::remove_file(&checkpoint);
    let header = &report.head.header;
    if args.json {
        let line = serde_json::json!({
            "head": args.out.display().to_string(),
            "kind": header.kind.name(),
            "classes": header.classes,
            "images": report.support.images.len(),
            "from_cache": report.support.from_cache,
            "regions": report.support.regions,
            "skipped": report.support.skipped,
            "resumed": report.resumed,
            "training": header.training,
        });
        writeln!(out, "{line}")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{} head for {} classes ({}) from {} images ({} embeddings from the cache{}), device {}, {:.1} s",
        header.kind.name(),
        header.classes.len(),
        header.classes.join(", "),
        report.support.images.len(),
        report.support.from_cache,
        if report.support.skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", report.support.skipped.len())
        },
        chosen.report.summary(),
        started.elapsed().as_secs_f32()
    )?;
    if let Some(holdout) = header.training.pointer("/early_stopping/holdout") {
        writeln!(
            out,
            "held-out (loss, accuracy) at the kept epoch: {holdout}"
        )?;
    }
    // The head file's training log keeps format 1's key names (`alpha`, `beta`: Tip-Adapter's).
    for (key, label) in [
        ("C", "C"),
        ("text_weight", "text_weight"),
        ("alpha", "tip_alpha"),
        ("beta", "tip_beta"),
        ("leave_one_out_accuracy", "leave_one_out_accuracy"),
    ] {
        if let Some(value) = header.training.get(key) {
            writeln!(out, "{label}: {value}")?;
        }
    }
    writeln!(out, "wrote {}", args.out.display())?;
    Ok(ExitCode::SUCCESS)
}

/// The trainable tensors of `--init`: a head file's (same classes, same CLIP model, a kind with
/// the same tensors) or an .npz of them, bounded before it is read.
fn starting_weights(
    path: &Path,
    kind: HeadKind,
    classes: &[String],
    clip: &LoadedClip,
) -> Result<BTreeMap<String, HostTensor>, Box<dyn std::error::Error>> {
    let names = federated_tensors(kind)?;
    let is_npz = path
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("npz"));
    if is_npz {
        return Ok(read_npz_file(path)?);
    }
    let head = HeadFile::read(path)?;
    if federated_tensors(head.header.kind)? != names {
        return Err(format!(
            "--init {}: a {} head; a {} head starts from {}",
            path.display(),
            head.header.kind.name(),
            kind.name(),
            names.join(" and ")
        )
        .into());
    }
    if head.header.classes != classes {
        return Err(format!(
            "--init {}: its classes are {}, the training's {} (give --classes in its order)",
            path.display(),
            head.header.classes.join(", "),
            classes.join(", ")
        )
        .into());
    }
    check_clip(&head.header, &clip.model)?;
    Ok(names
        .iter()
        .filter_map(|name| Some((name.to_string(), head.tensors.get(*name)?.clone())))
        .collect())
}

/// Progress bars on stderr: images embedded, then one bar per training stage.
#[derive(Default)]
struct TrainBars {
    bar: Option<indicatif::ProgressBar>,
}

impl TrainBars {
    fn replace(&mut self, length: u64, template: &str) -> &indicatif::ProgressBar {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let bar = indicatif::ProgressBar::new(length);
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        self.bar.insert(bar)
    }
}

impl Observer for TrainBars {
    fn embedding(&mut self, done: usize, total: usize) {
        if self
            .bar
            .as_ref()
            .is_none_or(|bar| bar.length() != Some(total as u64))
        {
            self.replace(
                total as u64,
                "embedding {bar:30} {pos}/{len} images  {elapsed} eta {eta}",
            );
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }

    fn stage(&mut self, name: &str, epochs: usize, resumed_at: usize) {
        let bar = self.replace(epochs as u64, "{prefix:16} {bar:30} {pos}/{len} {msg}");
        bar.set_prefix(name.to_string());
        bar.set_position(resumed_at as u64);
    }

    fn epoch(&mut self, report: &EpochReport) {
        if let Some(bar) = &self.bar {
            bar.set_position(report.epoch as u64);
            let holdout = report
                .holdout
                .map(|(loss, accuracy)| {
                    format!(" | held out: loss {loss:.4} acc {:.1} %", accuracy * 100.0)
                })
                .unwrap_or_default();
            bar.set_message(format!(
                "loss {:.4} acc {:.1} %{holdout}",
                report.loss,
                report.accuracy * 100.0
            ));
        }
    }

    fn note(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Drop for TrainBars {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
