//! The transformer parts the towers share: multi-head attention that accepts an additive bias on
//! its logits (how a mask steers the image tower), the MLP, and CLIP's pre-norm residual block.
//! Also the small builders that turn checked checkpoint tensors into burn modules.

use burn::module::{Module, Param};
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::config::Activation;
use crate::kernels::{gelu, quick_gelu};
use crate::weights::{Weights, WeightsError, transposed_matrix};

/// `[out, in]` (PyTorch's layout) in the checkpoint; burn's `Linear` keeps `[in, out]`, made
/// contiguous here (see [`transposed_matrix`]).
pub(crate) fn linear(
    weights: &mut Weights,
    name: &str,
    inputs: usize,
    outputs: usize,
    bias: bool,
    device: &Device,
) -> Result<Linear, WeightsError> {
    let weight = weights.take(&format!("{name}.weight"), &[outputs, inputs])?;
    let weight = Tensor::<2>::from_data(transposed_matrix(weight, outputs, inputs), device);
    let bias = match bias {
        true => {
            let bias = weights.take(&format!("{name}.bias"), &[outputs])?;
            Some(Param::from_tensor(Tensor::<1>::from_data(bias, device)))
        }
        false => None,
    };
    Ok(Linear {
        weight: Param::from_tensor(weight),
        bias,
    })
}

pub(crate) fn layer_norm(
    weights: &mut Weights,
    name: &str,
    width: usize,
    eps: f64,
    device: &Device,
) -> Result<LayerNorm, WeightsError> {
    let mut norm = LayerNormConfig::new(width).with_epsilon(eps).init(device);
    norm.gamma = Param::from_tensor(Tensor::from_data(
        weights.take(&format!("{name}.weight"), &[width])?,
        device,
    ));
    norm.beta = Some(Param::from_tensor(Tensor::from_data(
        weights.take(&format!("{name}.bias"), &[width])?,
        device,
    )));
    Ok(norm)
}

pub(crate) fn embedding(
    weights: &mut Weights,
    name: &str,
    rows: usize,
    width: usize,
    device: &Device,
) -> Result<Embedding, WeightsError> {
    let table = weights.take(&format!("{name}.weight"), &[rows, width])?;
    Ok(Embedding {
        weight: Param::from_tensor(Tensor::from_data(table, device)),
    })
}

