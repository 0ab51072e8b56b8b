//! Tip-Adapter (Zhang et al., ECCV 2022): a cache model built from the support set. Keys are the
//! support images' unit embeddings, values their one-hot labels; a query's affinity to the keys,
//! sharpened by `exp(−β(1 − cos))`, votes for the labels and is added, weighted by α, to CLIP's
//! zero-shot logits. Tip-Adapter-F fine-tunes the keys (training in [`crate::heads::train`]).

use burn::tensor::Tensor;

use super::features::argmax;
use super::head_file::TipAdapterScalars;

/// `α·exp(−β·(1 − f·Kᵀ))·V` for unit rows `f` `[n, dim]`, keys `[cache, dim]`, values `[cache, classes]`.
pub fn cache_logits(
    features: Tensor<2>,
    keys: Tensor<2>,
    values: Tensor<2>,
    scalars: TipAdapterScalars,
) -> Tensor<2> {
    let affinity = features.matmul(keys.transpose());
    ((affinity - 1.0) * scalars.beta).exp().matmul(values) * scalars.alpha
}

/// The α/β grid: Tip-Adapter's own search (β from 0.1 towards 7 in 200 steps, α from 0.1 towards 3
/// in 20, β outer, the first best kept).
#[derive(Clone, Debug, PartialEq)]
pub struct SearchGrid {
    pub betas: Vec<f32>,
    pub alphas: Vec<f32>,
}

/// The authors' spacing: `i·(scale − 0.1)/steps + 0.1` for `i < steps` (the scale itself is not
/// reached).
fn authors_steps(scale: f32, steps: usize) -> Vec<f32> {
    (0..steps)
        .map(|i| i as f32 * (scale - 0.1) / steps as f32 + 0.1)
        .collect()
}

impl Default for SearchGrid {
    fn default() -> Self {
        Self {
            betas: authors_steps(7.0, 200),
            alphas: authors_steps(3.0, 20),
        }
    }
}

/// Host-side inputs of the search, all row-major: text logits `[n, classes]` (already scaled),
/// affinities `f·Kᵀ` `[n, cache]`, cache values `[cache, classes]`, and the true labels.
pub struct SearchInputs<'a> {
    pub text_logits: &'a [f32],
    pub affinity: &'a [f32],
    pub values: &'a [f32],
    pub labels: &'a [usize],
    pub classes: usize,
}

/// The (α, β) with the best accuracy on the inputs, and that accuracy.
pub fn search(inputs: &SearchInputs, grid: &SearchGrid) -> (TipAdapterScalars, f32) {
    let n = inputs.labels.len();
    let classes = inputs.classes;
    let cache = inputs.values.len() / classes.max(1);
    let mut best = (
        TipAdapterScalars {
            alpha: grid.alphas.first().copied().unwrap_or(1.0),
            beta: grid.betas.first().copied().unwrap_or(1.0),
        },
        -1.0f32,
    );
    let mut votes = vec![0.0f32; n * classes];
    let mut row = vec![0.0f32; classes];
    for &beta in &grid.betas {
        // votes = exp(−β(1 − A))·V, once per β; α only rescales them.
        votes.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..n {
            for j in 0..cache {
                let weight = (beta * (inputs.affinity[i * cache + j] - 1.0)).exp();
                for c in 0..classes {
                    votes[i * classes + c] += weight * inputs.values[j * classes + c];
                }
            }
        }
        for &alpha in &grid.alphas {
            let mut correct = 0usize;
            for i in 0..n {
                for c in 0..classes {
                    row[c] = inputs.text_logits[i * classes + c] + alpha * votes[i * classes + c];
                }
                if argmax(&row) == inputs.labels[i] {
                    correct += 1;
                }
            }
            let accuracy = correct as f32 / n.max(1) as f32;
            if accuracy > best.1 {
                best = (TipAdapterScalars { alpha, beta }, accuracy);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_finds_the_cache_weight_that_fixes_a_wrong_text_prior() {
        // Two classes; text logits prefer the wrong class by 1; the cache votes strongly for the
        // right one when β is large enough.
        let inputs = SearchInputs {
            text_logits: &[0.0, 1.0, 1.0, 0.0],
            affinity: &[1.0, 0.2, 0.2, 1.0],
            values: &[1.0, 0.0, 0.0, 1.0],
            labels: &[0, 1],
            classes: 2,
        };
        let (scalars, accuracy) = search(&inputs, &SearchGrid::default());
        assert_eq!(accuracy, 1.0);
        // Needs α·(1 − e^{−0.8β}) > 1.
        assert!(scalars.alpha * (1.0 - (-0.8 * scalars.beta).exp()) > 1.0);
    }
}
