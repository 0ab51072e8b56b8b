//! L-BFGS (Nocedal & Wright, algorithms 7.4 and 3.1) for the convex heads — the linear probes —
//! which must reach the optimum itself to agree with scikit-learn's lbfgs solver: Adam stalls
//! short of it when the penalty is weak. Gradients come from burn's autodiff; the direction and
//! the line search work on a flat host vector (a head has a few thousand parameters).

use std::collections::VecDeque;

use burn::tensor::{Device, Tensor, TensorData};

use super::run::{EpochReport, Objective, Observer, Params, TrainError, host_values};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LbfgsSettings {
    pub max_iterations: usize,
    /// Stop when the largest gradient component is below this.
    pub gradient_tolerance: f64,
    /// Stop when an iteration improves the loss by less than this, relatively.
    pub change_tolerance: f64,
    pub history: usize,
}

impl Default for LbfgsSettings {
    fn default() -> Self {
        Self {
            max_iterations: 500,
            gradient_tolerance: 1e-6,
            // Off by default: the f32 loss changes too little to judge near the optimum.
            change_tolerance: 0.0,
            history: 20,
        }
    }
}

/// Parameter names and shapes in flattening order.
struct Layout(Vec<(String, [usize; 2])>);

impl Layout {
    fn unflatten(&self, flat: &[f64], device: &Device) -> Params {
        let mut offset = 0;
        self.0
            .iter()
            .map(|(name, shape)| {
                let len = shape[0] * shape[1];
                let values: Vec<f32> = flat[offset..offset + len]
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                offset += len;
                (
                    name.clone(),
                    Tensor::from_data(TensorData::new(values, *shape), device).require_grad(),
                )
            })
            .collect()
    }
}

/// Minimises `objective` from `init`; returns the parameters (untracked), iterations and loss.
///
/// Not split: Nocedal & Wright's algorithm (two-loop recursion, line search, history update) in one
/// piece, to be read against the book.
pub fn minimize(
    stage: &str,
    objective: &mut dyn Objective,
    init: &Params,
    settings: &LbfgsSettings,
    observer: &mut dyn Observer,
    device: &Device,
) -> Result<(Params, usize, f32, f32), TrainError> {
    let layout = Layout(
        init.iter()
            .map(|(name, tensor)| (name.clone(), tensor.dims()))
            .collect(),
    );
    let mut x: Vec<f64> = Vec::new();
    for tensor in init.values() {
        x.extend(host_values(tensor.clone())?.into_iter().map(f64::from));
    }
    let mut evaluate = |x: &[f64]| -> Result<(f64, Vec<f64>, f32), TrainError> {
        let params = layout.unflatten(x, device);
        let (loss, accuracy) = objective.loss(&params);
        let value: f32 = loss.clone().into_scalar();
        let gradients = loss.backward();
        let mut gradient = Vec::with_capacity(x.len());
        for (name, shape) in &layout.0 {
            match params[name].grad(&gradients) {
                Some(g) => gradient.extend(host_values(g)?.into_iter().map(f64::from)),
                None => gradient.extend(std::iter::repeat_n(0.0, shape[0] * shape[1])),
            }
        }
        Ok((f64::from(value), gradient, accuracy))
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (mut f, mut g, mut accuracy) = evaluate(&x)?;
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
    observer.stage(stage, settings.max_iterations, 0);
    let mut iterations = 0;
    while iterations < settings.max_iterations {
        if !f.is_finite() {
            return Err(TrainError::Diverged {
                stage: stage.to_string(),
                epoch: iterations,
            });
        }
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < settings.gradient_tolerance {
            break;
        }
        // Two-loop recursion: d = −H·g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(q, y)| *q -= alpha * y);
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = history.back() {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|q| *q *= gamma);
        }
        for ((s, y, rho), alpha) in history.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &q);
            q.iter_mut()
                .zip(s)
                .for_each(|(q, s)| *q += s * (alpha - beta));
        }
        let mut direction: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &direction);
        if slope >= 0.0 {
            history.clear();
            direction = g.iter().map(|v| -v).collect();
            slope = dot(&g, &direction);
        }
        // Backtracking line search (Armijo); the first step is scaled when there is no history.
        let mut step = if history.is_empty() {
            (1.0 / g.iter().map(|v| v.abs()).sum::<f64>()).min(1.0)
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..60 {
            let candidate: Vec<f64> = x
                .iter()
                .zip(&direction)
                .map(|(x, d)| x + step * d)
                .collect();
            let (fc, gc, ac) = evaluate(&candidate)?;
            // Armijo's sufficient decrease; near the optimum the f32 loss cannot resolve the
            // decrease any more, so a step that keeps the loss within rounding and shrinks the
            // gradient is taken too.
            let largest = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let within_rounding = fc <= f + 4.0 * f64::from(f32::EPSILON) * f.abs();
            if fc.is_finite()
                && (fc <= f + 1e-4 * step * slope
                    || (within_rounding && largest(&gc) < largest(&g)))
            {
                accepted = Some((candidate, fc, gc, ac));
                break;
            }
            step *= 0.5;
        }
        iterations += 1;
        let Some((candidate, fc, gc, ac)) = accepted else {
            break; // no decrease possible at f32 precision: converged as far as it goes
        };
        let s: Vec<f64> = candidate.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gc.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 {
            history.push_back((s, y, 1.0 / sy));
            if history.len() > settings.history {
                history.pop_front();
            }
        }
        let change = (f - fc).abs();
        (x, f, g, accuracy) = (candidate, fc, gc, ac);
        observer.epoch(&EpochReport {
            stage: stage.to_string(),
            epoch: iterations,
            epochs: settings.max_iterations,
            loss: f as f32,
            accuracy,
            holdout: None,
            best_epoch: iterations,
        });
        if settings.change_tolerance > 0.0 && change <= settings.change_tolerance * f.abs().max(1.0)
        {
            break;
        }
    }
    let params = layout
        .unflatten(&x, device)
        .into_iter()
        .map(|(name, tensor)| (name, tensor.detach()))
        .collect();
    Ok((params, iterations, f as f32, accuracy))
}
