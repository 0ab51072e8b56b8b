//! `medfocus devices`: the adapters found, the device chosen and why, and a correctness check.

use std::io::Write;
use std::process::ExitCode;

use medfocus::compute_check;
use medfocus::device::{self, DeviceRequest};

use super::args::CliResult;

pub fn run(out: &mut impl Write, request: DeviceRequest, check: bool) -> CliResult {
    let adapters = pollster::block_on(device::list_adapters());
    writeln!(out, "GPU adapters found: {}", adapters.len())?;
    for adapter in &adapters {
        writeln!(
            out,
            "  - {} [{}; {:?}] {}",
            adapter.name, adapter.backend, adapter.adapter_type, adapter.driver
        )?;
    }
    let chosen = device::choose_device_blocking(request)?;
    write!(out, "{}", chosen.report)?;
    if check {
        const SIZE: usize = 64;
        let output = pollster::block_on(compute_check::run_check(&chosen.device, SIZE))?;
        let diff = output.max_abs_diff(&compute_check::reference(SIZE));
        writeln!(
            out,
            "check: softmax(A·B/√n) with n = {SIZE}: max |Δ| to reference = {diff:.2e}"
        )?;
        if diff > 1e-4 {
            eprintln!("error: the device computed a wrong result");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
