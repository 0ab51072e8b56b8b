//! `cargo bench --bench heads_train`: how long training each support head takes on this machine's
//! CPU backend, for a realistic few-shot support set — 4 classes × 16 images with ViT-B/16's
//! 512-wide embeddings (synthetic, seeded) — median of timed runs after a warm-up. With a
//! real-size CLIP folder (`python scripts/reference/gen_clip.py large`, or
//! `MEDFOCUS_BENCH_MODEL`), also CoOp through the text tower and the fine-tune of the last two
//! image blocks, per epoch.
use std::path::PathBuf;
use std::time::Instant;

mod common;

use burn::tensor::Device;
use medfocus::clip::load::load_clip_dir;
use medfocus::heads::rng::SplitMix64;
use medfocus::heads::train::coop::train_coop;
use medfocus::heads::train::finetune::{TokenSet, train_finetune};
use medfocus::heads::train::training::Training;
use medfocus::heads::train::{HeadSettings, TextPrior, train_head};
use medfocus::heads::train::{Silent, TrainRun};
use medfocus::heads::{FeatureSet, HeadKind};

const CLASSES: usize = 4;
const SHOTS: usize = 16;

fn synthetic(dim: usize) -> (FeatureSet, TextPrior) {
    let mut rng = SplitMix64::new(7);
    let means: Vec<Vec<f32>> = (0..CLASSES)
        .map(|_| (0..dim).map(|_| rng.normal() as f32).collect())
        .collect();
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (class, mean) in means.iter().enumerate() {
        for _ in 0..SHOTS {
            values.extend(mean.iter().map(|m| m + 3.0 * rng.normal() as f32));
            labels.push(class);
        }
    }
    let names = (0..CLASSES).map(|c| format!("class {c}")).collect();
    let features = FeatureSet::new(names, dim, values, labels).unwrap();
    // A text prior that points roughly, not exactly, at the classes (zero-shot is imperfect and
    // the heads have something to learn).
    let prior: Vec<f32> = means
        .concat()
        .iter()
        .map(|m| m + 1.5 * rng.normal() as f32)
        .collect();
    let text = FeatureSet::new(
        (0..CLASSES).map(|c| c.to_string()).collect(),
        dim,
        prior,
        (0..CLASSES).collect(),
    )
    .unwrap();
    (
        features,
        TextPrior {
            embeddings: text.values,
            scale: 100.0,
        },
    )
}

fn main() {
    medfocus::allocator::reset_freed_pages_instead_of_decommitting();
    let device = Device::flex().autodiff();
    let (features, text) = synthetic(512);
    println!(
        "support heads, CPU backend, {CLASSES} classes × {SHOTS} images, 512-wide embeddings (median of 3):"
    );
    for kind in [
        HeadKind::ZeroShot,
        HeadKind::LinearProbe,
        HeadKind::LpText,
        HeadKind::TipAdapter,
        HeadKind::TipAdapterF,
    ] {
        let settings = HeadSettings::new(kind);
        let mut training = serde_json::Value::Null;
        let time = common::median(1, 3, || {
            let (mut run, _) = TrainRun::open(None, "bench", false).unwrap();
            training = train_head(&features, &text, &settings, &mut run, &mut Silent, &device)
                .unwrap()
                .training;
        });
        let steps = training
            .pointer("/final/epochs_run")
            .or_else(|| training.pointer("/final/iterations"))
            .map(|value| format!(", final fit {value} steps"))
            .unwrap_or_default();
        println!(
            "  {:14} {:>8.3} s (default settings{steps})",
            kind.name(),
            time.as_secs_f64()
        );
    }

    let model = std::env::var_os("MEDFOCUS_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures-large/clip/openai-vit-b-16")
        });
    if !model.is_dir() {
        println!(
            "CoOp and fine-tune skipped: no {} (python scripts/reference/gen_clip.py large)",
            model.display()
        );
        return;
    }
    let clip = load_clip_dir(&model, &Device::flex()).unwrap_or_else(|error| panic!("{error}"));
    let dim = clip.model.config.embed_dim;
    let (features, text) = synthetic(dim);
    let names: Vec<String> = ["glioma", "meningioma", "no tumor", "pituitary tumor"]
        .map(String::from)
        .to_vec();
    const EPOCHS: usize = 5;
    let mut settings = HeadSettings::new(HeadKind::Coop);
    settings.epochs = Some(EPOCHS);
    settings.holdout = 0.0;
    let started = Instant::now();
    let (mut run, _) = TrainRun::open(None, "bench", false).unwrap();
    train_coop(
        &clip,
        &features,
        &names,
        Training::new(&settings, &mut run, &mut Silent, &device),
    )
    .unwrap();
    println!(
        "  coop           {:>8.2} s per epoch ({}: 4 prompts through the text tower, forward and backward; {EPOCHS} epochs)",
        started.elapsed().as_secs_f64() / EPOCHS as f64,
        model.display()
    );

    let vision = &clip.model.vision;
    let tokens = (vision.grid_size() * vision.grid_size()) + 1;
    let width = vision.width();
    let mut rng = SplitMix64::new(3);
    let set = TokenSet {
        classes: names.clone(),
        tokens,
        width,
        values: (0..CLASSES * SHOTS * tokens * width)
            .map(|_| rng.normal() as f32)
            .collect(),
        labels: features.labels.clone(),
    };
    let mut settings = HeadSettings::new(HeadKind::Finetune);
    settings.epochs = Some(EPOCHS);
    settings.holdout = 0.0;
    let started = Instant::now();
    let (mut run, _) = TrainRun::open(None, "bench", false).unwrap();
    train_finetune(
        vision,
        &set,
        &text,
        Training::new(&settings, &mut run, &mut Silent, &device),
    )
    .unwrap();
    println!(
        "  finetune       {:>8.2} s per epoch (last {} blocks, {} images of {tokens} tokens × {width}, full batch; {EPOCHS} epochs)",
        started.elapsed().as_secs_f64() / EPOCHS as f64,
        settings.finetune_blocks,
        CLASSES * SHOTS
    );
}
