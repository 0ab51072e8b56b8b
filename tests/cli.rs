//! The `medfocus` binary as a user runs it: zero-shot classification of the shared images with
//! the committed tiny models, with and without a focus, and its errors.
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;
use std::process::Output;

mod common;

use common::cli::{medfocus, text};
use common::manifest;

fn shared_image(relative: &str) -> PathBuf {
    common::shared(relative)
}

const MRI: &str = "brain-mri/glioma/Te-gl_0010.jpg";
const XRAY: &str = "chest-xray/NORMAL/NORMAL2-IM-1430-0001.jpeg";

fn model(name: &str) -> String {
    manifest()
        .join("tests/fixtures/clip")
        .join(name)
        .display()
        .to_string()
}

/// Percentages printed for each image, in printed order.
fn percentages(stdout: &str) -> Vec<f64> {
    stdout
        .lines()
        .filter_map(|line| line.trim().strip_suffix('%'))
        .filter_map(|line| line.split_whitespace().last()?.parse().ok())
        .collect()
}

#[test]
fn classify_prints_a_ranked_table_per_image() {
    let mri = shared_image(MRI).display().to_string();
    let xray = shared_image(XRAY).display().to_string();
    let output = medfocus(&[
        "classify",
        "--model",
        &model("biomedclip-tiny"),
        "--classes",
        "glioma,meningioma,no tumor,pituitary tumor",
        &mri,
        &xray,
    ]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("BiomedCLIP"), "{stdout}");
    assert!(
        stdout.contains("Te-gl_0010.jpg") && stdout.contains("NORMAL2-IM-1430-0001.jpeg"),
        "{stdout}"
    );
    let values = percentages(&stdout);
    assert_eq!(values.len(), 8, "{stdout}");
    for image in values.chunks(4) {
        assert!((image.iter().sum::<f64>() - 100.0).abs() < 0.1, "{stdout}");
        assert!(
            image.windows(2).all(|pair| pair[0] >= pair[1]),
            "ranked: {stdout}"
        );
    }
}

