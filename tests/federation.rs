//! What federated training asks of the `medfocus` binary (issue 34), on `../shared/data` with the
//! tiny fixture CLIP: a head from the prompts alone that answers as zero-shot, training from given
//! weights on a site that lacks a class, rounds of one plain gradient step averaged over three
//! sites equal to central gradient descent, FedProx's pull, a head's figures on a data set, and
//! every misuse refused by name. (The Flower app itself: `federated/tests`.)
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use medfocus::heads::arrays::read_npz;
use medfocus::heads::head_file::HostTensor;

mod common;

use common::cli::{fixture, medfocus, scratch, text};
use common::shared;

const CLASSES: &str = "glioma,meningioma,notumor,pituitary";

/// Three non-IID sites: each lacks one class; together, every brain-MRI image.
const SITES: [(&str, &[&str]); 3] = [
    (
        "a",
        &[
            "glioma/Te-gl_0010.jpg",
            "glioma/Te-gl_0011.jpg",
            "meningioma/Te-me_0016.jpg",
            "meningioma/Te-me_0017.jpg",
            "meningioma/Te-me_0019.jpg",
            "notumor/Te-no_0021.jpg",
        ],
    ),
    (
        "b",
        &[
            "glioma/Te-gl_0012.jpg",
            "glioma/Te-gl_0013.jpg",
            "meningioma/Te-me_0018.jpg",
            "meningioma/Te-me_0020.jpg",
            "pituitary/Te-pi_0014.jpg",
            "pituitary/Te-pi_0015.jpg",
        ],
    ),
    (
        "c",
        &[
            "glioma/Te-gl_0014.jpg",
            "glioma/Te-gl_0015.jpg",
            "notumor/Te-no_0022.jpg",
            "notumor/Te-no_0023.jpg",
            "pituitary/Te-pi_0016.jpg",
        ],
    ),
];

fn build_sites(dir: &Path) -> Vec<PathBuf> {
    SITES
        .iter()
        .map(|(site, files)| {
            for file in *files {
                let target = dir.join(site).join(file);
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(shared("brain-mri").join(file), &target).unwrap();
            }
            dir.join(site)
        })
        .collect()
}

