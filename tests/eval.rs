//! The evaluation: metrics against scikit-learn (fixtures by `scripts/reference/gen_metrics.py`),
//! and `medfocus eval` end to end on `../shared/data` with the reference-generated tiny CLIP
//! (and SAM 2): every report file, resuming, the caches, manifests reused, bad input.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::cli::{fixture, medfocus, scratch, text};

use std::path::{Path, PathBuf};

use medfocus::eval::Metrics;
use serde_json::Value;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

#[test]
fn metrics_equal_scikit_learns() {
    let path = common::manifest().join("tests/fixtures/eval/metrics.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let classes = case["classes"].as_u64().unwrap() as usize;
        let labels: Vec<usize> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let probabilities: Vec<f64> = case["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        let metrics = Metrics::compute(&probabilities, &labels, classes).unwrap();
        let expected = &case["expected"];
        let close = |what: &str, ours: f64| {
            let theirs = expected[what].as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-9,
                "{name} {what}: ours {ours}, scikit-learn {theirs}"
            );
        };
        close("accuracy", metrics.accuracy);
        close("balanced_accuracy", metrics.balanced_accuracy);
        close("macro_f1", metrics.macro_f1);
        close("kappa", metrics.kappa);
        close("log_loss", metrics.log_loss);
        close("ece", metrics.ece);
        match (metrics.auroc, expected["auroc"].as_f64()) {
            (Some(ours), Some(theirs)) => {
                assert!(
                    (ours - theirs).abs() <= 1e-9,
                    "{name} auroc: {ours} vs {theirs}"
                )
            }
            (ours, theirs) => assert_eq!(ours, theirs, "{name} auroc"),
        }
        let confusion: Vec<Vec<u64>> =
            serde_json::from_value(expected["confusion"].clone()).unwrap();
        assert_eq!(metrics.confusion, confusion, "{name} confusion");
    }
}

