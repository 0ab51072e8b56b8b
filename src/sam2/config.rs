//! SAM 2 / SAM 2.1 configurations: the numbers of Meta's YAML configs (`configs/sam2.1/*.yaml`)
//! for the parts an image predictor uses, with the published models as named presets. SAM 2.0
//! and 2.1 differ only in their video (memory) modules, so one preset serves both.

use serde::{Deserialize, Serialize};

/// `sam2.modeling.backbones.hieradet.Hiera`'s constructor arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HieraConfig {
    pub embed_dim: usize,
    pub num_heads: usize,
    /// Blocks per stage.
    pub stages: Vec<usize>,
    /// Blocks with global (unwindowed) attention.
    pub global_att_blocks: Vec<usize>,
    /// Window size per stage.
    pub window_spec: Vec<usize>,
    /// The background position embedding's grid, bicubically resized to the patch grid.
    pub window_pos_embed_bkg_spatial_size: [usize; 2],
    /// How many stage transitions pool the queries (and halve the resolution).
    pub q_pool: usize,
    pub dim_mul: f64,
    pub head_mul: f64,
}

impl HieraConfig {
    fn tiny_like(stages: Vec<usize>, global_att_blocks: Vec<usize>) -> Self {
        Self {
            embed_dim: 96,
            num_heads: 1,
            stages,
            global_att_blocks,
            window_spec: vec![8, 4, 14, 7],
            window_pos_embed_bkg_spatial_size: [7, 7],
            q_pool: 3,
            dim_mul: 2.0,
            head_mul: 2.0,
        }
    }

    pub fn depth(&self) -> usize {
        self.stages.iter().sum()
    }

    /// Index of the last block of each stage.
    pub fn stage_ends(&self) -> Vec<usize> {
        self.stages
            .iter()
            .scan(0, |total, &blocks| {
                *total += blocks;
                Some(*total - 1)
            })
            .collect()
    }

    /// Each block's shape, derived exactly as `Hiera.__init__` does. Note its quirk, kept for
    /// parity: a stage's first block takes the *previous* stage's window size, because the
    /// window is read before the stage counter moves on.
    pub fn blocks(&self) -> Vec<HieraBlockShape> {
        let stage_ends = self.stage_ends();
        let q_pool_blocks: Vec<usize> = stage_ends[..stage_ends.len().saturating_sub(1)]
            .iter()
            .map(|end| end + 1)
            .take(self.q_pool)
            .collect();
        let mut dim = self.embed_dim;
        let mut heads = self.num_heads;
        let mut stage = 1;
        let mut blocks = Vec::with_capacity(self.depth());
        for index in 0..self.depth() {
            let mut dim_out = dim;
            let mut window = self.window_spec[stage - 1];
            if self.global_att_blocks.contains(&index) {
                window = 0;
            }
            if index > 0 && stage_ends.contains(&(index - 1)) {
                dim_out = (dim as f64 * self.dim_mul) as usize;
                heads = (heads as f64 * self.head_mul) as usize;
                stage += 1;
            }
            blocks.push(HieraBlockShape {
                dim,
                dim_out,
                heads,
                window,
                q_pool: q_pool_blocks.contains(&index),
            });
            dim = dim_out;
        }
        blocks
    }

