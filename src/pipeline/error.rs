//! How the chain from image to answer fails: every step's error, one type for every front end.

use crate::clip::zero_shot::ZeroShotError;
use crate::focus::{FocusApplyError, MaskError, UnknownMethod};
use crate::imaging::ImageError;
use crate::sam2::Sam2Error;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Read(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("its mask: {0}")]
    MaskImage(String),
    #[error(transparent)]
    Mask(#[from] MaskError),
    #[error("{what} needs masks: a mask is needed for every image ({remedy})")]
    NeedsRegion { what: String, remedy: String },
    #[error("SAM 2 masks were asked for, but no SAM 2 model is loaded")]
    NoSegmenter,
    #[error(transparent)]
    UnknownFocus(#[from] UnknownMethod),
    #[error(transparent)]
    Focus(#[from] FocusApplyError),
    #[error(transparent)]
    Sam2(#[from] Sam2Error),
    #[error(transparent)]
    ZeroShot(#[from] ZeroShotError),
    /// The classifier's own failure (a head's: another CLIP, a read-back); the pipeline sits
    /// below the heads, so it carries their error without naming its type.
    #[error(transparent)]
    Classifier(Box<dyn std::error::Error + Send + Sync>),
}
