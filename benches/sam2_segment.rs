//! `cargo bench --bench sam2_segment`: SAM 2.1 tiny on this machine — loading, embedding one
//! image (1024×1024 input), decoding one point prompt (three masks at 512×512), and the
//! automatic mask generator's grid (16×16 points) — f32 and int8 (per block of 32), median of
//! timed runs after a warm-up, on the CPU backend (`MEDFOCUS_BENCH_DEVICE=gpu` or `both` for the
//! wgpu adapter; `MEDFOCUS_BENCH_WEIGHTS=f32` or `int8` for one of the two; `MEDFOCUS_BENCH_RUNS`
//! timed runs, 3 by default). The work is `medfocus::bench::bench_sam2_model`, the one `medfocus
//! bench --sam2` times; each figure is also printed as a `medfocus-bench {json}` line.
//!
//! int8 is timed as users get it: the model quantized, written as a burnpack and read back for
//! the device (on the CPU backend that expands the weights to f32 once, at load).
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
use medfocus::bench::{Figure, bench_sam2_model};
use medfocus::sam2::Sam2Model;
use medfocus::sam2::quantize::{Int8Granularity, quantize_int8};

fn bench(checkpoint: &PathBuf, device: &Device, label: &str, int8: bool) -> Vec<Figure> {
    let started = Instant::now();
    let mut model = Sam2Model::load(checkpoint, None, device).unwrap_or_else(|e| panic!("{e}"));
    let mut weights = "f32".to_string();
    if int8 {
        let granularity = Int8Granularity::PerBlock(32);
        weights = granularity.label();
        let bytes = quantize_int8(model, granularity)
            .to_burnpack(&weights)
            .expect("burnpack");
        println!("int8 burnpack: {:.1} MB", bytes.len() as f64 / 1e6);
        model = Sam2Model::from_burnpack_for(bytes, device)
            .expect("the burnpack reads back")
            .0;
    }
    let load = Figure {
        work: "sam2.load".into(),
        variant: weights.clone(),
        backend: label.into(),
        ms: vec![started.elapsed().as_secs_f64() * 1e3],
    };
    let mut settings = common::settings(3);
    settings.grid = 16;
    let mut figures = vec![load];
    figures.extend(
        bench_sam2_model(model, &weights, label, &settings).unwrap_or_else(|e| panic!("{e}")),
    );
    figures
}

fn main() {
    medfocus::allocator::reset_freed_pages_instead_of_decommitting();
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
            common::report_all(&bench(&checkpoint, &device, &name, int8));
        }
    }
}
