//! How a segmentation mask steers CLIP — the pipeline's own idea, kept apart from CLIP itself.
//!
//! Two routes: draw the mask into the pixels ([`prompt`], the paper's overlay and the usual
//! alternatives), or leave the pixels alone and bias the image tower's attention towards the
//! masked patches ([`attention`]).

pub mod attention;
pub mod mask;
pub mod prompt;

use burn::tensor::Device;

pub use attention::{AttentionFocus, BiasedLayers, BiasedQueries, FocusError};
pub use mask::{Mask, MaskError};
pub use prompt::{PromptError, VisualPrompt};

use crate::clip::preprocess::{Pixels8, PreprocessConfig, batch_tensor, preprocess};
use crate::clip::{ClipModel, LayerBias};
use burn::tensor::Tensor;

/// How (and whether) a mask steers the image embedding.
#[derive(Clone, Debug, PartialEq)]
pub enum Focus {
    None,
    Prompt(VisualPrompt),
    Attention(AttentionFocus),
}

#[derive(Debug, thiserror::Error)]
pub enum FocusApplyError {
    #[error("a mask is needed for this focus method")]
    NoMask,
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Attention(#[from] FocusError),
    #[error(transparent)]
    Mask(#[from] MaskError),
    #[error(transparent)]
    Vision(#[from] crate::clip::vision::VisionInputError),
}

/// Image embeddings `[1, embed_dim]` for one image under a focus method.
pub fn encode_focused(
    model: &ClipModel,
    preprocess_config: &PreprocessConfig,
    image: &Pixels8,
    mask: Option<&Mask>,
    focus: &Focus,
    device: &Device,
) -> Result<Tensor<2>, FocusApplyError> {
    let size = preprocess_config.image_size;
    match focus {
        Focus::None => {
            let pixels = batch_tensor(&[preprocess(image, preprocess_config)], size, device);
            Ok(model.encode_image(pixels)?)
        }
        Focus::Prompt(prompt) => {
            let mask = mask.ok_or(FocusApplyError::NoMask)?;
            let prompted = prompt::apply(image, mask, prompt)?;
            let pixels = batch_tensor(&[preprocess(&prompted, preprocess_config)], size, device);
            Ok(model.encode_image(pixels)?)
        }
        Focus::Attention(attention) => {
            let mask = mask.ok_or(FocusApplyError::NoMask)?;
            mask.check_matches(image.width, image.height)?;
            let weights =
                attention::patch_weights(mask, preprocess_config, model.vision.grid_size());
            let bias: LayerBias =
                attention.layer_bias(&[weights], model.vision.layers(), device)?;
            let pixels = batch_tensor(&[preprocess(image, preprocess_config)], size, device);
            Ok(model.encode_image_focused(pixels, &bias)?)
        }
    }
}
