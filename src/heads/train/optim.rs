//! Adam with decoupled weight decay (AdamW, Loshchilov & Hutter), over named tensors. Written
//! here rather than taken from burn-optim because its state must survive a killed process: it is
//! keyed by the parameter's name (burn-optim keys it by a per-process parameter id), and saved
//! and restored bit for bit with the training checkpoint.

use std::collections::BTreeMap;

use burn::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamSettings {
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
    /// Decoupled: `p ← p − lr·wd·p` besides the Adam step.
    pub weight_decay: f32,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// First and second moments per parameter, and the step count (for bias correction).
#[derive(Clone, Debug)]
pub struct Adam {
    pub settings: AdamSettings,
    pub step: u64,
    pub first: BTreeMap<String, Tensor<2>>,
    pub second: BTreeMap<String, Tensor<2>>,
}

impl Adam {
    pub fn new(settings: AdamSettings) -> Self {
        Self {
            settings,
            step: 0,
            first: BTreeMap::new(),
            second: BTreeMap::new(),
        }
    }

    /// Starts a step: every [`Adam::update`] until the next call shares its bias correction.
    pub fn begin_step(&mut self) {
        self.step += 1;
    }

    /// The parameter after one step against `gradient` (both untracked tensors).
    pub fn update(
        &mut self,
        name: &str,
        parameter: Tensor<2>,
        gradient: Tensor<2>,
        learning_rate: f32,
    ) -> Tensor<2> {
        let AdamSettings {
            beta1,
            beta2,
            epsilon,
            weight_decay,
        } = self.settings;
        let zeros = || gradient.zeros_like();
        let first = self.first.remove(name).unwrap_or_else(zeros) * beta1
            + gradient.clone() * (1.0 - beta1);
        let second = self.second.remove(name).unwrap_or_else(zeros) * beta2
            + gradient.powf_scalar(2.0) * (1.0 - beta2);
        let step = self.step.max(1) as i32;
        let first_hat = first.clone() / (1.0 - beta1.powi(step));
        let second_hat = second.clone() / (1.0 - beta2.powi(step));
        self.first.insert(name.to_string(), first);
        self.second.insert(name.to_string(), second);
        let decayed = if weight_decay > 0.0 {
            parameter.clone() * (1.0 - learning_rate * weight_decay)
        } else {
            parameter
        };
        decayed - first_hat / (second_hat.sqrt() + epsilon) * learning_rate
    }
}
