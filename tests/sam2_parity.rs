//! Parity of the SAM 2 port with Meta's `sam2` package, on a checkpoint and outputs written by
//! `scripts/reference/gen_sam2.py small` (SAM 2.1 tiny's YAML shrunk, random weights), loaded
//! unmodified from Meta's `.pt` layout. The real SAM 2.1 tiny config runs in the ignored test at
//! the end (`gen_sam2.py large`, then `cargo test --release --test sam2_parity -- --ignored`).
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use medfocus::clip::preprocess::Pixels8;
use medfocus::imaging;
use medfocus::sam2::automatic_mask_generator::{generate, generate_in_bands};
use medfocus::sam2::position_encoding::sine_position_encoding;
use medfocus::sam2::predictor::read_masks;
use medfocus::sam2::quantize::{Int8Granularity, dequantize, quantize_int8};
use medfocus::sam2::transforms::preprocess;
use medfocus::sam2::{Prompt, Sam2Config, Sam2Error, Sam2Model, Sam2Predictor};
use medfocus::weights::Checkpoint;
use serde_json::Value;

mod common;
use common::{max_abs_diff, sam2_amg};

// About ten times the largest error measured on the small fixture (CPU backend, 2-core AMD EPYC
// with AVX-512): features 9.1e-6, low-res logits 1.9e-5 from the float64 answer, IoU 4.5e-7. The
// real-size model's errors are larger (features 2.5e-5, logits 4.8e-4, IoU 2.0e-6): its test
// scales these by `LARGE_MODEL_SCALE`.
const FEATURE_TOLERANCE: f32 = 1e-4;
const LOW_RES_TOLERANCE: f32 = 2e-4;
const IOU_TOLERANCE: f32 = 5e-6;
const LARGE_MODEL_SCALE: f32 = 10.0;
const MIN_MASK_IOU: f64 = 0.99;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared_data() -> PathBuf {
    std::env::var_os("MEDFOCUS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("../shared/data"))
}

struct Fixture {
    dir: PathBuf,
    index: Value,
    reference: Checkpoint,
}

impl Fixture {
    fn open(dir: PathBuf) -> Self {
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).unwrap())
                .unwrap();
        let reference = Checkpoint::open(&dir.join("reference.safetensors")).unwrap();
        Self {
            dir,
            index,
            reference,
        }
    }

    fn small() -> Self {
        Self::open(manifest().join("tests/fixtures/sam2"))
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(self.index["checkpoint"].as_str().unwrap())
    }

    fn config(&self) -> Sam2Config {
        let name = self.index["checkpoint"]
            .as_str()
            .unwrap()
            .trim_end_matches(".pt");
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.config.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn tensor(&self, key: &str) -> TensorData {
        self.reference
            .get(key)
            .unwrap_or_else(|| panic!("reference tensor {key}"))
            .clone()
    }

    fn floats(&self, key: &str) -> Vec<f32> {
        self.tensor(key)
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }

    fn input(&self, key: &str, device: &Device) -> Tensor<4> {
        Tensor::from_data(self.tensor(&format!("{key}.input")), device)
    }

    fn images(&self) -> Vec<Value> {
        self.index["images"].as_array().unwrap().clone()
    }
}

fn load(fixture: &Fixture, device: &Device) -> Sam2Model {
    Sam2Model::load(&fixture.checkpoint_path(), Some(&fixture.config()), device).unwrap()
}