    /// Channels of each stage's output, finest first.
    pub fn stage_channels(&self) -> Vec<usize> {
        let blocks = self.blocks();
        self.stage_ends()
            .iter()
            .map(|&end| blocks[end].dim_out)
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HieraBlockShape {
    pub dim: usize,
    pub dim_out: usize,
    pub heads: usize,
    /// 0: global attention.
    pub window: usize,
    /// Queries are max-pooled 2×2 (the stage's resolution halves here).
    pub q_pool: bool,
}

/// `FpnNeck` with its `PositionEmbeddingSine`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeckConfig {
    pub d_model: usize,
    /// Trunk channels, coarsest first (as in the YAML).
    pub backbone_channel_list: Vec<usize>,
    /// Levels that receive the coarser level's upsampled features.
    pub fpn_top_down_levels: Vec<usize>,
    /// `PositionEmbeddingSine.num_pos_feats`.
    pub position_features: usize,
}

/// The SAM heads as `SAM2Base._build_sam_heads` makes them: those numbers are fixed in Meta's
/// code, not the YAML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecoderConfig {
    pub transformer_depth: usize,
    pub transformer_mlp_dim: usize,
    pub transformer_heads: usize,
    /// Cross-attention's internal width is `d_model / attention_downsample_rate`.
    pub attention_downsample_rate: usize,
    pub num_multimask_outputs: usize,
    pub iou_head_depth: usize,
    pub iou_head_hidden_dim: usize,
    pub mask_in_chans: usize,
    pub pred_obj_scores: bool,
    pub pred_obj_scores_mlp: bool,
    /// Without multimask output, fall back to the best multimask output when the single mask's
    /// stability score is below the threshold (set by `build_sam2`'s post-processing overrides).
    pub dynamic_multimask_via_stability: bool,
    pub dynamic_multimask_stability_delta: f32,
    pub dynamic_multimask_stability_thresh: f32,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            transformer_depth: 2,
            transformer_mlp_dim: 2048,
            transformer_heads: 8,
            attention_downsample_rate: 2,
            num_multimask_outputs: 3,
            iou_head_depth: 3,
            iou_head_hidden_dim: 256,
            mask_in_chans: 16,
            pred_obj_scores: true,
            pred_obj_scores_mlp: true,
            dynamic_multimask_via_stability: true,
            dynamic_multimask_stability_delta: 0.05,
            dynamic_multimask_stability_thresh: 0.98,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sam2Config {
    /// A short name for messages and file headers (`sam2.1-hiera-tiny`).
    pub name: String,
    pub image_size: usize,
    pub hiera: HieraConfig,
    pub neck: NeckConfig,
    /// Coarsest trunk levels dropped after the neck (`ImageEncoder.scalp`).
    pub scalp: usize,
    pub decoder: DecoderConfig,
    /// The 4× and 8× features reach the mask decoder (`use_high_res_features_in_sam`).
    pub use_high_res_features: bool,
    /// The IoU head ends in a sigmoid (`iou_prediction_use_sigmoid`).
    pub iou_prediction_use_sigmoid: bool,
    /// `no_mem_embed` is added to an image's embedding with no memory (`directly_add_no_mem_embed`).
    pub directly_add_no_mem_embed: bool,
}

impl Sam2Config {
    fn hiera(name: &str, hiera: HieraConfig) -> Self {
        let mut backbone_channel_list = hiera.stage_channels();
        backbone_channel_list.reverse();
        Self {
            name: name.to_string(),
            image_size: 1024,
            neck: NeckConfig {
                d_model: 256,
                backbone_channel_list,
                fpn_top_down_levels: vec![2, 3],
                position_features: 256,
            },
            hiera,
            scalp: 1,
            decoder: DecoderConfig::default(),
            use_high_res_features: true,
            iou_prediction_use_sigmoid: true,
            directly_add_no_mem_embed: true,
        }
    }

    /// `sam2.1_hiera_t.yaml` (and `sam2_hiera_t.yaml`).
    pub fn hiera_tiny() -> Self {
        Self::hiera(
            "sam2.1-hiera-tiny",
            HieraConfig::tiny_like(vec![1, 2, 7, 2], vec![5, 7, 9]),
        )
    }

    /// `sam2.1_hiera_s.yaml`.
    pub fn hiera_small() -> Self {
        Self::hiera(
            "sam2.1-hiera-small",
            HieraConfig::tiny_like(vec![1, 2, 11, 2], vec![7, 10, 13]),
        )
    }

    /// `sam2.1_hiera_b+.yaml`.
    pub fn hiera_base_plus() -> Self {
        Self::hiera(
            "sam2.1-hiera-base-plus",
            HieraConfig {
                embed_dim: 112,
                num_heads: 2,
                stages: vec![2, 3, 16, 3],
                global_att_blocks: vec![12, 16, 20],
                window_spec: vec![8, 4, 14, 7],
                window_pos_embed_bkg_spatial_size: [14, 14],
                q_pool: 3,
                dim_mul: 2.0,
                head_mul: 2.0,
            },
        )
    }

