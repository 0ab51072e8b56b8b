//! The context every recipe trains in ([`Training`]), which rows train and which judge, and the
//! early-stopping loop that the Tip-Adapter-F keys, CoOp and the fine-tune share.

use std::borrow::Cow;
use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;

use super::optim::AdamSettings;
use super::run::{
    FitSettings, FitSummary, Objective, Observer, Params, TrainError, TrainRun, host_values,
};
use super::settings::{HeadSettings, Optimizer};
use crate::heads::features::{Labelled, Split, stratified_split};
use crate::heads::host_pack::HostTensor;

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
    /// Weights to start from instead of the kind's own start, by the head file's tensor names
    /// (`linear.weight`, `coop.context`…: another head's, or a federated round's global ones).
    pub initial: Option<&'a BTreeMap<String, HostTensor>>,
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
            initial: None,
        }
    }

    /// Starts from these weights (see [`Training::initial`]).
    pub fn with_initial(mut self, initial: Option<&'a BTreeMap<String, HostTensor>>) -> Self {
        self.initial = initial;
        self
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

/// One trained parameter as a head file stores it: the head file's tensor name, the
/// parameter's name and shape in training, and the factor the file's values carry (LP+text
/// stores `s·W` for its parameter `W`).
pub struct StoredAs<'n> {
    pub tensor: &'n str,
    pub parameter: &'n str,
    pub shape: [usize; 2],
    pub scale: f32,
}

/// The given starting weights as a stage's parameters, every one checked (present, its shape,
/// finite); `None` when none were given.
pub fn given_start(
    initial: Option<&BTreeMap<String, HostTensor>>,
    wanted: &[StoredAs],
    device: &Device,
) -> Result<Option<Params>, TrainError> {
    let Some(initial) = initial else {
        return Ok(None);
    };
    let error = |detail: String| TrainError::Text(format!("the starting weights: {detail}"));
    let mut params = Params::new();
    for stored in wanted {
        let tensor = initial
            .get(stored.tensor)
            .ok_or_else(|| error(format!("{} is missing", stored.tensor)))?;
        let [rows, columns] = stored.shape;
        // A bias is `[classes]` in the file and `[1, classes]` in training.
        let fits = tensor.shape == [rows, columns] || (rows == 1 && tensor.shape == [columns]);
        if !fits || tensor.values.len() != rows * columns {
            return Err(error(format!(
                "{} has shape {:?}; this head's is {:?}",
                stored.tensor, tensor.shape, stored.shape
            )));
        }
        if tensor.values.iter().any(|value| !value.is_finite()) {
            return Err(error(format!(
                "{} holds a NaN or infinite value",
                stored.tensor
            )));
        }
        let values = tensor
            .values
            .iter()
            .map(|value| value / stored.scale)
            .collect();
        params.insert(
            stored.parameter.to_string(),
            tensor2(values, stored.shape, device),
        );
    }
    if let Some(extra) = initial
        .keys()
        .find(|name| !wanted.iter().any(|stored| stored.tensor == name.as_str()))
    {
        return Err(error(format!(
            "{extra} is not one of this head's trained tensors"
        )));
    }
    Ok(Some(params))
}

/// FedProx's proximal term around a stage's start: `loss + μ/2·Σ‖θ − θ₀‖²`, so local training
/// on one site strays less from the global weights it was sent.
pub struct Proximal<'o> {
    pub inner: Box<dyn Objective + 'o>,
    pub anchor: Params,
    pub mu: f32,
}

impl Objective for Proximal<'_> {
    fn loss(&mut self, params: &Params) -> (Tensor<1>, f32) {
        let (loss, accuracy) = self.inner.loss(params);
        let mut pull = loss.zeros_like();
        for (name, anchor) in &self.anchor {
            if let Some(param) = params.get(name) {
                pull = pull + (param.clone() - anchor.clone()).powf_scalar(2.0).sum();
            }
        }
        (loss + pull * (self.mu / 2.0), accuracy)
    }

    fn evaluate(&mut self, params: &Params) -> Option<(f32, f32)> {
        self.inner.evaluate(params)
    }
}

/// `objective` with the proximal term around `start` when `settings` asks for one.
pub fn with_proximal<'o>(
    objective: Box<dyn Objective + 'o>,
    start: &Params,
    settings: &HeadSettings,
) -> Box<dyn Objective + 'o> {
    if settings.proximal_mu > 0.0 {
        Box::new(Proximal {
            inner: objective,
            anchor: start.clone(),
            mu: settings.proximal_mu,
        })
    } else {
        objective
    }
}

/// Builds a stage's objective from its training items and held-out items.
pub type ObjectiveFactory<'o, S> = dyn FnMut(&S, Option<&S>) -> Box<dyn Objective + 'o> + 'o;

/// Gradient training with early stopping: with held-out images, train on the rest and keep the
/// epoch with the best held-out loss, then refit on every image for that many epochs; without,
/// train on every image for the configured epochs. Returns the final parameters.
///
/// Not split: two stages (early stopping, refit) sharing the settings and the run's checkpoint;
/// each resumes on its own.
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
        cosine: !settings.constant_learning_rate,
        plain_gradient_descent: settings.optimizer() == Optimizer::GradientDescent,
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
                let start = init(&train);
                let mut stage_objective =
                    with_proximal(objective(&train, Some(&holdout)), &start, settings);
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
        // How many images the held-out figures rest on, for a person reading them.
        log["early_stopping_images"] = json!(split.holdout.len());
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
            let start = init(&refit);
            let mut stage_objective = with_proximal(objective(&refit, None), &start, settings);
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
