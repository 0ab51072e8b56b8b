//! `cargo bench --bench eval_pipeline`: images per second through the evaluation's whole
//! pipeline — decode, SAM 2's automatic masks, the overlay, the image tower, a zero-shot run per
//! manifest — on `../shared/data/brain-mri` (17 images), once with empty caches and once served
//! from the embedding and region caches, on the CPU backend.
//!
//! Defaults to the committed tiny random-weight fixtures (4×4 SAM 2 grid), which measure the
//! plumbing, not the models. Real-size: `MEDFOCUS_BENCH_MODEL=<CLIP folder>` (e.g. the `large`
//! fixtures of `gen_clip.py`) and `MEDFOCUS_BENCH_SAM2=<sam2 .pt>` with
//! `MEDFOCUS_BENCH_POINTS=32`.
use std::path::PathBuf;
use std::time::Instant;

use medfocus::clip::load::load_clip_dir;
use medfocus::dataset::Dataset;
use medfocus::device::{self, DeviceRequest};
use medfocus::eval::protocol::{draw, pools};
use medfocus::eval::records::{PredictionRecord, RunRecord};
use medfocus::eval::{
    EvalError, EvalMasks, EvalObserver, EvalRequest, HashedSet, Protocol, evaluate,
};
use medfocus::focus::FocusMode;
use medfocus::focus::FocusSettings;
use medfocus::heads::HeadKind;
use medfocus::heads::train::HeadSettings;
use medfocus::heads::train::cache::EmbeddingCache;
use medfocus::pipeline::Segmenter;
use medfocus::sam2::automatic_mask_generator::GeneratorSettings;
use medfocus::sam2::{Sam2Config, Sam2Model, Sam2Predictor};

struct Quiet;

impl EvalObserver for Quiet {
    fn finished(&mut self, _: &RunRecord, _: &[PredictionRecord]) -> Result<(), EvalError> {
        Ok(())
    }
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixture = |relative: &str| repo.join("tests/fixtures").join(relative);
    let model = std::env::var_os("MEDFOCUS_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixture("clip/openclip-tiny"));
    let (sam2, config) = match std::env::var_os("MEDFOCUS_BENCH_SAM2") {
        Some(path) => (PathBuf::from(path), None),
        None => (
            fixture("sam2/sam2.1-tiny-small.pt"),
            Some(fixture("sam2/sam2.1-tiny-small.config.json")),
        ),
    };
    let points: usize = std::env::var("MEDFOCUS_BENCH_POINTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(4);
    let data = std::env::var_os("MEDFOCUS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data"))
        .join("brain-mri");

    let chosen = device::choose_device_blocking(DeviceRequest::Cpu).expect("device");
    let clip = load_clip_dir(&model, &chosen.device).expect("CLIP");
    let config = config.map(|path| Sam2Config::read_file(&path).expect("SAM 2 config"));
    let (sam2_model, _) =
        Sam2Model::load_file(&sam2, config.as_ref(), &chosen.device).expect("SAM 2");
    let settings = GeneratorSettings {
        points_per_side: points,
        ..GeneratorSettings::default()
    };
    let segmenter = Segmenter::new(
        Sam2Predictor::new(sam2_model),
        settings,
        "bench sam2".into(),
    );
    let set = HashedSet::new(Dataset::open(&data, None).expect("data"), &mut |_, _| {});
    let pools = pools(&set.dataset, 0).expect("pools");
    let manifest = draw(&set, &pools, Protocol::fraction(1.0).expect("protocol"), 1).expect("draw");
    let resolved = manifest.resolve(&set).expect("resolve");
    let cache_dir =
        std::env::temp_dir().join(format!("medfocus-bench-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache_dir);

    println!(
        "eval pipeline, CPU backend, {} ({} images), CLIP {}, SAM 2 {} ({points}×{points} grid), focus overlay, zero-shot head:",
        data.display(),
        set.dataset.samples.len(),
        model.display(),
        sam2.display()
    );
    for pass in ["first pass (empty caches)", "second pass (from the caches)"] {
        let started = Instant::now();
        let summary = evaluate(
            EvalRequest {
                set: &set,
                manifests: vec![(manifest.clone(), resolved.clone())],
                clip: &clip,
                clip_name: "bench".into(),
                class_names: None,
                templates: Vec::new(),
                heads: vec![HeadKind::ZeroShot],
                focuses: vec![FocusMode::new("overlay", FocusSettings::default())],
                masks: EvalMasks::Sam2(&segmenter),
                cache: Some(EmbeddingCache::new(&cache_dir)),
                settings: HeadSettings::new(HeadKind::ZeroShot),
                device: chosen.device.clone(),
                done: Default::default(),
                localisation: Vec::new(),
            },
            &mut Quiet,
        )
        .expect("evaluate");
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  {pass:32} {:>7.2} images/s  ({} images in {seconds:.2} s, {} from the cache, {} SAM 2 passes)",
            summary.embedded as f64 / seconds,
            summary.embedded,
            summary.from_cache,
            summary.segmented
        );
    }
    let _ = std::fs::remove_dir_all(&cache_dir);
}
