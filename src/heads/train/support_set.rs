//! Support sets in memory — images handed over one by one with their labels, as the page's class
//! bins hand them — and the steps every training journey ends with: the classes' text prior,
//! training, assembling the checked head file. `medfocus train` ([`super::from_dataset`]: a
//! data set on disk, the embedding cache, checkpoints) ends the same way, through the same
//! functions, so a head trained in the browser is the file native `predict` reads.
//!
//! Each image goes through the pipeline's [`Encoder`] (region, focus, image tower) exactly as
//! when classifying; only its embedding is kept (a few KiB), never the image.

use burn::tensor::Device;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::recipes::train_head;
use super::run::{Observer, TrainError, TrainRun, host_values_async};
use super::settings::{HeadSettings, TextPrior, TrainedHead};
use crate::clip::load::LoadedClip;
use crate::clip::preprocess::Pixels8;
use crate::clip::zero_shot::{MEDICAL_TEMPLATES, ZeroShotClassifier, ZeroShotError};
use crate::focus::FocusMode;
use crate::heads::features::{FeatureError, FeatureSet, class_counts};
use crate::heads::head_file::{ClipIdentity, FORMAT_VERSION, HeadFile, HeadHeader, HeadKind};
use crate::limits::{MAX_CLASS_NAME_CHARS, MAX_HEAD_CLASSES, MAX_SUPPORT_IMAGES};
use crate::pipeline::{Encoder, MaskSource, PipelineError, Region, Segmenter};

/// The prompt the paper fine-tunes against.
pub const FINETUNE_TEMPLATE: &str = "This is a photo of {}.";

