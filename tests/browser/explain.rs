//! Explanations in headless Chromium, on WebGPU and on the CPU backend: the same reference maps
//! as the native `explain_parity.rs` (PyTorch, `scripts/reference/gen_explain.py`), models loaded
//! from bytes as the page gets them, and the page's entry point (`WebClip.classify` with
//! `explain`) giving the map and a coloured heat-map the size of the image.

use burn::tensor::Device;
use medfocus::clip::load::{MemoryFiles, load_clip};
use medfocus::device::{self, ComputeKind, DeviceRequest};
use medfocus::weights::Checkpoint;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use crate::common::explain::{ON_THE_CPU_BACKEND, ON_WEBGPU, check_explanations};

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $path
        ))
        .to_vec()
    };
}

fn models() -> Vec<(&'static str, MemoryFiles, Vec<u8>)> {
    let files = |label: &str, entries: Vec<(&str, Vec<u8>)>| MemoryFiles {
        label: label.into(),
        files: entries
            .into_iter()
            .map(|(name, bytes)| (name.to_string(), bytes))
            .collect(),
        ..MemoryFiles::default()
    };
    vec![
        (
            "openclip-tiny",
            files(
                "openclip-tiny",
                vec![
                    (
                        "open_clip_config.json",
                        fixture!("clip/openclip-tiny/open_clip_config.json"),
                    ),
                    (
                        "open_clip_model.safetensors",
                        fixture!("clip/openclip-tiny/open_clip_model.safetensors"),
                    ),
                ],
            ),
            fixture!("explain/openclip-tiny.safetensors"),
        ),
        (
            "hf-clip-tiny",
            files(
                "hf-clip-tiny",
                vec![
                    ("config.json", fixture!("clip/hf-clip-tiny/config.json")),
                    (
                        "model.safetensors",
                        fixture!("clip/hf-clip-tiny/model.safetensors"),
                    ),
                ],
            ),
            fixture!("explain/hf-clip-tiny.safetensors"),
        ),
        (
            "biomedclip-tiny",
            files(
                "biomedclip-tiny",
                vec![
                    (
                        "open_clip_config.json",
                        fixture!("clip/biomedclip-tiny/open_clip_config.json"),
                    ),
                    (
                        "open_clip_model.safetensors",
                        fixture!("clip/biomedclip-tiny/open_clip_model.safetensors"),
                    ),
                    (
                        "text/vocab.txt",
                        fixture!("clip/biomedclip-tiny/text/vocab.txt"),
                    ),
                    (
                        "text/config.json",
                        fixture!("clip/biomedclip-tiny/text/config.json"),
                    ),
                ],
            ),
            fixture!("explain/biomedclip-tiny.safetensors"),
        ),
    ]
}

async fn check_on(device: Device, backend: &str, tolerance: f32) {
    let image = fixture!("explain/image.png");
    let mask = fixture!("explain/mask.png");
    for (name, files, reference) in models() {
        let clip = load_clip(&files, &device).expect("load");
        let reference = Checkpoint::from_safetensors_bytes("reference", reference).unwrap();
        let label = format!("{name} on {backend}");
        let (checked, worst) =
            check_explanations(&label, &clip, &reference, &image, &mask, tolerance).await;
        web_sys::console::log_1(
            &format!("{label}: {checked} maps, worst relative difference {worst:.1e}").into(),
        );
    }
}

#[wasm_bindgen_test]
async fn explanations_on_webgpu_match_pytorch() {
    let chosen = device::choose_device(DeviceRequest::Gpu)
        .await
        .expect("WebGPU device");
    assert_ne!(chosen.report.kind, ComputeKind::Cpu, "{}", chosen.report);
    check_on(chosen.device, "WebGPU", ON_WEBGPU).await;
}

#[wasm_bindgen_test]
async fn explanations_on_the_cpu_backend_match_pytorch() {
    check_on(Device::flex(), "the CPU backend", ON_THE_CPU_BACKEND).await;
}

/// What the page calls: `classify` with `explain` resolves to the prediction and the
/// explanation, the heat-map the image's size; a bad request is an error, not an abort.
#[wasm_bindgen_test]
async fn classify_with_explain_returns_the_heat_map_and_refuses_bad_requests() {
    use js_sys::{Float32Array, Object, Reflect, Uint8Array};
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let files = Object::new();
    for (name, bytes) in [
        (
            "open_clip_config.json",
            fixture!("clip/openclip-tiny/open_clip_config.json"),
        ),
        (
            "open_clip_model.safetensors",
            fixture!("clip/openclip-tiny/open_clip_model.safetensors"),
        ),
    ] {
        Reflect::set(&files, &name.into(), &Uint8Array::from(bytes.as_slice())).unwrap();
    }
    medfocus::web::init_device(Some("gpu".into()))
        .await
        .map_err(JsValue::from)
        .expect("device");
    let clip = medfocus::web::clip::load_clip_files(files)
        .map_err(JsValue::from)
        .expect("load");
    let image = fixture!("explain/image.png");
    let options = |explain: &str| {
        let value = js_sys::JSON::parse(explain).unwrap();
        let options = Object::new();
        Reflect::set(&options, &"explain".into(), &value).unwrap();
        JsValue::from(options)
    };
    let classes = vec!["glioma".to_string(), "normal".to_string()];
    let result = JsFuture::from(clip.classify(
        image.clone(),
        classes.clone(),
        options(r#"{"method": "dense", "class": 1}"#),
    ))
    .await
    .expect("classify with explain");
    let explanation = Reflect::get(&result, &"explanation".into()).unwrap();
    let get = |key: &str| Reflect::get(&explanation, &key.into()).unwrap();
    assert_eq!(get("method").as_string().unwrap(), "dense");
    assert_eq!(get("class").as_f64().unwrap(), 1.0);
    assert_eq!(get("grid").as_f64().unwrap(), 4.0);
    let patch_map = get("patchMap").dyn_into::<Float32Array>().unwrap().to_vec();
    assert_eq!(patch_map.len(), 16);
    assert!(patch_map.iter().all(|v| v.is_finite()));
    assert_eq!(get("width").as_f64().unwrap(), 32.0);
    let heat = get("heat").dyn_into::<Float32Array>().unwrap().to_vec();
    assert_eq!(heat.len(), 32 * 32);
    assert!(heat.iter().all(|v| (0.0..=1.0).contains(v)));
    let rgba = get("heatRgba").dyn_into::<Uint8Array>().unwrap().to_vec();
    assert_eq!(rgba.len(), 32 * 32 * 4);
    for bad in [
        r#"{"method": "gradcam"}"#,
        r#"{"method": "relevancy", "class": 5}"#,
        r#"{"method": "relevancy", "startBlock": 9}"#,
    ] {
        let refused = JsFuture::from(clip.classify(image.clone(), classes.clone(), options(bad)))
            .await
            .expect_err(bad);
        let message = Reflect::get(&refused, &"message".into())
            .unwrap()
            .as_string()
            .unwrap_or_default();
        assert!(!message.is_empty(), "{bad}: {message}");
    }
    // The module still works after the refusals.
    JsFuture::from(clip.classify(image, classes, JsValue::UNDEFINED))
        .await
        .expect("classify after refusals");
}
