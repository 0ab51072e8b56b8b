//! `sam2/modeling/sam/transformer.py`: the two-way transformer of the mask decoder — prompt
//! tokens attend to the image and the image attends back to the tokens.

use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor};

use crate::clip::transformer::{layer_norm, linear};
use crate::sam2::sam2_utils::{Mlp, MlpActivation, MlpShape, scaled_dot_product_attention};
use crate::weights::{Weights, WeightsError};

/// `Attention` with separate q/k/v projections to `embedding_dim / downsample_rate`.
#[derive(Module, Debug)]
pub struct Attention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    fn load(
        weights: &mut Weights,
        name: &str,
        embedding_dim: usize,
        heads: usize,
        downsample_rate: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let internal = embedding_dim / downsample_rate;
        let proj = |weights: &mut Weights, part: &str, inputs: usize, outputs: usize| {
            linear(
                weights,
                &format!("{name}.{part}"),
                inputs,
                outputs,
                true,
                device,
            )
        };
        Ok(Self {
            q_proj: proj(weights, "q_proj", embedding_dim, internal)?,
            k_proj: proj(weights, "k_proj", embedding_dim, internal)?,
            v_proj: proj(weights, "v_proj", embedding_dim, internal)?,
            out_proj: proj(weights, "out_proj", internal, embedding_dim)?,
            heads,
        })
    }

    /// `[b, n, c]` queries against `[b, m, c]` keys/values; a batch of 1 on either side
    /// broadcasts.
    pub fn forward(&self, q: Tensor<3>, k: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
        let split = |x: Tensor<3>| {
            let [batch, tokens, width] = x.dims();
            x.reshape([batch, tokens, self.heads, width / self.heads])
                .swap_dims(1, 2)
        };
        let q = split(self.q_proj.forward(q));
        let k = split(self.k_proj.forward(k));
        let v = split(self.v_proj.forward(v));
        // Either side may be one tensor shared by the batch (batch 1); the result has the
        // broadcast batch.
        let out = scaled_dot_product_attention(q, k, v);
        let [batch, heads, tokens, head_dim] = out.dims();
        let out = out
            .swap_dims(1, 2)
            .reshape([batch, tokens, heads * head_dim]);
        self.out_proj.forward(out)
    }
}

#[derive(Module, Debug)]
pub struct TwoWayAttentionBlock {
    pub self_attn: Attention,
    pub norm1: LayerNorm,
    pub cross_attn_token_to_image: Attention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    pub norm3: LayerNorm,
    pub norm4: LayerNorm,
    pub cross_attn_image_to_token: Attention,
    #[module(skip)]
    pub skip_first_layer_pe: bool,
}

#[derive(Clone, Copy)]
pub(crate) struct TwoWayShape {
    pub depth: usize,
    pub embedding_dim: usize,
    pub heads: usize,
    pub mlp_dim: usize,
    pub downsample_rate: usize,
}

impl TwoWayAttentionBlock {
    fn load(
        weights: &mut Weights,
        name: &str,
        shape: TwoWayShape,
        skip_first_layer_pe: bool,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let dim = shape.embedding_dim;
        let norm = |weights: &mut Weights, part: &str| {
            layer_norm(weights, &format!("{name}.{part}"), dim, 1e-5, device)
        };
        let attention = |weights: &mut Weights, part: &str, rate: usize| {
            Attention::load(
                weights,
                &format!("{name}.{part}"),
                dim,
                shape.heads,
                rate,
                device,
            )
        };
        Ok(Self {
            self_attn: attention(weights, "self_attn", 1)?,
            norm1: norm(weights, "norm1")?,
            cross_attn_token_to_image: attention(
                weights,
                "cross_attn_token_to_image",
                shape.downsample_rate,
            )?,
            norm2: norm(weights, "norm2")?,
            mlp: Mlp::load(
                weights,
                &format!("{name}.mlp"),
                MlpShape {
                    input: dim,
                    hidden: shape.mlp_dim,
                    output: dim,
                    layers: 2,
                    activation: MlpActivation::Relu,
                    sigmoid_output: false,
                },
                device,
            )?,
            norm3: norm(weights, "norm3")?,
            norm4: norm(weights, "norm4")?,
            cross_attn_image_to_token: attention(
                weights,
                "cross_attn_image_to_token",
                shape.downsample_rate,
            )?,
            skip_first_layer_pe,
        })
    }

    pub fn forward(
        &self,
        queries: Tensor<3>,
        keys: Tensor<3>,
        query_pe: Tensor<3>,
        key_pe: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let queries = if self.skip_first_layer_pe {
            self.self_attn
                .forward(queries.clone(), queries.clone(), queries)
        } else {
            let q = queries.clone() + query_pe.clone();
            queries.clone() + self.self_attn.forward(q.clone(), q, queries)
        };
        let queries = self.norm1.forward(queries);

        let q = queries.clone() + query_pe.clone();
        let k = keys.clone() + key_pe.clone();
        let queries = self
            .norm2
            .forward(queries + self.cross_attn_token_to_image.forward(q, k, keys.clone()));

        let queries = self
            .norm3
            .forward(queries.clone() + self.mlp.forward(queries));

        let q = queries.clone() + query_pe;
        let k = keys.clone() + key_pe;
        let keys = self.norm4.forward(
            keys + self
                .cross_attn_image_to_token
                .forward(k, q, queries.clone()),
        );
        (queries, keys)
    }
}

#[derive(Module, Debug)]
pub struct TwoWayTransformer {
    pub layers: Vec<TwoWayAttentionBlock>,
    pub final_attn_token_to_image: Attention,
    pub norm_final_attn: LayerNorm,
}

impl TwoWayTransformer {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        shape: TwoWayShape,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            layers: (0..shape.depth)
                .map(|index| {
                    TwoWayAttentionBlock::load(
                        weights,
                        &format!("{name}.layers.{index}"),
                        shape,
                        index == 0,
                        device,
                    )
                })
                .collect::<Result<_, _>>()?,
            final_attn_token_to_image: Attention::load(
                weights,
                &format!("{name}.final_attn_token_to_image"),
                shape.embedding_dim,
                shape.heads,
                shape.downsample_rate,
                device,
            )?,
            norm_final_attn: layer_norm(
                weights,
                &format!("{name}.norm_final_attn"),
                shape.embedding_dim,
                1e-5,
                device,
            )?,
        })
    }

    /// `image`: `[b, hw, c]` or `[1, hw, c]` (the same for every prompt), `image_pe`:
    /// `[1, hw, c]`, `tokens`: `[b, n, c]` → (`[b, n, c]` processed tokens, `[b, hw, c]` processed
    /// image).
    pub fn forward(
        &self,
        image: Tensor<3>,
        image_pe: Tensor<3>,
        tokens: Tensor<3>,
    ) -> (Tensor<3>, Tensor<3>) {
        let mut queries = tokens.clone();
        let mut keys = image;
        for layer in &self.layers {
            (queries, keys) = layer.forward(queries, keys, tokens.clone(), image_pe.clone());
        }
        let q = queries.clone() + tokens;
        let k = keys.clone() + image_pe;
        let attended = self.final_attn_token_to_image.forward(q, k, keys.clone());
        (self.norm_final_attn.forward(queries + attended), keys)
    }
}
