//! Trained heads in headless Chromium: a head file written natively by `medfocus train` is read
//! through the page's entry points and predicts what `medfocus predict` predicted, on WebGPU.

use js_sys::{Object, Reflect, Uint8Array};
use medfocus::web::clip::load_clip_files;
use medfocus::web::heads::load_head;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

const HEAD: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/heads/brain-mri-tip-adapter-f.mfh"
));
/// Natively trained heads (a cache-model head, and one that fine-tuned the image tower's last
/// block) with what `medfocus predict` gave.
const HEADS: [(&[u8], &str); 2] = [
    (
        HEAD,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/heads/brain-mri-tip-adapter-f.expected.json"
        )),
    ),
    (
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/heads/chest-xray-finetune.mfh"
        )),
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/heads/chest-xray-finetune.expected.json"
        )),
    ),
];
const CONFIG: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/clip/openclip-tiny/open_clip_config.json"
));
const WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/clip/openclip-tiny/open_clip_model.safetensors"
));
const GELU_CONFIG: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/clip/openclip-tiny-gelu/open_clip_config.json"
));
const GELU_WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/clip/openclip-tiny-gelu/open_clip_model.safetensors"
));
/// The two images of the `.expected.json`, in its order.
const IMAGES: [&[u8]; 2] = [
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/brain-mri/meningioma/Te-me_0016.jpg"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/chest-xray/NORMAL/NORMAL2-IM-1430-0001.jpeg"
    )),
];

fn model_files(config: &[u8], weights: &[u8]) -> Object {
    let files = Object::new();
    for (name, bytes) in [
        ("open_clip_config.json", config),
        ("open_clip_model.safetensors", weights),
    ] {
        Reflect::set(&files, &name.into(), &Uint8Array::from(bytes).into()).unwrap();
    }
    files
}

fn message(error: JsValue) -> String {
    js_sys::Error::from(error).message().into()
}

#[wasm_bindgen_test]
async fn a_natively_trained_head_predicts_the_same_in_the_browser() {
    medfocus::web::init_device(Some("gpu".into()))
        .await
        .map_err(JsValue::from)
        .expect("device");
    let clip = load_clip_files(model_files(CONFIG, WEIGHTS))
        .map_err(JsValue::from)
        .expect("clip");
    for (bytes, expected) in HEADS {
        let head = load_head(bytes.to_vec())
            .map_err(JsValue::from)
            .expect("head");
        assert!(!head.needs_mask());
        let expected: serde_json::Value = serde_json::from_str(expected).unwrap();
        let classes: Vec<String> = serde_json::from_value(expected["classes"].clone()).unwrap();
        assert_eq!(head.classes(), classes);
        let rows = expected["images"].as_array().unwrap();
        assert_eq!(rows.len(), IMAGES.len(), "one expected row per image");
        for (image, row) in IMAGES.iter().zip(rows) {
            let result =
                JsFuture::from(clip.classify_with_head(image.to_vec(), &head, JsValue::UNDEFINED))
                    .await
                    .expect("classify");
            let result: serde_json::Value = serde_wasm_bindgen::from_value(result).unwrap();
            let ours = result["probabilities"].as_array().unwrap();
            let theirs = row["probabilities"].as_array().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{result} vs {row}");
            let diff = ours
                .iter()
                .zip(theirs)
                .map(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs())
                .fold(0.0, f64::max);
            web_sys::console::log_1(
                &format!(
                    "{} head on WebGPU vs native: max |Δp| = {diff:.2e}",
                    head.kind()
                )
                .into(),
            );
            assert!(diff < 1e-4, "{result} vs {row}");
        }
    }
}

#[wasm_bindgen_test]
async fn bad_heads_are_errors_not_panics() {
    medfocus::web::init_device(Some("gpu".into()))
        .await
        .map_err(JsValue::from)
        .expect("device");
    let garbage = load_head(b"not a head at all".to_vec())
        .err()
        .expect("garbage must fail");
    assert!(message(garbage.into()).contains("not a MedFocus head file"));
    let truncated = load_head(HEAD[..HEAD.len() / 2].to_vec())
        .err()
        .expect("truncated must fail");
    // The specific error: cut short, and said so (a panic's message would name no size).
    let truncated = message(truncated.into());
    assert!(
        truncated.contains("the head file is damaged: cut short")
            && truncated.contains("truncated"),
        "{truncated}"
    );

    // The right file with the wrong CLIP model.
    let head = load_head(HEAD.to_vec())
        .map_err(JsValue::from)
        .expect("head");
    let other = load_clip_files(model_files(GELU_CONFIG, GELU_WEIGHTS))
        .map_err(JsValue::from)
        .expect("clip");
    let refused =
        JsFuture::from(other.classify_with_head(IMAGES[0].to_vec(), &head, JsValue::UNDEFINED))
            .await
            .err()
            .expect("another model must be refused");
    assert!(message(refused).contains("trained on CLIP model"));
}