/// Full-precision probabilities from `--json` (one image).
fn json_probabilities(output: &Output) -> Vec<f64> {
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: serde_json::Value =
        serde_json::from_str(text(&output.stdout).trim()).expect("one JSON line");
    line["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect()
}

#[test]
fn every_focus_method_runs_with_a_box_or_a_mask() {
    let mri = shared_image(MRI).display().to_string();
    let plain = json_probabilities(&medfocus(&[
        "classify",
        "--json",
        "--model",
        &model("openclip-tiny"),
        "--classes",
        "a,b,c",
        &mri,
    ]));
    for method in ["overlay", "blur", "crop", "binary", "grey", "attention"] {
        let output = medfocus(&[
            "classify",
            "--json",
            "--model",
            &model("openclip-tiny"),
            "--classes",
            "a,b,c",
            "--focus",
            method,
            "--box",
            "100,120,300,360",
            &mri,
        ]);
        let focused = json_probabilities(&output);
        assert!((focused.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        assert_ne!(focused, plain, "{method} changed nothing");
    }
    // A mask image: white rectangle on black, the size of the MRI (512×512).
    let mask_path = std::env::temp_dir().join(format!("medfocus-mask-{}.png", std::process::id()));
    let mask = image::GrayImage::from_fn(512, 512, |x, y| {
        image::Luma([if (100..300).contains(&x) && (120..360).contains(&y) {
            255
        } else {
            0
        }])
    });
    mask.save(&mask_path).unwrap();
    let with_mask = medfocus(&[
        "classify",
        "--model",
        &model("openclip-tiny"),
        "--classes",
        "a,b,c",
        "--focus",
        "attention",
        "--strength",
        "3",
        "--mask",
        &mask_path.display().to_string(),
        &mri,
    ]);
    assert!(with_mask.status.success(), "{}", text(&with_mask.stderr));
}

#[test]
fn bad_requests_are_clear_errors() {
    let mri = shared_image(MRI).display().to_string();
    let no_region = medfocus(&[
        "classify",
        "--model",
        &model("openclip-tiny"),
        "--classes",
        "a,b",
        "--focus",
        "overlay",
        &mri,
    ]);
    assert!(!no_region.status.success());
    assert!(text(&no_region.stderr).contains("--mask or --box"));

    let outside = medfocus(&[
        "classify",
        "--model",
        &model("openclip-tiny"),
        "--classes",
        "a,b",
        "--box",
        "0,0,9999,10",
        "--focus",
        "crop",
        &mri,
    ]);
    assert!(!outside.status.success());
    assert!(
        text(&outside.stderr).contains("not inside"),
        "{}",
        text(&outside.stderr)
    );

    let not_a_model = medfocus(&[
        "classify",
        "--model",
        &manifest().join("src").display().to_string(),
        "--classes",
        "a,b",
        &mri,
    ]);
    assert!(!not_a_model.status.success());
    assert!(text(&not_a_model.stderr).contains("not a CLIP model folder"));

    // A corrupt image is reported; the good one is still classified.
    let corrupt = std::env::temp_dir().join(format!("medfocus-corrupt-{}.jpg", std::process::id()));
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let mixed = medfocus(&[
        "classify",
        "--model",
        &model("openclip-tiny"),
        "--classes",
        "a,b",
        &corrupt.display().to_string(),
        &mri,
    ]);
    assert!(!mixed.status.success());
    assert!(text(&mixed.stderr).contains("medfocus-corrupt"));
    assert_eq!(percentages(&text(&mixed.stdout)).len(), 2);
}

/// Issue 16: sizes a user controls are bounded before any work: a blur σ or crop margin past its
/// limit, an automatic-mask grid of a million points per side. Each is an error naming the value
/// and the limit, and `segment` writes nothing.
#[test]
fn sizes_past_their_limits_are_refused_naming_the_limit() {
    let mri = shared_image(MRI).display().to_string();
    for (focus, knob, value, words) in [
        (
            "blur",
            "--sigma",
            "1e30",
            "blur sigma 1000000000000000000000000000000 is outside [0, 64]",
        ),
        (
            "blur",
            "--sigma",
            "10000",
            "blur sigma 10000 is outside [0, 64]",
        ),
        ("crop", "--margin", "1e30", "crop margin"),
    ] {
        let output = medfocus(&[
            "classify",
            "--model",
            &model("openclip-tiny"),
            "--classes",
            "a,b",
            "--box",
            "10,10,100,100",
            "--focus",
            focus,
            knob,
            value,
            &mri,
        ]);
        assert!(!output.status.success(), "{knob} {value}");
        assert!(
            text(&output.stderr).contains(words),
            "{knob} {value}: {}",
            text(&output.stderr)
        );
    }

    let dir = std::env::temp_dir().join(format!("medfocus-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("mask.png");
    let started = std::time::Instant::now();
    let grid = medfocus(&[
        "segment",
        "--model",
        &sam2_fixture("sam2.1-tiny-small.pt"),
        "--config",
        &sam2_fixture("sam2.1-tiny-small.config.json"),
        "--auto",
        "--points-per-side",
        "1000000",
        "--out",
        &out.display().to_string(),
        &mri,
    ]);
    assert!(!grid.status.success());
    assert!(
        text(&grid.stderr).contains("points per side 1000000 is outside 1 to 128"),
        "{}",
        text(&grid.stderr)
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "refused before the work, not after"
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sam2_fixture(name: &str) -> String {
    manifest()
        .join("tests/fixtures/sam2")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn segment_writes_mask_and_overlay_from_a_point_a_box_or_automatically() {
    let dir = std::env::temp_dir().join(format!("medfocus-segment-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = shared_image("brain-mri/meningioma/Te-me_0016.jpg")
        .display()
        .to_string();
    let model = sam2_fixture("sam2.1-tiny-small.pt");
    let config = sam2_fixture("sam2.1-tiny-small.config.json");
    let out = dir.join("mask.png").display().to_string();
    for prompt in [
        vec!["--point", "145,170"],
        vec!["--box", "40,50,250,300", "--single"],
        vec![
            "--auto",
            "--points-per-side",
            "8",
            "--pred-iou-thresh",
            "0.3",
            "--stability-thresh",
            "0.6",
            "--point",
            "145,170",
        ],
    ] {
        let mut args = vec![
            "segment", "--model", &model, "--config", &config, "--json", "--out", &out,
        ];
        args.extend(prompt.iter().copied());
        args.push(&image);
        let output = medfocus(&args);
        assert!(
            output.status.success(),
            "{prompt:?}: {}",
            text(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
        let mask = image::open(&out).unwrap().to_luma8();
        assert_eq!(mask.dimensions(), (290, 339));
        let inside = mask.pixels().filter(|p| p.0[0] == 255).count();
        assert_eq!(report["area"].as_u64(), Some(inside as u64), "{prompt:?}");
        assert!(inside > 0 && inside < 290 * 339, "{prompt:?}: {inside}");
        let overlay = image::open(dir.join("mask.overlay.png")).unwrap().to_rgb8();
        assert_eq!(overlay.dimensions(), (290, 339));
    }

    let bad = [
        (vec!["--point", "900,10"], "outside the 290×339 image"),
        (vec!["--point", "1,2,3"], "expected 2 comma-separated"),
        (vec![], "give --point, --box or --auto"),
    ];
    for (prompt, expected) in bad {
        // `--sam2-config`, the name train, predict and eval use, works here too (the expected
        // messages need the arguments parsed).
        let mut args = vec![
            "segment",
            "--model",
            &model,
            "--sam2-config",
            &config,
            "--out",
            &out,
        ];
        args.extend(prompt.iter().copied());
        args.push(&image);
        let output = medfocus(&args);
        assert!(!output.status.success());
        assert!(
            text(&output.stderr).contains(expected),
            "{}",
            text(&output.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sam2_exports_a_burnpack_and_checks_int8() {
    let dir = std::env::temp_dir().join(format!("medfocus-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = sam2_fixture("sam2.1-tiny-small.pt");
    let config = sam2_fixture("sam2.1-tiny-small.config.json");
    let pack = dir.join("sam2.bpk").display().to_string();
    let output = medfocus(&[
        "weights",
        "export-sam2",
        &model,
        "--config",
        &config,
        "--int8",
        "tensor",
        "--out",
        &pack,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("int8-per-tensor"),
        "{}",
        text(&output.stdout)
    );
    // The burnpack segments without a config: it carries its own.
    let image = shared_image(MRI).display().to_string();
    let out = dir.join("m.png").display().to_string();
    let output = medfocus(&[
        "segment", "--model", &pack, "--point", "256,256", "--out", &out, &image,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("int8-per-tensor"),
        "{}",
        text(&output.stdout)
    );

    let output = medfocus(&["weights", "check-int8", &model, "--config", &config, &image]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let cosine: f64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("embedding cosine: mean "))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(cosine > 0.99, "{stdout}");

    let output = medfocus(&[
        "weights",
        "export-sam2",
        &model,
        "--config",
        &config,
        "--int8",
        "int4",
        "--out",
        &pack,
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("use `tensor` or `block-N`"),
        "{}",
        text(&output.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The manifest `weights export-web` wrote, with every listed file checked against the disk.
fn site_manifest(site: &std::path::Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "medfocus-site-models");
    assert_eq!(manifest["version"], 1);
    for model in manifest["models"].as_array().unwrap() {
        for file in model["files"].as_array().unwrap() {
            let path = site.join(file["path"].as_str().unwrap());
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                file["size"].as_u64().unwrap(),
                bytes.len() as u64,
                "{path:?}"
            );
            assert_eq!(
                file["sha256"].as_str().unwrap(),
                medfocus::heads::train::cache::sha256_hex(&bytes),
                "{path:?}"
            );
        }
    }
    manifest
}

fn listed_names(manifest: &serde_json::Value, kind: &str) -> Vec<String> {
    manifest["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|model| model["kind"] == kind)
        .map(|model| {
            model["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|file| file["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn export_web_writes_the_site_models_the_page_downloads() {
    let site = std::env::temp_dir().join(format!("medfocus-site-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&site);
    let site_arg = site.display().to_string();
    let head = manifest()
        .join("tests/fixtures/heads/brain-mri-tip-adapter-f.mfh")
        .display()
        .to_string();
    let output = medfocus(&[
        "weights",
        "export-web",
        "--clip",
        &model("openclip-tiny"),
        "--sam2",
        &sam2_fixture("sam2.1-tiny-small.pt"),
        "--sam2-config",
        &sam2_fixture("sam2.1-tiny-small.config.json"),
        "--head",
        &head,
        "--out",
        &site_arg,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("int8-per-block-32"), "{stdout}");
    let written = site_manifest(&site);
    // The files the loader reads, SafeTensors only (the browser reads no pickle).
    assert_eq!(
        listed_names(&written, "clip"),
        ["open_clip_config.json", "open_clip_model.safetensors"]
    );
    assert_eq!(
        listed_names(&written, "sam2"),
        ["sam2.1-tiny-small.int8-per-block-32.bpk"]
    );
    assert_eq!(
        listed_names(&written, "head"),
        ["brain-mri-tip-adapter-f.mfh"]
    );
    let clip = &written["models"][0];
    assert_eq!(clip["kind"], "clip");
    assert_eq!(
        clip["label"], "openclip-tiny",
        "what heads record as the CLIP model"
    );

    // The SAM 2 burnpack listed is one the CLI segments with, carrying its own config.
    let pack = site
        .join("sam2/sam2.1-tiny-small.int8-per-block-32.bpk")
        .display()
        .to_string();
    let mask = site.join("mask.png").display().to_string();
    let image = shared_image(MRI).display().to_string();
    let output = medfocus(&[
        "segment", "--model", &pack, "--point", "256,256", "--out", &mask, &image,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    std::fs::remove_file(&mask).unwrap();

    // BiomedCLIP is loaded natively from its pickle; the page gets it as SafeTensors. Other
    // kinds stay listed, and the earlier CLIP's files go.
    let output = medfocus(&[
        "weights",
        "export-web",
        "--clip",
        &model("biomedclip-tiny"),
        "--out",
        &site_arg,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let written = site_manifest(&site);
    let names = listed_names(&written, "clip");
    assert!(
        names.contains(&"open_clip_model.safetensors".to_string())
            && names.iter().any(|name| name.starts_with("text/"))
            && !names.iter().any(|name| name.ends_with(".bin")),
        "{names:?}"
    );
    assert_eq!(listed_names(&written, "sam2").len(), 1);
    assert_eq!(listed_names(&written, "head").len(), 1);
    let mut on_disk = Vec::new();
    for entry in common::cli::walk(&site.join("clip")) {
        on_disk.push(
            entry
                .strip_prefix(site.join("clip"))
                .unwrap()
                .display()
                .to_string(),
        );
    }
    on_disk.sort();
    let mut listed = names.clone();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "exactly the listed files are in the folder"
    );

    // Wrong input: a clear error, and the manifest as it was.
    let before = std::fs::read(site.join("manifest.json")).unwrap();
    let output = medfocus(&[
        "weights",
        "export-web",
        "--head",
        &model("openclip-tiny"),
        "--out",
        &site_arg,
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("not a MedFocus head file")
            && text(&output.stderr).contains("openclip-tiny"),
        "{}",
        text(&output.stderr)
    );
    let output = medfocus(&["weights", "export-web", "--out", &site_arg]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("at least one of --clip, --sam2 and --head"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read(site.join("manifest.json")).unwrap(), before);
    std::fs::remove_dir_all(&site).unwrap();
}

/// `--explain`: per image a heat-map and a blend the size of the image, the map's numbers in
/// the JSON, the same probabilities as without it; the crop prompt's heat-map is transparent
/// outside the box; bad explanation requests are clear errors.
#[test]
fn classify_explains_where_the_model_looked() {
    let mri = shared_image(MRI).display().to_string();
    let dir = common::cli::scratch("explain");
    let dir_arg = dir.display().to_string();
    let base = [
        "classify",
        "--json",
        "--model",
        &model("openclip-tiny"),
        "--classes",
        "a,b,c",
        "--focus",
        "crop",
        "--box",
        "100,120,300,360",
    ];
    let plain = json_probabilities(&medfocus(&[&base[..], &[mri.as_str()]].concat()));
    for method in ["relevancy", "dense"] {
        let output = medfocus(
            &[
                &base[..],
                &[
                    "--explain",
                    &dir_arg,
                    "--explain-method",
                    method,
                    "--explain-class",
                    "b",
                    &mri,
                ],
            ]
            .concat(),
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let explained = json_probabilities(&output);
        assert_eq!(explained.len(), plain.len());
        for (got, want) in explained.iter().zip(&plain) {
            assert!(
                (got - want).abs() < 1e-6,
                "{method}: {explained:?} vs {plain:?}"
            );
        }
        let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let explanation = &line["explanation"];
        assert_eq!(explanation["method"], method);
        assert_eq!(explanation["class"], "b");
        assert_eq!(explanation["grid"], 4);
        let map = explanation["patch_map"].as_array().unwrap();
        assert_eq!(map.len(), 16);
        assert!(map.iter().all(|value| value.as_f64().unwrap().is_finite()));
        let heatmap = image::open(explanation["heatmap"].as_str().unwrap())
            .unwrap()
            .to_rgba8();
        let blended = image::open(explanation["blended"].as_str().unwrap()).unwrap();
        assert_eq!(heatmap.dimensions(), (512, 512));
        assert_eq!((blended.width(), blended.height()), (512, 512));
        // The crop prompt showed the tower the box grown by 10 % (80..320 × 96..384) alone.
        assert_eq!(heatmap.get_pixel(20, 20)[3], 0, "{method}: outside the box");
        assert_eq!(
            heatmap.get_pixel(200, 240)[3],
            255,
            "{method}: inside the box"
        );
    }
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 4);
    for (args, needle) in [
        (
            &["--explain-class", "nope"][..],
            "`nope` is not one of the classifier's classes",
        ),
        (
            &["--explain-opacity", "2"][..],
            "--explain-opacity must be in [0, 1]",
        ),
        (
            &["--explain-start-block", "7"][..],
            "start block 7 does not exist: the image tower has 2 blocks",
        ),
    ] {
        let output =
            medfocus(&[&base[..], &["--explain", &dir_arg], args, &[mri.as_str()]].concat());
        assert!(!output.status.success(), "{args:?}");
        assert!(
            text(&output.stderr).contains(needle),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}
