//! Support and query images → CLIP embeddings under a prompt mode, through the embedding cache.
//! The mask comes from a mask file beside the image, from SAM 2's automatic masks, or nowhere.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use super::cache::{EmbeddingCache, key, sha256_hex};
use super::features::{FeatureError, FeatureSet, check_labels};
use super::finetune::TokenSet;
use super::head_file::PromptMode;
use crate::clip::load::LoadedClip;
use crate::clip::preprocess::Pixels8;
use crate::clip::vision::VisionTransformer;
use crate::dataset::{ClassFolders, IMAGE_EXTENSIONS};
use crate::focus::{self, Focus, Mask};
use crate::imaging;
use crate::sam2::Sam2Predictor;
use crate::sam2::automatic_mask_generator::{GeneratorSettings, MaskChoice, find_region};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{path}: {detail}")]
    Image { path: String, detail: String },
    #[error("{0}")]
    Focus(String),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error("every image failed; the first: {0}")]
    Nothing(String),
}

/// Where masks come from.
pub enum MaskSource {
    /// No mask (the prompt mode must be `none`).
    None,
    /// `<folder>/<class>/<image stem>.png` for a support set; a single file for one query.
    Folder(PathBuf),
    File(PathBuf),
    /// A region from SAM 2's automatic masks (the largest that is not background).
    Sam2 {
        predictor: Box<Sam2Predictor>,
        /// What identifies the weights and settings in cache keys (file hash, settings).
        identity: String,
        settings: GeneratorSettings,
    },
}

impl MaskSource {
    /// What the head file records as the training masks' origin.
    pub fn describe(&self) -> String {
        match self {
            MaskSource::None => "none".into(),
            MaskSource::Folder(_) | MaskSource::File(_) => "mask files".into(),
            MaskSource::Sam2 { identity, .. } => identity.clone(),
        }
    }
}

/// What is computed per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The image embedding.
    Embedding,
    /// The tokens entering image-tower block `n` (a fine-tune trains the blocks from there).
    TokensBefore(usize),
}

impl Target {
    fn key(self) -> String {
        match self {
            Target::Embedding => "embedding".into(),
            Target::TokensBefore(block) => format!("tokens before block {block}"),
        }
    }
}

pub struct Embedder<'a> {
    pub clip: &'a LoadedClip,
    pub prompt: PromptMode,
    focus: Focus,
    pub masks: MaskSource,
    pub cache: Option<EmbeddingCache>,
    pub device: Device,
    pub target: Target,
    /// An image tower used instead of the model's (a fine-tuned copy); the cache is then off.
    vision: Option<VisionTransformer>,
}

/// One embedded image.
pub struct Embedded {
    pub values: Vec<f32>,
    pub cache_key: String,
    pub from_cache: bool,
    /// Something the user should know (no region found, …).
    pub warning: Option<String>,
}

impl<'a> Embedder<'a> {
    pub fn new(
        clip: &'a LoadedClip,
        prompt: PromptMode,
        masks: MaskSource,
        cache: Option<EmbeddingCache>,
        device: Device,
    ) -> Result<Self, EmbedError> {
        let focus = Focus::from_method(&prompt.focus, &prompt.settings)
            .map_err(|error| EmbedError::Focus(error.to_string()))?;
        if prompt.needs_mask() && matches!(masks, MaskSource::None) {
            return Err(EmbedError::Focus(format!(
                "prompt `{}` needs masks: give mask files or SAM 2 weights",
                prompt.focus
            )));
        }
        Ok(Self {
            clip,
            prompt,
            focus,
            masks,
            cache,
            device,
            target: Target::Embedding,
            vision: None,
        })
    }

    /// Computes `target` instead of the embedding.
    pub fn with_target(mut self, target: Target) -> Result<Self, EmbedError> {
        if let (Target::TokensBefore(_), Focus::Attention(_)) = (target, &self.focus) {
            return Err(EmbedError::Focus(
                "fine-tuning the image tower takes a visual prompt (overlay, blur, crop, binary, grey) or none, not the attention focus".into(),
            ));
        }
        self.target = target;
        Ok(self)
    }

