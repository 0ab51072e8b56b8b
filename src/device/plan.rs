//! The decision, a pure function of the request, the platform and the adapter list: testable
//! without hardware.

#[cfg(not(wasm_threads))]
use burn::tensor::DeviceKind;

use super::proof::{DeviceProof, ProofBook, Verdict};
use super::types::{AdapterSummary, AdapterType, DeviceError, DeviceRequest, Platform};

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

/// Decide which device to use. `adapters` are in enumeration order (the order burn indexes them);
/// `proofs` are what `medfocus devices --prove` measured on this machine (natively, `auto` takes
/// a hardware GPU only when its proof says correct and faster; the browser has none).
///
/// Not split: one match over the request, an arm per rule of the module's doc; apart, which rule
/// wins would be harder to see.
pub fn plan(
    request: DeviceRequest,
    platform: Platform,
    adapters: &[AdapterSummary],
    proofs: &ProofBook,
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
            // The browser marks a software renderer (SwiftShader, WARP) as a fallback adapter,
            // which wgpu reports as a CPU device type. In headless Chromium on a 2-core machine
            // one classification took 13.4 s on it against 0.1 s on the CPU backend.
            Some(adapter)
                if adapter.adapter_type == AdapterType::Cpu && request == DeviceRequest::Auto =>
            {
                Ok(Plan::Cpu {
                    reason: format!(
                        "this browser's only WebGPU adapter, '{}', is a software renderer: it \
                         runs the GPU's work on the processor, far slower than the CPU backend \
                         (choose the GPU to use it anyway)",
                        adapter.name
                    ),
                })
            }
            Some(adapter) if adapter.adapter_type == AdapterType::Cpu => Ok(Plan::Gpu {
                choice: choose(0),
                reason: format!(
                    "the GPU was requested and navigator.gpu gave the adapter '{}'",
                    adapter.name
                ),
                warnings: vec![format!(
                    "'{}' is a software renderer, not a graphics card: expect it to be much \
                     slower than the CPU backend",
                    adapter.name
                )],
            }),
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
            (Some(position), DeviceRequest::Gpu) => Ok(Plan::Gpu {
                choice: choose(position),
                reason: format!(
                    "the GPU was requested and '{}' is a hardware GPU ({:?})",
                    adapters[position].name, adapters[position].adapter_type
                ),
                warnings: Vec::new(),
            }),
            (Some(position), _) => Ok(auto_on_hardware(
                choose(position),
                proofs.for_adapter(&adapters[position]),
            )),
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

/// `auto` natively with a hardware GPU: the GPU only where this machine proved it correct and
/// faster for this build and driver.
fn auto_on_hardware(choice: AdapterChoice, proof: Option<&DeviceProof>) -> Plan {
    let name = choice.adapter.name.clone();
    match proof.map(|proof| (proof.verdict(), proof.describe())) {
        Some((Verdict::CorrectAndFaster, measured)) => Plan::Gpu {
            choice,
            reason: format!("'{name}' is proven correct and faster on this machine: {measured}"),
            warnings: Vec::new(),
        },
        Some((Verdict::Wrong, measured)) => Plan::Cpu {
            reason: format!(
                "the GPU '{name}' computed wrongly when it was checked ({measured}); \
                 --device gpu uses it anyway"
            ),
        },
        Some((Verdict::Slower, measured)) => Plan::Cpu {
            reason: format!(
                "the GPU '{name}' was slower than the CPU backend when it was checked \
                 ({measured}); --device gpu uses it anyway"
            ),
        },
        None => Plan::Cpu {
            reason: format!(
                "the GPU '{name}' ({:?}, driver '{}') is not yet proven on this machine with \
                 this build ({}): run `medfocus devices --prove --model CLIP_FOLDER` to compare \
                 it with the CPU backend (same results, more speed), after which auto uses it if \
                 it is both; --device gpu uses it now",
                choice.adapter.adapter_type,
                choice.adapter.driver,
                super::proof::build_label()
            ),
        },
    }
}

#[cfg(not(wasm_threads))]
pub(super) fn device_kind(choice: &AdapterChoice, platform: Platform) -> DeviceKind {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::types::tests::adapter;

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
        let plan = plan(
            DeviceRequest::Auto,
            Platform::Native,
            &[lavapipe()],
            &ProofBook::default(),
        )
        .unwrap();
        match plan {
            Plan::Cpu { reason } => assert!(reason.contains("llvmpipe"), "{reason}"),
            other => panic!("expected the CPU backend, got {other:?}"),
        }
        assert!(matches!(plan_auto_native(&[]), Plan::Cpu { .. }));
    }

    /// `auto` natively where every adapter listed is proven correct and faster.
    fn plan_auto_native(adapters: &[AdapterSummary]) -> Plan {
        let mut proofs = ProofBook::default();
        for adapter in adapters {
            proofs.record(proven(adapter, 1e-7, 5.0));
        }
        plan(DeviceRequest::Auto, Platform::Native, adapters, &proofs).unwrap()
    }

    fn proven(adapter: &AdapterSummary, max_abs_diff: f32, gpu_ms: f64) -> DeviceProof {
        crate::device::proof::tests::proof(adapter, max_abs_diff, gpu_ms)
    }

    /// Issue 35: natively, auto takes a hardware GPU only where a proof on this machine says it
    /// computes like the CPU backend and faster; otherwise it says why not and how to prove it.
    #[test]
    fn auto_needs_a_proof_of_correct_and_faster() {
        let rtx = adapter("RTX 4070", "Vulkan", AdapterType::DiscreteGpu);
        let with = |proof: Option<DeviceProof>| {
            let mut proofs = ProofBook::default();
            proofs.proofs.extend(proof);
            plan(
                DeviceRequest::Auto,
                Platform::Native,
                &[rtx.clone()],
                &proofs,
            )
            .unwrap()
        };
        match with(None) {
            Plan::Cpu { reason } => assert!(
                reason.contains("'RTX 4070'") && reason.contains("medfocus devices --prove"),
                "{reason}"
            ),
            other => panic!("an unproven GPU was chosen: {other:?}"),
        }
        match with(Some(proven(&rtx, 3e-2, 5.0))) {
            Plan::Cpu { reason } => assert!(
                reason.contains("wrongly") && reason.contains("3.0e-2"),
                "{reason}"
            ),
            other => panic!("a wrong GPU was chosen: {other:?}"),
        }
        match with(Some(proven(&rtx, 1e-7, 250.0))) {
            Plan::Cpu { reason } => assert!(
                reason.contains("slower") && reason.contains("250.0 ms against 200.0 ms"),
                "{reason}"
            ),
            other => panic!("a slower GPU was chosen: {other:?}"),
        }
        let mut other_driver = proven(&rtx, 1e-7, 5.0);
        other_driver.driver = "an older driver".into();
        assert!(matches!(with(Some(other_driver)), Plan::Cpu { .. }));
        match with(Some(proven(&rtx, 1e-7, 5.0))) {
            Plan::Gpu { reason, .. } => assert!(
                reason.contains("2026-12-06") && reason.contains("5.0 ms against 200.0 ms"),
                "{reason}"
            ),
            other => panic!("a proven GPU was passed over: {other:?}"),
        }
        // Asked for, the GPU is used whatever its proof says.
        let mut proofs = ProofBook::default();
        proofs.record(proven(&rtx, 3e-2, 250.0));
        assert!(matches!(
            plan(
                DeviceRequest::Gpu,
                Platform::Native,
                &[rtx.clone()],
                &proofs
            )
            .unwrap(),
            Plan::Gpu { .. }
        ));
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
        } = plan(
            DeviceRequest::Gpu,
            Platform::Native,
            &[lavapipe()],
            &ProofBook::default(),
        )
        .unwrap()
        else {
            panic!("expected the software GPU");
        };
        assert_eq!(device_kind(&choice, Platform::Native), DeviceKind::Cpu);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("slower"), "{warnings:?}");
    }

    /// Issue 33: a software WebGPU adapter (SwiftShader in headless Chromium) is never chosen
    /// for *auto*; asked for, it is used with a warning. A hardware one is chosen for *auto*.
    #[test]
    fn auto_in_the_browser_passes_over_a_software_adapter() {
        let swiftshader = adapter("google swiftshader", "BrowserWebGpu", AdapterType::Cpu);
        let browser = |request| {
            plan(
                request,
                Platform::Browser,
                &[swiftshader.clone()],
                &ProofBook::default(),
            )
            .unwrap()
        };
        match browser(DeviceRequest::Auto) {
            Plan::Cpu { reason } => assert!(
                reason.contains("'google swiftshader'") && reason.contains("software"),
                "{reason}"
            ),
            other => panic!("expected the CPU backend, got {other:?}"),
        }
        let Plan::Gpu { warnings, .. } = browser(DeviceRequest::Gpu) else {
            panic!("expected the software GPU when asked for");
        };
        assert!(warnings[0].contains("software renderer"), "{warnings:?}");
        let hardware = adapter("nvidia ampere", "BrowserWebGpu", AdapterType::Other);
        let Plan::Gpu { warnings, .. } = plan(
            DeviceRequest::Auto,
            Platform::Browser,
            &[hardware],
            &ProofBook::default(),
        )
        .unwrap() else {
            panic!("expected the hardware GPU");
        };
        assert!(warnings.is_empty());
    }

    #[test]
    fn gpu_override_without_any_adapter_is_an_error() {
        for platform in [Platform::Native, Platform::Browser] {
            let error = plan(DeviceRequest::Gpu, platform, &[], &ProofBook::default()).unwrap_err();
            assert!(matches!(error, DeviceError::NoGpuAdapter(_)), "{error}");
        }
    }

    #[test]
    fn cpu_override_ignores_gpus() {
        let adapters = [adapter("RTX", "Vulkan", AdapterType::DiscreteGpu)];
        for platform in [Platform::Native, Platform::Browser] {
            assert!(matches!(
                plan(
                    DeviceRequest::Cpu,
                    platform,
                    &adapters,
                    &ProofBook::default()
                )
                .unwrap(),
                Plan::Cpu { .. }
            ));
        }
    }

    #[test]
    fn browser_uses_whatever_webgpu_adapter_it_is_given() {
        let swiftshader = adapter("SwiftShader", "WebGPU", AdapterType::Other);
        let Plan::Gpu { choice, .. } = plan(
            DeviceRequest::Auto,
            Platform::Browser,
            &[swiftshader],
            &ProofBook::default(),
        )
        .unwrap() else {
            panic!("expected WebGPU");
        };
        assert_eq!(
            device_kind(&choice, Platform::Browser),
            DeviceKind::DefaultDevice
        );
        assert!(matches!(
            plan(
                DeviceRequest::Auto,
                Platform::Browser,
                &[],
                &ProofBook::default()
            )
            .unwrap(),
            Plan::Cpu { .. }
        ));
    }
}
