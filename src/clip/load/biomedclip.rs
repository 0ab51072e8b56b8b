//! BiomedCLIP: open_clip's `CustomTextCLIP` with a timm ViT-B/16 image tower and a Hugging Face
//! PubMedBERT text tower (`hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224`).
//!
//! Keys: `visual.trunk.{cls_token, pos_embed, patch_embed.proj, blocks.{i}.{norm1, attn.qkv,
//! attn.proj, norm2, mlp.fc1, mlp.fc2}, norm}`, `visual.head.proj.weight`;
//! `text.transformer.{embeddings.{word,position,token_type}_embeddings, embeddings.LayerNorm,
//! encoder.layer.{i}.{attention.self.{query,key,value}, attention.output.{dense, LayerNorm},
//! intermediate.dense, output.{dense, LayerNorm}}}`, `text.proj.{0,2}.weight`; `logit_scale`.
//!
//! The text tower's tokenizer vocabulary lives in another hub repo (BiomedBERT); it is expected
//! at `text/vocab.txt`, its config (optional) at `text/config.json`.

use burn::tensor::Device;
use serde_json::Value;

use super::files::ModelFiles;
use super::json::Json;
use super::loaded::{Family, LoadError, LoadedClip, build};
use super::open_clip::{
    CONFIG_FILE, model_cfg, open_clip_checkpoint, preprocess_config, split_block,
};
use crate::clip::config::{
    Activation, BertTextConfig, ClipConfig, TextConfig, TextProjection, VisionConfig,
};
use crate::clip::tokenizer::{TextTokenizer, WordPieceTokenizer};
use crate::weights::{Checkpoint, KeyMap, Source};

pub const VOCAB_FILE: &str = "text/vocab.txt";
pub const TEXT_CONFIG_FILE: &str = "text/config.json";

/// timm and BERT give every head 64 channels; heads are not recorded in the weights.
const HEAD_DIM: usize = 64;

/// An open_clip config whose towers come from timm and Hugging Face.
pub fn is_biomedclip_layout(config: &Value) -> bool {
    let model = model_cfg(config);
    let named = |tower: &str, key: &str| {
        model
            .get(tower)
            .and_then(|cfg| cfg.get(key))
            .is_some_and(|v| !v.is_null())
    };
    named("vision_cfg", "timm_model_name") || named("text_cfg", "hf_model_name")
}

fn vision_block(index: &str, rest: &str) -> String {
    let suffix = match rest {
        "attn.in_proj.weight" => "attn.qkv.weight".to_string(),
        "attn.in_proj.bias" => "attn.qkv.bias".to_string(),
        _ => rest
            .replacen("ln_1", "norm1", 1)
            .replacen("ln_2", "norm2", 1)
            .replacen("attn.out_proj", "attn.proj", 1),
    };
    format!("visual.trunk.blocks.{index}.{suffix}")
}

fn text_layer(index: &str, rest: &str) -> Source {
    let base = format!("text.transformer.encoder.layer.{index}");
    let qkv = |param: &str| {
        Source::Concat(
            ["query", "key", "value"]
                .iter()
                .map(|p| format!("{base}.attention.self.{p}.{param}"))
                .collect(),
        )
    };
    let (module, param) = rest.rsplit_once('.').unwrap_or((rest, ""));
    match module {
        "attn.in_proj" => qkv(param),
        "attn.out_proj" => Source::Key(format!("{base}.attention.output.dense.{param}")),
        "ln_attn" => Source::Key(format!("{base}.attention.output.LayerNorm.{param}")),
        "mlp.fc1" => Source::Key(format!("{base}.intermediate.dense.{param}")),
        "mlp.fc2" => Source::Key(format!("{base}.output.dense.{param}")),
        "ln_mlp" => Source::Key(format!("{base}.output.LayerNorm.{param}")),
        _ => Source::Key(format!("{base}.{rest}")),
    }
}

pub struct BiomedClipKeys;