pub(crate) fn parameter<const D: usize>(
    weights: &mut Weights,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Param<Tensor<D>>, WeightsError> {
    Ok(Param::from_tensor(Tensor::from_data(
        weights.take(name, &shape)?,
        device,
    )))
}

pub(crate) fn activate<const D: usize>(activation: Activation, x: Tensor<D>) -> Tensor<D> {
    match activation {
        // x·σ(1.702x), as OpenAI trained it.
        Activation::QuickGelu => quick_gelu(x),
        Activation::Gelu => gelu(x),
    }
}

/// Multi-head self-attention with fused q/k/v (`in_proj`, rows ordered q, k, v).
#[derive(Module, Debug)]
pub struct Attention {
    pub in_proj: Linear,
    pub out_proj: Linear,
    pub heads: usize,
}

impl Attention {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        width: usize,
        heads: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            in_proj: linear(
                weights,
                &format!("{name}.in_proj"),
                width,
                3 * width,
                true,
                device,
            )?,
            out_proj: linear(
                weights,
                &format!("{name}.out_proj"),
                width,
                width,
                true,
                device,
            )?,
            heads,
        })
    }

    /// `x`: `[batch, tokens, width]`. `bias` is added to the attention logits and must broadcast
    /// to `[batch, heads, tokens, tokens]` (a causal mask, a padding mask, a focus bias).
    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let (query, key, value) = self.split_heads(x);
        let probabilities = Self::probabilities(query, key, bias);
        self.merge_heads(probabilities.matmul(value))
    }

    /// [`Self::forward`], also returning the attention probabilities `[batch, heads, tokens,
    /// tokens]`. `probe` is added to them before they weigh the values: a zero tensor tracked by
    /// autodiff, whose gradient is then the gradient with respect to the probabilities (what
    /// gradient-weighted relevancy reads; see `crate::explain`).
    pub fn forward_probed(
        &self,
        x: Tensor<3>,
        bias: Option<Tensor<4>>,
        probe: Tensor<4>,
    ) -> (Tensor<3>, Tensor<4>) {
        let (query, key, value) = self.split_heads(x);
        let probabilities = Self::probabilities(query, key, bias);
        let weights = probabilities.clone() + probe;
        (self.merge_heads(weights.matmul(value)), probabilities)
    }

    /// The value path alone, `out_proj(v)`: every token as if it attended only to itself (how
    /// MaskCLIP reads dense features out of the last block).
    pub fn value_path(&self, x: Tensor<3>) -> Tensor<3> {
        let width = x.dims()[2];
        let weight = self.in_proj.weight.val().narrow(1, 2 * width, width);
        let mut value = x.matmul(weight.unsqueeze_dim::<3>(0));
        if let Some(bias) = &self.in_proj.bias {
            value = value
                + bias
                    .val()
                    .narrow(0, 2 * width, width)
                    .reshape([1, 1, width]);
        }
        self.out_proj.forward(value)
    }

    /// q, k, v as `[batch, heads, tokens, head_dim]`.
    fn split_heads(&self, x: Tensor<3>) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [batch, tokens, width] = x.dims();
        let head_dim = width / self.heads;
        let qkv = self.in_proj.forward(x);
        let split = |index: usize| {
            qkv.clone()
                .narrow(2, index * width, width)
                .reshape([batch, tokens, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        (split(0), split(1), split(2))
    }

    fn probabilities(query: Tensor<4>, key: Tensor<4>, bias: Option<Tensor<4>>) -> Tensor<4> {
        let head_dim = query.dims()[3];
        let mut logits = query.matmul(key.swap_dims(2, 3)) * (1.0 / (head_dim as f64).sqrt());
        if let Some(bias) = bias {
            logits = logits + bias;
        }
        softmax(logits, 3)
    }

    /// `[batch, heads, tokens, head_dim]` → `out_proj` of the heads side by side.
    fn merge_heads(&self, context: Tensor<4>) -> Tensor<3> {
        let [batch, heads, tokens, head_dim] = context.dims();
        let context = context
            .swap_dims(1, 2)
            .reshape([batch, tokens, heads * head_dim]);
        self.out_proj.forward(context)
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        width: usize,
        hidden: usize,
        activation: Activation,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            fc1: linear(weights, &format!("{name}.fc1"), width, hidden, true, device)?,
            fc2: linear(weights, &format!("{name}.fc2"), hidden, width, true, device)?,
            activation,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2
            .forward(activate(self.activation, self.fc1.forward(x)))
    }
}

/// CLIP's (and timm ViT's) pre-norm block: `x + attn(ln_1 x)`, then `x + mlp(ln_2 x)`.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub ln_1: LayerNorm,
    pub attn: Attention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

/// Sizes of one residual block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockShape {
    pub width: usize,
    pub heads: usize,
    pub mlp_width: usize,
    pub activation: Activation,
    pub layer_norm_eps: f64,
}

impl ResidualBlock {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        shape: BlockShape,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            ln_1: layer_norm(
                weights,
                &format!("{name}.ln_1"),
                shape.width,
                shape.layer_norm_eps,
                device,
            )?,
            attn: Attention::load(
                weights,
                &format!("{name}.attn"),
                shape.width,
                shape.heads,
                device,
            )?,
            ln_2: layer_norm(
                weights,
                &format!("{name}.ln_2"),
                shape.width,
                shape.layer_norm_eps,
                device,
            )?,
            mlp: Mlp::load(
                weights,
                &format!("{name}.mlp"),
                shape.width,
                shape.mlp_width,
                shape.activation,
                device,
            )?,
        })
    }

    pub fn forward(&self, x: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln_1.forward(x), bias);
        self.finish(x)
    }

    /// [`Self::forward`] with the attention probabilities and a probe on them (see
    /// [`Attention::forward_probed`]).
    pub fn forward_probed(
        &self,
        x: Tensor<3>,
        bias: Option<Tensor<4>>,
        probe: Tensor<4>,
    ) -> (Tensor<3>, Tensor<4>) {
        let (attended, probabilities) =
            self.attn
                .forward_probed(self.ln_1.forward(x.clone()), bias, probe);
        (self.finish(x + attended), probabilities)
    }

    /// The block with its attention replaced by the value path ([`Attention::value_path`]);
    /// the residual and the MLP kept, as MaskCLIP does.
    pub fn forward_value_path(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.value_path(self.ln_1.forward(x));
        self.finish(x)
    }

    /// The MLP half: `x + mlp(ln_2 x)`.
    fn finish(&self, x: Tensor<3>) -> Tensor<3> {
        x.clone() + self.mlp.forward(self.ln_2.forward(x))
    }
}

/// Host-side float data → tensor, for inputs built on the CPU (masks, one-hot pooling).
pub(crate) fn tensor_from<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}