/// The chest X-rays as a split-folder set (`Chest/Training/<class>`, `Chest/Testing/<class>`):
/// per class the first `train` images train, the next `test` test.
/// Issue 16: SIGKILL at random moments of an evaluation (seeded), each followed by a check of the
/// report folder: every file written whole (the manifests, `runs.csv`, `report.md`, the plots)
/// is absent or complete; the two appended record files may end in one torn line — an append
/// is not atomic — and nothing else, which the next run drops. Finished, the runs and their
/// metrics equal an uninterrupted evaluation's.
#[test]
fn killed_at_random_moments_eval_leaves_only_whole_files_and_finishes_the_same() {
    use std::time::Duration;

    let dir = scratch("eval-kill-random");
    let cache = dir.join("cache").display().to_string();
    let data = common::shared("brain-mri").display().to_string();
    let model = fixture("clip/openclip-tiny");
    let args = |out: &Path| -> Vec<String> {
        [
            "eval",
            "--data",
            &data,
            "--model",
            &model,
            "--protocol",
            "kshot",
            "--shots",
            "1,2",
            "--seeds",
            "1,2,3",
            "--heads",
            "zero-shot,linear-probe,tip-adapter",
            "--c",
            "1",
            "--out",
            &out.display().to_string(),
            "--cache",
            &cache,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let reference = dir.join("reference");
    let cold = common::cli::timed(&args(&reference)).max(Duration::from_millis(200));
    // The same with every embedding cached.
    let warm = common::cli::timed(&args(&dir.join("warm"))).max(Duration::from_millis(200));

    let out = dir.join("killed");
    let args = args(&out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut moments = common::cli::Moments::seeded(0x2545_F491_4F6C_DD1D);
    let mut torn_lines = 0;
    let mut killed_running = 0;
    for seed in 0..8 {
        // Each from an empty report folder, even seeds from an empty cache too; the last kill's
        // folder is what the final run resumes.
        let _ = std::fs::remove_dir_all(&out);
        if seed % 2 == 0 {
            let _ = std::fs::remove_dir_all(&cache);
        }
        let moment = moments.within(if seed % 2 == 0 { cold } else { warm });
        killed_running += usize::from(common::cli::kill_at(&args, moment));
        let what = format!("killed at {moment:?} (seed {seed})");
        for name in ["runs.jsonl", "predictions.jsonl"] {
            let Ok(text) = std::fs::read_to_string(out.join(name)) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            for (index, line) in lines.iter().enumerate() {
                let whole = serde_json::from_str::<Value>(line).is_ok() && {
                    index + 1 < lines.len() || text.ends_with('\n')
                };
                if !whole {
                    assert_eq!(index + 1, lines.len(), "{what}: {name} line {index} torn");
                    torn_lines += 1;
                }
            }
        }
        for name in ["runs.csv", "report.md"] {
            if let Ok(text) = std::fs::read_to_string(out.join(name)) {
                assert!(text.ends_with('\n'), "{what}: {name} torn");
            }
        }
        for plot in ["accuracy.png", "confusion.png"] {
            if out.join(plot).exists() {
                image::open(out.join(plot))
                    .unwrap_or_else(|error| panic!("{what}: {plot}: {error}"));
            }
        }
        for manifest in std::fs::read_dir(out.join("manifests"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = manifest.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                serde_json::from_str::<Value>(&text)
                    .unwrap_or_else(|error| panic!("{what}: {} torn: {error}", path.display()));
            }
        }
    }
    println!(
        "{killed_running} of 8 kills hit a running evaluation; {torn_lines} torn last lines seen (dropped by the next run)"
    );
    assert!(
        killed_running >= 2,
        "only {killed_running} of 8 kills hit a running evaluation"
    );
    let finished = medfocus(&args);
    assert!(finished.status.success(), "{}", text(&finished.stderr));
    let runs = |folder: &Path| -> Vec<(String, Value)> {
        let mut runs: Vec<(String, Value)> = lines(&folder.join("runs.jsonl"))
            .into_iter()
            .map(|run| {
                (
                    run["run"].as_str().unwrap().to_string(),
                    run["metrics"].clone(),
                )
            })
            .collect();
        runs.sort_by(|a, b| a.0.cmp(&b.0));
        runs
    };
    assert_eq!(
        runs(&out),
        runs(&reference),
        "the killed evaluation's runs differ"
    );
    assert_eq!(runs(&out).len(), 18);
    assert_eq!(
        lines(&out.join("predictions.jsonl")).len(),
        lines(&reference.join("predictions.jsonl")).len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn split_folder_copy(dir: &Path, train: usize, test: usize) -> PathBuf {
    let root = dir.join("Chest");
    for class in ["NORMAL", "PNEUMONIA"] {
        let source = common::shared(&format!("chest-xray/{class}"));
        let mut names: Vec<PathBuf> = std::fs::read_dir(&source)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        names.sort();
        assert!(names.len() >= train + test);
        for (index, path) in names.iter().take(train + test).enumerate() {
            let split = if index < train { "Training" } else { "Testing" };
            let target = root.join(split).join(class);
            std::fs::create_dir_all(&target).unwrap();
            std::fs::copy(path, target.join(path.file_name().unwrap())).unwrap();
        }
    }
    root
}

#[test]
fn eval_writes_every_report_file_resumes_and_reuses_its_manifests() {
    let dir = scratch("eval-grid");
    let out = dir.join("report");
    let cache = dir.join("cache").display().to_string();
    let data = common::shared("brain-mri").display().to_string();
    let model = fixture("clip/openclip-tiny");
    let out_arg = out.display().to_string();
    let args = [
        "eval",
        "--data",
        &data,
        "--model",
        &model,
        "--protocol",
        "kshot",
        "--shots",
        "1,2",
        "--seeds",
        "1,2",
        "--heads",
        "zero-shot,linear-probe,tip-adapter",
        "--c",
        "1",
        "--out",
        &out_arg,
        "--cache",
        &cache,
    ];
    let first = medfocus(&args);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let said = text(&first.stdout);
    assert!(said.contains("12 runs (0 already recorded)"), "{said}");

    for file in ["report.md", "runs.jsonl", "runs.csv", "predictions.jsonl"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // The pictures: 1 focus × 3 heads, so one line per head and three confusion panels.
    let accuracy = image::open(out.join("accuracy.png")).unwrap();
    assert_eq!(accuracy.width(), 1100);
    let confusion = image::open(out.join("confusion.png")).unwrap();
    assert_eq!((confusion.width(), confusion.height()), (3 * 300, 40 + 300));
    let manifests: Vec<PathBuf> = std::fs::read_dir(out.join("manifests"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(manifests.len(), 4, "2 shots × 2 seeds");
    let runs = lines(&out.join("runs.jsonl"));
    assert_eq!(runs.len(), 12);
    // The brain set has no test split: a seeded 20 % per class tests (1 or 2 of 3–6 images).
    for run in &runs {
        assert_eq!(run["test_images"], 4, "{run}");
        let accuracy = run["metrics"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy));
    }
    let predictions = lines(&out.join("predictions.jsonl"));
    assert_eq!(predictions.len(), 12 * 4);
    // Every run's accuracy is its predictions' accuracy.
    for run in &runs {
        let mine: Vec<&Value> = predictions
            .iter()
            .filter(|p| p["run"] == run["run"])
            .collect();
        let correct = mine
            .iter()
            .filter(|p| {
                let row: Vec<f64> = serde_json::from_value(p["probabilities"].clone()).unwrap();
                medfocus::heads::features::argmax(&row) == p["truth"].as_u64().unwrap() as usize
            })
            .count();
        let accuracy = run["metrics"]["accuracy"].as_f64().unwrap();
        assert!((accuracy - correct as f64 / mine.len() as f64).abs() < 1e-12);
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "## Accuracy",
        "| none | linear-probe |",
        "1-shot",
        "2-shot",
        " ± ",
        "split seed 0",
        "## Confusion matrices at 2-shot",
        "![Accuracy against the protocol points](accuracy.png)",
        "![Confusion matrices](confusion.png)",
    ] {
        assert!(
            report.contains(needle),
            "report.md lacks {needle:?}:\n{report}"
        );
    }
    let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);

    // Again: everything is recorded, nothing runs, the report is the same.
    let second = medfocus(&args);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("0 runs (12 already recorded)"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        report
    );

    // Killed between a run's predictions and its line (a torn last line, orphan predictions):
    // the run is done again and the report comes out the same.
    let runs_text = std::fs::read_to_string(out.join("runs.jsonl")).unwrap();
    let kept: Vec<&str> = runs_text.lines().collect();
    let torn = format!("{}\n{}", kept[..11].join("\n"), &kept[11][..40]);
    std::fs::write(out.join("runs.jsonl"), torn).unwrap();
    let resumed = medfocus(&args);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stdout).contains("1 runs (11 already recorded)"),
        "{}",
        text(&resumed.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        report
    );
    assert_eq!(lines(&out.join("predictions.jsonl")).len(), 12 * 4);

    // --fresh: every run again, every embedding from the cache, the same numbers.
    let mut fresh_args = args.to_vec();
    fresh_args.push("--fresh");
    let fresh = medfocus(&fresh_args);
    assert!(fresh.status.success(), "{}", text(&fresh.stderr));
    let said = text(&fresh.stdout);
    let counts: Vec<usize> = said
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|number| number.parse().ok())
        .collect();
    // "12 runs (0 already recorded), N images embedded (N from the cache), …"
    assert_eq!(&counts[..2], &[12, 0], "{said}");
    assert!(counts[2] >= 12 && counts[2] == counts[3], "{said}");
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        report
    );

    // The manifests reused, on a copy of the set under another name with a file renamed:
    // the same images, the same numbers.
    let copy = dir.join("copy");
    for class in ["glioma", "meningioma", "notumor", "pituitary"] {
        std::fs::create_dir_all(copy.join(class)).unwrap();
        for entry in std::fs::read_dir(common::shared(&format!("brain-mri/{class}"))).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, copy.join(class).join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::rename(
        copy.join("glioma/Te-gl_0010.jpg"),
        copy.join("glioma/renamed.jpg"),
    )
    .unwrap();
    let reused_out = dir.join("reused").display().to_string();
    let copy_arg = copy.display().to_string();
    let mut reuse: Vec<String> = [
        "eval",
        "--data",
        &copy_arg,
        "--model",
        &model,
        "--heads",
        "zero-shot,linear-probe,tip-adapter",
        "--c",
        "1",
        "--out",
        &reused_out,
        "--cache",
        &cache,
    ]
    .map(String::from)
    .to_vec();
    let mut manifests = manifests;
    manifests.sort();
    for manifest in &manifests {
        reuse.push("--split".into());
        reuse.push(manifest.display().to_string());
    }
    let reuse_refs: Vec<&str> = reuse.iter().map(String::as_str).collect();
    let reused = medfocus(&reuse_refs);
    assert!(reused.status.success(), "{}", text(&reused.stderr));
    let metrics = |runs: &[Value]| -> Vec<(String, String, Value)> {
        let mut all: Vec<_> = runs
            .iter()
            .map(|run| {
                (
                    run["manifest_sha256"].to_string(),
                    run["head"].to_string(),
                    run["metrics"].clone(),
                )
            })
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    };
    assert_eq!(
        metrics(&lines(&dir.join("reused/runs.jsonl"))),
        metrics(&lines(&out.join("runs.jsonl")))
    );

    // A changed image is named, not silently used.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifests[0]).unwrap()).unwrap();
    let listed = manifest["test"][0]["path"].as_str().unwrap();
    let listed_in_copy = if listed == "glioma/Te-gl_0010.jpg" {
        "glioma/renamed.jpg"
    } else {
        listed
    };
    std::fs::write(copy.join(listed_in_copy), b"not the same image").unwrap();
    let changed = medfocus(&reuse_refs);
    assert!(!changed.status.success());
    let error = text(&changed.stderr);
    assert!(
        error.contains("changed") || error.contains("not in the set"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_on_split_folders_with_sam2_masks_and_the_overlay() {
    let dir = scratch("eval-sam2");
    let data = split_folder_copy(&dir, 3, 2).display().to_string();
    let out = dir.join("report");
    let out_arg = out.display().to_string();
    let output = medfocus(&[
        "eval",
        "--data",
        &data,
        "--model",
        &fixture("clip/openclip-tiny"),
        "--protocol",
        "fraction",
        "--fractions",
        "0.5,1",
        "--seeds",
        "1",
        "--heads",
        "linear-probe,finetune",
        "--c",
        "1",
        "--finetune-blocks",
        "1",
        "--epochs",
        "5",
        "--focus",
        "none,overlay,crop",
        "--sam2",
        &fixture("sam2/sam2.1-tiny-small.pt"),
        "--sam2-config",
        &fixture("sam2/sam2.1-tiny-small.config.json"),
        "--points-per-side",
        "4",
        "--out",
        &out_arg,
        "--cache",
        &dir.join("cache").display().to_string(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // One SAM 2 pass per image serves both focus methods that use a region (the region cache),
    // and the fine-tune's tokens as well as the embeddings: 10 images × 3 focus methods × 2.
    let said = text(&output.stdout);
    assert!(
        said.contains("60 images embedded (0 from the cache), 10 SAM 2 passes"),
        "{said}"
    );
    let runs = lines(&out.join("runs.jsonl"));
    assert_eq!(runs.len(), 12, "2 fractions × 3 focus methods × 2 heads");
    // The fine-tune trained its last block: the training log says where it started.
    for run in runs.iter().filter(|run| run["head"] == "finetune") {
        assert_eq!(run["training"]["first_block"], 1, "{run}");
        assert_eq!(run["test_images"], 4);
    }
    for run in &runs {
        // The set's own Testing/ folder: 2 images per class; 50 % of 3 rounds to 2.
        assert_eq!(run["test_images"], 4);
        let expected_train = if run["protocol"] == "50%" { 4 } else { 6 };
        assert_eq!(run["train_images"], expected_train, "{run}");
        if run["focus"] != "none" {
            assert!(run["masks"].as_str().unwrap().starts_with("sam2 "), "{run}");
        } else {
            assert_eq!(run["masks"], "none");
        }
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("| overlay | linear-probe |"), "{report}");
    assert!(report.contains("| crop | finetune |"), "{report}");
    assert!(
        report.contains("the set's own train/val/test splits"),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_refuses_bad_requests_with_a_reason() {
    let dir = scratch("eval-bad");
    let out = dir.join("report").display().to_string();
    let model = fixture("clip/openclip-tiny");
    let data = common::shared("brain-mri").display().to_string();
    for (extra, says) in [
        (vec!["--focus", "overlay"], "needs masks"),
        (
            vec!["--heads", "finetune", "--finetune-blocks", "9"],
            "--finetune-blocks 9",
        ),
        (
            vec!["--protocol", "fraction", "--fractions", "0"],
            "fraction 0",
        ),
        (vec!["--protocol", "kshot", "--shots", "0"], "0 shots"),
    ] {
        let mut args = vec!["eval", "--data", &data, "--model", &model, "--out", &out];
        args.extend(extra.iter().copied());
        let output = medfocus(&args);
        assert!(!output.status.success(), "{extra:?} succeeded");
        assert!(
            text(&output.stderr).contains(says),
            "{extra:?}: {}",
            text(&output.stderr)
        );
    }
    let missing = dir.join("nothing").display().to_string();
    let output = medfocus(&["eval", "--data", &missing, "--model", &model, "--out", &out]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("nothing"),
        "{}",
        text(&output.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn inspect_reports_classes_splits_formats_and_left_out_files() {
    let dir = scratch("eval-inspect");
    let data = split_folder_copy(&dir, 5, 3);
    std::fs::write(data.join("Training/NORMAL/readme.txt"), b"notes").unwrap();
    let output = medfocus(&["inspect", &data.display().to_string()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    for needle in [
        "split folders",
        "class NORMAL: train 5, test 3 images",
        "class PNEUMONIA: train 5, test 3 images",
        "formats: jpeg 16",
        "left out: 1 files",
        "readme.txt: not an image file",
    ] {
        assert!(said.contains(needle), "{needle:?} not in:\n{said}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A BUSI-like set from the chest X-rays: each image with a ground-truth mask beside it
/// (`<name>_mask.png`; one image with two, one with an empty one).
fn busi_like(dir: &Path) -> PathBuf {
    let root = dir.join("busi");
    for (class, source) in [("benign", "NORMAL"), ("malignant", "PNEUMONIA")] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        let mut names: Vec<PathBuf> =
            std::fs::read_dir(common::shared(&format!("chest-xray/{source}")))
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
        names.sort();
        for (index, path) in names.iter().take(3).enumerate() {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            std::fs::copy(path, root.join(class).join(path.file_name().unwrap())).unwrap();
            let (width, height) = image::image_dimensions(path).unwrap();
            let mut mask = image::GrayImage::new(width, height);
            if !(class == "benign" && index == 2) {
                for y in height / 4..height / 2 {
                    for x in width / 4..width / 2 {
                        mask.put_pixel(x, y, image::Luma([255]));
                    }
                }
            }
            mask.save(root.join(class).join(format!("{stem}_mask.png")))
                .unwrap();
            if index == 0 {
                let mut second = image::GrayImage::new(width, height);
                second.put_pixel(width - 1, height - 1, image::Luma([255]));
                second
                    .save(root.join(class).join(format!("{stem}_mask_1.png")))
                    .unwrap();
            }
        }
    }
    root
}

#[test]
fn eval_measures_sam2_against_ground_truth_masks_and_runs_the_oracle() {
    let dir = scratch("eval-gt");
    let data = busi_like(&dir).display().to_string();
    let model = fixture("clip/openclip-tiny");
    let cache = dir.join("cache").display().to_string();
    let common_args = [
        "eval",
        "--data",
        &data,
        "--model",
        &model,
        "--protocol",
        "kshot",
        "--shots",
        "1",
        "--seeds",
        "1",
        "--heads",
        "tip-adapter",
        "--focus",
        "overlay",
        "--cache",
        &cache,
    ];
    // The oracle: the set's own masks.
    let oracle_out = dir.join("oracle").display().to_string();
    let mut args = common_args.to_vec();
    args.extend(["--masks", "oracle", "--out", &oracle_out]);
    let oracle = medfocus(&args);
    assert!(oracle.status.success(), "{}", text(&oracle.stderr));
    let runs = lines(&dir.join("oracle/runs.jsonl"));
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["masks"], "ground-truth masks");
    assert!(
        !dir.join("oracle/masks.jsonl").exists(),
        "nothing to measure without SAM 2"
    );

    // Where CLIP looked, against the ground truth: the 5 images with a lesion, per focus and
    // explanation method.
    let localised_out = dir.join("localised").display().to_string();
    let mut args: Vec<&str> = common_args
        .iter()
        .map(|arg| {
            if *arg == "overlay" {
                "none,overlay"
            } else {
                arg
            }
        })
        .collect();
    args.extend([
        "--masks",
        "gt",
        "--localisation",
        "relevancy,dense",
        "--out",
        &localised_out,
    ]);
    let localised = medfocus(&args);
    assert!(localised.status.success(), "{}", text(&localised.stderr));
    let records = lines(&dir.join("localised/localisation.jsonl"));
    assert_eq!(records.len(), 5 * 2 * 2);
    for focus in ["none", "overlay"] {
        for method in ["relevancy", "dense"] {
            let members: Vec<&Value> = records
                .iter()
                .filter(|r| r["focus"] == focus && r["method"] == method)
                .collect();
            assert_eq!(members.len(), 5, "{focus} {method}");
            for record in members {
                let energy = record["energy_inside"].as_f64().unwrap();
                let share = record["truth_coverage"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&energy), "{record}");
                assert!(share > 0.0 && share < 0.3, "{record}");
            }
        }
    }
    let report = std::fs::read_to_string(dir.join("localised/report.md")).unwrap();
    assert!(
        report.contains("## Where CLIP looked, against the ground-truth masks"),
        "{report}"
    );
    for row in ["| none | relevancy | 5 |", "| overlay | dense | 5 |"] {
        assert!(report.contains(row), "{row} missing:\n{report}");
    }

    // SAM 2's regions, measured against the ground truth.
    let sam2_out = dir.join("sam2").display().to_string();
    let (sam2, config) = (
        fixture("sam2/sam2.1-tiny-small.pt"),
        fixture("sam2/sam2.1-tiny-small.config.json"),
    );
    let mut args = common_args.to_vec();
    args.extend([
        "--sam2",
        &sam2,
        "--sam2-config",
        &config,
        "--points-per-side",
        "4",
        "--out",
        &sam2_out,
    ]);
    let measured = medfocus(&args);
    assert!(measured.status.success(), "{}", text(&measured.stderr));
    let masks = lines(&dir.join("sam2/masks.jsonl"));
    assert_eq!(
        masks.len(),
        6,
        "every image of the set is used by the 1-shot run"
    );
    for record in &masks {
        for metric in ["dice", "iou"] {
            let value = record[metric].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&value), "{record}");
        }
    }
    assert_eq!(masks.iter().filter(|r| r["truth_empty"] == true).count(), 1);
    let report = std::fs::read_to_string(dir.join("sam2/report.md")).unwrap();
    assert!(
        report.contains("SAM 2's regions against the ground-truth masks"),
        "{report}"
    );
    assert!(report.contains("| all | 5 |"), "{report}");

    // Ground-truth masks where the set has none: a clear error.
    let plain = common::shared("brain-mri").display().to_string();
    let refused = medfocus(&[
        "eval",
        "--data",
        &plain,
        "--model",
        &model,
        "--focus",
        "overlay",
        "--masks",
        "gt",
        "--out",
        &oracle_out,
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("no ground-truth masks"),
        "{}",
        text(&refused.stderr)
    );
    let refused = medfocus(&[
        "eval",
        "--data",
        &plain,
        "--model",
        &model,
        "--localisation",
        "dense",
        "--out",
        &oracle_out,
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--localisation needs ground-truth masks"),
        "{}",
        text(&refused.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn medmnist_archives_load_exactly_and_bad_ones_are_named() {
    use medfocus::dataset::{Dataset, SplitName};
    let fixtures = common::manifest().join("tests/fixtures/eval");
    let set = Dataset::open(&fixtures.join("pneumoniamnist.npz"), None).unwrap();
    assert_eq!(set.classes, ["normal", "pneumonia"]);
    let counts = set.counts();
    assert_eq!(counts[&Some(SplitName::Train)], [4, 4]);
    assert_eq!(counts[&Some(SplitName::Val)], [2, 2]);
    assert_eq!(counts[&Some(SplitName::Test)], [3, 3]);
    let facts: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("pneumoniamnist.json")).unwrap(),
    )
    .unwrap();
    let pixels = |sample: &medfocus::dataset::Sample| -> Vec<u8> {
        let bytes = set.read(sample).unwrap();
        assert_eq!(
            bytes,
            set.read(sample).unwrap(),
            "the same PNG bytes every time"
        );
        let decoded = medfocus::imaging::decode_image(&bytes).unwrap();
        assert_eq!((decoded.pixels.width(), decoded.pixels.height()), (28, 28));
        decoded.pixels.to_luma8().into_raw()
    };
    let sum = |values: &[u8]| values.iter().map(|&v| v as u64).sum::<u64>();
    let first_train = set
        .samples
        .iter()
        .find(|s| s.split == Some(SplitName::Train))
        .unwrap();
    assert_eq!(first_train.relative, "train/000000.png");
    assert_eq!(
        sum(&pixels(first_train)),
        facts["train_first_sum"].as_u64().unwrap()
    );
    let last_test = set
        .samples
        .iter()
        .rfind(|s| s.split == Some(SplitName::Test))
        .unwrap();
    let last = pixels(last_test);
    assert_eq!(sum(&last), facts["test_last_sum"].as_u64().unwrap());
    assert_eq!(
        last[5] as u64,
        facts["test_last_pixel_0_5"].as_u64().unwrap()
    );

    let rgb = Dataset::open(&fixtures.join("rgb-32.npz"), None).unwrap();
    assert_eq!(rgb.classes, ["0", "1", "2"]);
    assert_eq!(rgb.arrays.channels, 3);
    assert!(!rgb.counts().contains_key(&Some(SplitName::Val)));

    let scratch = scratch("eval-npz");
    let truncated = scratch.join("cut.npz");
    let bytes = std::fs::read(fixtures.join("pneumoniamnist.npz")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let empty = scratch.join("empty.npz");
    std::fs::write(&empty, b"").unwrap();
    for (path, says) in [
        (
            fixtures.join("lying-header.npz"),
            "train_images.npy: the header's shape [40, 28, 28] needs 31360 bytes, the array has 6272",
        ),
        (fixtures.join("multi-label.npz"), "multi-label"),
        (truncated, "not a NumPy .npz archive"),
        (empty, "not a NumPy .npz archive"),
    ] {
        let error = Dataset::open(&path, None).unwrap_err().to_string();
        assert!(error.contains(says), "{}: {error}", path.display());
    }

    // And through eval: the archive's own splits, its images embedded from memory.
    let out = scratch.join("report").display().to_string();
    let archive = fixtures.join("pneumoniamnist.npz").display().to_string();
    let output = medfocus(&[
        "eval",
        "--data",
        &archive,
        "--model",
        &fixture("clip/openclip-tiny"),
        "--protocol",
        "kshot",
        "--shots",
        "2",
        "--seeds",
        "1",
        "--heads",
        "zero-shot,tip-adapter",
        "--out",
        &out,
        "--no-cache",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let runs = lines(&scratch.join("report/runs.jsonl"));
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|run| run["test_images"] == 6 && run["val_images"] == 4)
    );
    std::fs::remove_dir_all(&scratch).unwrap();
}
