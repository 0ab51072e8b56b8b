//! Native integration tests of the foundation: device choice, cross-backend agreement, and
//! decoding the real images in `../shared/data`.
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;

use medfocus::compute_check::{self, CheckOutput};
use medfocus::dataset::Dataset;
use medfocus::device::{self, AdapterType, ComputeKind, DeviceRequest};
use medfocus::imaging;

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("MEDFOCUS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.is_dir(),
        "the shared images are missing at {} (set MEDFOCUS_DATA)",
        dir.display()
    );
    dir
}

fn check(request: DeviceRequest, size: usize) -> (device::ChosenDevice, CheckOutput) {
    let chosen = device::choose_device_blocking(request).unwrap_or_else(|error| {
        panic!("{error} (without a GPU, install mesa-vulkan-drivers: scripts/setup.sh does)")
    });
    let output = pollster::block_on(compute_check::run_check(&chosen.device, size)).expect("check");
    (chosen, output)
}

#[test]
fn auto_choice_matches_the_adapters_of_this_machine() {
    let adapters = pollster::block_on(device::list_adapters());
    let has_hardware = adapters.iter().any(|adapter| {
        matches!(
            adapter.adapter_type,
            AdapterType::DiscreteGpu | AdapterType::IntegratedGpu | AdapterType::VirtualGpu
        )
    });
    let chosen = device::choose_device_blocking(DeviceRequest::Auto).unwrap();
    if has_hardware {
        assert_eq!(chosen.report.kind, ComputeKind::Gpu, "{}", chosen.report);
    } else {
        // The lavapipe trap: a software adapter must not become the silent default.
        assert_eq!(chosen.report.kind, ComputeKind::Cpu, "{}", chosen.report);
        assert_eq!(chosen.report.backend, "flex");
        assert!(!chosen.report.reason.is_empty());
    }
    let cpu = device::choose_device_blocking(DeviceRequest::Cpu).unwrap();
    assert_eq!(cpu.report.kind, ComputeKind::Cpu);
    assert!(
        cpu.report.to_string().contains("CPU backend"),
        "{}",
        cpu.report
    );
}

#[test]
fn wgpu_and_cpu_backends_compute_the_same_result() {
    const SIZE: usize = 96;
    let reference = compute_check::reference(SIZE);
    let (_, on_cpu) = check(DeviceRequest::Cpu, SIZE);
    // `gpu` forces a wgpu adapter even when it is a software one (lavapipe here); CI installs
    // mesa-vulkan-drivers so there always is one.
    let (gpu, on_gpu) = check(DeviceRequest::Gpu, SIZE);
    let adapter = gpu.report.adapter.as_ref().expect("a wgpu adapter");
    assert_ne!(gpu.report.kind, ComputeKind::Cpu);
    assert!(!adapter.name.is_empty());
    assert!(
        adapter.limits.max_storage_buffer_binding_size >= 1 << 27,
        "{:?}",
        adapter.limits
    );

    assert!(
        on_cpu.max_abs_diff(&reference) < 1e-5,
        "flex vs reference: {}",
        on_cpu.max_abs_diff(&reference)
    );
    assert!(
        on_gpu.max_abs_diff(&reference) < 1e-5,
        "wgpu vs reference: {}",
        on_gpu.max_abs_diff(&reference)
    );
    assert!(
        on_gpu.max_abs_diff(&on_cpu) < 1e-5,
        "wgpu vs flex: {}",
        on_gpu.max_abs_diff(&on_cpu)
    );

    // Asking again reuses the opened runtime rather than failing to register a second one.
    let again = device::choose_device_blocking(DeviceRequest::Gpu).unwrap();
    assert_eq!(again.report, gpu.report);
}

#[test]
fn real_brain_mri_images_decode_with_their_classes() {
    let set = Dataset::open(&shared_data().join("brain-mri"), None).unwrap();
    assert_eq!(
        set.classes,
        ["glioma", "meningioma", "notumor", "pituitary"]
    );
    assert_eq!(set.counts()[&None], [6, 5, 3, 3]);
    for labelled in &set.samples {
        let bytes = std::fs::read(&labelled.path).unwrap();
        let image = imaging::decode_image(&bytes)
            .unwrap_or_else(|error| panic!("{}: {error}", labelled.path.display()));
        assert_eq!(image.format, "JPG");
        assert_eq!(image.color.channels, 3, "{}", labelled.path.display());
        assert!(
            (235..=674).contains(&image.width.max(image.height)),
            "{}",
            image.summary()
        );
        assert_eq!(
            image.to_rgba8().len(),
            (image.width * image.height * 4) as usize
        );
    }
}

#[test]
fn real_chest_xrays_decode_as_single_channel_grayscale() {
    let set = Dataset::open(&shared_data().join("chest-xray"), None).unwrap();
    assert_eq!(set.classes, ["NORMAL", "PNEUMONIA"]);
    assert_eq!(set.counts()[&None], [8, 8]);
    for labelled in &set.samples {
        let bytes = std::fs::read(&labelled.path).unwrap();
        let image = imaging::decode_image(&bytes).unwrap();
        assert_eq!(image.color.channels, 1, "{}", image.summary());
        assert!(image.grayscale_content);
        assert!(
            image.width >= 900 && image.height >= 500,
            "{}",
            image.summary()
        );
    }
}

#[test]
fn a_truncated_real_jpeg_is_an_error_not_a_panic() {
    let path = shared_data().join("chest-xray/PNEUMONIA/person1951_bacteria_4882.jpeg");
    let bytes = std::fs::read(path).unwrap();
    let error = imaging::decode_image(&bytes[..bytes.len() / 3]).unwrap_err();
    assert!(
        error.to_string().contains("corrupt or truncated"),
        "{error}"
    );
}
