//! Support heads against independent references on the same embeddings
//! (`scripts/reference/gen_heads.py`: scikit-learn, NumPy and PyTorch transcriptions), on
//! synthetic clusters with known structure.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use medfocus::clip::preprocess::PreprocessConfig;
use medfocus::focus::FocusMode;
use medfocus::heads::features::accuracy;
use medfocus::heads::head_file::{ClipIdentity, FORMAT_VERSION, HeadHeader};
use medfocus::heads::train::{HeadSettings, TextPrior, TrainedHead, train_head};
use medfocus::heads::train::{Silent, TrainRun};
use medfocus::heads::{FeatureSet, HeadFile, HeadKind, HeadModel};
use serde_json::Value;

const FIXTURES: &str = "tests/fixtures/heads";

struct Synthetic {
    reference: Value,
    arrays: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
}

impl Synthetic {
    fn load(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
        let reference: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let bytes = std::fs::read(dir.join(format!("{name}.safetensors"))).unwrap();
        let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut arrays = BTreeMap::new();
        for (key, view) in tensors.tensors() {
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{key}: {other:?}"),
            };
            arrays.insert(key.to_string(), (view.shape().to_vec(), values));
        }
        Self { reference, arrays }
    }

    fn f32s(&self, key: &str) -> Vec<f32> {
        self.arrays[key].1.iter().map(|&v| v as f32).collect()
    }

    fn labels(&self, key: &str) -> Vec<usize> {
        self.arrays[key].1.iter().map(|&v| v as usize).collect()
    }

    fn classes(&self) -> usize {
        self.reference["classes"].as_u64().unwrap() as usize
    }

    fn dim(&self) -> usize {
        self.reference["dim"].as_u64().unwrap() as usize
    }

    fn set(&self, split: &str) -> FeatureSet {
        let names = (0..self.classes()).map(|c| format!("class {c}")).collect();
        FeatureSet::new(
            names,
            self.dim(),
            self.f32s(&format!("{split}_x")),
            self.labels(&format!("{split}_y")),
        )
        .unwrap()
    }

    fn text(&self) -> TextPrior {
        TextPrior {
            embeddings: self.f32s("text"),
            scale: self.reference["scale"].as_f64().unwrap() as f32,
        }
    }

    fn train(&self, settings: &HeadSettings) -> HeadModel {
        let device = Device::flex().autodiff();
        let (mut run, _) = TrainRun::open(None, "test", false).unwrap();
        let trained = train_head(
            &self.set("train"),
            &self.text(),
            settings,
            &mut run,
            &mut Silent,
            &device,
        )
        .unwrap();
        let file = head_file(settings.kind, self.classes(), self.dim(), trained);
        // Through the file format, as a user's head goes.
        let file = HeadFile::from_bytes(file.to_bytes().unwrap()).unwrap();
        HeadModel::new(&file, &Device::flex())
    }

    /// Test-set logits of a head.
    fn logits(&self, head: &HeadModel) -> Vec<f32> {
        let test = self.set("test");
        let logits = head.logits(test.tensor(&Device::flex())).unwrap();
        logits
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }
}

fn head_file(kind: HeadKind, classes: usize, dim: usize, trained: TrainedHead) -> HeadFile {
    HeadFile {
        header: HeadHeader {
            format: FORMAT_VERSION,
            kind,
            classes: (0..classes).map(|c| format!("class {c}")).collect(),
            templates: vec!["{}".into()],
            clip: ClipIdentity {
                name: "synthetic".into(),
                family: "none".into(),
                fingerprint: "0".into(),
                embed_dim: dim,
            },
            focus: FocusMode::none(),
            preprocess: PreprocessConfig::openai(224),
            text_scale: trained.text_scale,
            cache: trained.cache,
            training: trained.training,
        },
        tensors: trained.tensors,
    }
}

