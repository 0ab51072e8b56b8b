//! The I/O around [`super::plan`]: listing adapters, opening a GPU runtime once per process, the
//! CPU backend otherwise.

#[cfg(not(wasm_threads))]
use std::sync::Mutex;

use burn::tensor::Device;
#[cfg(not(wasm_threads))]
use burn::tensor::DeviceKind;
#[cfg(not(wasm_threads))]
use burn::tensor::wgpu::{WgpuBackend, WgpuInitError, wgpu};

#[cfg(all(target_arch = "wasm32", not(wasm_threads)))]
use super::browser;
#[cfg(not(wasm_threads))]
use super::plan::{AdapterChoice, device_kind};
use super::plan::{Plan, plan};
use super::proof::{ProofBook, proofs_path};
use super::types::{
    AdapterSummary, ChosenDevice, ComputeKind, DeviceError, DeviceReport, DeviceRequest, Platform,
};
#[cfg(not(wasm_threads))]
use super::types::{AdapterType, graphics_api};

/// Lists the GPU adapters wgpu can open here, in the order burn indexes them.
pub async fn list_adapters() -> Vec<AdapterSummary> {
    // The threaded CPU module has no WebGPU (see build.rs).
    #[cfg(wasm_threads)]
    {
        Vec::new()
    }
    #[cfg(all(target_arch = "wasm32", not(wasm_threads)))]
    {
        web_adapter().await.into_iter().collect()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        instance
            .enumerate_adapters(backends)
            .await
            .iter()
            .map(AdapterSummary::from_adapter)
            .collect()
    }
}

#[cfg(all(target_arch = "wasm32", not(wasm_threads)))]
async fn web_adapter() -> Option<AdapterSummary> {
    if !browser::has_navigator_gpu() {
        return None;
    }
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::BROWSER_WEBGPU,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .ok()?;
    let mut summary = AdapterSummary::from_adapter(&adapter);
    // wgpu passes on only the (often empty) description; vendor and architecture say more.
    if let Some(identity) = browser::adapter_identity().await {
        summary.name = identity;
    }
    Some(summary)
}

/// A GPU runtime opened in this process. burn registers a runtime once per adapter and API and
/// refuses a second initialisation, so later requests reuse the first.
#[cfg(not(wasm_threads))]
#[derive(Clone)]
struct OpenedGpu {
    kind: DeviceKind,
    api: WgpuBackend,
    device: Device,
    adapter: AdapterSummary,
}

#[cfg(not(wasm_threads))]
static OPENED: Mutex<Vec<OpenedGpu>> = Mutex::new(Vec::new());

#[cfg(not(wasm_threads))]
fn find_opened(opened: &[OpenedGpu], kind: &DeviceKind, api: WgpuBackend) -> Option<OpenedGpu> {
    opened
        .iter()
        .find(|gpu| gpu.kind == *kind && gpu.api == api)
        .cloned()
}

