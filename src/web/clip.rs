//! CLIP across the wasm boundary: load a model from the files the user picked, classify an
//! image zero-shot, optionally steered by a box or a mask image. Conversions only.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::files::WebModelFiles;
use super::heads::WebHead;
use super::sam2::WebSam2;
use super::{chosen_device, decoded, js_error, parse_options, rgba, to_js};
use crate::clip::ZeroShotClassifier;
use crate::clip::load::{LoadedClip, load_clip};
use crate::focus::FocusSettings;
use crate::heads::{HeadFile, HeadModel};
use crate::pipeline::{
    Encoder, FocusView, MaskSource, Pipeline, Prediction, Region, RegionOrigin, Segmenter,
};
use crate::sam2::automatic_mask_generator::MaskChoice;

/// A loaded CLIP model, held by the page.
#[wasm_bindgen]
pub struct WebClip {
    clip: Rc<LoadedClip>,
    /// The class embeddings of the last `(classes, templates)`: classifying image after image
    /// with the same classes encodes the prompts once.
    classifier: Rc<RefCell<Option<CachedClassifier>>>,
}

struct CachedClassifier {
    classes: Vec<String>,
    templates: Vec<String>,
    classifier: Rc<ZeroShotClassifier>,
}

/// Loads a model from its files as they streamed in (e.g. `open_clip_config.json` and
/// `open_clip_model.safetensors`, or `config.json` and `model.safetensors`) on the device chosen
/// by `initDevice`.
#[wasm_bindgen(js_name = loadClip)]
pub fn load_clip_streamed(files: WebModelFiles) -> Result<WebClip, JsError> {
    let files = files.into_memory_files()?;
    let device = chosen_device()?.device;
    let clip = load_clip(&files, &device).map_err(js_error)?;
    Ok(WebClip {
        clip: Rc::new(clip),
        classifier: Rc::new(RefCell::new(None)),
    })
}

