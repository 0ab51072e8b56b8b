//! open_clip's own CLIP layout (OpenAI's weights as open_clip publishes them, LAION, DataComp…).
//!
//! Keys: `visual.conv1.weight`, `visual.class_embedding`, `visual.positional_embedding`,
//! `visual.ln_pre`, `visual.transformer.resblocks.{i}.{ln_1, attn.in_proj_weight,
//! attn.in_proj_bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}`, `visual.ln_post`,
//! `visual.proj` (`[width, embed]`); text at the top level: `token_embedding`,
//! `positional_embedding`, `transformer.resblocks.{i}…`, `ln_final`, `text_projection`;
//! `logit_scale`.

use burn::tensor::Device;
use serde_json::Value;

use super::files::ModelFiles;
use super::json::Json;
use super::loaded::{Family, LoadError, LoadedClip, build};
use crate::clip::config::{Activation, ClipConfig, ClipTextConfig, TextConfig, VisionConfig};
use crate::clip::preprocess::{OPENAI_MEAN, OPENAI_STD, PreprocessConfig, ResizeMode};
use crate::clip::tokenizer::{ClipBpeTokenizer, TextTokenizer};
use crate::weights::{Checkpoint, KeyMap, Source};

pub const CONFIG_FILE: &str = "open_clip_config.json";
pub const SAFETENSORS_FILE: &str = "open_clip_model.safetensors";
pub const PYTORCH_FILE: &str = "open_clip_pytorch_model.bin";

/// Maps a canonical block suffix to open_clip's `ResidualAttentionBlock` names.
fn block_suffix(rest: &str) -> String {
    match rest {
        "attn.in_proj.weight" => "attn.in_proj_weight".into(),
        "attn.in_proj.bias" => "attn.in_proj_bias".into(),
        _ => rest
            .replacen("mlp.fc1", "mlp.c_fc", 1)
            .replacen("mlp.fc2", "mlp.c_proj", 1),
    }
}

/// Splits `prefix.blocks.{i}.rest` into `(i, rest)`.
pub(crate) fn split_block<'a>(canonical: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let tail = canonical.strip_prefix(prefix)?.strip_prefix(".blocks.")?;
    tail.split_once('.')
}

pub struct OpenClipKeys;

impl KeyMap for OpenClipKeys {
    fn source(&self, canonical: &str) -> Source {
        if let Some((index, rest)) = split_block(canonical, "visual") {
            return Source::Key(format!(
                "visual.transformer.resblocks.{index}.{}",
                block_suffix(rest)
            ));
        }
        if let Some((index, rest)) = split_block(canonical, "text") {
            return Source::Key(format!(
                "transformer.resblocks.{index}.{}",
                block_suffix(rest)
            ));
        }
        match canonical {
            "visual.patch_embed.weight" => Source::Key("visual.conv1.weight".into()),
            "visual.proj.weight" => Source::Transposed("visual.proj".into()),
            "text.proj.weight" => Source::Transposed("text_projection".into()),
            other => match other.strip_prefix("text.") {
                Some(top_level) => Source::Key(top_level.to_string()),
                None => Source::Key(other.to_string()),
            },
        }
    }
}

/// The model section of an `open_clip_config.json` (hub layout) or a bare model config.
pub(crate) fn model_cfg(config: &Value) -> &Value {
    config.get("model_cfg").unwrap_or(config)
}

/// `preprocess_cfg`, with open_clip's defaults.
pub(crate) fn preprocess_config(
    config: &Value,
    image_size: usize,
) -> Result<PreprocessConfig, LoadError> {
    let json = Json::new(CONFIG_FILE, config).child("preprocess_cfg");
    let interpolation = json.str_or("interpolation", "bicubic")?;
    if interpolation != "bicubic" {
        return Err(json.unsupported(format!("interpolation `{interpolation}` (only bicubic)")));
    }
    let resize_mode = match json.str_or("resize_mode", "shortest")? {
        "shortest" => ResizeMode::Shortest,
        "squash" => ResizeMode::Squash,
        other => return Err(json.unsupported(format!("resize_mode `{other}`"))),
    };
    Ok(PreprocessConfig {
        image_size: json.usize_or("size", image_size)?,
        mean: json.triple_or("mean", OPENAI_MEAN)?,
        std: json.triple_or("std", OPENAI_STD)?,
        resize_mode,
    })
}

/// Options open_clip offers that change the computation and this port does not implement: they
/// are refused rather than ignored.
fn refuse_unsupported(vision: &Json, text: &Json) -> Result<(), LoadError> {
    if vision.has("ls_init_value") || text.has("ls_init_value") {
        return Err(vision.unsupported("layer scale (`ls_init_value`)"));
    }
    if vision.bool_or("attentional_pool", false)? {
        return Err(vision.unsupported("attentional pooling"));
    }
    if vision.bool_or("no_ln_pre", false)? {
        return Err(vision.unsupported("`no_ln_pre`"));
    }
    let pool = vision.str_or("pool_type", "tok")?;
    if pool != "tok" {
        return Err(vision.unsupported(format!("vision pool_type `{pool}`")));
    }
    let text_pool = text.str_or("pool_type", "argmax")?;
    if text_pool != "argmax" {
        return Err(text.unsupported(format!("text pool_type `{text_pool}`")));
    }
    if text.bool_or("embed_cls", false)? || text.bool_or("proj_bias", false)? {
        return Err(text.unsupported("a text class token or projection bias"));
    }
    if vision.value.get("layers").is_some_and(Value::is_array) {
        return Err(vision.unsupported("a ResNet image tower"));
    }
    Ok(())
}

