//! The training loop every gradient-trained head shares: full-batch steps with Adam and a cosine
//! learning rate, early stopping on held-out images, progress reports, and a checkpoint written
//! atomically after each epoch (at most every couple of seconds) from which a killed run resumes
//! to the same result as an uninterrupted one — every step is deterministic given the
//! checkpointed parameters, moments and epoch.
//!
//! A run is a sequence of named stages (a hyper-parameter candidate, the final refit); finished
//! stages keep their results in the checkpoint and are skipped on resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::optim::{Adam, AdamSettings};
use crate::device::read_floats;
use crate::heads::host_pack::{HostTensor, UnpackError, pack, unpack};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("checkpoint {path}: {detail}")]
    Checkpoint { path: String, detail: String },
    #[error(
        "{path} belongs to a different training run (other data, head or settings); pass --fresh to start over, or another --out"
    )]
    OtherRun { path: String },
    #[error(
        "training diverged in stage {stage} at epoch {epoch} (loss is not finite); lower the learning rate"
    )]
    Diverged { stage: String, epoch: usize },
    #[error("reading values back from the device failed: {0}")]
    Readback(String),
    #[error(transparent)]
    Features(#[from] crate::heads::features::FeatureError),
    #[error("{0}")]
    Text(String),
}

/// Named trainable tensors, all rank 2 (a bias is `[1, n]`).
pub type Params = BTreeMap<String, Tensor<2>>;

/// What one stage optimises. `loss` runs on the autodiff device with tracked parameters;
/// `evaluate` judges the held-out images (no gradients needed).
pub trait Objective {
    /// The training loss (a scalar) and the training accuracy of this step.
    fn loss(&mut self, params: &Params) -> (Tensor<1>, f32);
    /// Held-out loss and accuracy, when there is a held-out set.
    fn evaluate(&mut self, params: &Params) -> Option<(f32, f32)>;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitSettings {
    pub epochs: usize,
    pub learning_rate: f32,
    /// Stop after this many epochs without a better held-out loss (0: never).
    pub patience: usize,
    pub adam: AdamSettings,
    /// Cosine decay of the learning rate to 0 over `epochs` (else constant).
    pub cosine: bool,
    /// Plain gradient descent `p ← p − lr·∇` instead of Adam (its moments then stay empty).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plain_gradient_descent: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    pub stage: String,
    pub epoch: usize,
    pub epochs: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub holdout: Option<(f32, f32)>,
    pub best_epoch: usize,
}

/// Where progress goes (the CLI draws bars; tests stay silent).
pub trait Observer {
    /// `done` of `total` support images embedded.
    fn embedding(&mut self, _done: usize, _total: usize) {}
    fn stage(&mut self, _name: &str, _epochs: usize, _resumed_at: usize) {}
    fn epoch(&mut self, _report: &EpochReport) {}
    fn note(&mut self, _text: &str) {}
}

pub struct Silent;
impl Observer for Silent {}

/// How a stage ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// The epoch whose parameters were kept (the best held-out loss, or the last).
    pub best_epoch: usize,
    pub epochs_run: usize,
    pub stopped_early: bool,
    pub train_loss: f32,
    pub train_accuracy: f32,
    pub holdout: Option<(f32, f32)>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Progress {
    stage: String,
    /// Epochs completed.
    epoch: usize,
    adam_step: u64,
    best_epoch: usize,
    best_loss: Option<f32>,
    best_summary: Option<FitSummary>,
    last: Option<EpochReport>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    run_key: String,
    done: BTreeMap<String, serde_json::Value>,
    current: Option<Progress>,
}

const KIND: &str = "training-checkpoint";
const META_STATE: &str = "medfocus.training";

/// A training run and its checkpoint file.
pub struct TrainRun {
    path: Option<PathBuf>,
    state: State,
    /// Tensors of the stage in progress: `params.*`, `best.*`, `adam.m.*`, `adam.v.*`.
    tensors: BTreeMap<String, TensorData>,
    last_save: Option<Instant>,
    pub save_interval: Duration,
}

impl TrainRun {
    /// Opens (resuming) or starts the run whose identity is `run_key`; with `path` None nothing
    /// is saved. A checkpoint of another run is refused unless `fresh`, which discards it.
    pub fn open(
        path: Option<&Path>,
        run_key: &str,
        fresh: bool,
    ) -> Result<(Self, bool), TrainError> {
        let mut run = Self {
            path: path.map(Path::to_path_buf),
            state: State {
                run_key: run_key.to_string(),
                ..State::default()
            },
            tensors: BTreeMap::new(),
            last_save: None,
            save_interval: Duration::from_secs(2),
        };
        let Some(path) = path else {
            return Ok((run, false));
        };
        if fresh || !path.exists() {
            return Ok((run, false));
        }
        let error = |detail: String| TrainError::Checkpoint {
            path: path.display().to_string(),
            detail,
        };
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let (metadata, tensors) = unpack(bytes, KIND, "not a MedFocus training checkpoint")
            .map_err(
                |(UnpackError::Foreign(detail) | UnpackError::Damaged(detail))| error(detail),
            )?;
        let state: State = metadata
            .get(META_STATE)
            .ok_or_else(|| error("no training state".into()))
            .and_then(|text| serde_json::from_str(text).map_err(|e| error(e.to_string())))?;
        if state.run_key != run_key {
            return Err(TrainError::OtherRun {
                path: path.display().to_string(),
            });
        }
        for (name, tensor) in tensors {
            run.tensors
                .insert(name, TensorData::new(tensor.values, tensor.shape));
        }
        run.state = state;
        Ok((run, true))
    }

