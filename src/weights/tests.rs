//! The key mapping, the problems it reports, and SafeTensors read whole and streamed.

use burn::tensor::TensorData;

use super::*;

struct Identity;
impl KeyMap for Identity {
    fn source(&self, canonical: &str) -> Source {
        match canonical {
            "qkv" => Source::Concat(vec!["q".into(), "k".into(), "v".into()]),
            "proj" => Source::Transposed("proj_t".into()),
            other => Source::Key(other.to_string()),
        }
    }
}

fn checkpoint(entries: &[(&str, Vec<f32>, Vec<usize>)]) -> Checkpoint {
    let tensors = entries
        .iter()
        .map(|(key, values, shape)| {
            (
                key.to_string(),
                TensorData::new(values.clone(), shape.clone()),
            )
        })
        .collect();
    Checkpoint::from_tensors("test", tensors)
}

#[test]
fn concatenates_and_transposes() {
    let ckpt = checkpoint(&[
        ("q", vec![1.0, 2.0], vec![1, 2]),
        ("k", vec![3.0, 4.0], vec![1, 2]),
        ("v", vec![5.0, 6.0], vec![1, 2]),
        ("proj_t", vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![2, 3]),
    ]);
    let mut weights = Weights::new(ckpt, &Identity);
    let qkv = weights.take("qkv", &[3, 2]).unwrap();
    assert_eq!(
        qkv.try_to_vec::<f32>().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    let proj = weights.take("proj", &[3, 2]).unwrap();
    assert_eq!(
        proj.try_to_vec::<f32>().unwrap(),
        vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
    weights.finish("test").unwrap();
}

#[test]
fn reports_every_problem_with_checkpoint_keys() {
    let ckpt = checkpoint(&[
        ("q", vec![1.0, 2.0], vec![1, 2]),
        ("bias", vec![0.0; 3], vec![3]),
    ]);
    let mut weights = Weights::new(ckpt, &Identity);
    weights.take("qkv", &[3, 2]).unwrap();
    weights.take("bias", &[4]).unwrap();
    assert!(weights.take_optional("absent", &[1]).unwrap().is_none());
    let error = weights.finish("tiny").unwrap_err().to_string();
    assert!(error.contains("`k` [1, 2] is missing"), "{error}");
    assert!(error.contains("`v` [1, 2] is missing"), "{error}");
    assert!(
        error.contains("`bias` has shape [3], the config needs [4]"),
        "{error}"
    );
}

#[test]
fn nan_or_infinite_weights_are_a_problem_named_by_key() {
    let ckpt = checkpoint(&[
        ("q", vec![1.0, f32::NAN], vec![1, 2]),
        ("k", vec![f32::INFINITY, f32::NEG_INFINITY], vec![1, 2]),
        ("v", vec![5.0, 6.0], vec![1, 2]),
    ]);
    let mut weights = Weights::new(ckpt, &Identity);
    weights.take("q", &[1, 2]).unwrap();
    weights.take("k", &[1, 2]).unwrap();
    weights.take("v", &[1, 2]).unwrap();
    let error = weights.finish("tiny").unwrap_err().to_string();
    assert!(
        error.contains("`q` holds 1 NaN or infinite values"),
        "{error}"
    );
    assert!(
        error.contains("`k` holds 2 NaN or infinite values"),
        "{error}"
    );
    assert!(!error.contains("`v`"), "{error}");
}

#[test]
fn truncated_and_foreign_safetensors_are_named() {
    let error = Checkpoint::from_safetensors_bytes("x.safetensors", Vec::new()).unwrap_err();
    assert!(error.to_string().contains("empty"));
    let mut bytes = 100u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"a\":");
    let error = Checkpoint::from_safetensors_bytes("x.safetensors", bytes).unwrap_err();
    assert!(error.to_string().contains("truncated"), "{error}");
    let error = Checkpoint::from_safetensors_bytes("x.safetensors", b"GIF89a not weights".to_vec())
        .unwrap_err();
    assert!(
        error.to_string().contains("not a SafeTensors file"),
        "{error}"
    );
}

/// The fixture streamed in pieces of every awkward size gives exactly what the reference
/// parser (the `safetensors` crate) reads from the whole file. Native only: that crate and
/// the fixture's path are not in the wasm build (the browser suite streams files itself).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn a_streamed_checkpoint_is_the_file_read_whole() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/clip/hf-clip-tiny/model.safetensors"
    );
    let bytes = std::fs::read(path).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for piece in [1, 7, 8, 9, 4096, bytes.len()] {
        let mut stream = SafetensorsStream::new("model.safetensors", bytes.len() as u64).unwrap();
        for chunk in bytes.chunks(piece) {
            stream.push(chunk).unwrap();
        }
        assert_eq!(stream.received(), bytes.len() as u64);
        let checkpoint = stream.finish().unwrap();
        assert_eq!(checkpoint.len(), reference.len(), "piece {piece}");
        for (key, view) in reference.tensors() {
            let data = checkpoint.get(&key).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(data.shape().as_slice(), view.shape(), "{key}");
            assert_eq!(data.as_bytes(), view.data(), "{key}");
            assert_eq!(
                format!("{:?}", view.dtype()).to_uppercase(),
                format!("{:?}", data.dtype()).to_uppercase(),
                "{key}"
            );
        }
    }
}

