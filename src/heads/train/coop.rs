//! CoOp (Zhou et al., IJCV 2022): the prompt's words are learnt. `n` context vectors replace the
//! embeddings of "X X … X" in "X X X X {class}." and are trained by cross-entropy on the support
//! images, the gradient flowing back through the frozen text tower. After training, the class
//! text embeddings the learnt prompts produce are the head (like zero-shot, with better prompts).

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::json;

use super::linear_probe::{cross_entropy, holdout_scores};
use super::run::{Objective, Params, TrainError, host_values};
use super::settings::TrainedHead;
use super::training::{StoredAs, Training, fit_with_early_stopping, given_start};
use crate::clip::load::LoadedClip;
use crate::clip::model::{TextTower, l2_normalize};
use crate::clip::text::TokenEmbeddings;
use crate::heads::features::FeatureSet;
use crate::heads::head_file::{COOP_CONTEXT, HostTensor, TEXT};
use crate::heads::rng::SplitMix64;

pub const CONTEXT: &str = "context";
/// CoOp's placeholder word; one token in both CLIP's BPE and BERT's WordPiece.
const PLACEHOLDER: &str = "X";

/// The prompt text for `n` context tokens: "X X X X {}.".
pub fn template(context_tokens: usize) -> String {
    let mut text = vec![PLACEHOLDER; context_tokens].join(" ");
    text.push_str(" {}.");
    text
}

/// The class prompts' token embeddings on the training device, with the context slots found.
pub struct CoopPrompts {
    tower: TextTower,
    embedded: TokenEmbeddings,
    /// Index of the first context token (after the start token).
    start: usize,
    context_tokens: usize,
    scale: f32,
}

impl CoopPrompts {
    pub fn new(
        clip: &LoadedClip,
        class_names: &[String],
        context_tokens: usize,
        device: &Device,
    ) -> Result<Self, TrainError> {
        if context_tokens == 0 {
            return Err(TrainError::Text(
                "CoOp needs at least one context token".into(),
            ));
        }
        let template = template(context_tokens);
        let prompts: Vec<String> = class_names
            .iter()
            .map(|name| template.replace("{}", name))
            .collect();
        let tokens = clip.tokenizer.tokenize_batch(&prompts);
        // The placeholders sit right after the start token, one token each.
        let start = 1;
        let placeholder = tokens.first().and_then(|row| row.get(start)).copied();
        let in_place = tokens.iter().all(|row| {
            row.len() > start + context_tokens
                && row[start..start + context_tokens]
                    .iter()
                    .all(|&id| Some(id) == placeholder)
        });
        if !in_place {
            return Err(TrainError::Text(format!(
                "this tokenizer does not give one token per `{PLACEHOLDER}` at the start of the prompt; CoOp cannot place its context"
            )));
        }
        let tower = clip.model.text.frozen_on(device);
        let embedded = tower
            .embed_tokens(&tokens)
            .map_err(|error| TrainError::Text(error.to_string()))?;
        let embedded = TokenEmbeddings {
            words: embedded.words.detach(),
            tokens: embedded.tokens,
        };
        Ok(Self {
            tower,
            embedded,
            start,
            context_tokens,
            scale: clip.model.logit_scale,
        })
    }

    pub fn width(&self) -> usize {
        self.embedded.words.dims()[2]
    }

    /// Unit class embeddings `[classes, embed_dim]` with `context` `[n, width]` in the prompts.
    pub fn class_embeddings(&self, context: Tensor<2>) -> Tensor<2> {
        let words = self.embedded.words.clone();
        let [classes, length, width] = words.dims();
        let end = self.start + self.context_tokens;
        let context = context
            .unsqueeze_dim::<3>(0)
            .expand([classes, self.context_tokens, width]);
        let words = Tensor::cat(
            vec![
                words.clone().narrow(1, 0, self.start),
                context,
                words.narrow(1, end, length - end),
            ],
            1,
        );
        l2_normalize(self.tower.forward_embedded(TokenEmbeddings {
            words,
            tokens: self.embedded.tokens.clone(),
        }))
    }

