//! `medfocus`, the native command-line program. Thin: argument parsing and printing; the work is
//! in the library. On wasm this binary is empty (the browser entry points are in `web`).

#![cfg_attr(target_arch = "wasm32", no_main)]

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::error::Error;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};
    use medfocus::clip::preprocess::Pixels8;
    use medfocus::clip::{ZeroShotClassifier, load::add_safetensors, load::load_clip_dir};
    use medfocus::compute_check;
    use medfocus::dataset::{ClassFolders, is_image_path};
    use medfocus::device::{self, DeviceRequest};
    use medfocus::fetch;
    use medfocus::focus::{self, Focus, FocusSettings, Mask};
    use medfocus::heads::cache::{EmbeddingCache, default_dir};
    use medfocus::heads::embed::MaskSource;
    use medfocus::heads::head_file::PromptMode;
    use medfocus::heads::pipeline::{TrainRequest, predict_files, train_from_folders};
    use medfocus::heads::train::{EpochReport, Observer};
    use medfocus::heads::trainer::HeadSettings;
    use medfocus::heads::{HeadFile, HeadKind, HeadModel};
    use medfocus::imaging;
    use medfocus::sam2::automatic_mask_generator::{GeneratorSettings, MaskChoice, find_region};
    use medfocus::sam2::predictor::read_masks;
    use medfocus::sam2::quantize::{Int8Granularity, int8_agreement, quantize_int8};
    use medfocus::sam2::{Prompt, Sam2Config, Sam2Model, Sam2Predictor};

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
        Classify(ClassifyArgs),
        /// Segment an image with SAM 2: from points, a box, or automatically; writes the mask
        /// and an overlay PNG.
        Segment(SegmentArgs),
        /// Train a support head on a folder with one sub-folder of images per class; writes a
        /// head file (`.mfh`) that `predict` and the browser page use.
        Train(Box<TrainArgs>),
        /// Classify images with a trained head file.
        Predict(PredictArgs),
        /// Model weights: list the known models, or download one into the cache.
        Weights {
            #[command(subcommand)]
            action: WeightsAction,
        },
    }

    #[derive(Subcommand)]
    enum WeightsAction {
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
            /// Config JSON, for a checkpoint that is not one of the published models.
            #[arg(long)]
            config: Option<PathBuf>,
            /// `tensor` or `block-N`.
            #[arg(long, default_value = "block-32")]
            int8: String,
            /// Images, or folders of images (searched recursively).
            #[arg(required = true)]
            images: Vec<PathBuf>,
        },
        /// Write a SAM 2 checkpoint (Meta's `.pt`) as a burnpack for the browser, f32 or int8.
        ExportSam2 {
            checkpoint: PathBuf,
            /// Config JSON, for a checkpoint that is not one of the published models.
            #[arg(long)]
            config: Option<PathBuf>,
            /// int8 weights: `tensor` (one scale per matrix) or `block-N` (one per N values).
            #[arg(long)]
            int8: Option<String>,
            #[arg(long)]
            out: PathBuf,
        },
    }

    #[derive(clap::Args)]
    struct SegmentArgs {
        /// SAM 2 weights: Meta's `.pt` (e.g. sam2.1_hiera_tiny.pt) or a burnpack from
        /// `medfocus weights export-sam2`.
        #[arg(long)]
        model: PathBuf,
        /// Config JSON, for a checkpoint that is not one of the published models.
        #[arg(long)]
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

    fn parse_numbers<const N: usize>(text: &str, flag: &str) -> Result<[f32; N], String> {
        let values: Option<Vec<f32>> = text
            .split(',')
            .map(|value| value.trim().parse::<f32>().ok().filter(|v| v.is_finite()))
            .collect();
        values
            .and_then(|values| <[f32; N]>::try_from(values).ok())
            .ok_or_else(|| format!("{flag} {text}: expected {N} comma-separated pixel numbers"))
    }

    /// Image files under `path` (itself, or recursively in a folder), sorted.
    fn collect_images(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|error| format!("{}: {error}", path.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect();
            entries.sort();
            for entry in entries {
                if entry.is_dir() {
                    collect_images(&entry, files)?;
                } else if is_image_path(&entry) {
                    files.push(entry);
                }
            }
        } else {
            files.push(path.to_path_buf());
        }
        Ok(())
    }

    fn read_sam2_config(path: Option<&Path>) -> Result<Option<Sam2Config>, Box<dyn Error>> {
        let Some(path) = path else { return Ok(None) };
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(Some(
            Sam2Config::from_json(&text).map_err(|error| format!("{}: {error}", path.display()))?,
        ))
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

    /// Where masks come from when the prompt needs them (train, predict).
    #[derive(clap::Args)]
    struct MaskArgs {
        /// SAM 2 weights (`.pt` or burnpack): each image's region is the largest automatic mask
        /// that is not background.
        #[arg(long)]
        sam2: Option<PathBuf>,
        /// Config JSON for SAM 2 weights that are not a published model.
        #[arg(long)]
        sam2_config: Option<PathBuf>,
        /// Automatic-mask grid points per side (SAM 2).
        #[arg(long, default_value_t = GeneratorSettings::default().points_per_side)]
        points_per_side: usize,
    }

    impl MaskArgs {
        /// SAM 2 as a mask source, identified for the embedding cache by its file's hash.
        fn sam2(
            &self,
            device: &medfocus::device::ChosenDevice,
        ) -> Result<Option<MaskSource>, Box<dyn Error>> {
            let Some(path) = &self.sam2 else {
                return Ok(None);
            };
            let config = read_sam2_config(self.sam2_config.as_deref())?;
            let bytes =
                std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
            let (model, _) = Sam2Model::load_file(path, config.as_ref(), &device.device)?;
            let settings = GeneratorSettings {
                points_per_side: self.points_per_side,
                ..GeneratorSettings::default()
            };
            let identity = format!(
                "sam2 {} ({}), automatic {}×{} grid, largest region",
                medfocus::heads::cache::sha256_hex(&bytes),
                path.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                settings.points_per_side,
                settings.points_per_side
            );
            Ok(Some(MaskSource::Sam2 {
                predictor: Box::new(Sam2Predictor::new(model)),
                identity,
                settings,
            }))
        }
    }

    #[derive(clap::Args)]
    struct TrainArgs {
        /// Training images: one sub-folder per class (`data/glioma/*.jpg`, …).
        #[arg(long)]
        data: PathBuf,
        /// CLIP model folder (see `medfocus weights`).
        #[arg(long)]
        model: PathBuf,
        /// Head kind.
        #[arg(long, default_value = "tip-adapter-f", value_parser = clap::builder::PossibleValuesParser::new(HeadKind::NAMES))]
        head: String,
        /// How the mask steers CLIP (a focus method); anything but `none` needs --masks or --sam2.
        #[arg(long, default_value = "none", value_parser = clap::builder::PossibleValuesParser::new(focus::METHODS))]
        prompt: String,
        #[command(flatten)]
        focus_settings: FocusArgs,
        /// Mask images laid out like --data (`masks/<class>/<image name>.png`, white = region).
        #[arg(long, conflicts_with = "sam2")]
        masks: Option<PathBuf>,
        #[command(flatten)]
        mask_args: MaskArgs,
        /// The words the text prompts use for each class, comma-separated, in the sorted order of
        /// the class folders (default: the folder names).
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
        /// Tip-Adapter: cache weight α (default: searched).
        #[arg(long)]
        alpha_cache: Option<f32>,
        /// Tip-Adapter: affinity sharpness β (default: searched).
        #[arg(long)]
        beta_cache: Option<f32>,
        /// CoOp: learnt context tokens.
        #[arg(long, default_value_t = 4)]
        context_tokens: usize,
        /// Fine-tune: how many of the image tower's last blocks train.
        #[arg(long, default_value_t = 2)]
        finetune_blocks: usize,
        /// Fine-tune: λ in λ·contrastive + (1 − λ)·cross-entropy.
        #[arg(long, default_value_t = 0.5)]
        contrastive_weight: f32,
        /// Embedding cache folder (default: $MEDFOCUS_EMBEDDINGS or ~/.cache/medfocus/embeddings).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Compute every embedding afresh and store none.
        #[arg(long)]
        no_cache: bool,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    }

    #[derive(clap::Args)]
    struct PredictArgs {
        /// A head file from `medfocus train`.
        #[arg(long)]
        head: PathBuf,
        /// The CLIP model folder the head was trained with.
        #[arg(long)]
        model: PathBuf,
        /// Mask image for the (single) image, when the head's prompt needs a region.
        #[arg(long, conflicts_with = "sam2")]
        mask: Option<PathBuf>,
        #[command(flatten)]
        mask_args: MaskArgs,
        /// One JSON object per image (`{"image", "classes", "probabilities"}`) instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    }

    #[derive(clap::Args)]
    struct ClassifyArgs {
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
        #[arg(long = "box", value_name = "LEFT,TOP,RIGHT,BOTTOM")]
        region: Option<String>,
        /// How the mask steers CLIP.
        #[arg(long, default_value = "none", value_parser = clap::builder::PossibleValuesParser::new(focus::METHODS))]
        focus: String,
        #[command(flatten)]
        focus_settings: FocusArgs,
        /// One JSON object per image (`{"image", "classes", "probabilities"}`) instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        images: Vec<PathBuf>,
    }

    impl ClassifyArgs {
        fn focus(&self) -> Result<Focus, focus::UnknownMethod> {
            Focus::from_method(&self.focus, &self.focus_settings.settings())
        }

        fn mask_for(&self, width: usize, height: usize) -> Result<Option<Mask>, Box<dyn Error>> {
            if let Some(path) = &self.mask {
                let bytes =
                    std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
                let decoded = imaging::decode_image(&bytes)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
                return Ok(Some(Mask::from_image(&decoded.pixels)));
            }
            if let Some(region) = &self.region {
                let values: Option<Vec<usize>> = region
                    .split(',')
                    .map(|value| value.trim().parse().ok())
                    .collect();
                let Some([left, top, right, bottom]) = values
                    .as_deref()
                    .and_then(|v| <[usize; 4]>::try_from(v).ok())
                else {
                    return Err(format!(
                        "--box {region}: expected four pixel numbers left,top,right,bottom"
                    )
                    .into());
                };
                return Ok(Some(Mask::from_box(
                    width,
                    height,
                    [left, top, right, bottom],
                )?));
            }
            Ok(None)
        }
    }

    pub fn run() -> ExitCode {
        let cli = Cli::parse();
        let mut out = io::stdout().lock();
        let result = match cli.command {
            Command::Devices { check } => devices(&mut out, cli.device, check),
            Command::Inspect { paths } => inspect(&mut out, &paths),
            Command::Classify(args) => classify(&mut out, cli.device, &args),
            Command::Segment(args) => segment(&mut out, cli.device, &args),
            Command::Train(args) => train(&mut out, cli.device, &args),
            Command::Predict(args) => predict(&mut out, cli.device, &args),
            Command::Weights { action } => weights(&mut out, action),
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

    fn devices(
        out: &mut impl Write,
        request: DeviceRequest,
        check: bool,
    ) -> Result<ExitCode, Box<dyn Error>> {
        let adapters = pollster::block_on(device::list_adapters());
        writeln!(out, "GPU adapters found: {}", adapters.len())?;
        for adapter in &adapters {
            writeln!(
                out,
                "  - {} [{}; {:?}] {}",
                adapter.name, adapter.backend, adapter.adapter_type, adapter.driver
            )?;
        }
        let chosen = device::choose_device_blocking(request)?;
        write!(out, "{}", chosen.report)?;
        if check {
            const SIZE: usize = 64;
            let output = pollster::block_on(compute_check::run_check(&chosen.device, SIZE))?;
            let diff = output.max_abs_diff(&compute_check::reference(SIZE));
            writeln!(
                out,
                "check: softmax(A·B/√n) with n = {SIZE}: max |Δ| to reference = {diff:.2e}"
            )?;
            if diff > 1e-4 {
                eprintln!("error: the device computed a wrong result");
                return Ok(ExitCode::FAILURE);
            }
        }
        Ok(ExitCode::SUCCESS)
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

    fn weights(out: &mut impl Write, action: WeightsAction) -> Result<ExitCode, Box<dyn Error>> {
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
            } => {
                let granularity = Int8Granularity::parse(&int8)
                    .ok_or_else(|| format!("--int8 {int8}: use `tensor` or `block-N`"))?;
                let config = read_sam2_config(config.as_deref())?;
                let device = device::cpu_device(DeviceRequest::Cpu, "int8 check".into()).device;
                let reference =
                    Sam2Predictor::new(Sam2Model::load(&checkpoint, config.as_ref(), &device)?);
                let quantized = Sam2Predictor::new(quantize_int8(
                    Sam2Model::load(&checkpoint, config.as_ref(), &device)?,
                    granularity,
                ));
                let mut files = Vec::new();
                for path in &images {
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
                    let bytes = std::fs::read(file)?;
                    let decoded = imaging::decode_image(&bytes)
                        .map_err(|error| format!("{}: {error}", file.display()))?;
                    let pixels = Pixels8::from_image(&decoded.pixels);
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
                if rows.is_empty() {
                    return Err("no images found".into());
                }
                let stats = |values: Vec<f32>| {
                    let mean = values.iter().sum::<f32>() / values.len() as f32;
                    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
                    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    format!("mean {mean:.5}, min {min:.5}, max {max:.5}")
                };
                writeln!(
                    out,
                    "embedding cosine: {}",
                    stats(rows.iter().map(|r| r.embedding_cosine).collect())
                )?;
                writeln!(
                    out,
                    "logits rel. L2:   {}",
                    stats(rows.iter().map(|r| r.logits_relative_l2).collect())
                )?;
                writeln!(
                    out,
                    "mask IoU:         {}",
                    stats(rows.iter().map(|r| r.mask_iou).collect())
                )?;
            }
            WeightsAction::ExportSam2 {
                checkpoint,
                config,
                int8,
                out: target,
            } => {
                let granularity = int8
                    .as_deref()
                    .map(|text| {
                        Int8Granularity::parse(text).ok_or_else(|| {
                            format!("--int8 {text}: use `tensor` or `block-N` (N from 1 to 255)")
                        })
                    })
                    .transpose()?;
                let config = read_sam2_config(config.as_deref())?;
                let device = device::cpu_device(DeviceRequest::Cpu, "export".into()).device;
                let model = Sam2Model::load(&checkpoint, config.as_ref(), &device)?;
                let checkpoint_bytes = std::fs::metadata(&checkpoint)?.len();
                let (model, label) = match granularity {
                    Some(granularity) => (quantize_int8(model, granularity), granularity.label()),
                    None => (model, "f32".to_string()),
                };
                let bytes = model.to_burnpack(&label)?;
                let partial = target.with_extension("bpk.part");
                std::fs::write(&partial, &bytes)
                    .and_then(|()| std::fs::rename(&partial, &target))
                    .map_err(|error| format!("{}: {error}", target.display()))?;
                writeln!(
                    out,
                    "wrote {} ({}, {label}): {:.1} MB (checkpoint {:.1} MB)",
                    target.display(),
                    model.config.name,
                    bytes.len() as f64 / 1e6,
                    checkpoint_bytes as f64 / 1e6
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    fn classify(
        out: &mut impl Write,
        request: DeviceRequest,
        args: &ClassifyArgs,
    ) -> Result<ExitCode, Box<dyn Error>> {
        let focus = args.focus()?;
        if !matches!(focus, Focus::None) && args.mask.is_none() && args.region.is_none() {
            return Err("this --focus needs a region: give --mask or --box".into());
        }
        let chosen = device::choose_device_blocking(request)?;
        let clip = load_clip_dir(&args.model, &chosen.device)?;
        let classifier = ZeroShotClassifier::new(&clip, &args.classes, &args.templates)?;
        if !args.json {
            writeln!(
                out,
                "model: {} ({}), device: {}",
                args.model.display(),
                clip.family,
                chosen.report.summary()
            )?;
        }
        let results = args
            .images
            .iter()
            .map(|path| {
                let result = (|| -> Result<Vec<f32>, Box<dyn Error>> {
                    let bytes = std::fs::read(path)?;
                    let decoded = imaging::decode_image(&bytes)?;
                    let pixels = Pixels8::from_image(&decoded.pixels);
                    let mask = args.mask_for(pixels.width, pixels.height)?;
                    let embedding = focus::encode_focused(
                        &clip.model,
                        &clip.preprocess,
                        &pixels,
                        mask.as_ref(),
                        &focus,
                        &chosen.device,
                    )?;
                    Ok(pollster::block_on(classifier.read_probabilities(embedding))?.remove(0))
                })();
                (path.as_path(), result.map_err(|error| error.to_string()))
            })
            .collect();
        print_results(out, &classifier.classes, results, args.json)
    }

    /// Each image's classes ranked by probability (or one JSON object per image); failures go to
    /// stderr, and make the exit status a failure, after the other images are done.
    fn print_results(
        out: &mut impl Write,
        classes: &[String],
        results: Vec<(&Path, Result<Vec<f32>, String>)>,
        json: bool,
    ) -> Result<ExitCode, Box<dyn Error>> {
        let width = classes
            .iter()
            .map(|class| class.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut failures = 0usize;
        for (path, result) in results {
            match result {
                Ok(probabilities) if json => {
                    let line = serde_json::json!({
                        "image": path.display().to_string(),
                        "classes": classes,
                        "probabilities": probabilities,
                    });
                    writeln!(out, "{line}")?;
                }
                Ok(probabilities) => {
                    writeln!(out, "\n{}", path.display())?;
                    let mut ranked: Vec<(usize, f32)> =
                        probabilities.into_iter().enumerate().collect();
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

    fn embedding_cache(dir: Option<&Path>, disabled: bool) -> Option<EmbeddingCache> {
        (!disabled)
            .then(|| EmbeddingCache::new(dir.map(Path::to_path_buf).unwrap_or_else(default_dir)))
    }

    fn model_name(path: &Path) -> String {
        path.file_name()
            .map(|name| name.to_string_lossy().to_string())
            .unwrap_or_else(|| path.display().to_string())
    }

    fn train(
        out: &mut impl Write,
        request: DeviceRequest,
        args: &TrainArgs,
    ) -> Result<ExitCode, Box<dyn Error>> {
        let kind =
            HeadKind::parse(&args.head).ok_or_else(|| format!("unknown head {}", args.head))?;
        let chosen = device::choose_device_blocking(request)?;
        let clip = load_clip_dir(&args.model, &chosen.device)?;
        let mask_source = match (&args.masks, args.mask_args.sam2(&chosen)?) {
            (Some(dir), _) => MaskSource::Folder(dir.clone()),
            (None, Some(sam2)) => sam2,
            (None, None) => MaskSource::None,
        };
        let mut settings = HeadSettings::new(kind);
        settings.seed = args.seed;
        settings.holdout = args.holdout;
        settings.epochs = args.epochs;
        settings.learning_rate = args.learning_rate;
        settings.patience = args.patience;
        settings.weight_decay = args.weight_decay;
        settings.c = args.c;
        settings.c_grid = args.c_grid.clone();
        settings.text_weight = args.text_weight;
        settings.text_weight_grid = args.text_weight_grid.clone();
        settings.alpha = args.alpha_cache;
        settings.beta = args.beta_cache;
        settings.context_tokens = args.context_tokens;
        settings.finetune_blocks = args.finetune_blocks;
        settings.contrastive_weight = args.contrastive_weight;
        let checkpoint = args
            .checkpoint
            .clone()
            .unwrap_or_else(|| args.out.with_extension("mfh.ckpt"));
        let started = std::time::Instant::now();
        let report = train_from_folders(
            TrainRequest {
                data: &args.data,
                clip: &clip,
                clip_name: model_name(&args.model),
                class_names: args.class_names.clone(),
                templates: args.templates.clone(),
                prompt: PromptMode {
                    focus: args.prompt.clone(),
                    settings: args.focus_settings.settings(),
                    masks: String::new(),
                },
                mask_source,
                cache: embedding_cache(args.cache.as_deref(), args.no_cache),
                settings,
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
                "skipped": report.support.skipped,
                "resumed": report.resumed,
                "training": header.training,
            });
            writeln!(out, "{line}")?;
        } else {
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
            for key in [
                "C",
                "text_weight",
                "alpha",
                "beta",
                "leave_one_out_accuracy",
            ] {
                if let Some(value) = header.training.get(key) {
                    writeln!(out, "{key}: {value}")?;
                }
            }
            writeln!(out, "wrote {}", args.out.display())?;
        }
        Ok(ExitCode::SUCCESS)
    }

    fn predict(
        out: &mut impl Write,
        request: DeviceRequest,
        args: &PredictArgs,
    ) -> Result<ExitCode, Box<dyn Error>> {
        let file = HeadFile::read(&args.head)?;
        if args.mask.is_some() && args.images.len() > 1 {
            return Err("--mask is one image's mask: give one image, or --sam2 for many".into());
        }
        let chosen = device::choose_device_blocking(request)?;
        let clip = load_clip_dir(&args.model, &chosen.device)?;
        let head = HeadModel::new(&file, &chosen.device);
        let mask_source = match (&args.mask, args.mask_args.sam2(&chosen)?) {
            (Some(mask), _) => MaskSource::File(mask.clone()),
            (None, Some(sam2)) => sam2,
            (None, None) if head.header.prompt.needs_mask() => {
                return Err(format!(
                    "this head was trained with prompt `{}` on masks from {}: give --mask or --sam2",
                    head.header.prompt.focus, head.header.prompt.masks
                )
                .into());
            }
            (None, None) => MaskSource::None,
        };
        let results = predict_files(
            &head,
            &clip,
            mask_source,
            None,
            &args.images,
            &chosen.device,
        )?;
        let results = args
            .images
            .iter()
            .zip(results)
            .map(|(path, result)| (path.as_path(), result.map_err(|error| error.to_string())))
            .collect();
        print_results(out, head.classes(), results, args.json)
    }

    fn segment(
        out: &mut impl Write,
        request: DeviceRequest,
        args: &SegmentArgs,
    ) -> Result<ExitCode, Box<dyn Error>> {
        let mut prompt = Prompt::default();
        for (texts, label) in [(&args.points, 1), (&args.background, 0)] {
            for text in texts {
                let flag = if label == 1 {
                    "--point"
                } else {
                    "--background"
                };
                prompt.points.push(parse_numbers::<2>(text, flag)?);
                prompt.labels.push(label);
            }
        }
        if let Some(region) = &args.region {
            prompt.box_xyxy = Some(parse_numbers::<4>(region, "--box")?);
        }
        if !args.auto && prompt.points.is_empty() && prompt.box_xyxy.is_none() {
            return Err("give --point, --box or --auto".into());
        }
        if args.auto && prompt.points.len() > 1 {
            return Err("--auto takes at most one --point (the mask under it is chosen)".into());
        }
        let bytes = std::fs::read(&args.image)
            .map_err(|error| format!("{}: {error}", args.image.display()))?;
        let decoded = imaging::decode_image(&bytes)
            .map_err(|error| format!("{}: {error}", args.image.display()))?;
        let pixels = Pixels8::from_image(&decoded.pixels);
        let config = read_sam2_config(args.config.as_deref())?;
        let chosen = device::choose_device_blocking(request)?;
        let (model, weights_label) =
            Sam2Model::load_file(&args.model, config.as_ref(), &chosen.device)?;
        let predictor = Sam2Predictor::new(model);
        let embedded = predictor.set_image(&pixels);
        let (mask, how) = if args.auto {
            let settings = GeneratorSettings {
                points_per_side: args.points_per_side,
                points_per_batch: args.points_per_batch,
                pred_iou_thresh: args.pred_iou_thresh,
                stability_score_thresh: args.stability_thresh,
                min_mask_region_area: args.min_area,
                ..GeneratorSettings::default()
            };
            let choice = MaskChoice::at_or_largest(prompt.points.first());
            let (mask, count) =
                pollster::block_on(find_region(&predictor, &embedded, &settings, choice))?;
            (mask, format!("automatic ({count} masks)"))
        } else {
            let prediction = predictor.predict(&embedded, &[prompt], !args.single)?;
            let mut masks = pollster::block_on(read_masks(&prediction, 0))?;
            (masks.remove(0), "prompted".to_string())
        };
        let (width, height) = (pixels.width as u32, pixels.height as u32);
        let save = |path: &Path, image: image::DynamicImage| -> Result<(), Box<dyn Error>> {
            image
                .save_with_format(path, image::ImageFormat::Png)
                .map_err(|error| format!("{}: {error}", path.display()).into())
        };
        let luma = image::GrayImage::from_raw(width, height, mask.to_luma())
            .ok_or("mask size does not match the image")?;
        save(&args.out, image::DynamicImage::ImageLuma8(luma))?;
        let overlay_path = args.overlay.clone().unwrap_or_else(|| {
            let stem = args
                .out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            args.out.with_file_name(format!("{stem}.overlay.png"))
        });
        let focus_mask = mask.to_focus_mask();
        // The overlay PNG is what `classify --focus overlay` would show CLIP.
        let Focus::Prompt(visual) = Focus::from_method("overlay", &FocusSettings::default())?
        else {
            return Err("the overlay focus is not a visual prompt".into());
        };
        let overlay = focus::prompt::apply(&pixels.to_rgb(), &focus_mask, &visual)?;
        let rgb =
            image::RgbImage::from_raw(overlay.width as u32, overlay.height as u32, overlay.data)
                .ok_or("overlay size does not match the image")?;
        save(&overlay_path, image::DynamicImage::ImageRgb8(rgb))?;
        let area = mask.area();
        if args.json {
            let line = serde_json::json!({
                "image": args.image.display().to_string(),
                "mask": args.out.display().to_string(),
                "overlay": overlay_path.display().to_string(),
                "area": area,
                "coverage": area as f64 / (width as f64 * height as f64),
                "predicted_iou": mask.predicted_iou,
                "source": how,
                "weights": weights_label,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "model: {} ({}, {weights_label}), device: {}",
                args.model.display(),
                predictor.model.config.name,
                chosen.report.summary()
            )?;
            writeln!(
                out,
                "{}: {how} mask of {area} px ({:.1} % of the image), predicted IoU {:.3}\nmask: {}\noverlay: {}",
                args.image.display(),
                100.0 * area as f64 / (width as f64 * height as f64),
                mask.predicted_iou,
                args.out.display(),
                overlay_path.display()
            )?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Decodes every file (a folder is read as one sub-folder per class); a bad file is reported
    /// and the rest still inspected.
    fn inspect(out: &mut impl Write, paths: &[PathBuf]) -> Result<ExitCode, Box<dyn Error>> {
        let mut failures = 0usize;
        let mut describe = |out: &mut dyn Write, path: &Path, label: &str| -> io::Result<()> {
            let result = std::fs::read(path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| imaging::decode_image(&bytes).map_err(|error| error.to_string()));
            match result {
                Ok(image) => writeln!(out, "{}{label}: {}", path.display(), image.summary()),
                Err(error) => {
                    failures += 1;
                    eprintln!("{}{label}: error: {error}", path.display());
                    Ok(())
                }
            }
        };
        for path in paths {
            if path.is_dir() {
                let set = ClassFolders::open(path)?;
                for (class, count) in set.classes.iter().zip(set.counts()) {
                    writeln!(out, "class {class}: {count} images")?;
                }
                for image in &set.images {
                    describe(
                        out,
                        &image.path,
                        &format!(" [{}]", set.classes[image.class_index]),
                    )?;
                }
            } else {
                describe(out, path, "")?;
            }
        }
        Ok(if failures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::run()
}
