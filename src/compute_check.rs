//! A small, deterministic computation that proves a device computes correctly.
//!
//! It exercises what the models need — a matmul, a scaled softmax over rows and a reduction —
//! on inputs defined by a formula (not by a backend's RNG, which differs between backends), so
//! its result can be compared across devices and against a plain-Rust reference.

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

/// Input `a[i][k]` of the check, a bounded, non-periodic pattern.
fn input_a(i: usize, k: usize) -> f32 {
    ((i * 7 + k * 3) % 17) as f32 / 17.0 * 4.0 - 2.0
}

/// Input `b[k][j]` of the check.
fn input_b(k: usize, j: usize) -> f32 {
    ((k * 5 + j * 11) % 13) as f32 / 13.0 * 4.0 - 2.0
}

fn matrix(n: usize, value: fn(usize, usize) -> f32) -> TensorData {
    let values: Vec<f32> = (0..n * n)
        .map(|index| value(index / n, index % n))
        .collect();
    TensorData::new(values, [n, n])
}

/// Builds the check's graph on `device`: `softmax(A·B / √n)` over rows, and its row sums.
fn build(device: &Device, n: usize) -> (Tensor<2>, Tensor<1>) {
    let a = Tensor::<2>::from_data(matrix(n, input_a), device);
    let b = Tensor::<2>::from_data(matrix(n, input_b), device);
    let logits = a.matmul(b) / (n as f32).sqrt();
    let probabilities = burn::tensor::activation::softmax(logits, 1);
    let row_sums = probabilities.clone().sum_dim(1).reshape([n]);
    (probabilities, row_sums)
}

/// The check's output read back from a device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckOutput {
    pub size: usize,
    pub probabilities: Vec<f32>,
    pub row_sums: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
#[error("the device failed to compute or read back the check: {0}")]
pub struct CheckError(String);

impl CheckOutput {
    /// Largest absolute difference to another run of the check.
    pub fn max_abs_diff(&self, other: &Self) -> f32 {
        self.probabilities
            .iter()
            .zip(&other.probabilities)
            .chain(self.row_sums.iter().zip(&other.row_sums))
            .map(|(left, right)| (left - right).abs())
            .fold(
                if self.size == other.size {
                    0.0
                } else {
                    f32::INFINITY
                },
                f32::max,
            )
    }
}

fn read(data: TensorData) -> Result<Vec<f32>, CheckError> {
    data.try_into_vec::<f32>()
        .map_err(|error| CheckError(format!("{error:?}")))
}

/// Runs the check on `device`, reading back asynchronously (the only way a browser allows).
pub async fn run_check(device: &Device, n: usize) -> Result<CheckOutput, CheckError> {
    let (probabilities, row_sums) = build(device, n);
    let probabilities = probabilities
        .into_data_async()
        .await
        .map_err(|error| CheckError(error.to_string()))?;
    let row_sums = row_sums
        .into_data_async()
        .await
        .map_err(|error| CheckError(error.to_string()))?;
    Ok(CheckOutput {
        size: n,
        probabilities: read(probabilities)?,
        row_sums: read(row_sums)?,
    })
}

/// The same computation in plain Rust (f64 accumulation), independent of burn.
pub fn reference(n: usize) -> CheckOutput {
    let scale = 1.0 / (n as f64).sqrt();
    let mut probabilities = Vec::with_capacity(n * n);
    let mut row_sums = Vec::with_capacity(n);
    for i in 0..n {
        let logits: Vec<f64> = (0..n)
            .map(|j| {
                (0..n)
                    .map(|k| f64::from(input_a(i, k)) * f64::from(input_b(k, j)))
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = logits.iter().map(|logit| (logit - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        let row: Vec<f32> = exps.iter().map(|value| (value / total) as f32).collect();
        row_sums.push(row.iter().map(|&value| f64::from(value)).sum::<f64>() as f32);
        probabilities.extend(row);
    }
    CheckOutput {
        size: n,
        probabilities,
        row_sums,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_rows_are_distributions_and_not_uniform() {
        let output = reference(16);
        assert!(output.row_sums.iter().all(|sum| (sum - 1.0).abs() < 1e-5));
        let (min, max) = output
            .probabilities
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        // A uniform output would hide a broken matmul; the inputs are chosen to avoid it.
        assert!(max / min > 10.0, "min {min} max {max}");
    }

    #[test]
    fn diff_of_different_sizes_is_infinite() {
        assert_eq!(reference(4).max_abs_diff(&reference(5)), f32::INFINITY);
        assert_eq!(reference(4).max_abs_diff(&reference(4)), 0.0);
    }
}