    /// The result of a finished stage, if this run already finished it.
    pub fn finished<T: DeserializeOwned>(&self, stage: &str) -> Option<T> {
        self.state
            .done
            .get(stage)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }

    /// Records a stage's result (and saves: it is the unit of resumption).
    pub fn finish<T: Serialize>(&mut self, stage: &str, result: &T) -> Result<(), TrainError> {
        let value = serde_json::to_value(result).map_err(|e| TrainError::Text(e.to_string()))?;
        self.state.done.insert(stage.to_string(), value);
        self.state.current = None;
        self.tensors.clear();
        self.save(true)
    }

    fn save(&mut self, force: bool) -> Result<(), TrainError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        if !force
            && self
                .last_save
                .is_some_and(|at| at.elapsed() < self.save_interval)
        {
            return Ok(());
        }
        let state =
            serde_json::to_string(&self.state).map_err(|e| TrainError::Text(e.to_string()))?;
        let tensors = self
            .tensors
            .iter()
            .map(|(name, data)| {
                let values = data.as_slice::<f32>().unwrap_or(&[]).to_vec();
                (name.clone(), HostTensor::new(data.shape().to_vec(), values))
            })
            .collect();
        pack(KIND, [(META_STATE, state.as_str())], &tensors)
            .auto_extension(false)
            .write_to_file(&path)
            .map_err(|e| TrainError::Checkpoint {
                path: path.display().to_string(),
                detail: format!("{e}"),
            })?;
        self.last_save = Some(Instant::now());
        Ok(())
    }

