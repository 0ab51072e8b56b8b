//! The conversions the wasm classes share: the options `classify` and its kin take, a region and
//! a classification as JS objects.

use js_sys::{Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::to_js;
use crate::focus::FocusSettings;
use crate::pipeline::{MaskSource, Prediction, Region, RegionOrigin};

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
