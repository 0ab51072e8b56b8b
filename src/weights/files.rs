//! Checkpoints from the files and bytes users have — SafeTensors (streamed), natively PyTorch
//! pickles — and, natively, to SafeTensors for the browser.

#[cfg(not(target_arch = "wasm32"))]
use std::collections::BTreeMap;

#[cfg(not(target_arch = "wasm32"))]
use burn::store::{ModuleStore, bridge};
#[cfg(not(target_arch = "wasm32"))]
use burn::tensor::{DType, TensorData};

use super::checkpoint::Checkpoint;
#[cfg(not(target_arch = "wasm32"))]
use super::checkpoint::strip_prefix;
use super::error::WeightsError;
#[cfg(not(target_arch = "wasm32"))]
use super::error::unreadable;
use super::stream::SafetensorsStream;

/// SafeTensors starts with a little-endian u64 header length followed by a JSON object.
#[cfg(not(target_arch = "wasm32"))]
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() > 9 && bytes[8] == b'{'
}

impl Checkpoint {
    /// Reads a SafeTensors file held in memory.
    pub fn from_safetensors_bytes(
        source_name: impl Into<String>,
        bytes: Vec<u8>,
    ) -> Result<Self, WeightsError> {
        let mut stream = SafetensorsStream::new(source_name, bytes.len() as u64)?;
        stream.push(&bytes)?;
        drop(bytes);
        stream.finish()
    }

    /// Reads a checkpoint file, SafeTensors or PyTorch, whatever its extension says.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self, WeightsError> {
        use std::io::Read;
        let source_name = path.display().to_string();
        let mut head = [0u8; 16];
        let read = std::fs::File::open(path)
            .and_then(|mut file| file.read(&mut head))
            .map_err(|error| unreadable(&source_name, error))?;
        let head = &head[..read];
        let tensors = if looks_like_safetensors(head) {
            // Streamed: the file's bytes are never held beside its tensors.
            let mut file =
                std::fs::File::open(path).map_err(|error| unreadable(&source_name, error))?;
            let size = file
                .metadata()
                .map_err(|error| unreadable(&source_name, error))?
                .len();
            let mut stream = SafetensorsStream::new(source_name.clone(), size)?;
            let mut buffer = vec![0u8; 8 << 20];
            loop {
                let read = file
                    .read(&mut buffer)
                    .map_err(|error| unreadable(&source_name, error))?;
                if read == 0 {
                    break;
                }
                stream.push(&buffer[..read])?;
            }
            return stream.finish();
        } else if head.starts_with(b"PK\x03\x04") || head.first() == Some(&0x80) {
            // Keys stay as written: burn would otherwise renumber `proj.0`/`proj.2` of a
            // Sequential with a parameter-free GELU between them into `proj.0`/`proj.1`.
            let mut store =
                burn::store::PytorchStore::from_file(path).map_indices_contiguous(false);
            let mut tensors = read_all(&source_name, &mut store)?;
            // Training checkpoints wrap the weights: {"state_dict": {"module.visual…": …}}.
            if tensors.keys().all(|key| key.starts_with("state_dict.")) {
                tensors = strip_prefix(tensors, "state_dict.");
            }
            if !tensors.is_empty() && tensors.keys().all(|key| key.starts_with("module.")) {
                tensors = strip_prefix(tensors, "module.");
            }
            tensors
        } else if head.is_empty() {
            return Err(unreadable(&source_name, "the file is empty"));
        } else {
            return Err(unreadable(
                &source_name,
                "not a SafeTensors file nor a PyTorch checkpoint (zip or pickle)",
            ));
        };
        Ok(Self {
            source_name,
            tensors,
        })
    }
}

/// Writes every tensor as SafeTensors (floats as f32, integers as i64), atomically: the browser
/// reads only SafeTensors, so a PyTorch pickle is converted once, natively.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_safetensors(
    checkpoint: &Checkpoint,
    path: &std::path::Path,
) -> Result<(), WeightsError> {
    use safetensors::tensor::{Dtype, TensorView};
    let target = path.display().to_string();
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> =
        Vec::with_capacity(checkpoint.len());
    for (key, data) in &checkpoint.tensors {
        let failed = |error| unreadable(&checkpoint.source_name, format!("`{key}`: {error:?}"));
        let (dtype, bytes) = if data.dtype().is_float() {
            let values = data
                .clone()
                .convert_dtype(DType::F32)
                .try_to_vec::<f32>()
                .map_err(failed)?;
            (
                Dtype::F32,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        } else {
            let values = data
                .clone()
                .convert_dtype(DType::I64)
                .try_to_vec::<i64>()
                .map_err(failed)?;
            (
                Dtype::I64,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        };
        buffers.push((key.clone(), dtype, data.shape().to_vec(), bytes));
    }
    let mut views = Vec::with_capacity(buffers.len());
    for (key, dtype, shape, bytes) in &buffers {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|error| unreadable(&target, error))?;
        views.push((key.clone(), view));
    }
    let serialized =
        safetensors::tensor::serialize(views, None).map_err(|error| unreadable(&target, error))?;
    let part = path.with_extension("safetensors.part");
    std::fs::write(&part, serialized).map_err(|error| unreadable(&target, error))?;
    std::fs::rename(&part, path).map_err(|error| unreadable(&target, error))
}

#[cfg(not(target_arch = "wasm32"))]
fn read_all<S: ModuleStore>(
    source_name: &str,
    store: &mut S,
) -> Result<BTreeMap<String, TensorData>, WeightsError> {
    let entries = store
        .get_all_tensors()
        .map_err(|error| unreadable(source_name, error))?;
    let mut tensors = BTreeMap::new();
    for (key, tensor) in entries {
        let data = bridge::to_data(tensor)
            .map_err(|error| unreadable(source_name, format!("tensor `{key}`: {error:?}")))?;
        tensors.insert(key.clone(), data);
    }
    Ok(tensors)
}
