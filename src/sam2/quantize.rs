//! int8 weights for the browser: every matmul weight of the model (all `Linear`s, which here
//! include the 1×1, 2×2 and transposed convolutions) quantized with burn's `Quantizer`
//! (min-max calibration, symmetric Q8, per tensor or per block). Norms, biases, embeddings and
//! the 7×7 patch convolution stay f32: they are a small part of the bytes and a large part of
//! the accuracy.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, Quantizer};
use burn::tensor::quantization::{Calibration, QuantValue, ScaleDtype};
use burn::tensor::{Device, Tensor};

use super::model::{Sam2Error, Sam2Model};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Granularity {
    /// One scale per weight matrix.
    PerTensor,
    /// One scale per `n` consecutive values of a row.
    PerBlock(u8),
}

impl Int8Granularity {
    /// The label stored in the burnpack and shown to users.
    pub fn label(&self) -> String {
        match self {
            Self::PerTensor => "int8-per-tensor".to_string(),
            Self::PerBlock(size) => format!("int8-per-block-{size}"),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "tensor" | "per-tensor" | "int8-per-tensor" => Some(Self::PerTensor),
            other => {
                let size = other
                    .strip_prefix("int8-per-block-")
                    .or_else(|| other.strip_prefix("block-"))
                    .or_else(|| other.strip_prefix("block"))?;
                size.parse::<u8>()
                    .ok()
                    .filter(|size| *size > 0)
                    .map(Self::PerBlock)
            }
        }
    }
}

/// Paths of the matmul weights (`….weight` of `Linear`s; the 4-D patch convolution is not one).
#[derive(Default)]
struct MatmulWeights {
    path: Vec<String>,
    /// (path, columns).
    found: Vec<(String, usize)>,
}

impl ModuleVisitor for MatmulWeights {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if D == 2 && path.ends_with(".weight") {
            self.found.push((path, param.dims()[D - 1]));
        }
    }
}

/// The model with its matmul weights in int8. Per block, a matrix whose rows do not divide
/// into blocks (the 1-, 4- and 8-wide heads) keeps one scale for the whole matrix.
pub fn quantize_int8(model: Sam2Model, granularity: Int8Granularity) -> Sam2Model {
    let device = model.device();
    let base = device
        .settings()
        .quantization
        .scheme
        .with_value(QuantValue::Q8S);
    let mut weights = MatmulWeights::default();
    model.visit(&mut weights);
    let (blocked, whole): (Vec<_>, Vec<_>) =
        weights
            .found
            .into_iter()
            .partition(|(_, columns)| match granularity {
                Int8Granularity::PerBlock(size) => columns % usize::from(size) == 0,
                Int8Granularity::PerTensor => false,
            });
    let paths =
        |list: Vec<(String, usize)>| list.into_iter().map(|(path, _)| path).collect::<Vec<_>>();
    let mut model = model;
    if let Int8Granularity::PerBlock(size) = granularity
        && !blocked.is_empty()
    {
        let scheme = base.per_block([size], ScaleDtype::F32);
        let mut quantizer = Quantizer::new(Calibration::MinMax, scheme);
        model =
            model.quantize_weights_group(&mut quantizer, ParamGroup::from_paths(paths(blocked)));
    }
    if !whole.is_empty() {
        let mut quantizer = Quantizer::new(Calibration::MinMax, base.per_tensor(ScaleDtype::F32));
        model = model.quantize_weights_group(&mut quantizer, ParamGroup::from_paths(paths(whole)));
    }
    model
}

struct Dequantizer;

impl ModuleMapper for Dequantizer {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|tensor| tensor.dequantize())
    }
}

/// The model with every int8 weight expanded back to f32 (values unchanged: the int8 rounding
/// stays). burn 0.22's int8 matmul kernel does not compile under WebGPU (Chromium's WGSL
/// validation rejects its shader; native Vulkan and the CPU backend run it), so in the browser
/// int8 is the download and storage format and the GPU computes in f32.
pub fn dequantize(model: Sam2Model) -> Sam2Model {
    model.map(&mut Dequantizer)
}

impl Sam2Model {
    /// A burnpack read for computing on `chosen`: int8 weights stay int8 where burn's int8
    /// matmul runs (natively, and on the browser's CPU backend); under the browser's WebGPU,
    /// whose shader compiler rejects it, they are read on the CPU backend, expanded to f32 there
    /// (the rounding stays: see [`dequantize`]) and moved to the GPU, so int8
    /// is then the download and storage format only.
    pub fn from_burnpack_for(
        bytes: Vec<u8>,
        chosen: &crate::device::ChosenDevice,
    ) -> Result<(Self, String), Sam2Error> {
        let int8_computes =
            !cfg!(target_arch = "wasm32") || chosen.report.kind == crate::device::ComputeKind::Cpu;
        if int8_computes {
            return Self::from_burnpack(bytes, &chosen.device);
        }
        let (model, weights) = Self::from_burnpack(bytes, &Device::flex())?;
        Ok((dequantize(model).to_device(&chosen.device), weights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granularity_labels_round_trip() {
        for granularity in [Int8Granularity::PerTensor, Int8Granularity::PerBlock(32)] {
            assert_eq!(
                Int8Granularity::parse(&granularity.label()),
                Some(granularity)
            );
        }
        assert_eq!(
            Int8Granularity::parse("block-64"),
            Some(Int8Granularity::PerBlock(64))
        );
        assert_eq!(Int8Granularity::parse("block-0"), None);
        assert_eq!(Int8Granularity::parse("int4"), None);
    }
}
