//! Zero-shot classification: class names × prompt templates → text embeddings (normalised,
//! averaged per class, normalised again, as in CLIP's paper) → scaled cosine logits → softmax.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::load::LoadedClip;
use super::model::l2_normalize;
use super::text::TextInputError;
use crate::device::read_floats;

/// Prompt templates for medical images; `{}` is replaced by the class name.
pub const MEDICAL_TEMPLATES: &[&str] = &[
    "a photo of {}.",
    "an image of {}.",
    "a medical image showing {}.",
    "a radiology image of {}.",
    "{}",
];

#[derive(Debug, thiserror::Error)]
pub enum ZeroShotError {
    #[error("at least two classes are needed, got {0}")]
    TooFewClasses(usize),
    #[error("class names must not be empty")]
    EmptyClassName,
    #[error("template `{0}` has no `{{}}` where the class name goes")]
    BadTemplate(String),
    #[error(transparent)]
    Text(#[from] TextInputError),
    #[error("reading results back from the device failed: {0}")]
    Readback(String),
}

/// Text side of a zero-shot classifier, computed once per class list.
#[derive(Debug)]
pub struct ZeroShotClassifier {
    pub classes: Vec<String>,
    /// `[classes, embed_dim]`, unit rows.
    pub class_embeddings: Tensor<2>,
    pub logit_scale: f32,
}

impl ZeroShotClassifier {
    pub fn new<S: AsRef<str>>(
        clip: &LoadedClip,
        classes: &[S],
        templates: &[S],
    ) -> Result<Self, ZeroShotError> {
        if classes.len() < 2 {
            return Err(ZeroShotError::TooFewClasses(classes.len()));
        }
        if classes.iter().any(|class| class.as_ref().trim().is_empty()) {
            return Err(ZeroShotError::EmptyClassName);
        }
        if let Some(bad) = templates
            .iter()
            .find(|template| !template.as_ref().contains("{}"))
        {
            return Err(ZeroShotError::BadTemplate(bad.as_ref().to_string()));
        }
        let defaults: Vec<&str> = MEDICAL_TEMPLATES.to_vec();
        let templates: Vec<&str> = if templates.is_empty() {
            defaults
        } else {
            templates.iter().map(AsRef::as_ref).collect()
        };
        let mut rows = Vec::with_capacity(classes.len());
        for class in classes {
            let prompts: Vec<String> = templates
                .iter()
                .map(|template| template.replace("{}", class.as_ref().trim()))
                .collect();
            let tokens = clip.tokenizer.tokenize_batch(&prompts);
            let embeddings = l2_normalize(clip.model.encode_text(&tokens)?);
            let mean = embeddings.mean_dim(0);
            rows.push(l2_normalize(mean));
        }
        Ok(Self {
            classes: classes
                .iter()
                .map(|class| class.as_ref().trim().to_string())
                .collect(),
            class_embeddings: Tensor::cat(rows, 0),
            logit_scale: clip.model.logit_scale,
        })
    }

    /// Class probabilities `[images, classes]` for image embeddings `[images, embed_dim]`.
    pub fn probabilities(&self, image_embeddings: Tensor<2>) -> Tensor<2> {
        softmax(self.logits(image_embeddings), 1)
    }

    /// Scaled cosine logits `[images, classes]` (CLIP's `logits_per_image`).
    pub fn logits(&self, image_embeddings: Tensor<2>) -> Tensor<2> {
        l2_normalize(image_embeddings).matmul(self.class_embeddings.clone().transpose())
            * self.logit_scale
    }

    /// Reads probabilities back as rows (async: the browser cannot block on the GPU).
    pub async fn read_probabilities(
        &self,
        image_embeddings: Tensor<2>,
    ) -> Result<Vec<Vec<f32>>, ZeroShotError> {
        let classes = self.classes.len();
        let values = read_floats(self.probabilities(image_embeddings))
            .await
            .map_err(|error| ZeroShotError::Readback(error.0))?;
        Ok(values.chunks(classes).map(<[f32]>::to_vec).collect())
    }
}
