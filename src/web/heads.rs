//! Heads across the wasm boundary: read a `.mfh` file the user picked and describe it, predict
//! with it (`WebClip.classifyWithHead`: a second `impl WebClip` block, so that `clip.rs` needs
//! nothing from here), and train one from labelled images (`WebSupportSet`: the library's
//! support set, trained in wasm). Conversions only.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::clip::WebClip;
use super::convert::{ClassifyOptions, ExplainOptions, answer, mask_source, region_js};
use super::files::WebModelFiles;
use super::sam2::{AutomaticOptions, WebSam2};
use super::{decoded, js_error, parse_options, to_js};
use crate::clip::load::LoadedClip;
use crate::focus::FocusMode;
use crate::heads::train::support_set::held_out;
use crate::heads::train::{HeadSettings, Silent, SupportSet};
use crate::heads::{HeadFile, HeadKind, HeadModel};
use crate::pipeline::{MaskSource, Segmenter};
use crate::sam2::automatic_mask_generator::MaskChoice;

/// A head file, held by the page.
#[wasm_bindgen]
pub struct WebHead {
    pub(super) file: Rc<HeadFile>,
}

/// Reads a head file (from `medfocus train`), streamed in; a damaged or foreign file is an error.
#[wasm_bindgen(js_name = loadHead)]
pub fn load_head_streamed(files: WebModelFiles) -> Result<WebHead, JsError> {
    let (_, bytes) = files.into_single("a head file (.mfh, from `medfocus train`)")?;
    load_head(bytes)
}

/// The same from a head file's bytes.
pub fn load_head(bytes: Vec<u8>) -> Result<WebHead, JsError> {
    let file = HeadFile::from_bytes(bytes).map_err(js_error)?;
    Ok(WebHead {
        file: Rc::new(file),
    })
}

#[wasm_bindgen]
impl WebHead {
    /// `zero-shot`, `linear-probe`, `lp-text`, `tip-adapter`, `tip-adapter-f`, `coop` or `finetune`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.file.header.kind.name().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn classes(&self) -> Vec<String> {
        self.file.header.classes.clone()
    }

    /// The focus method it was trained with (images must be focused the same way).
    #[wasm_bindgen(getter)]
    pub fn focus(&self) -> String {
        self.file.header.focus.method.clone()
    }

    /// Whether classifying needs a region (a mask or a box).
    #[wasm_bindgen(getter, js_name = needsMask)]
    pub fn needs_mask(&self) -> bool {
        self.file.header.focus.needs_mask()
    }

    /// Where its training masks came from (`none`, `mask files`, `sam2 …`).
    #[wasm_bindgen(getter)]
    pub fn masks(&self) -> String {
        self.file.header.focus.masks.clone()
    }

    /// SAM 2's automatic settings it was trained with (`{points_per_side, pred_iou_thresh, …}`),
    /// or `null` when its masks did not come from the automatic generator: with them, the page
    /// classifies through `WebClip.classifyWithHeadOnSam2`, which runs exactly these.
    #[wasm_bindgen(getter)]
    pub fn automatic(&self) -> Result<JsValue, JsError> {
        match &self.file.header.focus.automatic {
            Some(settings) => to_js(settings),
            None => Ok(JsValue::NULL),
        }
    }

    /// The CLIP model it was trained on (its folder name).
    #[wasm_bindgen(getter, js_name = clipName)]
    pub fn clip_name(&self) -> String {
        self.file.header.clip.name.clone()
    }

    /// How it was trained (hyper-parameters, held-out results), as JSON.
    #[wasm_bindgen(getter)]
    pub fn training(&self) -> Result<JsValue, JsError> {
        to_js(&self.file.header.training)
    }
}

