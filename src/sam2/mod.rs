//! SAM 2 in burn, matching Meta's `sam2` package tensor for tensor: the Hiera image encoder with
//! its FPN neck, the prompt encoder and the mask decoder (`backbones/`, `sam/`, mirroring
//! `sam2/modeling/`), the image predictor and the automatic mask generator, Meta's checkpoints
//! loaded unmodified, and int8 weights for the browser.
//!
//! Parity is tested against checkpoints and outputs written by `scripts/reference/gen_sam2.py`.

pub mod agreement;
pub mod amg;
pub mod automatic_mask_generator;
pub mod backbones;
pub mod config;
pub mod model;
pub mod position_encoding;
pub mod predictor;
pub mod quantize;
pub mod sam;
pub mod sam2_utils;
pub mod transforms;

pub use config::Sam2Config;
pub use model::{ImageFeatures, Sam2Error, Sam2Model};
pub use predictor::{BinaryMask, EmbeddedImage, Prediction, Prompt, Sam2Predictor};
