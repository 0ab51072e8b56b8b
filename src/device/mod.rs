//! The one place that chooses the compute device, natively and in the browser.
//!
//! The rule, and why:
//! - Browser: WebGPU whenever `navigator.gpu` hands out an adapter, else burn's CPU backend
//!   (flex). The browser decides which adapter; we report what it gave us.
//! - Native: wgpu on a *hardware* GPU adapter (discrete, then integrated, then virtual), else
//!   flex. A software Vulkan adapter (lavapipe, SwiftShader) is never picked silently: on a
//!   2-core GPU-less machine lavapipe took about 23× as long as flex for a 512×512 matmul
//!   (`cargo bench --bench device_matmul`). `--device gpu` still forces it, with a warning.
//!
//! The decision ([`plan`]) is a pure function of the request and the adapter list so that it can
//! be tested without hardware; [`choose_device`] does the I/O around it.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use burn::tensor::wgpu::{WgpuBackend, WgpuInitError, wgpu};
use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(target_arch = "wasm32")]
pub use browser::has_navigator_gpu;

/// What the user asked for (`--device`, or the page's device selector).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRequest {
    /// A GPU if there is a real one, else the CPU backend.
    #[default]
    Auto,
    /// burn's CPU backend (flex), whatever GPUs exist.
    Cpu,
    /// A wgpu/WebGPU adapter, even a software one; an error if there is none.
    Gpu,
}

impl FromStr for DeviceRequest {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" | "flex" => Ok(Self::Cpu),
            "gpu" | "wgpu" | "webgpu" => Ok(Self::Gpu),
            _ => Err(DeviceError::UnknownRequest(text.to_string())),
        }
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        })
    }
}

/// Where the code runs: the rule differs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Native,
    Browser,
}

impl Platform {
    pub const fn current() -> Self {
        if cfg!(target_arch = "wasm32") {
            Self::Browser
        } else {
            Self::Native
        }
    }
}

/// The kind of adapter, as the graphics API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdapterType {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    /// A software rasterizer exposed as a GPU (lavapipe, SwiftShader, WARP).
    Cpu,
    /// Unknown; browsers report this for every adapter.
    Other,
}

impl AdapterType {
    fn from_wgpu(kind: wgpu::DeviceType) -> Self {
        match kind {
            wgpu::DeviceType::DiscreteGpu => Self::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => Self::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu => Self::VirtualGpu,
            wgpu::DeviceType::Cpu => Self::Cpu,
            wgpu::DeviceType::Other => Self::Other,
        }
    }

    /// Preference among hardware adapters; `None` for adapters Auto never picks natively.
    fn hardware_rank(self) -> Option<u8> {
        match self {
            Self::DiscreteGpu => Some(0),
            Self::IntegratedGpu => Some(1),
            Self::VirtualGpu => Some(2),
            Self::Cpu | Self::Other => None,
        }
    }
}

/// The adapter limits that decide what models fit and how fast they run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterLimits {
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_size_x: u32,
    /// `shader-f16`: half-precision kernels are possible.
    pub shader_f16: bool,
}

/// One adapter as wgpu sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterSummary {
    pub name: String,
    /// Graphics API: `Vulkan`, `Metal`, `Dx12`, `WebGPU`, …
    pub backend: String,
    pub adapter_type: AdapterType,
    pub driver: String,
    pub limits: AdapterLimits,
}

impl AdapterSummary {
    fn from_adapter(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let limits = adapter.limits();
        // Browsers often leave the name empty; the PCI vendor id is better than nothing.
        let name = match (info.name.is_empty(), info.vendor) {
            (false, _) => info.name.clone(),
            (true, 0) => "(unnamed adapter)".into(),
            (true, vendor) => format!("vendor {vendor:#06x}"),
        };
        Self {
            name,
            backend: backend_name(info.backend).to_string(),
            adapter_type: AdapterType::from_wgpu(info.device_type),
            driver: join_present(&[info.driver.as_str(), info.driver_info.as_str()]),
            limits: AdapterLimits {
                max_buffer_size: limits.max_buffer_size,
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
                max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
                max_compute_workgroup_size_x: limits.max_compute_workgroup_size_x,
                shader_f16: adapter.features().contains(wgpu::Features::SHADER_F16),
            },
        }
    }
}

/// The non-empty parts, space-separated.
fn join_present(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn backend_name(backend: wgpu::Backend) -> &'static str {
    match backend {
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "Dx12",
        wgpu::Backend::Gl => "Gl",
        wgpu::Backend::BrowserWebGpu => "WebGPU",
        wgpu::Backend::Noop => "Noop",
    }
}