/// A head trained natively on SAM 2's automatic masks (a 4×4 grid and lowered thresholds, which
/// it records) against `medfocus predict --sam2` on the same images.
const SAM2_HEAD: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/heads/brain-mri-sam2-overlay-linear-probe.mfh"
));
const SAM2_EXPECTED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/heads/brain-mri-sam2-overlay-linear-probe.expected.json"
));
const SAM2_WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sam2/sam2.1-tiny-small.int8.bpk"
));

#[wasm_bindgen_test]
async fn a_head_trained_on_sam2_masks_runs_its_recorded_settings_in_the_browser() {
    medfocus::web::init_device(Some("gpu".into()))
        .await
        .map_err(JsValue::from)
        .expect("device");
    let clip = load_clip_files(model_files(CONFIG, WEIGHTS))
        .map_err(JsValue::from)
        .expect("clip");
    let sam2 = medfocus::web::sam2::load_sam2(SAM2_WEIGHTS.to_vec())
        .map_err(JsValue::from)
        .expect("sam2");
    let head = load_head(SAM2_HEAD.to_vec())
        .map_err(JsValue::from)
        .expect("head");
    assert!(head.needs_mask());
    let automatic: serde_json::Value =
        serde_wasm_bindgen::from_value(head.automatic().map_err(JsValue::from).unwrap()).unwrap();
    assert_eq!(automatic["points_per_side"], 4, "{automatic}");
    assert!(head.masks().starts_with("sam2 "), "{}", head.masks());

    let expected: serde_json::Value = serde_json::from_str(SAM2_EXPECTED).unwrap();
    let rows = expected["images"].as_array().unwrap();
    assert_eq!(rows.len(), IMAGES.len(), "one expected row per image");
    for (image, row) in IMAGES.iter().zip(rows) {
        let result = JsFuture::from(clip.classify_with_head_on_sam2(
            image.to_vec(),
            &head,
            &sam2,
            JsValue::UNDEFINED,
        ))
        .await
        .expect("classify");
        let region = Reflect::get(&result, &"region".into()).unwrap();
        let mask = Reflect::get(&region, &"mask".into())
            .unwrap()
            .dyn_into::<Uint8Array>()
            .expect("the region's mask comes back")
            .to_vec();
        // The rest is plain JSON.
        Reflect::delete_property(&region.into(), &"mask".into()).unwrap();
        let result: serde_json::Value = serde_wasm_bindgen::from_value(result).unwrap();
        // The same region as natively: origin and coverage, then the same probabilities.
        assert_eq!(
            result["region"]["origin"], row["region"]["origin"],
            "{result} vs {row}"
        );
        let coverage = mask.iter().filter(|&&v| v == 255).count() as f64 / mask.len() as f64;
        let native_coverage = row["region"]["coverage"].as_f64().unwrap();
        assert!(
            (coverage - native_coverage).abs() < 1e-3,
            "{coverage} vs {native_coverage}"
        );
        let (ours, theirs) = (
            result["probabilities"].as_array().unwrap(),
            row["probabilities"].as_array().unwrap(),
        );
        assert_eq!(ours.len(), theirs.len(), "{result} vs {row}");
        let diff = ours
            .iter()
            .zip(theirs)
            .map(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs())
            .fold(0.0, f64::max);
        web_sys::console::log_1(
            &format!("SAM 2-mask head on WebGPU vs native: max |Δp| = {diff:.2e}").into(),
        );
        assert!(diff < 1e-4, "{result} vs {row}");
    }
    // Without a region the head refuses, naming where its masks came from.
    let refused =
        JsFuture::from(clip.classify_with_head(IMAGES[0].to_vec(), &head, JsValue::UNDEFINED))
            .await
            .err()
            .expect("a region is needed");
    assert!(message(refused).contains("masks from sam2"));
}