    /// `sam2.1_hiera_l.yaml`.
    pub fn hiera_large() -> Self {
        Self::hiera(
            "sam2.1-hiera-large",
            HieraConfig {
                embed_dim: 144,
                num_heads: 2,
                stages: vec![2, 6, 36, 4],
                global_att_blocks: vec![23, 33, 43],
                window_spec: vec![8, 4, 16, 8],
                window_pos_embed_bkg_spatial_size: [7, 7],
                q_pool: 3,
                dim_mul: 2.0,
                head_mul: 2.0,
            },
        )
    }

    pub fn presets() -> Vec<Self> {
        vec![
            Self::hiera_tiny(),
            Self::hiera_small(),
            Self::hiera_base_plus(),
            Self::hiera_large(),
        ]
    }

    /// The preset whose trunk has this width and depth: the four published models differ in
    /// both, so a checkpoint's shapes name its config.
    pub fn preset_for(embed_dim: usize, depth: usize) -> Option<Self> {
        Self::presets()
            .into_iter()
            .find(|config| config.hiera.embed_dim == embed_dim && config.hiera.depth() == depth)
    }

    /// A config from JSON (the schema of this struct; `gen_sam2.py` writes one per model),
    /// with sizes the model can be built from ([`Sam2Config::inconsistency`]).
    pub fn from_json(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("not a SAM 2 config: the file is empty".into());
        }
        let config: Self =
            serde_json::from_str(text).map_err(|error| format!("not a SAM 2 config: {error}"))?;
        match config.inconsistency() {
            Some(problem) => Err(format!("SAM 2 config {}: {problem}", config.name)),
            None => Ok(config),
        }
    }

    /// A config JSON file; the error names the file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        Self::from_json(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// The image encoder's stride to the embedding the decoder sees (16 for every model).
    pub fn backbone_stride(&self) -> usize {
        4 << (self.neck.backbone_channel_list.len() - 1 - self.scalp)
    }

    /// Side of the image embedding (64 at 1024 pixels).
    pub fn embedding_size(&self) -> usize {
        self.image_size / self.backbone_stride()
    }

    /// Side of the low-resolution mask logits (256 at 1024 pixels).
    pub fn low_res_mask_size(&self) -> usize {
        self.embedding_size() * 4
    }

