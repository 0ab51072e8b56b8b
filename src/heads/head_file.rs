//! The head file (`.mfh`): a burnpack whose tensors are the head's parameters and whose metadata
//! holds a JSON header saying how to use them — kind, classes, prompt templates, the CLIP model it
//! was trained on (fingerprint), how the mask steered CLIP, preprocessing, and how it was trained.
//! Written natively, read natively and in the browser; nothing in it is code.

use std::collections::BTreeMap;

use burn::store::burn_pack::Writer;
use serde::{Deserialize, Serialize};

use super::host_pack::{UnpackError, pack, unpack};
use crate::clip::preprocess::PreprocessConfig;

pub use super::host_pack::HostTensor;
use crate::focus::FocusMode;

pub const EXTENSION: &str = "mfh";
/// Bumped when a reader of the previous version would misread a new file.
pub const FORMAT_VERSION: u32 = 1;
const KIND: &str = "support-head";
const META_HEADER: &str = "medfocus.head";

pub const TEXT: &str = "text";
pub const LINEAR_WEIGHT: &str = "linear.weight";
pub const LINEAR_BIAS: &str = "linear.bias";
pub const CACHE_KEYS: &str = "cache.keys";
pub const CACHE_VALUES: &str = "cache.values";
pub const COOP_CONTEXT: &str = "coop.context";
/// `vision.blocks.{index}.{path}`: fine-tuned image-tower blocks (`finetune`).
pub const VISION_BLOCKS: &str = "vision.blocks.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    ZeroShot,
    LinearProbe,
    LpText,
    TipAdapter,
    TipAdapterF,
    Coop,
    Finetune,
}

impl HeadKind {
    pub const NAMES: &[&str] = &[
        "zero-shot",
        "linear-probe",
        "lp-text",
        "tip-adapter",
        "tip-adapter-f",
        "coop",
        "finetune",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }

    pub fn name(self) -> &'static str {
        match self {
            HeadKind::ZeroShot => "zero-shot",
            HeadKind::LinearProbe => "linear-probe",
            HeadKind::LpText => "lp-text",
            HeadKind::TipAdapter => "tip-adapter",
            HeadKind::TipAdapterF => "tip-adapter-f",
            HeadKind::Coop => "coop",
            HeadKind::Finetune => "finetune",
        }
    }
}

/// Which CLIP the head was trained on: predicting with another one would be meaningless.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipIdentity {
    /// The model's name as the user gave it (folder name), for messages.
    pub name: String,
    pub family: String,
    /// [`crate::weights::Weights::fingerprint`].
    pub fingerprint: String,
    pub embed_dim: usize,
}

