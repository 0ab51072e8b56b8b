//! `cargo bench --bench explain`: what an explanation costs against the plain classification it
//! explains — CLIP ViT-B/16, one 512×512 image, zero-shot over 4 classes, on the CPU backend
//! (`MEDFOCUS_BENCH_DEVICE=gpu` or `both` for the wgpu adapter): `classify` alone, the dense
//! map, relevancy from the last block (Chefer's default) and from every block. Median of timed
//! runs after a warm-up (`MEDFOCUS_BENCH_RUNS`, 5 by default); each figure also as a
//! `medfocus-bench {json}` line.
//!
//! Needs `fixtures-large/clip/openai-vit-b-16` (`python scripts/reference/gen_clip.py large`:
//! random weights, the published sizes) or `MEDFOCUS_BENCH_MODEL` pointing at a model folder.
use std::path::{Path, PathBuf};

mod common;

use medfocus::clip::ZeroShotClassifier;
use medfocus::clip::load::load_clip_dir;
use medfocus::clip::preprocess::Pixels8;
use medfocus::explain::{ExplainMethod, ExplainRequest, explain};
use medfocus::pipeline::{MaskSource, Pipeline};

const WARMUP: usize = 1;
const RUNS: usize = 5;

fn bench(model: &Path, device: &burn::tensor::Device, label: &str) {
    let clip = load_clip_dir(model, device).unwrap_or_else(|error| panic!("{error}"));
    let classes = ["glioma", "meningioma", "pituitary tumor", "no tumor"];
    let classifier = ZeroShotClassifier::new(&clip, &classes, &[]).unwrap();
    let pipeline = Pipeline::zero_shot(&clip, &classifier, "none", &Default::default()).unwrap();
    let image = Pixels8 {
        width: 512,
        height: 512,
        channels: 3,
        data: (0..512 * 512 * 3).map(|i| (i % 251) as u8).collect(),
    };
    let source = MaskSource::None;
    let classify = common::time_runs(WARMUP, RUNS, || {
        let prediction = pollster::block_on(pipeline.classify(&image, &source)).unwrap();
        assert!(prediction.probabilities.iter().all(|p| p.is_finite()));
    });
    let variant = model.file_name().map_or_else(
        || clip.family.to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    common::report("explain.classify", &variant, label, &classify);
    let mut line = format!(
        "{} on {label}: classify {:.0} ms",
        model.display(),
        classify.median_ms()
    );
    for (work, method, start_block) in [
        ("explain.dense", ExplainMethod::Dense, None),
        (
            "explain.relevancy_last_block",
            ExplainMethod::Relevancy,
            None,
        ),
        (
            "explain.relevancy_all_blocks",
            ExplainMethod::Relevancy,
            Some(0),
        ),
    ] {
        let request = ExplainRequest {
            method,
            class: None,
            start_block,
        };
        let timings = common::time_runs(WARMUP, RUNS, || {
            let explained =
                pollster::block_on(explain(&pipeline, &image, &source, &request)).unwrap();
            assert!(
                explained
                    .explanation
                    .patch_map
                    .iter()
                    .all(|v| v.is_finite())
            );
        });
        common::report(work, &variant, label, &timings);
        line += &format!(
            "; {} {:.0} ms ({:.2}×)",
            work.trim_start_matches("explain."),
            timings.median_ms(),
            timings.median_ms() / classify.median_ms()
        );
    }
    println!("{line} (median of {})", classify.0.len());
}

fn main() {
    medfocus::allocator::reset_freed_pages_instead_of_decommitting();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = std::env::var_os("MEDFOCUS_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures-large/clip/openai-vit-b-16"));
    if !model.is_dir() {
        eprintln!(
            "{} is missing: run `python scripts/reference/gen_clip.py large` or set MEDFOCUS_BENCH_MODEL",
            model.display()
        );
        std::process::exit(2);
    }
    for (device, name) in common::devices() {
        bench(&model, &device, &name);
    }
}
