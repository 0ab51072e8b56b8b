//! What the benchmarks share: timed runs after a warm-up, their median, the devices asked for,
//! and one machine-readable line per figure for `scripts/bench/side_by_side.py`.
#![allow(dead_code)] // each bench uses its own part of this file

use std::time::{Duration, Instant};

use medfocus::device::{self, DeviceRequest};

/// The allocator the `medfocus` program uses (src/main.rs), so the benches time what users run;
/// each bench's `main` makes the program's setting (`medfocus::allocator`) first.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Every timed run of one piece of work, in the order they ran.
pub struct Timings(pub Vec<Duration>);

impl Timings {
    pub fn median(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }

    pub fn median_ms(&self) -> f64 {
        self.median().as_secs_f64() * 1e3
    }
}

/// `warmup` untimed runs, then `runs` timed ones (`MEDFOCUS_BENCH_RUNS` overrides `runs`).
pub fn time_runs(warmup: usize, runs: usize, mut run: impl FnMut()) -> Timings {
    let runs = runs_override().unwrap_or(runs).max(1);
    let mut times = Vec::with_capacity(runs);
    for index in 0..warmup + runs {
        let started = Instant::now();
        run();
        if index >= warmup {
            times.push(started.elapsed());
        }
    }
    Timings(times)
}

pub fn median(warmup: usize, runs: usize, run: impl FnMut()) -> Duration {
    time_runs(warmup, runs, run).median()
}

fn runs_override() -> Option<usize> {
    std::env::var("MEDFOCUS_BENCH_RUNS").ok()?.parse().ok()
}

/// One figure as a JSON line (`medfocus-bench {...}`), which the side-by-side script reads; the
/// human summary line is printed beside it.
pub fn report(work: &str, variant: &str, backend: &str, timings: &Timings) {
    let ms: Vec<f64> = timings.0.iter().map(|t| t.as_secs_f64() * 1e3).collect();
    let line = serde_json::json!({
        "work": work,
        "variant": variant,
        "backend": backend,
        "ms": ms,
    });
    println!("medfocus-bench {line}");
}

/// `medfocus::bench`'s settings for a bench: one warm-up, `runs` timed runs
/// (`MEDFOCUS_BENCH_RUNS` overrides), no batch figure, the 16×16 automatic grid, nothing saved.
pub fn settings(runs: usize) -> medfocus::bench::BenchSettings {
    medfocus::bench::BenchSettings {
        warmup: 1,
        runs: runs_override().unwrap_or(runs).max(1),
        batch: 1,
        grid: 16,
        save: None,
    }
}

/// `medfocus::bench`'s figures as `medfocus bench` prints them (one JSON line each), and a
/// median per line for people.
pub fn report_all(figures: &[medfocus::bench::Figure]) {
    for figure in figures {
        let line = serde_json::to_string(figure).expect("a figure is JSON");
        println!("medfocus-bench {line}");
    }
    for figure in figures {
        println!(
            "{} ({}) on {}: {:.1} ms (median of {})",
            figure.work,
            figure.variant,
            figure.backend,
            figure.median_ms(),
            figure.ms.len()
        );
    }
}

/// The devices a bench runs on: `MEDFOCUS_BENCH_DEVICE=cpu` (default), `gpu`, or `both`
/// (`MEDFOCUS_BENCH_GPU=1`, the older spelling, means `both`). Each with the name it is reported
/// under.
pub fn devices() -> Vec<(burn::tensor::Device, String)> {
    let choice = std::env::var("MEDFOCUS_BENCH_DEVICE").unwrap_or_else(|_| {
        if std::env::var_os("MEDFOCUS_BENCH_GPU").is_some() {
            "both".into()
        } else {
            "cpu".into()
        }
    });
    let (cpu, gpu) = match choice.as_str() {
        "cpu" => (true, false),
        "gpu" => (false, true),
        "both" => (true, true),
        other => panic!("MEDFOCUS_BENCH_DEVICE={other}: expected cpu, gpu or both"),
    };
    let mut devices = Vec::new();
    if cpu {
        let chosen = device::choose_device_blocking(DeviceRequest::Cpu).expect("cpu backend");
        devices.push((chosen.device, "flex (CPU)".to_string()));
    }
    if gpu {
        let chosen = device::choose_device_blocking(DeviceRequest::Gpu).expect("a wgpu adapter");
        let name = chosen.report.summary();
        devices.push((chosen.device, name));
    }
    devices
}
