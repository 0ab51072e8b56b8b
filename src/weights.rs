//! Checkpoints as they are published: SafeTensors (files or bytes) and, natively, PyTorch
//! pickles (`.bin`/`.pt`, zip or legacy).
//!
//! A model family's loader says, for every tensor the model needs under our own canonical name,
//! where it lives in the family's checkpoint ([`Source`]). Building the model then asks
//! [`Weights::take`] for each tensor with the shape the config implies; problems are collected
//! rather than raised one by one, so a wrong or truncated file is reported with *every* missing
//! or misshapen tensor named in the checkpoint's own key names.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

#[cfg(not(target_arch = "wasm32"))]
use burn::store::{ModuleStore, bridge};
use burn::tensor::{DType, TensorData};

/// How many problems an error message lists before summarising the rest.
const LISTED_PROBLEMS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read checkpoint {source_name}: {detail}")]
    Unreadable { source_name: String, detail: String },
    #[error("checkpoint {source_name} does not fit the {model} model: {}", describe(.problems))]
    Mismatch {
        source_name: String,
        model: String,
        problems: Vec<Problem>,
    },
}

/// One thing wrong between a checkpoint and the model that wants to load it.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    Missing {
        key: String,
        expected: Vec<usize>,
    },
    Shape {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    NotFloat {
        key: String,
        dtype: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { key, expected } => write!(f, "`{key}` {expected:?} is missing"),
            Problem::Shape {
                key,
                expected,
                found,
            } => {
                write!(
                    f,
                    "`{key}` has shape {found:?}, the config needs {expected:?}"
                )
            }
            Problem::NotFloat { key, dtype } => write!(f, "`{key}` is {dtype}, not a float tensor"),
        }
    }
}

fn describe(problems: &[Problem]) -> String {
    let mut text: Vec<String> = problems
        .iter()
        .take(LISTED_PROBLEMS)
        .map(ToString::to_string)
        .collect();
    if problems.len() > LISTED_PROBLEMS {
        text.push(format!("and {} more", problems.len() - LISTED_PROBLEMS));
    }
    text.join("; ")
}

/// All tensors of one checkpoint by their key in the file, in the dtype stored ([`Weights`]
/// hands them out as f32).
pub struct Checkpoint {
    source_name: String,
    tensors: BTreeMap<String, TensorData>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("source_name", &self.source_name)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

fn unreadable(source_name: &str, detail: impl fmt::Display) -> WeightsError {
    WeightsError::Unreadable {
        source_name: source_name.to_string(),
        detail: detail.to_string(),
    }
}

/// SafeTensors starts with a little-endian u64 header length followed by a JSON object.
#[cfg(not(target_arch = "wasm32"))]
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() > 9 && bytes[8] == b'{'
}

impl Checkpoint {
    /// A checkpoint made of tensors already in memory (tests, converters).
    pub fn from_tensors(
        source_name: impl Into<String>,
        tensors: BTreeMap<String, TensorData>,
    ) -> Self {
        Self {
            source_name: source_name.into(),
            tensors,
        }
    }

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

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn get(&self, key: &str) -> Option<&TensorData> {
        self.tensors.get(key)
    }

    pub fn shape(&self, key: &str) -> Option<&[usize]> {
        self.tensors.get(key).map(|data| data.shape().as_slice())
    }