/// Opens (or reuses) the runtime for `choice` and returns it with the adapter it really got.
#[cfg(not(wasm_threads))]
async fn open_gpu(choice: &AdapterChoice) -> Result<OpenedGpu, DeviceError> {
    let kind = device_kind(choice, Platform::current());
    let api = graphics_api(&choice.adapter.backend).ok_or_else(|| DeviceError::GpuInit {
        adapter: choice.adapter.name.clone(),
        message: format!(
            "the {} API is not supported by MedFocus",
            choice.adapter.backend
        ),
    })?;
    let init_error = |error: WgpuInitError| DeviceError::GpuInit {
        adapter: choice.adapter.name.clone(),
        message: error.to_string(),
    };
    let options = || {
        Device::wgpu_options()
            .device_kind(kind.clone())
            .graphics_api(api)
    };
    let opened = |device: Device, adapter: &wgpu::Adapter| {
        // Describe the adapter the runtime actually opened. In a browser keep the listed name: it
        // carries the vendor and architecture that wgpu drops.
        let mut summary = AdapterSummary::from_adapter(adapter);
        if Platform::current() == Platform::Browser {
            summary.name = choice.adapter.name.clone();
        }
        OpenedGpu {
            kind: kind.clone(),
            api,
            device,
            adapter: summary,
        }
    };

    #[cfg(not(target_arch = "wasm32"))]
    {
        // Natively several threads may ask at once: check and open under one lock.
        let mut all = OPENED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(gpu) = find_opened(&all, &kind, api) {
            return Ok(gpu);
        }
        let (device, setup) = options().init_with_setup().map_err(init_error)?;
        let gpu = opened(device, &setup.adapter);
        super::lost::watch(&setup.device, &gpu.adapter.name);
        all.push(gpu.clone());
        Ok(gpu)
    }
    #[cfg(target_arch = "wasm32")]
    {
        // One thread, and no guard may be held across the await.
        let known = OPENED
            .lock()
            .ok()
            .and_then(|all| find_opened(&all, &kind, api));
        if let Some(gpu) = known {
            return Ok(gpu);
        }
        let (device, setup) = options()
            .init_with_setup_async()
            .await
            .map_err(init_error)?;
        let gpu = opened(device, &setup.adapter);
        super::lost::watch(&setup.device, &gpu.adapter.name);
        if let Ok(mut all) = OPENED.lock() {
            all.push(gpu.clone());
        }
        Ok(gpu)
    }
}

/// Choose and open the device for `request`.
pub async fn choose_device(request: DeviceRequest) -> Result<ChosenDevice, DeviceError> {
    let adapters = match request {
        DeviceRequest::Cpu => Vec::new(),
        _ => list_adapters().await,
    };
    let (proofs, proof_warning) = machine_proofs(request);
    let mut chosen = match plan(request, Platform::current(), &adapters, &proofs)? {
        Plan::Cpu { reason } => cpu_device(request, reason),
        Plan::Gpu {
            choice,
            reason,
            warnings,
        } => {
            // The threaded CPU module lists no adapter, so no plan takes a GPU there.
            #[cfg(wasm_threads)]
            {
                let _ = (choice, reason, warnings);
                return Err(DeviceError::NoGpuAdapter(
                    " (the page's threaded CPU module has no WebGPU)".into(),
                ));
            }
            #[cfg(not(wasm_threads))]
            let gpu = open_gpu(&choice).await?;
            #[cfg(not(wasm_threads))]
            ChosenDevice {
                device: gpu.device,
                report: DeviceReport {
                    request,
                    kind: match gpu.adapter.adapter_type {
                        AdapterType::Cpu => ComputeKind::SoftwareGpu,
                        _ => ComputeKind::Gpu,
                    },
                    backend: gpu.adapter.backend.clone(),
                    adapter: Some(gpu.adapter),
                    reason,
                    warnings,
                },
            }
        }
    };
    chosen.report.warnings.extend(proof_warning);
    Ok(chosen)
}

/// The proofs `auto` weighs natively (none in the browser, and none needed for an explicit
/// request). An unreadable proof file is not fatal: the device is chosen as if it were empty,
/// and the report says so.
fn machine_proofs(request: DeviceRequest) -> (ProofBook, Option<String>) {
    if cfg!(target_arch = "wasm32") || request != DeviceRequest::Auto {
        return (ProofBook::default(), None);
    }
    match ProofBook::load(&proofs_path()) {
        Ok(proofs) => (proofs, None),
        Err(error) => (
            ProofBook::default(),
            Some(format!("{error}; proving the GPU again rewrites it")),
        ),
    }
}

/// burn's CPU backend, with a report saying why it was chosen.
pub fn cpu_device(request: DeviceRequest, reason: String) -> ChosenDevice {
    ChosenDevice {
        device: Device::flex(),
        report: DeviceReport {
            request,
            kind: ComputeKind::Cpu,
            backend: "flex".into(),
            adapter: None,
            reason,
            warnings: Vec::new(),
        },
    }
}

/// Native convenience: [`choose_device`] on the current thread.
#[cfg(not(target_arch = "wasm32"))]
pub fn choose_device_blocking(request: DeviceRequest) -> Result<ChosenDevice, DeviceError> {
    pollster::block_on(choose_device(request))
}
