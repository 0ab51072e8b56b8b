//! SAM 2 across the wasm boundary: load a burnpack (f32 or int8, from `medfocus weights
//! export-sam2`), segment an image from points, a box or automatically. Conversions only; the
//! last image's embedding is kept so that new prompts on the same image skip the encoder.

use std::rc::Rc;

use js_sys::{Object, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::files::WebModelFiles;
use super::{chosen_device, decoded, js_error, parse_options};
use crate::pipeline::{SegmentProgress, SegmentRequest, Segmenter, sam2_prompt};
use crate::sam2::automatic_mask_generator::{GeneratorSettings, MaskChoice};
use crate::sam2::{BinaryMask, Sam2Model, Sam2Predictor};

/// Fewer points per batch than natively: every point's three masks at full size must fit the
/// browser's buffer limits.
const BROWSER_POINTS_PER_BATCH: usize = 16;

#[wasm_bindgen]
pub struct WebSam2 {
    segmenter: Rc<Segmenter>,
    weights: String,
}

/// Loads a SAM 2 burnpack, streamed in as one file, on the device chosen by `initDevice`.
#[wasm_bindgen(js_name = loadSam2)]
pub fn load_sam2_streamed(files: WebModelFiles) -> Result<WebSam2, JsError> {
    let (_, bytes) = files.into_single("a SAM 2 burnpack (from `medfocus weights export-sam2`)")?;
    load_sam2(bytes)
}

/// The same from a burnpack's bytes.
pub fn load_sam2(bytes: Vec<u8>) -> Result<WebSam2, JsError> {
    let chosen = chosen_device()?;
    let (model, weights) = Sam2Model::from_burnpack_for(bytes, &chosen.device).map_err(js_error)?;
    let automatic = GeneratorSettings {
        points_per_batch: BROWSER_POINTS_PER_BATCH,
        ..GeneratorSettings::default()
    };
    Ok(WebSam2 {
        segmenter: Rc::new(Segmenter::new(
            Sam2Predictor::new(model),
            automatic,
            weights.clone(),
        )),
        weights,
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SegmentOptions {
    /// Foreground points `[x, y]` in image pixels.
    points: Vec<[f32; 2]>,
    /// Background points.
    background: Vec<[f32; 2]>,
    #[serde(rename = "box")]
    region: Option<[f32; 4]>,
    auto: bool,
    #[serde(flatten)]
    automatic: AutomaticOptions,
    single: bool,
}

/// The automatic generator's knobs as the page names them (`segment` and support sets).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct AutomaticOptions {
    points_per_side: Option<usize>,
    points_per_batch: Option<usize>,
    pred_iou_thresh: Option<f32>,
    stability_thresh: Option<f32>,
    min_area: Option<usize>,
}

impl AutomaticOptions {
    /// `base` (the segmenter's settings) with the knobs given here.
    pub(super) fn settings(&self, base: &GeneratorSettings) -> GeneratorSettings {
        GeneratorSettings {
            points_per_side: self.points_per_side.unwrap_or(base.points_per_side),
            points_per_batch: self.points_per_batch.unwrap_or(base.points_per_batch),
            pred_iou_thresh: self.pred_iou_thresh.unwrap_or(base.pred_iou_thresh),
            stability_score_thresh: self.stability_thresh.unwrap_or(base.stability_score_thresh),
            min_mask_region_area: self.min_area.unwrap_or(0),
            ..base.clone()
        }
    }
}

impl WebSam2 {
    /// The segmenter, shared with work that outlives this call (a head's automatic masks).
    pub(super) fn segmenter(&self) -> Rc<Segmenter> {
        Rc::clone(&self.segmenter)
    }
}

#[wasm_bindgen]
impl WebSam2 {
    /// `sam2.1-hiera-tiny`, …
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.segmenter.predictor.model.config.name.clone()
    }

    /// `f32`, `int8-per-tensor`, `int8-per-block-32`, …
    #[wasm_bindgen(getter)]
    pub fn weights(&self) -> String {
        self.weights.clone()
    }

    /// A mask for an encoded image (JPEG, PNG, …). `options`: `{points: [[x, y]], background:
    /// [[x, y]], box: [x0, y0, x1, y1], auto, pointsPerSide, pointsPerBatch, predIouThresh,
    /// stabilityThresh, minArea, single}`. Resolves to `{width, height, mask (Uint8Array, 255
    /// inside), maskPng (Uint8Array), area, predictedIou, candidates, automatic, alternatives}`:
    /// `candidates` is how many masks there were to choose from, `alternatives` the runners-up a
    /// person may pick instead (best first, each `{mask, maskPng, area, predictedIou}`).
    /// `onProgress(stage, done, total)`, when given, is told each stage: the image encoder, then
    /// the automatic grid's points before each batch.
    pub fn segment(
        &self,
        image: Vec<u8>,
        options: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> js_sys::Promise {
        let segmenter = Rc::clone(&self.segmenter);
        wasm_bindgen_futures::future_to_promise(async move {
            segmenter.set_progress(on_progress.map(|callback| {
                Box::new(move |stage: &str, done: usize, total: usize| {
                    // A failing callback must not fail the segmentation: progress is advice.
                    let _ = callback.call3(
                        &JsValue::NULL,
                        &JsValue::from(stage),
                        &JsValue::from(done as u32),
                        &JsValue::from(total as u32),
                    );
                }) as SegmentProgress
            }));
            let result = segment(&segmenter, image, options).await;
            segmenter.set_progress(None);
            result.map_err(JsValue::from)
        })
    }
}

impl SegmentOptions {
    fn request(&self, automatic: &GeneratorSettings) -> SegmentRequest {
        if self.auto {
            return SegmentRequest::Automatic {
                settings: self.automatic.settings(automatic),
                choice: MaskChoice::at_or_largest(self.points.first()),
            };
        }
        SegmentRequest::Prompt {
            prompt: sam2_prompt(&self.points, &self.background, self.region),
            multimask: !self.single,
        }
    }
}

async fn segment(
    segmenter: &Segmenter,
    image: Vec<u8>,
    options: JsValue,
) -> Result<JsValue, JsError> {
    let options: SegmentOptions = parse_options(&options)?;
    let pixels = decoded(&image)?;
    let segmented = segmenter
        .segment(&pixels, &options.request(&segmenter.automatic))
        .await
        .map_err(js_error)?;
    let result = mask_js(&segmented.mask)?;
    let alternatives = js_sys::Array::new();
    for alternative in &segmented.alternatives {
        alternatives.push(mask_js(alternative)?.as_ref());
    }
    let fields = [
        ("candidates", JsValue::from(segmented.candidates as u32)),
        ("automatic", JsValue::from(segmented.automatic)),
        ("alternatives", alternatives.into()),
    ];
    for (key, value) in fields {
        Reflect::set(&result, &key.into(), &value)
            .map_err(|_| JsError::new("building the result"))?;
    }
    Ok(result.into())
}

/// One mask as `{width, height, area, predictedIou, mask (0/255 per pixel), maskPng}`.
fn mask_js(mask: &BinaryMask) -> Result<Object, JsError> {
    let result = Object::new();
    let fields = [
        ("width", JsValue::from(mask.width as u32)),
        ("height", JsValue::from(mask.height as u32)),
        ("area", JsValue::from(mask.area() as u32)),
        ("predictedIou", JsValue::from(mask.predicted_iou)),
        ("mask", Uint8Array::from(mask.to_luma().as_slice()).into()),
        ("maskPng", Uint8Array::from(mask.to_png().as_slice()).into()),
    ];
    for (key, value) in fields {
        Reflect::set(&result, &key.into(), &value)
            .map_err(|_| JsError::new("building the result"))?;
    }
    Ok(result)
}
