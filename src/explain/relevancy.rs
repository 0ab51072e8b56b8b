//! Gradient-weighted attention relevancy (Chefer, Gur & Wolf, ICCV 2021), as
//! `CLIP_explainability.ipynb` computes it for CLIP's image tower.
//!
//! The blocks before the start block run as usual, without a graph. From the start block on,
//! each block's attention probabilities get a zero "probe" tracked by burn's autodiff (see
//! [`crate::clip::transformer::Attention::forward_probed`]): the probe's gradient is the
//! gradient of the class's logit with respect to those probabilities, for every probed block
//! from one backward pass. Only the probed blocks enter the graph, so the notebook's default
//! (the last block alone) costs one block's backward on top of a forward.

use burn::tensor::Tensor;

use super::request::{ExplainError, ExplainRequest, PatchMap, choose_class};
use crate::clip::vision::{VisionTransformer, block_bias};
use crate::device::read_floats;
use crate::focus::TowerInput;
use crate::pipeline::Classifier;

/// The relevancy map over the patch grid (the class token's row of `R`, without itself).
pub async fn relevancy(
    vision: &VisionTransformer,
    input: &TowerInput,
    classifier: &dyn Classifier,
    request: &ExplainRequest,
) -> Result<PatchMap, ExplainError> {
    let blocks = vision.layers();
    let start = request.start_block.unwrap_or(blocks.saturating_sub(1));
    if start >= blocks {
        return Err(ExplainError::StartBlock {
            block: start,
            blocks,
        });
    }
    let bias = input.bias.as_ref();
    let mut x = vision.forward_tokens_until(input.pixels.clone(), bias, start);
    let [batch, tokens, _] = x.dims();
    let device = x.device();
    let mut probed = Vec::with_capacity(blocks - start);
    for (index, block) in vision.blocks.iter().enumerate().skip(start) {
        let probe = Tensor::<4>::zeros([batch, vision.heads(), tokens, tokens], &device)
            .autodiff()
            .require_grad();
        let (next, probabilities) = block.forward_probed(x, block_bias(bias, index), probe.clone());
        probed.push((probe, probabilities.inner()));
        x = next;
    }
    let logits = classifier.logits(vision.pool(x))?;
    let values = read_floats(logits.clone().inner()).await?;
    let class = choose_class(&values, request.class)?;
    let gradients = logits.narrow(1, class, 1).sum().backward();
    let mut relevance = Tensor::<2>::eye(tokens, &device);
    for (probe, probabilities) in probed {
        // No gradient reaches a probe whose block cannot change the score: a zero map.
        let gradient = probe
            .grad(&gradients)
            .unwrap_or_else(|| probabilities.zeros_like());
        let cam = (gradient * probabilities)
            .clamp_min(0.0)
            .mean_dim(1)
            .reshape([tokens, tokens]);
        relevance = relevance.clone() + cam.matmul(relevance);
    }
    let class_row = relevance
        .narrow(0, 0, 1)
        .narrow(1, 1, tokens - 1)
        .reshape([tokens - 1]);
    Ok(PatchMap {
        logits: values,
        class,
        values: read_floats(class_row).await?,
    })
}
