//! The image half of `sam2/modeling/sam2_base.py` (`SAM2Base.forward_image` and the SAM heads),
//! its loader for Meta's checkpoints, and the burnpack format the browser reads.

use burn::module::{Module, Param};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Tensor};

use super::backbones::image_encoder::ImageEncoder;
use super::config::Sam2Config;
use super::sam::mask_decoder::MaskDecoder;
use super::sam::prompt_encoder::PromptEncoder;
use super::sam2_utils::MetaKeys;
use crate::clip::transformer::parameter;
use crate::weights::burnpack::{BurnpackRefusal, open_burnpack};
use crate::weights::{Checkpoint, Weights, WeightsError};

#[derive(Debug, thiserror::Error)]
pub enum Sam2Error {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(
        "{source_name} is not a SAM 2 checkpoint: it has no `image_encoder.trunk.patch_embed.proj.weight` (Meta's `.pt` files keep the weights under a `model` key)"
    )]
    NotSam2 { source_name: String },
    #[error(
        "{source_name} has a Hiera trunk of width {embed_dim} and {depth} blocks, which is none of SAM 2's published models (tiny 96/12, small 96/16, base+ 112/24, large 144/48); give its config explicitly"
    )]
    UnknownModel {
        source_name: String,
        embed_dim: usize,
        depth: usize,
    },
    #[error("SAM 2 config `{name}`: {problem}")]
    Config { name: String, problem: String },
    #[error("not a MedFocus SAM 2 burnpack: {0}")]
    Burnpack(String),
    #[error("the SAM 2 burnpack is cut short or damaged: {0}")]
    BurnpackDamaged(String),
    #[error("{0}")]
    Prompt(String),
    #[error("reading results back from the device: {0}")]
    Device(String),
    #[error(transparent)]
    Image(#[from] crate::imaging::ImageError),
}

/// Burnpack metadata keys.
const META_KIND: &str = "medfocus.kind";
const META_CONFIG: &str = "medfocus.sam2.config";
const META_QUANTIZATION: &str = "medfocus.sam2.quantization";
const KIND: &str = "sam2-image";

pub use crate::weights::burnpack::is_burnpack;

/// Everything the image predictor needs from one image.
#[derive(Clone, Debug)]
pub struct ImageFeatures {
    /// `[1, e, e, d]`, with `no_mem_embed` added.
    pub image_embed: Tensor<4>,
    /// The 4× and 8× levels after `conv_s0`/`conv_s1`: `[1, 4e, 4e, d/8]`, `[1, 2e, 2e, d/4]`.
    pub high_res: Option<[Tensor<4>; 2]>,
}

#[derive(Module, Debug)]
pub struct Sam2Model {
    pub image_encoder: ImageEncoder,
    pub sam_prompt_encoder: PromptEncoder,
    pub sam_mask_decoder: MaskDecoder,
    /// `[1, 1, d]`.
    pub no_mem_embed: Param<Tensor<3>>,
    #[module(skip)]
    pub config: Sam2Config,
}

impl Sam2Model {
    fn build(
        weights: &mut Weights,
        config: &Sam2Config,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let d_model = config.neck.d_model;
        Ok(Self {
            image_encoder: ImageEncoder::load(weights, "image_encoder", config, device)?,
            sam_prompt_encoder: PromptEncoder::load(weights, "sam_prompt_encoder", config, device)?,
            sam_mask_decoder: MaskDecoder::load(weights, "sam_mask_decoder", config, device)?,
            no_mem_embed: parameter(weights, "no_mem_embed", [1, 1, d_model], device)?,
            config: config.clone(),
        })
    }

    fn check(config: &Sam2Config) -> Result<(), Sam2Error> {
        match config.inconsistency() {
            Some(problem) => Err(Sam2Error::Config {
                name: config.name.clone(),
                problem,
            }),
            None => Ok(()),
        }
    }

    /// The config a checkpoint's shapes name (the four published models differ in trunk width
    /// and depth).
    pub fn detect_config(checkpoint: &Checkpoint) -> Result<Sam2Config, Sam2Error> {
        let source_name = checkpoint.source_name().to_string();
        let embed_dim = checkpoint
            .shape("image_encoder.trunk.patch_embed.proj.weight")
            .map(|shape| shape[0])
            .ok_or(Sam2Error::NotSam2 {
                source_name: source_name.clone(),
            })?;
        let depth = checkpoint.count_indexed("image_encoder.trunk.blocks");
        Sam2Config::preset_for(embed_dim, depth).ok_or(Sam2Error::UnknownModel {
            source_name,
            embed_dim,
            depth,
        })
    }

    /// Builds the model from a checkpoint in Meta's layout (`{"model": state_dict}` already
    /// read into `checkpoint`). The video modules' tensors (memory attention and encoder,
    /// object pointers) are left unused; every tensor the image predictor needs must be there
    /// with its shape.
    pub fn from_checkpoint(
        mut checkpoint: Checkpoint,
        config: Option<&Sam2Config>,
        device: &Device,
    ) -> Result<Self, Sam2Error> {
        checkpoint.strip_common_prefix("model.");
        let config = match config {
            Some(config) => config.clone(),
            None => Self::detect_config(&checkpoint)?,
        };
        Self::check(&config)?;
        let mut weights = Weights::new(checkpoint, &MetaKeys);
        let model = Self::build(&mut weights, &config, device)?;
        weights.finish(&config.name)?;
        Ok(model)
    }

