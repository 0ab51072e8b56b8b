//! The region of interest: where an image's mask comes from (none, a box, a mask image, SAM 2
//! from a prompt or automatically), and SAM 2 as the pipeline runs it.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;

use super::error::PipelineError;
use crate::clip::preprocess::Pixels8;
use crate::focus::Mask;
use crate::sam2::automatic_mask_generator::{GeneratorSettings, MaskChoice, find_region};
use crate::sam2::predictor::read_masks;
use crate::sam2::{BinaryMask, EmbeddedImage, Prompt, Sam2Error, Sam2Predictor};

/// Where an image's region of interest comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum MaskSource {
    /// No region: the image as it is (only the `none` focus takes it).
    None,
    /// A box `[left, top, right, bottom]` in image pixels.
    Box([usize; 4]),
    /// A mask image's encoded bytes (white inside), the image's size.
    MaskImage(Vec<u8>),
    /// SAM 2 answering a point/box prompt (the best of three candidates).
    Sam2Prompt(Prompt),
    /// SAM 2's automatic masks, chosen by `MaskChoice`, with the pipeline's automatic settings
    /// (a head's recorded ones when it has them); none qualifying → the whole image, with a
    /// warning, as in training.
    Sam2Automatic(MaskChoice),
    /// A data set's ground-truth mask images of the image (BUSI's `<name>_mask.png`, …),
    /// united: the evaluation's oracle.
    GroundTruth(Vec<Vec<u8>>),
}

impl MaskSource {
    pub fn is_none(&self) -> bool {
        matches!(self, MaskSource::None)
    }
}

/// How the region that was used came about (for reports and the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionOrigin {
    Box,
    MaskImage,
    Sam2Prompt,
    Sam2Automatic,
    /// SAM 2 found no region that qualifies: the whole image stands in.
    WholeImage,
    /// A data set's ground-truth masks.
    GroundTruth,
}

impl RegionOrigin {
    pub fn name(self) -> &'static str {
        match self {
            RegionOrigin::Box => "box",
            RegionOrigin::MaskImage => "mask-image",
            RegionOrigin::Sam2Prompt => "sam2-prompt",
            RegionOrigin::Sam2Automatic => "sam2-automatic",
            RegionOrigin::GroundTruth => "ground-truth",
            RegionOrigin::WholeImage => "whole-image",
        }
    }
}

/// The region an image was focused on.
#[derive(Clone, Debug, PartialEq)]
pub struct Region {
    pub mask: Mask,
    pub origin: RegionOrigin,
    /// Share of the image inside the region.
    pub coverage: f32,
    /// Something the user should know (no SAM 2 region found, …).
    pub warning: Option<String>,
}

impl Region {
    fn new(mask: Mask, origin: RegionOrigin, warning: Option<String>) -> Self {
        Self {
            coverage: mask.coverage(),
            mask,
            origin,
            warning,
        }
    }
}

/// What SAM 2 is asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum SegmentRequest {
    /// Points and/or a box; `multimask`: the best of three candidates, else SAM 2's single mask.
    Prompt { prompt: Prompt, multimask: bool },
    /// The automatic generator, then the mask `choice` picks.
    Automatic {
        settings: GeneratorSettings,
        choice: MaskChoice,
    },
}

/// How many runners-up a SAM 2 answer carries for a person to pick from instead.
pub const ALTERNATIVES: usize = 5;

/// A SAM 2 answer: the mask, the runners-up (best first, at most [`ALTERNATIVES`]: for a prompt
/// SAM 2's other candidates by predicted IoU, for the automatic generator the other qualifying
/// masks in the order the choice ranks them), how many masks there were to choose from, and
/// whether it was automatic.
#[derive(Clone, Debug, PartialEq)]
pub struct Segmented {
    pub mask: BinaryMask,
    pub alternatives: Vec<BinaryMask>,
    pub candidates: usize,
    pub automatic: bool,
}

/// SAM 2 as the pipeline uses it: the predictor, the automatic settings, what identifies both
/// (embedding cache keys, head files), and the last image's embedding, so that new prompts on
/// the same image skip the image encoder.
pub struct Segmenter {
    pub predictor: Sam2Predictor,
    pub automatic: GeneratorSettings,
    /// What identifies the weights and settings (file hash, grid): training records it as the
    /// masks' origin.
    pub identity: String,
    last: RefCell<Option<(Pixels8, Rc<EmbeddedImage>)>>,
    progress: RefCell<Option<SegmentProgress>>,
}

