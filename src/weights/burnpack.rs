//! Opening a burnpack, burn's own file format (our SAM 2 exports, head files, training
//! checkpoints): one place that tells a file cut short or damaged from a file of another kind,
//! which every reader of them reports alike.

use burn::store::burn_pack::{Bytes, Reader};

/// Burnpack files start with "BURN" (a big-endian magic number).
pub fn is_burnpack(head: &[u8]) -> bool {
    head.starts_with(b"BURN") || head.starts_with(b"NRUB")
}

/// Why a file could not be opened as a burnpack.
#[derive(Debug, PartialEq)]
pub enum BurnpackRefusal {
    /// Not a burnpack at all (or empty), in words.
    Foreign(String),
    /// A burnpack's start, but it cannot be read: cut short or damaged; burn's words.
    Damaged(String),
}

/// The reader of `bytes`: one reader for the metadata and the tensors, so the bytes are neither
/// copied nor parsed twice (a SAM 2 burnpack is tens of MB in a browser tab).
pub fn open_burnpack(bytes: Vec<u8>) -> Result<Reader, BurnpackRefusal> {
    if bytes.is_empty() {
        return Err(BurnpackRefusal::Foreign(
            "the file is empty (0 bytes)".into(),
        ));
    }
    // A file that starts as a burnpack and cannot be read is one cut short or damaged, not
    // another kind of file.
    let damaged = is_burnpack(&bytes);
    Reader::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|error| match damaged {
        true => BurnpackRefusal::Damaged(error.to_string()),
        false => BurnpackRefusal::Foreign(error.to_string()),
    })
}
