//! The paper's own head (MedFocusCLIP, arXiv 2501.03839): the last N blocks of CLIP's image
//! tower are fine-tuned on the visually prompted support images with
//! `L = λ·L_contrastive + (1 − λ)·L_CE` against the class text embeddings ("This is a photo of
//! {class}." by default). `L_CE` is the cross-entropy of `s·f·Tᵀ`; `L_contrastive` is CLIP's
//! symmetric image↔text InfoNCE over the batch, each image paired with its class's text, and
//! images of the same class counted as positives of each other (soft targets), since a few-shot
//! batch repeats classes. Everything before those blocks is frozen, so the tokens entering them
//! are computed once per image (and cached); training runs only the last blocks.

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;

use super::linear_probe::{cross_entropy, holdout_scores};
use super::run::{Objective, Params, TrainError, host_values};
use super::settings::{TextPrior, TrainedHead};
use super::training::{Training, fit_with_early_stopping};
use crate::clip::model::l2_normalize;
use crate::clip::transformer::ResidualBlock;
use crate::clip::vision::VisionTransformer;
use crate::heads::features::{Labelled, one_hot};
use crate::heads::head_file::{HostTensor, TEXT, VISION_BLOCKS};
use crate::heads::vision_blocks::{block_params, substitute};

/// The tokens `[tokens, width]` entering the first fine-tuned block, per support image.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenSet {
    pub classes: Vec<String>,
    pub tokens: usize,
    pub width: usize,
    pub values: Vec<f32>,
    pub labels: Vec<usize>,
}

impl TokenSet {
    pub fn tensor(&self, device: &Device) -> Tensor<3> {
        Tensor::from_data(
            TensorData::new(
                self.values.clone(),
                [self.labels.len(), self.tokens, self.width],
            ),
            device,
        )
    }
}

impl Labelled for TokenSet {
    fn labels(&self) -> &[usize] {
        &self.labels
    }

    fn class_count(&self) -> usize {
        self.classes.len()
    }