    /// CoOp's initialisation: N(0, 0.02²), seeded.
    pub fn init(&self, seed: u64, device: &Device) -> Tensor<2> {
        let mut rng = SplitMix64::derive(seed, "coop context");
        let count = self.context_tokens * self.width();
        let values: Vec<f32> = (0..count).map(|_| (0.02 * rng.normal()) as f32).collect();
        Tensor::from_data(
            TensorData::new(values, [self.context_tokens, self.width()]),
            device,
        )
    }
}

/// Cross-entropy of `s·f·Tᵀ` with T from the learnt prompts.
pub struct CoopObjective<'a> {
    pub prompts: &'a CoopPrompts,
    features: Tensor<2>,
    one_hot: Tensor<2>,
    holdout: Option<(Tensor<2>, Tensor<2>)>,
    /// Added to the training logits: leaves out the classes the training images lack.
    absent: Option<Tensor<2>>,
}

impl<'a> CoopObjective<'a> {
    /// The training softmax over only the classes `train` has an image of.
    pub fn present_classes_only(mut self, train: &FeatureSet, device: &Device) -> Self {
        self.absent = Some(train.absent_class_mask(device));
        self
    }

    pub fn new(
        prompts: &'a CoopPrompts,
        train: &FeatureSet,
        holdout: Option<&FeatureSet>,
        device: &Device,
    ) -> Self {
        Self {
            prompts,
            features: train.tensor(device),
            one_hot: train.one_hot(device),
            holdout: holdout.map(|set| (set.tensor(device), set.one_hot(device))),
            absent: None,
        }
    }

    fn logits(&self, params: &Params, features: Tensor<2>) -> Tensor<2> {
        let text = self.prompts.class_embeddings(params[CONTEXT].clone());
        features.matmul(text.transpose()) * self.prompts.scale
    }
}

impl Objective for CoopObjective<'_> {
    fn loss(&mut self, params: &Params) -> (Tensor<1>, f32) {
        let mut logits = self.logits(params, self.features.clone());
        if let Some(absent) = &self.absent {
            logits = logits + absent.clone();
        }
        cross_entropy(logits, self.one_hot.clone())
    }

    fn evaluate(&mut self, params: &Params) -> Option<(f32, f32)> {
        let (features, one_hot) = self.holdout.clone()?;
        Some(holdout_scores(self.logits(params, features), one_hot))
    }
}

/// Trains CoOp's context on `support` (image embeddings) for the classes' prompt names.
pub fn train_coop(
    clip: &LoadedClip,
    support: &FeatureSet,
    class_names: &[String],
    training: Training,
) -> Result<TrainedHead, TrainError> {
    let (settings, device) = (training.settings, training.device);
    let prompts = CoopPrompts::new(clip, class_names, settings.context_tokens, device)?;
    let given = given_start(
        training.initial,
        &[StoredAs {
            tensor: COOP_CONTEXT,
            parameter: CONTEXT,
            shape: [settings.context_tokens, prompts.width()],
            scale: 1.0,
        }],
        device,
    )?;
    let init = match given {
        Some(params) => params,
        None => Params::from([(CONTEXT.to_string(), prompts.init(settings.seed, device))]),
    };
    let mut log = json!({"settings": settings});
    let context = fit_with_early_stopping(
        support,
        training,
        &mut log,
        &mut |train, holdout| {
            let objective = CoopObjective::new(&prompts, train, holdout, device);
            Box::new(if settings.present_classes_only {
                objective.present_classes_only(train, device)
            } else {
                objective
            })
        },
        &mut |_| init.clone(),
    )?;
    let context_values = host_values(context[CONTEXT].clone())?;
    let text = host_values(prompts.class_embeddings(context[CONTEXT].clone()).detach())?;
    let classes = support.class_count();
    let mut tensors = BTreeMap::new();
    tensors.insert(
        TEXT.to_string(),
        HostTensor::new(vec![classes, support.dim], text),
    );
    tensors.insert(
        COOP_CONTEXT.to_string(),
        HostTensor::new(
            vec![settings.context_tokens, prompts.width()],
            context_values,
        ),
    );
    log["prompt"] = json!(template(settings.context_tokens));
    log["class_names"] = json!(class_names);
    Ok(TrainedHead {
        text_scale: prompts.scale,
        cache: None,
        tensors,
        training: log,
    })
}
