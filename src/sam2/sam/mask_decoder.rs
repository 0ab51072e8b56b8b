//! `sam2/modeling/sam/mask_decoder.py`: output tokens + prompt tokens through the two-way
//! transformer; the image side is upscaled 4× (mixing in the encoder's 4× and 8× features) and
//! dotted with per-mask hypernetwork outputs; IoU and object-score heads read their tokens.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Int, Tensor};

use super::transformer::{TwoWayShape, TwoWayTransformer};
use crate::clip::transformer::linear;
use crate::kernels::gelu;
use crate::sam2::config::Sam2Config;
use crate::sam2::sam2_utils::{
    ConvTranspose2x2, Mlp, MlpActivation, MlpShape, conv1x1, layer_norm_2d, stacked_rows,
};
use crate::weights::{Weights, WeightsError};

/// What the decoder returns for `b` prompts.
#[derive(Debug, Clone)]
pub struct DecoderOutput {
    /// `[b, m, 4e, 4e]` low-resolution mask logits (`m` = 3 with multimask output, else 1).
    pub masks: Tensor<4>,
    /// `[b, m]` predicted IoU of each mask.
    pub iou_predictions: Tensor<2>,
    /// `[b, 1]` logit that the object is present at all.
    pub object_score_logits: Tensor<2>,
}

/// The object-score head: an MLP in every published config, a plain linear layer otherwise.
#[derive(Module, Debug)]
pub enum ObjectScoreHead {
    Mlp(Mlp),
    Linear(Linear),
}

#[derive(Module, Debug)]
pub struct MaskDecoder {
    pub transformer: TwoWayTransformer,
    /// `obj_score_token` (when predicted), `iou_token`, `mask_tokens` stacked: `[1 + 1 + 4, c]`.
    pub output_tokens: Param<Tensor<2>>,
    pub upscaling_conv1: ConvTranspose2x2,
    pub upscaling_norm: LayerNorm,
    pub upscaling_conv2: ConvTranspose2x2,
    /// Applied to the encoder's finest two levels once per image (`conv_s0`, `conv_s1`).
    pub conv_s0: Option<Linear>,
    pub conv_s1: Option<Linear>,
    pub output_hypernetworks_mlps: Vec<Mlp>,
    pub iou_prediction_head: Mlp,
    pub pred_obj_score_head: Option<ObjectScoreHead>,
    #[module(skip)]
    pub num_mask_tokens: usize,
    #[module(skip)]
    pub dynamic_multimask_via_stability: bool,
    #[module(skip)]
    pub stability_delta: f32,
    #[module(skip)]
    pub stability_thresh: f32,
}