/// Told how far a segmentation got: `(stage, done, total)` — SAM 2's image encoder (0 of 1),
/// then for automatic masks the grid's points before each batch.
pub type SegmentProgress = Box<dyn Fn(&str, usize, usize)>;

impl Segmenter {
    pub fn new(predictor: Sam2Predictor, automatic: GeneratorSettings, identity: String) -> Self {
        Self {
            predictor,
            automatic,
            identity,
            last: RefCell::new(None),
            progress: RefCell::new(None),
        }
    }

    /// Where the next segmentations report how far they got (none: nowhere).
    pub fn set_progress(&self, progress: Option<SegmentProgress>) {
        *self.progress.borrow_mut() = progress;
    }

    fn report(&self, stage: &str, done: usize, total: usize) {
        if let Some(progress) = self.progress.borrow().as_ref() {
            progress(stage, done, total);
        }
    }

    /// The image's embedding (the last one again when it is the same image).
    pub fn embedded(&self, pixels: &Pixels8) -> Rc<EmbeddedImage> {
        if let Some((last, embedded)) = self.last.borrow().as_ref()
            && last == pixels
        {
            return Rc::clone(embedded);
        }
        self.report("SAM 2: image encoder", 0, 1);
        let embedded = Rc::new(self.predictor.set_image(pixels));
        *self.last.borrow_mut() = Some((pixels.clone(), Rc::clone(&embedded)));
        embedded
    }

    /// The mask SAM 2 gives for `request` on `pixels`.
    pub async fn segment(
        &self,
        pixels: &Pixels8,
        request: &SegmentRequest,
    ) -> Result<Segmented, Sam2Error> {
        let embedded = self.embedded(pixels);
        match request {
            SegmentRequest::Automatic { settings, choice } => {
                let (ranked, candidates) = find_region(
                    &self.predictor,
                    &embedded,
                    settings,
                    *choice,
                    1 + ALTERNATIVES,
                    &|done, total| self.report("SAM 2: automatic masks, grid points", done, total),
                )
                .await?;
                Segmented::ranked(ranked, candidates, true)
            }
            SegmentRequest::Prompt { prompt, multimask } => {
                let prediction =
                    self.predictor
                        .predict(&embedded, std::slice::from_ref(prompt), *multimask)?;
                let masks = read_masks(&prediction, 0).await?;
                let candidates = masks.len();
                Segmented::ranked(masks, candidates, false)
            }
        }
    }
}

impl Segmented {
    /// The first of `ranked` (best first) as the mask, the next ones as the alternatives.
    fn ranked(
        ranked: Vec<BinaryMask>,
        candidates: usize,
        automatic: bool,
    ) -> Result<Self, Sam2Error> {
        let mut ranked = ranked.into_iter();
        let mask = ranked
            .next()
            .ok_or_else(|| Sam2Error::Prompt("SAM 2 returned no mask".into()))?;
        Ok(Segmented {
            mask,
            alternatives: ranked.take(ALTERNATIVES).collect(),
            candidates,
            automatic,
        })
    }
}

/// A SAM 2 prompt from foreground points, background points and a box, in image pixels.
pub fn sam2_prompt(
    foreground: &[[f32; 2]],
    background: &[[f32; 2]],
    box_xyxy: Option<[f32; 4]>,
) -> Prompt {
    let mut prompt = Prompt {
        box_xyxy,
        ..Prompt::default()
    };
    for (points, label) in [(foreground, 1), (background, 0)] {
        prompt.points.extend_from_slice(points);
        prompt
            .labels
            .extend(std::iter::repeat_n(label, points.len()));
    }
    prompt
}

/// The whole image as a region (SAM 2's fallback).
fn whole_image(pixels: &Pixels8) -> Mask {
    Mask {
        width: pixels.width,
        height: pixels.height,
        weights: vec![1.0; pixels.width * pixels.height],
    }
}

/// Mask images (encoded bytes, white inside) united pixel by pixel: an image's several
/// ground-truth masks as one region. They must share one size.
pub fn united_mask(images: &[Vec<u8>]) -> Result<Mask, PipelineError> {
    let mut united: Option<Mask> = None;
    for bytes in images {
        let decoded = crate::imaging::decode_image(bytes)
            .map_err(|error| PipelineError::MaskImage(error.to_string()))?;
        let mask = Mask::from_image(&decoded.pixels);
        united = Some(match united {
            None => mask,
            Some(so_far) => so_far.union(&mask).map_err(|error| {
                PipelineError::MaskImage(format!("ground-truth masks: {error}"))
            })?,
        });
    }
    united.ok_or_else(|| PipelineError::MaskImage("no ground-truth mask images".into()))
}

