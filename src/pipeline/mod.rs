//! The one chain from image to answer, for the CLI, the page (through `web`), training and
//! evaluation alike:
//!
//! ```text
//! image bytes ─► decode ─► Pixels8 ─► region (MaskSource: none | box | mask image | SAM 2) ─►
//!   focus (visual prompt on the pixels, or attention bias) ─► image tower ─► embedding ─►
//!   zero-shot classes or a trained head ─► probabilities (+ the region used)
//! ```
//!
//! [`Encoder`] is the image side (region, focus, embedding), which support-set embedding uses on
//! its own; [`Pipeline`] adds what turns an embedding into class probabilities. Async where the
//! browser must await the device; natively [`files`] blocks on it.

pub mod error;
pub mod region;

#[cfg(not(target_arch = "wasm32"))]
pub mod files;

use std::future::Future;
use std::pin::Pin;

use burn::tensor::Tensor;

pub use error::PipelineError;
pub use region::{
    ALTERNATIVES, MaskSource, Region, RegionOrigin, SegmentProgress, SegmentRequest, Segmented,
    Segmenter, parse_pixel_box, parse_pixels, sam2_prompt,
};

use crate::clip::ZeroShotClassifier;
use crate::clip::load::LoadedClip;
use crate::clip::preprocess::{Pixels8, crop_geometry, resize_and_crop};
use crate::clip::vision::VisionTransformer;
use crate::focus::{self, Focus, FocusMode, UnknownMethod};
use crate::imaging;
use crate::sam2::automatic_mask_generator::GeneratorSettings;

/// Encoded image bytes (JPEG, PNG, …) as the 8-bit pixels every model reads.
pub fn decode(bytes: &[u8]) -> Result<Pixels8, PipelineError> {
    let decoded = imaging::decode_image(bytes)?;
    Ok(Pixels8::from_image(&decoded.pixels))
}

/// The image side of the chain: the region, the focus and CLIP's image tower.
pub struct Encoder<'a> {
    pub clip: &'a LoadedClip,
    pub focus: Focus,
    /// A fine-tuning head's copy of the image tower (its blocks swapped in).
    vision: Option<VisionTransformer>,
    segmenter: Option<&'a Segmenter>,
    /// The settings of [`MaskSource::Sam2Automatic`]; a head's recorded ones win over the
    /// segmenter's.
    automatic: Option<GeneratorSettings>,
    /// What needs the region, for the message when none is given (`the `overlay` focus`, or a
    /// head and where its training masks came from).
    what_needs_region: String,
}

impl<'a> Encoder<'a> {
    /// The image side for `mode`'s focus (its method and knobs; a head's recorded SAM 2
    /// settings, when it has them, run [`MaskSource::Sam2Automatic`]).
    pub fn new(clip: &'a LoadedClip, mode: &FocusMode) -> Result<Self, UnknownMethod> {
        Ok(Self {
            clip,
            focus: mode.focus()?,
            vision: None,
            segmenter: None,
            automatic: mode.automatic.clone(),
            what_needs_region: format!("the `{}` focus", mode.method),
        })
    }

    /// Names what needs the region in the message given when none is (a head: "this head
    /// (trained with … on masks from …)").
    pub fn needing_region_for(mut self, what: String) -> Self {
        self.what_needs_region = what;
        self
    }

    /// Embeds through `vision` (a fine-tuned copy of the model's tower).
    pub fn with_vision(mut self, vision: VisionTransformer) -> Self {
        self.vision = Some(vision);
        self
    }

    /// SAM 2 for [`MaskSource::Sam2Prompt`] and [`MaskSource::Sam2Automatic`].
    pub fn with_segmenter(mut self, segmenter: &'a Segmenter) -> Self {
        self.segmenter = Some(segmenter);
        self
    }

    /// The automatic-mask settings to use instead of the segmenter's (a head's recorded ones;
    /// the batch size stays the segmenter's: it is a memory knob, not part of the result).
    pub fn with_automatic(mut self, settings: GeneratorSettings) -> Self {
        self.automatic = Some(settings);
        self
    }