    /// How many blocks `prefix.{i}.…` the checkpoint holds (0 if none).
    pub fn count_indexed(&self, prefix: &str) -> usize {
        let prefix = format!("{prefix}.");
        self.keys()
            .filter_map(|key| key.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .map(|index| index + 1)
            .max()
            .unwrap_or(0)
    }

    /// Drops `prefix` from every key when all keys have it (Meta's SAM 2 checkpoints are
    /// `{"model": state_dict}`, read as `model.…`).
    pub fn strip_common_prefix(&mut self, prefix: &str) {
        if !self.tensors.is_empty() && self.tensors.keys().all(|key| key.starts_with(prefix)) {
            self.tensors = strip_prefix(std::mem::take(&mut self.tensors), prefix);
        }
    }

    /// Keys nobody took (after building a model: what it ignored).
    pub fn remaining_keys(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    fn remove(&mut self, key: &str) -> Option<TensorData> {
        self.tensors.remove(key)
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

fn strip_prefix(
    tensors: BTreeMap<String, TensorData>,
    prefix: &str,
) -> BTreeMap<String, TensorData> {
    tensors
        .into_iter()
        .map(|(key, data)| {
            (
                key.strip_prefix(prefix).map(str::to_string).unwrap_or(key),
                data,
            )
        })
        .collect()
}

/// The largest SafeTensors header read: the format's own reference parser refuses more than
/// 100 MB, and a header that long describes millions of tensors, not a model.
pub const MAX_SAFETENSORS_HEADER_BYTES: u64 = 100_000_000;

/// A SafeTensors file read as it arrives, in pieces of any size (the browser streams a model from
/// its storage or the network; natively a file is read in chunks): each tensor's bytes become
/// its [`TensorData`] as soon as they are complete, so the file is never held beside its tensors
/// (for ViT-B/16, 600 MB less at the peak). Everything a header claims is checked against the
/// file's announced size before anything is allocated; a tensor's buffer is reserved fallibly, so
/// running out of memory is an error, not an abort.
pub struct SafetensorsStream {
    source_name: String,
    total: u64,
    received: u64,
    /// The 8-byte length and the JSON header, until the header is parsed.
    prefix: Vec<u8>,
    /// Tensors in file order, once the header is parsed.
    entries: Option<Vec<StreamEntry>>,
    next: usize,
    /// Position within the data section (after the header).
    data_position: u64,
    current: Vec<u8>,
    tensors: BTreeMap<String, TensorData>,
}

struct StreamEntry {
    key: String,
    dtype: DType,
    shape: Vec<usize>,
    begin: u64,
    end: u64,
}

fn safetensors_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F64" => DType::F64,
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "I8" => DType::I8,
        "U64" => DType::U64,
        "U32" => DType::U32,
        "U16" => DType::U16,
        "U8" => DType::U8,
        "BOOL" => DType::Bool(burn::tensor::BoolStore::Native),
        _ => return None,
    })
}

impl SafetensorsStream {
    /// A stream for a file of `total` bytes (its size as stored: a shorter stream is a truncated
    /// file, a longer one an error).
    pub fn new(source_name: impl Into<String>, total: u64) -> Result<Self, WeightsError> {
        let source_name = source_name.into();
        if total == 0 {
            return Err(unreadable(&source_name, "the file is empty"));
        }
        if total < 8 {
            return Err(unreadable(
                &source_name,
                "the file is truncated (shorter than a SafeTensors header)",
            ));
        }
        Ok(Self {
            source_name,
            total,
            received: 0,
            prefix: Vec::new(),
            entries: None,
            next: 0,
            data_position: 0,
            current: Vec::new(),
            tensors: BTreeMap::new(),
        })
    }

    /// The next piece of the file.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<(), WeightsError> {
        let length = chunk.len() as u64;
        if self.received.saturating_add(length) > self.total {
            return Err(unreadable(
                &self.source_name,
                format!("more bytes arrived than the file's size, {}", self.total),
            ));
        }
        self.received += length;
        while !chunk.is_empty() {
            if self.entries.is_none() {
                chunk = self.take_header(chunk)?;
            } else {
                chunk = self.take_data(chunk)?;
            }
        }
        Ok(())
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    fn header_length(&self) -> Option<u64> {
        let bytes: [u8; 8] = self.prefix.get(..8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    fn take_header<'c>(&mut self, chunk: &'c [u8]) -> Result<&'c [u8], WeightsError> {
        let wanted = match self.header_length() {
            None => 8 - self.prefix.len(),
            Some(length) => (8 + length as usize) - self.prefix.len(),
        };
        let (head, rest) = chunk.split_at(wanted.min(chunk.len()));
        self.prefix.extend_from_slice(head);
        if self.prefix.len() == 8 {
            let length = self.header_length().unwrap_or(0);
            if length == 0 || length > MAX_SAFETENSORS_HEADER_BYTES {
                return Err(unreadable(
                    &self.source_name,
                    format!(
                        "not a SafeTensors file (its first 8 bytes give a header of {length} bytes; \
                         a header holds 2 to {MAX_SAFETENSORS_HEADER_BYTES})"
                    ),
                ));
            }
            if 8 + length > self.total {
                return Err(unreadable(
                    &self.source_name,
                    format!(
                        "the file is truncated: its header alone needs {} bytes, the file has {}",
                        8 + length,
                        self.total
                    ),
                ));
            }
            self.prefix.reserve_exact(length as usize);
        }
        if let Some(length) = self.header_length()
            && self.prefix.len() as u64 == 8 + length
        {
            self.parse_header()?;
        }
        Ok(rest)
    }