fn probabilities(logits: &[f32], classes: usize) -> Vec<f32> {
    let rows = logits.len() / classes;
    let tensor = Tensor::<2>::from_data(
        TensorData::new(logits.to_vec(), [rows, classes]),
        &Device::flex(),
    );
    softmax(tensor, 1).into_data().try_to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const SETS: [&str; 4] = ["separable", "shifted", "binary", "unrelated"];

#[test]
fn linear_probe_matches_scikit_learn_at_the_same_c() {
    for name in SETS {
        let set = Synthetic::load(name);
        let test_labels = set.labels("test_y");
        for row in set.reference["logistic"].as_array().unwrap() {
            let c = row["c"].as_f64().unwrap() as f32;
            let mut settings = HeadSettings::new(HeadKind::LinearProbe);
            settings.c = Some(c);
            let head = set.train(&settings);
            let ours = probabilities(&set.logits(&head), set.classes());
            let reference = set.f32s(row["probabilities"].as_str().unwrap());
            let diff = max_abs_diff(&ours, &reference);
            let acc = accuracy(&ours, set.classes(), &test_labels);
            let ref_acc = row["accuracy"].as_f64().unwrap() as f32;
            println!(
                "{name} C={c}: max |Δp| = {diff:.2e}, accuracy {acc:.4} (sklearn {ref_acc:.4})"
            );
            assert!(diff < 2e-3, "{name} C={c}: probabilities differ by {diff}");
            assert!((acc - ref_acc).abs() <= 1.0 / test_labels.len() as f32 + 1e-6);
        }
    }
}

#[test]
fn lp_text_matches_the_pytorch_transcription() {
    for name in SETS {
        let set = Synthetic::load(name);
        let reference = &set.reference["lp_text"];
        let mut settings = HeadSettings::new(HeadKind::LpText);
        settings.text_weight = Some(reference["text_weight"].as_f64().unwrap() as f32);
        let head = set.train(&settings);
        let ours = probabilities(&set.logits(&head), set.classes());
        let diff = max_abs_diff(&ours, &set.f32s("lp_text_proba"));
        let acc = accuracy(&ours, set.classes(), &set.labels("test_y"));
        // The reference is the float64 optimum. Where the objective's valley is flat, where it
        // ends in float32 depends on the last bits of every sum (measured, issue 36: flex's SIMD
        // kernels move single matmul outputs by one ulp, ~5e-8 relative, and our L-BFGS then
        // stopped 0.139 from the optimum on `separable` instead of 1.1e-4), and PyTorch's own
        // float32 L-BFGS, stopped as ours is, lands `float32_spread` from it (0.145 on
        // `separable`, 0.023 `shifted`, 9e-4 `binary`, 2.9e-3 `unrelated`; 1 and 2 threads
        // alike; `scripts/reference/gen_heads.py --lp-text`). So the probabilities may be twice
        // that far (5e-3 at least), and the objective, which float32 does resolve, must come
        // within 1e-3 of the optimum's (PyTorch float32: 3.8e-4 on `separable`).
        let bound = (2.0 * reference["float32_spread"].as_f64().unwrap() as f32).max(5e-3);
        let optimum = reference["loss"].as_f64().unwrap();
        let loss = head.header.training["final"]["loss"].as_f64().unwrap();
        println!(
            "{name}: LP+text max |Δp| = {diff:.2e} (bound {bound:.1e}), loss {loss:.7} (optimum \
             {optimum:.7}), accuracy {acc:.4} (ref {}) {}",
            reference["accuracy"], head.header.training["final"]
        );
        assert!(diff < bound, "{name}: {diff}");
        assert!(
            (loss - optimum).abs() < 1e-3 * optimum,
            "{name}: loss {loss}, optimum {optimum}"
        );
    }
}

#[test]
fn tip_adapter_logits_and_search_match_the_published_formula() {
    for name in SETS {
        let set = Synthetic::load(name);
        let reference = &set.reference["tip_adapter"];
        let mut settings = HeadSettings::new(HeadKind::TipAdapter);
        settings.tip_alpha = Some(reference["alpha"].as_f64().unwrap() as f32);
        settings.tip_beta = Some(reference["beta"].as_f64().unwrap() as f32);
        let ours = set.logits(&set.train(&settings));
        let expected = set.f32s("tip_logits");
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&ours, &expected);
        println!("{name}: Tip-Adapter logits max |Δ| = {diff:.2e} (largest logit {scale:.1})");
        assert!(diff < 1e-4 * scale.max(1.0), "{name}: {diff}");

        // The α/β search (leave-one-out on the support set) picks what the authors' loop picks.
        let searched = set.train(&HeadSettings::new(HeadKind::TipAdapter));
        let scalars = searched.header.cache.unwrap();
        let expected = &reference["search"];
        println!(
            "{name}: searched α = {}, β = {} (reference {}, {})",
            scalars.alpha, scalars.beta, expected["alpha"], expected["beta"]
        );
        assert!((scalars.alpha - expected["alpha"].as_f64().unwrap() as f32).abs() < 1e-4);
        assert!((scalars.beta - expected["beta"].as_f64().unwrap() as f32).abs() < 1e-4);
        let acc = accuracy(&set.logits(&searched), set.classes(), &set.labels("test_y"));
        assert!((acc - expected["accuracy"].as_f64().unwrap() as f32).abs() < 1e-6);
    }
}