    /// Embeds through `vision` (a fine-tuned copy of the model's tower); caching is switched off,
    /// the cache keys naming the model's own tower.
    pub fn with_vision(mut self, vision: VisionTransformer) -> Self {
        self.vision = Some(vision);
        self.cache = None;
        self
    }

    /// Embeds one image (`path` names it in messages and finds its mask file).
    pub fn embed(
        &self,
        path: &Path,
        bytes: &[u8],
        relative: Option<&Path>,
    ) -> Result<Embedded, EmbedError> {
        let image_error = |detail: String| EmbedError::Image {
            path: path.display().to_string(),
            detail,
        };
        let image_hash = sha256_hex(bytes);
        let mask_file = match (&self.masks, relative) {
            _ if !self.prompt.needs_mask() => None,
            (MaskSource::Folder(dir), Some(relative)) => {
                Some(mask_file_for(dir, relative).ok_or_else(|| {
                    image_error(format!(
                        "no mask file for it under {} (expected {}.png)",
                        dir.display(),
                        relative.with_extension("").display()
                    ))
                })?)
            }
            (MaskSource::Folder(dir), None) => {
                return Err(image_error(format!(
                    "a mask folder ({}) needs images inside a class folder",
                    dir.display()
                )));
            }
            (MaskSource::File(file), _) => Some(file.clone()),
            _ => None,
        };
        let mask_bytes = mask_file
            .as_ref()
            .map(|file| {
                std::fs::read(file)
                    .map_err(|error| image_error(format!("mask {}: {error}", file.display())))
            })
            .transpose()?;
        let mask_identity = match (&mask_bytes, &self.masks) {
            (Some(bytes), _) => format!("mask {}", sha256_hex(bytes)),
            (None, MaskSource::Sam2 { identity, .. }) if self.prompt.needs_mask() => {
                identity.clone()
            }
            _ => "none".into(),
        };
        let mode = format!("{} {}", self.prompt.key(), self.target.key());
        let cache_key = key(
            &image_hash,
            &self.clip.model.fingerprint,
            &mode,
            &mask_identity,
        );
        if let Some(values) = self.cache.as_ref().and_then(|cache| cache.get(&cache_key)) {
            return Ok(Embedded {
                values,
                cache_key,
                from_cache: true,
                warning: None,
            });
        }
        let decoded =
            imaging::decode_image(bytes).map_err(|error| image_error(error.to_string()))?;
        let pixels = Pixels8::from_image(&decoded.pixels);
        let mut warning = None;
        let mask = if !self.prompt.needs_mask() {
            None
        } else if let Some(bytes) = &mask_bytes {
            let decoded = imaging::decode_image(bytes)
                .map_err(|error| image_error(format!("its mask: {error}")))?;
            Some(Mask::from_image(&decoded.pixels))
        } else if let MaskSource::Sam2 {
            predictor,
            settings,
            ..
        } = &self.masks
        {
            let embedded = predictor.set_image(&pixels);
            match pollster::block_on(find_region(
                predictor,
                &embedded,
                settings,
                MaskChoice::Largest,
            )) {
                Ok((mask, _)) => Some(mask.to_focus_mask()),
                Err(error) => {
                    // The same fallback at prediction time keeps training and use consistent.
                    warning = Some(format!("{error}; the whole image is the region"));
                    Some(whole_image(&pixels))
                }
            }
        } else {
            None
        };
        let vision = self.vision.as_ref().unwrap_or(&self.clip.model.vision);
        let (preprocess, mask) = (&self.clip.preprocess, mask.as_ref());
        let data = match self.target {
            Target::Embedding => focus::encode_focused_with(
                vision,
                preprocess,
                &pixels,
                mask,
                &self.focus,
                &self.device,
            )
            .map(|tensor| tensor.into_data()),
            Target::TokensBefore(block) => focus::tokens_focused(
                vision,
                preprocess,
                &pixels,
                mask,
                &self.focus,
                block,
                &self.device,
            )
            .map(|tensor| tensor.into_data()),
        }
        .map_err(|error| image_error(error.to_string()))?;
        let values = data
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|error| image_error(format!("reading the embedding back: {error:?}")))?;
        if let Some(cache) = &self.cache
            && let Err(error) = cache.put(&cache_key, &values)
        {
            warning = Some(format!("not cached ({}: {error})", cache.dir().display()));
        }
        Ok(Embedded {
            values,
            cache_key,
            from_cache: false,
            warning,
        })
    }
}

