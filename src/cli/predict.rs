//! `medfocus predict`: class probabilities from a trained head, focused as it was trained.

use std::io::Write;
use std::path::PathBuf;

use medfocus::clip::load::load_clip_dir;
use medfocus::device::{self, DeviceRequest};
use medfocus::heads::{HeadFile, HeadModel};
use medfocus::pipeline::MaskSource;
use medfocus::pipeline::files::read;
use medfocus::sam2::automatic_mask_generator::MaskChoice;

use super::args::{CliResult, ExplainArgs, Sam2Args};
use super::output::{answer_files, print_results};

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A head file from `medfocus train`.
    #[arg(long)]
    head: PathBuf,
    /// The CLIP model folder the head was trained with.
    #[arg(long)]
    model: PathBuf,
    /// Mask image for the (single) image, when the head's focus needs a region.
    #[arg(long, conflicts_with = "sam2")]
    mask: Option<PathBuf>,
    #[command(flatten)]
    sam2: Sam2Args,
    #[command(flatten)]
    explain: ExplainArgs,
    /// One JSON object per image (`{"image", "classes", "probabilities"}`) instead of a table.
    #[arg(long)]
    json: bool,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(out: &mut impl Write, request: DeviceRequest, args: &PredictArgs) -> CliResult {
    let file = HeadFile::read(&args.head)?;
    if args.mask.is_some() && args.images.len() > 1 {
        return Err("--mask is one image's mask: give one image, or --sam2 for many".into());
    }
    let chosen = device::choose_device_blocking(request)?;
    let clip = load_clip_dir(&args.model, &chosen.device)?;
    let head = HeadModel::new(&file, &chosen.device);
    let mut pipeline = head.pipeline(&clip)?;
    pipeline.encoder.require_region(
        args.mask.is_some() || args.sam2.sam2.is_some(),
        "give --mask or --sam2",
    )?;
    let segmenter = match (&args.mask, pipeline.encoder.needs_region()) {
        (None, true) => args.sam2.segmenter(&chosen)?,
        _ => None,
    };
    if let Some(segmenter) = &segmenter {
        pipeline = pipeline.with_segmenter(segmenter);
        // Settings given on the command line win over the ones the head recorded.
        let mut settings = pipeline.encoder.automatic_settings();
        settings.points_per_side = args
            .sam2
            .points_per_side
            .unwrap_or(settings.points_per_side);
        settings.pred_iou_thresh = args
            .sam2
            .pred_iou_thresh
            .unwrap_or(settings.pred_iou_thresh);
        settings.stability_score_thresh = args
            .sam2
            .stability_thresh
            .unwrap_or(settings.stability_score_thresh);
        pipeline.encoder = pipeline.encoder.with_automatic(settings);
    }
    let source = match (&args.mask, &segmenter) {
        (Some(mask), _) => MaskSource::MaskImage(read(mask)?),
        (None, Some(_)) => MaskSource::Sam2Automatic(MaskChoice::Largest),
        (None, None) => MaskSource::None,
    };
    let results = answer_files(&pipeline, &args.images, &source, &args.explain)?;
    print_results(out, pipeline.classes(), &args.images, results, args.json)
}
