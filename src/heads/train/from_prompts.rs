//! A head from the class prompts alone, no image: what a federated server starts from (issue 34;
//! it needs CLIP's text tower, never an image). A linear probe or LP+text holds the zero-shot
//! prior as its weights, `W = s·T` and `b = 0`, so it gives exactly the zero-shot logits until
//! it trains; CoOp holds its seeded context; a zero-shot head is the prior itself.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde_json::json;

use super::coop::{CoopPrompts, template};
use super::from_dataset::FromDatasetError;
use super::run::host_values;
use super::settings::{TextPrior, TrainedHead};
use super::support_set::{HeadIdentity, assemble_head, default_templates, text_prior};
use crate::clip::load::LoadedClip;
use crate::focus::FocusMode;
use crate::heads::head_file::{
    COOP_CONTEXT, HeadFile, HeadKind, HostTensor, LINEAR_BIAS, LINEAR_WEIGHT, TEXT,
};

pub struct PromptsRequest<'a> {
    pub kind: HeadKind,
    pub clip: &'a LoadedClip,
    /// The CLIP model's name for the head file (its folder name).
    pub clip_name: String,
    /// The class names, in the head's order.
    pub classes: Vec<String>,
    /// The words the prompts use per class (default: the names).
    pub class_names: Option<Vec<String>>,
    /// Prompt templates (`{}` = class name); empty: the medical defaults.
    pub templates: Vec<String>,
    /// How the heads trained from this one will focus (the head file records it for predict).
    pub focus: FocusMode,
    /// CoOp: its context's seed and length.
    pub seed: u64,
    pub context_tokens: usize,
}

/// The untrained head of `request.kind` for the classes' prompts.
pub fn head_from_prompts(request: PromptsRequest) -> Result<HeadFile, FromDatasetError> {
    let invalid = FromDatasetError::Invalid;
    if request.classes.len() < 2 {
        return Err(invalid(format!(
            "{} class(es) given; a head tells at least two apart",
            request.classes.len()
        )));
    }
    let names = match &request.class_names {
        Some(names) if names.len() != request.classes.len() => {
            return Err(invalid(format!(
                "{} class names given for {} classes",
                names.len(),
                request.classes.len()
            )));
        }
        Some(names) => names.clone(),
        None => request.classes.clone(),
    };
    let templates = default_templates(&request.templates, request.kind);
    let (text, embed_dim) = pollster::block_on(text_prior(request.clip, &names, &templates))?;
    let classes = request.classes.len();
    let start = json!({"started_from": "the class prompts", "class_names": names});
    let trained = match request.kind {
        HeadKind::ZeroShot => TrainedHead {
            text_scale: text.scale,
            cache: None,
            tensors: BTreeMap::from([(
                TEXT.to_string(),
                HostTensor::new(vec![classes, embed_dim], text.embeddings.clone()),
            )]),
            training: start,
        },
        HeadKind::LinearProbe | HeadKind::LpText => TrainedHead {
            text_scale: 0.0,
            cache: None,
            tensors: BTreeMap::from([
                (
                    LINEAR_WEIGHT.to_string(),
                    HostTensor::new(
                        vec![classes, embed_dim],
                        text.embeddings
                            .iter()
                            .map(|value| value * text.scale)
                            .collect(),
                    ),
                ),
                (
                    LINEAR_BIAS.to_string(),
                    HostTensor::new(vec![classes], vec![0.0; classes]),
                ),
            ]),
            training: start,
        },
        HeadKind::Coop => coop_start(&request, &names, &text, embed_dim, start)?,
        kind => {
            return Err(invalid(format!(
                "a {} head cannot start from the prompts alone: it needs images (zero-shot, linear-probe, lp-text and coop can)",
                kind.name()
            )));
        }
    };
    Ok(assemble_head(
        trained,
        HeadIdentity {
            kind: request.kind,
            classes: request.classes,
            templates,
            clip: request.clip,
            clip_name: request.clip_name,
            embed_dim,
            focus: request.focus,
        },
    )?)
}

/// CoOp's start: its seeded context and the class texts it gives through the text tower.
fn coop_start(
    request: &PromptsRequest,
    names: &[String],
    text: &TextPrior,
    embed_dim: usize,
    mut training: serde_json::Value,
) -> Result<TrainedHead, FromDatasetError> {
    let device = Device::flex();
    let prompts = CoopPrompts::new(request.clip, names, request.context_tokens, &device)?;
    let context = prompts.init(request.seed, &device);
    let class_texts = host_values(prompts.class_embeddings(context.clone()))?;
    training["prompt"] = json!(template(request.context_tokens));
    Ok(TrainedHead {
        text_scale: text.scale,
        cache: None,
        tensors: BTreeMap::from([
            (
                TEXT.to_string(),
                HostTensor::new(vec![names.len(), embed_dim], class_texts),
            ),
            (
                COOP_CONTEXT.to_string(),
                HostTensor::new(
                    vec![request.context_tokens, prompts.width()],
                    host_values(context)?,
                ),
            ),
        ]),
        training,
    })
}
