//! CLIP parity in headless Chromium on WebGPU: the same committed fixtures as `clip_parity.rs`,
//! loaded from bytes (as the page gets them), results read back asynchronously.

use burn::tensor::{DType, Device, Tensor};
use medfocus::clip::load::{MemoryFiles, load_clip};
use medfocus::clip::{Family, ZeroShotClassifier};
use medfocus::device::{self, ComputeKind, DeviceRequest};
use medfocus::weights::Checkpoint;
use wasm_bindgen_test::*;

use crate::common::{max_abs_diff, normalized_rows, token_rows};

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/clip/",
            $path
        ))
        .to_vec()
    };
}

async fn webgpu() -> Device {
    let chosen = device::choose_device(DeviceRequest::Gpu)
        .await
        .expect("WebGPU device");
    assert_ne!(chosen.report.kind, ComputeKind::Cpu, "{}", chosen.report);
    chosen.device
}

fn files(label: &str, entries: Vec<(&str, Vec<u8>)>) -> MemoryFiles {
    MemoryFiles {
        label: label.into(),
        files: entries
            .into_iter()
            .map(|(name, bytes)| (name.to_string(), bytes))
            .collect(),
        ..MemoryFiles::default()
    }
}

async fn read(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .into_data_async()
        .await
        .expect("readback")
        .try_to_vec::<f32>()
        .expect("f32")
}

async fn check(model: MemoryFiles, reference: Vec<u8>, family: Family) {
    let device = webgpu().await;
    let clip = load_clip(&model, &device).expect("load");
    assert_eq!(clip.family, family);
    let reference = Checkpoint::from_safetensors_bytes("reference", reference).expect("reference");
    let pixels = reference
        .get("pixels")
        .unwrap()
        .clone()
        .convert_dtype(DType::F32);
    let rows = token_rows(reference.get("tokens").unwrap());
    let embed = clip.model.config.embed_dim;
    let image = read(
        clip.model
            .encode_image(Tensor::from_data(pixels, &device))
            .unwrap(),
    )
    .await;
    let text = read(clip.model.encode_text(&rows).unwrap()).await;
    let expected_image: Vec<f32> = reference.get("image_embeds").unwrap().try_to_vec().unwrap();
    let expected_text: Vec<f32> = reference.get("text_embeds").unwrap().try_to_vec().unwrap();
    let image_delta = max_abs_diff(
        &normalized_rows(&image, embed),
        &normalized_rows(&expected_image, embed),
    );
    let text_delta = max_abs_diff(
        &normalized_rows(&text, embed),
        &normalized_rows(&expected_text, embed),
    );
    web_sys::console::log_1(
        &format!("{family}: image max |Δ| {image_delta:.2e}, text max |Δ| {text_delta:.2e}").into(),
    );
    // About ten times the largest error measured on SwiftShader's WebGPU (2.7e-7).
    assert!(
        image_delta <= 3e-6,
        "image embeddings differ by {image_delta}"
    );
    assert!(text_delta <= 3e-6, "text embeddings differ by {text_delta}");
}

#[wasm_bindgen_test]
async fn open_clip_on_webgpu_matches_open_clip() {
    let model = files(
        "openclip-tiny",
        vec![
            (
                "open_clip_config.json",
                fixture!("openclip-tiny/open_clip_config.json"),
            ),
            (
                "open_clip_model.safetensors",
                fixture!("openclip-tiny/open_clip_model.safetensors"),
            ),
        ],
    );
    check(
        model,
        fixture!("reference/openclip-tiny.safetensors"),
        Family::OpenClip,
    )
    .await;
}

#[wasm_bindgen_test]
async fn hugging_face_clip_on_webgpu_matches_transformers() {
    let model = files(
        "hf-clip-tiny",
        vec![
            ("config.json", fixture!("hf-clip-tiny/config.json")),
            (
                "model.safetensors",
                fixture!("hf-clip-tiny/model.safetensors"),
            ),
        ],
    );
    check(
        model,
        fixture!("reference/hf-clip-tiny.safetensors"),
        Family::HfClip,
    )
    .await;
}

#[wasm_bindgen_test]
async fn biomedclip_on_webgpu_matches_open_clip() {
    let model = files(
        "biomedclip-tiny",
        vec![
            (
                "open_clip_config.json",
                fixture!("biomedclip-tiny/open_clip_config.json"),
            ),
            (
                "open_clip_model.safetensors",
                fixture!("biomedclip-tiny/open_clip_model.safetensors"),
            ),
            ("text/vocab.txt", fixture!("biomedclip-tiny/text/vocab.txt")),
            (
                "text/config.json",
                fixture!("biomedclip-tiny/text/config.json"),
            ),
        ],
    );
    check(
        model,
        fixture!("reference/biomedclip-tiny.safetensors"),
        Family::BiomedClip,
    )
    .await;
}