fn graphics_api(backend: &str) -> Option<WgpuBackend> {
    match backend {
        "Vulkan" => Some(WgpuBackend::Vulkan),
        "Metal" => Some(WgpuBackend::Metal),
        "Dx12" => Some(WgpuBackend::Dx12),
        "WebGPU" => Some(WgpuBackend::WebGpu),
        _ => None,
    }
}

/// What the chosen device computes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComputeKind {
    /// A hardware GPU through wgpu/WebGPU.
    Gpu,
    /// A wgpu/WebGPU adapter that is (or may be) a software rasterizer.
    SoftwareGpu,
    /// burn's CPU backend (flex).
    Cpu,
}

/// What was chosen and why; shown to the user by the CLI and the page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    pub request: DeviceRequest,
    pub kind: ComputeKind,
    /// `flex` for the CPU backend, else the graphics API (`Vulkan`, `WebGPU`, …).
    pub backend: String,
    pub adapter: Option<AdapterSummary>,
    pub reason: String,
    pub warnings: Vec<String>,
}

impl DeviceReport {
    /// One line: what computes (for headers of other commands' output).
    pub fn summary(&self) -> String {
        match &self.adapter {
            Some(adapter) => format!("{} on {} ({:?})", adapter.name, self.backend, self.kind),
            None => format!("CPU backend ({})", self.backend),
        }
    }
}

impl fmt::Display for DeviceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.adapter {
            Some(adapter) => {
                writeln!(
                    f,
                    "device: {} on {} ({:?}, {:?})",
                    adapter.name, self.backend, self.kind, adapter.adapter_type
                )?;
                if !adapter.driver.is_empty() {
                    writeln!(f, "driver: {}", adapter.driver)?;
                }
                let limits = &adapter.limits;
                writeln!(
                    f,
                    "limits: max buffer {} MiB, max storage binding {} MiB, workgroup storage {} KiB, \
                     {} invocations/workgroup, shader-f16 {}",
                    limits.max_buffer_size >> 20,
                    limits.max_storage_buffer_binding_size >> 20,
                    limits.max_compute_workgroup_storage_size >> 10,
                    limits.max_compute_invocations_per_workgroup,
                    if limits.shader_f16 { "yes" } else { "no" },
                )?;
            }
            None => writeln!(f, "device: CPU backend ({})", self.backend)?,
        }
        writeln!(f, "why: {}", self.reason)?;
        for warning in &self.warnings {
            writeln!(f, "warning: {warning}")?;
        }
        Ok(())
    }
}

/// A device ready for tensors, with the report of how it was chosen.
#[derive(Clone, Debug)]
pub struct ChosenDevice {
    pub device: Device,
    pub report: DeviceReport,
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device '{0}': expected auto, cpu or gpu")]
    UnknownRequest(String),
    #[error("a GPU was requested but no wgpu/WebGPU adapter is available{0}")]
    NoGpuAdapter(String),
    #[error("the GPU adapter '{adapter}' could not be initialised: {message}")]
    GpuInit { adapter: String, message: String },
}

/// Which adapter to open: its position among adapters of the same API and type, which is how
/// burn/cubecl address adapters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterChoice {
    pub adapter: AdapterSummary,
    /// Index among the listed adapters with the same backend and type.
    pub index_within_type: usize,
}

/// The decision, before any device is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Gpu {
        choice: AdapterChoice,
        reason: String,
        warnings: Vec<String>,
    },
    Cpu {
        reason: String,
    },
}