/// Tip-Adapter's two scalars.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TipAdapterScalars {
    /// Weight of the cache logits against the text logits.
    pub alpha: f32,
    /// Sharpness of the affinity `exp(−β(1 − cos))`.
    pub beta: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadHeader {
    pub format: u32,
    pub kind: HeadKind,
    pub classes: Vec<String>,
    /// The prompt templates behind the text embeddings (`{}` = class name).
    pub templates: Vec<String>,
    pub clip: ClipIdentity,
    /// How the mask steered CLIP (`prompt` in format 1's JSON).
    #[serde(rename = "prompt")]
    pub focus: FocusMode,
    pub preprocess: PreprocessConfig,
    /// Scale of the text logits `s·f·Tᵀ` (CLIP's `logit_scale`); 0 when the head has no text term.
    pub text_scale: f32,
    pub cache: Option<TipAdapterScalars>,
    /// How it was trained: hyper-parameters, the chosen ones, held-out accuracy, epochs.
    pub training: serde_json::Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HeadFileError {
    #[error("not a MedFocus head file: {0}")]
    NotAHead(String),
    #[error(
        "this head file is format {found}; this MedFocus reads format {FORMAT_VERSION} (update MedFocus)"
    )]
    Version { found: u32 },
    #[error("the head file is damaged: {0}")]
    Damaged(String),
    #[error("cannot write the head: {0}")]
    Write(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct HeadFile {
    pub header: HeadHeader,
    pub tensors: BTreeMap<String, HostTensor>,
}

impl HeadFile {
    pub fn to_bytes(&self) -> Result<Vec<u8>, HeadFileError> {
        let bytes = self
            .writer()?
            .into_bytes()
            .map_err(|error| HeadFileError::Write(format!("{error}")))?;
        Ok(bytes.to_vec())
    }

    /// Writes atomically (a scratch file renamed into place): a crash never leaves half a head.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn write(&self, path: &std::path::Path) -> Result<(), HeadFileError> {
        self.writer()?
            .auto_extension(false)
            .write_to_file(path)
            .map_err(|error| HeadFileError::Write(format!("{}: {error}", path.display())))
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(path: &std::path::Path) -> Result<Self, HeadFileError> {
        let bytes = std::fs::read(path)
            .map_err(|error| HeadFileError::NotAHead(format!("{}: {error}", path.display())))?;
        Self::from_bytes(bytes)
    }

    fn writer(&self) -> Result<Writer, HeadFileError> {
        let header = serde_json::to_string(&self.header)
            .map_err(|error| HeadFileError::Write(error.to_string()))?;
        Ok(pack(KIND, [(META_HEADER, header.as_str())], &self.tensors))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, HeadFileError> {
        let (metadata, tensors) = unpack(
            bytes,
            KIND,
            "it is a burnpack without a support head (a model export?)",
        )
        .map_err(|error| match error {
            UnpackError::Foreign(detail) => HeadFileError::NotAHead(detail),
            UnpackError::Damaged(detail) => HeadFileError::Damaged(detail),
        })?;
        let header_text = metadata
            .get(META_HEADER)
            .ok_or_else(|| HeadFileError::Damaged("its header is missing".into()))?;
        let version: serde_json::Value = serde_json::from_str(header_text)
            .map_err(|error| HeadFileError::Damaged(format!("header: {error}")))?;
        let found = version.get("format").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found != FORMAT_VERSION {
            return Err(HeadFileError::Version { found });
        }
        let header: HeadHeader = serde_json::from_value(version)
            .map_err(|error| HeadFileError::Damaged(format!("header: {error}")))?;
        let file = Self { header, tensors };
        file.check()?;
        Ok(file)
    }

    /// The tensors the kind needs are there, with the shapes the classes and CLIP width imply.
    pub fn check(&self) -> Result<(), HeadFileError> {
        let classes = self.header.classes.len();
        let dim = self.header.clip.embed_dim;
        if classes < 2 {
            return Err(HeadFileError::Damaged(format!("{classes} classes")));
        }
        let expect = |name: &str, shape: Option<&[usize]>| -> Result<(), HeadFileError> {
            let tensor = self
                .tensors
                .get(name)
                .ok_or_else(|| HeadFileError::Damaged(format!("tensor {name} is missing")))?;
            match shape {
                Some(shape) if tensor.shape != shape => Err(HeadFileError::Damaged(format!(
                    "tensor {name} has shape {:?}, expected {shape:?}",
                    tensor.shape
                ))),
                _ => Ok(()),
            }
        };
        // Whatever the kind, a tensor the predictor reads must have the shape it reads it with.
        let rows = self
            .tensors
            .get(CACHE_KEYS)
            .and_then(|tensor| tensor.shape.first().copied())
            .unwrap_or(0);
        for (name, shape) in [
            (TEXT, vec![classes, dim]),
            (LINEAR_WEIGHT, vec![classes, dim]),
            (LINEAR_BIAS, vec![classes]),
            (CACHE_KEYS, vec![rows, dim]),
            (CACHE_VALUES, vec![rows, classes]),
        ] {
            if self.tensors.contains_key(name) {
                expect(name, Some(&shape))?;
            }
        }
        let uses_text = self.header.text_scale != 0.0;
        if uses_text {
            expect(TEXT, Some(&[classes, dim]))?;
        }
        match self.header.kind {
            HeadKind::ZeroShot | HeadKind::Coop | HeadKind::Finetune if !uses_text => {
                return Err(HeadFileError::Damaged("no text scale".into()));
            }
            HeadKind::Finetune
                if !self
                    .tensors
                    .keys()
                    .any(|name| name.starts_with(VISION_BLOCKS)) =>
            {
                return Err(HeadFileError::Damaged("no fine-tuned blocks".into()));
            }
            HeadKind::LinearProbe | HeadKind::LpText => {
                expect(LINEAR_WEIGHT, Some(&[classes, dim]))?;
                expect(LINEAR_BIAS, Some(&[classes]))?;
            }
            HeadKind::TipAdapter | HeadKind::TipAdapterF => {
                expect(CACHE_KEYS, Some(&[rows, dim]))?;
                expect(CACHE_VALUES, Some(&[rows, classes]))?;
                if rows == 0 || self.header.cache.is_none() {
                    return Err(HeadFileError::Damaged("an empty cache".into()));
                }
            }
            _ => {}
        }
        if self
            .tensors
            .values()
            .any(|tensor| tensor.values.iter().any(|v| !v.is_finite()))
        {
            return Err(HeadFileError::Damaged("non-finite parameters".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::focus::FocusSettings;
    use crate::sam2::automatic_mask_generator::GeneratorSettings;

    fn head(kind: HeadKind, tensors: &[(&str, Vec<usize>)]) -> HeadFile {
        HeadFile {
            header: HeadHeader {
                format: FORMAT_VERSION,
                kind,
                classes: vec!["a".into(), "b".into()],
                templates: vec!["{}".into()],
                clip: ClipIdentity {
                    name: "m".into(),
                    family: "open_clip".into(),
                    fingerprint: "f".into(),
                    embed_dim: 3,
                },
                focus: FocusMode::none(),
                preprocess: PreprocessConfig::openai(224),
                text_scale: 0.0,
                cache: None,
                training: serde_json::Value::Null,
            },
            tensors: tensors
                .iter()
                .map(|(name, shape)| {
                    let values = vec![0.5; shape.iter().product()];
                    (name.to_string(), HostTensor::new(shape.clone(), values))
                })
                .collect(),
        }
    }

    #[test]
    fn focus_keys_depend_only_on_what_the_method_uses() {
        let overlay = FocusMode {
            masks: "mask files".into(),
            ..FocusMode::new("overlay", FocusSettings::default())
        };
        let mut other_sigma = overlay.clone();
        other_sigma.settings.sigma += 1.0;
        assert_eq!(overlay.key(), other_sigma.key());
        let mut other_alpha = overlay.clone();
        other_alpha.settings.alpha += 0.1;
        assert_ne!(overlay.key(), other_alpha.key());
        let mut other_masks = overlay.clone();
        other_masks.masks = "sam2 …".into();
        assert_ne!(overlay.key(), other_masks.key());
        let mut none = FocusMode::none();
        let plain = none.key();
        none.settings.alpha = 0.9;
        assert_eq!(none.key(), plain);
    }

    #[test]
    fn format_1_field_names_are_kept_and_sam2_settings_are_optional() {
        let header = head(HeadKind::ZeroShot, &[]).header;
        let json = serde_json::to_value(&header).unwrap();
        // Heads written before the rename read and write the same bytes.
        assert_eq!(json["prompt"]["focus"], "none");
        assert!(json.get("focus").is_none());
        assert!(json["prompt"].get("automatic").is_none());
        let mut sam2 = header.clone();
        sam2.focus.automatic = Some(GeneratorSettings {
            points_per_side: 8,
            ..GeneratorSettings::default()
        });
        let text = serde_json::to_string(&sam2).unwrap();
        let back: HeadHeader = serde_json::from_str(&text).unwrap();
        assert_eq!(back.focus.automatic.unwrap().points_per_side, 8);
        let old: HeadHeader = serde_json::from_value(json).unwrap();
        assert_eq!(old, header);
    }

    #[test]
    fn round_trips_and_refuses_misshapen_or_foreign_files() {
        let good = head(
            HeadKind::LinearProbe,
            &[(LINEAR_WEIGHT, vec![2, 3]), (LINEAR_BIAS, vec![2])],
        );
        let bytes = good.to_bytes().unwrap();
        assert_eq!(HeadFile::from_bytes(bytes.clone()).unwrap(), good);
        // A tensor of another kind, misshapen, is refused too: the predictor would read it.
        let stray = head(
            HeadKind::LinearProbe,
            &[
                (LINEAR_WEIGHT, vec![2, 3]),
                (LINEAR_BIAS, vec![2]),
                (CACHE_VALUES, vec![2, 2, 2]),
            ],
        );
        assert!(matches!(stray.check(), Err(HeadFileError::Damaged(_))));
        let missing = head(HeadKind::LinearProbe, &[(LINEAR_WEIGHT, vec![2, 3])]);
        assert!(matches!(missing.check(), Err(HeadFileError::Damaged(_))));
        assert!(matches!(
            HeadFile::from_bytes(bytes[..bytes.len() - 7].to_vec()),
            Err(HeadFileError::NotAHead(_) | HeadFileError::Damaged(_))
        ));
        assert!(matches!(
            HeadFile::from_bytes(b"nonsense".to_vec()),
            Err(HeadFileError::NotAHead(_))
        ));
        let mut newer = good.clone();
        newer.header.format = FORMAT_VERSION + 1;
        let bytes = newer.writer().unwrap().into_bytes().unwrap().to_vec();
        assert_eq!(
            HeadFile::from_bytes(bytes),
            Err(HeadFileError::Version {
                found: FORMAT_VERSION + 1
            })
        );
    }
}
