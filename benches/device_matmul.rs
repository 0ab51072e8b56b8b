//! `cargo bench --bench device_matmul`: a 512×512 f32 matmul on the CPU backend (flex) and on the
//! wgpu adapter `--device gpu` would pick (lavapipe on a GPU-less machine), the measurement
//! behind the device chooser's rule. Prints the median of timed runs after warm-up.
use std::time::{Duration, Instant};

use burn::tensor::{Device, Distribution, Tensor};
use medfocus::device::{self, DeviceRequest};

const SIZE: usize = 512;
const WARMUP: usize = 3;
const RUNS: usize = 15;

fn median_matmul(device: &Device) -> Duration {
    let a = Tensor::<2>::random([SIZE, SIZE], Distribution::Uniform(-1.0, 1.0), device);
    let b = Tensor::<2>::random([SIZE, SIZE], Distribution::Uniform(-1.0, 1.0), device);
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..WARMUP + RUNS {
        // A new right-hand side each run, made before the clock starts, so nothing can be reused.
        let rhs = b.clone() + run as f32;
        let _ = rhs.to_data();
        let started = Instant::now();
        // Reading the values back forces the work to finish on asynchronous backends; the
        // `TensorData` a GPU backend returns may still be waiting, so touch the bytes too.
        let product = a
            .clone()
            .matmul(rhs)
            .into_data()
            .to_vec::<f32>()
            .expect("f32 result");
        if run >= WARMUP {
            times.push(started.elapsed());
        }
        assert_eq!(product.len(), SIZE * SIZE);
    }
    times.sort();
    times[RUNS / 2]
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let cpu = device::choose_device_blocking(DeviceRequest::Cpu).expect("cpu backend");
    let cpu_time = median_matmul(&cpu.device);
    println!(
        "{SIZE}x{SIZE} matmul, median of {RUNS}: flex (CPU) {:.2} ms",
        cpu_time.as_secs_f64() * 1e3
    );
    match device::choose_device_blocking(DeviceRequest::Gpu) {
        Ok(gpu) => {
            let gpu_time = median_matmul(&gpu.device);
            let adapter = gpu
                .report
                .adapter
                .as_ref()
                .map_or("?", |adapter| adapter.name.as_str());
            println!(
                "{SIZE}x{SIZE} matmul, median of {RUNS}: wgpu on {adapter} ({:?}) {:.2} ms = {:.1}x the CPU backend's time",
                gpu.report.kind,
                gpu_time.as_secs_f64() * 1e3,
                gpu_time.as_secs_f64() / cpu_time.as_secs_f64()
            );
        }
        Err(error) => println!("no wgpu adapter to compare: {error}"),
    }
}