    pub fn vision(&self) -> &VisionTransformer {
        self.vision.as_ref().unwrap_or(&self.clip.model.vision)
    }

    /// Whether the focus uses a region at all (`none` does not).
    pub fn needs_region(&self) -> bool {
        !matches!(self.focus, Focus::None)
    }

    /// Refuses to go on without a region when the focus needs one; `remedy` says, in the front
    /// end's words, how to give one.
    pub fn require_region(&self, given: bool, remedy: &str) -> Result<(), PipelineError> {
        if self.needs_region() && !given {
            return Err(PipelineError::NeedsRegion {
                what: self.what_needs_region.clone(),
                remedy: remedy.to_string(),
            });
        }
        Ok(())
    }

    /// The settings [`MaskSource::Sam2Automatic`] runs with.
    pub fn automatic_settings(&self) -> GeneratorSettings {
        let base = self
            .segmenter
            .map(|segmenter| segmenter.automatic.clone())
            .unwrap_or_default();
        match &self.automatic {
            Some(recorded) => GeneratorSettings {
                points_per_batch: base.points_per_batch,
                ..recorded.clone()
            },
            None => base,
        }
    }

    /// The region `source` gives for `pixels`, when the focus uses one (`None` otherwise, and
    /// for [`MaskSource::None`]).
    pub async fn region(
        &self,
        pixels: &Pixels8,
        source: &MaskSource,
    ) -> Result<Option<Region>, PipelineError> {
        if !self.needs_region() {
            return Ok(None);
        }
        region::find(pixels, source, self.segmenter, &self.automatic_settings()).await
    }

    /// The image embedding `[1, embed_dim]` of `pixels` focused on `region`.
    pub fn embed(
        &self,
        pixels: &Pixels8,
        region: Option<&Region>,
    ) -> Result<Tensor<2>, PipelineError> {
        Ok(focus::encode_focused_with(
            self.vision(),
            &self.clip.preprocess,
            pixels,
            region.map(|region| &region.mask),
            &self.focus,
            &self.clip.model.device(),
        )?)
    }

    /// What the image tower is shown for `pixels` focused on `region`, for a person to look at:
    /// the same [`focus::focused_pixels`] and preprocessing geometry that [`Self::embed`] uses.
    pub fn view(
        &self,
        pixels: &Pixels8,
        region: Option<&Region>,
    ) -> Result<FocusView, PipelineError> {
        let mask = region.map(|region| &region.mask);
        let focused = focus::focused_pixels(pixels, mask, &self.focus)?.into_owned();
        let preprocess = &self.clip.preprocess;
        let model_input = resize_and_crop(&focused, preprocess);
        let grid = self.vision().grid_size();
        let patch_weights = match (&self.focus, mask) {
            (Focus::Attention(_), Some(mask)) => {
                Some(focus::attention::patch_weights(mask, preprocess, grid))
            }
            _ => None,
        };
        let ([resized_width, resized_height], [left, top]) =
            crop_geometry(focused.width, focused.height, preprocess);
        let scale_x = focused.width as f32 / resized_width as f32;
        let scale_y = focused.height as f32 / resized_height as f32;
        let size = preprocess.image_size as f32;
        let crop = [
            left as f32 * scale_x,
            top as f32 * scale_y,
            (left as f32 + size) * scale_x,
            (top as f32 + size) * scale_y,
        ];
        Ok(FocusView {
            focused,
            model_input,
            crop,
            grid,
            patch_weights,
        })
    }

    /// The tokens `[1, tokens, width]` entering image-tower block `block` (what a fine-tune of
    /// the later blocks trains from).
    pub fn tokens_before(
        &self,
        pixels: &Pixels8,
        region: Option<&Region>,
        block: usize,
    ) -> Result<Tensor<3>, PipelineError> {
        Ok(focus::tokens_focused(
            self.vision(),
            &self.clip.preprocess,
            pixels,
            region.map(|region| &region.mask),
            &self.focus,
            block,
            &self.clip.model.device(),
        )?)
    }
}