/// Decide which device to use. `adapters` are in enumeration order (the order burn indexes them).
pub fn plan(
    request: DeviceRequest,
    platform: Platform,
    adapters: &[AdapterSummary],
) -> Result<Plan, DeviceError> {
    let choose = |position: usize| {
        let adapter = &adapters[position];
        AdapterChoice {
            adapter: adapter.clone(),
            index_within_type: adapters[..position]
                .iter()
                .filter(|earlier| {
                    earlier.backend == adapter.backend
                        && earlier.adapter_type == adapter.adapter_type
                })
                .count(),
        }
    };
    let best_hardware = adapters
        .iter()
        .enumerate()
        .filter_map(|(position, adapter)| Some((adapter.adapter_type.hardware_rank()?, position)))
        .min()
        .map(|(_, position)| position);
    let software_names = || {
        adapters
            .iter()
            .map(|adapter| format!("{} ({})", adapter.name, adapter.backend))
            .collect::<Vec<_>>()
            .join(", ")
    };

    match (request, platform) {
        (DeviceRequest::Cpu, _) => Ok(Plan::Cpu {
            reason: "the CPU backend was requested".into(),
        }),
        (DeviceRequest::Auto | DeviceRequest::Gpu, Platform::Browser) => match adapters.first() {
            Some(adapter) => Ok(Plan::Gpu {
                choice: choose(0),
                reason: format!("navigator.gpu gave the adapter '{}'", adapter.name),
                warnings: Vec::new(),
            }),
            None if request == DeviceRequest::Auto => Ok(Plan::Cpu {
                reason: "this browser offers no WebGPU adapter".into(),
            }),
            None => Err(DeviceError::NoGpuAdapter(
                " (this browser offers no WebGPU adapter)".into(),
            )),
        },
        (_, Platform::Native) => match (best_hardware, request) {
            (Some(position), _) => Ok(Plan::Gpu {
                choice: choose(position),
                reason: format!(
                    "'{}' is a hardware GPU ({:?})",
                    adapters[position].name, adapters[position].adapter_type
                ),
                warnings: Vec::new(),
            }),
            (None, DeviceRequest::Auto) if adapters.is_empty() => Ok(Plan::Cpu {
                reason: "no GPU adapter was found".into(),
            }),
            (None, DeviceRequest::Auto) => Ok(Plan::Cpu {
                reason: format!(
                    "only software GPU adapters were found ({}), which are far slower than the \
                     CPU backend; pass --device gpu to use one anyway",
                    software_names()
                ),
            }),
            (None, _) => match adapters.first() {
                Some(adapter) => Ok(Plan::Gpu {
                    choice: choose(0),
                    reason: "a GPU was requested and this is the only kind of adapter found".into(),
                    warnings: vec![format!(
                        "'{}' is a software adapter ({:?}): expect it to be much slower than --device cpu",
                        adapter.name, adapter.adapter_type
                    )],
                }),
                None => Err(DeviceError::NoGpuAdapter(String::new())),
            },
        },
    }
}

fn device_kind(choice: &AdapterChoice, platform: Platform) -> DeviceKind {
    if platform == Platform::Browser {
        // Browsers do not index adapters; the runtime asks for the high-performance one.
        return DeviceKind::DefaultDevice;
    }
    let index = choice.index_within_type;
    match choice.adapter.adapter_type {
        AdapterType::DiscreteGpu => DeviceKind::DiscreteGpu(index),
        AdapterType::IntegratedGpu => DeviceKind::IntegratedGpu(index),
        AdapterType::VirtualGpu => DeviceKind::VirtualGpu(index),
        AdapterType::Cpu => DeviceKind::Cpu,
        AdapterType::Other => DeviceKind::DefaultDevice,
    }
}

