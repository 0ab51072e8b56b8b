//! CLIP in burn, matching the reference implementations (open_clip, Hugging Face transformers,
//! timm) tensor for tensor: the image and text towers, their tokenizers and preprocessing, the
//! loaders for the checkpoints users download, and zero-shot classification.
//!
//! Parity is tested against checkpoints and outputs written by `scripts/reference/gen_clip.py`.

pub mod bert;
pub mod config;
pub mod load;
pub mod model;
pub mod preprocess;
pub mod text;
pub mod tokenizer;
pub mod transformer;
pub mod vision;
pub mod zero_shot;

pub use config::{Activation, ClipConfig};
pub use load::{Family, LoadError, LoadedClip, load_clip};
pub use model::{ClipModel, l2_normalize};
pub use vision::LayerBias;
pub use zero_shot::ZeroShotClassifier;
