//! MaskCLIP's dense map (Zhou, Loy & Dai, ECCV 2022): the tokens entering the last block take
//! its value path only (`ln_1`, v, `out_proj`; the residual and the MLP kept), then `ln_post`
//! and the projection put every patch in the image embedding's space, where the classifier
//! scores it as it would score an image. One forward pass and no gradients: cheap enough for
//! the browser's CPU fallback.
//!
//! The attention focus steers attention, which the value path skips: with the bias on the
//! class token's queries only (the default), the dense map is plain CLIP's. A visual prompt
//! changes the pixels, so it shows.

use super::request::{ExplainError, ExplainRequest, PatchMap, choose_class};
use crate::clip::vision::{VisionTransformer, block_bias};
use crate::device::read_floats;
use crate::focus::TowerInput;
use crate::pipeline::Classifier;

/// Each patch's logit for the class, over the patch grid.
pub async fn dense(
    vision: &VisionTransformer,
    input: &TowerInput,
    classifier: &dyn Classifier,
    request: &ExplainRequest,
) -> Result<PatchMap, ExplainError> {
    let Some(last) = vision.layers().checked_sub(1) else {
        return Err(ExplainError::StartBlock {
            block: 0,
            blocks: 0,
        });
    };
    let bias = input.bias.as_ref();
    let x = vision.forward_tokens_until(input.pixels.clone(), bias, last);
    let block = &vision.blocks[last];
    let image = vision.pool(block.forward(x.clone(), block_bias(bias, last)));
    let values = read_floats(classifier.logits(image)?).await?;
    let class = choose_class(&values, request.class)?;
    let patches = vision.pool_patches(block.forward_value_path(x));
    let [batch, count, width] = patches.dims();
    let patch_logits = classifier.logits(patches.reshape([batch * count, width]))?;
    let map = patch_logits.narrow(1, class, 1).reshape([batch * count]);
    Ok(PatchMap {
        logits: values,
        class,
        values: read_floats(map).await?,
    })
}
