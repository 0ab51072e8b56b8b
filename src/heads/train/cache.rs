//! The embedding cache: one small file per (image content, CLIP model, focus, mask), so a
//! second training run on the same images — another head kind, other hyper-parameters — skips
//! CLIP and SAM 2 entirely. Keys are SHA-256 over the image bytes' hash, the model fingerprint
//! and the focus/mask identity; a renamed or moved image still hits, an edited one misses.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::focus::mask::Mask;
use crate::limits::MAX_REGION_PIXELS;
use crate::pipeline::{Region, RegionOrigin};

const MAGIC: &[u8; 4] = b"MFE1";

/// `$MEDFOCUS_EMBEDDINGS`, else `$XDG_CACHE_HOME/medfocus/embeddings` (`~/.cache/…`).
pub fn default_dir() -> PathBuf {
    crate::cache_paths::cache_path("MEDFOCUS_EMBEDDINGS", "embeddings")
}

/// `<dir>/<the key's first two characters>/<key>.<extension>`: entries spread over 256 folders.
fn entry_path(dir: &Path, key: &str, extension: &str) -> PathBuf {
    dir.join(&key[..2.min(key.len())])
        .join(format!("{key}.{extension}"))
}

pub use crate::pipeline::files::write_atomic;

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
        entry_path(&self.dir, key, "f32")
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
        let mut bytes = Vec::with_capacity(8 + values.len() * 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(values.len() as u32).to_le_bytes());
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        write_atomic(&self.path(key), &bytes)
    }
}

impl EmbeddingCache {
    /// SAM 2's regions, beside the embeddings (`<dir>/regions`): one automatic-mask pass per
    /// image serves every focus method, head and seed.
    pub fn regions(&self) -> RegionCache {
        RegionCache {
            dir: self.dir.join("regions"),
        }
    }
}

const REGION_MAGIC: &[u8; 4] = b"MFR1";

/// SAM 2's region of an image, keyed by the image's content, the SAM 2 weights and the
/// generator's settings. Stored bit-packed: SAM 2's masks are binary; a soft mask is not cached.
#[derive(Clone, Debug)]
pub struct RegionCache {
    dir: PathBuf,
}

impl RegionCache {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        entry_path(&self.dir, key, "region")
    }

    /// The cached region, if present and intact.
    pub fn get(&self, key: &str) -> Option<Region> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let (head, rest) = bytes.split_at_checked(16)?;
        if &head[..4] != REGION_MAGIC {
            return None;
        }
        let word = |at: usize| {
            u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]) as usize
        };
        let (width, height, origin_code) = (word(4), word(8), head[12]);
        let warning_len = u16::from_le_bytes([head[13], head[14]]) as usize;
        let pixels = width.checked_mul(height)?;
        if pixels == 0 || pixels > MAX_REGION_PIXELS || head[15] != 0 {
            return None;
        }
        let (warning, bits) = rest.split_at_checked(warning_len)?;
        if bits.len() != pixels.div_ceil(8) {
            return None;
        }
        let warning = match warning_len {
            0 => None,
            _ => Some(String::from_utf8(warning.to_vec()).ok()?),
        };
        let origin = match origin_code {
            0 => RegionOrigin::Sam2Automatic,
            1 => RegionOrigin::WholeImage,
            _ => return None,
        };
        let weights = (0..pixels)
            .map(|i| f32::from((bits[i / 8] >> (i % 8)) & 1))
            .collect();
        let mask = Mask {
            width,
            height,
            weights,
        };
        Some(Region {
            coverage: mask.coverage(),
            mask,
            origin,
            warning,
        })
    }

    /// Stores atomically; a region that is not a binary SAM 2 one is not stored (`Ok(false)`).
    pub fn put(&self, key: &str, region: &Region) -> std::io::Result<bool> {
        let origin = match region.origin {
            RegionOrigin::Sam2Automatic => 0u8,
            RegionOrigin::WholeImage => 1,
            _ => return Ok(false),
        };
        let mask = &region.mask;
        let binary = mask.weights.iter().all(|&w| w == 0.0 || w == 1.0);
        let warning = region.warning.as_deref().unwrap_or("").as_bytes();
        if !binary
            || mask.weights.len() != mask.width * mask.height
            || mask.weights.len() > MAX_REGION_PIXELS
            || warning.len() > u16::MAX as usize
        {
            return Ok(false);
        }
        let mut bytes = Vec::with_capacity(16 + warning.len() + mask.weights.len() / 8 + 1);
        bytes.extend_from_slice(REGION_MAGIC);
        bytes.extend_from_slice(&(mask.width as u32).to_le_bytes());
        bytes.extend_from_slice(&(mask.height as u32).to_le_bytes());
        bytes.push(origin);
        bytes.extend_from_slice(&(warning.len() as u16).to_le_bytes());
        bytes.push(0);
        bytes.extend_from_slice(warning);
        let mut bits = vec![0u8; mask.weights.len().div_ceil(8)];
        for (i, &w) in mask.weights.iter().enumerate() {
            if w == 1.0 {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        bytes.extend_from_slice(&bits);
        write_atomic(&self.path(key), &bytes)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_round_trip_bit_packed_and_soft_masks_are_not_stored() {
        let dir =
            std::env::temp_dir().join(format!("medfocus-region-cache-{}", std::process::id()));
        let cache = EmbeddingCache::new(&dir).regions();
        let weights: Vec<f32> = (0..37).map(|i| f32::from(i % 3 == 0)).collect();
        let mask = Mask {
            width: 37,
            height: 1,
            weights,
        };
        let region = Region {
            coverage: mask.coverage(),
            mask,
            origin: RegionOrigin::WholeImage,
            warning: Some("no region qualifies".into()),
        };
        let k = key("image", "sam2", "region", "");
        assert!(cache.get(&k).is_none());
        assert!(cache.put(&k, &region).unwrap());
        let back = cache.get(&k).unwrap();
        assert_eq!(back.mask.weights, region.mask.weights);
        assert_eq!(
            (back.origin, back.warning.clone(), back.coverage),
            (region.origin, region.warning.clone(), region.coverage)
        );
        // Damaged: a miss.
        let path = cache.path(&k);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(cache.get(&k).is_none());
        let mut soft = region.clone();
        soft.mask.weights[0] = 0.5;
        assert!(!cache.put(&k, &soft).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