    fn subset(&self, indices: &[usize]) -> Self {
        let size = self.tokens * self.width;
        TokenSet {
            classes: self.classes.clone(),
            tokens: self.tokens,
            width: self.width,
            values: indices
                .iter()
                .flat_map(|&i| self.values[i * size..(i + 1) * size].iter().copied())
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// The frozen tower (for its head: `ln_post`, projection) and the blocks being fine-tuned.
pub struct FinetuneTower {
    vision: VisionTransformer,
    /// Index of the first fine-tuned block.
    pub first_block: usize,
    blocks: Vec<ResidualBlock>,
}

impl FinetuneTower {
    /// The last `count` blocks of `vision`, moved to the (autodiff) `device`.
    pub fn new(
        vision: &VisionTransformer,
        count: usize,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let layers = vision.blocks.len();
        if count == 0 || count > layers {
            return Err(TrainError::Text(format!(
                "--finetune-blocks {count}: this image tower has {layers} blocks"
            )));
        }
        let vision = vision.clone().fork(device).no_grad();
        let first_block = layers - count;
        let blocks = vision.blocks[first_block..].to_vec();
        Ok(Self {
            vision,
            first_block,
            blocks,
        })
    }

    /// The trainable parameters, `{block}.{path}` (block counted from the first fine-tuned).
    pub fn init(&self) -> Params {
        let mut params = Params::new();
        for (index, block) in self.blocks.iter().enumerate() {
            for (path, _, tensor) in block_params(block) {
                params.insert(format!("{index}.{path}"), tensor.detach());
            }
        }
        params
    }

    /// Image embeddings (unit rows) from entering tokens, with `params` in the blocks.
    pub fn embed(&self, tokens: Tensor<3>, params: &Params) -> Tensor<2> {
        let blocks: Vec<ResidualBlock> = self
            .blocks
            .iter()
            .enumerate()
            .map(|(index, block)| {
                substitute(block.clone(), &mut |path, _| {
                    params.get(&format!("{index}.{path}")).cloned()
                })
                .0
            })
            .collect();
        l2_normalize(self.vision.finish(tokens, &blocks))
    }

    /// The head file's tensors for `params`: `vision.blocks.{absolute index}.{path}`, own shapes.
    pub fn export(&self, params: &Params) -> Result<BTreeMap<String, HostTensor>, TrainError> {
        let mut tensors = BTreeMap::new();
        for (index, block) in self.blocks.iter().enumerate() {
            for (path, shape, _) in block_params(block) {
                let values = host_values(params[&format!("{index}.{path}")].clone())?;
                tensors.insert(
                    format!("{VISION_BLOCKS}{}.{path}", self.first_block + index),
                    HostTensor::new(shape, values),
                );
            }
        }
        Ok(tensors)
    }
}

/// CLIP's symmetric InfoNCE between unit image embeddings and the text embeddings of their
/// classes, same-class pairs sharing the target mass.
pub fn contrastive_loss(
    images: Tensor<2>,
    labels_one_hot: Tensor<2>,
    text: Tensor<2>,
    scale: f32,
) -> Tensor<1> {
    let [batch, _] = images.dims();
    let paired_text = labels_one_hot.clone().matmul(text);
    let similarity = images.matmul(paired_text.transpose()) * scale;
    let same = labels_one_hot.clone().matmul(labels_one_hot.transpose());
    let targets = same.clone() / same.sum_dim(1);
    let image_to_text = -(log_softmax(similarity.clone(), 1) * targets.clone()).sum();
    let text_to_image = -(log_softmax(similarity.transpose(), 1) * targets).sum();
    (image_to_text + text_to_image) / (2.0 * batch as f32)
}

pub struct FinetuneObjective<'a> {
    pub tower: &'a FinetuneTower,
    text: Tensor<2>,
    scale: f32,
    contrastive_weight: f32,
    tokens: Tensor<3>,
    one_hot: Tensor<2>,
    holdout: Option<(Tensor<3>, Tensor<2>)>,
}

impl<'a> FinetuneObjective<'a> {
    pub fn new(
        tower: &'a FinetuneTower,
        text: &TextPrior,
        contrastive_weight: f32,
        train: &TokenSet,
        holdout: Option<&TokenSet>,
        device: &Device,
    ) -> Self {
        let classes = train.classes.len();
        let dim = text.embeddings.len() / classes.max(1);
        Self {
            tower,
            text: Tensor::from_data(
                TensorData::new(text.embeddings.clone(), [classes, dim]),
                device,
            ),
            scale: text.scale,
            contrastive_weight,
            tokens: train.tensor(device),
            one_hot: one_hot(&train.labels, classes, device),
            holdout: holdout.map(|set| (set.tensor(device), one_hot(&set.labels, classes, device))),
        }
    }

    fn logits(&self, images: Tensor<2>) -> Tensor<2> {
        images.matmul(self.text.clone().transpose()) * self.scale
    }
}

impl Objective for FinetuneObjective<'_> {
    fn loss(&mut self, params: &Params) -> (Tensor<1>, f32) {
        let images = self.tower.embed(self.tokens.clone(), params);
        let (cross_entropy_loss, accuracy) =
            cross_entropy(self.logits(images.clone()), self.one_hot.clone());
        let loss = if self.contrastive_weight > 0.0 {
            let contrastive =
                contrastive_loss(images, self.one_hot.clone(), self.text.clone(), self.scale);
            contrastive * self.contrastive_weight
                + cross_entropy_loss * (1.0 - self.contrastive_weight)
        } else {
            cross_entropy_loss
        };
        (loss, accuracy)
    }

    fn evaluate(&mut self, params: &Params) -> Option<(f32, f32)> {
        let (tokens, one_hot) = self.holdout.clone()?;
        let images = self.tower.embed(tokens, params).detach();
        Some(holdout_scores(self.logits(images), one_hot))
    }
}

/// Fine-tunes the last `settings.finetune_blocks` blocks of `vision` on `support` (its
/// validation rows, when `training` names them, choose the epoch count and never train).
pub fn train_finetune(
    vision: &VisionTransformer,
    support: &TokenSet,
    text: &TextPrior,
    training: Training,
) -> Result<TrainedHead, TrainError> {
    let (settings, device) = (training.settings, training.device);
    let tower = FinetuneTower::new(vision, settings.finetune_blocks, device)?;
    let initial = tower.init();
    let mut log = json!({"settings": settings, "first_block": tower.first_block});
    let params = fit_with_early_stopping(
        support,
        training,
        &mut log,
        &mut |train, holdout| {
            Box::new(FinetuneObjective::new(
                &tower,
                text,
                settings.contrastive_weight,
                train,
                holdout,
                device,
            ))
        },
        &mut |_| initial.clone(),
    )?;
    let mut tensors = tower.export(&params)?;
    let classes = support.classes.len();
    let dim = text.embeddings.len() / classes.max(1);
    tensors.insert(
        TEXT.to_string(),
        HostTensor::new(vec![classes, dim], text.embeddings.clone()),
    );
    Ok(TrainedHead {
        text_scale: text.scale,
        cache: None,
        tensors,
        training: log,
    })
}
