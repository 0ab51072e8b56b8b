//! What an explanation is asked for and how it fails; what the methods hand back before any
//! geometry.

use serde::{Deserialize, Serialize};

use crate::device::ReadbackError;
use crate::focus;
use crate::pipeline::{Classifier, PipelineError};

/// How the map is made (names as the CLI and the page give them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExplainMethod {
    Relevancy,
    Dense,
}

/// The names front ends offer.
pub const METHODS: &[&str] = &["relevancy", "dense"];

impl ExplainMethod {
    pub fn name(self) -> &'static str {
        match self {
            ExplainMethod::Relevancy => "relevancy",
            ExplainMethod::Dense => "dense",
        }
    }

    pub fn from_name(name: &str) -> Result<Self, ExplainError> {
        match name {
            "relevancy" => Ok(ExplainMethod::Relevancy),
            "dense" => Ok(ExplainMethod::Dense),
            other => Err(ExplainError::UnknownMethod(other.to_string())),
        }
    }
}

/// What to explain, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ExplainRequest {
    pub method: ExplainMethod,
    /// The class (index in the classifier's order) whose score is explained; `None`: the
    /// predicted one.
    pub class: Option<usize>,
    /// Relevancy only: the first block whose attention is propagated; `None`: the last block
    /// alone, as Chefer's CLIP notebook does today (`start_layer = -1`).
    pub start_block: Option<usize>,
}

impl ExplainRequest {
    pub fn new(method: ExplainMethod) -> Self {
        Self {
            method,
            class: None,
            start_block: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("unknown explanation method `{0}`; one of: relevancy, dense")]
    UnknownMethod(String),
    #[error("class {class} does not exist: the classifier has {classes} classes")]
    Class { class: usize, classes: usize },
    #[error("`{0}` is not one of the classifier's classes")]
    ClassName(String),
    #[error("start block {block} does not exist: the image tower has {blocks} blocks")]
    StartBlock { block: usize, blocks: usize },
    #[error("reading results back from the device failed: {0}")]
    Readback(String),
    #[error("writing the heat-map: {0}")]
    Write(String),
}

impl From<ReadbackError> for ExplainError {
    fn from(error: ReadbackError) -> Self {
        ExplainError::Readback(error.0)
    }
}

impl From<focus::FocusApplyError> for ExplainError {
    fn from(error: focus::FocusApplyError) -> Self {
        ExplainError::Pipeline(error.into())
    }
}

/// A map over the patch grid and the logits it came with, before any geometry.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchMap {
    /// The classifier's logits for the image, one per class.
    pub logits: Vec<f32>,
    /// The class explained.
    pub class: usize,
    /// One value per patch, row-major over the grid: relevancy, or the patch's logit.
    pub values: Vec<f32>,
}

/// The class to explain: the one asked for, or the highest logit.
pub(crate) fn choose_class(logits: &[f32], asked: Option<usize>) -> Result<usize, ExplainError> {
    match asked {
        Some(class) if class >= logits.len() => Err(ExplainError::Class {
            class,
            classes: logits.len(),
        }),
        Some(class) => Ok(class),
        None => Ok(logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(index, _)| index)),
    }
}

/// A class's index by name, in `classifier`'s order.
pub fn class_index(classifier: &dyn Classifier, name: &str) -> Result<usize, ExplainError> {
    classifier
        .classes()
        .iter()
        .position(|class| class == name.trim())
        .ok_or_else(|| ExplainError::ClassName(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_predicted_class_is_the_highest_logit_and_a_missing_class_is_refused() {
        assert_eq!(choose_class(&[0.1, 2.0, -1.0], None).unwrap(), 1);
        assert_eq!(choose_class(&[0.1, 2.0, -1.0], Some(2)).unwrap(), 2);
        assert!(matches!(
            choose_class(&[0.1, 2.0], Some(2)),
            Err(ExplainError::Class {
                class: 2,
                classes: 2
            })
        ));
    }

    #[test]
    fn method_names_round_trip_and_unknown_ones_are_refused() {
        for name in METHODS {
            assert_eq!(ExplainMethod::from_name(name).unwrap().name(), *name);
        }
        assert!(matches!(
            ExplainMethod::from_name("gradcam"),
            Err(ExplainError::UnknownMethod(_))
        ));
    }
}
