//! Training and prediction end to end with the `medfocus` binary, on `../shared/data` with the
//! reference-generated tiny CLIP (and SAM 2): train → head file → predict, the embedding cache,
//! a killed run resuming to the same head, and bad input.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use medfocus::heads::HeadFile;

mod common;

use common::cli::{command, fixture, medfocus, scratch, text};
use common::shared;

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect()
}

#[test]
fn trains_and_predicts_on_both_shared_sets_and_reuses_cached_embeddings() {
    let dir = scratch("train-predict");
    let cache = dir.join("cache").display().to_string();
    let model = fixture("clip/openclip-tiny");
    for (set, kind, class_count) in [
        ("brain-mri", "tip-adapter-f", 4),
        ("chest-xray", "linear-probe", 2),
        ("chest-xray", "finetune", 2),
    ] {
        let data = shared(set).display().to_string();
        let out = dir.join(format!("{set}-{kind}.mfh")).display().to_string();
        let args = [
            "train", "--data", &data, "--model", &model, "--head", kind, "--out", &out, "--cache",
            &cache, "--json",
        ];
        let first = medfocus(&args);
        assert!(first.status.success(), "{}", text(&first.stderr));
        let first = &json_lines(&first)[0];
        let images = first["images"].as_u64().unwrap();
        assert!(images >= 16, "{first}");
        assert_eq!(first["from_cache"], 0);
        let trained = std::fs::read(&out).unwrap();

        // Another run on the same images computes no embedding, and trains the same head.
        let second = medfocus(&args);
        assert!(second.status.success(), "{}", text(&second.stderr));
        assert_eq!(
            json_lines(&second)[0]["from_cache"].as_u64().unwrap(),
            images
        );
        assert_eq!(
            std::fs::read(&out).unwrap(),
            trained,
            "same data and seed, same head"
        );
        assert!(
            !Path::new(&format!("{out}.ckpt")).exists(),
            "the checkpoint is removed once the head is written"
        );

        let head = HeadFile::read(Path::new(&out)).unwrap();
        assert_eq!(head.header.kind.name(), kind);
        assert_eq!(head.header.classes.len(), class_count);

        let images: Vec<String> = std::fs::read_dir(shared(set).join(&head.header.classes[0]))
            .unwrap()
            .map(|entry| entry.unwrap().path().display().to_string())
            .take(2)
            .collect();
        let mut args = vec!["predict", "--head", &out, "--model", &model, "--json"];
        args.extend(images.iter().map(String::as_str));
        let predicted = medfocus(&args);
        assert!(predicted.status.success(), "{}", text(&predicted.stderr));
        for line in json_lines(&predicted) {
            let probabilities: Vec<f64> = line["probabilities"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            assert_eq!(probabilities.len(), class_count);
            assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A set in which the random-weight SAM 2 fixture finds regions: dark rectangles (one class)
/// and ellipses (the other) at seeded places on a bright background. On the shared X-rays and
/// MRIs its automatic masks are all background or the whole image, so every region there is
/// the whole-image stand-in and a focus trains a plain head under another name.
/// `splits`: (folder, images per class); a folder `""` puts the classes at the top. Sizes are
/// in 256ths of `side`.
fn shapes_set(dir: &Path, side: u32, splits: &[(&str, usize)]) -> std::path::PathBuf {
    let mut state = 7u64;
    let mut next = |range: u32| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32 % range
    };
    let at = |value: u32| value * side / 256;
    for &(split, count) in splits {
        for (class, ellipse) in [("rectangle", false), ("ellipse", true)] {
            let folder = dir.join("shapes").join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            for index in 0..count {
                let (x0, y0) = (at(30 + next(60)), at(30 + next(60)));
                let (w, h) = (at(80 + next(50)), at(80 + next(50)));
                let (cx, cy) = (x0 as f32 + w as f32 / 2.0, y0 as f32 + h as f32 / 2.0);
                let picture = image::GrayImage::from_fn(side, side, |x, y| {
                    let inside = if ellipse {
                        let (dx, dy) = (
                            (x as f32 - cx) * 2.0 / w as f32,
                            (y as f32 - cy) * 2.0 / h as f32,
                        );
                        dx * dx + dy * dy <= 1.0
                    } else {
                        (x0..x0 + w).contains(&x) && (y0..y0 + h).contains(&y)
                    };
                    image::Luma([if inside { 30 } else { 200 }])
                });
                picture.save(folder.join(format!("{index}.png"))).unwrap();
            }
        }
    }
    dir.join("shapes")
}

#[test]
fn trains_on_sam2_masks_with_the_papers_overlay() {
    let dir = scratch("train-sam2");
    let out = dir.join("head.mfh").display().to_string();
    let data = shapes_set(&dir, 256, &[("", 4)]).display().to_string();
    let (model, sam2, config) = (
        fixture("clip/openclip-tiny"),
        fixture("sam2/sam2.1-tiny-small.pt"),
        fixture("sam2/sam2.1-tiny-small.config.json"),
    );
    let output = medfocus(&[
        "train",
        "--data",
        &data,
        "--model",
        &model,
        "--head",
        "tip-adapter",
        "--prompt",
        "overlay",
        "--sam2",
        &sam2,
        "--sam2-config",
        &config,
        "--points-per-side",
        "8",
        "--pred-iou-thresh",
        "0.3",
        "--stability-thresh",
        "0.6",
        "--out",
        &out,
        "--no-cache",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // SAM 2 found regions, and the overlay was drawn from them (not the whole-image stand-in
    // everywhere, which would train a plain head under another name).
    let report = &json_lines(&output)[0];
    let found = report["regions"]["sam2-automatic"].as_u64().unwrap_or(0);
    assert!(
        found * 2 > report["images"].as_u64().unwrap(),
        "SAM 2 found a region in {found} images: {report}"
    );
    let head = HeadFile::read(Path::new(&out)).unwrap();
    assert_eq!(head.header.focus.method, "overlay");
    assert!(
        head.header.focus.masks.starts_with("sam2 "),
        "{}",
        head.header.focus.masks
    );

    // Predicting with it needs a mask source, and says so.
    let image = dir.join("shapes/ellipse/0.png").display().to_string();
    let refused = medfocus(&["predict", "--head", &out, "--model", &model, &image]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--sam2"),
        "{}",
        text(&refused.stderr)
    );
    let predicted = medfocus(&[
        "predict",
        "--head",
        &out,
        "--model",
        &model,
        "--sam2",
        &sam2,
        "--sam2-config",
        &config,
        "--points-per-side",
        "4",
        "--json",
        &image,
    ]);
    assert!(predicted.status.success(), "{}", text(&predicted.stderr));
    assert_eq!(json_lines(&predicted).len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// SIGKILL in the middle of training, then the same command again: it resumes from the
/// checkpoint and writes exactly the head an uninterrupted run writes.
#[test]
fn a_killed_training_resumes_to_the_same_head() {
    let dir = scratch("train-resume");
    let cache = dir.join("cache").display().to_string();
    let model = fixture("clip/openclip-tiny");
    let data = shared("brain-mri").display().to_string();
    let run = |out: &str| -> Vec<String> {
        [
            "train",
            "--data",
            &data,
            "--model",
            &model,
            "--head",
            "coop",
            "--epochs",
            "600",
            "--patience",
            "0",
            "--out",
            out,
            "--cache",
            &cache,
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let reference = dir.join("reference.mfh").display().to_string();
    let uninterrupted = command(
        &run(&reference)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .output()
    .unwrap();
    assert!(
        uninterrupted.status.success(),
        "{}",
        text(&uninterrupted.stderr)
    );

    let out = dir.join("resumed.mfh").display().to_string();
    let checkpoint = format!("{out}.ckpt");
    let args = run(&out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Kill as soon as a checkpoint is on disk (the first is written after the first epoch).
    let mut killed_midway = false;
    while started.elapsed() < Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Path::new(&checkpoint).exists() {
            std::thread::sleep(Duration::from_millis(300));
            killed_midway = child.try_wait().unwrap().is_none();
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    assert!(
        killed_midway,
        "training finished before it could be killed; give it more epochs"
    );
    assert!(!Path::new(&out).exists(), "a killed run writes no head");
    assert!(Path::new(&checkpoint).exists());

    let resumed = medfocus(&args);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert_eq!(json_lines(&resumed)[0]["resumed"], true);
    let (a, b) = (
        HeadFile::read(Path::new(&reference)).unwrap(),
        HeadFile::read(Path::new(&out)).unwrap(),
    );
    assert_eq!(
        a.tensors, b.tensors,
        "resumed training must reach the same parameters"
    );
    assert_eq!(a.header, b.header);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 16: SIGKILL at random moments of a training run (seeded, so a failure replays), each
/// followed by a check of everything it writes: the head, the checkpoint and every cache entry
/// is absent or a complete file that reads back, never a torn one. Then the run finishes and
/// gives the head an uninterrupted run gives.
#[test]
fn killed_at_random_moments_training_leaves_only_whole_files() {
    let dir = scratch("train-kill-random");
    let cache = dir.join("cache");
    let model = fixture("clip/openclip-tiny");
    let data = shared("brain-mri").display().to_string();
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--data",
            &data,
            "--model",
            &model,
            "--head",
            "coop",
            "--epochs",
            "300",
            "--patience",
            "0",
            "--out",
            &out.display().to_string(),
            "--cache",
            &cache.display().to_string(),
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let reference = dir.join("reference.mfh");
    let cold = common::cli::timed(&args(&reference));
    // The same with every embedding cached: training alone.
    let warm = common::cli::timed(&args(&dir.join("warm.mfh")));

    let out = dir.join("killed.mfh");
    let checkpoint = dir.join("killed.mfh.ckpt");
    let args = args(&out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut moments = common::cli::Moments::seeded(0x9E37_79B9_7F4A_7C15);
    let mut killed_running = 0;
    for seed in 0..8 {
        // Even seeds start from an empty cache (the kill may land in its writes), odd ones from
        // a full one (in the training and its checkpoints); each from no head and no checkpoint
        // but the last, whose checkpoint the final run resumes.
        if seed % 2 == 0 {
            let _ = std::fs::remove_dir_all(&cache);
        }
        let _ = std::fs::remove_file(&checkpoint);
        let duration = if seed % 2 == 0 { cold } else { warm };
        let moment = moments.within(duration);
        killed_running += usize::from(common::cli::kill_at(&args, moment));
        let what = format!("killed at {moment:?} (seed {seed})");
        if out.exists() {
            HeadFile::read(&out).unwrap_or_else(|error| panic!("{what}: head torn: {error}"));
        }
        if checkpoint.exists() {
            let bytes = std::fs::read(&checkpoint).unwrap();
            medfocus::heads::host_pack::unpack(bytes, "training-checkpoint", "")
                .unwrap_or_else(|error| panic!("{what}: checkpoint torn: {error}"));
        }
        let entries = medfocus::heads::train::cache::EmbeddingCache::new(&cache);
        for file in common::cli::walk(&cache) {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if let Some(key) = name.strip_suffix(".f32") {
                assert!(
                    entries.get(key).is_some(),
                    "{what}: cache entry {name} torn"
                );
            }
        }
        // A run that finished wrote its head; start the next from nothing but the cache.
        if out.exists() {
            std::fs::remove_file(&out).unwrap();
        }
    }
    println!("{killed_running} of 8 kills hit a running training");
    assert!(
        killed_running >= 2,
        "only {killed_running} of 8 kills hit a running training"
    );
    let finished = medfocus(&args);
    assert!(finished.status.success(), "{}", text(&finished.stderr));
    let (a, b) = (
        HeadFile::read(&reference).unwrap(),
        HeadFile::read(&out).unwrap(),
    );
    assert_eq!(
        a.tensors, b.tensors,
        "the killed and resumed run must reach the same head"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `train` reads a data set the way `eval` does (one reader): BUSI's `<name>_mask.png` files are
/// masks of their image, never training images of its class, and `--masks gt` trains on them;
/// a set with split folders trains on its train split unless told otherwise.
#[test]
fn train_reads_busi_masks_as_masks_and_split_folders_by_split() {
    let dir = scratch("train-busi");
    let model = fixture("clip/openclip-tiny");
    let busi = dir.join("Dataset_BUSI_with_GT");
    let mask = |width: u32, height: u32| {
        image::GrayImage::from_fn(width, height, |x, y| {
            let inside = x > width / 4 && x < 3 * width / 4 && y > height / 4 && y < 3 * height / 4;
            image::Luma([if inside { 255 } else { 0 }])
        })
    };
    for (class, source) in [
        ("benign", "brain-mri/glioma"),
        ("malignant", "brain-mri/meningioma"),
    ] {
        std::fs::create_dir_all(busi.join(class)).unwrap();
        let mut sources: Vec<_> = std::fs::read_dir(shared(source))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        sources.sort();
        for (number, source) in sources.iter().take(3).enumerate() {
            let stem = format!("{class} ({})", number + 1);
            let bytes = std::fs::read(source).unwrap();
            let decoded = image::load_from_memory(&bytes).unwrap();
            std::fs::write(busi.join(class).join(format!("{stem}.jpg")), &bytes).unwrap();
            let (width, height) = (decoded.width(), decoded.height());
            mask(width, height)
                .save(busi.join(class).join(format!("{stem}_mask.png")))
                .unwrap();
            if number == 0 {
                // BUSI's second lesion of one image.
                mask(width, height)
                    .save(busi.join(class).join(format!("{stem}_mask_1.png")))
                    .unwrap();
            }
        }
    }
    let data = busi.display().to_string();
    let out = dir.join("busi.mfh").display().to_string();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            &data,
            "--model",
            &model,
            "--head",
            "linear-probe",
            "--out",
            &out,
            "--no-cache",
            "--json",
        ];
        args.extend_from_slice(extra);
        medfocus(&args)
    };

    let plain = train(&[]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let report = &json_lines(&plain)[0];
    assert_eq!(
        report["images"], 6,
        "the 9 mask files are not training images: {report}"
    );
    assert_eq!(report["skipped"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(
        report["training"]["counts"],
        serde_json::json!([3, 3]),
        "{report}"
    );

    let focused = train(&["--focus", "overlay", "--masks", "gt"]);
    assert!(focused.status.success(), "{}", text(&focused.stderr));
    assert_eq!(json_lines(&focused)[0]["images"], 6);
    let head = HeadFile::read(Path::new(&out)).unwrap();
    assert_eq!(head.header.focus.method, "overlay");
    assert_eq!(head.header.focus.masks, "ground-truth masks");

    // The set has no splits: asking for one is an error that says so.
    let wrong = train(&["--train-on", "val"]);
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("no images in the val split: it has no splits"),
        "{}",
        text(&wrong.stderr)
    );

    // Split folders: the train split by default, another one or all of it when asked.
    let split = dir.join("split");
    for (part, count) in [("train", 3), ("test", 2)] {
        for class in ["benign", "malignant"] {
            let from = busi.join(class);
            let to = split.join(part).join(class);
            std::fs::create_dir_all(&to).unwrap();
            for number in 1..=count {
                let name = format!("{class} ({number}).jpg");
                std::fs::copy(from.join(&name), to.join(&name)).unwrap();
            }
        }
    }
    let split_data = split.display().to_string();
    for (extra, images) in [
        (vec![], 6),
        (vec!["--train-on", "test"], 4),
        (vec!["--train-on", "all"], 10),
    ] {
        let mut args = vec![
            "train",
            "--data",
            &split_data,
            "--model",
            &model,
            "--head",
            "linear-probe",
            "--out",
            &out,
            "--no-cache",
            "--json",
        ];
        args.extend(extra.iter().copied());
        let output = medfocus(&args);
        assert!(
            output.status.success(),
            "{extra:?}: {}",
            text(&output.stderr)
        );
        assert_eq!(json_lines(&output)[0]["images"], images, "{extra:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = scratch("train-errors");
    let model = fixture("clip/openclip-tiny");
    // A class folder with a corrupt image: it is skipped and reported, the rest trains.
    let data = dir.join("data");
    for (class, source) in [("a", "brain-mri/glioma"), ("b", "brain-mri/notumor")] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for entry in std::fs::read_dir(shared(source)).unwrap().take(3) {
            let path = entry.unwrap().path();
            std::fs::copy(&path, data.join(class).join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(data.join("a/broken.jpg"), b"\xff\xd8\xff not really a jpeg").unwrap();
    let out = dir.join("head.mfh").display().to_string();
    let data_arg = data.display().to_string();
    let output = medfocus(&[
        "train",
        "--data",
        &data_arg,
        "--model",
        &model,
        "--head",
        "linear-probe",
        "--out",
        &out,
        "--no-cache",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = &json_lines(&output)[0];
    assert_eq!(report["images"], 6);
    assert!(
        report["skipped"][0]
            .as_str()
            .unwrap()
            .contains("broken.jpg"),
        "{report}"
    );

    // A prompt that needs masks, without any.
    let output = medfocus(&[
        "train", "--data", &data_arg, "--model", &model, "--prompt", "overlay", "--out", &out,
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("needs masks"),
        "{}",
        text(&output.stderr)
    );

    // Settings no training can use.
    for (bad, message) in [
        ("--c=0", "C 0: must be a positive number"),
        ("--holdout=1", "holdout 1: a fraction"),
        (
            "--learning-rate=-1",
            "learning rate -1: must be a positive number",
        ),
        (
            "--contrastive-weight=2",
            "contrastive weight 2: a weight in [0, 1]",
        ),
    ] {
        let output = medfocus(&[
            "train",
            "--data",
            &data_arg,
            "--model",
            &model,
            "--out",
            &out,
            "--no-cache",
            bad,
        ]);
        assert!(!output.status.success(), "{bad}");
        assert!(
            text(&output.stderr).contains(message),
            "{bad}: {}",
            text(&output.stderr)
        );
    }

    // Fine-tuning: more blocks than the tower has; the attention focus (its bias would have to
    // follow every image into the trained blocks).
    let output = medfocus(&[
        "train",
        "--data",
        &data_arg,
        "--model",
        &model,
        "--head",
        "finetune",
        "--finetune-blocks",
        "9",
        "--out",
        &out,
        "--no-cache",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("this image tower has 2 blocks"),
        "{}",
        text(&output.stderr)
    );
    let masks = dir.display().to_string();
    let output = medfocus(&[
        "train",
        "--data",
        &data_arg,
        "--model",
        &model,
        "--head",
        "finetune",
        "--prompt",
        "attention",
        "--masks",
        &masks,
        "--out",
        &out,
        "--no-cache",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("not the attention focus"),
        "{}",
        text(&output.stderr)
    );

    // A head used with another CLIP model.
    let other = fixture("clip/openclip-tiny-gelu");
    let image = shared("brain-mri/glioma/Te-gl_0010.jpg")
        .display()
        .to_string();
    let output = medfocus(&["predict", "--head", &out, "--model", &other, &image]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("trained on CLIP model"),
        "{}",
        text(&output.stderr)
    );

    // A truncated head file, and something that is not one.
    let bytes = std::fs::read(&out).unwrap();
    let truncated = dir.join("truncated.mfh");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    for (path, expected) in [
        (truncated.display().to_string(), "head"),
        (image.clone(), "not a MedFocus head file"),
    ] {
        let output = medfocus(&["predict", "--head", &path, "--model", &model, &image]);
        assert!(!output.status.success());
        assert!(
            text(&output.stderr).contains(expected),
            "{}",
            text(&output.stderr)
        );
    }

    // A --checkpoint path holding something else is refused, not overwritten.
    let checkpoint = dir.join("not-a-checkpoint").display().to_string();
    std::fs::copy(&out, &checkpoint).unwrap();
    let refused = medfocus(&[
        "train",
        "--data",
        &data_arg,
        "--model",
        &model,
        "--head",
        "coop",
        "--out",
        &out,
        "--checkpoint",
        &checkpoint,
        "--no-cache",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("not a MedFocus training checkpoint"),
        "{}",
        text(&refused.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The committed heads the browser tests load still predict what their `.expected.json` says.
#[test]
fn the_committed_head_fixtures_predict_their_expected_probabilities() {
    for name in [
        "brain-mri-tip-adapter-f",
        "chest-xray-finetune",
        "brain-mri-sam2-overlay-linear-probe",
    ] {
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("heads/{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let head = fixture(&format!("heads/{name}.mfh"));
        let model = fixture(expected["model"].as_str().unwrap());
        // A head trained on SAM 2's masks predicts with SAM 2 and the settings it recorded.
        let sam2 = expected["sam2"].as_str().map(fixture);
        let rows = expected["images"].as_array().unwrap();
        assert!(!rows.is_empty(), "{name}: the fixture lists no images");
        for row in rows {
            let image = shared(row["image"].as_str().unwrap()).display().to_string();
            let mut args = vec![
                "predict", "--head", &head, "--model", &model, "--json", &image,
            ];
            if let Some(sam2) = &sam2 {
                args.extend(["--sam2", sam2]);
            }
            let output = medfocus(&args);
            assert!(output.status.success(), "{}", text(&output.stderr));
            let line = &json_lines(&output)[0];
            if sam2.is_some() {
                assert_eq!(line["region"], row["region"], "{name}");
            }
            let (ours, theirs) = (
                line["probabilities"].as_array().unwrap(),
                row["probabilities"].as_array().unwrap(),
            );
            assert_eq!(ours.len(), theirs.len(), "{name}: {line} vs {row}");
            for (ours, theirs) in ours.iter().zip(theirs) {
                assert!(
                    (ours.as_f64().unwrap() - theirs.as_f64().unwrap()).abs() < 1e-5,
                    "{name}: {line} vs {row}"
                );
            }
        }
    }
}

/// The page's journey (a support set handed over image by image, trained in memory: what
/// `WebSupportSet` runs in wasm) and `medfocus train` on a folder of the same images write the
/// same head: same tensors, same focus and recorded SAM 2 settings — with and without SAM 2.
#[test]
fn a_support_set_given_image_by_image_trains_the_head_train_writes_from_dataset() {
    use burn::tensor::Device;
    use medfocus::clip::load::load_clip_dir;
    use medfocus::focus::FocusMode;
    use medfocus::heads::HeadKind;
    use medfocus::heads::train::{HeadSettings, Silent, SupportSet};
    use medfocus::pipeline::{MaskSource, Segmenter, decode};
    use medfocus::sam2::automatic_mask_generator::{GeneratorSettings, MaskChoice};
    use medfocus::sam2::{Sam2Config, Sam2Model, Sam2Predictor};

    let dir = scratch("support-set");
    let data = dir.join("data");
    let classes = ["glioma", "meningioma"];
    let mut images = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        std::fs::create_dir_all(data.join(class)).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(shared("brain-mri").join(class))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        names.sort();
        for source in names.into_iter().take(4) {
            let target = data.join(class).join(source.file_name().unwrap());
            std::fs::copy(&source, &target).unwrap();
            images.push((label, std::fs::read(&target).unwrap()));
        }
    }
    let (model, sam2, config) = (
        fixture("clip/openclip-tiny"),
        fixture("sam2/sam2.1-tiny-small.pt"),
        fixture("sam2/sam2.1-tiny-small.config.json"),
    );
    let device = Device::flex();
    let clip = load_clip_dir(Path::new(&model), &device).unwrap();
    let sam2_model = Sam2Model::load(
        Path::new(&sam2),
        Some(&Sam2Config::read_file(Path::new(&config)).unwrap()),
        &device,
    )
    .unwrap();
    let automatic = GeneratorSettings {
        points_per_side: 4,
        ..GeneratorSettings::default()
    };
    let segmenter = Segmenter::new(
        Sam2Predictor::new(sam2_model),
        automatic.clone(),
        "sam2 test".into(),
    );

    for (kind, focus) in [
        (HeadKind::LinearProbe, "none"),
        (HeadKind::TipAdapterF, "overlay"),
    ] {
        let out = dir.join(format!("{focus}.mfh")).display().to_string();
        let data_arg = data.display().to_string();
        let mut args = vec![
            "train",
            "--data",
            &data_arg,
            "--model",
            &model,
            "--head",
            kind.name(),
            "--prompt",
            focus,
            "--out",
            &out,
            "--no-cache",
        ];
        if focus != "none" {
            args.extend([
                "--sam2",
                &sam2,
                "--sam2-config",
                &config,
                "--points-per-side",
                "4",
            ]);
        }
        let trained = medfocus(&args);
        assert!(trained.status.success(), "{}", text(&trained.stderr));
        let native = HeadFile::read(Path::new(&out)).unwrap();

        let mut mode = FocusMode::new(focus, Default::default());
        if mode.needs_mask() {
            mode.masks = segmenter.identity.clone();
            mode.automatic = Some(automatic.clone());
        }
        let names = classes.iter().map(|name| name.to_string()).collect();
        let mut set = SupportSet::new(names, mode).unwrap();
        let source = match focus {
            "none" => MaskSource::None,
            _ => MaskSource::Sam2Automatic(MaskChoice::Largest),
        };
        for (label, bytes) in &images {
            let encoder = set.encoder(&clip, Some(&segmenter)).unwrap();
            let pixels = decode(bytes).unwrap();
            let (values, region) =
                pollster::block_on(SupportSet::embed(&encoder, &pixels, &source)).unwrap();
            assert!(
                !set.insert(&clip, bytes, *label, values, region)
                    .unwrap()
                    .duplicate
            );
        }
        assert_eq!(set.counts(), vec![4, 4]);
        // The same bytes again are one image; under the other label, an error.
        let (label, bytes) = &images[0];
        let encoder = set.encoder(&clip, Some(&segmenter)).unwrap();
        let (values, region) = pollster::block_on(SupportSet::embed(
            &encoder,
            &decode(bytes).unwrap(),
            &source,
        ))
        .unwrap();
        let again = set
            .insert(&clip, bytes, *label, values.clone(), region.clone())
            .unwrap();
        assert!(again.duplicate);
        let error = set
            .insert(&clip, bytes, 1 - label, values, region)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("already in class `glioma`"),
            "{error}"
        );
        assert_eq!(set.len(), 8);

        let settings = HeadSettings::new(kind);
        let head =
            pollster::block_on(set.train(&clip, "openclip-tiny", &[], &settings, &mut Silent))
                .unwrap();
        assert_eq!(head.header.kind, native.header.kind);
        assert_eq!(head.header.classes, native.header.classes);
        assert_eq!(head.header.templates, native.header.templates);
        assert_eq!(head.header.focus.method, native.header.focus.method);
        assert_eq!(head.header.focus.settings, native.header.focus.settings);
        let recorded = |head: &HeadFile| {
            head.header.focus.automatic.as_ref().map(|settings| {
                (
                    settings.points_per_side,
                    settings.pred_iou_thresh,
                    settings.stability_score_thresh,
                )
            })
        };
        assert_eq!(recorded(&head), recorded(&native));
        assert_eq!(head.header.cache, native.header.cache);
        assert_eq!(
            head.tensors.keys().collect::<Vec<_>>(),
            native.tensors.keys().collect::<Vec<_>>()
        );
        for (name, tensor) in &head.tensors {
            let theirs = &native.tensors[name];
            assert_eq!(tensor.shape, theirs.shape, "{name}");
            let diff = tensor
                .values
                .iter()
                .zip(&theirs.values)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-6, "{kind:?} {focus} {name}: max |Δ| {diff}");
        }
        // The written bytes read back as the same head (what the page offers for download).
        let bytes = head.to_bytes().unwrap();
        assert_eq!(HeadFile::from_bytes(bytes).unwrap().tensors, head.tensors);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
