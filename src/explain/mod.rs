//! Where the model looked: a heat-map over the image for one class's score, from CLIP's image
//! tower under any focus (plain, a visual prompt, the attention focus) and any classifier
//! (zero-shot or a trained head, a fine-tune's own blocks included).
//!
//! Two methods, both returning a patch-grid map, the map at the tower's input size and an
//! image-sized heat-map aligned with the original pixels (the preprocessing's resize and centre
//! crop, and the crop prompt's box, undone):
//! - [`ExplainMethod::Relevancy`] — gradient-weighted attention relevancy (Chefer, Gur & Wolf,
//!   ICCV 2021, as their CLIP notebook computes it): per block from the start block on,
//!   `cam = mean over heads of max(0, ∂score/∂A ⊙ A)` with `A` the attention probabilities,
//!   `R ← R + cam·R` from `R = I`; the map is the class token's row `R[0, 1:]`. Gradients come
//!   from burn's autodiff, on both targets ([`relevancy`]).
//! - [`ExplainMethod::Dense`] — MaskCLIP's dense features (ECCV 2022): in the last block the
//!   patch tokens take the value path only (residual and MLP kept), then `ln_post` and the
//!   projection, and each patch is scored as an image embedding would be. One forward pass, no
//!   gradients ([`dense`]).
//!
//! The score explained is the classifier's logit for the class ([`Classifier::logits`]): the
//! scaled cosine for zero-shot (CLIP's `logits_per_image`), a head's full formula otherwise.

pub mod dense;
pub mod heatmap;
pub mod picture;
pub mod relevancy;
pub mod request;
pub mod score;

#[cfg(not(target_arch = "wasm32"))]
pub mod files;

pub use heatmap::{HeatMap, Placement};
pub use request::{ExplainError, ExplainMethod, ExplainRequest, METHODS, PatchMap, class_index};

use crate::clip::preprocess::{Pixels8, crop_geometry};
use crate::focus;
use crate::pipeline::{MaskSource, Pipeline, Prediction, Region};

/// One class's map for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    pub method: ExplainMethod,
    /// The class explained (index in the classifier's order).
    pub class: usize,
    /// Patches per side.
    pub grid: usize,
    /// The raw map over the patch grid, row-major (`grid²` values).
    pub patch_map: Vec<f32>,
    /// Side of the tower's input.
    pub input_size: usize,
    /// The map at the tower's input size, bilinear from the grid and min–max normalised to
    /// [0, 1], as Chefer's notebook shows it (`input_size²` values, row-major).
    pub input_map: Vec<f32>,
    /// The map on the original image's pixels, on the same [0, 1] scale.
    pub heat: HeatMap,
}

/// A prediction and the explanation of one of its classes.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    pub prediction: Prediction,
    pub logits: Vec<f32>,
    pub explanation: Explanation,
}

/// Classifies `pixels` through `pipeline` (focused on the region `source` gives) and explains
/// the requested class's score.
pub async fn explain(
    pipeline: &Pipeline<'_>,
    pixels: &Pixels8,
    source: &MaskSource,
    request: &ExplainRequest,
) -> Result<Explained, ExplainError> {
    let region = pipeline.encoder.region(pixels, source).await?;
    explain_region(pipeline, pixels, region, request).await
}

/// [`explain`] with the region already found (or none).
pub async fn explain_region(
    pipeline: &Pipeline<'_>,
    pixels: &Pixels8,
    region: Option<Region>,
    request: &ExplainRequest,
) -> Result<Explained, ExplainError> {
    let encoder = &pipeline.encoder;
    let vision = encoder.vision();
    let preprocess = &encoder.clip.preprocess;
    let input = focus::focused_input(
        vision,
        preprocess,
        pixels,
        region.as_ref().map(|region| &region.mask),
        &encoder.focus,
        &encoder.clip.model.device(),
    )?;
    let map = match request.method {
        ExplainMethod::Relevancy => {
            relevancy::relevancy(vision, &input, pipeline.classifier, request).await?
        }
        ExplainMethod::Dense => dense::dense(vision, &input, pipeline.classifier, request).await?,
    };
    let [_, _, width, height] = input.placement;
    let (resized, crop) = crop_geometry(width, height, preprocess);
    let placement = Placement {
        image: [pixels.width, pixels.height],
        picture: input.placement,
        resized,
        crop,
        input_size: preprocess.image_size,
    };
    let grid = vision.grid_size();
    let input_map = heatmap::upsample(&map.values, grid, preprocess.image_size);
    let range = heatmap::range(&input_map);
    let heat = heatmap::on_image(&map.values, grid, &placement, range);
    Ok(Explained {
        prediction: Prediction {
            probabilities: softmax(&map.logits),
            region,
        },
        logits: map.logits,
        explanation: Explanation {
            method: request.method,
            class: map.class,
            grid,
            patch_map: map.values,
            input_size: preprocess.image_size,
            input_map: heatmap::normalised(&input_map, range),
            heat,
        },
    })
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|logit| (logit - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|value| value / sum).collect()
}
