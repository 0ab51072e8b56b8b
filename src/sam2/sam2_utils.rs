//! Pieces several SAM 2 parts share (`sam2/modeling/sam2_utils.py`): the MLP, channel
//! LayerNorm, and the convolutions, written for channels-last tensors (`[batch, height, width,
//! channels]`) so that every 1×1 and non-overlapping convolution is a matmul — a `Linear` that
//! int8 quantization covers like any other.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::{relu, sigmoid, softmax};
use burn::tensor::{Device, Tensor};

use crate::clip::transformer::{layer_norm, linear};
use crate::kernels::gelu;
use crate::weights::{KeyMap, Source, Weights, WeightsError, transposed_matrix};

/// SAM 2's keys are used as they are (after `model.`): the Rust tree mirrors Meta's.
pub(crate) struct MetaKeys;

impl KeyMap for MetaKeys {
    fn source(&self, canonical: &str) -> Source {
        Source::Key(canonical.to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlpActivation {
    Relu,
    Gelu,
}

pub(crate) fn activate<const D: usize>(activation: MlpActivation, x: Tensor<D>) -> Tensor<D> {
    match activation {
        MlpActivation::Relu => relu(x),
        MlpActivation::Gelu => gelu(x),
    }
}

/// `sam2_utils.MLP`: `num_layers` linears, the activation between them, optional sigmoid.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: MlpActivation,
    #[module(skip)]
    pub sigmoid_output: bool,
}

pub(crate) struct MlpShape {
    pub input: usize,
    pub hidden: usize,
    pub output: usize,
    pub layers: usize,
    pub activation: MlpActivation,
    pub sigmoid_output: bool,
}

impl Mlp {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        shape: MlpShape,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let mut sizes = vec![shape.input];
        sizes.extend(std::iter::repeat_n(shape.hidden, shape.layers - 1));
        sizes.push(shape.output);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(index, pair)| {
                linear(
                    weights,
                    &format!("{name}.layers.{index}"),
                    pair[0],
                    pair[1],
                    true,
                    device,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            layers,
            activation: shape.activation,
            sigmoid_output: shape.sigmoid_output,
        })
    }

    pub fn forward<const D: usize>(&self, mut x: Tensor<D>) -> Tensor<D> {
        let last = self.layers.len() - 1;
        for (index, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if index < last {
                x = activate(self.activation, x);
            }
        }
        if self.sigmoid_output { sigmoid(x) } else { x }
    }
}

/// Checkpoint tensors of `[rows_i, width]` stacked into one `[Σ rows_i, width]` parameter (the
/// decoder's output tokens, the prompt encoder's label embeddings).
pub(crate) fn stacked_rows(
    weights: &mut Weights,
    parts: &[(String, usize)],
    width: usize,
    device: &Device,
) -> Result<Param<Tensor<2>>, WeightsError> {
    let rows = parts
        .iter()
        .map(|(key, rows)| {
            Ok(Tensor::<2>::from_data(
                weights.take(key, &[*rows, width])?,
                device,
            ))
        })
        .collect::<Result<_, WeightsError>>()?;
    Ok(Param::from_tensor(Tensor::cat(rows, 0)))
}

/// A 1×1 convolution (`[out, in, 1, 1]` in the checkpoint) as a `Linear` over channels.
pub(crate) fn conv1x1(
    weights: &mut Weights,
    name: &str,
    inputs: usize,
    outputs: usize,
    device: &Device,
) -> Result<Linear, WeightsError> {
    let weight = weights.take(&format!("{name}.weight"), &[outputs, inputs, 1, 1])?;
    let bias = weights.take(&format!("{name}.bias"), &[outputs])?;
    Ok(Linear {
        weight: Param::from_tensor(Tensor::<2>::from_data(
            transposed_matrix(weight, outputs, inputs),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(bias, device))),
    })
}

/// `LayerNorm2d` normalises over channels: on channels-last tensors that is a `LayerNorm`.
pub(crate) fn layer_norm_2d(
    weights: &mut Weights,
    name: &str,
    channels: usize,
    device: &Device,
) -> Result<LayerNorm, WeightsError> {
    layer_norm(weights, name, channels, 1e-6, device)
}

/// A `kernel × kernel` convolution with stride `kernel` (patches do not overlap): each output
/// pixel is a linear map of one patch.
#[derive(Module, Debug)]
pub struct PatchConv {
    /// `[in · k · k, out]`, rows in PyTorch's `(in, ky, kx)` order.
    pub proj: Linear,
    #[module(skip)]
    pub kernel: usize,
}

impl PatchConv {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        inputs: usize,
        outputs: usize,
        kernel: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let weight = weights.take(
            &format!("{name}.weight"),
            &[outputs, inputs, kernel, kernel],
        )?;
        let bias = weights.take(&format!("{name}.bias"), &[outputs])?;
        let proj = Linear {
            weight: Param::from_tensor(Tensor::<2>::from_data(
                transposed_matrix(weight, outputs, inputs * kernel * kernel),
                device,
            )),
            bias: Some(Param::from_tensor(Tensor::from_data(bias, device))),
        };
        Ok(Self { proj, kernel })
    }

