//! The explanation parity check the native and the browser suites both run: every map of
//! `scripts/reference/gen_explain.py` (PyTorch, autograd for the relevancy) for one tiny CLIP —
//! plain, the paper's overlay and the attention focus; relevancy from the last block and from
//! every block, and the dense map; the predicted class and another.

use burn::tensor::{DType, Tensor};
use medfocus::clip::{LoadedClip, ZeroShotClassifier};
use medfocus::explain::{ExplainMethod, ExplainRequest, Explained, explain};
use medfocus::focus::{FocusMode, FocusSettings};
use medfocus::pipeline::{Encoder, MaskSource, Pipeline, decode};
use medfocus::weights::Checkpoint;

/// Maps are compared relative to their largest magnitude; normalised maps absolutely. About ten
/// times the worst difference measured on the three tiny models (2026-12-05): on the CPU backend
/// 4.8e-6 natively and 6.3e-6 in Chromium (BiomedCLIP).
pub const ON_THE_CPU_BACKEND: f32 = 5e-5;
/// On WebGPU (SwiftShader in headless Chromium) BiomedCLIP's maps differ by up to 8.0e-5, the
/// open_clip and Hugging Face ones by 1.8e-6 (BiomedCLIP's towers are a timm ViT and BERT; which
/// op on WebGPU accounts for the difference is not traced).
pub const ON_WEBGPU: f32 = 8e-4;

fn floats(reference: &Checkpoint, key: &str) -> Vec<f32> {
    reference
        .get(key)
        .unwrap_or_else(|| panic!("reference lacks {key}"))
        .clone()
        .convert_dtype(DType::F32)
        .try_to_vec()
        .unwrap()
}

fn largest(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// The worst difference, asserted within `tolerance × scale`.
fn assert_close(what: &str, got: &[f32], want: &[f32], scale: f32, tolerance: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance * scale,
        "{what}: off by {worst} (allowed {}):\n  got  {got:?}\n  want {want:?}",
        tolerance * scale
    );
    worst / scale.max(f32::MIN_POSITIVE)
}

/// Checks every reference map of `clip` (on whatever device it was loaded on) within `tolerance`
/// ([`ON_THE_CPU_BACKEND`] or [`ON_WEBGPU`]); returns how many were checked and the worst relative
/// difference.
pub async fn check_explanations(
    label: &str,
    clip: &LoadedClip,
    reference: &Checkpoint,
    image: &[u8],
    mask: &[u8],
    tolerance: f32,
) -> (usize, f32) {
    let pixels = decode(image).unwrap();
    let device = clip.model.device();
    let text = floats(reference, "text_embeddings");
    let embed_dim = clip.model.config.embed_dim;
    let classes = text.len() / embed_dim;
    assert_eq!(classes * embed_dim, text.len());
    let classifier = ZeroShotClassifier {
        classes: (0..classes).map(|index| format!("class {index}")).collect(),
        class_embeddings: Tensor::<1>::from_floats(text.as_slice(), &device)
            .reshape([classes, embed_dim]),
        logit_scale: floats(reference, "logit_scale")[0],
    };
    let (mut checked, mut worst) = (0, 0.0f32);
    for mode in ["none", "overlay", "attention"] {
        let encoder = Encoder::new(clip, &FocusMode::new(mode, FocusSettings::default())).unwrap();
        let pipeline = Pipeline::new(encoder, &classifier);
        let source = match mode {
            "none" => MaskSource::None,
            _ => MaskSource::MaskImage(mask.to_vec()),
        };
        let reference_mode = if mode == "none" { "plain" } else { mode };
        for (case, method, start_block) in [
            ("relevancy", ExplainMethod::Relevancy, None),
            ("relevancy-all", ExplainMethod::Relevancy, Some(0)),
            ("dense", ExplainMethod::Dense, None),
        ] {
            for which in ["predicted", "other"] {
                let key = format!("{reference_mode}.{case}.{which}");
                let what = format!("{label} {key}");
                let class = floats(reference, &format!("{key}.class"))[0] as usize;
                let request = ExplainRequest {
                    method,
                    class: (which == "other").then_some(class),
                    start_block,
                };
                let Explained {
                    logits,
                    explanation,
                    ..
                } = explain(&pipeline, &pixels, &source, &request)
                    .await
                    .unwrap_or_else(|error| panic!("{what}: {error}"));
                assert_eq!(explanation.class, class, "{what}: class");
                let want_logits = floats(reference, &format!("{key}.logits"));
                let scale = largest(&want_logits);
                assert_close(
                    &format!("{what} logits"),
                    &logits,
                    &want_logits,
                    scale,
                    tolerance,
                );
                let want = floats(reference, &format!("{key}.patch_map"));
                // A flat reference would let a map of constants pass.
                let (low, high) = want
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                assert!(high - low > 1e-2 * largest(&want), "{what}: flat reference");
                let patch = assert_close(
                    &format!("{what} patch map"),
                    &explanation.patch_map,
                    &want,
                    largest(&want),
                    tolerance,
                );
                let input = assert_close(
                    &format!("{what} input map"),
                    &explanation.input_map,
                    &floats(reference, &format!("{key}.input_map")),
                    1.0,
                    tolerance,
                );
                worst = worst.max(patch).max(input);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 2);
    (checked, worst)
}