/// The region `source` gives for `pixels`; `automatic` are the settings of
/// [`MaskSource::Sam2Automatic`]. `None` for [`MaskSource::None`].
pub(super) async fn find(
    pixels: &Pixels8,
    source: &MaskSource,
    segmenter: Option<&Segmenter>,
    automatic: &GeneratorSettings,
) -> Result<Option<Region>, PipelineError> {
    let sam2 = || segmenter.ok_or(PipelineError::NoSegmenter);
    let region = match source {
        MaskSource::None => return Ok(None),
        MaskSource::Box(region) => Region::new(
            Mask::from_box(pixels.width, pixels.height, *region)?,
            RegionOrigin::Box,
            None,
        ),
        MaskSource::MaskImage(bytes) => {
            let decoded = crate::imaging::decode_image(bytes)
                .map_err(|error| PipelineError::MaskImage(error.to_string()))?;
            Region::new(
                Mask::from_image(&decoded.pixels),
                RegionOrigin::MaskImage,
                None,
            )
        }
        MaskSource::GroundTruth(images) => {
            Region::new(united_mask(images)?, RegionOrigin::GroundTruth, None)
        }
        MaskSource::Sam2Prompt(prompt) => {
            let request = SegmentRequest::Prompt {
                prompt: prompt.clone(),
                multimask: true,
            };
            let segmented = sam2()?.segment(pixels, &request).await?;
            Region::new(Mask::from(&segmented.mask), RegionOrigin::Sam2Prompt, None)
        }
        MaskSource::Sam2Automatic(choice) => {
            let request = SegmentRequest::Automatic {
                settings: automatic.clone(),
                choice: *choice,
            };
            match sam2()?.segment(pixels, &request).await {
                Ok(segmented) => Region::new(
                    Mask::from(&segmented.mask),
                    RegionOrigin::Sam2Automatic,
                    None,
                ),
                // The same fallback in training and at prediction keeps the two consistent.
                Err(error) => Region::new(
                    whole_image(pixels),
                    RegionOrigin::WholeImage,
                    Some(format!("{error}; the whole image is the region")),
                ),
            }
        }
    };
    Ok(Some(region))
}

/// `N` comma-separated finite pixel numbers (`x,y` or `x0,y0,x1,y1`), as flags and forms give
/// them; the error names `what` (a flag, a field).
pub fn parse_pixels<const N: usize>(text: &str, what: &str) -> Result<[f32; N], String> {
    let values: Option<Vec<f32>> = text
        .split(',')
        .map(|value| value.trim().parse::<f32>().ok().filter(|v| v.is_finite()))
        .collect();
    values
        .and_then(|values| <[f32; N]>::try_from(values).ok())
        .ok_or_else(|| format!("{what} {text}: expected {N} comma-separated pixel numbers"))
}

/// A box `left,top,right,bottom` of whole pixels (a CLIP region: [`MaskSource::Box`]).
pub fn parse_pixel_box(text: &str, what: &str) -> Result<[usize; 4], String> {
    let values = parse_pixels::<4>(text, what)?;
    if values.iter().any(|v| *v < 0.0 || v.fract() != 0.0) {
        return Err(format!(
            "{what} {text}: expected four whole pixel numbers left,top,right,bottom"
        ));
    }
    Ok(values.map(|v| v as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_lists_parse_or_say_what_they_expected() {
        assert_eq!(parse_pixels::<2>(" 3.5, 4", "--point"), Ok([3.5, 4.0]));
        let error = parse_pixels::<2>("1,2,3", "--point").unwrap_err();
        assert!(error.contains("expected 2 comma-separated"), "{error}");
        assert!(parse_pixels::<2>("1,NaN", "--point").is_err());
        assert_eq!(parse_pixel_box("1,2,30,40", "--box"), Ok([1, 2, 30, 40]));
        assert!(parse_pixel_box("1,2,3.5,4", "--box").is_err());
        assert!(parse_pixel_box("-1,2,3,4", "--box").is_err());
    }

    #[test]
    fn prompts_put_foreground_before_background_points() {
        let prompt = sam2_prompt(&[[1.0, 2.0]], &[[3.0, 4.0], [5.0, 6.0]], Some([0.0; 4]));
        assert_eq!(prompt.points, vec![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        assert_eq!(prompt.labels, vec![1, 0, 0]);
        assert_eq!(prompt.box_xyxy, Some([0.0; 4]));
    }
}
