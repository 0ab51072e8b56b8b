//! Support images → CLIP embeddings under a focus, through the embedding cache. The mask comes
//! from a mask file beside the image, from SAM 2's automatic masks, or nowhere; the chain itself
//! is the pipeline's ([`crate::pipeline::Encoder`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cache::{EmbeddingCache, RegionCache, key, sha256_hex};
use super::finetune::TokenSet;
use crate::clip::load::LoadedClip;
use crate::clip::preprocess::Pixels8;
use crate::dataset::{Dataset, IMAGE_EXTENSIONS, Sample};
use crate::focus::Focus;
use crate::focus::FocusMode;
use crate::heads::features::{FeatureError, FeatureSet};
use crate::pipeline::{Encoder, MaskSource, Region, RegionOrigin, Segmenter, decode};
use crate::sam2::automatic_mask_generator::MaskChoice;

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

/// Where a support set's masks come from.
pub enum SupportMasks<'a> {
    /// No mask (the focus must be `none`).
    None,
    /// `<folder>/<class>/<image stem>.png`, laid out like the images.
    Folder(PathBuf),
    /// A region from SAM 2's automatic masks (the largest that is not background).
    Sam2(&'a Segmenter),
    /// Each image's ground-truth masks (a data set's, such as BUSI's `<name>_mask.png`),
    /// united: the oracle, focus apart from SAM 2's quality.
    GroundTruth(BTreeMap<PathBuf, Vec<PathBuf>>),
}

