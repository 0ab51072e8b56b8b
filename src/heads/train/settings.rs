//! What training is given and gives: every hyper-parameter with its default and check, the class
//! text prior, how a convex fit ended, and the trained head before its identity is added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::heads::head_file::{HeadKind, HostTensor, TipAdapterScalars};

/// How the weights are stepped. Every kind has its default ([`HeadSettings::optimizer`]); the
/// gradient optimisers on a linear probe or LP+text train with a fixed per-image penalty and a
/// constant learning rate — what a federated round needs (issue 34): sites differ in size, so
/// scikit-learn's `C` (a penalty divided by the image count) would weigh them differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// L-BFGS to convergence (the probes' default: the convex optimum, as scikit-learn finds it).
    Lbfgs,
    /// Adam (AdamW with a weight decay): the default of every gradient-trained head.
    Adam,
    /// Plain full-batch gradient descent, `p ← p − lr·∇`: with one step per round, federated
    /// averaging over every site equals central gradient descent on their union.
    GradientDescent,
}

impl Optimizer {
    pub const NAMES: [&'static str; 3] = ["lbfgs", "adam", "gradient-descent"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "lbfgs" => Some(Self::Lbfgs),
            "adam" => Some(Self::Adam),
            "gradient-descent" | "gd" => Some(Self::GradientDescent),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Lbfgs => "lbfgs",
            Self::Adam => "adam",
            Self::GradientDescent => "gradient-descent",
        }
    }
}

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
    /// How the weights are stepped (default per kind: L-BFGS for the probes, else Adam).
    // The settings added for federated training are left out of the JSON at their defaults, so
    // run identities (checkpoints, evaluation runs) made before them still match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer: Option<Optimizer>,
    /// Linear probe under a gradient optimiser: λ in `mean cross-entropy + λ‖W‖²`, the same for
    /// any number of images (default [`DEFAULT_PENALTY`], or from `c` on this set's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub penalty: Option<f32>,
    /// The learning rate over the epochs of a gradient-trained head: cosine decay to 0 (the
    /// default), or constant — what federated rounds need to add up to central training.
    #[serde(default, skip_serializing_if = "is_false")]
    pub constant_learning_rate: bool,
    /// The training softmax over only the classes the images have: a federated site that lacks
    /// a class then leaves that class's weights to the sites that have it, instead of learning
    /// that it never occurs (FedRS's restricted softmax, Li & Zhan, KDD 2021). Probes and CoOp.
    #[serde(default, skip_serializing_if = "is_false")]
    pub present_classes_only: bool,
    /// FedProx's μ: `μ/2·‖θ − θ₀‖²` pulls the weights towards where they started (the global
    /// head a federated round sent); 0: off. Probes and CoOp.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub proximal_mu: f32,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &f32) -> bool {
    *value == 0.0
}

/// The linear probe's per-image penalty under a gradient optimiser when neither it nor C is
/// given: light, as for a handful of images the data term is small too.
pub const DEFAULT_PENALTY: f32 = 1e-3;

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
            optimizer: None,
            penalty: None,
            constant_learning_rate: false,
            present_classes_only: false,
            proximal_mu: 0.0,
        }
    }

    /// The optimiser this head trains with: the chosen one, else its kind's.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer.unwrap_or(match self.kind {
            HeadKind::LinearProbe | HeadKind::LpText => Optimizer::Lbfgs,
            _ => Optimizer::Adam,
        })
    }

    /// Whether a probe trains by gradient steps (fixed penalty, no search) rather than L-BFGS.
    pub fn probe_by_gradient(&self) -> bool {
        matches!(self.kind, HeadKind::LinearProbe | HeadKind::LpText)
            && self.optimizer() != Optimizer::Lbfgs
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
        self.check_optimizer()?;
        if !(0.0..=1.0).contains(&self.contrastive_weight) {
            return Err(format!(
                "contrastive weight {}: a weight in [0, 1]",
                self.contrastive_weight
            ));
        }
        Ok(())
    }

    /// The optimiser, the probe's penalty, FedProx's μ and the restricted softmax: each only
    /// where it means something.
    fn check_optimizer(&self) -> Result<(), String> {
        if let Some(penalty) = self.penalty {
            if !(penalty.is_finite() && penalty >= 0.0) {
                return Err(format!("penalty {penalty}: must be zero or more"));
            }
            if self.kind != HeadKind::LinearProbe {
                return Err(format!(
                    "penalty: a linear probe's setting; {} has none",
                    self.kind.name()
                ));
            }
            if self.c.is_some() {
                return Err("give C or the penalty, not both (C = 1 / (2·penalty·images))".into());
            }
        }
        if !(self.proximal_mu.is_finite() && self.proximal_mu >= 0.0) {
            return Err(format!(
                "proximal μ {}: must be zero or more",
                self.proximal_mu
            ));
        }
        if self.proximal_mu > 0.0
            && !matches!(
                self.kind,
                HeadKind::LinearProbe | HeadKind::LpText | HeadKind::Coop
            )
        {
            return Err(format!(
                "proximal μ: the probes and CoOp train with it; {} does not",
                self.kind.name()
            ));
        }
        if self.present_classes_only
            && !matches!(
                self.kind,
                HeadKind::LinearProbe | HeadKind::LpText | HeadKind::Coop
            )
        {
            return Err(format!(
                "present classes only: the probes and CoOp train with it; {} does not",
                self.kind.name()
            ));
        }
        match (self.optimizer, self.kind) {
            (None, _) | (Some(Optimizer::Lbfgs), HeadKind::LinearProbe | HeadKind::LpText) => {}
            (Some(Optimizer::Lbfgs), kind) => {
                return Err(format!(
                    "optimizer lbfgs: only the linear probe and LP+text are convex; {} trains with adam or gradient-descent",
                    kind.name()
                ));
            }
            (Some(_), HeadKind::ZeroShot | HeadKind::TipAdapter) => {
                return Err(format!(
                    "optimizer: a {} head has no gradient training",
                    self.kind.name()
                ));
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn epochs(&self) -> usize {
        self.epochs.unwrap_or(match self.kind {
            HeadKind::LinearProbe | HeadKind::LpText => 500,
            HeadKind::Coop => 200,
            HeadKind::Finetune => 50,
            _ => 100,
        })
    }

    pub(super) fn learning_rate(&self) -> f32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_added_for_federated_training_leave_older_run_identities_alone() {
        // Run identities (checkpoints, evaluation runs) hash these settings' JSON: at their
        // defaults the new settings must not appear in it, and older JSON must read back.
        let settings = HeadSettings::new(HeadKind::LinearProbe);
        let json = serde_json::to_value(&settings).unwrap();
        for key in [
            "optimizer",
            "penalty",
            "constant_learning_rate",
            "present_classes_only",
            "proximal_mu",
        ] {
            assert!(json.get(key).is_none(), "{key} in {json}");
        }
        let read: HeadSettings = serde_json::from_value(json).unwrap();
        assert_eq!(read, settings);
        let chosen = HeadSettings {
            optimizer: Some(Optimizer::GradientDescent),
            proximal_mu: 0.5,
            ..settings
        };
        let json = serde_json::to_value(&chosen).unwrap();
        assert_eq!(json["optimizer"], "gradient-descent");
        assert_eq!(
            serde_json::from_value::<HeadSettings>(json).unwrap(),
            chosen
        );
    }
}
