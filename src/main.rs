//! `medfocus`, the native command-line program. Thin: argument parsing and printing; the work is
//! in the library. On wasm this binary is empty (the browser entry points are in `web`).

#![cfg_attr(target_arch = "wasm32", no_main)]

#[cfg(not(target_arch = "wasm32"))]
mod cli {
    use std::error::Error;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    use clap::{Parser, Subcommand};
    use medfocus::compute_check;
    use medfocus::dataset::ClassFolders;
    use medfocus::device::{self, DeviceRequest};
    use medfocus::imaging;

    #[derive(Parser)]
    #[command(name = "medfocus", version, about = "Few-shot medical image classification, on your machine")]
    struct Cli {
        /// Compute device: auto (a hardware GPU, else the CPU backend), cpu, or gpu (any wgpu
        /// adapter, even a software one).
        #[arg(long, global = true, default_value = "auto")]
        device: DeviceRequest,
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// List GPU adapters, show which device would be used and why.
        Devices {
            /// Also run a small computation on the chosen device and compare it with a reference.
            #[arg(long)]
            check: bool,
        },
        /// Decode images (files, or a folder with one sub-folder per class) and describe them.
        Inspect {
            #[arg(required = true)]
            paths: Vec<PathBuf>,
        },
    }

    pub fn run() -> ExitCode {
        let cli = Cli::parse();
        let mut out = io::stdout().lock();
        let result = match cli.command {
            Command::Devices { check } => devices(&mut out, cli.device, check),
            Command::Inspect { paths } => inspect(&mut out, &paths),
        };
        match result {
            Ok(code) => code,
            // `medfocus … | head` closing the pipe early is not a failure.
            Err(error)
                if error
                    .downcast_ref::<io::Error>()
                    .is_some_and(|error| error.kind() == io::ErrorKind::BrokenPipe) =>
            {
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    }

    fn devices(out: &mut impl Write, request: DeviceRequest, check: bool) -> Result<ExitCode, Box<dyn Error>> {
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
            writeln!(out, "check: softmax(A·B/√n) with n = {SIZE}: max |Δ| to reference = {diff:.2e}")?;
            if diff > 1e-4 {
                eprintln!("error: the device computed a wrong result");
                return Ok(ExitCode::FAILURE);
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Decodes every file (a folder is read as one sub-folder per class); a bad file is reported
    /// and the rest still inspected.
    fn inspect(out: &mut impl Write, paths: &[PathBuf]) -> Result<ExitCode, Box<dyn Error>> {
        let mut failures = 0usize;
        let mut describe = |out: &mut dyn Write, path: &Path, label: &str| -> io::Result<()> {
            let result = std::fs::read(path)
                .map_err(|error| error.to_string())
                .and_then(|bytes| imaging::decode_image(&bytes).map_err(|error| error.to_string()));
            match result {
                Ok(image) => writeln!(out, "{}{label}: {}", path.display(), image.summary()),
                Err(error) => {
                    failures += 1;
                    eprintln!("{}{label}: error: {error}", path.display());
                    Ok(())
                }
            }
        };
        for path in paths {
            if path.is_dir() {
                let set = ClassFolders::open(path)?;
                for (class, count) in set.classes.iter().zip(set.counts()) {
                    writeln!(out, "class {class}: {count} images")?;
                }
                for image in &set.images {
                    describe(out, &image.path, &format!(" [{}]", set.classes[image.class_index]))?;
                }
            } else {
                describe(out, path, "")?;
            }
        }
        Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    cli::run()
}
