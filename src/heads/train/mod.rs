//! Training support heads: from labelled images to a head file.
//!
//! | file | what |
//! |---|---|
//! | [`from_dataset`] | native: a data set (every layout `dataset::Dataset::open` reads), one of its splits → embeddings (cache, checkpoints) → head file |
//! | [`from_prompts`] | native: the class prompts alone → an untrained head (zero-shot prior as a probe's weights, CoOp's seeded context): a federated server's start |
//! | [`support_set`] | both targets: images handed over one by one (the page's class bins) → head file; and the steps every journey ends with (text prior, assembling the head) |
//! | [`support`], [`cache`] | native: support images → embeddings through the pipeline, the embedding cache |
//! | [`recipes`] | what each kind trains, stage by stage (hyper-parameter search, refit) |
//! | [`settings`] | what a training is given (every hyper-parameter) and gives (the trained head) |
//! | [`training`] | the context a recipe trains in, the train/judge split, early stopping (shared with CoOp and the fine-tune) |
//! | [`run`] | the loop every gradient-trained head shares: Adam, early stopping, checkpoints |
//! | [`optim`], [`lbfgs`] | Adam keyed by parameter name; L-BFGS for the convex probes |
//! | [`linear_probe`], [`coop`], [`finetune`] | the objectives of the probes, CoOp and the paper's fine-tune (the last two native only) |

#[cfg(not(target_arch = "wasm32"))]
pub mod cache;
#[cfg(not(target_arch = "wasm32"))]
pub mod coop;
#[cfg(not(target_arch = "wasm32"))]
pub mod finetune;
#[cfg(not(target_arch = "wasm32"))]
pub mod from_dataset;
#[cfg(not(target_arch = "wasm32"))]
pub mod from_prompts;
pub mod lbfgs;
pub mod linear_probe;
pub mod optim;
pub mod recipes;
pub mod run;
pub mod settings;
#[cfg(not(target_arch = "wasm32"))]
pub mod support;
pub mod support_set;
pub mod training;

#[cfg(not(target_arch = "wasm32"))]
pub use from_dataset::{TrainReport, TrainRequest, train_from_dataset};
pub use recipes::train_head;
pub use run::{EpochReport, Objective, Observer, Silent, TrainError, TrainRun};
pub use settings::{HeadSettings, Optimizer, TextPrior, TrainedHead};
pub use support_set::{SupportSet, SupportSetError};
