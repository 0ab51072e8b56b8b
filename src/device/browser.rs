//! What the browser says about WebGPU that wgpu does not pass on: whether `navigator.gpu`
//! exists (in a window or a worker) and the adapter's vendor and architecture.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

fn navigator_gpu() -> Option<JsValue> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok()?;
    (!gpu.is_undefined() && !gpu.is_null()).then_some(gpu)
}

/// Whether this browser exposes WebGPU at all.
pub fn has_navigator_gpu() -> bool {
    navigator_gpu().is_some()
}

/// Vendor, architecture and description of the adapter `navigator.gpu` would give, which wgpu
/// does not pass on.
pub async fn adapter_identity() -> Option<String> {
    let gpu = navigator_gpu()?;
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let promise: Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(promise).await.ok()?;
    let info = Reflect::get(&adapter, &"info".into()).ok()?;
    let parts: Vec<String> = ["vendor", "architecture", "device", "description"]
        .iter()
        .filter_map(|key| Reflect::get(&info, &(*key).into()).ok()?.as_string())
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
