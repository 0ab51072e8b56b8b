//! CLIP configurations: plain structs with the published models as named presets.

use serde::{Deserialize, Serialize};

/// The MLP's nonlinearity. OpenAI's CLIP was trained with QuickGELU; most open_clip models
/// (LAION, DataComp) and timm/BERT towers use exact GELU. Loading a model with the wrong one
/// silently degrades it, so it is part of the config, never guessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    QuickGelu,
    Gelu,
}

/// A ViT image tower: OpenAI/open_clip layout (`ln_pre`, no patch bias) or timm's (patch bias,
/// no pre-norm, LayerNorm eps 1e-6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisionConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp_width: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
    /// LayerNorm on the embedded tokens before the first block (CLIP's `ln_pre`).
    pub pre_norm: bool,
    /// The patch embedding has a bias (timm) or not (CLIP).
    pub patch_bias: bool,
}

impl VisionConfig {
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Patches plus the class token.
    pub fn tokens(&self) -> usize {
        self.grid_size() * self.grid_size() + 1
    }

    fn clip(
        image_size: usize,
        patch_size: usize,
        width: usize,
        layers: usize,
        activation: Activation,
    ) -> Self {
        Self {
            image_size,
            patch_size,
            width,
            layers,
            heads: width / 64,
            mlp_width: width * 4,
            activation,
            layer_norm_eps: 1e-5,
            pre_norm: true,
            patch_bias: false,
        }
    }
}

/// CLIP's own causal text transformer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipTextConfig {
    pub context_length: usize,
    pub vocab_size: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp_width: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
    /// The text is pooled at the first end-of-text token.
    pub eot_token_id: u32,
}

impl ClipTextConfig {
    fn clip(width: usize, layers: usize, activation: Activation) -> Self {
        Self {
            context_length: 77,
            vocab_size: 49408,
            width,
            layers,
            heads: width / 64,
            mlp_width: width * 4,
            activation,
            layer_norm_eps: 1e-5,
            eot_token_id: 49407,
        }
    }
}

/// How a BERT text tower's pooled output becomes the joint embedding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextProjection {
    /// One bias-free linear layer.
    Linear,
    /// Linear → GELU → linear, both bias-free, hidden width `(width + embed_dim) / 2` (open_clip's `mlp`).
    Mlp { hidden: usize },
}

/// A BERT encoder as text tower (BiomedCLIP's PubMedBERT), pooled at the CLS token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    /// Tokens fed to the model (open_clip's `context_length`, 256 for BiomedCLIP).
    pub context_length: usize,
    pub projection: TextProjection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextConfig {
    Clip(ClipTextConfig),
    Bert(BertTextConfig),
}

impl TextConfig {
    pub fn context_length(&self) -> usize {
        match self {
            TextConfig::Clip(config) => config.context_length,
            TextConfig::Bert(config) => config.context_length,
        }
    }
}

/// A whole CLIP model: two towers meeting in an `embed_dim` space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    pub embed_dim: usize,
    pub vision: VisionConfig,
    pub text: TextConfig,
}

impl ClipConfig {
    /// Sizes that the towers cannot run with, as a sentence (None when consistent).
    pub fn inconsistency(&self) -> Option<String> {
        let vision = &self.vision;
        if vision.image_size == 0 {
            // A tower without patches: nothing to embed, pool or explain.
            return Some("image size 0: the tower would have no patches".into());
        }
        if vision.patch_size == 0 || vision.image_size % vision.patch_size != 0 {
            return Some(format!(
                "image size {} is not a multiple of patch size {}",
                vision.image_size, vision.patch_size
            ));
        }
        if vision.heads == 0 || vision.width % vision.heads != 0 {
            return Some(format!(
                "vision width {} does not split into {} heads",
                vision.width, vision.heads
            ));
        }
        let (width, heads, context, vocabulary) = match &self.text {
            TextConfig::Clip(text) => {
                (text.width, text.heads, text.context_length, text.vocab_size)
            }
            TextConfig::Bert(text) => (
                text.hidden_size,
                text.heads,
                text.context_length,
                text.vocab_size,
            ),
        };
        if context < 2 || vocabulary == 0 {
            // A text row holds at least its start and end tokens, from a vocabulary.
            return Some(format!(
                "text context length {context} with {vocabulary} tokens: a text needs at least \
                 2 positions and a vocabulary"
            ));
        }
        if heads == 0 || width % heads != 0 {
            return Some(format!(
                "text width {width} does not split into {heads} heads"
            ));
        }
        None
    }

