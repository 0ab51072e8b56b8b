//! `cargo bench --bench clip_encode`: CLIP ViT-B/16 on this machine — loading, one image through
//! the image tower (plain and with the attention focus), and a batch of prompts through the text
//! tower — median of timed runs after a warm-up, on the CPU backend (`MEDFOCUS_BENCH_DEVICE=gpu`
//! or `both` for the wgpu adapter; `MEDFOCUS_BENCH_RUNS` timed runs, 5 by default). The work is
//! `medfocus::bench::bench_clip`, the one `medfocus bench --clip` times; each figure is also
//! printed as a `medfocus-bench {json}` line, as that command prints it.
//!
//! Needs a real-size model folder: `python scripts/reference/gen_clip.py large` writes
//! random-weight ViT-B/16 checkpoints (same sizes and work as the published ones) into
//! `fixtures-large/`; or point `MEDFOCUS_BENCH_MODEL` at a downloaded model.
use std::path::PathBuf;

mod common;

use medfocus::bench::bench_clip;

fn main() {
    medfocus::allocator::reset_freed_pages_instead_of_decommitting();
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
    let settings = common::settings(5);
    for (device, name) in common::devices() {
        for model in &models {
            let figures = bench_clip(model, &device, &name, &settings)
                .unwrap_or_else(|error| panic!("{}: {error}", model.display()));
            common::report_all(&figures);
        }
    }
}
