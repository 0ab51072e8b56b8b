//! Browser tests, run by `wasm-pack test --headless --chrome` in headless Chromium with WebGPU
//! enabled (`webdriver.json`). One test binary on purpose: each wasm test binary is a full
//! release link of burn, minutes of CI on two cores.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "../common/mod.rs"]
mod common;

mod bad_inputs;
mod clip;
mod explain;
mod foundation;
mod heads;
mod sam2;
