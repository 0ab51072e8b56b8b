//! The focus as front ends, heads and the evaluation name it: a method with its knobs and where
//! its masks come from (serialised into head files, so its field names are format-stable).

use serde::{Deserialize, Serialize};

use super::{Focus, FocusSettings, UnknownMethod};
use crate::sam2::automatic_mask_generator::GeneratorSettings;

/// How the mask steers CLIP (the focus): the method, its knobs and where the masks come from.
/// A head records the one its support images were embedded with, and prediction must do the
/// same. Format 1's JSON names this object `prompt` and its method `focus`; the
/// file keeps those names so that heads already written read unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FocusMode {
    /// A [`crate::focus::METHODS`] name.
    #[serde(rename = "focus")]
    pub method: String,
    pub settings: FocusSettings,
    /// Where training masks came from (`none`, `mask files`, `sam2 <fingerprint> …`).
    pub masks: String,
    /// SAM 2's automatic-mask settings, when SAM 2 made the training masks: prediction runs
    /// the generator the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic: Option<GeneratorSettings>,
}

impl FocusMode {
    pub fn none() -> Self {
        Self {
            method: "none".into(),
            settings: FocusSettings::default(),
            masks: "none".into(),
            automatic: None,
        }
    }

    /// A method with its settings; masks from nowhere yet.
    pub fn new(method: &str, settings: FocusSettings) -> Self {
        Self {
            method: method.to_string(),
            settings,
            ..Self::none()
        }
    }

    pub fn needs_mask(&self) -> bool {
        self.method != "none"
    }

    /// The focus itself.
    pub fn focus(&self) -> Result<Focus, UnknownMethod> {
        Focus::from_method(&self.method, &self.settings)
    }

    /// A stable text for cache keys: the method and only the knobs it uses (changing the blur's
    /// σ does not invalidate overlay embeddings), and where masks come from.
    pub fn key(&self) -> String {
        let settings = &self.settings;
        let knobs = match self.method.as_str() {
            "overlay" => format!("alpha={}", settings.alpha),
            "blur" => format!("sigma={}", settings.sigma),
            "crop" => format!("margin={}", settings.margin),
            "attention" => format!(
                "strength={} last_layers={:?} all_tokens={}",
                settings.strength, settings.last_layers, settings.all_tokens
            ),
            _ => String::new(),
        };
        format!("focus={} {knobs} masks={}", self.method, self.masks)
    }
}
