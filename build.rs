//! One cfg for the page's threaded CPU module: `wasm_threads`, set when the crate is compiled for
//! wasm32 with the `atomics` target feature (scripts/build-threads.sh). That module has no WebGPU
//! (with atomics wgpu's types are not `Send`, which cubecl's server requires), so the device code
//! that talks to wgpu is left out of it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(wasm_threads)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if arch == "wasm32" && features.split(',').any(|feature| feature == "atomics") {
        println!("cargo::rustc-cfg=wasm_threads");
    }
}
