//! Hugging Face transformers' `CLIPModel` (`config.json` + `model.safetensors`).
//!
//! Keys: `vision_model.embeddings.{patch_embedding.weight, class_embedding,
//! position_embedding.weight}`, `vision_model.pre_layrnorm` (sic), `vision_model.encoder.layers.{i}
//! .{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}`,
//! `vision_model.post_layernorm`, `visual_projection.weight`; `text_model.embeddings.
//! {token_embedding, position_embedding}.weight`, `text_model.encoder.layers.{i}…`,
//! `text_model.final_layer_norm`, `text_projection.weight`; `logit_scale`.

use burn::tensor::Device;

use super::files::ModelFiles;
use super::json::Json;
use super::loaded::{Family, LoadError, LoadedClip, build};
use super::open_clip::split_block;
use crate::clip::config::{Activation, ClipConfig, ClipTextConfig, TextConfig, VisionConfig};
use crate::clip::preprocess::{OPENAI_MEAN, OPENAI_STD, PreprocessConfig, ResizeMode};
use crate::clip::tokenizer::{ClipBpeTokenizer, TextTokenizer};
use crate::weights::{KeyMap, Source};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";

fn block(prefix: &str, index: &str, rest: &str) -> Source {
    let base = format!("{prefix}.encoder.layers.{index}");
    let qkv = |param: &str| {
        Source::Concat(
            ["q", "k", "v"]
                .iter()
                .map(|p| format!("{base}.self_attn.{p}_proj.{param}"))
                .collect(),
        )
    };
    match rest {
        "attn.in_proj.weight" => qkv("weight"),
        "attn.in_proj.bias" => qkv("bias"),
        _ => Source::Key(format!(
            "{base}.{}",
            rest.replacen("ln_1", "layer_norm1", 1)
                .replacen("ln_2", "layer_norm2", 1)
                .replacen("attn.out_proj", "self_attn.out_proj", 1)
        )),
    }
}

pub struct HfClipKeys;

impl KeyMap for HfClipKeys {
    fn source(&self, canonical: &str) -> Source {
        if let Some((index, rest)) = split_block(canonical, "visual") {
            return block("vision_model", index, rest);
        }
        if let Some((index, rest)) = split_block(canonical, "text") {
            return block("text_model", index, rest);
        }
        let key = match canonical {
            "visual.patch_embed.weight" => {
                "vision_model.embeddings.patch_embedding.weight".to_string()
            }
            "visual.class_embedding" => "vision_model.embeddings.class_embedding".to_string(),
            "visual.positional_embedding" => {
                "vision_model.embeddings.position_embedding.weight".to_string()
            }
            "visual.proj.weight" => "visual_projection.weight".to_string(),
            "text.token_embedding.weight" => {
                "text_model.embeddings.token_embedding.weight".to_string()
            }
            "text.positional_embedding" => {
                "text_model.embeddings.position_embedding.weight".to_string()
            }
            "text.proj.weight" => "text_projection.weight".to_string(),
            other => {
                if let Some(rest) = other.strip_prefix("visual.ln_pre.") {
                    format!("vision_model.pre_layrnorm.{rest}")
                } else if let Some(rest) = other.strip_prefix("visual.ln_post.") {
                    format!("vision_model.post_layernorm.{rest}")
                } else if let Some(rest) = other.strip_prefix("text.ln_final.") {
                    format!("text_model.final_layer_norm.{rest}")
                } else {
                    other.to_string()
                }
            }
        };
        Source::Key(key)
    }
}

fn activation(json: &Json) -> Result<Activation, LoadError> {
    match json.str_or("hidden_act", "quick_gelu")? {
        "quick_gelu" => Ok(Activation::QuickGelu),
        "gelu" => Ok(Activation::Gelu),
        other => Err(json.unsupported(format!("hidden_act `{other}`"))),
    }
}

