//! What each head kind trains, stage by stage, on a support set's embeddings.

use std::borrow::Cow;
use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lbfgs::{LbfgsSettings, minimize};
use super::linear_probe::{BIAS, LogisticObjective, Prior, WEIGHT, cross_entropy, holdout_scores};
use super::optim::AdamSettings;
use super::run::{
    FitSettings, FitSummary, Objective, Observer, Params, TrainError, TrainRun, host_values,
};
use crate::heads::features::{
    FeatureSet, Labelled, Split, accuracy, one_hot_values, stratified_split,
};
use crate::heads::head_file::{
    CACHE_KEYS, CACHE_VALUES, HeadKind, HostTensor, LINEAR_BIAS, LINEAR_WEIGHT, TEXT,
    TipAdapterScalars,
};
use crate::heads::tip_adapter::{SearchGrid, SearchInputs, cache_logits, search};

/// Every hyper-parameter, with defaults that suit a handful of images per class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadSettings {
    pub kind: HeadKind,
    pub seed: u64,
    /// Fraction of each class held out to choose hyper-parameters and stop early.
    pub holdout: f32,
    /// Epochs (full-batch steps) per fit; default per kind.
    pub epochs: Option<usize>,
    pub learning_rate: Option<f32>,
    /// Early stopping: epochs without a better held-out loss (0: off).
    pub patience: usize,
    /// Decoupled weight decay of the gradient-trained heads (AdamW; 0: plain Adam).
    pub weight_decay: f32,
    /// Linear probe: scikit-learn's C; searched over `c_grid` on the held-out images when unset.
    pub c: Option<f32>,
    pub c_grid: Vec<f32>,
    /// LP+text: weight of `‖W − T‖²`; searched over `text_weight_grid` when unset.
    pub text_weight: Option<f32>,
    pub text_weight_grid: Vec<f32>,
    /// Tip-Adapter(-F): a fixed α, the cache logits' weight (searched when unset). Format 1's
    /// JSON (head files' training logs, run identities) names it `alpha`.
    #[serde(rename = "alpha")]
    pub tip_alpha: Option<f32>,
    /// Tip-Adapter(-F): a fixed β, the affinity's sharpness (searched when unset); `beta` in
    /// format 1's JSON.
    #[serde(rename = "beta")]
    pub tip_beta: Option<f32>,
    /// CoOp: learnable context tokens.
    pub context_tokens: usize,
    /// Fine-tune: how many of the image tower's last blocks train.
    pub finetune_blocks: usize,
    /// Fine-tune: λ in λ·contrastive + (1 − λ)·cross-entropy.
    pub contrastive_weight: f32,
}

impl HeadSettings {
    pub fn new(kind: HeadKind) -> Self {
        Self {
            kind,
            seed: 0,
            holdout: 0.25,
            epochs: None,
            learning_rate: None,
            patience: 20,
            weight_decay: 0.0,
            c: None,
            c_grid: vec![0.01, 0.1, 1.0, 10.0, 100.0],
            text_weight: None,
            text_weight_grid: vec![0.01, 0.1, 1.0, 10.0],
            tip_alpha: None,
            tip_beta: None,
            context_tokens: 4,
            finetune_blocks: 2,
            contrastive_weight: 0.5,
        }
    }

    /// Refuses values no training can use, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        let positive = |name: &str, value: f32| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} {value}: must be a positive number"))
            }
        };
        let non_negative = |name: &str, value: f32| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} {value}: must be zero or more"))
            }
        };
        if !(0.0..1.0).contains(&self.holdout) {
            return Err(format!("holdout {}: a fraction in [0, 1)", self.holdout));
        }
        if self.epochs == Some(0) {
            return Err("epochs 0: train for at least one".into());
        }
        if let Some(rate) = self.learning_rate {
            positive("learning rate", rate)?;
        }
        non_negative("weight decay", self.weight_decay)?;
        for &c in self.c.iter().chain(&self.c_grid) {
            positive("C", c)?;
        }
        for &weight in self.text_weight.iter().chain(&self.text_weight_grid) {
            non_negative("text weight", weight)?;
        }
        for value in self.tip_alpha.iter().chain(&self.tip_beta) {
            non_negative("Tip-Adapter α/β", *value)?;
        }
        if !(0.0..=1.0).contains(&self.contrastive_weight) {
            return Err(format!(
                "contrastive weight {}: a weight in [0, 1]",
                self.contrastive_weight
            ));
        }
        Ok(())
    }

    fn epochs(&self) -> usize {
        self.epochs.unwrap_or(match self.kind {
            HeadKind::LinearProbe | HeadKind::LpText => 500,
            HeadKind::Coop => 200,
            HeadKind::Finetune => 50,
            _ => 100,
        })
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate.unwrap_or(match self.kind {
            HeadKind::LinearProbe | HeadKind::LpText => 0.01,
            HeadKind::Coop => 0.002,
            HeadKind::Finetune => 1e-4,
            _ => 0.001,
        })
    }
}

