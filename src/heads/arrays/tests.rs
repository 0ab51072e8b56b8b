use std::path::Path;

use super::*;
use crate::clip::load::load_clip_dir;
use crate::focus::FocusMode;
use crate::heads::FeatureSet;
use crate::heads::train::coop::train_coop;
use crate::heads::train::support_set::{HeadIdentity, assemble_head};
use crate::heads::train::training::Training;
use crate::heads::train::{HeadSettings, Silent, TrainRun};

fn fixture(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

fn head(name: &str) -> HeadFile {
    HeadFile::read(&fixture(&format!("heads/{name}.mfh"))).unwrap()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|value| value.to_bits()).collect()
}

#[test]
fn a_probes_weights_go_out_and_back_bit_for_bit() {
    let probe = head("brain-mri-sam2-overlay-linear-probe");
    let arrays = read_npz(&write_npz(&probe).unwrap()).unwrap();
    assert_eq!(
        arrays.keys().map(String::as_str).collect::<Vec<_>>(),
        [LINEAR_BIAS, LINEAR_WEIGHT]
    );
    for (name, array) in &arrays {
        assert_eq!(array.shape, probe.tensors[name].shape);
        assert_eq!(
            bits(&array.values),
            bits(&probe.tensors[name].values),
            "{name}"
        );
    }
    assert_eq!(with_arrays(&probe, arrays.clone(), None).unwrap(), probe);

    // New weights (as a server's average would be) replace the old, nothing else changes.
    let mut averaged = arrays;
    for value in &mut averaged.get_mut(LINEAR_WEIGHT).unwrap().values {
        *value = *value * 0.5 + 0.125;
    }
    let updated = with_arrays(&probe, averaged.clone(), None).unwrap();
    assert_eq!(updated.header, probe.header);
    assert_eq!(
        bits(&updated.tensors[LINEAR_WEIGHT].values),
        bits(&averaged[LINEAR_WEIGHT].values)
    );
    let written = HeadFile::from_bytes(updated.to_bytes().unwrap()).unwrap();
    assert_eq!(written, updated);
}

#[test]
fn heads_that_are_not_federated_are_refused_by_name() {
    let tip = head("brain-mri-tip-adapter-f");
    let error = write_npz(&tip).unwrap_err().to_string();
    assert!(
        error.contains("tip-adapter-f") && error.contains("must not leave a site"),
        "{error}"
    );
    let error = write_npz(&head("chest-xray-finetune"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("finetune"), "{error}");
}

#[test]
fn arrays_that_do_not_fit_the_head_are_named() {
    let probe = head("brain-mri-sam2-overlay-linear-probe");
    let arrays = read_npz(&write_npz(&probe).unwrap()).unwrap();
    let refused = |change: &dyn Fn(&mut BTreeMap<String, HostTensor>)| {
        let mut changed = arrays.clone();
        change(&mut changed);
        with_arrays(&probe, changed, None).unwrap_err().to_string()
    };
    assert!(
        refused(&|a| {
            a.remove(LINEAR_BIAS);
        })
        .contains("lacks linear.bias.npy")
    );
    assert!(
        refused(&|a| {
            a.insert("cache.keys".into(), a[LINEAR_BIAS].clone());
        })
        .contains("cache.keys.npy")
    );
    let shape = refused(&|a| a.get_mut(LINEAR_BIAS).unwrap().shape = vec![2, 2]);
    assert!(shape.contains("linear.bias: shape [2, 2]"), "{shape}");
    assert!(refused(&|a| a.get_mut(LINEAR_WEIGHT).unwrap().values[3] = f32::NAN).contains("NaN"));
    // Not an archive, and an archive of something else.
    assert!(
        read_npz(b"not a zip")
            .unwrap_err()
            .to_string()
            .contains("not an .npz")
    );
    let mut foreign = zip::ZipWriter::new(Cursor::new(Vec::new()));
    foreign
        .start_file("notes.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    foreign.write_all(b"hello").unwrap();
    let foreign = foreign.finish().unwrap().into_inner();
    assert!(
        read_npz(&foreign)
            .unwrap_err()
            .to_string()
            .contains("notes.txt is not a .npy")
    );
}

/// A CoOp head's context goes out and back; its class texts are recomputed through the text
/// tower and equal the ones training wrote.
#[test]
fn a_coop_context_comes_back_with_its_class_texts_recomputed() {
    let clip = load_clip_dir(&fixture("clip/openclip-tiny"), &Device::flex()).unwrap();
    let dim = clip.model.config.embed_dim;
    let classes = vec!["glioma".to_string(), "meningioma".to_string()];
    let mut rng = crate::heads::rng::SplitMix64::new(5);
    let values: Vec<f32> = (0..8 * dim).map(|_| rng.normal() as f32).collect();
    let labels = (0..8).map(|row| row % 2).collect();
    let support = FeatureSet::new(classes.clone(), dim, values, labels).unwrap();
    let mut settings = HeadSettings::new(HeadKind::Coop);
    settings.epochs = Some(3);
    let device = Device::flex().autodiff();
    let (mut run, _) = TrainRun::open(None, "test", false).unwrap();
    let trained = train_coop(
        &clip,
        &support,
        &classes,
        Training::new(&settings, &mut run, &mut Silent, &device),
    )
    .unwrap();
    let coop = assemble_head(
        trained,
        HeadIdentity {
            kind: HeadKind::Coop,
            classes,
            templates: Vec::new(),
            clip: &clip,
            clip_name: "openclip-tiny".into(),
            embed_dim: dim,
            focus: FocusMode::none(),
        },
    )
    .unwrap();
    let arrays = read_npz(&write_npz(&coop).unwrap()).unwrap();
    assert_eq!(arrays.keys().collect::<Vec<_>>(), [COOP_CONTEXT]);
    let error = with_arrays(&coop, arrays.clone(), None).unwrap_err();
    assert!(matches!(error, ArraysError::NeedsModel), "{error}");
    let back = with_arrays(&coop, arrays, Some(&clip)).unwrap();
    let (ours, trained) = (&back.tensors[TEXT].values, &coop.tensors[TEXT].values);
    let worst = ours
        .iter()
        .zip(trained)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "class texts differ by {worst}");
}