    fn parse_header(&mut self) -> Result<(), WeightsError> {
        let source_name = self.source_name.clone();
        let header = &self.prefix[8..];
        if header.first() != Some(&b'{') {
            return Err(unreadable(
                &source_name,
                "not a SafeTensors file (no JSON header)",
            ));
        }
        let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
            .map_err(|error| {
                unreadable(
                    &source_name,
                    format!("the SafeTensors header is not valid JSON: {error}"),
                )
            })?;
        let data_length = self.total - self.prefix.len() as u64;
        let mut entries = Vec::with_capacity(header.len());
        for (key, entry) in header {
            if key == "__metadata__" {
                continue;
            }
            let bad =
                |detail: String| unreadable(&source_name, format!("tensor `{key}`: {detail}"));
            let dtype_name = entry
                .get("dtype")
                .and_then(|value| value.as_str())
                .ok_or_else(|| bad("no dtype".into()))?;
            let dtype = safetensors_dtype(dtype_name)
                .ok_or_else(|| bad(format!("unsupported dtype {dtype_name}")))?;
            let shape: Vec<usize> = entry
                .get("shape")
                .and_then(|value| value.as_array())
                .and_then(|dims| {
                    dims.iter()
                        .map(|dim| dim.as_u64().and_then(|dim| usize::try_from(dim).ok()))
                        .collect()
                })
                .ok_or_else(|| bad("no shape of non-negative integers".into()))?;
            let offsets = entry
                .get("data_offsets")
                .and_then(|value| value.as_array())
                .filter(|offsets| offsets.len() == 2)
                .and_then(|offsets| Some((offsets[0].as_u64()?, offsets[1].as_u64()?)))
                .ok_or_else(|| bad("no data_offsets [begin, end]".into()))?;
            let (begin, end) = offsets;
            let bytes = shape
                .iter()
                .try_fold(dtype.size() as u64, |product, &dim| {
                    product.checked_mul(dim as u64)
                })
                .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
            if end < begin || end - begin != bytes {
                return Err(bad(format!(
                    "shape {shape:?} of {dtype_name} needs {bytes} bytes, its offsets span {}",
                    end.saturating_sub(begin)
                )));
            }
            if end > data_length {
                return Err(unreadable(
                    &source_name,
                    format!(
                        "the file is truncated: its tensors need {end} bytes of data, it holds {data_length}"
                    ),
                ));
            }
            entries.push(StreamEntry {
                key,
                dtype,
                shape,
                begin,
                end,
            });
        }
        entries.sort_by_key(|entry| entry.begin);
        if let Some(pair) = entries.windows(2).find(|pair| pair[1].begin < pair[0].end) {
            return Err(unreadable(
                &source_name,
                format!("tensors `{}` and `{}` overlap", pair[0].key, pair[1].key),
            ));
        }
        self.prefix = Vec::new();
        self.entries = Some(entries);
        Ok(())
    }