    /// Optimises `init` with `objective` (resuming this stage if the checkpoint is inside it)
    /// and returns the kept parameters (untracked, on `device`).
    ///
    /// Not split: the epoch loop with its checkpoints and early stopping; its locals are the
    /// resumable state, saved and restored together.
    pub fn fit(
        &mut self,
        stage: &str,
        init: Params,
        settings: &FitSettings,
        objective: &mut dyn Objective,
        observer: &mut dyn Observer,
        device: &Device,
    ) -> Result<(Params, FitSummary), TrainError> {
        let read = |data: Option<&TensorData>, like: &Tensor<2>| {
            data.filter(|data| data.shape().to_vec() == like.dims().to_vec())
                .map(|data| Tensor::<2>::from_data(data.clone(), device))
        };
        let mut adam = Adam::new(settings.adam);
        let mut progress = Progress {
            stage: stage.to_string(),
            ..Progress::default()
        };
        let mut params = init.clone();
        let mut best = init.clone();
        if let Some(saved) = self.state.current.clone().filter(|p| p.stage == stage) {
            for (name, tensor) in &init {
                let restored = (
                    read(self.tensors.get(&format!("params.{name}")), tensor),
                    read(self.tensors.get(&format!("best.{name}")), tensor),
                );
                let (Some(param), Some(kept)) = restored else {
                    return Err(TrainError::Checkpoint {
                        path: self.path_text(),
                        detail: format!("stage {stage} lacks parameter {name}"),
                    });
                };
                params.insert(name.clone(), param);
                best.insert(name.clone(), kept);
                if let (Some(m), Some(v)) = (
                    read(self.tensors.get(&format!("adam.m.{name}")), tensor),
                    read(self.tensors.get(&format!("adam.v.{name}")), tensor),
                ) {
                    adam.first.insert(name.clone(), m);
                    adam.second.insert(name.clone(), v);
                }
            }
            adam.step = saved.adam_step;
            progress = saved;
        }
        observer.stage(stage, settings.epochs, progress.epoch);
        let mut stopped_early = false;
        while progress.epoch < settings.epochs {
            let epoch = progress.epoch;
            let tracked: Params = params
                .iter()
                .map(|(name, tensor)| {
                    (
                        name.clone(),
                        tensor.clone().detach().autodiff().require_grad(),
                    )
                })
                .collect();
            let (loss, accuracy) = objective.loss(&tracked);
            let loss_value: f32 = loss.clone().into_scalar();
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged {
                    stage: stage.to_string(),
                    epoch,
                });
            }
            let gradients = loss.backward();
            let learning_rate = if settings.cosine {
                let t = epoch as f32 / settings.epochs.max(1) as f32;
                settings.learning_rate * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())
            } else {
                settings.learning_rate
            };
            adam.begin_step();
            let mut next = Params::new();
            for (name, tensor) in &tracked {
                let parameter = tensor.clone().detach();
                let updated = match tensor.grad(&gradients) {
                    Some(gradient) if settings.plain_gradient_descent => {
                        parameter - gradient * learning_rate
                    }
                    Some(gradient) => adam.update(name, parameter, gradient, learning_rate),
                    None => parameter,
                };
                next.insert(name.clone(), updated);
            }
            params = next;
            progress.epoch = epoch + 1;
            progress.adam_step = adam.step;
            let holdout = objective.evaluate(&params);
            let improved = match (holdout, progress.best_loss) {
                (Some((loss, _)), Some(best_loss)) => loss < best_loss,
                (Some(_), None) => true,
                // No held-out images: keep the latest.
                (None, _) => true,
            };
            let summary = FitSummary {
                best_epoch: progress.epoch,
                epochs_run: progress.epoch,
                stopped_early: false,
                train_loss: loss_value,
                train_accuracy: accuracy,
                holdout,
            };
            if improved {
                best = params.clone();
                progress.best_epoch = progress.epoch;
                progress.best_loss = holdout.map(|(loss, _)| loss);
                progress.best_summary = Some(summary);
            }
            let report = EpochReport {
                stage: stage.to_string(),
                epoch: progress.epoch,
                epochs: settings.epochs,
                loss: loss_value,
                accuracy,
                holdout,
                best_epoch: progress.best_epoch,
            };
            observer.epoch(&report);
            progress.last = Some(report);
            let patience_out = settings.patience > 0
                && holdout.is_some()
                && progress.epoch - progress.best_epoch >= settings.patience;
            self.state.current = Some(progress.clone());
            let last = patience_out || progress.epoch == settings.epochs;
            if self.path.is_some() && (last || self.due()) {
                self.store_tensors(&params, &best, &adam)?;
                self.save(true)?;
            }
            if patience_out {
                stopped_early = true;
                break;
            }
        }
        let mut summary = progress.best_summary.clone().unwrap_or(FitSummary {
            best_epoch: 0,
            epochs_run: 0,
            stopped_early: false,
            train_loss: f32::NAN,
            train_accuracy: 0.0,
            holdout: None,
        });
        summary.epochs_run = progress.epoch;
        summary.stopped_early = stopped_early;
        Ok((best, summary))
    }

    fn due(&self) -> bool {
        self.last_save
            .is_none_or(|at| at.elapsed() >= self.save_interval)
    }

    fn path_text(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    fn store_tensors(
        &mut self,
        params: &Params,
        best: &Params,
        adam: &Adam,
    ) -> Result<(), TrainError> {
        self.tensors.clear();
        let mut put = |prefix: &str, map: &Params| -> Result<(), TrainError> {
            for (name, tensor) in map {
                let data = tensor.clone().into_data().convert::<f32>();
                self.tensors.insert(format!("{prefix}{name}"), data);
            }
            Ok(())
        };
        put("params.", params)?;
        put("best.", best)?;
        put("adam.m.", &adam.first)?;
        put("adam.v.", &adam.second)?;
        Ok(())
    }
}

/// Host values of a rank-2 tensor.
pub fn host_values(tensor: Tensor<2>) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|error| TrainError::Readback(format!("{error:?}")))
}

/// [`host_values`] awaited: the read-back WebGPU allows (it cannot read synchronously).
pub async fn host_values_async(tensor: Tensor<2>) -> Result<Vec<f32>, TrainError> {
    read_floats(tensor)
        .await
        .map_err(|error| TrainError::Readback(error.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_resumes_only_its_own_run() {
        let path = std::env::temp_dir().join(format!("medfocus-run-{}.ckpt", std::process::id()));
        let (mut run, resumed) = TrainRun::open(Some(&path), "run a", false).unwrap();
        assert!(!resumed);
        run.finish("stage one", &42u32).unwrap();
        let (run, resumed) = TrainRun::open(Some(&path), "run a", false).unwrap();
        assert!(resumed);
        assert_eq!(run.finished::<u32>("stage one"), Some(42));
        assert!(matches!(
            TrainRun::open(Some(&path), "run b", false),
            Err(TrainError::OtherRun { .. })
        ));
        let (run, resumed) = TrainRun::open(Some(&path), "run b", true).unwrap();
        assert!(!resumed && run.finished::<u32>("stage one").is_none());
        std::fs::remove_file(&path).unwrap();
    }
}
