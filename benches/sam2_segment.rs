//! `cargo bench --bench sam2_segment`: SAM 2.1 tiny on this machine — loading, embedding one
//! image (1024×1024 input), decoding one point prompt (three masks at 512×512), and the
//! automatic mask generator's grid (16×16 points) — f32 and int8 (per block of 32), median of
//! timed runs after a warm-up, on the CPU backend (`MEDFOCUS_BENCH_DEVICE=gpu` or `both` for the
//! wgpu adapter; `MEDFOCUS_BENCH_WEIGHTS=f32` or `int8` for one of the two; `MEDFOCUS_BENCH_RUNS`
//! timed runs, 3 by default). Also the burnpack sizes. Each figure is also printed as a
//! `medfocus-bench {json}` line for `scripts/bench/side_by_side.py`.
//!
//! The automatic row is timed from the image, embedding included, as Meta's
//! `SAM2AutomaticMaskGenerator.generate(image)` is.
//!
//! Needs the real-size checkpoint: `python scripts/reference/gen_sam2.py large` writes a
//! random-weight SAM 2.1 tiny (same sizes and work as Meta's) into `fixtures-large/`; or point
//! `MEDFOCUS_BENCH_SAM2` at `sam2.1_hiera_tiny.pt`.
use std::path::PathBuf;
use std::time::Instant;

mod common;

use burn::tensor::Device;
use medfocus::clip::preprocess::Pixels8;
use medfocus::sam2::automatic_mask_generator::{GeneratorSettings, generate};
use medfocus::sam2::predictor::read_floats;
use medfocus::sam2::quantize::{Int8Granularity, quantize_int8};
use medfocus::sam2::{Prompt, Sam2Model, Sam2Predictor};

const WARMUP: usize = 1;
const RUNS: usize = 3;

fn timed(run: impl FnMut()) -> common::Timings {
    common::time_runs(WARMUP, RUNS, run)
}

fn bench(checkpoint: &PathBuf, device: &Device, label: &str, int8: bool) {
    let started = Instant::now();
    let mut model = Sam2Model::load(checkpoint, None, device).unwrap_or_else(|e| panic!("{e}"));
    let weights = if int8 {
        let granularity = Int8Granularity::PerBlock(32);
        model = quantize_int8(model, granularity);
        granularity.label()
    } else {
        "f32".to_string()
    };
    let load = started.elapsed();
    let bytes = model.to_burnpack(&weights).expect("burnpack").len();
    let predictor = Sam2Predictor::new(model);
    let image = Pixels8 {
        width: 512,
        height: 512,
        channels: 3,
        data: (0..512 * 512 * 3).map(|i| (i % 251) as u8).collect(),
    };
    let embed_time = timed(|| {
        let embedded = predictor.set_image(&image);
        pollster::block_on(read_floats(embedded.features.image_embed)).expect("read");
    });
    let embedded = predictor.set_image(&image);
    let prompt = Prompt::point(256.0, 256.0);
    let decode_time = timed(|| {
        let prediction = predictor
            .predict(&embedded, &[prompt.clone()], true)
            .expect("predict");
        pollster::block_on(prediction.read_inside(0, 0.0)).expect("read");
    });
    let settings = GeneratorSettings {
        points_per_side: 16,
        pred_iou_thresh: 0.0,
        stability_score_thresh: 0.0,
        ..GeneratorSettings::default()
    };
    let started = Instant::now();
    let embedded = predictor.set_image(&image);
    let masks = pollster::block_on(generate(&predictor, &embedded, &settings)).expect("generate");
    let auto_time = common::Timings(vec![started.elapsed()]);
    common::report("sam2.load", &weights, label, &common::Timings(vec![load]));
    common::report("sam2.embed", &weights, label, &embed_time);
    common::report("sam2.point_prompt", &weights, label, &decode_time);
    common::report("sam2.automatic_16", &weights, label, &auto_time);
    println!(
        "{} ({weights}) on {label}: load {:.2} s, burnpack {:.1} MB; embed 1 image {:.0} ms; 1 point prompt {:.0} ms (median of {}); automatic 16×16 grid from the image {:.1} s ({} masks kept)",
        checkpoint.display(),
        load.as_secs_f64(),
        bytes as f64 / 1e6,
        embed_time.median_ms(),
        decode_time.median_ms(),
        embed_time.0.len(),
        auto_time.median().as_secs_f64(),
        masks.len(),
    );
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let checkpoint = std::env::var_os("MEDFOCUS_BENCH_SAM2")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures-large/sam2/sam2.1-hiera-tiny.pt"));
    if !checkpoint.is_file() {
        eprintln!(
            "{} is missing: run `python scripts/reference/gen_sam2.py large` or set MEDFOCUS_BENCH_SAM2",
            checkpoint.display()
        );
        std::process::exit(2);
    }
    let weights: &[bool] = match std::env::var("MEDFOCUS_BENCH_WEIGHTS").as_deref() {
        Ok("f32") => &[false],
        Ok("int8") => &[true],
        Ok("both") | Err(_) => &[false, true],
        Ok(other) => panic!("MEDFOCUS_BENCH_WEIGHTS={other}: expected f32, int8 or both"),
    };
    for (device, name) in common::devices() {
        for &int8 in weights {
            bench(&checkpoint, &device, &name, int8);
        }
    }
}