    fn take_data<'c>(&mut self, chunk: &'c [u8]) -> Result<&'c [u8], WeightsError> {
        let Some(entry) = self
            .entries
            .as_ref()
            .and_then(|entries| entries.get(self.next))
        else {
            // Past the last tensor: padding.
            self.data_position += chunk.len() as u64;
            return Ok(&[]);
        };
        if self.data_position < entry.begin {
            let skip = (entry.begin - self.data_position).min(chunk.len() as u64) as usize;
            self.data_position += skip as u64;
            return Ok(&chunk[skip..]);
        }
        let size = (entry.end - entry.begin) as usize;
        if self.current.capacity() < size {
            self.current.try_reserve_exact(size).map_err(|_| {
                unreadable(
                    &self.source_name,
                    format!(
                        "out of memory: tensor `{}` needs {:.1} MB more and none is left",
                        entry.key,
                        size as f64 / 1e6
                    ),
                )
            })?;
        }
        let take = (size - self.current.len()).min(chunk.len());
        self.current.extend_from_slice(&chunk[..take]);
        self.data_position += take as u64;
        if self.current.len() == size {
            let bytes = std::mem::take(&mut self.current);
            let data = TensorData::try_from_bytes_vec(bytes, entry.shape.clone(), entry.dtype)
                .map_err(|error| {
                    unreadable(
                        &self.source_name,
                        format!("tensor `{}`: {error:?}", entry.key),
                    )
                })?;
            self.tensors.insert(entry.key.clone(), data);
            self.next += 1;
        }
        Ok(&chunk[take..])
    }

    /// The checkpoint, once every byte arrived.
    pub fn finish(self) -> Result<Checkpoint, WeightsError> {
        if self.received < self.total {
            return Err(unreadable(
                &self.source_name,
                format!(
                    "the file is truncated: {} of its {} bytes arrived",
                    self.received, self.total
                ),
            ));
        }
        match &self.entries {
            None => Err(unreadable(
                &self.source_name,
                "the file ended in its header",
            )),
            Some(entries) if self.next < entries.len() => Err(unreadable(
                &self.source_name,
                format!("the file ended inside tensor `{}`", entries[self.next].key),
            )),
            Some(_) => Ok(Checkpoint {
                source_name: self.source_name,
                tensors: self.tensors,
            }),
        }
    }
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

/// Where one canonical tensor lives in a family's checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Stored as is.
    Key(String),
    /// Stored as the transpose of what we use (open_clip keeps projections as `[in, out]`).
    Transposed(String),
    /// Stored as separate tensors to be stacked along the first axis (q, k, v → fused in-proj).
    Concat(Vec<String>),
    /// Stored with the same values in another shape (timm's `cls_token` is `[1, 1, width]`).
    Reshaped(String),
}

/// A family's key mapping: canonical name → place in its checkpoint.
pub trait KeyMap {
    fn source(&self, canonical: &str) -> Source;
}

/// Hands out a checkpoint's tensors by canonical name, converted to f32 and shape-checked.
pub struct Weights<'a> {
    checkpoint: Checkpoint,
    map: &'a dyn KeyMap,
    problems: Vec<Problem>,
    /// Hands out zeros of the requested shapes, so a model can be built from its config alone
    /// and then filled from a burnpack.
    skeleton: bool,
    /// Running hash of what was handed out (see [`Weights::fingerprint`]).
    fingerprint: Sha256,
}

impl<'a> Weights<'a> {
    pub fn new(checkpoint: Checkpoint, map: &'a dyn KeyMap) -> Self {
        Self {
            checkpoint,
            map,
            problems: Vec::new(),
            skeleton: false,
            fingerprint: Sha256::new(),
        }
    }

