//! `medfocus head export-arrays` / `import-arrays` (issue 34): a head's trainable weights as a
//! NumPy `.npz` and back, exactly, through the binary; heads that must not be federated refused.
#![cfg(not(target_arch = "wasm32"))]

use medfocus::heads::HeadFile;
use medfocus::heads::arrays::{read_npz, write_npz};

mod common;

use common::cli::{fixture, medfocus, scratch, text};

#[test]
fn a_heads_weights_go_out_as_numpy_arrays_and_back_exactly() {
    let dir = scratch("head-arrays");
    let head = fixture("heads/brain-mri-sam2-overlay-linear-probe.mfh");
    let npz = dir.join("weights.npz").display().to_string();
    let out = medfocus(&["head", "export-arrays", "--head", &head, "--out", &npz]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("linear.weight [4, 24], linear.bias [4]"));
    let original = HeadFile::read(std::path::Path::new(&head)).unwrap();
    let mut arrays = read_npz(&std::fs::read(&npz).unwrap()).unwrap();
    assert_eq!(arrays["linear.weight"], original.tensors["linear.weight"]);

    // As a server would: new weights in an .npz, imported into a copy of the head.
    for value in &mut arrays.get_mut("linear.weight").unwrap().values {
        *value = -*value;
    }
    let mut updated = original.clone();
    updated.tensors.extend(arrays);
    std::fs::write(dir.join("new.npz"), write_npz(&updated).unwrap()).unwrap();
    let new_head = dir.join("new.mfh").display().to_string();
    let new_npz = dir.join("new.npz").display().to_string();
    let args = [
        "head",
        "import-arrays",
        "--head",
        &head,
        "--arrays",
        &new_npz,
        "--out",
        &new_head,
    ];
    let out = medfocus(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        HeadFile::read(std::path::Path::new(&new_head)).unwrap(),
        updated
    );

    // The head it makes predicts like any other.
    let image = common::shared("brain-mri/glioma/Te-gl_0010.jpg")
        .display()
        .to_string();
    let model = fixture("clip/openclip-tiny");
    let sam2 = fixture("sam2/sam2.1-tiny-small.pt");
    let config = fixture("sam2/sam2.1-tiny-small.config.json");
    let args = [
        "predict",
        "--head",
        &new_head,
        "--model",
        &model,
        "--sam2",
        &sam2,
        "--sam2-config",
        &config,
        "--json",
        &image,
    ];
    let out = medfocus(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("probabilities"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn heads_that_must_not_leave_a_site_and_bad_arrays_are_refused_clearly() {
    let dir = scratch("head-arrays-refused");
    let npz = dir.join("w.npz").display().to_string();
    let tip = fixture("heads/brain-mri-tip-adapter-f.mfh");
    let out = medfocus(&["head", "export-arrays", "--head", &tip, "--out", &npz]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("its cache keys are the training images' embeddings"));
    assert!(!std::path::Path::new(&npz).exists(), "nothing written");

    let probe = fixture("heads/brain-mri-sam2-overlay-linear-probe.mfh");
    std::fs::write(&npz, b"not an archive").unwrap();
    let new_head = dir.join("new.mfh").display().to_string();
    let out = medfocus(&[
        "head",
        "import-arrays",
        "--head",
        &probe,
        "--arrays",
        &npz,
        "--out",
        &new_head,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not an .npz"),
        "{}",
        text(&out.stderr)
    );
    assert!(!std::path::Path::new(&new_head).exists(), "nothing written");
    std::fs::remove_dir_all(&dir).unwrap();
}
