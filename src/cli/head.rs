//! `medfocus head`: a head's trainable weights as NumPy arrays, out and back in exactly — what a
//! federated client sends and a server averages (`heads::arrays`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use medfocus::clip::load::load_clip_dir;
use medfocus::heads::HeadFile;
use medfocus::heads::arrays::{federated_tensors, read_npz, with_arrays, write_npz};
use medfocus::limits::MAX_HEAD_ARRAY_BYTES;
use medfocus::pipeline::files::{read, write_atomic};

use super::args::CliResult;

#[derive(Subcommand)]
pub enum HeadAction {
    /// Write a head's trainable weights as an .npz of float32 arrays, one per tensor
    /// (`numpy.load(path)["linear.weight"]`): linear probe and LP+text (`linear.weight`,
    /// `linear.bias`), CoOp (`coop.context`). Tip-Adapter(-F) is refused: its cache keys are the
    /// training images' embeddings.
    ExportArrays {
        /// The head file.
        #[arg(long)]
        head: PathBuf,
        /// The .npz to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a copy of a head with its trainable weights taken from an .npz (the same names and
    /// shapes `export-arrays` writes); everything else — classes, CLIP model, focus — stays.
    ImportArrays {
        /// The head file whose weights are replaced.
        #[arg(long)]
        head: PathBuf,
        /// The .npz of new weights.
        #[arg(long)]
        arrays: PathBuf,
        /// The CLIP model folder the head was trained with: a CoOp head's class texts are
        /// recomputed from the new context through its text tower.
        #[arg(long)]
        model: Option<PathBuf>,
        /// The head file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(out: &mut impl Write, action: HeadAction) -> CliResult {
    match action {
        HeadAction::ExportArrays { head, out: path } => {
            let file = HeadFile::read(&head)?;
            write_atomic(&path, &write_npz(&file)?)?;
            let names = federated_tensors(file.header.kind)?;
            let shapes: Vec<String> = names
                .iter()
                .map(|name| format!("{name} {:?}", file.tensors[*name].shape))
                .collect();
            writeln!(out, "{}: {}", path.display(), shapes.join(", "))?;
        }
        HeadAction::ImportArrays {
            head,
            arrays,
            model,
            out: path,
        } => {
            let file = HeadFile::read(&head)?;
            // Bounded before it is read: a head's weights are a few small arrays.
            let size = std::fs::metadata(&arrays)?.len();
            let limit = 4 * MAX_HEAD_ARRAY_BYTES;
            if size > limit {
                return Err(format!(
                    "{}: {size} bytes; a head's weights are at most {limit}",
                    arrays.display()
                )
                .into());
            }
            let arrays = read_npz(&read(&arrays)?)?;
            let clip = match &model {
                Some(folder) => Some(load_clip_dir(folder, &burn::tensor::Device::flex())?),
                None => None,
            };
            let updated = with_arrays(&file, arrays, clip.as_ref())?;
            updated.write(&path)?;
            writeln!(out, "{}", path.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
