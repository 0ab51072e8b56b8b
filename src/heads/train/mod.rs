//! Training support heads (native only): from a folder of labelled images to a head file.
//!
//! | file | what |
//! |---|---|
//! | [`from_folders`] | the journey: embed the support set, train the kind, write the head file |
//! | [`support`], [`cache`] | support images → embeddings through the pipeline, the embedding cache |
//! | [`recipes`] | what each kind trains, stage by stage (hyper-parameter search, refit) |
//! | [`run`] | the loop every gradient-trained head shares: Adam, early stopping, checkpoints |
//! | [`optim`], [`lbfgs`] | Adam keyed by parameter name; L-BFGS for the convex probes |
//! | [`linear_probe`], [`coop`], [`finetune`] | the objectives of the probes, CoOp and the paper's fine-tune |

pub mod cache;
pub mod coop;
pub mod finetune;
pub mod from_folders;
pub mod lbfgs;
pub mod linear_probe;
pub mod optim;
pub mod recipes;
pub mod run;
pub mod support;

pub use from_folders::{TrainReport, TrainRequest, train_from_folders};
pub use recipes::{HeadSettings, TextPrior, TrainedHead, train_head};
pub use run::{EpochReport, Objective, Observer, Silent, TrainError, TrainRun};
