//! The embedding cache: one small file per (image content, CLIP model, focus, mask), so a
//! second training run on the same images — another head kind, other hyper-parameters — skips
//! CLIP and SAM 2 entirely. Keys are SHA-256 over the image bytes' hash, the model fingerprint
//! and the focus/mask identity; a renamed or moved image still hits, an edited one misses.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"MFE1";

/// `$MEDFOCUS_EMBEDDINGS`, else `$XDG_CACHE_HOME/medfocus/embeddings` (`~/.cache/…`).
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEDFOCUS_EMBEDDINGS") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("medfocus")
        .join("embeddings")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The key of one embedding: every input that changes it.
pub fn key(image_sha256: &str, model_fingerprint: &str, mode: &str, mask_identity: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [image_sha256, model_fingerprint, mode, mask_identity] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

#[derive(Clone, Debug)]
pub struct EmbeddingCache {
    dir: PathBuf,
}

impl EmbeddingCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(&key[..2.min(key.len())])
            .join(format!("{key}.f32"))
    }

    /// The cached embedding, if present and intact (a damaged entry is a miss, then rewritten).
    pub fn get(&self, key: &str) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let (head, body) = bytes.split_at_checked(8)?;
        if &head[..4] != MAGIC {
            return None;
        }
        let dim = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
        if body.len() != dim * 4 {
            return None;
        }
        let values: Vec<f32> = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        values.iter().all(|v| v.is_finite()).then_some(values)
    }

    /// Stores atomically (scratch file + rename), so a killed run never leaves half an entry.
    pub fn put(&self, key: &str, values: &[f32]) -> std::io::Result<()> {
        let path = self.path(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut bytes = Vec::with_capacity(8 + values.len() * 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        let scratch = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&scratch, &bytes)?;
        std::fs::rename(&scratch, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_treats_damage_as_a_miss() {
        let dir = std::env::temp_dir().join(format!("medfocus-cache-test-{}", std::process::id()));
        let cache = EmbeddingCache::new(&dir);
        let k = key("abc", "model", "mode", "mask");
        assert_ne!(k, key("abc", "model", "mode", "other mask"));
        assert!(cache.get(&k).is_none());
        cache.put(&k, &[1.0, -2.5, 3.0]).unwrap();
        assert_eq!(cache.get(&k), Some(vec![1.0, -2.5, 3.0]));
        let path = cache.path(&k);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        assert!(cache.get(&k).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