    /// Reads Meta's `.pt` (or a SafeTensors copy of its state dict).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(
        path: &std::path::Path,
        config: Option<&Sam2Config>,
        device: &Device,
    ) -> Result<Self, Sam2Error> {
        Self::from_checkpoint(Checkpoint::open(path)?, config, device)
    }

    /// Any SAM 2 weights file: Meta's `.pt`, a SafeTensors copy, or our burnpack (f32 or int8,
    /// config inside). `config` (a `Sam2Config` JSON file's contents, parsed) is needed only for
    /// a checkpoint that is not one of the published models. Returns the model and a label of
    /// its weights (`f32`, `int8-per-tensor`, …).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_file(
        path: &std::path::Path,
        config: Option<&Sam2Config>,
        device: &Device,
    ) -> Result<(Self, String), Sam2Error> {
        use std::io::Read;
        let mut head = [0u8; 4];
        let is_burnpack = std::fs::File::open(path)
            .and_then(|mut file| file.read_exact(&mut head))
            .is_ok()
            && is_burnpack(&head);
        if is_burnpack {
            let bytes = std::fs::read(path)
                .map_err(|error| Sam2Error::Burnpack(format!("{}: {error}", path.display())))?;
            return Self::from_burnpack_for(bytes, device);
        }
        Ok((Self::load(path, config, device)?, "f32".to_string()))
    }

    /// The model's shape with zeros, to be filled from a burnpack that holds `held` values (a
    /// config asking for more is refused before it is allocated).
    fn skeleton(config: &Sam2Config, held: u64, device: &Device) -> Result<Self, WeightsError> {
        let mut weights = Weights::skeleton(&MetaKeys, "the burnpack", held);
        Self::build(&mut weights, config, device)
    }

    pub fn device(&self) -> Device {
        self.no_mem_embed.device()
    }

    /// `forward_image` + the predictor's feature preparation: `[1, 3, S, S]` normalised pixels
    /// → image embedding and high-resolution features.
    pub fn encode_image(&self, input: Tensor<4>) -> ImageFeatures {
        let levels = self.image_encoder.forward(input);
        let d_model = self.config.neck.d_model;
        let mut image_embed = levels[levels.len() - 1].clone();
        if self.config.directly_add_no_mem_embed {
            image_embed = image_embed + self.no_mem_embed.val().reshape([1, 1, 1, d_model]);
        }
        let decoder = &self.sam_mask_decoder;
        let high_res = match (&decoder.conv_s0, &decoder.conv_s1) {
            (Some(s0), Some(s1)) => {
                Some([s0.forward(levels[0].clone()), s1.forward(levels[1].clone())])
            }
            _ => None,
        };
        ImageFeatures {
            image_embed,
            high_res,
        }
    }

    /// The model as burnpack bytes: our module tree's tensors (float or int8-quantized) and the
    /// config in the metadata — what the browser loads.
    pub fn to_burnpack(&self, quantization: &str) -> Result<Vec<u8>, Sam2Error> {
        let config = serde_json::to_string(&self.config)
            .map_err(|error| Sam2Error::Burnpack(error.to_string()))?;
        let mut store = BurnpackStore::from_bytes(None)
            .metadata(META_KIND, KIND)
            .metadata(META_CONFIG, config)
            .metadata(META_QUANTIZATION, quantization);
        self.save_into(&mut store)
            .map_err(|error| Sam2Error::Burnpack(error.to_string()))?;
        let bytes = store
            .get_bytes()
            .map_err(|error| Sam2Error::Burnpack(error.to_string()))?;
        Ok(bytes.to_vec())
    }

    /// Reads what [`Sam2Model::to_burnpack`] wrote. Returns the model and its quantization label.
    pub fn from_burnpack(bytes: Vec<u8>, device: &Device) -> Result<(Self, String), Sam2Error> {
        let bad = |detail: String| Sam2Error::Burnpack(detail);
        let file_bytes = bytes.len() as u64;
        let reader = open_burnpack(bytes).map_err(|refusal| match refusal {
            BurnpackRefusal::Damaged(detail) => Sam2Error::BurnpackDamaged(detail),
            BurnpackRefusal::Foreign(detail) => bad(detail),
        })?;
        let metadata = reader.metadata();
        if metadata.get(META_KIND).map(String::as_str) != Some(KIND) {
            return Err(bad(
                "it carries no SAM 2 model (written by another program?)".into(),
            ));
        }
        let config: Sam2Config = metadata
            .get(META_CONFIG)
            .ok_or_else(|| bad("its config is missing".into()))
            .and_then(|text| {
                serde_json::from_str(text).map_err(|error| bad(format!("its config: {error}")))
            })?;
        let quantization = metadata
            .get(META_QUANTIZATION)
            .cloned()
            .unwrap_or_else(|| "none".to_string());
        Self::check(&config)?;
        let tensors = reader
            .into_tensors()
            .map_err(|error| bad(format!("{error}")))?;
        // The values the file's tensors hold, as their headers say, and never more than its
        // bytes (every stored value takes at least one): what the config may ask to allocate.
        let held = tensors
            .iter()
            .map(|tensor| tensor.shape.iter().map(|&dim| dim as u64).product::<u64>())
            .fold(0u64, u64::saturating_add)
            .min(file_bytes);
        let mut model = Self::skeleton(&config, held, device)?;
        // What `BurnpackStore::apply_to` checks: every tensor fits, none is missing.
        let result = model.apply(tensors, None, None, false);
        if !result.errors.is_empty() {
            return Err(bad(format!("import errors: {:?}", result.errors)));
        }
        if !result.missing.is_empty() {
            return Err(bad(format!("missing tensors: {:?}", result.missing)));
        }
        Ok((model, quantization))
    }
}