impl KeyMap for BiomedClipKeys {
    fn source(&self, canonical: &str) -> Source {
        if let Some((index, rest)) = split_block(canonical, "visual") {
            return Source::Key(vision_block(index, rest));
        }
        if let Some(tail) = canonical.strip_prefix("text.bert.layers.")
            && let Some((index, rest)) = tail.split_once('.')
        {
            return text_layer(index, rest);
        }
        match canonical {
            "visual.class_embedding" => Source::Reshaped("visual.trunk.cls_token".into()),
            "visual.positional_embedding" => Source::Reshaped("visual.trunk.pos_embed".into()),
            "visual.proj.weight" => Source::Key("visual.head.proj.weight".into()),
            "text.proj.fc1.weight" => Source::Key("text.proj.0.weight".into()),
            "text.proj.fc2.weight" => Source::Key("text.proj.2.weight".into()),
            other => {
                let key = if let Some(rest) = other.strip_prefix("visual.patch_embed.") {
                    format!("visual.trunk.patch_embed.proj.{rest}")
                } else if let Some(rest) = other.strip_prefix("visual.ln_post.") {
                    format!("visual.trunk.norm.{rest}")
                } else if let Some(rest) = other.strip_prefix("text.bert.embeddings.ln.") {
                    format!("text.transformer.embeddings.LayerNorm.{rest}")
                } else if let Some(rest) = other.strip_prefix("text.bert.embeddings.") {
                    let (table, param) = rest.split_once('.').unwrap_or((rest, "weight"));
                    format!("text.transformer.embeddings.{table}_embeddings.{param}")
                } else {
                    other.to_string()
                };
                Source::Key(key)
            }
        }
    }
}

fn shape<'a>(checkpoint: &'a Checkpoint, key: &str) -> Result<&'a [usize], LoadError> {
    checkpoint.shape(key).ok_or_else(|| LoadError::Config {
        file: checkpoint.source_name().to_string(),
        detail: format!("`{key}` is missing, so the tower's size cannot be read (is this a BiomedCLIP checkpoint?)"),
    })
}

/// Tower sizes come from the weights (the config only names the timm and hub models).
///
/// Not split: a straight run of reads and checks, one per config field, each refusing what the port
/// does not compute.
fn clip_config(
    config: &Value,
    checkpoint: &Checkpoint,
    text_config: Option<&Value>,
) -> Result<ClipConfig, LoadError> {
    let model = Json::new(CONFIG_FILE, model_cfg(config));
    let vision = model.child("vision_cfg");
    let text = model.child("text_cfg");
    let embed_dim = model.usize("embed_dim")?;
    let timm_name = vision.str_or("timm_model_name", "")?;
    if !timm_name.starts_with("vit_") {
        return Err(vision.unsupported(format!("timm model `{timm_name}` (ViTs only)")));
    }
    let pool = vision.str_or("timm_pool", "")?;
    if !pool.is_empty() && pool != "token" {
        return Err(vision.unsupported(format!("timm_pool `{pool}`")));
    }
    if vision.str_or("timm_proj", "linear")? != "linear"
        || vision.bool_or("timm_proj_bias", false)?
    {
        return Err(vision.unsupported("a timm projection other than a bias-free linear"));
    }
    let pooler = text.str_or("hf_pooler_type", "cls_last_hidden_state_pooler")?;
    if pooler != "cls_last_hidden_state_pooler" {
        return Err(text.unsupported(format!("hf_pooler_type `{pooler}`")));
    }

    let patch = shape(checkpoint, "visual.trunk.patch_embed.proj.weight")?.to_vec();
    let (width, patch_size) = (patch[0], *patch.get(2).unwrap_or(&16));
    let mlp_width = shape(checkpoint, "visual.trunk.blocks.0.mlp.fc1.weight")?[0];
    let words = shape(
        checkpoint,
        "text.transformer.embeddings.word_embeddings.weight",
    )?
    .to_vec();
    let hidden = words[1];
    let text_json = text_config.map(|value| Json::new(TEXT_CONFIG_FILE, value));
    let bert_usize = |key: &str, fallback: usize| match &text_json {
        Some(json) => json.usize_or(key, fallback),
        None => Ok(fallback),
    };
    let projection = match text.str_or("hf_proj_type", "mlp")? {
        "mlp" => TextProjection::Mlp {
            hidden: (hidden + embed_dim) / 2,
        },
        "linear" => TextProjection::Linear,
        other => return Err(text.unsupported(format!("hf_proj_type `{other}`"))),
    };
    Ok(ClipConfig {
        embed_dim,
        vision: VisionConfig {
            image_size: vision.usize_or("image_size", 224)?,
            patch_size,
            width,
            layers: checkpoint.count_indexed("visual.trunk.blocks"),
            heads: width / HEAD_DIM,
            mlp_width,
            activation: Activation::Gelu,
            layer_norm_eps: 1e-6,
            pre_norm: false,
            patch_bias: true,
        },
        text: TextConfig::Bert(BertTextConfig {
            vocab_size: words[0],
            hidden_size: hidden,
            layers: checkpoint.count_indexed("text.transformer.encoder.layer"),
            heads: bert_usize("num_attention_heads", hidden / HEAD_DIM)?,
            intermediate_size: shape(
                checkpoint,
                "text.transformer.encoder.layer.0.intermediate.dense.weight",
            )?[0],
            max_position_embeddings: shape(
                checkpoint,
                "text.transformer.embeddings.position_embeddings.weight",
            )?[0],
            type_vocab_size: shape(
                checkpoint,
                "text.transformer.embeddings.token_type_embeddings.weight",
            )?[0],
            layer_norm_eps: match &text_json {
                Some(json) => json.f64_or("layer_norm_eps", 1e-12)?,
                None => 1e-12,
            },
            pad_token_id: bert_usize("pad_token_id", 0)? as u32,
            context_length: text.usize_or("context_length", 256)?,
            projection,
        }),
    })
}

