//! How a segmentation mask steers CLIP — the pipeline's own idea, kept apart from CLIP itself.
//!
//! Two routes: draw the mask into the pixels ([`prompt`], the paper's overlay and the usual
//! alternatives), or leave the pixels alone and bias the image tower's attention towards the
//! masked patches ([`attention`]).

pub mod attention;
pub mod mask;
pub mod mode;
pub mod prompt;

use std::borrow::Cow;

use burn::tensor::Device;

pub use attention::{AttentionFocus, BiasedLayers, BiasedQueries, FocusError};
pub use mask::{Mask, MaskError};
pub use mode::FocusMode;
pub use prompt::{PromptError, VisualPrompt};

use crate::clip::preprocess::{Pixels8, PreprocessConfig, batch_tensor, preprocess};
use crate::clip::vision::VisionTransformer;
use crate::clip::{ClipModel, LayerBias};
use burn::tensor::Tensor;

/// How (and whether) a mask steers the image embedding.
#[derive(Clone, Debug, PartialEq)]
pub enum Focus {
    None,
    Prompt(VisualPrompt),
    Attention(AttentionFocus),
}

/// The names front ends offer for [`Focus::from_method`].
pub const METHODS: &[&str] = &[
    "none",
    "overlay",
    "blur",
    "crop",
    "binary",
    "grey",
    "attention",
];

/// Every method's knobs, defaulting to what the CLI and the page start with.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FocusSettings {
    /// Overlay opacity inside the region.
    pub alpha: f32,
    /// Blur σ in pixels.
    pub sigma: f32,
    /// Crop margin, as a fraction of the region's size.
    pub margin: f32,
    /// Attention bias strength; 0 is plain CLIP.
    pub strength: f32,
    /// Bias only the last N blocks (all when None).
    pub last_layers: Option<usize>,
    /// Bias every token's attention, not only the class token's.
    pub all_tokens: bool,
}

impl Default for FocusSettings {
    fn default() -> Self {
        Self {
            alpha: 0.35,
            sigma: 8.0,
            margin: 0.1,
            strength: 2.0,
            last_layers: None,
            all_tokens: false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown focus method `{0}`; one of: none, overlay, blur, crop, binary, grey, attention")]
pub struct UnknownMethod(pub String);

impl Focus {
    /// A method by name (see [`METHODS`]) with its settings.
    pub fn from_method(name: &str, settings: &FocusSettings) -> Result<Focus, UnknownMethod> {
        Ok(match name {
            "none" => Focus::None,
            "overlay" => Focus::Prompt(VisualPrompt::Overlay {
                inside: [255, 0, 0],
                inside_alpha: settings.alpha,
                outside: [0, 0, 0],
                outside_alpha: 0.0,
            }),
            "blur" => Focus::Prompt(VisualPrompt::BlurOutside {
                sigma: settings.sigma,
            }),
            "crop" => Focus::Prompt(VisualPrompt::CropToBox {
                margin: settings.margin,
            }),
            "binary" => Focus::Prompt(VisualPrompt::BinaryMask),
            "grey" => Focus::Prompt(VisualPrompt::GreyOutside),
            "attention" => Focus::Attention(AttentionFocus {
                strength: settings.strength,
                queries: if settings.all_tokens {
                    BiasedQueries::AllTokens
                } else {
                    BiasedQueries::ClassToken
                },
                layers: settings
                    .last_layers
                    .map_or(BiasedLayers::All, BiasedLayers::Last),
            }),
            other => return Err(UnknownMethod(other.to_string())),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FocusApplyError {
    #[error("a mask is needed for this focus method (give a region)")]
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
    encode_focused_with(&model.vision, preprocess_config, image, mask, focus, device)
}

/// [`encode_focused`] through a given image tower (a fine-tuned copy, say).
pub fn encode_focused_with(
    vision: &VisionTransformer,
    preprocess_config: &PreprocessConfig,
    image: &Pixels8,
    mask: Option<&Mask>,
    focus: &Focus,
    device: &Device,
) -> Result<Tensor<2>, FocusApplyError> {
    let input = focused_input(vision, preprocess_config, image, mask, focus, device)?;
    Ok(vision.forward(input.pixels, input.bias.as_ref()))
}

/// The tokens `[1, tokens, width]` entering block `blocks` of the image tower, for one image under
/// a focus method (what a head that fine-tunes the later blocks trains from).
pub fn tokens_focused(
    vision: &VisionTransformer,
    preprocess_config: &PreprocessConfig,
    image: &Pixels8,
    mask: Option<&Mask>,
    focus: &Focus,
    blocks: usize,
    device: &Device,
) -> Result<Tensor<3>, FocusApplyError> {
    let input = focused_input(vision, preprocess_config, image, mask, focus, device)?;
    Ok(vision.forward_tokens_until(input.pixels, input.bias.as_ref(), blocks))
}

/// The picture CLIP's preprocessing is given under `focus`: the image with a visual prompt drawn
/// in, or the image itself (`none`, and `attention`, which leaves the pixels alone). The page
/// shows exactly this, so what a person sees is what the tower sees.
pub fn focused_pixels<'a>(
    image: &'a Pixels8,
    mask: Option<&Mask>,
    focus: &Focus,
) -> Result<Cow<'a, Pixels8>, FocusApplyError> {
    match focus {
        Focus::None => Ok(Cow::Borrowed(image)),
        Focus::Prompt(prompt) => {
            let mask = mask.ok_or(FocusApplyError::NoMask)?;
            Ok(Cow::Owned(prompt::apply(image, mask, prompt)?))
        }
        Focus::Attention(_) => {
            let mask = mask.ok_or(FocusApplyError::NoMask)?;
            mask.check_matches(image.width, image.height)?;
            Ok(Cow::Borrowed(image))
        }
    }
}

/// What the image tower is given for one image under a focus method.
#[derive(Clone, Debug)]
pub struct TowerInput {
    /// The preprocessed pixels `[1, 3, size, size]` (prompted, for a visual prompt).
    pub pixels: Tensor<4>,
    /// The attention focus's bias, if any.
    pub bias: Option<LayerBias>,
    /// Where the picture the preprocessing received sits in the image, `[left, top, width,
    /// height]` in image pixels: the whole image, except for the crop prompt.
    pub placement: [usize; 4],
}

/// The preprocessed pixels and the attention bias of `image` under `focus`, and where the
/// picture they were made from sits in the image.
pub fn focused_input(
    vision: &VisionTransformer,
    preprocess_config: &PreprocessConfig,
    image: &Pixels8,
    mask: Option<&Mask>,
    focus: &Focus,
    device: &Device,
) -> Result<TowerInput, FocusApplyError> {
    // A prompt changes the pixels; the attention focus leaves them and adds a bias.
    let pixels = focused_pixels(image, mask, focus)?;
    let bias = match (focus, mask) {
        (Focus::Attention(attention), Some(mask)) => {
            let weights = attention::patch_weights(mask, preprocess_config, vision.grid_size());
            Some(attention.layer_bias(&[weights], vision.layers(), device)?)
        }
        _ => None,
    };
    let placement = match (focus, mask) {
        (Focus::Prompt(VisualPrompt::CropToBox { margin }), Some(mask)) => {
            let [left, top, right, bottom] = prompt::crop_box(mask, *margin)?;
            [left, top, right - left, bottom - top]
        }
        _ => [0, 0, image.width, image.height],
    };
    let input = batch_tensor(
        &[preprocess(&pixels, preprocess_config)],
        preprocess_config.image_size,
        device,
    );
    vision.check_input(&input)?;
    Ok(TowerInput {
        pixels: input,
        bias,
        placement,
    })
}
