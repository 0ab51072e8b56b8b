//! What `--device auto` needs before it picks a GPU natively: a proof, made on this machine by
//! `medfocus devices --prove`, that the adapter computes CLIP's image tower like the CPU backend
//! (within CLIP's parity bound) and faster.
//!
//! Why not trust any hardware GPU: on the GPU the models run other kernels (WGSL or SPIR-V,
//! compiled by the driver), and a driver can compute wrongly (cubecl #1641: a shader that fails
//! validation may skip its dispatch and leave stale data) or slowly (an integrated GPU sharing a
//! laptop's memory can lose to a CPU with AVX-512). Only a run on the machine shows which.
//!
//! A proof names the adapter (name, graphics API, driver) and the build (version, GPU compiler
//! and features): a new driver or another build is a new device until proven again. The proofs
//! live in one small JSON file (`$MEDFOCUS_DEVICE_PROOFS`, else
//! `$XDG_CACHE_HOME/medfocus/device-proofs.json`, else `~/.cache/medfocus/device-proofs.json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::types::AdapterSummary;

/// The proof file is small (a few hundred bytes per adapter); anything larger is not ours.
pub const MAX_PROOF_FILE_BYTES: u64 = 1 << 20;

/// What this binary compiles the GPU's kernels with, and which of burn's GPU features it has.
pub fn build_label() -> String {
    let mut parts = vec![if cfg!(feature = "gpu-spirv") {
        "spirv"
    } else {
        "wgsl"
    }];
    if cfg!(feature = "gpu-fusion") {
        parts.push("fusion");
    }
    if cfg!(feature = "gpu-autotune") {
        parts.push("autotune");
    }
    format!(
        "medfocus {} ({})",
        env!("CARGO_PKG_VERSION"),
        parts.join("+")
    )
}

/// One adapter measured against the CPU backend on one piece of work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceProof {
    pub adapter: String,
    pub backend: String,
    pub driver: String,
    /// [`build_label`] of the binary that measured it.
    pub build: String,
    /// What was computed on both devices, e.g. "CLIP image tower, 1 image (ViT-B-16)".
    pub work: String,
    /// Largest |Δ| between the two devices' unit-length embeddings.
    pub max_abs_diff: f32,
    pub bound: f32,
    /// Median of the timed runs, after the first (kernel compilation) and a warm-up.
    pub cpu_ms: f64,
    pub gpu_ms: f64,
    /// The GPU's first run, kernel compilation included.
    pub gpu_first_ms: f64,
    /// Seconds since 1970 (UTC) when it was measured.
    pub measured_at: u64,
}

/// What a proof says about using its adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    CorrectAndFaster,
    Wrong,
    Slower,
}

impl DeviceProof {
    /// Whether this proof is about `adapter` as this binary would drive it.
    pub fn is_for(&self, adapter: &AdapterSummary) -> bool {
        self.adapter == adapter.name
            && self.backend == adapter.backend
            && self.driver == adapter.driver
            && self.build == build_label()
    }

    pub fn verdict(&self) -> Verdict {
        // A NaN difference is not "within the bound".
        if !(self.max_abs_diff <= self.bound) {
            Verdict::Wrong
        } else if self.gpu_ms < self.cpu_ms {
            Verdict::CorrectAndFaster
        } else {
            Verdict::Slower
        }
    }

    /// The measurement in words, for the reason `auto` gives.
    pub fn describe(&self) -> String {
        format!(
            "on {} `medfocus devices --prove` measured {}: max |Δ| {:.1e} to the CPU backend \
             (bound {:.0e}), {:.1} ms against {:.1} ms on the CPU backend",
            utc_date(self.measured_at),
            self.work,
            self.max_abs_diff,
            self.bound,
            self.gpu_ms,
            self.cpu_ms
        )
    }
}

/// Every proof on file, one per adapter and build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProofBook {
    pub proofs: Vec<DeviceProof>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("cannot read the device proofs {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the device proofs {path} are {bytes} bytes, more than the {limit} such a file can be")]
    TooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    #[error("cannot write the device proofs {path}: {message}")]
    Write { path: PathBuf, message: String },
}

impl ProofBook {
    pub fn for_adapter(&self, adapter: &AdapterSummary) -> Option<&DeviceProof> {
        self.proofs.iter().find(|proof| proof.is_for(adapter))
    }

    /// Adds `proof`, replacing an earlier one for the same adapter, driver and build.
    pub fn record(&mut self, proof: DeviceProof) {
        self.proofs.retain(|earlier| {
            (
                &earlier.adapter,
                &earlier.backend,
                &earlier.driver,
                &earlier.build,
            ) != (&proof.adapter, &proof.backend, &proof.driver, &proof.build)
        });
        self.proofs.push(proof);
    }