/// Channels-last `[1, h, w, c]` as the reference's `[1, c, h, w]` values.
fn nchw(tensor: Tensor<4>) -> Vec<f32> {
    tensor
        .permute([0, 3, 1, 2])
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

/// The prompt of an index entry; a `mask_from` prompt gets the best low-res mask of that earlier
/// prompt from the reference (as the generator fed it).
fn prompt_for(fixture: &Fixture, key: &str, json: &Value) -> (Prompt, bool) {
    let (mut prompt, multimask) = prompt_from(json);
    if let Some(source) = json["mask_from"].as_str() {
        let low = fixture.floats(&format!("{key}.{source}.low_res_masks"));
        let ious = fixture.floats(&format!("{key}.{source}.iou"));
        let best = (0..ious.len())
            .max_by(|&a, &b| ious[a].total_cmp(&ious[b]))
            .unwrap();
        let size = low.len() / ious.len();
        prompt.mask_input = Some(low[best * size..(best + 1) * size].to_vec());
    }
    (prompt, multimask)
}

fn prompt_from(json: &Value) -> (Prompt, bool) {
    let pair = |v: &Value| {
        let a = v.as_array().unwrap();
        [a[0].as_f64().unwrap() as f32, a[1].as_f64().unwrap() as f32]
    };
    let points = json["points"]
        .as_array()
        .map(|p| p.iter().map(pair).collect())
        .unwrap_or_default();
    let labels = json["labels"]
        .as_array()
        .map(|l| l.iter().map(|v| v.as_i64().unwrap() as i32).collect())
        .unwrap_or_default();
    let box_xyxy = json["box"].as_array().map(|b| {
        let v: Vec<f32> = b.iter().map(|x| x.as_f64().unwrap() as f32).collect();
        [v[0], v[1], v[2], v[3]]
    });
    (
        Prompt {
            points,
            labels,
            box_xyxy,
            mask_input: None,
        },
        json["multimask"].as_bool().unwrap(),
    )
}

fn unpack_bits(packed: &[u8], count: usize) -> Vec<bool> {
    (0..count)
        .map(|i| packed[i / 8] & (0x80 >> (i % 8)) != 0)
        .collect()
}

fn mask_iou(a: &[bool], b: &[bool]) -> f64 {
    let intersection = a.iter().zip(b).filter(|(x, y)| **x && **y).count();
    let union = a.iter().zip(b).filter(|(x, y)| **x || **y).count();
    if union == 0 {
        1.0
    } else {
        intersection as f64 / union as f64
    }
}

/// Features, low-res logits, IoU predictions and full-size masks of every image and prompt.
fn check_predictor(fixture: &Fixture, model: Sam2Model, device: &Device, scale: f32) {
    let predictor = Sam2Predictor::new(model);
    for image in fixture.images() {
        let key = image["key"].as_str().unwrap();
        let (width, height) = (
            image["width"].as_u64().unwrap() as usize,
            image["height"].as_u64().unwrap() as usize,
        );
        let embedded = predictor.embed_input(fixture.input(key, device), width, height);
        let embed = nchw(embedded.features.image_embed.clone());
        let diff = max_abs_diff(&embed, &fixture.floats(&format!("{key}.image_embed")));
        println!("{key} image embedding max |Δ| {diff:.2e}");
        assert!(
            diff <= FEATURE_TOLERANCE * scale,
            "{key} image embedding {diff}"
        );
        let high_res = embedded.features.high_res.clone().unwrap();
        for (level, feature) in high_res.into_iter().enumerate() {
            let ours = nchw(feature);
            let diff = max_abs_diff(
                &ours,
                &fixture.floats(&format!("{key}.high_res_feats.{level}")),
            );
            println!("{key} high-res level {level} max |Δ| {diff:.2e}");
            assert!(
                diff <= FEATURE_TOLERANCE * scale,
                "{key} high-res {level}: {diff}"
            );
        }
        for prompt_json in image["prompts"].as_array().unwrap() {
            let name = prompt_json["name"].as_str().unwrap();
            let (prompt, multimask) = prompt_for(fixture, key, prompt_json);
            let prediction = predictor.predict(&embedded, &[prompt], multimask).unwrap();
            let low = prediction
                .low_res_masks
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let reference_low = fixture.floats(&format!("{key}.{name}.low_res_masks"));
            let diff = max_abs_diff(&low, &reference_low);
            let exact_low = fixture.floats(&format!("{key}.{name}.low_res_masks_f64"));
            let exact_diff = max_abs_diff(&low, &exact_low);
            let reference_own = max_abs_diff(&reference_low, &exact_low);
            let ious = prediction
                .iou_predictions
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let iou_diff = max_abs_diff(&ious, &fixture.floats(&format!("{key}.{name}.iou")));
            let iou_exact = max_abs_diff(&ious, &fixture.floats(&format!("{key}.{name}.iou_f64")));
            println!(
                "{key} {name}: low-res logits max |Δ| {diff:.2e} to the f32 reference, {exact_diff:.2e} to f64 (reference f32 itself: {reference_own:.2e}); IoU max |Δ| {iou_diff:.2e} / {iou_exact:.2e}"
            );
            // The bound is 1e-3, or — where PyTorch's own float32 answer is further than that
            // from the exact one (sharp attention in a random-weight model) — no worse than it.
            // Capped: a reference this far from its own f64 answer is a broken fixture.
            let bound = (LOW_RES_TOLERANCE * scale).max(reference_own).min(1e-2);
            assert!(exact_diff <= bound, "{key} {name} low-res {exact_diff}");
            assert!(
                iou_exact <= IOU_TOLERANCE * scale,
                "{key} {name} iou {iou_exact}"
            );
            assert!(
                iou_diff <= IOU_TOLERANCE * scale,
                "{key} {name} iou {iou_diff}"
            );

            let whole: Vec<bool> = prediction
                .full_size_masks()
                .greater_elem(0.0)
                .into_data()
                .try_to_vec::<bool>()
                .unwrap();
            // What the pipeline reads: bands of rows (forced to a few rows here; a band is at
            // most 64 MiB of logits in use), equal to the whole made in one piece.
            let ours = pollster::block_on(prediction.read_inside_in_bands(0, 0.0, 7 * width * 4))
                .unwrap()
                .concat();
            assert!(
                ours == whole,
                "{key} {name}: banded masks differ from the whole"
            );
            let packed = fixture
                .tensor(&format!("{key}.{name}.masks_packed"))
                .try_to_vec::<u8>()
                .unwrap();
            let count = ious.len();
            let row = packed.len() / count;
            for mask in 0..count {
                let reference = unpack_bits(&packed[mask * row..], width * height);
                let iou = mask_iou(
                    &ours[mask * width * height..(mask + 1) * width * height],
                    &reference,
                );
                println!("{key} {name} mask {mask}: IoU with the reference {iou:.5}");
                assert!(iou >= MIN_MASK_IOU, "{key} {name} mask {mask}: IoU {iou}");
            }
        }
    }
}

#[test]
fn small_model_matches_the_reference_predictor() {
    let device = Device::flex();
    let fixture = Fixture::small();
    check_predictor(&fixture, load(&fixture, &device), &device, 1.0);
}

#[test]
fn neck_sine_encoding_matches() {
    let fixture = Fixture::small();
    let reference = fixture.tensor("vision_pos_enc.last");
    let shape = reference.shape().to_vec();
    let ours = sine_position_encoding(shape[1], shape[2], shape[3]);
    let diff = max_abs_diff(
        &ours,
        &reference.convert::<f32>().try_to_vec::<f32>().unwrap(),
    );
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn preprocessing_matches_sam2_transforms() {
    let fixture = Fixture::small();
    let size = fixture.index["image_size"].as_u64().unwrap() as usize;
    for image in fixture.images() {
        let key = image["key"].as_str().unwrap();
        let bytes = std::fs::read(shared_data().join(image["file"].as_str().unwrap())).unwrap();
        let decoded = imaging::decode_image(&bytes).unwrap();
        let ours = preprocess(&Pixels8::from_image(&decoded.pixels), size);
        let reference = fixture.floats(&format!("{key}.input"));
        let diff = max_abs_diff(&ours, &reference);
        let mean = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / ours.len() as f32;
        println!("{key}: input max |Δ| {diff:.2e}, mean |Δ| {mean:.2e}");
        // Our JPEG decoder differs from Pillow's libjpeg-turbo by a level in places (measured
        // in the CLIP work); one level is 1/255/std ≈ 0.0175 after normalisation.
        assert!(diff <= 2.0 / 255.0 / 0.224, "{key}: {diff}");
        assert!(mean <= 1e-3, "{key}: mean {mean}");
    }
}

#[test]
fn automatic_masks_match_the_reference_generator() {
    let device = Device::flex();
    let fixture = Fixture::small();
    let predictor = Sam2Predictor::new(load(&fixture, &device));
    let image = &fixture.images()[0];
    assert_eq!(fixture.index["amg"]["image"], image["file"]);
    let embedded = predictor.embed_input(
        fixture.input("image0", &device),
        image["width"].as_u64().unwrap() as usize,
        image["height"].as_u64().unwrap() as usize,
    );
    for run in sam2_amg::runs(&fixture.index) {
        let settings = sam2_amg::settings(run);
        let ours = pollster::block_on(generate(&predictor, &embedded, &settings)).unwrap();
        // Made a few masks and rows at a time (how a large image is done), the same masks.
        let width = embedded.width;
        let in_bands = pollster::block_on(generate_in_bands(
            &predictor,
            &embedded,
            &settings,
            &|_, _| {},
            5 * width * 4,
        ))
        .unwrap();
        assert!(in_bands == ours, "masks made in bands differ");
        let iou = sam2_amg::check(&ours, run, IOU_TOLERANCE);
        println!(
            "NMS {}: {} masks as the reference, IoU max |Δ| {iou:.2e}",
            settings.box_nms_thresh,
            ours.len()
        );
    }
}

#[test]
fn masks_read_back_best_first() {
    let device = Device::flex();
    let fixture = Fixture::small();
    let predictor = Sam2Predictor::new(load(&fixture, &device));
    let image = &fixture.images()[0];
    let (width, height) = (
        image["width"].as_u64().unwrap() as usize,
        image["height"].as_u64().unwrap() as usize,
    );
    let embedded = predictor.embed_input(fixture.input("image0", &device), width, height);
    let prompt = Prompt::point(width as f32 / 2.0, height as f32 / 2.0);
    let prediction = predictor.predict(&embedded, &[prompt], true).unwrap();
    let masks = pollster::block_on(read_masks(&prediction, 0)).unwrap();
    assert_eq!(masks.len(), 3);
    assert!(
        masks
            .windows(2)
            .all(|pair| pair[0].predicted_iou >= pair[1].predicted_iou)
    );
    assert_eq!(masks[0].pixels.len(), width * height);
}

#[test]
fn bad_prompts_are_refused_with_reasons() {
    let device = Device::flex();
    let fixture = Fixture::small();
    let predictor = Sam2Predictor::new(load(&fixture, &device));
    let embedded = predictor.embed_input(fixture.input("image0", &device), 100, 80);
    let cases = [
        (Prompt::point(150.0, 10.0), "outside"),
        (Prompt::boxed([50.0, 10.0, 20.0, 40.0]), "x0 < x1"),
        (
            Prompt {
                labels: vec![],
                ..Prompt::point(1.0, 1.0)
            },
            "labels",
        ),
        (
            Prompt {
                labels: vec![5],
                ..Prompt::point(1.0, 1.0)
            },
            "label 5",
        ),
        (
            Prompt {
                mask_input: Some(vec![0.0; 10]),
                ..Prompt::point(1.0, 1.0)
            },
            "the mask prompt has 10 values",
        ),
        (Prompt::default(), "a point or a box"),
    ];
    for (prompt, expected) in cases {
        let error = predictor
            .predict(&embedded, &[prompt], true)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn wrong_or_truncated_checkpoints_give_clear_errors() {
    let device = Device::flex();
    let fixture = Fixture::small();
    let dir = std::env::temp_dir().join(format!("medfocus-sam2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes = std::fs::read(fixture.checkpoint_path()).unwrap();
    let truncated = dir.join("truncated.pt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let error = Sam2Model::load(&truncated, Some(&fixture.config()), &device).unwrap_err();
    assert!(matches!(error, Sam2Error::Weights(_)), "{error}");
    assert!(error.to_string().contains("truncated.pt"), "{error}");

    // A CLIP checkpoint is not a SAM 2 one, and says so.
    let clip = manifest().join("tests/fixtures/clip/openclip-tiny/open_clip_model.safetensors");
    let error = Sam2Model::load(&clip, None, &device).unwrap_err();
    assert!(
        error.to_string().contains("not a SAM 2 checkpoint"),
        "{error}"
    );

    // The small model's shapes are not a published model: without its config, that is said.
    let error = Sam2Model::load(&fixture.checkpoint_path(), None, &device).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("none of SAM 2's published models"),
        "{error}"
    );

    // The right file with the wrong config: the published tiny model has 25 times the small
    // fixture's values, so building stops once the config asks for far more than the file
    // holds (issue 16: before, zeros of every missing tensor were built first).
    let error = Sam2Model::load(
        &fixture.checkpoint_path(),
        Some(&Sam2Config::hiera_tiny()),
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error
            .contains("sam2.1-tiny-small.pt holds 1580114 values and its config asks for far more")
            && error.contains("nothing was built"),
        "{error}"
    );
    // A config close to the file's size but not its shapes names the mismatching tensors.
    let mut config = fixture.config();
    config.decoder.iou_head_hidden_dim += 8;
    let error = Sam2Model::load(&fixture.checkpoint_path(), Some(&config), &device)
        .unwrap_err()
        .to_string();
    assert!(error.contains("does not fit the"), "{error}");
    assert!(
        error.contains("sam_mask_decoder.iou_prediction_head.layers.0.weight"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn burnpack_round_trip_and_int8_stay_close() {
    let device = Device::flex();
    let fixture = Fixture::small();
    let model = load(&fixture, &device);
    let input = fixture.input("image0", &device);
    let reference = nchw(model.encode_image(input.clone()).image_embed);

    let bytes = model.to_burnpack("f32").unwrap();
    let error = Sam2Model::from_burnpack(bytes[..bytes.len() / 2].to_vec(), &device).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the SAM 2 burnpack is cut short or damaged"),
        "{error}"
    );
    let (restored, label) = Sam2Model::from_burnpack(bytes, &device).unwrap();
    assert_eq!(label, "f32");
    assert_eq!(restored.config, fixture.config());
    let again = nchw(restored.encode_image(input.clone()).image_embed);
    assert_eq!(max_abs_diff(&again, &reference), 0.0);

    for granularity in [Int8Granularity::PerTensor, Int8Granularity::PerBlock(32)] {
        let quantized = quantize_int8(load(&fixture, &device), granularity);
        let bytes = quantized.to_burnpack(&granularity.label()).unwrap();
        let fp32_bytes = load(&fixture, &device).to_burnpack("f32").unwrap().len();
        println!(
            "{}: {} bytes (f32: {fp32_bytes})",
            granularity.label(),
            bytes.len()
        );
        assert!(
            bytes.len() * 2 < fp32_bytes,
            "int8 should be well under half the size"
        );
        let (restored, label) = Sam2Model::from_burnpack(bytes, &device).unwrap();
        assert_eq!(label, granularity.label());
        let ours = nchw(restored.encode_image(input.clone()).image_embed);
        let cosine = cosine(&ours, &reference);
        println!(
            "{}: image embedding cosine to f32 {cosine:.5}",
            granularity.label()
        );
        assert!(cosine > 0.99, "{cosine}");
        // Expanded to f32 (as the browser does on WebGPU) it computes the same thing.
        let expanded = nchw(dequantize(restored).encode_image(input.clone()).image_embed);
        let diff = max_abs_diff(&expanded, &ours);
        assert!(diff < 1e-4, "dequantized vs int8: {diff}");
    }

    let error = Sam2Model::from_burnpack(b"not a burnpack at all".to_vec(), &device).unwrap_err();
    assert!(
        error.to_string().contains("not a MedFocus SAM 2 burnpack"),
        "{error}"
    );
}

/// Issue 16: a burnpack carries its own config, and the skeleton it is read into is built from
/// that config before the tensors are read. One whose background position embedding claims a
/// 100000² grid (40 TB of zeros) used to die allocating the skeleton; now it is refused at that
/// tensor, nothing of its size allocated, because the file holds far fewer values.
#[test]
fn a_burnpack_whose_config_is_far_larger_than_its_tensors_is_refused() {
    let device = Device::flex();
    let fixture = Fixture::small();
    let mut model = load(&fixture, &device);
    model.config.hiera.window_pos_embed_bkg_spatial_size = [100_000, 100_000];
    let bytes = model.to_burnpack("f32").unwrap();
    let error = Sam2Model::from_burnpack(bytes, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("pos_embed")
            && error.contains("100000, 100000")
            && error.contains("nothing was built"),
        "{error}"
    );
}

/// The burnpacks the browser tests load are exports of the committed checkpoint (regenerate
/// with `medfocus weights export-sam2`, see tests/fixtures/sam2/README.md).
#[test]
fn committed_burnpacks_are_exports_of_the_checkpoint() {
    let device = Device::flex();
    let fixture = Fixture::small();
    let input = fixture.input("image0", &device);
    let fresh = load(&fixture, &device);
    let expected = nchw(fresh.encode_image(input.clone()).image_embed);
    let f32_pack = std::fs::read(fixture.dir.join("sam2.1-tiny-small.f32.bpk")).unwrap();
    let (committed, label) = Sam2Model::from_burnpack(f32_pack, &device).unwrap();
    assert_eq!(label, "f32");
    assert_eq!(
        max_abs_diff(
            &nchw(committed.encode_image(input.clone()).image_embed),
            &expected
        ),
        0.0
    );

    let granularity = Int8Granularity::PerBlock(32);
    let quantized = quantize_int8(load(&fixture, &device), granularity);
    let expected = nchw(quantized.encode_image(input.clone()).image_embed);
    let int8_pack = std::fs::read(fixture.dir.join("sam2.1-tiny-small.int8.bpk")).unwrap();
    let (committed, label) = Sam2Model::from_burnpack(int8_pack, &device).unwrap();
    assert_eq!(label, granularity.label());
    assert_eq!(
        max_abs_diff(&nchw(committed.encode_image(input).image_embed), &expected),
        0.0
    );
}

/// Counts the weights held as int8.
struct QuantizedWeights(usize);

impl burn::module::ModuleVisitor for QuantizedWeights {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        if matches!(param.dtype(), burn::tensor::DType::QFloat(_)) {
            self.0 += 1;
        }
    }
}

/// Issue 36: on the CPU backend an int8 burnpack is expanded to f32 once, at load
/// (`int8_computes_on`): burn's CPU int8 matmul expands every weight on every call (measured
/// 1.3× slower `set_image`, 3× slower prompts). The values are the int8 model's.
#[test]
fn int8_weights_are_expanded_once_on_the_cpu_backend() {
    use burn::module::Module;
    let device = Device::flex();
    let fixture = Fixture::small();
    assert!(!medfocus::sam2::quantize::int8_computes_on(&device));
    let input = fixture.input("image0", &device);
    let int8_pack = std::fs::read(fixture.dir.join("sam2.1-tiny-small.int8.bpk")).unwrap();
    let (as_int8, _) = Sam2Model::from_burnpack(int8_pack.clone(), &device).unwrap();
    let mut held = QuantizedWeights(0);
    as_int8.visit(&mut held);
    assert!(held.0 > 10, "the fixture holds int8 weights: {}", held.0);
    let expected = nchw(as_int8.encode_image(input.clone()).image_embed);

    let (expanded, label) = Sam2Model::from_burnpack_for(int8_pack, &device).unwrap();
    assert_eq!(
        label, "int8-per-block-32",
        "the label names the stored weights"
    );
    let mut held = QuantizedWeights(0);
    expanded.visit(&mut held);
    assert_eq!(held.0, 0, "int8 weights left on the CPU backend");
    let diff = max_abs_diff(&nchw(expanded.encode_image(input).image_embed), &expected);
    assert!(diff < 1e-4, "expanded vs int8: {diff}");

    // `load_file`, which the CLI uses, reads it the same way.
    let path = fixture.dir.join("sam2.1-tiny-small.int8.bpk");
    let (loaded, _) = Sam2Model::load_file(&path, None, &device).unwrap();
    let mut held = QuantizedWeights(0);
    loaded.visit(&mut held);
    assert_eq!(held.0, 0);
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The real SAM 2.1 tiny config (Meta's YAML unmodified, random weights): run
/// `python scripts/reference/gen_sam2.py large` first.
#[test]
#[ignore = "needs fixtures-large (python scripts/reference/gen_sam2.py large)"]
fn sam2_1_hiera_tiny_matches_the_reference() {
    let dir = manifest().join("fixtures-large/sam2");
    assert!(
        Path::new(&dir.join("index.json")).exists(),
        "run `python scripts/reference/gen_sam2.py large` first"
    );
    let device = Device::flex();
    let fixture = Fixture::open(dir);
    // The preset, detected from the checkpoint's shapes, is exactly Meta's config.
    let model = Sam2Model::load(&fixture.checkpoint_path(), None, &device).unwrap();
    let mut expected = fixture.config();
    expected.name = model.config.name.clone();
    assert_eq!(model.config, expected);
    check_predictor(&fixture, model, &device, LARGE_MODEL_SCALE);
}
