//! CLIP across the wasm boundary: load a model from the files the user picked, classify an
//! image zero-shot, optionally steered by a box or a mask image. Conversions only.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::convert::{ClassifyOptions, answer, mask_source};
use super::files::WebModelFiles;
use super::{chosen_device, decoded, js_error, parse_options, rgba};
use crate::clip::ZeroShotClassifier;
use crate::clip::load::{LoadedClip, load_clip};
use crate::pipeline::{Encoder, FocusView, Pipeline, Region};

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

    /// The prompt templates used when a classification gives none (MedFocus's medical ones):
    /// what the page shows and writes into its result file.
    #[wasm_bindgen(getter, js_name = defaultTemplates)]
    pub fn default_templates(&self) -> Vec<String> {
        crate::clip::zero_shot::MEDICAL_TEMPLATES
            .iter()
            .map(|template| template.to_string())
            .collect()
    }

    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.clip.preprocess.image_size
    }

    /// Zero-shot probabilities of `classes` for an encoded image (JPEG, PNG, …).
    /// `options`: `{templates, focus, box, mask, alpha, sigma, margin, strength, lastLayers,
    /// allTokens, explain}`; `mask` is a mask image's bytes (white = region), `box` a rectangle,
    /// `explain` `{method, class, startBlock}` asks where the model looked.
    /// Resolves to `{classes, probabilities, region, explanation}` (`region`: `{origin,
    /// coverage}`, when the focus uses one; `explanation`: with `explain`, see
    /// `convert::explanation_js`).
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

async fn view(clip: &LoadedClip, image: Vec<u8>, options: JsValue) -> Result<JsValue, JsError> {
    let parsed: ClassifyOptions = parse_options(&options)?;
    let method = parsed.focus.as_deref().unwrap_or("none");
    let encoder = Encoder::new(
        clip,
        &crate::focus::FocusMode::new(method, parsed.settings()),
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
    answer(&pipeline, &pixels, &source, parsed.explain.as_ref()).await
}