impl SupportMasks<'_> {
    /// What the head file records as the training masks' origin.
    pub fn describe(&self) -> String {
        match self {
            SupportMasks::None => "none".into(),
            SupportMasks::Folder(_) => "mask files".into(),
            SupportMasks::Sam2(segmenter) => segmenter.identity.clone(),
            SupportMasks::GroundTruth(_) => "ground-truth masks".into(),
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

/// Support images → embeddings (or tokens) through the pipeline's [`Encoder`], by way of the
/// embedding cache.
pub struct Embedder<'a> {
    encoder: Encoder<'a>,
    /// The focus as the head file records it (its cache key is part of every image's key).
    pub focus: FocusMode,
    masks: SupportMasks<'a>,
    pub cache: Option<EmbeddingCache>,
    /// SAM 2's regions by image (beside the embedding cache): every focus method shares one
    /// SAM 2 pass per image.
    regions: Option<RegionCache>,
    pub target: Target,
}

/// One embedded image.
pub struct Embedded {
    pub values: Vec<f32>,
    pub cache_key: String,
    pub from_cache: bool,
    /// SAM 2 ran for this image (a region was not in the region cache).
    pub segmented: bool,
    /// Something the user should know (no region found, …).
    pub warning: Option<String>,
    /// Where the region that focused it came from (none for a plain embedding or one read from
    /// the cache).
    pub region: Option<RegionOrigin>,
}

impl<'a> Embedder<'a> {
    pub fn new(
        clip: &'a LoadedClip,
        focus: FocusMode,
        masks: SupportMasks<'a>,
        cache: Option<EmbeddingCache>,
    ) -> Result<Self, EmbedError> {
        let mut encoder =
            Encoder::new(clip, &focus).map_err(|error| EmbedError::Focus(error.to_string()))?;
        encoder
            .require_region(
                !matches!(masks, SupportMasks::None),
                "give --masks gt (the set's own masks), a --masks folder or SAM 2 weights (--sam2)",
            )
            .map_err(|error| EmbedError::Focus(error.to_string()))?;
        if let SupportMasks::Sam2(segmenter) = &masks {
            encoder = encoder.with_segmenter(segmenter);
        }
        Ok(Self {
            encoder,
            focus,
            masks,
            regions: cache.as_ref().map(EmbeddingCache::regions),
            cache,
            target: Target::Embedding,
        })
    }

    /// Computes `target` instead of the embedding.
    pub fn with_target(mut self, target: Target) -> Result<Self, EmbedError> {
        if let (Target::TokensBefore(_), Focus::Attention(_)) = (target, &self.encoder.focus) {
            return Err(EmbedError::Focus(
                "fine-tuning the image tower takes a visual prompt (overlay, blur, crop, binary, grey) or none, not the attention focus".into(),
            ));
        }
        self.target = target;
        Ok(self)
    }

    /// The mask source of one image and what identifies it in cache keys.
    fn mask_source(
        &self,
        path: &Path,
        relative: Option<&Path>,
    ) -> Result<(String, MaskSource), EmbedError> {
        let image_error = |detail: String| EmbedError::Image {
            path: path.display().to_string(),
            detail,
        };
        if !self.focus.needs_mask() {
            return Ok(("none".into(), MaskSource::None));
        }
        match (&self.masks, relative) {
            (SupportMasks::Folder(dir), Some(relative)) => {
                let file = mask_file_for(dir, relative).ok_or_else(|| {
                    image_error(format!(
                        "no mask file for it under {} (expected {}.png)",
                        dir.display(),
                        relative.with_extension("").display()
                    ))
                })?;
                let bytes = std::fs::read(&file)
                    .map_err(|error| image_error(format!("mask {}: {error}", file.display())))?;
                Ok((
                    format!("mask {}", sha256_hex(&bytes)),
                    MaskSource::MaskImage(bytes),
                ))
            }
            (SupportMasks::Folder(dir), None) => Err(image_error(format!(
                "a mask folder ({}) needs images inside a class folder",
                dir.display()
            ))),
            (SupportMasks::GroundTruth(masks), _) => {
                let files = masks
                    .get(path)
                    .filter(|files| !files.is_empty())
                    .ok_or_else(|| {
                        image_error(
                            "no ground-truth mask for it (<name>_mask.png beside it)".into(),
                        )
                    })?;
                let mut identity = String::from("ground truth");
                let mut images = Vec::with_capacity(files.len());
                for file in files {
                    let bytes = std::fs::read(file).map_err(|error| {
                        image_error(format!("mask {}: {error}", file.display()))
                    })?;
                    identity.push(' ');
                    identity.push_str(&sha256_hex(&bytes));
                    images.push(bytes);
                }
                Ok((identity, MaskSource::GroundTruth(images)))
            }
            (SupportMasks::Sam2(segmenter), _) => Ok((
                segmenter.identity.clone(),
                MaskSource::Sam2Automatic(MaskChoice::Largest),
            )),
            (SupportMasks::None, _) => Ok(("none".into(), MaskSource::None)),
        }
    }

    /// The region of one image under this embedder's masks (`None` for the focus `none`), SAM 2's
    /// from the region cache when it is there; and whether SAM 2 ran for it.
    pub fn region(
        &self,
        path: &Path,
        bytes: &[u8],
        relative: Option<&Path>,
    ) -> Result<(Option<Region>, bool), EmbedError> {
        let (mask_identity, source) = self.mask_source(path, relative)?;
        let image_sha256 = sha256_hex(bytes);
        self.region_of(path, bytes, &image_sha256, None, &mask_identity, &source)
    }

    /// The region of an image whose content hash is `image_sha256`; `pixels`, when the caller
    /// has decoded them already (else they are decoded here, and only when the region cache
    /// does not have the region).
    fn region_of(
        &self,
        path: &Path,
        bytes: &[u8],
        image_sha256: &str,
        pixels: Option<&Pixels8>,
        mask_identity: &str,
        source: &MaskSource,
    ) -> Result<(Option<Region>, bool), EmbedError> {
        let image_error = |detail: String| EmbedError::Image {
            path: path.display().to_string(),
            detail,
        };
        // SAM 2's region depends on the image, the weights and the generator's settings only:
        // the other focus methods' embeddings of this image reuse it.
        let region_key = match (source, &self.regions) {
            (MaskSource::Sam2Automatic(_), Some(_)) => Some(key(
                image_sha256,
                mask_identity,
                "sam2 automatic region",
                &serde_json::to_string(&self.encoder.automatic_settings()).unwrap_or_default(),
            )),
            _ => None,
        };
        let cached = region_key
            .as_ref()
            .zip(self.regions.as_ref())
            .and_then(|(key, regions)| regions.get(key));
        if let Some(region) = cached {
            return Ok((Some(region), false));
        }
        let decoded;
        let pixels = match pixels {
            Some(pixels) => pixels,
            None => {
                decoded = decode(bytes).map_err(|error| image_error(error.to_string()))?;
                &decoded
            }
        };
        let region = pollster::block_on(self.encoder.region(pixels, source))
            .map_err(|error| image_error(error.to_string()))?;
        if let (Some(region), Some(key), Some(regions)) = (&region, &region_key, &self.regions) {
            // A failed write only costs a SAM 2 pass next time.
            let _ = regions.put(key, region);
        }
        Ok((region, matches!(source, MaskSource::Sam2Automatic(_))))
    }

    /// Embeds one image (`path` names it in messages; `relative`, its path inside the support
    /// folder, finds its mask file).
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
        let (mask_identity, source) = self.mask_source(path, relative)?;
        let mode = format!("{} {}", self.focus.key(), self.target.key());
        let image_sha256 = sha256_hex(bytes);
        let cache_key = key(
            &image_sha256,
            &self.encoder.clip.model.fingerprint,
            &mode,
            &mask_identity,
        );
        if let Some(values) = self.cache.as_ref().and_then(|cache| cache.get(&cache_key)) {
            return Ok(Embedded {
                values,
                cache_key,
                from_cache: true,
                region: None,
                segmented: false,
                warning: None,
            });
        }
        let pixels = decode(bytes).map_err(|error| image_error(error.to_string()))?;
        let (region, segmented) = self.region_of(
            path,
            bytes,
            &image_sha256,
            Some(&pixels),
            &mask_identity,
            &source,
        )?;
        let mut warning = region.as_ref().and_then(|region| region.warning.clone());
        let data = match self.target {
            Target::Embedding => self
                .encoder
                .embed(&pixels, region.as_ref())
                .map(|tensor| tensor.into_data()),
            Target::TokensBefore(block) => self
                .encoder
                .tokens_before(&pixels, region.as_ref(), block)
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
            region: region.as_ref().map(|region| region.origin),
            values,
            cache_key,
            from_cache: false,
            segmented,
            warning,
        })
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
    /// How many embedded images each region origin focused (`sam2-automatic`, `whole-image`
    /// where SAM 2 found none, …); images from the cache are not counted.
    pub regions: BTreeMap<&'static str, usize>,
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

    /// [`SupportEmbeddings::features`] where a class may have no image (a federated site's).
    pub fn features_allowing_absent_classes(&self) -> Result<FeatureSet, FeatureError> {
        FeatureSet::new_allowing_absent_classes(
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

/// One sample of `set`, read (its file, or an archive's image) and embedded: what training and
/// the evaluation both do per image.
pub fn embed_sample(
    set: &Dataset,
    sample: &Sample,
    embedder: &Embedder,
) -> Result<Embedded, EmbedError> {
    let bytes = set.read(sample).map_err(|detail| EmbedError::Image {
        path: sample.path.display().to_string(),
        detail,
    })?;
    embedder.embed(&sample.path, &bytes, Some(Path::new(&sample.relative)))
}

/// Embeds the `samples` of `set` (indices into `set.samples`, in that order); unreadable images
/// are skipped and reported.
pub fn embed_support(
    set: &Dataset,
    samples: &[usize],
    embedder: &Embedder,
    progress: &mut dyn FnMut(usize, usize, &Path),
) -> Result<SupportEmbeddings, EmbedError> {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    let mut images = Vec::new();
    let mut skipped = Vec::new();
    let mut warnings = Vec::new();
    let mut from_cache = 0;
    let mut regions = BTreeMap::new();
    let mut dim = 0;
    for (done, &index) in samples.iter().enumerate() {
        let sample = &set.samples[index];
        progress(done, samples.len(), &sample.path);
        match embed_sample(set, sample, embedder) {
            Ok(embedded) => {
                dim = embedded.values.len();
                values.extend_from_slice(&embedded.values);
                labels.push(sample.class_index);
                images.push((sample.path.clone(), embedded.cache_key));
                from_cache += usize::from(embedded.from_cache);
                if let Some(origin) = embedded.region {
                    *regions.entry(origin.name()).or_insert(0) += 1;
                }
                if let Some(warning) = embedded.warning {
                    warnings.push(format!("{}: {warning}", sample.path.display()));
                }
            }
            Err(error) => skipped.push(error.to_string()),
        }
    }
    progress(samples.len(), samples.len(), &set.root);
    if labels.is_empty() {
        return Err(EmbedError::Nothing(
            skipped.first().cloned().unwrap_or_default(),
        ));
    }
    Ok(SupportEmbeddings {
        classes: set.classes.clone(),
        width: dim,
        values,
        labels,
        images,
        from_cache,
        regions,
        skipped,
        warnings,
    })
}