fn run(args: &[&str]) -> String {
    let out = medfocus(args);
    assert!(
        out.status.success(),
        "medfocus {}: {}",
        args.join(" "),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn refused(args: &[&str]) -> String {
    let out = medfocus(args);
    assert!(
        !out.status.success(),
        "medfocus {} succeeded",
        args.join(" ")
    );
    text(&out.stderr)
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

fn arrays(head: &Path, dir: &Path) -> BTreeMap<String, HostTensor> {
    let npz = dir.join(format!(
        "{}.npz",
        head.file_stem().unwrap().to_string_lossy()
    ));
    run(&[
        "head",
        "export-arrays",
        "--head",
        &head.display().to_string(),
        "--out",
        &npz.display().to_string(),
    ]);
    read_npz(&std::fs::read(npz).unwrap()).unwrap()
}

fn write_npz(path: &Path, arrays: &BTreeMap<String, HostTensor>) {
    let mut archive = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, tensor) in arrays {
        archive
            .start_file(
                format!("{name}.npy"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
        std::io::Write::write_all(
            &mut archive,
            &medfocus::npy::write_f32(&tensor.shape, &tensor.values),
        )
        .unwrap();
    }
    archive.finish().unwrap();
}

fn max_difference(a: &BTreeMap<String, HostTensor>, b: &BTreeMap<String, HostTensor>) -> f32 {
    a.iter()
        .flat_map(|(name, tensor)| {
            tensor
                .values
                .iter()
                .zip(&b[name].values)
                .map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

fn start_head(dir: &Path, kind: &str) -> PathBuf {
    let out = dir.join(format!("start-{kind}.mfh"));
    run(&[
        "head",
        "from-prompts",
        "--kind",
        kind,
        "--model",
        &fixture("clip/openclip-tiny"),
        "--classes",
        CLASSES,
        "--out",
        &out.display().to_string(),
    ]);
    out
}

/// One site's (or the union's) local training: plain gradient descent from `init`.
fn gradient_steps(data: &Path, init: &Path, steps: usize, out: &Path, cache: &Path) -> usize {
    let epochs = steps.to_string();
    let report = last_json(&run(&[
        "train",
        "--data",
        &data.display().to_string(),
        "--classes",
        CLASSES,
        "--model",
        &fixture("clip/openclip-tiny"),
        "--head",
        "linear-probe",
        "--init",
        &init.display().to_string(),
        "--optimizer",
        "gradient-descent",
        "--epochs",
        &epochs,
        "--learning-rate",
        "2",
        "--penalty",
        "0.001",
        "--holdout",
        "0",
        "--constant-learning-rate",
        "--cache",
        &cache.display().to_string(),
        "--fresh",
        "--out",
        &out.display().to_string(),
        "--json",
    ]));
    report["images"].as_u64().unwrap() as usize
}

#[test]
fn a_probe_from_the_prompts_answers_exactly_as_zero_shot() {
    let dir = scratch("federation-prompts");
    let model = fixture("clip/openclip-tiny");
    let images: Vec<String> = ["glioma/Te-gl_0010.jpg", "pituitary/Te-pi_0014.jpg"]
        .iter()
        .map(|file| shared("brain-mri").join(file).display().to_string())
        .collect();
    let mut answers = Vec::new();
    for kind in ["zero-shot", "linear-probe", "lp-text", "coop"] {
        let head = start_head(&dir, kind).display().to_string();
        let mut args = vec!["predict", "--head", &head, "--model", &model, "--json"];
        args.extend(images.iter().map(String::as_str));
        let lines: Vec<serde_json::Value> = run(&args)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{kind}");
        answers.push(lines);
    }
    let probabilities = |answer: &serde_json::Value| -> Vec<f64> {
        answer["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.as_f64().unwrap())
            .collect()
    };
    // The probes hold W = s·T, b = 0: the zero-shot logits exactly (CoOp's context is its own).
    for kind in [1, 2] {
        for image in 0..2 {
            let (zero_shot, probe) = (
                probabilities(&answers[0][image]),
                probabilities(&answers[kind][image]),
            );
            for (a, b) in zero_shot.iter().zip(&probe) {
                assert!((a - b).abs() < 1e-5, "{zero_shot:?} vs {probe:?}");
            }
        }
    }
    let refusal = refused(&[
        "head",
        "from-prompts",
        "--kind",
        "linear-probe",
        "--model",
        &model,
        "--classes",
        "glioma",
        "--out",
        &dir.join("one.mfh").display().to_string(),
    ]);
    assert!(refusal.contains("at least two"), "{refusal}");
}

#[test]
fn averaged_gradient_steps_of_three_sites_equal_central_gradient_descent() {
    let dir = scratch("federation-exact");
    let sites = build_sites(&dir.join("sites"));
    let cache = dir.join("cache");
    let start = start_head(&dir, "linear-probe");
    let mut global = arrays(&start, &dir);
    let initial = global.clone();
    for round in 0..3 {
        let global_npz = dir.join(format!("global-{round}.npz"));
        write_npz(&global_npz, &global);
        let mut sum: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut total = 0usize;
        for (index, site) in sites.iter().enumerate() {
            let local = dir.join(format!("site-{index}-round-{round}.mfh"));
            let images = gradient_steps(site, &global_npz, 1, &local, &cache);
            total += images;
            for (name, tensor) in arrays(&local, &dir) {
                let entry = sum
                    .entry(name)
                    .or_insert_with(|| vec![0.0; tensor.values.len()]);
                for (slot, value) in entry.iter_mut().zip(&tensor.values) {
                    *slot += f64::from(*value) * images as f64;
                }
            }
        }
        assert_eq!(total, 17, "every brain-MRI image is at one site");
        global = sum
            .into_iter()
            .map(|(name, values)| {
                let shape = global[&name].shape.clone();
                let mean = values.iter().map(|v| (v / total as f64) as f32).collect();
                (name, HostTensor::new(shape, mean))
            })
            .collect();
    }
    let central = dir.join("central.mfh");
    gradient_steps(&shared("brain-mri"), &start, 3, &central, &cache);
    let central = arrays(&central, &dir);
    let difference = max_difference(&global, &central);
    let moved = max_difference(&central, &initial);
    assert!(difference < 1e-5, "federated − central: {difference}");
    assert!(
        moved > 0.05,
        "three steps moved the weights by {moved} only"
    );
}

#[test]
fn a_site_may_lack_a_class_and_fedprox_holds_it_near_the_global_weights() {
    let dir = scratch("federation-site");
    let sites = build_sites(&dir.join("sites"));
    let start = start_head(&dir, "linear-probe");
    let model = fixture("clip/openclip-tiny");
    let cache = dir.join("cache").display().to_string();
    let site = sites[0].display().to_string();
    let start_text = start.display().to_string();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            &site,
            "--classes",
            CLASSES,
            "--model",
            &model,
            "--head",
            "linear-probe",
            "--init",
            &start_text,
            "--optimizer",
            "adam",
            "--epochs",
            "20",
            "--holdout",
            "0",
            "--cache",
            &cache,
            "--out",
            out,
            "--json",
        ];
        args.extend_from_slice(extra);
        last_json(&run(&args))
    };
    let free = dir.join("free.mfh");
    let report = train(&free.display().to_string(), &[]);
    assert_eq!(report["classes"].as_array().unwrap().len(), 4);
    assert_eq!(
        report["training"]["counts"],
        serde_json::json!([2, 3, 1, 0])
    );
    assert_eq!(report["training"]["started_from"], "given weights");
    let held = dir.join("held.mfh");
    train(&held.display().to_string(), &["--proximal-mu", "1000"]);
    let initial = arrays(&start, &dir);
    let free_moved = max_difference(&arrays(&free, &dir), &initial);
    let held_moved = max_difference(&arrays(&held, &dir), &initial);
    assert!(
        held_moved < free_moved / 2.0,
        "FedProx μ=1000 moved {held_moved}, none {free_moved}"
    );

    // The restricted softmax leaves the class this site lacks (pituitary, row 3) to the others:
    // only the penalty touches its row, where the full softmax pushes it down.
    let restricted = dir.join("restricted.mfh");
    train(
        &restricted.display().to_string(),
        &["--present-classes-only"],
    );
    let row_moved = |head: &Path| {
        let trained = arrays(head, &dir);
        let (weight, start) = (&trained["linear.weight"], &initial["linear.weight"]);
        let dim = weight.shape[1];
        (3 * dim..4 * dim)
            .map(|index| (weight.values[index] - start.values[index]).abs())
            .fold(0.0f32, f32::max)
    };
    let (kept, pushed) = (row_moved(&restricted), row_moved(&free));
    assert!(
        kept < pushed / 10.0,
        "absent class row moved {kept} restricted, {pushed} with the full softmax"
    );

    // Without --classes the site's own three classes would not match the start head's four.
    let out = dir.join("x.mfh").display().to_string();
    let refusal = refused(&[
        "train",
        "--data",
        &site,
        "--model",
        &model,
        "--head",
        "linear-probe",
        "--init",
        &start_text,
        "--out",
        &out,
    ]);
    assert!(refusal.contains("give --classes"), "{refusal}");
    let refusal = refused(&[
        "train",
        "--data",
        &site,
        "--model",
        &model,
        "--classes",
        "glioma,meningioma",
        "--out",
        &out,
    ]);
    assert!(refusal.contains("the given classes"), "{refusal}");
    let refusal = refused(&[
        "train",
        "--data",
        &site,
        "--model",
        &model,
        "--classes",
        CLASSES,
        "--head",
        "tip-adapter-f",
        "--init",
        &start_text,
        "--out",
        &out,
    ]);
    assert!(refusal.contains("must not leave a site"), "{refusal}");
    let refusal = refused(&[
        "train",
        "--data",
        &site,
        "--model",
        &model,
        "--classes",
        CLASSES,
        "--head",
        "coop",
        "--optimizer",
        "lbfgs",
        "--out",
        &out,
    ]);
    assert!(
        refusal.contains("only the linear probe and LP+text"),
        "{refusal}"
    );
    let refusal = refused(&[
        "train",
        "--data",
        &site,
        "--model",
        &model,
        "--classes",
        CLASSES,
        "--head",
        "linear-probe",
        "--optimizer",
        "adam",
        "--penalty",
        "0.1",
        "--c",
        "1",
        "--out",
        &out,
    ]);
    assert!(refusal.contains("not both"), "{refusal}");
}

#[test]
fn a_heads_score_is_what_its_predictions_say() {
    let dir = scratch("federation-score");
    let head = fixture("heads/brain-mri-tip-adapter-f.mfh");
    let model = fixture("clip/openclip-tiny");
    let data = shared("brain-mri").display().to_string();
    let cache = dir.join("cache").display().to_string();
    let scored = last_json(&run(&[
        "head", "score", "--head", &head, "--model", &model, "--data", &data, "--cache", &cache,
        "--json",
    ]));
    assert_eq!(scored["images"], 17);
    let mut images = Vec::new();
    for class in ["glioma", "meningioma", "notumor", "pituitary"] {
        for entry in std::fs::read_dir(shared("brain-mri").join(class)).unwrap() {
            images.push((class, entry.unwrap().path().display().to_string()));
        }
    }
    let mut args = vec!["predict", "--head", &head, "--model", &model, "--json"];
    args.extend(images.iter().map(|(_, path)| path.as_str()));
    let right = run(&args)
        .lines()
        .zip(&images)
        .filter(|(line, (class, _))| {
            let answer: serde_json::Value = serde_json::from_str(line).unwrap();
            let probabilities: Vec<f64> = answer["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|value| value.as_f64().unwrap())
                .collect();
            let best = (0..probabilities.len())
                .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
                .unwrap();
            answer["classes"][best] == **class
        })
        .count();
    let accuracy = scored["metrics"]["accuracy"].as_f64().unwrap();
    assert!((accuracy - right as f64 / 17.0).abs() < 1e-9, "{scored}");
    for figure in ["balanced_accuracy", "macro_f1", "auroc"] {
        assert!(scored["metrics"][figure].is_number(), "{figure}: {scored}");
    }

    // A set with a class the head does not know is refused, naming it.
    let other = shared("chest-xray").display().to_string();
    let refusal = refused(&[
        "head", "score", "--head", &head, "--model", &model, "--data", &other,
    ]);
    assert!(refusal.contains("NORMAL"), "{refusal}");
}