fn whole_image(pixels: &Pixels8) -> Mask {
    Mask {
        width: pixels.width,
        height: pixels.height,
        weights: vec![1.0; pixels.width * pixels.height],
    }
}

/// `<dir>/<class>/<stem>.<image extension>` for the image at `relative` (`<class>/<file>`).
pub fn mask_file_for(dir: &Path, relative: &Path) -> Option<PathBuf> {
    let stem = dir.join(relative.with_extension(""));
    IMAGE_EXTENSIONS
        .iter()
        .map(|extension| stem.with_extension(extension))
        .find(|path| path.is_file())
}

/// What embedding a support set produced: one row per usable image (an embedding, or the
/// tokens a fine-tune starts from), its label, and what happened on the way.
pub struct SupportEmbeddings {
    pub classes: Vec<String>,
    /// Values per row.
    pub width: usize,
    pub values: Vec<f32>,
    pub labels: Vec<usize>,
    /// Per embedded image: its path and cache key (the run's identity is built from these).
    pub images: Vec<(PathBuf, String)>,
    pub from_cache: usize,
    /// Images that could not be used, with why, and other warnings.
    pub skipped: Vec<String>,
    pub warnings: Vec<String>,
}

impl SupportEmbeddings {
    /// The rows as unit embeddings.
    pub fn features(&self) -> Result<FeatureSet, FeatureError> {
        FeatureSet::new(
            self.classes.clone(),
            self.width,
            self.values.clone(),
            self.labels.clone(),
        )
    }

    /// The rows as `[tokens, width]` token grids (a fine-tune's input).
    pub fn tokens(&self, width: usize) -> TokenSet {
        TokenSet {
            classes: self.classes.clone(),
            tokens: self.width / width.max(1),
            width,
            values: self.values.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// Embeds every image of a folder-per-class set; unreadable images are skipped and reported.
pub fn embed_support(
    folders: &ClassFolders,
    embedder: &Embedder,
    progress: &mut dyn FnMut(usize, usize, &Path),
) -> Result<SupportEmbeddings, EmbedError> {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut from_cache = 0;
    let mut dim = 0;
    for (index, image) in folders.images.iter().enumerate() {
        progress(index, folders.images.len(), &image.path);
        let relative = image.path.strip_prefix(&folders.root).ok();
        let result = std::fs::read(&image.path)
            .map_err(|error| EmbedError::Image {
                path: image.path.display().to_string(),
                detail: error.to_string(),
            })
            .and_then(|bytes| embedder.embed(&image.path, &bytes, relative));
        match result {
            Ok(embedded) => {
                dim = embedded.values.len();
                values.extend_from_slice(&embedded.values);
                labels.push(image.class_index);
                images.push((image.path.clone(), embedded.cache_key));
                from_cache += usize::from(embedded.from_cache);
                if let Some(warning) = embedded.warning {
                    warnings.push(format!("{}: {warning}", image.path.display()));
                }
            }
            Err(error) => skipped.push(error.to_string()),
        }
    }
    progress(folders.images.len(), folders.images.len(), &folders.root);
    if labels.is_empty() {
        return Err(EmbedError::Nothing(
            skipped.first().cloned().unwrap_or_default(),
        ));
    }
    check_labels(&folders.classes, &labels)?;
    Ok(SupportEmbeddings {
        classes: folders.classes.clone(),
        width: dim,
        values,
        labels,
        images,
        from_cache,
        skipped,
        warnings,
    })
}