/// What the image tower is shown (see [`Encoder::view`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FocusView {
    /// The image as the preprocessing receives it: with the visual prompt drawn in, or as it is
    /// (`none`, `attention`). Same size as the image.
    pub focused: Pixels8,
    /// After the resize and centre crop: the tower's input before normalisation (RGB,
    /// `image_size`²).
    pub model_input: Pixels8,
    /// The part of the image the centre crop keeps, `[left, top, right, bottom]` in image pixels.
    pub crop: [f32; 4],
    /// The tower's patch grid (patches per side).
    pub grid: usize,
    /// For the attention focus: the mask's weight per patch, row-major over `grid`², which the
    /// bias is made of.
    pub patch_weights: Option<Vec<f32>>,
}

/// Class probabilities, read back asynchronously (the browser cannot block): one row per
/// embedding row.
pub type Probabilities<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, PipelineError>> + 'a>>;

/// What turns an image embedding into class probabilities: class names × prompt templates
/// ([`ZeroShotClassifier`]) or a trained support head (`heads::HeadModel`, which implements it
/// where it is defined: the heads sit above the pipeline, their training embeds through it).
pub trait Classifier {
    /// The classes, in the order of each probability row.
    fn classes(&self) -> &[String];
    /// Probabilities for the image embeddings `[images, embed_dim]`.
    fn probabilities(&self, embeddings: Tensor<2>) -> Probabilities<'_>;
    /// The logits `[images, classes]` the probabilities are the softmax of, as a tensor on the
    /// embeddings' device: differentiable when the embeddings carry autodiff (explanations
    /// take gradients of a class's logit), and defined for any embedding, a patch's included.
    fn logits(&self, embeddings: Tensor<2>) -> Result<Tensor<2>, PipelineError>;
}

impl Classifier for ZeroShotClassifier {
    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn probabilities(&self, embeddings: Tensor<2>) -> Probabilities<'_> {
        Box::pin(async move { Ok(self.read_probabilities(embeddings).await?) })
    }

    fn logits(&self, embeddings: Tensor<2>) -> Result<Tensor<2>, PipelineError> {
        Ok(ZeroShotClassifier::logits(self, embeddings))
    }
}

/// One image's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// One per class, in the pipeline's class order; they sum to 1.
    pub probabilities: Vec<f32>,
    /// The region the image was focused on, when the focus uses one.
    pub region: Option<Region>,
}

/// The whole chain: the image side and the classifier.
pub struct Pipeline<'a> {
    pub encoder: Encoder<'a>,
    pub classifier: &'a dyn Classifier,
}

impl<'a> Pipeline<'a> {
    pub fn new(encoder: Encoder<'a>, classifier: &'a dyn Classifier) -> Self {
        Self {
            encoder,
            classifier,
        }
    }

    /// Zero-shot classification under `method`'s focus (a [`crate::focus::METHODS`] name).
    pub fn zero_shot(
        clip: &'a LoadedClip,
        classifier: &'a ZeroShotClassifier,
        method: &str,
        settings: &focus::FocusSettings,
    ) -> Result<Self, PipelineError> {
        let encoder = Encoder::new(clip, &FocusMode::new(method, settings.clone()))?;
        Ok(Self::new(encoder, classifier))
    }

    pub fn with_segmenter(mut self, segmenter: &'a Segmenter) -> Self {
        self.encoder = self.encoder.with_segmenter(segmenter);
        self
    }

    pub fn classes(&self) -> &[String] {
        self.classifier.classes()
    }

    /// Class probabilities for `pixels`, focused on the region `source` gives.
    pub async fn classify(
        &self,
        pixels: &Pixels8,
        source: &MaskSource,
    ) -> Result<Prediction, PipelineError> {
        let region = self.encoder.region(pixels, source).await?;
        let embedding = self.encoder.embed(pixels, region.as_ref())?;
        let mut rows = self.classifier.probabilities(embedding).await?;
        Ok(Prediction {
            probabilities: rows.remove(0),
            region,
        })
    }
}