/// Labelled images for a head, embedded one by one as the page hands them over (its class
/// bins); only the embeddings are kept.
#[wasm_bindgen]
pub struct WebSupportSet {
    set: Rc<RefCell<SupportSet>>,
    /// SAM 2, for a focus that needs a mask: each image's region is its automatic mask.
    segmenter: Option<Rc<Segmenter>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SupportSetOptions {
    /// The focus and its knobs, as `classify` takes them.
    #[serde(flatten)]
    focus: ClassifyOptions,
    /// SAM 2's automatic generator (`pointsPerSide`, thresholds), as `segment` takes them.
    #[serde(flatten)]
    automatic: AutomaticOptions,
}

impl SupportSetOptions {
    fn focus_mode(&self) -> FocusMode {
        FocusMode::new(
            self.focus.focus.as_deref().unwrap_or("none"),
            self.focus.settings(),
        )
    }
}

/// An empty support set of `classes` (the class names, in label order: the head's classes and
/// its prompts' words) under `options.focus` (`none`, or a focus on a region: then use
/// `supportSetOnSam2`). `options`: `{focus, alpha, sigma, margin, strength, lastLayers,
/// allTokens}`.
#[wasm_bindgen(js_name = supportSet)]
pub fn support_set(classes: Vec<String>, options: JsValue) -> Result<WebSupportSet, JsError> {
    let options: SupportSetOptions = parse_options(&options)?;
    let focus = options.focus_mode();
    if focus.needs_mask() {
        return Err(JsError::new(&format!(
            "the `{}` focus needs each image's region: load SAM 2 (its automatic mask is the region)",
            focus.method
        )));
    }
    let set = SupportSet::new(classes, focus).map_err(js_error)?;
    Ok(WebSupportSet {
        set: Rc::new(RefCell::new(set)),
        segmenter: None,
    })
}

/// [`support_set`] whose images are focused on SAM 2's automatic mask (the largest that is not
/// background; the whole image when none qualifies), found with `options`' `pointsPerSide`,
/// `predIouThresh`, `stabilityThresh` over the loaded model's defaults. The head records these
/// settings and classifies with exactly them, natively (`--sam2`) and in the page.
#[wasm_bindgen(js_name = supportSetOnSam2)]
pub fn support_set_on_sam2(
    classes: Vec<String>,
    options: JsValue,
    sam2: &WebSam2,
) -> Result<WebSupportSet, JsError> {
    let options: SupportSetOptions = parse_options(&options)?;
    let segmenter = sam2.segmenter();
    let mut focus = options.focus_mode();
    if focus.needs_mask() {
        focus.masks = segmenter.identity.clone();
        focus.automatic = Some(options.automatic.settings(&segmenter.automatic));
    }
    let set = SupportSet::new(classes, focus).map_err(js_error)?;
    Ok(WebSupportSet {
        set: Rc::new(RefCell::new(set)),
        segmenter: Some(segmenter),
    })
}

/// Images per class, as JS numbers.
fn counts_of(set: &SupportSet) -> Vec<u32> {
    set.counts().iter().map(|&count| count as u32).collect()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct TrainOptions {
    /// `linear-probe` (default), `lp-text`, `tip-adapter`, `tip-adapter-f` or `zero-shot`.
    kind: Option<String>,
    seed: Option<u64>,
    /// Fraction of each class held out to choose hyper-parameters (default 0.25).
    holdout: Option<f32>,
    /// The CLIP model's name for the head file (natively: its folder name).
    clip_name: Option<String>,
    /// Prompt templates (`{}` = class name); empty: the medical defaults.
    templates: Vec<String>,
}

#[wasm_bindgen]
impl WebSupportSet {
    /// Embeds an encoded image (JPEG, PNG, DICOM, …) with `clip` as class `label` (an index into
    /// the classes). Resolves to `{images, counts, duplicate, region}`: the set's size and
    /// images per class after it, whether these bytes were there already, and the region it was
    /// focused on (`{origin, coverage, warning, mask}`, absent for the `none` focus). An image
    /// already in another class is an error.
    pub fn add(&self, clip: &WebClip, image: Vec<u8>, label: usize) -> js_sys::Promise {
        let set = Rc::clone(&self.set);
        let segmenter = self.segmenter.clone();
        let clip = clip.loaded();
        wasm_bindgen_futures::future_to_promise(async move {
            let pixels = decoded(&image)?;
            let encoder = set
                .borrow()
                .encoder(&clip, segmenter.as_deref())
                .map_err(js_error)?;
            let source = match segmenter {
                Some(_) => MaskSource::Sam2Automatic(MaskChoice::Largest),
                None => MaskSource::None,
            };
            // The set is borrowed only for the insert, never across an await.
            let (values, region) = SupportSet::embed(&encoder, &pixels, &source)
                .await
                .map_err(js_error)?;
            let region_value = match &region {
                Some(region) => region_js(region)?,
                None => JsValue::UNDEFINED,
            };
            let added = set
                .borrow_mut()
                .insert(&clip, &image, label, values, region)
                .map_err(js_error)?;
            let set = set.borrow();
            let result = Object::new();
            let fields = [
                ("images", JsValue::from(set.len() as u32)),
                ("counts", to_js(&counts_of(&set))?),
                ("duplicate", JsValue::from(added.duplicate)),
                ("region", region_value),
            ];
            for (key, value) in fields {
                Reflect::set(&result, &key.into(), &value)
                    .map_err(|_| JsError::new("building the result"))?;
            }
            Ok(result.into())
        })
    }

    /// Images per class, in label order.
    #[wasm_bindgen(getter)]
    pub fn counts(&self) -> Vec<u32> {
        counts_of(&self.set.borrow())
    }

    /// What the user should know about the images added (SAM 2 found no region, …).
    #[wasm_bindgen(getter)]
    pub fn warnings(&self) -> Vec<String> {
        self.set.borrow().warnings()
    }

    /// Trains a head on the set (on the CPU: see `SupportSet::train`). `options`: `{kind, seed,
    /// holdout, clipName, templates}`. Resolves to `{head (the .mfh file's bytes, as native
    /// `medfocus train` writes it), kind, classes, counts, heldOut ({accuracy, measuredOn},
    /// or null when the set was too small to hold images out), training (the log)}`.
    pub fn train(&self, clip: &WebClip, options: JsValue) -> js_sys::Promise {
        let set = Rc::clone(&self.set);
        let clip = clip.loaded();
        wasm_bindgen_futures::future_to_promise(async move {
            let options: TrainOptions = parse_options(&options)?;
            let kind = match options.kind.as_deref() {
                None => HeadKind::LinearProbe,
                Some(name) => HeadKind::parse(name).ok_or_else(|| {
                    JsError::new(&format!(
                        "unknown head kind `{name}`: one of {}",
                        HeadKind::NAMES.join(", ")
                    ))
                })?,
            };
            let mut settings = HeadSettings::new(kind);
            if let Some(seed) = options.seed {
                settings.seed = seed;
            }
            if let Some(holdout) = options.holdout {
                settings.holdout = holdout;
            }
            // A snapshot: the set is never borrowed across the await.
            let snapshot = set.borrow().clone();
            let head = snapshot
                .train(
                    &clip,
                    options.clip_name.as_deref().unwrap_or("browser"),
                    &options.templates,
                    &settings,
                    &mut Silent,
                )
                .await
                .map_err(js_error)?;
            let bytes = head.to_bytes().map_err(js_error)?;
            let result = Object::new();
            let fields = [
                ("head", Uint8Array::from(bytes.as_slice()).into()),
                ("kind", JsValue::from(kind.name())),
                ("classes", to_js(&head.header.classes)?),
                ("counts", to_js(&counts_of(&snapshot))?),
                (
                    "heldOut",
                    match held_out(&head.header.training) {
                        Some(estimate) => to_js(&estimate)?,
                        None => JsValue::NULL,
                    },
                ),
                ("training", to_js(&head.header.training)?),
            ];
            for (key, value) in fields {
                Reflect::set(&result, &key.into(), &value)
                    .map_err(|_| JsError::new("building the result"))?;
            }
            Ok(result.into())
        })
    }
}

#[wasm_bindgen]
impl WebClip {
    /// Class probabilities from a trained head (see `loadHead`) for an encoded image, focused as
    /// the head was trained. `options`: `{box, mask}`, the region when the head needs one, and
    /// `explain` as `classify` takes it. Resolves to `{classes, probabilities, region,
    /// explanation}`; a head trained on another CLIP model is an error.
    #[wasm_bindgen(js_name = classifyWithHead)]
    pub fn classify_with_head(
        &self,
        image: Vec<u8>,
        head: &WebHead,
        options: JsValue,
    ) -> js_sys::Promise {
        let clip = self.loaded();
        let head = Rc::clone(&head.file);
        wasm_bindgen_futures::future_to_promise(async move {
            let parsed: HeadOptions = parse_options(&options)?;
            let source = mask_source(&options, parsed.region);
            classify_with_head(&clip, &head, image, source, None, parsed.explain.as_ref())
                .await
                .map_err(JsValue::from)
        })
    }

    /// [`Self::classify_with_head`] on SAM 2's automatic mask, found with the settings the head
    /// recorded (grid, thresholds; see `WebHead.automatic`) and the whole image when none
    /// qualifies, exactly as in training. Resolves to `{classes, probabilities, region}` with
    /// `region.mask` (0/255 per pixel) and `region.warning` when the whole image stood in.
    /// `options`: `{explain}`, as `classify` takes it (optional).
    #[wasm_bindgen(js_name = classifyWithHeadOnSam2)]
    pub fn classify_with_head_on_sam2(
        &self,
        image: Vec<u8>,
        head: &WebHead,
        sam2: &WebSam2,
        options: JsValue,
    ) -> js_sys::Promise {
        let clip = self.loaded();
        let head = Rc::clone(&head.file);
        let segmenter = sam2.segmenter();
        wasm_bindgen_futures::future_to_promise(async move {
            let parsed: HeadOptions = parse_options(&options)?;
            let source = MaskSource::Sam2Automatic(MaskChoice::Largest);
            let explain = parsed.explain.as_ref();
            classify_with_head(&clip, &head, image, source, Some(&segmenter), explain)
                .await
                .map_err(JsValue::from)
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HeadOptions {
    #[serde(rename = "box")]
    region: Option<[usize; 4]>,
    explain: Option<ExplainOptions>,
}

async fn classify_with_head(
    clip: &LoadedClip,
    head: &HeadFile,
    image: Vec<u8>,
    source: MaskSource,
    segmenter: Option<&Segmenter>,
    explain: Option<&ExplainOptions>,
) -> Result<JsValue, JsError> {
    let head = HeadModel::new(head, &clip.model.device());
    let mut pipeline = head.pipeline(clip).map_err(js_error)?;
    if let Some(segmenter) = segmenter {
        pipeline = pipeline.with_segmenter(segmenter);
    }
    pipeline
        .encoder
        .require_region(!source.is_none(), "give a region (mask or box)")
        .map_err(js_error)?;
    let pixels = decoded(&image)?;
    answer(&pipeline, &pixels, &source, explain).await
}
