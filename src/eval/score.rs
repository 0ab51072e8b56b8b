//! One trained head's figures on a data set's split (`medfocus head score`): each image embedded
//! as the head was trained (its focus, through the embedding cache), scored by the head, and
//! measured with the evaluation's own metrics. What a federated site reports on its test images
//! each round (issue 34), and what a user runs to check a head on new data.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::metrics::Metrics;
use super::records::EvalError;
use crate::clip::load::LoadedClip;
use crate::dataset::{Dataset, SplitName};
use crate::heads::HeadModel;
use crate::heads::head_file::{HeadFile, HeadKind};
use crate::heads::train::cache::EmbeddingCache;
use crate::heads::train::from_dataset::training_samples;
use crate::heads::train::support::{Embedder, SupportMasks, embed_support};

pub struct ScoreRequest<'a> {
    /// The labelled images, their classes already in the head's order
    /// ([`Dataset::with_classes`]).
    pub data: &'a Dataset,
    /// The split scored; `None`: every image.
    pub split: Option<SplitName>,
    pub clip: &'a LoadedClip,
    pub head: &'a HeadFile,
    pub masks: SupportMasks<'a>,
    pub cache: Option<EmbeddingCache>,
    pub device: Device,
}

/// What [`score_head`] measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Scored {
    pub metrics: Metrics,
    pub images: usize,
    pub from_cache: usize,
    /// Images that could not be used, with why.
    pub skipped: Vec<String>,
}

/// Scores `request.head` on the chosen split of `request.data`.
pub fn score_head(
    request: ScoreRequest,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Scored, EvalError> {
    let head = request.head;
    if head.header.kind == HeadKind::Finetune {
        return Err(EvalError::Invalid(
            "a fine-tuned head changes the image tower itself; score it with `medfocus eval --heads finetune`".into(),
        ));
    }
    if request.data.classes != head.header.classes {
        return Err(EvalError::Invalid(format!(
            "the set's classes ({}) are not the head's ({}) in its order",
            request.data.classes.join(", "),
            head.header.classes.join(", ")
        )));
    }
    let model = HeadModel::new(head, &request.device);
    model
        .check_clip(&request.clip.model)
        .map_err(|error| EvalError::Invalid(error.to_string()))?;
    let samples = training_samples(request.data, request.split)?;
    let embedder = Embedder::new(
        request.clip,
        head.header.focus.clone(),
        request.masks,
        request.cache,
    )?;
    let support = embed_support(request.data, &samples, &embedder, &mut |done, total, _| {
        progress(done, total)
    })?;
    let images = support.labels.len();
    if images == 0 {
        return Err(EvalError::Invalid(
            "no image of the split could be read".into(),
        ));
    }
    let embeddings = Tensor::<2>::from_data(
        TensorData::new(support.values.clone(), [images, support.width]),
        &request.device,
    );
    let probabilities = head_probabilities(&model, embeddings)?;
    let metrics = Metrics::compute(&probabilities, &support.labels, head.header.classes.len())?;
    Ok(Scored {
        metrics,
        images,
        from_cache: support.from_cache,
        skipped: support.skipped,
    })
}

/// A head's class probabilities for embeddings `[images, dim]`, row-major, as the metrics take
/// them (the evaluation's runs and [`score_head`] alike).
pub fn head_probabilities(model: &HeadModel, embeddings: Tensor<2>) -> Result<Vec<f64>, EvalError> {
    let logits = model
        .logits(embeddings)
        .map_err(|error| EvalError::Scoring(error.to_string()))?;
    Ok(softmax(logits, 1)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|error| EvalError::Scoring(format!("{error:?}")))?
        .into_iter()
        .map(f64::from)
        .collect())
}
