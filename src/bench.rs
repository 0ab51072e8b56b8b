//! `medfocus bench`: the benchmarks' work timed inside the one binary (a GPU machine has no Rust
//! toolchain to run `cargo bench` with), and its outputs written as `.npy` so that a driver can
//! compare devices with each other and with PyTorch (`scripts/bench/gpu.py`, issue 35).
//!
//! The work is the benches' and `scripts/bench/side_by_side.py`'s: the same synthetic 512×512
//! image (byte *i* is *i* mod 251), CLIP's image tower on it (plain, batched, with the attention
//! focus on a centred rectangle), its text tower on five prompts, SAM 2's `set_image`, one point
//! prompt at the centre (three masks) and the automatic generator's grid from the image. Each
//! figure is every timed run after the warm-up; the first run of each piece of work is reported
//! apart (`*.first`): on a GPU it includes compiling the kernels.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor};

use crate::clip::load::{LoadedClip, load_clip_dir};
use crate::clip::preprocess::{Pixels8, batch_tensor, preprocess};
use crate::device::{ChosenDevice, DeviceProof, proof::build_label};
use crate::focus::{AttentionFocus, Mask, attention};
use crate::npy;
use crate::sam2::automatic_mask_generator::{GeneratorSettings, generate};
use crate::sam2::predictor::read_floats;
use crate::sam2::{Prompt, Sam2Config, Sam2Model, Sam2Predictor};

/// The prompts of the text-tower figure.
pub const PROMPTS: [&str; 5] = [
    "a medical image showing glioma.",
    "a medical image showing meningioma.",
    "a medical image showing no tumor.",
    "a medical image showing pituitary tumor.",
    "a medical image showing normal.",
];

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Model(String),
    #[error("reading results back: {0}")]
    Readback(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One piece of work's timings on one device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Figure {
    pub work: String,
    /// The model it ran (the folder or file name).
    pub variant: String,
    /// The device, in words.
    pub backend: String,
    pub ms: Vec<f64>,
}

impl Figure {
    pub fn median_ms(&self) -> f64 {
        median(&self.ms)
    }
}

/// The median (the upper one of an even count), NaN for none.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// How many runs, and where the outputs go.
#[derive(Clone, Debug)]
pub struct BenchSettings {
    pub warmup: usize,
    pub runs: usize,
    /// Images in the batched image-tower figure (1: no batched figure).
    pub batch: usize,
    /// Points per side of the automatic generator's grid.
    pub grid: usize,
    /// Where each output is written as `<name>.npy` (float32); `None`: nowhere.
    pub save: Option<PathBuf>,
}

/// The benchmarks' image: 512×512 RGB, byte *i* is *i* mod 251.
pub fn synthetic_image() -> Pixels8 {
    Pixels8 {
        width: 512,
        height: 512,
        channels: 3,
        data: (0..512 * 512 * 3).map(|i| (i % 251) as u8).collect(),
    }
}

/// The first run, then `runs` timed ones after `warmup` more.
fn time_work(
    settings: &BenchSettings,
    mut run: impl FnMut() -> Result<(), BenchError>,
) -> Result<(Duration, Vec<f64>), BenchError> {
    let started = Instant::now();
    run()?;
    let first = started.elapsed();
    for _ in 0..settings.warmup.saturating_sub(1) {
        run()?;
    }
    let mut times = Vec::with_capacity(settings.runs);
    for _ in 0..settings.runs.max(1) {
        let started = Instant::now();
        run()?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok((first, times))
}

/// Reading the values back is what makes an asynchronous backend finish the work.
fn values(tensor: Tensor<2>) -> Result<Vec<f32>, BenchError> {
    let values = tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|error| BenchError::Readback(format!("{error:?}")))?;
    if values.iter().any(|value| !value.is_finite()) {
        return Err(BenchError::Readback("a value is NaN or infinite".into()));
    }
    Ok(values)
}