#[derive(Debug, thiserror::Error)]
pub enum SupportSetError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Text(#[from] ZeroShotError),
    #[error(transparent)]
    Features(#[from] FeatureError),
}

/// Labelled image embeddings under one focus, collected image by image.
#[derive(Clone)]
pub struct SupportSet {
    /// The class names in label order: the head's classes and the words of its text prompts.
    pub classes: Vec<String>,
    /// How every image is focused, and where its masks come from (the head records it).
    pub focus: FocusMode,
    /// The CLIP model the embeddings came from (its fingerprint): they mean nothing to another.
    model: Option<String>,
    width: usize,
    values: Vec<f32>,
    labels: Vec<usize>,
    /// Per image, the SHA-256 of its encoded bytes: two drops of the same file are one image.
    images: Vec<String>,
    /// Something the user should know (SAM 2 found no region, …) and the images it concerns
    /// (`N (class)`), in the order first said: see [`SupportSet::warnings`].
    notices: Vec<(String, Vec<String>)>,
}

/// What adding an image did.
pub struct Added {
    /// The region the image was focused on (absent for the `none` focus).
    pub region: Option<Region>,
    /// The same bytes were in the set already (under the same label: nothing changed).
    pub duplicate: bool,
}

impl SupportSet {
    /// Notes `warning` for `image`; a warning already said gains the image instead of a line.
    fn notice(&mut self, warning: &str, image: String) {
        match self.notices.iter_mut().find(|(said, _)| said == warning) {
            Some((_, images)) => images.push(image),
            None => self.notices.push((warning.to_string(), vec![image])),
        }
    }

    /// What the user should know about the images added, one line per distinct warning with the
    /// images it concerns: the same "no region, the whole image was used" for twelve images is
    /// one line naming them, not twelve.
    pub fn warnings(&self) -> Vec<String> {
        self.notices
            .iter()
            .map(|(warning, images)| match images.as_slice() {
                [one] => format!("image {one}: {warning}"),
                many => format!("images {}: {warning}", many.join(", ")),
            })
            .collect()
    }

    /// An empty set of `classes` (distinct, non-empty names), embedded under `focus`.
    pub fn new(classes: Vec<String>, focus: FocusMode) -> Result<Self, SupportSetError> {
        let invalid = |text: String| Err(SupportSetError::Invalid(text));
        if classes.len() < 2 {
            return invalid(format!(
                "{} class(es) given: a classifier needs at least two",
                classes.len()
            ));
        }
        if classes.len() > MAX_HEAD_CLASSES {
            return invalid(format!(
                "{} classes given: at most {MAX_HEAD_CLASSES}",
                classes.len()
            ));
        }
        for (index, name) in classes.iter().enumerate() {
            if name.trim().is_empty() {
                return invalid(format!("class {} has no name", index + 1));
            }
            if name.chars().count() > MAX_CLASS_NAME_CHARS {
                return invalid(format!(
                    "class {}'s name is longer than {MAX_CLASS_NAME_CHARS} characters",
                    index + 1
                ));
            }
            if classes[..index].contains(name) {
                return invalid(format!("class `{name}` is given twice"));
            }
        }
        focus
            .focus()
            .map_err(|error| SupportSetError::Invalid(error.to_string()))?;
        Ok(Self {
            classes,
            focus,
            model: None,
            width: 0,
            values: Vec::new(),
            labels: Vec::new(),
            images: Vec::new(),
            notices: Vec::new(),
        })
    }

    /// The encoder every image of this set goes through (SAM 2 for a focus that needs a mask
    /// from the automatic generator, run with the settings `focus.automatic` records).
    pub fn encoder<'a>(
        &self,
        clip: &'a LoadedClip,
        segmenter: Option<&'a Segmenter>,
    ) -> Result<Encoder<'a>, SupportSetError> {
        let mut encoder = Encoder::new(clip, &self.focus)
            .map_err(|error| SupportSetError::Invalid(error.to_string()))?;
        if let Some(segmenter) = segmenter {
            encoder = encoder.with_segmenter(segmenter);
        }
        Ok(encoder)
    }

    /// One image's embedding through `encoder` ([`Self::encoder`]), focused on the region
    /// `source` gives, and that region. Apart from [`Self::insert`] so that a caller holding the
    /// set behind a `RefCell` borrows it only for the insert, never across the await.
    pub async fn embed(
        encoder: &Encoder<'_>,
        pixels: &Pixels8,
        source: &MaskSource,
    ) -> Result<(Vec<f32>, Option<Region>), SupportSetError> {
        encoder.require_region(!source.is_none(), "give a region (mask, box or SAM 2)")?;
        let region = encoder.region(pixels, source).await?;
        let values = host_values_async(encoder.embed(pixels, region.as_ref())?).await?;
        Ok((values, region))
    }

    /// Adds an embedding (from [`Self::embed`], with `clip`) of the image whose encoded bytes
    /// are `bytes`, labelled `label`. The same bytes under another label are refused: one image
    /// cannot be two classes.
    pub fn insert(
        &mut self,
        clip: &LoadedClip,
        bytes: &[u8],
        label: usize,
        values: Vec<f32>,
        region: Option<Region>,
    ) -> Result<Added, SupportSetError> {
        let invalid = |text: String| Err(SupportSetError::Invalid(text));
        let Some(class) = self.classes.get(label) else {
            return invalid(format!(
                "label {label}: this set has {} classes",
                self.classes.len()
            ));
        };
        let fingerprint = &clip.model.fingerprint;
        if self
            .model
            .as_ref()
            .is_some_and(|model| model != fingerprint)
        {
            return invalid(
                "this support set was embedded with another CLIP model: start a new one".into(),
            );
        }
        if values.is_empty() || (self.width != 0 && values.len() != self.width) {
            return invalid(format!(
                "an embedding of {} values in a set of width {}",
                values.len(),
                self.width
            ));
        }
        let sha256 = format!("{:x}", Sha256::digest(bytes));
        if let Some(index) = self.images.iter().position(|image| *image == sha256) {
            if self.labels[index] == label {
                return Ok(Added {
                    region,
                    duplicate: true,
                });
            }
            return invalid(format!(
                "this image is already in class `{}`; one image cannot be two classes",
                self.classes[self.labels[index]]
            ));
        }
        if self.labels.len() >= MAX_SUPPORT_IMAGES {
            return invalid(format!(
                "a support set holds at most {MAX_SUPPORT_IMAGES} images"
            ));
        }
        if let Some(warning) = region.as_ref().and_then(|region| region.warning.as_ref()) {
            self.notice(warning, format!("{} ({class})", self.labels.len() + 1));
        }
        self.model = Some(fingerprint.clone());
        self.width = values.len();
        self.values.extend_from_slice(&values);
        self.labels.push(label);
        self.images.push(sha256);
        Ok(Added {
            region,
            duplicate: false,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Images per class, in label order.
    pub fn counts(&self) -> Vec<usize> {
        class_counts(&self.labels, self.classes.len())
    }

    /// The rows as unit embeddings.
    pub fn features(&self) -> Result<FeatureSet, FeatureError> {
        FeatureSet::new(
            self.classes.clone(),
            self.width,
            self.values.clone(),
            self.labels.clone(),
        )
    }

    /// Trains a head of `settings.kind` on this set (on burn's CPU backend: a head has a few
    /// thousand parameters and L-BFGS reads the loss back every iteration, which a GPU only
    /// slows down — and WebGPU cannot read back synchronously at all). `clip_name` names the
    /// model in the head file; empty `templates`: the defaults.
    pub async fn train(
        &self,
        clip: &LoadedClip,
        clip_name: &str,
        templates: &[String],
        settings: &HeadSettings,
        observer: &mut dyn Observer,
    ) -> Result<HeadFile, SupportSetError> {
        settings.check().map_err(SupportSetError::Invalid)?;
        if matches!(settings.kind, HeadKind::Coop | HeadKind::Finetune) {
            return Err(SupportSetError::Invalid(format!(
                "a {} head trains through CLIP's towers, not on embeddings: train it with `medfocus train`",
                settings.kind.name()
            )));
        }
        if self
            .model
            .as_ref()
            .is_some_and(|model| *model != clip.model.fingerprint)
        {
            return Err(SupportSetError::Invalid(
                "this support set was embedded with another CLIP model".into(),
            ));
        }
        let counts = self.counts();
        if let Some(empty) = counts.iter().position(|&count| count == 0) {
            return Err(SupportSetError::Invalid(format!(
                "class `{}` has no images: every class needs at least one",
                self.classes[empty]
            )));
        }
        let templates = default_templates(templates, settings.kind);
        let (text, embed_dim) = text_prior(clip, &self.classes, &templates).await?;
        // No checkpoint: a support set is trained in seconds, and lives in memory anyway.
        let (mut run, _) = TrainRun::open(None, "", false)?;
        let device = Device::flex().autodiff();
        let mut trained = train_head(
            &self.features()?,
            &text,
            settings,
            &mut run,
            observer,
            &device,
        )?;
        trained.training["images"] = json!(self.len());
        trained.training["counts"] = json!(counts);
        assemble_head(
            trained,
            HeadIdentity {
                kind: settings.kind,
                classes: self.classes.clone(),
                templates,
                clip,
                clip_name: clip_name.to_string(),
                embed_dim,
                focus: self.focus.clone(),
            },
        )
    }
}

/// The classes' prompt embeddings (templates averaged) and CLIP's logit scale, on the host,
/// and the embedding width.
pub async fn text_prior(
    clip: &LoadedClip,
    classes: &[String],
    templates: &[String],
) -> Result<(TextPrior, usize), SupportSetError> {
    let zero_shot = ZeroShotClassifier::new(clip, classes, templates)?;
    let embed_dim = zero_shot.class_embeddings.dims()[1];
    let embeddings = host_values_async(zero_shot.class_embeddings.clone()).await?;
    Ok((
        TextPrior {
            embeddings,
            scale: zero_shot.logit_scale,
        },
        embed_dim,
    ))
}

/// The given templates, else the paper's for a fine-tune, else the medical defaults.
pub fn default_templates(given: &[String], kind: HeadKind) -> Vec<String> {
    match (given.is_empty(), kind) {
        (false, _) => given.to_vec(),
        (true, HeadKind::Finetune) => vec![FINETUNE_TEMPLATE.to_string()],
        (true, _) => MEDICAL_TEMPLATES.iter().map(|t| t.to_string()).collect(),
    }
}

/// What a head file says about itself beside its tensors.
pub struct HeadIdentity<'a> {
    pub kind: HeadKind,
    /// The class names (folder names), in label order.
    pub classes: Vec<String>,
    pub templates: Vec<String>,
    pub clip: &'a LoadedClip,
    pub clip_name: String,
    pub embed_dim: usize,
    pub focus: FocusMode,
}

/// A trained head as a checked head file (what `train` writes, `eval` scores and the page
/// offers for download).
pub fn assemble_head(
    trained: TrainedHead,
    identity: HeadIdentity,
) -> Result<HeadFile, SupportSetError> {
    let head = HeadFile {
        header: HeadHeader {
            format: FORMAT_VERSION,
            kind: identity.kind,
            classes: identity.classes,
            templates: identity.templates,
            clip: ClipIdentity {
                name: identity.clip_name,
                family: identity.clip.family.to_string(),
                fingerprint: identity.clip.model.fingerprint.clone(),
                embed_dim: identity.embed_dim,
            },
            focus: identity.focus,
            preprocess: identity.clip.preprocess.clone(),
            text_scale: trained.text_scale,
            cache: trained.cache,
            training: trained.training,
        },
        tensors: trained.tensors,
    };
    head.check().map_err(|error| {
        SupportSetError::Invalid(format!("the trained head failed its own check: {error}"))
    })?;
    Ok(head)
}

/// The held-out estimate a training log holds, for a person: the accuracy and what it was
/// measured on.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOut {
    pub accuracy: f32,
    /// How many images it was measured on (`None` in logs older than the count).
    pub images: Option<usize>,
    /// How the images it was measured on were kept out of training.
    pub measured_on: &'static str,
}

