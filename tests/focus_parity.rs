//! The visual prompts' pixels and the attention focus's bias against a NumPy transcription of
//! their definitions (`scripts/reference/gen_focus.py` → `tests/fixtures/focus/focus.json`):
//! every 8-bit value equal (the blur, summed in f32 here and f64 there, within one level), the
//! bias within f32 rounding. "Something changed" tests elsewhere cannot tell a wrong formula
//! from a right one; these can.

use medfocus::clip::preprocess::{Pixels8, PreprocessConfig};
use medfocus::focus::attention::{key_bias, patch_weights};
use medfocus::focus::{Mask, VisualPrompt, prompt};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/focus/focus.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("focus fixture")).unwrap()
}

fn numbers<T: serde::de::DeserializeOwned>(value: &Value) -> Vec<T> {
    serde_json::from_value(value.clone()).unwrap()
}

fn inputs(fixture: &Value) -> (Pixels8, Mask) {
    let (width, height) = (
        fixture["width"].as_u64().unwrap() as usize,
        fixture["height"].as_u64().unwrap() as usize,
    );
    let image = Pixels8 {
        width,
        height,
        channels: 3,
        data: numbers(&fixture["image"]),
    };
    let mask = Mask {
        width,
        height,
        weights: numbers(&fixture["mask"]),
    };
    assert_eq!(image.data.len(), width * height * 3);
    assert_eq!(mask.weights.len(), width * height);
    (image, mask)
}

#[test]
fn every_visual_prompt_draws_what_its_definition_says() {
    let fixture = fixture();
    let (image, mask) = inputs(&fixture);
    let cases = fixture["prompts"].as_object().unwrap();
    assert_eq!(cases.len(), 5, "overlay, blur, crop, binary, grey");
    for (name, case) in cases {
        let prompt: VisualPrompt = serde_json::from_value(case["prompt"].clone()).unwrap();
        let drawn = prompt::apply(&image, &mask, &prompt).unwrap();
        let expected: Vec<u8> = numbers(&case["pixels"]);
        assert_eq!(
            (drawn.width, drawn.height, drawn.channels),
            (
                case["width"].as_u64().unwrap() as usize,
                case["height"].as_u64().unwrap() as usize,
                3
            ),
            "{name}"
        );
        assert_eq!(drawn.data.len(), expected.len(), "{name}");
        // A crop copies pixels: equal. A blend rounds an f32 sum here and an f64 one there, so a
        // value within a rounding error of a half level may land one level apart, and rarely.
        let differences: Vec<u8> = drawn
            .data
            .iter()
            .zip(&expected)
            .map(|(&a, &b)| a.abs_diff(b))
            .collect();
        let worst = differences.iter().copied().max().unwrap();
        let off = differences.iter().filter(|&&d| d > 0).count();
        eprintln!(
            "{name}: worst {worst} level(s), {off} of {} values differ",
            differences.len()
        );
        let tolerance = if name == "crop" { 0 } else { 1 };
        assert!(
            worst <= tolerance,
            "{name}: worst difference {worst} levels"
        );
        assert!(
            off * 100 <= differences.len(),
            "{name}: {off} values differ"
        );
        // The case is not trivial: the prompt changed most of the image's values.
        if name != "crop" {
            let changed = image
                .data
                .iter()
                .zip(&expected)
                .filter(|(a, b)| a != b)
                .count();
            assert!(
                changed > image.data.len() / 4,
                "{name}: only {changed} values changed"
            );
        }
    }
}

#[test]
fn the_attention_bias_is_the_masks_mean_per_patch_through_resize_and_crop() {
    let fixture = fixture();
    let (_, mask) = inputs(&fixture);
    let attention = &fixture["attention"];
    let size = attention["image_size"].as_u64().unwrap() as usize;
    let grid = attention["grid"].as_u64().unwrap() as usize;
    let strength = attention["strength"].as_f64().unwrap() as f32;
    let weights = patch_weights(&mask, &PreprocessConfig::openai(size), grid);
    let expected: Vec<f32> = numbers(&attention["patch_weights"]);
    assert_eq!(weights.len(), expected.len());
    for (index, (got, want)) in weights.iter().zip(&expected).enumerate() {
        assert!((got - want).abs() < 1e-6, "patch {index}: {got} vs {want}");
    }
    // Patches wholly inside, wholly outside and on the edge all occur.
    assert!(expected.contains(&0.0) && expected.iter().any(|&w| w > 0.99));
    assert!(expected.iter().any(|&w| w > 0.05 && w < 0.95));
    let bias = key_bias(&weights, strength);
    let expected: Vec<f32> = numbers(&attention["key_bias"]);
    assert_eq!(bias.len(), grid * grid + 1);
    assert_eq!(bias.len(), expected.len());
    for (got, want) in bias.iter().zip(&expected) {
        assert!((got - want).abs() < 2e-6, "{got} vs {want}");
    }
}