    /// OpenAI ViT-B/32 (QuickGELU), open_clip `ViT-B-32-quickgelu`.
    pub fn openai_vit_b_32() -> Self {
        Self::openai(
            VisionConfig::clip(224, 32, 768, 12, Activation::QuickGelu),
            512,
            512,
        )
    }

    /// OpenAI ViT-B/16 (QuickGELU), open_clip `ViT-B-16-quickgelu`.
    pub fn openai_vit_b_16() -> Self {
        Self::openai(
            VisionConfig::clip(224, 16, 768, 12, Activation::QuickGelu),
            512,
            512,
        )
    }

    /// OpenAI ViT-L/14 (QuickGELU), open_clip `ViT-L-14-quickgelu`.
    pub fn openai_vit_l_14() -> Self {
        Self::openai(
            VisionConfig::clip(224, 14, 1024, 24, Activation::QuickGelu),
            768,
            768,
        )
    }

    /// open_clip `ViT-B-32` (exact GELU: LAION-2B, DataComp and other open_clip trainings).
    pub fn open_clip_vit_b_32() -> Self {
        Self::with_gelu(Self::openai_vit_b_32())
    }

    /// open_clip `ViT-B-16` (exact GELU).
    pub fn open_clip_vit_b_16() -> Self {
        Self::with_gelu(Self::openai_vit_b_16())
    }

    /// open_clip `ViT-L-14` (exact GELU).
    pub fn open_clip_vit_l_14() -> Self {
        Self::with_gelu(Self::openai_vit_l_14())
    }

    /// BiomedCLIP: timm ViT-B/16 and PubMedBERT (uncased, 256 tokens, MLP projection).
    pub fn biomedclip_vit_b_16() -> Self {
        Self {
            embed_dim: 512,
            vision: VisionConfig {
                image_size: 224,
                patch_size: 16,
                width: 768,
                layers: 12,
                heads: 12,
                mlp_width: 3072,
                activation: Activation::Gelu,
                layer_norm_eps: 1e-6,
                pre_norm: false,
                patch_bias: true,
            },
            text: TextConfig::Bert(BertTextConfig {
                vocab_size: 30522,
                hidden_size: 768,
                layers: 12,
                heads: 12,
                intermediate_size: 3072,
                max_position_embeddings: 512,
                type_vocab_size: 2,
                layer_norm_eps: 1e-12,
                pad_token_id: 0,
                context_length: 256,
                projection: TextProjection::Mlp { hidden: 640 },
            }),
        }
    }

    fn openai(vision: VisionConfig, text_width: usize, embed_dim: usize) -> Self {
        let activation = vision.activation;
        let text_layers = 12;
        Self {
            embed_dim,
            vision,
            text: TextConfig::Clip(ClipTextConfig::clip(text_width, text_layers, activation)),
        }
    }

    fn with_gelu(mut self) -> Self {
        self.vision.activation = Activation::Gelu;
        if let TextConfig::Clip(text) = &mut self.text {
            text.activation = Activation::Gelu;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_published_sizes() {
        let b16 = ClipConfig::openai_vit_b_16();
        assert_eq!(
            (b16.vision.tokens(), b16.vision.heads, b16.embed_dim),
            (197, 12, 512)
        );
        let l14 = ClipConfig::openai_vit_l_14();
        assert_eq!(
            (l14.vision.tokens(), l14.vision.heads, l14.embed_dim),
            (257, 16, 768)
        );
        let TextConfig::Clip(text) = &l14.text else {
            panic!("CLIP text tower")
        };
        assert_eq!((text.width, text.heads), (768, 12));
        assert_eq!(ClipConfig::openai_vit_b_32().vision.tokens(), 50);
        assert_eq!(
            ClipConfig::open_clip_vit_b_16().vision.activation,
            Activation::Gelu
        );
        assert_eq!(ClipConfig::biomedclip_vit_b_16().text.context_length(), 256);
    }

    #[test]
    fn a_tower_without_patches_is_inconsistent() {
        let mut config = ClipConfig::openai_vit_b_16();
        assert_eq!(config.inconsistency(), None);
        config.vision.image_size = 0;
        assert!(config.inconsistency().unwrap().contains("no patches"));
    }
}
