//! The one place that chooses the compute device, natively and in the browser.
//!
//! The rule, and why:
//! - Browser: WebGPU whenever `navigator.gpu` hands out a hardware adapter, else burn's CPU
//!   backend (flex). The browser decides which adapter; we report what it gave us. A software one
//!   (the browser's fallback adapter: SwiftShader, WARP) is used only when the GPU is asked for:
//!   in headless Chromium one classification took 13.4 s on SwiftShader, 0.1 s on flex.
//! - Native: wgpu on the best *hardware* GPU adapter (discrete, then integrated, then virtual)
//!   only where `medfocus devices --prove` showed on this machine, for this driver and build,
//!   that it computes CLIP's image tower like flex and faster ([`proof`]); else flex, saying why
//!   and how to prove the GPU. A software Vulkan adapter (lavapipe, SwiftShader) is never picked
//!   silently: on a 2-core GPU-less machine lavapipe took about 23× as long as flex for a
//!   512×512 matmul (`cargo bench --bench device_matmul`). `--device gpu` uses the GPU whatever
//!   its proof says (a software one with a warning).
//!
//! The decision ([`plan`]) is a pure function of the request and the adapter list so that it can
//! be tested without hardware; [`choose_device`] does the I/O around it.
//!
//! The parts: [`types`] (requests, adapters, the report), [`plan`] (the decision), [`proof`]
//! (what this machine measured: the proofs `auto` needs natively), [`open`]
//! (the I/O), `browser` (what `navigator.gpu` says that wgpu does not pass on), [`readback`]
//! (a tensor's values back on the host, awaited, as every device allows).

#[cfg(target_arch = "wasm32")]
pub mod browser;
pub mod lost;
pub mod open;
pub mod plan;
pub mod proof;
pub mod readback;
pub mod types;

#[cfg(target_arch = "wasm32")]
pub use browser::has_navigator_gpu;
#[cfg(not(target_arch = "wasm32"))]
pub use open::choose_device_blocking;
pub use open::{choose_device, cpu_device, list_adapters};
pub use plan::{AdapterChoice, Plan, plan};
pub use proof::{DeviceProof, ProofBook, ProofError, Verdict};
pub use readback::{ReadbackError, read_floats};
pub use types::{
    AdapterLimits, AdapterSummary, AdapterType, ChosenDevice, ComputeKind, DeviceError,
    DeviceReport, DeviceRequest, Platform,
};
