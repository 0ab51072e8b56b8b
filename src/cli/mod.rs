//! The `medfocus` command line: argument parsing and printing, one file per subcommand; the
//! work is the library's (`medfocus::pipeline` for everything from an image to an answer).

mod args;
mod bench;
mod classify;
mod devices;
mod eval;
mod head;
mod inspect;
mod output;
mod predict;
mod segment;
mod train;
mod weights;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use medfocus::device::DeviceRequest;

#[derive(Parser)]
#[command(
    name = "medfocus",
    version,
    about = "Few-shot medical image classification, on your machine"
)]
struct Cli {
    /// Compute device: auto (a hardware GPU proven correct and faster here by `devices --prove`,
    /// else the CPU backend), cpu, or gpu (any wgpu adapter, even a software one).
    #[arg(long, global = true, default_value = "auto")]
    device: DeviceRequest,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List GPU adapters, show which device would be used and why; check a device, or prove a
    /// GPU correct and faster than the CPU backend (what `--device auto` needs to pick it).
    Devices(devices::DevicesArgs),
    /// Decode images (files, or a folder with one sub-folder per class) and describe them.
    Inspect {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Zero-shot classification with a CLIP model folder (open_clip, BiomedCLIP or Hugging
    /// Face layout), optionally steered by a mask.
    Classify(classify::ClassifyArgs),
    /// Segment an image with SAM 2: from points, a box, or automatically; writes the mask
    /// and an overlay PNG.
    Segment(segment::SegmentArgs),
    /// Train a support head on a labelled data set (class folders, split folders, a split file,
    /// a CSV or a MedMNIST .npz, as `eval` reads them); writes a head file (`.mfh`) that
    /// `predict` and the browser page use.
    Train(Box<train::TrainArgs>),
    /// Classify images with a trained head file.
    Predict(predict::PredictArgs),
    /// Evaluate heads × focus methods on a data set under the paper's protocol (fractions of the
    /// training split) or the K-shot one, over seeds; writes a report folder.
    Eval(Box<eval::EvalArgs>),
    /// Model weights: list the known models, or download one into the cache.
    Weights {
        #[command(subcommand)]
        action: weights::WeightsAction,
    },
    /// Time the benchmarks' work on the chosen device (CLIP's towers, SAM 2's embedding, a point
    /// prompt, automatic masks) and write the outputs for parity checks across devices.
    Bench(Box<bench::BenchArgs>),
    /// Head files: trainable weights as NumPy arrays (.npz) out and back in exactly, a head from
    /// the class prompts alone, a head's figures on a data set.
    Head {
        #[command(subcommand)]
        action: head::HeadAction,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let mut out = io::stdout().lock();
    let result = match cli.command {
        Command::Devices(args) => devices::run(&mut out, cli.device, &args),
        Command::Inspect { paths } => inspect::run(&mut out, &paths),
        Command::Classify(args) => classify::run(&mut out, cli.device, &args),
        Command::Segment(args) => segment::run(&mut out, cli.device, &args),
        Command::Train(args) => train::run(&mut out, cli.device, &args),
        Command::Predict(args) => predict::run(&mut out, cli.device, &args),
        Command::Eval(args) => eval::run(&mut out, cli.device, &args),
        Command::Weights { action } => weights::run(&mut out, action),
        Command::Head { action } => head::run(&mut out, cli.device, action),
        Command::Bench(args) => bench::run(&mut out, cli.device, &args),
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