/// Reads the held-out accuracy out of a head's training log: the chosen hyper-parameter's
/// accuracy on the held-out images (the probes), the early-stopping epoch's (Tip-Adapter-F), or
/// Tip-Adapter's leave-one-out accuracy of its chosen α, β. `None` when the set was too
/// small to hold images out (the log then has no such figure; nothing is made up).
pub fn held_out(training: &Value) -> Option<HeldOut> {
    let number = |value: &Value| value.as_f64().map(|value| value as f32);
    let count = |key: &str| training[key].as_u64().map(|count| count as usize);
    if let Some(search) = training["search"].as_array() {
        // The candidate kept is the most accurate one (ties: lower loss), as recipes chooses.
        let best = search
            .iter()
            .filter_map(|entry| number(&entry["holdout_accuracy"]))
            .fold(None::<f32>, |best, accuracy| {
                Some(best.map_or(accuracy, |best| best.max(accuracy)))
            });
        if let Some(accuracy) = best {
            return Some(HeldOut {
                accuracy,
                images: count("search_images"),
                measured_on: "the held-out images, for the chosen penalty",
            });
        }
    }
    if let Some(accuracy) = training["early_stopping"]["holdout"]
        .as_array()
        .and_then(|pair| pair.get(1))
        .and_then(number)
    {
        return Some(HeldOut {
            accuracy,
            images: count("early_stopping_images"),
            measured_on: "the held-out images, at the epoch kept",
        });
    }
    if let Some(accuracy) = number(&training["leave_one_out_accuracy"]) {
        return Some(HeldOut {
            accuracy,
            images: count("leave_one_out_images"),
            measured_on: "each image left out in turn, for the chosen α, β",
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 33: the same warning for many images is one line naming them.
    #[test]
    fn a_warning_said_for_many_images_is_one_line() {
        let classes = vec!["glioma".to_string(), "meningioma".to_string()];
        let mut set = SupportSet::new(classes, FocusMode::none()).unwrap();
        let none = "SAM 2 found no region: the whole image was used";
        set.notice(none, "1 (glioma)".into());
        set.notice("a second warning", "2 (glioma)".into());
        set.notice(none, "3 (meningioma)".into());
        assert_eq!(
            set.warnings(),
            [
                format!("images 1 (glioma), 3 (meningioma): {none}"),
                "image 2 (glioma): a second warning".to_string(),
            ]
        );
    }

    #[test]
    fn a_set_needs_two_distinct_named_classes() {
        let focus = FocusMode::none();
        let names = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
        for (classes, expected) in [
            (names(&["tumor"]), "at least two"),
            (names(&["tumor", " "]), "class 2 has no name"),
            (names(&["tumor", "tumor"]), "given twice"),
        ] {
            let error = SupportSet::new(classes, focus.clone()).err().unwrap();
            assert!(error.to_string().contains(expected), "{error}");
        }
        let set = SupportSet::new(names(&["glioma", "no tumor"]), focus).unwrap();
        assert!(set.is_empty());
        assert_eq!(set.counts(), vec![0, 0]);
        let unknown = FocusMode::new("sparkle", Default::default());
        assert!(SupportSet::new(names(&["a", "b"]), unknown).is_err());
    }

    #[test]
    fn held_out_reads_what_each_kind_logged_and_invents_nothing() {
        let probe = json!({"search": [
            {"c": 0.1, "holdout_loss": 0.6, "holdout_accuracy": 0.5},
            {"c": 1.0, "holdout_loss": 0.4, "holdout_accuracy": 0.75},
        ]});
        assert_eq!(held_out(&probe).unwrap().accuracy, 0.75);
        let tip = json!({"leave_one_out_accuracy": 0.625, "alpha": 1.0});
        assert_eq!(held_out(&tip).unwrap().accuracy, 0.625);
        let tip_f = json!({"early_stopping": {"holdout": [0.3, 0.875]}});
        assert_eq!(held_out(&tip_f).unwrap().accuracy, 0.875);
        assert_eq!(held_out(&json!({"search": [], "final": {}})), None);
        // With the count of images the figure rests on (issue 33: "75 %" of what?).
        assert_eq!(held_out(&probe).unwrap().images, None);
        let counted = json!({"search": probe["search"], "search_images": 4});
        assert_eq!(held_out(&counted).unwrap().images, Some(4));
        let tip_f =
            json!({"early_stopping": {"holdout": [0.3, 0.875]}, "early_stopping_images": 8});
        assert_eq!(held_out(&tip_f).unwrap().images, Some(8));
        let tip = json!({"leave_one_out_accuracy": 0.625, "leave_one_out_images": 16});
        assert_eq!(held_out(&tip).unwrap().images, Some(16));
    }
}