#[test]
fn tip_adapter_f_keys_match_pytorch_training() {
    for name in SETS {
        let set = Synthetic::load(name);
        let reference = &set.reference["tip_adapter_f"];
        let mut settings = HeadSettings::new(HeadKind::TipAdapterF);
        settings.epochs = Some(reference["epochs"].as_u64().unwrap() as usize);
        settings.learning_rate = Some(reference["learning_rate"].as_f64().unwrap() as f32);
        settings.tip_alpha = Some(1.0);
        settings.tip_beta = Some(5.5);
        settings.holdout = 0.0;
        let device = Device::flex().autodiff();
        let (mut run, _) = TrainRun::open(None, "test", false).unwrap();
        let trained = train_head(
            &set.set("train"),
            &set.text(),
            &settings,
            &mut run,
            &mut Silent,
            &device,
        )
        .unwrap();
        let keys = &trained.tensors["cache.keys"].values;
        let diff = max_abs_diff(keys, &set.f32s("tip_f_keys"));
        let moved = max_abs_diff(&set.f32s("train_x"), &set.f32s("tip_f_keys"));
        println!(
            "{name}: Tip-Adapter-F keys max |Δ| = {diff:.2e} (training moved them {moved:.2e})"
        );
        assert!(
            diff < 1e-5 && moved > 1e-3,
            "{name}: {diff} (moved {moved})"
        );
        let head = HeadModel::new(
            &head_file(settings.kind, set.classes(), set.dim(), trained),
            &Device::flex(),
        );
        let logits = set.logits(&head);
        assert!(max_abs_diff(&logits, &set.f32s("tip_f_logits")) < 1e-3);
    }
}

/// With default settings (hyper-parameters searched on held-out images), every head reaches the
/// accuracy its reference reaches on the test clusters.
#[test]
fn every_head_reaches_its_reference_accuracy_with_default_settings() {
    for name in SETS {
        let set = Synthetic::load(name);
        let labels = set.labels("test_y");
        let reference = &set.reference;
        let best_sklearn = reference["logistic"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["accuracy"].as_f64().unwrap() as f32)
            .fold(0.0, f32::max);
        let targets = [
            (
                HeadKind::ZeroShot,
                reference["zero_shot_accuracy"].as_f64().unwrap() as f32,
            ),
            (HeadKind::LinearProbe, best_sklearn),
            (
                HeadKind::LpText,
                reference["lp_text"]["accuracy"].as_f64().unwrap() as f32,
            ),
            (
                HeadKind::TipAdapter,
                reference["tip_adapter"]["search"]["accuracy"]
                    .as_f64()
                    .unwrap() as f32,
            ),
            (
                HeadKind::TipAdapterF,
                reference["tip_adapter_f"]["accuracy"].as_f64().unwrap() as f32,
            ),
        ];
        for (kind, target) in targets {
            let head = set.train(&HeadSettings::new(kind));
            let acc = accuracy(&set.logits(&head), set.classes(), &labels);
            println!(
                "{name} {}: accuracy {acc:.4} (reference {target:.4})",
                kind.name()
            );
            // Held-out search on 8 images per class may pick a slightly different setting than
            // the reference's fixed one: allow 5 points.
            assert!(
                acc >= target - 0.05,
                "{name} {}: {acc} < {target}",
                kind.name()
            );
        }
    }
}

