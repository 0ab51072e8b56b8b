//! A trained head as the pipeline's classifier: focused as it was trained (its recorded focus,
//! its fine-tuned blocks, SAM 2's automatic masks with the settings it recorded).

use burn::tensor::Tensor;

use super::head::HeadModel;
use crate::clip::load::LoadedClip;
use crate::pipeline::{Classifier, Encoder, Pipeline, PipelineError, Probabilities};

impl Classifier for HeadModel {
    fn classes(&self) -> &[String] {
        HeadModel::classes(self)
    }

    fn probabilities(&self, embeddings: Tensor<2>) -> Probabilities<'_> {
        Box::pin(async move {
            self.read_probabilities(embeddings)
                .await
                .map_err(|error| PipelineError::Classifier(Box::new(error)))
        })
    }

    fn logits(&self, embeddings: Tensor<2>) -> Result<Tensor<2>, PipelineError> {
        HeadModel::logits(self, embeddings)
            .map_err(|error| PipelineError::Classifier(Box::new(error)))
    }
}

impl HeadModel {
    /// The chain from image to this head's answer: refuses a CLIP other than the head's, swaps
    /// a fine-tune's blocks into a copy of the image tower, and runs SAM 2's automatic masks
    /// with the settings the head recorded.
    pub fn pipeline<'a>(&'a self, clip: &'a LoadedClip) -> Result<Pipeline<'a>, PipelineError> {
        let classifier_error = |error| PipelineError::Classifier(Box::new(error));
        self.check_clip(&clip.model).map_err(classifier_error)?;
        let mode = &self.header.focus;
        let mut encoder = Encoder::new(clip, mode)?.needing_region_for(format!(
            "this head (trained with the `{}` focus on masks from {})",
            mode.method, mode.masks
        ));
        if let Some(vision) = self
            .adapt_vision(&clip.model.vision)
            .map_err(classifier_error)?
        {
            encoder = encoder.with_vision(vision);
        }
        Ok(Pipeline::new(encoder, self))
    }
}
