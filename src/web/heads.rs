//! Trained heads across the wasm boundary: read a `.mfh` file the user picked and describe it;
//! `WebClip.classifyWithHead` (in `clip.rs`) predicts with it. Conversions only.

use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::{js_error, to_js};
use crate::heads::HeadFile;

/// A head file, held by the page.
#[wasm_bindgen]
pub struct WebHead {
    pub(super) file: Rc<HeadFile>,
}

/// Reads a head file's bytes (from `medfocus train`); a damaged or foreign file is an error.
#[wasm_bindgen(js_name = loadHead)]
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