/// CoOp's loss and its gradient w.r.t. the context vectors, through the frozen open_clip text
/// tower (tiny committed checkpoint), against PyTorch autograd in float64.
#[test]
fn coop_gradient_matches_pytorch_autograd() {
    use medfocus::clip::load::load_clip_dir;
    use medfocus::heads::train::Objective;
    use medfocus::heads::train::coop::{CONTEXT, CoopObjective, CoopPrompts};

    let fixture = Synthetic::load("coop");
    let folder =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture.reference["model"].as_str().unwrap());
    let clip = load_clip_dir(&folder, &Device::flex()).unwrap();
    let classes: Vec<String> = fixture.reference["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let context_tokens = fixture.reference["context_tokens"].as_u64().unwrap() as usize;
    let device = Device::flex().autodiff();
    let prompts = CoopPrompts::new(&clip, &classes, context_tokens, &device).unwrap();
    let (shape, _) = &fixture.arrays["images"];
    let images = FeatureSet::new(
        classes.clone(),
        shape[1],
        fixture.f32s("images"),
        fixture.labels("labels"),
    )
    .unwrap();
    let mut objective = CoopObjective::new(&prompts, &images, None, &device);
    let (context_shape, _) = &fixture.arrays["context"];
    let context = Tensor::<2>::from_data(
        TensorData::new(
            fixture.f32s("context"),
            [context_shape[0], context_shape[1]],
        ),
        &device,
    )
    .require_grad();
    let params = BTreeMap::from([(CONTEXT.to_string(), context.clone())]);
    let (loss, _) = objective.loss(&params);
    let loss_value: f32 = loss.clone().into_scalar();
    let gradients = loss.backward();
    let gradient: Vec<f32> = context
        .grad(&gradients)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let expected_loss = fixture.arrays["loss"].1[0] as f32;
    let expected = fixture.f32s("gradient");
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&gradient, &expected);
    println!(
        "CoOp: loss {loss_value:.7} (PyTorch {expected_loss:.7}); gradient max |Δ| = {diff:.2e} (largest component {scale:.2e})"
    );
    assert!((loss_value - expected_loss).abs() < 1e-5);
    assert!(diff < 1e-3 * scale, "{diff} vs {scale}");
    // The class embeddings the learnt prompts give, too.
    let text: Vec<f32> = prompts
        .class_embeddings(context.detach())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(max_abs_diff(&text, &fixture.f32s("text")) < 1e-5);
}

/// The paper's fine-tune: λ·contrastive + (1−λ)·cross-entropy through the last image block of
/// the tiny open_clip, from the tokens entering it; loss and gradients against PyTorch autograd.
#[test]
fn finetune_gradient_matches_pytorch_autograd() {
    use medfocus::clip::load::load_clip_dir;
    use medfocus::heads::train::Objective;
    use medfocus::heads::train::finetune::{FinetuneObjective, FinetuneTower, TokenSet};

    let fixture = Synthetic::load("finetune");
    let reference = &fixture.reference;
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join(reference["model"].as_str().unwrap());
    let clip = load_clip_dir(&folder, &Device::flex()).unwrap();
    let classes: Vec<String> = reference["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let (shape, _) = &fixture.arrays["tokens"];
    let tokens = TokenSet {
        classes: classes.clone(),
        tokens: shape[1],
        width: shape[2],
        values: fixture.f32s("tokens"),
        labels: fixture.labels("labels"),
    };
    let text = TextPrior {
        embeddings: fixture.f32s("text"),
        scale: reference["scale"].as_f64().unwrap() as f32,
    };
    assert!((text.scale - clip.model.logit_scale).abs() < 1e-3);
    let device = Device::flex().autodiff();
    let blocks = reference["finetune_blocks"].as_u64().unwrap() as usize;
    let tower = FinetuneTower::new(&clip.model.vision, blocks, &device).unwrap();
    let weight = reference["contrastive_weight"].as_f64().unwrap() as f32;
    let mut objective = FinetuneObjective::new(&tower, &text, weight, &tokens, None, &device);
    let params: BTreeMap<String, Tensor<2>> = tower
        .init()
        .into_iter()
        .map(|(name, tensor)| (name, tensor.autodiff().require_grad()))
        .collect();
    let (loss, _) = objective.loss(&params);
    let loss_value: f32 = loss.clone().into_scalar();
    let gradients = loss.backward();
    let expected_loss = fixture.arrays["loss"].1[0] as f32;
    println!("fine-tune: loss {loss_value:.7} (PyTorch {expected_loss:.7})");
    assert!((loss_value - expected_loss).abs() < 1e-5);
    // burn's Linear keeps [in, out]; PyTorch's [out, in].
    for (ours, theirs, transposed) in [
        ("0.mlp.fc1.weight", "grad_fc1_weight", true),
        ("0.attn.in_proj.weight", "grad_in_proj_weight", true),
        ("0.ln_1.gamma", "grad_ln_1_weight", false),
    ] {
        let gradient = params[ours].grad(&gradients).unwrap();
        let gradient = if transposed {
            gradient.transpose()
        } else {
            gradient
        };
        let gradient: Vec<f32> = gradient.into_data().try_to_vec::<f32>().unwrap();
        let expected = fixture.f32s(theirs);
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&gradient, &expected);
        println!("fine-tune: ∂L/∂{ours} max |Δ| = {diff:.2e} (largest component {scale:.2e})");
        assert!(diff < 1e-3 * scale, "{ours}: {diff} vs {scale}");
    }
}

