//! Linear probes: multinomial logistic regression on unit image embeddings, and LP+text, the
//! same model started from the class text embeddings and pulled back towards them.
//!
//! The plain probe minimises exactly scikit-learn's `LogisticRegression` objective, so C means
//! what it means there: `C·Σᵢ CE(xᵢ) + ½‖W‖²` (intercepts unpenalised). scikit-learn fits two
//! classes with one weight vector `w` (a sigmoid); the equivalent softmax pair `W = [−w/2, w/2]`
//! has `‖W‖² = ½‖w‖²`, so for two classes the penalty here is `‖W‖²` — the same optimum.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};

use super::run::{Objective, Params};
use crate::heads::features::FeatureSet;

pub const WEIGHT: &str = "weight";
pub const BIAS: &str = "bias";

/// Mean cross-entropy of logits `[n, classes]` against one-hot targets, and the accuracy.
pub fn cross_entropy(logits: Tensor<2>, one_hot: Tensor<2>) -> (Tensor<1>, f32) {
    let [rows, _] = logits.dims();
    let correct = logits
        .clone()
        .argmax(1)
        .equal(one_hot.clone().argmax(1))
        .int()
        .sum()
        .into_scalar::<i64>();
    let loss = -(log_softmax(logits, 1) * one_hot).sum() / rows as f32;
    (loss, correct as f32 / rows.max(1) as f32)
}

/// Held-out loss and accuracy of logits (no gradients), read back.
pub fn holdout_scores(logits: Tensor<2>, one_hot: Tensor<2>) -> (f32, f32) {
    let (loss, accuracy) = cross_entropy(logits.detach(), one_hot);
    (loss.into_scalar::<f32>(), accuracy)
}

/// How W is scaled and what it is pulled towards.
#[derive(Clone, Debug)]
// One value per fit: the size difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Prior {
    /// Plain logistic regression: penalty `coefficient·‖W‖²`.
    None,
    /// LP+text: logits `s·f·Wᵀ + b`, penalty `coefficient·‖W − T‖²` (T = text embeddings).
    Text { embeddings: Tensor<2>, scale: f32 },
}

impl Prior {
    /// The factor between the trained `W` and the head file's (`logits = s·f·Wᵀ + b`): LP+text's
    /// CLIP logit scale, 1 for the plain probe.
    pub fn scale(&self) -> f32 {
        match self {
            Prior::None => 1.0,
            Prior::Text { scale, .. } => *scale,
        }
    }
}

/// A probe's own start: `W` zeros (or the text embeddings for LP+text), `b` zeros.
pub fn probe_start(prior: &Prior, classes: usize, dim: usize, device: &Device) -> Params {
    let weight = match prior {
        Prior::None => Tensor::zeros([classes, dim], device),
        Prior::Text { embeddings, .. } => embeddings.clone(),
    };
    Params::from([
        (WEIGHT.to_string(), weight),
        (BIAS.to_string(), Tensor::zeros([1, classes], device)),
    ])
}

/// Logistic regression on a feature set (device tensors built once).
pub struct LogisticObjective {
    features: Tensor<2>,
    one_hot: Tensor<2>,
    holdout: Option<(Tensor<2>, Tensor<2>)>,
    prior: Prior,
    coefficient: f32,
    /// Added to the training logits: leaves out the classes the training images lack.
    absent: Option<Tensor<2>>,
    /// `[classes, 1]`: 1 for a class with images, 0 for one without — the penalty then leaves
    /// an absent class's row alone too (Adam would turn its gradient into full-size steps).
    present_rows: Option<Tensor<2>>,
}

impl LogisticObjective {
    /// Plain probe with scikit-learn's `C` (see the module docs for the two-class case).
    pub fn sklearn(
        train: &FeatureSet,
        holdout: Option<&FeatureSet>,
        c: f32,
        device: &Device,
    ) -> Self {
        let per_sample = if train.class_count() == 2 { 1.0 } else { 0.5 };
        let coefficient = per_sample / (c * train.len() as f32);
        Self::new(train, holdout, Prior::None, coefficient, device)
    }

    pub fn new(
        train: &FeatureSet,
        holdout: Option<&FeatureSet>,
        prior: Prior,
        coefficient: f32,
        device: &Device,
    ) -> Self {
        Self {
            features: train.tensor(device),
            one_hot: train.one_hot(device),
            holdout: holdout.map(|set| (set.tensor(device), set.one_hot(device))),
            prior,
            coefficient,
            absent: None,
            present_rows: None,
        }
    }

    /// The softmax of the training loss over only the classes `train` has an image of
    /// ([`crate::heads::train::HeadSettings::present_classes_only`]).
    pub fn present_classes_only(mut self, train: &FeatureSet, device: &Device) -> Self {
        let absent = train.absent_class_mask(device);
        let classes = train.class_count();
        self.present_rows = Some(absent.clone().equal_elem(0.0).float().reshape([classes, 1]));
        self.absent = Some(absent);
        self
    }

    /// Starting point: zeros, or the text embeddings for LP+text.
    pub fn init(&self, classes: usize, dim: usize) -> Params {
        probe_start(&self.prior, classes, dim, &self.features.device())
    }

    pub fn logits(&self, params: &Params, features: Tensor<2>) -> Tensor<2> {
        let weight = params[WEIGHT].clone();
        features.matmul(weight.transpose()) * self.prior.scale() + params[BIAS].clone()
    }
}

impl Objective for LogisticObjective {
    fn loss(&mut self, params: &Params) -> (Tensor<1>, f32) {
        let mut logits = self.logits(params, self.features.clone());
        if let Some(absent) = &self.absent {
            logits = logits + absent.clone();
        }
        let (data_loss, accuracy) = cross_entropy(logits, self.one_hot.clone());
        let offset = match &self.prior {
            Prior::None => params[WEIGHT].clone(),
            Prior::Text { embeddings, .. } => params[WEIGHT].clone() - embeddings.clone(),
        };
        let offset = match &self.present_rows {
            Some(rows) => offset * rows.clone(),
            None => offset,
        };
        let penalty = offset.powf_scalar(2.0).sum() * self.coefficient;
        (data_loss + penalty, accuracy)
    }

    fn evaluate(&mut self, params: &Params) -> Option<(f32, f32)> {
        let (features, one_hot) = self.holdout.clone()?;
        Some(holdout_scores(self.logits(params, features), one_hot))
    }
}
