//! `medfocus segment`: a SAM 2 mask from points, a box, or automatically; writes the mask and
//! the paper's overlay.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use medfocus::device::{self, DeviceRequest};
use medfocus::focus::{self, Mask, VisualPrompt};
use medfocus::pipeline::files::read_pixels;
use medfocus::pipeline::{SegmentRequest, Segmenter, parse_pixels, sam2_prompt};
use medfocus::sam2::automatic_mask_generator::{GeneratorSettings, MaskChoice};
use medfocus::sam2::{Sam2Model, Sam2Predictor};

use super::args::{CliResult, read_sam2_config};

#[derive(clap::Args)]
pub struct SegmentArgs {
    /// SAM 2 weights: Meta's `.pt` (e.g. sam2.1_hiera_tiny.pt) or a burnpack from
    /// `medfocus weights export-sam2`.
    #[arg(long)]
    model: PathBuf,
    /// Config JSON, for a checkpoint that is not one of the published models (also
    /// `--sam2-config`, its name where `--model` is CLIP).
    #[arg(long, alias = "sam2-config")]
    config: Option<PathBuf>,
    /// A foreground point `x,y` in image pixels (repeatable). With --auto: pick the mask under it.
    #[arg(long = "point", value_name = "X,Y")]
    points: Vec<String>,
    /// A background point `x,y` (repeatable).
    #[arg(long = "background", value_name = "X,Y")]
    background: Vec<String>,
    /// A box `x0,y0,x1,y1` in image pixels.
    #[arg(long = "box", value_name = "X0,Y0,X1,Y1")]
    region: Option<String>,
    /// Automatic masks from a grid of points; the result is the largest mask that is neither
    /// (nearly) the whole image nor the background, or with --point the one under that point.
    #[arg(long, conflicts_with_all = ["region", "background"])]
    auto: bool,
    /// Grid points per side (--auto).
    #[arg(long, default_value_t = GeneratorSettings::default().points_per_side)]
    points_per_side: usize,
    /// Points decoded at once (--auto); lower it if memory is short.
    #[arg(long, default_value_t = GeneratorSettings::default().points_per_batch)]
    points_per_batch: usize,
    /// Minimum predicted IoU of a mask (--auto).
    #[arg(long, default_value_t = GeneratorSettings::default().pred_iou_thresh)]
    pred_iou_thresh: f32,
    /// Minimum stability score of a mask (--auto).
    #[arg(long, default_value_t = GeneratorSettings::default().stability_score_thresh)]
    stability_thresh: f32,
    /// Minimum mask area in pixels (--auto).
    #[arg(long, default_value_t = 0)]
    min_area: usize,
    /// One mask (SAM 2 picks it by stability) instead of the best of three candidates.
    #[arg(long)]
    single: bool,
    /// The mask PNG (white inside).
    #[arg(long)]
    out: PathBuf,
    /// The overlay PNG (default: next to --out, `<name>.overlay.png`).
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    image: PathBuf,
}

impl SegmentArgs {
    /// What SAM 2 is asked for, checked before any model is loaded.
    fn request(&self) -> Result<SegmentRequest, String> {
        let parse_all = |texts: &[String], flag: &str| -> Result<Vec<[f32; 2]>, String> {
            texts
                .iter()
                .map(|text| parse_pixels::<2>(text, flag))
                .collect()
        };
        let points = parse_all(&self.points, "--point")?;
        let background = parse_all(&self.background, "--background")?;
        let region = self
            .region
            .as_deref()
            .map(|text| parse_pixels::<4>(text, "--box"))
            .transpose()?;
        if self.auto {
            if points.len() > 1 {
                return Err(
                    "--auto takes at most one --point (the mask under it is chosen)".into(),
                );
            }
            let settings = GeneratorSettings {
                points_per_side: self.points_per_side,
                points_per_batch: self.points_per_batch,
                pred_iou_thresh: self.pred_iou_thresh,
                stability_score_thresh: self.stability_thresh,
                min_mask_region_area: self.min_area,
                ..GeneratorSettings::default()
            };
            // Before the model loads: a bad grid is refused in a second, not after it.
            settings.check()?;
            return Ok(SegmentRequest::Automatic {
                settings,
                choice: MaskChoice::at_or_largest(points.first()),
            });
        }
        if points.is_empty() && background.is_empty() && region.is_none() {
            return Err("give --point, --box or --auto".into());
        }
        Ok(SegmentRequest::Prompt {
            prompt: sam2_prompt(&points, &background, region),
            multimask: !self.single,
        })
    }

