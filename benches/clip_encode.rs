//! `cargo bench --bench clip_encode`: CLIP ViT-B/16 on this machine — loading, one image through
//! the image tower (plain and with the attention focus), and a batch of prompts through the text
//! tower — median of timed runs after a warm-up, on the CPU backend (`MEDFOCUS_BENCH_DEVICE=gpu`
//! or `both` for the wgpu adapter; `MEDFOCUS_BENCH_RUNS` timed runs, 5 by default). Each figure
//! is also printed as a `medfocus-bench {json}` line for `scripts/bench/side_by_side.py`.
//!
//! Needs a real-size model folder: `python scripts/reference/gen_clip.py large` writes
//! random-weight ViT-B/16 checkpoints (same sizes and work as the published ones) into
//! `fixtures-large/`; or point `MEDFOCUS_BENCH_MODEL` at a downloaded model.
use std::path::PathBuf;
use std::time::Instant;

mod common;

use burn::tensor::{Device, Tensor};
use medfocus::clip::load::load_clip_dir;
use medfocus::clip::preprocess::{Pixels8, batch_tensor, preprocess};
use medfocus::focus::{AttentionFocus, attention};

const WARMUP: usize = 1;
const RUNS: usize = 5;

fn timed(run: impl FnMut()) -> common::Timings {
    common::time_runs(WARMUP, RUNS, run)
}

/// Reading the values back is what makes asynchronous backends finish the work.
fn finish(tensor: Tensor<2>) {
    let values = tensor.into_data().try_to_vec::<f32>().expect("f32");
    assert!(values.iter().all(|v| v.is_finite()));
}

fn bench(model: &PathBuf, device: &Device, label: &str) {
    let started = Instant::now();
    let clip = load_clip_dir(model, device).unwrap_or_else(|error| panic!("{error}"));
    let load = started.elapsed();
    let size = clip.preprocess.image_size;
    let image = Pixels8 {
        width: 512,
        height: 512,
        channels: 3,
        data: (0..512 * 512 * 3).map(|i| (i % 251) as u8).collect(),
    };
    let input = preprocess(&image, &clip.preprocess);
    let image_time = timed(|| {
        finish(
            clip.model
                .encode_image(batch_tensor(&[input.clone()], size, device))
                .unwrap(),
        )
    });
    let mask = medfocus::focus::Mask::rectangle(512, 512, 100, 100, 400, 400);
    let weights = attention::patch_weights(&mask, &clip.preprocess, clip.model.vision.grid_size());
    let bias = AttentionFocus::default()
        .layer_bias(&[weights], clip.model.vision.layers(), device)
        .unwrap();
    let focused_time = timed(|| {
        finish(
            clip.model
                .encode_image_focused(batch_tensor(&[input.clone()], size, device), &bias)
                .unwrap(),
        )
    });
    let prompts: Vec<String> = [
        "glioma",
        "meningioma",
        "no tumor",
        "pituitary tumor",
        "normal",
    ]
    .iter()
    .map(|class| format!("a medical image showing {class}."))
    .collect();
    let tokens = clip.tokenizer.tokenize_batch(&prompts);
    let text_time = timed(|| finish(clip.model.encode_text(&tokens).unwrap()));
    // The model folder's name tells the figures of two models apart.
    let variant = model.file_name().map_or_else(
        || clip.family.to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    common::report("clip.load", &variant, label, &common::Timings(vec![load]));
    common::report("clip.image", &variant, label, &image_time);
    common::report("clip.image_attention", &variant, label, &focused_time);
    common::report("clip.text_5_prompts", &variant, label, &text_time);
    println!(
        "{} ({}) on {label}: load {:.2} s; image tower, 1 image {:.0} ms, with attention focus {:.0} ms; text tower, 5 prompts {:.0} ms (median of {})",
        model.display(),
        clip.family,
        load.as_secs_f64(),
        image_time.median_ms(),
        focused_time.median_ms(),
        text_time.median_ms(),
        image_time.0.len(),
    );
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let models: Vec<PathBuf> = match std::env::var_os("MEDFOCUS_BENCH_MODEL") {
        Some(model) => vec![PathBuf::from(model)],
        None => ["openai-vit-b-16", "biomedclip-vit-b-16"]
            .iter()
            .map(|name| root.join("fixtures-large/clip").join(name))
            .collect(),
    };
    if let Some(missing) = models.iter().find(|model| !model.is_dir()) {
        eprintln!(
            "{} is missing: run `python scripts/reference/gen_clip.py large` or set MEDFOCUS_BENCH_MODEL",
            missing.display()
        );
        std::process::exit(2);
    }
    for (device, name) in common::devices() {
        for model in &models {
            bench(model, &device, &name);
        }
    }
}