    /// Zeros for every tensor: the model's shape from its config, to be filled afterwards.
    pub fn skeleton(map: &'a dyn KeyMap) -> Self {
        Self {
            checkpoint: Checkpoint::from_tensors("(no checkpoint)", BTreeMap::new()),
            map,
            problems: Vec::new(),
            skeleton: true,
            fingerprint: Sha256::new(),
        }
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The tensor for `canonical`, with the shape the model needs. On a problem it is recorded
    /// and zeros are returned, so building continues and every problem is found in one pass.
    pub fn take(&mut self, canonical: &str, expected: &[usize]) -> TensorData {
        if self.skeleton {
            return TensorData::zeros::<f32, _>(expected.to_vec());
        }
        match self.resolve(canonical, expected) {
            Ok(data) => {
                self.add_to_fingerprint(canonical, &data);
                data
            }
            Err(problem) => {
                self.problems.push(problem);
                TensorData::zeros::<f32, _>(expected.to_vec())
            }
        }
    }

    /// Like [`Weights::take`] for a tensor a family may or may not have (a bias, say).
    pub fn take_optional(&mut self, canonical: &str, expected: &[usize]) -> Option<TensorData> {
        let present = match self.map.source(canonical) {
            Source::Key(key) | Source::Transposed(key) | Source::Reshaped(key) => {
                self.checkpoint.contains(&key)
            }
            Source::Concat(keys) => keys.iter().all(|key| self.checkpoint.contains(key)),
        };
        present.then(|| self.take(canonical, expected))
    }

    fn resolve(&mut self, canonical: &str, expected: &[usize]) -> Result<TensorData, Problem> {
        match self.map.source(canonical) {
            Source::Key(key) => self.fetch(&key, expected),
            Source::Reshaped(key) => {
                let numel = |shape: &[usize]| shape.iter().product::<usize>();
                let found = self.checkpoint.shape(&key).map(<[usize]>::to_vec);
                match found {
                    Some(found) if numel(&found) == numel(expected) => {
                        let data = self.fetch(&key, &found)?;
                        Ok(TensorData::new(
                            data.try_to_vec::<f32>().unwrap_or_default(),
                            expected.to_vec(),
                        ))
                    }
                    _ => self.fetch(&key, expected),
                }
            }
            Source::Transposed(key) => {
                let transposed_shape: Vec<usize> = expected.iter().rev().copied().collect();
                let data = self.fetch(&key, &transposed_shape)?;
                Ok(transpose_2d(data))
            }
            Source::Concat(keys) => {
                let parts = keys.len();
                let mut part_shape = expected.to_vec();
                if parts == 0 || part_shape.is_empty() || part_shape[0] % parts != 0 {
                    return Err(Problem::Missing {
                        key: canonical.to_string(),
                        expected: expected.to_vec(),
                    });
                }
                part_shape[0] /= parts;
                let mut values = Vec::new();
                let mut failure = None;
                for key in &keys {
                    match self.fetch(key, &part_shape) {
                        Ok(data) => values.extend(data.try_to_vec::<f32>().unwrap_or_default()),
                        Err(problem) if failure.is_none() => failure = Some(problem),
                        Err(problem) => self.problems.push(problem),
                    }
                }
                match failure {
                    Some(problem) => Err(problem),
                    None => Ok(TensorData::new(values, expected.to_vec())),
                }
            }
        }
    }

    fn fetch(&mut self, key: &str, expected: &[usize]) -> Result<TensorData, Problem> {
        let Some(data) = self.checkpoint.remove(key) else {
            return Err(Problem::Missing {
                key: key.to_string(),
                expected: expected.to_vec(),
            });
        };
        if data.shape().as_slice() != expected {
            return Err(Problem::Shape {
                key: key.to_string(),
                expected: expected.to_vec(),
                found: data.shape().to_vec(),
            });
        }
        match data.dtype() {
            DType::F32 => Ok(data),
            DType::F16 | DType::BF16 | DType::F64 => Ok(data.convert_dtype(DType::F32)),
            other => Err(Problem::NotFloat {
                key: key.to_string(),
                dtype: format!("{other:?}"),
            }),
        }
    }

    /// Identifies the model by its values, whatever file format or key layout carried them
    /// (the pickle natively and the SafeTensors in a browser give the same fingerprint): SHA-256
    /// over each tensor's canonical name, shape and up to 4096 evenly spaced values, in the order
    /// the loader took them. Sampling keeps it cheap on a 600 MB model; two different trainings
    /// differ in every tensor, so a sample tells them apart. Trained heads and the embedding
    /// cache record it to refuse features from another model.
    pub fn fingerprint(&self) -> String {
        format!("{:x}", self.fingerprint.clone().finalize())
    }

    fn add_to_fingerprint(&mut self, canonical: &str, data: &TensorData) {
        const SAMPLES: usize = 4096;
        self.fingerprint.update(canonical.as_bytes());
        for &dim in data.shape().iter() {
            self.fingerprint.update((dim as u64).to_le_bytes());
        }
        if let Ok(values) = data.as_slice::<f32>() {
            let stride = values.len().div_ceil(SAMPLES).max(1);
            for value in values.iter().step_by(stride) {
                self.fingerprint.update(value.to_le_bytes());
            }
        }
    }

    /// Ends loading: any problem found while building becomes one error naming them all.
    pub fn finish(self, model: &str) -> Result<(), WeightsError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(WeightsError::Mismatch {
                source_name: self.checkpoint.source_name,
                model: model.to_string(),
                problems: self.problems,
            })
        }
    }
}

