//! What each head kind trains, stage by stage, on a support set's embeddings.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;

use super::lbfgs::{LbfgsSettings, minimize};
use super::linear_probe::{
    BIAS, LogisticObjective, Prior, WEIGHT, cross_entropy, holdout_scores, probe_start,
};
use super::run::{Objective, Observer, Params, TrainError, TrainRun, host_values};
use super::settings::{ConvexSummary, DEFAULT_PENALTY, HeadSettings, TextPrior, TrainedHead};
use super::training::{
    StoredAs, Training, fit_with_early_stopping, given_start, holdout_split, training_rows,
    with_proximal,
};
use crate::heads::features::{FeatureSet, accuracy, one_hot_values};
use crate::heads::head_file::{
    CACHE_KEYS, CACHE_VALUES, HeadKind, HostTensor, LINEAR_BIAS, LINEAR_WEIGHT, TEXT,
    TipAdapterScalars,
};
use crate::heads::tip_adapter::{SearchGrid, SearchInputs, cache_logits, search};

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
    value: Penalty,
    settings: &HeadSettings,
    device: &Device,
) -> LogisticObjective {
    let objective = match (text_prior, value) {
        (None, Penalty::C(c)) => LogisticObjective::sklearn(train, holdout, c, device),
        (None, Penalty::PerImage(weight)) => {
            LogisticObjective::new(train, holdout, Prior::None, weight, device)
        }
        (Some(prior), Penalty::C(weight) | Penalty::PerImage(weight)) => {
            LogisticObjective::new(train, holdout, prior.clone(), weight, device)
        }
    };
    if settings.present_classes_only {
        objective.present_classes_only(train, device)
    } else {
        objective
    }
}

/// How a probe's penalty is given: scikit-learn's C (scaled by the image count), or a weight
/// per image (`--penalty`; LP+text's pull weight is one too).
#[derive(Clone, Copy)]
enum Penalty {
    C(f32),
    PerImage(f32),
}

