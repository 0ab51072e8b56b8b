//! `medfocus devices`: the adapters found, the device chosen and why, a correctness check, and
//! the proof `--device auto` needs before it picks a GPU.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use medfocus::bench::prove_device;
use medfocus::compute_check;
use medfocus::device::proof::{ProofBook, proofs_path};
use medfocus::device::{self, DeviceRequest, Verdict};

use super::args::CliResult;

#[derive(clap::Args)]
pub struct DevicesArgs {
    /// Also run a small computation on the chosen device and compare it with a reference.
    #[arg(long)]
    check: bool,
    /// Prove the GPU (the one `--device gpu` uses) with this CLIP model folder: its image tower
    /// on the GPU and on the CPU backend, compared and timed. The result is kept
    /// ($MEDFOCUS_DEVICE_PROOFS, else ~/.cache/medfocus/device-proofs.json); `--device auto`
    /// uses a GPU only once it is proven correct and faster.
    #[arg(long, value_name = "MODEL")]
    prove: Option<PathBuf>,
    /// Timed runs on each device for `--prove` (after the first and one warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    runs: u16,
}

pub fn run(out: &mut impl Write, request: DeviceRequest, args: &DevicesArgs) -> CliResult {
    let adapters = pollster::block_on(device::list_adapters());
    writeln!(out, "GPU adapters found: {}", adapters.len())?;
    for adapter in &adapters {
        writeln!(
            out,
            "  - {} [{}; {:?}] {}",
            adapter.name, adapter.backend, adapter.adapter_type, adapter.driver
        )?;
    }
    if let Some(model) = &args.prove {
        return prove(out, request, model, usize::from(args.runs));
    }
    let chosen = device::choose_device_blocking(request)?;
    write!(out, "{}", chosen.report)?;
    if args.check {
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

/// Measures the GPU against the CPU backend, keeps the proof, and says what `auto` now picks.
fn prove(
    out: &mut impl Write,
    request: DeviceRequest,
    model: &std::path::Path,
    runs: usize,
) -> CliResult {
    if request == DeviceRequest::Cpu {
        return Err(
            "--prove measures a GPU against the CPU backend; leave out --device cpu".into(),
        );
    }
    let gpu = device::choose_device_blocking(DeviceRequest::Gpu)?;
    writeln!(out, "proving: {}", gpu.report.summary())?;
    let proof = prove_device(model, &gpu, runs)?;
    writeln!(
        out,
        "{}: max |Δ| {:.2e} to the CPU backend (bound {:.0e}); {:.1} ms against {:.1} ms on the \
         CPU backend (median of {runs}); first run, kernels compiled: {:.0} ms",
        proof.work, proof.max_abs_diff, proof.bound, proof.gpu_ms, proof.cpu_ms, proof.gpu_first_ms
    )?;
    let verdict = proof.verdict();
    writeln!(
        out,
        "verdict: {}",
        match verdict {
            Verdict::CorrectAndFaster => "correct and faster",
            Verdict::Wrong => "WRONG: the GPU's results differ from the CPU backend's",
            Verdict::Slower => "correct, but slower than the CPU backend",
        }
    )?;
    let path = proofs_path();
    // An unreadable earlier file is replaced: it only ever held measurements.
    let mut book = ProofBook::load(&path).unwrap_or_default();
    book.record(proof);
    book.save(&path)?;
    writeln!(out, "kept in {}", path.display())?;
    let auto = device::choose_device_blocking(DeviceRequest::Auto)?;
    writeln!(out, "--device auto now: {}", auto.report.summary())?;
    writeln!(out, "why: {}", auto.report.reason)?;
    Ok(if verdict == Verdict::Wrong {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