pub fn load(
    files: &dyn ModelFiles,
    config: &Value,
    device: &Device,
) -> Result<LoadedClip, LoadError> {
    files.require(
        VOCAB_FILE,
        " (BiomedCLIP's tokenizer vocabulary; `medfocus weights fetch biomedclip` downloads it)",
    )?;
    let text_config = if files.exists(TEXT_CONFIG_FILE) {
        Some(files.read_json(TEXT_CONFIG_FILE)?)
    } else {
        None
    };
    let checkpoint = open_clip_checkpoint(files)?;
    let clip = clip_config(config, &checkpoint, text_config.as_ref())?;
    if let TextConfig::Bert(text) = &clip.text
        && text.context_length > text.max_position_embeddings
    {
        return Err(LoadError::Config {
            file: CONFIG_FILE.into(),
            detail: format!(
                "context_length {} exceeds the text tower's {} positions",
                text.context_length, text.max_position_embeddings
            ),
        });
    }
    let preprocess = preprocess_config(config, clip.vision.image_size)?;
    let context_length = clip.text.context_length();
    let vocab = WordPieceTokenizer::from_vocab_text(&files.read_text(VOCAB_FILE)?, context_length)
        .map_err(|source| LoadError::Vocabulary {
            file: VOCAB_FILE.into(),
            source,
        })?;
    let model = build(clip, checkpoint, &BiomedClipKeys, "BiomedCLIP", device)?;
    if let crate::clip::model::TextTower::Bert(tower) = &model.text
        && vocab.vocab_size() != tower.vocab_size
    {
        return Err(LoadError::Config {
            file: VOCAB_FILE.into(),
            detail: format!(
                "{} tokens, but the text tower has {} embeddings",
                vocab.vocab_size(),
                tower.vocab_size
            ),
        });
    }
    Ok(LoadedClip {
        family: Family::BiomedClip,
        model,
        tokenizer: TextTokenizer::WordPiece(vocab),
        preprocess,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_timm_and_bert_names() {
        let keys = BiomedClipKeys;
        assert_eq!(
            keys.source("visual.blocks.2.attn.in_proj.weight"),
            Source::Key("visual.trunk.blocks.2.attn.qkv.weight".into())
        );
        assert_eq!(
            keys.source("visual.blocks.0.attn.out_proj.bias"),
            Source::Key("visual.trunk.blocks.0.attn.proj.bias".into())
        );
        assert_eq!(
            keys.source("visual.class_embedding"),
            Source::Reshaped("visual.trunk.cls_token".into())
        );
        assert_eq!(
            keys.source("text.bert.embeddings.token_type.weight"),
            Source::Key("text.transformer.embeddings.token_type_embeddings.weight".into())
        );
        assert_eq!(
            keys.source("text.bert.layers.1.ln_mlp.weight"),
            Source::Key("text.transformer.encoder.layer.1.output.LayerNorm.weight".into())
        );
        assert_eq!(
            keys.source("text.proj.fc2.weight"),
            Source::Key("text.proj.2.weight".into())
        );
    }
}
