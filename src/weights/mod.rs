//! Checkpoints as they are published: SafeTensors (files or bytes) and, natively, PyTorch
//! pickles (`.bin`/`.pt`, zip or legacy).
//!
//! A model family's loader says, for every tensor the model needs under our own canonical name,
//! where it lives in the family's checkpoint ([`Source`]). Building the model then asks
//! [`Weights::take`] for each tensor with the shape the config implies; problems are collected
//! rather than raised one by one, so a wrong or truncated file is reported with *every* missing
//! or misshapen tensor named in the checkpoint's own key names.
//!
//! The parts: [`checkpoint`] (the tensors held), [`files`] (reading files and bytes, writing
//! SafeTensors), [`stream`] (SafeTensors as they arrive), [`keymap`] (canonical names → the
//! checkpoint's, [`Weights::take`]), [`error`] (what goes wrong).

pub mod burnpack;
pub mod checkpoint;
pub mod error;
pub mod files;
pub mod keymap;
pub mod stream;
#[cfg(test)]
mod tests;

pub use checkpoint::Checkpoint;
pub use error::{Problem, WeightsError};
#[cfg(not(target_arch = "wasm32"))]
pub use files::write_safetensors;
pub(crate) use keymap::transposed_matrix;
pub use keymap::{KeyMap, Source, Weights};
pub use stream::SafetensorsStream;