/// Lists the GPU adapters wgpu can open here, in the order burn indexes them.
pub async fn list_adapters() -> Vec<AdapterSummary> {
    #[cfg(target_arch = "wasm32")]
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

#[cfg(target_arch = "wasm32")]
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
#[derive(Clone)]
struct OpenedGpu {
    kind: DeviceKind,
    api: WgpuBackend,
    device: Device,
    adapter: AdapterSummary,
}

static OPENED: Mutex<Vec<OpenedGpu>> = Mutex::new(Vec::new());

fn find_opened(opened: &[OpenedGpu], kind: &DeviceKind, api: WgpuBackend) -> Option<OpenedGpu> {
    opened
        .iter()
        .find(|gpu| gpu.kind == *kind && gpu.api == api)
        .cloned()
}

/// Opens (or reuses) the runtime for `choice` and returns it with the adapter it really got.
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
    match plan(request, Platform::current(), &adapters)? {
        Plan::Cpu { reason } => Ok(cpu_device(request, reason)),
        Plan::Gpu {
            choice,
            reason,
            warnings,
        } => {
            let gpu = open_gpu(&choice).await?;
            Ok(ChosenDevice {
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
            })
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, backend: &str, adapter_type: AdapterType) -> AdapterSummary {
        AdapterSummary {
            name: name.into(),
            backend: backend.into(),
            adapter_type,
            driver: String::new(),
            limits: AdapterLimits {
                max_buffer_size: 1 << 30,
                max_storage_buffer_binding_size: 1 << 27,
                max_compute_workgroup_storage_size: 16384,
                max_compute_invocations_per_workgroup: 256,
                max_compute_workgroup_size_x: 256,
                shader_f16: false,
            },
        }
    }

    fn lavapipe() -> AdapterSummary {
        adapter(
            "llvmpipe (LLVM 15.0.6, 256 bits)",
            "Vulkan",
            AdapterType::Cpu,
        )
    }

    #[test]
    fn requests_parse_and_reject_nonsense() {
        assert_eq!(
            "AUTO".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Auto
        );
        assert_eq!("cpu".parse::<DeviceRequest>().unwrap(), DeviceRequest::Cpu);
        assert_eq!(
            " wgpu ".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Gpu
        );
        let error = "tpu".parse::<DeviceRequest>().unwrap_err();
        assert!(error.to_string().contains("'tpu'"), "{error}");
    }

    #[test]
    fn auto_never_picks_a_software_adapter_natively() {
        let plan = plan(DeviceRequest::Auto, Platform::Native, &[lavapipe()]).unwrap();
        match plan {
            Plan::Cpu { reason } => assert!(reason.contains("llvmpipe"), "{reason}"),
            other => panic!("expected the CPU backend, got {other:?}"),
        }
        assert!(matches!(plan_auto_native(&[]), Plan::Cpu { .. }));
    }

    fn plan_auto_native(adapters: &[AdapterSummary]) -> Plan {
        plan(DeviceRequest::Auto, Platform::Native, adapters).unwrap()
    }

    #[test]
    fn auto_prefers_discrete_then_integrated_and_indexes_within_type() {
        let adapters = [
            lavapipe(),
            adapter("Intel UHD", "Vulkan", AdapterType::IntegratedGpu),
            adapter("RTX A", "Vulkan", AdapterType::DiscreteGpu),
            adapter("RTX B", "Vulkan", AdapterType::DiscreteGpu),
        ];
        let Plan::Gpu {
            choice, warnings, ..
        } = plan_auto_native(&adapters)
        else {
            panic!("expected a GPU");
        };
        assert_eq!(choice.adapter.name, "RTX A");
        assert_eq!(choice.index_within_type, 0);
        assert!(warnings.is_empty());
        assert_eq!(
            device_kind(&choice, Platform::Native),
            DeviceKind::DiscreteGpu(0)
        );

        let Plan::Gpu { choice, .. } = plan_auto_native(&adapters[..2]) else {
            panic!("expected a GPU");
        };
        assert_eq!(choice.adapter.name, "Intel UHD");
        assert_eq!(
            device_kind(&choice, Platform::Native),
            DeviceKind::IntegratedGpu(0)
        );
    }

    #[test]
    fn index_counts_only_the_same_backend_and_type() {
        let adapters = [
            adapter("GPU on Dx12", "Dx12", AdapterType::IntegratedGpu),
            adapter("GPU on Vulkan", "Vulkan", AdapterType::VirtualGpu),
            adapter("second virtual", "Vulkan", AdapterType::VirtualGpu),
        ];
        let Plan::Gpu { choice, .. } = plan_auto_native(&adapters) else {
            panic!()
        };
        assert_eq!(choice.adapter.name, "GPU on Dx12");
        let Plan::Gpu { choice, .. } = plan_auto_native(&adapters[1..]) else {
            panic!()
        };
        assert_eq!(choice.index_within_type, 0);
    }

    #[test]
    fn gpu_override_uses_a_software_adapter_with_a_warning() {
        let Plan::Gpu {
            choice, warnings, ..
        } = plan(DeviceRequest::Gpu, Platform::Native, &[lavapipe()]).unwrap()
        else {
            panic!("expected the software GPU");
        };
        assert_eq!(device_kind(&choice, Platform::Native), DeviceKind::Cpu);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("slower"), "{warnings:?}");
    }

    #[test]
    fn gpu_override_without_any_adapter_is_an_error() {
        for platform in [Platform::Native, Platform::Browser] {
            let error = plan(DeviceRequest::Gpu, platform, &[]).unwrap_err();
            assert!(matches!(error, DeviceError::NoGpuAdapter(_)), "{error}");
        }
    }

    #[test]
    fn cpu_override_ignores_gpus() {
        let adapters = [adapter("RTX", "Vulkan", AdapterType::DiscreteGpu)];
        for platform in [Platform::Native, Platform::Browser] {
            assert!(matches!(
                plan(DeviceRequest::Cpu, platform, &adapters).unwrap(),
                Plan::Cpu { .. }
            ));
        }
    }

    #[test]
    fn browser_uses_whatever_webgpu_adapter_it_is_given() {
        let swiftshader = adapter("SwiftShader", "WebGPU", AdapterType::Other);
        let Plan::Gpu { choice, .. } =
            plan(DeviceRequest::Auto, Platform::Browser, &[swiftshader]).unwrap()
        else {
            panic!("expected WebGPU");
        };
        assert_eq!(
            device_kind(&choice, Platform::Browser),
            DeviceKind::DefaultDevice
        );
        assert!(matches!(
            plan(DeviceRequest::Auto, Platform::Browser, &[]).unwrap(),
            Plan::Cpu { .. }
        ));
    }
}