/// How a convex fit (L-BFGS) ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvexSummary {
    pub iterations: usize,
    pub loss: f32,
    pub accuracy: f32,
}

/// Class text embeddings `[classes, dim]` (unit rows) and CLIP's logit scale.
#[derive(Clone, Debug, PartialEq)]
pub struct TextPrior {
    pub embeddings: Vec<f32>,
    pub scale: f32,
}

/// What training produced; the caller adds the model identity and focus mode.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedHead {
    pub text_scale: f32,
    pub cache: Option<TipAdapterScalars>,
    pub tensors: BTreeMap<String, HostTensor>,
    pub training: serde_json::Value,
}

/// What every stage of a head's training needs beside the data: the settings, the run (its
/// checkpoint), where progress goes, the (autodiff) device, and which support rows only judge.
pub struct Training<'a> {
    pub settings: &'a HeadSettings,
    pub run: &'a mut TrainRun,
    pub observer: &'a mut dyn Observer,
    pub device: &'a Device,
    /// Rows of the support set given as validation images (an evaluation protocol's): they
    /// choose hyper-parameters and the epoch count, and never train, not even in the refit.
    /// `None`: the head holds out `settings.holdout` of each class itself, then refits on all.
    pub validation: Option<&'a [usize]>,
}

impl<'a> Training<'a> {
    pub fn new(
        settings: &'a HeadSettings,
        run: &'a mut TrainRun,
        observer: &'a mut dyn Observer,
        device: &'a Device,
    ) -> Self {
        Self {
            settings,
            run,
            observer,
            device,
            validation: None,
        }
    }

    /// Judges on these support rows instead of holding out a share (see [`Training::validation`]).
    pub fn with_validation(mut self, rows: Option<&'a [usize]>) -> Self {
        self.validation = rows;
        self
    }

    /// The parts again, for a recipe to use by name.
    pub fn parts(
        self,
    ) -> (
        &'a HeadSettings,
        &'a mut TrainRun,
        &'a mut dyn Observer,
        &'a Device,
        Option<&'a [usize]>,
    ) {
        (
            self.settings,
            self.run,
            self.observer,
            self.device,
            self.validation,
        )
    }
}

/// The given validation rows, sorted and once each; `None` when there are none.
fn given_rows(validation: Option<&[usize]>) -> Option<Vec<usize>> {
    let mut rows = validation.filter(|rows| !rows.is_empty())?.to_vec();
    rows.sort_unstable();
    rows.dedup();
    Some(rows)
}

/// Rows `0..len` that are not among the (sorted) `excluded`.
fn complement(len: usize, excluded: &[usize]) -> Vec<usize> {
    (0..len)
        .filter(|row| excluded.binary_search(row).is_err())
        .collect()
}

/// Which rows train and which judge: the given validation rows, else a held-out share of each
/// class (`None` when a class is too small to spare one).
pub fn holdout_split(
    labels: &[usize],
    classes: usize,
    settings: &HeadSettings,
    validation: Option<&[usize]>,
) -> Option<Split> {
    match given_rows(validation) {
        Some(holdout) => Some(Split {
            train: complement(labels.len(), &holdout),
            holdout,
        }),
        None => stratified_split(labels, classes, settings.holdout, settings.seed),
    }
}

