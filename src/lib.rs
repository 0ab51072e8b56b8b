//! MedFocus: few-shot medical image classification where a segmentation mask steers CLIP,
//! running natively (wgpu or CPU) and in the browser (WebGPU or CPU), images never uploaded.
//!
//! Module map: `docs/ARCHITECTURE.md`.

#[cfg(not(target_arch = "wasm32"))]
pub mod allocator;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod cache_paths;
pub mod clip;
pub mod compute_check;
#[cfg(not(target_arch = "wasm32"))]
pub mod dataset;
pub mod device;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod explain;
#[cfg(not(target_arch = "wasm32"))]
pub mod fetch;
pub mod focus;
pub mod heads;
pub mod imaging;
pub mod kernels;
pub mod limits;
pub mod npy;
pub mod pipeline;
pub mod sam2;
#[cfg(not(target_arch = "wasm32"))]
pub mod site_models;
#[cfg(target_arch = "wasm32")]
pub mod web;
pub mod weights;