    /// The book at `path`; an absent file is an empty book.
    pub fn load(path: &Path) -> Result<Self, ProofError> {
        let read_error = |message: String| ProofError::Read {
            path: path.to_path_buf(),
            message,
        };
        let bytes = match std::fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(error) => return Err(read_error(error.to_string())),
        };
        if bytes > MAX_PROOF_FILE_BYTES {
            return Err(ProofError::TooLarge {
                path: path.to_path_buf(),
                bytes,
                limit: MAX_PROOF_FILE_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|error| read_error(error.to_string()))?;
        serde_json::from_str(&text).map_err(|error| read_error(error.to_string()))
    }

    /// Writes the book to `path` whole (a temporary file renamed over it: a reader never sees
    /// half a file).
    pub fn save(&self, path: &Path) -> Result<(), ProofError> {
        let write_error = |message: String| ProofError::Write {
            path: path.to_path_buf(),
            message,
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| write_error(error.to_string()))?;
        }
        let text =
            serde_json::to_string_pretty(self).map_err(|error| write_error(error.to_string()))?;
        let temporary = path.with_extension("json.partial");
        std::fs::write(&temporary, text).map_err(|error| write_error(error.to_string()))?;
        std::fs::rename(&temporary, path).map_err(|error| write_error(error.to_string()))
    }
}

/// `$MEDFOCUS_DEVICE_PROOFS`, else `$XDG_CACHE_HOME/medfocus/device-proofs.json`, else
/// `~/.cache/medfocus/device-proofs.json`.
pub fn proofs_path() -> PathBuf {
    crate::cache_paths::cache_path("MEDFOCUS_DEVICE_PROOFS", "device-proofs.json")
}

/// `YYYY-MM-DD` (UTC) of a time in seconds since 1970 (Howard Hinnant's civil-from-days).
pub fn utc_date(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::types::AdapterType;

    fn gpu(name: &str, driver: &str) -> AdapterSummary {
        let mut adapter =
            crate::device::types::tests::adapter(name, "Vulkan", AdapterType::DiscreteGpu);
        adapter.driver = driver.into();
        adapter
    }

    /// A proof of `adapter` for this build, measured 2026-12-06 (CPU backend 200 ms).
    pub(crate) fn proof(adapter: &AdapterSummary, diff: f32, gpu_ms: f64) -> DeviceProof {
        DeviceProof {
            adapter: adapter.name.clone(),
            backend: adapter.backend.clone(),
            driver: adapter.driver.clone(),
            build: build_label(),
            work: "CLIP image tower, 1 image (ViT-B-16)".into(),
            max_abs_diff: diff,
            bound: 1e-4,
            cpu_ms: 200.0,
            gpu_ms,
            gpu_first_ms: 900.0,
            measured_at: 1_796_515_200,
        }
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_796_515_200), "2026-12-06");
    }

    #[test]
    fn a_proof_is_for_one_adapter_driver_and_build() {
        let rtx = gpu("RTX 4070", "NVIDIA 550.54");
        let on_file = proof(&rtx, 1e-7, 5.0);
        assert!(on_file.is_for(&rtx));
        assert!(!on_file.is_for(&gpu("RTX 4070", "NVIDIA 560.01")));
        assert!(!on_file.is_for(&gpu("RTX 4080", "NVIDIA 550.54")));
        let mut other_build = on_file.clone();
        other_build.build = "medfocus 0.0.9 (wgsl)".into();
        assert!(!other_build.is_for(&rtx));
    }

    #[test]
    fn verdicts_need_both_correctness_and_speed() {
        let rtx = gpu("RTX 4070", "");
        assert_eq!(proof(&rtx, 1e-7, 5.0).verdict(), Verdict::CorrectAndFaster);
        assert_eq!(proof(&rtx, 1e-7, 250.0).verdict(), Verdict::Slower);
        assert_eq!(proof(&rtx, 3e-2, 5.0).verdict(), Verdict::Wrong);
        assert_eq!(proof(&rtx, f32::NAN, 5.0).verdict(), Verdict::Wrong);
    }

    #[test]
    fn the_book_keeps_one_proof_per_adapter_and_round_trips() {
        let folder = std::env::temp_dir().join(format!("medfocus-proofs-{}", std::process::id()));
        let path = folder.join("device-proofs.json");
        assert_eq!(ProofBook::load(&path).unwrap(), ProofBook::default());
        let rtx = gpu("RTX 4070", "");
        let mut book = ProofBook::default();
        book.record(proof(&rtx, 1e-7, 250.0));
        book.record(proof(&rtx, 1e-7, 5.0));
        book.record(proof(&gpu("Arc A770", ""), 1e-7, 9.0));
        assert_eq!(book.proofs.len(), 2);
        assert_eq!(book.for_adapter(&rtx).unwrap().gpu_ms, 5.0);
        book.save(&path).unwrap();
        assert_eq!(ProofBook::load(&path).unwrap(), book);

        std::fs::write(&path, "not json").unwrap();
        let error = ProofBook::load(&path).unwrap_err();
        assert!(error.to_string().contains("device-proofs.json"), "{error}");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_PROOF_FILE_BYTES + 1).unwrap();
        assert!(matches!(
            ProofBook::load(&path),
            Err(ProofError::TooLarge { .. })
        ));
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
