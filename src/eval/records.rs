//! What an evaluation writes down — each run, each test image's prediction, SAM 2's regions
//! against the ground truth — and how it fails: what the grid produces and the report reads.

use serde::{Deserialize, Serialize};

use super::metrics::{Metrics, MetricsError};
use crate::clip::zero_shot::ZeroShotError;
use crate::heads::features::FeatureError;
use crate::heads::train::from_dataset::FromDatasetError;
use crate::heads::train::run::TrainError;
use crate::heads::train::support::EmbedError;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Text(#[from] ZeroShotError),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error(transparent)]
    Head(#[from] FromDatasetError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("scoring the test images: {0}")]
    Scoring(String),
    #[error("writing the results: {0}")]
    Output(String),
}

/// One finished run, as `runs.jsonl` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Hash of everything that determines the run (manifest, head, settings, focus, masks,
    /// model): the key a resumed evaluation skips by.
    pub run: String,
    pub manifest: String,
    pub manifest_sha256: String,
    pub protocol: String,
    pub seed: u64,
    pub head: String,
    pub focus: String,
    pub masks: String,
    pub model: String,
    pub train_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    pub metrics: Metrics,
    /// The chosen hyper-parameters and fit summaries (the head file's training log).
    pub training: serde_json::Value,
    pub seconds: f64,
}

/// One test image's prediction in one run (`predictions.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub run: String,
    pub path: String,
    pub truth: usize,
    pub probabilities: Vec<f64>,
    /// Where the mask came from (`none` for the focus `none`).
    pub masks: String,
}

/// Where CLIP looked in one image, judged against its ground-truth mask (`localisation.jsonl`):
/// the zero-shot classifier's predicted class explained under one focus method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalisationRecord {
    pub path: String,
    pub class_index: usize,
    pub focus: String,
    /// `relevancy` or `dense`.
    pub method: String,
    /// The class explained: zero-shot's prediction.
    pub explained_class: usize,
    /// Share of the heat-map's energy inside the ground truth.
    pub energy_inside: f32,
    /// Whether the heat-map's hottest pixel lies inside the ground truth.
    pub pointing_hit: bool,
    /// The ground truth's share of the image: what a flat heat-map's energy inside would be.
    pub truth_coverage: f32,
}

/// How SAM 2's region of one image compares with the image's ground-truth mask
/// (`masks.jsonl`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaskRecord {
    pub path: String,
    pub class_index: usize,
    /// `sam2-automatic`, or `whole-image` when no automatic mask qualified.
    pub origin: String,
    pub coverage: f32,
    /// The ground-truth mask has no pixel inside (BUSI's normal images).
    pub truth_empty: bool,
    pub dice: f64,
    pub iou: f64,
}

/// What the grid reports as it goes.
pub trait EvalObserver {
    /// A stage begins: `total` steps.
    fn stage(&mut self, _name: &str, _total: usize) {}
    fn progress(&mut self, _done: usize) {}
    fn note(&mut self, _text: &str) {}
    /// A run finished: record it (the grid continues only when this succeeds).
    fn finished(
        &mut self,
        record: &RunRecord,
        predictions: &[PredictionRecord],
    ) -> Result<(), EvalError>;
}
