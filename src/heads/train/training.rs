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
use super::settings::HeadSettings;
use crate::heads::features::{Labelled, Split, stratified_split};

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