pub(crate) fn clip_config(config: &serde_json::Value) -> Result<ClipConfig, LoadError> {
    let root = Json::new(CONFIG_FILE, config);
    let model_type = root.str_or("model_type", "clip")?;
    if model_type != "clip" {
        return Err(root.unsupported(format!(
            "model_type `{model_type}` (this loader reads CLIPModel)"
        )));
    }
    let vision = root.child("vision_config");
    let text = root.child("text_config");
    let vocab_size = text.usize_or("vocab_size", 49408)?;
    let eos = text.usize_or("eos_token_id", 49407)?;
    // Old configs say eos_token_id = 2 and mean "pool at the highest id" (end-of-text).
    let eot_token_id = if eos == 2 {
        vocab_size.saturating_sub(1)
    } else {
        eos
    } as u32;
    let width = vision.usize_or("hidden_size", 768)?;
    let text_width = text.usize_or("hidden_size", 512)?;
    Ok(ClipConfig {
        embed_dim: root.usize_or("projection_dim", 512)?,
        vision: VisionConfig {
            image_size: vision.usize_or("image_size", 224)?,
            patch_size: vision.usize_or("patch_size", 32)?,
            width,
            layers: vision.usize_or("num_hidden_layers", 12)?,
            heads: vision.usize_or("num_attention_heads", 12)?,
            mlp_width: vision.usize_or("intermediate_size", 3072)?,
            activation: activation(&vision)?,
            layer_norm_eps: vision.f64_or("layer_norm_eps", 1e-5)?,
            pre_norm: true,
            patch_bias: false,
        },
        text: TextConfig::Clip(ClipTextConfig {
            context_length: text.usize_or("max_position_embeddings", 77)?,
            vocab_size,
            width: text_width,
            layers: text.usize_or("num_hidden_layers", 12)?,
            heads: text.usize_or("num_attention_heads", 8)?,
            mlp_width: text.usize_or("intermediate_size", 2048)?,
            activation: activation(&text)?,
            layer_norm_eps: text.f64_or("layer_norm_eps", 1e-5)?,
            eot_token_id,
        }),
    })
}

/// `preprocessor_config.json` when present; CLIP's defaults otherwise. Resizing and cropping
/// follow open_clip's pipeline for every family.
fn preprocess_config(
    files: &dyn ModelFiles,
    image_size: usize,
) -> Result<PreprocessConfig, LoadError> {
    if !files.exists(PREPROCESSOR_FILE) {
        return Ok(PreprocessConfig::openai(image_size));
    }
    let value = files.read_json(PREPROCESSOR_FILE)?;
    let json = Json::new(PREPROCESSOR_FILE, &value);
    let resample = json.usize_or("resample", 3)?;
    if resample != 3 {
        return Err(json.unsupported(format!("resample {resample} (only 3, bicubic)")));
    }
    let crop = json.child("crop_size");
    let size = if crop.value.is_object() {
        crop.usize_or("height", image_size)?
    } else {
        json.usize_or("crop_size", image_size)?
    };
    Ok(PreprocessConfig {
        image_size: size,
        mean: json.triple_or("image_mean", OPENAI_MEAN)?,
        std: json.triple_or("image_std", OPENAI_STD)?,
        resize_mode: ResizeMode::Shortest,
    })
}

pub fn load(files: &dyn ModelFiles, device: &Device) -> Result<LoadedClip, LoadError> {
    let config = files.read_json(CONFIG_FILE)?;
    let clip = clip_config(&config)?;
    let preprocess = preprocess_config(files, clip.vision.image_size)?;
    let context_length = clip.text.context_length();
    files.require(
        WEIGHTS_FILE,
        " (older repos have only pytorch_model.bin; their model.safetensors is on the hub's refs/pr branches)",
    )?;
    let checkpoint = files.checkpoint(WEIGHTS_FILE)?;
    let model = build(
        clip,
        checkpoint,
        &HfClipKeys,
        "Hugging Face CLIPModel",
        device,
    )?;
    Ok(LoadedClip {
        family: Family::HfClip,
        model,
        tokenizer: TextTokenizer::Bpe(ClipBpeTokenizer::openai(context_length)),
        preprocess,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_fused_attention_to_separate_projections() {
        let keys = HfClipKeys;
        assert_eq!(
            keys.source("text.blocks.1.attn.in_proj.bias"),
            Source::Concat(vec![
                "text_model.encoder.layers.1.self_attn.q_proj.bias".into(),
                "text_model.encoder.layers.1.self_attn.k_proj.bias".into(),
                "text_model.encoder.layers.1.self_attn.v_proj.bias".into(),
            ])
        );
        assert_eq!(
            keys.source("visual.ln_pre.weight"),
            Source::Key("vision_model.pre_layrnorm.weight".into())
        );
        assert_eq!(
            keys.source("visual.blocks.0.ln_2.bias"),
            Source::Key("vision_model.encoder.layers.0.layer_norm2.bias".into())
        );
    }
}
