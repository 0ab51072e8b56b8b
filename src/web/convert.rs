//! The conversions the wasm classes share: the options `classify` and its kin take, a region, a
//! classification and its explanation as JS objects, and the one answer they all give.

use js_sys::{Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{js_error, to_js};
use crate::clip::preprocess::Pixels8;
use crate::explain::{self, ExplainMethod, ExplainRequest, Explanation, picture};
use crate::focus::FocusSettings;
use crate::pipeline::{MaskSource, Pipeline, Prediction, Region, RegionOrigin};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ClassifyOptions {
    pub(super) templates: Vec<String>,
    /// none | overlay | blur | crop | binary | grey | attention
    pub(super) focus: Option<String>,
    /// `[left, top, right, bottom]` in image pixels.
    #[serde(rename = "box")]
    pub(super) region: Option<[usize; 4]>,
    alpha: Option<f32>,
    sigma: Option<f32>,
    margin: Option<f32>,
    strength: Option<f32>,
    last_layers: Option<usize>,
    all_tokens: bool,
    pub(super) explain: Option<ExplainOptions>,
}

/// `options.explain`: `{method: "relevancy" | "dense", class (an index; default: the predicted
/// class), startBlock (relevancy; default: the last block)}`.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(super) struct ExplainOptions {
    method: String,
    class: Option<usize>,
    start_block: Option<usize>,
}

impl ExplainOptions {
    fn request(&self) -> Result<ExplainRequest, JsError> {
        Ok(ExplainRequest {
            method: ExplainMethod::from_name(&self.method).map_err(js_error)?,
            class: self.class,
            start_block: self.start_block,
        })
    }
}

/// What `classify` and `classifyWithHead` resolve to (and `region`, when the focus used one).
#[derive(Serialize)]
struct Classification {
    classes: Vec<String>,
    probabilities: Vec<f32>,
}

#[derive(Serialize)]
struct RegionUsed {
    origin: &'static str,
    coverage: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// A region as `{origin, coverage, warning}`; one SAM 2 found (or the whole image standing in
/// for none) comes with its mask, `mask` (0/255 per pixel), for the page to show.
pub(super) fn region_js(region: &Region) -> Result<JsValue, JsError> {
    let value = to_js(&RegionUsed {
        origin: region.origin.name(),
        coverage: region.coverage,
        warning: region.warning.clone(),
    })?;
    if matches!(
        region.origin,
        RegionOrigin::Sam2Automatic | RegionOrigin::Sam2Prompt | RegionOrigin::WholeImage
    ) {
        let luma: Vec<u8> = region
            .mask
            .weights
            .iter()
            .map(|&w| if w >= 0.5 { 255 } else { 0 })
            .collect();
        Reflect::set(
            &value,
            &"mask".into(),
            &Uint8Array::from(luma.as_slice()).into(),
        )
        .map_err(|_| JsError::new("building the result"))?;
    }
    Ok(value)
}

/// The classification as a JS object: `{classes, probabilities, region}` (see [`region_js`]).
pub(super) fn classification_js(
    classes: &[String],
    prediction: &Prediction,
) -> Result<JsValue, JsError> {
    let value = to_js(&Classification {
        classes: classes.to_vec(),
        probabilities: prediction.probabilities.clone(),
    })?;
    if let Some(region) = &prediction.region {
        Reflect::set(&value, &"region".into(), &region_js(region)?)
            .map_err(|_| JsError::new("building the result"))?;
    }
    Ok(value)
}

impl ClassifyOptions {
    pub(super) fn settings(&self) -> FocusSettings {
        let defaults = FocusSettings::default();
        FocusSettings {
            alpha: self.alpha.unwrap_or(defaults.alpha),
            sigma: self.sigma.unwrap_or(defaults.sigma),
            margin: self.margin.unwrap_or(defaults.margin),
            strength: self.strength.unwrap_or(defaults.strength),
            last_layers: self.last_layers,
            all_tokens: self.all_tokens,
        }
    }
}

/// The region from `options.mask` (a mask image's bytes) or `box`, if any.
pub(super) fn mask_source(options: &JsValue, region: Option<[usize; 4]>) -> MaskSource {
    let mask_bytes = Reflect::get(options, &"mask".into())
        .ok()
        .and_then(|value| value.dyn_into::<Uint8Array>().ok());
    match (mask_bytes, region) {
        (Some(bytes), _) => MaskSource::MaskImage(bytes.to_vec()),
        (None, Some(region)) => MaskSource::Box(region),
        (None, None) => MaskSource::None,
    }
}

/// What every classify call resolves to: the pipeline's prediction for `pixels` (focused on the
/// region `source` gives) as `{classes, probabilities, region}`, and with `explain` the
/// explanation of one class's score beside it (see [`explanation_js`]).
pub(super) async fn answer(
    pipeline: &Pipeline<'_>,
    pixels: &Pixels8,
    source: &MaskSource,
    explain: Option<&ExplainOptions>,
) -> Result<JsValue, JsError> {
    let Some(options) = explain else {
        let prediction = pipeline.classify(pixels, source).await.map_err(js_error)?;
        return classification_js(pipeline.classes(), &prediction);
    };
    let explained = explain::explain(pipeline, pixels, source, &options.request()?)
        .await
        .map_err(js_error)?;
    let value = classification_js(pipeline.classes(), &explained.prediction)?;
    Reflect::set(
        &value,
        &"explanation".into(),
        &explanation_js(&explained.explanation)?,
    )
    .map_err(|_| JsError::new("building the result"))?;
    Ok(value)
}

/// `{method, class (index), grid, patchMap (grid², raw), inputSize, inputMap (inputSize²,
/// [0, 1]), width, height, heat (the image's size, [0, 1], NaN where the tower saw nothing),
/// heatRgba (the heat-map coloured, transparent where unseen)}`.
pub(super) fn explanation_js(explanation: &Explanation) -> Result<JsValue, JsError> {
    let result = js_sys::Object::new();
    let heat = &explanation.heat;
    let fields = [
        ("method", JsValue::from(explanation.method.name())),
        ("class", JsValue::from(explanation.class as u32)),
        ("grid", JsValue::from(explanation.grid as u32)),
        (
            "patchMap",
            js_sys::Float32Array::from(explanation.patch_map.as_slice()).into(),
        ),
        ("inputSize", JsValue::from(explanation.input_size as u32)),
        (
            "inputMap",
            js_sys::Float32Array::from(explanation.input_map.as_slice()).into(),
        ),
        ("width", JsValue::from(heat.width as u32)),
        ("height", JsValue::from(heat.height as u32)),
        (
            "heat",
            js_sys::Float32Array::from(heat.values.as_slice()).into(),
        ),
        (
            "heatRgba",
            Uint8Array::from(picture::heat_rgba(heat).as_slice()).into(),
        ),
    ];
    for (key, value) in fields {
        Reflect::set(&result, &key.into(), &value)
            .map_err(|_| JsError::new("building the explanation"))?;
    }
    Ok(result.into())
}