/// What the final fit trains on: the whole support set, or all but the given validation rows.
pub fn training_rows<'s, S: Labelled + Clone>(
    support: &'s S,
    validation: Option<&[usize]>,
) -> Cow<'s, S> {
    match given_rows(validation) {
        Some(held) => Cow::Owned(support.subset(&complement(support.labels().len(), &held))),
        None => Cow::Borrowed(support),
    }
}

fn tensor2(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Trains `settings.kind` on `support` (embeddings on `device`, which must have autodiff for the
/// gradient-trained kinds). `text` is needed by every kind but the plain linear probe.
pub fn train_head(
    support: &FeatureSet,
    text: &TextPrior,
    settings: &HeadSettings,
    run: &mut TrainRun,
    observer: &mut dyn Observer,
    device: &Device,
) -> Result<TrainedHead, TrainError> {
    train_kind(
        support,
        text,
        Training::new(settings, run, observer, device),
    )
}

/// [`train_head`] with everything in a [`Training`] (given validation rows among them).
pub fn train_kind(
    support: &FeatureSet,
    text: &TextPrior,
    training: Training,
) -> Result<TrainedHead, TrainError> {
    let (classes, dim) = (support.class_count(), support.dim);
    if text.embeddings.len() != classes * dim {
        return Err(TrainError::Text(format!(
            "{} text values for {classes} classes of width {dim}",
            text.embeddings.len()
        )));
    }
    let (settings, device) = (training.settings, training.device);
    match settings.kind {
        HeadKind::ZeroShot => train_zero_shot(support, text, device),
        HeadKind::LinearProbe | HeadKind::LpText => train_linear_probe(support, text, training),
        HeadKind::TipAdapter | HeadKind::TipAdapterF => train_tip_adapter(support, text, training),
        HeadKind::Coop | HeadKind::Finetune => Err(TrainError::Text(format!(
            "{} trains through CLIP's towers: use heads::train::coop::train_coop or heads::train::finetune::train_finetune",
            settings.kind.name()
        ))),
    }
}

/// The class text embeddings as the head file's `text` tensor.
fn text_tensor(text: &TextPrior, classes: usize, dim: usize) -> HostTensor {
    HostTensor::new(vec![classes, dim], text.embeddings.clone())
}

/// Zero-shot: nothing trains; the text embeddings are the head.
fn train_zero_shot(
    support: &FeatureSet,
    text: &TextPrior,
    device: &Device,
) -> Result<TrainedHead, TrainError> {
    let (classes, dim) = (support.class_count(), support.dim);
    let logits = text_logits(support, text, device)?;
    Ok(TrainedHead {
        text_scale: text.scale,
        cache: None,
        tensors: BTreeMap::from([(TEXT.into(), text_tensor(text, classes, dim))]),
        training: json!({"support_accuracy": accuracy(&logits, classes, &support.labels)}),
    })
}

/// The convex probes' objective at penalty `value` (C, or LP+text's pull weight).
fn probe_objective(
    train: &FeatureSet,
    holdout: Option<&FeatureSet>,
    text_prior: Option<&Prior>,
    value: f32,
    device: &Device,
) -> LogisticObjective {
    match text_prior {
        None => LogisticObjective::sklearn(train, holdout, value, device),
        Some(prior) => LogisticObjective::new(train, holdout, prior.clone(), value, device),
    }
}

/// Linear probe (scikit-learn's objective) or LP+text: the penalty searched on held-out images
/// unless fixed, then the refit on every training image (all but given validation images).
fn train_linear_probe(
    support: &FeatureSet,
    text: &TextPrior,
    training: Training,
) -> Result<TrainedHead, TrainError> {
    let (settings, run, observer, device, validation) = training.parts();
    let (classes, dim) = (support.class_count(), support.dim);
    let lbfgs = LbfgsSettings {
        max_iterations: settings
            .epochs
            .unwrap_or(LbfgsSettings::default().max_iterations),
        ..LbfgsSettings::default()
    };
    let text_prior = (settings.kind == HeadKind::LpText).then(|| Prior::Text {
        embeddings: tensor2(text.embeddings.clone(), [classes, dim], device),
        scale: text.scale,
    });
    let (fixed, grid, name) = match settings.kind {
        HeadKind::LinearProbe => (settings.c, &settings.c_grid, "C"),
        _ => (
            settings.text_weight,
            &settings.text_weight_grid,
            "text_weight",
        ),
    };
    let split = holdout_split(&support.labels, classes, settings, validation);
    let mut search_log = Vec::new();
    let chosen = match (fixed, &split) {
        (Some(value), _) => value,
        (None, Some(split)) if !grid.is_empty() => {
            let (train, holdout) = (support.subset(&split.train), support.subset(&split.holdout));
            let mut best: Option<(f32, f32, f32)> = None;
            for &value in grid {
                let stage = format!("{name}={value}");
                let result: (f32, f32) = match run.finished(&stage) {
                    Some(result) => result,
                    None => {
                        let mut objective = probe_objective(
                            &train,
                            Some(&holdout),
                            text_prior.as_ref(),
                            value,
                            device,
                        );
                        let init = objective.init(classes, dim);
                        let (params, ..) =
                            minimize(&stage, &mut objective, &init, &lbfgs, observer, device)?;
                        let result = objective.evaluate(&params).unwrap_or((f32::INFINITY, 0.0));
                        run.finish(&stage, &result)?;
                        result
                    }
                };
                search_log.push(
                    json!({name: value, "holdout_loss": result.0, "holdout_accuracy": result.1}),
                );
                // Best accuracy; ties go to the lower loss.
                if best.is_none_or(|(_, loss, acc)| {
                    result.1 > acc || (result.1 == acc && result.0 < loss)
                }) {
                    best = Some((value, result.0, result.1));
                }
            }
            best.map_or(1.0, |(value, _, _)| value)
        }
        // scikit-learn's default C; LP+text's middle weight.
        _ => 1.0,
    };
    let refit = training_rows(support, validation);
    let mut objective = probe_objective(&refit, None, text_prior.as_ref(), chosen, device);
    let init = objective.init(classes, dim);
    let (params, summary) = match run.finished::<(Vec<f32>, Vec<f32>, ConvexSummary)>("final") {
        Some((weight, bias, summary)) => (
            Params::from([
                (WEIGHT.to_string(), tensor2(weight, [classes, dim], device)),
                (BIAS.to_string(), tensor2(bias, [1, classes], device)),
            ]),
            summary,
        ),
        None => {
            let (params, iterations, loss, accuracy) =
                minimize("final", &mut objective, &init, &lbfgs, observer, device)?;
            let summary = ConvexSummary {
                iterations,
                loss,
                accuracy,
            };
            let done = (
                host_values(params[WEIGHT].clone())?,
                host_values(params[BIAS].clone())?,
                summary.clone(),
            );
            run.finish("final", &done)?;
            (params, summary)
        }
    };
    let (weight, bias) = objective.effective(&params);
    let tensors = BTreeMap::from([
        (
            LINEAR_WEIGHT.into(),
            HostTensor::new(vec![classes, dim], host_values(weight)?),
        ),
        (
            LINEAR_BIAS.into(),
            HostTensor::new(vec![classes], host_values(bias)?),
        ),
    ]);
    Ok(TrainedHead {
        text_scale: 0.0,
        cache: None,
        tensors,
        training: json!({
            name: chosen,
            "search": search_log,
            "final": summary,
            "settings": settings,
        }),
    })
}

/// Tip-Adapter: the support embeddings are the cache's keys (Tip-Adapter-F trains them), the
/// one-hot labels its values; α and β are searched unless fixed — on the given validation
/// images (as the authors do), else leave-one-out over the support set.
fn train_tip_adapter(
    support: &FeatureSet,
    text: &TextPrior,
    training: Training,
) -> Result<TrainedHead, TrainError> {
    let (settings, run, observer, device, validation) = training.parts();
    let (classes, dim) = (support.class_count(), support.dim);
    // The cache holds the training images only; validation images judge.
    let cached = training_rows(support, validation);
    let values = one_hot_values(&cached.labels, classes);
    let mut keys = cached.values.clone();
    let mut log = json!({"settings": settings});
    if settings.kind == HeadKind::TipAdapterF {
        let params = fit_with_early_stopping(
            support,
            Training::new(settings, run, observer, device).with_validation(validation),
            &mut log,
            &mut |train, holdout| Box::new(CacheObjective::new(train, holdout, text, device)),
            &mut |train| Params::from([(KEYS.to_string(), train.tensor(device))]),
        )?;
        keys = host_values(params[KEYS].clone())?;
    }
    let scalars = match (settings.tip_alpha, settings.tip_beta) {
        (Some(alpha), Some(beta)) => TipAdapterScalars { alpha, beta },
        _ => {
            let judged = validation
                .filter(|rows| !rows.is_empty())
                .map(|rows| support.subset(rows));
            let (scalars, accuracy) = search_tip_adapter_scalars(
                judged.as_ref().unwrap_or(&cached),
                judged.is_none(),
                text,
                &keys,
                &values,
                settings,
                device,
            )?;
            let name = match judged {
                Some(_) => "validation_accuracy",
                None => "leave_one_out_accuracy",
            };
            log[name] = json!(accuracy);
            scalars
        }
    };
    log["alpha"] = json!(scalars.alpha);
    log["beta"] = json!(scalars.beta);
    let tensors = BTreeMap::from([
        (TEXT.into(), text_tensor(text, classes, dim)),
        (
            CACHE_KEYS.into(),
            HostTensor::new(vec![cached.len(), dim], keys),
        ),
        (
            CACHE_VALUES.into(),
            HostTensor::new(vec![cached.len(), classes], values),
        ),
    ]);
    Ok(TrainedHead {
        text_scale: text.scale,
        cache: Some(scalars),
        tensors,
        training: log,
    })
}

/// The authors' α/β search: `judged` images scored by the cache (`keys`, `values`). With
/// `leave_one_out` the judged images are the cache's own, each judged by the cache of all the
/// others (its own key would vote for itself). A fixed α or β narrows the grid to it. Returns
/// the scalars and their accuracy.
fn search_tip_adapter_scalars(
    judged: &FeatureSet,
    leave_one_out: bool,
    text: &TextPrior,
    keys: &[f32],
    values: &[f32],
    settings: &HeadSettings,
    device: &Device,
) -> Result<(TipAdapterScalars, f32), TrainError> {
    let logits = text_logits(judged, text, device)?;
    let cache = keys.len() / judged.dim.max(1);
    let mut affinity = host_values(
        judged
            .tensor(device)
            .matmul(tensor2(keys.to_vec(), [cache, judged.dim], device).transpose()),
    )?;
    if leave_one_out {
        for i in 0..judged.len().min(cache) {
            affinity[i * cache + i] = f32::NEG_INFINITY;
        }
    }
    let mut grid = SearchGrid::default();
    if let Some(alpha) = settings.tip_alpha {
        grid.alphas = vec![alpha];
    }
    if let Some(beta) = settings.tip_beta {
        grid.betas = vec![beta];
    }
    Ok(search(
        &SearchInputs {
            text_logits: &logits,
            affinity: &affinity,
            values,
            labels: &judged.labels,
            classes: judged.class_count(),
        },
        &grid,
    ))
}

/// `s·f·Tᵀ` for every support image, on the host.
fn text_logits(
    set: &FeatureSet,
    text: &TextPrior,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let classes = set.class_count();
    let embeddings = tensor2(text.embeddings.clone(), [classes, set.dim], device);
    host_values(set.tensor(device).matmul(embeddings.transpose()) * text.scale)
}

/// Tip-Adapter's α and β while the keys train (its paper's defaults).
const TRAINING_SCALARS: TipAdapterScalars = TipAdapterScalars {
    alpha: 1.0,
    beta: 5.5,
};
const KEYS: &str = "keys";

/// Cross-entropy of text + cache logits with trainable keys.
struct CacheObjective {
    features: Tensor<2>,
    one_hot: Tensor<2>,
    text_logits: Tensor<2>,
    values: Tensor<2>,
    holdout: Option<(Tensor<2>, Tensor<2>, Tensor<2>)>,
}

impl CacheObjective {
    fn new(
        train: &FeatureSet,
        holdout: Option<&FeatureSet>,
        text: &TextPrior,
        device: &Device,
    ) -> Self {
        let classes = train.class_count();
        let embeddings = tensor2(text.embeddings.clone(), [classes, train.dim], device);
        let logits = |set: &FeatureSet| {
            set.tensor(device).matmul(embeddings.clone().transpose()) * text.scale
        };
        Self {
            features: train.tensor(device),
            one_hot: train.one_hot(device),
            text_logits: logits(train),
            values: train.one_hot(device),
            holdout: holdout.map(|set| (set.tensor(device), set.one_hot(device), logits(set))),
        }
    }
}

impl Objective for CacheObjective {
    fn loss(&mut self, params: &Params) -> (Tensor<1>, f32) {
        let logits = self.text_logits.clone()
            + cache_logits(
                self.features.clone(),
                params[KEYS].clone(),
                self.values.clone(),
                TRAINING_SCALARS,
            );
        cross_entropy(logits, self.one_hot.clone())
    }

    fn evaluate(&mut self, params: &Params) -> Option<(f32, f32)> {
        let (features, one_hot, text_logits) = self.holdout.clone()?;
        let logits = text_logits
            + cache_logits(
                features,
                params[KEYS].clone(),
                self.values.clone(),
                TRAINING_SCALARS,
            );
        Some(holdout_scores(logits, one_hot))
    }
}

/// Builds a stage's objective from its training items and held-out items.
pub type ObjectiveFactory<'o, S> = dyn FnMut(&S, Option<&S>) -> Box<dyn Objective + 'o> + 'o;

/// Gradient training with early stopping: with held-out images, train on the rest and keep the
/// epoch with the best held-out loss, then refit on every image for that many epochs; without,
/// train on every image for the configured epochs. Returns the final parameters.
pub fn fit_with_early_stopping<'o, S: Labelled + Clone>(
    support: &S,
    training: Training,
    log: &mut serde_json::Value,
    objective: &mut ObjectiveFactory<'o, S>,
    init: &mut dyn FnMut(&S) -> Params,
) -> Result<Params, TrainError> {
    let (settings, run, observer, device, validation) = training.parts();
    let fit_settings = FitSettings {
        epochs: settings.epochs(),
        learning_rate: settings.learning_rate(),
        patience: settings.patience,
        adam: AdamSettings {
            weight_decay: settings.weight_decay,
            ..AdamSettings::default()
        },
        cosine: true,
    };
    let split = holdout_split(
        support.labels(),
        support.class_count(),
        settings,
        validation,
    );
    let mut epochs = fit_settings.epochs;
    if let Some(split) = split {
        let summary: FitSummary = match run.finished("early-stopping") {
            Some(summary) => summary,
            None => {
                let (train, holdout) =
                    (support.subset(&split.train), support.subset(&split.holdout));
                let mut stage_objective = objective(&train, Some(&holdout));
                let start = init(&train);
                let (_, summary) = run.fit(
                    "early-stopping",
                    start,
                    &fit_settings,
                    stage_objective.as_mut(),
                    observer,
                    device,
                )?;
                run.finish("early-stopping", &summary)?;
                summary
            }
        };
        epochs = summary.best_epoch.max(1);
        log["early_stopping"] = json!(summary);
    }
    type HostParams = BTreeMap<String, ([usize; 2], Vec<f32>)>;
    let (params, summary) = match run.finished::<(HostParams, FitSummary)>("final") {
        Some((host, summary)) => (
            host.into_iter()
                .map(|(name, (shape, values))| (name, tensor2(values, shape, device)))
                .collect(),
            summary,
        ),
        None => {
            let refit = training_rows(support, validation);
            let mut stage_objective = objective(&refit, None);
            let start = init(&refit);
            let final_settings = FitSettings {
                epochs,
                patience: 0,
                ..fit_settings.clone()
            };
            let (params, summary) = run.fit(
                "final",
                start,
                &final_settings,
                stage_objective.as_mut(),
                observer,
                device,
            )?;
            let mut host = HostParams::new();
            for (name, tensor) in &params {
                host.insert(name.clone(), (tensor.dims(), host_values(tensor.clone())?));
            }
            run.finish("final", &(host, summary.clone()))?;
            (params, summary)
        }
    };
    log["final"] = json!(summary);
    Ok(params)
}