    /// Something the port cannot compute faithfully, or an inconsistent set of numbers.
    ///
    /// Not split: a list of checks, one per thing the port cannot compute or numbers that disagree.
    pub fn inconsistency(&self) -> Option<String> {
        let hiera = &self.hiera;
        let decoder = &self.decoder;
        let sizes = [
            ("image_size", self.image_size),
            ("embed_dim", hiera.embed_dim),
            ("num_heads", hiera.num_heads),
            (
                "window_pos_embed_bkg_spatial_size",
                hiera.window_pos_embed_bkg_spatial_size[0],
            ),
            (
                "window_pos_embed_bkg_spatial_size",
                hiera.window_pos_embed_bkg_spatial_size[1],
            ),
            ("d_model", self.neck.d_model),
            ("transformer_heads", decoder.transformer_heads),
            (
                "attention_downsample_rate",
                decoder.attention_downsample_rate,
            ),
            ("transformer_mlp_dim", decoder.transformer_mlp_dim),
            ("iou_head_depth", decoder.iou_head_depth),
            ("iou_head_hidden_dim", decoder.iou_head_hidden_dim),
            ("mask_in_chans", decoder.mask_in_chans),
            ("num_multimask_outputs", decoder.num_multimask_outputs),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, value)| *value == 0) {
            return Some(format!("{name} must be positive"));
        }
        if !(hiera.dim_mul >= 1.0 && hiera.head_mul >= 1.0) {
            return Some("dim_mul and head_mul must be at least 1".into());
        }
        if decoder.mask_in_chans % 4 != 0 {
            return Some("mask_in_chans must be a multiple of 4".into());
        }
        let stages = hiera.stages.len();
        if stages == 0 || hiera.stages.contains(&0) {
            return Some("every Hiera stage needs at least one block".into());
        }
        if hiera
            .window_spec
            .first()
            .is_none_or(|&window| window == 0 || (self.image_size / 4) % window != 0)
        {
            return Some(format!(
                "the first window size must divide the patch grid ({} for a {}-pixel input)",
                self.image_size / 4,
                self.image_size
            ));
        }
        if hiera.window_spec.len() != stages {
            return Some(format!(
                "window_spec has {} entries for {stages} stages",
                hiera.window_spec.len()
            ));
        }
        if hiera.q_pool >= stages {
            return Some(format!(
                "q_pool {} needs more than {stages} stages",
                hiera.q_pool
            ));
        }
        if self.neck.backbone_channel_list.len() != stages {
            return Some("the neck's channel list does not match the trunk's stages".into());
        }
        let mut channels = hiera.stage_channels();
        channels.reverse();
        if channels != self.neck.backbone_channel_list {
            return Some(format!(
                "the trunk's stage widths {channels:?} differ from the neck's {:?}",
                self.neck.backbone_channel_list
            ));
        }
        if self.scalp >= stages || (self.use_high_res_features && stages - self.scalp < 3) {
            return Some("too few feature levels for the mask decoder".into());
        }
        if self.image_size % (4 << (stages - 1)) != 0 {
            return Some(format!(
                "image size {} is not a multiple of the trunk's stride {}",
                self.image_size,
                4 << (stages - 1)
            ));
        }
        let d_model = self.neck.d_model;
        if d_model % decoder.transformer_heads != 0
            || (d_model / decoder.attention_downsample_rate) % decoder.transformer_heads != 0
            || d_model % 8 != 0
            || self.neck.position_features % 4 != 0
        {
            return Some(format!(
                "d_model {d_model} does not divide into the decoder's heads"
            ));
        }
        for block in hiera.blocks() {
            if block.dim_out % block.heads != 0 {
                return Some(format!(
                    "a Hiera block of width {} cannot have {} heads",
                    block.dim_out, block.heads
                ));
            }
            if block.q_pool && block.window % 2 != 0 {
                return Some("a query-pooling block needs an even window".into());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_consistent_and_distinguishable() {
        for config in Sam2Config::presets() {
            assert_eq!(config.inconsistency(), None, "{}", config.name);
            assert_eq!(config.embedding_size(), 64);
            assert_eq!(config.low_res_mask_size(), 256);
            let found = Sam2Config::preset_for(config.hiera.embed_dim, config.hiera.depth());
            assert_eq!(found.map(|c| c.name), Some(config.name.clone()));
        }
        assert_eq!(
            Sam2Config::hiera_tiny().neck.backbone_channel_list,
            vec![768, 384, 192, 96]
        );
        assert_eq!(
            Sam2Config::hiera_large().neck.backbone_channel_list,
            vec![1152, 576, 288, 144]
        );
    }

    #[test]
    fn impossible_configs_are_refused_not_computed() {
        let mut config = Sam2Config::hiera_tiny();
        config.hiera.num_heads = 0;
        assert_eq!(
            config.inconsistency(),
            Some("num_heads must be positive".into())
        );
        let mut config = Sam2Config::hiera_tiny();
        config.image_size = 1000;
        assert!(config.inconsistency().unwrap().contains("patch grid"));
        let mut config = Sam2Config::hiera_tiny();
        config.decoder.transformer_heads = 0;
        assert!(config.inconsistency().is_some());
        let mut config = Sam2Config::hiera_tiny();
        config.neck.backbone_channel_list.pop();
        assert!(config.inconsistency().is_some());
    }

    #[test]
    fn block_shapes_follow_hiera_init() {
        // sam2.1_hiera_t: stages [1, 2, 7, 2], windows [8, 4, 14, 7], global [5, 7, 9].
        let blocks = Sam2Config::hiera_tiny().hiera.blocks();
        assert_eq!(blocks.len(), 12);
        let windows: Vec<usize> = blocks.iter().map(|b| b.window).collect();
        // A stage's first block keeps the previous stage's window (blocks 1, 3 and 10).
        assert_eq!(windows, vec![8, 8, 4, 4, 14, 0, 14, 0, 14, 0, 14, 7]);
        let pooled: Vec<usize> = (0..12).filter(|&i| blocks[i].q_pool).collect();
        assert_eq!(pooled, vec![1, 3, 10]);
        assert_eq!(
            (blocks[1].dim, blocks[1].dim_out, blocks[1].heads),
            (96, 192, 2)
        );
        assert_eq!((blocks[11].dim_out, blocks[11].heads), (768, 8));
    }
}