/// The fine-tune learns classes it was not given: three classes of tokens entering the tiny
/// open_clip's blocks (a class direction plus noise as large), class texts that are random unit
/// vectors, default settings but the learning rate: the default 1e-4 is the paper's for ViT-B/16;
/// this tower is 64 wide with small random weights and reaches 0.62 in its 50 epochs at 1e-4
/// (1.00 at 1e-3). Untrained, the tower's embeddings fall near chance against those
/// texts; trained on 16 images a class, it must classify 32 unseen ones a class well above the
/// 1/3 of chance. (The random-weight fixture's own text tower cannot be used here: its class
/// prompts embed alike — `rectangle` and `ellipse` to cosine 1.000 — so no head can learn from
/// them; CoOp, which only trains the text side, is covered by its gradient parity test alone.)
#[test]
fn the_finetune_learns_unseen_classes_well_above_chance() {
    use medfocus::clip::load::load_clip_dir;
    use medfocus::heads::rng::SplitMix64;
    use medfocus::heads::train::finetune::{FinetuneTower, TokenSet, train_finetune};
    use medfocus::heads::train::run::Params;
    use medfocus::heads::train::training::Training;

    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip/openclip-tiny");
    let clip = load_clip_dir(&folder, &Device::flex()).unwrap();
    let vision = &clip.model.vision;
    let (classes, tokens, width, dim) = (3, 17, 64, 24);
    let names: Vec<String> = (0..classes).map(|c| format!("class {c}")).collect();
    let mut rng = SplitMix64::new(11);
    let mut normal =
        |count: usize| -> Vec<f32> { (0..count).map(|_| rng.normal() as f32).collect() };
    let directions = normal(classes * width);
    let token_set = |per_class: usize, noise: Vec<f32>| {
        let labels: Vec<usize> = (0..classes * per_class).map(|i| i % classes).collect();
        let values = (0..labels.len() * tokens * width)
            .map(|i| {
                let class = labels[i / (tokens * width)];
                directions[class * width + i % width] + noise[i]
            })
            .collect();
        TokenSet {
            classes: names.clone(),
            tokens,
            width,
            values,
            labels,
        }
    };
    let train = token_set(16, normal(classes * 16 * tokens * width));
    let test = token_set(32, normal(classes * 32 * tokens * width));
    let mut embeddings = normal(classes * dim);
    for row in embeddings.chunks_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    let text = TextPrior {
        embeddings: embeddings.clone(),
        scale: clip.model.logit_scale,
    };

    let mut settings = HeadSettings::new(HeadKind::Finetune);
    settings.learning_rate = Some(1e-3);
    let device = Device::flex().autodiff();
    let (mut run, _) = TrainRun::open(None, "test", false).unwrap();
    let trained = train_finetune(
        vision,
        &train,
        &text,
        Training::new(&settings, &mut run, &mut Silent, &device),
    )
    .unwrap();

    // The test tokens through the tower with the untrained blocks and with the trained ones.
    let tower = FinetuneTower::new(vision, settings.finetune_blocks, &Device::flex()).unwrap();
    let initial = tower.init();
    let trained_params: Params = initial
        .iter()
        .map(|(key, tensor)| {
            let (index, path) = key.split_once('.').unwrap();
            let block = tower.first_block + index.parse::<usize>().unwrap();
            let exported = &trained.tensors[&format!("vision.blocks.{block}.{path}")];
            let values = TensorData::new(exported.values.clone(), tensor.dims());
            (key.clone(), Tensor::<2>::from_data(values, &Device::flex()))
        })
        .collect();
    let text_tensor =
        Tensor::<2>::from_data(TensorData::new(embeddings, [classes, dim]), &Device::flex());
    let test_accuracy = |params: &Params| {
        let images = tower.embed(test.tensor(&Device::flex()), params);
        let logits: Vec<f32> = images
            .matmul(text_tensor.clone().transpose())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(logits.len(), test.labels.len() * classes);
        accuracy(&logits, classes, &test.labels)
    };
    let (before, after) = (test_accuracy(&initial), test_accuracy(&trained_params));
    println!(
        "fine-tune on unseen classes: test accuracy {before:.3} untrained, {after:.3} trained"
    );
    assert!(before < 0.5, "untrained already {before}");
    assert!(after >= 0.9, "trained {after}");
}
