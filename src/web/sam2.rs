//! SAM 2 across the wasm boundary: load a burnpack (f32 or int8, from `medfocus weights
//! export-sam2`), segment an image from points, a box or automatically. Conversions only; the
//! last image's embedding is kept so that new prompts on the same image skip the encoder.

use std::cell::RefCell;
use std::rc::Rc;

use burn::module::Module;
use burn::tensor::Device;
use js_sys::{Object, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::{chosen_device, js_error};
use crate::clip::preprocess::Pixels8;
use crate::device::ComputeKind;
use crate::imaging;
use crate::sam2::automatic_mask_generator::{GeneratorSettings, MaskChoice, find_region};
use crate::sam2::predictor::read_masks;
use crate::sam2::quantize::dequantize;
use crate::sam2::{EmbeddedImage, Prompt, Sam2Model, Sam2Predictor};

/// Fewer points per batch than natively: every point's three masks at full size must fit the
/// browser's buffer limits.
const BROWSER_POINTS_PER_BATCH: usize = 16;

#[wasm_bindgen]
pub struct WebSam2 {
    predictor: Rc<Sam2Predictor>,
    weights: String,
    last_image: Rc<RefCell<Option<(Vec<u8>, Rc<EmbeddedImage>)>>>,
}

/// Loads a SAM 2 burnpack's bytes on the device chosen by `initDevice`.
#[wasm_bindgen(js_name = loadSam2)]
pub fn load_sam2(bytes: Vec<u8>) -> Result<WebSam2, JsError> {
    let chosen = chosen_device()?;
    let (model, weights) = if chosen.report.kind == ComputeKind::Cpu {
        Sam2Model::from_burnpack(bytes, &chosen.device).map_err(js_error)?
    } else {
        // int8 matmul does not run under WebGPU (see `quantize::dequantize`): read on the CPU
        // backend, expand to f32 there, then move to the GPU.
        let (model, weights) =
            Sam2Model::from_burnpack(bytes, &Device::flex()).map_err(js_error)?;
        (dequantize(model).to_device(&chosen.device), weights)
    };
    Ok(WebSam2 {
        predictor: Rc::new(Sam2Predictor::new(model)),
        weights,
        last_image: Rc::new(RefCell::new(None)),
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
    points_per_side: Option<usize>,
    points_per_batch: Option<usize>,
    pred_iou_thresh: Option<f32>,
    stability_thresh: Option<f32>,
    min_area: Option<usize>,
    single: bool,
}

#[wasm_bindgen]
impl WebSam2 {
    /// `sam2.1-hiera-tiny`, …
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.predictor.model.config.name.clone()
    }

    /// `f32`, `int8-per-tensor`, `int8-per-block-32`, …
    #[wasm_bindgen(getter)]
    pub fn weights(&self) -> String {
        self.weights.clone()
    }

    /// A mask for an encoded image (JPEG, PNG, …). `options`: `{points: [[x, y]], background:
    /// [[x, y]], box: [x0, y0, x1, y1], auto, pointsPerSide, pointsPerBatch, predIouThresh,
    /// stabilityThresh, minArea, single}`. Resolves to `{width, height, mask (Uint8Array, 255
    /// inside), maskPng (Uint8Array), area, predictedIou, candidates}`.
    pub fn segment(&self, image: Vec<u8>, options: JsValue) -> js_sys::Promise {
        let predictor = Rc::clone(&self.predictor);
        let last_image = Rc::clone(&self.last_image);
        wasm_bindgen_futures::future_to_promise(async move {
            segment(&predictor, &last_image, image, options)
                .await
                .map_err(JsValue::from)
        })
    }
}

fn embedded_for(
    predictor: &Sam2Predictor,
    last_image: &RefCell<Option<(Vec<u8>, Rc<EmbeddedImage>)>>,
    image: Vec<u8>,
) -> Result<Rc<EmbeddedImage>, JsError> {
    if let Some((bytes, embedded)) = last_image.borrow().as_ref()
        && *bytes == image
    {
        return Ok(Rc::clone(embedded));
    }
    let decoded = imaging::decode_image(&image).map_err(js_error)?;
    let embedded = Rc::new(predictor.set_image(&Pixels8::from_image(&decoded.pixels)));
    *last_image.borrow_mut() = Some((image, Rc::clone(&embedded)));
    Ok(embedded)
}

async fn segment(
    predictor: &Sam2Predictor,
    last_image: &RefCell<Option<(Vec<u8>, Rc<EmbeddedImage>)>>,
    image: Vec<u8>,
    options: JsValue,
) -> Result<JsValue, JsError> {
    let options: SegmentOptions = if options.is_undefined() || options.is_null() {
        SegmentOptions::default()
    } else {
        serde_wasm_bindgen::from_value(options).map_err(js_error)?
    };
    let embedded = embedded_for(predictor, last_image, image)?;
    let (mask, candidates) = if options.auto {
        let defaults = GeneratorSettings::default();
        let settings = GeneratorSettings {
            points_per_side: options.points_per_side.unwrap_or(defaults.points_per_side),
            points_per_batch: options.points_per_batch.unwrap_or(BROWSER_POINTS_PER_BATCH),
            pred_iou_thresh: options.pred_iou_thresh.unwrap_or(defaults.pred_iou_thresh),
            stability_score_thresh: options
                .stability_thresh
                .unwrap_or(defaults.stability_score_thresh),
            min_mask_region_area: options.min_area.unwrap_or(0),
            ..defaults
        };
        let choice = MaskChoice::at_or_largest(options.points.first());
        find_region(predictor, &embedded, &settings, choice)
            .await
            .map_err(js_error)?
    } else {
        let mut prompt = Prompt {
            box_xyxy: options.region,
            ..Prompt::default()
        };
        for (points, label) in [(&options.points, 1), (&options.background, 0)] {
            prompt.points.extend(points.iter().copied());
            prompt
                .labels
                .extend(std::iter::repeat_n(label, points.len()));
        }
        let prediction = predictor
            .predict(&embedded, &[prompt], !options.single)
            .map_err(js_error)?;
        let masks = read_masks(&prediction, 0).await.map_err(js_error)?;
        let count = masks.len();
        let best = masks
            .into_iter()
            .next()
            .ok_or_else(|| JsError::new("no mask"))?;
        (best, count)
    };
    let result = Object::new();
    let set = |key: &str, value: JsValue| Reflect::set(&result, &key.into(), &value).map(|_| ());
    let fields = [
        ("width", JsValue::from(mask.width as u32)),
        ("height", JsValue::from(mask.height as u32)),
        ("area", JsValue::from(mask.area() as u32)),
        ("predictedIou", JsValue::from(mask.predicted_iou)),
        ("candidates", JsValue::from(candidates as u32)),
        ("mask", Uint8Array::from(mask.to_luma().as_slice()).into()),
        ("maskPng", Uint8Array::from(mask.to_png().as_slice()).into()),
    ];
    for (key, value) in fields {
        set(key, value).map_err(|_| JsError::new("building the result"))?;
    }
    Ok(result.into())
}