fn save(
    settings: &BenchSettings,
    name: &str,
    shape: &[usize],
    values: &[f32],
) -> Result<(), BenchError> {
    let Some(dir) = &settings.save else {
        return Ok(());
    };
    let path = dir.join(format!("{name}.npy"));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, npy::write_f32(shape, values)))
        .map_err(|source| BenchError::Write { path, source })
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn figure(work: &str, variant: &str, backend: &str, ms: Vec<f64>) -> Figure {
    Figure {
        work: work.to_string(),
        variant: variant.to_string(),
        backend: backend.to_string(),
        ms,
    }
}

/// What a device proof allows between the GPU's and the CPU backend's unit-length image
/// embeddings: the CLIP parity tests' bound.
pub const PROOF_BOUND: f32 = 1e-4;

/// `medfocus devices --prove`: CLIP's image tower on the benchmarks' image, on `gpu` and on the
/// CPU backend, each loaded from `folder`: the largest difference of the unit-length embeddings
/// and each device's median time over `runs` (after its first run, which on the GPU compiles the
/// kernels, and one warm-up). The proof `--device auto` needs before it picks this GPU.
pub fn prove_device(
    folder: &Path,
    gpu: &ChosenDevice,
    runs: usize,
) -> Result<DeviceProof, BenchError> {
    let adapter = gpu.report.adapter.as_ref().ok_or_else(|| {
        BenchError::Model("there is no GPU to prove: the CPU backend was chosen".into())
    })?;
    let settings = BenchSettings {
        warmup: 1,
        runs,
        batch: 1,
        grid: 1,
        save: None,
    };
    let image = synthetic_image();
    let measure = |device: &Device| -> Result<(Vec<f32>, Duration, f64), BenchError> {
        let clip =
            load_clip_dir(folder, device).map_err(|error| BenchError::Model(error.to_string()))?;
        let input = preprocess(&image, &clip.preprocess);
        let (first, ms) = time_work(&settings, || {
            encode_images(&clip, &input, 1, device).map(drop)
        })?;
        let embedding = encode_images(&clip, &input, 1, device)?;
        Ok((unit_length(embedding), first, median(&ms)))
    };
    let (on_gpu, gpu_first, gpu_ms) = measure(&gpu.device)?;
    let (on_cpu, _, cpu_ms) = measure(&Device::flex())?;
    let max_abs_diff = if on_gpu.len() == on_cpu.len() {
        on_gpu
            .iter()
            .zip(&on_cpu)
            .map(|(left, right)| (left - right).abs())
            .fold(0.0, f32::max)
    } else {
        f32::INFINITY
    };
    Ok(DeviceProof {
        adapter: adapter.name.clone(),
        backend: adapter.backend.clone(),
        driver: adapter.driver.clone(),
        build: build_label(),
        work: format!("CLIP's image tower on 1 image ({})", name_of(folder)),
        max_abs_diff,
        bound: PROOF_BOUND,
        cpu_ms,
        gpu_ms,
        gpu_first_ms: gpu_first.as_secs_f64() * 1e3,
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
    })
}

/// CLIP's image tower on `count` copies of one preprocessed image, read back.
fn encode_images(
    clip: &LoadedClip,
    input: &[f32],
    count: usize,
    device: &Device,
) -> Result<Vec<f32>, BenchError> {
    let batch = vec![input.to_vec(); count];
    let embedded = clip
        .model
        .encode_image(batch_tensor(&batch, clip.preprocess.image_size, device))
        .map_err(|error| BenchError::Model(error.to_string()))?;
    values(embedded)
}

fn unit_length(values: Vec<f32>) -> Vec<f32> {
    let norm = values.iter().map(|value| value * value).sum::<f32>().sqrt();
    values.into_iter().map(|value| value / norm).collect()
}