/// The same from `{fileName: Uint8Array}` already whole in memory (Rust-side tests).
pub fn load_clip_files(files: Object) -> Result<WebClip, JsError> {
    let mut entries = Vec::new();
    for key in Object::keys(&files).iter() {
        let name = key
            .as_string()
            .ok_or_else(|| JsError::new("file names must be strings"))?;
        let value =
            Reflect::get(&files, &key).map_err(|_| JsError::new("unreadable file entry"))?;
        let bytes = value
            .dyn_into::<Uint8Array>()
            .map_err(|_| JsError::new(&format!("{name}: expected a Uint8Array")))?
            .to_vec();
        entries.push((name, bytes));
    }
    load_clip_streamed(WebModelFiles::from_whole("the chosen files", entries)?)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ClassifyOptions {
    templates: Vec<String>,
    /// none | overlay | blur | crop | binary | grey | attention
    pub(super) focus: Option<String>,
    /// `[left, top, right, bottom]` in image pixels.
    #[serde(rename = "box")]
    region: Option<[usize; 4]>,
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
fn classification_js(classes: &[String], prediction: &Prediction) -> Result<JsValue, JsError> {
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

impl WebClip {
    /// The model, shared with work that outlives this call (a support set's training).
    pub(super) fn loaded(&self) -> Rc<LoadedClip> {
        Rc::clone(&self.clip)
    }
}

#[wasm_bindgen]
impl WebClip {
    /// `open_clip`, `BiomedCLIP` or `Hugging Face CLIPModel`.
    #[wasm_bindgen(getter)]
    pub fn family(&self) -> String {
        self.clip.family.to_string()
    }

    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.clip.preprocess.image_size
    }

    /// Zero-shot probabilities of `classes` for an encoded image (JPEG, PNG, …).
    /// `options`: `{templates, focus, box, mask, alpha, sigma, margin, strength, lastLayers, allTokens}`;
    /// `mask` is a mask image's bytes (white = region), `box` a rectangle.
    /// Resolves to `{classes, probabilities, region}` (`region`: `{origin, coverage}`, when the
    /// focus uses one).
    pub fn classify(
        &self,
        image: Vec<u8>,
        classes: Vec<String>,
        options: JsValue,
    ) -> js_sys::Promise {
        let clip = Rc::clone(&self.clip);
        let cache = Rc::clone(&self.classifier);
        wasm_bindgen_futures::future_to_promise(async move {
            classify(&clip, &cache, image, classes, options)
                .await
                .map_err(JsValue::from)
        })
    }

    /// Class probabilities from a trained head (see `loadHead`) for an encoded image, focused as
    /// the head was trained. `options`: `{box, mask}`, the region when the head needs one.
    /// Resolves to `{classes, probabilities, region}`; a head trained on another CLIP model is an
    /// error.
    #[wasm_bindgen(js_name = classifyWithHead)]
    pub fn classify_with_head(
        &self,
        image: Vec<u8>,
        head: &WebHead,
        options: JsValue,
    ) -> js_sys::Promise {
        let clip = Rc::clone(&self.clip);
        let head = Rc::clone(&head.file);
        wasm_bindgen_futures::future_to_promise(async move {
            let parsed: HeadOptions = parse_options(&options)?;
            let source = mask_source(&options, parsed.region);
            classify_with_head(&clip, &head, image, source, None)
                .await
                .map_err(JsValue::from)
        })
    }

    /// [`Self::classify_with_head`] on SAM 2's automatic mask, found with the settings the head
    /// recorded (grid, thresholds; see `WebHead.automatic`) and the whole image when none
    /// qualifies, exactly as in training. Resolves to `{classes, probabilities, region}` with
    /// `region.mask` (0/255 per pixel) and `region.warning` when the whole image stood in.
    #[wasm_bindgen(js_name = classifyWithHeadOnSam2)]
    pub fn classify_with_head_on_sam2(
        &self,
        image: Vec<u8>,
        head: &WebHead,
        sam2: &WebSam2,
    ) -> js_sys::Promise {
        let clip = Rc::clone(&self.clip);
        let head = Rc::clone(&head.file);
        let segmenter = sam2.segmenter();
        wasm_bindgen_futures::future_to_promise(async move {
            let source = MaskSource::Sam2Automatic(MaskChoice::Largest);
            classify_with_head(&clip, &head, image, source, Some(&segmenter))
                .await
                .map_err(JsValue::from)
        })
    }

    /// What the image tower is shown for an encoded image under `options` (as `classify` takes
    /// them: `{focus, box, mask, alpha, …}`): resolves to `{width, height, focused (RGBA: the
    /// image with the visual prompt drawn in, exactly the pixels CLIP's preprocessing gets),
    /// inputSize, input (RGBA, the resized and centre-cropped tower input), crop ([l, t, r, b]
    /// in image pixels: what the crop keeps), grid, patchWeights (attention: per patch)}`.
    pub fn view(&self, image: Vec<u8>, options: JsValue) -> js_sys::Promise {
        let clip = Rc::clone(&self.clip);
        wasm_bindgen_futures::future_to_promise(async move {
            view(&clip, image, options).await.map_err(JsValue::from)
        })
    }
}

/// The region from `options.mask` (a mask image's bytes) or `box`, if any.
fn mask_source(options: &JsValue, region: Option<[usize; 4]>) -> MaskSource {
    let mask_bytes = Reflect::get(options, &"mask".into())
        .ok()
        .and_then(|value| value.dyn_into::<Uint8Array>().ok());
    match (mask_bytes, region) {
        (Some(bytes), _) => MaskSource::MaskImage(bytes.to_vec()),
        (None, Some(region)) => MaskSource::Box(region),
        (None, None) => MaskSource::None,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HeadOptions {
    #[serde(rename = "box")]
    region: Option<[usize; 4]>,
}

async fn classify_with_head(
    clip: &LoadedClip,
    head: &HeadFile,
    image: Vec<u8>,
    source: MaskSource,
    segmenter: Option<&Segmenter>,
) -> Result<JsValue, JsError> {
    let head = HeadModel::new(head, &clip.model.device());
    let mut pipeline = Pipeline::with_head(clip, &head).map_err(js_error)?;
    if let Some(segmenter) = segmenter {
        pipeline = pipeline.with_segmenter(segmenter);
    }
    pipeline
        .encoder
        .require_region(!source.is_none(), "give a region (mask or box)")
        .map_err(js_error)?;
    let pixels = decoded(&image)?;
    let prediction = pipeline
        .classify(&pixels, &source)
        .await
        .map_err(js_error)?;
    classification_js(pipeline.classes(), &prediction)
}

async fn view(clip: &LoadedClip, image: Vec<u8>, options: JsValue) -> Result<JsValue, JsError> {
    let parsed: ClassifyOptions = parse_options(&options)?;
    let method = parsed.focus.as_deref().unwrap_or("none");
    let encoder = Encoder::new(
        clip,
        &crate::heads::head_file::FocusMode::new(method, parsed.settings()),
    )
    .map_err(js_error)?;
    let source = mask_source(&options, parsed.region);
    encoder
        .require_region(!source.is_none(), "give a region (mask or box)")
        .map_err(js_error)?;
    let pixels = decoded(&image)?;
    let region: Option<Region> = encoder.region(&pixels, &source).await.map_err(js_error)?;
    let view = encoder.view(&pixels, region.as_ref()).map_err(js_error)?;
    view_js(&view)
}

fn view_js(view: &FocusView) -> Result<JsValue, JsError> {
    let result = Object::new();
    let patch_weights = match &view.patch_weights {
        Some(weights) => js_sys::Float32Array::from(weights.as_slice()).into(),
        None => JsValue::NULL,
    };
    let crop = js_sys::Float32Array::from(view.crop.as_slice());
    let fields = [
        ("width", JsValue::from(view.focused.width as u32)),
        ("height", JsValue::from(view.focused.height as u32)),
        (
            "focused",
            Uint8Array::from(rgba(&view.focused).as_slice()).into(),
        ),
        ("inputSize", JsValue::from(view.model_input.width as u32)),
        (
            "input",
            Uint8Array::from(rgba(&view.model_input).as_slice()).into(),
        ),
        ("crop", crop.into()),
        ("grid", JsValue::from(view.grid as u32)),
        ("patchWeights", patch_weights),
    ];
    for (key, value) in fields {
        Reflect::set(&result, &key.into(), &value)
            .map_err(|_| JsError::new("building the view"))?;
    }
    Ok(result.into())
}

/// The classifier for these classes and templates, reused when they are the last ones asked for.
fn classifier_for(
    clip: &LoadedClip,
    cache: &RefCell<Option<CachedClassifier>>,
    classes: Vec<String>,
    templates: Vec<String>,
) -> Result<Rc<ZeroShotClassifier>, JsError> {
    if let Some(cached) = cache.borrow().as_ref()
        && cached.classes == classes
        && cached.templates == templates
    {
        return Ok(Rc::clone(&cached.classifier));
    }
    let classifier =
        Rc::new(ZeroShotClassifier::new(clip, &classes, &templates).map_err(js_error)?);
    *cache.borrow_mut() = Some(CachedClassifier {
        classes,
        templates,
        classifier: Rc::clone(&classifier),
    });
    Ok(classifier)
}

async fn classify(
    clip: &LoadedClip,
    cache: &RefCell<Option<CachedClassifier>>,
    image: Vec<u8>,
    classes: Vec<String>,
    options: JsValue,
) -> Result<JsValue, JsError> {
    let parsed: ClassifyOptions = parse_options(&options)?;
    let pixels = decoded(&image)?;
    // The model stays on the device it was loaded on, even if the page switched since.
    let classifier = classifier_for(clip, cache, classes, parsed.templates.clone())?;
    let method = parsed.focus.as_deref().unwrap_or("none");
    let pipeline =
        Pipeline::zero_shot(clip, &classifier, method, &parsed.settings()).map_err(js_error)?;
    let source = mask_source(&options, parsed.region);
    pipeline
        .encoder
        .require_region(!source.is_none(), "give a region (mask or box)")
        .map_err(js_error)?;
    let prediction = pipeline
        .classify(&pixels, &source)
        .await
        .map_err(js_error)?;
    classification_js(pipeline.classes(), &prediction)
}
