//! `medfocus weights`: the known models, downloads, conversions for the browser, SAM 2 exports
//! and the int8 check.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use medfocus::clip::load::add_safetensors;
use medfocus::dataset::collect_images;
use medfocus::device::{self, DeviceRequest};
use medfocus::fetch;
use medfocus::pipeline::files::read_pixels;
use medfocus::sam2::agreement::{AgreementSummary, int8_agreement};
use medfocus::sam2::quantize::{Int8Granularity, quantize_int8};
use medfocus::sam2::{Sam2Model, Sam2Predictor};
use medfocus::site_models::{self, SiteManifest};

use super::args::{CliResult, read_sam2_config};

#[derive(Subcommand)]
pub enum WeightsAction {
    /// The models `fetch` knows, and where they would go.
    List,
    /// Download a model's files (resumable, SHA-256 checked); prints the folder to pass as --model.
    Fetch {
        model: String,
        /// Folder that receives `<model>/` (default: $MEDFOCUS_CACHE or ~/.cache/medfocus/models).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Hub base URL (a mirror, or a local server).
        #[arg(long, env = "MEDFOCUS_HUB_URL", default_value = medfocus::fetch::DEFAULT_HUB)]
        hub_url: String,
    },
    /// Add `open_clip_model.safetensors` to a folder that has only the PyTorch pickle (the
    /// browser reads SafeTensors only). `fetch` does this itself.
    Convert { folder: PathBuf },
    /// How close int8 SAM 2 stays to f32 on a set of images: embedding cosine, relative L2 of
    /// the mask logits and mask IoU for a centre-point prompt, per image and summarised.
    CheckInt8 {
        checkpoint: PathBuf,
        /// Config JSON, for a checkpoint that is not one of the published models (also
        /// `--sam2-config`, its name where `--model` is CLIP).
        #[arg(long, alias = "sam2-config")]
        config: Option<PathBuf>,
        /// `tensor` or `block-N`.
        #[arg(long, default_value = "block-32")]
        int8: String,
        /// Images, or folders of images (searched recursively).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Write models for the page to download from its own site: each model's files in the form
    /// the browser reads, checked by loading them back, and `manifest.json` (names, sizes,
    /// SHA-256). `scripts/serve.sh` serves `models/` at /models/. Kinds not given stay listed.
    ExportWeb {
        /// A CLIP model folder (as `fetch` writes it; a PyTorch pickle is converted).
        #[arg(long)]
        clip: Option<PathBuf>,
        /// SAM 2 weights: Meta's `.pt` (or a burnpack from `export-sam2`).
        #[arg(long)]
        sam2: Option<PathBuf>,
        /// Config JSON, for SAM 2 weights that are not one of the published models.
        #[arg(long)]
        sam2_config: Option<PathBuf>,
        /// SAM 2's weights for the page: `f32`, or int8 `tensor` / `block-N`.
        #[arg(long, default_value = "block-32")]
        sam2_weights: String,
        /// A head file from `medfocus train`.
        #[arg(long)]
        head: Option<PathBuf>,
        /// The site's models folder.
        #[arg(long, default_value = "models")]
        out: PathBuf,
    },
    /// Write a SAM 2 checkpoint (Meta's `.pt`) as a burnpack for the browser, f32 or int8.
    ExportSam2 {
        checkpoint: PathBuf,
        /// Config JSON, for a checkpoint that is not one of the published models (also
        /// `--sam2-config`, its name where `--model` is CLIP).
        #[arg(long, alias = "sam2-config")]
        config: Option<PathBuf>,
        /// int8 weights: `tensor` (one scale per matrix) or `block-N` (one per N values).
        #[arg(long)]
        int8: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Draws one progress bar per file on stderr.
struct Bars(Option<indicatif::ProgressBar>);

impl fetch::Progress for Bars {
    fn start(&mut self, file: &str, total: Option<u64>, already: u64) {
        let bar = match total {
            Some(total) => indicatif::ProgressBar::new(total),
            None => indicatif::ProgressBar::no_length(),
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:32} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(file.to_string());
        bar.set_position(already);
        self.0 = Some(bar);
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self, file: &str, status: fetch::FileStatus) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
        eprintln!("{file}: {status:?}");
    }
}

pub fn run(out: &mut impl Write, action: WeightsAction) -> CliResult {
    match action {
        WeightsAction::List => {
            let cache = fetch::default_cache_dir();
            for entry in fetch::registry() {
                writeln!(out, "{:20} {}", entry.name, entry.description)?;
                writeln!(out, "{:20} → {}", "", cache.join(entry.name).display())?;
            }
        }
        WeightsAction::Fetch {
            model,
            dir,
            hub_url,
        } => {
            let entry =
                fetch::find_model(&model).ok_or_else(|| fetch::FetchError::UnknownModel {
                    name: model.clone(),
                    known: fetch::registry()
                        .iter()
                        .map(|entry| entry.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            let folder = dir
                .unwrap_or_else(fetch::default_cache_dir)
                .join(entry.name);
            fetch::Fetcher::new(&hub_url).fetch(&entry, &folder, &mut Bars(None))?;
            if let Some(written) = add_safetensors(&folder)? {
                eprintln!("wrote {} for the browser", written.display());
            }
            writeln!(out, "{}", folder.display())?;
        }
        WeightsAction::Convert { folder } => match add_safetensors(&folder)? {
            Some(written) => writeln!(out, "wrote {}", written.display())?,
            None => writeln!(
                out,
                "{}: nothing to convert (already SafeTensors, or no open_clip_pytorch_model.bin)",
                folder.display()
            )?,
        },
        WeightsAction::CheckInt8 {
            checkpoint,
            config,
            int8,
            images,
        } => check_int8(out, &checkpoint, config.as_deref(), &int8, &images)?,
        WeightsAction::ExportWeb {
            clip,
            sam2,
            sam2_config,
            sam2_weights,
            head,
            out: site,
        } => export_web(
            out,
            &site,
            clip.as_deref(),
            sam2.as_deref(),
            sam2_config.as_deref(),
            &sam2_weights,
            head.as_deref(),
        )?,
        WeightsAction::ExportSam2 {
            checkpoint,
            config,
            int8,
            out: target,
        } => export_sam2(
            out,
            &checkpoint,
            config.as_deref(),
            int8.as_deref(),
            &target,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

/// int8 against f32 on every image, then the summary.
fn check_int8(
    out: &mut impl Write,
    checkpoint: &Path,
    config: Option<&Path>,
    int8: &str,
    images: &[PathBuf],
) -> Result<(), Box<dyn Error>> {
    let granularity = Int8Granularity::parse(int8)
        .ok_or_else(|| format!("--int8 {int8}: use `tensor` or `block-N`"))?;
    let config = read_sam2_config(config)?;
    let device = device::cpu_device(DeviceRequest::Cpu, "int8 check".into()).device;
    let reference = Sam2Predictor::new(Sam2Model::load(checkpoint, config.as_ref(), &device)?);
    let quantized = Sam2Predictor::new(quantize_int8(
        Sam2Model::load(checkpoint, config.as_ref(), &device)?,
        granularity,
    ));
    let mut files = Vec::new();
    for path in images {
        collect_images(path, &mut files)?;
    }
    writeln!(
        out,
        "{} vs f32, {} ({} images), centre-point prompt\nimage\tembedding cosine\tlogits rel. L2\tmask IoU",
        granularity.label(),
        reference.model.config.name,
        files.len()
    )?;
    let mut rows = Vec::new();
    for file in &files {
        let pixels = read_pixels(file)?;
        let row = pollster::block_on(int8_agreement(&reference, &quantized, &pixels))?;
        writeln!(
            out,
            "{}\t{:.5}\t{:.4}\t{:.4}",
            file.display(),
            row.embedding_cosine,
            row.logits_relative_l2,
            row.mask_iou
        )?;
        rows.push(row);
    }
    let summary = AgreementSummary::of(&rows).ok_or("no images found")?;
    writeln!(out, "embedding cosine: {}", summary.embedding_cosine)?;
    writeln!(out, "logits rel. L2:   {}", summary.logits_relative_l2)?;
    writeln!(out, "mask IoU:         {}", summary.mask_iou)?;
    Ok(())
}

/// The site's models folder: each model given exported and proven, then the manifest (last, so
/// that a page never lists a file still being written).
fn export_web(
    out: &mut impl Write,
    site: &Path,
    clip: Option<&Path>,
    sam2: Option<&Path>,
    sam2_config: Option<&Path>,
    sam2_weights: &str,
    head: Option<&Path>,
) -> Result<(), Box<dyn Error>> {
    if clip.is_none() && sam2.is_none() && head.is_none() {
        return Err("give at least one of --clip, --sam2 and --head".into());
    }
    let weights = site_models::parse_sam2_weights(sam2_weights)?;
    let config = read_sam2_config(sam2_config)?;
    std::fs::create_dir_all(site).map_err(|error| format!("{}: {error}", site.display()))?;
    let mut manifest = SiteManifest::read_or_empty(site)?;
    let mut exported = Vec::new();
    if let Some(folder) = clip {
        exported.push(site_models::export_clip(folder, site)?);
    }
    if let Some(checkpoint) = sam2 {
        exported.push(site_models::export_sam2(
            checkpoint,
            config.as_ref(),
            weights,
            site,
        )?);
    }
    if let Some(path) = head {
        exported.push(site_models::export_head(path, site)?);
    }
    for model in &exported {
        let bytes: u64 = model.files.iter().map(|file| file.size).sum();
        writeln!(
            out,
            "{}: {} ({} file{}, {:.1} MB)",
            model.kind,
            model.description,
            model.files.len(),
            if model.files.len() == 1 { "" } else { "s" },
            bytes as f64 / 1e6
        )?;
    }
    site_models::commit(site, &mut manifest, exported)?;
    writeln!(
        out,
        "wrote {}",
        site.join(site_models::MANIFEST_FILE).display()
    )?;
    Ok(())
}

/// Meta's checkpoint as a burnpack for the browser, f32 or int8, written atomically.
fn export_sam2(
    out: &mut impl Write,
    checkpoint: &Path,
    config: Option<&Path>,
    int8: Option<&str>,
    target: &Path,
) -> Result<(), Box<dyn Error>> {
    let granularity = int8
        .map(|text| {
            Int8Granularity::parse(text).ok_or_else(|| {
                format!("--int8 {text}: use `tensor` or `block-N` (N from 1 to 255)")
            })
        })
        .transpose()?;
    let config = read_sam2_config(config)?;
    let device = device::cpu_device(DeviceRequest::Cpu, "export".into()).device;
    let model = Sam2Model::load(checkpoint, config.as_ref(), &device)?;
    let checkpoint_bytes = std::fs::metadata(checkpoint)?.len();
    let (model, label) = match granularity {
        Some(granularity) => (quantize_int8(model, granularity), granularity.label()),
        None => (model, "f32".to_string()),
    };
    let bytes = model.to_burnpack(&label)?;
    let partial = target.with_extension("bpk.part");
    std::fs::write(&partial, &bytes)
        .and_then(|()| std::fs::rename(&partial, target))
        .map_err(|error| format!("{}: {error}", target.display()))?;
    writeln!(
        out,
        "wrote {} ({}, {label}): {:.1} MB (checkpoint {:.1} MB)",
        target.display(),
        model.config.name,
        bytes.len() as f64 / 1e6,
        checkpoint_bytes as f64 / 1e6
    )?;
    Ok(())
}