/// CLIP: loading, the image tower (one image, a batch, the attention focus), the text tower.
/// Outputs: `clip.image` `[1, d]`, `clip.image_attention` `[1, d]`, `clip.text` `[5, d]`.
///
/// Not split: the figures in the order the benches take them, on one loaded model, each a
/// timed closure and its output.
pub fn bench_clip(
    folder: &Path,
    device: &Device,
    backend: &str,
    settings: &BenchSettings,
) -> Result<Vec<Figure>, BenchError> {
    let variant = name_of(folder);
    let started = Instant::now();
    let clip: LoadedClip =
        load_clip_dir(folder, device).map_err(|error| BenchError::Model(error.to_string()))?;
    let mut figures = vec![figure(
        "clip.load",
        &variant,
        backend,
        vec![started.elapsed().as_secs_f64() * 1e3],
    )];
    let size = clip.preprocess.image_size;
    let image = synthetic_image();
    let input = preprocess(&image, &clip.preprocess);
    let encode = |count: usize| encode_images(&clip, &input, count, device);
    let (first, image_ms) = time_work(settings, || encode(1).map(drop))?;
    figures.push(figure(
        "clip.image.first",
        &variant,
        backend,
        vec![first.as_secs_f64() * 1e3],
    ));
    figures.push(figure("clip.image", &variant, backend, image_ms));
    let embedding = encode(1)?;
    let dim = embedding.len();
    save(settings, "clip.image", &[1, dim], &embedding)?;
    if settings.batch > 1 {
        let (_, batch_ms) = time_work(settings, || encode(settings.batch).map(drop))?;
        figures.push(figure(
            &format!("clip.image_batch_{}", settings.batch),
            &variant,
            backend,
            batch_ms,
        ));
    }
    let mask = Mask::rectangle(512, 512, 100, 100, 400, 400);
    let weights = attention::patch_weights(&mask, &clip.preprocess, clip.model.vision.grid_size());
    let bias = AttentionFocus::default()
        .layer_bias(&[weights], clip.model.vision.layers(), device)
        .map_err(|error| BenchError::Model(error.to_string()))?;
    let focused = || -> Result<Vec<f32>, BenchError> {
        let embedded = clip
            .model
            .encode_image_focused(batch_tensor(&[input.clone()], size, device), &bias)
            .map_err(|error| BenchError::Model(error.to_string()))?;
        values(embedded)
    };
    let (_, focused_ms) = time_work(settings, || focused().map(drop))?;
    figures.push(figure(
        "clip.image_attention",
        &variant,
        backend,
        focused_ms,
    ));
    save(settings, "clip.image_attention", &[1, dim], &focused()?)?;
    let tokens = clip.tokenizer.tokenize_batch(&PROMPTS);
    let text = || -> Result<Vec<f32>, BenchError> {
        let embedded = clip
            .model
            .encode_text(&tokens)
            .map_err(|error| BenchError::Model(error.to_string()))?;
        values(embedded)
    };
    let (first, text_ms) = time_work(settings, || text().map(drop))?;
    figures.push(figure(
        "clip.text.first",
        &variant,
        backend,
        vec![first.as_secs_f64() * 1e3],
    ));
    figures.push(figure("clip.text_5_prompts", &variant, backend, text_ms));
    let texts = text()?;
    save(
        settings,
        "clip.text",
        &[PROMPTS.len(), texts.len() / PROMPTS.len()],
        &texts,
    )?;
    Ok(figures)
}

/// SAM 2: loading (a checkpoint or a burnpack, as `Sam2Model::load_file` reads them for
/// users), then [`bench_sam2_model`]'s figures.
pub fn bench_sam2(
    checkpoint: &Path,
    config: Option<&Sam2Config>,
    device: &Device,
    backend: &str,
    settings: &BenchSettings,
) -> Result<Vec<Figure>, BenchError> {
    let variant = name_of(checkpoint);
    let started = Instant::now();
    let (model, _) = Sam2Model::load_file(checkpoint, config, device)
        .map_err(|error| BenchError::Model(error.to_string()))?;
    let mut figures = vec![figure(
        "sam2.load",
        &variant,
        backend,
        vec![started.elapsed().as_secs_f64() * 1e3],
    )];
    figures.extend(bench_sam2_model(model, &variant, backend, settings)?);
    Ok(figures)
}

