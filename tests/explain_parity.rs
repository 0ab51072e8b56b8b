//! Parity of the explanations (`medfocus::explain`) with a PyTorch transcription of each method
//! (`scripts/reference/gen_explain.py`, autograd for the relevancy) on the committed tiny
//! open_clip, Hugging Face and BiomedCLIP fixtures: a plain image, the paper's overlay prompt and
//! the attention focus; the predicted class and another; relevancy from the last block and from
//! every block, and the dense map.
#![cfg(not(target_arch = "wasm32"))]

use burn::tensor::{DType, Tensor};
use medfocus::clip::ZeroShotClassifier;
use medfocus::clip::load::load_clip_dir;
use medfocus::explain::{ExplainMethod, ExplainRequest, Explained, explain};
use medfocus::focus::{FocusMode, FocusSettings, prompt};
use medfocus::focus::{Mask, VisualPrompt};
use medfocus::pipeline::{Encoder, MaskSource, Pipeline, decode};
use medfocus::weights::Checkpoint;

mod common;
use common::manifest;

/// Maps are compared relative to their largest magnitude; normalised maps absolutely.
const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> std::path::PathBuf {
    manifest().join("tests/fixtures/explain").join(name)
}

fn floats(reference: &Checkpoint, key: &str) -> Vec<f32> {
    reference
        .get(key)
        .unwrap_or_else(|| panic!("reference lacks {key}"))
        .clone()
        .convert_dtype(DType::F32)
        .try_to_vec()
        .unwrap()
}

fn assert_close(what: &str, got: &[f32], want: &[f32], scale: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= TOLERANCE * scale,
        "{what}: off by {worst} (allowed {}):\n  got  {got:?}\n  want {want:?}",
        TOLERANCE * scale
    );
}

fn largest(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

#[test]
fn maps_match_the_pytorch_transcription_for_every_family_focus_and_method() {
    let image_bytes = std::fs::read(fixture("image.png")).unwrap();
    let mask_bytes = std::fs::read(fixture("mask.png")).unwrap();
    let pixels = decode(&image_bytes).unwrap();
    let device = burn::tensor::Device::flex();
    let mut checked = 0;
    for model in ["openclip-tiny", "hf-clip-tiny", "biomedclip-tiny"] {
        let clip = load_clip_dir(&manifest().join("tests/fixtures/clip").join(model), &device)
            .unwrap_or_else(|error| panic!("{model}: {error}"));
        let reference = Checkpoint::open(&fixture(&format!("{model}.safetensors"))).unwrap();
        let text = floats(&reference, "text_embeddings");
        let embed_dim = clip.model.config.embed_dim;
        let classes = text.len() / embed_dim;
        assert_eq!(classes * embed_dim, text.len());
        let classifier = ZeroShotClassifier {
            classes: (0..classes).map(|index| format!("class {index}")).collect(),
            class_embeddings: Tensor::<1>::from_floats(text.as_slice(), &device)
                .reshape([classes, embed_dim]),
            logit_scale: floats(&reference, "logit_scale")[0],
        };
        for mode in ["none", "overlay", "attention"] {
            let encoder =
                Encoder::new(&clip, &FocusMode::new(mode, FocusSettings::default())).unwrap();
            let pipeline = Pipeline::new(encoder, &classifier);
            let source = match mode {
                "none" => MaskSource::None,
                _ => MaskSource::MaskImage(mask_bytes.clone()),
            };
            let reference_mode = if mode == "none" { "plain" } else { mode };
            for (case, method, start_block) in [
                ("relevancy", ExplainMethod::Relevancy, None),
                ("relevancy-all", ExplainMethod::Relevancy, Some(0)),
                ("dense", ExplainMethod::Dense, None),
            ] {
                for which in ["predicted", "other"] {
                    let key = format!("{reference_mode}.{case}.{which}");
                    let class = floats(&reference, &format!("{key}.class"))[0] as usize;
                    let request = ExplainRequest {
                        method,
                        class: (which == "other").then_some(class),
                        start_block,
                    };
                    let Explained {
                        logits,
                        explanation,
                        ..
                    } = pollster::block_on(explain(&pipeline, &pixels, &source, &request))
                        .unwrap_or_else(|error| panic!("{model} {key}: {error}"));
                    assert_eq!(explanation.class, class, "{model} {key}: class");
                    let want_logits = floats(&reference, &format!("{key}.logits"));
                    assert_close(
                        &format!("{model} {key} logits"),
                        &logits,
                        &want_logits,
                        largest(&want_logits),
                    );
                    let want = floats(&reference, &format!("{key}.patch_map"));
                    // A flat reference would let a map of constants pass.
                    let (low, high) = want
                        .iter()
                        .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                    assert!(high - low > 1e-2 * largest(&want), "{model} {key}: flat");
                    assert_close(
                        &format!("{model} {key} patch map"),
                        &explanation.patch_map,
                        &want,
                        largest(&want),
                    );
                    assert_close(
                        &format!("{model} {key} input map"),
                        &explanation.input_map,
                        &floats(&reference, &format!("{key}.input_map")),
                        1.0,
                    );
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 3 * 2);
}

/// The overlay the reference explained is the one `focus::prompt` draws (so the overlay maps
/// above compare like with like).
#[test]
fn the_reference_overlay_is_the_prompt_medfocus_draws() {
    let pixels = decode(&std::fs::read(fixture("image.png")).unwrap()).unwrap();
    let mask_pixels = decode(&std::fs::read(fixture("mask.png")).unwrap()).unwrap();
    let weights: Vec<f32> = mask_pixels
        .data
        .chunks(mask_pixels.channels)
        .map(|pixel| if pixel[0] > 127 { 1.0 } else { 0.0 })
        .collect();
    let mask = Mask {
        width: mask_pixels.width,
        height: mask_pixels.height,
        weights,
    };
    let drawn = prompt::apply(&pixels, &mask, &VisualPrompt::paper_overlay()).unwrap();
    let reference = decode(&std::fs::read(fixture("overlay.png")).unwrap()).unwrap();
    assert_eq!(drawn.data.len(), reference.data.len());
    assert_eq!(drawn.data, reference.data);
}