    fn overlay_path(&self) -> PathBuf {
        self.overlay.clone().unwrap_or_else(|| {
            let stem = self
                .out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            self.out.with_file_name(format!("{stem}.overlay.png"))
        })
    }
}

/// Written beside the target and renamed into place: a failure midway never leaves a torn PNG
/// under the name (nor destroys an earlier one).
fn save_png(path: &Path, image: image::DynamicImage) -> Result<(), Box<dyn Error>> {
    let failed = |error: &dyn std::fmt::Display| format!("{}: {error}", path.display());
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    image
        .save_with_format(&part, image::ImageFormat::Png)
        .map_err(|error| failed(&error))?;
    std::fs::rename(&part, path).map_err(|error| {
        let _ = std::fs::remove_file(&part);
        failed(&error).into()
    })
}

pub fn run(out: &mut impl Write, request: DeviceRequest, args: &SegmentArgs) -> CliResult {
    let segment_request = args.request()?;
    let pixels = read_pixels(&args.image)?;
    let config = read_sam2_config(args.config.as_deref())?;
    let chosen = device::choose_device_blocking(request)?;
    let (model, weights_label) =
        Sam2Model::load_file(&args.model, config.as_ref(), &chosen.device)?;
    let model_name = model.config.name.clone();
    let segmenter = Segmenter::new(
        Sam2Predictor::new(model),
        GeneratorSettings::default(),
        String::new(),
    );
    let segmented = pollster::block_on(segmenter.segment(&pixels, &segment_request))?;
    let how = if segmented.automatic {
        format!("automatic ({} masks)", segmented.candidates)
    } else {
        "prompted".to_string()
    };
    let mask = segmented.mask;
    let (width, height) = (pixels.width as u32, pixels.height as u32);
    let luma = image::GrayImage::from_raw(width, height, mask.to_luma())
        .ok_or("mask size does not match the image")?;
    save_png(&args.out, image::DynamicImage::ImageLuma8(luma))?;
    // The overlay PNG is what `classify --focus overlay` shows CLIP.
    let overlay_path = args.overlay_path();
    let overlay = focus::prompt::apply(
        &pixels.to_rgb(),
        &Mask::from(&mask),
        &VisualPrompt::paper_overlay(),
    )?;
    let rgb = image::RgbImage::from_raw(overlay.width as u32, overlay.height as u32, overlay.data)
        .ok_or("overlay size does not match the image")?;
    save_png(&overlay_path, image::DynamicImage::ImageRgb8(rgb))?;
    let area = mask.area();
    let coverage = area as f64 / (width as f64 * height as f64);
    if args.json {
        let line = serde_json::json!({
            "image": args.image.display().to_string(),
            "mask": args.out.display().to_string(),
            "overlay": overlay_path.display().to_string(),
            "area": area,
            "coverage": coverage,
            "predicted_iou": mask.predicted_iou,
            "source": how,
            "weights": weights_label,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "model: {} ({model_name}, {weights_label}), device: {}",
            args.model.display(),
            chosen.report.summary()
        )?;
        writeln!(
            out,
            "{}: {how} mask of {area} px ({:.1} % of the image), predicted IoU {:.3}\nmask: {}\noverlay: {}",
            args.image.display(),
            100.0 * coverage,
            mask.predicted_iou,
            args.out.display(),
            overlay_path.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