#[wasm_bindgen_test]
async fn zero_shot_and_bad_files_in_the_browser() {
    let device = webgpu().await;
    let model = files(
        "openclip-tiny",
        vec![
            (
                "open_clip_config.json",
                fixture!("openclip-tiny/open_clip_config.json"),
            ),
            (
                "open_clip_model.safetensors",
                fixture!("openclip-tiny/open_clip_model.safetensors"),
            ),
        ],
    );
    let clip = load_clip(&model, &device).expect("load");
    let classifier = ZeroShotClassifier::new(&clip, &["glioma", "meningioma", "no tumor"], &[])
        .expect("classifier");
    let size = clip.preprocess.image_size;
    let pixels = Tensor::<4>::zeros([1, 3, size, size], &device);
    let probabilities = classifier
        .read_probabilities(clip.model.encode_image(pixels).unwrap())
        .await
        .unwrap();
    let total: f32 = probabilities[0].iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "{total}");

    let mut truncated = fixture!("openclip-tiny/open_clip_model.safetensors");
    truncated.truncate(truncated.len() / 3);
    let broken = files(
        "broken",
        vec![
            (
                "open_clip_config.json",
                fixture!("openclip-tiny/open_clip_config.json"),
            ),
            ("open_clip_model.safetensors", truncated),
        ],
    );
    let error = load_clip(&broken, &device).unwrap_err().to_string();
    assert!(error.contains("truncated"), "{error}");
    let pickle_only = files(
        "pickle",
        vec![
            (
                "open_clip_config.json",
                fixture!("openclip-tiny/open_clip_config.json"),
            ),
            ("open_clip_pytorch_model.bin", vec![0x50, 0x4b]),
        ],
    );
    assert!(
        load_clip(&pickle_only, &device)
            .unwrap_err()
            .to_string()
            .contains(".safetensors")
    );
}

/// The page shows `WebClip.view`'s pixels as what CLIP sees: they must be the library's own
/// visual prompt and preprocessing geometry, not a look-alike.
#[wasm_bindgen_test]
async fn the_page_view_is_exactly_what_the_tower_is_given() {
    use js_sys::{Reflect, Uint8Array};
    use medfocus::clip::preprocess::{Pixels8, resize_and_crop};
    use medfocus::focus::{Mask, VisualPrompt, prompt};
    use wasm_bindgen::{JsCast, JsValue};

    const IMAGE: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/brain-mri/meningioma/Te-me_0016.jpg"
    ));
    medfocus::web::init_device(Some("gpu".into()))
        .await
        .map_err(JsValue::from)
        .expect("device");
    let clip = load_openclip_tiny();
    let view = |options: &str| {
        let options = js_sys::JSON::parse(options).unwrap();
        wasm_bindgen_futures::JsFuture::from(clip.view(IMAGE.to_vec(), options))
    };
    let bytes = |value: &JsValue, key: &str| {
        Reflect::get(value, &key.into())
            .unwrap()
            .dyn_into::<Uint8Array>()
            .unwrap()
            .to_vec()
    };
    let rgba = |pixels: &Pixels8| -> Vec<u8> {
        let rgb = pixels.to_rgb();
        rgb.data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    };

    let pixels = medfocus::pipeline::decode(IMAGE).unwrap();
    let region = [40, 60, 200, 260];
    let mask = Mask::from_box(pixels.width, pixels.height, region).unwrap();
    let overlay = view(r#"{"focus": "overlay", "box": [40, 60, 200, 260]}"#)
        .await
        .expect("overlay view");
    let prompted = prompt::apply(&pixels, &mask, &VisualPrompt::paper_overlay()).unwrap();
    assert_eq!(bytes(&overlay, "focused"), rgba(&prompted));
    // The model's own preprocessing, as loaded natively from the same files.
    let loaded = load_clip(
        &files(
            "openclip-tiny",
            vec![
                (
                    "open_clip_config.json",
                    fixture!("openclip-tiny/open_clip_config.json"),
                ),
                (
                    "open_clip_model.safetensors",
                    fixture!("openclip-tiny/open_clip_model.safetensors"),
                ),
            ],
        ),
        &webgpu().await,
    )
    .expect("load");
    assert_eq!(
        bytes(&overlay, "input"),
        rgba(&resize_and_crop(&prompted, &loaded.preprocess))
    );
    assert!(
        Reflect::get(&overlay, &"patchWeights".into())
            .unwrap()
            .is_null()
    );

    let attention = view(r#"{"focus": "attention", "box": [40, 60, 200, 260]}"#)
        .await
        .expect("attention view");
    assert_eq!(bytes(&attention, "focused"), rgba(&pixels));
    let grid = Reflect::get(&attention, &"grid".into())
        .unwrap()
        .as_f64()
        .unwrap() as usize;
    let weights = Reflect::get(&attention, &"patchWeights".into())
        .unwrap()
        .dyn_into::<js_sys::Float32Array>()
        .unwrap()
        .to_vec();
    assert_eq!(weights.len(), grid * grid);
    assert!(weights.iter().any(|&w| w > 0.5) && weights.iter().any(|&w| w < 0.5));

    // A focus that needs a region without one is a clear error.
    let refused = view(r#"{"focus": "blur"}"#).await.unwrap_err();
    let message: String = js_sys::Error::from(refused).message().into();
    assert!(message.contains("mask is needed"), "{message}");
}

/// The committed tiny open_clip model, loaded as the page loads a model: its files by name.
pub(crate) fn load_openclip_tiny() -> medfocus::web::clip::WebClip {
    use js_sys::{Object, Reflect, Uint8Array};
    use wasm_bindgen::JsValue;
    let files = Object::new();
    for (name, bytes) in [
        (
            "open_clip_config.json",
            fixture!("openclip-tiny/open_clip_config.json"),
        ),
        (
            "open_clip_model.safetensors",
            fixture!("openclip-tiny/open_clip_model.safetensors"),
        ),
    ] {
        Reflect::set(
            &files,
            &name.into(),
            &Uint8Array::from(bytes.as_slice()).into(),
        )
        .unwrap();
    }
    medfocus::web::clip::load_clip_files(files)
        .map_err(JsValue::from)
        .expect("the tiny open_clip model")
}
