//! `medfocus classify`: zero-shot classification, optionally focused on a box or a mask image.

use std::io::Write;
use std::path::PathBuf;

use medfocus::clip::ZeroShotClassifier;
use medfocus::clip::load::load_clip_dir;
use medfocus::device::{self, DeviceRequest};
use medfocus::focus;
use medfocus::pipeline::files::read;
use medfocus::pipeline::{MaskSource, Pipeline, parse_pixel_box};

use super::args::{CliResult, ExplainArgs, FocusArgs};
use super::output::{answer_files, print_results};

#[derive(clap::Args)]
pub struct ClassifyArgs {
    /// Model folder, as downloaded (see `medfocus weights`).
    #[arg(long)]
    model: PathBuf,
    /// Class names, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    classes: Vec<String>,
    /// Prompt templates with `{}` for the class name, separated by `|` (default: medical templates).
    #[arg(long, value_delimiter = '|')]
    templates: Vec<String>,
    /// Mask image (white = region of interest), same size as each image.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// Region of interest as a box `left,top,right,bottom` in pixels, instead of a mask image.
    #[arg(
        long = "box",
        value_name = "LEFT,TOP,RIGHT,BOTTOM",
        conflicts_with = "mask"
    )]
    region: Option<String>,
    /// How the mask steers CLIP.
    #[arg(long, default_value = "none", value_parser = clap::builder::PossibleValuesParser::new(focus::METHODS))]
    focus: String,
    #[command(flatten)]
    focus_settings: FocusArgs,
    #[command(flatten)]
    explain: ExplainArgs,
    /// One JSON object per image (`{"image", "classes", "probabilities"}`) instead of a table.
    #[arg(long)]
    json: bool,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

impl ClassifyArgs {
    fn mask_source(&self) -> Result<MaskSource, String> {
        Ok(match (&self.mask, &self.region) {
            (Some(path), _) => MaskSource::MaskImage(read(path).map_err(|e| e.to_string())?),
            (None, Some(region)) => MaskSource::Box(parse_pixel_box(region, "--box")?),
            (None, None) => MaskSource::None,
        })
    }
}

pub fn run(out: &mut impl Write, request: DeviceRequest, args: &ClassifyArgs) -> CliResult {
    let source = args.mask_source()?;
    let chosen = device::choose_device_blocking(request)?;
    let clip = load_clip_dir(&args.model, &chosen.device)?;
    let classifier = ZeroShotClassifier::new(&clip, &args.classes, &args.templates)?;
    let pipeline = Pipeline::zero_shot(
        &clip,
        &classifier,
        &args.focus,
        &args.focus_settings.settings(),
    )?;
    pipeline
        .encoder
        .require_region(!source.is_none(), "give --mask or --box")?;
    if !args.json {
        writeln!(
            out,
            "model: {} ({}), device: {}",
            args.model.display(),
            clip.family,
            chosen.report.summary()
        )?;
    }
    let results = answer_files(&pipeline, &args.images, &source, &args.explain)?;
    print_results(out, pipeline.classes(), &args.images, results, args.json)
}
