//! The wasm boundary: conversions between JS values and the library, and async plumbing.
//! No model logic lives here. Every export returns `Result<_, JsError>`, so an error the library
//! reports reaches the page as an exception; a panic inside the library still aborts the whole
//! module (the panic hook only logs it), which is why sizes a user controls are bounded before
//! they reach it (issue 16 finishes that).

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

pub mod clip;
pub mod convert;
pub mod files;
pub mod heads;
pub mod memory;
pub mod sam2;

use crate::clip::preprocess::Pixels8;
use crate::compute_check;
use crate::device::{self, ChosenDevice, DeviceRequest};
use crate::imaging::{self, DecodedImage};

thread_local! {
    /// The device the page chose; wasm is single-threaded, so one per page.
    static CHOSEN: RefCell<Option<ChosenDevice>> = const { RefCell::new(None) };
    /// The last image decoded for a model (its file bytes and pixels): the page asks for a
    /// view, a segmentation and several classifications of one image, decoded once.
    static LAST_DECODED: RefCell<Option<(Vec<u8>, Rc<Pixels8>)>> = const { RefCell::new(None) };
}

/// `bytes` decoded to the pixels every model reads; the same file as last time is not decoded
/// again.
pub(crate) fn decoded(bytes: &[u8]) -> Result<Rc<Pixels8>, JsError> {
    if let Some(pixels) = LAST_DECODED.with(|cell| {
        cell.borrow()
            .as_ref()
            .filter(|(last, _)| last.as_slice() == bytes)
            .map(|(_, pixels)| Rc::clone(pixels))
    }) {
        return Ok(pixels);
    }
    let pixels = Rc::new(crate::pipeline::decode(bytes).map_err(js_error)?);
    LAST_DECODED.with(|cell| *cell.borrow_mut() = Some((bytes.to_vec(), Rc::clone(&pixels))));
    Ok(pixels)
}

/// 8-bit grey or RGB pixels as RGBA8 for a canvas.
pub(crate) fn rgba(pixels: &Pixels8) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.width * pixels.height * 4);
    match pixels.channels {
        1 => pixels
            .data
            .iter()
            .for_each(|&v| out.extend_from_slice(&[v, v, v, 255])),
        _ => pixels
            .data
            .chunks_exact(pixels.channels)
            .for_each(|p| out.extend_from_slice(&[p[0], p[1], p[2], 255])),
    }
    out
}

/// The threaded CPU module's `initThreadPool(threads)`: its rayon pool as Web Workers, which the
/// engine awaits right after loading the module (www/worker/wasm.js).
#[cfg(wasm_threads)]
pub use wasm_bindgen_rayon::init_thread_pool;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(error: impl std::fmt::Display) -> JsError {
    JsError::new(&error.to_string())
}

fn to_js(value: &impl serde::Serialize) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(js_error)
}

/// An options object (absent: the defaults).
fn parse_options<T: serde::de::DeserializeOwned + Default>(
    options: &JsValue,
) -> Result<T, JsError> {
    if options.is_undefined() || options.is_null() {
        Ok(T::default())
    } else {
        serde_wasm_bindgen::from_value(options.clone()).map_err(js_error)
    }
}

/// Chooses the compute device (`"auto"`, `"cpu"` or `"gpu"`; default auto) and returns its
/// report: `{request, kind, backend, adapter, reason, warnings}`.
#[wasm_bindgen(js_name = initDevice)]
pub async fn init_device(request: Option<String>) -> Result<JsValue, JsError> {
    let request = match request {
        Some(text) => text.parse::<DeviceRequest>().map_err(js_error)?,
        None => DeviceRequest::Auto,
    };
    let chosen = device::choose_device(request).await.map_err(js_error)?;
    let report = to_js(&chosen.report)?;
    CHOSEN.with(|cell| *cell.borrow_mut() = Some(chosen));
    Ok(report)
}

/// Why the GPU device was lost (a driver reset, the browser reclaiming the GPU), or nothing: the
/// worker asks after a failed request, and a lost device means a fresh engine, not a bad input.
#[wasm_bindgen(js_name = deviceLost)]
pub fn device_lost() -> Option<String> {
    device::lost::lost()
}

/// Destroys the GPU device as a driver reset would: for the page's end-to-end test of what
/// follows (the loss noticed, the engine restarted on a new device, the models reloaded).
#[wasm_bindgen(js_name = loseDeviceForTest)]
pub fn lose_device_for_test() {
    device::lost::destroy_for_test();
}

/// The device chosen by `initDevice`, or a clear error when it has not run.
pub fn chosen_device() -> Result<ChosenDevice, JsError> {
    CHOSEN
        .with(|cell| cell.borrow().clone())
        .ok_or_else(|| JsError::new("no device yet: call initDevice() first"))
}

/// Runs the compute check of `size`×`size` on the chosen device and compares it with the
/// plain-Rust reference: `{size, backend, maxAbsDiff}`.
#[wasm_bindgen(js_name = checkDevice)]
pub async fn check_device(size: usize) -> Result<JsValue, JsError> {
    if !(1..=1024).contains(&size) {
        return Err(JsError::new("size must be between 1 and 1024"));
    }
    let chosen = chosen_device()?;
    let output = compute_check::run_check(&chosen.device, size)
        .await
        .map_err(js_error)?;
    let max_abs_diff = output.max_abs_diff(&compute_check::reference(size));
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CheckSummary {
        size: usize,
        backend: String,
        max_abs_diff: f32,
    }
    to_js(&CheckSummary {
        size,
        backend: chosen.report.backend,
        max_abs_diff,
    })
}

/// An image decoded inside wasm: its facts, and RGBA pixels for a canvas.
#[wasm_bindgen]
pub struct WebImage {
    image: DecodedImage,
}

#[wasm_bindgen]
impl WebImage {
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> u32 {
        self.image.width
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> u32 {
        self.image.height
    }

    #[wasm_bindgen(getter)]
    pub fn channels(&self) -> u8 {
        self.image.color.channels
    }

    #[wasm_bindgen(getter, js_name = bitsPerChannel)]
    pub fn bits_per_channel(&self) -> u8 {
        self.image.color.bits_per_channel
    }

    #[wasm_bindgen(getter)]
    pub fn format(&self) -> String {
        self.image.format.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn layout(&self) -> String {
        self.image.color.layout.clone()
    }

    /// What the decoder chose (DICOM: the window, the frame of a multi-frame file).
    #[wasm_bindgen(getter)]
    pub fn notes(&self) -> Vec<String> {
        self.image.notes.clone()
    }

    #[wasm_bindgen(getter, js_name = greyContent)]
    pub fn grey_content(&self) -> bool {
        self.image.grayscale_content
    }

    #[wasm_bindgen(getter)]
    pub fn summary(&self) -> String {
        self.image.summary()
    }

    /// RGBA8 pixels, row-major, ready for `new ImageData(...)`.
    pub fn rgba(&self) -> Vec<u8> {
        self.image.to_rgba8()
    }
}

/// Decodes image file bytes inside wasm; a corrupt or unsupported file is a `JsError`.
#[wasm_bindgen(js_name = decodeImage)]
pub fn decode_image(bytes: &[u8]) -> Result<WebImage, JsError> {
    imaging::decode_image(bytes)
        .map(|image| WebImage { image })
        .map_err(js_error)
}
