//! Evaluation (native): does the mask help? Reproduces the paper's protocol (a fraction of the
//! training split) and the field's K-shot benchmark on the sets users download, every number
//! traceable to a manifest and a predictions file.
//!
//! | file | what |
//! |---|---|
//! | [`metrics`] | accuracy, balanced accuracy, macro-F1, κ, AUROC, log loss, ECE, confusion — as scikit-learn defines them |
//! | [`protocol`] | train/val/test draws per protocol point and seed, written as manifests and reused exactly |
//! | [`grid`] | focus × manifest × head runs through the embedding cache |
//! | [`localisation`] | where CLIP looked (heat-maps, [`crate::explain`]) against the ground-truth masks, per focus |
//! | [`score`] | one trained head's metrics on a data set's split (`medfocus head score`, a federated site's test figures) |
//! | [`report`] | the report folder: manifests, `runs.jsonl`/`.csv`, `predictions.jsonl`, `report.md` |
//! | [`plots`] | the report's PNGs: accuracy vs protocol point with error bars, confusion matrices |

pub mod grid;
pub mod localisation;
pub mod metrics;
pub mod plots;
pub mod protocol;
pub mod records;
pub mod report;
pub mod score;
pub mod summary;

pub use grid::{EvalMasks, EvalRequest, EvalSummary, evaluate};
pub use metrics::Metrics;
pub use protocol::{HashedSet, Manifest, Protocol};
pub use records::{
    EvalError, EvalObserver, LocalisationRecord, MaskRecord, PredictionRecord, RunRecord,
};
pub use report::ReportFolder;
pub use summary::ReportContext;