    /// `[b, h, w, c]` → `[b, h/k, w/k, out]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, height, width, channels] = x.dims();
        let k = self.kernel;
        let patches = x
            .reshape([batch, height / k, k, width / k, k, channels])
            .permute([0, 1, 3, 5, 2, 4])
            .reshape([batch, height / k, width / k, channels * k * k]);
        self.proj.forward(patches)
    }
}

/// `ConvTranspose2d(kernel_size=2, stride=2)`: each input pixel writes a 2×2 block.
#[derive(Module, Debug)]
pub struct ConvTranspose2x2 {
    /// `[in, out · 2 · 2]`, columns in `(out, ky, kx)` order (PyTorch's `[in, out, ky, kx]`).
    pub proj: Linear,
    pub bias: Param<Tensor<1>>,
}

impl ConvTranspose2x2 {
    pub(crate) fn load(
        weights: &mut Weights,
        name: &str,
        inputs: usize,
        outputs: usize,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let weight = weights.take(&format!("{name}.weight"), &[inputs, outputs, 2, 2])?;
        let bias = weights.take(&format!("{name}.bias"), &[outputs])?;
        Ok(Self {
            proj: Linear {
                weight: Param::from_tensor(
                    Tensor::<4>::from_data(weight, device).reshape([inputs, outputs * 4]),
                ),
                bias: None,
            },
            bias: Param::from_tensor(Tensor::from_data(bias, device)),
        })
    }

    /// `[b, h, w, in]` → `[b, 2h, 2w, out]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, height, width, _] = x.dims();
        let outputs = self.bias.dims()[0];
        let blocks = self
            .proj
            .forward(x)
            .reshape([batch, height, width, outputs, 2, 2])
            .permute([0, 1, 4, 2, 5, 3])
            .reshape([batch, height * 2, width * 2, outputs]);
        blocks + self.bias.val().reshape([1, 1, 1, outputs])
    }
}

/// Attention logits above this many bytes are computed in slices of queries: WebGPU caps a
/// storage buffer at 128 MiB by default, and a global Hiera block at 1024 pixels would need
/// 256 MiB at once.
const MAX_LOGITS_BYTES: usize = 64 << 20;

/// Scaled dot-product attention, `[b, heads, queries, d]` × `[b, heads, keys, d]` (a batch of 1
/// on either side broadcasts).
pub(crate) fn scaled_dot_product_attention(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
) -> Tensor<4> {
    attention_in_slices(query, key, value, MAX_LOGITS_BYTES)
}

fn attention_in_slices(
    query: Tensor<4>,
    key: Tensor<4>,
    value: Tensor<4>,
    max_logits_bytes: usize,
) -> Tensor<4> {
    let [query_batch, heads, queries, head_dim] = query.dims();
    let [key_batch, _, keys, _] = key.dims();
    let batch = query_batch.max(key_batch);
    let scale = 1.0 / (head_dim as f64).sqrt();
    let key_t = key.swap_dims(2, 3);
    let bytes_per_query = batch * heads * keys * 4;
    let chunk = (max_logits_bytes / bytes_per_query.max(1)).max(1);
    if chunk >= queries {
        return softmax(query.matmul(key_t) * scale, 3).matmul(value);
    }
    let parts: Vec<Tensor<4>> = (0..queries)
        .step_by(chunk)
        .map(|start| {
            let length = chunk.min(queries - start);
            let logits = query.clone().narrow(2, start, length).matmul(key_t.clone()) * scale;
            softmax(logits, 3).matmul(value.clone())
        })
        .collect();
    Tensor::cat(parts, 2)
}

/// `[b, h, w, c]` max-pooled 2×2 with stride 2 (odd edges dropped, as `ceil_mode=False`).
pub(crate) fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    let [batch, height, width, channels] = x.dims();
    let (h, w) = (height / 2, width / 2);
    x.narrow(1, 0, h * 2)
        .narrow(2, 0, w * 2)
        .reshape([batch, h, 2, w, 2, channels])
        .max_dim(4)
        .max_dim(2)
        .reshape([batch, h, w, channels])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn sliced_attention_matches_one_pass() {
        let device = Device::flex();
        let make = |seed: f32, tokens: usize| {
            let values: Vec<f32> = (0..2 * tokens * 8)
                .map(|i| (i as f32 * 0.37 + seed).sin())
                .collect();
            Tensor::<4>::from_data(TensorData::new(values, [1, 2, tokens, 8]), &device)
        };
        let (q, k, v) = (make(0.1, 40), make(0.7, 30), make(1.3, 30));
        let whole = attention_in_slices(q.clone(), k.clone(), v.clone(), usize::MAX);
        // 2 heads × 30 keys × 4 bytes per query: 7 queries per slice, the last one shorter.
        let sliced = attention_in_slices(q, k, v, 7 * 2 * 30 * 4);
        assert_eq!(sliced.dims(), [1, 2, 40, 8]);
        let diff = (whole - sliced).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn max_pool_drops_odd_edges() {
        let device = Device::flex();
        let values: Vec<f32> = (0..15).map(|v| v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 3, 5, 1]), &device);
        let pooled = max_pool_2x2(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(pooled, vec![6.0, 8.0]);
    }
}