/// SAM 2 on a loaded model: `set_image`, one point prompt at the centre (three masks), the
/// automatic generator from the image. Outputs: `sam2.image_embed` (its values),
/// `sam2.point_iou` `[3]`, `sam2.point_masks` `[3, 512, 512]` (1 inside), `sam2.automatic`
/// `[masks, 6]` (box, area, predicted IoU).
///
/// Not split: the figures in the order the benches take them, on one model and one embedded
/// image, each a timed closure and its output.
pub fn bench_sam2_model(
    model: Sam2Model,
    variant: &str,
    backend: &str,
    settings: &BenchSettings,
) -> Result<Vec<Figure>, BenchError> {
    let model_error = |error: &dyn std::fmt::Display| BenchError::Model(error.to_string());
    let mut figures = Vec::new();
    let predictor = Sam2Predictor::new(model);
    let image = synthetic_image();
    let embed = || -> Result<Vec<f32>, BenchError> {
        let embedded = predictor.set_image(&image);
        pollster::block_on(read_floats(embedded.features.image_embed)).map_err(|e| model_error(&e))
    };
    let (first, embed_ms) = time_work(settings, || embed().map(drop))?;
    figures.push(figure(
        "sam2.embed.first",
        variant,
        backend,
        vec![first.as_secs_f64() * 1e3],
    ));
    figures.push(figure("sam2.embed", variant, backend, embed_ms));
    let embedding = embed()?;
    save(settings, "sam2.image_embed", &[embedding.len()], &embedding)?;
    let embedded = predictor.set_image(&image);
    let prompt = Prompt::point(256.0, 256.0);
    let decode = || -> Result<(Vec<f32>, Vec<Vec<bool>>), BenchError> {
        let prediction = predictor
            .predict(&embedded, &[prompt.clone()], true)
            .map_err(|e| model_error(&e))?;
        let iou = values(prediction.iou_predictions.clone())?;
        let masks =
            pollster::block_on(prediction.read_inside(0, 0.0)).map_err(|e| model_error(&e))?;
        Ok((iou, masks))
    };
    let (_, decode_ms) = time_work(settings, || decode().map(drop))?;
    figures.push(figure("sam2.point_prompt", variant, backend, decode_ms));
    let (iou, masks) = decode()?;
    save(settings, "sam2.point_iou", &[iou.len()], &iou)?;
    let inside: Vec<f32> = masks
        .iter()
        .flat_map(|mask| mask.iter().map(|&pixel| f32::from(u8::from(pixel))))
        .collect();
    save(
        settings,
        "sam2.point_masks",
        &[masks.len(), 512, 512],
        &inside,
    )?;
    let generator = GeneratorSettings {
        points_per_side: settings.grid,
        pred_iou_thresh: 0.0,
        stability_score_thresh: 0.0,
        ..GeneratorSettings::default()
    };
    let started = Instant::now();
    let embedded = predictor.set_image(&image);
    let found = pollster::block_on(generate(&predictor, &embedded, &generator))
        .map_err(|e| model_error(&e))?;
    figures.push(figure(
        &format!("sam2.automatic_{}", settings.grid),
        variant,
        backend,
        vec![started.elapsed().as_secs_f64() * 1e3],
    ));
    let rows: Vec<f32> = found
        .iter()
        .flat_map(|mask| {
            let [x0, y0, x1, y1] = mask.box_xyxy;
            [
                x0 as f32,
                y0 as f32,
                x1 as f32,
                y1 as f32,
                mask.area as f32,
                mask.predicted_iou,
            ]
        })
        .collect();
    save(settings, "sam2.automatic", &[found.len(), 6], &rows)?;
    Ok(figures)
}