/// Linear probe (scikit-learn's objective) or LP+text: the penalty searched on held-out images
/// unless fixed, then the refit on every training image (all but given validation images).
///
/// Not split: the probe's stages in order (the penalty searched on held-out images, then the
/// refit), sharing the rows, the prior and the run's checkpoint.
fn train_linear_probe(
    support: &FeatureSet,
    text: &TextPrior,
    training: Training,
) -> Result<TrainedHead, TrainError> {
    if training.settings.probe_by_gradient() {
        return train_probe_by_gradient(support, text, training);
    }
    let initial = training.initial;
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
    let no_grid = Vec::new();
    let (fixed, grid, name) = match settings.kind {
        // A fixed per-image penalty: no search (what a federated round runs under L-BFGS).
        HeadKind::LinearProbe if settings.penalty.is_some() => {
            (settings.penalty, &no_grid, "penalty")
        }
        HeadKind::LinearProbe => (settings.c, &settings.c_grid, "C"),
        _ => (
            settings.text_weight,
            &settings.text_weight_grid,
            "text_weight",
        ),
    };
    let given = given_start(
        initial,
        &probe_tensors(classes, dim, text_prior.as_ref().map_or(1.0, Prior::scale)),
        device,
    )?;
    let start = |objective: &LogisticObjective| {
        given
            .clone()
            .unwrap_or_else(|| objective.init(classes, dim))
    };
    let as_penalty = |value: f32| match name {
        "C" => Penalty::C(value),
        _ => Penalty::PerImage(value),
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
                        let objective = probe_objective(
                            &train,
                            Some(&holdout),
                            text_prior.as_ref(),
                            as_penalty(value),
                            settings,
                            device,
                        );
                        let init = start(&objective);
                        let mut objective = with_proximal(Box::new(objective), &init, settings);
                        let (params, ..) =
                            minimize(&stage, objective.as_mut(), &init, &lbfgs, observer, device)?;
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
    let objective = probe_objective(
        &refit,
        None,
        text_prior.as_ref(),
        as_penalty(chosen),
        settings,
        device,
    );
    let init = start(&objective);
    let mut objective = with_proximal(Box::new(objective), &init, settings);
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
                minimize("final", objective.as_mut(), &init, &lbfgs, observer, device)?;
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
    let tensors = probe_head_tensors(
        &params,
        text_prior.as_ref().map_or(1.0, Prior::scale),
        classes,
        dim,
    )?;
    Ok(TrainedHead {
        text_scale: 0.0,
        cache: None,
        tensors,
        training: json!({
            name: chosen,
            "search": search_log,
            "search_images": split.as_ref().map(|split| split.holdout.len()),
            "final": summary,
            "settings": settings,
        }),
    })
}

/// How a probe's parameters are stored in its head file.
fn probe_tensors(classes: usize, dim: usize, scale: f32) -> [StoredAs<'static>; 2] {
    [
        StoredAs {
            tensor: LINEAR_WEIGHT,
            parameter: WEIGHT,
            shape: [classes, dim],
            scale,
        },
        StoredAs {
            tensor: LINEAR_BIAS,
            parameter: BIAS,
            shape: [1, classes],
            scale: 1.0,
        },
    ]
}

/// The head file's `linear.weight` (`s·W`) and `linear.bias` from a probe's parameters.
fn probe_head_tensors(
    params: &Params,
    scale: f32,
    classes: usize,
    dim: usize,
) -> Result<BTreeMap<String, HostTensor>, TrainError> {
    Ok(BTreeMap::from([
        (
            LINEAR_WEIGHT.into(),
            HostTensor::new(
                vec![classes, dim],
                host_values(params[WEIGHT].clone() * scale)?,
            ),
        ),
        (
            LINEAR_BIAS.into(),
            HostTensor::new(vec![classes], host_values(params[BIAS].clone())?),
        ),
    ]))
}

/// A probe trained by gradient steps (Adam or plain gradient descent) with a fixed per-image
/// penalty — the linear probe's λ in `mean CE + λ‖W‖²`, LP+text's pull weight — instead of a
/// search: what a federated round runs, where every site must minimise the same objective.
/// With held-out images it stops early and refits like the other gradient-trained heads.
fn train_probe_by_gradient(
    support: &FeatureSet,
    text: &TextPrior,
    training: Training,
) -> Result<TrainedHead, TrainError> {
    let (settings, device) = (training.settings, training.device);
    let (classes, dim) = (support.class_count(), support.dim);
    let text_prior = (settings.kind == HeadKind::LpText).then(|| Prior::Text {
        embeddings: tensor2(text.embeddings.clone(), [classes, dim], device),
        scale: text.scale,
    });
    let scale = text_prior.as_ref().map_or(1.0, Prior::scale);
    let given = given_start(
        training.initial,
        &probe_tensors(classes, dim, scale),
        device,
    )?;
    // The per-image weight of the penalty: fixed, whatever the number of images.
    let per_image = |images: usize| match settings.kind {
        HeadKind::LpText => settings.text_weight.unwrap_or(1.0),
        _ => match (settings.penalty, settings.c) {
            (Some(penalty), _) => penalty,
            // scikit-learn's C on these images, for a user who thinks in C.
            (None, Some(c)) => {
                let per_sample = if classes == 2 { 1.0 } else { 0.5 };
                per_sample / (c * images.max(1) as f32)
            }
            (None, None) => DEFAULT_PENALTY,
        },
    };
    let mut log = json!({
        "optimizer": settings.optimizer().name(),
        "penalty": per_image(training_rows(support, training.validation).len()),
        "started_from": if given.is_some() { "given weights" } else { "the kind's start" },
        "settings": settings,
    });
    let params = fit_with_early_stopping(
        support,
        training,
        &mut log,
        &mut |train, holdout| {
            let objective = LogisticObjective::new(
                train,
                holdout,
                text_prior.clone().unwrap_or(Prior::None),
                per_image(train.len()),
                device,
            );
            Box::new(if settings.present_classes_only {
                objective.present_classes_only(train, device)
            } else {
                objective
            })
        },
        &mut |_| match &given {
            Some(params) => params.clone(),
            None => probe_start(
                text_prior.as_ref().unwrap_or(&Prior::None),
                classes,
                dim,
                device,
            ),
        },
    )?;
    Ok(TrainedHead {
        text_scale: 0.0,
        cache: None,
        tensors: probe_head_tensors(&params, scale, classes, dim)?,
        training: log,
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
            let (name, images) = match &judged {
                Some(judged) => ("validation", judged.labels.len()),
                None => ("leave_one_out", cached.labels.len()),
            };
            log[format!("{name}_accuracy")] = json!(accuracy);
            log[format!("{name}_images")] = json!(images);
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
