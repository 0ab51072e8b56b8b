//! Parity of the explanations (`medfocus::explain`) with a PyTorch transcription of each method
//! (`scripts/reference/gen_explain.py`, autograd for the relevancy) on the committed tiny
//! open_clip, Hugging Face and BiomedCLIP fixtures: a plain image, the paper's overlay prompt and
//! the attention focus; the predicted class and another; relevancy from the last block and from
//! every block, and the dense map.
#![cfg(not(target_arch = "wasm32"))]

use medfocus::clip::load::load_clip_dir;
use medfocus::focus::{Mask, VisualPrompt, prompt};
use medfocus::pipeline::decode;
use medfocus::weights::Checkpoint;

mod common;
use common::explain::{ON_THE_CPU_BACKEND, check_explanations};
use common::manifest;

fn fixture(name: &str) -> std::path::PathBuf {
    manifest().join("tests/fixtures/explain").join(name)
}

#[test]
fn maps_match_the_pytorch_transcription_for_every_family_focus_and_method() {
    let image = std::fs::read(fixture("image.png")).unwrap();
    let mask = std::fs::read(fixture("mask.png")).unwrap();
    let device = burn::tensor::Device::flex();
    for model in ["openclip-tiny", "hf-clip-tiny", "biomedclip-tiny"] {
        let clip = load_clip_dir(&manifest().join("tests/fixtures/clip").join(model), &device)
            .unwrap_or_else(|error| panic!("{model}: {error}"));
        let reference = Checkpoint::open(&fixture(&format!("{model}.safetensors"))).unwrap();
        let (checked, worst) = pollster::block_on(check_explanations(
            model,
            &clip,
            &reference,
            &image,
            &mask,
            ON_THE_CPU_BACKEND,
        ));
        println!("{model}: {checked} maps, worst relative difference {worst:.1e}");
    }
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

/// Trained heads are explained through their own formula (and a fine-tune through its own
/// blocks): the probabilities an explanation comes with are the head's prediction, and both
/// methods give a finite map that is not flat, for the predicted class and every other.
#[test]
fn heads_are_explained_through_the_head_and_agree_with_its_prediction() {
    use medfocus::explain::{ExplainMethod, ExplainRequest, explain};
    use medfocus::heads::{HeadFile, HeadModel};
    use medfocus::pipeline::MaskSource;
    let device = burn::tensor::Device::flex();
    let clip = load_clip_dir(
        &manifest().join("tests/fixtures/clip/openclip-tiny"),
        &device,
    )
    .unwrap();
    let image = std::fs::read(common::shared("brain-mri/meningioma/Te-me_0016.jpg")).unwrap();
    let pixels = decode(&image).unwrap();
    for name in ["brain-mri-tip-adapter-f.mfh", "chest-xray-finetune.mfh"] {
        let file = HeadFile::read(&manifest().join("tests/fixtures/heads").join(name)).unwrap();
        let head = HeadModel::new(&file, &device);
        let pipeline = head.pipeline(&clip).unwrap();
        assert!(!pipeline.encoder.needs_region(), "{name}");
        let predicted = pollster::block_on(pipeline.classify(&pixels, &MaskSource::None)).unwrap();
        for method in [ExplainMethod::Relevancy, ExplainMethod::Dense] {
            for class in 0..head.classes().len() {
                let request = ExplainRequest {
                    method,
                    class: Some(class),
                    start_block: None,
                };
                let explained =
                    pollster::block_on(explain(&pipeline, &pixels, &MaskSource::None, &request))
                        .unwrap();
                let got = &explained.prediction.probabilities;
                assert_eq!(got.len(), predicted.probabilities.len());
                for (a, b) in got.iter().zip(&predicted.probabilities) {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{name} {method:?}: {got:?} vs {:?}",
                        predicted.probabilities
                    );
                }
                let map = &explained.explanation.patch_map;
                assert_eq!(map.len(), 16);
                let (low, high) = map
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                assert!(
                    low.is_finite() && high.is_finite() && high > low,
                    "{name} {method:?} class {class}: {map:?}"
                );
            }
        }
    }
}
