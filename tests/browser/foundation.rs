//! Browser tests, run by `wasm-pack test --headless --chrome` in headless Chromium with WebGPU
//! enabled (`webdriver.json`).

use medfocus::compute_check;
use medfocus::device::{self, ComputeKind, DeviceRequest};
use medfocus::web;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

const SIZE: usize = 64;

/// A real brain MRI (RGB JPEG) and a real chest X-ray (grayscale JPEG) from `../shared/data`.
const MRI_JPEG: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/brain-mri/notumor/Te-no_0021.jpg"
));
const XRAY_JPEG: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/chest-xray/PNEUMONIA/person1951_bacteria_4882.jpeg"
));

fn message(error: wasm_bindgen::JsError) -> String {
    let value: JsValue = error.into();
    js_sys::Reflect::get(&value, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_default()
}

#[wasm_bindgen_test]
async fn runs_on_a_webgpu_adapter_and_reads_back_asynchronously() {
    assert!(
        device::has_navigator_gpu(),
        "navigator.gpu is missing: is --enable-unsafe-webgpu set?"
    );
    let chosen = device::choose_device(DeviceRequest::Gpu)
        .await
        .expect("device");
    assert_eq!(chosen.report.backend, "WebGPU", "{}", chosen.report);
    assert_ne!(
        chosen.report.kind,
        ComputeKind::Cpu,
        "fell back to the CPU backend: {}",
        chosen.report
    );
    // Issue 33: *auto* takes a hardware adapter, never a software one (headless Chromium's is
    // SwiftShader, the browser's fallback adapter); asked for, a software one comes with a warning.
    let auto = device::choose_device(DeviceRequest::Auto)
        .await
        .expect("auto");
    if chosen.report.kind == ComputeKind::SoftwareGpu {
        assert_eq!(auto.report.kind, ComputeKind::Cpu, "{}", auto.report);
        assert!(
            auto.report.reason.contains("software renderer"),
            "{}",
            auto.report
        );
        assert!(
            chosen.report.warnings[0].contains("software renderer"),
            "{}",
            chosen.report
        );
    } else {
        assert_eq!(auto.report.kind, ComputeKind::Gpu, "{}", auto.report);
    }
    let adapter = chosen.report.adapter.as_ref().expect("adapter");
    assert!(!adapter.name.is_empty());

    let on_gpu = compute_check::run_check(&chosen.device, SIZE)
        .await
        .expect("webgpu check");
    let reference = compute_check::reference(SIZE);
    let diff = on_gpu.max_abs_diff(&reference);
    assert!(diff < 1e-5, "WebGPU vs reference: {diff}");

    let on_cpu = compute_check::run_check(
        &device::cpu_device(DeviceRequest::Cpu, "test".into()).device,
        SIZE,
    )
    .await
    .expect("cpu check");
    assert!(
        on_gpu.max_abs_diff(&on_cpu) < 1e-5,
        "WebGPU vs flex: {}",
        on_gpu.max_abs_diff(&on_cpu)
    );
}

#[wasm_bindgen_test]
async fn cpu_backend_computes_the_same_op() {
    let chosen = device::choose_device(DeviceRequest::Cpu)
        .await
        .expect("cpu");
    assert_eq!(chosen.report.kind, ComputeKind::Cpu);
    let output = compute_check::run_check(&chosen.device, SIZE)
        .await
        .expect("cpu check");
    let diff = output.max_abs_diff(&compute_check::reference(SIZE));
    assert!(diff < 1e-5, "flex vs reference: {diff}");
}

#[wasm_bindgen_test]
async fn exported_device_api_reports_and_checks() {
    let report = web::init_device(Some("gpu".into()))
        .await
        .map_err(message)
        .expect("initDevice");
    let backend = js_sys::Reflect::get(&report, &"backend".into()).unwrap();
    assert_eq!(backend.as_string().as_deref(), Some("WebGPU"));
    let summary = web::check_device(32)
        .await
        .map_err(message)
        .expect("checkDevice");
    let diff = js_sys::Reflect::get(&summary, &"maxAbsDiff".into())
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(diff < 1e-5, "{diff}");

    let bad = web::init_device(Some("tpu".into()))
        .await
        .map(|_| ())
        .map_err(message)
        .unwrap_err();
    assert!(bad.contains("tpu"), "{bad}");
    let bad_size = web::check_device(0)
        .await
        .map(|_| ())
        .map_err(message)
        .unwrap_err();
    assert!(bad_size.contains("size"), "{bad_size}");
}

#[wasm_bindgen_test]
fn real_jpegs_decode_inside_wasm() {
    let mri = web::decode_image(MRI_JPEG).map_err(message).expect("mri");
    assert_eq!((mri.width(), mri.height(), mri.channels()), (236, 231, 3));
    assert_eq!(mri.format(), "JPG");
    assert_eq!(mri.rgba().len(), 236 * 231 * 4);

    let xray = web::decode_image(XRAY_JPEG)
        .map_err(message)
        .expect("x-ray");
    assert_eq!(xray.channels(), 1);
    assert!(xray.grey_content());
    assert_eq!(
        xray.rgba().len(),
        (xray.width() * xray.height() * 4) as usize
    );
}

#[wasm_bindgen_test]
fn corrupt_images_are_js_errors_not_panics() {
    let garbage = message(
        web::decode_image(b"GIF? no, garbage")
            .err()
            .expect("garbage must fail"),
    );
    assert!(
        garbage.contains("not a supported image format"),
        "{garbage}"
    );
    let truncated = message(
        web::decode_image(&XRAY_JPEG[..XRAY_JPEG.len() / 3])
            .err()
            .expect("truncated must fail"),
    );
    assert!(truncated.contains("corrupt or truncated"), "{truncated}");
    let empty = message(web::decode_image(&[]).err().expect("empty must fail"));
    assert!(empty.contains("empty"), "{empty}");
}

/// DICOM inside wasm: a compressed (JPEG lossless, 12-bit, sigmoid window) file decodes to
/// pydicom's picture (`scripts/reference/gen_dicom.py`), and a header that claims 2 GiB is an
/// error, not an allocation that kills the tab.
#[wasm_bindgen_test]
fn dicom_files_decode_inside_wasm() {
    const MR: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dicom/mr-jpeg-lossless.dcm"
    ));
    const MR_PNG: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dicom/mr-jpeg-lossless.png"
    ));
    const LYING: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dicom/bad-lying-length.dcm"
    ));
    let mr = web::decode_image(MR).map_err(message).expect("dicom");
    assert_eq!((mr.width(), mr.height(), mr.channels()), (64, 48, 1));
    assert_eq!(mr.format(), "DICOM");
    assert!(mr.summary().contains("SIGMOID"), "{}", mr.summary());
    let reference = image::load_from_memory(MR_PNG).unwrap().to_luma8();
    let grey: Vec<u8> = mr.rgba().chunks_exact(4).map(|pixel| pixel[0]).collect();
    assert_eq!(grey, reference.into_raw());

    let lying = message(
        web::decode_image(LYING)
            .err()
            .expect("a lying length must fail"),
    );
    assert!(lying.contains("claims 2147483632 bytes"), "{lying}");
}

