//! `medfocus bench` and the GPU driver `scripts/bench/gpu.py` (issue 35), on the tiny fixtures:
//! the figures and the outputs the driver compares, and the driver end to end against the
//! software Vulkan adapter (lavapipe) — the same command a GPU machine runs, proved here: the
//! towers' and SAM 2's outputs, and every head kind trained on both devices.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::Command;

mod common;

use common::cli::{fixture, medfocus, scratch, text};

fn npy_shape(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let array = medfocus::npy::read(&bytes[..], 1 << 30).unwrap();
    array.shape
}

#[test]
fn bench_times_the_work_and_writes_what_parity_compares() {
    let dir = scratch("bench-cpu");
    let save = dir.join("cpu");
    // (`medfocus` runs on the CPU backend: `common::cli` passes `--device cpu`.)
    let out = medfocus(&[
        "bench",
        "--clip",
        &fixture("clip/openclip-tiny"),
        "--sam2",
        &fixture("sam2/sam2.1-tiny-small.pt"),
        "--sam2-config",
        &fixture("sam2/sam2.1-tiny-small.config.json"),
        "--runs",
        "2",
        "--batch",
        "3",
        "--grid",
        "4",
        "--save",
        &save.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let figures: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("medfocus-bench "))
        .map(|json| serde_json::from_str(json).unwrap())
        .collect();
    let works: Vec<&str> = figures
        .iter()
        .map(|f| f["work"].as_str().unwrap())
        .collect();
    for work in [
        "clip.load",
        "clip.image.first",
        "clip.image",
        "clip.image_batch_3",
        "clip.image_attention",
        "clip.text_5_prompts",
        "sam2.load",
        "sam2.embed",
        "sam2.point_prompt",
        "sam2.automatic_4",
    ] {
        assert!(works.contains(&work), "{work} missing from {works:?}");
    }
    let image = figures.iter().find(|f| f["work"] == "clip.image").unwrap();
    assert_eq!(image["ms"].as_array().unwrap().len(), 2);
    assert!(
        image["backend"].as_str().unwrap().contains("CPU"),
        "{image}"
    );
    assert_eq!(npy_shape(&save.join("clip.image.npy")), [1, 24]);
    assert_eq!(npy_shape(&save.join("clip.image_attention.npy")), [1, 24]);
    assert_eq!(npy_shape(&save.join("clip.text.npy")), [5, 24]);
    assert_eq!(npy_shape(&save.join("sam2.point_iou.npy")), [3]);
    assert_eq!(npy_shape(&save.join("sam2.point_masks.npy")), [3, 512, 512]);
    assert_eq!(npy_shape(&save.join("sam2.automatic.npy"))[1], 6);

    let refused = medfocus(&["bench"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("give --clip, --sam2 or both"));
}

/// The driver a GPU machine runs, here on lavapipe: CPU and wgpu sides, parity, the table.
#[test]
fn the_gpu_driver_runs_end_to_end_on_a_software_adapter() {
    let dir = scratch("bench-gpu-smoke");
    let report = dir.join("gpu.json");
    let python = std::env::var("MEDFOCUS_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/gpu.py"))
        .args([
            "--smoke",
            "--medfocus",
            env!("CARGO_BIN_EXE_medfocus"),
            "--json",
        ])
        .arg(&report)
        // The driver compares with PyTorch when it is importable; not on this machine's python.
        .env("MEDFOCUS_TORCH_PYTHON", "python3")
        .output()
        .expect("python3 runs");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Parity"), "{stdout}");
    assert!(
        stdout.contains("clip.image: max |Δ| of unit embeddings"),
        "{stdout}"
    );
    assert!(stdout.contains("sam2 point prompt: mask IoU"), "{stdout}");
    if common::shared("brain-mri").is_dir() {
        for kind in ["linear-probe", "coop", "finetune"] {
            let row = format!("{kind} trained on the GPU vs on the CPU");
            assert!(stdout.contains(&row), "{row} missing: {stdout}");
        }
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for check in results["parity"].as_array().unwrap() {
        assert_eq!(check["passed"], true, "{check}");
    }
    let gpu = results["sides"]["gpu"]["backend"].as_str().unwrap();
    assert!(!gpu.contains("CPU backend"), "the GPU side ran on {gpu}");
    let proof = &results["device_proof"]["proof"];
    assert!(proof["max_abs_diff"].as_f64().unwrap() <= 1e-4, "{proof}");
    assert!(stdout.contains("--device auto (build medfocus"), "{stdout}");
}

/// Issue 35: `devices --prove` measures the GPU against the CPU backend and keeps the proof;
/// `--device auto` reads it (a software adapter like this one stays passed over, proof or not).
#[test]
fn devices_prove_keeps_the_proof_auto_reads() {
    let dir = scratch("device-proof");
    let proofs = dir.join("device-proofs.json");
    let devices = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_medfocus"))
            .args(args)
            .env("MEDFOCUS_DEVICE_PROOFS", &proofs)
            .output()
            .expect("medfocus runs")
    };
    // A damaged proof file does not stop anything; auto says it was unreadable.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&proofs, "{ not json").unwrap();
    let out = devices(&["devices"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("warning: cannot read the device proofs"),
        "{stdout}"
    );

    let out = devices(&[
        "devices",
        "--prove",
        &fixture("clip/openclip-tiny"),
        "--runs",
        "2",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("CLIP's image tower on 1 image (openclip-tiny): max |Δ|"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: correct"), "{stdout}");
    assert!(
        stdout.contains("--device auto now: CPU backend"),
        "{stdout}"
    );
    let book: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proofs).unwrap()).unwrap();
    let proof = &book["proofs"][0];
    assert!(proof["max_abs_diff"].as_f64().unwrap() <= 1e-4, "{proof}");
    assert!(proof["gpu_ms"].as_f64().unwrap() > 0.0, "{proof}");
    assert!(
        proof["build"].as_str().unwrap().starts_with("medfocus "),
        "{proof}"
    );
    let out = devices(&["devices"]);
    assert!(
        !text(&out.stdout).contains("warning"),
        "{}",
        text(&out.stdout)
    );

    let refused = devices(&[
        "--device",
        "cpu",
        "devices",
        "--prove",
        &fixture("clip/openclip-tiny"),
    ]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("leave out --device cpu"));
}