impl MaskDecoder {
    /// Not split: one `take` per checkpoint tensor in Meta's module order, to be read against
    /// `mask_decoder.py`.
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        config: &Sam2Config,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let dim = config.neck.d_model;
        let decoder = &config.decoder;
        let num_mask_tokens = decoder.num_multimask_outputs + 1;
        let mut tokens = Vec::new();
        if decoder.pred_obj_scores {
            tokens.push((format!("{name}.obj_score_token.weight"), 1));
        }
        tokens.push((format!("{name}.iou_token.weight"), 1));
        tokens.push((format!("{name}.mask_tokens.weight"), num_mask_tokens));
        let output_tokens = stacked_rows(weights, &tokens, dim, device)?;
        let mlp = |weights: &mut Weights, key: String, shape: MlpShape| {
            Mlp::load(weights, &key, shape, device)
        };
        let hypernetworks = (0..num_mask_tokens)
            .map(|index| {
                mlp(
                    weights,
                    format!("{name}.output_hypernetworks_mlps.{index}"),
                    MlpShape {
                        input: dim,
                        hidden: dim,
                        output: dim / 8,
                        layers: 3,
                        activation: MlpActivation::Relu,
                        sigmoid_output: false,
                    },
                )
            })
            .collect::<Result<_, _>>()?;
        let iou_prediction_head = mlp(
            weights,
            format!("{name}.iou_prediction_head"),
            MlpShape {
                input: dim,
                hidden: decoder.iou_head_hidden_dim,
                output: num_mask_tokens,
                layers: decoder.iou_head_depth,
                activation: MlpActivation::Relu,
                sigmoid_output: config.iou_prediction_use_sigmoid,
            },
        )?;
        let pred_obj_score_head = decoder
            .pred_obj_scores
            .then(|| {
                let key = format!("{name}.pred_obj_score_head");
                let head = if decoder.pred_obj_scores_mlp {
                    ObjectScoreHead::Mlp(mlp(
                        weights,
                        key,
                        MlpShape {
                            input: dim,
                            hidden: dim,
                            output: 1,
                            layers: 3,
                            activation: MlpActivation::Relu,
                            sigmoid_output: false,
                        },
                    )?)
                } else {
                    ObjectScoreHead::Linear(linear(weights, &key, dim, 1, true, device)?)
                };
                Ok::<_, WeightsError>(head)
            })
            .transpose()?;
        let high_res = config.use_high_res_features;
        Ok(Self {
            transformer: TwoWayTransformer::load(
                weights,
                &format!("{name}.transformer"),
                TwoWayShape {
                    depth: decoder.transformer_depth,
                    embedding_dim: dim,
                    heads: decoder.transformer_heads,
                    mlp_dim: decoder.transformer_mlp_dim,
                    downsample_rate: decoder.attention_downsample_rate,
                },
                device,
            )?,
            output_tokens,
            upscaling_conv1: ConvTranspose2x2::load(
                weights,
                &format!("{name}.output_upscaling.0"),
                dim,
                dim / 4,
                device,
            )?,
            upscaling_norm: layer_norm_2d(
                weights,
                &format!("{name}.output_upscaling.1"),
                dim / 4,
                device,
            )?,
            upscaling_conv2: ConvTranspose2x2::load(
                weights,
                &format!("{name}.output_upscaling.3"),
                dim / 4,
                dim / 8,
                device,
            )?,
            conv_s0: high_res
                .then(|| conv1x1(weights, &format!("{name}.conv_s0"), dim, dim / 8, device))
                .transpose()?,
            conv_s1: high_res
                .then(|| conv1x1(weights, &format!("{name}.conv_s1"), dim, dim / 4, device))
                .transpose()?,
            output_hypernetworks_mlps: hypernetworks,
            iou_prediction_head,
            pred_obj_score_head,
            num_mask_tokens,
            dynamic_multimask_via_stability: decoder.dynamic_multimask_via_stability,
            stability_delta: decoder.dynamic_multimask_stability_delta,
            stability_thresh: decoder.dynamic_multimask_stability_thresh,
        })
    }

    /// `image_embedding`: `[1, e, e, c]` (shared by all prompts) or `[b, e, e, c]`;
    /// `image_pe`: `[e, e, c]`; `sparse`: `[b, n, c]`; `dense`: `[b, e, e, c]`, or `[1, e, e, c]`
    /// when every prompt has the same (no mask input); `high_res`: the 4× and 8× features after
    /// `conv_s0`/`conv_s1`, `[1, 4e, 4e, c/8]` and `[1, 2e, 2e, c/4]`.
    ///
    /// What is the same for every prompt stays one tensor of batch 1 and broadcasts: the image
    /// plus the dense embedding, and in the transformer's first layer the image's keys, values
    /// and queries (the image only becomes per-prompt once it has attended to the tokens).
    /// Meta's automatic generator repeats the image embedding for each prompt instead; the
    /// values are the same, the work and memory are not (a 64-point batch copied 64 × 4 MiB).
    ///
    /// Not split: Meta's `predict_masks` step by step, to be read against `mask_decoder.py`.
    pub fn forward(
        &self,
        image_embedding: Tensor<4>,
        image_pe: Tensor<3>,
        sparse: Tensor<3>,
        dense: Tensor<4>,
        high_res: Option<[Tensor<4>; 2]>,
        multimask_output: bool,
    ) -> DecoderOutput {
        let [batch, _, width] = sparse.dims();
        let [_, height, side, _] = dense.dims();
        let output_tokens = self.output_tokens.val();
        let token_count = output_tokens.dims()[0];
        let first_mask_token = token_count - self.num_mask_tokens;
        let tokens = Tensor::cat(
            vec![
                output_tokens
                    .unsqueeze::<3>()
                    .expand([batch, token_count, width]),
                sparse,
            ],
            1,
        );
        let image = image_embedding + dense;
        let shared_batch = image.dims()[0];
        let image_pe = image_pe.reshape([1, height * side, width]);
        let (hs, image) = self.transformer.forward(
            image.reshape([shared_batch, height * side, width]),
            image_pe,
            tokens,
        );
        let iou_token = hs
            .clone()
            .narrow(1, first_mask_token - 1, 1)
            .squeeze_dim::<2>(1);
        // Per prompt now: the image attended to each prompt's tokens in the transformer.
        let image_batch = image.dims()[0];
        let image = image.reshape([image_batch, height, side, width]);

        let mut upscaled = self.upscaling_conv1.forward(image);
        if let Some([_, s1]) = &high_res {
            upscaled = upscaled + s1.clone();
        }
        upscaled = gelu(self.upscaling_norm.forward(upscaled));
        upscaled = self.upscaling_conv2.forward(upscaled);
        if let Some([s0, _]) = &high_res {
            upscaled = upscaled + s0.clone();
        }
        let upscaled = gelu(upscaled);
        let [_, mask_h, mask_w, channels] = upscaled.dims();

        let hyper: Vec<Tensor<2>> = self
            .output_hypernetworks_mlps
            .iter()
            .enumerate()
            .map(|(index, mlp)| {
                mlp.forward(
                    hs.clone()
                        .narrow(1, first_mask_token + index, 1)
                        .squeeze_dim::<2>(1),
                )
            })
            .collect();
        let hyper = Tensor::stack::<3>(hyper, 1);
        let masks = hyper
            .matmul(
                upscaled
                    .reshape([image_batch, mask_h * mask_w, channels])
                    .swap_dims(1, 2),
            )
            .reshape([batch, self.num_mask_tokens, mask_h, mask_w]);
        let iou_predictions = self.iou_prediction_head.forward(iou_token);
        let object_score_logits = match &self.pred_obj_score_head {
            Some(head) => {
                let token = hs.narrow(1, 0, 1).squeeze_dim::<2>(1);
                match head {
                    ObjectScoreHead::Mlp(mlp) => mlp.forward(token),
                    ObjectScoreHead::Linear(linear) => linear.forward(token),
                }
            }
            None => Tensor::ones([batch, 1], &iou_predictions.device()) * 10.0,
        };

        let (masks, iou_predictions) = if multimask_output {
            let others = self.num_mask_tokens - 1;
            (
                masks.narrow(1, 1, others),
                iou_predictions.narrow(1, 1, others),
            )
        } else if self.dynamic_multimask_via_stability {
            self.dynamic_multimask_via_stability(masks, iou_predictions)
        } else {
            (masks.narrow(1, 0, 1), iou_predictions.narrow(1, 0, 1))
        };
        DecoderOutput {
            masks,
            iou_predictions,
            object_score_logits,
        }
    }

    /// The single-mask token's output when its mask is stable (IoU of the mask thresholded at
    /// ±delta ≥ thresh), else the multimask output with the best predicted IoU. All tensor ops.
    fn dynamic_multimask_via_stability(
        &self,
        masks: Tensor<4>,
        iou_predictions: Tensor<2>,
    ) -> (Tensor<4>, Tensor<2>) {
        let [batch, tokens, h, w] = masks.dims();
        let multi = masks.clone().narrow(1, 1, tokens - 1);
        let multi_iou = iou_predictions.clone().narrow(1, 1, tokens - 1);
        let best: Tensor<2, Int> = multi_iou.clone().argmax(1);
        let best_mask = multi.gather(
            1,
            best.clone()
                .reshape([batch, 1, 1, 1])
                .expand([batch, 1, h, w]),
        );
        let best_iou = multi_iou.gather(1, best);
        let single = masks.narrow(1, 0, 1);
        let single_iou = iou_predictions.narrow(1, 0, 1);
        let flat = single.clone().reshape([batch, h * w]);
        let area_i = flat
            .clone()
            .greater_elem(self.stability_delta)
            .float()
            .sum_dim(1);
        let area_u = flat.greater_elem(-self.stability_delta).float().sum_dim(1);
        let score = (area_i / area_u.clone().clamp_min(1.0)).mask_fill(area_u.equal_elem(0.0), 1.0);
        let stable = score.greater_equal_elem(self.stability_thresh);
        let masks = best_mask.mask_where(
            stable
                .clone()
                .reshape([batch, 1, 1, 1])
                .expand([batch, 1, h, w]),
            single,
        );
        let iou = best_iou.mask_where(stable, single_iou);
        (masks, iou)
    }
}
