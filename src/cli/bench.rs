//! `medfocus bench`: the benchmarks' work timed in this binary on the chosen device, the outputs
//! written for parity (`medfocus::bench`; `scripts/bench/gpu.py` drives it on a GPU machine).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use medfocus::bench::{BenchSettings, bench_clip, bench_sam2};
use medfocus::device::{self, DeviceRequest};

use super::args::{CliResult, read_sam2_config};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A CLIP model folder: its load, image tower (one image, a batch, the attention focus) and
    /// text tower (five prompts).
    #[arg(long)]
    clip: Option<PathBuf>,
    /// SAM 2 weights (`.pt` or burnpack): load, `set_image`, one point prompt, automatic masks.
    #[arg(long)]
    sam2: Option<PathBuf>,
    /// Config JSON for SAM 2 weights that are not a published model.
    #[arg(long)]
    sam2_config: Option<PathBuf>,
    /// Timed runs of each piece of work (after the first, reported apart, and the warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    runs: u16,
    /// Untimed runs after the first.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=100))]
    warmup: u16,
    /// Images in the batched image-tower figure (1: none).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    batch: u16,
    /// Points per side of the automatic masks' grid.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=128))]
    grid: u16,
    /// Write every output (embeddings, masks) as `<name>.npy` here, for parity checks.
    #[arg(long)]
    save: Option<PathBuf>,
}

pub fn run(out: &mut impl Write, request: DeviceRequest, args: &BenchArgs) -> CliResult {
    if args.clip.is_none() && args.sam2.is_none() {
        return Err("give --clip, --sam2 or both: the models to time".into());
    }
    let chosen = device::choose_device_blocking(request)?;
    let backend = chosen.report.summary();
    let settings = BenchSettings {
        warmup: usize::from(args.warmup),
        runs: usize::from(args.runs),
        batch: usize::from(args.batch),
        grid: usize::from(args.grid),
        save: args.save.clone(),
    };
    let mut figures = Vec::new();
    if let Some(folder) = &args.clip {
        figures.extend(bench_clip(folder, &chosen.device, &backend, &settings)?);
    }
    if let Some(checkpoint) = &args.sam2 {
        let config = read_sam2_config(args.sam2_config.as_deref())?;
        figures.extend(bench_sam2(
            checkpoint,
            config.as_ref(),
            &chosen.device,
            &backend,
            &settings,
        )?);
    }
    for figure in &figures {
        // The line `scripts/bench/side_by_side.py` and `gpu.py` read, then one for a person.
        writeln!(out, "medfocus-bench {}", serde_json::to_string(figure)?)?;
    }
    writeln!(out, "on {backend}:")?;
    for figure in &figures {
        writeln!(
            out,
            "  {:28} {:>10.1} ms  (median of {}, {})",
            figure.work,
            figure.median_ms(),
            figure.ms.len(),
            figure.variant
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