pub(crate) fn clip_config(config: &Value) -> Result<ClipConfig, LoadError> {
    let model = Json::new(CONFIG_FILE, model_cfg(config));
    let vision = model.child("vision_cfg");
    let text = model.child("text_cfg");
    refuse_unsupported(&vision, &text)?;
    let activation = if model.bool_or("quick_gelu", false)? {
        Activation::QuickGelu
    } else {
        Activation::Gelu
    };
    let width = vision.usize_or("width", 768)?;
    let head_width = vision.usize_or("head_width", 64)?;
    let mlp_ratio = vision.f64_or("mlp_ratio", 4.0)?;
    let text_width = text.usize_or("width", 512)?;
    let text_mlp_ratio = text.f64_or("mlp_ratio", 4.0)?;
    let vocab_size = text.usize_or("vocab_size", 49408)?;
    if head_width == 0 || width % head_width != 0 {
        return Err(LoadError::Config {
            file: CONFIG_FILE.into(),
            detail: "vision width is not a multiple of head_width".into(),
        });
    }
    Ok(ClipConfig {
        embed_dim: model.usize("embed_dim")?,
        vision: VisionConfig {
            image_size: vision.usize_or("image_size", 224)?,
            patch_size: vision.usize_or("patch_size", 16)?,
            width,
            layers: vision.usize_or("layers", 12)?,
            heads: width / head_width,
            mlp_width: (width as f64 * mlp_ratio) as usize,
            activation,
            layer_norm_eps: 1e-5,
            pre_norm: true,
            patch_bias: false,
        },
        text: TextConfig::Clip(ClipTextConfig {
            context_length: text.usize_or("context_length", 77)?,
            vocab_size,
            width: text_width,
            layers: text.usize_or("layers", 12)?,
            heads: text.usize_or("heads", 8)?,
            mlp_width: (text_width as f64 * text_mlp_ratio) as usize,
            activation,
            layer_norm_eps: 1e-5,
            // open_clip pools at the highest id, which is end-of-text in its vocabulary.
            eot_token_id: (vocab_size as u32).saturating_sub(1),
        }),
    })
}

pub fn load(
    files: &dyn ModelFiles,
    config: &Value,
    device: &Device,
) -> Result<LoadedClip, LoadError> {
    let clip = clip_config(config)?;
    let preprocess = preprocess_config(config, clip.vision.image_size)?;
    let context_length = clip.text.context_length();
    let checkpoint = open_clip_checkpoint(files)?;
    let model = build(clip, checkpoint, &OpenClipKeys, "open_clip CLIP", device)?;
    Ok(LoadedClip {
        family: Family::OpenClip,
        model,
        tokenizer: TextTokenizer::Bpe(ClipBpeTokenizer::openai(context_length)),
        preprocess,
    })
}

/// The checkpoint file of an open_clip-layout folder: SafeTensors preferred.
pub(crate) fn open_clip_checkpoint(files: &dyn ModelFiles) -> Result<Checkpoint, LoadError> {
    for name in [SAFETENSORS_FILE, PYTORCH_FILE] {
        if files.exists(name) {
            return files.checkpoint(name);
        }
    }
    Err(LoadError::MissingFile {
        location: files.location(),
        file: format!("{} (or {})", SAFETENSORS_FILE, PYTORCH_FILE),
        hint: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_blocks_and_projections() {
        let keys = OpenClipKeys;
        assert_eq!(
            keys.source("visual.blocks.3.attn.in_proj.weight"),
            Source::Key("visual.transformer.resblocks.3.attn.in_proj_weight".into())
        );
        assert_eq!(
            keys.source("text.blocks.0.mlp.fc2.bias"),
            Source::Key("transformer.resblocks.0.mlp.c_proj.bias".into())
        );
        assert_eq!(
            keys.source("text.proj.weight"),
            Source::Transposed("text_projection".into())
        );
        assert_eq!(
            keys.source("text.ln_final.weight"),
            Source::Key("ln_final.weight".into())
        );
        assert_eq!(
            keys.source("logit_scale"),
            Source::Key("logit_scale".into())
        );
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        let config: Value = serde_json::json!({"model_cfg": {"embed_dim": 512,
            "vision_cfg": {"ls_init_value": 1e-5}, "text_cfg": {}}});
        assert!(matches!(
            clip_config(&config),
            Err(LoadError::Unsupported { .. })
        ));
        let config: Value = serde_json::json!({"embed_dim": 512, "vision_cfg": {}, "text_cfg": {"pool_type": "last"}});
        assert!(matches!(
            clip_config(&config),
            Err(LoadError::Unsupported { .. })
        ));
    }
}