fn transpose_2d(data: TensorData) -> TensorData {
    let [rows, cols] = [data.shape()[0], data.shape()[1]];
    transposed_matrix(data, rows, cols)
}

/// `data` read row-major as a `[rows, cols]` matrix (a conv kernel `[out, in, kh, kw]` is
/// `[out, in·kh·kw]`), returned as its transpose `[cols, rows]`, laid out contiguously.
///
/// Why on the host: PyTorch stores a linear layer's weight `[out, in]` and burn's `Linear` wants
/// `[in, out]`. Kept as a transposed *view*, every forward pays for it — burn's linear reshapes
/// the weight to the input's rank, and a reshape of a non-contiguous tensor copies it, so each
/// call copied the whole matrix (a fifth of the ViT-B/16 image tower's time on flex). One copy
/// at load instead.
pub(crate) fn transposed_matrix(data: TensorData, rows: usize, cols: usize) -> TensorData {
    let values = data
        .convert_dtype(DType::F32)
        .try_to_vec::<f32>()
        .unwrap_or_default();
    debug_assert_eq!(values.len(), rows * cols);
    let mut out = vec![0.0f32; rows * cols];
    for (row, chunk) in values.chunks_exact(cols.max(1)).enumerate().take(rows) {
        for (col, &value) in chunk.iter().enumerate() {
            out[col * rows + row] = value;
        }
    }
    TensorData::new(out, [cols, rows])
}

#[cfg(test)]
mod tests {
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
        let qkv = weights.take("qkv", &[3, 2]);
        assert_eq!(
            qkv.try_to_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        let proj = weights.take("proj", &[3, 2]);
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
        weights.take("qkv", &[3, 2]);
        weights.take("bias", &[4]);
        assert!(weights.take_optional("absent", &[1]).is_none());
        let error = weights.finish("tiny").unwrap_err().to_string();
        assert!(error.contains("`k` [1, 2] is missing"), "{error}");
        assert!(error.contains("`v` [1, 2] is missing"), "{error}");
        assert!(
            error.contains("`bias` has shape [3], the config needs [4]"),
            "{error}"
        );
    }

    #[test]
    fn truncated_and_foreign_safetensors_are_named() {
        let error = Checkpoint::from_safetensors_bytes("x.safetensors", Vec::new()).unwrap_err();
        assert!(error.to_string().contains("empty"));
        let mut bytes = 100u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{\"a\":");
        let error = Checkpoint::from_safetensors_bytes("x.safetensors", bytes).unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
        let error =
            Checkpoint::from_safetensors_bytes("x.safetensors", b"GIF89a not weights".to_vec())
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
            let mut stream =
                SafetensorsStream::new("model.safetensors", bytes.len() as u64).unwrap();
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
        let lying =
            r#"{"a":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}"#;
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
}
