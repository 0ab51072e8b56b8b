//! SafeTensors read as they arrive, checked before anything is allocated.

use std::collections::BTreeMap;

use burn::tensor::{DType, TensorData};

use super::checkpoint::Checkpoint;
use super::error::{WeightsError, unreadable};
use crate::limits::MAX_SAFETENSORS_HEADER_BYTES;

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

    /// Not split: every claim of the header checked against the file's size in one pass, before
    /// anything is allocated.
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
            Some(_) => Ok(Checkpoint::from_tensors(self.source_name, self.tensors)),
        }
    }
}