/// Model files streamed into the engine: every way a file can be wrong is a named error, and a
/// file given up holds nothing.
#[wasm_bindgen_test]
async fn model_files_refuse_what_cannot_be_a_model_file() {
    use medfocus::web::files::WebModelFiles;
    // Loading SAM 2 asks for the chosen device first: choose one here rather than rely on a test
    // that happened to run before (the order changes with the tests compiled in).
    web::init_device(Some("gpu".into()))
        .await
        .map_err(JsValue::from)
        .expect("device");
    let mut files = WebModelFiles::new("test".into());
    let error = message(files.begin("huge.safetensors".into(), 5e9).unwrap_err());
    assert!(error.contains("at most 4295 MB"), "{error}");
    let error = message(files.begin("half.bin".into(), 1.5).unwrap_err());
    assert!(error.contains("not a file size"), "{error}");

    files.begin("short.bin".into(), 10.0).unwrap();
    let error = message(files.begin("next.bin".into(), 1.0).unwrap_err());
    assert!(error.contains("short.bin is still arriving"), "{error}");
    files.push(&[1, 2, 3, 4, 5]).unwrap();
    let error = message(files.end().unwrap_err());
    assert!(
        error.contains("short.bin is truncated: 5 of its 10 bytes"),
        "{error}"
    );

    files.begin("grows.bin".into(), 3.0).unwrap();
    let error = message(files.push(&[0; 4]).unwrap_err());
    assert!(error.contains("grows.bin grew"), "{error}");
    assert!(message(files.end().unwrap_err()).contains("no file begun"));

    // A checkpoint is parsed as it arrives: a wrong header fails at once.
    files.begin("model.safetensors".into(), 20.0).unwrap();
    let error = message(files.push(&[0xff; 12]).unwrap_err());
    assert!(error.contains("not a SafeTensors file"), "{error}");

    files.begin("config.json".into(), 2.0).unwrap();
    files.push(b"{}").unwrap();
    assert_eq!(
        files.end().unwrap(),
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let error = message(files.begin("config.json".into(), 2.0).unwrap_err());
    assert!(error.contains("config.json was given twice"), "{error}");
    assert_eq!(files.names(), ["config.json"]);
    let error = message(
        medfocus::web::sam2::load_sam2_streamed(files)
            .err()
            .unwrap(),
    );
    assert!(error.contains("not a MedFocus SAM 2 burnpack"), "{error}");

    // The counters the page shows.
    let memory = web::memory::engine_memory().unwrap();
    let field = |key: &str| {
        js_sys::Reflect::get(&memory, &key.into())
            .unwrap()
            .as_f64()
            .unwrap()
    };
    assert!(field("live") > 0.0 && field("peak") >= field("live"));
    assert!(field("reserved") >= field("live"));
    assert_eq!(field("limit"), 4294967296.0);
}