fn header_file(header: &str, data: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(std::iter::repeat_n(0u8, data));
    bytes
}

fn stream_error(bytes: &[u8], announced: u64) -> String {
    let run = || -> Result<Checkpoint, WeightsError> {
        let mut stream = SafetensorsStream::new("x.safetensors", announced)?;
        for chunk in bytes.chunks(5) {
            stream.push(chunk)?;
        }
        stream.finish()
    };
    run().unwrap_err().to_string()
}

#[test]
fn a_stream_names_what_is_wrong_before_allocating_it() {
    let good = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let bytes = header_file(good, 8);
    // Cut short, or longer than announced.
    let error = stream_error(&bytes[..bytes.len() - 3], bytes.len() as u64);
    assert!(error.contains("truncated"), "{error}");
    let longer = [bytes.as_slice(), &[0]].concat();
    let error = stream_error(&longer, bytes.len() as u64);
    assert!(error.contains("more bytes arrived"), "{error}");
    // A header that claims a 2^40-element tensor the file does not hold.
    let lying = r#"{"a":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#;
    let bytes = header_file(lying, 8);
    let error = stream_error(&bytes, bytes.len() as u64);
    assert!(
        error.contains("truncated") && error.contains("4398046511104"),
        "{error}"
    );
    // Offsets that disagree with the shape, tensors that overlap, an unknown dtype.
    let bytes = header_file(
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        8,
    );
    let error = stream_error(&bytes, bytes.len() as u64);
    assert!(error.contains("needs 12 bytes"), "{error}");
    let overlap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let bytes = header_file(overlap, 8);
    let error = stream_error(&bytes, bytes.len() as u64);
    assert!(error.contains("overlap"), "{error}");
    let bytes = header_file(
        r#"{"a":{"dtype":"F8_E9","shape":[1],"data_offsets":[0,1]}}"#,
        1,
    );
    let error = stream_error(&bytes, bytes.len() as u64);
    assert!(error.contains("unsupported dtype F8_E9"), "{error}");
    // A header length no SafeTensors file has (a PNG, say).
    let error = stream_error(b"\x89PNG\r\n\x1a\n and more", 20);
    assert!(error.contains("not a SafeTensors file"), "{error}");
    // Shapes whose product overflows.
    let bytes = header_file(
        r#"{"a":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,8]}}"#,
        8,
    );
    let error = stream_error(&bytes, bytes.len() as u64);
    assert!(error.contains("overflows"), "{error}");
    // The good file, for contrast.
    let bytes = header_file(good, 8);
    let mut stream = SafetensorsStream::new("x.safetensors", bytes.len() as u64).unwrap();
    stream.push(&bytes).unwrap();
    assert_eq!(stream.finish().unwrap().shape("a"), Some(&[2usize][..]));
}
