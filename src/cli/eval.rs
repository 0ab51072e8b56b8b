//! `medfocus eval`: heads × focus methods × protocol points × seeds on one data set, with a
//! progress bar per stage; writes the report folder (see `medfocus::eval::report`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use medfocus::clip::load::load_clip_dir;
use medfocus::dataset::Dataset;
use medfocus::device::{self, DeviceRequest};
use medfocus::eval::protocol::{Pools, draw, pools};
use medfocus::eval::records::{PredictionRecord, RunRecord};
use medfocus::eval::{
    EvalError, EvalMasks, EvalObserver, EvalRequest, HashedSet, Manifest, Protocol, ReportContext,
    ReportFolder, evaluate,
};
use medfocus::explain::{self, ExplainMethod};
use medfocus::focus;
use medfocus::focus::FocusMode;
use medfocus::heads::HeadKind;
use medfocus::heads::features::class_counts;

use super::args::{
    CacheArgs, CliResult, FocusArgs, HeadSettingsArgs, MaskArgs, MaskChoice, Sam2Args, model_name,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ProtocolKind {
    /// The paper's: a fraction of each class's training images.
    Fraction,
    /// The few-shot standard: K images per class.
    #[value(alias = "shots")]
    Kshot,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The data set: a folder (one sub-folder per class, optionally inside train/val/test
    /// folders), a CoOp/Dassl `split_*.json`, or a `path,label[,split]` CSV.
    #[arg(long)]
    data: PathBuf,
    /// The folder a split file's or CSV's paths are relative to (default: found beside it).
    #[arg(long)]
    images: Option<PathBuf>,
    /// CLIP model folder (see `medfocus weights`).
    #[arg(long)]
    model: PathBuf,
    #[arg(long, value_enum, default_value = "fraction")]
    protocol: ProtocolKind,
    /// Fractions of the training split (protocol fraction).
    #[arg(long, value_delimiter = ',', default_values_t = [0.05, 0.1, 0.2, 0.5, 1.0])]
    fractions: Vec<f64>,
    /// Training images per class (protocol kshot).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8, 16])]
    shots: Vec<usize>,
    /// One run per seed for every protocol point.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3])]
    seeds: Vec<u64>,
    /// Seeds the train/val/test split of a set that has no test split of its own.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Reuse these manifests (from an earlier report's `manifests/`) instead of drawing:
    /// exactly their images, checked by content hash.
    #[arg(long = "split", value_name = "MANIFEST")]
    splits: Vec<PathBuf>,
    /// Head kinds, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = ["zero-shot".to_string(), "linear-probe".to_string(), "tip-adapter-f".to_string()], value_parser = clap::builder::PossibleValuesParser::new(HeadKind::NAMES))]
    heads: Vec<String>,
    /// Focus methods, comma-separated (as `classify --focus`); any but `none` needs --masks or
    /// --sam2. (`--prompt` is accepted too.)
    #[arg(long, alias = "prompt", value_delimiter = ',', default_values_t = ["none".to_string()], value_parser = clap::builder::PossibleValuesParser::new(focus::METHODS))]
    focus: Vec<String>,
    #[command(flatten)]
    focus_settings: FocusArgs,
    #[command(flatten)]
    masks: MaskArgs,
    #[command(flatten)]
    sam2: Sam2Args,
    /// The words the text prompts use for each class, comma-separated, in class order.
    #[arg(long, value_delimiter = ',')]
    class_names: Option<Vec<String>>,
    /// Prompt templates with `{}` for the class name, separated by `|`.
    #[arg(long, value_delimiter = '|')]
    templates: Vec<String>,
    #[command(flatten)]
    hyper: HeadSettingsArgs,
    /// Also judge where CLIP looked against the set's ground-truth masks (BUSI's): per focus,
    /// the zero-shot prediction explained by these methods, comma-separated (`relevancy`,
    /// `dense`; see `classify --explain`), the heat-map's energy inside the lesion and the
    /// pointing game in the report.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(explain::METHODS))]
    localisation: Vec<String>,
    /// The report folder.
    #[arg(long)]
    out: PathBuf,
    /// Discard the runs already recorded in --out instead of resuming.
    #[arg(long)]
    fresh: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

impl EvalArgs {
    fn protocols(&self) -> Result<Vec<Protocol>, medfocus::eval::protocol::ProtocolError> {
        match self.protocol {
            ProtocolKind::Fraction => self
                .fractions
                .iter()
                .map(|&f| Protocol::fraction(f))
                .collect(),
            ProtocolKind::Kshot => self.shots.iter().map(|&k| Protocol::shots(k)).collect(),
        }
    }
}

pub fn run(out: &mut impl Write, request: DeviceRequest, args: &EvalArgs) -> CliResult {
    let heads: Vec<HeadKind> = args
        .heads
        .iter()
        .map(|name| HeadKind::parse(name).ok_or_else(|| format!("unknown head {name}")))
        .collect::<Result<_, _>>()?;
    let focuses: Vec<FocusMode> = args
        .focus
        .iter()
        .map(|method| FocusMode::new(method, args.focus_settings.settings()))
        .collect();
    let needs_masks = focuses.iter().any(FocusMode::needs_mask);
    let source = args.masks.choice(&args.sam2)?;
    if needs_masks && source == MaskChoice::None {
        return Err("a focus other than none needs masks: give --sam2 weights, --masks gt or a --masks folder".into());
    }
    let dataset = Dataset::open(&args.data, args.images.as_deref())?;
    let bars = &mut Bars::default();
    bars.stage("hashing images", dataset.samples.len());
    let set = HashedSet::new(dataset, &mut |done, _| bars.progress(done));
    source.check_set(&set.dataset, &args.data)?;
    let pools = pools(&set.dataset, args.split_seed)?;
    let manifests: Vec<Manifest> = if args.splits.is_empty() {
        let mut drawn = Vec::new();
        for protocol in args.protocols()? {
            for &seed in &args.seeds {
                drawn.push(draw(&set, &pools, protocol, seed)?);
            }
        }
        drawn
    } else {
        args.splits
            .iter()
            .map(|path| Manifest::read(path))
            .collect::<Result<_, _>>()?
    };
    let resolved = manifests
        .iter()
        .map(|manifest| manifest.resolve(&set))
        .collect::<Result<Vec<_>, _>>()?;
    let (folder, mut runs) = ReportFolder::open(&args.out, args.fresh)?;
    for manifest in &manifests {
        folder.write_manifest(manifest)?;
    }

    let chosen = device::choose_device_blocking(request)?;
    let localisation: Vec<ExplainMethod> = args
        .localisation
        .iter()
        .map(|name| ExplainMethod::from_name(name))
        .collect::<Result<_, _>>()?;
    if !localisation.is_empty() && set.dataset.masked() == 0 {
        return Err("--localisation needs ground-truth masks: this data set has none (BUSI's `_mask` files are)".into());
    }
    let clip = load_clip_dir(&args.model, &chosen.device)?;
    let segmenter = if needs_masks {
        source.segmenter(&args.sam2, &chosen)?
    } else {
        None
    };
    let masks = match (&source, &segmenter) {
        (MaskChoice::Folder(dir), _) => EvalMasks::Folder(dir.clone()),
        (MaskChoice::GroundTruth, _) => EvalMasks::GroundTruth,
        (MaskChoice::Sam2, Some(segmenter)) => EvalMasks::Sam2(segmenter),
        _ => EvalMasks::None,
    };
    let masks_description = masks.describe();
    let started = std::time::Instant::now();
    let done = runs.iter().map(|run| run.run.clone()).collect();
    let summary = {
        let mut recorder = Recorder {
            folder: &folder,
            runs: &mut runs,
            bars,
        };
        evaluate(
            EvalRequest {
                set: &set,
                manifests: manifests.iter().cloned().zip(resolved).collect(),
                clip: &clip,
                clip_name: model_name(&args.model),
                class_names: args.class_names.clone(),
                templates: args.templates.clone(),
                heads: heads.clone(),
                focuses,
                masks,
                cache: args.cache.embedding_cache(),
                settings: args.hyper.settings(HeadKind::ZeroShot),
                device: chosen.device.clone(),
                done,
                localisation,
            },
            &mut recorder,
        )?
    };
    bars.clear();
    let mut notes: Vec<String> = Vec::new();
    for manifest in &manifests {
        for note in &manifest.notes {
            let line = format!(
                "{} seed {}: {note}",
                manifest.protocol.label(),
                manifest.seed
            );
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
    }
    let context = ReportContext {
        data: args.data.display().to_string(),
        layout: set.dataset.layout.describe(),
        classes: set.dataset.classes.clone(),
        pools: pool_counts(&set, &pools),
        // Reused manifests say where their splits came from.
        splits: manifests
            .first()
            .filter(|_| !args.splits.is_empty())
            .map_or_else(
                || pools.description.clone(),
                |manifest| manifest.splits.clone(),
            ),
        model: model_name(&args.model),
        model_fingerprint: clip.model.fingerprint.clone(),
        focuses: args.focus.clone(),
        heads: heads.iter().map(|kind| kind.name().to_string()).collect(),
        masks: masks_description,
        notes,
        unusable_images: summary.unusable_images.clone(),
        skipped_files: set.dataset.skipped.len(),
        mask_quality: summary.masks.clone(),
        localisation: summary.localisation.clone(),
        command: reproduce_command(),
    };
    folder.write_summary(&runs, &context)?;
    writeln!(
        out,
        "{} runs ({} already recorded), {} images embedded ({} from the cache), {} SAM 2 passes, {} left out, {:.1} s; report: {}",
        summary.runs,
        summary.skipped_runs,
        summary.embedded,
        summary.from_cache,
        summary.segmented,
        summary.unusable_images.len() + set.dataset.skipped.len(),
        started.elapsed().as_secs_f64(),
        folder.dir().join(medfocus::eval::report::REPORT).display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The command line that reproduces the report: as given, `medfocus` for the binary's path,
/// without `--fresh` (a rerun must not discard the runs it would reproduce).
fn reproduce_command() -> String {
    std::iter::once("medfocus".to_string())
        .chain(std::env::args().skip(1).filter(|arg| arg != "--fresh"))
        .map(|arg| {
            if arg.contains([' ', '"', '\'', '|']) {
                format!("'{}'", arg.replace('\'', "'\\''"))
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn pool_counts(set: &HashedSet, pools: &Pools) -> [Vec<usize>; 3] {
    let count = |indices: &[usize]| {
        let labels: Vec<usize> = indices
            .iter()
            .map(|&index| set.dataset.samples[index].class_index)
            .collect();
        class_counts(&labels, set.dataset.classes.len())
    };
    [count(&pools.train), count(&pools.val), count(&pools.test)]
}

/// Appends each finished run to the report folder and keeps the list for the summary.
struct Recorder<'a> {
    folder: &'a ReportFolder,
    runs: &'a mut Vec<RunRecord>,
    bars: &'a mut Bars,
}

impl EvalObserver for Recorder<'_> {
    fn stage(&mut self, name: &str, total: usize) {
        self.bars.stage(name, total);
    }

    fn progress(&mut self, done: usize) {
        self.bars.progress(done);
    }

    fn note(&mut self, text: &str) {
        self.bars.note(text);
    }

    fn finished(
        &mut self,
        record: &RunRecord,
        predictions: &[PredictionRecord],
    ) -> Result<(), EvalError> {
        self.folder.append(record, predictions)?;
        self.runs.push(record.clone());
        Ok(())
    }
}

/// One progress bar per stage, on stderr.
#[derive(Default)]
struct Bars {
    bar: Option<indicatif::ProgressBar>,
}

impl Bars {
    fn stage(&mut self, name: &str, total: usize) {
        self.clear();
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix:24} {bar:30} {pos}/{len}  {elapsed} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(name.to_string());
        self.bar = Some(bar);
    }

    fn progress(&mut self, done: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }

    fn note(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.clear();
    }
}
