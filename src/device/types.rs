//! What a device request, an adapter and the chosen device are, and how choosing fails.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
#[cfg(not(wasm_threads))]
use burn::tensor::wgpu::{WgpuBackend, wgpu};
use serde::{Deserialize, Serialize};

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
    #[cfg(not(wasm_threads))]
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
    pub(super) fn hardware_rank(self) -> Option<u8> {
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
    #[cfg(not(wasm_threads))]
    pub(super) fn from_adapter(adapter: &wgpu::Adapter) -> Self {
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
#[cfg(not(wasm_threads))]
fn join_present(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(not(wasm_threads))]
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

#[cfg(not(wasm_threads))]
pub(super) fn graphics_api(backend: &str) -> Option<WgpuBackend> {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An adapter for the device tests: the limits of a small discrete GPU.
    pub(crate) fn adapter(name: &str, backend: &str, adapter_type: AdapterType) -> AdapterSummary {
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
}
